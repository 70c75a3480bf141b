package report

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/internal/evaluate"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

// TestStatusTooLargeIsolated: one bundle's status is larger than the
// transport carries. It is reported as its fallback (conditions saying
// StatusTooLarge), while 100 other bundles of the same reporter keep
// flowing: every one of their updates arrives, none waits behind it
// (DESIGN fact 9).
func TestStatusTooLargeIsolated(t *testing.T) {
	pipe := protocol.NewPipe(10000)
	pipe.SetMaxBytes(limits.MQTTMessageBytes)
	r := New(pipe.Agent(), WithConsumer("c1"), WithHeartbeat(200*time.Millisecond), WithCoalesce(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Start(ctx) }()

	big := status("1.1.1.1", "u-big")
	big.Conditions[0].Message = strings.Repeat("x", limits.MQTTMessageBytes)
	r.Set("big", 1, big)
	const n, rounds = 100, 5
	for round := 1; round <= rounds; round++ {
		for i := range n {
			r.Set(fmt.Sprintf("b%03d", i), 1, status(fmt.Sprintf("10.0.%d.%d", round, i), "u"))
		}
		time.Sleep(10 * time.Millisecond)
	}

	last := map[string]string{} // bundle → last ip received
	var fallback *protocol.Status
	var digest map[string]string
	deadline := time.After(20 * time.Second)
	for done := false; !done; {
		select {
		case m := <-pipe.Server().Recv():
			switch m.Type {
			case protocol.TypeStatus:
				s := m.Status
				if s.BundleID == "big" {
					fallback = s
				} else if v := s.Reported.ResourceStatus[0].StatusFeedbacks.Values; len(v) > 0 {
					last[s.BundleID] = *v[0].Value.String
				}
				_ = pipe.Server().Send(ctx, protocol.Message{Type: protocol.TypeStatusAck,
					StatusAck: &protocol.StatusAck{Epoch: s.Epoch, BundleID: s.BundleID, Revision: s.Revision}})
				r.Ack(protocol.StatusAck{Epoch: s.Epoch, BundleID: s.BundleID, Revision: s.Revision})
			case protocol.TypeHeartbeat:
				digest = m.Heartbeat.Digest
			}
			done = fallback != nil && digest != nil && digest["big"] == fallback.Hash && allAt(last, n, rounds)
		case <-deadline:
			t.Fatalf("after 20s: fallback %v, %d bundles at their last value; want all %d", fallback != nil, countAt(last, rounds), n)
		}
	}
	var c *metav1.Condition
	for i := range fallback.Reported.Conditions {
		if fallback.Reported.Conditions[i].Type == api.ConditionStatusFeedbackSynced {
			c = &fallback.Reported.Conditions[i]
		}
	}
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != evaluate.ReasonStatusTooLarge || !strings.Contains(c.Message, "512 KiB") {
		t.Fatalf("fallback conditions = %+v; want StatusFeedbackSynced=False StatusTooLarge naming 512 KiB", fallback.Reported.Conditions)
	}
	if len(fallback.Reported.ResourceStatus) != 1 || fallback.Reported.ResourceStatus[0].Observed.UID != "u-big" ||
		len(fallback.Reported.ResourceStatus[0].StatusFeedbacks.Values) != 0 {
		t.Errorf("fallback entries = %+v; want the object's identity without values", fallback.Reported.ResourceStatus)
	}
	// The same oversized state again changes nothing.
	before := r.Stats().Sent
	r.Set("big", 1, big)
	time.Sleep(50 * time.Millisecond)
	if got := r.Stats().Sent; got != before {
		t.Errorf("re-setting the oversized state sent %d reports", got-before)
	}
}

func allAt(last map[string]string, n, round int) bool { return countAt(last, round) == n }

func countAt(last map[string]string, round int) int {
	c := 0
	for _, v := range last {
		if strings.HasPrefix(v, fmt.Sprintf("10.0.%d.", round)) {
			c++
		}
	}
	return c
}

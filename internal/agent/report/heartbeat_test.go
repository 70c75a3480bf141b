package report

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/transport/mqtt"
)

func (h *harness) heartbeats(d time.Duration) []protocol.Heartbeat {
	h.t.Helper()
	h.fc.Step(d)
	h.r.runOnce(context.Background())
	_, hbs := h.s.take()
	return hbs
}

func TestHeartbeatDigest(t *testing.T) {
	h := newHarness(t)
	if hbs := h.heartbeats(DefaultHeartbeat - time.Millisecond); len(hbs) != 0 {
		t.Fatalf("heartbeat before the interval: %+v", hbs)
	}
	hbs := h.heartbeats(time.Millisecond)
	if len(hbs) != 1 || len(hbs[0].Digest) != 0 || hbs[0].Epoch != h.r.Epoch() || hbs[0].Batch != 1 || hbs[0].Batches != 1 {
		t.Fatalf("empty heartbeat = %+v", hbs)
	}

	a, b := status("1.1.1.1", "u1"), status("2.2.2.2", "u1")
	h.r.Set("b1", 1, a)
	h.step(DefaultCoalesce)
	h.r.Set("b2", 1, b) // not reported yet: the digest still has its latest state
	hbs = h.heartbeats(DefaultHeartbeat)
	if len(hbs) != 1 {
		t.Fatalf("got %d heartbeats", len(hbs))
	}
	want := map[string]string{"b1": protocol.HashStatus(a), "b2": protocol.HashStatus(b)}
	if fmt.Sprint(hbs[0].Digest) != fmt.Sprint(want) {
		t.Errorf("digest = %v; want %v", hbs[0].Digest, want)
	}
	if !hbs[0].At.Equal(h.fc.Now()) {
		t.Errorf("heartbeat at %v; want %v", hbs[0].At, h.fc.Now())
	}
}

func TestHeartbeatBatchesFit(t *testing.T) {
	h := newHarness(t, WithConsumer("a-consumer-with-a-long-name"))
	const n = 12000
	st := status("1.1.1.1", "u1")
	for i := 0; i < n; i++ {
		// Ids with characters JSON escapes take more room than they look.
		h.r.Set(fmt.Sprintf("bundle-<%05d>-&-55c61e54-a3f6-563d-9fec-b1fe297bdfdb", i), 1, st)
	}
	var msgs []protocol.Message
	h.fc.Step(DefaultHeartbeat)
	h.r.runOnce(context.Background())
	h.s.mu.Lock()
	for _, m := range h.s.msgs {
		if m.Type == protocol.TypeHeartbeat {
			msgs = append(msgs, m)
		}
	}
	h.s.msgs = nil
	h.s.mu.Unlock()
	if len(msgs) < 2 {
		t.Fatalf("%d bundles fit one heartbeat; the test needs several batches", n)
	}
	seen := map[string]bool{}
	for i, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) >= limits.BatchBytes {
			t.Errorf("batch %d encodes to %d bytes; limit %d", i+1, len(b), limits.BatchBytes)
		}
		// On the wire (a CloudEvent in JSON, as MQTT carries it).
		wire, err := mqtt.EncodeMessage(m, "baton-agent", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(wire) > limits.BatchBytes {
			t.Errorf("batch %d is %d bytes as a CloudEvent; limit %d", i+1, len(wire), limits.BatchBytes)
		}
		if len(wire) < limits.BatchBytes*3/4 && i < len(msgs)-1 {
			t.Errorf("batch %d is only %d bytes: batches are needlessly small", i+1, len(wire))
		}
		hb := m.Heartbeat
		if hb.Batch != i+1 || hb.Batches != len(msgs) || hb.Epoch != h.r.Epoch() || m.Consumer != "a-consumer-with-a-long-name" {
			t.Errorf("batch %d header = %d/%d epoch %q", i+1, hb.Batch, hb.Batches, hb.Epoch)
		}
		for id := range hb.Digest {
			if seen[id] {
				t.Errorf("%s in two batches", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != n {
		t.Errorf("digests cover %d bundles; want %d", len(seen), n)
	}
}

func TestResumeSendsHeartbeatAtOnce(t *testing.T) {
	h := newHarness(t)
	h.r.Resume()
	if hbs := h.heartbeats(0); len(hbs) != 1 {
		t.Fatalf("heartbeats after Resume = %d; want 1", len(hbs))
	}
	if hbs := h.heartbeats(DefaultHeartbeat - time.Millisecond); len(hbs) != 0 {
		t.Fatalf("heartbeat before the next interval: %d", len(hbs))
	}
}

// TestHeartbeatFlushesPendingChanges: a change still in its coalescing
// window when a heartbeat is due is reported before the heartbeat, so the
// server never holds a digest ahead of the statuses it describes.
func TestHeartbeatFlushesPendingChanges(t *testing.T) {
	h := newHarness(t)
	st := status("3.3.3.3", "u9")
	h.fc.Step(DefaultHeartbeat - time.Millisecond)
	h.r.Set("b1", 1, st) // its window would end after the heartbeat
	h.fc.Step(time.Millisecond)
	h.r.runOnce(context.Background())
	h.s.mu.Lock()
	msgs := append([]protocol.Message(nil), h.s.msgs...)
	h.s.msgs = nil
	h.s.mu.Unlock()
	var order []protocol.Type
	for _, m := range msgs {
		order = append(order, m.Type)
	}
	if len(msgs) != 2 || msgs[0].Type != protocol.TypeStatus || msgs[1].Type != protocol.TypeHeartbeat {
		t.Fatalf("sent %v; want the status, then the heartbeat", order)
	}
	if got, want := msgs[1].Heartbeat.Digest["b1"], msgs[0].Status.Hash; got != want || want != protocol.HashStatus(st) {
		t.Fatalf("digest hash %s, status hash %s; want both %s", got, want, protocol.HashStatus(st))
	}
}

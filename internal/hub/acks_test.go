package hub

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// TestStatusIngestedWhileAgentDoesNotRead: an agent that never reads what
// the server sends keeps sending Status messages; the server's link to it
// holds two messages. The server must still store every status (its acks
// wait in the session's queue), and deliver the acks, one per bundle at the
// highest revision, once the agent reads again.
func TestStatusIngestedWhileAgentDoesNotRead(t *testing.T) {
	const n = 200
	x := newHarness(t, storetest.NewSQLite(t), false)
	held := map[string]int64{}
	incs := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("b%03d", i)
		createBundle(t, x.st, consumer, id)
		if err := x.st.AckOutbox(x.ctx, consumer, id, 1); err != nil {
			t.Fatal(err)
		}
		held[id], incs[id] = 1, x.incarnation()
	}
	p := protocol.NewPipe(2)
	ctx, cancel := context.WithCancel(x.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = x.h.Attach(ctx, consumer, p.Server()) }()
	t.Cleanup(func() { cancel(); <-done })

	agent := p.Agent() // never read until the statuses are stored
	send := func(m protocol.Message) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		defer scancel()
		if err := agent.Send(sctx, m); err != nil {
			t.Fatalf("agent send %s: %v (the server stopped reading)", m.Type, err)
		}
	}
	send(protocol.Message{Type: protocol.TypeHello, Hello: &protocol.Hello{Epoch: "e1", Held: held, Incarnations: incs, Batches: 1}})
	rs := statusFor(1)
	rev := int64(0)
	for round := range 2 { // two revisions of every bundle
		for i := range n {
			rev++
			st := protocol.Status{BundleID: fmt.Sprintf("b%03d", i), Generation: 1, Epoch: "e1", Revision: rev,
				Reported: rs, Hash: protocol.HashStatus(rs), At: time.Now()}
			if round == 1 {
				st.Reported = statusFor(2)
				st.Hash = protocol.HashStatus(st.Reported)
			}
			send(protocol.Message{Type: protocol.TypeStatus, Status: &st})
		}
	}
	eventually(t, "every status stored", func() bool {
		bs, err := x.st.ListBundlesByConsumer(x.ctx, consumer)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			if b.Status.Revision != 2 {
				return false
			}
		}
		return len(bs) == n
	})

	// The agent reads again: every bundle's second revision is acked.
	acked := map[string]int64{}
	deadline := time.After(5 * time.Second)
	for len(acked) < n || !allAbove(acked, n) {
		select {
		case m := <-agent.Recv():
			if m.Type == protocol.TypeStatusAck {
				acked[m.StatusAck.BundleID] = max(acked[m.StatusAck.BundleID], m.StatusAck.Revision)
			}
		case <-deadline:
			t.Fatalf("%d of %d bundles acked at their last revision", countAbove(acked, n), n)
		}
	}
}

// allAbove reports whether every ack covers the second round (revision > n).
func allAbove(acked map[string]int64, n int) bool { return countAbove(acked, n) == n }

func countAbove(acked map[string]int64, n int) int {
	c := 0
	for _, r := range acked {
		if r > int64(n) {
			c++
		}
	}
	return c
}

// TestStatusAcksCoalesce: the ack queue holds one ack per bundle, the
// highest revision of the latest epoch.
func TestStatusAcksCoalesce(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false)
	s := newSession(x.h, consumer, protocol.NewPipe(1).Server(), func() {})
	s.ackLater(protocol.StatusAck{Epoch: "e1", BundleID: "a", Revision: 5})
	s.ackLater(protocol.StatusAck{Epoch: "e1", BundleID: "a", Revision: 3}) // older: ignored
	s.ackLater(protocol.StatusAck{Epoch: "e1", BundleID: "b", Revision: 1})
	s.ackLater(protocol.StatusAck{Epoch: "e1", BundleID: "b", Revision: 7})
	s.ackLater(protocol.StatusAck{Epoch: "e1", BundleID: "c", Revision: 9})
	s.ackLater(protocol.StatusAck{Epoch: "e2", BundleID: "c", Revision: 1}) // new epoch replaces
	want := map[string]protocol.StatusAck{
		"a": {Epoch: "e1", BundleID: "a", Revision: 5},
		"b": {Epoch: "e1", BundleID: "b", Revision: 7},
		"c": {Epoch: "e2", BundleID: "c", Revision: 1},
	}
	pending := s.acks.Pending()
	if len(pending) != len(want) {
		t.Fatalf("queue = %+v; want %+v", pending, want)
	}
	for id, w := range want {
		if got := pending[id]; got != w {
			t.Errorf("ack of %s = %+v; want %+v", id, got, w)
		}
	}
}

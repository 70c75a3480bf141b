package hub

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// TestResyncAfterReconnect: while the agent is away a bundle is updated and
// another deleted; the agent also holds a bundle the store never had. The
// Hello on reconnect brings all three in line.
func TestResyncAfterReconnect(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		x := newHarness(t, st, false)
		createBundle(t, st, consumer, "b1")
		createBundle(t, st, consumer, "b2")
		a := newFakeAgent(t, "e1")
		a.goneOnDelete = true
		_, stop := x.connect(a)
		next(t, a.specs, "first spec")
		next(t, a.specs, "second spec")
		eventually(t, "both specs acked", func() bool { return len(x.pending()) == 0 })
		stop()
		drain(a.specs)

		updateBundle(t, st, "b1")
		if _, err := st.DeleteBundle(x.ctx, "b2"); err != nil {
			t.Fatal(err)
		}
		a.mu.Lock()
		a.held["b9"] = 7
		a.mu.Unlock()

		x.connect(a)
		got := map[string]protocol.Spec{}
		for range 3 {
			s := next(t, a.specs, "resync spec")
			got[s.BundleID] = s
		}
		if s := got["b1"]; s.Generation != 2 || s.Deleting {
			t.Errorf("b1: got %+v; want generation 2", s)
		}
		if s := got["b2"]; s.Generation != 2 || !s.Deleting {
			t.Errorf("b2: got %+v; want a deletion at generation 2", s)
		}
		if s := got["b9"]; s.Generation != 7 || !s.Deleting {
			t.Errorf("b9: got %+v; want a deletion at generation 7", s)
		}
		eventually(t, "b2 is purged after the agent's Gone ack", func() bool { return x.gone("b2") })
		eventually(t, "the agent dropped b9", func() bool { _, ok := a.holds("b9"); return !ok })
		eventually(t, "nothing pending", func() bool { return len(x.pending()) == 0 })
		none(t, a.specs, 400*time.Millisecond, "spec after the resync settled")
	})
}

// TestResyncRequestsMissingStatus: the agent holds the current generation
// but the server never got its status; the Hello's resync asks for it.
func TestResyncRequestsMissingStatus(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false)
	createBundle(t, x.st, consumer, "b1")
	a := newFakeAgent(t, "e1")
	a.held["b1"] = 1
	a.reported["b1"] = statusFor(1)
	x.connect(a)
	req := next(t, a.requests, "status request")
	if !slices.Equal(req.BundleIDs, []string{"b1"}) {
		t.Fatalf("status request: got %v; want [b1]", req.BundleIDs)
	}
	eventually(t, "the status is stored", func() bool { return x.bundle("b1").Status.Revision == 1 })
	none(t, a.specs, 300*time.Millisecond, "spec for a bundle the agent holds")
}

func TestStatusAlwaysAcked(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		x := newHarness(t, st, false)
		createBundle(t, st, consumer, "b1")
		a := newFakeAgent(t, "e1")
		x.connect(a)
		next(t, a.specs, "spec")
		first := next(t, a.acks, "first status ack")
		seq := x.bundle("b1").Status.SequenceID

		// The same report again (a retry), an older revision, and a report
		// for a bundle the store does not have: all acked, none stored.
		rs := statusFor(1)
		for _, st := range []protocol.Status{
			{BundleID: "b1", Generation: 1, Epoch: "e1", Revision: first.Revision, Reported: rs, Hash: protocol.HashStatus(rs)},
			{BundleID: "b1", Generation: 1, Epoch: "e1", Revision: first.Revision - 1, Reported: statusFor(9)},
			{BundleID: "nope", Generation: 1, Epoch: "e1", Revision: first.Revision + 1, Reported: rs},
		} {
			a.send(x.ctx, protocol.Message{Type: protocol.TypeStatus, Status: &st})
			ack := next(t, a.acks, "status ack")
			if ack.BundleID != st.BundleID || ack.Revision != st.Revision || ack.Epoch != "e1" {
				t.Errorf("ack: got %+v; want %s revision %d", ack, st.BundleID, st.Revision)
			}
		}
		b := x.bundle("b1")
		if b.Status.Revision != 1 || b.Status.SequenceID != seq {
			t.Errorf("status after duplicates: revision %d seq %s; want 1 %s", b.Status.Revision, b.Status.SequenceID, seq)
		}

		// A new revision with new content is accepted with a higher sequence id.
		rs2 := statusFor(2)
		st2 := protocol.Status{BundleID: "b1", Generation: 1, Epoch: "e1", Revision: first.Revision + 5, Reported: rs2}
		a.send(x.ctx, protocol.Message{Type: protocol.TypeStatus, Status: &st2})
		next(t, a.acks, "ack of the new revision")
		b = x.bundle("b1")
		if b.Status.Revision != 2 || b.Status.Hash != protocol.HashStatus(rs2) || !(len(b.Status.SequenceID) >= len(seq) && b.Status.SequenceID > seq) {
			t.Errorf("status: got revision %d hash %s seq %s; want revision 2, hash of the report, seq > %s",
				b.Status.Revision, b.Status.Hash, b.Status.SequenceID, seq)
		}
	})
}

func TestStatusDeletedPurges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		changes := make(chan struct{}, 100)
		x := newHarness(t, st, false, WithChangeNotifier(func() { changes <- struct{}{} }))
		createBundle(t, st, consumer, "b1")
		a := newFakeAgent(t, "e1")
		x.connect(a)
		next(t, a.specs, "spec")
		eventually(t, "status stored", func() bool { return x.bundle("b1").Status.Revision == 1 })
		if _, err := st.DeleteBundle(x.ctx, "b1"); err != nil {
			t.Fatal(err)
		}
		x.h.Notify(consumer)
		if s := next(t, a.specs, "deletion spec"); !s.Deleting || s.Generation != 2 {
			t.Fatalf("spec: got %+v; want deletion at generation 2", s)
		}
		eventually(t, "b1 is purged after Status{Deleted}", func() bool { return x.gone("b1") })
		next(t, changes, "change notification")
		eventually(t, "nothing pending", func() bool { return len(x.pending()) == 0 })
	})
}

// TestNewerSessionSupersedes: a second Attach (the agent restarted with a new
// epoch) replaces the first; the first's end does not mark the agent
// disconnected and late reports of the old epoch are stale.
func TestNewerSessionSupersedes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		x := newHarness(t, st, false)
		createBundle(t, st, consumer, "b1")
		old := newFakeAgent(t, "e1")
		oldPipe, _ := x.connect(old)
		next(t, old.specs, "spec to the old agent")
		eventually(t, "old status stored", func() bool { return x.bundle("b1").Status.AgentEpoch == "e1" })

		fresh := newFakeAgent(t, "e2")
		x.connect(fresh)
		next(t, fresh.specs, "spec to the new agent (it holds nothing)")
		eventually(t, "epoch e2 recorded", func() bool { return x.agentState().Epoch == "e2" })
		eventually(t, "new status stored", func() bool { return x.bundle("b1").Status.AgentEpoch == "e2" })

		// The old session is gone: what the old agent sends is not read.
		late := protocol.Status{BundleID: "b1", Generation: 1, Epoch: "e1", Revision: 99, Reported: statusFor(5)}
		_ = oldPipe.Agent().Send(x.ctx, protocol.Message{Type: protocol.TypeStatus, Status: &late})
		time.Sleep(200 * time.Millisecond)
		if s := x.agentState(); !s.Connected || s.Epoch != "e2" {
			t.Errorf("agent state: got %+v; want connected with epoch e2", s)
		}
		if b := x.bundle("b1"); b.Status.AgentEpoch != "e2" || b.Status.Hash != protocol.HashStatus(statusFor(1)) {
			t.Errorf("status: got epoch %s; want the new agent's", b.Status.AgentEpoch)
		}
		if !x.h.Connected(consumer) {
			t.Error("hub: consumer not connected")
		}
	})
}

// TestStaleEpochStatusIgnored: on one connection, a report from an older
// epoch is acked and not stored.
func TestStaleEpochStatusIgnored(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false)
	createBundle(t, x.st, consumer, "b1")
	a := newFakeAgent(t, "e2")
	x.connect(a)
	next(t, a.specs, "spec")
	next(t, a.acks, "status ack")
	old := protocol.Status{BundleID: "b1", Generation: 1, Epoch: "e1", Revision: 50, Reported: statusFor(7)}
	a.send(x.ctx, protocol.Message{Type: protocol.TypeStatus, Status: &old})
	if ack := next(t, a.acks, "ack of the stale report"); ack.Epoch != "e1" || ack.Revision != 50 {
		t.Errorf("ack: got %+v; want epoch e1 revision 50", ack)
	}
	if b := x.bundle("b1"); b.Status.AgentEpoch != "e2" || b.Status.Revision != 1 {
		t.Errorf("status: got epoch %s revision %d; want e2 1", b.Status.AgentEpoch, b.Status.Revision)
	}
}

// TestStatusBeforeHelloNotAcked: a report that arrives before the session's
// Hello is left unacknowledged (the store could not judge its epoch yet);
// the agent's retry after the Hello is stored and acked.
func TestStatusBeforeHelloNotAcked(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false)
	createBundle(t, x.st, consumer, "b1")
	a := newFakeAgent(t, "e1")
	a.noStatus = true
	p := protocol.NewPipe(100)
	x.attach(a, p)
	early := protocol.Status{BundleID: "b1", Generation: 1, Epoch: "e1", Revision: 1, Reported: statusFor(1)}
	a.send(x.ctx, protocol.Message{Type: protocol.TypeStatus, Status: &early})
	none(t, a.acks, 200*time.Millisecond, "ack before Hello")
	a.hello(x.ctx)
	next(t, a.specs, "spec")
	a.send(x.ctx, protocol.Message{Type: protocol.TypeStatus, Status: &early})
	if ack := next(t, a.acks, "ack after Hello"); ack.Revision != 1 {
		t.Errorf("ack: got %+v; want revision 1", ack)
	}
	if b := x.bundle("b1"); b.Status.Revision != 1 || b.Status.AgentEpoch != "e1" {
		t.Errorf("status: got %+v; want revision 1 from e1", b.Status)
	}
}

// TestSecondAgentStandsDown: a second agent of the consumer (another
// identity) is told to stand down and gets nothing while the first serves;
// the lease names it as contender. When the first agent's session ends
// (a rolling update), the standing-by session takes over at once, and the
// consumer is never recorded disconnected in between.
func TestSecondAgentStandsDown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		x := newHarness(t, st, false)
		createBundle(t, st, consumer, "b1")
		first := newFakeAgent(t, "e1")
		first.id = "pod-old"
		_, stopFirst := x.connect(first)
		next(t, first.specs, "spec to the first agent")
		if s := next(t, first.sessions, "session answer"); !s.Active {
			t.Fatalf("first agent: %+v; want active", s)
		}
		eventually(t, "first status stored", func() bool { return x.bundle("b1").Status.AgentEpoch == "e1" })

		second := newFakeAgent(t, "e2")
		second.id = "pod-new"
		x.connect(second)
		s := next(t, second.sessions, "session answer to the second agent")
		if s.Active || s.Holder != "pod-old" || s.Agent != "pod-new" || s.RetryAfter <= 0 {
			t.Fatalf("second agent: %+v; want stand down naming pod-old", s)
		}
		ls, err := st.(store.Leases).ListLeases(x.ctx, "consumer/"+consumer)
		if err != nil || len(ls) != 1 || ls[0].Holder != "pod-old" || ls[0].Contender != "pod-new" {
			t.Fatalf("lease: %+v, %v; want held by pod-old, contender pod-new", ls, err)
		}
		select {
		case sp := <-second.specs:
			t.Fatalf("standing-by agent got a spec: %+v", sp)
		case <-time.After(300 * time.Millisecond):
		}
		if e := x.agentState().Epoch; e != "e1" {
			t.Fatalf("agent epoch %q; the standing-by agent must not replace e1", e)
		}

		// Rolling update: the old agent goes; the new one takes over.
		var flipped atomic.Bool
		watching := make(chan struct{})
		go func() {
			defer close(watching)
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) && x.agentState().Epoch != "e2" {
				if !x.agentState().Connected {
					flipped.Store(true)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		stopFirst()
		if s := next(t, second.sessions, "session answer after the handover"); !s.Active {
			t.Fatalf("second agent after handover: %+v; want active", s)
		}
		next(t, second.specs, "spec to the new agent")
		eventually(t, "epoch e2 recorded", func() bool { return x.agentState().Epoch == "e2" })
		<-watching
		if flipped.Load() {
			t.Error("the consumer was recorded disconnected during the handover")
		}
		if !x.agentState().Connected {
			t.Error("consumer not connected after the handover")
		}
	})
}

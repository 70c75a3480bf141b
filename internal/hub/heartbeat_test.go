package hub

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

// TestHeartbeatHealsLostStatus: the agent's status for b1 is lost on the
// way and the server never stored one for b2; the next heartbeat's digest
// makes the server ask for both, and the status heals.
func TestHeartbeatHealsLostStatus(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		x := newHarness(t, st, false)
		createBundle(t, st, consumer, "b1")
		createBundle(t, st, consumer, "b2")
		a := newFakeAgent(t, "e1")
		p, _ := x.connect(a)
		p.SetDropFromAgent(func(m protocol.Message) bool {
			return m.Type == protocol.TypeStatus && m.Status.BundleID == "b1"
		})
		next(t, a.specs, "spec")
		next(t, a.specs, "spec")
		eventually(t, "both acked", func() bool { return len(x.pending()) == 0 })
		eventually(t, "b2 status stored", func() bool { return x.bundle("b2").Status.Revision == 1 })
		if r := x.bundle("b1").Status.Revision; r != 0 {
			t.Fatalf("b1 status revision %d; want 0 (report dropped)", r)
		}
		// The agent forgets b2's status too: its digest lacks b2 entirely.
		p.SetDropFromAgent(nil)
		a.mu.Lock()
		delete(a.held, "b2")
		a.mu.Unlock()

		a.heartbeat(x.ctx)
		req := next(t, a.requests, "status request")
		slices.Sort(req.BundleIDs)
		if !slices.Equal(req.BundleIDs, []string{"b1", "b2"}) {
			t.Fatalf("status request: got %v; want [b1 b2]", req.BundleIDs)
		}
		eventually(t, "b1 status stored", func() bool { return x.bundle("b1").Status.Revision == 1 })
		if !x.bundle("b1").Status.ConfirmedAt.After(time.Time{}) {
			t.Error("b1: no ConfirmedAt")
		}

		// The second digest lacking b2 makes the server send its spec again.
		a.heartbeat(x.ctx)
		if s := next(t, a.specs, "b2 spec re-sent"); s.BundleID != "b2" {
			t.Fatalf("spec: got %s; want b2", s.BundleID)
		}
		eventually(t, "the agent holds b2 again", func() bool { _, ok := a.holds("b2"); return ok })

		// Now the digest matches: nothing requested, DigestMismatch clear.
		a.heartbeat(x.ctx)
		none(t, a.requests, 300*time.Millisecond, "status request for a matching digest")
		for _, id := range []string{"b1", "b2"} {
			if b := x.bundle(id); b.Status.DigestMismatch {
				t.Errorf("%s: DigestMismatch set after a matching digest", id)
			}
		}
	})
}

func TestHeartbeatMismatchFlagged(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false)
	createBundle(t, x.st, consumer, "b1")
	a := newFakeAgent(t, "e1")
	a.noStatus = true
	p, _ := x.connect(a)
	next(t, a.specs, "spec")
	// Report, then change the agent's view without telling the server.
	a.report(x.ctx, "b1", 1, false)
	next(t, a.acks, "ack")
	p.SetDropFromAgent(func(m protocol.Message) bool { return m.Type == protocol.TypeStatus })
	a.mu.Lock()
	a.reported["b1"] = statusFor(42)
	a.mu.Unlock()
	a.heartbeat(x.ctx)
	next(t, a.requests, "status request")
	eventually(t, "DigestMismatch is set", func() bool { return x.bundle("b1").Status.DigestMismatch })
}

func TestHeartbeatRecordsLiveness(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false)
	a := newFakeAgent(t, "e1")
	x.connect(a)
	eventually(t, "connected", func() bool { return x.agentState().Connected })
	before := x.agentState().LastHeartbeat
	time.Sleep(20 * time.Millisecond)
	a.heartbeat(x.ctx)
	eventually(t, "heartbeat recorded", func() bool { return x.agentState().LastHeartbeat.After(before) })
}

func TestDisconnectMarksAgentDisconnected(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		x := newHarness(t, st, false)
		a := newFakeAgent(t, "e1")
		_, stop := x.connect(a)
		eventually(t, "connected", func() bool { return x.agentState().Connected })
		stop()
		if s := x.agentState(); s.Connected || s.Epoch != "e1" {
			t.Errorf("agent state after the session ended: got %+v; want disconnected, epoch kept", s)
		}
		if x.h.Connected(consumer) {
			t.Error("hub still holds a session")
		}
	})
}

// TestSilentAgentTimesOut: a session whose agent stops heartbeating is
// marked disconnected by Start's sweep.
func TestSilentAgentTimesOut(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), true, WithHeartbeatTimeout(300*time.Millisecond))
	a := newFakeAgent(t, "e1")
	x.connect(a)
	eventually(t, "connected", func() bool { return x.agentState().Connected })
	eventually(t, "disconnected after the heartbeat timeout", func() bool { return !x.agentState().Connected })
	a.heartbeat(x.ctx)
	eventually(t, "connected again after a heartbeat", func() bool { return x.agentState().Connected })
}

// TestRestartSweep: agents this replica held before it restarted are marked
// disconnected at Start; an agent held by another replica is left alone.
func TestRestartSweep(t *testing.T) {
	st := storetest.NewSQLite(t)
	ctx := t.Context()
	for _, c := range []string{"mine", "theirs"} {
		if _, err := st.CreateConsumer(ctx, store.Consumer{Name: c}); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now().Add(-time.Second)
	_ = st.SetAgentState(ctx, "mine", store.AgentState{Connected: true, Epoch: "e", LastHeartbeat: before, ServerID: "s1"})
	_ = st.SetAgentState(ctx, "theirs", store.AgentState{Connected: true, Epoch: "e", LastHeartbeat: before, ServerID: "s2"})
	newHarness(t, st, true)
	state := func(name string) store.AgentState {
		c, err := st.GetConsumer(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return c.Agent
	}
	eventually(t, "mine is disconnected", func() bool { return !state("mine").Connected })
	if s := state("theirs"); !s.Connected {
		t.Errorf("theirs: got %+v; want still connected", s)
	}
}

// TestGoneAckOfLiveBundleResends: an agent that says it lost a live bundle
// gets its spec again.
func TestGoneAckOfLiveBundleResends(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false)
	createBundle(t, x.st, consumer, "b1")
	a := newFakeAgent(t, "e1")
	x.connect(a)
	next(t, a.specs, "spec")
	eventually(t, "acked", func() bool { return len(x.pending()) == 0 })
	a.send(x.ctx, protocol.Message{Type: protocol.TypeSpecAck, SpecAck: &protocol.SpecAck{BundleID: "b1", Generation: 1, Gone: true}})
	if s := next(t, a.specs, "spec again"); s.BundleID != "b1" || s.Generation != 1 || s.Deleting {
		t.Fatalf("got %+v; want b1 generation 1", s)
	}
	if x.gone("b1") {
		t.Fatal("a live bundle was purged")
	}
}

// TestDigestLeavesUnconfirmedAlone: a stored status with an entry the agent
// could not observe is not confirmed by a matching digest (its confirmedAt
// stays), until the agent reports the entry observed again.
func TestDigestLeavesUnconfirmedAlone(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false)
	createBundle(t, x.st, consumer, "b1")
	a := newFakeAgent(t, "e1")
	a.noStatus = true
	x.connect(a)
	next(t, a.specs, "spec")
	send := func(rs api.ReportedStatus) {
		a.mu.Lock()
		a.rev++
		a.reported["b1"] = rs
		st := protocol.Status{BundleID: "b1", Generation: 1, Epoch: a.epoch, Revision: a.rev, Reported: rs, Hash: protocol.HashStatus(rs), At: time.Now()}
		a.mu.Unlock()
		a.send(x.ctx, protocol.Message{Type: protocol.TypeStatus, Status: &st})
		next(t, a.acks, "ack")
	}
	entry := func(status metav1.ConditionStatus, reason string) api.ReportedStatus {
		rs := statusFor(1)
		rs.ResourceStatus = []api.ResourceStatus{{Conditions: []metav1.Condition{{
			Type: api.ConditionStatusFeedbackSynced, Status: status, Reason: reason, LastTransitionTime: metav1.Unix(1700000000, 0)}}}}
		return rs
	}
	send(entry(metav1.ConditionUnknown, api.ReasonClusterUnreachable))
	before := x.bundle("b1").Status.ConfirmedAt
	time.Sleep(20 * time.Millisecond)
	a.heartbeat(x.ctx)
	none(t, a.requests, 300*time.Millisecond, "status request for a matching digest")
	if got := x.bundle("b1").Status.ConfirmedAt; !got.Equal(before) {
		t.Errorf("a digest confirmed an unconfirmed status: confirmedAt %v → %v", before, got)
	}

	send(entry(metav1.ConditionTrue, "StatusFeedbackSynced"))
	observed := x.bundle("b1").Status.ConfirmedAt
	time.Sleep(20 * time.Millisecond)
	a.heartbeat(x.ctx)
	eventually(t, "the digest confirms the observed status", func() bool {
		return x.bundle("b1").Status.ConfirmedAt.After(observed)
	})
}

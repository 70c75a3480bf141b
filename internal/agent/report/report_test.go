package report

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testclock "k8s.io/utils/clock/testing"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

var t0 = time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)

// fakeSender records messages; while fail is set it rejects them.
type fakeSender struct {
	mu   sync.Mutex
	fail bool
	msgs []protocol.Message
}

func (f *fakeSender) Send(_ context.Context, m protocol.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return protocol.ErrDisconnected
	}
	f.msgs = append(f.msgs, m)
	return nil
}

func (f *fakeSender) setFail(b bool) { f.mu.Lock(); f.fail = b; f.mu.Unlock() }

// take returns and clears the recorded statuses and heartbeats.
func (f *fakeSender) take() (sts []protocol.Status, hbs []protocol.Heartbeat) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.msgs {
		switch m.Type {
		case protocol.TypeStatus:
			sts = append(sts, *m.Status)
		case protocol.TypeHeartbeat:
			hbs = append(hbs, *m.Heartbeat)
		}
	}
	f.msgs = nil
	return sts, hbs
}

type harness struct {
	t  *testing.T
	r  *Reporter
	s  *fakeSender
	fc *testclock.FakeClock
}

func newHarness(t *testing.T, opts ...Option) *harness {
	fc := testclock.NewFakeClock(t0)
	s := &fakeSender{}
	r := New(s, append([]Option{WithClock(fc), WithConsumer("c1")}, opts...)...)
	r.nextHeartbeat = t0.Add(r.heartbeat)
	return &harness{t: t, r: r, s: s, fc: fc}
}

// step advances the clock by d and runs the reporter once.
func (h *harness) step(d time.Duration) []protocol.Status {
	h.t.Helper()
	h.fc.Step(d)
	h.r.runOnce(context.Background())
	sts, _ := h.s.take()
	return sts
}

// status builds a reported status whose content depends on ip and uid.
func status(ip, uid string) api.ReportedStatus {
	v := ip
	return api.ReportedStatus{
		Conditions: []metav1.Condition{{Type: api.ConditionApplied, Status: metav1.ConditionTrue, Reason: "R"}},
		ResourceStatus: []api.ResourceStatus{{
			StatusFeedbacks: workv1.StatusFeedbackResult{Values: []workv1.FeedbackValue{
				{Name: "ip", Value: workv1.FieldValue{Type: workv1.String, String: &v}}}},
			Observed: api.Observed{UID: uid, Exists: true, ObservedAt: t0},
		}},
	}
}

func revisions(sts []protocol.Status) string {
	s := ""
	for _, st := range sts {
		s += fmt.Sprintf("%s@%d ", st.BundleID, st.Revision)
	}
	return s
}

func TestChangeIsSentAfterCoalesceWindow(t *testing.T) {
	h := newHarness(t)
	st := status("1.1.1.1", "u1")
	h.r.Set("b1", 3, st)
	if got := h.step(10 * time.Millisecond); len(got) != 0 {
		t.Fatalf("sent before the coalesce window ended: %s", revisions(got))
	}
	got := h.step(10 * time.Millisecond)
	if len(got) != 1 {
		t.Fatalf("got %d statuses; want 1", len(got))
	}
	s := got[0]
	if s.BundleID != "b1" || s.Generation != 3 || s.Epoch != h.r.Epoch() || s.Revision != 1 ||
		s.Hash != protocol.HashStatus(st) || protocol.HashStatus(s.Reported) != s.Hash || s.Deleted || !s.At.Equal(t0.Add(20*time.Millisecond)) {
		t.Errorf("status = %+v", s)
	}
	if h.r.Stats().Sent != 1 {
		t.Errorf("stats = %+v", h.r.Stats())
	}
}

func TestUnchangedIsNotResent(t *testing.T) {
	h := newHarness(t)
	h.r.Set("b1", 1, status("1.1.1.1", "u1"))
	sent := h.step(DefaultCoalesce)
	h.r.Ack(protocol.StatusAck{Epoch: h.r.Epoch(), BundleID: "b1", Revision: sent[0].Revision})
	for i := 0; i < 5; i++ {
		h.r.Set("b1", 1, status("1.1.1.1", "u1")) // an equal, freshly built status
		if got := h.step(time.Second); len(got) != 0 {
			t.Fatalf("unchanged status re-sent: %s", revisions(got))
		}
	}
	if got := h.r.Stats().Unchanged; got != 5 {
		t.Errorf("unchanged = %d; want 5", got)
	}
	// A new generation with the same status is a change (ObservedVersion moves).
	h.r.Set("b1", 2, status("1.1.1.1", "u1"))
	if got := h.step(DefaultCoalesce); len(got) != 1 || got[0].Generation != 2 {
		t.Fatalf("generation change: %+v", got)
	}
}

func TestChangeAndBackWithinWindowSendsNothing(t *testing.T) {
	h := newHarness(t)
	h.r.Set("b1", 1, status("1.1.1.1", "u1"))
	sent := h.step(DefaultCoalesce)
	h.r.Ack(protocol.StatusAck{Epoch: h.r.Epoch(), BundleID: "b1", Revision: sent[0].Revision})
	h.r.Set("b1", 1, status("2.2.2.2", "u1"))
	h.r.Set("b1", 1, status("1.1.1.1", "u1"))
	if got := h.step(time.Second); len(got) != 0 {
		t.Fatalf("flap within the window was reported: %s", revisions(got))
	}
}

func TestBurstIsCoalescedToLastState(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 10; i++ {
		h.r.Set("b1", 1, status(fmt.Sprintf("10.0.0.%d", i), "u1"))
		if got := h.step(time.Millisecond); len(got) != 0 {
			t.Fatalf("sent inside the burst: %s", revisions(got))
		}
	}
	got := h.step(DefaultCoalesce)
	if len(got) != 1 || got[0].Hash != protocol.HashStatus(status("10.0.0.9", "u1")) {
		t.Fatalf("got %d statuses (%s); want one of the last state", len(got), revisions(got))
	}
	if c := h.r.Stats().Coalesced; c != 9 {
		t.Errorf("coalesced = %d; want 9", c)
	}
}

func TestNewUIDIsAChange(t *testing.T) {
	h := newHarness(t)
	h.r.Set("b1", 1, status("1.1.1.1", "u1"))
	sent := h.step(DefaultCoalesce)
	h.r.Ack(protocol.StatusAck{Epoch: h.r.Epoch(), BundleID: "b1", Revision: sent[0].Revision})
	h.r.Set("b1", 1, status("1.1.1.1", "u2"))
	got := h.step(DefaultCoalesce)
	if len(got) != 1 || got[0].Reported.ResourceStatus[0].Observed.UID != "u2" || got[0].Revision <= sent[0].Revision {
		t.Fatalf("new uid: %+v", got)
	}
}

func TestResendUntilAck(t *testing.T) {
	h := newHarness(t)
	h.r.Set("b1", 1, status("1.1.1.1", "u1"))
	first := h.step(DefaultCoalesce)
	if len(first) != 1 {
		t.Fatalf("first send: %d", len(first))
	}
	if got := h.step(DefaultResendTimeout - time.Millisecond); len(got) != 0 {
		t.Fatalf("re-sent before the timeout: %s", revisions(got))
	}
	got := h.step(time.Millisecond)
	if len(got) != 1 || got[0].Revision != first[0].Revision || got[0].Hash != first[0].Hash {
		t.Fatalf("resend = %s; want the same revision %d", revisions(got), first[0].Revision)
	}
	// Acks of another epoch or an older revision settle nothing.
	h.r.Ack(protocol.StatusAck{Epoch: "other", BundleID: "b1", Revision: 99})
	h.r.Ack(protocol.StatusAck{Epoch: h.r.Epoch(), BundleID: "b1", Revision: first[0].Revision - 1})
	if got := h.step(DefaultResendTimeout); len(got) != 1 {
		t.Fatalf("after foreign/old acks: %d statuses; want a resend", len(got))
	}
	h.r.Ack(protocol.StatusAck{Epoch: h.r.Epoch(), BundleID: "b1", Revision: first[0].Revision})
	for i := 0; i < 3; i++ {
		if got := h.step(DefaultResendTimeout); len(got) != 0 {
			t.Fatalf("re-sent after ack: %s", revisions(got))
		}
	}
	if st := h.r.Stats(); st.Sent != 1 || st.Resent != 2 || st.Acked != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestNewerRevisionSupersedesUnacked(t *testing.T) {
	h := newHarness(t)
	h.r.Set("b1", 1, status("1.1.1.1", "u1"))
	a := h.step(DefaultCoalesce)
	h.r.Set("b1", 1, status("2.2.2.2", "u1"))
	b := h.step(DefaultCoalesce)
	if len(a) != 1 || len(b) != 1 || b[0].Revision <= a[0].Revision {
		t.Fatalf("a=%s b=%s", revisions(a), revisions(b))
	}
	got := h.step(DefaultResendTimeout)
	if len(got) != 1 || got[0].Revision != b[0].Revision {
		t.Fatalf("resend = %s; want only %d", revisions(got), b[0].Revision)
	}
	// A late ack of the superseded revision does not settle the newer one.
	h.r.Ack(protocol.StatusAck{Epoch: h.r.Epoch(), BundleID: "b1", Revision: a[0].Revision})
	if got := h.step(DefaultResendTimeout); len(got) != 1 || got[0].Revision != b[0].Revision {
		t.Fatalf("after old ack: %s", revisions(got))
	}
}

func TestSendFailuresThenRecoveryDeliverLatest(t *testing.T) {
	for name, resume := range map[string]bool{"resume": true, "resend tick": false} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.s.setFail(true)
			h.r.Set("b1", 1, status("1.1.1.1", "u1"))
			h.r.Set("b2", 1, status("9.9.9.9", "u1"))
			h.step(DefaultCoalesce)
			for i := 2; i <= 5; i++ {
				h.r.Set("b1", 1, status(fmt.Sprintf("%d.%d.%d.%d", i, i, i, i), "u1"))
				h.step(500 * time.Millisecond)
			}
			if st := h.r.Stats(); st.SendErrors == 0 || st.Sent != 0 {
				t.Fatalf("stats while down = %+v", st)
			}
			h.s.setFail(false)
			var got []protocol.Status
			if resume {
				h.r.Resume()
				got = h.step(0)
			} else {
				got = h.step(DefaultResendTimeout)
			}
			if len(got) != 2 {
				t.Fatalf("after recovery: %s; want b1 and b2 once each", revisions(got))
			}
			for _, s := range got {
				want := map[string]string{"b1": protocol.HashStatus(status("5.5.5.5", "u1")), "b2": protocol.HashStatus(status("9.9.9.9", "u1"))}[s.BundleID]
				if s.Hash != want {
					t.Errorf("%s delivered hash %s; want the latest %s", s.BundleID, s.Hash, want)
				}
			}
		})
	}
}

func TestRevisionsIncreaseAcrossBundles(t *testing.T) {
	h := newHarness(t)
	var all []protocol.Status
	for round := 0; round < 4; round++ {
		for b := 0; b < 5; b++ {
			h.r.Set(fmt.Sprintf("b%d", b), 1, status(fmt.Sprintf("%d.%d.0.0", round, b), "u1"))
		}
		all = append(all, h.step(DefaultCoalesce)...)
	}
	h.r.RequestStatus(nil)
	all = append(all, h.step(0)...)
	if len(all) != 25 {
		t.Fatalf("got %d statuses; want 25", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Revision <= all[i-1].Revision {
			t.Fatalf("revisions not strictly increasing: %s", revisions(all))
		}
	}
}

func TestRequestStatusResendsAsNewRevision(t *testing.T) {
	h := newHarness(t)
	h.r.Set("b1", 1, status("1.1.1.1", "u1"))
	h.r.Set("b2", 1, status("2.2.2.2", "u1"))
	sent := h.step(DefaultCoalesce)
	for _, s := range sent {
		h.r.Ack(protocol.StatusAck{Epoch: h.r.Epoch(), BundleID: s.BundleID, Revision: s.Revision})
	}
	h.r.RequestStatus([]string{"b2", "unknown"})
	got := h.step(0)
	if len(got) != 1 || got[0].BundleID != "b2" || got[0].Revision != 3 || got[0].Hash != protocol.HashStatus(status("2.2.2.2", "u1")) {
		t.Fatalf("request b2: %+v", got)
	}
	if !h.r.Handle(protocol.Message{Type: protocol.TypeStatusRequest, StatusRequest: &protocol.StatusRequest{}}) {
		t.Fatal("StatusRequest not handled")
	}
	if got := h.step(0); len(got) != 2 || got[0].Revision != 4 || got[1].Revision != 5 {
		t.Fatalf("request all: %s", revisions(got))
	}
}

func TestMarkDeleted(t *testing.T) {
	h := newHarness(t)
	h.r.Set("b1", 4, status("1.1.1.1", "u1"))
	h.step(DefaultCoalesce)
	h.r.MarkDeleted("b1", 4)
	got := h.step(0)
	if len(got) != 1 || !got[0].Deleted || got[0].Generation != 4 {
		t.Fatalf("deletion report: %+v", got)
	}
	c := got[0].Reported.Conditions
	if len(c) != 1 || c[0].Type != api.ConditionDeleted || c[0].Status != metav1.ConditionTrue || len(got[0].Reported.ResourceStatus) != 0 {
		t.Fatalf("deletion conditions: %+v", got[0].Reported)
	}
	// A late evaluation of the same generation does not resurrect it.
	h.r.Set("b1", 4, status("1.1.1.1", "u1"))
	if got := h.step(DefaultResendTimeout); len(got) != 1 || !got[0].Deleted {
		t.Fatalf("resend of deletion: %+v", got)
	}
	h.r.Ack(protocol.StatusAck{Epoch: h.r.Epoch(), BundleID: "b1", Revision: got[0].Revision})
	h.r.Set("b1", 4, status("1.1.1.1", "u1"))
	if got := h.step(DefaultResendTimeout); len(got) != 0 {
		t.Fatalf("sent after the deletion was acked: %s", revisions(got))
	}
	h.fc.Step(DefaultHeartbeat)
	h.r.runOnce(context.Background())
	if _, hbs := h.s.take(); len(hbs) != 1 || len(hbs[0].Digest) != 0 {
		t.Fatalf("digest after deletion: %+v", hbs)
	}
	// The bundle recreated under the same id (newer generation) reports again.
	h.r.Set("b1", 5, status("1.1.1.1", "u1"))
	if got := h.step(DefaultCoalesce); len(got) != 1 || got[0].Deleted || got[0].Generation != 5 {
		t.Fatalf("recreated bundle: %+v", got)
	}
}

func TestHandleIgnoresOtherMessages(t *testing.T) {
	h := newHarness(t)
	for _, m := range []protocol.Message{{Type: protocol.TypeSpec, Spec: &protocol.Spec{}}, {Type: protocol.TypeStatusAck}} {
		if h.r.Handle(m) {
			t.Errorf("Handle(%s) = true", m.Type)
		}
	}
}

func TestEpochPerReporter(t *testing.T) {
	a, b := New(&fakeSender{}), New(&fakeSender{})
	if a.Epoch() == "" || a.Epoch() == b.Epoch() {
		t.Errorf("epochs %q and %q; want distinct, non-empty", a.Epoch(), b.Epoch())
	}
	if e := New(&fakeSender{}, WithEpoch("e1")).Epoch(); e != "e1" {
		t.Errorf("WithEpoch: %q", e)
	}
	if e := New(&fakeSender{}, WithEpoch(""), WithClock(nil), WithLogger(nil)); e.Epoch() == "" || e.clock == nil || e.log == nil {
		t.Errorf("empty options replaced the defaults: epoch %q", e.Epoch())
	}
}

func TestStartSendsAndStops(t *testing.T) {
	fc := testclock.NewFakeClock(t0)
	s := &fakeSender{}
	events := make(chan SentEvent, 10)
	r := New(s, WithClock(fc), WithOnSent(func(e SentEvent) { events <- e }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()

	r.Set("b1", 1, status("1.1.1.1", "u1"))
	var ev SentEvent
	deadline := time.After(10 * time.Second)
	for got := false; !got; {
		select {
		case ev = <-events:
			got = true
		case <-deadline:
			t.Fatal("no status sent by Start")
		case <-time.After(time.Millisecond):
			if fc.HasWaiters() {
				fc.Step(5 * time.Millisecond)
			}
		}
	}
	if ev.BundleID != "b1" || ev.Revision != 1 || ev.Resend || ev.At.Before(t0.Add(DefaultCoalesce)) {
		t.Errorf("event = %+v", ev)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start = %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return after cancel")
	}
	if sts, _ := s.take(); len(sts) != 1 {
		t.Errorf("sent %d statuses; want 1", len(sts))
	}
}

func TestSendErrorPausesSending(t *testing.T) {
	h := newHarness(t)
	h.s.setFail(true)
	h.r.Set("b1", 1, status("1.1.1.1", "u1"))
	h.r.Set("b2", 1, status("2.2.2.2", "u1"))
	h.step(DefaultCoalesce)
	if got := h.r.Stats().SendErrors; got != 1 {
		t.Errorf("send errors = %d; want 1 (stop at the first failure)", got)
	}
	if next := h.r.nextDue(); !next.Equal(h.fc.Now().Add(DefaultResendTimeout)) {
		t.Errorf("next attempt at %v; want after the resend timeout %v", next, h.fc.Now().Add(DefaultResendTimeout))
	}
	h.step(DefaultResendTimeout - time.Millisecond)
	if got := h.r.Stats().SendErrors; got != 1 {
		t.Errorf("send errors = %d; want no attempt during the pause", got)
	}
}

func TestSteadyChangesAreReportedEveryWindow(t *testing.T) {
	// A bundle that never stops changing is still reported once per
	// window, not starved.
	h := newHarness(t)
	sent := 0
	for i := 0; i < 40; i++ {
		h.r.Set("b1", 1, status(fmt.Sprintf("10.0.0.%d", i), "u1"))
		sent += len(h.step(5 * time.Millisecond))
	}
	if sent < 8 || sent > 10 {
		t.Errorf("sent %d reports in 200ms of changes every 5ms; want about one per 20ms window", sent)
	}
}

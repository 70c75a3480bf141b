package hub

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

const consumer = "c1"

type harness struct {
	t   *testing.T
	st  store.Store
	h   *Hub
	reg *prometheus.Registry
	ctx context.Context
}

// newHarness returns a hub over st with short timeouts and a consumer c1.
// The background loop (Start) runs only when start is set, so tests that
// check Notify are not helped by the poll.
func newHarness(t *testing.T, st store.Store, start bool, opts ...Option) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := st.CreateConsumer(ctx, store.Consumer{Name: consumer}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	opts = append([]Option{WithResendTimeout(time.Second), WithRegisterer(reg),
		WithPollInterval(50 * time.Millisecond), WithServerID("s1")}, opts...)
	h, err := New(st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if start {
		done := make(chan error, 1)
		go func() { done <- h.Start(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return &harness{t: t, st: st, h: h, reg: reg, ctx: ctx}
}

// connect attaches agent a over a fresh pipe and sends its Hello. stop ends
// the session and waits for Attach to return.
func (x *harness) connect(a *fakeAgent) (p *protocol.Pipe, stop func()) {
	p = protocol.NewPipe(1000)
	inc := x.incarnation()
	a.mu.Lock()
	a.conn = p.Agent()
	if a.inc == "" {
		a.inc = inc // what the agent holds it took from this consumer
	}
	a.mu.Unlock()
	ctx, cancel := context.WithCancel(x.ctx)
	done := make(chan error, 1)
	go func() { done <- x.h.Attach(ctx, consumer, p.Server()) }()
	go a.run(ctx, p.Agent())
	a.hello(ctx)
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				x.t.Errorf("Attach: %v", err)
			}
		case <-time.After(5 * time.Second):
			x.t.Fatal("Attach did not return after its context ended")
		}
	}
	x.t.Cleanup(stop)
	return p, stop
}

// attach serves p's server end until the test ends, without a Hello.
func (x *harness) attach(a *fakeAgent, p *protocol.Pipe) {
	a.mu.Lock()
	a.conn = p.Agent()
	a.mu.Unlock()
	ctx, cancel := context.WithCancel(x.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = x.h.Attach(ctx, consumer, p.Server()) }()
	go a.run(ctx, p.Agent())
	x.t.Cleanup(func() { cancel(); <-done })
}

func (x *harness) bundle(id string) store.Bundle {
	x.t.Helper()
	b, err := x.st.GetBundle(x.ctx, id)
	if err != nil {
		x.t.Fatalf("get bundle %s: %v", id, err)
	}
	return b
}

func (x *harness) pending() []store.OutboxEvent {
	x.t.Helper()
	ev, err := x.st.PendingOutbox(x.ctx, consumer, 100)
	if err != nil {
		x.t.Fatal(err)
	}
	return ev
}

func (x *harness) agentState() store.AgentState {
	x.t.Helper()
	c, err := x.st.GetConsumer(x.ctx, consumer)
	if err != nil {
		x.t.Fatal(err)
	}
	return c.Agent
}

// incarnation is the consumer's record id, the Spec.Incarnation of its bundles.
func (x *harness) incarnation() string {
	x.t.Helper()
	c, err := x.st.GetConsumer(x.ctx, consumer)
	if err != nil {
		x.t.Fatal(err)
	}
	return c.ID
}

func (x *harness) gone(id string) bool {
	_, err := x.st.GetBundle(x.ctx, id)
	return errors.Is(err, store.ErrNotFound)
}

func TestAttachUnknownConsumer(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false)
	err := x.h.Attach(x.ctx, "nope", protocol.NewPipe(1).Server())
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Attach(unknown consumer): got %v; want ErrNotFound", err)
	}
}

func TestSpecDeliveredAndAcked(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		x := newHarness(t, st, false)
		createBundle(t, st, consumer, "b1")
		a := newFakeAgent(t, "e1")
		x.connect(a)

		spec := next(t, a.specs, "spec of b1")
		if spec.BundleID != "b1" || spec.Generation != 1 || spec.Deleting || len(spec.Body.Manifests) != 1 {
			t.Fatalf("spec: got %+v; want b1 generation 1 with one manifest", spec)
		}
		ack := next(t, a.acks, "status ack")
		if ack.BundleID != "b1" || ack.Epoch != "e1" || ack.Revision != 1 {
			t.Errorf("status ack: got %+v; want b1 e1 revision 1", ack)
		}
		eventually(t, "the outbox is empty", func() bool { return len(x.pending()) == 0 })
		b := x.bundle("b1")
		if b.Status.Revision != 1 || b.Status.ObservedGeneration != 1 || b.Status.SequenceID == "" {
			t.Errorf("stored status: got %+v; want revision 1, observed generation 1, a sequence id", b.Status)
		}
		if s := x.agentState(); !s.Connected || s.Epoch != "e1" || s.ServerID != "s1" || s.LastHeartbeat.IsZero() {
			t.Errorf("agent state: got %+v; want connected, epoch e1, server s1, a heartbeat time", s)
		}
		none(t, a.specs, 400*time.Millisecond, "spec after ack")
		if got := value(x.h.metrics.specs.WithLabelValues("sent")); got != 1 {
			t.Errorf("specs sent metric: got %v; want 1", got)
		}
		if got := value(x.h.metrics.sessions); got != 1 {
			t.Errorf("sessions gauge: got %v; want 1", got)
		}
	})
}

func TestNotifyDeliversPromptly(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false, WithResendTimeout(time.Hour))
	a := newFakeAgent(t, "e1")
	x.connect(a)
	eventually(t, "the session is ready", func() bool { return x.agentState().Connected })
	createBundle(t, x.st, consumer, "b1")
	x.h.Notify(consumer)
	if s := next(t, a.specs, "spec after Notify"); s.BundleID != "b1" {
		t.Fatalf("spec: got %s; want b1", s.BundleID)
	}
}

func TestPollDeliversWritesWithoutNotify(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), true, WithResendTimeout(time.Hour))
	a := newFakeAgent(t, "e1")
	x.connect(a)
	eventually(t, "the session is ready", func() bool { return x.agentState().Connected })
	createBundle(t, x.st, consumer, "b1") // as another replica would: no Notify
	if s := next(t, a.specs, "spec found by the poll"); s.BundleID != "b1" {
		t.Fatalf("spec: got %s; want b1", s.BundleID)
	}
}

func TestResendWhenAckDropped(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		x := newHarness(t, st, false, WithResendTimeout(150*time.Millisecond))
		createBundle(t, st, consumer, "b1")
		a := newFakeAgent(t, "e1")
		a.noStatus = true
		p, _ := x.connect(a)
		dropped := 0
		p.SetDropFromAgent(func(m protocol.Message) bool {
			if m.Type == protocol.TypeSpecAck && dropped < 2 {
				dropped++
				return true
			}
			return false
		})
		for i := 0; i < 3; i++ {
			if s := next(t, a.specs, "spec attempt"); s.BundleID != "b1" || s.Generation != 1 {
				t.Fatalf("attempt %d: got %+v; want b1 generation 1", i, s)
			}
		}
		eventually(t, "the outbox is empty", func() bool { return len(x.pending()) == 0 })
		drain(a.specs) // a resend may have crossed the ack
		none(t, a.specs, 500*time.Millisecond, "spec after the ack arrived")
		if got := value(x.h.metrics.specs.WithLabelValues("resent")); got < 2 {
			t.Errorf("specs resent metric: got %v; want >= 2", got)
		}
	})
}

func TestGenerationOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		x := newHarness(t, st, false)
		createBundle(t, st, consumer, "b1")
		for range 3 {
			updateBundle(t, st, "b1")
		}
		a := newFakeAgent(t, "e1")
		x.connect(a)
		if s := next(t, a.specs, "spec"); s.Generation != 4 {
			t.Fatalf("first spec: generation %d; want the current 4", s.Generation)
		}
		var last int64 = 4
		for range 5 {
			want := updateBundle(t, st, "b1").Generation
			x.h.Notify(consumer)
			for last < want {
				s := next(t, a.specs, "spec of the update")
				if s.Generation < last {
					t.Fatalf("spec generation went back: %d after %d", s.Generation, last)
				}
				last = s.Generation
			}
		}
		eventually(t, "the agent holds the last generation", func() bool { g, _ := a.holds("b1"); return g == last })
	})
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

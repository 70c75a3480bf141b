package hub

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

// TestHelloAdmission: Hellos beyond the admission rate wait their turn in
// an open session (none is refused or dropped), and are resynchronised at
// the configured rate.
func TestHelloAdmission(t *testing.T) {
	const perSecond = 5 // one Hello every 200 ms after a burst of one
	x := newHarness(t, storetest.NewSQLite(t), false, WithHelloRate(perSecond, 1))
	a := newFakeAgent(t, "e0")
	start := time.Now()
	_, _ = x.connect(a) // Hello e0 takes the burst
	epochs := []string{"e1", "e2", "e3"}
	for _, e := range epochs {
		a.send(x.ctx, protocol.Message{Type: protocol.TypeHello, Hello: &protocol.Hello{Agent: a.id, Epoch: e, Batches: 1}})
	}
	eventually(t, "the last Hello admitted", func() bool {
		c, err := x.st.GetConsumer(x.ctx, consumer)
		return err == nil && c.Agent.Epoch == "e3" && c.Agent.Connected
	})
	took := time.Since(start)
	// Three Hellos after the burst: at least 3 × 200 ms, less a margin
	// for the limiter's token accounting.
	if min := 500 * time.Millisecond; took < min {
		t.Errorf("4 Hellos resynchronised in %v; the rate allows no less than %v", took, min)
	}
	if n := histogramCount(t, x, "baton_hub_hello_admission_wait_seconds"); n != 4 {
		t.Errorf("admission histogram counts %d Hellos; want 4", n)
	}
}

func histogramCount(t *testing.T, x *harness, name string) uint64 {
	t.Helper()
	mfs, err := x.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestSpecTooLargeIsolated: a spec the transport refuses as too large (a
// limit lowered after the API accepted the bundle) does not stop the
// delivery of the consumer's other bundles queued behind it.
func TestSpecTooLargeIsolated(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false)
	a := newFakeAgent(t, "e1")
	p, _ := x.connect(a)
	eventually(t, "session ready", func() bool {
		c, err := x.st.GetConsumer(x.ctx, consumer)
		return err == nil && c.Agent.Connected
	})
	p.SetMaxBytes(4 << 10)
	blob := strings.Repeat("x", 8<<10)
	if _, err := x.st.CreateBundle(x.ctx, store.Bundle{ID: "a-big", ConsumerName: consumer, Spec: api.BundleSpec{Manifests: []json.RawMessage{
		json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big","namespace":"default"},"data":{"b":"` + blob + `"}}`)}}}); err != nil {
		t.Fatal(err)
	}
	var small []string
	for i := range 5 {
		small = append(small, createBundle(t, x.st, consumer, fmt.Sprintf("b-small-%d", i)).ID)
	}
	x.h.Notify(consumer)
	for _, id := range small {
		eventually(t, id+" delivered behind the oversized spec", func() bool { _, ok := a.holds(id); return ok })
	}
	if _, ok := a.holds("a-big"); ok {
		t.Fatal("the oversized spec arrived")
	}
}

package hub

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

func isOrphanSpec(s protocol.Spec) bool {
	return s.Deleting && s.Body.DeleteOption != nil &&
		s.Body.DeleteOption.PropagationPolicy == workv1.DeletePropagationPolicyTypeOrphan
}

// An agent that returns holding a bundle finalized without it is told to
// drop it and leave its objects (an Orphan delete), and the Orphan is
// forgotten once it confirms; a plain unknown held bundle is still deleted.
func TestOrphanedBundleDroppedWhenAgentReturns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		x := newHarness(t, st, false)
		b := createBundle(t, st, consumer, "b1")
		a := newFakeAgent(t, "e1")
		a.goneOnDelete = true
		a.held["b1"], a.held["unknown"] = b.Generation, 1
		a.inc = x.incarnation()
		if err := st.AckOutbox(x.ctx, consumer, b.ID, b.Generation); err != nil {
			t.Fatal(err)
		}
		o, err := st.OrphanBundle(x.ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		x.connect(a)
		got := map[string]protocol.Spec{}
		for len(got) < 2 {
			s := next(t, a.specs, "specs after Hello")
			got[s.BundleID] = s
		}
		if s := got["b1"]; !isOrphanSpec(s) || s.Generation != o.Generation {
			t.Fatalf("spec of the orphaned bundle = %+v; want an Orphan delete at generation %d", s, o.Generation)
		}
		if s := got["unknown"]; !s.Deleting || isOrphanSpec(s) {
			t.Fatalf("spec of an unknown held bundle = %+v; want a plain delete", s)
		}
		eventually(t, "the Orphan is forgotten", func() bool {
			left, err := st.Orphans(x.ctx, consumer)
			return err == nil && len(left) == 0 && len(x.pending()) == 0
		})
	})
}

// An agent connected while its bundle is orphaned (its delete stuck) is
// told at once; an Orphan of a bundle the agent does not hold is forgotten
// at its next Hello.
func TestOrphanWhileConnected(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		x := newHarness(t, st, true)
		a := newFakeAgent(t, "e1")
		a.stuckDeletes = true
		x.connect(a)
		b := createBundle(t, st, consumer, "b1")
		x.h.Notify(consumer)
		next(t, a.specs, "the create")
		if _, err := st.DeleteBundle(x.ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		x.h.Notify(consumer)
		if s := next(t, a.specs, "the delete"); !s.Deleting || isOrphanSpec(s) {
			t.Fatalf("delete spec %+v", s)
		}
		a.stuckDeletes = false
		a.goneOnDelete = true
		o, err := st.OrphanBundle(x.ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		x.h.Notify(consumer)
		for {
			s := next(t, a.specs, "the Orphan delete")
			if isOrphanSpec(s) {
				if s.Generation != o.Generation {
					t.Fatalf("Orphan delete at %d; want %d", s.Generation, o.Generation)
				}
				break
			}
		}
		eventually(t, "the Orphan is forgotten", func() bool {
			left, err := st.Orphans(x.ctx, consumer)
			return err == nil && len(left) == 0 && len(x.pending()) == 0
		})

		// Not held: forgotten at the next Hello, nothing sent.
		c := createBundle(t, st, consumer, "never-delivered")
		if _, err := st.OrphanBundle(x.ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		a2 := newFakeAgent(t, "e2")
		drain(a.specs)
		x.connect(a2)
		eventually(t, "the Orphan of a bundle the agent does not hold is forgotten", func() bool {
			left, err := st.Orphans(x.ctx, consumer)
			return err == nil && len(left) == 0
		})
	})
}

// The agent of a decommissioned consumer is refused with an error that says
// when and what to do; a connected one loses its session at its next
// heartbeat.
func TestDecommissionedConsumerRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		x := newHarness(t, st, false)
		a := newFakeAgent(t, "e1")
		p := protocol.NewPipe(100)
		done := make(chan error, 1)
		go func() { done <- x.h.Attach(x.ctx, consumer, p.Server()) }()
		a.conn = p.Agent()
		go a.run(x.ctx, p.Agent())
		a.hello(x.ctx)
		next(t, a.sessions, "the session answer")
		createBundle(t, st, consumer, "b1")
		d, err := st.DecommissionConsumer(x.ctx, consumer)
		if err != nil {
			t.Fatal(err)
		}
		a.heartbeat(x.ctx)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Attach of the session ended by the decommission: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the session of a decommissioned consumer did not end at its heartbeat")
		}
		err = x.h.Attach(x.ctx, consumer, protocol.NewPipe(1).Server())
		if !errors.Is(err, ErrDecommissioned) {
			t.Fatalf("Attach after decommission: %v; want ErrDecommissioned", err)
		}
		for _, want := range []string{"decommissioned at " + d.At.Format(time.RFC3339), "1 resource bundles",
			"?cascade=orphan", "create the consumer again"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q lacks %q", err, want)
			}
		}
		if _, err := st.GetConsumer(x.ctx, consumer); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the refused connect re-created the consumer: %v", err)
		}
	})
}

// Delete storms never starve others (Maestro #562): 2,000 deletes queued
// for one consumer that its agent does not confirm, then one create: the
// create is delivered within a bound far below what the backlog takes.
func TestDeleteStormDoesNotStarveCreate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		const n = 2000
		x := newHarness(t, st, true)
		a := newFakeAgent(t, "e1")
		a.specs = make(chan protocol.Spec, 4*n)
		a.stuckDeletes = true
		a.inc = x.incarnation()
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("storm-%04d", i)
		}
		parallel(t, ids, func(id string) error {
			b, err := st.CreateBundle(x.ctx, store.Bundle{ID: id, ConsumerName: consumer})
			if err == nil {
				a.mu.Lock()
				a.held[id] = b.Generation
				a.mu.Unlock()
				err = st.AckOutbox(x.ctx, consumer, id, b.Generation)
			}
			if err == nil {
				// Reported already: the Hello asks for no status.
				rs := statusFor(b.Generation)
				_, _, err = st.ApplyStatus(x.ctx, store.StatusUpdate{ConsumerName: consumer, BundleID: id,
					AgentEpoch: a.epoch, AgentRevision: 1, ObservedGeneration: b.Generation, Reported: rs,
					Hash: protocol.HashStatus(rs), SequenceID: "1", At: time.Now()})
			}
			return err
		})
		x.connect(a)
		next(t, a.sessions, "the session answer")
		parallel(t, ids, func(id string) error { _, err := st.DeleteBundle(x.ctx, id); return err })
		x.h.Notify(consumer)
		eventually(t, "the first deletes are sent", func() bool { return len(a.specs) > 0 })

		start := time.Now()
		createBundle(t, st, consumer, "the-create")
		x.h.Notify(consumer)
		deadline := time.After(10 * time.Second)
		for {
			select {
			case s := <-a.specs:
				if s.BundleID != "the-create" {
					continue
				}
				took := time.Since(start)
				t.Logf("create delivered %v after it was written, behind %d unconfirmed deletes", took, n)
				if took > 3*time.Second {
					t.Fatalf("create delivered after %v behind the delete storm; want < 3 s", took)
				}
				if pend, _ := st.PendingOutboxQuery(x.ctx, store.OutboxQuery{Consumer: consumer, Op: store.OpDelete}); len(pend) != n {
					t.Fatalf("%d deletes pending; want all %d still unconfirmed", len(pend), n)
				}
				return
			case <-deadline:
				ups, _ := st.PendingOutboxQuery(x.ctx, store.OutboxQuery{Consumer: consumer, Op: store.OpUpsert})
				t.Logf("upserts pending %+v, specs sent %v", ups, testutilCount(x))
				t.Fatalf("create not delivered within 10 s behind %d unconfirmed deletes", n)
			}
		}
	})
}

// parallel runs fn for every id with a few goroutines (writes batch).
func parallel(t *testing.T, ids []string, fn func(id string) error) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	ch := make(chan string)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ch {
				if err := fn(id); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, id := range ids {
		ch <- id
	}
	close(ch)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func testutilCount(x *harness) string {
	mfs, _ := x.reg.Gather()
	out := ""
	for _, mf := range mfs {
		if mf.GetName() == "baton_hub_specs_sent_total" {
			for _, m := range mf.Metric {
				out += fmt.Sprintf("%v=%v ", m.Label, m.Counter.GetValue())
			}
		}
	}
	return out
}

// Maestro's metric names for the hub's quantities: first status latency,
// status event processing, the Hello's spec resync.
func TestMaestroHubMetrics(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), true)
	a := newFakeAgent(t, "e1")
	x.connect(a)
	createBundle(t, x.st, consumer, "b1")
	x.h.Notify(consumer)
	eventually(t, "the first status is stored", func() bool { return x.bundle("b1").Status.Revision > 0 })
	counts := map[string]uint64{}
	mfs, err := x.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			if h := m.GetHistogram(); h != nil {
				counts[mf.GetName()] += h.GetSampleCount()
			}
		}
	}
	for _, name := range []string{"resource_first_status_latency_seconds", "resource_status_event_processing_latency_seconds",
		"resources_spec_resync_duration_seconds"} {
		if counts[name] == 0 {
			t.Errorf("%s has no sample", name)
		}
	}
}

package hub

import (
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// TestResyncOtherIncarnation: the server's database was reset, so bundle X
// restarted at generation 1 while the agent holds generation 5 taken under
// the consumer's previous incarnation. The Hello's resync sends X at
// generation 1 in the current incarnation (the generations do not compare),
// a held bundle of unknown incarnation (an old record) is sent too, and a
// bundle held under the old incarnation that the store lacks is deleted.
// Later generations of X are delivered: the old generation 5 does not
// count as held.
func TestResyncOtherIncarnation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		x := newHarness(t, st, false)
		inc := x.incarnation()
		if inc == "" {
			t.Fatal("consumer has no record id")
		}
		createBundle(t, st, consumer, "x")
		createBundle(t, st, consumer, "legacy")
		createBundle(t, st, consumer, "same")
		a := newFakeAgent(t, "e1")
		a.held["x"], a.incs["x"] = 5, "old"
		a.held["legacy"], a.incs["legacy"] = 1, "" // recorded before incarnations
		a.held["gone"], a.incs["gone"] = 3, "old"
		a.held["same"] = 1 // under the current incarnation (the default)
		x.connect(a)

		got := map[string]protocol.Spec{}
		for range 3 {
			s := next(t, a.specs, "resync spec")
			got[s.BundleID] = s
		}
		if s, ok := got["x"]; !ok || s.Generation != 1 || s.Deleting || s.Incarnation != inc {
			t.Errorf("x: got %+v; want generation 1 of incarnation %s", s, inc)
		}
		if s, ok := got["legacy"]; !ok || s.Generation != 1 || s.Deleting || s.Incarnation != inc {
			t.Errorf("legacy: got %+v; want generation 1 of incarnation %s", s, inc)
		}
		if s, ok := got["gone"]; !ok || s.Generation != 3 || !s.Deleting || s.Incarnation != inc {
			t.Errorf("gone: got %+v; want a deletion at generation 3 of incarnation %s", s, inc)
		}
		eventually(t, "x's status of generation 1 is stored", func() bool {
			return x.bundle("x").Status.ObservedGeneration == 1
		})
		eventually(t, "nothing pending", func() bool { return len(x.pending()) == 0 })
		none(t, a.specs, 300*time.Millisecond, "spec after the resync settled")

		updateBundle(t, st, "x")
		x.h.Notify(consumer)
		s := next(t, a.specs, "x at generation 2")
		if s.BundleID != "x" || s.Generation != 2 || s.Incarnation != inc {
			t.Fatalf("got %+v; want x at generation 2 of incarnation %s", s, inc)
		}
		eventually(t, "the agent holds x at generation 2", func() bool { g, _ := a.holds("x"); return g == 2 })
	})
}

// TestSpecsCarryIncarnation: a spec delivered from the outbox names the
// consumer's incarnation, and the consumer's incarnation is its record id.
func TestSpecsCarryIncarnation(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false)
	a := newFakeAgent(t, "e1")
	x.connect(a)
	eventually(t, "the agent is connected", func() bool { return x.agentState().Connected })
	createBundle(t, x.st, consumer, "b1")
	x.h.Notify(consumer)
	s := next(t, a.specs, "spec of b1")
	if want := x.incarnation(); s.Incarnation != want {
		t.Fatalf("spec incarnation: got %q; want the consumer id %q", s.Incarnation, want)
	}
}

// TestResyncRestoredStore: the store was restored from a backup, so the
// consumer record (the incarnation) is the same but bundle x went back from
// generation 5 to 1. The resync sends generation 1 under an incarnation
// other than the consumer's, so the agent takes it, and so are later
// generations of that session; the next Hello brings x back to the
// consumer's incarnation.
func TestResyncRestoredStore(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false)
	inc := x.incarnation()
	createBundle(t, x.st, consumer, "x")
	a := newFakeAgent(t, "e1")
	a.held["x"] = 5 // under the consumer's incarnation (the default)
	_, stop := x.connect(a)
	s := next(t, a.specs, "resync spec")
	if s.BundleID != "x" || s.Generation != 1 || s.Incarnation == inc || s.Incarnation == "" {
		t.Fatalf("got %+v; want x at generation 1 under an incarnation other than %q", s, inc)
	}
	restored := s.Incarnation
	eventually(t, "the agent holds x at generation 1", func() bool { g, _ := a.holds("x"); return g == 1 })
	eventually(t, "nothing pending", func() bool { return len(x.pending()) == 0 })
	updateBundle(t, x.st, "x")
	x.h.Notify(consumer)
	if s := next(t, a.specs, "x at generation 2"); s.Generation != 2 || s.Incarnation != restored {
		t.Fatalf("got %+v; want x at generation 2 of incarnation %q", s, restored)
	}
	eventually(t, "the agent holds x at generation 2", func() bool { g, _ := a.holds("x"); return g == 2 })
	stop()
	drain(a.specs)

	x.connect(a)
	if s := next(t, a.specs, "resync spec"); s.Generation != 2 || s.Incarnation != inc {
		t.Fatalf("got %+v; want x at generation 2 of incarnation %q", s, inc)
	}
	eventually(t, "nothing pending", func() bool { return len(x.pending()) == 0 })
	none(t, a.specs, 300*time.Millisecond, "spec after the resync settled")
}

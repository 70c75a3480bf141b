package chaos

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/internal/doctor"
	"github.com/baton-dev/baton/pkg/api"
)

// sampler lists every bundle over REST continuously and checks each Fresh
// ReadOnly entry against the history of the live object it names: no
// sample may show a value (or existence) the object had lost more than
// bound before the sample's request began. It also remembers, per sample,
// whether any bundle was Stale, for the time to converge after a fault.
type sampler struct {
	w          *world
	h          *history
	bound      time.Duration
	samples    int
	violations []string
	logged     map[string]bool // bundles whose first violation was logged
	// rounds are the sample times at which no bundle was Stale.
	allFresh []time.Time
	// worstLag is the longest a live change took to show in a sample.
	worstLag time.Duration
}

func (s *sampler) run(ctx context.Context, every time.Duration) {
	for ctx.Err() == nil {
		t0 := time.Now()
		all, err := s.w.cli().AllBundles(ctx, client.ListOptions{})
		if err == nil {
			s.samples++
			s.check(t0, all)
		}
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
}

func (s *sampler) check(t0 time.Time, all []api.ResourceBundle) {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	fresh := true
	for i := range all {
		b := &all[i]
		if b.Status == nil || b.Status.Freshness == nil || b.Status.Freshness.State != api.FreshnessFresh {
			fresh = false
			continue
		}
		if age := time.Duration(b.Status.Freshness.AgeSeconds * float64(time.Second)); age > s.bound {
			s.violate(b, fmt.Sprintf("%s sample: bundle %s/%s Fresh with data %v old (bound %v)",
				t0.Format("15:04:05.000"), b.ConsumerName, b.Name, age.Round(time.Millisecond), s.bound))
		}
		for _, rs := range b.Status.ResourceStatus {
			o := s.h.live[rs.Observed.UID]
			if !rs.Observed.Exists || o == nil {
				continue // an object the runner did not create (SSA) or not yet recorded
			}
			if !o.deleted.IsZero() && t0.Sub(o.deleted) > s.bound {
				s.violate(b, fmt.Sprintf("%s sample: bundle %s/%s Fresh shows %s uid %s existing (observedAt %s, rv %s, confirmedAt %s); deleted at %s",
					t0.Format("15:04:05.000"), b.ConsumerName, b.Name, o.key, rs.Observed.UID, rs.Observed.ObservedAt.Format("15:04:05.000"),
					rs.Observed.ResourceVersion, confirmedAt(b), o.deleted.Format("15:04:05.000")))
				continue
			}
			for _, fv := range rs.StatusFeedbacks.Values {
				if fv.Name != "v" || fv.Value.String == nil {
					continue
				}
				s.checkValue(t0, b, o, *fv.Value.String, rs.Observed.ObservedAt)
			}
		}
	}
	if fresh {
		s.allFresh = append(s.allFresh, t0)
	}
}

func confirmedAt(b *api.ResourceBundle) string {
	if f := b.Status.Freshness; f != nil && f.ConfirmedAt != nil {
		return f.ConfirmedAt.Format("15:04:05.000")
	}
	return "never"
}

func (s *sampler) checkValue(t0 time.Time, b *api.ResourceBundle, o *liveObject, v string, observedAt time.Time) {
	var last *liveValue
	for i := range o.values {
		if o.values[i].value == v {
			last = &o.values[i]
		}
	}
	if last == nil {
		return // a value whose write was not acknowledged
	}
	if !last.end.IsZero() && t0.Sub(last.end) > s.bound {
		s.violate(b, fmt.Sprintf("%s sample: bundle %s/%s Fresh shows %s v=%q (observedAt %s, confirmedAt %s); replaced at %s",
			t0.Format("15:04:05.000"), b.ConsumerName, b.Name, o.key, v, observedAt.Format("15:04:05.000"), confirmedAt(b),
			last.end.Format("15:04:05.000")))
	}
}

// violate records a violation, logging the first of each bundle at once
// (with the fault log, that dates it).
func (s *sampler) violate(b *api.ResourceBundle, msg string) {
	if s.logged == nil {
		s.logged = map[string]bool{}
	}
	if !s.logged[b.ID] {
		s.logged[b.ID] = true
		s.w.t.Logf("violation: %s", msg)
	}
	s.violations = append(s.violations, msg)
}

// convergedAfter returns how long after t the sampler first saw every bundle Fresh.
func (s *sampler) convergedAfter(t time.Time) (time.Duration, bool) {
	i := sort.Search(len(s.allFresh), func(i int) bool { return !s.allFresh[i].Before(t) })
	if i == len(s.allFresh) {
		return 0, false
	}
	return s.allFresh[i].Sub(t), true
}

// verdict is the independent checker's finding after the faults stopped.
type verdict struct {
	lost  []string
	stale []string
}

func (v verdict) ok() bool { return len(v.lost) == 0 && len(v.stale) == 0 }

// check compares the history with REST and REST with the live cluster.
func check(ctx context.Context, w *world, h *history, workers []*worker) verdict {
	var v verdict
	all, err := w.cli().AllBundles(ctx, client.ListOptions{})
	if err != nil {
		v.stale = append(v.stale, "listing bundles: "+err.Error())
		return v
	}
	for _, k := range workers {
		for _, s := range k.slots {
			if s.state == unknown {
				k.resolve(ctx, s)
			}
		}
	}
	h.mu.Lock()
	v.lost = append(v.lost, h.lost...)
	// Attribute every bundle REST lists to its slot: REST slots by name,
	// gRPC slots by the ids they used. A bundle of no slot is one no
	// acknowledged write made.
	type slotKey struct{ consumer, key string }
	owner := map[slotKey]*slot{}
	for _, k := range workers {
		for _, s := range k.slots {
			if !s.grpc {
				owner[slotKey{k.a.consumer, s.name}] = s
			}
			for id := range s.ids {
				owner[slotKey{k.a.consumer, id}] = s
			}
		}
	}
	bySlot := map[*slot][]*api.ResourceBundle{}
	for i := range all {
		b := &all[i]
		s := owner[slotKey{b.ConsumerName, b.Name}]
		if s == nil {
			v.lost = append(v.lost, fmt.Sprintf("%s/%s: bundle %s (version %d) that no write of the workload made", b.ConsumerName, b.Name, b.ID, b.Version))
			continue
		}
		bySlot[s] = append(bySlot[s], b)
	}
	var live []api.ResourceBundle
	for _, k := range workers {
		for _, s := range k.slots {
			key := k.a.consumer + "/" + s.name
			var cur *api.ResourceBundle
			for _, b := range bySlot[s] {
				switch {
				case s.state == present && b.ID == s.id && b.DeletedAt == nil:
					cur = b
				case s.deleted[b.ID] && b.DeletedAt == nil:
					v.lost = append(v.lost, fmt.Sprintf("%s: bundle %s resurrected after an acknowledged delete", key, b.ID))
				case s.deleted[b.ID]:
					v.stale = append(v.stale, fmt.Sprintf("%s: bundle %s still deleting", key, b.ID))
				default:
					v.lost = append(v.lost, fmt.Sprintf("%s: bundle %s (version %d) that no acknowledged write made", key, b.ID, b.Version))
				}
			}
			switch {
			case s.state == unknown:
				v.stale = append(v.stale, key+": outcome of the last write still unknown")
			case s.state == present && cur == nil:
				v.lost = append(v.lost, fmt.Sprintf("%s: acknowledged bundle %s version %d missing", key, s.id, s.version))
			case s.state == present && (cur.Version != s.version || manifestValue(cur, s.readOnly) != s.value):
				v.lost = append(v.lost, fmt.Sprintf("%s: acknowledged version %d value %q, REST has version %d value %q",
					key, s.version, s.value, cur.Version, manifestValue(cur, s.readOnly)))
			case s.state == present:
				live = append(live, *cur)
				if cur.Status == nil || cur.Status.ObservedVersion != cur.Version {
					v.stale = append(v.stale, fmt.Sprintf("%s: status not at version %d", key, cur.Version))
				} else if st := cur.Status.Freshness; st == nil || st.State != api.FreshnessFresh {
					v.stale = append(v.stale, fmt.Sprintf("%s: not Fresh: %+v", key, st))
				}
			}
		}
	}
	h.mu.Unlock()
	g, err := doctor.NewClusterGetter(kubeCfg)
	if err != nil {
		v.stale = append(v.stale, err.Error())
		return v
	}
	res := doctor.Check(ctx, g, live)
	for _, m := range res.Mismatches {
		v.stale = append(v.stale, fmt.Sprintf("%s/%s: %s %s reported %s, live %s", m.Consumer, m.Bundle, m.Object, m.Field, m.Reported, m.Live))
	}
	for _, e := range res.Errors {
		v.stale = append(v.stale, e.String())
	}
	v.stale = append(v.stale, orphans(ctx, w, workers)...)
	return v
}

// orphans lists ServerSideApply objects in the cluster that no present
// bundle owns, and owned ones whose live value is not the bundle's.
func orphans(ctx context.Context, w *world, workers []*worker) []string {
	var out []string
	for _, k := range workers {
		want := map[string]string{}
		for _, s := range k.slots {
			if !s.readOnly && s.state == present {
				want[s.object] = s.value
			}
		}
		list, err := w.kube.CoreV1().ConfigMaps(k.a.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			out = append(out, err.Error())
			continue
		}
		seen := map[string]bool{}
		for _, cm := range list.Items {
			if !strings.HasPrefix(cm.Name, ssaPrefix) {
				continue
			}
			seen[cm.Name] = true
			v, ok := want[cm.Name]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("%s/%s: object no bundle owns", k.a.ns, cm.Name))
			case cm.Data["v"] != v:
				out = append(out, fmt.Sprintf("%s/%s: live v=%q, bundle wants %q", k.a.ns, cm.Name, cm.Data["v"], v))
			}
		}
		for name := range want {
			if !seen[name] {
				out = append(out, fmt.Sprintf("%s/%s: bundle's object missing", k.a.ns, name))
			}
		}
	}
	return out
}

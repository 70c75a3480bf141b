package fleet

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/pkg/api"
)

// tracker matches changes with what the watch stream shows. A change is
// seen when REST shows its value or a later one of the same bundle (the
// agent coalesces changes closer than its window, as a real agent does).
type tracker struct {
	mu       sync.Mutex
	open     map[string][]change // bundle id → changes not seen yet, oldest first
	latency  []float64           // seconds, one per seen change
	made     int64
	seen     int64
	lastSeen map[string]int64 // bundle id → newest value REST showed
}

type change struct {
	value int64
	at    time.Time
}

func newTracker() *tracker {
	return &tracker{open: map[string][]change{}, lastSeen: map[string]int64{}}
}

func (t *tracker) changed(id string, v int64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.made++
	if t.lastSeen[id] >= v {
		// Shown already (the watch raced the bookkeeping).
		t.seen++
		t.latency = append(t.latency, 0)
		return
	}
	t.open[id] = append(t.open[id], change{value: v, at: at})
}

// shown records that REST showed value v for bundle id at now.
func (t *tracker) shown(id string, v int64, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if v > t.lastSeen[id] {
		t.lastSeen[id] = v
	}
	cs := t.open[id]
	n := 0
	for n < len(cs) && cs[n].value <= v {
		t.latency = append(t.latency, now.Sub(cs[n].at).Seconds())
		n++
	}
	t.seen += int64(n)
	if n == len(cs) {
		delete(t.open, id)
	} else {
		t.open[id] = cs[n:]
	}
}

func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, cs := range t.open {
		n += len(cs)
	}
	return n
}

// counts returns changes made, seen, and not seen (lost, once settled).
func (t *tracker) counts() (made, seen, lost int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.made, t.seen, t.made - t.seen
}

// quantiles returns p50, p99 and max of the change → REST latency.
func (t *tracker) quantiles() (p50, p99, maxv float64) {
	t.mu.Lock()
	l := slices.Clone(t.latency)
	t.mu.Unlock()
	if len(l) == 0 {
		return 0, 0, 0
	}
	slices.Sort(l)
	q := func(p float64) float64 { return l[min(len(l)-1, int(p*float64(len(l))))] }
	return q(0.50), q(0.99), l[len(l)-1]
}

// feedbackOf returns the simulated feedback value REST shows for a bundle.
func feedbackOf(b *api.ResourceBundle) (int64, bool) {
	if b.Status == nil || len(b.Status.ResourceStatus) == 0 {
		return 0, false
	}
	for _, v := range b.Status.ResourceStatus[0].StatusFeedbacks.Values {
		if v.Name == FeedbackName && v.Value.String != nil {
			var n int64
			if _, err := fmt.Sscanf(*v.Value.String, "v%d", &n); err == nil {
				return n, true
			}
		}
	}
	return 0, false
}

// watch follows the REST watch stream from now on and feeds the tracker.
func (r *run) watch(ctx context.Context) error {
	ch, err := r.c.Watch(ctx, client.WatchOptions{Since: client.FromNow, Resume: true,
		Search: "consumer_name like " + client.Quote(r.o.Prefix+"-%")})
	if err != nil {
		return fmt.Errorf("fleet: watch: %w", err)
	}
	go func() {
		for ev := range ch {
			if ev.Err != nil {
				r.o.Logger.Warn("fleet: watch ended", "err", ev.Err)
				continue
			}
			if v, ok := feedbackOf(&ev.Object); ok {
				r.track.shown(ev.Object.ID, v, time.Now())
			}
		}
	}()
	return nil
}

// snapshot lists every bundle of the run's consumers.
func (r *run) snapshot(ctx context.Context) ([]api.ResourceBundle, error) {
	return r.c.AllBundles(ctx, client.ListOptions{Size: 1000,
		Search: "consumer_name like " + client.Quote(r.o.Prefix+"-%")})
}

// converged counts the bundles whose REST value differs from the simulated
// object's, and those not Fresh.
func (r *run) converged(bs []api.ResourceBundle) (wrong int64, stale int) {
	r.staleWhy = map[string]int{}
	seen := 0
	for i := range bs {
		b := &bs[i]
		a := r.byID[b.ID]
		if a == nil {
			continue
		}
		seen++
		want, held := a.valueOf(b.ID)
		got, ok := feedbackOf(b)
		if !held || !ok || got != want {
			wrong++
		}
		if b.Status == nil || b.Status.Freshness == nil || b.Status.Freshness.State != api.FreshnessFresh {
			stale++
			reason := "NoStatus"
			if b.Status != nil && b.Status.Freshness != nil {
				reason = b.Status.Freshness.Reason
			}
			r.staleWhy[reason]++
		}
	}
	missing := len(r.ids) - seen
	return wrong + int64(missing), stale + missing
}

// waitConverged waits until every bundle shows its object's value and is
// Fresh, listing at most every two seconds.
func (r *run) waitConverged(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		bs, err := r.snapshot(ctx)
		if err == nil {
			wrong, stale := r.converged(bs)
			if wrong == 0 && stale == 0 {
				return nil
			}
			r.progress("%d bundles not showing their value, %d not Fresh %v", wrong, stale, r.staleWhy)
			if time.Now().After(deadline) {
				return fmt.Errorf("%d bundles not showing their value and %d not Fresh after %s", wrong, stale, limit)
			}
		} else if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// check is the end-of-run verdict: bundles whose REST value is wrong, and
// bundles not Fresh, after waiting up to the settle time for both to be 0.
func (r *run) check(ctx context.Context) (wrong int64, stale int, err error) {
	deadline := time.Now().Add(r.o.Settle)
	for {
		bs, err := r.snapshot(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("fleet: final list: %w", err)
		}
		wrong, stale = r.converged(bs)
		if (wrong == 0 && stale == 0) || time.Now().After(deadline) {
			return wrong, stale, nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

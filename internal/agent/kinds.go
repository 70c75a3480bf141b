package agent

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/baton-dev/baton/internal/agent/apply"
)

// Backoff of the discovery lookups of a kind the cluster does not serve:
// the first after kindRetryBase, doubling up to kindRetryMax, so that a
// bundle waiting for its CRD is applied at most kindRetryMax after the
// API server starts serving the kind.
const (
	kindRetryBase = 250 * time.Millisecond
	kindRetryMax  = 2 * time.Second
)

// kindWait is the backoff state of one kind not served yet.
type kindWait struct {
	delay time.Duration
	next  time.Time
}

// awaitKinds re-applies the bundles some manifest of which names a kind
// the cluster did not serve (a CRD not created or not established yet) as
// soon as discovery serves it. Each missing kind is looked up with its own
// backoff (one request to its group version per lookup, whatever the
// number of bundles waiting for it).
func (a *Agent) awaitKinds(ctx context.Context) {
	waits := map[schema.GroupVersionKind]*kindWait{}
	for {
		now := a.opts.Clock.Now()
		pending := a.unknownKinds()
		next := now.Add(kindRetryMax)
		for gvk, ids := range pending {
			w := waits[gvk]
			if w == nil {
				w = &kindWait{delay: kindRetryBase, next: now.Add(kindRetryBase)}
				waits[gvk] = w
			}
			if now.Before(w.next) {
				next = earliest(next, w.next)
				continue
			}
			if a.served(gvk) {
				a.log.Info("agent: kind served now; applying the bundles waiting for it", "kind", gvk.String(), "bundles", len(ids))
				delete(waits, gvk)
				a.reapply(ids)
				continue
			}
			w.delay = min(w.delay*2, kindRetryMax)
			w.next = now.Add(w.delay)
			next = earliest(next, w.next)
		}
		for gvk := range waits {
			if _, ok := pending[gvk]; !ok {
				delete(waits, gvk)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-a.opts.Clock.After(max(next.Sub(a.opts.Clock.Now()), kindRetryBase/5)):
		}
	}
}

// unknownKinds returns, per kind not served at the last apply, the
// bundles waiting for it.
func (a *Agent) unknownKinds() map[schema.GroupVersionKind][]string {
	out := map[schema.GroupVersionKind][]string{}
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, b := range a.bundles {
		if b.deleting || b.needApply {
			continue // an apply is due anyway
		}
		for _, r := range b.results {
			if r.Outcome == apply.Failed && r.Reason == apply.ReasonUnknownKind {
				out[r.GVK] = append(out[r.GVK], id)
			}
		}
	}
	return out
}

// served asks discovery whether the cluster serves gvk.
func (a *Agent) served(gvk schema.GroupVersionKind) bool {
	list, err := a.disc.ServerResourcesForGroupVersion(gvk.GroupVersion().String())
	if err != nil {
		if !apierrors.IsNotFound(err) {
			a.log.Debug("agent: discovery failed", "groupVersion", gvk.GroupVersion().String(), "err", err)
		}
		return false
	}
	for _, r := range list.APIResources {
		if r.Kind == gvk.Kind {
			return true
		}
	}
	return false
}

// reapply schedules the bundles ids for an apply at once.
func (a *Agent) reapply(ids []string) {
	a.mu.Lock()
	for _, id := range ids {
		if b := a.bundles[id]; b != nil && !b.deleting {
			b.needApply = true
		}
	}
	a.mu.Unlock()
	for _, id := range ids {
		a.queue.Forget(id)
		a.queue.Add(id)
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

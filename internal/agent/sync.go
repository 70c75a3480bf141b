package agent

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/agent/apply"
	"github.com/baton-dev/baton/internal/agent/observe"
	"github.com/baton-dev/baton/internal/evaluate"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

// next says what the queue does with a bundle after a sync.
type next int

const (
	done  next = iota // nothing left to do
	again             // sync again at once (drift found, desired state moved)
	retry             // sync again after the bundle's backoff
)

// sync converges one bundle and reports its status.
func (a *Agent) sync(ctx context.Context, id string) next {
	a.mu.Lock()
	b := a.bundles[id]
	if b == nil {
		a.mu.Unlock()
		return done
	}
	gen, inc, deleting, opt, meta, spec := b.gen, b.inc, b.deleting, b.deleteOpt, b.meta, b.spec
	mustApply := !deleting && (b.needApply || b.appliedGen != b.gen)
	checkDrift := b.dirty && !mustApply
	seeded := b.seeded && !deleting
	revive := b.revive && !deleting
	reread := b.reread && !deleting && !seeded
	b.dirty = false
	if reread {
		b.reread = false
	}
	if revive {
		b.revive = false
	}
	a.mu.Unlock()
	if revive {
		// After the removal of its previous life was reported (by this
		// worker: one per bundle at a time), so that is not undone.
		a.reporter.Revive(id)
	}

	if deleting {
		return a.syncDelete(ctx, id, apply.Version{Incarnation: inc, Generation: gen}, opt)
	}
	if seeded {
		return a.syncSeeded(ctx, id)
	}
	result := done
	if mustApply {
		result = a.applyBundle(ctx, id, apply.Version{Incarnation: inc, Generation: gen}, meta, spec)
		if result == again {
			return again
		}
	}
	reported, drift := a.evaluateBundle(ctx, id, evalOptions{drift: checkDrift, reread: reread})
	if reread {
		// A new revision even when nothing changed: the server asked.
		a.reporter.RequestStatus([]string{id})
		if !reported {
			a.log.Debug("agent: status requested before the bundle could be evaluated", "bundle", id)
		}
	}
	if drift {
		a.metrics.driftReapplies.Inc()
		a.mu.Lock()
		if b := a.bundles[id]; b != nil && b.gen == gen {
			b.needApply = true
		}
		a.mu.Unlock()
		return again
	}
	return result
}

// applyBundle applies version v and acknowledges it once recorded.
func (a *Agent) applyBundle(ctx context.Context, id string, v apply.Version, meta api.ObjectMeta, spec api.BundleSpec) next {
	gen := v.Generation
	res, err := a.applier.ApplyVersion(ctx, id, v, meta, spec)
	if errors.Is(err, apply.ErrStaleGeneration) {
		// The record holds a newer generation (or its deletion): a Spec for
		// it is on its way; do not move backwards.
		a.log.Warn("agent: stale generation not applied", "bundle", id, "generation", gen, "err", err)
		return done
	}
	if err != nil {
		a.metrics.applies.WithLabelValues("error").Inc()
		a.log.Warn("agent: apply failed, retrying", "bundle", id, "generation", gen, "err", err)
		return retry
	}
	a.mu.Lock()
	b := a.bundles[id]
	if b == nil || b.gen != gen || b.inc != v.Incarnation || b.deleting {
		a.mu.Unlock()
		return again // the desired state moved meanwhile
	}
	b.results, b.appliedGen = res.Objects, gen
	b.needApply = res.Retryable()
	mustAck := b.ackedGen < gen
	if mustAck {
		b.ackedGen = gen
	}
	a.mu.Unlock()
	if mustAck {
		a.ack(ctx, protocol.SpecAck{BundleID: id, Generation: gen})
	}
	a.observer.Replace(id, observedKeys(res.Objects, spec.ManifestConfigs))
	if err := res.Err(); err != nil {
		a.metrics.applies.WithLabelValues("failed").Inc()
		a.log.Info("agent: some objects not applied", "bundle", id, "generation", gen, "retrying", res.Retryable(), "err", err)
	} else {
		a.metrics.applies.WithLabelValues("ok").Inc()
	}
	if res.Retryable() {
		return retry
	}
	return done
}

// syncDelete makes one deletion pass; when the bundle is gone it reports
// the deletion and acknowledges it.
func (a *Agent) syncDelete(ctx context.Context, id string, v apply.Version, opt *workv1.DeleteOption) next {
	gen := v.Generation
	res, finished, err := a.applier.DeleteVersion(ctx, id, v, opt)
	if errors.Is(err, apply.ErrStaleGeneration) {
		a.log.Warn("agent: stale deletion ignored", "bundle", id, "generation", gen, "err", err)
		return done
	}
	if err != nil {
		a.log.Warn("agent: delete failed, retrying", "bundle", id, "generation", gen, "err", err)
		return retry
	}
	a.mu.Lock()
	b := a.bundles[id]
	if b == nil || b.gen != gen || b.inc != v.Incarnation || !b.deleting {
		a.mu.Unlock()
		return again
	}
	mustAck := !finished && b.ackedGen < gen
	if mustAck {
		b.ackedGen = gen
	}
	if finished {
		delete(a.bundles, id)
	}
	a.mu.Unlock()
	if mustAck {
		a.ack(ctx, protocol.SpecAck{BundleID: id, Generation: gen})
	}
	if !finished {
		if err := res.Err(); err != nil {
			a.log.Info("agent: deletion pending", "bundle", id, "err", err)
		}
		a.evaluateBundle(ctx, id, evalOptions{})
		return retry
	}
	a.observer.Unwatch(id)
	a.reporter.MarkDeleted(id, gen)
	a.ack(ctx, protocol.SpecAck{BundleID: id, Generation: gen, Gone: true})
	a.metrics.deletions.Inc()
	return done
}

// evalOptions select the extra work of an evaluation.
type evalOptions struct {
	// drift: also report whether an object the bundle applies was changed
	// or deleted by someone else.
	drift bool
	// reread: read the objects from the API server, not the cache (a
	// StatusRequest: `baton resync`, `doctor --fix`, a digest mismatch).
	reread bool
}

// evaluateBundle computes the bundle's status from the observer's cache
// (or, with reread, from the API server) and sets the reporter.
// Nothing is reported while some object's informer has not synced yet
// (its sync enqueues the bundle again). An object whose scope cannot be
// observed is reported unconfirmed (DESIGN.md I8).
func (a *Agent) evaluateBundle(ctx context.Context, id string, o evalOptions) (reported, drift bool) {
	a.mu.Lock()
	b := a.bundles[id]
	if b == nil || b.results == nil {
		a.mu.Unlock()
		return false, false
	}
	gen, results, manifests, prev, prevConds := b.gen, b.results, b.manifests, b.prev, b.prevConds
	configs := b.spec.ManifestConfigs
	a.mu.Unlock()

	now := a.opts.Clock.Now()
	statuses := make([]api.ResourceStatus, len(results))
	for i, r := range results {
		var obj *unstructured.Unstructured
		var unobserved *evaluate.Unobserved
		if key, ok := keyOf(r); ok {
			if !a.observer.Synced(key) {
				return false, false
			}
			read := false
			if o.reread {
				var err error
				obj, _, err = a.observer.Read(ctx, key)
				read = err == nil
			}
			if !read {
				obj, _ = a.observer.Get(key)
			}
			if h := a.observer.Health(key); !h.OK && !read {
				// The cache may be behind: report the entry unconfirmed,
				// and never take a stale cache for drift.
				obj, unobserved = nil, &evaluate.Unobserved{Reason: h.Reason, Message: h.Message}
			}
		}
		var manifest *unstructured.Unstructured
		if r.Ordinal >= 0 && r.Ordinal < len(manifests) {
			manifest = manifests[r.Ordinal]
		}
		if o.drift && unobserved == nil && !drift {
			d, err := a.applier.Drifted(ctx, id, r, apply.DriftBaseline(manifest, obj, configs, r), obj, configs)
			if err != nil {
				a.log.Debug("agent: drift check failed; applying again", "bundle", id, "object", r.Name, "err", err)
				d = true // an apply costs no more than the check, and reports its failure
			}
			drift = d
		}
		meta := r.ResourceMeta()
		cfg := evaluate.ConfigFor(configs, meta)
		in := evaluate.Input{Meta: meta, Object: obj, Apply: applyResult(r), ObservedAt: now, Unobserved: unobserved}.WithConfig(cfg)
		if obj != nil && cfg != nil {
			key, _ := keyOf(r)
			for _, v := range evaluate.VersionsNeeded(cfg.FeedbackRules, key.GVR.Version) {
				vk := key
				vk.GVR.Version = v
				if !a.observer.Synced(vk) {
					return false, false
				}
				if o, ok := a.observer.Get(vk); ok {
					if in.Versions == nil {
						in.Versions = evaluate.Versions{}
					}
					in.Versions[v] = o
				}
			}
		}
		if i < len(prev) && prev[i].ResourceMeta == meta {
			in.Previous = &prev[i]
		}
		statuses[i] = evaluate.Object(in)
	}
	conds := evaluate.Bundle(statuses, gen, prevConds)
	a.mu.Lock()
	if b := a.bundles[id]; b != nil && b.gen == gen {
		b.prev, b.prevConds = statuses, conds
	}
	a.mu.Unlock()
	// Within the size limits, saying what was cut, so it fits any transport.
	st, _ := evaluate.Bound(api.ReportedStatus{Conditions: conds, ResourceStatus: statuses})
	a.reporter.Set(id, gen, st)
	return true, drift
}

// seedTries bounds how often a bundle seeded from its record waits for the
// observer's caches before it is applied without an early report.
const seedTries = 5

// syncSeeded reports a bundle restored from its record from the live
// objects before re-applying it, so that a restarted agent re-reports
// every bundle within seconds rather than after all of them are applied
// again. The apply goes to the back of the queue.
func (a *Agent) syncSeeded(ctx context.Context, id string) next {
	reported, _ := a.evaluateBundle(ctx, id, evalOptions{})
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.bundles[id]
	if b == nil {
		return done
	}
	if !reported && b.seedTries < seedTries {
		b.seedTries++
		return retry
	}
	b.seeded = false
	return again
}

// keyOf is the observer key of an applied or read object; false when the
// manifest could not be resolved to a resource.
func keyOf(r apply.ObjectResult) (observe.Key, bool) {
	if r.GVR.Resource == "" || r.Name == "" {
		return observe.Key{}, false
	}
	return observe.Key{GVR: r.GVR, Namespace: r.Namespace, Name: r.Name}, true
}

// observedKeys are the keys a bundle's objects are observed under: each
// object at its manifest's version, and at every other version its
// feedback rules name (JsonPath.version), so values read at that version
// follow the object too.
func observedKeys(rs []apply.ObjectResult, configs []workv1.ManifestConfigOption) []observe.Key {
	keys := make([]observe.Key, 0, len(rs))
	for _, r := range rs {
		k, ok := keyOf(r)
		if !ok {
			continue
		}
		keys = append(keys, k)
		if cfg := evaluate.ConfigFor(configs, r.ResourceMeta()); cfg != nil {
			for _, v := range evaluate.VersionsNeeded(cfg.FeedbackRules, k.GVR.Version) {
				vk := k
				vk.GVR.Version = v
				keys = append(keys, vk)
			}
		}
	}
	return keys
}

// applyResult translates the applier's outcome for the evaluator.
func applyResult(r apply.ObjectResult) evaluate.ApplyResult {
	switch r.Outcome {
	case apply.Failed:
		msg := ""
		if r.Err != nil {
			msg = r.Err.Error()
		}
		return evaluate.ApplyResult{State: evaluate.ApplyFailed, Reason: r.Reason, Message: msg}
	case apply.Skipped:
		return evaluate.ApplyResult{State: evaluate.ApplyReadOnly}
	case apply.Created, apply.Configured, apply.Unchanged:
		if r.Strategy == workv1.UpdateStrategyTypeReadOnly {
			return evaluate.ApplyResult{State: evaluate.ApplyReadOnly}
		}
		return evaluate.ApplyResult{State: evaluate.ApplySucceeded}
	}
	return evaluate.ApplyResult{State: evaluate.ApplyPending}
}

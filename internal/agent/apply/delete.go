package apply

import (
	"context"
	"fmt"
	"reflect"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	workv1 "open-cluster-management.io/api/work/v1"
)

// Delete removes a bundle according to opt (nil: the bundle's own delete
// option, else Foreground):
//   - Foreground deletes every object the bundle created (and still owns:
//     same uid) with Options.Propagation, and is done only when all of them
//     are gone;
//   - Orphan leaves every object and is done at once;
//   - SelectivelyOrphan leaves the objects its orphaning rules match and
//     deletes the others like Foreground.
//
// Objects the bundle did not create, ReadOnly objects and objects
// recreated by someone else are always left (Orphaned or Skipped). Delete
// makes one pass and does not wait: while done is false, call it again
// (objects still present are reported Deleting, failures in the Result).
// It marks the record deleting first and removes it once done, so a
// restarted agent can finish the job from Records. A bundle without a
// record is done. The garbage collector is not relied on: every recorded
// object is deleted explicitly, webhooks first, Namespaces and CRDs last.
//
// Delete is DeleteVersion with an empty incarnation.
func (a *Applier) Delete(ctx context.Context, bundleID string, gen int64, opt *workv1.DeleteOption) (Result, bool, error) {
	return a.DeleteVersion(ctx, bundleID, Version{Generation: gen}, opt)
}

// DeleteVersion is Delete of generation v.Generation of incarnation
// v.Incarnation. It is stale (ErrStaleGeneration) only against a record of
// the same incarnation.
func (a *Applier) DeleteVersion(ctx context.Context, bundleID string, v Version, opt *workv1.DeleteOption) (Result, bool, error) {
	defer a.lock(bundleID)()
	gen := v.Generation
	res := Result{BundleID: bundleID, Generation: gen}
	rec, err := a.loadRecord(ctx, bundleID)
	if err != nil {
		return res, false, err
	}
	if rec == nil {
		a.syncAppliedWork(ctx, bundleID, nil)
		return res, true, nil
	}
	if v.olderThan(rec) {
		return res, false, fmt.Errorf("bundle %s: delete generation %d (recorded %d): %w", bundleID, gen, rec.Generation, ErrStaleGeneration)
	}
	if opt == nil {
		opt = rec.DeleteOption
	}
	if opt == nil {
		opt = rec.Spec.DeleteOption
	}
	if !rec.Deleting || !v.sameAs(rec) || !reflect.DeepEqual(rec.DeleteOption, opt) {
		rec.Deleting, rec.Generation, rec.Incarnation, rec.DeleteOption = true, gen, v.Incarnation, opt
		if err := a.saveRecord(ctx, rec); err != nil {
			return res, false, err
		}
	}

	res.Objects = make([]ObjectResult, len(rec.Objects))
	done := make([]bool, len(rec.Objects))
	idx := make([]int, len(rec.Objects))
	for i := range idx {
		idx[i] = i
	}
	groups := byTier(idx, func(i int) int {
		o := rec.Objects[i]
		return tierOf(schema.GroupKind{Group: o.Group, Kind: o.Kind})
	}, func(i int) int { return i })
	for t := tiers - 1; t >= 0; t-- {
		var g errgroup.Group
		g.SetLimit(a.opts.Concurrency)
		for _, i := range groups[t] {
			g.Go(func() error {
				res.Objects[i], done[i] = a.removeOne(ctx, rec.Objects[i], opt)
				return nil
			})
		}
		_ = g.Wait()
	}

	var left []RecordedObject
	for i, o := range rec.Objects {
		if !done[i] {
			left = append(left, o)
		}
	}
	a.opts.Logger.Debug("deleting bundle", "bundle", bundleID, "generation", gen,
		"policy", deletePolicy(opt), "objects", len(rec.Objects), "left", len(left))
	if len(left) == 0 {
		if err := a.dropRecord(ctx, rec); err != nil {
			return res, false, err
		}
		a.syncAppliedWork(ctx, bundleID, nil)
		return res, true, nil
	}
	if len(left) != len(rec.Objects) {
		rec.Objects = left
		if err := a.saveRecord(ctx, rec); err != nil {
			return res, false, err
		}
	}
	a.syncAppliedWork(ctx, bundleID, rec)
	return res, false, nil
}

// removeOne deletes one recorded object when the bundle owns it and opt
// does not orphan it. done says the object needs no more tracking: it is
// gone, or it is left on purpose.
func (a *Applier) removeOne(ctx context.Context, o RecordedObject, opt *workv1.DeleteOption) (ObjectResult, bool) {
	r := ObjectResult{
		Ordinal: o.Ordinal, GVK: schema.GroupVersionKind{Group: o.Group, Version: o.Version, Kind: o.Kind},
		GVR:       schema.GroupVersionResource{Group: o.Group, Version: o.Version, Resource: o.Resource},
		Namespace: o.Namespace, Name: o.Name, Strategy: o.Strategy, Owned: o.Owned,
	}
	if o.Strategy == workv1.UpdateStrategyTypeReadOnly {
		r.Outcome, r.Reason = Skipped, ReasonReadOnly
		return r, true
	}
	if !o.Owned {
		r.Outcome, r.Reason = Orphaned, ReasonNotOwned
		return r, true
	}
	if ok, why := orphaned(opt, o.identity()); ok {
		r.Outcome, r.Reason = Orphaned, why
		return r, true
	}
	c := a.dyn.Resource(r.GVR).Namespace(o.Namespace)
	live, err := c.Get(ctx, o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		r.Outcome = Deleted
		return r, true
	}
	if err != nil {
		r.fail(objErr(o.id(), "get", err))
		return r, false
	}
	r.setLive(live)
	if live.GetUID() != o.UID {
		r.Outcome, r.Reason, r.Owned = Orphaned, ReasonUIDChanged, false
		return r, true
	}
	if live.GetDeletionTimestamp() == nil {
		if done, ok := a.deleteLive(ctx, c, o, &r); ok {
			return r, done
		}
	}
	// Requested; still present (finalizers, foreground propagation).
	live, err = c.Get(ctx, o.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		r.setLive(nil)
		r.Outcome = Deleted
		return r, true
	case err != nil:
		r.fail(objErr(o.id(), "get", err))
		return r, false
	}
	r.setLive(live)
	r.Outcome = Deleting
	return r, false
}

// deleteLive issues the delete call, guarded by the recorded uid. ok says
// the outcome is final (done reports whether tracking ends).
func (a *Applier) deleteLive(ctx context.Context, c interface {
	Delete(context.Context, string, metav1.DeleteOptions, ...string) error
}, o RecordedObject, r *ObjectResult) (done, ok bool) {
	policy := a.opts.Propagation
	err := c.Delete(ctx, o.Name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &o.UID},
		PropagationPolicy: &policy,
	})
	switch {
	case err == nil:
		return false, false
	case apierrors.IsNotFound(err):
		r.setLive(nil)
		r.Outcome = Deleted
		return true, true
	case apierrors.IsConflict(err):
		// The uid precondition failed: someone recreated it meanwhile.
		r.Outcome, r.Reason, r.Owned = Orphaned, ReasonUIDChanged, false
		return true, true
	default:
		r.fail(objErr(o.id(), "delete", err))
		return false, true
	}
}

package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/baton-dev/baton/pkg/api"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	workv1 "open-cluster-management.io/api/work/v1"
)

// ErrStaleGeneration: the call carries a generation older than the one
// the bundle's record holds, in the same incarnation; nothing was done.
var ErrStaleGeneration = errors.New("generation is older than the recorded one")

// Version is a bundle generation within its incarnation (the server's
// generation space, protocol.Spec.Incarnation). Generations of different
// incarnations are not comparable: a Version of another incarnation than
// the record's is never stale.
type Version struct {
	Incarnation string
	Generation  int64
}

// olderThan reports whether v is older than the recorded version of r:
// same incarnation and a lower generation.
func (v Version) olderThan(r *Record) bool {
	return v.Incarnation == r.Incarnation && v.Generation < r.Generation
}

// sameAs reports whether v is the recorded version of r.
func (v Version) sameAs(r *Record) bool {
	return v.Incarnation == r.Incarnation && v.Generation == r.Generation
}

// Apply converges the cluster to generation gen of a bundle and records
// what it applied. The returned error is set only when the bundle as a
// whole could not be processed (record I/O, stale generation); per-object
// failures are in the Result (Result.Err, Result.Retryable).
//
// Objects of the recorded generation that are no longer in the bundle are
// deleted (subject to spec.DeleteOption and ownership) and reported in
// Result.Removed. That removal is skipped, and the old objects stay
// recorded, while some manifest cannot be identified (undecodable or of an
// unknown kind), so that a transient failure never deletes anything.
//
// Apply is ApplyVersion with an empty incarnation.
func (a *Applier) Apply(ctx context.Context, bundleID string, gen int64, meta api.ObjectMeta, spec api.BundleSpec) (Result, error) {
	return a.ApplyVersion(ctx, bundleID, Version{Generation: gen}, meta, spec)
}

// ApplyVersion is Apply of generation v.Generation of incarnation
// v.Incarnation, which the record keeps. It is stale (ErrStaleGeneration)
// only against a record of the same incarnation.
func (a *Applier) ApplyVersion(ctx context.Context, bundleID string, v Version, meta api.ObjectMeta, spec api.BundleSpec) (Result, error) {
	defer a.lock(bundleID)()
	gen := v.Generation
	res := Result{BundleID: bundleID, Generation: gen}
	prev, err := a.loadRecord(ctx, bundleID)
	if err != nil {
		return res, err
	}
	rec := &Record{BundleID: bundleID}
	if prev != nil {
		if v.olderThan(prev) || (v.sameAs(prev) && prev.Deleting) {
			return res, fmt.Errorf("bundle %s: apply generation %d (recorded %d): %w", bundleID, gen, prev.Generation, ErrStaleGeneration)
		}
		rec = prev.clone()
	}
	rec.Generation, rec.Incarnation, rec.Meta, rec.Spec, rec.Deleting, rec.DeleteOption = gen, v.Incarnation, meta, spec, false, nil
	// Record the intent first: a restarted agent knows it holds gen.
	if prev == nil || !v.sameAs(prev) || prev.Deleting {
		if err := a.saveRecord(ctx, rec); err != nil {
			return res, err
		}
	}

	ms := make([]*manifest, len(spec.Manifests))
	for i, raw := range spec.Manifests {
		ms[i] = decode(i, raw)
	}
	res.Objects = make([]ObjectResult, len(ms))
	a.applyTiers(ctx, bundleID, ms, spec, rec, res.Objects)

	objects, removed := a.reconcileRecord(ctx, ms, res.Objects, rec, spec.DeleteOption)
	res.Removed = removed
	if !slices.Equal(objects, rec.Objects) {
		rec.Objects = objects
		if err := a.saveRecord(ctx, rec); err != nil {
			return res, err
		}
	}
	a.syncAppliedWork(ctx, bundleID, rec)
	a.opts.Logger.Debug("applied bundle", "bundle", bundleID, "generation", gen,
		"objects", len(res.Objects), "removed", len(res.Removed), "retryable", res.Retryable())
	return res, nil
}

// applyTiers applies the manifests tier by tier into results.
func (a *Applier) applyTiers(ctx context.Context, bundleID string, ms []*manifest, spec api.BundleSpec, rec *Record, results []ObjectResult) {
	prevByKey := map[objectKey]RecordedObject{}
	for _, o := range rec.Objects {
		prevByKey[o.key()] = o
	}
	bundleKinds := crdKinds(ms)
	refreshed := false
	groups := byTier(ms, func(m *manifest) int { return tierOf(m.gvk.GroupKind()) }, func(m *manifest) int { return m.ordinal })
	for t, group := range groups {
		for _, m := range group {
			a.prepare(m, &refreshed, bundleKinds)
		}
		var g errgroup.Group
		g.SetLimit(a.opts.Concurrency)
		for _, m := range group {
			g.Go(func() error {
				var prev *RecordedObject
				if p, ok := prevByKey[m.key()]; ok {
					prev = &p
				}
				results[m.ordinal] = a.applyOne(ctx, bundleID, m, spec, prev)
				return nil
			})
		}
		_ = g.Wait()
		if t == tierCRD && a.waitEstablished(ctx, group, results) {
			a.mapper.Reset()
			refreshed = true
		}
	}
}

// prepare resolves the manifest's kind and defaults its namespace.
func (a *Applier) prepare(m *manifest, refreshed *bool, bundleKinds map[schema.GroupKind]bool) {
	if m.err != nil {
		return
	}
	mapping, err := a.resolve(m.gvk, refreshed)
	if err != nil {
		e := objErr(m.id(), "resolve", err)
		if meta.IsNoMatchError(err) && bundleKinds[m.gvk.GroupKind()] {
			// Its CRD is in the bundle but not served yet: retry later.
			e.Terminal, e.Reason = false, ReasonNotEstablished
		}
		m.err = e
		return
	}
	m.mapping = mapping
	switch {
	case mapping.Scope.Name() != meta.RESTScopeNameNamespace:
		m.obj.SetNamespace("")
	case m.obj.GetNamespace() == "":
		m.obj.SetNamespace(metav1.NamespaceDefault)
	}
}

// applyOne applies one manifest with its update strategy.
func (a *Applier) applyOne(ctx context.Context, bundleID string, m *manifest, spec api.BundleSpec, prev *RecordedObject) ObjectResult {
	r := ObjectResult{Ordinal: m.ordinal, GVK: m.gvk, Namespace: m.obj.GetNamespace(), Name: m.obj.GetName()}
	if m.err != nil {
		r.fail(m.err)
		return r
	}
	r.GVR = m.mapping.Resource
	id := identity{Group: m.gvk.Group, Resource: r.GVR.Resource, Namespace: r.Namespace, Name: r.Name}
	st := strategyFor(spec.ManifestConfigs, id)
	r.Strategy = st.Type
	c := a.client(m.mapping, r.Namespace)
	if spec.Executor != nil {
		orphan, _ := orphaned(spec.DeleteOption, id)
		ec, err := a.executorClient(ctx, spec.Executor, m, st.Type, !orphan)
		if err != nil {
			r.fail(err)
			return r
		}
		c = ec
	}
	live, err := c.Get(ctx, r.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		r.fail(objErr(m.id(), "get", err))
		return r
	}
	s := &step{a: a, c: c, m: m, bundleID: bundleID, live: live, prev: prev, r: &r}
	switch st.Type {
	case workv1.UpdateStrategyTypeReadOnly:
		s.readOnly()
	case workv1.UpdateStrategyTypeCreateOnly:
		s.createOnly(ctx)
	case workv1.UpdateStrategyTypeServerSideApply:
		s.serverSideApply(ctx, st.ServerSideApply)
	case workv1.UpdateStrategyTypeUpdate:
		s.update(ctx)
	default:
		r.fail(&Error{Object: m.id(), Action: "apply", Reason: ReasonInvalidManifest, Terminal: true,
			Err: fmt.Errorf("unknown update strategy %q", st.Type)})
	}
	return r
}

// waitEstablished waits until the CRDs of the tier that were applied are
// Established; it reports whether any CRD was created or changed.
func (a *Applier) waitEstablished(ctx context.Context, crds []*manifest, results []ObjectResult) bool {
	changed := false
	var pending []*manifest
	for _, m := range crds {
		switch results[m.ordinal].Outcome {
		case Created, Configured:
			changed = true
			pending = append(pending, m)
		}
	}
	if len(pending) == 0 {
		return false
	}
	_, _ = a.wait(ctx, a.opts.EstablishTimeout, pollInterval, func() (bool, error) {
		pending = slices.DeleteFunc(pending, func(m *manifest) bool {
			live, err := a.client(m.mapping, "").Get(ctx, m.obj.GetName(), metav1.GetOptions{})
			return err == nil && established(live)
		})
		return len(pending) == 0, nil
	})
	return changed
}

// established reports whether a CRD has condition Established=True.
func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		cm, _ := c.(map[string]any)
		if cm["type"] == "Established" && cm["status"] == "True" {
			return true
		}
	}
	return false
}

// crdKinds returns the kinds the bundle's CRDs define.
func crdKinds(ms []*manifest) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for _, m := range ms {
		if m.err != nil || tierOf(m.gvk.GroupKind()) != tierCRD {
			continue
		}
		group, _, _ := unstructured.NestedString(m.obj.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(m.obj.Object, "spec", "names", "kind")
		out[schema.GroupKind{Group: group, Kind: kind}] = true
	}
	return out
}

// reconcileRecord computes the objects to record after an apply, and
// removes recorded objects that left the bundle.
func (a *Applier) reconcileRecord(ctx context.Context, ms []*manifest, results []ObjectResult, rec *Record, opt *workv1.DeleteOption) ([]RecordedObject, []ObjectResult) {
	prevByKey := map[objectKey]RecordedObject{}
	for _, o := range rec.Objects {
		prevByKey[o.key()] = o
	}
	var objects []RecordedObject
	identified := true
	for _, m := range ms {
		if m.mapping == nil {
			identified = false
			continue
		}
		r := results[m.ordinal]
		p, had := prevByKey[m.key()]
		delete(prevByKey, m.key())
		switch {
		case r.Outcome == Failed && had:
			// Keep what is known until the manifest applies again.
			p.Removing, p.Ordinal = false, r.Ordinal
			objects = append(objects, p)
		case r.Outcome != Failed && r.Exists:
			objects = append(objects, RecordedObject{
				Group: r.GVK.Group, Version: r.GVK.Version, Kind: r.GVK.Kind, Resource: r.GVR.Resource,
				Namespace: r.Namespace, Name: r.Name, UID: r.UID, Strategy: r.Strategy, Owned: r.Owned, Ordinal: r.Ordinal,
			})
		}
	}
	// What is left of the old record is no longer in the bundle.
	var gone []RecordedObject
	for _, o := range rec.Objects {
		if _, ok := prevByKey[o.key()]; ok {
			gone = append(gone, o)
		}
	}
	if !identified {
		return append(objects, gone...), nil
	}
	var removed []ObjectResult
	for _, o := range gone {
		r, done := a.removeOne(ctx, o, opt)
		r.Ordinal = -1
		removed = append(removed, r)
		if !done {
			o.Removing, o.Ordinal = true, -1
			objects = append(objects, o)
		}
	}
	return objects, removed
}

// setLive fills the result's identity of the live object.
func (r *ObjectResult) setLive(obj *unstructured.Unstructured) {
	if obj == nil {
		r.Exists, r.UID, r.ResourceVersion, r.Generation = false, "", "", 0
		return
	}
	r.Exists, r.UID, r.ResourceVersion, r.Generation = true, obj.GetUID(), obj.GetResourceVersion(), obj.GetGeneration()
}

// ownedBy decides whether the bundle owns a live object: the recorded uid
// and ownership when the record knows the object, else the annotation the
// bundle stamps on objects it creates.
func ownedBy(bundleID string, prev *RecordedObject, live *unstructured.Unstructured) bool {
	if prev != nil && prev.UID != "" {
		return prev.Owned && prev.UID == live.GetUID()
	}
	return live.GetAnnotations()[AnnotationBundle] == bundleID
}

package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	workv1 "open-cluster-management.io/api/work/v1"
)

// Drifted reports whether the live object (nil: absent) no longer is what
// applying the manifest again would make it, so the bundle must be applied
// again:
//   - ReadOnly objects never drift (they are only read);
//   - CreateOnly objects drift only when deleted (they are created again);
//   - Update and ServerSideApply objects drift when deleted, or when the
//     API server would change the object if the manifest were applied now.
//
// (A ServerSideApply dry run that conflicts with another field manager is
// drift: the apply that follows reports the conflict.)
//
// The last question is answered by the API server itself, not by comparing
// fields here: when the manifest is not plainly contained in the live
// object, the write the strategy makes is sent as a dry run and its result
// compared with the live object. Values the server canonicalises ("1000m"
// and "1" CPU), defaults it adds and fields it ignores (status in an
// update) are therefore never drift. Verdicts are cached per manifest and
// live content, so status-only changes of the object cost no call.
//
// A cache that has not caught up with the agent's own last write (its
// resourceVersion is older), or with the server (the dry run answers from
// a newer object), is not drift: the event of the newer object follows. An
// error of the dry run is returned with drift false.
func (a *Applier) Drifted(ctx context.Context, bundleID string, r ObjectResult, manifest, live *unstructured.Unstructured, configs []workv1.ManifestConfigOption) (bool, error) {
	if r.Outcome == Failed || manifest == nil {
		return false, nil
	}
	switch r.Strategy {
	case workv1.UpdateStrategyTypeReadOnly:
		return false, nil
	case workv1.UpdateStrategyTypeCreateOnly:
		return live == nil && r.Exists, nil
	}
	if live == nil {
		return r.Exists, nil
	}
	if olderVersion(live.GetResourceVersion(), r.ResourceVersion) {
		return false, nil
	}
	want := manifest.DeepCopy()
	want.SetNamespace(r.Namespace)
	delete(want.Object, "status")
	if subset(want.Object, live.Object) {
		return false, nil
	}
	key, ok := driftKey(bundleID, r, want, live)
	if v, hit := a.drift.get(key); ok && hit {
		return v, nil
	}
	c := a.dyn.Resource(r.GVR).Namespace(r.Namespace)
	var out *unstructured.Unstructured
	var err error
	if r.Strategy == workv1.UpdateStrategyTypeServerSideApply {
		out, err = a.dryRunApply(ctx, c, bundleID, r, want, configs)
	} else {
		out, err = c.Update(ctx, merge(live, want), metav1.UpdateOptions{FieldManager: a.opts.FieldManager, DryRun: []string{metav1.DryRunAll}})
	}
	switch {
	case apierrors.IsConflict(err) && r.Strategy == workv1.UpdateStrategyTypeServerSideApply:
		// Another field manager owns a field the manifest sets: applying
		// again reports the conflict (and a failed apply is not checked).
		return true, nil
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		return false, nil // the cache is behind the server
	case err != nil:
		return false, err
	case out.GetResourceVersion() != live.GetResourceVersion():
		return false, nil // the server holds a newer object than the cache
	}
	drift := !sameObject(out, live)
	if ok {
		a.drift.put(key, drift)
	}
	return drift, nil
}

// dryRunApply is the server-side apply the strategy makes, as a dry run.
func (a *Applier) dryRunApply(ctx context.Context, c dynamic.ResourceInterface, bundleID string, r ObjectResult, want *unstructured.Unstructured, configs []workv1.ManifestConfigOption) (*unstructured.Unstructured, error) {
	obj := want
	if r.Owned {
		obj = want.DeepCopy()
		ann := obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationBundle] = bundleID
		obj.SetAnnotations(ann)
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	opts := metav1.PatchOptions{FieldManager: a.opts.FieldManager, DryRun: []string{metav1.DryRunAll}}
	st := strategyFor(configs, identity{Group: r.GVK.Group, Resource: r.GVR.Resource, Namespace: r.Namespace, Name: r.Name})
	if cfg := st.ServerSideApply; cfg != nil {
		if cfg.FieldManager != "" {
			opts.FieldManager = cfg.FieldManager
		}
		opts.Force = &cfg.Force
	}
	return c.Patch(ctx, r.Name, types.ApplyPatchType, data, opts)
}

// sameObject compares two versions of an object, ignoring what the server
// maintains on its own (managedFields, resourceVersion, generation).
func sameObject(a, b *unstructured.Unstructured) bool {
	return apiequality.Semantic.DeepEqual(withoutServerFields(a).Object, withoutServerFields(b).Object)
}

func withoutServerFields(u *unstructured.Unstructured) *unstructured.Unstructured {
	c := u.DeepCopy()
	c.SetManagedFields(nil)
	c.SetResourceVersion("")
	c.SetGeneration(0)
	return c
}

// olderVersion compares resourceVersions numerically when both are
// numbers (as etcd-backed servers produce); otherwise it says false.
func olderVersion(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x < y
}

// driftKey identifies a drift question: the bundle's manifest and the live
// object's content apart from status and server-maintained metadata.
func driftKey(bundleID string, r ObjectResult, want, live *unstructured.Unstructured) (string, bool) {
	l := withoutServerFields(live)
	delete(l.Object, "status")
	wj, err1 := json.Marshal(want.Object)
	lj, err2 := json.Marshal(l.Object)
	if err1 != nil || err2 != nil {
		return "", false
	}
	h := sha256.New()
	for _, p := range [][]byte{[]byte(bundleID), []byte(r.Strategy), wj, lj} {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

// driftCacheSize bounds the drift verdicts kept; the cache is emptied when
// it is full (verdicts are cheap to ask again).
const driftCacheSize = 4096

type driftCache struct {
	mu sync.Mutex
	m  map[string]bool
}

func (c *driftCache) get(k string) (v, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok = c.m[k]
	return v, ok
}

func (c *driftCache) put(k string, v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= driftCacheSize {
		c.m = map[string]bool{}
	}
	c.m[k] = v
}

package apply

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/evaluate"
)

// identity is what resourceIdentifier and orphaning rules match on.
type identity struct{ Group, Resource, Namespace, Name string }

// matches reports whether rule selects id (evaluate.Matches: the same
// matching as feedback and condition rules).
func matches(rule workv1.ResourceIdentifier, id identity) bool {
	return evaluate.Matches(rule, id.Group, id.Resource, id.Namespace, id.Name)
}

// strategyFor returns the update strategy of the object: the first
// manifest config whose resourceIdentifier matches it, else Update.
func strategyFor(configs []workv1.ManifestConfigOption, id identity) workv1.UpdateStrategy {
	for _, c := range configs {
		if matches(c.ResourceIdentifier, id) && c.UpdateStrategy != nil && c.UpdateStrategy.Type != "" {
			return *c.UpdateStrategy
		}
	}
	return workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeUpdate}
}

// deletePolicy is the effective delete option: opt, else Foreground.
func deletePolicy(opt *workv1.DeleteOption) workv1.DeletePropagationPolicyType {
	if opt == nil || opt.PropagationPolicy == "" {
		return workv1.DeletePropagationPolicyTypeForeground
	}
	return opt.PropagationPolicy
}

// orphaned reports whether the delete option leaves the object in place,
// and why.
func orphaned(opt *workv1.DeleteOption, id identity) (bool, string) {
	switch deletePolicy(opt) {
	case workv1.DeletePropagationPolicyTypeOrphan:
		return true, ReasonOrphanPolicy
	case workv1.DeletePropagationPolicyTypeSelectivelyOrphan:
		if opt.SelectivelyOrphan == nil {
			return false, ""
		}
		for _, r := range opt.SelectivelyOrphan.OrphaningRules {
			if matches(workv1.ResourceIdentifier(r), id) {
				return true, ReasonOrphaningRule
			}
		}
	}
	return false, ""
}

// step applies one manifest to one live object (nil when absent) and
// fills the result.
type step struct {
	a        *Applier
	c        dynamic.ResourceInterface
	m        *manifest
	bundleID string
	live     *unstructured.Unstructured
	prev     *RecordedObject
	r        *ObjectResult
}

// readOnly reads only: the object is reported, never written nor owned.
func (s *step) readOnly() {
	s.r.setLive(s.live)
	if s.live == nil {
		s.r.Outcome, s.r.Reason = Skipped, ReasonNotFound
		return
	}
	s.r.Outcome = Unchanged
}

// createOnly creates an absent object and never updates a present one.
func (s *step) createOnly(ctx context.Context) {
	if s.live == nil {
		s.create(ctx)
		return
	}
	s.r.setLive(s.live)
	s.r.Owned = ownedBy(s.bundleID, s.prev, s.live)
	s.r.Outcome = Unchanged
}

// create creates the object, stamped as created by the bundle.
func (s *step) create(ctx context.Context) {
	obj := s.stamped()
	out, err := s.c.Create(ctx, obj, metav1.CreateOptions{FieldManager: s.a.opts.FieldManager})
	if err != nil {
		s.r.fail(objErr(s.m.id(), "create", err))
		return
	}
	s.r.setLive(out)
	s.r.Owned, s.r.Outcome = true, Created
}

// update creates an absent object, or updates a present one unless it
// already holds every field of the manifest.
func (s *step) update(ctx context.Context) {
	if s.live == nil {
		s.create(ctx)
		return
	}
	if s.terminating() {
		return
	}
	s.r.Owned = ownedBy(s.bundleID, s.prev, s.live)
	live := s.live
	for attempt := 0; ; attempt++ {
		if subset(s.m.obj.Object, live.Object) {
			s.r.setLive(live)
			s.r.Outcome = Unchanged
			return
		}
		out, err := s.c.Update(ctx, merge(live, s.m.obj), metav1.UpdateOptions{FieldManager: s.a.opts.FieldManager})
		if err == nil {
			s.r.setLive(out)
			s.r.Outcome = Configured
			if out.GetResourceVersion() == live.GetResourceVersion() {
				s.r.Outcome = Unchanged
			}
			return
		}
		if !apierrors.IsConflict(err) || attempt >= 2 {
			s.r.fail(objErr(s.m.id(), "update", err))
			return
		}
		// Someone wrote in between: read again and recompute.
		if live, err = s.c.Get(ctx, s.m.obj.GetName(), metav1.GetOptions{}); err != nil {
			s.r.fail(objErr(s.m.id(), "get", err))
			return
		}
	}
}

// serverSideApply applies the manifest with server-side apply.
func (s *step) serverSideApply(ctx context.Context, cfg *workv1.ServerSideApplyConfig) {
	if s.live != nil && s.terminating() {
		return
	}
	owned := s.live == nil || ownedBy(s.bundleID, s.prev, s.live)
	obj := s.m.obj
	if owned {
		obj = s.stamped()
	}
	obj, err := ssaConfig(s.m.obj, obj, s.live, cfg)
	if err != nil {
		s.r.setLive(s.live)
		s.r.fail(&Error{Object: s.m.id(), Action: "apply", Reason: ReasonIgnoreFieldError, Terminal: true, Err: err})
		return
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		s.r.fail(&Error{Object: s.m.id(), Action: "apply", Reason: ReasonInvalidManifest, Terminal: true, Err: err})
		return
	}
	opts := metav1.PatchOptions{FieldManager: s.a.opts.FieldManager}
	if cfg != nil {
		if cfg.FieldManager != "" {
			opts.FieldManager = cfg.FieldManager
		}
		opts.Force = &cfg.Force
	}
	out, err := s.c.Patch(ctx, s.m.obj.GetName(), types.ApplyPatchType, data, opts)
	if err != nil {
		e := objErr(s.m.id(), "apply", err)
		if apierrors.IsConflict(err) {
			e.Reason = ReasonApplyConflict
		}
		s.r.fail(e)
		return
	}
	s.r.setLive(out)
	s.r.Owned = owned
	switch {
	case s.live == nil:
		s.r.Outcome = Created
	case out.GetResourceVersion() == s.live.GetResourceVersion():
		s.r.Outcome = Unchanged
	default:
		s.r.Outcome = Configured
	}
}

// terminating fails the step (retryably) when the live object is being
// deleted: it must be gone before the manifest can be applied again.
func (s *step) terminating() bool {
	if s.live.GetDeletionTimestamp() == nil {
		return false
	}
	s.r.setLive(s.live)
	s.r.fail(&Error{Object: s.m.id(), Action: "apply", Reason: ReasonTerminating,
		Err: errors.New("object is being deleted")})
	return true
}

// stamped returns the manifest annotated as created by the bundle.
func (s *step) stamped() *unstructured.Unstructured {
	obj := s.m.obj.DeepCopy()
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationBundle] = s.bundleID
	obj.SetAnnotations(ann)
	return obj
}

// merge returns live with the manifest's top-level fields replacing its
// own, labels and annotations merged, and status and server-set metadata
// kept (an update call's semantics, as the work agent applies them).
func merge(live, want *unstructured.Unstructured) *unstructured.Unstructured {
	out := live.DeepCopy()
	for k, v := range want.Object {
		if k == "metadata" || k == "status" {
			continue
		}
		out.Object[k] = runtime.DeepCopyJSONValue(v)
	}
	wm, _ := want.Object["metadata"].(map[string]any)
	om, _ := out.Object["metadata"].(map[string]any)
	for k, v := range wm {
		switch k {
		case "labels", "annotations":
			merged, _ := om[k].(map[string]any)
			if merged == nil {
				merged = map[string]any{}
			}
			for lk, lv := range v.(map[string]any) {
				merged[lk] = lv
			}
			om[k] = merged
		default:
			om[k] = runtime.DeepCopyJSONValue(v)
		}
	}
	return out
}

// subset reports whether every field of want is in got with an equal
// value: maps recursively, lists element by element (same length), and a
// field absent from got matches a zero value in want (the server drops
// empty fields). Numbers compare by value.
func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return len(w) == 0 && got == nil
		}
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				if isZero(v) {
					continue
				}
				return false
			}
			if !subset(v, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok {
			return len(w) == 0 && got == nil
		}
		if len(g) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], g[i]) {
				return false
			}
		}
		return true
	case int64, float64:
		wf, _ := number(w)
		gf, ok := number(got)
		return ok && wf == gf
	default:
		return want == got
	}
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	case string:
		return x == ""
	case bool:
		return !x
	case int64:
		return x == 0
	case float64:
		return x == 0
	}
	return false
}

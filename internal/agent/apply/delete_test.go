package apply

import (
	"testing"
	"time"

	"github.com/baton-dev/baton/pkg/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	workv1 "open-cluster-management.io/api/work/v1"
)

// deleteUntilDone calls Delete until it reports done and returns the
// last result (the first call's outcomes when it was done at once).
func (e *env) deleteUntilDone(id string, gen int64, opt *workv1.DeleteOption) Result {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var first *Result
	for {
		res, done, err := e.a.Delete(e.ctx, id, gen, opt)
		if err != nil {
			e.t.Fatalf("Delete(%s): %v", id, err)
		}
		if first == nil {
			first = &res
		}
		if done {
			return merged(*first, res)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("Delete(%s) not done after 30s: %s", id, outcomes(res.Objects))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// merged reports, per object of the first pass, its final outcome.
func merged(first, last Result) Result {
	final := map[string]ObjectResult{}
	for _, o := range last.Objects {
		final[o.GVK.Kind+"/"+o.Namespace+"/"+o.Name] = o
	}
	for i, o := range first.Objects {
		if f, ok := final[o.GVK.Kind+"/"+o.Namespace+"/"+o.Name]; ok {
			first.Objects[i] = f
		} else if o.Outcome == Deleting {
			first.Objects[i].Outcome = Deleted
		}
	}
	return first
}

func twoConfigMaps(e *env) api.BundleSpec {
	return spec(e.manifest("configmap.yaml", map[string]string{"Name": "a"}), e.manifest("configmap.yaml", map[string]string{"Name": "b"}))
}

func TestDeleteForeground(t *testing.T) {
	e := newEnv(t, Options{Propagation: metav1.DeletePropagationForeground})
	e.apply("bundle", 1, twoConfigMaps(e))

	res, done, err := e.a.Delete(e.ctx, "bundle", 2, nil)
	if err != nil || done {
		t.Fatalf("first Delete: done=%v err=%v; want not done (foregroundDeletion finalizer pending)", done, err)
	}
	e.wantOutcomes("first delete", res.Objects, "ConfigMap a=Deleting, ConfigMap b=Deleting")
	if !res.Pending() {
		t.Fatal("Result.Pending false while objects are deleting")
	}
	rec := e.record("bundle")
	if rec == nil || !rec.Deleting || rec.Generation != 2 || len(rec.Objects) != 2 {
		t.Fatalf("record while deleting: %+v; want deleting generation 2 with both objects", rec)
	}
	// Play the garbage collector: drop the foreground finalizer of "a".
	e.finalize("a")
	res, done, err = e.a.Delete(e.ctx, "bundle", 2, nil)
	if err != nil || done {
		t.Fatalf("second Delete: done=%v err=%v; want not done", done, err)
	}
	e.wantOutcomes("second delete", res.Objects, "ConfigMap a=Deleted, ConfigMap b=Deleting")
	if rec := e.record("bundle"); rec == nil || len(rec.Objects) != 1 || rec.Objects[0].Name != "b" {
		t.Fatalf("record after a is gone: %+v; want only b", rec)
	}
	e.finalize("b")
	res, done, err = e.a.Delete(e.ctx, "bundle", 2, nil)
	if err != nil || !done {
		t.Fatalf("third Delete: done=%v err=%v; want done", done, err)
	}
	e.wantOutcomes("third delete", res.Objects, "ConfigMap b=Deleted")
	if _, err := e.kc.CoreV1().Secrets(e.ns).Get(e.ctx, "baton-bundle", metav1.GetOptions{}); e.record("bundle") != nil || err == nil {
		t.Fatal("record remains after the delete finished")
	}
	// Deleting again is harmless.
	if _, done, err := e.a.Delete(e.ctx, "bundle", 2, nil); err != nil || !done {
		t.Fatalf("repeated Delete: done=%v err=%v", done, err)
	}
}

// finalize removes the foregroundDeletion finalizer, as the garbage
// collector would once an object has no dependents.
func (e *env) finalize(name string) {
	e.t.Helper()
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := e.dyn.Resource(configMaps).Namespace(e.ns).Patch(e.ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func TestDeleteOrphan(t *testing.T) {
	e := newEnv(t, Options{})
	s := twoConfigMaps(e)
	s.DeleteOption = &workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeOrphan}
	e.apply("bundle", 1, s)
	// nil option: the bundle's own delete option applies.
	res, done, err := e.a.Delete(e.ctx, "bundle", 2, nil)
	if err != nil || !done {
		t.Fatalf("Delete: done=%v err=%v", done, err)
	}
	e.wantOutcomes("orphan", res.Objects, "ConfigMap a=Orphaned(OrphanPolicy), ConfigMap b=Orphaned(OrphanPolicy)")
	if e.configMap("a") == nil || e.configMap("b") == nil {
		t.Fatal("Orphan deleted objects")
	}
	if e.record("bundle") != nil {
		t.Fatal("record remains after orphaning")
	}
}

func TestDeleteSelectivelyOrphan(t *testing.T) {
	e := newEnv(t, Options{})
	e.apply("bundle", 1, twoConfigMaps(e))
	opt := &workv1.DeleteOption{
		PropagationPolicy: workv1.DeletePropagationPolicyTypeSelectivelyOrphan,
		SelectivelyOrphan: &workv1.SelectivelyOrphan{OrphaningRules: []workv1.OrphaningRule{
			{Group: "", Resource: "configmaps", Namespace: e.ns, Name: "b"},
		}},
	}
	res := e.deleteUntilDone("bundle", 2, opt)
	e.wantOutcomes("selective", res.Objects, "ConfigMap a=Deleted, ConfigMap b=Orphaned(OrphaningRule)")
	if e.configMap("a") != nil || e.configMap("b") == nil {
		t.Fatal("SelectivelyOrphan: want a deleted and b kept")
	}
}

func TestApplyRemovesDroppedManifest(t *testing.T) {
	e := newEnv(t, Options{})
	e.apply("bundle", 1, twoConfigMaps(e))
	r := e.apply("bundle", 2, spec(e.manifest("configmap.yaml", map[string]string{"Name": "a"})))
	e.wantOutcomes("kept", r.Objects, "ConfigMap a=Unchanged")
	e.wantOutcomes("removed", r.Removed, "ConfigMap b=Deleted")
	if r.Removed[0].Ordinal != -1 {
		t.Fatalf("removed ordinal: got %d; want -1", r.Removed[0].Ordinal)
	}
	if e.configMap("b") != nil {
		t.Fatal("dropped manifest's object still exists")
	}
	if rec := e.record("bundle"); rec == nil || len(rec.Objects) != 1 || rec.Objects[0].Name != "a" {
		t.Fatalf("record: %+v; want only a", rec)
	}

	// With the Orphan option a dropped object stays.
	s := spec()
	s.DeleteOption = &workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeOrphan}
	r = e.apply("bundle", 3, s)
	e.wantOutcomes("orphaned", r.Removed, "ConfigMap a=Orphaned(OrphanPolicy)")
	if e.configMap("a") == nil {
		t.Fatal("Orphan option: dropped object deleted")
	}
}

func TestPreExistingObjectNotDeleted(t *testing.T) {
	e := newEnv(t, Options{})
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(e.manifest("configmap.yaml", map[string]string{"Value": "theirs"})); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dyn.Resource(configMaps).Namespace(e.ns).Create(e.ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := e.apply("bundle", 1, spec(e.manifest("configmap.yaml", nil), e.manifest("configmap.yaml", map[string]string{"Name": "mine"})))
	e.wantOutcomes("apply", r.Objects, "ConfigMap app=Configured, ConfigMap mine=Created")
	if r.Objects[0].Owned || !r.Objects[1].Owned {
		t.Fatalf("ownership: pre-existing owned=%v, created owned=%v", r.Objects[0].Owned, r.Objects[1].Owned)
	}
	res := e.deleteUntilDone("bundle", 2, nil)
	e.wantOutcomes("delete", res.Objects, "ConfigMap app=Orphaned(NotOwned), ConfigMap mine=Deleted")
	if cm := e.configMap("app"); cm == nil || cm.Data["key"] != "one" {
		t.Fatalf("pre-existing object: got %v; want kept with the bundle's data", cm)
	}
}

func TestRecreatedObjectNotDeleted(t *testing.T) {
	for name, removeBy := range map[string]func(e *env){
		"Delete": func(e *env) {
			res := e.deleteUntilDone("bundle", 2, nil)
			e.wantOutcomes("delete", res.Objects, "ConfigMap a=Orphaned(UIDChanged), ConfigMap b=Deleted")
		},
		"DroppedFromBundle": func(e *env) {
			r := e.apply("bundle", 2, spec())
			e.wantOutcomes("removed", r.Removed, "ConfigMap a=Orphaned(UIDChanged), ConfigMap b=Deleted")
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Options{})
			first := e.apply("bundle", 1, twoConfigMaps(e))
			// Someone deletes "a" and creates their own with the same name.
			if err := e.kc.CoreV1().ConfigMaps(e.ns).Delete(e.ctx, "a", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			obj := &unstructured.Unstructured{}
			if err := obj.UnmarshalJSON(e.manifest("configmap.yaml", map[string]string{"Name": "a", "Value": "theirs"})); err != nil {
				t.Fatal(err)
			}
			theirs, err := e.dyn.Resource(configMaps).Namespace(e.ns).Create(e.ctx, obj, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if theirs.GetUID() == first.Objects[0].UID {
				t.Fatal("recreated object kept its uid")
			}
			removeBy(e)
			if cm := e.configMap("a"); cm == nil || cm.UID != theirs.GetUID() {
				t.Fatal("the object someone else recreated was deleted")
			}
			if e.configMap("b") != nil {
				t.Fatal("the bundle's own object was not deleted")
			}
		})
	}
}

func TestApplyAfterRecreateByOther(t *testing.T) {
	e := newEnv(t, Options{})
	e.apply("bundle", 1, spec(e.manifest("configmap.yaml", nil)))
	if err := e.kc.CoreV1().ConfigMaps(e.ns).Delete(e.ctx, "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(e.manifest("configmap.yaml", map[string]string{"Value": "theirs"})); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dyn.Resource(configMaps).Namespace(e.ns).Create(e.ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := e.apply("bundle", 2, spec(e.manifest("configmap.yaml", nil)))
	e.wantOutcomes("apply", r.Objects, "ConfigMap app=Configured")
	if r.Objects[0].Owned {
		t.Fatal("an object recreated by someone else became owned")
	}
	res := e.deleteUntilDone("bundle", 3, nil)
	e.wantOutcomes("delete", res.Objects, "ConfigMap app=Orphaned(NotOwned)")
	if e.configMap("app") == nil {
		t.Fatal("object recreated by someone else was deleted")
	}
}

func TestApplyWhileTerminating(t *testing.T) {
	e := newEnv(t, Options{Propagation: metav1.DeletePropagationForeground})
	s := spec(e.manifest("configmap.yaml", nil))
	first := e.apply("bundle", 1, s)
	if _, done, err := e.a.Delete(e.ctx, "bundle", 2, nil); err != nil || done {
		t.Fatalf("Delete: done=%v err=%v; want pending", done, err)
	}
	// The bundle comes back while its object is still terminating.
	r := e.apply("bundle", 3, s)
	e.wantOutcomes("apply while terminating", r.Objects, "ConfigMap app=Failed(Terminating)")
	if !r.Retryable() || r.Objects[0].UID != first.Objects[0].UID {
		t.Fatalf("terminating object: retryable=%v uid=%s; want retryable, uid %s", r.Retryable(), r.Objects[0].UID, first.Objects[0].UID)
	}
	if rec := e.record("bundle"); rec == nil || rec.Deleting || rec.Generation != 3 || len(rec.Objects) != 1 {
		t.Fatalf("record: %+v; want generation 3, not deleting, object kept", rec)
	}
	e.finalize("app")
	r = e.apply("bundle", 3, s)
	e.wantOutcomes("apply after gone", r.Objects, "ConfigMap app=Created")
	if !r.Objects[0].Owned || r.Objects[0].UID == first.Objects[0].UID {
		t.Fatalf("recreated object: %+v", r.Objects[0])
	}
}

func TestOwnershipSurvivesLostRecord(t *testing.T) {
	e := newEnv(t, Options{})
	// An object the bundle created, whose record write was lost (crash).
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(e.manifest("configmap.yaml", nil)); err != nil {
		t.Fatal(err)
	}
	obj.SetAnnotations(map[string]string{AnnotationBundle: "bundle"})
	if _, err := e.dyn.Resource(configMaps).Namespace(e.ns).Create(e.ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := e.apply("bundle", 1, spec(e.manifest("configmap.yaml", nil)))
	e.wantOutcomes("apply", r.Objects, "ConfigMap app=Unchanged")
	if !r.Objects[0].Owned {
		t.Fatal("object stamped by the bundle is not owned")
	}
	res := e.deleteUntilDone("bundle", 2, nil)
	e.wantOutcomes("delete", res.Objects, "ConfigMap app=Deleted")
}

package apply

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/baton-dev/baton/pkg/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	workv1 "open-cluster-management.io/api/work/v1"
)

// config selects a strategy for every object of a resource.
func config(resource string, st workv1.UpdateStrategy) workv1.ManifestConfigOption {
	return workv1.ManifestConfigOption{
		ResourceIdentifier: workv1.ResourceIdentifier{Group: "", Resource: resource, Namespace: "*", Name: "*"},
		UpdateStrategy:     &st,
	}
}

func TestApplyUpdate(t *testing.T) {
	e := newEnv(t, Options{})
	cm := func(v string) api.BundleSpec {
		return spec(e.manifest("configmap.yaml", map[string]string{"Value": v}), e.manifest("service.yaml", nil))
	}
	r := e.apply("b", 1, cm("one"))
	e.wantOutcomes("first apply", r.Objects, "ConfigMap app=Created, Service router=Created")
	live := e.get(configMaps, e.ns, "app")
	if r.Objects[0].UID != live.GetUID() || r.Objects[0].ResourceVersion != live.GetResourceVersion() || !r.Objects[0].Exists || !r.Objects[0].Owned {
		t.Fatalf("result identity: got %+v; want uid %s rv %s, exists, owned", r.Objects[0], live.GetUID(), live.GetResourceVersion())
	}
	if live.GetAnnotations()[AnnotationBundle] != "b" {
		t.Fatalf("created object lacks annotation %s=b: %v", AnnotationBundle, live.GetAnnotations())
	}
	if r.Objects[1].GVR != services || r.Objects[1].Strategy != workv1.UpdateStrategyTypeUpdate {
		t.Fatalf("service result: got gvr %v strategy %q", r.Objects[1].GVR, r.Objects[1].Strategy)
	}

	// Same manifests again: nothing is written.
	r = e.apply("b", 1, cm("one"))
	e.wantOutcomes("repeat apply", r.Objects, "ConfigMap app=Unchanged, Service router=Unchanged")
	if got := e.get(configMaps, e.ns, "app").GetResourceVersion(); got != live.GetResourceVersion() {
		t.Fatalf("repeat apply wrote the ConfigMap: rv %s -> %s", live.GetResourceVersion(), got)
	}

	// Someone else adds a label: Update keeps it, changes only what the manifest says.
	obj := e.get(configMaps, e.ns, "app")
	obj.SetLabels(map[string]string{"app": "baton-test", "extra": "kept"})
	if _, err := e.dyn.Resource(configMaps).Namespace(e.ns).Update(e.ctx, obj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r = e.apply("b", 2, cm("two"))
	e.wantOutcomes("changed apply", r.Objects, "ConfigMap app=Configured, Service router=Unchanged")
	got := e.configMap("app")
	if got.Data["key"] != "two" || got.Labels["extra"] != "kept" || got.Annotations[AnnotationBundle] != "b" {
		t.Fatalf("after update: data=%v labels=%v annotations=%v", got.Data, got.Labels, got.Annotations)
	}
	if !r.Objects[0].Owned || r.Objects[0].UID != live.GetUID() {
		t.Fatalf("updated object lost ownership or identity: %+v", r.Objects[0])
	}
}

func TestApplyServerSideApply(t *testing.T) {
	e := newEnv(t, Options{})
	ssa := func(force bool) workv1.UpdateStrategy {
		return workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeServerSideApply,
			ServerSideApply: &workv1.ServerSideApplyConfig{FieldManager: "work-agent-test", Force: force}}
	}
	bundle := func(v string, force bool) api.BundleSpec {
		s := spec(e.manifest("configmap.yaml", map[string]string{"Value": v}))
		s.ManifestConfigs = []workv1.ManifestConfigOption{config("configmaps", ssa(force))}
		return s
	}
	r := e.apply("b", 1, bundle("one", false))
	e.wantOutcomes("first apply", r.Objects, "ConfigMap app=Created")
	if r.Objects[0].Strategy != workv1.UpdateStrategyTypeServerSideApply {
		t.Fatalf("strategy: got %q", r.Objects[0].Strategy)
	}
	if m := managers(e.get(configMaps, e.ns, "app")); !strings.Contains(m, "work-agent-test:Apply") {
		t.Fatalf("managedFields: got %s; want work-agent-test:Apply", m)
	}
	e.wantOutcomes("repeat apply", e.apply("b", 1, bundle("one", false)).Objects, "ConfigMap app=Unchanged")

	// Another manager takes data.key with server-side apply.
	other := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app"},"data":{"key":"theirs"}}`)
	force := true
	if _, err := e.dyn.Resource(configMaps).Namespace(e.ns).Patch(e.ctx, "app", types.ApplyPatchType, other,
		metav1.PatchOptions{FieldManager: "someone-else", Force: &force}); err != nil {
		t.Fatal(err)
	}
	r = e.apply("b", 2, bundle("two", false))
	e.wantOutcomes("conflicting apply", r.Objects, "ConfigMap app=Failed(ApplyConflict)")
	if r.Objects[0].Terminal || !IsRetryable(r.Objects[0].Err) || !r.Retryable() {
		t.Fatalf("a field conflict must be retryable: terminal=%v err=%v", r.Objects[0].Terminal, r.Objects[0].Err)
	}
	if !strings.HasPrefix(r.Objects[0].Err.Error(), "ConfigMap "+e.ns+"/app: apply: ") {
		t.Fatalf("error text: got %q", r.Objects[0].Err)
	}
	if got := e.configMap("app").Data["key"]; got != "theirs" {
		t.Fatalf("conflicting apply without force wrote data.key=%q", got)
	}
	// The record still knows the object after a failed apply.
	if rec := e.record("b"); rec == nil || len(rec.Objects) != 1 || rec.Generation != 2 || !rec.Objects[0].Owned {
		t.Fatalf("record after failed apply: %+v", rec)
	}

	r = e.apply("b", 3, bundle("two", true))
	e.wantOutcomes("forced apply", r.Objects, "ConfigMap app=Configured")
	if got := e.configMap("app").Data["key"]; got != "two" {
		t.Fatalf("forced apply: data.key=%q; want two", got)
	}
}

// managers lists "manager:operation" of an object's managedFields.
func managers(obj *unstructured.Unstructured) string {
	var out []string
	for _, f := range obj.GetManagedFields() {
		out = append(out, f.Manager+":"+string(f.Operation))
	}
	return strings.Join(out, ",")
}

func TestApplyCreateOnly(t *testing.T) {
	e := newEnv(t, Options{})
	bundle := func(v string) api.BundleSpec {
		s := spec(e.manifest("configmap.yaml", map[string]string{"Value": v}))
		s.ManifestConfigs = []workv1.ManifestConfigOption{config("configmaps", workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeCreateOnly})}
		return s
	}
	e.wantOutcomes("create", e.apply("b", 1, bundle("one")).Objects, "ConfigMap app=Created")
	rv := e.configMap("app").ResourceVersion
	r := e.apply("b", 2, bundle("two"))
	e.wantOutcomes("changed manifest", r.Objects, "ConfigMap app=Unchanged")
	if cm := e.configMap("app"); cm.Data["key"] != "one" || cm.ResourceVersion != rv {
		t.Fatalf("CreateOnly updated the object: data=%v rv %s -> %s", cm.Data, rv, cm.ResourceVersion)
	}
	if !r.Objects[0].Owned {
		t.Fatal("object created by CreateOnly is not owned")
	}
	// Deleted by someone: CreateOnly creates it again.
	if err := e.kc.CoreV1().ConfigMaps(e.ns).Delete(e.ctx, "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.wantOutcomes("recreate", e.apply("b", 3, bundle("three")).Objects, "ConfigMap app=Created")
	if got := e.configMap("app").Data["key"]; got != "three" {
		t.Fatalf("recreated data.key=%q; want three", got)
	}
}

func TestApplyReadOnly(t *testing.T) {
	e := newEnv(t, Options{})
	s := spec(e.manifest("service.yaml", nil))
	s.ManifestConfigs = []workv1.ManifestConfigOption{config("services", workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeReadOnly})}

	r := e.apply("b", 1, s)
	e.wantOutcomes("absent", r.Objects, "Service router=Skipped(NotFound)")
	if r.Objects[0].Exists || r.Objects[0].UID != "" || r.Objects[0].Err != nil {
		t.Fatalf("absent ReadOnly object: got %+v", r.Objects[0])
	}
	if e.get(services, e.ns, "router") != nil {
		t.Fatal("ReadOnly created the object")
	}

	// Someone else creates it, with other contents.
	other := e.manifest("service.yaml", nil)
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(other); err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedField(obj.Object, "other", "spec", "selector", "app")
	created, err := e.dyn.Resource(services).Namespace(e.ns).Create(e.ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r = e.apply("b", 2, s)
	e.wantOutcomes("present", r.Objects, "Service router=Unchanged")
	if !r.Objects[0].Exists || r.Objects[0].UID != created.GetUID() || r.Objects[0].Owned {
		t.Fatalf("present ReadOnly object: got %+v; want exists, uid %s, not owned", r.Objects[0], created.GetUID())
	}
	live := e.get(services, e.ns, "router")
	if live.GetResourceVersion() != created.GetResourceVersion() {
		t.Fatal("ReadOnly wrote the object")
	}

	res, done, err := e.a.Delete(e.ctx, "b", 3, nil)
	if err != nil || !done {
		t.Fatalf("Delete: done=%v err=%v", done, err)
	}
	e.wantOutcomes("delete", res.Objects, "Service router=Skipped(ReadOnly)")
	if e.get(services, e.ns, "router") == nil {
		t.Fatal("Delete removed a ReadOnly object")
	}
}

func TestApplyOrder(t *testing.T) {
	e := newEnv(t, Options{})
	child := e.ns + "-child"
	// The ConfigMap comes first but needs the Namespace listed after it.
	s := spec(
		e.manifest("webhook.yaml", map[string]string{"Name": e.ns}),
		e.manifest("configmap.yaml", map[string]string{"Namespace": child}),
		e.manifest("namespace.yaml", map[string]string{"Name": child}),
	)
	r := e.apply("b", 1, s)
	e.wantOutcomes("ordered apply", r.Objects, "ValidatingWebhookConfiguration "+e.ns+"=Created, ConfigMap app=Created, Namespace "+child+"=Created")
	if r.Objects[0].Namespace != "" || r.Objects[1].Namespace != child {
		t.Fatalf("namespaces: webhook %q, configmap %q", r.Objects[0].Namespace, r.Objects[1].Namespace)
	}
	// Delete removes the Namespace last; no controller finalizes it here, so
	// it stays Terminating and the delete is not done.
	res, done, err := e.a.Delete(e.ctx, "b", 2, nil)
	if err != nil || done {
		t.Fatalf("Delete: done=%v err=%v; want not done (namespace terminating)", done, err)
	}
	e.wantOutcomes("delete", res.Objects, "ValidatingWebhookConfiguration "+e.ns+"=Deleted, ConfigMap app=Deleted, Namespace "+child+"=Deleting")
}

func TestApplyNamespaceDefault(t *testing.T) {
	e := newEnv(t, Options{})
	raw := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + e.ns + `-nons"},"data":{"a":"b"}}`)
	r := e.apply("b", 1, spec(raw))
	if r.Objects[0].Namespace != "default" || r.Objects[0].Outcome != Created {
		t.Fatalf("manifest without namespace: got %+v; want Created in default", r.Objects[0])
	}
	if _, done, err := e.a.Delete(e.ctx, "b", 2, nil); err != nil || !done {
		t.Fatalf("Delete: done=%v err=%v", done, err)
	}
}

func TestApplyCRDAndCustomResource(t *testing.T) {
	e := newEnv(t, Options{})
	group := e.ns + ".example.com"
	widgets := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}
	// The custom resource is listed before its CRD.
	s := spec(e.manifest("widget.yaml", nil), e.manifest("crd.yaml", nil))
	r := e.apply("b", 1, s)
	e.wantOutcomes("apply", r.Objects, "Widget gizmo=Created, CustomResourceDefinition widgets."+group+"=Created")
	if r.Objects[0].GVR != widgets {
		t.Fatalf("custom resource GVR: got %v; want %v", r.Objects[0].GVR, widgets)
	}
	if w := e.get(widgets, e.ns, "gizmo"); w == nil {
		t.Fatal("custom resource not created")
	}
	e.wantOutcomes("repeat", e.apply("b", 1, s).Objects, "Widget gizmo=Unchanged, CustomResourceDefinition widgets."+group+"=Unchanged")

	res := e.deleteUntilDone("b", 2, nil)
	e.wantOutcomes("delete", res.Objects, "Widget gizmo=Deleted, CustomResourceDefinition widgets."+group+"=Deleted")
}

func TestApplyErrors(t *testing.T) {
	e := newEnv(t, Options{})
	s := spec(
		json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"namespace":"`+e.ns+`"}}`),
		json.RawMessage(`{"apiVersion":"nowhere.example.com/v1","kind":"Gadget","metadata":{"name":"g","namespace":"`+e.ns+`"}}`),
		json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bad","namespace":"`+e.ns+`","labels":{"x":"not a valid value!"}}}`),
		json.RawMessage(`"not an object"`),
		e.manifest("configmap.yaml", nil),
	)
	r := e.apply("b", 1, s)
	e.wantOutcomes("apply", r.Objects, "ConfigMap =Failed(InvalidManifest), Gadget g=Failed(UnknownKind), ConfigMap bad=Failed(Invalid),  =Failed(InvalidManifest), ConfigMap app=Created")
	for i := range 4 {
		o := r.Objects[i]
		if !o.Terminal || IsRetryable(o.Err) || o.Retryable() {
			t.Errorf("object %d: terminal=%v retryable=%v; want terminal: %v", i, o.Terminal, IsRetryable(o.Err), o.Err)
		}
	}
	if r.Retryable() {
		t.Error("Result.Retryable with only terminal failures")
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "Gadget "+e.ns+"/g: resolve: ") ||
		!strings.Contains(err.Error(), "ConfigMap "+e.ns+"/bad: create: ") || !strings.Contains(err.Error(), "manifest[0]: decode: ") {
		t.Errorf("joined error: %v", err)
	}
	var ae *Error
	if !errors.As(r.Objects[2].Err, &ae) || ae.Action != "create" {
		t.Errorf("error type: got %T %v", r.Objects[2].Err, r.Objects[2].Err)
	}

	// An unidentified manifest blocks removal: the old object stays recorded.
	e.apply("c", 1, spec(e.manifest("configmap.yaml", map[string]string{"Name": "keep"})))
	r = e.apply("c", 2, spec(json.RawMessage(`{"apiVersion":"nowhere.example.com/v1","kind":"Gadget","metadata":{"name":"g"}}`)))
	if len(r.Removed) != 0 || e.configMap("keep") == nil {
		t.Fatalf("removal ran although a manifest was unidentified: removed %s", outcomes(r.Removed))
	}
	if rec := e.record("c"); rec == nil || len(rec.Objects) != 1 || rec.Objects[0].Name != "keep" {
		t.Fatalf("record after unidentified manifest: %+v", rec)
	}
}

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

var deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

func (e *env) deployment(replicas int, image string) json.RawMessage {
	e.t.Helper()
	b, err := json.Marshal(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": e.ns},
		"spec": map[string]any{"replicas": replicas, "selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec": map[string]any{"containers": []any{
					map[string]any{"name": "sidecar", "image": "side:1"},
					map[string]any{"name": "app", "image": image}}}}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func ignoring(resource, group string, fields ...workv1.IgnoreField) workv1.ManifestConfigOption {
	c := config(resource, workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeServerSideApply,
		ServerSideApply: &workv1.ServerSideApplyConfig{FieldManager: "work-agent", IgnoreFields: fields}})
	c.ResourceIdentifier.Group = group
	return c
}

func nested(t *testing.T, obj *unstructured.Unstructured, fields ...string) any {
	t.Helper()
	v, _, err := unstructured.NestedFieldNoCopy(obj.Object, fields...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func appImage(t *testing.T, obj *unstructured.Unstructured) string {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
	for _, c := range cs {
		if m := c.(map[string]any); m["name"] == "app" {
			return m["image"].(string)
		}
	}
	return ""
}

// TestIgnoreFieldsOnSpokePresent: a field ignored OnSpokePresent is applied
// when the object is created, then left as the cluster has it: neither
// overwritten after another actor changed it nor removed (a Deployment
// would fall back to one replica) when nobody did.
func TestIgnoreFieldsOnSpokePresent(t *testing.T) {
	e := newEnv(t, Options{})
	bundle := func(replicas int, image string) api.BundleSpec {
		s := spec(e.deployment(replicas, image))
		s.ManifestConfigs = []workv1.ManifestConfigOption{ignoring("deployments", "apps",
			workv1.IgnoreField{Condition: workv1.IgnoreFieldsConditionOnSpokePresent, JSONPaths: []string{".spec.replicas"}},
			workv1.IgnoreField{Condition: workv1.IgnoreFieldsConditionOnSpokePresent,
				JQPathExpressions: []string{`.spec.template.spec.containers[] | select(.name == "sidecar") | .image`}})}
		return s
	}
	e.wantOutcomes("create", e.apply("b", 1, bundle(3, "app:1")).Objects, "Deployment web=Created")
	if got := nested(t, e.get(deployments, e.ns, "web"), "spec", "replicas"); got != int64(3) {
		t.Fatalf("created with replicas %v; want the manifest's 3", got)
	}

	// Nobody else touched it: a new generation keeps replicas at 3.
	e.wantOutcomes("new image", e.apply("b", 2, bundle(7, "app:2")).Objects, "Deployment web=Configured")
	live := e.get(deployments, e.ns, "web")
	if got := nested(t, live, "spec", "replicas"); got != int64(3) || appImage(t, live) != "app:2" {
		t.Fatalf("after re-apply: replicas %v image %s; want 3 (kept, not removed or taken from the manifest) and app:2", got, appImage(t, live))
	}

	// Another actor scales it and changes the sidecar: both stay.
	patch := []byte(`{"spec":{"replicas":5,"template":{"spec":{"containers":[{"name":"sidecar","image":"side:patched"}]}}}}`)
	if _, err := e.dyn.Resource(deployments).Namespace(e.ns).Patch(e.ctx, "web", types.StrategicMergePatchType, patch,
		metav1.PatchOptions{FieldManager: "kubectl-scale"}); err != nil {
		t.Fatal(err)
	}
	e.wantOutcomes("after scale", e.apply("b", 3, bundle(7, "app:3")).Objects, "Deployment web=Configured")
	live = e.get(deployments, e.ns, "web")
	cs, _, _ := unstructured.NestedSlice(live.Object, "spec", "template", "spec", "containers")
	side := ""
	for _, c := range cs {
		if m := c.(map[string]any); m["name"] == "sidecar" {
			side = m["image"].(string)
		}
	}
	if got := nested(t, live, "spec", "replicas"); got != int64(5) || side != "side:patched" || appImage(t, live) != "app:3" {
		t.Fatalf("after another actor's change: replicas %v sidecar %s app %s; want 5, side:patched, app:3", got, side, appImage(t, live))
	}
}

// TestIgnoreFieldsOnSpokeChange: a field ignored OnSpokeChange keeps a
// value changed on the cluster while the manifest is unchanged, and takes
// the manifest's value again when the manifest changes.
func TestIgnoreFieldsOnSpokeChange(t *testing.T) {
	e := newEnv(t, Options{})
	bundle := func(a, b string) api.BundleSpec {
		raw, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "app", "namespace": e.ns}, "data": map[string]any{"a": a, "b": b}})
		s := spec(raw)
		c := ignoring("configmaps", "",
			workv1.IgnoreField{Condition: workv1.IgnoreFieldsConditionOnSpokeChange, JSONPointers: []string{"/data/a"}})
		// Force: taking the field back from the actor that changed it is a
		// conflict otherwise (reported as ApplyConflict).
		c.UpdateStrategy.ServerSideApply.Force = true
		s.ManifestConfigs = []workv1.ManifestConfigOption{c}
		return s
	}
	e.apply("c", 1, bundle("1", "1"))
	cm := e.configMap("app")
	if cm.Data["a"] != "1" || cm.Annotations[AnnotationManifestHash] == "" {
		t.Fatalf("created: data %v annotations %v; want a=1 and the manifest hash", cm.Data, cm.Annotations)
	}
	cm.Data["a"] = "changed-on-cluster"
	if _, err := e.kc.CoreV1().ConfigMaps(e.ns).Update(e.ctx, cm, metav1.UpdateOptions{FieldManager: "someone"}); err != nil {
		t.Fatal(err)
	}
	e.apply("c", 2, bundle("1", "1"))
	if got := e.configMap("app").Data["a"]; got != "changed-on-cluster" {
		t.Fatalf("unchanged manifest: a = %q; want the cluster's change kept", got)
	}
	e.wantOutcomes("changed manifest", e.apply("c", 3, bundle("1", "2")).Objects, "ConfigMap app=Configured")
	if got := e.configMap("app").Data; got["a"] != "1" || got["b"] != "2" {
		t.Fatalf("changed manifest: data %v; want a=1 (the manifest's again), b=2", got)
	}
}

// TestIgnoreFieldsBadPath: an expression that cannot be resolved fails the
// manifest with OCM's reason, terminally, and writes nothing.
func TestIgnoreFieldsBadPath(t *testing.T) {
	e := newEnv(t, Options{})
	s := spec(e.deployment(2, "app:1"))
	s.ManifestConfigs = []workv1.ManifestConfigOption{ignoring("deployments", "apps",
		workv1.IgnoreField{Condition: workv1.IgnoreFieldsConditionOnSpokePresent, JSONPointers: []string{"/spec/replicas/count"}})}
	r := e.apply("bad", 1, s)
	e.wantOutcomes("bad pointer", r.Objects, "Deployment web=Failed("+ReasonIgnoreFieldError+")")
	var oe *Error
	if !r.Objects[0].Terminal || !errors.As(r.Objects[0].Err, &oe) || oe.Err == nil {
		t.Fatalf("result = %+v; want a terminal *Error", r.Objects[0])
	}
	if got := r.Objects[0].Err.Error(); got == "" || !strings.Contains(got, "/spec/replicas/count") || !strings.Contains(got, "cannot step into a number") {
		t.Errorf("error %q does not name the pointer and the cause", got)
	}
	if e.get(deployments, e.ns, "web") != nil {
		t.Error("the deployment was created despite the bad path")
	}
}

package apply

import (
	"encoding/json"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	workv1 "open-cluster-management.io/api/work/v1"
)

var resourceQuotas = schema.GroupVersionResource{Version: "v1", Resource: "resourcequotas"}

// TestDriftedAsTheServerSees: drift is what the API server would change,
// so canonicalised quantities, defaults and ignored status are not drift;
// a field someone changed is, under both writing strategies.
func TestDriftedAsTheServerSees(t *testing.T) {
	e := newEnv(t, Options{})
	quota := func(cpu string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "ResourceQuota",
			"metadata": map[string]any{"name": "q", "namespace": e.ns, "labels": map[string]any{"app": "q"}},
			"spec":     map[string]any{"hard": map[string]any{"cpu": cpu, "memory": "1024Mi"}},
			"status":   map[string]any{"used": map[string]any{"cpu": "99"}}})
		return b
	}
	for _, st := range []workv1.UpdateStrategyType{workv1.UpdateStrategyTypeUpdate, workv1.UpdateStrategyTypeServerSideApply} {
		t.Run(string(st), func(t *testing.T) {
			id := "drift-" + string(st)
			s := spec(quota("1000m"))
			s.ManifestConfigs = []workv1.ManifestConfigOption{config("resourcequotas", workv1.UpdateStrategy{Type: st})}
			res := e.apply(id, 1, s)
			r := res.Objects[0]
			if r.Outcome == Failed {
				t.Fatalf("apply: %v", r.Err)
			}
			manifest := &unstructured.Unstructured{}
			if err := manifest.UnmarshalJSON(s.Manifests[0]); err != nil {
				t.Fatal(err)
			}
			live := e.get(resourceQuotas, e.ns, "q")
			if cpu, _, _ := unstructured.NestedString(live.Object, "spec", "hard", "cpu"); cpu != "1" {
				t.Fatalf("server stored cpu %q; the test expects it canonicalised to \"1\"", cpu)
			}
			drifted := func(what string, r ObjectResult, live *unstructured.Unstructured, want bool) {
				t.Helper()
				got, err := e.a.Drifted(e.ctx, id, r, manifest, live, s.ManifestConfigs)
				if err != nil || got != want {
					t.Errorf("%s: Drifted = %v, %v; want %v", what, got, err, want)
				}
			}
			drifted("1000m applied, 1 stored", r, live, false)
			drifted("again (cached verdict)", r, live, false)

			// Someone else adds a label: not drift for either strategy.
			live.SetLabels(map[string]string{"app": "q", "team": "x"})
			live = e.update(resourceQuotas, live)
			drifted("a label added by someone else", r, live, false)

			// Someone changes a field the manifest sets: drift.
			if err := unstructured.SetNestedField(live.Object, "2", "spec", "hard", "cpu"); err != nil {
				t.Fatal(err)
			}
			live = e.update(resourceQuotas, live)
			drifted("cpu changed to 2", r, live, true)

			stale := r
			stale.ResourceVersion = fmt.Sprint(1 << 40)
			drifted("cache older than the agent's own write", stale, live, false)
			drifted("deleted", r, nil, true)
			ro := r
			ro.Strategy = workv1.UpdateStrategyTypeReadOnly
			drifted("read-only", ro, nil, false)
			co := r
			co.Strategy = workv1.UpdateStrategyTypeCreateOnly
			drifted("create-only edited", co, live, false)
			drifted("create-only deleted", co, nil, true)
			failed := r
			failed.Outcome = Failed
			drifted("failed apply", failed, nil, false)
			if err := e.dyn.Resource(resourceQuotas).Namespace(e.ns).Delete(e.ctx, "q", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func (e *env) update(gvr schema.GroupVersionResource, obj *unstructured.Unstructured) *unstructured.Unstructured {
	e.t.Helper()
	out, err := e.dyn.Resource(gvr).Namespace(obj.GetNamespace()).Update(e.ctx, obj, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

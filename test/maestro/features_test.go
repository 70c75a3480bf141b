package maestro

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	workv1 "open-cluster-management.io/api/work/v1"
)

// manifestCondition reports whether condition typ of the work's first
// manifest has status want.
func manifestCondition(w *workv1.ManifestWork, typ string, want metav1.ConditionStatus) bool {
	ms := w.Status.ResourceStatus.Manifests
	if len(ms) == 0 {
		return false
	}
	c := meta.FindStatusCondition(ms[0].Conditions, typ)
	return c != nil && c.Status == want
}

// TestManifestWorkFeatures: what Maestro's e2e suite checks of ManifestWork
// features through the source client — a ReadOnly work's status follows
// the live object, SSA with a field manager of the client's choosing, and
// a Deployment whose pods never start is Available in OCM's meaning (it
// exists) while not ready.
func TestManifestWorkFeatures(t *testing.T) {
	d, ns, ctx, src, rec := watched(t, "features")

	t.Run("read-only status", func(t *testing.T) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "observed"}, Data: map[string]string{"v": "one"}}
		if _, err := d.kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := src.holder.ManifestWorks("c1").Create(ctx, readOnlyWork("ro", ns, "observed"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the read-only work's feedback", func() bool { return rec.has(watch.Modified, "ro", withFeedback("one")) })
		cm.Data["v"] = "two"
		if _, err := d.kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the read-only work's feedback after the object changed", func() bool {
			return rec.has(watch.Modified, "ro", withFeedback("two"))
		})
		live, err := d.kube.CoreV1().ConfigMaps(ns).Get(ctx, "observed", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range live.ManagedFields {
			if f.Operation == metav1.ManagedFieldsOperationApply {
				t.Errorf("a read-only work wrote the object: managed fields %+v", live.ManagedFields)
			}
		}
	})

	t.Run("server-side apply with a custom field manager", func(t *testing.T) {
		wk := configMapWork("ssa", ns, "ssa", "applied", nil)
		wk.Spec.ManifestConfigs[0].UpdateStrategy = &workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeServerSideApply,
			ServerSideApply: &workv1.ServerSideApplyConfig{FieldManager: "my-operator", Force: true}}
		if _, err := src.holder.ManifestWorks("c1").Create(ctx, wk, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create with field manager my-operator: %v", err)
		}
		eventually(t, "the SSA work applied", func() bool { return rec.has(watch.Modified, "ssa", withFeedback("applied")) })
		live, err := d.kube.CoreV1().ConfigMaps(ns).Get(ctx, "ssa", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range live.ManagedFields {
			found = found || (f.Manager == "my-operator" && f.Operation == metav1.ManagedFieldsOperationApply)
		}
		if !found {
			t.Errorf("no Apply entry of field manager my-operator: %+v", live.ManagedFields)
		}
	})

	t.Run("deployment whose pods never start", func(t *testing.T) {
		// The test cluster runs no controllers: the Deployment exists and
		// never gets a pod.
		raw, _ := json.Marshal(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "pending", "namespace": ns},
			"spec": map[string]any{"replicas": 1, "selector": map[string]any{"matchLabels": map[string]any{"app": "pending"}},
				"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "pending"}},
					"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "registry.invalid/never:1"}}}}}})
		wk := &workv1.ManifestWork{ObjectMeta: metav1.ObjectMeta{Name: "deploy"},
			Spec: workv1.ManifestWorkSpec{Workload: workv1.ManifestsTemplate{Manifests: []workv1.Manifest{{RawExtension: runtime.RawExtension{Raw: raw}}}},
				ManifestConfigs: []workv1.ManifestConfigOption{{
					ResourceIdentifier: workv1.ResourceIdentifier{Group: "apps", Resource: "deployments", Name: "pending", Namespace: ns},
					FeedbackRules:      []workv1.FeedbackRule{{Type: workv1.WellKnownStatusType}},
				}}}}
		if _, err := src.holder.ManifestWorks("c1").Create(ctx, wk, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		available := func(w *workv1.ManifestWork) bool {
			return manifestCondition(w, workv1.ManifestAvailable, metav1.ConditionTrue) &&
				meta.IsStatusConditionTrue(w.Status.Conditions, workv1.WorkAvailable) && applied(w)
		}
		eventually(t, "the Deployment Applied and Available (it exists)", func() bool { return rec.has(watch.Modified, "deploy", available) })
		got, err := src.holder.ManifestWorks("c1").Get(ctx, "deploy", metav1.GetOptions{})
		if err != nil || !available(got) {
			t.Fatalf("Get: %v, conditions %+v", err, got.Status)
		}
		for _, v := range got.Status.ResourceStatus.Manifests[0].StatusFeedbacks.Values {
			if v.Name == "ReadyReplicas" && v.Value.Integer != nil && *v.Value.Integer != 0 {
				t.Errorf("ReadyReplicas = %d for a Deployment without pods", *v.Value.Integer)
			}
		}
	})
}

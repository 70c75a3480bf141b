package apply

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/baton-dev/baton/pkg/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestAppliedWorkName(t *testing.T) {
	h := HubHash("grpc://hub:8091")
	if len(h) != 64 {
		t.Fatalf("hub hash %q is not a hex SHA-256", h)
	}
	if got := AppliedWorkName(h, "3f1c5a6e-0d2b-4a55-9b1e-1a2b3c4d5e6f"); got != h+"-3f1c5a6e-0d2b-4a55-9b1e-1a2b3c4d5e6f" {
		t.Errorf("name = %s", got)
	}
	if got := AppliedWorkName(h, "Not A Name"); !strings.HasPrefix(got, h+"-") || strings.Contains(got, " ") {
		t.Errorf("name of an id that is no DNS name = %s", got)
	}
}

// TestAppliedWorkFollowsRecord: every bundle has an AppliedManifestWork
// named <hub hash>-<bundle id> with the bundle's labels and the objects it
// applied (with uids), updated when the bundle changes and removed when
// its deletion completes; SyncAppliedWorks removes those of bundles the
// agent no longer holds.
func TestAppliedWorkFollowsRecord(t *testing.T) {
	e := newEnv(t, Options{HubHash: HubHash(t.Name())})
	id := "amw-" + e.ns
	meta := api.ObjectMeta{Name: "shared-ingress", Labels: map[string]string{"app": "ingress", "tier": "edge"}}
	two := spec(e.manifest("configmap.yaml", nil), e.manifest("service.yaml", nil))
	if _, err := e.a.Apply(e.ctx, id, 1, meta, two); err != nil {
		t.Fatal(err)
	}
	w, err := e.a.AppliedWork(e.ctx, id)
	if err != nil || w == nil {
		t.Fatalf("AppliedManifestWork = %v, %v; want it created", w, err)
	}
	if w.Name != AppliedWorkName(HubHash(t.Name()), id) || w.Spec.HubHash != HubHash(t.Name()) ||
		w.Spec.ManifestWorkName != id || w.Spec.AgentID != e.opts.AgentName {
		t.Errorf("AppliedManifestWork %s spec = %+v", w.Name, w.Spec)
	}
	if w.Labels["app"] != "ingress" || w.Labels["tier"] != "edge" || w.Labels[LabelBundle] != id {
		t.Errorf("labels = %v; want the bundle's labels and %s", w.Labels, LabelBundle)
	}
	cm, svc := e.get(configMaps, e.ns, "app"), e.get(services, e.ns, "router")
	res := w.Status.AppliedResources
	if len(res) != 2 || res[0].Resource != "configmaps" || res[0].UID != string(cm.GetUID()) || res[0].Version != "v1" ||
		res[0].Namespace != e.ns || res[1].Resource != "services" || res[1].UID != string(svc.GetUID()) {
		j, _ := json.Marshal(res)
		t.Fatalf("appliedResources = %s; want the ConfigMap and the Service with their uids", j)
	}

	// The Service leaves the bundle: it leaves the AppliedManifestWork too.
	meta.Labels["tier"] = "core"
	if _, err := e.a.Apply(e.ctx, id, 2, meta, spec(e.manifest("configmap.yaml", nil))); err != nil {
		t.Fatal(err)
	}
	w, _ = e.a.AppliedWork(e.ctx, id)
	if w == nil || len(w.Status.AppliedResources) != 1 || w.Status.AppliedResources[0].Resource != "configmaps" || w.Labels["tier"] != "core" {
		t.Fatalf("after generation 2: %+v", w)
	}

	// Deleted by hand: the next pass writes it again.
	if err := e.dyn.Resource(appliedWorks).Delete(e.ctx, w.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.Apply(e.ctx, id, 2, meta, spec(e.manifest("configmap.yaml", nil))); err != nil {
		t.Fatal(err)
	}
	if w, _ = e.a.AppliedWork(e.ctx, id); w == nil {
		t.Fatal("AppliedManifestWork not restored by the next apply")
	}

	if _, done, err := e.a.Delete(e.ctx, id, 3, nil); err != nil || !done {
		t.Fatalf("Delete = %v, %v", done, err)
	}
	if w, _ = e.a.AppliedWork(e.ctx, id); w != nil {
		t.Fatalf("AppliedManifestWork outlived its bundle: %+v", w)
	}

	// One left behind (a crash between record and mirror) goes at sync.
	stray := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "work.open-cluster-management.io/v1", "kind": "AppliedManifestWork",
		"metadata": map[string]any{"name": AppliedWorkName(HubHash(t.Name()), "gone-"+e.ns),
			"labels": map[string]any{LabelAgent: agentLabel(e.opts.AgentName), LabelManaged: "baton-agent"}},
		"spec": map[string]any{"hubHash": HubHash(t.Name()), "manifestWorkName": "gone-" + e.ns}}}
	if _, err := e.dyn.Resource(appliedWorks).Create(e.ctx, stray, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	recs, err := e.a.Records(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.a.SyncAppliedWorks(e.ctx, recs); err != nil {
		t.Fatal(err)
	}
	if w, _ := e.a.AppliedWork(e.ctx, "gone-"+e.ns); w != nil {
		t.Error("SyncAppliedWorks kept the AppliedManifestWork of a bundle without record")
	}
}

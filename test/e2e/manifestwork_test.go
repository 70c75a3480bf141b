package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/baton-dev/baton/internal/agent/apply"
	"github.com/baton-dev/baton/pkg/api"
)

// TestManifestWorkFeatures drives OCM's ManifestWork features through the
// built server and agent on a real kube-apiserver: a Deployment whose pods
// never start is Available (it exists) while its Ready rule says it is
// not; the bundle's executor is refused until its service account is
// granted the verbs, then applied as it; an AppliedManifestWork with the
// bundle's labels follows the bundle and goes with it.
func TestManifestWorkFeatures(t *testing.T) {
	c := newCluster(t, sqliteStore)
	c.createConsumer("mw-1")
	ns := c.namespace("manifestwork")
	hub := apply.HubHash("e2e-" + ns)
	c.startAgentWith("mw-1", []string{"--hub-hash", hub})
	ctx := context.Background()
	if _, err := c.kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	b := c.createBundle(map[string]any{
		"consumer_name": "mw-1", "name": "web",
		"metadata": map[string]any{"labels": map[string]any{"app": "web", "team": "edge"}},
		"manifests": []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "namespace": ns},
			"spec": map[string]any{"replicas": 2, "selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
				"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
					"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "example.invalid/never:1"}}}}}}},
		"manifest_configs": []any{map[string]any{
			"resourceIdentifier": map[string]any{"group": "apps", "resource": "deployments", "name": "web", "namespace": ns},
			"updateStrategy":     map[string]any{"type": "ServerSideApply"},
			"feedbackRules":      []any{map[string]any{"type": "WellKnownStatus"}},
			"conditionRules":     []any{map[string]any{"type": "WellKnownConditions", "condition": "Ready"}},
			"feedbackScrapeType": "Poll",
		}},
		"executor": map[string]any{"subject": map[string]any{"type": "ServiceAccount",
			"serviceAccount": map[string]any{"namespace": ns, "name": "deployer"}}},
	})
	if b.Executor == nil || b.Executor.Subject.ServiceAccount.Name != "deployer" {
		t.Fatalf("bundle executor = %+v; want it kept", b.Executor)
	}

	manifestCond := func(got api.ResourceBundle, typ string) metav1.Condition {
		e, _ := entry(got)
		cond, _ := condition(e.Conditions, typ)
		return cond
	}
	eventually(t, 15*time.Second, "the executor refused", func() bool {
		got, _, err := c.getBundle(b.ID)
		a := manifestCond(got, api.ConditionApplied)
		return err == nil && a.Status == metav1.ConditionFalse && a.Reason == apply.ReasonExecutorForbidden
	})
	if _, err := c.kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Deployment written before the executor was allowed: %v", err)
	}

	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"deployments"},
			Verbs: []string{"create", "update", "patch", "get", "delete"}}}}
	if _, err := c.kube.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "deployer"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "deployer"}}}
	if _, err := c.kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got api.ResourceBundle
	took := eventually(t, 40*time.Second, "applied as the executor, Available but not Ready", func() bool {
		var err error
		got, _, err = c.getBundle(b.ID)
		return err == nil && manifestCond(got, api.ConditionApplied).Status == metav1.ConditionTrue &&
			manifestCond(got, api.ConditionAvailable).Status == metav1.ConditionTrue &&
			manifestCond(got, "Ready").Status == metav1.ConditionFalse
	})
	t.Logf("RBAC granted → applied in %v", took)
	if !bundleCond(got, api.ConditionAvailable) || bundleCond(got, "Ready") {
		t.Errorf("bundle conditions = %s; want Available=True, Ready=False", dump(got.Status.Conditions))
	}
	deploy, err := c.kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	dyn := dynamic.NewForConfigOrDie(kubeCfg)
	amws := dyn.Resource(schema.GroupVersionResource{Group: "work.open-cluster-management.io", Version: "v1", Resource: "appliedmanifestworks"})
	name := apply.AppliedWorkName(hub, b.ID)
	eventually(t, 10*time.Second, "the AppliedManifestWork", func() bool {
		w, err := amws.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		res, _, _ := unstructuredSlice(w.Object, "status", "appliedResources")
		return w.GetLabels()["team"] == "edge" && len(res) == 1 && res[0]["uid"] == string(deploy.UID) && res[0]["resource"] == "deployments"
	})

	c.mustDo(http.MethodDelete, "/resource-bundles/"+b.ID, nil, nil)
	eventually(t, 20*time.Second, "the bundle, its Deployment and its AppliedManifestWork gone", func() bool {
		_, code, _ := c.getBundle(b.ID)
		_, derr := c.kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		_, werr := amws.Get(ctx, name, metav1.GetOptions{})
		return code == http.StatusNotFound && apierrors.IsNotFound(derr) && apierrors.IsNotFound(werr)
	})
}

// unstructuredSlice returns a list of objects at path.
func unstructuredSlice(obj map[string]any, path ...string) ([]map[string]any, bool, error) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, nil
		}
		cur = m[p]
	}
	l, ok := cur.([]any)
	if !ok {
		return nil, false, nil
	}
	out := make([]map[string]any, 0, len(l))
	for _, x := range l {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out, true, nil
}

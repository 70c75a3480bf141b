package apply

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	workv1 "open-cluster-management.io/api/work/v1"
)

func TestVerbsFor(t *testing.T) {
	for _, tc := range []struct {
		st      workv1.UpdateStrategyType
		deletes bool
		want    string
	}{
		{workv1.UpdateStrategyTypeReadOnly, true, "get"},
		{workv1.UpdateStrategyTypeCreateOnly, false, "create,get"},
		{workv1.UpdateStrategyTypeServerSideApply, true, "create,update,patch,get,delete"},
		{workv1.UpdateStrategyTypeUpdate, false, "create,update,patch,get"},
	} {
		if got := strings.Join(verbsFor(tc.st, tc.deletes), ","); got != tc.want {
			t.Errorf("verbsFor(%s, %v) = %s; want %s", tc.st, tc.deletes, got, tc.want)
		}
	}
}

// onlyUser installs an admission policy that lets only user create or
// update ConfigMaps in ns, and waits until it is in force.
func (e *env) onlyUser(user string) {
	e.t.Helper()
	name := "only-executor-" + e.ns
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: e.ns}}
	ar := e.kc.AdmissionregistrationV1()
	policy := &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{NamespaceSelector: sel,
				ResourceRules: []admissionv1.NamedRuleWithOperations{{RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}}}},
			Validations: []admissionv1.Validation{{Expression: "request.userInfo.username == '" + user + "'",
				Message: "only the executor writes ConfigMaps here"}},
		}}
	if _, err := ar.ValidatingAdmissionPolicies().Create(e.ctx, policy, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources:    &admissionv1.MatchResources{NamespaceSelector: sel}}}
	if _, err := ar.ValidatingAdmissionPolicyBindings().Create(e.ctx, binding, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = ar.ValidatingAdmissionPolicyBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = ar.ValidatingAdmissionPolicies().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: e.ns}}
		_, err := e.kc.CoreV1().ConfigMaps(e.ns).Create(e.ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("admission policy not in force after 30s (probe: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestExecutor: a bundle with an executor is checked with
// SubjectAccessReviews first (a clear, retryable failure while the service
// account lacks a verb, nothing written), then applied as that service
// account: an admission policy that admits only it lets the write through.
func TestExecutor(t *testing.T) {
	e := newEnv(t, Options{})
	if _, err := e.kc.CoreV1().ServiceAccounts(e.ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + e.ns + ":deployer"
	e.onlyUser(user)

	s := spec(e.manifest("configmap.yaml", nil))
	s.ManifestConfigs = []workv1.ManifestConfigOption{config("configmaps", workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeServerSideApply})}
	s.Executor = &workv1.ManifestWorkExecutor{Subject: workv1.ManifestWorkExecutorSubject{Type: workv1.ExecutorSubjectTypeServiceAccount,
		ServiceAccount: &workv1.ManifestWorkSubjectServiceAccount{Namespace: e.ns, Name: "deployer"}}}
	r := e.apply("ex", 1, s)
	e.wantOutcomes("without RBAC", r.Objects, "ConfigMap app=Failed("+ReasonExecutorForbidden+")")
	if !r.Retryable() {
		t.Error("a denied executor is not retried")
	}
	msg := r.Objects[0].Err.Error()
	for _, want := range []string{"executor service account " + e.ns + "/deployer", "may not create, update, patch, get, delete configmaps"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if e.configMap("app") != nil {
		t.Fatal("the ConfigMap was written although the executor may not")
	}

	// Grant the verbs; the next apply goes through, as the service account.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: e.ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
			Verbs: []string{"create", "update", "patch", "get", "delete"}}}}
	if _, err := e.kc.RbacV1().Roles(e.ns).Create(e.ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: e.ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "deployer"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: e.ns, Name: "deployer"}}}
	if _, err := e.kc.RbacV1().RoleBindings(e.ns).Create(e.ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r = e.apply("ex", 1, s)
		if r.Objects[0].Outcome == Created {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not applied after RBAC was granted: %s: %v", outcomes(r.Objects), r.Err())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if cm := e.configMap("app"); cm == nil || cm.Data["key"] != "one" {
		t.Fatalf("ConfigMap = %+v; want it applied", cm)
	}

	// The agent's own writes are refused here: the ConfigMap was written as
	// the executor, not by the agent.
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "by-agent", Namespace: e.ns}}
	if _, err := e.kc.CoreV1().ConfigMaps(e.ns).Create(e.ctx, probe, metav1.CreateOptions{}); err == nil {
		t.Fatal("the admission policy admits the agent's identity; the test proves nothing")
	}

	// Deleting uses the agent's identity and completes.
	if _, done, err := e.a.Delete(e.ctx, "ex", 2, nil); err != nil || !done {
		t.Fatalf("Delete = done %v, %v", done, err)
	}
	if e.configMap("app") != nil {
		t.Error("the ConfigMap outlived the bundle")
	}
}

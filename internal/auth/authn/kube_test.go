package authn

import (
	"context"
	"errors"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/testenv"
)

var kubeCfg *rest.Config

func TestMain(m *testing.M) { testenv.Main(m, &kubeCfg) }

// TestKubernetesTokens authenticates a real service-account token with
// TokenReview and authorizes its sources with SubjectAccessReview on
// /sources/<source> against a real kube-apiserver with RBAC.
func TestKubernetesTokens(t *testing.T) {
	if kubeCfg == nil {
		t.Skip("needs a kube-apiserver (not under -short)")
	}
	ctx := context.Background()
	kc := kubernetes.NewForConfigOrDie(kubeCfg)
	ns := "default"
	sa, err := kc.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "source-a"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// source-a may pub and sub on /sources/a, and only sub on /sources/b.
	if _, err := kc.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "baton-source-a"},
		Rules: []rbacv1.PolicyRule{
			{NonResourceURLs: []string{"/sources/a"}, Verbs: []string{"pub", "sub"}},
			{NonResourceURLs: []string{"/sources/b"}, Verbs: []string{"sub"}},
		}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "baton-source-a"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "baton-source-a"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := kc.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := newKubeFor(kubeCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.authenticate(ctx, tr.Status.Token)
	if err != nil {
		t.Fatalf("service-account token: %v", err)
	}
	if id.Subject != "kube:system:serviceaccount:default:source-a" || id.Role != auth.RoleSource {
		t.Fatalf("identity %+v", id)
	}
	for _, c := range []struct {
		source, verb string
		allowed      bool
	}{{"a", auth.VerbPub, true}, {"a", auth.VerbSub, true}, {"b", auth.VerbSub, true}, {"b", auth.VerbPub, false}, {"c", auth.VerbSub, false}} {
		err := id.AuthorizeSource(ctx, c.source, c.verb)
		if (err == nil) != c.allowed || (err != nil && !errors.Is(err, auth.ErrForbidden)) {
			t.Errorf("%s on /sources/%s: %v; want allowed=%v", c.verb, c.source, err, c.allowed)
		}
	}
	// Reviews are not cached by baton: a revoked binding is refused as soon
	// as the API server's authorizer sees it.
	if err := kc.RbacV1().ClusterRoleBindings().Delete(ctx, "baton-source-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := id.AuthorizeSource(ctx, "a", auth.VerbPub)
		if errors.Is(err, auth.ErrForbidden) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pub on /sources/a 30 s after the binding was deleted: %v; want forbidden", err)
		}
	}
	if _, err := k.authenticate(ctx, tr.Status.Token+"x"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("forged token: %v; want unauthenticated", err)
	}
}

package doctor_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/doctor"
)

func TestClusterGetter(t *testing.T) {
	if cfg == nil {
		t.Skip("needs a kube-apiserver (not started under -short)")
	}
	ctx := context.Background()
	kc := kubernetes.NewForConfigOrDie(cfg)
	if _, err := kc.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "getter"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	g, err := doctor.NewClusterGetter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		meta    workv1.ManifestResourceMeta
		found   bool
		errPart string
	}{
		"by resource":      {meta: workv1.ManifestResourceMeta{Version: "v1", Resource: "configmaps", Namespace: "default", Name: "getter"}, found: true},
		"by kind only":     {meta: workv1.ManifestResourceMeta{Kind: "ConfigMap", Namespace: "default", Name: "getter"}, found: true},
		"missing object":   {meta: workv1.ManifestResourceMeta{Version: "v1", Resource: "configmaps", Namespace: "default", Name: "nope"}},
		"cluster scoped":   {meta: workv1.ManifestResourceMeta{Version: "v1", Kind: "Namespace", Resource: "namespaces", Name: "default"}, found: true},
		"unknown kind":     {meta: workv1.ManifestResourceMeta{Kind: "Gadget", Group: "nowhere.example", Name: "x"}, errPart: "resolving kind"},
		"unknown resource": {meta: workv1.ManifestResourceMeta{Version: "v1", Resource: "gadgets", Name: "x"}, errPart: "reading"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			obj, err := g.Get(ctx, tc.meta)
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("got %v; want an error with %q", err, tc.errPart)
				}
				return
			}
			if err != nil || (obj != nil) != tc.found {
				t.Fatalf("got %v, %v; want found=%v", obj, err, tc.found)
			}
			if tc.found && obj.GetName() != tc.meta.Name {
				t.Errorf("got %s", obj.GetName())
			}
		})
	}
}

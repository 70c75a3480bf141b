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

func TestClusterGetterPrefetch(t *testing.T) {
	if cfg == nil {
		t.Skip("needs a kube-apiserver (not started under -short)")
	}
	ctx := context.Background()
	kc := kubernetes.NewForConfigOrDie(cfg)
	ns := "prefetch"
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var metas []workv1.ManifestResourceMeta
	for i := range doctor.PrefetchMin {
		name := "cm-" + string(rune('a'+i))
		metas = append(metas, workv1.ManifestResourceMeta{Version: "v1", Resource: "configmaps", Namespace: ns, Name: name})
		if i%2 == 0 {
			if _, err := kc.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	g, err := doctor.NewClusterGetter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.Prefetch(ctx, metas)
	// Deleted after the prefetch: Gets answer from the prefetched list...
	if err := kc.CoreV1().ConfigMaps(ns).Delete(ctx, "cm-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, m := range metas {
		obj, err := g.Get(ctx, m)
		if err != nil || (obj != nil) != (i%2 == 0) {
			t.Errorf("%s: got %v, %v; want found=%v", m.Name, obj, err, i%2 == 0)
		}
	}
	// ...until the next prefetch.
	g.Prefetch(ctx, metas)
	if obj, err := g.Get(ctx, metas[0]); obj != nil || err != nil {
		t.Errorf("after a new prefetch: got %v, %v; want missing", obj, err)
	}
}

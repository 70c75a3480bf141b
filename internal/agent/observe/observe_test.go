package observe

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/baton-dev/baton/internal/testenv"
)

var cfg *rest.Config

func TestMain(m *testing.M) { testenv.Main(m, &cfg) }

var cmGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// recorder collects handler calls per bundle id.
type recorder struct {
	mu     sync.Mutex
	counts map[string]int
	notify chan string
}

func newRecorder() *recorder {
	return &recorder{counts: map[string]int{}, notify: make(chan string, 1024)}
}

func (r *recorder) handle(ids []string) {
	r.mu.Lock()
	for _, id := range ids {
		r.counts[id]++
	}
	r.mu.Unlock()
	for _, id := range ids {
		select {
		case r.notify <- id:
		default:
		}
	}
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[id]
}

type fixture struct {
	t    *testing.T
	ctx  context.Context
	kube kubernetes.Interface
	ns   string
	obs  *Observer
	rec  *recorder
}

func setup(t *testing.T, opts Options) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a kube-apiserver")
	}
	ctx, cancel := context.WithCancel(context.Background())
	kube := kubernetes.NewForConfigOrDie(cfg)
	ns := fmt.Sprintf("obs-%d", time.Now().UnixNano())
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	disc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	obs := New(dynamic.NewForConfigOrDie(cfg), disc, rec.handle, opts)
	done := make(chan struct{})
	go func() { _ = obs.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fixture{t: t, ctx: ctx, kube: kube, ns: ns, obs: obs, rec: rec}
}

func (f *fixture) key(name string) Key { return Key{GVR: cmGVR, Namespace: f.ns, Name: name} }

func (f *fixture) createCM(name, v string) *corev1.ConfigMap {
	f.t.Helper()
	cm, err := f.kube.CoreV1().ConfigMaps(f.ns).Create(f.ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"v": v}}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return cm
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dataV(u *unstructured.Unstructured) string {
	v, _, _ := unstructured.NestedString(u.Object, "data", "v")
	return v
}

func TestEventsReachOnlyWatchingBundles(t *testing.T) {
	f := setup(t, Options{})
	f.createCM("a", "1")
	f.createCM("b", "1")
	f.obs.Watch(f.key("a"), "bundle-a")
	f.obs.Watch(f.key("b"), "bundle-b")
	f.obs.Watch(f.key("a"), "bundle-ab")
	f.obs.Watch(f.key("b"), "bundle-ab")
	eventually(t, 5*time.Second, "scope synced", func() bool { return f.obs.Synced(f.key("a")) })
	if st := f.obs.Stats(); st.Scopes != 1 || st.Keys != 2 || st.Bundles != 3 {
		t.Fatalf("stats = %+v; want one shared scope, 2 keys, 3 bundles", st)
	}
	got, ok := f.obs.Get(f.key("a"))
	if !ok || dataV(got) != "1" {
		t.Fatalf("Get(a) = %v, %v; want data.v=1", got, ok)
	}
	if len(got.GetManagedFields()) != 0 {
		t.Fatalf("managedFields kept in cache: %v", got.GetManagedFields())
	}

	before := map[string]int{"bundle-a": f.rec.count("bundle-a"), "bundle-b": f.rec.count("bundle-b"), "bundle-ab": f.rec.count("bundle-ab")}
	cm, _ := f.kube.CoreV1().ConfigMaps(f.ns).Get(f.ctx, "a", metav1.GetOptions{})
	cm.Data["v"] = "2"
	if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Update(f.ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "update seen in cache", func() bool {
		u, ok := f.obs.Get(f.key("a"))
		return ok && dataV(u) == "2"
	})
	eventually(t, time.Second, "bundles of a notified", func() bool {
		return f.rec.count("bundle-a") > before["bundle-a"] && f.rec.count("bundle-ab") > before["bundle-ab"]
	})
	if got := f.rec.count("bundle-b"); got != before["bundle-b"] {
		t.Fatalf("bundle-b notified %d times for a change of a; want 0", got-before["bundle-b"])
	}

	// Delete: handler called, Get reports absent.
	n := f.rec.count("bundle-a")
	if err := f.kube.CoreV1().ConfigMaps(f.ns).Delete(f.ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "delete notified and absent", func() bool {
		_, ok := f.obs.Get(f.key("a"))
		return !ok && f.rec.count("bundle-a") > n
	})
}

func TestInformerStopsWhenUnused(t *testing.T) {
	f := setup(t, Options{})
	f.createCM("x", "1")
	f.obs.Watch(f.key("x"), "b1")
	f.obs.Watch(f.key("x"), "b2")
	eventually(t, 5*time.Second, "synced", func() bool { return f.obs.Synced(f.key("x")) })
	f.obs.Unwatch("b1")
	if st := f.obs.Stats(); st.Scopes != 1 {
		t.Fatalf("scope stopped while b2 still watches: %+v", st)
	}
	f.obs.Replace("b2", nil)
	if st := f.obs.Stats(); st.Scopes != 0 || st.Keys != 0 || st.Bundles != 0 {
		t.Fatalf("stats after last unwatch = %+v; want all zero", st)
	}
	if _, ok := f.obs.Get(f.key("x")); ok {
		t.Fatal("Get answered for an unwatched key")
	}
	// Watching again restarts the informer and finds the object.
	f.obs.Replace("b3", []Key{f.key("x")})
	eventually(t, 5*time.Second, "re-synced", func() bool {
		_, ok := f.obs.Get(f.key("x"))
		return ok
	})
}

func TestStatusOnlyChangeNotified(t *testing.T) {
	f := setup(t, Options{})
	svc, err := f.kube.CoreV1().Services(f.ns).Create(f.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "router"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 443}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key := Key{GVR: schema.GroupVersionResource{Version: "v1", Resource: "services"}, Namespace: f.ns, Name: "router"}
	f.obs.Watch(key, "seed")
	eventually(t, 5*time.Second, "synced", func() bool { return f.obs.Synced(key) })
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "20.1.2.3"}}
	if _, err := f.kube.CoreV1().Services(f.ns).UpdateStatus(f.ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "status change in cache", func() bool {
		u, ok := f.obs.Get(key)
		if !ok {
			return false
		}
		ing, _, _ := unstructured.NestedSlice(u.Object, "status", "loadBalancer", "ingress")
		return len(ing) == 1
	})
}

func TestTypeServedLater(t *testing.T) {
	f := setup(t, Options{DiscoveryPoll: 200 * time.Millisecond})
	gvr := schema.GroupVersionResource{Group: "later.baton.dev", Version: "v1", Resource: "widgets"}
	key := Key{GVR: gvr, Namespace: f.ns, Name: "w1"}
	f.obs.Watch(key, "crd-bundle")
	eventually(t, 5*time.Second, "absent scope counted as synced", func() bool { return f.obs.Synced(key) })
	if st := f.obs.Stats(); st.Absent != 1 {
		t.Fatalf("stats = %+v; want 1 absent scope", st)
	}
	if _, ok := f.obs.Get(key); ok {
		t.Fatal("object of an unserved type reported present")
	}

	ext := apiextclient.NewForConfigOrDie(cfg)
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.later.baton.dev"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "later.baton.dev", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptrTrue()}}}},
		},
	}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(f.ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ext.ApiextensionsV1().CustomResourceDefinitions().Delete(context.Background(), crd.Name, metav1.DeleteOptions{})
	})
	dyn := dynamic.NewForConfigOrDie(cfg)
	w := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "later.baton.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1", "namespace": f.ns}, "spec": map[string]any{"size": int64(3)}}}
	eventually(t, 10*time.Second, "custom resource created", func() bool {
		_, err := dyn.Resource(gvr).Namespace(f.ns).Create(f.ctx, w, metav1.CreateOptions{})
		return err == nil
	})
	eventually(t, 5*time.Second, "custom resource observed", func() bool {
		_, ok := f.obs.Get(key)
		return ok
	})
	if f.rec.count("crd-bundle") == 0 {
		t.Fatal("bundle not notified when its type appeared")
	}
}

func ptrTrue() *bool { b := true; return &b }

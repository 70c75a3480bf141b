package observe

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/baton-dev/baton/internal/testenv/tcpproxy"
)

// setupProxied is setup with an Observer whose link to the API server
// passes through a proxy the test cuts.
func setupProxied(t *testing.T) (*fixture, *tcpproxy.Proxy) {
	t.Helper()
	f := setup(t, Options{})
	c, p, err := tcpproxy.ForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	ctx, cancel := context.WithCancel(f.ctx)
	direct, err := DirectClient(c)
	if err != nil {
		t.Fatal(err)
	}
	f.obs = New(dynamic.NewForConfigOrDie(c), discovery.NewDiscoveryClientForConfigOrDie(c), f.rec.handle, Options{Direct: direct,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	done := make(chan struct{})
	go func() { _ = f.obs.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return f, p
}

func TestHealthLinkCutAndRestored(t *testing.T) {
	f, proxy := setupProxied(t)
	f.createCM("a", "1")
	f.obs.Watch(f.key("a"), "b")
	eventually(t, 10*time.Second, "synced", func() bool { _, ok := f.obs.Get(f.key("a")); return ok })
	if h := f.obs.Health(f.key("a")); !h.OK {
		t.Fatalf("health before the cut = %+v", h)
	}
	n := f.rec.count("b")

	cut := time.Now()
	proxy.Cut()
	eventually(t, 10*time.Second, "failure seen", func() bool { return !f.obs.Health(f.key("a")).OK })
	t.Logf("failure seen %v after the cut", time.Since(cut).Round(time.Millisecond))
	h := f.obs.Health(f.key("a"))
	if h.Reason != ReasonClusterUnreachable || h.Message == "" || h.Since.Before(cut) {
		t.Errorf("health = %+v; want ClusterUnreachable since the cut", h)
	}
	if f.rec.count("b") <= n {
		t.Error("bundle not notified of the failure")
	}
	if st := f.obs.Stats(); st.Failing != 1 || len(f.obs.Failing()) != 1 {
		t.Errorf("stats = %+v, failing = %+v; want 1 failing scope", st, f.obs.Failing())
	}
	if u, ok := f.obs.Get(f.key("a")); !ok || dataV(u) != "1" || !f.obs.Synced(f.key("a")) {
		t.Errorf("Get during the cut = %v, %v; want the last object seen", u, ok)
	}
	cm, _ := f.kube.CoreV1().ConfigMaps(f.ns).Get(f.ctx, "a", metav1.GetOptions{})
	cm.Data["v"] = "2"
	if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Update(f.ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.obs.Read(f.ctx, f.key("a")); err == nil {
		t.Error("Read through a cut link succeeded")
	}

	restored := time.Now()
	proxy.Restore()
	eventually(t, 10*time.Second, "observed again with the change", func() bool {
		u, ok := f.obs.Get(f.key("a"))
		return f.obs.Health(f.key("a")).OK && ok && dataV(u) == "2"
	})
	t.Logf("observed again %v after the restore", time.Since(restored).Round(time.Millisecond))
	if st := f.obs.Stats(); st.Failing != 0 {
		t.Errorf("stats after the restore = %+v", st)
	}
}

func TestReadCorrectsACacheBehind(t *testing.T) {
	f := setup(t, Options{})
	old := f.createCM("a", "1")
	f.obs.Watch(f.key("a"), "b")
	eventually(t, 10*time.Second, "synced", func() bool { _, ok := f.obs.Get(f.key("a")); return ok })
	cm, _ := f.kube.CoreV1().ConfigMaps(f.ns).Get(f.ctx, "a", metav1.GetOptions{})
	cm.Data["v"] = "2"
	if _, err := f.kube.CoreV1().ConfigMaps(f.ns).Update(f.ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "update cached", func() bool { u, _ := f.obs.Get(f.key("a")); return dataV(u) == "2" })

	// A cache that missed the update: Read answers from the API server and
	// Get follows it until the cache moves on.
	s := f.obs.scopes[f.key("a").scope()]
	staleObj, _ := f.obs.Get(f.key("a"))
	staleObj = staleObj.DeepCopy()
	staleObj.SetResourceVersion(old.ResourceVersion)
	if err := unstructured.SetNestedField(staleObj.Object, "1", "data", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.inf.GetIndexer().Update(staleObj); err != nil {
		t.Fatal(err)
	}
	if u, _ := f.obs.Get(f.key("a")); dataV(u) != "1" {
		t.Fatalf("test setup: cache not stale: %v", u)
	}
	u, ok, err := f.obs.Read(f.ctx, f.key("a"))
	if err != nil || !ok || dataV(u) != "2" {
		t.Fatalf("Read = %v, %v, %v; want the live object", u, ok, err)
	}
	if u, _ := f.obs.Get(f.key("a")); dataV(u) != "2" {
		t.Errorf("Get after Read = %v; want the object read", u)
	}

	// A cache that missed a deletion.
	live, _ := f.obs.Get(f.key("a"))
	live = live.DeepCopy()
	if err := f.kube.CoreV1().ConfigMaps(f.ns).Delete(f.ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "deletion cached", func() bool { _, ok := f.obs.Get(f.key("a")); return !ok })
	if err := s.inf.GetIndexer().Add(live); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.obs.Get(f.key("a")); !ok {
		t.Fatal("test setup: cache does not hold the deleted object")
	}
	if _, ok, err := f.obs.Read(f.ctx, f.key("a")); ok || err != nil {
		t.Fatalf("Read of a deleted object = %v, %v", ok, err)
	}
	if _, ok := f.obs.Get(f.key("a")); ok {
		t.Error("Get after a Read found it gone still reports the object")
	}
}

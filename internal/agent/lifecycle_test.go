package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

func TestLinkOutage(t *testing.T) {
	h := newHarness(t)
	svc := h.createService("lb", "1.1.1.1")
	h.server.sendSpec(t, spec("lb", 1, []json.RawMessage{h.serviceManifest("lb")},
		config("services", h.ns, "lb", workv1.UpdateStrategyTypeReadOnly, workv1.JsonPath{Name: "ip", Path: ".status.loadBalancer.ingress[0].ip"})))
	h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "first ip", func(m protocol.Message) bool {
		v, _ := value(status(m, "lb"), 0, "ip")
		return v == "1.1.1.1"
	})
	hellos := len(h.server.snapshot(protocol.TypeHello))
	statuses := len(h.server.snapshot(protocol.TypeStatus))

	h.pipe.SetUp(false)
	svc = h.setIP(svc, "2.2.2.2")
	svc = h.setIP(svc, "3.3.3.3")
	time.Sleep(300 * time.Millisecond) // the change is evaluated while the link is down
	if n := len(h.server.snapshot(protocol.TypeStatus)); n != statuses {
		t.Fatalf("%d statuses crossed a link that is down", n-statuses)
	}
	up := time.Now()
	h.pipe.SetUp(true)
	hello, _ := h.server.waitFor(t, protocol.TypeHello, hellos, 2*time.Second, "a new session", func(m protocol.Message) bool { return true })
	if hello.m.Hello.Epoch != h.agent.Epoch() || hello.m.Hello.Held["lb"] != 1 {
		t.Errorf("hello after reconnect = %+v; want epoch %s holding lb@1", hello.m.Hello, h.agent.Epoch())
	}
	got, _ := h.server.waitFor(t, protocol.TypeStatus, statuses, 2*time.Second, "the latest ip", func(m protocol.Message) bool {
		v, _ := value(status(m, "lb"), 0, "ip")
		return v == "3.3.3.3"
	})
	within(t, "latest status after reconnect", up, got.at, time.Second)
	if got.at.Before(hello.at) {
		t.Errorf("status arrived before the session's hello")
	}
	if got.m.Status.Reported.ResourceStatus[0].Observed.ResourceVersion != svc.ResourceVersion {
		t.Errorf("reported rv %s; want %s", got.m.Status.Reported.ResourceStatus[0].Observed.ResourceVersion, svc.ResourceVersion)
	}
}

func TestRestartReReports(t *testing.T) {
	h := newHarness(t)
	h.server.sendSpec(t, spec("keep", 7, []json.RawMessage{h.configMap("kept", map[string]any{"v": "1"})},
		config("configmaps", h.ns, "kept", workv1.UpdateStrategyTypeUpdate, workv1.JsonPath{Name: "v", Path: ".data.v"})))
	h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "applied", func(m protocol.Message) bool {
		v, _ := value(status(m, "keep"), 0, "v")
		return v == "1"
	})
	oldEpoch := h.agent.Epoch()
	h.stop()

	// While no agent runs, the object drifts.
	cm, err := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, "kept", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["v"] = "drifted"
	if _, err := h.kube.CoreV1().ConfigMaps(h.ns).Update(h.ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	h.startAgent()
	if h.agent.Epoch() == oldEpoch {
		t.Fatal("restarted agent kept its epoch")
	}
	hello, _ := h.server.waitFor(t, protocol.TypeHello, 0, 10*time.Second, "the records", func(m protocol.Message) bool { return true })
	if hello.m.Hello.Epoch != h.agent.Epoch() || hello.m.Hello.Held["keep"] != 7 {
		t.Errorf("hello = %+v; want the new epoch holding keep@7 from the records", hello.m.Hello)
	}
	got, _ := h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "a re-report", func(m protocol.Message) bool {
		v, _ := value(status(m, "keep"), 0, "v")
		return v == "1"
	})
	if got.m.Status.Epoch != h.agent.Epoch() || got.m.Status.Generation != 7 {
		t.Errorf("re-report epoch %s gen %d; want %s gen 7", got.m.Status.Epoch, got.m.Status.Generation, h.agent.Epoch())
	}
	if cm, _ := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, "kept", metav1.GetOptions{}); cm.Data["v"] != "1" {
		t.Errorf("drift during the restart not repaired: data.v = %q", cm.Data["v"])
	}
	// The recorded generation is acknowledged on a re-sent spec, not applied again.
	h.server.sendSpec(t, spec("keep", 7, []json.RawMessage{h.configMap("kept", map[string]any{"v": "1"})}))
	h.server.waitFor(t, protocol.TypeSpecAck, 0, 5*time.Second, "keep@7", func(m protocol.Message) bool {
		return m.SpecAck.BundleID == "keep" && m.SpecAck.Generation == 7
	})
}

func TestBundleDeleted(t *testing.T) {
	h := newHarness(t)
	manifests := []json.RawMessage{h.configMap("one", map[string]any{"v": "1"}), h.configMap("two", map[string]any{"v": "2"})}
	h.server.sendSpec(t, spec("del", 1, manifests))
	h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "applied", func(m protocol.Message) bool {
		s := status(m, "del")
		return s != nil && len(s.Reported.ResourceStatus) == 2 && s.Reported.ResourceStatus[1].Observed.Exists
	})
	d := spec("del", 2, nil)
	d.Deleting = true
	h.server.sendSpec(t, d)
	gone, _ := h.server.waitFor(t, protocol.TypeSpecAck, 0, 10*time.Second, "gone", func(m protocol.Message) bool {
		return m.SpecAck.BundleID == "del" && m.SpecAck.Gone
	})
	if gone.m.SpecAck.Generation != 2 {
		t.Errorf("gone ack generation %d; want 2", gone.m.SpecAck.Generation)
	}
	for _, name := range []string{"one", "two"} {
		if _, err := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ConfigMap %s still there after deletion (err %v)", name, err)
		}
	}
	final, _ := h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "the deleted report", func(m protocol.Message) bool {
		s := status(m, "del")
		return s != nil && s.Deleted
	})
	if c := final.m.Status.Reported.Conditions; len(c) == 0 || c[0].Type != api.ConditionDeleted || c[0].Status != metav1.ConditionTrue {
		t.Errorf("deleted report conditions = %+v; want Deleted=True", c)
	}
	// A repeated deletion of a bundle no longer held is acknowledged Gone at once.
	n := len(h.server.snapshot(protocol.TypeSpecAck))
	h.server.sendSpec(t, d)
	h.server.waitFor(t, protocol.TypeSpecAck, n, 2*time.Second, "gone again", func(m protocol.Message) bool {
		return m.SpecAck.BundleID == "del" && m.SpecAck.Gone
	})
	// A new agent no longer holds it.
	h.stop()
	h.startAgent()
	hello, _ := h.server.waitFor(t, protocol.TypeHello, 0, 10*time.Second, "hello", func(m protocol.Message) bool { return true })
	if _, held := hello.m.Hello.Held["del"]; held {
		t.Errorf("deleted bundle still held after restart: %+v", hello.m.Hello.Held)
	}
}

func TestHealthEndpoints(t *testing.T) {
	h := newHarness(t)
	eventually(t, 5*time.Second, "ready", func() bool { return h.agent.ready.Load() })
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ok", "/metrics": "baton_agent_bundles"} {
		body := serveGet(t, h.agent, path)
		if !strings.Contains(body, want) {
			t.Errorf("GET %s = %q; want it to contain %q", path, body, want)
		}
	}
}

func serveGet(t *testing.T, a *Agent, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	if rec.Code != 200 {
		t.Errorf("GET %s: status %d: %s", path, rec.Code, b)
	}
	return string(b)
}

// TestKindServedLater: a bundle whose custom resource's CRD does not exist
// yet reports the failure, and is applied, observed and reported within
// seconds of the CRD appearing, at the production resync interval.
func TestKindServedLater(t *testing.T) {
	h := newHarness(t)
	group := h.ns + ".later.baton.dev"
	widget := manifest(t, map[string]any{"apiVersion": group + "/v1", "kind": "Gadget",
		"metadata": map[string]any{"name": "g1", "namespace": h.ns}, "spec": map[string]any{"size": 3}})
	c := config("gadgets", h.ns, "g1", workv1.UpdateStrategyTypeUpdate, workv1.JsonPath{Name: "size", Path: ".spec.size"})
	c.ResourceIdentifier.Group = group
	h.server.sendSpec(t, spec("later", 1, []json.RawMessage{widget}, c))
	h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "the unknown kind", func(m protocol.Message) bool {
		st, _ := condition(status(m, "later"), 0, api.ConditionApplied)
		return st == metav1.ConditionFalse
	})
	ext := apiextclient.NewForConfigOrDie(cfg)
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gadgets." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group, Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Gadget", ListKind: "GadgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true)}}}},
		},
	}
	created := time.Now()
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(h.ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ext.ApiextensionsV1().CustomResourceDefinitions().Delete(context.Background(), crd.Name, metav1.DeleteOptions{})
	})
	got, _ := h.server.waitFor(t, protocol.TypeStatus, 0, 20*time.Second, "the custom resource applied", func(m protocol.Message) bool {
		s := status(m, "later")
		st, _ := condition(s, 0, api.ConditionApplied)
		return st == metav1.ConditionTrue && s.Reported.ResourceStatus[0].Observed.Exists
	})
	// The CRD is established within about a second; the kind's lookup
	// backs off to at most 2 s.
	within(t, "custom resource reported after its CRD was created", created, got.at, 10*time.Second)
	if v := got.m.Status.Reported.ResourceStatus[0].StatusFeedbacks.Values; len(v) != 1 || v[0].Value.Integer == nil || *v[0].Value.Integer != 3 {
		t.Errorf("feedback = %+v; want size=3", v)
	}
}

// closedConn is a link whose receive side has closed for good.
type closedConn struct{ recv chan protocol.Message }

func (c closedConn) Send(context.Context, protocol.Message) error { return nil }
func (c closedConn) Recv() <-chan protocol.Message                { return c.recv }
func (c closedConn) Up() <-chan struct{}                          { return nil }

func TestLinkClosedEndsStart(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a kube-apiserver")
	}
	c := closedConn{recv: make(chan protocol.Message)}
	close(c.recv)
	a, err := New(cfg, c, Options{Consumer: "closed-link", Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Start(ctx); !errors.Is(err, errLinkClosed) {
		t.Fatalf("Start = %v; want %v", err, errLinkClosed)
	}
}

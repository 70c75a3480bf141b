package agent

import (
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

func TestApplyAndReport(t *testing.T) {
	h := newHarness(t)
	hello, _ := h.server.waitFor(t, protocol.TypeHello, 0, 5*time.Second, "the agent's epoch", func(m protocol.Message) bool {
		return m.Hello.Epoch == h.agent.Epoch()
	})
	if len(hello.m.Hello.Held) != 0 || hello.m.Hello.Batches != 1 {
		t.Fatalf("first hello = %+v; want one batch holding nothing", hello.m.Hello)
	}

	h.server.sendSpec(t, spec("b1", 3, []json.RawMessage{h.configMap("app", map[string]any{"v": "1"})},
		config("configmaps", h.ns, "app", workv1.UpdateStrategyTypeUpdate, workv1.JsonPath{Name: "v", Path: ".data.v"})))
	h.server.waitFor(t, protocol.TypeSpecAck, 0, 5*time.Second, "generation 3", func(m protocol.Message) bool {
		return m.SpecAck.BundleID == "b1" && m.SpecAck.Generation == 3 && !m.SpecAck.Gone
	})
	cm, err := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ConfigMap not applied: %v", err)
	}
	got, _ := h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "the live object", func(m protocol.Message) bool {
		v, _ := value(status(m, "b1"), 0, "v")
		return v == "1"
	})
	st := got.m.Status
	if st.Generation != 3 || st.Epoch != h.agent.Epoch() || st.Hash != protocol.HashStatus(st.Reported) {
		t.Errorf("status header = gen %d epoch %q hash ok %v; want gen 3, the agent's epoch, a matching hash",
			st.Generation, st.Epoch, st.Hash == protocol.HashStatus(st.Reported))
	}
	obs := st.Reported.ResourceStatus[0].Observed
	if !obs.Exists || obs.UID != string(cm.UID) || obs.ResourceVersion != cm.ResourceVersion || obs.ObservedAt.IsZero() {
		t.Errorf("observed = %+v; want the live object uid %s rv %s", obs, cm.UID, cm.ResourceVersion)
	}
	if s, _ := condition(st, 0, api.ConditionApplied); s != metav1.ConditionTrue {
		t.Errorf("Applied = %q; want True", s)
	}
	if len(st.Reported.Conditions) == 0 || st.Reported.Conditions[0].ObservedGeneration != 3 {
		t.Errorf("bundle conditions = %+v; want observedGeneration 3", st.Reported.Conditions)
	}

	// A repeated or older spec is acknowledged with the held generation and not applied.
	n := len(h.server.snapshot(protocol.TypeSpecAck))
	h.server.sendSpec(t, spec("b1", 2, []json.RawMessage{h.configMap("app", map[string]any{"v": "old"})}))
	h.server.waitFor(t, protocol.TypeSpecAck, n, 5*time.Second, "the held generation", func(m protocol.Message) bool {
		return m.SpecAck.BundleID == "b1" && m.SpecAck.Generation == 3
	})
	time.Sleep(200 * time.Millisecond)
	if cm, _ := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, "app", metav1.GetOptions{}); cm.Data["v"] != "1" {
		t.Errorf("older generation applied: data.v = %q", cm.Data["v"])
	}
}

func TestDriftReappliedOnEdit(t *testing.T) {
	h := newHarness(t)
	h.server.sendSpec(t, spec("drift", 1, []json.RawMessage{h.configMap("app", map[string]any{"v": "want"})},
		config("configmaps", h.ns, "app", workv1.UpdateStrategyTypeUpdate)))
	h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "applied", func(m protocol.Message) bool {
		s := status(m, "drift")
		return s != nil && s.Reported.ResourceStatus[0].Observed.Exists
	})
	for i := range 3 {
		cm, err := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, "app", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["v"] = "edited"
		cm.Data["extra"] = "kept"
		edited := time.Now()
		if _, err := h.kube.CoreV1().ConfigMaps(h.ns).Update(h.ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		restored := eventually(t, 2*time.Second, "data.v restored", func() bool {
			cm, err := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, "app", metav1.GetOptions{})
			return err == nil && cm.Data["v"] == "want"
		})
		within(t, "edit "+string(rune('1'+i))+" re-applied", edited, restored, time.Second)
	}
}

func TestDriftReappliedOnDelete(t *testing.T) {
	h := newHarness(t)
	h.server.sendSpec(t, spec("gone", 1, []json.RawMessage{h.configMap("app", map[string]any{"v": "want"})}))
	h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "applied", func(m protocol.Message) bool {
		s := status(m, "gone")
		return s != nil && s.Reported.ResourceStatus[0].Observed.Exists
	})
	old, err := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if err := h.kube.CoreV1().ConfigMaps(h.ns).Delete(h.ctx, "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var uid types.UID
	recreated := eventually(t, 2*time.Second, "object recreated", func() bool {
		cm, err := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, "app", metav1.GetOptions{})
		if err == nil && cm.UID != old.UID {
			uid = cm.UID
			return true
		}
		return false
	})
	within(t, "deleted object re-created", deleted, recreated, time.Second)
	h.server.waitFor(t, protocol.TypeStatus, 0, 2*time.Second, "the new uid", func(m protocol.Message) bool {
		s := status(m, "gone")
		return s != nil && s.Reported.ResourceStatus[0].Observed.UID == string(uid)
	})
}

func TestStatusOnlyChangeReported(t *testing.T) {
	h := newHarness(t)
	svc := h.createService("web", "")
	h.server.sendSpec(t, spec("web", 1, []json.RawMessage{h.serviceManifest("web")},
		config("services", h.ns, "web", workv1.UpdateStrategyTypeReadOnly, workv1.JsonPath{Name: "ip", Path: ".status.loadBalancer.ingress[0].ip"})))
	first, _ := h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "observed", func(m protocol.Message) bool {
		s := status(m, "web")
		return s != nil && s.Reported.ResourceStatus[0].Observed.Exists
	})
	if _, ok := value(first.m.Status, 0, "ip"); ok {
		t.Fatal("ip reported before the load balancer has one")
	}
	gen := svc.Generation
	changed := time.Now()
	svc = h.setIP(svc, "10.20.30.40")
	if svc.Generation != gen {
		t.Fatalf("status update bumped generation %d → %d; the test needs a status-only change", gen, svc.Generation)
	}
	got, _ := h.server.waitFor(t, protocol.TypeStatus, 0, 2*time.Second, "the new ip", func(m protocol.Message) bool {
		v, _ := value(status(m, "web"), 0, "ip")
		return v == "10.20.30.40"
	})
	within(t, "status-only change reported", changed, got.at, time.Second)
	if rv := got.m.Status.Reported.ResourceStatus[0].Observed.ResourceVersion; rv != svc.ResourceVersion {
		t.Errorf("observed resourceVersion %s; want %s", rv, svc.ResourceVersion)
	}
}

func TestObservedObjectDeleted(t *testing.T) {
	h := newHarness(t)
	if _, err := h.kube.CoreV1().ConfigMaps(h.ns).Create(h.ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"endpoint": "https://a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.server.sendSpec(t, spec("ro", 1, []json.RawMessage{h.configMap("settings", nil)},
		config("configmaps", h.ns, "settings", workv1.UpdateStrategyTypeReadOnly, workv1.JsonPath{Name: "endpoint", Path: ".data.endpoint"})))
	h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "the value", func(m protocol.Message) bool {
		v, _ := value(status(m, "ro"), 0, "endpoint")
		return v == "https://a"
	})
	deleted := time.Now()
	if err := h.kube.CoreV1().ConfigMaps(h.ns).Delete(h.ctx, "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := h.server.waitFor(t, protocol.TypeStatus, 0, 2*time.Second, "the object gone", func(m protocol.Message) bool {
		s := status(m, "ro")
		return s != nil && !s.Reported.ResourceStatus[0].Observed.Exists
	})
	within(t, "deletion reported", deleted, got.at, time.Second)
	rs := got.m.Status.Reported.ResourceStatus[0]
	if len(rs.StatusFeedbacks.Values) != 0 || rs.Observed.UID != "" {
		t.Errorf("missing object reported values %+v uid %q; want none", rs.StatusFeedbacks.Values, rs.Observed.UID)
	}
	if s, reason := condition(got.m.Status, 0, api.ConditionAvailable); s != metav1.ConditionFalse || reason != api.ReasonNotFound {
		t.Errorf("Available = %s/%s; want False/NotFound", s, reason)
	}
	// ReadOnly: the agent must not have recreated it.
	time.Sleep(300 * time.Millisecond)
	if _, err := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, "settings", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ReadOnly object recreated (get err %v)", err)
	}
}

func (h *harness) serviceManifest(name string) json.RawMessage {
	return manifest(h.t, map[string]any{"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": name, "namespace": h.ns}})
}

// createService plays the owner of a LoadBalancer Service (optionally with
// an ingress IP already assigned).
func (h *harness) createService(name, ip string) *corev1.Service {
	h.t.Helper()
	svc, err := h.kube.CoreV1().Services(h.ns).Create(h.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "https", Port: 443}}},
	}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	if ip != "" {
		svc = h.setIP(svc, ip)
	}
	return svc
}

// setIP plays the cloud provider: it sets the load balancer IP through the
// status subresource.
func (h *harness) setIP(svc *corev1.Service, ip string) *corev1.Service {
	h.t.Helper()
	svc = svc.DeepCopy()
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	out, err := h.kube.CoreV1().Services(h.ns).UpdateStatus(h.ctx, svc, metav1.UpdateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

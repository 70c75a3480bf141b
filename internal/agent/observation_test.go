package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/testenv/tcpproxy"
	"github.com/baton-dev/baton/pkg/api"
)

// Bounds of the observation-health tests, with margins for a loaded
// 2-core machine. unconfirmedBound is the documented bound (one default
// heartbeat, docs/architecture.md "Fault model"): a broken connection is
// seen at once, a revoked permission at the next probe (5 s).
const (
	unconfirmedBound = 10 * time.Second
	healBound        = 10 * time.Second
)

// proxied returns a copy of cfg whose connections pass through a TCP proxy
// the test can cut.
func proxied(t *testing.T) (*rest.Config, *tcpproxy.Proxy) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a kube-apiserver")
	}
	c, p, err := tcpproxy.ForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return c, p
}

// observedLB applies a read-only bundle on Service lb reporting its IP and
// waits for the first report of ip; it returns the index of that report.
func (h *harness) observedLB(ip string) (int, protocol.Status) {
	h.t.Helper()
	h.server.sendSpec(h.t, spec("lb", 1, []json.RawMessage{h.serviceManifest("lb")},
		config("services", h.ns, "lb", workv1.UpdateStrategyTypeReadOnly, workv1.JsonPath{Name: "ip", Path: ".status.loadBalancer.ingress[0].ip"})))
	got, i := h.server.waitFor(h.t, protocol.TypeStatus, 0, 10*time.Second, "ip "+ip, func(m protocol.Message) bool {
		v, _ := value(status(m, "lb"), 0, "ip")
		c, _ := condition(status(m, "lb"), 0, api.ConditionStatusFeedbackSynced)
		return v == ip && c == metav1.ConditionTrue
	})
	return i, *got.m.Status
}

// readyz returns the agent's /readyz code and body.
func (h *harness) readyz() (int, string) {
	rec := httptest.NewRecorder()
	h.agent.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

// expectUnconfirmed waits for the report saying lb's entry is unconfirmed
// with reason, and checks it keeps the last values seen (lastIP) and
// observedAt.
func (h *harness) expectUnconfirmed(from int, since time.Time, reason, lastIP string, before protocol.Status) int {
	h.t.Helper()
	got, i := h.server.waitFor(h.t, protocol.TypeStatus, from, unconfirmedBound+5*time.Second, "unconfirmed "+reason, func(m protocol.Message) bool {
		c, r := condition(status(m, "lb"), 0, api.ConditionStatusFeedbackSynced)
		return c == metav1.ConditionUnknown && r == reason
	})
	within(h.t, "entry unconfirmed ("+reason+")", since, got.at, unconfirmedBound)
	st := got.m.Status
	if v, _ := value(st, 0, "ip"); v != lastIP {
		h.t.Errorf("unconfirmed entry reports ip %q; want the last seen %q", v, lastIP)
	}
	if a, b := st.Reported.ResourceStatus[0].Observed, before.Reported.ResourceStatus[0].Observed; !a.ObservedAt.Equal(b.ObservedAt) || a.ResourceVersion != b.ResourceVersion {
		h.t.Errorf("unconfirmed entry observed = %+v; want the last observation %+v", a, b)
	}
	// Nothing confirmed a value the agent could not see in between.
	for _, r := range h.server.snapshot(protocol.TypeStatus)[from:i] {
		if v, _ := value(status(r.m, "lb"), 0, "ip"); v != "" && v != lastIP {
			h.t.Errorf("a report confirmed ip %q while the agent could not observe", v)
		}
	}
	code, body := h.readyz()
	if code != 503 || !strings.Contains(body, reason) {
		h.t.Errorf("/readyz = %d %q; want 503 naming %s", code, body, reason)
	}
	return i
}

// expectHealed waits for the report of the live ip after observation
// returned at since.
func (h *harness) expectHealed(from int, since time.Time, ip string) {
	h.t.Helper()
	got, _ := h.server.waitFor(h.t, protocol.TypeStatus, from, healBound+5*time.Second, "healed ip "+ip, func(m protocol.Message) bool {
		v, _ := value(status(m, "lb"), 0, "ip")
		c, _ := condition(status(m, "lb"), 0, api.ConditionStatusFeedbackSynced)
		return v == ip && c == metav1.ConditionTrue
	})
	within(h.t, "healed with the live value", since, got.at, healBound)
	eventually(h.t, 5*time.Second, "/readyz ok again", func() bool { c, _ := h.readyz(); return c == 200 })
}

// cutAndHeal cuts the agent's link to its API server, changes the observed
// Service, keeps the link down for outage (at least until the entry is
// reported unconfirmed) and restores it; resync requests the bundle while
// the link is down and after it healed.
func cutAndHeal(t *testing.T, outage time.Duration) {
	agentCfg, proxy := proxied(t)
	h := newHarnessOn(t, agentCfg)
	svc := h.createService("lb", "1.1.1.1")
	i, first := h.observedLB("1.1.1.1")

	cut := time.Now()
	proxy.Cut()
	h.setIP(svc, "2.2.2.2") // the agent cannot see this
	i = h.expectUnconfirmed(i+1, cut, api.ReasonClusterUnreachable, "1.1.1.1", first)

	// A resync while cut off re-reads, fails, and says so again.
	h.resync("re-report while cut off", func(s *protocol.Status) bool {
		c, r := condition(s, 0, api.ConditionStatusFeedbackSynced)
		return c == metav1.ConditionUnknown && r == api.ReasonClusterUnreachable
	})
	time.Sleep(outage - time.Since(cut))

	restored := time.Now()
	proxy.Restore()
	h.expectHealed(i+1, restored, "2.2.2.2")
	h.resync("re-report after a resync", func(s *protocol.Status) bool {
		v, _ := value(s, 0, "ip")
		return v == "2.2.2.2"
	})
}

// resync sends a StatusRequest for lb and waits for the report it causes.
func (h *harness) resync(what string, pred func(*protocol.Status) bool) {
	h.t.Helper()
	n := len(h.server.snapshot(protocol.TypeStatus))
	req := protocol.Message{Type: protocol.TypeStatusRequest, StatusRequest: &protocol.StatusRequest{BundleIDs: []string{"lb"}}}
	if err := h.pipe.Server().Send(h.ctx, req); err != nil {
		h.t.Fatal(err)
	}
	h.server.waitFor(h.t, protocol.TypeStatus, n, 10*time.Second, what, func(m protocol.Message) bool {
		s := status(m, "lb")
		return s != nil && pred(s)
	})
}

func TestObservationLinkCut(t *testing.T) { cutAndHeal(t, 0) }

// TestObservationLongOutage: the API server refuses connections for longer
// than client-go's watch backoff grows (as during a slow restart: 0.8, 1.6,
// 3.2, 6.4 s …); healing is as fast as after a short cut.
func TestObservationLongOutage(t *testing.T) { cutAndHeal(t, 12*time.Second) }

func TestObservationForbidden(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a kube-apiserver")
	}
	user := "baton-agent-rbac-" + time.Now().Format("150405.000000")
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: strings.ReplaceAll(user, ".", "-")},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}},
	}
	agentCfg := rest.CopyConfig(cfg)
	agentCfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	kube := kubernetes.NewForConfigOrDie(cfg)
	grant := func() {
		t.Helper()
		if _, err := kube.RbacV1().ClusterRoleBindings().Create(context.Background(), binding.DeepCopy(), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	grant()
	t.Cleanup(func() {
		_ = kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})
	h := newHarnessOn(t, agentCfg)
	svc := h.createService("lb", "1.1.1.1")
	i, first := h.observedLB("1.1.1.1")

	// An open watch outlives the revocation (what it still delivers is
	// true), so the object changes once the agent says it cannot see.
	revoked := time.Now()
	if err := h.kube.RbacV1().ClusterRoleBindings().Delete(h.ctx, binding.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	i = h.expectUnconfirmed(i+1, revoked, api.ReasonForbidden, "1.1.1.1", first)
	svc = h.setIP(svc, "2.2.2.2")

	granted := time.Now()
	grant()
	h.expectHealed(i+1, granted, "2.2.2.2")
	_ = svc
}

package e2e

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/baton-dev/baton/internal/testenv/tcpproxy"
	"github.com/baton-dev/baton/pkg/api"
)

// Bounds of the observation faults (docs/architecture.md "Fault model"):
// the verdict turns Stale/ObservationFailed within observationBound of the
// observed object changing while the agent cannot see it (a broken link is
// seen at once, a revoked permission at the agent's next probe, every 5 s),
// and is Fresh with the live value within healBound of the API server
// answering again. Both carry a wide margin for a loaded 2-core machine.
const (
	observationBound = 10 * time.Second
	healBound        = 10 * time.Second
)

// agentKubeconfig writes a kubeconfig like the agents' that reaches the
// API server through a TCP proxy the test controls and, when user is set,
// acts as that user (impersonation), so RBAC can be taken away.
func agentKubeconfig(t *testing.T, user string) (string, *tcpproxy.Proxy) {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	proxied, p, err := tcpproxy.ForConfig(kubeCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	for _, c := range cfg.Clusters {
		c.Server = proxied.Host
	}
	if user != "" {
		for _, a := range cfg.AuthInfos {
			a.Impersonate = user
		}
	}
	path := filepath.Join(t.TempDir(), "agent.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path, p
}

// verdict is what REST said about a bundle at one moment.
type verdict struct {
	at          time.Time
	state       string
	reason      string
	ip          string
	confirmedAt time.Time
}

// watchVerdicts polls a bundle every interval until stop is called.
func (c *cluster) watchVerdicts(id string, every time.Duration) (stop func() []verdict) {
	return poll(every, func() (verdict, bool) {
		b, _, err := c.getBundle(id)
		if err != nil {
			return verdict{}, false
		}
		v := verdict{at: time.Now()}
		v.state, v.reason = freshness(b)
		v.ip, _ = feedback(b, "ip")
		if b.Status != nil && b.Status.Freshness != nil && b.Status.Freshness.ConfirmedAt != nil {
			v.confirmedAt = *b.Status.Freshness.ConfirmedAt
		}
		return v, true
	})
}

// observationFault runs one fault of the agent's own API server on the
// seed bundle: the load balancer IP changes while the agent cannot see it
// (at once with changeFirst, else once REST says Stale: an open watch that
// outlives a revoked permission still delivers true changes); REST must
// turn Stale/ObservationFailed with the entry unconfirmed (reason) within
// observationBound, stay so, and be Fresh with the new IP within healBound
// of heal.
func observationFault(t *testing.T, user string, grant func(), fault, heal func(*tcpproxy.Proxy), reason string, changeFirst bool) {
	c := newCluster(t, sqliteStore)
	kc, proxy := agentKubeconfig(t, user)
	if grant != nil {
		grant()
	}
	const oldIP, newIP = "20.1.1.1", "20.2.2.2"
	agent, _, svc, b := observedSeed(t, c, "obs", kc, oldIP)
	stop := c.watchVerdicts(b.ID, 50*time.Millisecond)

	fault(proxy)
	faulted := time.Now()
	changed := faulted
	if changeFirst {
		svc = c.setLBIP(svc, newIP)
		changed = time.Now()
	}
	stale := eventually(t, observationBound+10*time.Second, "Stale/ObservationFailed", func() bool {
		got, _, _ := c.getBundle(b.ID)
		state, r := freshness(got)
		return state == api.FreshnessStale && r == api.ReasonObservationFailed
	})
	t.Logf("fault → Stale/ObservationFailed in REST: %v", stale.Round(time.Millisecond))
	if !changeFirst {
		svc = c.setLBIP(svc, newIP)
	}
	got, _, _ := c.getBundle(b.ID)
	e, _ := entry(got)
	if cond, _ := condition(e.Conditions, api.ConditionStatusFeedbackSynced); cond.Status != metav1.ConditionUnknown || cond.Reason != reason {
		t.Errorf("entry StatusFeedbackSynced = %s/%s; want Unknown/%s:\n%s", cond.Status, cond.Reason, reason, dump(e))
	}
	if ip, _ := feedback(got, "ip"); ip != oldIP {
		t.Errorf("unconfirmed entry shows ip %q; want the last one seen, %q", ip, oldIP)
	}
	if code, body := agentGet(t, agent, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, reason) {
		t.Errorf("agent /readyz = %d %q; want 503 naming %s", code, body, reason)
	}
	if _, body := agentGet(t, agent, "/metrics"); !strings.Contains(body, "baton_agent_observation_failing_scopes 1") {
		t.Errorf("agent metrics do not count the failing scope")
	}
	// Heartbeats keep coming; they must not re-confirm what the agent
	// cannot see, past the server's heartbeat timeout (3 s here).
	time.Sleep(4 * time.Second)
	got, _, _ = c.getBundle(b.ID)
	if state, r := freshness(got); state != api.FreshnessStale || r != api.ReasonObservationFailed {
		t.Errorf("after 4 s of heartbeats: freshness %s/%s; want Stale/ObservationFailed", state, r)
	}

	heal(proxy)
	healed := time.Now()
	back := eventually(t, healBound+10*time.Second, "Fresh with the new IP", func() bool {
		got, _, _ := c.getBundle(b.ID)
		ip, _ := feedback(got, "ip")
		state, _ := freshness(got)
		return ip == newIP && state == api.FreshnessFresh
	})
	t.Logf("observation back → Fresh with the new IP in REST: %v", back.Round(time.Millisecond))
	samples := stop()

	if stale > observationBound {
		t.Errorf("Stale took %v after the fault; documented bound %v", stale, observationBound)
	}
	if back > healBound {
		t.Errorf("healing took %v; bound %v", back, healBound)
	}
	// The promise: no sample says Fresh with the old IP longer than the
	// bound after the change, and nothing Fresh during the outage.
	var freshOld time.Duration
	confirmed := map[time.Time]bool{}
	for _, s := range samples {
		if s.state == api.FreshnessFresh && s.ip == oldIP {
			freshOld = max(freshOld, s.at.Sub(changed))
		}
		if s.at.After(faulted.Add(stale)) && s.at.Before(healed) {
			confirmed[s.confirmedAt] = true
			if s.state == api.FreshnessFresh {
				t.Errorf("Fresh at %s while the agent could not observe", s.at.Format("15:04:05.000"))
			}
		}
	}
	if freshOld > observationBound {
		t.Errorf("Fresh with the old IP for %v after it changed; bound %v", freshOld, observationBound)
	}
	if len(confirmed) > 2 {
		t.Errorf("confirmedAt moved %d times while the agent could not observe", len(confirmed)-1)
	}
	t.Logf("Fresh with the old IP for %v after the change (bound %v)", freshOld.Round(time.Millisecond), observationBound)
}

func agentGet(t *testing.T, p *proc, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.MetricsAddr + path)
	if err != nil {
		t.Errorf("GET %s: %v", path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAgentCutOffFromItsAPIServer: the link between the agent and its
// kube-apiserver is cut (connections reset, new ones refused) while the
// observed Service gets a new load balancer IP.
func TestAgentCutOffFromItsAPIServer(t *testing.T) {
	observationFault(t, "", nil, (*tcpproxy.Proxy).Cut, (*tcpproxy.Proxy).Restore, api.ReasonClusterUnreachable, true)
}

// TestAgentPermissionRevoked: the agent's RBAC is taken away (its watches
// stay open; its probe notices) while the observed Service changes.
func TestAgentPermissionRevoked(t *testing.T) {
	user := "baton-agent-" + rand.String(5)
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	rbac := kubernetes.NewForConfigOrDie(kubeCfg).RbacV1().ClusterRoleBindings()
	ctx := context.Background()
	grant := func() {
		t.Helper()
		if _, err := rbac.Create(ctx, binding.DeepCopy(), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = rbac.Delete(ctx, binding.Name, metav1.DeleteOptions{}) })
	revoke := func(*tcpproxy.Proxy) {
		t.Helper()
		if err := rbac.Delete(ctx, binding.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	observationFault(t, user, grant, revoke, func(*tcpproxy.Proxy) { grant() }, api.ReasonForbidden, false)
}

// observedSeed starts an agent of a new consumer (name prefix-xxxxx) with
// kubeconfig kc, creates a load balancer Service with ip in a new namespace
// and the seed bundle observing it, and waits until REST says Fresh with ip.
func observedSeed(t *testing.T, c *cluster, prefix, kc, ip string) (*proc, string, *corev1.Service, api.ResourceBundle) {
	t.Helper()
	consumer := prefix + "-" + rand.String(5)
	c.createConsumer(consumer)
	agent := c.startAgentWith(consumer, []string{"--kubeconfig", kc})
	ns := c.namespace(prefix)
	svc := c.createLBService(ns, "router", ip)
	b := c.createBundle(seedBundle(consumer, ns))
	eventually(t, 15*time.Second, "Fresh with the first IP", func() bool {
		got, _, err := c.getBundle(b.ID)
		gotIP, _ := feedback(got, "ip")
		state, _ := freshness(got)
		return err == nil && gotIP == ip && state == api.FreshnessFresh
	})
	return agent, ns, svc, b
}

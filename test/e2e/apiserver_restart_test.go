package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/baton-dev/baton/internal/testenv"
	"github.com/baton-dev/baton/pkg/api"
)

// TestAgentsAPIServerRestarted: the agent's own kube-apiserver is stopped
// (a real restart, etcd kept: its watches end, new connections are
// refused), stays down for longer than the heartbeat timeout, and comes
// back; the observed Service then gets a new load balancer IP. REST must
// say Stale/ObservationFailed (ClusterUnreachable) within observationBound
// and stay so while the apiserver is down, then be Fresh with the new IP
// within healBound of the change. The control plane is the test's own, so
// the other tests' apiserver keeps running.
func TestAgentsAPIServerRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own control plane")
	}
	own, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = own.Stop() })
	kc, err := own.KubeconfigFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, sqliteStore)
	c.kube = kubernetes.NewForConfigOrDie(own.Config)
	c.records = c.namespace("records")
	const oldIP, newIP = "20.1.1.1", "20.3.3.3"
	agent, ns, svc, b := observedSeed(t, c, "restart", kc, oldIP)
	samples := c.watchVerdicts(b.ID, 50*time.Millisecond)

	if err := own.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	stale := eventually(t, observationBound+10*time.Second, "Stale/ObservationFailed", func() bool {
		got, _, _ := c.getBundle(b.ID)
		state, r := freshness(got)
		return state == api.FreshnessStale && r == api.ReasonObservationFailed
	})
	t.Logf("apiserver stopped → Stale/ObservationFailed in REST: %v", stale.Round(time.Millisecond))
	got, _, _ := c.getBundle(b.ID)
	e, _ := entry(got)
	if cond, _ := condition(e.Conditions, api.ConditionStatusFeedbackSynced); cond.Status != metav1.ConditionUnknown ||
		cond.Reason != api.ReasonClusterUnreachable {
		t.Errorf("entry StatusFeedbackSynced = %s/%s; want Unknown/%s:\n%s", cond.Status, cond.Reason, api.ReasonClusterUnreachable, dump(e))
	}
	if code, body := agentGet(t, agent, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, api.ReasonClusterUnreachable) {
		t.Errorf("agent /readyz = %d %q; want 503 naming %s", code, body, api.ReasonClusterUnreachable)
	}
	// Down for longer than the heartbeat timeout (3 s here): heartbeats
	// must not re-confirm what the agent cannot see.
	time.Sleep(4 * time.Second)
	if got, _, _ := c.getBundle(b.ID); func() bool {
		s, r := freshness(got)
		return s != api.FreshnessStale || r != api.ReasonObservationFailed
	}() {
		s, r := freshness(got)
		t.Errorf("after 4 s down: freshness %s/%s; want Stale/ObservationFailed", s, r)
	}

	// From here on the apiserver may serve before StartAPIServer returns
	// (it returns after envtest's next health poll).
	starting := time.Now()
	if err := own.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	t.Logf("apiserver down for %v (start took %v)", restarted.Sub(stopped).Round(time.Millisecond), restarted.Sub(starting).Round(time.Millisecond))
	eventually(t, 30*time.Second, "the restarted apiserver answers", func() bool {
		_, err := c.kube.CoreV1().Services(ns).Get(t.Context(), svc.Name, metav1.GetOptions{})
		if err == nil {
			svc, err = c.kube.CoreV1().Services(ns).Get(t.Context(), svc.Name, metav1.GetOptions{})
		}
		return err == nil
	})
	svc = c.setLBIP(svc, newIP)
	changed := time.Now()
	back := eventually(t, healBound+10*time.Second, "Fresh with the new IP", func() bool {
		got, _, _ := c.getBundle(b.ID)
		ip, _ := feedback(got, "ip")
		state, _ := freshness(got)
		return ip == newIP && state == api.FreshnessFresh
	})
	t.Logf("new IP after the restart → Fresh with it in REST: %v (%v after the apiserver started)",
		back.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))

	if stale > observationBound {
		t.Errorf("Stale took %v after the apiserver stopped; documented bound %v", stale, observationBound)
	}
	if back > healBound {
		t.Errorf("healing took %v; bound %v", back, healBound)
	}
	for _, s := range samples() {
		if s.at.After(stopped.Add(stale)) && s.at.Before(starting) && s.state == api.FreshnessFresh {
			t.Errorf("Fresh at %s while the apiserver was down", s.at.Format("15:04:05.000"))
		}
		if s.at.After(changed.Add(observationBound)) && s.state == api.FreshnessFresh && s.ip == oldIP {
			t.Errorf("Fresh with the old IP at %s, %v after it changed", s.at.Format("15:04:05.000"), s.at.Sub(changed))
		}
	}
}

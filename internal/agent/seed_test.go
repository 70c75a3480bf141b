package agent

import (
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

// TestSeedScenario replays the stale shared-ingress incident: a ReadOnly
// bundle observes the LoadBalancer Service "router"; the management cluster
// is rebuilt, so the Service is deleted and recreated with a new IP. The
// reports must follow within a second each time, carry the new uid and IP,
// and never show the old IP after the deletion.
func TestSeedScenario(t *testing.T) {
	h := newHarness(t)
	const oldIP, newIP = "20.1.2.3", "20.4.5.6"
	svc := h.createService("router", "")
	h.server.sendSpec(t, spec("shared-ingress", 1, []json.RawMessage{h.serviceManifest("router")},
		config("services", h.ns, "router", workv1.UpdateStrategyTypeReadOnly,
			workv1.JsonPath{Name: "ip", Path: ".status.loadBalancer.ingress[0].ip"})))
	h.server.waitFor(t, protocol.TypeSpecAck, 0, 5*time.Second, "generation 1", func(m protocol.Message) bool {
		return m.SpecAck.BundleID == "shared-ingress" && m.SpecAck.Generation == 1
	})
	h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "the Service observed", func(m protocol.Message) bool {
		s := status(m, "shared-ingress")
		return s != nil && s.Reported.ResourceStatus[0].Observed.UID == string(svc.UID)
	})

	// The cloud provider assigns the first IP.
	t1 := time.Now()
	svc = h.setIP(svc, oldIP)
	r1, _ := h.server.waitFor(t, protocol.TypeStatus, 0, 2*time.Second, "the first IP", func(m protocol.Message) bool {
		v, _ := value(status(m, "shared-ingress"), 0, "ip")
		return v == oldIP
	})
	within(t, "first IP reported", t1, r1.at, time.Second)
	if uid := r1.m.Status.Reported.ResourceStatus[0].Observed.UID; uid != string(svc.UID) {
		t.Errorf("first IP reported with uid %s; want %s", uid, svc.UID)
	}

	// The management cluster is rebuilt: the Service disappears...
	t2 := time.Now()
	if err := h.kube.CoreV1().Services(h.ns).Delete(h.ctx, "router", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r2, i2 := h.server.waitFor(t, protocol.TypeStatus, 0, 2*time.Second, "the Service gone", func(m protocol.Message) bool {
		s := status(m, "shared-ingress")
		return s != nil && !s.Reported.ResourceStatus[0].Observed.Exists
	})
	within(t, "deletion reported", t2, r2.at, time.Second)
	if st, reason := condition(r2.m.Status, 0, api.ConditionAvailable); st != metav1.ConditionFalse || reason != api.ReasonNotFound {
		t.Errorf("after delete Available = %s/%s; want False/NotFound", st, reason)
	}

	// ...and comes back with a new identity and a new IP.
	svc2 := h.createService("router", "")
	t3 := time.Now()
	svc2 = h.setIP(svc2, newIP)
	r3, _ := h.server.waitFor(t, protocol.TypeStatus, i2, 2*time.Second, "the new IP", func(m protocol.Message) bool {
		v, _ := value(status(m, "shared-ingress"), 0, "ip")
		return v == newIP
	})
	within(t, "new IP reported", t3, r3.at, time.Second)
	obs := r3.m.Status.Reported.ResourceStatus[0].Observed
	if obs.UID != string(svc2.UID) || obs.UID == string(svc.UID) || !obs.Exists {
		t.Errorf("new IP reported with observed %+v; want the new uid %s", obs, svc2.UID)
	}
	if obs.ResourceVersion != svc2.ResourceVersion {
		t.Errorf("new IP reported at resourceVersion %s; want %s", obs.ResourceVersion, svc2.ResourceVersion)
	}

	// No report after the deletion carries the old IP, and revisions only grow.
	time.Sleep(300 * time.Millisecond)
	all := h.server.snapshot(protocol.TypeStatus)
	var lastRev int64
	for i, r := range all {
		s := status(r.m, "shared-ingress")
		if s == nil {
			continue
		}
		if s.Revision <= lastRev && i > 0 {
			t.Errorf("revision %d after %d", s.Revision, lastRev)
		}
		lastRev = max(lastRev, s.Revision)
		if !r.at.Before(t2) {
			if v, ok := value(s, 0, "ip"); ok && v == oldIP {
				t.Errorf("report at %s (after the delete) carries the old IP", r.at.Format(time.StampMilli))
			}
		}
	}
	last := status(all[len(all)-1].m, "shared-ingress")
	if v, _ := value(last, 0, "ip"); v != newIP {
		t.Errorf("last report ip = %q; want %q", v, newIP)
	}
}

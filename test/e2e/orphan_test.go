package e2e

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestOrphanDeleteAgentReturnsKeepsObjects: a bundle whose agent is gone
// stays deleting; orphan=true finalizes it at once (the name is free), and
// the agent, when it returns, drops its record and keeps the ConfigMap.
func TestOrphanDeleteAgentReturnsKeepsObjects(t *testing.T) {
	eachStore(t, func(t *testing.T, kind storeKind) {
		c := newCluster(t, kind)
		c.createConsumer("c1")
		agent := c.startAgent("c1")
		ns := c.namespace("orphan")
		b := c.createBundle(configMapBundle("c1", "kept", ns, "cm", "x", "Update"))
		eventually(t, 10*time.Second, "applied", func() bool { return c.converged(b.ID, "x") })
		ctx := context.Background()
		record := func() bool {
			secs, err := c.kube.CoreV1().Secrets(c.records).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secs.Items {
				if strings.Contains(s.Name, b.ID) {
					return true
				}
			}
			return false
		}
		if !record() {
			t.Fatal("no record of the applied bundle in the agent's records namespace")
		}

		agent.Stop() // the agent that never returns (for now)
		c.mustDo(http.MethodDelete, "/resource-bundles/"+b.ID, nil, nil)
		code, _ := c.do(http.MethodPost, "/resource-bundles", configMapBundle("c1", "kept", ns, "cm", "x", "Update"), nil)
		if code != http.StatusConflict {
			t.Fatalf("recreate while deleting: %d; want 409", code)
		}
		c.mustDo(http.MethodDelete, "/resource-bundles/"+b.ID+"?orphan=true", nil, nil)
		if _, code, _ := c.getBundle(b.ID); code != http.StatusNotFound {
			t.Fatalf("after orphan=true: GET %d; want 404", code)
		}

		agent.Restart()
		took := eventually(t, 15*time.Second, "the agent drops its record", func() bool { return !record() })
		t.Logf("record dropped %v after the agent restarted", took)
		if _, err := c.kube.CoreV1().ConfigMaps(ns).Get(ctx, "cm", metav1.GetOptions{}); err != nil {
			t.Fatalf("the orphaned ConfigMap: %v; want it kept", err)
		}
		// Kept, not deleted later either.
		time.Sleep(2 * time.Second)
		if _, err := c.kube.CoreV1().ConfigMaps(ns).Get(ctx, "cm", metav1.GetOptions{}); err != nil {
			t.Fatalf("the orphaned ConfigMap went away: %v", err)
		}
	})
}

// TestDecommissionedConsumer: a cluster decommissioned while its agent is
// down, with a bundle pending (never delivered), one applied and one
// deleting; the consumer and the bundles are gone at once, the objects stay,
// and the agent that still connects is refused (logged on both sides) and
// does not re-create the consumer.
func TestDecommissionedConsumer(t *testing.T) {
	eachStore(t, func(t *testing.T, kind storeKind) {
		c := newCluster(t, kind)
		c.createConsumer("c1")
		agent := c.startAgent("c1")
		ns := c.namespace("decom")
		applied := c.createBundle(configMapBundle("c1", "applied", ns, "cm-applied", "a", "Update"))
		deleting := c.createBundle(configMapBundle("c1", "deleting", ns, "cm-deleting", "d", "Update"))
		eventually(t, 10*time.Second, "applied", func() bool {
			return c.converged(applied.ID, "a") && c.converged(deleting.ID, "d")
		})
		agent.Stop()
		c.mustDo(http.MethodDelete, "/resource-bundles/"+deleting.ID, nil, nil)
		pending := c.createBundle(configMapBundle("c1", "pending", ns, "cm-pending", "p", "Update"))

		c.mustDo(http.MethodDelete, "/consumers/c1?cascade=orphan", nil, nil)
		if code, _ := c.do(http.MethodGet, "/consumers/c1", nil, nil); code != http.StatusNotFound {
			t.Fatalf("consumer after decommission: %d", code)
		}
		for _, id := range []string{applied.ID, deleting.ID, pending.ID} {
			if _, code, _ := c.getBundle(id); code != http.StatusNotFound {
				t.Fatalf("bundle %s after decommission: %d", id, code)
			}
		}

		agent.Restart()
		eventually(t, 15*time.Second, "the agent is refused and says so", func() bool {
			log, _ := os.ReadFile(agent.LogPath())
			return strings.Contains(string(log), "the server refuses this consumer") &&
				strings.Contains(string(log), "was decommissioned at")
		})
		slog, _ := os.ReadFile(c.server.LogPath())
		if !strings.Contains(string(slog), "agent of a decommissioned consumer refused") {
			t.Errorf("the server log does not name the refused agent")
		}
		if code, _ := c.do(http.MethodGet, "/consumers/c1", nil, nil); code != http.StatusNotFound {
			t.Fatalf("the refused agent re-created the consumer: %d", code)
		}
		ctx := context.Background()
		for _, name := range []string{"cm-applied", "cm-deleting"} {
			if _, err := c.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Errorf("ConfigMap %s of a decommissioned cluster: %v; want it left in place", name, err)
			}
		}
		if _, err := c.kube.CoreV1().ConfigMaps(ns).Get(ctx, "cm-pending", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the pending bundle was applied after the decommission: %v", err)
		}
	})
}

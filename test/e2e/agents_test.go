package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/baton-dev/baton/pkg/api"
)

// agentSample is what a user sees of a consumer and one bundle at a time.
type agentSample struct {
	at        time.Time
	epoch, id string
	conflict  *api.AgentConflict
	value     string
	state     string
	reason    string
}

// sampleAgent polls the consumer and bundle id over REST every 50 ms
// until stop is called, which returns the samples.
func (c *cluster) sampleAgent(consumer, id string) (stop func() []agentSample) {
	return poll(50*time.Millisecond, func() (agentSample, bool) {
		var cons api.Consumer
		if _, err := c.do(http.MethodGet, "/consumers/"+consumer, nil, &cons); err != nil || cons.Agent == nil {
			return agentSample{}, false
		}
		b, _, err := c.getBundle(id)
		if err != nil {
			return agentSample{}, false
		}
		s := agentSample{at: time.Now(), epoch: cons.Agent.Epoch, id: cons.Agent.ID, conflict: cons.Agent.Conflict}
		s.value, _ = feedback(b, "v")
		s.state, s.reason = freshness(b)
		return s, true
	})
}

func describeAgentSamples(ss []agentSample) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "%s id=%s epoch=%.8s v=%s %s/%s conflict=%v\n", s.at.Format("15:04:05.000"), s.id, s.epoch, s.value, s.state, s.reason, s.conflict != nil)
	}
	return b.String()
}

// TestTwoAgentsOneConsumer: a second agent for a consumer (another
// identity) stands down: the consumer shows agent.conflict naming both,
// the status never switches to the second agent's view, and the bundle
// stays Fresh. Then a rolling update: the first agent stops (SIGTERM)
// while the second runs; the second takes over within seconds, without
// the bundle ever turning Stale, and applies the next change.
func TestTwoAgentsOneConsumer(t *testing.T) {
	eachStore(t, func(t *testing.T, kind storeKind) {
		c := newCluster(t, kind)
		c.createConsumer("c1")
		first := c.startAgentWith("c1", []string{"--agent-id", "pod-old"})
		ns := c.namespace("twoagents")
		b := c.createBundle(configMapBundle("c1", "shared", ns, "cm", "one", "Update"))
		eventually(t, 10*time.Second, "first status", func() bool { return c.converged(b.ID, "one") })
		var cons api.Consumer
		c.mustDo(http.MethodGet, "/consumers/c1", nil, &cons)
		epoch1 := cons.Agent.Epoch
		if cons.Agent.ID != "pod-old" || cons.Agent.Conflict != nil {
			t.Fatalf("agent state before the second agent: %s", dump(cons.Agent))
		}

		stop := c.sampleAgent("c1", b.ID)
		c.startAgentWith("c1", []string{"--agent-id", "pod-new"})
		eventually(t, 10*time.Second, "agent.conflict naming both agents", func() bool {
			var cur api.Consumer
			_, err := c.do(http.MethodGet, "/consumers/c1", nil, &cur)
			cf := cur.Agent.Conflict
			return err == nil && cf != nil && cf.Active == "pod-old" && cf.StandingBy == "pod-new"
		})
		time.Sleep(3 * time.Second) // several heartbeats and stand-down retries
		conflicted := stop()
		for _, s := range conflicted {
			if s.epoch != epoch1 || s.id != "pod-old" || s.state != api.FreshnessFresh || s.value != "one" {
				t.Fatalf("while the second agent stood by, the consumer or bundle moved:\n%s", describeAgentSamples(conflicted))
			}
		}

		// Rolling update: the old agent goes, the new one takes over.
		stop = c.sampleAgent("c1", b.ID)
		first.Stop()
		stopped := time.Now()
		took := eventually(t, 10*time.Second, "the new agent serving", func() bool {
			var cur api.Consumer
			_, err := c.do(http.MethodGet, "/consumers/c1", nil, &cur)
			return err == nil && cur.Agent.ID == "pod-new" && cur.Agent.Connected && cur.Agent.Epoch != epoch1
		})
		t.Logf("rolling update: the new agent serves %v after the old one was stopped", took)
		cur, _, err := c.getBundle(b.ID)
		if err != nil {
			t.Fatal(err)
		}
		body := configMapBundle("c1", "shared", ns, "cm", "two", "Update")
		body["version"] = cur.Version
		c.mustDo(http.MethodPut, "/resource-bundles/"+b.ID, body, nil)
		eventually(t, 10*time.Second, "the change applied by the new agent", func() bool { return c.converged(b.ID, "two") })
		handover := stop()
		for _, s := range handover {
			if s.state != api.FreshnessFresh {
				t.Fatalf("the bundle turned %s/%s during the handover (old agent stopped at %s):\n%s",
					s.state, s.reason, stopped.Format("15:04:05.000"), describeAgentSamples(handover))
			}
		}
		if took > 5*time.Second {
			t.Errorf("handover took %v; want within a few seconds", took)
		}
	})
}

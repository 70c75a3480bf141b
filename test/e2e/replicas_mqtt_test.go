package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store/storetest"
)

// mqttBroker returns the test broker's URL, skipping the test without one.
func mqttBroker(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("BATON_TEST_MQTT")
	if addr == "" {
		addr = "127.0.0.1:1883"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if os.Getenv("BATON_TEST_MQTT") == "" {
			t.Skipf("no MQTT broker at %s: %v", addr, err)
		}
		t.Fatalf("no MQTT broker at %s: %v", addr, err)
	}
	c.Close()
	return "tcp://" + addr
}

// sampleSum adds every sample of metric name (all label sets) at url.
func sampleSum(t testing.TB, url, name string) float64 {
	t.Helper()
	var n float64
	for line := range strings.Lines(scrape(t, url)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		n += f
	}
	return n
}

// TestReplicasShareMQTTBroker: three replicas on one PostgreSQL and one
// Mosquitto, the agent on MQTT. Exactly one replica serves the consumer,
// every status report is ingested once (not once per replica), a bundle
// created through any replica is applied, and kill -9 of the serving
// replica moves the consumer to another one, with each generation applied
// once.
func TestReplicasShareMQTTBroker(t *testing.T) {
	broker := mqttBroker(t)
	source := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	mq := []string{"--mqtt-broker", broker, "--mqtt-source", source}
	db := []string{"--db-url", storetest.PostgresURL(t)}
	rs := make([]*cluster, 3)
	for i := range rs {
		rs[i] = startCluster(t, postgresStore, db, append(append([]string{"--server-id", fmt.Sprintf("r%d", i)}, replicaFlags...), mq...)...)
		if i > 0 {
			rs[i].records = rs[0].records
		}
	}
	rs[0].createConsumer("c1")
	agent := rs[0].startAgentWith("c1", mq)
	agentURL := "http://" + agent.MetricsAddr + "/metrics"
	ns := rs[0].namespace("mqtt-replicas")
	sessions := func(of []*cluster) (n float64, at *cluster) {
		for _, c := range of {
			if v := c.metricValue("baton_hub_sessions_connected"); v > 0 {
				n, at = n+v, c
			}
		}
		return n, at
	}
	// Every report the replicas ingested was sent (or re-sent) by the agent:
	// a replica handling events it does not own would count them again.
	ingestedOnce := func(of []*cluster) {
		t.Helper()
		var got float64
		for _, c := range of {
			got += sampleSum(t, c.rest+"/metrics", "baton_hub_status_reports_total")
		}
		sent := sampleSum(t, agentURL, "baton_agent_reports_sent_total") + sampleSum(t, agentURL, "baton_agent_reports_resent_total")
		if got > sent {
			t.Errorf("replicas ingested %v status reports; the agent sent %v (reports handled more than once)", got, sent)
		}
		t.Logf("status reports: agent sent %v, replicas ingested %v", sent, got)
	}

	const n = 3
	ids := make([]string, n)
	start := time.Now()
	for i := range ids {
		ids[i] = rs[i].createBundle(configMapBundle("c1", fmt.Sprintf("m%d", i), ns, fmt.Sprintf("cm%d", i), "one", "Update")).ID
	}
	for i, id := range ids {
		c := rs[(i+1)%3]
		eventually(t, 15*time.Second, "first status", func() bool { return c.converged(id, "one") })
	}
	t.Logf("%d bundles created through the three replicas, Fresh after %v", n, time.Since(start))
	eventually(t, 10*time.Second, "one session", func() bool { s, _ := sessions(rs); return s == 1 })
	_, owner := sessions(rs)
	ingestedOnce(rs)
	if got := sampleSum(t, agentURL, `baton_agent_applies_total`); got != n {
		t.Fatalf("agent applied %v times; want %d", got, n)
	}

	owner.server.Kill()
	killed := time.Now()
	var rest []*cluster
	for _, c := range rs {
		if c != owner {
			rest = append(rest, c)
		}
	}
	for i, id := range ids {
		cur, _, err := rest[0].getBundle(id)
		if err != nil {
			t.Fatal(err)
		}
		body := configMapBundle("c1", cur.Name, ns, fmt.Sprintf("cm%d", i), "two", "Update")
		body["version"] = cur.Version
		rest[i%2].mustDo(http.MethodPut, "/resource-bundles/"+id, body, nil)
	}
	for i, id := range ids {
		c := rest[(i+1)%2]
		eventually(t, 30*time.Second, "live value after the kill", func() bool {
			v, _ := c.configMapValue(ns, fmt.Sprintf("cm%d", i))
			return v == "two" && c.converged(id, "two")
		})
	}
	t.Logf("serving replica killed: every bundle applied and Fresh through the others after %v", time.Since(killed))
	eventually(t, 10*time.Second, "one session on the survivors", func() bool { s, _ := sessions(rest); return s == 1 })
	ingestedOnce(rest)
	if got := sampleSum(t, agentURL, `baton_agent_applies_total`); got != 2*n {
		t.Errorf("agent applied %v times over two generations of %d bundles; want %d (each once)", got, n, 2*n)
	}
}

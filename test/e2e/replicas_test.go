package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ggrpc "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/baton-dev/baton/internal/api/rest"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/transport/grpc"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
	"github.com/baton-dev/baton/pkg/api"
)

// replicaFlags make a dead replica count as gone quickly.
var replicaFlags = []string{"--replica-lease", "2s"}

// newReplicas starts n servers on one fresh PostgreSQL database, named
// r0, r1, …; their agents share one records namespace.
func newReplicas(t *testing.T, n int) []*cluster { return newReplicasTB(t, n) }

func newReplicasTB(t testing.TB, n int) []*cluster {
	t.Helper()
	db := []string{"--db-url", storetest.PostgresURL(t)}
	rs := make([]*cluster, n)
	for i := range rs {
		rs[i] = startCluster(t, postgresStore, db, append([]string{"--server-id", fmt.Sprintf("r%d", i)}, replicaFlags...)...)
		if i > 0 {
			rs[i].records = rs[0].records
		}
	}
	return rs
}

// sourceWatch records, per bundle id, when each fed-back value "v" first
// arrived on a gRPC source subscription.
type sourceWatch struct {
	mu   sync.Mutex
	seen map[string]map[string]time.Time
}

func (c *cluster) watchSource(t *testing.T, source string) *sourceWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cc, err := ggrpc.NewClient(c.grpcAddr, ggrpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	stream, err := pb.NewCloudEventServiceClient(cc).Subscribe(ctx, &pb.SubscriptionRequest{Source: source, DataType: cloudevents.DataType})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatalf("subscription header: %v", err)
	}
	w := &sourceWatch{seen: map[string]map[string]time.Time{}}
	go func() {
		for {
			in, err := stream.Recv()
			if err != nil {
				return
			}
			e, err := grpc.FromPB(in)
			if err != nil || e.Type != cloudevents.TypeStatusUpdate {
				continue
			}
			st, err := cloudevents.DecodeSourceStatus(e)
			if err != nil {
				continue
			}
			v, _ := feedback(api.ResourceBundle{Status: &api.BundleStatus{ResourceStatus: st.Reported.ResourceStatus}}, "v")
			w.mu.Lock()
			if w.seen[st.BundleID] == nil {
				w.seen[st.BundleID] = map[string]time.Time{}
			}
			if _, ok := w.seen[st.BundleID][v]; !ok {
				w.seen[st.BundleID][v] = time.Now()
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *sourceWatch) wait(t *testing.T, id, v string, timeout time.Duration) time.Time {
	t.Helper()
	var at time.Time
	eventually(t, timeout, "value "+v+" of "+id+" on the source subscription", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		var ok bool
		at, ok = w.seen[id][v]
		return ok
	})
	return at
}

// TestReplicasServeFromAnyReplica: three replicas on one PostgreSQL. The
// agent is connected to A; a bundle created through B is applied and its
// status is visible through C; a REST watch on C and a gRPC source
// subscription on B see the changes A ingested.
func TestReplicasServeFromAnyReplica(t *testing.T) {
	rs := newReplicas(t, 3)
	a, b, c := rs[0], rs[1], rs[2]
	a.createConsumer("c1")
	a.startAgentWith("c1", []string{"--server", a.agentRPC})
	ns := a.namespace("replicas")
	watchC := c.watchBundles()
	defer watchC.Stop()
	srcB := b.watchSource(t, rest.DefaultSource)

	start := time.Now()
	bundle := b.createBundle(configMapBundle("c1", "across", ns, "cm", "one", "Update"))
	took := eventually(t, 10*time.Second, "status through C", func() bool { return c.converged(bundle.ID, "one") })
	t.Logf("created through B, applied by the agent on A, Fresh through C after %v", took)
	if took > time.Second {
		t.Errorf("cross-replica delivery took %v; want under 1 s", took)
	}
	watchC.wait(t, "across", "one", 10*time.Second)
	srcB.wait(t, bundle.ID, "one", 10*time.Second)

	// An update through C: applied by the agent on A, its status ingested
	// by A, seen on C's watch and B's source subscription.
	changed := time.Now()
	body := configMapBundle("c1", "across", ns, "cm", "two", "Update")
	body["version"] = bundle.Version
	c.mustDo(http.MethodPut, "/resource-bundles/"+bundle.ID, body, nil)
	atW := watchC.wait(t, "across", "two", 10*time.Second)
	atS := srcB.wait(t, bundle.ID, "two", 10*time.Second)
	t.Logf("update through C, applied via A: on C's watch after %v, on B's source stream after %v (%v since the create)",
		atW.Sub(changed), atS.Sub(changed), time.Since(start))
}

// TestReplicaKilledAgentMoves: kill -9 of the replica holding the agent's
// session while its bundle changes: the agent reconnects to another
// replica and REST shows the live value within 5 s, nothing lost.
func TestReplicaKilledAgentMoves(t *testing.T) {
	rs := newReplicas(t, 3)
	a, b, c := rs[0], rs[1], rs[2]
	a.createConsumer("c1")
	agent := a.startAgentWith("c1", []string{"--server", strings.Join([]string{a.agentRPC, b.agentRPC, c.agentRPC}, ",")})
	applies := func() float64 { return agentMetric(t, agent, `baton_agent_applies_total{result="ok"}`) }
	ns := a.namespace("failover")
	const n = 3
	ids := make([]string, n)
	for i := range ids {
		ids[i] = b.createBundle(configMapBundle("c1", fmt.Sprintf("b%d", i), ns, fmt.Sprintf("cm%d", i), "one", "Update")).ID
	}
	for _, id := range ids {
		eventually(t, 10*time.Second, "first status", func() bool { return c.converged(id, "one") })
	}
	var cons api.Consumer
	c.mustDo(http.MethodGet, "/consumers/c1", nil, &cons)
	if cons.Agent == nil || !cons.Agent.Connected || cons.Agent.ID == "" {
		t.Fatalf("consumer agent state %s; want connected with an id", dump(cons.Agent))
	}
	if got := applies(); got != n {
		t.Fatalf("agent applied %v times before the kill; want %d (one per bundle)", got, n)
	}
	sessions := agentMetric(t, agent, "baton_agent_sessions_total")

	a.server.Kill()
	killed := time.Now()
	for i, id := range ids {
		cur, _, err := b.getBundle(id)
		if err != nil {
			t.Fatal(err)
		}
		body := configMapBundle("c1", cur.Name, ns, fmt.Sprintf("cm%d", i), "two", "Update")
		body["version"] = cur.Version
		b.mustDo(http.MethodPut, "/resource-bundles/"+id, body, nil)
	}
	for i, id := range ids {
		eventually(t, 15*time.Second, "live value through C after the kill", func() bool {
			v, _ := c.configMapValue(ns, fmt.Sprintf("cm%d", i))
			return v == "two" && c.converged(id, "two")
		})
	}
	took := time.Since(killed)
	t.Logf("replica holding the session killed: every bundle applied and Fresh through C after %v", took)
	if took > 5*time.Second {
		t.Errorf("failover took %v; want within 5 s of the kill", took)
	}
	c.mustDo(http.MethodGet, "/consumers/c1", nil, &cons)
	if !cons.Agent.Connected {
		t.Errorf("consumer not connected after failover: %s", dump(cons.Agent))
	}
	// No duplicate apply: the new replica's resync re-sends every bundle,
	// and the agent applies none of the generations it already holds.
	// Checked once the agent's new session is in place and its resync
	// answered (every bundle Fresh at generation 2 through C).
	if s := agentMetric(t, agent, "baton_agent_sessions_total"); s <= sessions {
		t.Errorf("agent sessions %v after failover, %v before; want a new session", s, sessions)
	}
	if got := applies(); got != 2*n {
		t.Errorf("agent applied %v times over two generations of %d bundles; want %d (each generation once)", got, n, 2*n)
	}
}

// TestReplicasMigrateOnce: two replicas starting together on an empty
// database apply each migration once (the migration lock) and both serve.
func TestReplicasMigrateOnce(t *testing.T) {
	url := storetest.PostgresURL(t)
	var wg sync.WaitGroup
	rs := make([]*cluster, 2)
	for i := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs[i] = startCluster(t, postgresStore, []string{"--db-url", url}, replicaFlags...)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var applied, distinct int
	if err := db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	if applied != distinct || applied == 0 {
		t.Fatalf("goose_db_version holds %d rows for %d versions; every migration must run once", applied, distinct)
	}
	rs[0].createConsumer("c1")
	var cons api.Consumer
	rs[1].mustDo(http.MethodGet, "/consumers/c1", nil, &cons)
}

// BenchmarkCrossReplica measures, with three replicas on one PostgreSQL
// and the agent on A: an update written through B until its applied
// status is on C's REST watch (p50/p99 over b.N updates), and the
// failover time after kill -9 of A (until the bundle is Fresh with a
// value written after the kill, read through C).
//
//	BATON_BIN=$PWD/bin/baton go test ./test/e2e -run '^$' -bench CrossReplica -benchtime 100x
func BenchmarkCrossReplica(b *testing.B) {
	rs := newReplicasTB(b, 3)
	a, rb, c := rs[0], rs[1], rs[2]
	a.createConsumer("c1")
	a.startAgentWith("c1", []string{"--server", strings.Join([]string{a.agentRPC, rb.agentRPC, c.agentRPC}, ",")})
	ns := a.namespace("xbench")
	bundle := rb.createBundle(configMapBundle("c1", "x", ns, "cm", "v0", "Update"))
	w := c.watchBundles()
	defer w.Stop()
	w.wait(b, "x", "v0", 30*time.Second)
	lat := make([]time.Duration, 0, b.N)
	version := bundle.Version
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		v := fmt.Sprintf("v%d", i)
		body := configMapBundle("c1", "x", ns, "cm", v, "Update")
		body["version"] = version
		var out api.ResourceBundle
		start := time.Now()
		rb.mustDo(http.MethodPut, "/resource-bundles/"+bundle.ID, body, &out)
		version = out.Version
		lat = append(lat, w.wait(b, "x", v, 30*time.Second).Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(float64(p(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99-ms")

	a.server.Kill()
	killed := time.Now()
	body := configMapBundle("c1", "x", ns, "cm", "after-kill", "Update")
	body["version"] = version
	rb.mustDo(http.MethodPut, "/resource-bundles/"+bundle.ID, body, nil)
	for !c.converged(bundle.ID, "after-kill") {
		if time.Since(killed) > 30*time.Second {
			b.Fatal("no failover within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.ReportMetric(float64(time.Since(killed).Milliseconds()), "failover-ms")
}

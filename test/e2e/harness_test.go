// Package e2e runs the built baton binary — server and agent as separate
// processes — against a real kube-apiserver and etcd, on SQLite and on
// PostgreSQL, and checks the freshness promise end to end.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/baton-dev/baton/internal/proctest"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

var (
	kubeCfg    *rest.Config
	kubeconfig string // path, for agent processes
	batonBin   string
)

func TestMain(m *testing.M) {
	code := proctest.Main(m, "e2e", func(w proctest.World) {
		batonBin, kubeCfg, kubeconfig = w.Bin, w.Config, w.Kubeconfig
	})
	os.Exit(code)
}

// freePort returns a loopback address with a port nobody listens on.
func freePort(t testing.TB) string { return proctest.FreePort(t) }

// proc is one baton process.
type proc = proctest.Proc

func startProc(t testing.TB, name string, env []string, args ...string) *proc {
	t.Helper()
	return startProcBin(t, "", name, env, args...)
}

// startProcBin is startProc for another executable (bin; empty is baton).
func startProcBin(t testing.TB, bin, name string, env []string, args ...string) *proc {
	t.Helper()
	if bin == "" {
		bin = batonBin
	}
	return proctest.Start(t, bin, name, env, args...)
}

// cluster is one baton deployment under test: a server and one agent.
type cluster struct {
	t        testing.TB
	rest     string // base URL
	agentRPC string
	grpcAddr string // source clients' gRPC endpoint
	server   *proc
	agents   map[string]*proc
	kube     kubernetes.Interface
	store    string
	// records is the agents' records namespace: one per cluster, since all
	// tests share one kube-apiserver.
	records string
}

type storeKind string

const (
	sqliteStore   storeKind = "sqlite"
	postgresStore storeKind = "postgres"
)

// eachStore runs fn as a subtest on SQLite and on PostgreSQL.
func eachStore(t *testing.T, fn func(t *testing.T, kind storeKind)) {
	for _, k := range []storeKind{sqliteStore, postgresStore} {
		t.Run(string(k), func(t *testing.T) { fn(t, k) })
	}
}

// Timing used by every e2e server and agent: short, so that heartbeat and
// timeout behaviour is observable in seconds.
var (
	serverTimingFlags = []string{"--heartbeat-timeout", "3s", "--resend-after", "1s"}
	agentTimingFlags  = []string{"--heartbeat", "1s"}
)

func newCluster(t testing.TB, kind storeKind) *cluster {
	t.Helper()
	return newClusterWith(t, kind)
}

// newClusterWith is newCluster with extra server flags, which override the
// e2e timing flags.
func newClusterWith(t testing.TB, kind storeKind, serverFlags ...string) *cluster {
	t.Helper()
	var db []string
	switch kind {
	case sqliteStore:
		db = []string{"--data-dir", t.TempDir()}
	case postgresStore:
		db = []string{"--db-url", storetest.PostgresURL(t)}
	}
	return startCluster(t, kind, db, serverFlags...)
}

// startCluster starts a server on the database the db flags select.
func startCluster(t testing.TB, kind storeKind, db []string, serverFlags ...string) *cluster {
	t.Helper()
	httpAddr, grpcAddr, agentAddr := freePort(t), freePort(t), freePort(t)
	args := append([]string{"server", "--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--agent-addr", agentAddr}, db...)
	args = append(args, serverTimingFlags...)
	args = append(args, serverFlags...)
	c := &cluster{t: t, rest: "http://" + httpAddr, agentRPC: agentAddr, grpcAddr: grpcAddr, agents: map[string]*proc{}, store: string(kind)}
	c.server = startProc(t, "server", nil, args...)
	c.waitReady(c.rest + "/readyz")
	kc, err := kubernetes.NewForConfig(kubeCfg)
	if err != nil {
		t.Fatal(err)
	}
	c.kube = kc
	c.records = c.namespace("records")
	return c
}

func (c *cluster) waitReady(url string) {
	c.t.Helper()
	proctest.WaitReady(c.t, url, 30*time.Second)
}

// startAgent starts an agent process for consumer with extra environment.
func (c *cluster) startAgent(consumer string, env ...string) *proc {
	c.t.Helper()
	return c.startAgentWith(consumer, nil, env...)
}

// startAgentWith is startAgent with extra agent flags, which override the
// e2e timing flags.
func (c *cluster) startAgentWith(consumer string, flags []string, env ...string) *proc {
	c.t.Helper()
	metrics := freePort(c.t)
	args := append([]string{"agent", "--consumer", consumer, "--server", c.agentRPC,
		"--kubeconfig", kubeconfig, "--metrics-addr", metrics, "--records-namespace", c.records}, agentTimingFlags...)
	args = append(args, flags...)
	p := startProc(c.t, "agent-"+consumer, env, args...)
	p.MetricsAddr = metrics
	c.agents[consumer] = p
	c.waitReady("http://" + metrics + "/readyz")
	return p
}

// do sends a JSON request and decodes the JSON answer into out (if non-nil).
func (c *cluster) do(method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.rest+api.BasePath+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.ExtensionsHeader, "true") // the e2e tests read baton's additions
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(data, out)
	}
	return resp.StatusCode, nil
}

func (c *cluster) mustDo(method, path string, body, out any) {
	c.t.Helper()
	if _, err := c.do(method, path, body, out); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) createConsumer(name string) {
	c.t.Helper()
	c.mustDo(http.MethodPost, "/consumers", map[string]any{"name": name}, nil)
}

func (c *cluster) getBundle(id string) (api.ResourceBundle, int, error) {
	var b api.ResourceBundle
	code, err := c.do(http.MethodGet, "/resource-bundles/"+id, nil, &b)
	return b, code, err
}

// eventually polls cond every 20 ms until it returns true or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

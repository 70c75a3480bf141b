package chaos

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/internal/proctest"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

// Timing of every server and agent of a run: short, so that heartbeat and
// timeout behaviour happens in seconds (the same as test/e2e).
const (
	heartbeat        = time.Second
	heartbeatTimeout = 3 * time.Second
)

// world is one deployment under chaos: a server, one agent per consumer,
// each agent's link to the server through a proxy the runner can cut.
type world struct {
	t      testing.TB
	server *proctest.Proc
	rest   string
	cli    *client.Client
	kube   kubernetes.Interface
	agents []*agent
}

// agent is one consumer's agent process, its workload namespace and its
// records namespace.
type agent struct {
	consumer string
	ns       string
	records  string
	metrics  string
	proc     *proctest.Proc
	proxy    *proxy
}

func newWorld(t testing.TB, cfg config) *world {
	t.Helper()
	httpAddr, grpcAddr, agentAddr := proctest.FreePort(t), proctest.FreePort(t), proctest.FreePort(t)
	args := []string{"server", "--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--agent-addr", agentAddr,
		"--heartbeat-timeout", heartbeatTimeout.String(), "--resend-after", "1s"}
	switch cfg.store {
	case "sqlite":
		args = append(args, "--data-dir", t.TempDir())
	case "postgres":
		args = append(args, "--db-url", storetest.PostgresURL(t))
	default:
		t.Fatalf("store %q: want sqlite or postgres", cfg.store)
	}
	w := &world{t: t, rest: "http://" + httpAddr}
	w.server = proctest.Start(t, batonBin, "server", nil, args...)
	w.waitServer()
	cli, err := client.New(w.rest, client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	w.cli = cli
	if w.kube, err = kubernetes.NewForConfig(kubeCfg); err != nil {
		t.Fatal(err)
	}
	run := strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	for i := range cfg.agents {
		a := &agent{consumer: fmt.Sprintf("c%d", i+1)}
		a.ns = w.namespace(fmt.Sprintf("chaos-%s-%s", run, a.consumer))
		a.records = w.namespace(fmt.Sprintf("records-%s-%s", run, a.consumer))
		if _, err := w.cli.CreateConsumer(context.Background(), api.Consumer{Name: a.consumer}); err != nil {
			t.Fatal(err)
		}
		if a.proxy, err = newProxy(agentAddr); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.proxy.Close)
		a.metrics = proctest.FreePort(t)
		a.proc = proctest.Start(t, batonBin, "agent-"+a.consumer, nil, "agent", "--consumer", a.consumer,
			"--server", a.proxy.Addr(), "--kubeconfig", kubeconfig, "--metrics-addr", a.metrics,
			"--records-namespace", a.records, "--heartbeat", heartbeat.String())
		w.waitAgent(a)
		w.agents = append(w.agents, a)
	}
	return w
}

// waitServer and waitAgent wait for a (re)started process to be ready; a
// failure is recorded as a test error (they run on fault goroutines).
func (w *world) waitServer() { w.ready("server", w.rest+"/readyz") }

func (w *world) waitAgent(a *agent) { w.ready("agent "+a.consumer, "http://"+a.metrics+"/readyz") }

func (w *world) ready(what, url string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.t.Errorf("%s not ready after 60s at %s", what, url)
}

func (w *world) namespace(name string) string {
	w.t.Helper()
	_, err := w.kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return name
}

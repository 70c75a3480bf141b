package chaos

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ggrpc "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/internal/proctest"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
	"github.com/baton-dev/baton/pkg/api"
)

// Timing of every server and agent of a run: short, so that heartbeat and
// timeout behaviour happens in seconds (the same as test/e2e).
const (
	heartbeat        = time.Second
	heartbeatTimeout = 3 * time.Second
	replicaLease     = 3 * time.Second
)

// world is one deployment under chaos: server replicas, one agent per
// consumer, the database and the broker when the run has them, each
// agent's links to the server (or broker) and to its kube-apiserver through
// proxies the runner can cut.
type world struct {
	t       testing.TB
	cfg     config
	servers []*server
	kube    kubernetes.Interface
	agents  []*agent
	db      *postgres // the run's own PostgreSQL (nil: SQLite or the shared one)
	dbURL   string
	broker  *proctest.Proc
	mqtt    string // broker address (MQTT runs)
	next    atomic.Int64
}

// server is one replica: its REST client and its gRPC source connection.
type server struct {
	proc   *proctest.Proc
	rest   string
	cli    *client.Client
	source pb.CloudEventServiceClient
}

// agent is one consumer's agent process, its namespaces, its proxies and
// its fault file.
type agent struct {
	consumer  string
	ns        string
	records   string
	metrics   string
	proc      *proctest.Proc
	links     []*proxy // to each replica's agent endpoint, or to the broker
	kubeProxy *proxy
	faultFile string
}

func newWorld(t testing.TB, cfg config) *world {
	t.Helper()
	w := &world{t: t, cfg: cfg}
	base := []string{"server", "--heartbeat-timeout", heartbeatTimeout.String(), "--resend-after", "1s"}
	switch cfg.store {
	case "sqlite":
		if cfg.replicas > 1 {
			t.Fatalf("%d replicas need -chaos.store postgres", cfg.replicas)
		}
		base = append(base, "--data-dir", t.TempDir())
	case "postgres":
		w.db = startPostgres(t)
		if w.db != nil {
			w.dbURL = w.db.url
		} else {
			w.dbURL = storetest.PostgresURL(t)
		}
		base = append(base, "--db-url", w.dbURL, "--replica-lease", replicaLease.String())
	default:
		t.Fatalf("store %q: want sqlite or postgres", cfg.store)
	}
	switch cfg.transport {
	case "grpc":
	case "mqtt":
		w.broker, w.mqtt = startBroker(t)
		base = append(base, "--mqtt-broker", "tcp://"+w.mqtt)
	default:
		t.Fatalf("transport %q: want grpc or mqtt", cfg.transport)
	}
	for i := range max(cfg.replicas, 1) {
		httpAddr, grpcAddr, agentAddr := proctest.FreePort(t), proctest.FreePort(t), proctest.FreePort(t)
		args := append(append([]string(nil), base...), "--http-addr", httpAddr, "--grpc-addr", grpcAddr,
			"--agent-addr", agentAddr, "--server-id", fmt.Sprintf("chaos-%d", i))
		s := &server{rest: "http://" + httpAddr}
		s.proc = proctest.Start(t, batonBin, fmt.Sprintf("server-%d", i), nil, args...)
		w.keepLog(s.proc.LogPath())
		s.proc.MetricsAddr = agentAddr
		var err error
		if s.cli, err = client.New(s.rest, client.WithTimeout(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		cc, err := ggrpc.NewClient(grpcAddr, ggrpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		s.source = pb.NewCloudEventServiceClient(cc)
		w.servers = append(w.servers, s)
		w.waitServer(s)
	}
	var err error
	if w.kube, err = kubernetes.NewForConfig(kubeCfg); err != nil {
		t.Fatal(err)
	}
	run := strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	for i := range cfg.agents {
		a := &agent{consumer: fmt.Sprintf("c%d", i+1)}
		a.ns = w.namespace(fmt.Sprintf("chaos-%s-%s", run, a.consumer))
		a.records = w.namespace(fmt.Sprintf("records-%s-%s", run, a.consumer))
		if _, err := w.servers[0].cli.CreateConsumer(context.Background(), api.Consumer{Name: a.consumer}); err != nil {
			t.Fatal(err)
		}
		link := []string{"--server"}
		if w.mqtt != "" {
			p := w.proxy(w.mqtt)
			a.links = append(a.links, p)
			link = []string{"--mqtt-broker", "tcp://" + p.Addr()}
		} else {
			var addrs []string
			for _, s := range w.servers {
				p := w.proxy(s.proc.MetricsAddr)
				a.links = append(a.links, p)
				addrs = append(addrs, p.Addr())
			}
			link = append(link, strings.Join(addrs, ","))
		}
		a.kubeProxy = w.proxy(hostPort(kubeCfg.Host))
		kc := w.kubeconfigVia(a.kubeProxy)
		a.faultFile = filepath.Join(t.TempDir(), "faults.json")
		a.metrics = proctest.FreePort(t)
		args := append([]string{"agent", "--consumer", a.consumer, "--kubeconfig", kc, "--metrics-addr", a.metrics,
			"--records-namespace", a.records, "--heartbeat", heartbeat.String()}, link...)
		a.proc = proctest.Start(t, batonBin, "agent-"+a.consumer, []string{"BATON_TEST_FAULT_FILE=" + a.faultFile}, args...)
		w.keepLog(a.proc.LogPath())
		w.waitAgent(a)
		w.agents = append(w.agents, a)
	}
	return w
}

// keepLog copies a process log into -chaos.keep-logs when the test fails.
func (w *world) keepLog(path string) {
	if w.cfg.keepLogs == "" {
		return
	}
	w.t.Cleanup(func() {
		if !w.t.Failed() {
			return
		}
		b, err := os.ReadFile(path)
		if err == nil {
			err = os.MkdirAll(w.cfg.keepLogs, 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(w.cfg.keepLogs, filepath.Base(path)), b, 0o644)
		}
		if err != nil {
			w.t.Logf("keeping %s: %v", path, err)
		}
	})
}

func (w *world) proxy(target string) *proxy {
	p, err := newProxy(target)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(p.Close)
	return p
}

// kubeconfigVia writes a copy of the test kubeconfig whose server is the
// proxy (the apiserver's certificate names 127.0.0.1, as the proxy does).
func (w *world) kubeconfigVia(p *proxy) string {
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + p.Addr()
	}
	path := filepath.Join(w.t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// hostPort is the host:port of a rest.Config Host (a URL or host:port).
func hostPort(host string) string {
	if u, err := url.Parse(host); err == nil && u.Host != "" {
		return u.Host
	}
	return strings.TrimSuffix(host, "/")
}

// cli returns the REST client of a replica, in turn.
func (w *world) cli() *client.Client {
	return w.servers[int(w.next.Add(1))%len(w.servers)].cli
}

// setFaults writes an agent's fault file (see internal/cli's faultFileEnv).
func (a *agent) setFaults(json string) error {
	tmp := a.faultFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(json), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, a.faultFile)
}

// waitServer and waitAgent wait for a (re)started process to be ready; a
// failure is recorded as a test error (they run on fault goroutines).
func (w *world) waitServer(s *server) { w.ready("server "+s.proc.Name(), s.rest+"/readyz") }

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

// Package maestro drives open-cluster-management.io/sdk-go's source work
// client — the library Maestro's own clients are built on — against the
// built baton server and agent and a real kube-apiserver, as Maestro's
// end-to-end suite exercises it. It is a module of its own so that sdk-go
// stays out of baton's go.mod; `make test` runs it.
package maestro

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	workv1 "open-cluster-management.io/api/work/v1"
	clientoptions "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/options"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/source/codec"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc"

	"github.com/baton-dev/baton/internal/proctest"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

var (
	batonBin   string
	kubeCfg    *rest.Config
	kubeconfig string
)

func TestMain(m *testing.M) {
	os.Exit(proctest.Main(m, "maestro", func(w proctest.World) {
		batonBin, kubeCfg, kubeconfig = w.Bin, w.Config, w.Kubeconfig
	}))
}

// bound is how long anything asynchronous may take here: wide, for a
// loaded 2-core machine.
const bound = 20 * time.Second

// healBound is how soon after a restarted server is ready a change made
// while it was down must be readable (the design goal is 2 s; the margin
// is for a loaded machine).
const healBound = 5 * time.Second

// deployment is a baton server on PostgreSQL (Maestro's database), its
// agents, and the test's Kubernetes client.
type deployment struct {
	t                   *testing.T
	rest, grpc, agentEP string
	server              *proctest.Proc
	kube                kubernetes.Interface
	records             string
}

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	httpAddr, grpcAddr, agentAddr := proctest.FreePort(t), proctest.FreePort(t), proctest.FreePort(t)
	d := &deployment{t: t, rest: "http://" + httpAddr, grpc: grpcAddr, agentEP: agentAddr}
	d.server = proctest.Start(t, batonBin, "server", nil, "server", "--http-addr", httpAddr, "--grpc-addr", grpcAddr,
		"--agent-addr", agentAddr, "--db-url", storetest.PostgresURL(t), "--heartbeat-timeout", "3s", "--resend-after", "1s")
	proctest.WaitReady(t, d.rest+"/readyz", 30*time.Second)
	kc, err := kubernetes.NewForConfig(kubeCfg)
	if err != nil {
		t.Fatal(err)
	}
	d.kube = kc
	d.records = d.namespace("records")
	return d
}

// namespace creates a namespace of the test apiserver with a random suffix.
func (d *deployment) namespace(prefix string) string {
	d.t.Helper()
	name := prefix + "-" + rand.String(6)
	if _, err := d.kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		d.t.Fatal(err)
	}
	return name
}

// consumer registers a consumer over REST and starts its agent.
func (d *deployment) consumer(name string) {
	d.t.Helper()
	body := strings.NewReader(`{"name":"` + name + `"}`)
	resp, err := http.Post(d.rest+api.BasePath+"/consumers", "application/json", body)
	if err != nil {
		d.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		d.t.Fatalf("create consumer %s: %s", name, resp.Status)
	}
	metrics := proctest.FreePort(d.t)
	proctest.Start(d.t, batonBin, "agent-"+name, nil, "agent", "--consumer", name, "--server", d.agentEP,
		"--kubeconfig", kubeconfig, "--metrics-addr", metrics, "--records-namespace", d.records, "--heartbeat", "1s")
	proctest.WaitReady(d.t, "http://"+metrics+"/readyz", 30*time.Second)
}

// deployed starts a deployment with consumer c1 and its agent and makes a
// namespace named from prefix; the context ends with the test.
func deployed(t *testing.T, prefix string) (*deployment, string, context.Context) {
	t.Helper()
	d := newDeployment(t)
	d.consumer("c1")
	ns := d.namespace(prefix)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return d, ns, ctx
}

// watched is how most tests start: a deployment with consumer c1 and its
// agent, a namespace named from prefix, source client "cs" (stopped when
// the test ends) and a recorder of its watch on c1.
func watched(t *testing.T, prefix string) (*deployment, string, context.Context, *source, *recorder) {
	t.Helper()
	d, ns, ctx := deployed(t, prefix)
	src := d.sourceClient(ctx, "cs")
	w, err := src.holder.ManifestWorks("c1").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d, ns, ctx, src, record(w)
}

// source is one sdk-go source work client with its REST-backed store.
type source struct {
	holder *work.ClientHolder
	store  *restStore
}

func (d *deployment) sourceClient(ctx context.Context, id string) *source {
	d.t.Helper()
	opts := &grpc.GRPCOptions{Dialer: &grpc.GRPCDialer{URL: d.grpc,
		KeepAliveOptions: grpc.KeepAliveOptions{Enable: true, Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}}}
	st := newRESTStore(d.rest, id)
	opt := clientoptions.NewGenericClientOptions(opts, codec.NewManifestBundleCodec(), id+"-client").
		WithClientWatcherStore(st).WithSourceID(id)
	holder, err := work.NewSourceClientHolder(ctx, opt)
	if err != nil {
		d.t.Fatalf("sdk-go source client %s: %v", id, err)
	}
	return &source{holder: holder, store: st}
}

// configMapWork is a work of one ConfigMap with data v and a feedback rule
// reading it back.
func configMapWork(name, ns, cm, v string, lbls map[string]string) *workv1.ManifestWork {
	raw, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": cm, "namespace": ns}, "data": map[string]any{"v": v}})
	return &workv1.ManifestWork{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec: workv1.ManifestWorkSpec{
			Workload: workv1.ManifestsTemplate{Manifests: []workv1.Manifest{{RawExtension: runtime.RawExtension{Raw: raw}}}},
			ManifestConfigs: []workv1.ManifestConfigOption{{
				ResourceIdentifier: workv1.ResourceIdentifier{Resource: "configmaps", Name: cm, Namespace: ns},
				FeedbackRules: []workv1.FeedbackRule{{Type: workv1.JSONPathsType,
					JsonPaths: []workv1.JsonPath{{Name: "v", Path: ".data.v"}}}},
			}},
		},
	}
}

// readOnlyWork is configMapWork that only observes the ConfigMap (OCM's
// ReadOnly update strategy): the agent never writes it.
func readOnlyWork(name, ns, cm string) *workv1.ManifestWork {
	w := configMapWork(name, ns, cm, "", nil)
	w.Spec.ManifestConfigs[0].UpdateStrategy = &workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeReadOnly}
	return w
}

// feedback is the string feedback value name of the work's first manifest.
func feedback(w *workv1.ManifestWork, name string) string {
	for _, m := range w.Status.ResourceStatus.Manifests {
		for _, v := range m.StatusFeedbacks.Values {
			if v.Name == name && v.Value.String != nil {
				return *v.Value.String
			}
		}
	}
	return ""
}

// eventually polls cond every 50 ms until it holds or bound passes.
func eventually(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > bound {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// recorder keeps every event of one watch.
type recorder struct {
	mu     sync.Mutex
	events []watch.Event
	closed bool
}

func record(w watch.Interface) *recorder {
	r := &recorder{}
	go func() {
		for ev := range w.ResultChan() {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.mu.Unlock()
		}
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
	}()
	return r
}

// has reports whether an event of type typ for work name satisfies ok
// (nil: any).
func (r *recorder) has(typ watch.EventType, name string, ok func(*workv1.ManifestWork) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		w, isWork := ev.Object.(*workv1.ManifestWork)
		if isWork && ev.Type == typ && w.Name == name && (ok == nil || ok(w)) {
			return true
		}
	}
	return false
}

// names is the set of work names the recorder saw events for.
func (r *recorder) names() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]bool{}
	for _, ev := range r.events {
		if w, ok := ev.Object.(*workv1.ManifestWork); ok {
			out[w.Name] = true
		}
	}
	return out
}

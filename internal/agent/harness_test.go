package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/testenv"
	"github.com/baton-dev/baton/pkg/api"
)

var cfg *rest.Config

func TestMain(m *testing.M) { testenv.Main(m, &cfg) }

// received is a message as the fake server got it, with its arrival time.
type received struct {
	m  protocol.Message
	at time.Time
}

// fakeServer is the server end of a Pipe: it records every message and
// acknowledges every Status, as the real server does once it stored it.
type fakeServer struct {
	conn protocol.Conn
	mu   sync.Mutex
	msgs []received
	// noAck stops acknowledging statuses when set.
	noAck atomic.Bool
}

func startFakeServer(ctx context.Context, conn protocol.Conn) *fakeServer {
	s := &fakeServer{conn: conn}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-conn.Recv():
				s.mu.Lock()
				s.msgs = append(s.msgs, received{m: m, at: time.Now()})
				s.mu.Unlock()
				if m.Type == protocol.TypeStatus && !s.noAck.Load() {
					ack := protocol.StatusAck{Epoch: m.Status.Epoch, BundleID: m.Status.BundleID, Revision: m.Status.Revision}
					_ = conn.Send(ctx, protocol.Message{Type: protocol.TypeStatusAck, StatusAck: &ack})
				}
			}
		}
	}()
	return s
}

// snapshot returns the messages of type typ received so far.
func (s *fakeServer) snapshot(typ protocol.Type) []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []received
	for _, r := range s.msgs {
		if r.m.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// waitFor polls until some message of type typ at index ≥ from satisfies
// pred and returns it with its index.
func (s *fakeServer) waitFor(t *testing.T, typ protocol.Type, from int, d time.Duration, what string, pred func(protocol.Message) bool) (received, int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := s.snapshot(typ)
		for i := from; i < len(got); i++ {
			if pred(got[i].m) {
				return got[i], i
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s message with %s within %v; got %d: %s", typ, what, d, len(got), describe(got))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func describe(rs []received) string {
	var b strings.Builder
	for _, r := range rs {
		j, _ := json.Marshal(r.m)
		if len(j) > 600 {
			j = append(j[:600], "..."...)
		}
		fmt.Fprintf(&b, "\n  %s %s", r.at.Format("15:04:05.000"), j)
	}
	return b.String()
}

func (s *fakeServer) sendSpec(t *testing.T, spec protocol.Spec) {
	t.Helper()
	if err := s.conn.Send(context.Background(), protocol.Message{Type: protocol.TypeSpec, Spec: &spec}); err != nil {
		t.Fatalf("send spec: %v", err)
	}
}

// harness is one agent on one Pipe, in a namespace of its own.
type harness struct {
	t        *testing.T
	ctx      context.Context
	kube     kubernetes.Interface
	ns       string
	consumer string
	pipe     *protocol.Pipe
	server   *fakeServer
	agent    *Agent
	stop     func()
	tune     []func(*Options)
	// agentCfg is the agent's view of the cluster (default cfg).
	agentCfg *rest.Config
}

var seq atomic.Int64

func newHarness(t *testing.T, tune ...func(*Options)) *harness {
	t.Helper()
	return newHarnessOn(t, cfg, tune...)
}

// newHarnessOn is newHarness with an agent that reaches the cluster
// through agentCfg (a proxy, another identity); the test itself uses cfg.
func newHarnessOn(t *testing.T, agentCfg *rest.Config, tune ...func(*Options)) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a kube-apiserver")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := &harness{t: t, ctx: ctx, kube: kubernetes.NewForConfigOrDie(cfg), tune: tune, agentCfg: agentCfg}
	n := seq.Add(1)
	h.ns = fmt.Sprintf("agent-%d-%d", time.Now().Unix()%100000, n)
	h.consumer = "consumer-" + h.ns
	if _, err := h.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.startAgent()
	return h
}

// startAgent starts an agent (a new one after stopAgent) on a new Pipe.
func (h *harness) startAgent() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.ctx)
	h.pipe = protocol.NewPipe(1024)
	h.server = startFakeServer(ctx, h.pipe.Server())
	opts := Options{
		Consumer: h.consumer, Logger: slog.New(slog.DiscardHandler),
		HeartbeatInterval: time.Hour, DeletePropagation: metav1.DeletePropagationBackground, RetryBase: 50 * time.Millisecond, RetryMax: time.Second,
	}
	for _, f := range h.tune {
		f(&opts)
	}
	a, err := New(h.agentCfg, h.pipe.Agent(), opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.agent = a
	errc := make(chan error, 1)
	go func() { errc <- a.Start(ctx) }()
	var once sync.Once
	h.stop = func() { once.Do(func() { stopAgent(h.t, cancel, errc) }) }
	h.t.Cleanup(h.stop)
}

func stopAgent(t *testing.T, cancel func(), errc chan error) {
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("agent Start: %v", err)
		}
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Errorf("agent did not stop within 10s:\n%s", buf[:runtime.Stack(buf, true)])
	}
}

// manifest returns the JSON of a Kubernetes object.
func manifest(t *testing.T, obj map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h *harness) configMap(name string, data map[string]any) json.RawMessage {
	return manifest(h.t, map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": h.ns}, "data": data})
}

// config selects a strategy and JSONPath feedback for one object.
func config(resource, ns, name string, strategy workv1.UpdateStrategyType, paths ...workv1.JsonPath) workv1.ManifestConfigOption {
	c := workv1.ManifestConfigOption{
		ResourceIdentifier: workv1.ResourceIdentifier{Resource: resource, Namespace: ns, Name: name},
		UpdateStrategy:     &workv1.UpdateStrategy{Type: strategy},
	}
	if len(paths) > 0 {
		c.FeedbackRules = []workv1.FeedbackRule{{Type: workv1.JSONPathsType, JsonPaths: paths}}
	}
	return c
}

func spec(id string, gen int64, manifests []json.RawMessage, configs ...workv1.ManifestConfigOption) protocol.Spec {
	return protocol.Spec{BundleID: id, Generation: gen, Meta: api.ObjectMeta{Name: id},
		Body: api.BundleSpec{Manifests: manifests, ManifestConfigs: configs}}
}

// status returns m's Status (nil if m is not one) for predicates.
func status(m protocol.Message, bundle string) *protocol.Status {
	if m.Status == nil || m.Status.BundleID != bundle {
		return nil
	}
	return m.Status
}

// value returns the string feedback value name of object i, if present.
func value(s *protocol.Status, i int, name string) (string, bool) {
	if s == nil || i >= len(s.Reported.ResourceStatus) {
		return "", false
	}
	for _, v := range s.Reported.ResourceStatus[i].StatusFeedbacks.Values {
		if v.Name == name && v.Value.String != nil {
			return *v.Value.String, true
		}
	}
	return "", false
}

// condition returns the status of condition typ of object i ("" if absent).
func condition(s *protocol.Status, i int, typ string) (metav1.ConditionStatus, string) {
	if s == nil || i >= len(s.Reported.ResourceStatus) {
		return "", ""
	}
	for _, c := range s.Reported.ResourceStatus[i].Conditions {
		if c.Type == typ {
			return c.Status, c.Reason
		}
	}
	return "", ""
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Now()
}

// within fails unless the event at got happened at most d after since.
func within(t *testing.T, what string, since, got time.Time, d time.Duration) {
	t.Helper()
	if lat := got.Sub(since); lat > d {
		t.Errorf("%s took %v; want ≤ %v", what, lat, d)
	} else {
		t.Logf("%s: %v", what, lat.Round(time.Millisecond))
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/baton-dev/baton/internal/testenv"
	"github.com/baton-dev/baton/pkg/api"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

var cfg *rest.Config

func TestMain(m *testing.M) { testenv.Main(m, &cfg) }

// cluster skips the test under -short (no control plane was started).
func cluster(t testing.TB) (*kubernetes.Clientset, *dynamic.DynamicClient) {
	t.Helper()
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	kc := kubernetes.NewForConfigOrDie(cfg)
	return kc, dynamic.NewForConfigOrDie(cfg)
}

// env is one test's namespace, applier and clients.
type env struct {
	t    testing.TB
	ctx  context.Context
	ns   string
	kc   *kubernetes.Clientset
	dyn  *dynamic.DynamicClient
	a    *Applier
	opts Options
}

// newEnv creates a namespace for the test (records live there too) and
// an applier deleting with Background propagation unless opts say else.
func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	kc, dyn := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	ns := fmt.Sprintf("%s-%04d", strings.Trim(name, "-"), rand.IntN(10000))
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	if opts.Namespace == "" {
		opts.Namespace = ns
	}
	if opts.AgentName == "" {
		opts.AgentName = "test-agent"
	}
	if opts.Propagation == "" {
		opts.Propagation = metav1.DeletePropagationBackground
	}
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, ns: ns, kc: kc, dyn: dyn, a: a, opts: opts}
}

// manifests renders testdata/file with vars (Namespace defaults to the
// test namespace) and returns its documents as JSON.
func (e *env) manifests(file string, vars map[string]string) []json.RawMessage {
	e.t.Helper()
	v := map[string]string{"Namespace": e.ns, "Name": "app", "Value": "one", "Group": e.ns + ".example.com"}
	for k, x := range vars {
		v[k] = x
	}
	return render(e.t, file, v)
}

func (e *env) manifest(file string, vars map[string]string) json.RawMessage {
	return e.manifests(file, vars)[0]
}

func render(t testing.TB, file string, vars map[string]string) []json.RawMessage {
	t.Helper()
	tpl, err := template.ParseFiles(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tpl.Option("missingkey=error").Execute(&buf, vars); err != nil {
		t.Fatal(err)
	}
	var out []json.RawMessage
	for _, doc := range strings.Split(buf.String(), "\n---\n") {
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, j)
	}
	return out
}

func spec(ms ...json.RawMessage) api.BundleSpec { return api.BundleSpec{Manifests: ms} }

// apply applies and fails the test on a bundle-level error.
func (e *env) apply(id string, gen int64, s api.BundleSpec) Result {
	e.t.Helper()
	res, err := e.a.Apply(e.ctx, id, gen, api.ObjectMeta{Name: id}, s)
	if err != nil {
		e.t.Fatalf("Apply(%s, %d): %v", id, gen, err)
	}
	return res
}

// outcomes lists "Kind name=Outcome" for every object result.
func outcomes(rs []ObjectResult) string {
	var parts []string
	for _, r := range rs {
		s := fmt.Sprintf("%s %s=%s", r.GVK.Kind, r.Name, r.Outcome)
		if r.Reason != "" {
			s += "(" + r.Reason + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func (e *env) wantOutcomes(what string, rs []ObjectResult, want string) {
	e.t.Helper()
	if got := outcomes(rs); got != want {
		e.t.Fatalf("%s: got %s; want %s", what, got, want)
	}
}

var (
	configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	services   = schema.GroupVersionResource{Version: "v1", Resource: "services"}
)

// get returns the live object, nil when absent.
func (e *env) get(gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	e.t.Helper()
	obj, err := e.dyn.Resource(gvr).Namespace(ns).Get(e.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return obj
}

func (e *env) configMap(name string) *corev1.ConfigMap {
	e.t.Helper()
	cm, err := e.kc.CoreV1().ConfigMaps(e.ns).Get(e.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return cm
}

// record returns the bundle's stored record as a fresh applier reads it.
func (e *env) record(id string) *Record {
	e.t.Helper()
	fresh, err := New(cfg, e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	recs, err := fresh.Records(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := range recs {
		if recs[i].BundleID == id {
			return &recs[i]
		}
	}
	return nil
}

func TestRecordsSurviveRestart(t *testing.T) {
	e := newEnv(t, Options{})
	s1 := spec(e.manifest("configmap.yaml", map[string]string{"Name": "a"}), e.manifest("service.yaml", nil))
	s1.DeleteOption = nil
	r1 := e.apply("bundle-1", 3, s1)
	e.apply("bundle-2", 7, spec(e.manifest("configmap.yaml", map[string]string{"Name": "b"})))

	// A new applier (a restarted agent) knows nothing in memory.
	restarted, err := New(cfg, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := restarted.Records(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]int64{}
	for _, r := range recs {
		held[r.BundleID] = r.Generation
	}
	if len(held) != 2 || held["bundle-1"] != 3 || held["bundle-2"] != 7 {
		t.Fatalf("held after restart: got %v; want bundle-1:3 bundle-2:7", held)
	}
	rec := recs[0]
	if rec.BundleID != "bundle-1" || rec.Meta.Name != "bundle-1" || len(rec.Spec.Manifests) != 2 || rec.Deleting {
		t.Fatalf("record: got id=%s meta=%s manifests=%d deleting=%v", rec.BundleID, rec.Meta.Name, len(rec.Spec.Manifests), rec.Deleting)
	}
	if len(rec.Objects) != 2 || rec.Objects[0].UID != r1.Objects[0].UID || !rec.Objects[0].Owned || rec.Objects[1].Kind != "Service" {
		t.Fatalf("recorded objects: got %+v; want the ConfigMap (uid %s) and the Service, owned", rec.Objects, r1.Objects[0].UID)
	}

	// The restarted applier can delete what the old one applied.
	res, done, err := restarted.Delete(e.ctx, "bundle-1", 4, nil)
	if err != nil || !done {
		t.Fatalf("Delete after restart: done=%v err=%v (%s)", done, err, outcomes(res.Objects))
	}
	e.wantOutcomes("delete after restart", res.Objects, "ConfigMap a=Deleted, Service router=Deleted")
	if e.configMap("a") != nil || e.get(services, e.ns, "router") != nil {
		t.Fatal("objects of bundle-1 still exist after Delete")
	}
	if e.record("bundle-1") != nil {
		t.Fatal("record of bundle-1 still exists after Delete finished")
	}

	// Records are per agent.
	other, err := New(cfg, Options{Namespace: e.opts.Namespace, AgentName: "other-agent"})
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := other.Records(e.ctx); err != nil || len(recs) != 0 {
		t.Fatalf("records of another agent: got %d (err %v); want 0", len(recs), err)
	}
}

func TestRecordsNamespaceCreated(t *testing.T) {
	e := newEnv(t, Options{})
	recNS := e.ns + "-records"
	e.opts.Namespace = recNS
	a, err := New(cfg, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := a.Records(e.ctx); err != nil || len(recs) != 0 {
		t.Fatalf("Records before any apply: got %d, %v; want none", len(recs), err)
	}
	if _, err := a.Apply(e.ctx, "b", 1, api.ObjectMeta{}, spec(e.manifest("configmap.yaml", nil))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kc.CoreV1().Secrets(recNS).Get(e.ctx, "baton-b", metav1.GetOptions{}); err != nil {
		t.Fatalf("record Secret in %s: %v", recNS, err)
	}
}

func TestStaleGeneration(t *testing.T) {
	e := newEnv(t, Options{})
	e.apply("b", 5, spec(e.manifest("configmap.yaml", nil)))
	_, err := e.a.Apply(e.ctx, "b", 4, api.ObjectMeta{}, spec(e.manifest("configmap.yaml", map[string]string{"Value": "old"})))
	if !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("Apply of an older generation: got %v; want ErrStaleGeneration", err)
	}
	if got := e.configMap("app").Data["key"]; got != "one" {
		t.Fatalf("stale apply changed the object: data.key=%q; want one", got)
	}
	if _, _, err := e.a.Delete(e.ctx, "b", 4, nil); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("Delete of an older generation: got %v; want ErrStaleGeneration", err)
	}
}

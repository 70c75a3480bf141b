// Package examples_test checks that every example bundle parses as `baton
// apply -f` parses it, that its manifests are accepted by a real
// kube-apiserver, and that its feedback rules yield the expected values from
// the live objects (the values an agent would report).
package examples_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/cli"
	"github.com/baton-dev/baton/internal/doctor"
	"github.com/baton-dev/baton/internal/evaluate"
	"github.com/baton-dev/baton/internal/testenv"
	"github.com/baton-dev/baton/pkg/api"
)

var cfg *rest.Config

func TestMain(m *testing.M) { testenv.Main(m, &cfg) }

// want is the feedback each example reports once the cluster plays its part
// (load balancer IP, Deployment status); values are doctor.FormatValue strings.
var want = map[string]map[string]map[string]string{
	"shared-ingress.yaml": {"router": {"ip": "20.1.2.3"}},
	"deployment.yaml": {"hello": {"ReadyReplicas": "2", "Replicas": "2", "AvailableReplicas": "2",
		"condition Ready": "True", "condition RolledOut": "True"}},
	"crd-and-cr.json":         {"widgets.demo.baton.dev": {"established": "True"}, "blue": {"size": "3", "color": "blue"}},
	"selectively-orphan.yaml": {},
}

func TestExamplesApplyAndReport(t *testing.T) {
	if cfg == nil {
		t.Skip("needs a kube-apiserver (not started under -short)")
	}
	ctx := context.Background()
	dyn := dynamic.NewForConfigOrDie(cfg)
	kc := kubernetes.NewForConfigOrDie(cfg)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(cfg)))
	files, err := filepath.Glob("*.y*ml")
	if err != nil {
		t.Fatal(err)
	}
	jsonFiles, _ := filepath.Glob("*.json")
	files = append(files, jsonFiles...)
	seen := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		consumers, bundles, err := cli.ReadBundles(file, data, "")
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(consumers) > 0 {
			if consumers[0].Name != "dev" {
				t.Errorf("%s: consumer %q; want dev", file, consumers[0].Name)
			}
			continue
		}
		values, ok := want[file]
		if !ok {
			t.Errorf("%s: no expectations", file)
			continue
		}
		seen++
		for _, b := range bundles {
			if b.ConsumerName != "dev" {
				t.Errorf("%s: consumer %q; want dev", file, b.ConsumerName)
			}
			t.Run(file, func(t *testing.T) {
				objs := applyBundle(t, ctx, dyn, kc, mapper, b)
				checkFeedback(t, b, objs, values)
			})
		}
	}
	if seen != len(want) {
		t.Errorf("checked %d bundle files; want %d", seen, len(want))
	}
}

// applied is one manifest as it lives in the cluster.
type applied struct {
	meta workv1.ManifestResourceMeta
	get  func() *unstructured.Unstructured
}

// applyBundle creates the bundle's manifests (Namespaces and CRDs first) the
// way an agent would, and plays the cloud provider and the controllers:
// the ReadOnly Service gets a load balancer IP, a Deployment a ready status.
func applyBundle(t *testing.T, ctx context.Context, dyn dynamic.Interface, kc kubernetes.Interface,
	mapper *restmapper.DeferredDiscoveryRESTMapper, b api.ResourceBundle) []applied {
	t.Helper()
	objs := make([]*unstructured.Unstructured, len(b.Manifests))
	for i, raw := range b.Manifests {
		objs[i] = &unstructured.Unstructured{}
		if err := json.Unmarshal(raw, &objs[i].Object); err != nil {
			t.Fatal(err)
		}
	}
	tier := func(u *unstructured.Unstructured) int {
		switch u.GetKind() {
		case "Namespace":
			return 0
		case "CustomResourceDefinition":
			return 1
		}
		return 2
	}
	sort.SliceStable(objs, func(i, j int) bool { return tier(objs[i]) < tier(objs[j]) })
	var out []applied
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil { // a kind of a CRD created just before: rediscover
			mapper.Reset()
			if mapping, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
				t.Fatalf("%s: %v", gvk, err)
			}
		}
		meta := workv1.ManifestResourceMeta{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind,
			Resource: mapping.Resource.Resource, Name: u.GetName(), Namespace: u.GetNamespace()}
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if u.GetNamespace() != "" {
			ri = dyn.Resource(mapping.Resource).Namespace(u.GetNamespace())
		}
		if readOnly(b, meta) {
			playCloud(t, ctx, kc, u)
		} else {
			data, _ := json.Marshal(u.Object)
			if _, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "examples-test", Force: ptr(true)}); err != nil {
				t.Fatalf("%s %s: apply: %v", u.GetKind(), u.GetName(), err)
			}
		}
		if u.GetKind() == "Deployment" {
			playController(t, ctx, kc, u)
		}
		if u.GetKind() == "CustomResourceDefinition" {
			waitEstablished(t, ctx, ri, u.GetName())
		}
		out = append(out, applied{meta: meta, get: func() *unstructured.Unstructured {
			live, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
			}
			return live
		}})
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func readOnly(b api.ResourceBundle, m workv1.ManifestResourceMeta) bool {
	for _, c := range b.ManifestConfigs {
		id := c.ResourceIdentifier
		if id.Group == m.Group && id.Resource == m.Resource && id.Name == m.Name && id.Namespace == m.Namespace &&
			c.UpdateStrategy != nil && c.UpdateStrategy.Type == workv1.UpdateStrategyTypeReadOnly {
			return true
		}
	}
	return false
}

// playCloud creates the observed Service as its cluster has it: type
// LoadBalancer with an ingress IP set through the status subresource.
func playCloud(t *testing.T, ctx context.Context, kc kubernetes.Interface, u *unstructured.Unstructured) {
	t.Helper()
	ns := u.GetNamespace()
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := kc.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: u.GetName()},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 443}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "20.1.2.3"}}
	if _, err := kc.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// playController sets the Deployment's status as its controller would.
func playController(t *testing.T, ctx context.Context, kc kubernetes.Interface, u *unstructured.Unstructured) {
	t.Helper()
	d, err := kc.AppsV1().Deployments(u.GetNamespace()).Get(ctx, u.GetName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Status.Replicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Status.UpdatedReplicas = 2, 2, 2, 2
	if _, err := kc.AppsV1().Deployments(u.GetNamespace()).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func waitEstablished(t *testing.T, ctx context.Context, ri dynamic.ResourceInterface, name string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		crd, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				return
			}
		}
	}
	t.Fatalf("CRD %s not established", name)
}

// checkFeedback evaluates each manifest's feedback and condition rules on
// the live object (as the agent does) and compares the values (and, as
// "condition <type>", the rule conditions' statuses) with want.
func checkFeedback(t *testing.T, b api.ResourceBundle, objs []applied, want map[string]map[string]string) {
	t.Helper()
	got := map[string]map[string]string{}
	for _, o := range objs {
		c := evaluate.ConfigFor(b.ManifestConfigs, o.meta)
		if c == nil || len(c.FeedbackRules)+len(c.ConditionRules) == 0 {
			continue
		}
		values, cond := evaluate.Feedback(o.get(), c.FeedbackRules, nil)
		if cond.Status != metav1.ConditionTrue {
			t.Errorf("%s: StatusFeedbackSynced %s: %s", o.meta.Name, cond.Status, cond.Message)
		}
		got[o.meta.Name] = map[string]string{}
		for _, v := range values {
			got[o.meta.Name][v.Name] = doctor.FormatValue(v.Value)
		}
		for _, rc := range evaluate.Rules(o.get(), c.ConditionRules) {
			got[o.meta.Name]["condition "+rc.Type] = string(rc.Status)
		}
	}
	for obj, vals := range want {
		for name, v := range vals {
			if got[obj][name] != v {
				t.Errorf("%s: %s = %q; want %q (all: %v)", obj, name, got[obj][name], v, got)
			}
		}
	}
}

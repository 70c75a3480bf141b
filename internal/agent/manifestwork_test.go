package agent

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

// conditionOf returns condition typ of object i of s.
func conditionOf(s *protocol.Status, i int, typ string) (metav1.Condition, bool) {
	if s == nil || i >= len(s.Reported.ResourceStatus) {
		return metav1.Condition{}, false
	}
	for _, c := range s.Reported.ResourceStatus[i].Conditions {
		if c.Type == typ {
			return c, true
		}
	}
	return metav1.Condition{}, false
}

// TestDeploymentPodsNeverStart: a Deployment whose pods never start (no
// controllers run here) is Available, as OCM means it (it exists), while
// readiness shows in the well-known Ready rule, a CEL rule with its
// message, and WellKnownStatus values; the rules follow the live status.
// A feedbackScrapeType is accepted and the status says baton watches.
func TestDeploymentPodsNeverStart(t *testing.T) {
	h := newHarness(t)
	deploy := manifest(t, map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": h.ns},
		"spec": map[string]any{"replicas": 2, "selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "example.invalid/never:1"}}}}}})
	c := config("deployments", h.ns, "web", workv1.UpdateStrategyTypeServerSideApply)
	c.ResourceIdentifier.Group = "apps"
	c.FeedbackRules = []workv1.FeedbackRule{{Type: workv1.WellKnownStatusType}}
	c.FeedbackScrapeType = workv1.FeedbackPollType
	c.ConditionRules = []workv1.ConditionRule{
		{Type: workv1.WellKnownConditionsType, Condition: "Ready"},
		{Type: workv1.CelConditionExpressionsType, Condition: "Scaled",
			CelExpressions:    []string{"has(object.status) && has(object.status.readyReplicas)", "object.status.readyReplicas >= object.spec.replicas"},
			MessageExpression: `result ? "all " + string(object.spec.replicas) + " replicas ready" : "waiting for replicas"`},
	}
	h.server.sendSpec(t, spec("pending", 1, []json.RawMessage{deploy}, c))

	got, _ := h.server.waitFor(t, protocol.TypeStatus, 0, 10*time.Second, "the deployment evaluated", func(m protocol.Message) bool {
		_, ok := conditionOf(status(m, "pending"), 0, "Scaled")
		return ok
	})
	st := got.m.Status
	want := map[string]string{
		api.ConditionApplied:              "True/AppliedManifestComplete",
		api.ConditionAvailable:            "True/ResourceAvailable",
		api.ConditionStatusFeedbackSynced: "True/StatusFeedbackSynced",
		"Ready":                           "False/ConditionRuleEvaluated",
		"Scaled":                          "False/ConditionRuleEvaluated",
	}
	for typ, w := range want {
		c, _ := conditionOf(st, 0, typ)
		if g := string(c.Status) + "/" + c.Reason; g != w {
			t.Errorf("%s = %s (%q); want %s", typ, g, c.Message, w)
		}
	}
	if c, _ := conditionOf(st, 0, "Scaled"); c.Message != "waiting for replicas" {
		t.Errorf("Scaled message = %q; want the messageExpression's", c.Message)
	}
	if c, _ := conditionOf(st, 0, api.ConditionStatusFeedbackSynced); !strings.Contains(c.Message, "feedbackScrapeType Poll accepted: baton always watches") {
		t.Errorf("StatusFeedbackSynced message = %q; want the scrape type noted", c.Message)
	}
	var bundleTypes []string
	for _, c := range st.Reported.Conditions {
		bundleTypes = append(bundleTypes, c.Type+"="+string(c.Status))
	}
	if g := strings.Join(bundleTypes, ","); g != "Applied=True,Available=True,Ready=False,Scaled=False" {
		t.Errorf("bundle conditions = %s; want Applied=True,Available=True,Ready=False,Scaled=False", g)
	}

	// Play the controller: the pods become ready; the rules follow.
	dyn := dynamic.NewForConfigOrDie(cfg)
	gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	patch := []byte(`{"status":{"replicas":2,"readyReplicas":2,"availableReplicas":2,"updatedReplicas":2}}`)
	if _, err := dyn.Resource(gvr).Namespace(h.ns).Patch(h.ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
	got, _ = h.server.waitFor(t, protocol.TypeStatus, 0, 10*time.Second, "the rules true", func(m protocol.Message) bool {
		r, _ := conditionOf(status(m, "pending"), 0, "Ready")
		s, _ := conditionOf(status(m, "pending"), 0, "Scaled")
		return r.Status == metav1.ConditionTrue && s.Status == metav1.ConditionTrue
	})
	if c, _ := conditionOf(got.m.Status, 0, "Scaled"); c.Message != "all 2 replicas ready" {
		t.Errorf("Scaled message = %q; want \"all 2 replicas ready\"", c.Message)
	}
	if c, _ := conditionOf(got.m.Status, 0, "Ready"); c.Message != "2/2 replicas ready" {
		t.Errorf("Ready message = %q; want \"2/2 replicas ready\"", c.Message)
	}
}

// TestFeedbackAtVersion: a JSONPath naming another served version of a
// custom resource is evaluated on the object as served at that version,
// follows live changes, and an unserved version is reported, not guessed.
func TestFeedbackAtVersion(t *testing.T) {
	h := newHarness(t)
	group := h.ns + ".versions.baton.dev"
	ext := apiextclient.NewForConfigOrDie(cfg)
	schemaProps := &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
		Type: "object", XPreserveUnknownFields: ptr.To(true)}}
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group, Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1", Served: true, Storage: true, Schema: schemaProps},
				{Name: "v2", Served: true, Schema: schemaProps},
			},
		},
	}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(h.ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ext.ApiextensionsV1().CustomResourceDefinitions().Delete(context.Background(), crd.Name, metav1.DeleteOptions{})
	})
	widget := manifest(t, map[string]any{"apiVersion": group + "/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1", "namespace": h.ns}, "spec": map[string]any{"size": 3}})
	c := config("widgets", h.ns, "w1", workv1.UpdateStrategyTypeUpdate,
		workv1.JsonPath{Name: "own", Path: ".apiVersion"},
		workv1.JsonPath{Name: "v2", Version: "v2", Path: ".apiVersion"},
		workv1.JsonPath{Name: "size2", Version: "v2", Path: ".spec.size"},
		workv1.JsonPath{Name: "color2", Version: "v2", Path: ".spec.color"})
	c.ResourceIdentifier.Group = group
	h.server.sendSpec(t, spec("versions", 1, []json.RawMessage{widget}, c))
	h.server.waitFor(t, protocol.TypeStatus, 0, 20*time.Second, "the value read at v2", func(m protocol.Message) bool {
		s := status(m, "versions")
		own, _ := value(s, 0, "own")
		v2, _ := value(s, 0, "v2")
		return own == group+"/v1" && v2 == group+"/v2" && intValue(s, 0, "size2") == 3
	})

	// The value read at v2 follows a change made through v1 (to a field
	// the manifest leaves to the cluster, so it is no drift).
	dyn := dynamic.NewForConfigOrDie(cfg)
	gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}
	if _, err := dyn.Resource(gvr).Namespace(h.ns).Patch(h.ctx, "w1", types.MergePatchType, []byte(`{"spec":{"color":"blue"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	h.server.waitFor(t, protocol.TypeStatus, 0, 10*time.Second, "color blue at v2", func(m protocol.Message) bool {
		v, _ := value(status(m, "versions"), 0, "color2")
		return v == "blue"
	})

	// A version the server does not serve yields no value and says why.
	c.FeedbackRules[0].JsonPaths = append(c.FeedbackRules[0].JsonPaths, workv1.JsonPath{Name: "v9", Version: "v9", Path: ".apiVersion"})
	h.server.sendSpec(t, spec("versions", 2, []json.RawMessage{widget}, c))
	got, _ := h.server.waitFor(t, protocol.TypeStatus, 0, 10*time.Second, "VersionNotFound", func(m protocol.Message) bool {
		c, _ := conditionOf(status(m, "versions"), 0, api.ConditionStatusFeedbackSynced)
		return c.Reason == "VersionNotFound"
	})
	if _, ok := value(got.m.Status, 0, "v9"); ok {
		t.Error("a value was reported for an unserved version")
	}
	if v, _ := value(got.m.Status, 0, "v2"); v != group+"/v2" {
		t.Errorf("v2 = %q; want %s/v2 still reported", v, group)
	}
}

// intValue returns the integer feedback value name of object i (-1 if absent).
func intValue(s *protocol.Status, i int, name string) int64 {
	if s == nil || i >= len(s.Reported.ResourceStatus) {
		return -1
	}
	for _, v := range s.Reported.ResourceStatus[i].StatusFeedbacks.Values {
		if v.Name == name && v.Value.Integer != nil {
			return *v.Value.Integer
		}
	}
	return -1
}

// TestIgnoredFieldIsNoDrift: on a server-side applied object, a field the
// bundle ignores keeps the value someone set on the cluster, while drift
// of the other fields is still repaired.
func TestIgnoredFieldIsNoDrift(t *testing.T) {
	h := newHarness(t)
	c := config("configmaps", h.ns, "app", workv1.UpdateStrategyTypeServerSideApply, workv1.JsonPath{Name: "a", Path: ".data.a"})
	c.UpdateStrategy.ServerSideApply = &workv1.ServerSideApplyConfig{Force: true, IgnoreFields: []workv1.IgnoreField{
		{Condition: workv1.IgnoreFieldsConditionOnSpokePresent, JSONPointers: []string{"/data/a"}}}}
	h.server.sendSpec(t, spec("ignore", 1, []json.RawMessage{h.configMap("app", map[string]any{"a": "1", "b": "1"})}, c))
	h.server.waitFor(t, protocol.TypeStatus, 0, 10*time.Second, "a=1", func(m protocol.Message) bool {
		v, _ := value(status(m, "ignore"), 0, "a")
		return v == "1"
	})
	cm, err := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["a"], cm.Data["b"] = "cluster", "cluster"
	if _, err := h.kube.CoreV1().ConfigMaps(h.ns).Update(h.ctx, cm, metav1.UpdateOptions{FieldManager: "someone"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "b repaired, a kept", func() bool {
		cm, err := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, "app", metav1.GetOptions{})
		return err == nil && cm.Data["b"] == "1" && cm.Data["a"] == "cluster"
	})
	h.server.waitFor(t, protocol.TypeStatus, 0, 10*time.Second, "a=cluster reported", func(m protocol.Message) bool {
		v, _ := value(status(m, "ignore"), 0, "a")
		return v == "cluster"
	})
	// It stays: the kept value does not count as drift.
	time.Sleep(500 * time.Millisecond)
	if cm, _ := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, "app", metav1.GetOptions{}); cm.Data["a"] != "cluster" {
		t.Errorf("ignored field overwritten: a = %q", cm.Data["a"])
	}
}

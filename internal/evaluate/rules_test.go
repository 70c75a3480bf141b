package evaluate

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/yaml"

	"github.com/baton-dev/baton/pkg/api"
)

// condRules parses inline YAML condition rules.
func condRules(t testing.TB, s string) []workv1.ConditionRule {
	t.Helper()
	var r []workv1.ConditionRule
	if err := yaml.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("parse condition rules: %v", err)
	}
	return r
}

// TestAvailableMeansExists: Available follows Open Cluster Management's
// meaning (the object exists), whatever the object's readiness; the
// readiness baton used to put there is the well-known Ready condition.
func TestAvailableMeansExists(t *testing.T) {
	cases := map[string]struct {
		object string
		ready  string // Status/Reason of WellKnownConditions Ready; "" none for the kind
	}{
		"configmap exists":          {`{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}`, "Unknown/ConditionRuleInvalid"},
		"deployment ready":          {`{apiVersion: apps/v1, kind: Deployment, metadata: {name: d}, spec: {replicas: 2}, status: {readyReplicas: 2}}`, "True/ConditionRuleEvaluated"},
		"deployment not ready":      {`{apiVersion: apps/v1, kind: Deployment, metadata: {name: d}, spec: {replicas: 2}, status: {readyReplicas: 1}}`, "False/ConditionRuleEvaluated"},
		"deployment pods pending":   {`{apiVersion: apps/v1, kind: Deployment, metadata: {name: d}, spec: {}}`, "False/ConditionRuleEvaluated"},
		"deployment scaled to zero": {`{apiVersion: apps/v1, kind: Deployment, metadata: {name: d}, spec: {replicas: 0}}`, "True/ConditionRuleEvaluated"},
		"extensions deployment":     {`{apiVersion: example.com/v1, kind: Deployment, metadata: {name: d}, spec: {replicas: 5}}`, "Unknown/ConditionRuleInvalid"},
		"statefulset not ready":     {`{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: s}, spec: {replicas: 3}, status: {readyReplicas: 2}}`, "False/ConditionRuleEvaluated"},
		"daemonset ready":           {`{apiVersion: apps/v1, kind: DaemonSet, metadata: {name: d}, status: {desiredNumberScheduled: 3, numberReady: 3}}`, "True/ConditionRuleEvaluated"},
		"daemonset not ready":       {`{apiVersion: apps/v1, kind: DaemonSet, metadata: {name: d}, status: {desiredNumberScheduled: 3, numberReady: 2}}`, "False/ConditionRuleEvaluated"},
		"pod ready":                 {`{apiVersion: v1, kind: Pod, metadata: {name: p}, status: {phase: Running, conditions: [{type: Ready, status: "True"}]}}`, "True/ConditionRuleEvaluated"},
		"pod succeeded":             {`{apiVersion: v1, kind: Pod, metadata: {name: p}, status: {phase: Succeeded}}`, "True/ConditionRuleEvaluated"},
		"pod pending":               {`{apiVersion: v1, kind: Pod, metadata: {name: p}, status: {phase: Pending}}`, "False/ConditionRuleEvaluated"},
		"pod without status":        {`{apiVersion: v1, kind: Pod, metadata: {name: p}}`, "False/ConditionRuleEvaluated"},
	}
	ready := condRules(t, `[{type: WellKnownConditions, condition: Ready}]`)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := obj(t, tc.object)
			if c := Available(o); c.Status != metav1.ConditionTrue || c.Reason != ReasonAvailable {
				t.Errorf("Available = %s/%s (%s); want True/%s", c.Status, c.Reason, c.Message, ReasonAvailable)
			}
			got := Rules(o, ready)
			if len(got) != 1 || got[0].Type != "Ready" {
				t.Fatalf("rules = %+v; want one Ready condition", got)
			}
			if s := string(got[0].Status) + "/" + got[0].Reason; s != tc.ready {
				t.Errorf("Ready = %s (%q); want %s", s, got[0].Message, tc.ready)
			}
			if got[0].Message == "" {
				t.Error("Ready has no message")
			}
		})
	}
}

func TestRules(t *testing.T) {
	const deploy = `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, labels: {tier: front}}, spec: {replicas: 3},
		status: {readyReplicas: 3, conditions: [{type: Available, status: "True"}, {type: Progressing, status: "True"}]}}`
	const job = `{apiVersion: batch/v1, kind: Job, metadata: {name: j}, status: {conditions: [{type: Complete, status: "True"}]}}`
	cases := map[string]struct {
		object, rules string
		want          []string // Type=Status/Reason: message
	}{
		"cel true with message expression": {deploy,
			`[{type: CEL, condition: Ready, celExpressions: ["object.status.readyReplicas == object.spec.replicas"],
			   messageExpression: 'result ? "all " + string(object.status.readyReplicas) + " ready" : "waiting"'}]`,
			[]string{"Ready=True/ConditionRuleEvaluated: all 3 ready"}},
		"cel expressions are ANDed": {deploy,
			`[{type: CEL, condition: Ready, celExpressions: ["true", "object.metadata.labels.tier == 'back'"], message: custom}]`,
			[]string{"Ready=False/ConditionRuleEvaluated: custom"}},
		"default messages": {deploy,
			`[{type: CEL, condition: Progressed, celExpressions: ["object.status.conditions.exists(c, c.type == 'Progressing' && c.status == 'True')"]},
			  {type: CEL, condition: Broken, celExpressions: ["false"]}]`,
			[]string{"Progressed=True/ConditionRuleEvaluated: Manifest is Progressed", "Broken=False/ConditionRuleEvaluated: Manifest is not Broken"}},
		"missing field is an expression error": {deploy,
			`[{type: CEL, condition: Ready, celExpressions: ["object.status.nope > 1"]}]`,
			[]string{"Ready=False/ConditionRuleExpressionError: no such key"}},
		"non-bool result": {deploy,
			`[{type: CEL, condition: Ready, celExpressions: ["object.spec.replicas"]}]`,
			[]string{"Ready=False/ConditionRuleExpressionError: not a bool"}},
		"syntax error": {deploy,
			`[{type: CEL, condition: Ready, celExpressions: ["object.spec.replicas >"]}]`,
			[]string{"Ready=False/ConditionRuleExpressionError: Syntax error"}},
		"well-known complete defaults its condition": {job, `[{type: WellKnownConditions}]`,
			[]string{"Complete=True/ConditionRuleEvaluated: Job is finished"}},
		"well-known message override": {job, `[{type: WellKnownConditions, condition: Complete, message: done}]`,
			[]string{"Complete=True/ConditionRuleEvaluated: done"}},
		"well-known without rule for the kind": {deploy, `[{type: WellKnownConditions}]`,
			[]string{"Complete=Unknown/ConditionRuleInvalid: no well-known condition Complete for kind Deployment.apps"}},
		"duplicate condition keeps the first": {deploy,
			`[{type: CEL, condition: Ready, celExpressions: ["true"]}, {type: CEL, condition: Ready, celExpressions: ["false"]}]`,
			[]string{"Ready=True/ConditionRuleEvaluated: Manifest is Ready"}},
		"unknown type": {deploy, `[{type: Magic, condition: X}]`,
			[]string{"X=Unknown/ConditionRuleInvalid: unknown condition rule type"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := Rules(obj(t, tc.object), condRules(t, tc.rules))
			if len(got) != len(tc.want) {
				t.Fatalf("conditions = %+v; want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				head, msg, _ := strings.Cut(w, ": ")
				c := got[i]
				if h := c.Type + "=" + string(c.Status) + "/" + c.Reason; h != head || !strings.Contains(c.Message, msg) {
					t.Errorf("condition %d = %s: %q; want %s: …%s…", i, h, c.Message, head, msg)
				}
			}
		})
	}
}

// TestObjectWithRules: rule conditions follow the built-in ones, are
// Unknown/NotFound for a missing object, and aggregate into the bundle.
func TestObjectWithRules(t *testing.T) {
	r := condRules(t, `[{type: WellKnownConditions, condition: Ready}]`)
	pending := obj(t, `{apiVersion: apps/v1, kind: Deployment, metadata: {name: d, uid: u}, spec: {replicas: 1}}`)
	st := Object(Input{Meta: serviceMeta, Object: pending, ConditionRules: r, Apply: ApplyResult{State: ApplySucceeded}, ObservedAt: t0})
	var types []string
	for _, c := range st.Conditions {
		types = append(types, c.Type)
	}
	if got := strings.Join(types, ","); got != "Applied,Available,StatusFeedbackSynced,Ready" {
		t.Fatalf("condition order = %s", got)
	}
	if c := cond(st, api.ConditionAvailable); c.Status != metav1.ConditionTrue {
		t.Errorf("Available of a Deployment whose pods never started = %s; want True (it exists)", c.Status)
	}
	if c := cond(st, "Ready"); c.Status != metav1.ConditionFalse || c.Message != "0/1 replicas ready" {
		t.Errorf("Ready = %s %q; want False \"0/1 replicas ready\"", c.Status, c.Message)
	}
	gone := Object(Input{Meta: serviceMeta, ConditionRules: r, Apply: ApplyResult{State: ApplySucceeded}, ObservedAt: t0})
	if c := cond(gone, "Ready"); c.Status != metav1.ConditionUnknown || c.Reason != api.ReasonNotFound {
		t.Errorf("Ready of a missing object = %s/%s; want Unknown/NotFound", c.Status, c.Reason)
	}

	ready := obj(t, `{apiVersion: apps/v1, kind: Deployment, metadata: {name: d, uid: u}, spec: {replicas: 1}, status: {readyReplicas: 1}}`)
	st2 := Object(Input{Meta: serviceMeta, Object: ready, ConditionRules: r, Apply: ApplySucceededResult, ObservedAt: t0})
	plain := Object(Input{Meta: serviceMeta, Object: obj(t, serviceYAML), Apply: ApplySucceededResult, ObservedAt: t0})
	conds := Bundle([]api.ResourceStatus{st, plain}, 4, nil)
	if len(conds) != 3 || conds[2].Type != "Ready" || conds[2].Status != metav1.ConditionFalse || conds[2].ObservedGeneration != 4 {
		t.Fatalf("bundle conditions = %+v; want Applied, Available, Ready=False", conds)
	}
	if conds[1].Status != metav1.ConditionTrue {
		t.Errorf("bundle Available = %s; want True: every object exists", conds[1].Status)
	}
	conds = Bundle([]api.ResourceStatus{st2, plain}, 4, nil)
	if conds[2].Status != metav1.ConditionTrue || conds[2].Reason != "ConditionRulesTrue" {
		t.Errorf("bundle Ready = %s/%s; want True/ConditionRulesTrue", conds[2].Status, conds[2].Reason)
	}
}

// ApplySucceededResult is a successful apply.
var ApplySucceededResult = ApplyResult{State: ApplySucceeded}

func TestScrapeTypeNoted(t *testing.T) {
	st := Object(Input{Meta: serviceMeta, Object: obj(t, serviceYAML), FeedbackRules: rules(t, ipRule),
		ScrapeType: workv1.FeedbackPollType, Apply: ApplySucceededResult, ObservedAt: t0})
	c := cond(st, api.ConditionStatusFeedbackSynced)
	if c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "feedbackScrapeType Poll accepted: baton always watches") {
		t.Errorf("StatusFeedbackSynced = %s %q; want True noting the scrape type", c.Status, c.Message)
	}
}

func TestFeedbackAtVersion(t *testing.T) {
	v1 := obj(t, `{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}, status: {size: 3}}`)
	v2 := obj(t, `{apiVersion: example.com/v2, kind: Widget, metadata: {name: w}, status: {dimensions: {size: 3}}}`)
	r := rules(t, `[{type: JSONPaths, jsonPaths: [{name: own, path: .status.size}, {name: same, version: v1, path: .status.size},
		{name: other, version: v2, path: .status.dimensions.size}, {name: gone, version: v3, path: .status.size}]}]`)
	if got := VersionsNeeded(r, "v1"); strings.Join(got, ",") != "v2,v3" {
		t.Errorf("VersionsNeeded = %v; want [v2 v3]", got)
	}
	values, c := Feedback(v1, r, Versions{"v2": v2})
	if got := valuesJSON(t, values); got != `[{"name":"own","fieldValue":{"type":"Integer","integer":3}},`+
		`{"name":"same","fieldValue":{"type":"Integer","integer":3}},{"name":"other","fieldValue":{"type":"Integer","integer":3}}]` {
		t.Errorf("values = %s", got)
	}
	if c.Status != metav1.ConditionFalse || c.Reason != ReasonVersionNotFound || !strings.Contains(c.Message, "gone: ") {
		t.Errorf("synced = %s/%s %q; want False/VersionNotFound naming gone", c.Status, c.Reason, c.Message)
	}
}

func TestCheckCEL(t *testing.T) {
	for expr, ok := range map[string]bool{
		"object.status.readyReplicas > 0": true, "object.spec.replicas >": false, "1 + 1": false,
		"hasConditions(object.status)": true, "object.metadata.name.startsWith('a')": true, "nope.x": false,
	} {
		if err := CheckCEL(expr, false); (err == nil) != ok {
			t.Errorf("CheckCEL(%q) = %v; want ok=%v", expr, err, ok)
		}
	}
	if err := CheckCEL(`result ? "yes" : "no"`, true); err != nil {
		t.Errorf("message expression: %v", err)
	}
	if err := CheckCEL(`result`, true); err == nil {
		t.Error("a bool message expression was accepted")
	}
}

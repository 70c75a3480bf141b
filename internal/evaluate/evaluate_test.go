package evaluate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/yaml"

	"github.com/baton-dev/baton/pkg/api"
)

var t0 = time.Date(2026, 11, 25, 17, 0, 0, 123456789, time.UTC)

// obj parses an inline YAML object.
func obj(t testing.TB, s string) *unstructured.Unstructured {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(s))
	if err != nil {
		t.Fatalf("parse yaml: %v", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatalf("decode object: %v", err)
	}
	return u
}

// rules parses inline YAML feedback rules.
func rules(t testing.TB, s string) []workv1.FeedbackRule {
	t.Helper()
	var r []workv1.FeedbackRule
	if err := yaml.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("parse rules: %v", err)
	}
	return r
}

// valuesJSON renders feedback values compactly for comparison.
func valuesJSON(t testing.TB, v []workv1.FeedbackValue) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cond(st api.ResourceStatus, typ string) metav1.Condition {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

const serviceYAML = `
apiVersion: v1
kind: Service
metadata: {name: router, namespace: hypershift-sharedingress, uid: uid-1, resourceVersion: "10"}
spec: {type: LoadBalancer, ports: [{port: 443}, {port: 80}]}
status: {loadBalancer: {ingress: [{ip: 20.1.2.3}]}}
`

const ipRule = `[{type: JSONPaths, jsonPaths: [{name: ip, path: ".status.loadBalancer.ingress[0].ip"}]}]`

var serviceMeta = workv1.ManifestResourceMeta{Version: "v1", Kind: "Service", Resource: "services",
	Name: "router", Namespace: "hypershift-sharedingress"}

func TestObject(t *testing.T) {
	type want struct {
		values                     string // JSON of the values
		applied, available, synced string // "Status/Reason"
		exists                     bool
		uid                        string
		syncedMsg                  string // substring of the synced message
	}
	cases := map[string]struct {
		object string
		rules  string
		apply  ApplyResult
		want   want
	}{
		"service with ip": {
			object: serviceYAML, rules: ipRule, apply: ApplyResult{State: ApplyReadOnly},
			want: want{values: `[{"name":"ip","fieldValue":{"type":"String","string":"20.1.2.3"}}]`,
				applied: "True/ReadOnly", available: "True/ResourceAvailable", synced: "True/StatusFeedbackSynced",
				exists: true, uid: "uid-1"},
		},
		"missing object has no values and says NotFound": {
			rules: ipRule, apply: ApplyResult{State: ApplySucceeded},
			want: want{values: `null`, applied: "True/AppliedManifestComplete",
				available: "False/NotFound", synced: "False/NotFound"},
		},
		"missing object without rules is still NotFound": {
			apply: ApplyResult{State: ApplyReadOnly},
			want:  want{values: `null`, applied: "True/ReadOnly", available: "False/NotFound", synced: "False/NotFound"},
		},
		"apply failed keeps its reason": {
			object: serviceYAML, apply: ApplyResult{State: ApplyFailed, Reason: "Conflict", Message: "field is immutable"},
			want: want{values: `null`, applied: "False/Conflict", available: "True/ResourceAvailable",
				synced: "True/StatusFeedbackSynced", exists: true, uid: "uid-1", syncedMsg: "No feedback rules"},
		},
		"apply failed without reason": {
			apply: ApplyResult{State: ApplyFailed, Message: "boom"},
			want:  want{values: `null`, applied: "False/AppliedManifestFailed", available: "False/NotFound", synced: "False/NotFound"},
		},
		"apply pending is unknown": {
			object: serviceYAML,
			want: want{values: `null`, applied: "Unknown/ApplyPending", available: "True/ResourceAvailable",
				synced: "True/StatusFeedbackSynced", exists: true, uid: "uid-1"},
		},
		"path without value": {
			object: serviceYAML, apply: ApplyResult{State: ApplyReadOnly},
			rules: `[{type: JSONPaths, jsonPaths: [{name: host, path: ".status.loadBalancer.ingress[0].hostname"}, {name: ip, path: ".status.loadBalancer.ingress[0].ip"}]}]`,
			want: want{values: `[{"name":"ip","fieldValue":{"type":"String","string":"20.1.2.3"}}]`,
				applied: "True/ReadOnly", available: "True/ResourceAvailable", synced: "False/NoValue",
				exists: true, uid: "uid-1", syncedMsg: "host: "},
		},
		"invalid path": {
			object: serviceYAML, apply: ApplyResult{State: ApplyReadOnly},
			rules: `[{type: JSONPaths, jsonPaths: [{name: bad, path: ".status[?(@.x=="}]}]`,
			want: want{values: `null`, applied: "True/ReadOnly", available: "True/ResourceAvailable",
				synced: "False/InvalidJSONPath", exists: true, uid: "uid-1", syncedMsg: "bad: "},
		},
		"first problem gives the reason": {
			object: serviceYAML, apply: ApplyResult{State: ApplyReadOnly},
			rules: `[{type: JSONPaths, jsonPaths: [{name: a, path: .nope}, {name: b, path: "{.x"}]}]`,
			want: want{values: `null`, applied: "True/ReadOnly", available: "True/ResourceAvailable",
				synced: "False/NoValue", exists: true, uid: "uid-1", syncedMsg: "; b: "},
		},
		"too large value is dropped": {
			object: `{apiVersion: v1, kind: ConfigMap, metadata: {name: big, uid: u}, data: {k: "` + strings.Repeat("x", MaxJSONRawBytes) + `"}}`,
			apply:  ApplyResult{State: ApplySucceeded},
			rules:  `[{type: JSONPaths, jsonPaths: [{name: data, path: .data}, {name: kind, path: .kind}]}]`,
			want: want{values: `[{"name":"kind","fieldValue":{"type":"String","string":"ConfigMap"}}]`,
				applied: "True/AppliedManifestComplete", available: "True/ResourceAvailable",
				synced: "False/ValueTooLarge", exists: true, uid: "u", syncedMsg: "exceeds"},
		},
		"duplicate names keep the first": {
			object: serviceYAML, apply: ApplyResult{State: ApplyReadOnly},
			rules: `[{type: JSONPaths, jsonPaths: [{name: x, path: .metadata.name}, {name: x, path: .kind}]}]`,
			want: want{values: `[{"name":"x","fieldValue":{"type":"String","string":"router"}}]`,
				applied: "True/ReadOnly", available: "True/ResourceAvailable", synced: "True/StatusFeedbackSynced",
				exists: true, uid: "uid-1"},
		},
		"well-known status without rule for the kind": {
			object: serviceYAML, apply: ApplyResult{State: ApplyReadOnly}, rules: `[{type: WellKnownStatus}]`,
			want: want{values: `null`, applied: "True/ReadOnly", available: "True/ResourceAvailable",
				synced: "False/NoWellKnownRule", exists: true, uid: "uid-1", syncedMsg: "Service"},
		},
		"unknown rule type": {
			object: serviceYAML, apply: ApplyResult{State: ApplyReadOnly}, rules: `[{type: Magic}]`,
			want: want{values: `null`, applied: "True/ReadOnly", available: "True/ResourceAvailable",
				synced: "False/UnknownRuleType", exists: true, uid: "uid-1"},
		},
		"deployment not ready is available (it exists)": {
			object: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ns, uid: d1, resourceVersion: "5", generation: 3}
spec: {replicas: 3}
status: {replicas: 3, readyReplicas: 2, updatedReplicas: 3, observedGeneration: 3}`,
			apply: ApplyResult{State: ApplySucceeded}, rules: `[{type: WellKnownStatus}]`,
			want: want{values: `[{"name":"ReadyReplicas","fieldValue":{"type":"Integer","integer":2}},` +
				`{"name":"Replicas","fieldValue":{"type":"Integer","integer":3}},` +
				`{"name":"UpdatedReplicas","fieldValue":{"type":"Integer","integer":3}},` +
				`{"name":"ObservedGeneration","fieldValue":{"type":"Integer","integer":3}}]`,
				applied: "True/AppliedManifestComplete", available: "True/ResourceAvailable",
				synced: "True/StatusFeedbackSynced", exists: true, uid: "d1"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := Input{Meta: serviceMeta, Apply: tc.apply, ObservedAt: t0}
			if tc.object != "" {
				in.Object = obj(t, tc.object)
			}
			if tc.rules != "" {
				in.FeedbackRules = rules(t, tc.rules)
			}
			st := Object(in)
			if got := valuesJSON(t, st.StatusFeedbacks.Values); got != tc.want.values {
				t.Errorf("values = %s; want %s", got, tc.want.values)
			}
			for typ, want := range map[string]string{api.ConditionApplied: tc.want.applied,
				api.ConditionAvailable: tc.want.available, api.ConditionStatusFeedbackSynced: tc.want.synced} {
				c := cond(st, typ)
				if got := string(c.Status) + "/" + c.Reason; got != want {
					t.Errorf("%s = %s (%q); want %s", typ, got, c.Message, want)
				}
			}
			if msg := cond(st, api.ConditionStatusFeedbackSynced).Message; !strings.Contains(msg, tc.want.syncedMsg) {
				t.Errorf("synced message %q does not contain %q", msg, tc.want.syncedMsg)
			}
			if st.Observed.Exists != tc.want.exists || st.Observed.UID != tc.want.uid {
				t.Errorf("observed = %+v; want exists=%v uid=%q", st.Observed, tc.want.exists, tc.want.uid)
			}
			var types []string
			for _, c := range st.Conditions {
				types = append(types, c.Type)
			}
			if got := strings.Join(types, ","); got != "Applied,Available,StatusFeedbackSynced" {
				t.Errorf("condition order = %s", got)
			}
			if st.ResourceMeta != serviceMeta {
				t.Errorf("resourceMeta = %+v", st.ResourceMeta)
			}
		})
	}
}

func TestObservedIdentity(t *testing.T) {
	d := obj(t, `{apiVersion: apps/v1, kind: Deployment, metadata: {name: w, uid: u9, resourceVersion: "77", generation: 4}}`)
	st := Object(Input{Object: d, ObservedAt: t0})
	want := api.Observed{UID: "u9", ResourceVersion: "77", Generation: 4, Exists: true,
		ObservedAt: time.Date(2026, 11, 25, 17, 0, 0, 123000000, time.UTC)}
	if st.Observed != want {
		t.Errorf("observed = %+v; want %+v", st.Observed, want)
	}
	if got := cond(st, api.ConditionApplied).LastTransitionTime.Time; !got.Equal(t0.Truncate(time.Second)) {
		t.Errorf("first transition time = %v; want %v", got, t0.Truncate(time.Second))
	}
}

func TestTimesStayStable(t *testing.T) {
	svc := obj(t, serviceYAML)
	r := rules(t, ipRule)
	first := Object(Input{Meta: serviceMeta, Object: svc, FeedbackRules: r, Apply: ApplyResult{State: ApplyReadOnly}, ObservedAt: t0})

	later := t0.Add(time.Hour)
	again := Object(Input{Meta: serviceMeta, Object: svc, FeedbackRules: r, Apply: ApplyResult{State: ApplyReadOnly},
		ObservedAt: later, Previous: &first})
	if a, b := mustJSON(t, first), mustJSON(t, again); a != b {
		t.Fatalf("unchanged object re-evaluated later differs:\n%s\n%s", a, b)
	}

	// Without Previous, time leaks into the result.
	fresh := Object(Input{Meta: serviceMeta, Object: svc, FeedbackRules: r, Apply: ApplyResult{State: ApplyReadOnly}, ObservedAt: later})
	if mustJSON(t, first) == mustJSON(t, fresh) {
		t.Fatal("evaluation without Previous kept the old times")
	}

	// A new resourceVersion moves observedAt, but not unchanged conditions.
	svc2 := svc.DeepCopy()
	svc2.SetResourceVersion("11")
	moved := Object(Input{Meta: serviceMeta, Object: svc2, FeedbackRules: r, Apply: ApplyResult{State: ApplyReadOnly},
		ObservedAt: later, Previous: &first})
	if !moved.Observed.ObservedAt.Equal(later.Truncate(time.Millisecond)) {
		t.Errorf("observedAt = %v; want %v", moved.Observed.ObservedAt, later)
	}
	if got := cond(moved, api.ConditionAvailable).LastTransitionTime; !got.Equal(&first.Conditions[1].LastTransitionTime) {
		t.Errorf("unchanged Available moved its transition time to %v", got)
	}

	// Deleting the object flips Available and moves its transition time.
	gone := Object(Input{Meta: serviceMeta, FeedbackRules: r, Apply: ApplyResult{State: ApplyReadOnly}, ObservedAt: later, Previous: &moved})
	if got := cond(gone, api.ConditionAvailable).LastTransitionTime.Time; !got.Equal(later.Truncate(time.Second)) {
		t.Errorf("Available transition time = %v; want %v", got, later)
	}
	if got := cond(gone, api.ConditionApplied).LastTransitionTime; !got.Equal(&first.Conditions[0].LastTransitionTime) {
		t.Errorf("unchanged Applied moved its transition time to %v", got)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

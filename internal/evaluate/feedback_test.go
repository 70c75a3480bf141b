package evaluate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	workv1 "open-cluster-management.io/api/work/v1"
)

const podYAML = `
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ns, uid: p1, labels: {app: web}}
spec:
  containers: [{name: a, image: nginx}, {name: b, image: busybox}]
status:
  phase: Running
  ratio: 1.5
  whole: 4.0
  big: 9007199254740993
  gone: null
  ready: true
  conditions: [{type: Initialized, status: "True"}, {type: Ready, status: "False"}]
`

func TestEvalPath(t *testing.T) {
	cases := map[string]struct {
		path   string
		want   string // JSON of the FieldValue
		reason string // PathError reason when no value
	}{
		"string":              {path: ".status.phase", want: `{"type":"String","string":"Running"}`},
		"braces kept":         {path: "{.status.phase}", want: `{"type":"String","string":"Running"}`},
		"spaces trimmed":      {path: "  .status.phase ", want: `{"type":"String","string":"Running"}`},
		"boolean":             {path: ".status.ready", want: `{"type":"Boolean","boolean":true}`},
		"integer":             {path: ".status.big", want: `{"type":"Integer","integer":9007199254740993}`},
		"whole float":         {path: ".status.whole", want: `{"type":"Integer","integer":4}`},
		"fractional float":    {path: ".status.ratio", want: `{"type":"JsonRaw","jsonRaw":"1.5"}`},
		"map":                 {path: ".metadata.labels", want: `{"type":"JsonRaw","jsonRaw":"{\"app\":\"web\"}"}`},
		"slice":               {path: ".spec.containers[*].name", want: `{"type":"JsonRaw","jsonRaw":"[\"a\",\"b\"]"}`},
		"slice element":       {path: ".spec.containers[1].image", want: `{"type":"String","string":"busybox"}`},
		"filter":              {path: `.status.conditions[?(@.type=="Ready")].status`, want: `{"type":"String","string":"False"}`},
		"filter without hit":  {path: `.status.conditions[?(@.type=="Nope")].status`, reason: ReasonNoValue},
		"missing field":       {path: ".status.podIP", reason: ReasonNoValue},
		"missing parent":      {path: ".status.a.b.c", reason: ReasonNoValue},
		"index out of bounds": {path: ".spec.containers[5].name", reason: ReasonNoValue},
		"index on a map":      {path: ".metadata[0]", reason: ReasonNoValue},
		"null":                {path: ".status.gone", reason: ReasonNoValue},
		"unclosed brace":      {path: "{.status", reason: ReasonInvalidJSONPath},
		"bad filter":          {path: `.status[?(@.x==`, reason: ReasonInvalidJSONPath},
	}
	o := obj(t, podYAML)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v, err := EvalPath(o.Object, tc.path)
			if tc.reason != "" {
				if err == nil || err.Reason != tc.reason {
					t.Fatalf("EvalPath(%q) = %s, %v; want reason %s", tc.path, mustJSON(t, v), err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("EvalPath(%q): %v", tc.path, err)
			}
			if got := mustJSON(t, v); got != tc.want {
				t.Errorf("EvalPath(%q) = %s; want %s", tc.path, got, tc.want)
			}
		})
	}
}

func TestEvalPathWholeObject(t *testing.T) {
	o := obj(t, `{apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {b: "2", a: "1"}}`)
	for _, p := range []string{"@", "{@}", " @ "} {
		v, err := EvalPath(o.Object, p)
		if err != nil {
			t.Fatalf("EvalPath(%q): %v", p, err)
		}
		want := `{"apiVersion":"v1","data":{"a":"1","b":"2"},"kind":"ConfigMap","metadata":{"name":"c"}}`
		if v.Type != workv1.JsonRaw || v.JsonRaw == nil || *v.JsonRaw != want {
			t.Errorf("EvalPath(%q) = %s; want JsonRaw %s", p, mustJSON(t, v), want)
		}
	}
}

func TestEvalPathSizeCap(t *testing.T) {
	// The cap applies to the compact JSON: exactly at the limit passes.
	fits := strings.Repeat("x", MaxJSONRawBytes-len(`{"k":""}`))
	o := map[string]any{"data": map[string]any{"k": fits}}
	v, err := EvalPath(o, ".data")
	if err != nil || len(*v.JsonRaw) != MaxJSONRawBytes {
		t.Fatalf("value at the limit: %v, %v", err, v.JsonRaw != nil)
	}
	o["data"].(map[string]any)["k"] = fits + "x"
	if _, err := EvalPath(o, ".data"); err == nil || err.Reason != ReasonValueTooLarge {
		t.Fatalf("value over the limit: err = %v; want %s", err, ReasonValueTooLarge)
	}
	// A long string scalar is not capped (it is not JsonRaw).
	o["s"] = strings.Repeat("y", 2*MaxJSONRawBytes)
	if v, err := EvalPath(o, ".s"); err != nil || v.Type != workv1.String {
		t.Fatalf("long string: %v %v", v.Type, err)
	}
}

func TestWellKnownRules(t *testing.T) {
	cases := map[string]struct {
		object string
		want   string
	}{
		"daemonset": {
			object: `{apiVersion: apps/v1, kind: DaemonSet, metadata: {name: d},
				status: {numberReady: 2, desiredNumberScheduled: 3, numberAvailable: 2, numberMisscheduled: 0, updatedNumberScheduled: 3}}`,
			want: `NumberReady=2,DesiredNumberScheduled=3,NumberAvailable=2,NumberMisscheduled=0,UpdatedNumberScheduled=3`,
		},
		"job": {
			object: `{apiVersion: batch/v1, kind: Job, metadata: {name: j},
				status: {succeeded: 1, conditions: [{type: SuccessCriteriaMet, status: "True"}, {type: Complete, status: "True"}]}}`,
			want: `JobComplete="True",JobSucceeded=1`,
		},
		"running job": {
			object: `{apiVersion: batch/v1, kind: Job, metadata: {name: j}, status: {active: 2, failed: 1}}`,
			want:   `JobActive=2,JobFailed=1`,
		},
		"pod": {object: podYAML, want: `PodPhase="Running",PodReady="False"`},
		"deployment without status": {
			object: `{apiVersion: apps/v1, kind: Deployment, metadata: {name: d}, spec: {replicas: 1}}`,
			want:   ``,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			values, c := Feedback(obj(t, tc.object), []workv1.FeedbackRule{{Type: workv1.WellKnownStatusType}}, nil)
			var parts []string
			for _, v := range values {
				x := ""
				switch v.Value.Type {
				case workv1.Integer:
					x = mustJSON(t, *v.Value.Integer)
				case workv1.String:
					x = mustJSON(t, *v.Value.String)
				default:
					x = "?" + string(v.Value.Type)
				}
				parts = append(parts, v.Name+"="+x)
			}
			if got := strings.Join(parts, ","); got != tc.want {
				t.Errorf("values = %s; want %s", got, tc.want)
			}
			if c.Status != "True" {
				t.Errorf("StatusFeedbackSynced = %s/%s %s; want True (missing well-known fields are not errors)", c.Status, c.Reason, c.Message)
			}
		})
	}
	if _, ok := WellKnownPaths(schema.GroupKind{Kind: "Service"}); ok {
		t.Error("Service has a well-known rule")
	}
}

// FuzzEvalPath checks that any path on any object neither panics nor
// returns a value that breaks the FieldValue contract.
func FuzzEvalPath(f *testing.F) {
	for _, p := range []string{".status.phase", "@", "{.}", ".spec.containers[*].name", `.status.conditions[?(@.type=="Ready")].status`,
		".spec.containers[-1:]", "{range .spec.containers[*]}{.name}{end}", "..name", ".a[", "{{", "{.spec.containers[0:5:0]}", `{.a}{"x"}`} {
		f.Add(p, `{"spec":{"containers":[{"name":"a"},{"name":"b"}]},"status":{"phase":"Running","n":1.5}}`)
	}
	f.Fuzz(func(t *testing.T, path, doc string) {
		var data map[string]any
		if json.Unmarshal([]byte(doc), &data) != nil {
			data = map[string]any{"status": map[string]any{"phase": "Running"}}
		}
		type result struct {
			v   workv1.FieldValue
			err *PathError
		}
		done := make(chan result, 1)
		go func() { v, err := EvalPath(data, path); done <- result{v, err} }()
		var v workv1.FieldValue
		var err *PathError
		select {
		case r := <-done:
			v, err = r.v, r.err
		case <-time.After(2 * time.Second):
			t.Fatalf("EvalPath(%q) did not return", path)
		}
		if err != nil {
			if v.Type != "" {
				t.Fatalf("error %v with value %+v", err, v)
			}
			return
		}
		set := 0
		for _, p := range []bool{v.Integer != nil, v.String != nil, v.Boolean != nil, v.JsonRaw != nil} {
			if p {
				set++
			}
		}
		if set != 1 {
			t.Fatalf("value %+v sets %d fields", v, set)
		}
		if v.JsonRaw != nil && (len(*v.JsonRaw) > MaxJSONRawBytes || !json.Valid([]byte(*v.JsonRaw))) {
			t.Fatalf("bad JsonRaw %q", *v.JsonRaw)
		}
	})
}

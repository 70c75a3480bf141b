package fieldpath

import (
	"strings"
	"testing"

	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/yaml"
)

const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, annotations: {"example.com/refresh": "now", "a~b": "x"}, labels: {app: web}}
spec:
  replicas: 3
  template:
    spec:
      containers:
      - {name: app, image: app:1, ports: [{containerPort: 80}]}
      - {name: sidecar, image: side:1}
`

func doc(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(deployment), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLocate(t *testing.T) {
	cases := map[string]struct {
		field workv1.IgnoreField
		want  string // paths as pointers, comma-separated
		err   string
	}{
		"jsonpath field":          {field: workv1.IgnoreField{JSONPaths: []string{".spec.replicas"}}, want: "/spec/replicas"},
		"jsonpath braces":         {field: workv1.IgnoreField{JSONPaths: []string{"{.spec.replicas}"}}, want: "/spec/replicas"},
		"jsonpath quoted key":     {field: workv1.IgnoreField{JSONPaths: []string{`.metadata.annotations["example.com/refresh"]`}}, want: "/metadata/annotations/example.com~1refresh"},
		"jsonpath filter":         {field: workv1.IgnoreField{JSONPaths: []string{`.spec.template.spec.containers[?(@.name=="sidecar")].image`}}, want: "/spec/template/spec/containers/1/image"},
		"jsonpath every element":  {field: workv1.IgnoreField{JSONPaths: []string{`.spec.template.spec.containers[*].image`}}, want: "/spec/template/spec/containers/0/image,/spec/template/spec/containers/1/image"},
		"jsonpath absent field":   {field: workv1.IgnoreField{JSONPaths: []string{".spec.paused"}}, want: ""},
		"jsonpath top-level":      {field: workv1.IgnoreField{JSONPaths: []string{".spec"}}, want: "/spec"},
		"jsonpath to a list item": {field: workv1.IgnoreField{JSONPaths: []string{".spec.template.spec.containers[0]"}}, err: "must end in a field name"},
		"jsonpath unparsable":     {field: workv1.IgnoreField{JSONPaths: []string{".spec[?(@.x==.y"}}, err: "JSONPath"},
		"pointer":                 {field: workv1.IgnoreField{JSONPointers: []string{"/spec/template/spec/containers/0/image"}}, want: "/spec/template/spec/containers/0/image"},
		"pointer escapes":         {field: workv1.IgnoreField{JSONPointers: []string{"/metadata/annotations/a~0b"}}, want: "/metadata/annotations/a~0b"},
		"pointer absent":          {field: workv1.IgnoreField{JSONPointers: []string{"/spec/paused", "/spec/template/spec/containers/5/image"}}, want: ""},
		"pointer into a scalar":   {field: workv1.IgnoreField{JSONPointers: []string{"/spec/replicas/count"}}, err: `JSON pointer "/spec/replicas/count": count: cannot step into a number`},
		"pointer word as index":   {field: workv1.IgnoreField{JSONPointers: []string{"/spec/template/spec/containers/app/image"}}, err: "is not a list index"},
		"pointer no slash":        {field: workv1.IgnoreField{JSONPointers: []string{"spec/replicas"}}, err: "must start with"},
		"pointer bad escape":      {field: workv1.IgnoreField{JSONPointers: []string{"/a~2"}}, err: "followed by 0 or 1"},
		"jq select":               {field: workv1.IgnoreField{JQPathExpressions: []string{`.spec.template.spec.containers[] | select(.name == "app") | .image`}}, want: "/spec/template/spec/containers/0/image"},
		"jq numeric compare":      {field: workv1.IgnoreField{JQPathExpressions: []string{`.spec | select(.replicas > 1) | .replicas`}}, want: "/spec/replicas"},
		"jq absent":               {field: workv1.IgnoreField{JQPathExpressions: []string{`.spec.paused`}}, want: ""},
		"jq type error":           {field: workv1.IgnoreField{JQPathExpressions: []string{`.spec.replicas.count`}}, err: "jq expression"},
		"jq syntax":               {field: workv1.IgnoreField{JQPathExpressions: []string{`.spec[`}}, err: "jq expression"},
		"jq not a path":           {field: workv1.IgnoreField{JQPathExpressions: []string{`.spec.replicas | tostring`}}, err: "jq expression"},
		"all three, deduplicated": {field: workv1.IgnoreField{JSONPaths: []string{".spec.replicas"}, JSONPointers: []string{"/spec/replicas"},
			JQPathExpressions: []string{".metadata.labels.app"}}, want: "/spec/replicas,/metadata/labels/app"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ps, err := Locate(doc(t), tc.field)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Locate = %v, %v; want error containing %q", ps, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if g := strings.Join(got, ","); g != tc.want {
				t.Errorf("Locate = %s; want %s", g, tc.want)
			}
		})
	}
}

func TestSetRemove(t *testing.T) {
	m := doc(t)
	img := Path{"spec", "template", "spec", "containers", 0, "image"}
	if !Set(m, img, "app:2") {
		t.Fatal("Set failed")
	}
	if v, _ := Get(m, img); v != "app:2" {
		t.Errorf("image = %v", v)
	}
	if !Remove(m, Path{"spec", "replicas"}) {
		t.Fatal("Remove failed")
	}
	if _, ok := Get(m, Path{"spec", "replicas"}); ok {
		t.Error("replicas still there")
	}
	if Remove(m, Path{"spec", "template", "spec", "containers", "1"}) {
		t.Error("a list element was removed")
	}
	if Set(m, Path{"spec", "nope", "x"}, 1) {
		t.Error("Set created a missing parent")
	}
}

func TestCheck(t *testing.T) {
	if err := Check(workv1.IgnoreField{JSONPaths: []string{".spec.replicas"}, JSONPointers: []string{"/spec/replicas"},
		JQPathExpressions: []string{".spec.replicas"}}); err != nil {
		t.Errorf("Check = %v", err)
	}
	err := Check(workv1.IgnoreField{JSONPaths: []string{".spec[0]"}, JSONPointers: []string{"x"}, JQPathExpressions: []string{"[["}})
	for _, want := range []string{"JSONPath", "JSON pointer", "jq expression"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v; want it to name the %s", err, want)
		}
	}
}

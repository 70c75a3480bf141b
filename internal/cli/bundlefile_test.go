package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	workv1 "open-cluster-management.io/api/work/v1"
)

func TestExamplesParse(t *testing.T) {
	want := map[string]string{
		"shared-ingress.yaml":     "shared-ingress",
		"deployment.yaml":         "hello-deployment",
		"selectively-orphan.yaml": "app-config",
		"crd-and-cr.json":         "widgets",
	}
	for file, name := range want {
		path := filepath.Join("..", "..", "examples", file)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := parseBundles(path, data, "")
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(docs) != 1 {
			t.Fatalf("%s: got %d bundles; want 1", file, len(docs))
		}
		b := docs[0].Bundle
		if b.Name != name || b.ConsumerName != "dev" {
			t.Errorf("%s: got name %q consumer %q; want %q, dev", file, b.Name, b.ConsumerName, name)
		}
	}
}

func TestParseSharedIngressFields(t *testing.T) {
	data, err := os.ReadFile("../../examples/shared-ingress.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := parseBundles("f", data, "")
	if err != nil {
		t.Fatal(err)
	}
	b := docs[0].Bundle
	if got := b.ManifestConfigs[0].UpdateStrategy.Type; got != workv1.UpdateStrategyTypeReadOnly {
		t.Errorf("update strategy %q; want ReadOnly", got)
	}
	if got := b.ManifestConfigs[0].FeedbackRules[0].JsonPaths[0].Path; got != ".status.loadBalancer.ingress[0].ip" {
		t.Errorf("path %q", got)
	}
	if string(b.Manifests[0]) != `{"apiVersion":"v1","kind":"Service","metadata":{"name":"router","namespace":"hypershift-sharedingress"}}` {
		t.Errorf("manifest %s", b.Manifests[0])
	}
	if b.DeleteOption.PropagationPolicy != workv1.DeletePropagationPolicyTypeOrphan {
		t.Errorf("delete option %v", b.DeleteOption)
	}
}

func TestParseManifestWorkUsesConsumerFlag(t *testing.T) {
	src := `apiVersion: work.open-cluster-management.io/v1
kind: ManifestWork
metadata:
  name: w1
spec:
  workload:
    manifests:
    - {apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: default}}
`
	docs, err := parseBundles("w.yaml", []byte(src), "c9")
	if err != nil {
		t.Fatal(err)
	}
	if b := docs[0].Bundle; b.Name != "w1" || b.ConsumerName != "c9" || b.Metadata.Namespace != "c9" {
		t.Errorf("got name %q consumer %q namespace %q; want w1, c9, c9", b.Name, b.ConsumerName, b.Metadata.Namespace)
	}
	if _, err := parseBundles("w.yaml", []byte(src), ""); err == nil ||
		!strings.Contains(err.Error(), "line 3: field metadata.namespace: required (or pass --consumer)") {
		t.Errorf("without consumer: got %v", err)
	}
}

const goodDoc = `name: a
consumer_name: dev
manifests:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a, namespace: default}
`

func TestParseErrorsNameDocumentLineAndField(t *testing.T) {
	cases := map[string]struct {
		src  string
		want []string
	}{
		"unknown top-level field": {
			src:  goodDoc + "---\nname: b\nconsumer_name: dev\nmanifestz: []\n",
			want: []string{"bad.yaml, document 2 (line 8): line 10: field manifestz: unknown field"},
		},
		"unknown nested field": {
			src: goodDoc + `manifest_configs:
- resourceIdentifier: {resource: configmaps, name: a, namespace: default}
  feedbackRulez: []
`,
			want: []string{"document 1 (line 1): line 9: field feedbackRulez: unknown field"},
		},
		"bad update strategy": {
			src: goodDoc + `manifest_configs:
- resourceIdentifier: {resource: configmaps, name: a, namespace: default}
  updateStrategy:
    type: Sometimes
`,
			want: []string{"line 10: field manifest_configs[0].updateStrategy.type", "Sometimes"},
		},
		"manifest without kind": {
			src: `name: a
consumer_name: dev
manifests:
- apiVersion: v1
  metadata: {name: a}
- apiVersion: v1
  metadata: {name: b}
`,
			want: []string{"line 6: field manifests[1]", "kind"},
		},
		"wrong type": {
			src:  "name: a\nconsumer_name: dev\nmanifests: 3\n",
			want: []string{"line 3: field manifests: want"},
		},
		"bad JSONPath": {
			src: goodDoc + `manifest_configs:
- resourceIdentifier: {resource: configmaps, name: a, namespace: default}
  feedbackRules:
  - type: JSONPaths
    jsonPaths:
    - {name: x, path: ".data[0"}
`,
			want: []string{"line 12: field manifest_configs[0].feedbackRules[0].jsonPaths[0].path"},
		},
		"yaml syntax": {
			src:  "name: a\n  bad: [\n",
			want: []string{"bad.yaml, document 1: yaml: line"},
		},
		"json syntax": {
			src:  "{\n\"name\": \"a\",\n\"consumer_name\": \"dev\",,\n}",
			want: []string{"bad.yaml: line 3: invalid JSON"},
		},
		"not an object": {
			src:  "- 1\n- 2\n",
			want: []string{"want a bundle object"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parseBundles("bad.yaml", []byte(tc.src), "")
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseJSONListAndTabs(t *testing.T) {
	src := "{\"kind\":\"ResourceBundleList\",\"items\":[\n\t{\"id\":\"x\",\"kind\":\"ResourceBundle\",\"version\":4,\"name\":\"a\",\"consumer_name\":\"dev\",\"created_at\":\"2026-01-01T00:00:00Z\",\n\t \"manifests\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\",\"namespace\":\"default\"}}]},\n\t{\"name\":\"b\",\"consumer_name\":\"dev\",\"manifests\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\",\"namespace\":\"default\"}}]}]}"
	docs, err := parseBundles("list.json", []byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0].Bundle.Name != "a" || docs[1].Bundle.Name != "b" {
		t.Fatalf("got %+v", docs)
	}
	if !strings.Contains(docs[1].Source, "(line 4)") {
		t.Errorf("source %q; want line 4", docs[1].Source)
	}
}

func TestParseMultiDocumentSkipsEmpty(t *testing.T) {
	src := "---\n" + goodDoc + "---\n---\n" + strings.Replace(goodDoc, "name: a", "name: b", 1)
	docs, err := parseBundles("m.yaml", []byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || !strings.Contains(docs[1].Source, "(line 10)") {
		t.Fatalf("got %d docs, second %q", len(docs), docs[len(docs)-1].Source)
	}
	if _, err := parseBundles("e.yaml", []byte("---\n"), ""); err == nil || !strings.Contains(err.Error(), "no bundles") {
		t.Errorf("empty file: got %v", err)
	}
}

package cli

import (
	"testing"
)

// FuzzReadBundles parses any file as `baton apply -f` does: YAML or JSON,
// one or many documents, REST bundles, ManifestWorks and consumers. Bad
// input must be an error, never a panic, and an accepted bundle is named.
func FuzzReadBundles(f *testing.F) {
	for _, s := range []string{
		"consumer_name: mgmt-1\nname: web\nmanifests:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a, namespace: default}\n",
		"apiVersion: work.open-cluster-management.io/v1\nkind: ManifestWork\nmetadata: {name: w}\nspec:\n  workload:\n    manifests:\n    - {apiVersion: v1, kind: Secret, metadata: {name: s}}\n",
		"kind: Consumer\nname: mgmt-2\nlabels: {env: prod}\n---\nname: x\nmanifests: []\n",
		`{"kind":"ResourceBundleList","items":[{"name":"a","consumer_name":"c","manifests":[]}]}`,
		`[{"name":"a"},{"name":"b"}]`, "- a\n- b", "a: &x [*x]", "{", "\t{}", "---\n---\n", "!!binary AAAA",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, bs, err := ReadBundles("f.yaml", data, "mgmt-1")
		if err != nil {
			return
		}
		if len(cs)+len(bs) == 0 {
			t.Fatal("no error and nothing read")
		}
	})
}

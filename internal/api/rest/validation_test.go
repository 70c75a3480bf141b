package rest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/pkg/api"
)

// badBundle is one invalid bundle body and what the answer must say.
type badBundle struct {
	name    string
	body    func() any // a string is sent as is
	status  int
	code    string
	mention []string
}

func mutate(f func(m map[string]any)) func() any {
	return func() any {
		m := bundleBody("mgmt-1", "w1")
		f(m)
		return m
	}
}

func raw(s string) func() any { return func() any { return s } }

func manifest(m map[string]any, i int) map[string]any {
	return m["manifests"].([]any)[i].(map[string]any)
}
func config(m map[string]any) map[string]any {
	return m["manifest_configs"].([]any)[0].(map[string]any)
}

func badBundles() []badBundle {
	big := strings.Repeat("x", limits.BundleSpecBytes)
	return []badBundle{
		{"malformed JSON", raw(`{"consumer_name": "mgmt-1",`), 400, "maestro-17", []string{"malformed JSON"}},
		{"syntax error", raw(`{"consumer_name": mgmt-1}`), 400, "maestro-17", []string{"malformed JSON at byte"}},
		{"empty body", raw(``), 400, "maestro-17", []string{"empty"}},
		{"array body", raw(`[]`), 400, "maestro-17", []string{"JSON object"}},
		{"unknown field", mutate(func(m map[string]any) { m["spec"] = map[string]any{} }), 400, "maestro-17", []string{`unknown field "spec"`}},
		{"unknown nested field", mutate(func(m map[string]any) { config(m)["updateStrategy"].(map[string]any)["mode"] = "x" }), 400, "maestro-17", []string{`unknown field "mode"`}},
		{"wrong type", mutate(func(m map[string]any) { m["manifests"] = "x" }), 400, "maestro-17", []string{"manifests"}},
		{"no metadata.name", mutate(func(m map[string]any) { delete(manifest(m, 0)["metadata"].(map[string]any), "name") }), 400, "maestro-8", []string{"manifests[0].metadata.name", "required"}},
		{"generateName", mutate(func(m map[string]any) {
			md := manifest(m, 1)["metadata"].(map[string]any)
			delete(md, "name")
			md["generateName"] = "cfg-"
		}), 400, "maestro-8", []string{"manifests[1].metadata.generateName"}},
		{"no apiVersion", mutate(func(m map[string]any) { delete(manifest(m, 0), "apiVersion") }), 400, "maestro-8", []string{"manifests[0].apiVersion"}},
		{"no kind", mutate(func(m map[string]any) { delete(manifest(m, 1), "kind") }), 400, "maestro-8", []string{"manifests[1].kind"}},
		{"no manifests", mutate(func(m map[string]any) { m["manifests"] = []any{} }), 400, "maestro-8", []string{"manifests", "at least one"}},
		{"over 500 KiB", mutate(func(m map[string]any) {
			manifest(m, 1)["data"] = map[string]any{"blob": big[:limits.BundleSpecBytes-500]}
		}), 400, "maestro-8", []string{"manifests", "500 KiB"}},
		{"body over the limit", mutate(func(m map[string]any) { manifest(m, 1)["data"] = map[string]any{"a": big, "b": big, "c": big} }), 413, "maestro-8", []string{"request body", "larger than"}},
		{"invalid JSONPath", mutate(func(m map[string]any) {
			config(m)["feedbackRules"].([]any)[0].(map[string]any)["jsonPaths"].([]any)[0].(map[string]any)["path"] = ".status.loadBalancer.ingress[0"
		}), 400, "maestro-8", []string{"manifest_configs[0].feedbackRules[0].jsonPaths[0].path", "invalid JSONPath"}},
		{"unknown update strategy", mutate(func(m map[string]any) {
			config(m)["updateStrategy"] = map[string]any{"type": "Replace"}
		}), 400, "maestro-8", []string{"manifest_configs[0].updateStrategy.type", "Replace"}},
		{"serverSideApply without its type", mutate(func(m map[string]any) {
			config(m)["updateStrategy"].(map[string]any)["type"] = "Update"
		}), 400, "maestro-8", []string{"manifest_configs[0].updateStrategy.serverSideApply", "ServerSideApply"}},
		{"unknown propagation policy", mutate(func(m map[string]any) {
			m["delete_option"] = map[string]any{"propagationPolicy": "Background"}
		}), 400, "maestro-8", []string{"delete_option.propagationPolicy", "Background"}},
		{"unknown feedback type", mutate(func(m map[string]any) {
			config(m)["feedbackRules"].([]any)[0].(map[string]any)["type"] = "Magic"
		}), 400, "maestro-8", []string{"feedbackRules[0].type"}},
		{"consumer does not exist", mutate(func(m map[string]any) { m["consumer_name"] = "mgmt-9" }), 400, "maestro-8", []string{"consumer_name", "mgmt-9"}},
		{"no consumer", mutate(func(m map[string]any) { delete(m, "consumer_name") }), 400, "maestro-8", []string{"consumer_name", "required"}},
		{"invalid consumer name", mutate(func(m map[string]any) { m["consumer_name"] = "MGMT 1" }), 400, "maestro-8", []string{"consumer_name"}},
		{"invalid bundle name", mutate(func(m map[string]any) { m["name"] = "a/b" }), 400, "maestro-8", []string{"name", "a/b"}},
		{"invalid metadata.name", mutate(func(m map[string]any) { m["metadata"].(map[string]any)["name"] = "Shared Ingress" }), 400, "maestro-8", []string{"metadata.name"}},
		{"invalid label", mutate(func(m map[string]any) {
			m["metadata"].(map[string]any)["labels"] = map[string]any{"app": "a b"}
		}), 400, "maestro-8", []string{"metadata.labels.app"}},
		{"no name at all", mutate(func(m map[string]any) { delete(m["metadata"].(map[string]any), "name") }), 400, "maestro-8", []string{"metadata.name", "required"}},
	}
}

// TestBundleValidation sends every bad body to POST, PUT and PATCH and
// checks the 4xx names the field and nothing changed.
func TestBundleValidation(t *testing.T) {
	each(t, func(t *testing.T, c *client) {
		c.createConsumer("mgmt-1")
		existing := c.createBundle(bundleBody("mgmt-1", "w1"))
		before := snapshot(t, c.st)
		for _, tc := range badBundles() {
			t.Run(tc.name, func(t *testing.T) {
				c := *c
				c.t = t
				c.expectError(tc.status, tc.code, "POST", bundles, tc.body(), tc.mention...)
				unchanged(t, c.st, before, "POST "+tc.name)
				if tc.name == "consumer does not exist" || tc.name == "no consumer" || tc.name == "invalid consumer name" ||
					tc.name == "invalid bundle name" || tc.name == "invalid metadata.name" || tc.name == "no name at all" {
					return // identity fields: PUT answers "cannot change" instead, tested elsewhere
				}
				c.expectError(tc.status, tc.code, "PUT", bundles+"/"+existing.ID, tc.body(), tc.mention...)
				unchanged(t, c.st, before, "PUT "+tc.name)
				if m, ok := tc.body().(map[string]any); ok {
					delete(m, "consumer_name") // PATCH with the bad member only
					c.expectError(tc.status, tc.code, "PATCH", bundles+"/"+existing.ID, m, tc.mention...)
					unchanged(t, c.st, before, "PATCH "+tc.name)
				}
			})
		}
		got := c.getBundle(existing.ID)
		if got.Version != existing.Version {
			t.Fatalf("bundle version %d after rejected writes; want %d", got.Version, existing.Version)
		}
	})
}

func TestErrorBody(t *testing.T) {
	each(t, func(t *testing.T, c *client) {
		r := c.do("GET", bundles+"/missing", nil)
		var e map[string]any
		if err := json.Unmarshal(r.body, &e); err != nil || r.status != http.StatusNotFound {
			t.Fatalf("got %s", r)
		}
		for _, k := range []string{"kind", "id", "href", "code", "reason", "operation_id"} {
			if _, ok := e[k]; !ok {
				t.Fatalf("error body %s lacks %q", r.body, k)
			}
		}
		if r.header.Get("X-Operation-ID") != e["operation_id"] {
			t.Fatalf("X-Operation-ID %q; body operation_id %v", r.header.Get("X-Operation-ID"), e["operation_id"])
		}
		if e["code"] != "maestro-7" || e["href"] != api.BasePath+"/errors/7" || e["id"] != "7" {
			t.Fatalf("not-found body %s", r.body)
		}
		c.expectError(http.StatusNotFound, "maestro-7", "GET", api.BasePath+"/nothing-here", nil, "no such path")
		c.expectError(http.StatusMethodNotAllowed, "maestro-17", "POST", bundles+"/x", "{}", "not allowed")
	})
}

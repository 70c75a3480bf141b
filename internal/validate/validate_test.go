package validate

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/pkg/api"
)

const validBundle = `{
  "consumer_name": "mgmt-1", "name": "shared-ingress",
  "metadata": {"name": "shared-ingress", "namespace": "mgmt-1", "labels": {"app": "ingress"}},
  "manifests": [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "router", "namespace": "hypershift-sharedingress"}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "router", "namespace": "hypershift-sharedingress"}}
  ],
  "manifest_configs": [{
    "resourceIdentifier": {"group": "", "resource": "services", "name": "router", "namespace": "hypershift-sharedingress"},
    "updateStrategy": {"type": "ServerSideApply", "serverSideApply": {"force": true, "fieldManager": "work-agent-x",
      "ignoreFields": [{"condition": "OnSpokeChange", "jsonPaths": [".spec.replicas"]}]}},
    "feedbackRules": [{"type": "JSONPaths", "jsonPaths": [{"name": "ip", "path": ".status.loadBalancer.ingress[0].ip"},
                                                          {"name": "all", "path": "@"}]},
                      {"type": "WellKnownStatus"}],
    "conditionRules": [{"condition": "Complete", "type": "CEL", "celExpressions": ["true"]}],
    "feedbackScrapeType": "Watch"
  }],
  "executor": {"subject": {"type": "ServiceAccount", "serviceAccount": {"namespace": "deployers", "name": "ingress"}}},
  "delete_option": {"propagationPolicy": "SelectivelyOrphan",
    "selectivelyOrphans": {"orphaningRules": [{"resource": "services", "name": "router"}]}}
}`

func bundle(t *testing.T, mutate func(m map[string]any)) *api.ResourceBundle {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(validBundle), &m); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(m)
	}
	raw, _ := json.Marshal(m)
	var b api.ResourceBundle
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	return &b
}

func obj(m map[string]any, path ...any) map[string]any {
	var cur any = m
	for _, p := range path {
		switch p := p.(type) {
		case string:
			cur = cur.(map[string]any)[p]
		case int:
			cur = cur.([]any)[p]
		}
	}
	return cur.(map[string]any)
}

func TestBundleValid(t *testing.T) {
	if err := Bundle(bundle(t, nil), limits.GRPC); err != nil {
		t.Fatalf("valid bundle: %v", err)
	}
}

func TestBundleInvalid(t *testing.T) {
	cfg := func(m map[string]any) map[string]any { return obj(m, "manifest_configs", 0) }
	tests := map[string]struct {
		mutate func(m map[string]any)
		field  string // field the error must name
		msg    string // part of the message
	}{
		"no consumer":       {func(m map[string]any) { delete(m, "consumer_name") }, "consumer_name", "required"},
		"bad consumer name": {func(m map[string]any) { m["consumer_name"] = "Mgmt_1" }, "consumer_name", "not a valid name"},
		"no name":           {func(m map[string]any) { m["name"] = "" }, "name", "required"},
		"bad name":          {func(m map[string]any) { m["name"] = "a b" }, "name", "not a valid name"},
		"long name":         {func(m map[string]any) { m["name"] = strings.Repeat("a", 254) }, "name", "not a valid name"},
		"bad source":        {func(m map[string]any) { m["source"] = "-x" }, "source", "not a valid name"},
		"bad namespace":     {func(m map[string]any) { obj(m, "metadata")["namespace"] = "a.b" }, "metadata.namespace", "not a valid namespace"},
		"bad label":         {func(m map[string]any) { obj(m, "metadata")["labels"] = map[string]any{"a b": "x"} }, "metadata.labels", `key "a b"`},
		"bad label value":   {func(m map[string]any) { obj(m, "metadata")["labels"] = map[string]any{"a": "x y"} }, "metadata.labels.a", "value"},
		"no manifests":      {func(m map[string]any) { m["manifests"] = []any{} }, "manifests", "at least one"},
		"manifest string":   {func(m map[string]any) { m["manifests"] = []any{"x"} }, "manifests[0]", "JSON object"},
		"no metadata.name":  {func(m map[string]any) { delete(obj(m, "manifests", 1, "metadata"), "name") }, "manifests[1].metadata.name", "required"},
		"no metadata":       {func(m map[string]any) { delete(obj(m, "manifests", 1), "metadata") }, "manifests[1].metadata", "required"},
		"generateName": {func(m map[string]any) {
			md := obj(m, "manifests", 0, "metadata")
			delete(md, "name")
			md["generateName"] = "router-"
		}, "manifests[0].metadata.generateName", "not supported"},
		"no apiVersion":       {func(m map[string]any) { delete(obj(m, "manifests", 0), "apiVersion") }, "manifests[0].apiVersion", "required"},
		"no kind":             {func(m map[string]any) { delete(obj(m, "manifests", 0), "kind") }, "manifests[0].kind", "required"},
		"numeric name":        {func(m map[string]any) { obj(m, "manifests", 0, "metadata")["name"] = 3 }, "manifests[0].metadata.name", "must be a string"},
		"duplicate manifest":  {func(m map[string]any) { m["manifests"] = append(m["manifests"].([]any), obj(m, "manifests", 0)) }, "manifests[2]", "same object as manifests[0]"},
		"bad jsonpath":        {func(m map[string]any) { obj(cfg(m), "feedbackRules", 0, "jsonPaths", 0)["path"] = ".status[" }, "manifest_configs[0].feedbackRules[0].jsonPaths[0].path", "invalid JSONPath"},
		"empty jsonpath":      {func(m map[string]any) { obj(cfg(m), "feedbackRules", 0, "jsonPaths", 0)["path"] = "" }, "manifest_configs[0].feedbackRules[0].jsonPaths[0].path", "required"},
		"jsonpath name twice": {func(m map[string]any) { obj(cfg(m), "feedbackRules", 0, "jsonPaths", 1)["name"] = "ip" }, "manifest_configs[0].feedbackRules[0].jsonPaths[1].name", "used twice"},
		"jsonpaths missing":   {func(m map[string]any) { delete(obj(cfg(m), "feedbackRules", 0), "jsonPaths") }, "manifest_configs[0].feedbackRules[0].jsonPaths", "at least one"},
		"bad feedback type":   {func(m map[string]any) { obj(cfg(m), "feedbackRules", 1)["type"] = "Everything" }, "manifest_configs[0].feedbackRules[1].type", "unknown feedback rule type"},
		"wellknown paths": {func(m map[string]any) {
			obj(cfg(m), "feedbackRules", 1)["jsonPaths"] = []any{map[string]any{"name": "a", "path": ".a"}}
		}, "manifest_configs[0].feedbackRules[1].jsonPaths", "only allowed with type JSONPaths"},
		"bad update type": {func(m map[string]any) { obj(cfg(m), "updateStrategy")["type"] = "Replace" }, "manifest_configs[0].updateStrategy.type", "unknown update strategy"},
		"ssa with update": {func(m map[string]any) { obj(cfg(m), "updateStrategy")["type"] = "Update" }, "manifest_configs[0].updateStrategy.serverSideApply", "only allowed with type ServerSideApply"},
		"ssa field manager": {func(m map[string]any) {
			obj(cfg(m), "updateStrategy", "serverSideApply")["fieldManager"] = strings.Repeat("m", 129)
		}, "manifest_configs[0].updateStrategy.serverSideApply.fieldManager", "longer than 128"},
		"ssa ignore cond": {func(m map[string]any) {
			obj(cfg(m), "updateStrategy", "serverSideApply", "ignoreFields", 0)["condition"] = "Always"
		}, "manifest_configs[0].updateStrategy.serverSideApply.ignoreFields[0].condition", "unknown condition"},
		"ssa ignore path": {func(m map[string]any) {
			obj(cfg(m), "updateStrategy", "serverSideApply", "ignoreFields", 0)["jsonPaths"] = []any{"{.a"}
		}, "manifest_configs[0].updateStrategy.serverSideApply.ignoreFields[0].jsonPaths[0]", "JSONPath"},
		"ssa ignore pointer": {func(m map[string]any) {
			obj(cfg(m), "updateStrategy", "serverSideApply", "ignoreFields", 0)["jsonPointers"] = []any{"spec/replicas"}
		}, "manifest_configs[0].updateStrategy.serverSideApply.ignoreFields[0].jsonPointers[0]", "must start with \"/\""},
		"ssa ignore jq": {func(m map[string]any) {
			obj(cfg(m), "updateStrategy", "serverSideApply", "ignoreFields", 0)["jqPathExpressions"] = []any{".spec["}
		}, "manifest_configs[0].updateStrategy.serverSideApply.ignoreFields[0].jqPathExpressions[0]", "jq expression"},
		"ssa ignore nothing": {func(m map[string]any) {
			delete(obj(cfg(m), "updateStrategy", "serverSideApply", "ignoreFields", 0), "jsonPaths")
		}, "manifest_configs[0].updateStrategy.serverSideApply.ignoreFields[0]", "names no field"},
		"no resource":        {func(m map[string]any) { obj(cfg(m), "resourceIdentifier")["resource"] = "" }, "manifest_configs[0].resourceIdentifier.resource", "required"},
		"no identifier name": {func(m map[string]any) { obj(cfg(m), "resourceIdentifier")["name"] = "" }, "manifest_configs[0].resourceIdentifier.name", "required"},
		"bad condition rule": {func(m map[string]any) { obj(cfg(m), "conditionRules", 0)["type"] = "Magic" }, "manifest_configs[0].conditionRules[0].type", "unknown condition rule type"},
		"cel no expressions": {func(m map[string]any) { obj(cfg(m), "conditionRules", 0)["celExpressions"] = []any{} }, "manifest_configs[0].conditionRules[0].celExpressions", "at least one"},
		"bad scrape type":    {func(m map[string]any) { cfg(m)["feedbackScrapeType"] = "Push" }, "manifest_configs[0].feedbackScrapeType", "unknown scrape type"},
		"cel syntax": {func(m map[string]any) { obj(cfg(m), "conditionRules", 0)["celExpressions"] = []any{"object.status >"} },
			"manifest_configs[0].conditionRules[0].celExpressions[0]", "Syntax error"},
		"cel not bool": {func(m map[string]any) { obj(cfg(m), "conditionRules", 0)["celExpressions"] = []any{"'x'"} },
			"manifest_configs[0].conditionRules[0].celExpressions[0]", "not bool"},
		"cel message not string": {func(m map[string]any) { obj(cfg(m), "conditionRules", 0)["messageExpression"] = "result" },
			"manifest_configs[0].conditionRules[0].messageExpression", "not string"},
		"cel without condition": {func(m map[string]any) { obj(cfg(m), "conditionRules", 0)["condition"] = "" },
			"manifest_configs[0].conditionRules[0].condition", "required for CEL"},
		"rule sets Available": {func(m map[string]any) { obj(cfg(m), "conditionRules", 0)["condition"] = "Available" },
			"manifest_configs[0].conditionRules[0].condition", "set by the agent itself"},
		"rule condition invalid": {func(m map[string]any) { obj(cfg(m), "conditionRules", 0)["condition"] = "not ok!" },
			"manifest_configs[0].conditionRules[0].condition", "not a valid condition type"},
		"rule condition twice": {func(m map[string]any) {
			cfg(m)["conditionRules"] = append(cfg(m)["conditionRules"].([]any), map[string]any{"type": "WellKnownConditions"})
		}, "manifest_configs[0].conditionRules[1].condition", "set by another rule"},
		"well-known with cel": {func(m map[string]any) { obj(cfg(m), "conditionRules", 0)["type"] = "WellKnownConditions" },
			"manifest_configs[0].conditionRules[0].celExpressions", "only allowed with type CEL"},
		"jsonpath bad version": {func(m map[string]any) { obj(cfg(m), "feedbackRules", 0, "jsonPaths", 0)["version"] = "apps/v1" },
			"manifest_configs[0].feedbackRules[0].jsonPaths[0].version", "not an API version"},
		"executor type":        {func(m map[string]any) { obj(m, "executor", "subject")["type"] = "User" }, "executor.subject.type", "unknown subject type"},
		"executor no sa":       {func(m map[string]any) { delete(obj(m, "executor", "subject"), "serviceAccount") }, "executor.subject.serviceAccount", "required"},
		"executor bad sa name": {func(m map[string]any) { obj(m, "executor", "subject", "serviceAccount")["name"] = "Not_OK" }, "executor.subject.serviceAccount.name", "not a valid service account name"},
		"bad propagation":      {func(m map[string]any) { obj(m, "delete_option")["propagationPolicy"] = "Background" }, "delete_option.propagationPolicy", "unknown propagation policy"},
		"orphans wrong":        {func(m map[string]any) { obj(m, "delete_option")["propagationPolicy"] = "Orphan" }, "delete_option.selectivelyOrphans", "only allowed"},
		"orphan rule no name": {func(m map[string]any) {
			obj(m, "delete_option", "selectivelyOrphans", "orphaningRules", 0)["name"] = ""
		}, "delete_option.selectivelyOrphans.orphaningRules[0].name", "required"},
		"negative ttl": {func(m map[string]any) { obj(m, "delete_option")["ttlSecondsAfterFinished"] = -1 }, "delete_option.ttlSecondsAfterFinished", "negative"},
		"too big": {func(m map[string]any) {
			obj(m, "manifests", 0)["data"] = map[string]any{"blob": strings.Repeat("x", limits.BundleSpecBytes)}
		}, "manifests", "the limit is 512000 bytes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := Bundle(bundle(t, tc.mutate), limits.GRPC)
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Bundle() = %v; want Errors", err)
			}
			for _, e := range es {
				if e.Field == tc.field && strings.Contains(e.Msg, tc.msg) {
					return
				}
			}
			t.Fatalf("Bundle() = %v; want an error on %s containing %q", err, tc.field, tc.msg)
		})
	}
}

func TestBundleJustUnderLimit(t *testing.T) {
	b := bundle(t, func(m map[string]any) {
		obj(m, "manifests", 0)["data"] = map[string]any{"blob": strings.Repeat("x", limits.BundleSpecBytes-3000)}
	})
	if err := Bundle(b, limits.GRPC); err != nil {
		t.Fatalf("bundle under the limit: %v", err)
	}
}

func TestConsumer(t *testing.T) {
	tests := map[string]struct {
		name   string
		labels map[string]string
		field  string // "" = valid
	}{
		"valid":        {"mgmt-1", map[string]string{"region": "eu", "example.com/tier": "gold"}, ""},
		"dotted":       {"cluster.eu-west.example", nil, ""},
		"empty":        {"", nil, "name"},
		"upper":        {"Mgmt", nil, "name"},
		"underscore":   {"mgmt_1", nil, "name"},
		"quote":        {"a'b", nil, "name"},
		"bad key":      {"c", map[string]string{"-x": "y"}, "labels"},
		"bad value":    {"c", map[string]string{"x": strings.Repeat("v", 64)}, "labels.x"},
		"too many":     {"c", manyLabels(MaxLabels + 1), "labels"},
		"leading dash": {"-c", nil, "name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := Consumer(tc.name, tc.labels)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Consumer(%q) = %v; want nil", tc.name, err)
				}
				return
			}
			var es Errors
			if !errors.As(err, &es) || es[0].Field != tc.field {
				t.Fatalf("Consumer(%q) = %v; want an error on %s", tc.name, err, tc.field)
			}
		})
	}
}

func manyLabels(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[strings.Repeat("k", 1+i%50)+string(rune('a'+i/50))] = "v"
	}
	return m
}

func TestJSONPath(t *testing.T) {
	for p, ok := range map[string]bool{
		".status.loadBalancer.ingress[0].ip": true,
		"@":                                  true,
		".status.conditions[?(@.type==\"Ready\")]":  true,
		".metadata.labels['app\\.kubernetes\\.io']": true,
		".status[":    false,
		"{.a}":        false,
		"   ":         false,
		".a[?(@.x==]": false,
	} {
		if err := JSONPath(p); (err == nil) != ok {
			t.Errorf("JSONPath(%q) = %v; want ok=%v", p, err, ok)
		}
	}
}

// TestBundleTransportLimit: a spec under its own limit whose annotations
// push the spec message over what MQTT carries is refused for MQTT, with
// the limit named, and accepted for gRPC.
func TestBundleTransportLimit(t *testing.T) {
	b := bundle(t, func(m map[string]any) {
		obj(m, "manifests", 0)["data"] = map[string]any{"blob": strings.Repeat("x", limits.BundleSpecBytes-3000)}
	})
	b.Metadata.Annotations = map[string]string{"example.com/big": strings.Repeat("a", 200<<10)}
	if err := Bundle(b, limits.GRPC); err != nil {
		t.Fatalf("gRPC: %v; want accepted (4 MiB carry it)", err)
	}
	if err := Bundle(b, ""); err != nil {
		t.Fatalf("no transport: %v; want accepted", err)
	}
	err := Bundle(b, limits.MQTT)
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Field != "manifests" ||
		!strings.Contains(es[0].Msg, "mqtt transport carries at most 524288 bytes (512 KiB)") {
		t.Fatalf("MQTT: %v; want one error on manifests naming the 512 KiB limit", err)
	}
	// Without the annotations it fits.
	b.Metadata.Annotations = nil
	if err := Bundle(b, limits.MQTT); err != nil {
		t.Fatalf("MQTT without annotations: %v", err)
	}
}

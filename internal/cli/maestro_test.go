package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/baton-dev/baton/pkg/api"
)

// fakeMaestro answers like a Maestro server: the recorded bundle list of
// ../doctor/testdata, found by search only through name (which is the id),
// no resync, no agent or freshness fields.
func fakeMaestro(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../doctor/testdata/maestro-resource-bundles.json")
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.ReplaceAll(data, []byte("{{IP}}"), []byte("20.1.2.3"))
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		search := r.URL.Query().Get("search")
		switch {
		case r.URL.Path == api.BasePath+"/resource-bundles" && strings.HasPrefix(search, "name="):
			_, _ = w.Write([]byte(`{"kind":"ResourceBundleList","page":1,"size":0,"total":0,"items":[]}`))
		case r.URL.Path == api.BasePath+"/resource-bundles":
			_, _ = w.Write(data)
		case r.URL.Path == api.BasePath+"/consumers":
			_, _ = w.Write([]byte(`{"kind":"ConsumerList","page":1,"size":1,"total":1,"items":[{"id":"c1","kind":"Consumer","href":"/api/maestro/v1/consumers/c1","name":"mgmt-1","created_at":"2026-05-01T09:00:00Z","updated_at":"2026-05-01T09:00:00Z"}]}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Error","id":"7","href":"/api/maestro/v1/errors/7","code":"maestro-7","reason":"not found"}`))
		}
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

func TestVerbsAgainstMaestro(t *testing.T) {
	srv := fakeMaestro(t)
	out := must(t, srv, "get", "bundles")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "dns-config ") || !strings.HasPrefix(lines[2], "shared-ingress ") {
		t.Fatalf("bundles by work name:\n%s", out)
	}
	if f := strings.Fields(lines[2]); f[3] != "True" || f[4] != "True" || f[5] != "-" {
		t.Errorf("row %q: want True True -", lines[2])
	}
	out = must(t, srv, "describe", "bundle", "shared-ingress", "--consumer", "mgmt-1")
	for _, want := range []string{"55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "Agent:", "<not reported by this server>",
		"Freshness:", "<no verdict from this server>", "Sequence ID:", "2000808179721572352",
		"Service hypershift-sharedingress/router (v1, ordinal 0)", "ip = 20.1.2.3 (String)"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	fails(t, srv, []string{"not found", "HTTP 404", "maestro-7", "no resync endpoint"}, "resync", "bundle/shared-ingress")
}

// TestMaestroVerbs runs a runbook written for Maestro's CLI (noun first)
// against a real server.
func TestMaestroVerbs(t *testing.T) {
	srv := startServer(t)
	must(t, srv, "consumer", "create", "mgmt-1", "--labels", "region=eastus")
	if out := must(t, srv, "consumer", "list"); !strings.Contains(out, "mgmt-1") {
		t.Fatalf("consumer list:\n%s", out)
	}
	must(t, srv, "consumer", "update", "mgmt-1", "--labels=region=westus")
	if out := must(t, srv, "consumer", "get", "mgmt-1", "-o", "json"); !strings.Contains(out, `"westus"`) {
		t.Fatalf("consumer get after update:\n%s", out)
	}
	dir := t.TempDir()
	file := dir + "/b.yaml"
	if err := os.WriteFile(file, []byte(`name: web
consumer_name: mgmt-1
manifests:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: web, namespace: default}, data: {a: b}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, srv, "resourcebundle", "apply", "-f", file)
	if out := must(t, srv, "resourcebundle", "list", "--consumer", "mgmt-1"); !strings.Contains(out, "web") {
		t.Fatalf("resourcebundle list:\n%s", out)
	}
	if out := must(t, srv, "resourcebundle", "get", "web", "-o", "json"); !strings.Contains(out, `"consumer_name": "mgmt-1"`) {
		t.Fatalf("resourcebundle get:\n%s", out)
	}
	if out := must(t, srv, "resourcebundle", "status", "--consumer", "mgmt-1", "web"); !strings.Contains(out, "mgmt-1") {
		t.Fatalf("resourcebundle status:\n%s", out)
	}
	if out := must(t, srv, "resourcebundle", "delete", "web", "-c", "mgmt-1"); !strings.Contains(out, "deleting") {
		t.Fatalf("resourcebundle delete:\n%s", out)
	}
	if _, _, err := baton(t, "", "consumer", "create", "--server", srv); err == nil || !strings.Contains(err.Error(), "NAME is required") {
		t.Fatalf("consumer create without a name: %v", err)
	}
}

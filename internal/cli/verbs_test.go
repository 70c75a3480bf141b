package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/baton-dev/baton/internal/server"
	"github.com/baton-dev/baton/internal/server/servertest"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

// startServer runs a real baton server (REST over a SQLite store) on a
// loopback port until the test ends and returns its URL.
func startServer(t *testing.T) string {
	t.Helper()
	url, _ := startServerStore(t)
	return url
}

// startServerStore is startServer that also returns the store, so that a
// test can record what an agent would report.
func startServerStore(t *testing.T) (string, store.Store) {
	t.Helper()
	st := storetest.NewSQLite(t)
	return servertest.Start(t, server.Options{Store: st}), st
}

// baton runs the command line in-process with the given stdin.
func baton(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	t.Setenv(EnvServer, "")
	t.Setenv(EnvConfig, filepath.Join(t.TempDir(), "none.yaml"))
	if os.Getenv(envTestToken) == "" {
		t.Setenv(EnvToken, "")
	}
	root := NewRoot()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// must runs baton and fails the test on an error.
func must(t *testing.T, server string, args ...string) string {
	t.Helper()
	out, errOut, err := baton(t, "", append(args, "--server", server)...)
	if err != nil {
		t.Fatalf("baton %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func fails(t *testing.T, server string, wants []string, args ...string) {
	t.Helper()
	out, _, err := baton(t, "", append(args, "--server", server)...)
	if err == nil {
		t.Fatalf("baton %s succeeded:\n%s", strings.Join(args, " "), out)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("baton %s: error %q lacks %q", strings.Join(args, " "), err, w)
		}
	}
}

func TestApplyGetDescribeDelete(t *testing.T) {
	srv := startServer(t)
	out := must(t, srv, "apply", "-f", "../../examples/")
	for _, want := range []string{"consumer/dev created", "bundle/shared-ingress created", "bundle/hello-deployment created",
		"bundle/app-config created", "bundle/widgets created"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasPrefix(out, "consumer/dev created\n") {
		t.Errorf("consumer not applied first:\n%s", out)
	}
	if out := must(t, srv, "apply", "-f", "../../examples/"); strings.Count(out, "unchanged") != 5 {
		t.Errorf("second apply:\n%s", out)
	}

	t.Run("update by name at the current version", func(t *testing.T) {
		data, err := os.ReadFile("../../examples/shared-ingress.yaml")
		if err != nil {
			t.Fatal(err)
		}
		changed := strings.Replace(string(data), "app: shared-ingress", "app: shared-ingress\n    tier: edge", 1)
		out, _, err := baton(t, changed, "apply", "-f", "-", "--server", srv)
		if err != nil || out != "bundle/shared-ingress configured\n" {
			t.Fatalf("got %q, %v", out, err)
		}
		var b api.ResourceBundle
		if err := json.Unmarshal([]byte(must(t, srv, "get", "bundle", "shared-ingress", "-o", "json")), &b); err != nil {
			t.Fatal(err)
		}
		if b.Version != 2 || b.Metadata.Labels["tier"] != "edge" || b.ConsumerName != "dev" {
			t.Errorf("after update: version %d labels %v", b.Version, b.Metadata.Labels)
		}
	})

	t.Run("table", func(t *testing.T) {
		out := must(t, srv, "get", "bundles")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 5 || strings.Join(strings.Fields(lines[0]), " ") != "NAME CONSUMER VERSION APPLIED AVAILABLE FRESHNESS AGE" {
			t.Fatalf("got\n%s", out)
		}
		if f := strings.Fields(lines[1]); f[0] != "app-config" || f[1] != "dev" || f[2] != "1" || f[6] != "0s" && !strings.HasSuffix(f[6], "s") {
			t.Errorf("first row %q", lines[1])
		}
	})

	t.Run("wide", func(t *testing.T) {
		var b api.ResourceBundle
		_ = json.Unmarshal([]byte(must(t, srv, "get", "bundle", "widgets", "-o", "json")), &b)
		out := must(t, srv, "get", "bundles", "-o", "wide", "--consumer", "dev")
		if !strings.Contains(out, "ID") || !strings.Contains(out, b.ID) || b.ID == "" {
			t.Errorf("wide output lacks id %q:\n%s", b.ID, out)
		}
	})

	t.Run("yaml and name", func(t *testing.T) {
		var b api.ResourceBundle
		data, err := yaml.YAMLToJSON([]byte(must(t, srv, "get", "bundle", "hello-deployment", "-o", "yaml")))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		if b.Kind != api.KindResourceBundle || len(b.Manifests) != 2 || b.ManifestConfigs[0].FeedbackRules[0].Type != "WellKnownStatus" {
			t.Errorf("got %+v", b)
		}
		if out := must(t, srv, "get", "bundles", "-o", "name"); out != "bundle/app-config\nbundle/hello-deployment\nbundle/shared-ingress\nbundle/widgets\n" {
			t.Errorf("names %q", out)
		}
	})

	t.Run("selector", func(t *testing.T) {
		out := must(t, srv, "get", "bundles", "-l", "app=widgets", "-o", "name")
		if out != "bundle/widgets\n" {
			t.Errorf("got %q", out)
		}
	})

	t.Run("consumers", func(t *testing.T) {
		out := must(t, srv, "get", "consumers")
		if !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "\ndev ") {
			t.Errorf("got\n%s", out)
		}
		var c api.Consumer
		if err := json.Unmarshal([]byte(must(t, srv, "get", "consumer", "dev", "-o", "json")), &c); err != nil || c.Labels["env"] != "dev" {
			t.Errorf("got %+v, %v", c, err)
		}
	})

	t.Run("describe", func(t *testing.T) {
		out := must(t, srv, "describe", "bundle", "shared-ingress")
		for _, want := range []string{"Name:", "shared-ingress", "Consumer:", "dev", "Version:", "Delete option:", "Orphan", "Status:", "<none reported yet>"} {
			if !strings.Contains(out, want) {
				t.Errorf("describe bundle lacks %q:\n%s", want, out)
			}
		}
		out = must(t, srv, "describe", "consumer", "dev")
		if !strings.Contains(out, "Bundles:") || !strings.Contains(out, "4") || !strings.Contains(out, "widgets") {
			t.Errorf("describe consumer:\n%s", out)
		}
	})

	t.Run("unknown names", func(t *testing.T) {
		fails(t, srv, []string{`bundle "nope" not found`, "HTTP 404"}, "get", "bundle", "nope")
		fails(t, srv, []string{`bundle "widgets" not found in consumer "other"`}, "describe", "bundle", "widgets", "--consumer", "other")
		fails(t, srv, []string{`consumer "nope" not found`}, "get", "consumer", "nope")
		fails(t, srv, []string{`consumer "nope" not found`}, "delete", "consumer", "nope")
		fails(t, srv, []string{`unknown resource type "pods"`}, "get", "pods")
		fails(t, srv, []string{`unknown output format "xml"`}, "get", "bundles", "-o", "xml")
	})

	t.Run("invalid file applies nothing", func(t *testing.T) {
		dir := t.TempDir()
		good := "name: extra\nconsumer_name: dev\nmanifests:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: x, namespace: default}}\n"
		bad := good + "---\nname: broken\nconsumer_name: dev\nmanifests:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {namespace: default}\n"
		if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(good), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		fails(t, srv, []string{"b.yaml, document 2 (line 6): line 11: field manifests[0].metadata.name"}, "apply", "-f", dir)
		fails(t, srv, []string{`bundle "extra" not found`}, "get", "bundle", "extra")
	})

	t.Run("delete", func(t *testing.T) {
		// No agent runs: the bundle is only marked deleting, and the
		// output says what it waits for.
		out := must(t, srv, "delete", "bundle", "app-config")
		for _, want := range []string{"bundle/app-config marked deleting", "agent of consumer dev confirms", "not connected"} {
			if !strings.Contains(out, want) {
				t.Errorf("delete output lacks %q: %q", want, out)
			}
		}
		out = must(t, srv, "get", "bundle", "app-config")
		if !strings.Contains(out, "Deleting") {
			t.Errorf("deleted bundle not shown as deleting:\n%s", out)
		}
		fails(t, srv, []string{"HTTP 409"}, "delete", "consumer", "dev")
	})
}

func TestUnreachableServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close()
	for _, args := range [][]string{{"get", "bundles"}, {"describe", "consumer", "x"}, {"delete", "bundle", "x"},
		{"resync", "x"}, {"watch"}, {"apply", "-f", "../../examples/shared-ingress.yaml"}} {
		_, _, err := baton(t, "", append(args, "--server", addr)...)
		want := "cannot reach baton server at " + addr + ": "
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "is `baton server` running? (set --server or BATON_SERVER)") {
			t.Errorf("%v: got %v", args, err)
		}
	}
	t.Setenv(EnvServer, addr)
	root := NewRoot()
	root.SetArgs([]string{"get", "bundles"})
	root.SetOut(new(bytes.Buffer))
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("BATON_SERVER not used: %v", err)
	}
}

// doctor without any kubeconfig names the flag and the variable, not
// client-go's KUBERNETES_MASTER.
func TestDoctorWithoutKubeconfig(t *testing.T) {
	srv := startServer(t)
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	_, _, err := baton(t, "", "doctor", "--server", srv)
	if err == nil || !strings.Contains(err.Error(), "--kubeconfig") || !strings.Contains(err.Error(), "KUBECONFIG") ||
		strings.Contains(err.Error(), "KUBERNETES_MASTER") {
		t.Fatalf("doctor without kubeconfig: %v", err)
	}
}

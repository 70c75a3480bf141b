package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/baton-dev/baton/internal/auth/authn"
	"github.com/baton-dev/baton/internal/server"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

// authConfig has one token per role; tokens equal their subjects.
const authConfig = `tokens:
- {token: admin-tok, subject: admin, role: admin}
- {token: reader-tok, subject: reader, role: reader}
- {token: a-tok, subject: svc-a, role: source, source: a}
- {token: b-tok, subject: svc-b, role: source, source: b}
- {token: agent-tok, subject: agent-mgmt-1, role: agent, consumer: mgmt-1}
`

// authLog receives the authenticator's log of the test server.
var authLog syncBuffer

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startAuthServer(t *testing.T) (string, *prometheus.Registry, store.Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(path, []byte(authConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := server.NewRegistry()
	a, err := authn.New(context.Background(), path, authn.Options{Registerer: reg, Logger: slog.New(slog.NewTextHandler(&authLog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.NewSQLite(t)
	ctx := context.Background()
	if _, err := st.CreateConsumer(ctx, store.Consumer{ID: "c1", Name: "mgmt-1"}); err != nil {
		t.Fatal(err)
	}
	base, _, _ := started(t, server.Options{Store: st, Auth: a, Registry: reg})
	return base, reg, st
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func bundleBody(name, source, secret string) string {
	src := ""
	if source != "" {
		src = `"source":"` + source + `",`
	}
	return `{"consumer_name":"mgmt-1",` + src + `"metadata":{"name":"` + name + `"},"manifests":[{"apiVersion":"v1","kind":"Secret",` +
		`"metadata":{"name":"s","namespace":"default"},"stringData":{"password":"` + secret + `"}}]}`
}

// TestRESTRoles proves the roles over a real listener: no token is a 401
// with Maestro's error body, a reader cannot write and sees no Secret
// values, a source cannot read, change or delete another source's bundle,
// an agent token is refused on REST, and every refusal is counted.
func TestRESTRoles(t *testing.T) {
	base, reg, _ := startAuthServer(t)
	v1 := base + api.BasePath

	code, body := call(t, "GET", v1+"/resource-bundles", "", "")
	var e api.Error
	if code != http.StatusUnauthorized || json.Unmarshal([]byte(body), &e) != nil || e.Kind != "Error" || e.Code != "maestro-15" {
		t.Fatalf("no token: %d %s; want 401 with a Maestro error body", code, body)
	}
	if code, body := call(t, "GET", v1+"/resource-bundles", "forged", ""); code != http.StatusUnauthorized || strings.Contains(body, "forged") {
		t.Fatalf("unknown token: %d %s; want 401 that does not echo the token", code, body)
	}
	if code, _ := call(t, "GET", base+"/healthz", "", ""); code != http.StatusOK {
		t.Fatalf("healthz without token: %d", code)
	}

	// Source a creates a bundle: its source is a, whatever it omits.
	code, body = call(t, "POST", v1+"/resource-bundles", "a-tok", bundleBody("wa", "", "hunter2"))
	var ba api.ResourceBundle
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &ba) != nil {
		t.Fatalf("source a create: %d %s", code, body)
	}
	if code, body := call(t, "POST", v1+"/resource-bundles", "a-tok", bundleBody("wb", "b", "x")); code != http.StatusForbidden {
		t.Fatalf("source a creating as b: %d %s; want 403", code, body)
	}
	code, body = call(t, "POST", v1+"/resource-bundles", "b-tok", bundleBody("wb", "", "x"))
	var bb api.ResourceBundle
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &bb) != nil {
		t.Fatalf("source b create: %d %s", code, body)
	}

	// a cannot read, update or delete b's bundle; b's bundle is not in a's list.
	for _, c := range []struct{ method, body string }{{"GET", ""}, {"PUT", bundleBody("wb", "", "y")}, {"PATCH", `{"metadata":{"labels":{"x":"y"}}}`}, {"DELETE", ""}} {
		if code, body := call(t, c.method, v1+"/resource-bundles/"+bb.ID, "a-tok", c.body); code != http.StatusForbidden {
			t.Errorf("source a %s of b's bundle: %d %s; want 403", c.method, code, body)
		}
	}
	code, body = call(t, "GET", v1+"/resource-bundles", "a-tok", "")
	if code != http.StatusOK || strings.Contains(body, bb.ID) || !strings.Contains(body, ba.ID) {
		t.Errorf("source a list: %d %s; want its own bundle only", code, body)
	}

	// The reader reads everything, writes nothing, and sees no Secret values.
	code, body = call(t, "GET", v1+"/resource-bundles", "reader-tok", "")
	if code != http.StatusOK || !strings.Contains(body, bb.ID) || strings.Contains(body, "hunter2") || !strings.Contains(body, "password") {
		t.Errorf("reader list: %d %s; want every bundle with Secret values redacted", code, body)
	}
	code, body = call(t, "GET", v1+"/resource-bundles/"+ba.ID, "reader-tok", "")
	if code != http.StatusOK || strings.Contains(body, "hunter2") {
		t.Errorf("reader get: %d %s; want the Secret value redacted", code, body)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/resource-bundles", bundleBody("wr", "a", "x")}, {"DELETE", "/resource-bundles/" + ba.ID, ""},
		{"PATCH", "/resource-bundles/" + ba.ID, `{}`}, {"POST", "/consumers", `{"name":"mgmt-9"}`},
	} {
		if code, body := call(t, c.method, v1+c.path, "reader-tok", c.body); code != http.StatusForbidden {
			t.Errorf("reader %s %s: %d %s; want 403", c.method, c.path, code, body)
		}
	}
	// The admin sees the secret; a source may not create consumers; agents stay off REST.
	if code, body := call(t, "GET", v1+"/resource-bundles/"+ba.ID, "admin-tok", ""); code != http.StatusOK || !strings.Contains(body, "hunter2") {
		t.Errorf("admin get: %d %s", code, body)
	}
	if code, body := call(t, "POST", v1+"/consumers", "a-tok", `{"name":"mgmt-9"}`); code != http.StatusForbidden {
		t.Errorf("source creating a consumer: %d %s; want 403", code, body)
	}
	if code, body := call(t, "GET", v1+"/consumers", "agent-tok", ""); code != http.StatusForbidden {
		t.Errorf("agent token on REST: %d %s; want 403", code, body)
	}
	// a may delete its own bundle.
	if code, body := call(t, "DELETE", v1+"/resource-bundles/"+ba.ID, "a-tok", ""); code != http.StatusNoContent {
		t.Errorf("source a deleting its bundle: %d %s", code, body)
	}
	// Finalizing without the agent is the admin's: not even the bundle's own source may.
	if code, body := call(t, "DELETE", v1+"/resource-bundles/"+ba.ID+"?orphan=true", "a-tok", ""); code != http.StatusForbidden ||
		!strings.Contains(body, "admin only") {
		t.Errorf("source a orphaning its bundle: %d %s; want 403 admin only", code, body)
	}
	if code, body := call(t, "DELETE", v1+"/consumers/wa?cascade=orphan", "a-tok", ""); code != http.StatusForbidden {
		t.Errorf("source a decommissioning a consumer: %d %s; want 403", code, body)
	}
	if code, body := call(t, "DELETE", v1+"/resource-bundles/"+ba.ID+"?orphan=true", "admin-tok", ""); code != http.StatusNoContent {
		t.Errorf("admin orphaning a bundle: %d %s", code, body)
	}

	// Refusals are logged with the subject, never with a credential.
	logged := authLog.String()
	for _, secret := range []string{"forged", "a-tok", "reader-tok", "agent-tok", "hunter2"} {
		if strings.Contains(logged, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logged)
		}
	}
	if !strings.Contains(logged, "subject=reader") || !strings.Contains(logged, "reason=forbidden") {
		t.Errorf("the log does not name the refused subject:\n%s", logged)
	}
	if got := denied(t, reg, "rest", "unauthenticated"); got < 2 {
		t.Errorf("unauthenticated refusals counted: %v; want >= 2", got)
	}
	if got := denied(t, reg, "rest", "forbidden"); got < 10 {
		t.Errorf("forbidden refusals counted: %v; want >= 10", got)
	}
}

// denied reads baton_auth_denied_total{port, reason}.
func denied(t *testing.T, reg *prometheus.Registry, port, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "baton_auth_denied_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["port"] == port && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

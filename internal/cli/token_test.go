package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton-dev/baton/internal/auth/authn"
	"github.com/baton-dev/baton/internal/server"
	"github.com/baton-dev/baton/internal/server/servertest"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// envTestToken, set by a test, keeps the BATON_TOKEN it set for baton().
const envTestToken = "BATON_TEST_KEEP_TOKEN"

// TestClientToken: the CLI sends the token of --token, BATON_TOKEN or the
// config file, and explains a 401 and a 403.
func TestClientToken(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "auth.yaml")
	os.WriteFile(cfg, []byte("tokens:\n- {token: adm, subject: ops, role: admin}\n- {token: rd, subject: viewer, role: reader}\n"), 0o600)
	a, err := authn.New(context.Background(), cfg, authn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	url := servertest.Start(t, server.Options{Store: storetest.NewSQLite(t), Auth: a})

	fails(t, url, []string{"requires a token", "--token", "BATON_TOKEN", "401"}, "get", "consumers")
	cf := filepath.Join(dir, "c.yaml")
	os.WriteFile(cf, []byte("kind: Consumer\nname: mgmt-1\n"), 0o600)
	must(t, url, "apply", "-f", cf, "--token", "adm")
	fails(t, url, []string{"refused", "viewer", "read-only", "403"}, "delete", "consumer", "mgmt-1", "--token", "rd")

	t.Setenv(envTestToken, "1")
	t.Setenv(EnvToken, "rd")
	if out := must(t, url, "get", "consumers"); !strings.Contains(out, "mgmt-1") {
		t.Errorf("get consumers with BATON_TOKEN: %s", out)
	}
}

package authn

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/auth/authn/oidctest"
)

func writeConfig(t *testing.T, config string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(p, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOIDC verifies JWTs against a local issuer: a valid token maps its
// group to a role; an expired, forged, wrong-audience or unmapped token is
// refused.
func TestOIDC(t *testing.T) {
	is := oidctest.Start(t)
	a, err := New(context.Background(), writeConfig(t, `oidc:
  issuerURL: `+is.URL+`
  audience: baton
  roles:
  - {value: platform-admins, role: admin}
  - {value: team-a, role: source, source: a}
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := a.Authenticate(ctx, auth.Request{Port: auth.PortREST, Bearer: is.Token(t, nil, "baton", time.Now().Add(time.Hour), "team-a")})
	if err != nil || id.String() != "source:a" || id.Subject != "oidc:alice" {
		t.Fatalf("valid token: %v, %v; want source:a for oidc:alice", id, err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, tok := range map[string]string{
		"expired":        is.Token(t, nil, "baton", time.Now().Add(-time.Minute), "team-a"),
		"forged":         is.Token(t, other, "baton", time.Now().Add(time.Hour), "platform-admins"),
		"wrong audience": is.Token(t, nil, "someone-else", time.Now().Add(time.Hour), "platform-admins"),
		"unmapped group": is.Token(t, nil, "baton", time.Now().Add(time.Hour), "interns"),
		"garbage":        "a.b.c",
	} {
		id, err := a.Authenticate(ctx, auth.Request{Port: auth.PortREST, Bearer: tok})
		if !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("%s token: %v, %v; want unauthenticated", name, id, err)
		}
		if err != nil && strings.Contains(err.Error(), tok) {
			t.Errorf("%s token: the error holds the token", name)
		}
	}
}

// TestTokenReload: a changed config file (or a token file it names) is in
// force after Reload, and a broken one leaves the previous config.
func TestTokenReload(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "tok")
	os.WriteFile(tokFile, []byte("one\n"), 0o600)
	cfg := writeConfig(t, "tokens:\n- {tokenFile: "+tokFile+", subject: s, role: reader}\n")
	a, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(tok string, ok bool) {
		t.Helper()
		_, err := a.Authenticate(ctx, auth.Request{Bearer: tok})
		if (err == nil) != ok {
			t.Errorf("token %q: %v; want accepted=%v", tok, err, ok)
		}
	}
	check("one", true)
	os.WriteFile(tokFile, []byte("two\n"), 0o600)
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	check("one", false)
	check("two", true)
	os.WriteFile(cfg, []byte("tokens: [{token: x}]\n"), 0o600)
	if err := a.Reload(ctx); err == nil {
		t.Fatal("a config without subject and role reloaded")
	}
	check("two", true)
}

package authn

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/tlsfiles"
)

// oidcAuth verifies JWTs of one OpenID Connect issuer with go-oidc: the
// signature against the issuer's published keys, issuer, audience and
// expiry. The provider is discovered on first use and again after a
// failure, so an issuer that is down at server start is picked up later.
type oidcAuth struct {
	cfg    *OIDCConfig
	client *http.Client

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
}

func newOIDC(_ context.Context, cfg *OIDCConfig) (*oidcAuth, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	if cfg.CAFile != "" {
		pool, err := tlsfiles.CAPool(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("caFile: %w", err)
		}
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return &oidcAuth{cfg: cfg, client: c}, nil
}

// claims reports whether token looks like a JWT of this issuer (its
// unverified iss claim), so other JWTs (Kubernetes tokens) go elsewhere.
func (o *oidcAuth) claims(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var c struct {
		Iss string `json:"iss"`
	}
	return json.Unmarshal(payload, &c) == nil && c.Iss == o.cfg.IssuerURL
}

func (o *oidcAuth) getVerifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), o.client), o.cfg.IssuerURL)
	if err != nil {
		return nil, err
	}
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.cfg.Audience})
	return o.verifier, nil
}

func (o *oidcAuth) authenticate(ctx context.Context, token string) (*auth.Identity, error) {
	v, err := o.getVerifier(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: oidc issuer %s: %v", auth.ErrUnauthenticated, o.cfg.IssuerURL, err)
	}
	idt, err := v.Verify(oidc.ClientContext(ctx, o.client), token)
	if err != nil {
		return nil, fmt.Errorf("%w: oidc token: %v", auth.ErrUnauthenticated, err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: oidc claims: %v", auth.ErrUnauthenticated, err)
	}
	subClaim, roleClaim := o.cfg.SubjectClaim, o.cfg.Claim
	if subClaim == "" {
		subClaim = "sub"
	}
	if roleClaim == "" {
		roleClaim = "groups"
	}
	subject, _ := claims[subClaim].(string)
	if subject == "" {
		subject = idt.Subject
	}
	values := claimValues(claims[roleClaim])
	for _, r := range o.cfg.Roles {
		for _, v := range values {
			if v == r.Value {
				return &auth.Identity{Subject: "oidc:" + subject, Role: r.Role, Source: r.Source, Consumer: r.Consumer,
					Method: "oidc", Groups: values}, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: oidc subject %q: claim %s maps to no role", auth.ErrUnauthenticated, subject, roleClaim)
}

func claimValues(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

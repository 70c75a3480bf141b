// Package authn authenticates callers for package auth: static bearer
// tokens, client certificates, OIDC JWTs (go-oidc) and Kubernetes tokens
// (TokenReview, with SubjectAccessReview on /sources/<source>), configured
// by the file of `baton server --auth-config` and reloaded on SIGHUP or
// when a file changes.
package authn

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/baton-dev/baton/internal/auth"
)

// Authenticator turns requests into identities using the authenticators of
// an auth config file, and reloads the file on SIGHUP or when it (or a
// token file it names) changes. It is safe for concurrent use.
type Authenticator struct {
	path    string
	log     *slog.Logger
	denied  *prometheus.CounterVec
	reloads *prometheus.CounterVec
	mu      sync.RWMutex
	cur     *state
	stamp   string // modification times of the files last loaded
}

// state is one loaded config.
type state struct {
	cfg    *Config
	tokens []tokenEntry
	certs  *certMapper
	oidc   *oidcAuth
	kube   *kubeAuth
}

type tokenEntry struct {
	sum [sha256.Size]byte
	id  *auth.Identity
}

// Options configure New.
type Options struct {
	Logger *slog.Logger
	// Registerer receives baton_auth_denied_total and
	// baton_auth_config_reloads_total; nil registers nothing.
	Registerer prometheus.Registerer
}

// New loads the auth config at path.
func New(ctx context.Context, path string, opts Options) (*Authenticator, error) {
	a := &Authenticator{path: path, log: opts.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.denied = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_auth_denied_total",
		Help: "Requests refused by authentication (reason unauthenticated, HTTP 401 / gRPC Unauthenticated) or authorization (reason forbidden, 403 / PermissionDenied), by port."},
		[]string{"port", "reason"})
	a.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_auth_config_reloads_total",
		Help: "Reloads of the auth config file, by result (ok or error; a failed reload keeps the previous config)."},
		[]string{"result"})
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{a.denied, a.reloads} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("auth: metrics: %w", err)
			}
		}
	}
	st, stamp, err := a.load(ctx)
	if err != nil {
		return nil, err
	}
	a.cur, a.stamp = st, stamp
	return a, nil
}

func (a *Authenticator) load(ctx context.Context) (*state, string, error) {
	cfg, err := LoadConfig(a.path)
	if err != nil {
		return nil, "", err
	}
	st := &state{cfg: cfg}
	for _, t := range cfg.Tokens {
		st.tokens = append(st.tokens, tokenEntry{sum: sha256.Sum256([]byte(t.Token)),
			id: &auth.Identity{Subject: t.Subject, Role: t.Role, Source: t.Source, Consumer: t.Consumer, Method: "token"}})
	}
	if cfg.ClientCA != "" {
		if st.certs, err = newCertMapper(cfg.ClientCA, cfg.Certificates); err != nil {
			return nil, "", fmt.Errorf("auth config %s: %w", a.path, err)
		}
	}
	if cfg.OIDC != nil {
		if st.oidc, err = newOIDC(ctx, cfg.OIDC); err != nil {
			return nil, "", fmt.Errorf("auth config %s: oidc: %w", a.path, err)
		}
	}
	if cfg.Kubernetes != nil {
		if st.kube, err = newKube(cfg.Kubernetes); err != nil {
			return nil, "", fmt.Errorf("auth config %s: kubernetes: %w", a.path, err)
		}
	}
	return st, a.fileStamp(cfg), nil
}

// fileStamp describes the config file and the files it names, so a change
// to any of them is noticed.
func (a *Authenticator) fileStamp(cfg *Config) string {
	files := []string{a.path, cfg.ClientCA}
	for _, t := range cfg.Tokens {
		files = append(files, t.TokenFile)
	}
	var b strings.Builder
	for _, f := range files {
		if f == "" {
			continue
		}
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", f, fi.ModTime().UnixNano(), fi.Size())
		} else {
			fmt.Fprintf(&b, "%s:missing;", f)
		}
	}
	return b.String()
}

// Reload reads the config again. On error the previous config stays in
// force and the error is returned (and logged).
func (a *Authenticator) Reload(ctx context.Context) error {
	st, stamp, err := a.load(ctx)
	if err != nil {
		a.reloads.WithLabelValues("error").Inc()
		a.log.Error("auth: reload failed; the previous config stays in force", "path", a.path, "err", err)
		a.mu.Lock()
		a.stamp = a.fileStampLocked()
		a.mu.Unlock()
		return err
	}
	a.mu.Lock()
	a.cur, a.stamp = st, stamp
	a.mu.Unlock()
	a.reloads.WithLabelValues("ok").Inc()
	a.log.Info("auth: config reloaded", "path", a.path, "tokens", len(st.cfg.Tokens))
	return nil
}

func (a *Authenticator) fileStampLocked() string { return a.fileStamp(a.cur.cfg) }

// ReloadInterval is how often Start checks the config files for changes.
const ReloadInterval = 2 * time.Second

// Start reloads the config on SIGHUP and when a file changes, until ctx ends.
func (a *Authenticator) Start(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			_ = a.Reload(ctx)
		case <-t.C:
			a.mu.RLock()
			changed := a.fileStamp(a.cur.cfg) != a.stamp
			a.mu.RUnlock()
			if changed {
				_ = a.Reload(ctx)
			}
		}
	}
}

func (a *Authenticator) state() *state {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.cur
}

// ClientCAs returns the pool that verifies client certificates, nil when
// the config has no clientCA. It follows reloads.
func (a *Authenticator) ClientCAs() *x509.CertPool {
	if st := a.state(); st.certs != nil {
		return st.certs.pool
	}
	return nil
}

// Authenticate returns the caller's identity. It fails with an error
// wrapping auth.ErrUnauthenticated (also for no credentials at all); the error
// text never holds the credential.
func (a *Authenticator) Authenticate(ctx context.Context, r auth.Request) (*auth.Identity, error) {
	st := a.state()
	if r.Bearer != "" {
		return st.bearer(ctx, r.Bearer)
	}
	if len(r.Certificates) > 0 && st.certs != nil {
		return st.certs.identity(r.Port, r.Certificates[0])
	}
	return nil, fmt.Errorf("%w: no bearer token or client certificate", auth.ErrUnauthenticated)
}

func (st *state) bearer(ctx context.Context, token string) (*auth.Identity, error) {
	sum := sha256.Sum256([]byte(token))
	var found *auth.Identity
	for _, t := range st.tokens { // no early exit: the time taken does not depend on which token matched
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			found = t.id
		}
	}
	if found != nil {
		return found, nil
	}
	if st.oidc != nil && st.oidc.claims(token) {
		return st.oidc.authenticate(ctx, token)
	}
	if st.kube != nil {
		return st.kube.authenticate(ctx, token)
	}
	return nil, fmt.Errorf("%w: unknown bearer token", auth.ErrUnauthenticated)
}

// Denied counts and logs a refused request. reason is "unauthenticated"
// or "forbidden"; subject is "" when the caller is unknown. Credentials
// never reach the log.
func (a *Authenticator) Denied(port auth.Port, reason, subject, what string, err error) {
	if a == nil {
		return
	}
	a.denied.WithLabelValues(string(port), reason).Inc()
	a.log.Warn("auth: request refused", "port", port, "reason", reason, "subject", subject, "request", what, "err", err)
}

// IsUnauthenticated reports whether err is an authentication failure.
func IsUnauthenticated(err error) bool {
	return errors.Is(err, auth.ErrUnauthenticated) || errors.Is(err, auth.ErrNoCredentials)
}

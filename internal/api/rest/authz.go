package rest

import (
	"net/http"

	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/redact"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/watch"
)

// The REST side of the identity model (package auth): admins do
// everything; a source identity works on the bundles of its source and
// reads consumers; a reader reads, with Secret values redacted; agents
// never reach the handler (the server refuses them on this port).

// caller is the identity of r (auth.Anonymous on a server without auth).
func caller(r *http.Request) *auth.Identity { return auth.FromContext(r.Context()) }

// allowBundle checks the caller may use verb on b.
func allowBundle(r *http.Request, b *store.Bundle, verb string) error {
	return caller(r).AuthorizeSource(r.Context(), b.Source, verb)
}

// allowAdmin checks the caller is an admin (consumer writes, consumer resync).
func allowAdmin(r *http.Request, what string) error {
	if id := caller(r); !id.IsAdmin() {
		return auth.Forbidden(id, "may not %s (admin only)", what)
	}
	return nil
}

// scopeList restricts a bundle list or watch to what the caller may read:
// a source identity sees its own source only. An identity whose sources
// are decided per source by a review (a Kubernetes token) must list one
// source at a time through the gRPC source port; REST lists refuse it.
func scopeList(r *http.Request, f store.Filter) (store.Filter, error) {
	id := caller(r)
	if src, ok := id.FixedSource(); ok {
		own := store.Cmp{Field: "source", Op: "=", Values: []string{src}}
		if f == nil {
			return own, nil
		}
		return store.And{own, f}, nil
	}
	if id.Role == auth.RoleSource {
		return nil, auth.Forbidden(id, "may not list bundles of every source: its sources are decided per source (use the gRPC source port)")
	}
	return f, nil
}

// forCaller returns b as the caller may see it (Secret values redacted
// for readers).
func forCaller(r *http.Request, b *store.Bundle) *store.Bundle {
	if caller(r).SeesSecrets() {
		return b
	}
	out := redact.Bundle(*b)
	return &out
}

// serveWatch serves the watch stream scoped like a list: a source
// identity sees its own source, a reader redacted Secrets.
func (h *Handler) serveWatch(w http.ResponseWriter, r *http.Request) {
	f, err := scopeList(r, nil)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	sc := watch.Scope{Filter: f}
	if !caller(r).SeesSecrets() {
		sc.Redact = redact.Bundle
	}
	h.watch.ServeHTTP(w, r.WithContext(watch.WithScope(r.Context(), sc)))
}

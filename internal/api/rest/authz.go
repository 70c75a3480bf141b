package rest

import (
	"net/http"

	"github.com/baton-dev/baton/internal/api/search"
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
// a source identity with a fixed source sees that source only. An identity
// whose sources are decided per source by a SubjectAccessReview (a
// Kubernetes service account) must name the sources it lists in the
// search (source = 'x', or source in ('x', 'y'), alone or and-ed with
// other terms); each is reviewed with verb sub, as Maestro reviews a
// subscription, and the search itself keeps every other source out.
func scopeList(r *http.Request, f store.Filter) (store.Filter, error) {
	id := caller(r)
	if src, ok := id.FixedSource(); ok {
		own := store.Cmp{Field: "source", Op: "=", Values: []string{src}}
		if f == nil {
			return own, nil
		}
		return store.And{own, f}, nil
	}
	if id.Role != auth.RoleSource {
		return f, nil
	}
	sources := namedSources(f)
	if len(sources) == 0 {
		return nil, auth.Forbidden(id, "may list and watch only the bundles of sources it names, each allowed by a SubjectAccessReview "+
			"(verb sub on /sources/<source>): add search=source='<source>'")
	}
	for _, src := range sources {
		if err := id.AuthorizeSource(r.Context(), src, auth.VerbSub); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// namedSources returns the sources f restricts bundles to: the values of a
// source = or source in term that f requires (f itself, or a term of a
// top-level and; the narrowest if several). nil when f admits any source.
func namedSources(f store.Filter) []string {
	switch f := f.(type) {
	case store.Cmp:
		if f.Field == "source" && (f.Op == "=" || f.Op == "in") && len(f.Values) > 0 {
			return f.Values
		}
	case store.And:
		var narrowest []string
		for _, g := range f {
			if s := namedSources(g); s != nil && (narrowest == nil || len(s) < len(narrowest)) {
				narrowest = s
			}
		}
		return narrowest
	}
	return nil
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
	var f store.Filter
	if caller(r).Role == auth.RoleSource {
		// The search names the sources a reviewed identity watches; the
		// watch handler and-s it with the scope again.
		var err error
		if f, err = search.Parse(r.URL.Query().Get("search"), search.BundleFields); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	f, err := scopeList(r, f)
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

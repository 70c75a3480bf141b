// Package ui serves baton's web view at /ui: one dependency-free HTML page,
// embedded in the binary, that lists consumers and bundles from the REST
// API (stale bundles first, with reason and data age), shows a bundle's
// objects, feedback values, conditions and recent change-log history, and
// stays current through one watch stream (no polling). On a server with
// authentication the page asks for a bearer token and sends it with every
// API request; the page itself holds no data and is served to anyone.
package ui

import (
	_ "embed"
	"net/http"
)

//go:embed index.html
var page []byte

// Routes are the patterns Handler serves.
var Routes = []string{"GET /ui", "GET /ui/"}

// Handler serves the page at /ui/ and redirects /ui there.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ui" {
			http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
			return
		}
		if r.URL.Path != "/ui/" {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
		_, _ = w.Write(page)
	})
}

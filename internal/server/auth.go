package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/baton-dev/baton/internal/api/rest"
	"github.com/baton-dev/baton/internal/auth"
)

// Authenticator authenticates REST callers (auth.Authenticator).
type Authenticator interface {
	Authenticate(ctx context.Context, r auth.Request) (*auth.Identity, error)
	Denied(port auth.Port, reason, subject, what string, err error)
}

// openPaths are served to everyone: probes must work without credentials.
// The web view's page holds no data (it asks for a token and sends it
// with its API requests), so it is open too.
var openPaths = map[string]bool{"/healthz": true, "/readyz": true, "/livez": true, "/ui": true, "/ui/": true}

// authenticate attaches the caller's identity to every request but the
// probes and answers 401 (Maestro's error body) without one. A 403 the API
// answers later is counted and logged here too.
func (s *Server) authenticate(next http.Handler, route func(*http.Request) string) http.Handler {
	a := s.opts.Auth
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if openPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		req := auth.Request{Port: auth.PortREST}
		if h := r.Header.Get("Authorization"); h != "" {
			tok, ok := strings.CutPrefix(h, "Bearer ")
			if !ok {
				s.deny(w, r, route, http.StatusUnauthorized, "", "Authorization: want \"Bearer <token>\"")
				return
			}
			req.Bearer = strings.TrimSpace(tok)
		}
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			req.Certificates = r.TLS.VerifiedChains[0]
		}
		id, err := a.Authenticate(r.Context(), req)
		if err != nil {
			a.Denied(auth.PortREST, "unauthenticated", "", route(r), err)
			rest.WriteError(w, r, http.StatusUnauthorized, rest.CodeUnauthenticated,
				"authentication required: send \"Authorization: Bearer <token>\" or a client certificate ("+err.Error()+")")
			return
		}
		if err := id.AuthorizePort(auth.PortREST); err != nil {
			s.deny(w, r, route, http.StatusForbidden, id.Subject, err.Error())
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(auth.WithIdentity(r.Context(), id)))
		if sw.status == http.StatusForbidden {
			a.Denied(auth.PortREST, "forbidden", id.Subject, route(r), nil)
		}
	})
}

func (s *Server) deny(w http.ResponseWriter, r *http.Request, route func(*http.Request) string, status int, subject, msg string) {
	reason, code := "forbidden", rest.CodeForbidden
	if status == http.StatusUnauthorized {
		reason, code = "unauthenticated", rest.CodeUnauthenticated
	}
	s.opts.Auth.Denied(auth.PortREST, reason, subject, route(r), nil)
	rest.WriteError(w, r, status, code, msg)
}

package pprofhttp_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/baton-dev/baton/internal/pprofhttp"
)

func TestLoopbackOnly(t *testing.T) {
	h := pprofhttp.Handler(nil)
	for _, tc := range []struct {
		remote string
		want   int
	}{
		{"127.0.0.1:5000", http.StatusOK},
		{"[::1]:5000", http.StatusOK},
		{"10.0.0.7:5000", http.StatusForbidden},
		{"[2001:db8::1]:5000", http.StatusForbidden},
		{"garbage", http.StatusForbidden},
	} {
		r := httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil)
		r.RemoteAddr = tc.remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("GET /debug/pprof/ from %s: %d, want %d", tc.remote, w.Code, tc.want)
		}
	}
}

func TestAllowOverrides(t *testing.T) {
	h := pprofhttp.Handler(func(r *http.Request) bool { return r.Header.Get("X-Admin") == "yes" })
	r := httptest.NewRequest(http.MethodGet, "/debug/pprof/heap?debug=1", nil)
	r.RemoteAddr = "127.0.0.1:1"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Errorf("denied by Allow: %d, want 403", w.Code)
	}
	r.Header.Set("X-Admin", "yes")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("allowed: %d, want 200", w.Code)
	}
}

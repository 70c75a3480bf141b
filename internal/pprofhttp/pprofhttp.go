// Package pprofhttp serves the Go runtime's profiles (net/http/pprof) under
// /debug/pprof/ for the server and the agent.
//
// Profiles are off by default: they are mounted only when the process is
// started with --enable-pprof. Even then every request must pass an Allow
// check. The server's is AdminOnLoopback: the client connects from the
// loopback interface (an operator on the host or through `kubectl
// port-forward`) and is an administrator (every caller of a server without
// --auth-config is); the agent's, which authenticates nobody, is Loopback.
// Everyone else gets 403. A profile names functions and
// may show request data in goroutine stacks, so it is an administrator's
// tool, never a public one.
//
// Enabling profiles also turns on the block and mutex profiles (sampled,
// see EnableContention), which are empty otherwise.
package pprofhttp

import (
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"

	"github.com/baton-dev/baton/internal/auth"
)

// Prefix is where the profiles are served.
const Prefix = "/debug/pprof/"

// Allow decides whether a request may read profiles.
type Allow func(r *http.Request) bool

// Loopback allows requests whose peer address is a loopback address.
func Loopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// AdminOnLoopback allows loopback requests of an administrator (the
// identity the server's authentication attached; a server without
// authentication treats every caller as one).
func AdminOnLoopback(r *http.Request) bool {
	return Loopback(r) && auth.FromContext(r.Context()).Role == auth.RoleAdmin
}

// Block and mutex sampling while profiles are enabled: one blocking event
// per BlockRateNanos of blocked time, one in MutexFraction contended
// mutex events. Both cost little next to a request's work.
const (
	BlockRateNanos = 100_000
	MutexFraction  = 10
)

// EnableContention turns on block and mutex profiling.
func EnableContention() {
	runtime.SetBlockProfileRate(BlockRateNanos)
	runtime.SetMutexProfileFraction(MutexFraction)
}

// Handler serves the index, the named profiles, cmdline, profile (CPU),
// symbol and trace under Prefix, to requests allow accepts (nil: Loopback);
// others get 403 Forbidden.
func Handler(allow Allow) http.Handler {
	if allow == nil {
		allow = Loopback
	}
	mux := http.NewServeMux()
	mux.HandleFunc(Prefix, pprof.Index) // the index and every named profile (heap, block, mutex, goroutine, …)
	mux.HandleFunc(Prefix+"cmdline", pprof.Cmdline)
	mux.HandleFunc(Prefix+"profile", pprof.Profile)
	mux.HandleFunc(Prefix+"symbol", pprof.Symbol)
	mux.HandleFunc(Prefix+"trace", pprof.Trace)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allow(r) {
			http.Error(w, "profiles are served to loopback clients only (or to administrators)", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Mount adds the handler to mux under Prefix and turns on contention
// profiling; the pattern it registered is returned.
func Mount(mux *http.ServeMux, allow Allow) string {
	EnableContention()
	pattern := Prefix
	mux.Handle(pattern, Handler(allow))
	return pattern
}

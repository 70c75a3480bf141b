// Package server assembles the baton server process: the REST API, health
// endpoints (/livez and its old name /healthz: the process serves, no
// dependency; /readyz: every readiness check passes, the store ping first),
// Prometheus metrics (/metrics), optionally the runtime profiles
// (/debug/pprof/, admins on loopback only) and any extra handlers and
// long-running parts other packages
// contribute (the agent transport, the watch endpoint).
//
// Lifecycle: Start(ctx) listens, serves and runs every Runnable until ctx
// ends or one of them fails; then it stops accepting requests, waits up to
// ShutdownTimeout for requests in flight, cancels the runnables and returns.
// The server never closes the store: its owner does, after Start returns.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/api/rest"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/pprofhttp"
	"github.com/baton-dev/baton/internal/replica"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/tlsfiles"
	"github.com/baton-dev/baton/internal/ui"
)

// DefaultHTTPAddr is Maestro's REST port.
const DefaultHTTPAddr = ":8000"

// Runnable is a long-running part started with the server: Start blocks
// until ctx ends and returns nil then, or an error if it fails earlier
// (which stops the whole server).
type Runnable interface {
	Start(ctx context.Context) error
}

// RunnableFunc adapts a function to Runnable.
type RunnableFunc func(ctx context.Context) error

// Start calls f(ctx).
func (f RunnableFunc) Start(ctx context.Context) error { return f(ctx) }

// Options configure a Server.
type Options struct {
	// HTTPAddr is the listen address of REST, health and metrics; default ":8000".
	HTTPAddr string
	// Listener, if set, is used instead of listening on HTTPAddr (tests).
	Listener net.Listener
	// Store is the durable state. Required. It is wrapped with metrics.
	Store store.Store
	// Logger receives server events; nil discards.
	Logger *slog.Logger
	// Clock is passed to the parts that need time; nil is the real clock.
	Clock clock.PassiveClock
	// Freshness adds status.freshness to bundles; nil omits it.
	Freshness rest.FreshnessSource
	// OnSpecWrite, Watch and Resync connect the REST API to the agent link
	// (see rest.Options); nil leaves the feature out.
	OnSpecWrite func(consumer string)
	Watch       func(render func(*http.Request, store.Bundle) any) http.Handler
	Resync      func(ctx context.Context, consumer string, bundleIDs []string) error
	// Subscriptions and History serve the webhook subscription routes and
	// bundle history (see rest.Options); nil answers 501.
	Subscriptions rest.Subscriptions
	History       func(ctx context.Context, id string, limit int) ([]store.Change, error)
	// Transport is the most restrictive transport agents are served on
	// (extensions lower it, see UseTransport); the API refuses a bundle
	// whose spec message it cannot carry. "" is gRPC.
	Transport limits.Transport
	// Source is the source of bundles created over REST without one;
	// empty is rest.DefaultSource.
	Source string
	// Registry receives the server's metrics and is served on /metrics;
	// nil creates one with the Go and process collectors.
	Registry *prometheus.Registry
	// Handlers are extra HTTP handlers keyed by net/http pattern
	// ("GET /api/maestro/v1/watch"), mounted beside the REST API. A
	// pattern more specific than the API's catch-all wins.
	Handlers map[string]http.Handler
	// Runnables are started with the server and stopped when it stops.
	Runnables []Runnable
	// ReadyChecks are what /readyz requires besides the store answering a
	// ping (schema migrated, replica lease held), in order.
	ReadyChecks []ReadyCheck
	// Replica is this process's membership among the replicas sharing the
	// store; extensions read its id and liveness. Nil: a lone process.
	Replica *replica.Replica
	// HealthAddr, when set, serves /livez, /healthz and /readyz on a
	// separate listener too (orchestrator probes apart from API traffic).
	HealthAddr string
	// HealthListener, if set, is used instead of listening on HealthAddr.
	HealthListener net.Listener
	// ShutdownTimeout bounds the wait for requests in flight; default 10s.
	ShutdownTimeout time.Duration
	// Auth authenticates every request but the probes; nil serves everyone
	// as auth.Anonymous (an admin: loopback development and tests).
	Auth Authenticator
	// TLSCertFile and TLSKeyFile serve HTTPS, reloading the files when they
	// change; empty serves plain HTTP. ClientCAs, when set, verifies
	// client certificates (optional; bearer tokens work beside them).
	TLSCertFile, TLSKeyFile string
	ClientCAs               func() *x509.CertPool
	// InsecureAllowUnauthenticated lets a server without Auth listen on a
	// non-loopback address (see SafeAddr).
	InsecureAllowUnauthenticated bool
	// Limits bound what one client can hold; zero fields take the defaults
	// of DefaultHTTPLimits.
	Limits HTTPLimits
	// Pprof serves the runtime profiles under /debug/pprof/ to requests
	// PprofAllow accepts (nil: pprofhttp.AdminOnLoopback). Off by default.
	Pprof      bool
	PprofAllow pprofhttp.Allow
}

// HTTPLimits bound the time and memory one HTTP client can hold.
type HTTPLimits struct {
	// ReadHeaderTimeout bounds reading the request headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading the whole request, body included (a
	// client trickling a body is cut off after it).
	ReadTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request headers.
	MaxHeaderBytes int
}

// DefaultHTTPLimits are the limits of a server that sets none.
var DefaultHTTPLimits = HTTPLimits{
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       time.Minute,
	IdleTimeout:       2 * time.Minute,
	MaxHeaderBytes:    64 << 10,
}

func (l HTTPLimits) withDefaults() HTTPLimits {
	d := DefaultHTTPLimits
	if l.ReadHeaderTimeout > 0 {
		d.ReadHeaderTimeout = l.ReadHeaderTimeout
	}
	if l.ReadTimeout > 0 {
		d.ReadTimeout = l.ReadTimeout
	}
	if l.IdleTimeout > 0 {
		d.IdleTimeout = l.IdleTimeout
	}
	if l.MaxHeaderBytes > 0 {
		d.MaxHeaderBytes = l.MaxHeaderBytes
	}
	return d
}

// ReadyCheck is one condition of readiness: Check returns nil when it holds.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// UseTransport records that agents are also served on t: Transport
// becomes the more restrictive of the two.
func (o *Options) UseTransport(t limits.Transport) {
	if o.Transport == "" || limits.MessageBytes(t) < limits.MessageBytes(o.Transport) {
		o.Transport = t
	}
}

// NewRegistry returns a metrics registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Server is the assembled server.
type Server struct {
	opts    Options
	log     *slog.Logger
	store   store.Store // instrumented
	rest    *rest.Handler
	handler http.Handler
	health  *http.ServeMux // the health routes alone, for HealthAddr
	routes  []string
}

// New assembles a server. It fails if Store is nil or metrics cannot be
// registered.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("server: new: Options.Store is required")
	}
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = DefaultHTTPAddr
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Listener == nil {
		addr, err := SafeAddr("--http-addr", opts.HTTPAddr, opts.Auth != nil, opts.InsecureAllowUnauthenticated)
		if err != nil {
			return nil, err
		}
		opts.HTTPAddr = addr
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.Registry == nil {
		opts.Registry = NewRegistry()
	}
	st, err := InstrumentStore(opts.Store, opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("server: new: store metrics: %w", err)
	}
	if o, ok := opts.Store.(oldestOutbox); ok {
		if err := registerOutboxAge(opts.Registry, o, opts.Clock); err != nil {
			return nil, fmt.Errorf("server: new: outbox metrics: %w", err)
		}
	}
	s := &Server{opts: opts, log: opts.Logger, store: st}
	s.rest = rest.New(rest.Options{
		Store: st, Logger: opts.Logger, Clock: opts.Clock,
		Freshness: opts.Freshness, Source: opts.Source,
		OnSpecWrite: opts.OnSpecWrite, Watch: opts.Watch, Resync: opts.Resync,
		Subscriptions: opts.Subscriptions, History: opts.History,
		Transport: opts.Transport,
	})
	mux := http.NewServeMux()
	s.health = http.NewServeMux()
	for pattern, h := range map[string]http.HandlerFunc{"GET /livez": s.livez, "GET /healthz": s.livez,
		"GET /readyz": s.readyz, "GET /healthcheck": s.readyz /* Maestro's name */} {
		s.handle(mux, pattern, h)
		s.health.Handle(pattern, h)
	}
	s.handle(mux, "GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{Registry: opts.Registry}))
	for _, p := range ui.Routes {
		s.handle(mux, p, ui.Handler())
	}
	if opts.Pprof {
		allow := opts.PprofAllow
		if allow == nil {
			allow = pprofhttp.AdminOnLoopback
		}
		s.routes = append(s.routes, pprofhttp.Mount(mux, allow))
	}
	for pattern, h := range opts.Handlers {
		s.handle(mux, pattern, h)
	}
	mux.Handle(restMount, s.rest)
	for _, r := range s.rest.Routes() {
		s.routes = append(s.routes, r.Method+" "+r.Pattern)
	}
	sort.Strings(s.routes)
	m, err := newHTTPMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("server: new: http metrics: %w", err)
	}
	var h http.Handler = mux
	if opts.Auth != nil {
		h = s.authenticate(mux, s.routeOf(mux))
	}
	s.handler = m.wrap(h, s.routeOf(mux))
	return s, nil
}

func (s *Server) handle(mux *http.ServeMux, pattern string, h http.Handler) {
	mux.Handle(pattern, h)
	s.routes = append(s.routes, pattern)
}

// Routes returns every route the server serves ("GET /readyz",
// "PUT /api/maestro/v1/resource-bundles/{id}"), extra handlers included,
// sorted.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// restMount is the catch-all the REST handler is mounted on; it answers
// unknown paths with Maestro error bodies.
const restMount = "/"

// routeOf returns the function that names the route of a request for
// metrics: the REST route pattern, another handler's pattern, or
// "unmatched".
func (s *Server) routeOf(mux *http.ServeMux) func(r *http.Request) string {
	return func(r *http.Request) string {
		_, p := mux.Handler(r)
		if p == restMount {
			p = s.rest.Pattern(r)
		}
		if p == "" {
			return "unmatched"
		}
		return p
	}
}

// Handler returns the server's whole HTTP handler (REST, health, metrics,
// extra handlers), for tests and for embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Store returns the instrumented store the API uses.
func (s *Server) Store() store.Store { return s.store }

// Start serves HTTP and runs the runnables until ctx ends or one fails.
//
// Requests are served with contexts that do not end with ctx: on shutdown,
// requests in flight finish normally. Long-lived handlers (watch streams)
// must end their response when Stopping(r.Context()) closes, or shutdown
// waits for them until ShutdownTimeout and then cancels their contexts.
func (s *Server) Start(ctx context.Context) error {
	ln := s.opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.opts.HTTPAddr); err != nil {
			return fmt.Errorf("server: listen %s: %w", s.opts.HTTPAddr, err)
		}
	}
	scheme := "http"
	if s.opts.TLSCertFile != "" {
		kp, err := tlsfiles.Load(s.opts.TLSCertFile, s.opts.TLSKeyFile, s.log)
		if err != nil {
			ln.Close()
			return fmt.Errorf("server: --tls-cert: %w", err)
		}
		ln, scheme = tls.NewListener(ln, tlsfiles.ServerConfig(kp, s.opts.ClientCAs)), "https"
	}
	lim := s.opts.Limits.withDefaults()
	stopping := make(chan struct{})
	base, cancelBase := context.WithCancel(context.WithValue(context.WithoutCancel(ctx), stoppingKey{}, stopping))
	defer cancelBase()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	g, gctx := errgroup.WithContext(ctx)
	if err := s.serveHealth(ctx, base, g, gctx); err != nil {
		_ = ln.Close()
		return err
	}
	g.Go(func() error {
		s.log.Info("server: serving "+scheme, "addr", ln.Addr().String(), "authenticated", s.opts.Auth != nil)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("server: http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		close(stopping)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
		defer cancel()
		err := srv.Shutdown(sctx)
		cancelBase()
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("server: http shutdown: %w", err)
		}
		return nil
	})
	for _, r := range s.opts.Runnables {
		g.Go(func() error { return r.Start(gctx) })
	}
	err := g.Wait()
	s.log.Info("server: stopped", "err", err)
	return err
}

type stoppingKey struct{}

// Stopping returns a channel that closes when the server serving a request
// with this context begins to shut down. Outside a server it returns nil,
// which never closes.
func Stopping(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stoppingKey{}).(chan struct{})
	return ch
}

// serveHealth serves the health routes on HealthAddr until gctx ends.
func (s *Server) serveHealth(ctx, base context.Context, g *errgroup.Group, gctx context.Context) error {
	ln := s.opts.HealthListener
	if ln == nil && s.opts.HealthAddr == "" {
		return nil
	}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.opts.HealthAddr); err != nil {
			return fmt.Errorf("server: listen %s (health): %w", s.opts.HealthAddr, err)
		}
	}
	srv := &http.Server{Handler: s.health, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context { return base }}
	g.Go(func() error {
		s.log.Info("server: serving health", "addr", ln.Addr().String())
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("server: health: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	})
	return nil
}

// livez answers 200 while the process serves HTTP; it checks nothing else,
// so a database outage never restarts the server.
func (s *Server) livez(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz answers 200 when the store answers a ping within 2 seconds and
// every ReadyCheck passes; otherwise 503 naming the first failed check.
// While the server shuts down it answers 503, so traffic moves away first.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	checks := append([]ReadyCheck{{Name: "store", Check: s.store.Ping}}, s.opts.ReadyChecks...)
	select {
	case <-Stopping(r.Context()):
		checks = []ReadyCheck{{Name: "shutdown", Check: func(context.Context) error { return errors.New("server is shutting down") }}}
	default:
	}
	for _, c := range checks {
		if err := c.Check(ctx); err != nil {
			s.log.Warn("server: readyz: check failed", "check", c.Name, "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "%s: %v\n", c.Name, err)
			return
		}
	}
	_, _ = w.Write([]byte("ok\n"))
}

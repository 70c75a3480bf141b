// Package agent assembles baton's agent: it takes bundle specs from the
// server over a protocol.Conn, applies them with apply.Applier, observes
// every applied or read object with one shared observe.Observer, evaluates
// their status with the pure evaluate package, and hands the result to a
// reporter that delivers it (revisioned, at least once) to the server.
//
// Flow: the Conn's receive loop records the desired generation of a bundle
// and enqueues the bundle id; a few workers drain a rate-limited work queue
// keyed by bundle id (one worker per bundle at a time, so a slow or failing
// bundle never blocks the others). A worker applies (or deletes) the
// bundle, acknowledges the generation once the applier's in-cluster record
// is written, registers the bundle's objects with the observer, evaluates
// them from the observer's cache and sets the reporter. Every watch event of
// a bundle's object enqueues the bundle again: it is re-evaluated (DESIGN.md
// I1) and, when an object it applies was edited or deleted, re-applied.
// Retryable failures are retried with per-bundle exponential backoff.
//
// On every new session (Conn.Up) the agent sends Hello with its epoch and
// the generation of every bundle it holds (durably recorded), with the
// server incarnation it was taken under: generations compare only within
// one incarnation, so a spec of another incarnation is always taken (the
// server's database was reset, or the consumer recreated); at start it
// rebuilds that list from the applier's records and observes those bundles
// at once, reports them from the live objects (a new epoch), and then
// re-applies them, so a restart re-reports everything within seconds even
// when API calls are rate-limited.
//
// Observation health (DESIGN.md I8): when the observer cannot list or
// watch an object's resource type (its API server does not answer, or
// refuses the agent), the bundles observing it are re-evaluated at once and
// report that object's entry unconfirmed (StatusFeedbackSynced=Unknown,
// reason ClusterUnreachable, Forbidden or Unauthorized), which the server
// turns into the verdict Stale/ObservationFailed; /readyz fails and
// baton_agent_observation_failing_scopes counts the scopes meanwhile. When
// the API server answers again the observer relists and the bundles are
// re-evaluated from the live objects.
//
// Known limit: an informer caches its whole namespace of that resource
// type, not only the watched objects.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/agent/apply"
	"github.com/baton-dev/baton/internal/agent/observe"
	"github.com/baton-dev/baton/internal/agent/report"
	"github.com/baton-dev/baton/internal/protocol"
)

// Options configure an Agent. Zero fields take the defaults of
// DefaultOptions.
type Options struct {
	// Consumer is the name of the cluster this agent serves; it is set on
	// every message and labels the applier's records. Required.
	Consumer string
	// Epoch identifies this run of the agent (default a new UUID).
	Epoch string
	// ID is the agent's identity among the agents of the consumer (its pod
	// or host name): the server serves one agent per consumer and tells
	// the others to stand down; a restart with the same ID takes its
	// session over at once. Empty: the epoch.
	ID string
	// Workers is the number of bundles processed in parallel (default 4).
	Workers int
	// Resync is the observer's safety-net resync period (default 5 min).
	Resync time.Duration
	// RecordsNamespace holds the applier's bundle records
	// (default "baton-agent").
	RecordsNamespace string
	// HeartbeatInterval is how often the reporter sends its digest
	// (default: the reporter's own default).
	HeartbeatInterval time.Duration
	// DeletePropagation is the propagationPolicy of the applier's delete
	// calls (default the applier's: Foreground, which needs the cluster's
	// garbage collector).
	DeletePropagation metav1.DeletionPropagation
	// RetryBase and RetryMax bound the per-bundle exponential backoff of
	// failed applies and pending deletions (default 200 ms and 30 s).
	RetryBase, RetryMax time.Duration
	// HubHash identifies the server in the AppliedManifestWork records the
	// agent keeps ("<hub hash>-<bundle id>"); default the applier's.
	HubHash string
	// DisableAppliedWorks turns the AppliedManifestWork records off.
	DisableAppliedWorks bool
	// ProbeInterval is how often the observer checks that the API server
	// still answers for each observed resource type (default the
	// observer's, 5 s): it bounds how long a revoked permission or a
	// silently dropped connection goes unnoticed.
	ProbeInterval time.Duration
	// MetricsAddr, when set, serves /healthz, /readyz and /metrics.
	MetricsAddr string
	// Pprof also serves the runtime profiles under /debug/pprof/ on
	// MetricsAddr, to loopback clients only. Off by default.
	Pprof bool
	// Registry receives the agent's metrics (default a new registry, served
	// on MetricsAddr).
	Registry *prometheus.Registry
	// OnReportSent, when set, is called after each Status left the
	// reporter (it must not block); tests and benchmarks time reports.
	OnReportSent func(report.SentEvent)
	// Logger receives the agent's log (default slog.Default()).
	Logger *slog.Logger
	// Clock drives timers (default the real clock).
	Clock clock.WithTicker
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{
		Workers: 4, Resync: 5 * time.Minute, RecordsNamespace: "baton-agent",
		RetryBase: 200 * time.Millisecond, RetryMax: 30 * time.Second,
		Logger: slog.Default(), Clock: clock.RealClock{},
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Epoch == "" {
		o.Epoch = uuid.NewString()
	}
	if o.Workers <= 0 {
		o.Workers = d.Workers
	}
	if o.Resync <= 0 {
		o.Resync = d.Resync
	}
	if o.RecordsNamespace == "" {
		o.RecordsNamespace = d.RecordsNamespace
	}
	if o.RetryBase <= 0 {
		o.RetryBase = d.RetryBase
	}
	if o.RetryMax <= 0 {
		o.RetryMax = d.RetryMax
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.Clock == nil {
		o.Clock = d.Clock
	}
	return o
}

// Agent is one consumer's agent. Create it with New and run it with Start.
type Agent struct {
	opts     Options
	log      *slog.Logger
	conn     protocol.Conn
	applier  *apply.Applier
	observer *observe.Observer
	reporter *report.Reporter
	queue    workqueue.TypedRateLimitingInterface[string]
	disc     observe.Discovery
	metrics  *metrics

	ready     atomic.Bool   // records loaded, workers running
	helloSent chan struct{} // closed after the first Hello

	standby     atomic.Bool // told to stand down: another agent serves the consumer
	retrying    atomic.Bool // a Hello retry is scheduled while standing by
	standbyMu   sync.Mutex
	activeAgent string // the agent serving the consumer while this one stands by

	acks *protocol.AckQueue[protocol.SpecAck] // SpecAcks owed by the receive loop

	mu      sync.Mutex
	bundles map[string]*bundle
}

// New builds an agent for the cluster of cfg, talking to the server over conn.
func New(cfg *rest.Config, conn protocol.Conn, opts Options) (*Agent, error) {
	opts = opts.withDefaults()
	if opts.Consumer == "" {
		return nil, errors.New("agent: new: consumer name is required")
	}
	ap, err := apply.New(cfg, apply.Options{Namespace: opts.RecordsNamespace, AgentName: opts.Consumer,
		Clock: opts.Clock, Propagation: opts.DeletePropagation, HubHash: opts.HubHash,
		DisableAppliedWorks: opts.DisableAppliedWorks, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("agent: new: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("agent: new: dynamic client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("agent: new: discovery client: %w", err)
	}
	direct, err := observe.DirectClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("agent: new: %w", err)
	}
	a := &Agent{
		opts: opts, log: opts.Logger.With("consumer", opts.Consumer), conn: conn, applier: ap, disc: disc,
		bundles: map[string]*bundle{}, helloSent: make(chan struct{}), acks: newSpecAcks(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](opts.RetryBase, opts.RetryMax),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "baton-agent", Clock: opts.Clock}),
	}
	a.metrics = newMetrics(opts.Registry, a)
	a.observer = observe.New(dyn, disc, a.onObjectEvent, observe.Options{Resync: opts.Resync, Probe: opts.ProbeInterval, Direct: direct,
		OnHealth: a.metrics.onHealth, Logger: a.log, Clock: opts.Clock})
	a.reporter = newReporter(a)
	return a, nil
}

// Epoch is this run's epoch.
func (a *Agent) Epoch() string { return a.opts.Epoch }

// Start runs the agent until ctx ends. It returns an error when it cannot
// start (the health endpoint's address is taken) or when the Conn's Recv
// channel closes for good.
func (a *Agent) Start(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if a.opts.MetricsAddr != "" {
		ln, err := net.Listen("tcp", a.opts.MetricsAddr)
		if err != nil {
			return fmt.Errorf("agent: listen %s: %w", a.opts.MetricsAddr, err)
		}
		srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error { return serveUntil(ctx, srv, ln) })
	}
	g.Go(func() error { return a.observer.Start(ctx) })
	g.Go(func() error {
		select {
		case <-a.helloSent:
			return a.reporter.Start(ctx)
		case <-ctx.Done():
			return nil
		}
	})
	g.Go(func() error {
		<-ctx.Done()
		a.queue.ShutDown()
		return nil
	})
	g.Go(func() error {
		if err := a.loadRecords(ctx); err != nil {
			return nil // ctx ended
		}
		a.waitSeeded(ctx)
		for range a.opts.Workers {
			g.Go(func() error { a.work(ctx); return nil })
		}
		a.ready.Store(true)
		a.log.Info("agent: started", "epoch", a.opts.Epoch, "bundles", a.bundleCount())
		g.Go(func() error { a.session(ctx); return nil })
		g.Go(func() error { a.sendAcks(ctx); return nil })
		g.Go(func() error { a.awaitKinds(ctx); return nil })
		return a.receive(ctx)
	})
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// loadRecords rebuilds the held bundles from the applier's records,
// retrying until it succeeds or ctx ends; every bundle is enqueued so it is
// re-applied, re-observed and re-reported.
func (a *Agent) loadRecords(ctx context.Context) error {
	delay := a.opts.RetryBase
	for {
		recs, err := a.applier.Records(ctx)
		if err == nil || len(recs) > 0 {
			if err != nil {
				a.log.Error("agent: some bundle records are unreadable", "err", err)
			}
			a.mu.Lock()
			seeded := map[string][]observe.Key{}
			for _, r := range recs {
				b := bundleFromRecord(r)
				a.bundles[r.BundleID] = b
				if b.seeded {
					seeded[r.BundleID] = observedKeys(b.results, b.spec.ManifestConfigs)
				}
			}
			a.mu.Unlock()
			for id, keys := range seeded {
				a.observer.Replace(id, keys)
			}
			for _, r := range recs {
				a.queue.Add(r.BundleID)
			}
			if err == nil {
				if err := a.applier.SyncAppliedWorks(ctx, recs); err != nil {
					a.log.Warn("agent: AppliedManifestWorks not in step with the records; each is rewritten at its bundle's next apply", "err", err)
				}
			}
			return nil
		}
		a.log.Warn("agent: loading bundle records failed, retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.opts.Clock.After(delay):
		}
		delay = min(delay*2, a.opts.RetryMax)
	}
}

// seedWait bounds how long a restarted agent waits for the observer's
// caches of its restored bundles before it starts working.
const seedWait = 10 * time.Second

// waitSeeded waits (at most seedWait) until the observer has synced every
// object of the bundles restored from records, so the first pass of the
// queue reports them all before any is re-applied (bundle order is FIFO).
func (a *Agent) waitSeeded(ctx context.Context) {
	a.mu.Lock()
	var keys []observe.Key
	for _, b := range a.bundles {
		if b.seeded {
			keys = append(keys, observedKeys(b.results, b.spec.ManifestConfigs)...)
		}
	}
	a.mu.Unlock()
	deadline := a.opts.Clock.Now().Add(seedWait)
	for len(keys) > 0 && a.opts.Clock.Now().Before(deadline) {
		if a.observer.Synced(keys[len(keys)-1]) {
			keys = keys[:len(keys)-1]
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-a.opts.Clock.After(20 * time.Millisecond):
		}
	}
}

func (a *Agent) bundleCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.bundles)
}

// work drains the queue until it shuts down.
func (a *Agent) work(ctx context.Context) {
	for {
		id, shutdown := a.queue.Get()
		if shutdown {
			return
		}
		a.process(ctx, id)
		a.queue.Done(id)
	}
}

// process syncs one bundle and schedules its retry. While standing by
// nothing is applied: the bundle waits (onSession requeues it).
func (a *Agent) process(ctx context.Context, id string) {
	if a.standby.Load() {
		a.queue.Forget(id)
		return
	}
	start := a.opts.Clock.Now()
	next := a.sync(ctx, id)
	a.metrics.syncDuration.Observe(a.opts.Clock.Since(start).Seconds())
	switch next {
	case done:
		a.queue.Forget(id)
	case again:
		a.queue.Forget(id)
		a.queue.Add(id)
	case retry:
		a.queue.AddRateLimited(id)
	}
}

// onObjectEvent is the observer's handler: it must not block.
func (a *Agent) onObjectEvent(ids []string) {
	a.mu.Lock()
	for _, id := range ids {
		if b := a.bundles[id]; b != nil {
			b.dirty = true
		}
	}
	a.mu.Unlock()
	for _, id := range ids {
		a.queue.Add(id)
	}
}

func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("agent: health server: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}

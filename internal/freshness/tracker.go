package freshness

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// Tracker defaults.
const (
	DefaultHeartbeatTimeout = 30 * time.Second
	DefaultInterval         = 10 * time.Second
	DefaultCacheTTL         = time.Second
	pageSize                = 500
	outboxLimit             = 10000
)

// Reasons lists every stale reason, for gauges that report zero too.
var Reasons = []string{api.ReasonAgentDisconnected, api.ReasonNotDelivered, api.ReasonObservationFailed,
	api.ReasonDigestMismatch, api.ReasonNoReportSince, api.ReasonStatusTooLarge}

// Reader is the part of the store the tracker reads.
type Reader interface {
	GetConsumer(ctx context.Context, idOrName string) (store.Consumer, error)
	ListConsumers(ctx context.Context, opts store.ListOptions) (store.Page[store.Consumer], error)
	ListBundlesByConsumer(ctx context.Context, consumer string) ([]store.Bundle, error)
	PendingOutbox(ctx context.Context, consumer string, limit int) ([]store.OutboxEvent, error)
}

// Tracker computes freshness verdicts for the REST layer and, while
// started, exports them as Prometheus metrics:
//
//	baton_bundles_stale{reason}          gauge: bundles stale for reason
//	baton_bundles_tracked                gauge: bundles looked at in the last pass
//	baton_bundle_freshness_age_seconds   histogram: age of every bundle's status, per pass
//	baton_bundle_deletes_pending{consumer}              gauge: bundles marked deleting, not yet confirmed
//	baton_bundle_delete_oldest_pending_seconds{consumer} gauge: how long the oldest of them has waited
type Tracker struct {
	st       Reader
	clock    clock.WithTicker
	log      *slog.Logger
	timeout  time.Duration
	interval time.Duration
	ttl      time.Duration
	leading  func() bool

	stale   *prometheus.GaugeVec
	tracked prometheus.Gauge
	age     prometheus.Histogram
	// Pending deletes per consumer (DESIGN I9: every delete ends); only
	// consumers with some are exported.
	deletes      *prometheus.GaugeVec
	deleteOldest *prometheus.GaugeVec

	// onTransition receives the bundles whose verdict (state or reason)
	// changed since the previous pass; prev holds the last pass's verdicts.
	onTransition func(ctx context.Context, ids []string)
	prev         map[string]string

	mu         sync.Mutex
	cache      map[string]consumerEntry // consumer name → cached state
	refreshing map[string]bool          // consumers being reloaded in the background
	forgotten  map[string]uint64        // Forget calls per consumer: a read begun before one is not cached
}

type consumerEntry struct {
	c       store.Consumer
	pending map[string]time.Time // bundle id → oldest pending outbox event
	at      time.Time
}

// Option configures a Tracker.
type Option func(*Tracker)

// WithClock sets the clock.
func WithClock(c clock.WithTicker) Option { return func(t *Tracker) { t.clock = c } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(t *Tracker) { t.log = l } }

// WithHeartbeatTimeout sets the heartbeat timeout of the verdicts.
func WithHeartbeatTimeout(d time.Duration) Option { return func(t *Tracker) { t.timeout = d } }

// WithInterval sets how often Start recomputes the metrics.
func WithInterval(d time.Duration) Option { return func(t *Tracker) { t.interval = d } }

// WithLeading gates the metric passes of Start: only while leading()
// reports true does this tracker export fleet gauges (one replica of a
// cluster does; the others export zeros, so a sum over replicas counts
// every bundle once).
func WithLeading(leading func() bool) Option { return func(t *Tracker) { t.leading = leading } }

// WithTransitions makes every pass call f with the bundles whose verdict
// changed since the previous pass (none on the first), so a transition
// nothing else writes down — an agent going silent, a delivery overdue —
// can be made a change watchers see.
func WithTransitions(f func(ctx context.Context, ids []string)) Option {
	return func(t *Tracker) { t.onTransition = f }
}

// WithCacheTTL sets how long consumer state is reused by Freshness.
func WithCacheTTL(d time.Duration) Option { return func(t *Tracker) { t.ttl = d } }

// NewTracker returns a tracker over st whose metrics are registered on reg
// (nil: not registered).
func NewTracker(st Reader, reg prometheus.Registerer, opts ...Option) (*Tracker, error) {
	t := &Tracker{
		st: st, clock: clock.RealClock{}, log: slog.Default(), timeout: DefaultHeartbeatTimeout,
		interval: DefaultInterval, ttl: DefaultCacheTTL, cache: map[string]consumerEntry{},
		refreshing: map[string]bool{}, forgotten: map[string]uint64{},
		stale: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "baton_bundles_stale", Help: "Bundles whose status is not confirmed current, by reason.",
		}, []string{"reason"}),
		tracked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "baton_bundles_tracked", Help: "Bundles evaluated in the last freshness pass.",
		}),
		age: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "baton_bundle_freshness_age_seconds",
			Help:    "Time since each bundle's status was last confirmed, observed once per bundle per pass.",
			Buckets: []float64{0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 900, 3600},
		}),
		deletes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "baton_bundle_deletes_pending",
			Help: "Bundles marked deleting whose agent has not confirmed the removal, by consumer (consumers with none are not listed).",
		}, []string{"consumer"}),
		deleteOldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "baton_bundle_delete_oldest_pending_seconds",
			Help: "How long the oldest unconfirmed delete of each consumer has waited since it was asked for.",
		}, []string{"consumer"}),
	}
	for _, o := range opts {
		o(t)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{t.stale, t.tracked, t.age, t.deletes, t.deleteOldest} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("freshness: register metrics: %w", err)
			}
		}
	}
	return t, nil
}

// Freshness returns the verdict for b, or nil when its consumer cannot be
// read (the error is logged).
func (t *Tracker) Freshness(ctx context.Context, b store.Bundle) *api.Freshness {
	e, err := t.consumer(ctx, b.ConsumerName)
	if err != nil {
		t.log.Warn("freshness: read consumer", "consumer", b.ConsumerName, "err", err)
		return nil
	}
	f := t.verdict(e, b)
	return &f
}

// Forget drops the cached state of consumer: the next verdict reads it. The
// hub calls it when it records that the consumer's agent connected or went
// away, so this process's verdicts never lag its own writes (other
// replicas' writes show within the cache TTL).
func (t *Tracker) Forget(consumer string) {
	t.mu.Lock()
	delete(t.cache, consumer)
	t.forgotten[consumer]++
	t.mu.Unlock()
}

// Source adapts the tracker to callers that must not wait for the store
// (the REST layer renders a verdict for every bundle of a list).
type Source struct{ t *Tracker }

// Source returns the non-blocking view of t.
func (t *Tracker) Source() Source { return Source{t} }

// Freshness returns the verdict for b from cached consumer state. An entry
// older than the cache TTL is used as is while a background read refreshes
// it; only a consumer never seen before is read synchronously. A nil
// verdict means the consumer could not be read.
func (s Source) Freshness(b *store.Bundle) *api.Freshness {
	t := s.t
	t.mu.Lock()
	e, ok := t.cache[b.ConsumerName]
	stale := ok && t.clock.Since(e.at) >= t.ttl && !t.refreshing[b.ConsumerName]
	if stale {
		t.refreshing[b.ConsumerName] = true
	}
	t.mu.Unlock()
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return t.Freshness(ctx, *b)
	}
	if stale {
		go t.refresh(b.ConsumerName)
	}
	f := t.verdict(e, *b)
	return &f
}

func (t *Tracker) refresh(name string) {
	defer func() {
		t.mu.Lock()
		delete(t.refreshing, name)
		t.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gen := t.generation(name)
	c, err := t.st.GetConsumer(ctx, name)
	if err == nil {
		_, err = t.load(ctx, c, t.clock.Now(), gen)
	}
	if err != nil {
		t.log.Warn("freshness: refresh consumer", "consumer", name, "err", err)
	}
}

func (t *Tracker) verdict(e consumerEntry, b store.Bundle) api.Freshness {
	var since *time.Time
	if p, ok := e.pending[b.ID]; ok {
		since = &p
	}
	return Verdict(t.clock.Now(), e.c, b, since, t.timeout)
}

// consumer returns the cached state of a consumer, reading it when older than the TTL.
func (t *Tracker) consumer(ctx context.Context, name string) (consumerEntry, error) {
	now := t.clock.Now()
	t.mu.Lock()
	e, ok := t.cache[name]
	t.mu.Unlock()
	if ok && now.Sub(e.at) < t.ttl {
		return e, nil
	}
	gen := t.generation(name)
	c, err := t.st.GetConsumer(ctx, name)
	if err != nil {
		return consumerEntry{}, err
	}
	return t.load(ctx, c, now, gen)
}

func (t *Tracker) generation(name string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.forgotten[name]
}

// load reads the pending deliveries of c and caches both, unless the
// consumer was forgotten since generation gen was read.
func (t *Tracker) load(ctx context.Context, c store.Consumer, now time.Time, gen uint64) (consumerEntry, error) {
	events, err := t.st.PendingOutbox(ctx, c.Name, outboxLimit)
	if err != nil {
		return consumerEntry{}, fmt.Errorf("consumer %q: pending outbox: %w", c.Name, err)
	}
	e := consumerEntry{c: c, pending: map[string]time.Time{}, at: now}
	for _, ev := range events {
		if p, ok := e.pending[ev.BundleID]; !ok || ev.CreatedAt.Before(p) {
			e.pending[ev.BundleID] = ev.CreatedAt
		}
	}
	t.mu.Lock()
	if t.forgotten[c.Name] == gen {
		t.cache[c.Name] = e
	}
	t.mu.Unlock()
	return e, nil
}

// Start recomputes the metrics every interval until ctx ends.
func (t *Tracker) Start(ctx context.Context) error {
	tick := t.clock.NewTicker(t.interval)
	defer tick.Stop()
	for {
		follower := t.leading != nil && !t.leading()
		if follower {
			t.clear()
		} else if _, err := t.Pass(ctx); err != nil && ctx.Err() == nil {
			t.log.Warn("freshness: pass", "err", err)
		}
		// A follower looks again soon: it may lead next.
		var again <-chan time.Time
		if follower {
			again = t.clock.After(min(t.interval, time.Second))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C():
		case <-again:
		}
	}
}

// clear exports zeros: another replica counts the fleet.
func (t *Tracker) clear() {
	for _, r := range Reasons {
		t.stale.WithLabelValues(r).Set(0)
	}
	t.tracked.Set(0)
	t.deletes.Reset()
	t.deleteOldest.Reset()
}

// Pass evaluates every bundle once and updates the metrics. It returns the
// number of bundles stale per reason.
func (t *Tracker) Pass(ctx context.Context) (map[string]int, error) {
	counts := map[string]int{}
	total := 0
	now := t.clock.Now()
	var ages []float64
	verdicts := map[string]string{}
	type backlog struct {
		n      int
		oldest time.Time
	}
	deletes := map[string]backlog{}
	for page := 1; ; page++ {
		t.mu.Lock()
		gens := maps.Clone(t.forgotten) // before the read: see load
		t.mu.Unlock()
		p, err := t.st.ListConsumers(ctx, store.ListOptions{Page: page, Size: pageSize})
		if err != nil {
			return nil, fmt.Errorf("list consumers: %w", err)
		}
		for _, c := range p.Items {
			e, err := t.load(ctx, c, now, gens[c.Name])
			if err != nil {
				return nil, err
			}
			bundles, err := t.st.ListBundlesByConsumer(ctx, c.Name)
			if err != nil {
				return nil, fmt.Errorf("consumer %q: list bundles: %w", c.Name, err)
			}
			for _, b := range bundles {
				f := t.verdict(e, b)
				total++
				ages = append(ages, f.AgeSeconds)
				verdicts[b.ID] = f.State + "/" + f.Reason
				if b.DeletedAt != nil {
					d := deletes[c.Name]
					if d.n == 0 || b.DeletedAt.Before(d.oldest) {
						d.oldest = *b.DeletedAt
					}
					d.n++
					deletes[c.Name] = d
				}
				if f.State == api.FreshnessStale {
					counts[f.Reason]++
				}
			}
		}
		if len(p.Items) < pageSize {
			break
		}
	}
	for _, r := range Reasons {
		t.stale.WithLabelValues(r).Set(float64(counts[r]))
	}
	t.tracked.Set(float64(total))
	t.deletes.Reset()
	t.deleteOldest.Reset()
	for name, d := range deletes {
		t.deletes.WithLabelValues(name).Set(float64(d.n))
		t.deleteOldest.WithLabelValues(name).Set(max(0, now.Sub(d.oldest).Seconds()))
	}
	for _, a := range ages {
		t.age.Observe(a)
	}
	t.transitions(ctx, verdicts)
	return counts, nil
}

// transitions reports the bundles whose verdict moved since the last pass.
func (t *Tracker) transitions(ctx context.Context, verdicts map[string]string) {
	prev := t.prev
	t.prev = verdicts
	if t.onTransition == nil || prev == nil {
		return
	}
	var ids []string
	for id, v := range verdicts {
		if p, ok := prev[id]; ok && p != v {
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		t.onTransition(ctx, ids)
	}
}

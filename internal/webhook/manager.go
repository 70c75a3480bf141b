package webhook

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/api/search"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// Store is the durable state the webhook package uses (sqlstore.Store).
type Store interface {
	GetBundle(ctx context.Context, id string) (store.Bundle, error)
	LatestChange(ctx context.Context) (int64, error)
	ListSubscriptions(ctx context.Context) ([]store.Subscription, error)
	WebhookCursor(ctx context.Context) (int64, error)
	BundleSnapshots(ctx context.Context) (map[string]string, error)
	RecordWebhookBatch(ctx context.Context, b store.WebhookBatch) (dropped int64, err error)
	PendingSubscriptionEvents(ctx context.Context, id string, after int64, limit int) ([]store.SubscriptionEvent, error)
	AckSubscriptionEvent(ctx context.Context, id string, seq int64, at time.Time) error
	RecordSubscriptionFailure(ctx context.Context, id, reason string, at time.Time) error
}

// Changes is the change feed (watch.Broker): changes after since, in order;
// the channel closes when the subscriber falls behind.
type Changes interface {
	Subscribe(filter func(store.Change) bool, since int64) (<-chan store.Change, func())
}

// Freshness gives a bundle's verdict (freshness.Tracker).
type Freshness interface {
	Freshness(ctx context.Context, b store.Bundle) *api.Freshness
}

// Options configure a Manager. Zero values take the defaults.
type Options struct {
	// Timeout bounds one delivery (connect, send, answer); default 5 s.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts of a failing
	// delivery (doubling, 10% jitter); defaults 200 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// MaxBacklog bounds each subscription's undelivered events; default 10,000.
	MaxBacklog int
	// FailingAfter consecutive failed attempts mark a subscription Failing; default 3.
	FailingAfter int64
	// Resync is how often subscriptions are re-read from the store (writes
	// through another replica); default 10 s. Local writes call Reload.
	Resync time.Duration
	// Leading, when set, gates the generator and the workers: they run only
	// while it reports true (one replica of several delivers), checked every
	// second. Nil: always.
	Leading func() bool
	Client  *http.Client // default: a client with Timeout
	Clock   clock.WithTicker
	Logger  *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(10*time.Second, o.MinBackoff)
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = 10_000
	}
	if o.FailingAfter <= 0 {
		o.FailingAfter = 3
	}
	if o.Resync <= 0 {
		o.Resync = 10 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// backoff returns a fresh retry schedule.
func (o Options) backoff() wait.Backoff {
	return wait.Backoff{Duration: o.MinBackoff, Factor: 2, Jitter: 0.1, Steps: 1 << 30, Cap: o.MaxBackoff}
}

// Manager runs the generator and one delivery worker per subscription.
type Manager struct {
	st      Store
	changes Changes
	fresh   Freshness
	o       Options
	log     *slog.Logger
	resync  chan struct{} // subscriptions changed
	metrics *metrics

	mu      sync.Mutex
	workers map[string]*worker
}

// New returns a manager; Start runs it.
func New(st Store, changes Changes, fresh Freshness, o Options) *Manager {
	o = o.withDefaults()
	m := &Manager{st: st, changes: changes, fresh: fresh, o: o, log: o.Logger,
		resync: make(chan struct{}, 1), workers: map[string]*worker{}}
	m.metrics = newMetrics(m)
	return m
}

// State is the state a delivery record means: Failing after FailingAfter
// consecutive failed attempts, else Active.
func (m *Manager) State(d store.DeliveryState) string {
	if d.Failures >= m.o.FailingAfter {
		return api.SubscriptionFailing
	}
	return api.SubscriptionActive
}

// Reload re-reads the subscriptions now (call after creating or deleting one).
func (m *Manager) Reload() {
	select {
	case m.resync <- struct{}{}:
	default:
	}
}

func (m *Manager) kick(id string) {
	m.mu.Lock()
	w := m.workers[id]
	m.mu.Unlock()
	if w != nil {
		w.poke()
	}
}

// Start runs until ctx ends. Failures (store, change feed) are logged and
// retried with backoff; it returns nil when ctx ends.
func (m *Manager) Start(ctx context.Context) error {
	// Leadership is checked every second: a replica that just took the
	// lease starts delivering at once, one that lost it stops.
	t := m.o.Clock.NewTicker(min(m.o.Resync, time.Second))
	defer t.Stop()
	var stop func() // stops the running duties; nil while not leading
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		leading := m.o.Leading == nil || m.o.Leading()
		switch {
		case leading && stop == nil:
			stop = m.startDuties(ctx)
		case !leading && stop != nil:
			stop()
			stop = nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// startDuties starts the generator and the workers and returns the func
// that stops them and waits until they have.
func (m *Manager) startDuties(parent context.Context) func() {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		m.generate(ctx)
	}()
	go func() {
		defer wg.Done()
		m.superviseWorkers(ctx, &wg)
	}()
	return func() { cancel(); wg.Wait() }
}

// superviseWorkers keeps one worker per subscription until ctx ends.
func (m *Manager) superviseWorkers(ctx context.Context, wg *sync.WaitGroup) {
	t := m.o.Clock.NewTicker(m.o.Resync)
	defer t.Stop()
	defer func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		for id, w := range m.workers {
			w.cancel()
			delete(m.workers, id)
		}
	}()
	for {
		if err := m.sync(ctx, wg); err != nil && ctx.Err() == nil {
			m.log.Warn("webhook: read subscriptions", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-m.resync:
		case <-t.C():
		}
	}
}

// generate runs the generator, starting it again after a failure.
func (m *Manager) generate(ctx context.Context) {
	bo := m.o.backoff()
	for ctx.Err() == nil {
		g := &generator{m: m}
		err := g.init(ctx)
		if err == nil {
			err = g.run(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		d := bo.Step()
		m.log.Warn("webhook: generator stopped, restarting from its cursor", "err", err, "in", d)
		select {
		case <-ctx.Done():
		case <-m.o.Clock.After(d):
		}
	}
}

// loadSubscriptions reads the subscriptions and parses their filters.
func (m *Manager) loadSubscriptions(ctx context.Context) ([]*subscription, error) {
	stored, err := m.st.ListSubscriptions(ctx)
	if err != nil {
		return nil, err
	}
	subs := make([]*subscription, 0, len(stored))
	for _, s := range stored {
		f, err := search.Parse(s.Search, search.BundleFields)
		if err != nil { // validated on create; a bad one matches nothing
			m.log.Warn("webhook: subscription search", "subscription", s.Name, "err", err)
			continue
		}
		subs = append(subs, &subscription{Subscription: s, filter: f})
	}
	return subs, nil
}

// sync starts workers for new subscriptions and stops those of deleted ones.
func (m *Manager) sync(ctx context.Context, wg *sync.WaitGroup) error {
	subs, err := m.loadSubscriptions(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := map[string]bool{}
	for _, s := range subs {
		keep[s.ID] = true
		if w, ok := m.workers[s.ID]; ok {
			w.set(s.Subscription)
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		w := newWorker(m, s.Subscription, cancel)
		m.workers[s.ID] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(wctx)
		}()
	}
	for id, w := range m.workers {
		if !keep[id] {
			w.cancel()
			delete(m.workers, id)
		}
	}
	return nil
}

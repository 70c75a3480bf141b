// Package hub is the server side of the server–agent protocol, independent
// of the transport: it serves one session per connected agent (Attach),
// delivers specs from the store's outbox, ingests status and heartbeats,
// and resynchronises an agent on every Hello.
//
// Delivery (DESIGN.md I5): every spec sent is remembered per session until
// the agent acknowledges its generation; anything unacknowledged after the
// resend timeout is sent again, always as the bundle's current generation.
// New outbox events are picked up at once after Notify, and by a slow poll
// of the store (writes made by another replica or path).
//
// Sessions: the agent opens each session with Hello (possibly in batches);
// the hub records the agent connected under its epoch and resynchronises:
// bundles whose generation differs from what the agent holds are sent
// (deletions included, and deletions for ids the store does not know), as
// are bundles it holds under another incarnation than the consumer's
// record id (generations restart with a new consumer record), and
// status is requested where the store has none. Only then are outbox
// deliveries and status reports handled; a report that arrives earlier is
// left unacknowledged, so the agent sends it again. Every stored report is
// acknowledged, whether it was accepted, a duplicate or stale.
//
// Heartbeats carry a digest of the agent's status hashes. A mismatch, or a
// bundle the agent should hold but the digest lacks, is answered with
// StatusRequest; a bundle lacking from two digests in a row is sent again.
//
// Ordering: one goroutine reads a session's messages and handles them in
// order; a second one delivers specs. Which session serves a consumer is
// decided by the consumer's session lease in the store (lease.go): a newer
// session of the same agent supersedes the older one, another agent stands
// down. When a session ends the agent is recorded disconnected, unless a
// newer session (here or on another replica) holds it or a handover is
// under way.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/snowflake"
	"github.com/baton-dev/baton/internal/store"
)

// Defaults.
const (
	DefaultResendTimeout    = 2 * time.Second
	DefaultHeartbeatTimeout = 30 * time.Second
	DefaultPollInterval     = time.Second
	outboxPage              = 500
)

// Hub serves agent sessions against a store.
type Hub struct {
	st               store.Store
	leases           store.Leases
	clock            clock.WithTicker
	log              *slog.Logger
	serverID         string
	nodeID           int64
	ids              *snowflake.Generator
	resendTimeout    time.Duration
	heartbeatTimeout time.Duration
	pollInterval     time.Duration
	onChange         func()
	onAgentState     func(consumer string)
	live             func(ctx context.Context) (map[string]bool, error)
	reg              prometheus.Registerer
	metrics          *metrics
	startedAt        time.Time
	hellos           *rate.Limiter // Hello admission (admit.go)
	standbyRetry     time.Duration
	draining         atomic.Bool

	mu       sync.Mutex
	sessions map[string]*session          // consumer → current session
	standby  map[string]map[*session]bool // consumer → sessions of agents told to stand down
}

// Option configures a Hub.
type Option func(*Hub)

// WithClock sets the clock (default: the real clock).
func WithClock(c clock.WithTicker) Option { return func(h *Hub) { h.clock = c } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(h *Hub) { h.log = l } }

// WithServerID names this replica in the agents' state (default "baton").
func WithServerID(id string) Option { return func(h *Hub) { h.serverID = id } }

// WithLiveReplicas sets how the hub learns which replicas are alive: an
// agent recorded with a replica that is gone counts as disconnected at
// once, not only after the heartbeat timeout (default: only this one).
func WithLiveReplicas(f func(ctx context.Context) (map[string]bool, error)) Option {
	return func(h *Hub) { h.live = f }
}

// WithNodeID sets the snowflake node id of minted status sequence ids (default 1).
func WithNodeID(n int64) Option { return func(h *Hub) { h.nodeID = n } }

// WithResendTimeout sets how long a spec waits for its ack before it is sent again.
func WithResendTimeout(d time.Duration) Option { return func(h *Hub) { h.resendTimeout = d } }

// WithHeartbeatTimeout sets how long an agent may stay silent before it counts as disconnected.
func WithHeartbeatTimeout(d time.Duration) Option {
	return func(h *Hub) { h.heartbeatTimeout = d }
}

// WithPollInterval sets how often Start polls the store for pending outbox events.
func WithPollInterval(d time.Duration) Option { return func(h *Hub) { h.pollInterval = d } }

// WithRegisterer registers the hub's metrics (default: a private registry).
func WithRegisterer(r prometheus.Registerer) Option { return func(h *Hub) { h.reg = r } }

// WithChangeNotifier sets a function called after the hub changed a bundle
// (status accepted, bundle purged), e.g. the watch broker's Kick.
func WithChangeNotifier(f func()) Option { return func(h *Hub) { h.onChange = f } }

// WithAgentStateNotifier makes the hub call f with the consumer each time
// it records that the consumer's agent connected or went away, so caches of
// that state in this process (the freshness verdicts) never lag it.
func WithAgentStateNotifier(f func(consumer string)) Option {
	return func(h *Hub) { h.onAgentState = f }
}

// New returns a hub over st, which must also keep leases (store.Leases).
func New(st store.Store, opts ...Option) (*Hub, error) {
	ls, ok := st.(store.Leases)
	if !ok {
		return nil, fmt.Errorf("hub: store %T keeps no leases", st)
	}
	h := &Hub{
		st: st, leases: ls, clock: clock.RealClock{}, log: slog.Default(), serverID: "baton", nodeID: 1,
		resendTimeout: DefaultResendTimeout, heartbeatTimeout: DefaultHeartbeatTimeout,
		pollInterval: DefaultPollInterval, onChange: func() {}, onAgentState: func(string) {}, sessions: map[string]*session{},
		hellos:  rate.NewLimiter(DefaultHelloRate, DefaultHelloBurst),
		standby: map[string]map[*session]bool{}, standbyRetry: DefaultStandbyRetry,
	}
	for _, o := range opts {
		o(h)
	}
	ids, err := snowflake.New(h.nodeID, snowflake.WithClock(h.clock))
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	h.ids = ids
	if h.reg == nil {
		h.reg = prometheus.NewRegistry()
	}
	if h.metrics, err = newMetrics(h.reg); err != nil {
		return nil, fmt.Errorf("hub: register metrics: %w", err)
	}
	h.startedAt = h.clock.Now()
	return h, nil
}

// Notify tells the hub that consumer has new outbox events; a session of
// that consumer held by this hub delivers them at once.
func (h *Hub) Notify(consumer string) {
	if s := h.session(consumer); s != nil {
		s.kickDispatch()
	}
}

// NextSequenceID mints a status sequence id from the hub's snowflake
// generator. Other code that sends status to source clients (the Deleted
// status of a purged bundle) must mint from here, so ids of one bundle keep
// increasing.
func (h *Hub) NextSequenceID() string { return h.ids.NextString() }

// Connected reports whether this hub holds a session for consumer.
func (h *Hub) Connected(consumer string) bool { return h.session(consumer) != nil }

func (h *Hub) session(consumer string) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[consumer]
}

// Start runs the hub's background work until ctx ends: polling the store
// for pending outbox events of connected consumers, and marking agents that
// stopped heartbeating as disconnected.
func (h *Hub) Start(ctx context.Context) error {
	poll := h.clock.NewTicker(h.pollInterval)
	defer poll.Stop()
	sweep := h.clock.NewTicker(max(h.heartbeatTimeout/3, 10*time.Millisecond))
	defer sweep.Stop()
	h.sweep(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C():
			h.pollPending(ctx)
		case <-sweep.C():
			h.sweep(ctx)
		}
	}
}

func (h *Hub) pollPending(ctx context.Context) {
	consumers, err := h.st.ConsumersWithPending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("hub: list consumers with pending specs", "err", err)
		}
		return
	}
	for _, c := range consumers {
		h.Notify(c)
	}
}

// sweep marks disconnected every agent whose last heartbeat is older than
// the heartbeat timeout, and every agent this replica held before it
// restarted that has not come back.
func (h *Hub) sweep(ctx context.Context) {
	now := h.clock.Now()
	var live map[string]bool
	if h.live != nil {
		var err error
		if live, err = h.live(ctx); err != nil {
			if ctx.Err() == nil {
				h.log.Warn("hub: list live replicas", "err", err)
			}
			live = nil
		}
	}
	for page := 1; ; page++ {
		p, err := h.st.ListConsumers(ctx, store.ListOptions{Page: page, Size: 500})
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("hub: list consumers", "err", err)
			}
			return
		}
		for _, c := range p.Items {
			if c.Agent.Connected && h.expired(c, now, live) {
				h.setDisconnected(ctx, c.Name, c.Agent)
			}
		}
		if len(p.Items) < 500 {
			return
		}
	}
}

func (h *Hub) expired(c store.Consumer, now time.Time, live map[string]bool) bool {
	if s := h.session(c.Name); s != nil {
		return now.Sub(s.lastBeat()) > h.heartbeatTimeout
	}
	if c.Agent.ServerID == h.serverID && c.Agent.LastHeartbeat.Before(h.startedAt) {
		return true // held by this replica before a restart
	}
	if live != nil && c.Agent.ServerID != "" && c.Agent.ServerID != h.serverID && !live[c.Agent.ServerID] {
		return true // held by a replica that is gone
	}
	return now.Sub(c.Agent.LastHeartbeat) > h.heartbeatTimeout
}

func (h *Hub) setDisconnected(ctx context.Context, consumer string, s store.AgentState) {
	s.Connected = false
	if err := h.st.SetAgentState(ctx, consumer, s); err != nil {
		if !errors.Is(err, context.Canceled) {
			h.log.Warn("hub: mark agent disconnected", "consumer", consumer, "err", err)
		}
		return
	}
	h.onAgentState(consumer)
}

// Attach serves one agent session for consumer over conn until ctx ends or
// conn's receive channel closes. The session serves the consumer once its
// Hello holds the consumer's session lease. An unknown consumer is an
// error wrapping store.ErrNotFound; a decommissioned one an error wrapping
// ErrDecommissioned that says when and what to do.
func (h *Hub) Attach(ctx context.Context, consumer string, conn protocol.Conn) error {
	c, err := h.st.GetConsumer(ctx, consumer)
	if isGone(err) {
		return h.refuseDecommissioned(ctx, consumer, err)
	}
	if err != nil {
		return fmt.Errorf("hub: consumer %q: %w", consumer, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := newSession(h, consumer, conn, cancel)
	s.incarnation = c.ID
	h.metrics.sessions.Inc()
	defer h.metrics.sessions.Dec()
	defer close(s.done)
	defer h.detach(s)
	s.run(ctx)
	return nil
}

// detach forgets s and, if it served the consumer, releases the consumer
// and records the agent disconnected, unless a newer session took its
// place or a handover is under way.
func (h *Hub) detach(s *session) {
	h.forgetStandby(s)
	h.mu.Lock()
	current := h.sessions[s.consumer] == s
	if current {
		delete(h.sessions, s.consumer)
	}
	h.mu.Unlock()
	if !current {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if h.release(ctx, s) {
		return // the next session takes over; no disconnected flip
	}
	c, err := h.st.GetConsumer(ctx, s.consumer)
	if err != nil {
		h.log.Warn("hub: read consumer on disconnect", "consumer", s.consumer, "err", err)
		return
	}
	if c.Agent.ServerID != "" && c.Agent.ServerID != h.serverID {
		return // the agent is already with another replica
	}
	h.setDisconnected(ctx, s.consumer, c.Agent)
}

// Drain prepares a graceful stop: sessions that end from now on hand their
// consumers over (their agents reconnect to another replica) instead of
// recording them disconnected, and the agent endpoints should stop
// accepting. It returns at once.
func (h *Hub) Drain() { h.draining.Store(true) }

// Package watch fans bundle changes out to in-process subscribers and to
// REST watch streams.
//
// The store's change log is the single source of events: a Broker tails it
// (Start polls store.ChangesSince; Kick polls at once after a local write),
// so changes written by another replica or another code path are seen too,
// and every subscriber sees changes in change-sequence order.
//
// Ordering and backpressure: Publish never blocks. Each subscriber has a
// bounded queue; a subscriber that falls more than its queue behind is
// dropped — its channel is closed — and must resubscribe from the last
// sequence it saw. A subscriber that resumes from a sequence gets the
// store's backlog first and then live changes, with no gap and no duplicate.
package watch

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/store"
)

// FromNow, as Subscribe's since, asks for live changes only.
const FromNow int64 = -1

// Defaults.
const (
	DefaultPollInterval = 200 * time.Millisecond
	DefaultQueueSize    = 1024
	pageSize            = 500
)

// Broker broadcasts store changes to subscribers.
type Broker struct {
	st       store.Store
	clock    clock.WithTicker
	log      *slog.Logger
	interval time.Duration
	queue    int
	kick     chan struct{}
	ready    chan struct{} // closed once the poller knows where the log ends

	mu   sync.Mutex
	last int64 // highest sequence published
	subs map[*sub]struct{}
}

type sub struct {
	filter  func(store.Change) bool
	live    chan store.Change
	dropped bool
}

// Option configures a Broker.
type Option func(*Broker)

// WithClock sets the clock for the poll ticker.
func WithClock(c clock.WithTicker) Option { return func(b *Broker) { b.clock = c } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(b *Broker) { b.log = l } }

// WithPollInterval sets how often the change log is polled.
func WithPollInterval(d time.Duration) Option { return func(b *Broker) { b.interval = d } }

// WithQueueSize sets how many changes a subscriber may fall behind before it is dropped.
func WithQueueSize(n int) Option { return func(b *Broker) { b.queue = n } }

// New returns a broker over st.
func New(st store.Store, opts ...Option) *Broker {
	b := &Broker{
		st: st, clock: clock.RealClock{}, log: slog.Default(), interval: DefaultPollInterval,
		queue: DefaultQueueSize, kick: make(chan struct{}, 1), ready: make(chan struct{}), subs: map[*sub]struct{}{},
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Kick makes the poller read the change log now (call after a local write).
func (b *Broker) Kick() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Publish delivers c to every subscriber whose filter accepts it. Changes
// must be published in sequence order; one at or below the highest
// sequence already published is ignored. The poller is the normal caller.
func (b *Broker) Publish(c store.Change) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.Seq <= b.last {
		return
	}
	b.last = c.Seq
	for s := range b.subs {
		if s.dropped || (s.filter != nil && !s.filter(c)) {
			continue
		}
		select {
		case s.live <- c:
		default:
			s.dropped = true
			close(s.live)
		}
	}
}

// Backlog returns the number of subscribers and the changes published to
// them that they have not taken yet (a subscriber more than the queue size
// behind is dropped and must relist).
func (b *Broker) Backlog() (subscribers, queued int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if !s.dropped {
			subscribers++
			queued += len(s.live)
		}
	}
	return subscribers, queued
}

// Last returns the highest sequence published.
func (b *Broker) Last() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// Start tails the change log until ctx ends. It starts from the newest
// change, so history is only replayed to subscribers that ask for it.
func (b *Broker) Start(ctx context.Context) error {
	t := b.clock.NewTicker(b.interval)
	defer t.Stop()
	for {
		err := b.init(ctx)
		if err == nil {
			err = b.poll(ctx)
		}
		if err != nil && ctx.Err() == nil {
			b.log.Warn("watch: read change log", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		case <-b.kick:
		}
	}
}

// init starts publishing after the newest change, once.
func (b *Broker) init(ctx context.Context) error {
	select {
	case <-b.ready:
		return nil
	default:
	}
	latest, err := b.st.LatestChange(ctx)
	if err != nil {
		return fmt.Errorf("latest change: %w", err)
	}
	b.mu.Lock()
	if latest > b.last {
		b.last = latest
	}
	close(b.ready)
	b.mu.Unlock()
	return nil
}

// poll publishes every change after the last one published.
func (b *Broker) poll(ctx context.Context) error {
	for {
		changes, err := b.st.ChangesSince(ctx, b.Last(), pageSize)
		if err != nil {
			return err
		}
		for _, c := range changes {
			b.Publish(c)
		}
		if len(changes) < pageSize {
			return nil
		}
	}
}

// Subscribe returns changes accepted by filter (nil: all). With since >= 0
// the channel first carries the stored changes after since, then live ones;
// with FromNow only changes published after the call. The channel is closed
// when cancel is called, when the subscriber falls too far behind, or when
// reading the backlog fails; the caller then resubscribes from the last
// sequence it received.
func (b *Broker) Subscribe(filter func(store.Change) bool, since int64) (<-chan store.Change, func()) {
	s := &sub{filter: filter, live: make(chan store.Change, b.queue)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	cursor := b.last
	ready := isClosed(b.ready)
	b.mu.Unlock()
	if since != FromNow {
		cursor = since
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan store.Change)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		defer b.unsubscribe(s)
		b.forward(ctx, s, since != FromNow, !ready, cursor, out)
	}()
	return out, func() { cancel(); <-done }
}

func (b *Broker) unsubscribe(s *sub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, s)
	if !s.dropped {
		s.dropped = true
		close(s.live)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// forward sends the backlog after cursor (when backfill is set), then the
// live queue, skipping anything at or below the last sequence sent. The
// live queue holds every change after the last one published when the
// subscriber registered; if the poller had not started then (early), it
// holds only those after wherever the log ended when it did, so the
// backlog is read again up to there.
func (b *Broker) forward(ctx context.Context, s *sub, backfill, early bool, cursor int64, out chan<- store.Change) {
	send := func(c store.Change) bool {
		if c.Seq <= cursor {
			return true
		}
		select {
		case out <- c:
			cursor = c.Seq
			return true
		case <-ctx.Done():
			return false
		}
	}
	readBacklog := func() bool {
		for {
			changes, err := b.st.ChangesSince(ctx, cursor, pageSize)
			if err != nil {
				if ctx.Err() == nil {
					b.log.Warn("watch: read backlog", "since", cursor, "err", err)
				}
				return false
			}
			for _, c := range changes {
				if s.filter != nil && !s.filter(c) {
					cursor = c.Seq
					continue
				}
				if !send(c) {
					return false
				}
			}
			if len(changes) < pageSize {
				return true
			}
		}
	}
	if backfill {
		if !readBacklog() {
			return
		}
		if early {
			select {
			case <-b.ready:
			case <-ctx.Done():
				return
			}
			if !readBacklog() {
				return
			}
		}
	}
	for {
		select {
		case c, ok := <-s.live:
			if !ok || !send(c) {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

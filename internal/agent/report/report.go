// Package report is the agent's Reporter: it turns the evaluated status of
// every bundle into protocol.Status messages and keeps them flowing until the
// server acknowledges them (DESIGN.md I1, I5).
//
// Guarantees:
//   - Level, not edge: Set records the latest status of a bundle; a status
//     whose hash (protocol.HashStatus) and generation equal the last one
//     reported is not sent again. Changes within the coalesce window are
//     merged: only the last state is reported.
//   - Ordering: every report gets the next revision of an agent-wide counter
//     within the reporter's epoch, so revisions strictly increase across all
//     bundles. A new Reporter has a new epoch.
//   - At least once: the latest report of each bundle is kept until a
//     StatusAck with an equal or higher revision arrives, and re-sent (same
//     revision) every resend timeout. A newer report supersedes an unacked
//     older one. Send errors never lose state: while the link is down
//     nothing is sent; Resume (or the next resend tick) sends everything
//     unacked.
//   - Digest: every heartbeat interval a Heartbeat carries bundle id → hash
//     of the latest state of every bundle, split in batches (numbered from 1)
//     by protocol.Split so that each fits any transport.
//
// All methods are safe for concurrent use and never block on the network:
// sending happens in Start's goroutine, outside the reporter's lock.
package report

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/evaluate"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

// Sender delivers a message to the server. It returns an error when the
// message was not handed to the link (protocol.ErrDisconnected while the
// link is down); the Reporter then retries. protocol.Conn satisfies it.
type Sender interface {
	Send(ctx context.Context, m protocol.Message) error
}

// Defaults of the options.
const (
	DefaultCoalesce      = 20 * time.Millisecond
	DefaultHeartbeat     = 10 * time.Second
	DefaultResendTimeout = 2 * time.Second
	// tombstoneTTL is how long Set ignores a bundle whose deletion was acked.
	tombstoneTTL = 10 * time.Minute
)

// SentEvent describes one Status that left the Reporter (Send returned nil).
type SentEvent struct {
	BundleID string
	Revision int64
	Hash     string
	Deleted  bool
	// Resend is true when the same revision was sent before.
	Resend bool
	// At is the reporter clock's time after Send returned.
	At time.Time
}

// Stats are the Reporter's counters since New.
type Stats struct {
	Sent       uint64 // reports sent the first time
	Resent     uint64 // re-sends of an unacked revision
	Coalesced  uint64 // Set calls merged into a pending report
	Unchanged  uint64 // Set calls equal to what was already reported
	SendErrors uint64 // failed Send calls (status and heartbeat)
	Acked      uint64 // acks that settled a report
	Heartbeats uint64 // heartbeat messages sent
}

// Option configures a Reporter.
type Option func(*Reporter)

// WithClock sets the clock (default, also for nil: the real clock).
func WithClock(c clock.Clock) Option {
	return func(r *Reporter) {
		if c != nil {
			r.clock = c
		}
	}
}

// WithLogger sets the logger (default, also for nil: discard).
func WithLogger(l *slog.Logger) Option {
	return func(r *Reporter) {
		if l != nil {
			r.log = l
		}
	}
}

// WithCoalesce sets how long a change waits for further changes of the
// same bundle before it is reported (default 20 ms; 0 reports at once).
func WithCoalesce(d time.Duration) Option { return func(r *Reporter) { r.coalesce = d } }

// WithHeartbeat sets the heartbeat interval (default 10 s).
func WithHeartbeat(d time.Duration) Option { return func(r *Reporter) { r.heartbeat = d } }

// WithResendTimeout sets how long an unacked report waits before it is
// sent again, and how long sending pauses after a Send error (default 2 s).
func WithResendTimeout(d time.Duration) Option { return func(r *Reporter) { r.resend = d } }

// WithConsumer sets the consumer name put in every message.
func WithConsumer(name string) Option { return func(r *Reporter) { r.consumer = name } }

// WithEpoch sets the epoch (default, also for "": a new random UUID per
// Reporter).
func WithEpoch(e string) Option {
	return func(r *Reporter) {
		if e != "" {
			r.epoch = e
		}
	}
}

// WithOnSent registers a hook called, outside any lock and in Start's
// goroutine, after each Status was sent. It must not block.
func WithOnSent(f func(SentEvent)) Option { return func(r *Reporter) { r.onSent = f } }

// Reporter reports bundle statuses to the server; see the package doc.
type Reporter struct {
	sender    Sender
	clock     clock.Clock
	log       *slog.Logger
	coalesce  time.Duration
	heartbeat time.Duration
	resend    time.Duration
	consumer  string
	epoch     string
	onSent    func(SentEvent)
	wake      chan struct{}

	mu            sync.Mutex
	bundles       map[string]*entry
	dirty         map[string]struct{} // changed, waiting for the coalesce window
	unacked       map[string]struct{} // reported, not yet acked
	tombstones    map[string]tombstone
	revision      int64
	pausedUntil   time.Time // no sends before this (after a Send error)
	nextHeartbeat time.Time

	stats struct{ sent, resent, coalesced, unchanged, sendErrors, acked, heartbeats atomic.Uint64 }
}

// entry is the reporter's state of one bundle.
type entry struct {
	gen  int64
	st   api.ReportedStatus
	hash string
	// deleted: the final report (Deleted=true) replaces the status.
	deleted bool
	// dirtySince is when the first unreported change arrived.
	dirtySince time.Time
	// reportedGen and reportedHash describe the last report made.
	reportedGen  int64
	reportedHash string
	// pending is the last report until acked; sentAt is its last attempt
	// (zero: never attempted).
	pending *protocol.Status
	sentAt  time.Time
	sends   int
	// tooLarge is the hash of a state the transport refused as too large
	// (ErrTooLarge); st then holds its fallback (level 1 or 2, see
	// evaluate.Fallback), and a Set of that same state changes nothing.
	tooLarge string
	level    int
}

type tombstone struct {
	gen int64
	at  time.Time
}

// New returns a Reporter that sends through s. Start must run for anything
// to be sent.
func New(s Sender, opts ...Option) *Reporter {
	r := &Reporter{
		sender: s, clock: clock.RealClock{}, log: slog.New(slog.DiscardHandler),
		coalesce: DefaultCoalesce, heartbeat: DefaultHeartbeat, resend: DefaultResendTimeout,
		epoch: uuid.NewString(), wake: make(chan struct{}, 1),
		bundles: map[string]*entry{}, dirty: map[string]struct{}{}, unacked: map[string]struct{}{},
		tombstones: map[string]tombstone{},
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Epoch is the reporter's epoch, to be sent in Hello.
func (r *Reporter) Epoch() string { return r.epoch }

// Stats returns the counters.
func (r *Reporter) Stats() Stats {
	s := &r.stats
	return Stats{Sent: s.sent.Load(), Resent: s.resent.Load(), Coalesced: s.coalesced.Load(), Unchanged: s.unchanged.Load(),
		SendErrors: s.sendErrors.Load(), Acked: s.acked.Load(), Heartbeats: s.heartbeats.Load()}
}

// Set records the latest evaluated status of a bundle computed from spec
// generation gen. It is reported after the coalesce window unless it equals
// (hash and generation) the last report. A Set for a bundle being deleted,
// or whose deletion was acked recently, is ignored unless gen is newer.
func (r *Reporter) Set(bundleID string, gen int64, st api.ReportedStatus) {
	hash := protocol.HashStatus(st)
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	if ts, ok := r.tombstones[bundleID]; ok {
		if gen <= ts.gen {
			return
		}
		delete(r.tombstones, bundleID)
	}
	e := r.bundles[bundleID]
	if e == nil {
		e = &entry{}
		r.bundles[bundleID] = e
	}
	if e.deleted && gen <= e.gen {
		return
	}
	if e.tooLarge != "" {
		if hash == e.tooLarge && gen == e.gen {
			delete(r.dirty, bundleID) // still too large: its fallback stands
			r.stats.unchanged.Add(1)
			return
		}
		e.tooLarge, e.level = "", 0
	}
	e.gen, e.st, e.hash, e.deleted = gen, st, hash, false
	_, wasDirty := r.dirty[bundleID]
	switch {
	case e.reportedHash != "" && hash == e.reportedHash && gen == e.reportedGen:
		// Back to (or still at) what was last reported.
		delete(r.dirty, bundleID)
		r.stats.unchanged.Add(1)
	case wasDirty:
		r.stats.coalesced.Add(1)
	default:
		e.dirtySince = now
		r.dirty[bundleID] = struct{}{}
		r.signal()
	}
}

// MarkDeleted reports the removal of a bundle: a final Status with
// Deleted=true and the condition Deleted=True, sent at once and re-sent
// until acked; then the bundle is forgotten.
func (r *Reporter) MarkDeleted(bundleID string, gen int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	c := evaluate.Deleted()
	c.ObservedGeneration = gen
	c.LastTransitionTime = metav1.NewTime(now.UTC().Truncate(time.Second))
	st := api.ReportedStatus{Conditions: []metav1.Condition{c}}
	e := r.bundles[bundleID]
	if e == nil {
		e = &entry{}
		r.bundles[bundleID] = e
	}
	e.gen, e.st, e.hash, e.deleted = gen, st, protocol.HashStatus(st), true
	delete(r.dirty, bundleID)
	r.report(bundleID, e, now)
	r.signal()
}

// Revive lets a bundle whose deletion was reported be reported again at
// any generation: the server sent it anew, possibly in another incarnation
// whose generations restart below the deletion's.
func (r *Reporter) Revive(bundleID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.tombstones, bundleID)
	if e := r.bundles[bundleID]; e != nil {
		e.deleted = false
	}
}

// Forget drops a bundle without reporting anything (the server no longer
// expects reports for it).
func (r *Reporter) Forget(bundleID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.bundles, bundleID)
	delete(r.dirty, bundleID)
	delete(r.unacked, bundleID)
}

// Ack settles the pending report of a bundle when the ack is for this
// epoch and covers its revision. Older or foreign acks are ignored.
func (r *Reporter) Ack(a protocol.StatusAck) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.bundles[a.BundleID]
	if a.Epoch != r.epoch || e == nil || e.pending == nil || a.Revision < e.pending.Revision {
		return
	}
	r.stats.acked.Add(1)
	deleted := e.pending.Deleted
	e.pending = nil
	delete(r.unacked, a.BundleID)
	if deleted && e.deleted {
		delete(r.bundles, a.BundleID)
		r.tombstones[a.BundleID] = tombstone{gen: e.gen, at: r.clock.Now()}
	}
}

// Handle applies a server message meant for the reporter (StatusAck,
// StatusRequest) and reports whether it was one.
func (r *Reporter) Handle(m protocol.Message) bool {
	switch {
	case m.Type == protocol.TypeStatusAck && m.StatusAck != nil:
		r.Ack(*m.StatusAck)
	case m.Type == protocol.TypeStatusRequest && m.StatusRequest != nil:
		r.RequestStatus(m.StatusRequest.BundleIDs)
	default:
		return false
	}
	return true
}

// Resume says the link is up again: unacked reports are re-sent and a
// heartbeat goes out at once.
func (r *Reporter) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pausedUntil = time.Time{}
	for id := range r.unacked {
		r.bundles[id].sentAt = time.Time{}
	}
	r.nextHeartbeat = r.clock.Now()
	r.signal()
}

// RequestStatus answers a server StatusRequest: the latest status of each
// named bundle (all when ids is empty) is reported again as a new revision,
// even if unchanged. Unknown ids are ignored.
func (r *Reporter) RequestStatus(ids []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	if len(ids) == 0 {
		for id := range r.bundles {
			ids = append(ids, id)
		}
		sort.Strings(ids)
	}
	for _, id := range ids {
		if e := r.bundles[id]; e != nil {
			delete(r.dirty, id)
			r.report(id, e, now)
		}
	}
	r.signal()
}

// IDs returns the bundles the reporter holds a state of, sorted.
func (r *Reporter) IDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.bundles))
	for id := range r.bundles {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// report turns the entry's latest state into a new pending revision, due
// at once. Callers hold mu.
func (r *Reporter) report(id string, e *entry, now time.Time) {
	r.revision++
	e.pending = &protocol.Status{BundleID: id, Generation: e.gen, Epoch: r.epoch, Revision: r.revision,
		Reported: e.st, Hash: e.hash, Deleted: e.deleted, At: now}
	e.reportedGen, e.reportedHash = e.gen, e.hash
	e.sentAt, e.sends = time.Time{}, 0
	r.unacked[id] = struct{}{}
}

// signal wakes Start's loop without blocking.
func (r *Reporter) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

package hub

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
)

// dispatch delivers specs while the session lives: on every kick and every
// half resend timeout it sends pending outbox events and re-sends specs
// whose ack is overdue.
func (s *session) dispatch(ctx context.Context) {
	t := s.h.clock.NewTicker(max(s.h.resendTimeout/2, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C():
		}
		s.mu.Lock()
		ready := s.ready
		s.mu.Unlock()
		if !ready {
			continue
		}
		if err := s.flush(ctx); err != nil && ctx.Err() == nil {
			s.h.log.Debug("hub: deliver specs", "consumer", s.consumer, "err", err)
		}
	}
}

// flushBudget bounds the store work of one flush. A flush that used it up
// stops and runs again at once, reading the outbox afresh: a write queued
// meanwhile (a create behind thousands of deletes) waits for at most
// about this long, however slow the store is under load.
const flushBudget = 100 * time.Millisecond

// flush sends the current generation of every bundle with a pending event
// (chosen fairly: see pending) unless it is in flight and not overdue;
// then it re-sends overdue specs that have no outbox event (resync sends).
func (s *session) flush(ctx context.Context) error {
	queues, err := s.pending(ctx)
	if err != nil {
		return err
	}
	start := s.h.clock.Now()
	handled := map[string]bool{}
	var sent []int64
	defer func() {
		if len(sent) > 0 {
			if err := s.h.st.MarkSent(context.WithoutCancel(ctx), sent, s.h.clock.Now()); err != nil {
				s.h.log.Warn("hub: mark outbox sent", "consumer", s.consumer, "err", err)
			}
		}
	}()
	// Round robin over the operations: a create is among the first events
	// of a flush whatever the delete backlog.
	for i := 0; ; i++ {
		progressed := false
		for qi := range queues {
			q := &queues[qi]
			if i >= len(q.events) {
				continue
			}
			progressed = true
			ev := q.events[i]
			q.last = ev.Seq
			if handled[ev.BundleID] {
				continue
			}
			handled[ev.BundleID] = true
			ok, err := s.flushEvent(ctx, ev)
			if err != nil {
				return err
			}
			if ok {
				sent = append(sent, ev.Seq)
			}
		}
		if !progressed {
			break
		}
		if s.h.clock.Since(start) > flushBudget {
			s.keepCursors(queues, false)
			s.kickDispatch() // the rest in the next flush, with fresh writes first
			return nil
		}
	}
	s.keepCursors(queues, true)
	return s.resendOverdue(ctx, handled, outboxPage, start)
}

// flushEvent sends the spec one outbox event asks for, when due; sent says
// whether it did.
func (s *session) flushEvent(ctx context.Context, ev store.OutboxEvent) (sent bool, err error) {
	if !s.due(ev.BundleID, ev.Generation) && s.held(ev.BundleID) < ev.Generation {
		return false, nil // in flight and not overdue: no store read needed
	}
	if g := s.held(ev.BundleID); g >= ev.Generation {
		// The agent has it; the outbox missed the ack.
		return false, s.h.st.AckOutbox(ctx, s.consumer, ev.BundleID, g)
	}
	if ev.Op == store.OpOrphan {
		return s.flushOrphan(ctx, ev)
	}
	b, err := s.h.st.GetBundle(ctx, ev.BundleID)
	if isGone(err) || (err == nil && b.ConsumerName != s.consumer) {
		// Purged (or not this consumer's): nothing to deliver.
		return false, s.h.st.AckOutbox(ctx, s.consumer, ev.BundleID, ev.Generation)
	}
	if err != nil {
		return false, err
	}
	if !s.due(b.ID, b.Generation) {
		return false, nil
	}
	if err := s.sendSpec(ctx, specOf(b)); err != nil {
		if s.tooLarge(b.ID, b.Generation, err) {
			return false, nil // this bundle only; every other one keeps flowing
		}
		return false, err
	}
	return true, nil
}

// Operations the dispatcher reads separately, each with its own cursor.
var fairOps = []store.OutboxOp{store.OpUpsert, store.OpDelete, store.OpOrphan}

// opQueue is the share of one operation's pending events a flush reads.
type opQueue struct {
	op     store.OutboxOp
	events []store.OutboxEvent
	full   bool  // the share was filled: more may follow
	last   int64 // the last event handled
}

// pending returns the outbox events this flush handles, per operation
// (creates and updates, deletes, orphans): up to a third of outboxPage
// each, continuing after the last event the previous flush handled of it
// and starting over once the end is reached.
//
// Fairness (Maestro #562): a backlog of thousands of deletes that the
// agent does not confirm yet (finalizers, a slow apiserver, a busy agent)
// used to fill the one page read in sequence order, so a create queued
// behind it waited until the deletes were acknowledged. Now each operation
// has its own share of every flush, flush takes them in turn, and within
// one operation the cursor visits every bundle in turn; what is left
// behind is in flight and re-sent by resendOverdue.
func (s *session) pending(ctx context.Context) ([]opQueue, error) {
	share := max(outboxPage/len(fairOps), 1)
	out := make([]opQueue, 0, len(fairOps))
	for _, op := range fairOps {
		after := s.cursor[op]
		evs, err := s.h.st.PendingOutboxQuery(ctx, store.OutboxQuery{
			Consumer: s.consumer, Op: op, AfterSeq: after, Limit: share})
		if err != nil {
			return nil, err
		}
		if len(evs) < share && after > 0 {
			// The end: fill the share from the start.
			more, err := s.h.st.PendingOutboxQuery(ctx, store.OutboxQuery{
				Consumer: s.consumer, Op: op, Limit: share - len(evs)})
			if err != nil {
				return nil, err
			}
			for _, e := range more {
				if e.Seq > after {
					break
				}
				evs = append(evs, e)
			}
		}
		out = append(out, opQueue{op: op, events: evs, full: len(evs) == share})
	}
	return out, nil
}

// keepCursors records where the next flush continues for each operation:
// after the last event handled, or from the start once an operation's
// pending events were all handled (complete) and its share was not full.
func (s *session) keepCursors(queues []opQueue, complete bool) {
	for _, q := range queues {
		switch {
		case !complete || q.full:
			s.cursor[q.op] = q.last
		default:
			s.cursor[q.op] = 0
		}
	}
}

// flushOrphan delivers an OpOrphan event: the bundle was finalized without
// the agent, which is told to drop it and leave its objects. A bundle
// created again under the id meanwhile makes the event moot.
func (s *session) flushOrphan(ctx context.Context, ev store.OutboxEvent) (sent bool, err error) {
	b, err := s.h.st.GetBundle(ctx, ev.BundleID)
	switch {
	case err == nil && b.Generation > ev.Generation:
		return false, s.h.st.AckOutbox(ctx, s.consumer, ev.BundleID, ev.Generation)
	case err != nil && !isGone(err):
		return false, err
	}
	if !s.due(ev.BundleID, ev.Generation) {
		return false, nil
	}
	if err := s.sendSpec(ctx, orphanSpec(ev.BundleID, ev.Generation)); err != nil {
		return false, err
	}
	return true, nil
}

// due reports whether a spec of bundle id at generation gen should be sent:
// the agent has not acked it, and nothing as new is in flight or it has
// waited for its ack too long. (An outbox read can predate an ack the
// reader just handled; the ack record keeps that from causing a resend.)
func (s *session) due(id string, gen int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.acked[id]; ok && g >= gen {
		return false
	}
	if g, ok := s.undeliverable[id]; ok && g >= gen {
		return false
	}
	f, ok := s.inflight[id]
	return !ok || f.spec.Generation < gen || f.overdue(s.h.clock.Now(), s.h.resendTimeout)
}

// resendOverdue re-sends in-flight specs past the resend timeout that the
// outbox pass did not cover, as the bundle's current generation: at most
// limit of them, those waiting longest first, and only within the flush
// budget counted from start, so that one flush stays short however many
// thousands are unacknowledged (the next flush, and the new writes it
// carries, do not wait behind them; the rest are re-sent by later flushes).
func (s *session) resendOverdue(ctx context.Context, skip map[string]bool, limit int, start time.Time) error {
	var overdue []inflight
	s.mu.Lock()
	now := s.h.clock.Now()
	for id, f := range s.inflight {
		if !skip[id] && f.overdue(now, s.h.resendTimeout) {
			overdue = append(overdue, f)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(overdue, func(a, b inflight) int { return a.at.Compare(b.at) })
	for _, f := range overdue[:min(len(overdue), limit)] {
		if s.h.clock.Since(start) > flushBudget {
			return nil
		}
		spec := f.spec
		b, err := s.h.st.GetBundle(ctx, spec.BundleID)
		switch {
		case err == nil && b.ConsumerName == s.consumer:
			spec = specOf(b)
		case err == nil || isGone(err):
			if !spec.Deleting {
				s.forget(spec.BundleID, spec.Generation)
				continue
			}
			// A deletion of a bundle the store no longer has: repeat it
			// until the agent confirms.
		default:
			return err
		}
		if err := s.sendSpec(ctx, spec); err != nil {
			if s.tooLarge(spec.BundleID, spec.Generation, err) {
				continue
			}
			return err
		}
	}
	return nil
}

// tooLarge records a spec the transport refused as too large (a limit
// lowered after the API accepted it): it is not tried again in this
// session until its bundle gets a new generation, and its bundle turns
// Stale/NotDelivered. It reports whether err was that.
func (s *session) tooLarge(id string, gen int64, err error) bool {
	if !errors.Is(err, protocol.ErrTooLarge) {
		return false
	}
	s.mu.Lock()
	s.undeliverable[id] = gen
	delete(s.inflight, id)
	s.mu.Unlock()
	s.h.metrics.specs.WithLabelValues("too_large").Inc()
	s.h.log.Error("hub: spec too large for the transport; the bundle cannot be delivered until it changes",
		"consumer", s.consumer, "bundle", id, "generation", gen, "err", err)
	return true
}

// forget drops the in-flight spec of id if its generation is <= gen.
func (s *session) forget(id string, gen int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.inflight[id]; ok && f.spec.Generation <= gen {
		delete(s.inflight, id)
	}
}

// held returns the generation of id the agent is known to hold (0: none).
func (s *session) held(id string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[id]
}

// ackedUpTo records that the agent holds generation gen of id and drops
// the in-flight spec it answers.
func (s *session) ackedUpTo(id string, gen int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen > s.acked[id] {
		s.acked[id] = gen
	}
	if f, ok := s.inflight[id]; ok && f.spec.Generation <= gen {
		delete(s.inflight, id)
	}
}

// inflightIDs returns the bundle ids with a spec in flight.
func (s *session) inflightIDs() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.inflight))
	for id := range s.inflight {
		out[id] = true
	}
	return out
}

package hub

import (
	"context"
	"errors"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
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

// flush sends, in outbox order, the current generation of every bundle
// with a pending event unless it is in flight and not overdue; then it
// re-sends overdue specs that have no outbox event (resync sends).
func (s *session) flush(ctx context.Context) error {
	events, err := s.h.st.PendingOutbox(ctx, s.consumer, outboxPage)
	if err != nil {
		return err
	}
	handled := map[string]bool{}
	var sent []int64
	defer func() {
		if len(sent) > 0 {
			if err := s.h.st.MarkSent(context.WithoutCancel(ctx), sent, s.h.clock.Now()); err != nil {
				s.h.log.Warn("hub: mark outbox sent", "consumer", s.consumer, "err", err)
			}
		}
	}()
	for _, ev := range events {
		if handled[ev.BundleID] {
			continue
		}
		handled[ev.BundleID] = true
		if g := s.held(ev.BundleID); g >= ev.Generation {
			// The agent has it; the outbox missed the ack.
			if err := s.h.st.AckOutbox(ctx, s.consumer, ev.BundleID, g); err != nil {
				return err
			}
			continue
		}
		b, err := s.h.st.GetBundle(ctx, ev.BundleID)
		if isGone(err) || (err == nil && b.ConsumerName != s.consumer) {
			// Purged (or not this consumer's): nothing to deliver.
			if err := s.h.st.AckOutbox(ctx, s.consumer, ev.BundleID, ev.Generation); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if !s.due(b.ID, b.Generation) {
			continue
		}
		if err := s.sendSpec(ctx, specOf(b)); err != nil {
			if s.tooLarge(b.ID, b.Generation, err) {
				continue // this bundle only; every other one keeps flowing
			}
			return err
		}
		sent = append(sent, ev.Seq)
	}
	return s.resendOverdue(ctx, handled)
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
// outbox pass did not cover, as the bundle's current generation.
func (s *session) resendOverdue(ctx context.Context, skip map[string]bool) error {
	var overdue []protocol.Spec
	s.mu.Lock()
	now := s.h.clock.Now()
	for id, f := range s.inflight {
		if !skip[id] && f.overdue(now, s.h.resendTimeout) {
			overdue = append(overdue, f.spec)
		}
	}
	s.mu.Unlock()
	for _, spec := range overdue {
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

package hub

import (
	"context"
	"fmt"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
)

// onSpecAck acknowledges the outbox up to the acked generation. A Gone ack
// of a bundle marked deleting completes its deletion; a Gone ack of a live
// bundle at its current generation means the agent lost it, so it is sent
// again.
//
// The ack is recorded in the session first, so the dispatcher neither
// re-sends the spec meanwhile nor later: if the outbox write fails, the
// dispatcher acknowledges the event when it next meets it.
func (s *session) onSpecAck(ctx context.Context, a *protocol.SpecAck) {
	s.mu.Lock()
	active := s.active
	s.mu.Unlock()
	if !active {
		return // an agent standing by holds nothing of this consumer
	}
	s.ackedUpTo(a.BundleID, a.Generation)
	defer s.kickDispatch()
	if err := s.h.st.AckOutbox(ctx, s.consumer, a.BundleID, a.Generation); err != nil {
		if ctx.Err() == nil {
			s.h.log.Warn("hub: ack outbox", "consumer", s.consumer, "bundle", a.BundleID, "err", err)
		}
		return
	}
	if !a.Gone {
		return
	}
	b, err := s.h.st.GetBundle(ctx, a.BundleID)
	if isGone(err) || (err == nil && b.ConsumerName != s.consumer) {
		// Finalized without the agent (or never known): the agent dropped
		// it, so the Orphan is done.
		s.forgetAll(a.BundleID)
		if err := s.h.st.ForgetOrphan(ctx, s.consumer, a.BundleID, a.Generation); err != nil && ctx.Err() == nil {
			s.h.log.Warn("hub: forget orphan", "consumer", s.consumer, "bundle", a.BundleID, "err", err)
		}
		return
	}
	if err != nil {
		s.h.log.Warn("hub: read bundle", "bundle", a.BundleID, "err", err)
		return
	}
	if b.DeletedAt == nil {
		if a.Generation >= b.Generation {
			s.forgetAll(b.ID)
			_ = s.sendSpec(ctx, specOf(b))
		}
		return
	}
	if err := s.h.st.PurgeBundle(ctx, b.ID, a.Generation); err != nil {
		s.h.log.Warn("hub: purge bundle", "bundle", b.ID, "generation", a.Generation, "err", err)
		return
	}
	s.forgetAll(b.ID)
	s.h.onChange()
}

// onStatus stores a status report and always acknowledges it once stored
// (accepted, confirmed, stale or unknown) so the agent stops re-sending. A
// store failure leaves it unacknowledged: the agent re-sends.
//
// Before the session's Hello completed, the store may not know the agent's
// epoch yet and would refuse the report as stale; it is dropped unacked
// and the agent re-sends it.
func (s *session) onStatus(ctx context.Context, st *protocol.Status) {
	s.mu.Lock()
	ready := s.ready
	s.mu.Unlock()
	if !ready {
		return
	}
	s.mu.Lock()
	s.msgSeq++
	s.statusSeq[st.BundleID] = s.msgSeq
	s.mu.Unlock()
	if err := s.ingestStatus(ctx, st); err != nil {
		if ctx.Err() != nil {
			return
		}
		s.h.log.Warn("hub: store status", "consumer", s.consumer, "bundle", st.BundleID, "err", err)
		return
	}
	// Queued, not sent: the reader must not wait on an agent that does
	// not read (see statusAcks).
	s.ackLater(protocol.StatusAck{Epoch: st.Epoch, BundleID: st.BundleID, Revision: st.Revision})
}

func (s *session) ingestStatus(ctx context.Context, st *protocol.Status) error {
	hash := st.Hash
	if hash == "" {
		hash = protocol.HashStatus(st.Reported)
	}
	start := s.h.clock.Now()
	res, b, err := s.h.st.ApplyStatus(ctx, store.StatusUpdate{
		ConsumerName: s.consumer, BundleID: st.BundleID,
		AgentEpoch: st.Epoch, AgentRevision: st.Revision,
		ObservedGeneration: st.Generation, Reported: st.Reported, Hash: hash,
		SequenceID: s.h.ids.NextString(), Deleted: st.Deleted, At: s.h.clock.Now(),
	})
	if err != nil {
		return fmt.Errorf("bundle %s: apply status: %w", st.BundleID, err)
	}
	now := s.h.clock.Now()
	s.h.metrics.status.WithLabelValues(resultName(res)).Inc()
	s.h.metrics.statusProc.Observe(now.Sub(start).Seconds())
	if res == store.StatusAccepted && b.Status.Revision == 1 && !b.CreatedAt.IsZero() {
		s.h.metrics.firstStatus.Observe(max(0, now.Sub(b.CreatedAt).Seconds()))
	}
	if res == store.StatusAccepted || res == store.StatusConfirmed {
		s.mu.Lock()
		if !st.Deleted && st.Reported.Unconfirmed() > 0 {
			s.unconfirmed[st.BundleID] = true
		} else {
			delete(s.unconfirmed, st.BundleID)
		}
		s.mu.Unlock()
	}
	switch res {
	case store.StatusPurged:
		s.forgetAll(st.BundleID)
		s.h.onChange()
	case store.StatusAccepted, store.StatusConfirmed:
		s.h.onChange() // a confirmation may move the observed generation
	}
	return nil
}

func (s *session) forgetAll(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, id)
	delete(s.acked, id)
	delete(s.missing, id)
	delete(s.unconfirmed, id)
}

// onHeartbeat records the agent alive and hands a complete digest to the
// session's digest checker (see checkDigest), so that checking thousands of
// bundles does not hold up the Status messages behind the heartbeat.
func (s *session) onHeartbeat(ctx context.Context, m *protocol.Heartbeat) {
	s.mu.Lock()
	epoch, ready := s.epoch, s.ready
	s.mu.Unlock()
	if !ready || (m.Epoch != "" && m.Epoch != epoch) {
		return // a Hello must come first; a foreign epoch proves nothing
	}
	if m.Batch <= 1 {
		s.renew(ctx) // once per heartbeat, however many parts it has
	}
	if ctx.Err() != nil {
		return // the lease went elsewhere
	}
	now := s.h.clock.Now()
	state := store.AgentState{Connected: true, Epoch: epoch, LastHeartbeat: now, ServerID: s.h.serverID}
	if err := s.h.st.SetAgentState(ctx, s.consumer, state); err != nil {
		if isGone(err) {
			// Decommissioned (or deleted) meanwhile: the session ends, and
			// the agent's next connect is refused.
			s.h.log.Info("hub: consumer removed; ending its agent session", "consumer", s.consumer)
			s.cancel()
			return
		}
		s.h.log.Warn("hub: record heartbeat", "consumer", s.consumer, "err", err)
	}
	s.mu.Lock()
	s.beat = now
	digest, complete := s.digest.add(epoch, m.Batch, m.Batches, m.Digest)
	s.msgSeq++
	job := digestJob{digest: digest, seq: s.msgSeq}
	s.mu.Unlock()
	if !complete {
		return
	}
	// Only this goroutine sends: after dropping an unchecked older digest
	// there is room for the new one.
	select {
	case <-s.digests:
	default:
	}
	s.digests <- job
}

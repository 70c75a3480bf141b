package hub

import (
	"context"
	"fmt"

	"github.com/baton-dev/baton/internal/store"
)

// digestJob is a complete digest and the msgSeq of the heartbeat that
// completed it.
type digestJob struct {
	digest map[string]string
	seq    int64
}

// checkDigests checks the digests onHeartbeat hands over until ctx ends.
func (s *session) checkDigests(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-s.digests:
			if err := s.checkDigestSkipping(ctx, job.digest, s.statusesAfter(job.seq)); err != nil && ctx.Err() == nil {
				s.h.log.Warn("hub: check digest", "consumer", s.consumer, "err", err)
			}
			s.h.onChange() // a digest may flip DigestMismatch
		}
	}
}

// checkDigest confirms every bundle of the digest: a bundle whose hash
// differs from the stored one, or which the store expects the agent to hold
// but the digest lacks, is asked for again with StatusRequest. A bundle
// lacking from two digests in a row is also sent again (the agent lost it).
func (s *session) checkDigest(ctx context.Context, digest map[string]string) error {
	return s.checkDigestSkipping(ctx, digest, nil)
}

// checkDigestSkipping is checkDigest leaving the bundles in newer alone:
// their Status arrived after the heartbeat, so the digest is older than
// what the store holds.
func (s *session) checkDigestSkipping(ctx context.Context, digest map[string]string, newer map[string]bool) error {
	now := s.h.clock.Now()
	confirm := digest
	if len(newer) > 0 {
		confirm = make(map[string]string, len(digest))
		for id, hash := range digest {
			if !newer[id] {
				confirm[id] = hash
			}
		}
	}
	// One store call for the whole digest; ids unknown to the store are
	// left out of its answer (the next Hello's resync removes them).
	request, err := s.h.st.ConfirmStatuses(ctx, s.consumer, confirm, now)
	if err != nil {
		return fmt.Errorf("confirm statuses: %w", err)
	}
	lost, err := s.expectedMissing(ctx, digest, newer)
	if err != nil {
		return err
	}
	for _, b := range lost {
		s.mu.Lock()
		s.missing[b.ID]++
		again := s.missing[b.ID] >= 2
		if again {
			delete(s.missing, b.ID)
		}
		s.mu.Unlock()
		if !again {
			request = append(request, b.ID)
			continue
		}
		s.forgetAll(b.ID) // the agent lost it
		if err := s.sendSpec(ctx, specOf(b)); err != nil {
			return err
		}
	}
	if err := s.requestStatus(ctx, request); err != nil {
		return fmt.Errorf("request status: %w", err)
	}
	return nil
}

// statusesAfter returns the bundles with a Status handled after message seq
// and forgets the older entries. Bundles whose stored status is
// unconfirmed are returned too: a digest proves the agent holds that
// status, not that its objects are current.
func (s *session) statusesAfter(seq int64) map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	newer := map[string]bool{}
	for id := range s.unconfirmed {
		newer[id] = true
	}
	for id, n := range s.statusSeq {
		if n > seq {
			newer[id] = true
		} else {
			delete(s.statusSeq, id)
		}
	}
	return newer
}

// expectedMissing returns the bundles the agent should hold (nothing to
// deliver for them) that digest lacks, and forgets the miss count of the
// rest. Bundles in present count as held.
func (s *session) expectedMissing(ctx context.Context, digest map[string]string, present map[string]bool) ([]store.Bundle, error) {
	bundles, err := s.h.st.ListBundlesByConsumer(ctx, s.consumer)
	if err != nil {
		return nil, fmt.Errorf("list bundles: %w", err)
	}
	pending, err := s.h.st.PendingOutbox(ctx, s.consumer, outboxPage)
	if err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	busy := s.inflightIDs()
	for _, ev := range pending {
		busy[ev.BundleID] = true
	}
	full := len(pending) < outboxPage
	var lost []store.Bundle
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range bundles {
		if _, ok := digest[b.ID]; ok || present[b.ID] || busy[b.ID] || !full {
			delete(s.missing, b.ID)
			continue
		}
		lost = append(lost, b)
	}
	return lost, nil
}

package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/baton-dev/baton/internal/store"
)

// ApplyStatus stores an agent report under the ordering rules of
// store.Store:
//   - the consumer's current agent epoch must equal u.AgentEpoch (a
//     consumer without an epoch adopts it); otherwise StatusStale;
//   - a bundle that does not exist or belongs to another consumer is
//     StatusUnknown;
//   - u.Deleted purges a bundle marked deleting when u.ObservedGeneration
//     reaches its generation (StatusPurged), and is StatusStale otherwise;
//   - the report must come from a newer epoch than the stored status or
//     carry a higher agent revision; otherwise StatusStale;
//   - an unchanged hash is StatusConfirmed (ConfirmedAt, agent revision and
//     observed generation move; Revision does not); anything else is
//     StatusAccepted at Revision+1.
//
// The returned bundle is the state after the call (before the purge for
// StatusPurged, the stored state for StatusStale, empty for StatusUnknown).
func (s *Store) ApplyStatus(ctx context.Context, u store.StatusUpdate) (store.StatusResult, store.Bundle, error) {
	at := u.At
	if at.IsZero() {
		at = s.now()
	}
	at = norm(at)
	var (
		res store.StatusResult
		out store.Bundle
	)
	err := s.write(ctx, func(db conn) error {
		var err error
		res, out, err = s.applyStatus(ctx, db, u, at)
		return err
	})
	if err != nil {
		return store.StatusUnknown, store.Bundle{}, err
	}
	return res, out, nil
}

func (s *Store) applyStatus(ctx context.Context, db conn, u store.StatusUpdate, at time.Time) (store.StatusResult, store.Bundle, error) {
	ok, err := checkEpoch(ctx, db, u.ConsumerName, u.AgentEpoch)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.StatusUnknown, store.Bundle{}, nil
		}
		return 0, store.Bundle{}, err
	}
	if !ok {
		return store.StatusStale, store.Bundle{}, nil
	}
	b, err := getBundle(ctx, db, u.BundleID, true)
	if errors.Is(err, store.ErrNotFound) || (err == nil && b.ConsumerName != u.ConsumerName) {
		return store.StatusUnknown, store.Bundle{}, nil
	}
	if err != nil {
		return 0, store.Bundle{}, err
	}
	if u.Deleted {
		if b.DeletedAt == nil || u.ObservedGeneration < b.Generation {
			return store.StatusStale, b, nil
		}
		if b.ChangeSeq, err = purge(ctx, db, b, at); err != nil {
			return 0, store.Bundle{}, err
		}
		return store.StatusPurged, b, nil
	}
	st := b.Status
	if u.AgentEpoch == st.AgentEpoch && u.AgentRevision <= st.AgentRevision {
		return store.StatusStale, b, nil
	}
	if st.Revision > 0 && u.Hash == st.Hash {
		return confirm(ctx, db, b, u, at)
	}
	return accept(ctx, db, b, u, at)
}

// Fixed queries of status writes.
var (
	qAgentEpoch    = prepared(`SELECT agent_epoch FROM consumers WHERE name = ?`)
	qAdoptEpoch    = prepared(`UPDATE consumers SET agent_epoch = ? WHERE name = ?`)
	qConfirmReport = prepared(`UPDATE bundles SET agent_epoch = ?, agent_revision = ?, observed_generation = ?,
		confirmed_at = ?, digest_mismatch = ?, change_seq = ? WHERE id = ?`)
	qAcceptReport = prepared(`UPDATE bundles SET status = ?, observed_generation = ?, revision = ?, sequence_id = ?,
		agent_epoch = ?, agent_revision = ?, status_hash = ?, reported_at = ?, confirmed_at = ?,
		digest_mismatch = ?, change_seq = ? WHERE id = ?`)
	qConfirmDigest = prepared(`UPDATE bundles SET confirmed_at = ?, digest_mismatch = ?, change_seq = ? WHERE id = ?`)
)

// checkEpoch reports whether epoch is the consumer's current agent epoch,
// adopting it when the consumer has none.
func checkEpoch(ctx context.Context, db conn, consumer, epoch string) (bool, error) {
	var cur string
	err := db.row(ctx, qAgentEpoch+db.d.forNoKeyUpdate, consumer).Scan(&cur)
	if err != nil {
		return false, notFound(err, "consumer %q", consumer)
	}
	if cur == epoch {
		return true, nil
	}
	if cur != "" {
		return false, nil
	}
	if _, err := db.exec(ctx, qAdoptEpoch, epoch, consumer); err != nil {
		return false, fmt.Errorf("consumer %q: adopt epoch: %w", consumer, err)
	}
	return true, nil
}

// confirm records a report whose content equals the stored status.
func confirm(ctx context.Context, db conn, b store.Bundle, u store.StatusUpdate, at time.Time) (store.StatusResult, store.Bundle, error) {
	st := &b.Status
	visible := st.ObservedGeneration != u.ObservedGeneration || st.DigestMismatch
	st.AgentEpoch, st.AgentRevision, st.ObservedGeneration = u.AgentEpoch, u.AgentRevision, u.ObservedGeneration
	st.DigestMismatch = false
	if at.After(st.ConfirmedAt) {
		st.ConfirmedAt = at
	}
	if visible {
		seq, err := addChange(ctx, db, &b, store.ChangeUpdated, at)
		if err != nil {
			return 0, store.Bundle{}, err
		}
		b.ChangeSeq = seq
	}
	_, err := db.exec(ctx, qConfirmReport, st.AgentEpoch, st.AgentRevision, st.ObservedGeneration, st.ConfirmedAt, false, b.ChangeSeq, b.ID)
	if err != nil {
		return 0, store.Bundle{}, fmt.Errorf("bundle %s: confirm status: %w", b.ID, err)
	}
	return store.StatusConfirmed, b, nil
}

// accept stores a report as the bundle's next status revision.
func accept(ctx context.Context, db conn, b store.Bundle, u store.StatusUpdate, at time.Time) (store.StatusResult, store.Bundle, error) {
	reported, err := json.Marshal(u.Reported)
	if err != nil {
		return 0, store.Bundle{}, fmt.Errorf("bundle %s: status: %v: %w", b.ID, err, store.ErrInvalid)
	}
	b.Status = store.Status{
		Reported:           u.Reported,
		ObservedGeneration: u.ObservedGeneration,
		Revision:           b.Status.Revision + 1,
		SequenceID:         u.SequenceID,
		AgentEpoch:         u.AgentEpoch,
		AgentRevision:      u.AgentRevision,
		Hash:               u.Hash,
		ReportedAt:         at,
		ConfirmedAt:        at,
	}
	if b.ChangeSeq, err = addChange(ctx, db, &b, store.ChangeUpdated, at); err != nil {
		return 0, store.Bundle{}, err
	}
	st := &b.Status
	_, err = db.exec(ctx, qAcceptReport, string(reported), st.ObservedGeneration, st.Revision, st.SequenceID, st.AgentEpoch, st.AgentRevision,
		st.Hash, at, at, false, b.ChangeSeq, b.ID)
	if err != nil {
		return 0, store.Bundle{}, fmt.Errorf("bundle %s: accept status: %w", b.ID, err)
	}
	return store.StatusAccepted, b, nil
}

// ConfirmStatus compares an agent's digest with the stored hash. A match
// moves ConfirmedAt to at (never backwards) and clears DigestMismatch; a
// mismatch sets DigestMismatch. A flip of DigestMismatch is a change
// (new ChangeSeq); a plain confirmation is not. A bundle of another consumer
// is ErrNotFound.
func (s *Store) ConfirmStatus(ctx context.Context, consumer, bundleID, hash string, at time.Time) (bool, error) {
	if at.IsZero() {
		at = s.now()
	}
	at = norm(at)
	var match bool
	err := s.write(ctx, func(db conn) error {
		b, err := getBundle(ctx, db, bundleID, true)
		if err != nil {
			return err
		}
		if b.ConsumerName != consumer {
			return fmt.Errorf("bundle %s of consumer %q: %w", bundleID, consumer, store.ErrNotFound)
		}
		st := &b.Status
		match = hash == st.Hash
		if match == !st.DigestMismatch && (!match || !at.After(st.ConfirmedAt)) {
			return nil // nothing moves
		}
		if match == st.DigestMismatch {
			if b.ChangeSeq, err = addChange(ctx, db, &b, store.ChangeUpdated, at); err != nil {
				return err
			}
		}
		confirmed := st.ConfirmedAt
		if match && at.After(confirmed) {
			confirmed = at
		}
		_, err = db.exec(ctx, qConfirmDigest, nullTime(confirmed), !match, b.ChangeSeq, b.ID)
		if err != nil {
			return fmt.Errorf("bundle %s: confirm status: %w", bundleID, err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return match, nil
}

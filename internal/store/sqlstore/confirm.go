package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/baton-dev/baton/internal/store"
)

// confirmChunk bounds the bundles one ConfirmStatuses transaction handles,
// which keeps its IN lists well under both databases' parameter limits and
// lets other writers run between the chunks of a very large digest.
const confirmChunk = 1000

// ConfirmStatuses compares a whole digest with the stored hashes of the
// consumer's bundles, confirmChunk bundles per transaction. It reads only
// the narrow columns it needs (not the bundle's spec or status), moves
// ConfirmedAt of every matching bundle with one UPDATE, and flips
// DigestMismatch (taking a change sequence value) only for the bundles
// whose mismatch state changes, exactly as ConfirmStatus does. Ids the
// consumer does not hold are ignored: they are neither confirmed nor
// returned as mismatched.
func (s *Store) ConfirmStatuses(ctx context.Context, consumer string, digest map[string]string, at time.Time) ([]string, error) {
	if at.IsZero() {
		at = s.now()
	}
	at = norm(at)
	ids := make([]string, 0, len(digest))
	for id := range digest {
		ids = append(ids, id)
	}
	slices.Sort(ids) // rows are locked in id order (PostgreSQL)
	var mismatched []string
	for chunk := range slices.Chunk(ids, confirmChunk) {
		var mis []string
		err := s.write(ctx, func(db conn) error {
			var err error
			mis, err = confirmChunkOf(ctx, db, consumer, chunk, digest, at)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("consumer %q: confirm statuses: %w", consumer, err)
		}
		mismatched = append(mismatched, mis...)
	}
	return mismatched, nil
}

// digestRow is what ConfirmStatuses reads of a bundle.
type digestRow struct {
	id, source, hash string
	mismatch         bool
	confirmed        time.Time
}

// confirmChunkOf is ConfirmStatuses for the bundles ids (at most
// confirmChunk) in transaction db; it returns the mismatched ids. It only
// assigns outside the database, so the batcher may run it again.
func confirmChunkOf(ctx context.Context, db conn, consumer string, ids []string, digest map[string]string, at time.Time) ([]string, error) {
	rows, err := readDigestRows(ctx, db, consumer, ids)
	if err != nil {
		return nil, err
	}
	var (
		mismatched []string
		move       []any // ids whose ConfirmedAt moves, DigestMismatch unchanged
	)
	for _, r := range rows {
		match := digest[r.id] == r.hash
		if !match {
			mismatched = append(mismatched, r.id)
		}
		switch {
		case match != r.mismatch: // DigestMismatch stays
			if match && at.After(r.confirmed) {
				move = append(move, r.id)
			}
		default: // DigestMismatch flips: a visible change
			if err := flipMismatch(ctx, db, consumer, r, match, at); err != nil {
				return nil, err
			}
		}
	}
	if len(move) > 0 {
		q := `UPDATE bundles SET confirmed_at = ? WHERE consumer_name = ? AND id IN (` + placeholders(len(move)) + `)`
		args := append([]any{at, consumer}, move...)
		if _, err := db.exec(ctx, q, args...); err != nil {
			return nil, fmt.Errorf("confirm %d bundles: %w", len(move), err)
		}
	}
	return mismatched, nil
}

// readDigestRows reads id, hash, mismatch state and confirmation time of
// the consumer's bundles among ids, locking them (PostgreSQL).
func readDigestRows(ctx context.Context, db conn, consumer string, ids []string) ([]digestRow, error) {
	q := `SELECT id, source, status_hash, digest_mismatch, confirmed_at FROM bundles
		WHERE consumer_name = ? AND id IN (` + placeholders(len(ids)) + `) ORDER BY id` + db.d.forNoKeyUpdate
	args := make([]any, 0, len(ids)+1)
	args = append(args, consumer)
	for _, id := range ids {
		args = append(args, id)
	}
	rs, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read %d digest rows: %w", len(ids), err)
	}
	defer rs.Close()
	out := make([]digestRow, 0, len(ids))
	for rs.Next() {
		var (
			r         digestRow
			confirmed sql.NullTime
		)
		if err := rs.Scan(&r.id, &r.source, &r.hash, &r.mismatch, &confirmed); err != nil {
			return nil, fmt.Errorf("read digest rows: %w", err)
		}
		r.confirmed = timeOf(confirmed)
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read digest rows: %w", err)
	}
	return out, nil
}

// flipMismatch records a change of r's DigestMismatch to !match: a change
// sequence value, and ConfirmedAt moved to at on a match.
func flipMismatch(ctx context.Context, db conn, consumer string, r digestRow, match bool, at time.Time) error {
	b := store.Bundle{ID: r.id, ConsumerName: consumer, Source: r.source}
	seq, err := addChange(ctx, db, &b, store.ChangeUpdated, at)
	if err != nil {
		return err
	}
	confirmed := r.confirmed
	if match && at.After(confirmed) {
		confirmed = at
	}
	if _, err := db.exec(ctx, qConfirmDigest, nullTime(confirmed), !match, seq, r.id); err != nil {
		return fmt.Errorf("bundle %s: confirm status: %w", r.id, err)
	}
	return nil
}

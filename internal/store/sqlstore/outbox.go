package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/baton-dev/baton/internal/store"
)

// Fixed queries of the outbox, counters and change log.
var (
	qNextGeneration = prepared(`INSERT INTO bundle_generations (id, generation) VALUES (?, 1)
		ON CONFLICT (id) DO UPDATE SET generation = bundle_generations.generation + 1
		RETURNING generation`)
	qNextCounter  = prepared(`UPDATE counters SET value = value + 1 WHERE name = ? RETURNING value`)
	qInsertChange = prepared(`INSERT INTO changes (seq, bundle_id, consumer_name, source, type, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`)
	qSupersedeOutbox = prepared(`DELETE FROM outbox WHERE bundle_id = ? AND generation < ?`)
	qInsertOutbox    = prepared(`INSERT INTO outbox (seq, consumer_name, bundle_id, generation, op, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`)
	qPendingOutbox = prepared(`SELECT seq, consumer_name, bundle_id, generation, op, created_at, attempts, last_sent_at
		FROM outbox WHERE consumer_name = ? ORDER BY seq`)
	qPendingOutboxLimit = prepared(qPendingOutbox + ` LIMIT ?`)
	qOutboxAfter        = prepared(`SELECT seq, consumer_name, bundle_id, generation, op, created_at, attempts, last_sent_at
		FROM outbox WHERE consumer_name = ? AND seq > ? ORDER BY seq LIMIT ?`)
	qOutboxOpAfter = prepared(`SELECT seq, consumer_name, bundle_id, generation, op, created_at, attempts, last_sent_at
		FROM outbox WHERE consumer_name = ? AND seq > ? AND op = ? ORDER BY seq LIMIT ?`)
	qAckOutbox            = prepared(`DELETE FROM outbox WHERE consumer_name = ? AND bundle_id = ? AND generation <= ?`)
	qConsumersWithPending = prepared(`SELECT DISTINCT consumer_name FROM outbox ORDER BY consumer_name`)
	qChangesSince         = prepared(`SELECT seq, bundle_id, consumer_name, source, type FROM changes WHERE seq > ? ORDER BY seq`)
	qChangesSinceLimit    = prepared(qChangesSince + ` LIMIT ?`)
	qLatestChange         = prepared(`SELECT value FROM counters WHERE name = 'change'`)
	qOldestOutbox         = prepared(`SELECT created_at FROM outbox WHERE op <> 'orphan' ORDER BY created_at LIMIT 1`)
)

// nextGeneration raises the high-water mark of id and returns it: 1 for a
// new id, one above the last generation ever given to id otherwise.
func nextGeneration(ctx context.Context, db conn, id string) (int64, error) {
	var g int64
	err := db.row(ctx, qNextGeneration, id).Scan(&g)
	if err != nil {
		return 0, fmt.Errorf("bundle %s: next generation: %w", id, err)
	}
	return g, nil
}

// nextCounter increments a row of the counters table and returns the new
// value. On PostgreSQL the row stays locked until commit.
func nextCounter(ctx context.Context, db conn, name string) (int64, error) {
	var v int64
	err := db.row(ctx, qNextCounter, name).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("counter %s: next: %w", name, err)
	}
	return v, nil
}

// addChange takes the next change sequence value and logs a change of b.
func addChange(ctx context.Context, db conn, b *store.Bundle, t store.ChangeType, now time.Time) (int64, error) {
	seq, err := nextCounter(ctx, db, "change")
	if err != nil {
		return 0, err
	}
	_, err = db.exec(ctx, qInsertChange, seq, b.ID, b.ConsumerName, b.Source, string(t), now)
	if err != nil {
		return 0, fmt.Errorf("bundle %s: log change: %w", b.ID, err)
	}
	return seq, nil
}

// addOutbox queues a spec event for b at its current generation and drops
// the bundle's older pending events, which the new one supersedes.
func addOutbox(ctx context.Context, db conn, b *store.Bundle, op store.OutboxOp, now time.Time) error {
	if _, err := db.exec(ctx, qSupersedeOutbox, b.ID, b.Generation); err != nil {
		return fmt.Errorf("bundle %s: outbox: %w", b.ID, err)
	}
	seq, err := nextCounter(ctx, db, "outbox")
	if err != nil {
		return err
	}
	_, err = db.exec(ctx, qInsertOutbox, seq, b.ConsumerName, b.ID, b.Generation, string(op), now)
	if err != nil {
		return fmt.Errorf("bundle %s: outbox: %w", b.ID, err)
	}
	return nil
}

// PendingOutbox returns up to limit unacknowledged events of a consumer in
// sequence order; limit <= 0 means all.
func (s *Store) PendingOutbox(ctx context.Context, consumer string, limit int) ([]store.OutboxEvent, error) {
	q, args := qPendingOutbox, []any{consumer}
	if limit > 0 {
		q, args = qPendingOutboxLimit, append(args, limit)
	}
	return s.pendingOutbox(ctx, consumer, q, args)
}

func (s *Store) pendingOutbox(ctx context.Context, consumer, q string, args []any) ([]store.OutboxEvent, error) {
	rows, err := s.reader().query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("consumer %q: pending outbox: %w", consumer, err)
	}
	defer rows.Close()
	out := []store.OutboxEvent{}
	for rows.Next() {
		var (
			e    store.OutboxEvent
			op   string
			sent sql.NullTime
		)
		if err := rows.Scan(&e.Seq, &e.ConsumerName, &e.BundleID, &e.Generation, &op,
			&e.CreatedAt, &e.Attempts, &sent); err != nil {
			return nil, fmt.Errorf("consumer %q: pending outbox: %w", consumer, err)
		}
		e.Op, e.CreatedAt, e.LastSentAt = store.OutboxOp(op), e.CreatedAt.UTC(), timePtr(sent)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("consumer %q: pending outbox: %w", consumer, err)
	}
	return out, nil
}

// PendingOutboxQuery returns the pending events q selects, in sequence order.
func (s *Store) PendingOutboxQuery(ctx context.Context, q store.OutboxQuery) ([]store.OutboxEvent, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = math.MaxInt32
	}
	if q.Op == "" {
		return s.pendingOutbox(ctx, q.Consumer, qOutboxAfter, []any{q.Consumer, q.AfterSeq, limit})
	}
	return s.pendingOutbox(ctx, q.Consumer, qOutboxOpAfter, []any{q.Consumer, q.AfterSeq, string(q.Op), limit})
}

// MarkSent counts a delivery attempt of each event at time at. Unknown
// (already acknowledged) sequences are ignored.
func (s *Store) MarkSent(ctx context.Context, seqs []int64, at time.Time) error {
	if len(seqs) == 0 {
		return nil
	}
	if at.IsZero() {
		at = s.now()
	}
	args := make([]any, 0, len(seqs)+1)
	args = append(args, norm(at))
	for _, q := range seqs {
		args = append(args, q)
	}
	err := s.write(ctx, func(db conn) error {
		_, err := db.exec(ctx, `UPDATE outbox SET attempts = attempts + 1, last_sent_at = ?
			WHERE seq IN (`+placeholders(len(seqs))+`)`, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox: mark sent: %w", err)
	}
	return nil
}

// AckOutbox deletes every event of the bundle with generation <= generation.
func (s *Store) AckOutbox(ctx context.Context, consumer, bundleID string, generation int64) error {
	err := s.write(ctx, func(db conn) error {
		_, err := db.exec(ctx, qAckOutbox, consumer, bundleID, generation)
		return err
	})
	if err != nil {
		return fmt.Errorf("bundle %s: ack outbox: %w", bundleID, err)
	}
	return nil
}

// ConsumersWithPending lists, by name, the consumers with pending events.
func (s *Store) ConsumersWithPending(ctx context.Context) ([]string, error) {
	rows, err := s.reader().query(ctx, qConsumersWithPending)
	if err != nil {
		return nil, fmt.Errorf("outbox: consumers with pending: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("outbox: consumers with pending: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// OldestPendingOutbox returns when the oldest unacknowledged outbox event
// was written; the zero time when there is none.
func (s *Store) OldestPendingOutbox(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := s.reader().row(ctx, qOldestOutbox).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("outbox: oldest pending: %w", err)
	}
	return t.UTC(), nil
}

// ChangesSince returns up to limit changes with Seq > seq in order; limit
// <= 0 means all.
func (s *Store) ChangesSince(ctx context.Context, seq int64, limit int) ([]store.Change, error) {
	q, args := qChangesSince, []any{seq}
	if limit > 0 {
		q, args = qChangesSinceLimit, append(args, limit)
	}
	rows, err := s.reader().query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("changes since %d: %w", seq, err)
	}
	out, err := scanChanges(rows, false)
	if err != nil {
		return nil, fmt.Errorf("changes since %d: %w", seq, err)
	}
	return out, nil
}

// scanChanges reads change rows (seq, bundle_id, consumer_name, source,
// type, and created_at when withTime) and closes rows.
func scanChanges(rows *sql.Rows, withTime bool) ([]store.Change, error) {
	defer rows.Close()
	out := []store.Change{}
	for rows.Next() {
		var (
			c store.Change
			t string
		)
		dest := []any{&c.Seq, &c.BundleID, &c.Consumer, &c.Source, &t}
		if withTime {
			dest = append(dest, &c.At)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		c.Type, c.At = store.ChangeType(t), c.At.UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// LatestChange returns the highest change sequence value (0 before any change).
func (s *Store) LatestChange(ctx context.Context) (int64, error) {
	var v int64
	if err := s.reader().row(ctx, qLatestChange).Scan(&v); err != nil {
		return 0, fmt.Errorf("latest change: %w", err)
	}
	return v, nil
}

// PruneChanges deletes change log entries with Seq <= seq and returns how
// many it removed. Watchers that resume from an older value must relist.
func (s *Store) PruneChanges(ctx context.Context, seq int64) (int64, error) {
	var n int64
	err := s.write(ctx, func(db conn) error {
		res, err := db.exec(ctx, `DELETE FROM changes WHERE seq <= ?`, seq)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("changes: prune to %d: %w", seq, err)
	}
	return n, nil
}

// placeholders returns "?, ?, …" with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

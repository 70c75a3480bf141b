package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/baton-dev/baton/internal/store"
)

// qCreateBundlePG is the whole of a create on PostgreSQL as one statement:
// one round trip. The counters rows are taken
// after the generation (each counter CTE joins the one before), so the
// change counter's row lock, which orders commits, is held for the inserts
// and the commit only. Statement order matches the other writers: the
// generation row, then the change counter, then the outbox counter.
const qCreateBundlePG = `WITH g AS (
	INSERT INTO bundle_generations (id, generation) VALUES ($1::text, 1)
	ON CONFLICT (id) DO UPDATE SET generation = bundle_generations.generation + 1
	RETURNING generation
), c AS (
	UPDATE counters SET value = counters.value + 1 FROM g WHERE counters.name = 'change'
	RETURNING counters.value
), o AS (
	UPDATE counters SET value = counters.value + 1 FROM c WHERE counters.name = 'outbox'
	RETURNING counters.value
), b AS (
	INSERT INTO bundles (id, name, consumer_name, source, labels, meta, spec, manifests,
		generation, first_generation, created_at, updated_at, change_seq)
	SELECT $1::text, $2::text, $3::text, $4::text, $5::jsonb, $6::text, $7::text, $8::text,
		g.generation, g.generation, $9::timestamptz, $9::timestamptz, c.value
	FROM g, c
), ch AS (
	INSERT INTO changes (seq, bundle_id, consumer_name, source, type, created_at)
	SELECT c.value, $1::text, $3::text, $4::text, $10::text, $9::timestamptz FROM c
), sup AS (
	DELETE FROM outbox USING g WHERE outbox.bundle_id = $1::text AND outbox.generation < g.generation
), ob AS (
	INSERT INTO outbox (seq, consumer_name, bundle_id, generation, op, created_at)
	SELECT o.value, $3::text, $1::text, g.generation, $11::text, $9::timestamptz FROM o, g
)
SELECT g.generation, c.value FROM g, c`

// createBundlePG stores a new bundle on PostgreSQL with qCreateBundlePG.
// The only events a new bundle can supersede are the OpOrphan event of an
// earlier life of its id (purging deletes the others, and a consumer's
// events go with the consumer).
func createBundlePG(ctx context.Context, db conn, b *store.Bundle, enc encodedBundle, now time.Time) error {
	w := createStatementPG(b, enc, now)
	if err := w.scan(db.row(ctx, w.query, w.args...)); err != nil {
		return createError(b, err)
	}
	return nil
}

// createStatementPG returns qCreateBundlePG with its arguments for b.
func createStatementPG(b *store.Bundle, enc encodedBundle, now time.Time) *pgStatement {
	return &pgStatement{
		query: qCreateBundlePG,
		args: []any{b.ID, b.Name, b.ConsumerName, b.Source, enc.labels, enc.meta, enc.spec, enc.manifests, now,
			string(store.ChangeCreated), string(store.OpUpsert)},
		scan: func(r rowScanner) error {
			err := r.Scan(&b.Generation, &b.ChangeSeq)
			b.FirstGeneration = b.Generation
			return err
		},
	}
}

// qWebhookBatchPG records a webhook batch without events on PostgreSQL in
// one statement: the cursor, the snapshots kept ($2, $3) and the ones
// dropped ($4). The two sets of bundle ids are disjoint.
const qWebhookBatchPG = `WITH c AS (
	UPDATE counters SET value = $1::bigint WHERE name = 'webhook'
), u AS (
	INSERT INTO bundle_snapshots (bundle_id, snapshot)
	SELECT * FROM unnest($2::text[], $3::text[])
	ON CONFLICT (bundle_id) DO UPDATE SET snapshot = EXCLUDED.snapshot
), d AS (
	DELETE FROM bundle_snapshots WHERE bundle_id = ANY($4::text[])
)
SELECT 1`

// webhookStatementPG returns qWebhookBatchPG with its arguments for b, or
// nil when b has events (they take their subscriptions' seqs one by one).
func webhookStatementPG(b store.WebhookBatch) *pgStatement {
	if len(b.Events) > 0 {
		return nil
	}
	ids, snaps, gone := []string{}, []string{}, []string{}
	for id, snap := range b.Snapshots {
		if snap == "" {
			gone = append(gone, id)
		} else {
			ids, snaps = append(ids, id), append(snaps, snap)
		}
	}
	return &pgStatement{query: qWebhookBatchPG, args: []any{b.Cursor, ids, snaps, gone},
		scan: func(r rowScanner) error { var one int; return r.Scan(&one) }}
}

// pgStatement is a write that is one statement returning one row. Writes
// that are (PostgreSQL creates) can share a transaction without a round
// trip each: the batch is pipelined.
type pgStatement struct {
	query string
	args  []any
	scan  func(rowScanner) error
}

// pipeline runs the statements of reqs as one pipelined batch: one round
// trip, one implicit transaction, one commit. Any error rolls back all of
// them; the caller then runs each write on its own.
func (s *Store) pipeline(reqs []*writeReq) error {
	ctx := context.Background()
	c, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: pipeline: %w", err)
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("sqlstore: pipeline: driver connection is %T", dc)
		}
		batch := &pgx.Batch{}
		for _, r := range reqs {
			batch.Queue(r.pg.query, r.pg.args...)
		}
		br := sc.Conn().SendBatch(ctx, batch)
		for _, r := range reqs {
			if err := r.pg.scan(br.QueryRow()); err != nil {
				_ = br.Close()
				return err
			}
		}
		return br.Close()
	})
}

// retry runs fn again while PostgreSQL aborts it for a deadlock or a
// serialization failure, up to maxAttempts runs.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := range maxAttempts {
		if err = fn(); err == nil || !isRetryable(err) || attempt == maxAttempts-1 {
			break
		}
		s.log.Debug("retrying transaction", "error", err, "attempt", attempt+1)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return err
}

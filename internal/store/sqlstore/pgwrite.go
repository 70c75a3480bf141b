package sqlstore

import (
	"context"
	"time"

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
		generation, created_at, updated_at, change_seq)
	SELECT $1::text, $2::text, $3::text, $4::text, $5::jsonb, $6::text, $7::text, $8::text,
		g.generation, $9::timestamptz, $9::timestamptz, c.value
	FROM g, c
), ch AS (
	INSERT INTO changes (seq, bundle_id, consumer_name, source, type, created_at)
	SELECT c.value, $1::text, $3::text, $4::text, $10::text, $9::timestamptz FROM c
), ob AS (
	INSERT INTO outbox (seq, consumer_name, bundle_id, generation, op, created_at)
	SELECT o.value, $3::text, $1::text, g.generation, $11::text, $9::timestamptz FROM o, g
)
SELECT g.generation, c.value FROM g, c`

// createBundlePG stores a new bundle on PostgreSQL with qCreateBundlePG.
// A new bundle has no outbox events to supersede: purging a bundle deletes
// its events, and a consumer's events go with the consumer.
func createBundlePG(ctx context.Context, db conn, b *store.Bundle, enc encodedBundle, now time.Time) error {
	err := db.row(ctx, qCreateBundlePG, b.ID, b.Name, b.ConsumerName, b.Source,
		enc.labels, enc.meta, enc.spec, enc.manifests, now,
		string(store.ChangeCreated), string(store.OpUpsert)).Scan(&b.Generation, &b.ChangeSeq)
	if err != nil {
		return createError(b, err)
	}
	return nil
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

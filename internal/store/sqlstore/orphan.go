package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/baton-dev/baton/internal/store"
)

// Fixed queries of orphaned bundles and decommissioned consumers.
var (
	qUpsertOrphan = prepared(`INSERT INTO orphaned_bundles (id, consumer_name, generation, orphaned_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET consumer_name = excluded.consumer_name,
		generation = excluded.generation, orphaned_at = excluded.orphaned_at`)
	qOrphans = prepared(`SELECT id, consumer_name, generation, orphaned_at FROM orphaned_bundles
		WHERE consumer_name = ? ORDER BY id`)
	qForgetOrphan       = prepared(`DELETE FROM orphaned_bundles WHERE consumer_name = ? AND id = ? AND generation <= ?`)
	qForgetOrphanOutbox = prepared(`DELETE FROM outbox WHERE consumer_name = ? AND bundle_id = ? AND op = 'orphan'
		AND generation <= ?`)
	qClearOrphan        = prepared(`DELETE FROM orphaned_bundles WHERE id = ?`)
	qUpsertDecommission = prepared(`INSERT INTO decommissioned_consumers (name, consumer_id, bundles, decommissioned_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET consumer_id = excluded.consumer_id,
		bundles = excluded.bundles, decommissioned_at = excluded.decommissioned_at`)
	qGetDecommission = prepared(`SELECT name, consumer_id, bundles, decommissioned_at FROM decommissioned_consumers
		WHERE name = ?`)
	qClearDecommission = prepared(`DELETE FROM decommissioned_consumers WHERE name = ?`)
)

// OrphanBundle finalizes a bundle without its agent (see store.Store).
func (s *Store) OrphanBundle(ctx context.Context, id string) (store.Bundle, error) {
	var out store.Bundle
	err := s.write(ctx, func(db conn) error {
		cur, err := getBundle(ctx, db, id, true)
		if err != nil {
			return err
		}
		now := s.now()
		if out, err = orphan(ctx, db, cur, now); err != nil {
			return err
		}
		return addOutbox(ctx, db, &out, store.OpOrphan, now)
	})
	if err != nil {
		return store.Bundle{}, err
	}
	return out, nil
}

// orphan removes b and records its Orphan at a new generation; it returns
// b marked deleting at that generation.
func orphan(ctx context.Context, db conn, b store.Bundle, now time.Time) (store.Bundle, error) {
	gen, err := nextGeneration(ctx, db, b.ID)
	if err != nil {
		return store.Bundle{}, err
	}
	if b.ChangeSeq, err = purge(ctx, db, b, now); err != nil {
		return store.Bundle{}, err
	}
	if _, err := db.exec(ctx, qUpsertOrphan, b.ID, b.ConsumerName, gen, now); err != nil {
		return store.Bundle{}, fmt.Errorf("bundle %s: record orphan: %w", b.ID, err)
	}
	b.Generation = gen
	if b.DeletedAt == nil {
		b.DeletedAt = &now
	}
	return b, nil
}

// DecommissionConsumer removes a consumer and finalizes all its bundles
// (see store.Store), in one transaction.
func (s *Store) DecommissionConsumer(ctx context.Context, idOrName string) (store.Decommission, error) {
	var d store.Decommission
	err := s.write(ctx, func(db conn) error {
		c, err := getConsumer(ctx, db, idOrName)
		if err != nil {
			return err
		}
		bundles, err := queryBundles(ctx, db, qBundlesByConsumer, c.Name)
		if err != nil {
			return fmt.Errorf("consumer %q: decommission: %w", c.Name, err)
		}
		now := s.now()
		for _, b := range bundles {
			if _, err := orphan(ctx, db, b, now); err != nil {
				return fmt.Errorf("consumer %q: decommission: %w", c.Name, err)
			}
		}
		if _, err := db.exec(ctx, `DELETE FROM outbox WHERE consumer_name = ?`, c.Name); err != nil {
			return fmt.Errorf("consumer %q: decommission: %w", c.Name, err)
		}
		if _, err := db.exec(ctx, `DELETE FROM consumers WHERE id = ?`, c.ID); err != nil {
			return fmt.Errorf("consumer %q: decommission: %w", c.Name, err)
		}
		d = store.Decommission{Name: c.Name, ConsumerID: c.ID, Bundles: len(bundles), At: now}
		if _, err := db.exec(ctx, qUpsertDecommission, d.Name, d.ConsumerID, d.Bundles, now); err != nil {
			return fmt.Errorf("consumer %q: decommission: %w", c.Name, err)
		}
		return nil
	})
	if err != nil {
		return store.Decommission{}, err
	}
	return d, nil
}

// Decommissioned returns the Decommission of a consumer name.
func (s *Store) Decommissioned(ctx context.Context, name string) (store.Decommission, error) {
	var d store.Decommission
	err := s.reader().row(ctx, qGetDecommission, name).Scan(&d.Name, &d.ConsumerID, &d.Bundles, &d.At)
	if err != nil {
		return store.Decommission{}, notFound(err, "consumer %q: decommission", name)
	}
	d.At = d.At.UTC()
	return d, nil
}

// Orphans lists the Orphans of a consumer, by bundle id.
func (s *Store) Orphans(ctx context.Context, consumer string) ([]store.Orphan, error) {
	rows, err := s.reader().query(ctx, qOrphans, consumer)
	if err != nil {
		return nil, fmt.Errorf("consumer %q: orphans: %w", consumer, err)
	}
	defer rows.Close()
	out := []store.Orphan{}
	for rows.Next() {
		var o store.Orphan
		if err := rows.Scan(&o.BundleID, &o.ConsumerName, &o.Generation, &o.At); err != nil {
			return nil, fmt.Errorf("consumer %q: orphans: %w", consumer, err)
		}
		o.At = o.At.UTC()
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("consumer %q: orphans: %w", consumer, err)
	}
	return out, nil
}

// ForgetOrphan removes the Orphan of a bundle at generation <= gen and its
// OpOrphan outbox events.
func (s *Store) ForgetOrphan(ctx context.Context, consumer, bundleID string, gen int64) error {
	err := s.write(ctx, func(db conn) error {
		if _, err := db.exec(ctx, qForgetOrphan, consumer, bundleID, gen); err != nil {
			return err
		}
		_, err := db.exec(ctx, qForgetOrphanOutbox, consumer, bundleID, gen)
		return err
	})
	if err != nil {
		return fmt.Errorf("bundle %s: forget orphan: %w", bundleID, err)
	}
	return nil
}

// PendingDeletes is the delete backlog of one consumer: bundles marked
// deleting and not yet confirmed by the agent, and when the oldest of them
// was asked for.
type PendingDeletes struct {
	Consumer string
	Count    int
	Oldest   time.Time
}

// PendingDeletes returns the delete backlog of every consumer that has one,
// by consumer name.
func (s *Store) PendingDeletes(ctx context.Context) ([]PendingDeletes, error) {
	rows, err := s.reader().query(ctx, `SELECT consumer_name, deleted_at FROM bundles
		WHERE deleted_at IS NOT NULL ORDER BY consumer_name, deleted_at`)
	if err != nil {
		return nil, fmt.Errorf("pending deletes: %w", err)
	}
	defer rows.Close()
	var out []PendingDeletes
	for rows.Next() {
		var (
			name string
			at   sql.NullTime
		)
		if err := rows.Scan(&name, &at); err != nil {
			return nil, fmt.Errorf("pending deletes: %w", err)
		}
		if n := len(out); n > 0 && out[n-1].Consumer == name {
			out[n-1].Count++
			continue
		}
		out = append(out, PendingDeletes{Consumer: name, Count: 1, Oldest: timeOf(at)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending deletes: %w", err)
	}
	return out, nil
}

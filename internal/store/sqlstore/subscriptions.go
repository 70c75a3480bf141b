package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/baton-dev/baton/internal/store"
)

// Webhook subscriptions, their queued events and the generator's state
// (package webhook). These are not part of store.Store: only the webhook
// package and the REST subscription routes use them, through interfaces of
// their own.

const subscriptionCols = `s.id, s.name, s.url, s.secret, s.search, s.events, s.headers, s.created_at,
	s.last_success, s.last_error, s.last_error_at, s.failures, s.delivered, s.dropped,
	(SELECT COUNT(*) FROM subscription_events e WHERE e.subscription_id = s.id),
	(SELECT MIN(e.created_at) FROM subscription_events e WHERE e.subscription_id = s.id)`

// CreateSubscription stores sub with a new id. A taken name is ErrConflict.
func (s *Store) CreateSubscription(ctx context.Context, sub store.Subscription) (store.Subscription, error) {
	sub.ID = uuid.NewString()
	sub.CreatedAt = s.now()
	sub.Delivery = store.DeliveryState{}
	events, err := json.Marshal(nonNil(sub.Events))
	if err != nil {
		return store.Subscription{}, err
	}
	headers, err := json.Marshal(sub.Headers)
	if err != nil {
		return store.Subscription{}, err
	}
	err = s.write(ctx, func(db conn) error {
		// The first subscription pins where the webhook generator starts,
		// so changes after it are delivered even if the generator (another
		// replica, one waiting for the lease) starts later.
		if _, err := db.exec(ctx, `UPDATE counters SET value = (SELECT c.value FROM counters c WHERE c.name = 'change')
			WHERE name = 'webhook' AND value < 0`); err != nil {
			return err
		}
		_, err := db.exec(ctx, `INSERT INTO subscriptions (id, name, url, secret, search, events, headers, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, sub.ID, sub.Name, sub.URL, sub.Secret, sub.Search, string(events), string(headers), sub.CreatedAt)
		return err
	})
	if err != nil {
		if isUnique(err) {
			return store.Subscription{}, fmt.Errorf("subscription %q: create: %w", sub.Name, store.ErrConflict)
		}
		return store.Subscription{}, fmt.Errorf("subscription %q: create: %w", sub.Name, err)
	}
	return sub, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ListSubscriptions returns every subscription by name, with its delivery state.
func (s *Store) ListSubscriptions(ctx context.Context) ([]store.Subscription, error) {
	return s.querySubscriptions(ctx, `SELECT `+subscriptionCols+` FROM subscriptions s ORDER BY s.name`)
}

// GetSubscription finds a subscription by id or by name.
func (s *Store) GetSubscription(ctx context.Context, idOrName string) (store.Subscription, error) {
	subs, err := s.querySubscriptions(ctx, `SELECT `+subscriptionCols+` FROM subscriptions s WHERE s.id = ? OR s.name = ?`, idOrName, idOrName)
	if err != nil {
		return store.Subscription{}, err
	}
	if len(subs) == 0 {
		return store.Subscription{}, fmt.Errorf("subscription %q: %w", idOrName, store.ErrNotFound)
	}
	return subs[0], nil
}

func (s *Store) querySubscriptions(ctx context.Context, q string, args ...any) ([]store.Subscription, error) {
	rows, err := s.reader().query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: %w", err)
	}
	defer rows.Close()
	var out []store.Subscription
	for rows.Next() {
		var (
			sub                    store.Subscription
			events, headers        string
			success, errAt, oldest sql.NullTime
			oldestRaw              any
		)
		d := &sub.Delivery
		if err := rows.Scan(&sub.ID, &sub.Name, &sub.URL, &sub.Secret, &sub.Search, &events, &headers, &sub.CreatedAt,
			&success, &d.LastError, &errAt, &d.Failures, &d.Delivered, &d.Dropped, &d.Backlog, &oldestRaw); err != nil {
			return nil, fmt.Errorf("subscriptions: %w", err)
		}
		if err := json.Unmarshal([]byte(events), &sub.Events); err != nil {
			return nil, fmt.Errorf("subscription %s: events: %w", sub.ID, err)
		}
		if err := json.Unmarshal([]byte(headers), &sub.Headers); err != nil {
			return nil, fmt.Errorf("subscription %s: headers: %w", sub.ID, err)
		}
		if err := oldest.Scan(scanTime(oldestRaw)); err != nil {
			return nil, fmt.Errorf("subscription %s: oldest event: %w", sub.ID, err)
		}
		sub.CreatedAt = sub.CreatedAt.UTC()
		d.LastSuccess, d.LastErrorAt, d.OldestUndelivered = timePtr(success), timePtr(errAt), timePtr(oldest)
		out = append(out, sub)
	}
	return out, rows.Err()
}

// scanTime turns what an aggregate over a timestamp column scans to (a
// time, or SQLite's integer microseconds) into a time sql.NullTime accepts.
func scanTime(v any) any {
	if n, ok := v.(int64); ok {
		return time.UnixMicro(n).UTC()
	}
	return v
}

// DeleteSubscription removes a subscription and its queued events.
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	var n int64
	err := s.write(ctx, func(db conn) error {
		if _, err := db.exec(ctx, `DELETE FROM subscription_events WHERE subscription_id = ?`, id); err != nil {
			return err
		}
		res, err := db.exec(ctx, `DELETE FROM subscriptions WHERE id = ?`, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("subscription %s: delete: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("subscription %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// WebhookCursor returns the change sequence the webhook generator has
// processed, or -1 before its first run.
func (s *Store) WebhookCursor(ctx context.Context) (int64, error) {
	var v int64
	if err := s.reader().row(ctx, `SELECT value FROM counters WHERE name = 'webhook'`).Scan(&v); err != nil {
		return 0, fmt.Errorf("webhook cursor: %w", err)
	}
	return v, nil
}

// BundleSnapshots returns every stored bundle snapshot (bundle id → JSON).
func (s *Store) BundleSnapshots(ctx context.Context) (map[string]string, error) {
	rows, err := s.reader().query(ctx, `SELECT bundle_id, snapshot FROM bundle_snapshots`)
	if err != nil {
		return nil, fmt.Errorf("bundle snapshots: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, snap string
		if err := rows.Scan(&id, &snap); err != nil {
			return nil, fmt.Errorf("bundle snapshots: %w", err)
		}
		out[id] = snap
	}
	return out, rows.Err()
}

// RecordWebhookBatch stores b in one transaction: the cursor, the
// snapshots, and the events (each taking its subscription's next seq).
// Events of a subscription deleted meanwhile are dropped. It returns the
// number of events dropped to keep backlogs under b.MaxBacklog.
func (s *Store) RecordWebhookBatch(ctx context.Context, b store.WebhookBatch) (dropped int64, err error) {
	now := s.now()
	fn := func(db conn) error {
		dropped = 0
		if _, err := db.exec(ctx, `UPDATE counters SET value = ? WHERE name = 'webhook'`, b.Cursor); err != nil {
			return err
		}
		for id, snap := range b.Snapshots {
			if _, err := db.exec(ctx, `DELETE FROM bundle_snapshots WHERE bundle_id = ?`, id); err != nil {
				return err
			}
			if snap == "" {
				continue
			}
			if _, err := db.exec(ctx, `INSERT INTO bundle_snapshots (bundle_id, snapshot) VALUES (?, ?)`, id, snap); err != nil {
				return err
			}
		}
		touched := map[string]int64{}
		for _, ev := range b.Events {
			var seq int64
			err := db.row(ctx, `UPDATE subscriptions SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq`, ev.SubscriptionID).Scan(&seq)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			if _, err := db.exec(ctx, `INSERT INTO subscription_events (subscription_id, seq, bundle_id, type, data, created_at)
				VALUES (?, ?, ?, ?, ?, ?)`, ev.SubscriptionID, seq, ev.BundleID, ev.Type, string(ev.Data), now); err != nil {
				return err
			}
			touched[ev.SubscriptionID] = seq
		}
		if b.MaxBacklog <= 0 {
			return nil
		}
		for id, last := range touched {
			res, err := db.exec(ctx, `DELETE FROM subscription_events WHERE subscription_id = ? AND seq <= ?`, id, last-int64(b.MaxBacklog))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			if n > 0 {
				dropped += n
				if _, err := db.exec(ctx, `UPDATE subscriptions SET dropped = dropped + ? WHERE id = ?`, n, id); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if st := webhookStatementPG(b); st != nil && s.d == postgresDialect {
		// Most batches carry no events (no subscription matched): one
		// statement, pipelined with the creates of the same batch.
		err = s.enqueue(&writeReq{ctx: ctx, done: make(chan struct{}), pg: st, fn: fn})
	} else {
		err = s.write(ctx, fn)
	}
	if err != nil {
		return 0, fmt.Errorf("webhook batch to change %d: %w", b.Cursor, err)
	}
	return dropped, nil
}

// PendingSubscriptionEvents returns up to limit undelivered events of a
// subscription with seq > after, in order.
func (s *Store) PendingSubscriptionEvents(ctx context.Context, id string, after int64, limit int) ([]store.SubscriptionEvent, error) {
	rows, err := s.reader().query(ctx, `SELECT seq, bundle_id, type, data, created_at FROM subscription_events
		WHERE subscription_id = ? AND seq > ? ORDER BY seq LIMIT ?`, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("subscription %s: pending events: %w", id, err)
	}
	defer rows.Close()
	var out []store.SubscriptionEvent
	for rows.Next() {
		ev := store.SubscriptionEvent{SubscriptionID: id}
		var data string
		if err := rows.Scan(&ev.Seq, &ev.BundleID, &ev.Type, &data, &ev.CreatedAt); err != nil {
			return nil, fmt.Errorf("subscription %s: pending events: %w", id, err)
		}
		ev.Data, ev.CreatedAt = []byte(data), ev.CreatedAt.UTC()
		out = append(out, ev)
	}
	return out, rows.Err()
}

// AckSubscriptionEvent records a successful delivery of event seq: it and
// every older event of the subscription are removed.
func (s *Store) AckSubscriptionEvent(ctx context.Context, id string, seq int64, at time.Time) error {
	err := s.write(ctx, func(db conn) error {
		res, err := db.exec(ctx, `DELETE FROM subscription_events WHERE subscription_id = ? AND seq <= ?`, id, seq)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		_, err = db.exec(ctx, `UPDATE subscriptions SET last_success = ?, failures = 0, delivered = delivered + ? WHERE id = ?`,
			norm(at), n, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("subscription %s: ack event %d: %w", id, seq, err)
	}
	return nil
}

// RecordSubscriptionFailure records a failed delivery attempt.
func (s *Store) RecordSubscriptionFailure(ctx context.Context, id, reason string, at time.Time) error {
	err := s.write(ctx, func(db conn) error {
		_, err := db.exec(ctx, `UPDATE subscriptions SET last_error = ?, last_error_at = ?, failures = failures + 1 WHERE id = ?`,
			reason, norm(at), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("subscription %s: record failure: %w", id, err)
	}
	return nil
}

// TouchBundles logs a MODIFIED change for each bundle that still exists,
// without changing it, so watchers re-read it (a freshness transition).
func (s *Store) TouchBundles(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	now := s.now()
	err := s.write(ctx, func(db conn) error {
		for _, id := range ids {
			var b store.Bundle
			err := db.row(ctx, `SELECT id, consumer_name, source FROM bundles WHERE id = ?`, id).Scan(&b.ID, &b.ConsumerName, &b.Source)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			seq, err := addChange(ctx, db, &b, store.ChangeUpdated, now)
			if err != nil {
				return err
			}
			if _, err := db.exec(ctx, `UPDATE bundles SET change_seq = ? WHERE id = ?`, seq, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("touch %d bundles: %w", len(ids), err)
	}
	return nil
}

// BundleHistory returns the newest limit change log entries of a bundle,
// newest first, with the time each was logged.
func (s *Store) BundleHistory(ctx context.Context, id string, limit int) ([]store.Change, error) {
	rows, err := s.reader().query(ctx, `SELECT seq, bundle_id, consumer_name, source, type, created_at FROM changes
		WHERE bundle_id = ? ORDER BY seq DESC LIMIT ?`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: history: %w", id, err)
	}
	out, err := scanChanges(rows, true)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: history: %w", id, err)
	}
	return out, nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/baton-dev/baton/internal/store"
)

const consumerCols = `c.id, c.name, c.labels, c.created_at, c.updated_at,
	c.agent_connected, c.agent_epoch, c.agent_heartbeat, c.agent_server_id,
	COALESCE(l.holder, ''), l.expires_at, COALESCE(l.contender, ''), l.contended_at`

// consumersFrom joins each consumer's session lease (hub: consumer/<name>).
const consumersFrom = ` FROM consumers c LEFT JOIN leases l ON l.name = 'consumer/' || c.name`

// Fixed queries of consumers.
var (
	qGetConsumer = prepared(`SELECT ` + consumerCols + consumersFrom + ` WHERE c.id = ?
		UNION ALL SELECT ` + consumerCols + consumersFrom + ` WHERE c.name = ? AND c.id <> ?`)
	qSetAgentState = prepared(`UPDATE consumers SET agent_connected = ?,
			agent_epoch = CASE WHEN ? = '' THEN agent_epoch ELSE ? END,
			agent_heartbeat = COALESCE(?, agent_heartbeat),
			agent_server_id = ?
		WHERE name = ? AND (? OR agent_server_id = ?)`)
)

// CreateConsumer stores c; an empty ID is generated and an empty Name
// defaults to the ID. A taken id or name is ErrConflict. A Decommission of
// the name is cleared.
func (s *Store) CreateConsumer(ctx context.Context, c store.Consumer) (store.Consumer, error) {
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	labels, err := encodeLabels(c.Labels)
	if err != nil {
		return store.Consumer{}, fmt.Errorf("consumer %q: %w", c.Name, err)
	}
	now := s.now()
	c.CreatedAt, c.UpdatedAt = now, now
	c.Agent = store.AgentState{}
	err = s.write(ctx, func(db conn) error {
		_, err := db.exec(ctx, `INSERT INTO consumers (id, name, labels, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?)`, c.ID, c.Name, labels, now, now)
		if err != nil {
			return err
		}
		// A consumer created again is registered anew: its agent is welcome.
		_, err = db.exec(ctx, qClearDecommission, c.Name)
		return err
	})
	if err != nil {
		if isUnique(err) || errors.Is(err, store.ErrConflict) {
			return store.Consumer{}, fmt.Errorf("consumer %q: create: %w", c.Name, store.ErrConflict)
		}
		return store.Consumer{}, fmt.Errorf("consumer %q: create: %w", c.Name, err)
	}
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	return c, nil
}

// GetConsumer finds a consumer by id or by name.
func (s *Store) GetConsumer(ctx context.Context, idOrName string) (store.Consumer, error) {
	return getConsumer(ctx, s.reader(), idOrName)
}

func getConsumer(ctx context.Context, db conn, idOrName string) (store.Consumer, error) {
	rows, err := db.query(ctx, qGetConsumer, idOrName, idOrName, idOrName)
	if err != nil {
		return store.Consumer{}, fmt.Errorf("consumer %q: get: %w", idOrName, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return store.Consumer{}, fmt.Errorf("consumer %q: get: %w", idOrName, err)
		}
		return store.Consumer{}, fmt.Errorf("consumer %q: %w", idOrName, store.ErrNotFound)
	}
	c, err := scanConsumer(rows)
	if err != nil {
		return store.Consumer{}, fmt.Errorf("consumer %q: get: %w", idOrName, err)
	}
	return c, nil
}

// ListConsumers returns one page of consumers.
func (s *Store) ListConsumers(ctx context.Context, opts store.ListOptions) (store.Page[store.Consumer], error) {
	page := store.Page[store.Consumer]{Items: []store.Consumer{}}
	err := s.StreamConsumers(ctx, opts, func(total, n int) error {
		page.Total, page.Items = total, make([]store.Consumer, 0, n)
		return nil
	}, func(c *store.Consumer) error {
		page.Items = append(page.Items, *c)
		return nil
	})
	return page, err
}

// StreamConsumers is StreamBundles for consumers: one snapshot, the count
// first, then each row as it is read.
func (s *Store) StreamConsumers(ctx context.Context, opts store.ListOptions, start func(total, n int) error, each func(*store.Consumer) error) error {
	q, err := buildList(s.d, consumerFields, "c.labels", opts)
	if err != nil {
		return fmt.Errorf("consumers: list: %w", err)
	}
	return s.read(ctx, func(db conn) error {
		var total int
		if err := db.row(ctx, `SELECT COUNT(*) FROM consumers c`+q.where, q.args...).Scan(&total); err != nil {
			return fmt.Errorf("consumers: list: %w", err)
		}
		n := total
		if q.paged {
			n = min(max(total-q.offset, 0), opts.Size)
		}
		if err := start(total, n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		rows, err := db.query(ctx, `SELECT `+consumerCols+consumersFrom+q.where+q.order+q.limit, q.args...)
		if err != nil {
			return fmt.Errorf("consumers: list: %w", err)
		}
		defer rows.Close()
		seen := 0
		for rows.Next() {
			c, err := scanConsumer(rows)
			if err != nil {
				return fmt.Errorf("consumers: list: %w", err)
			}
			if seen++; seen > n {
				return fmt.Errorf("consumers: list: more rows than the %d counted in the same snapshot", n)
			}
			if err := each(&c); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("consumers: list: %w", err)
		}
		if seen != n {
			return fmt.Errorf("consumers: list: %d rows where the same snapshot counted %d", seen, n)
		}
		return nil
	})
}

// UpdateConsumerLabels replaces the labels of the consumer with this id (or name).
func (s *Store) UpdateConsumerLabels(ctx context.Context, id string, labels map[string]string) (store.Consumer, error) {
	enc, err := encodeLabels(labels)
	if err != nil {
		return store.Consumer{}, fmt.Errorf("consumer %q: %w", id, err)
	}
	var c store.Consumer
	err = s.write(ctx, func(db conn) error {
		cur, err := getConsumer(ctx, db, id)
		if err != nil {
			return err
		}
		now := s.now()
		if _, err := db.exec(ctx, `UPDATE consumers SET labels = ?, updated_at = ? WHERE id = ?`, enc, now, cur.ID); err != nil {
			return fmt.Errorf("consumer %q: update labels: %w", id, err)
		}
		c = cur
		c.Labels, c.UpdatedAt = labels, now
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		return nil
	})
	return c, err
}

// DeleteConsumer removes the consumer with this id (or name); ErrConflict
// while it has bundles, deleting ones included.
func (s *Store) DeleteConsumer(ctx context.Context, id string) error {
	return s.write(ctx, func(db conn) error {
		c, err := getConsumer(ctx, db, id)
		if err != nil {
			return err
		}
		var n int
		if err := db.row(ctx, `SELECT COUNT(*) FROM bundles WHERE consumer_name = ?`, c.Name).Scan(&n); err != nil {
			return fmt.Errorf("consumer %q: delete: %w", id, err)
		}
		if n > 0 {
			return fmt.Errorf("consumer %q: delete: has %d bundles: %w", c.Name, n, store.ErrConflict)
		}
		if _, err := db.exec(ctx, `DELETE FROM outbox WHERE consumer_name = ?`, c.Name); err != nil {
			return fmt.Errorf("consumer %q: delete: %w", id, err)
		}
		if _, err := db.exec(ctx, `DELETE FROM consumers WHERE id = ?`, c.ID); err != nil {
			if isForeignKey(err) {
				return fmt.Errorf("consumer %q: delete: %w", id, store.ErrConflict)
			}
			return fmt.Errorf("consumer %q: delete: %w", id, err)
		}
		return nil
	})
}

// SetAgentState records the agent's connection, epoch, heartbeat and server.
// An empty Epoch and a zero LastHeartbeat keep the stored values, so a
// disconnect does not forget the epoch that orders status reports. A
// disconnect naming a ServerID applies only while that replica holds the
// agent, so it never undoes a newer connection through another replica.
func (s *Store) SetAgentState(ctx context.Context, consumer string, a store.AgentState) error {
	return s.write(ctx, func(db conn) error {
		unconditional := a.Connected || a.ServerID == ""
		res, err := db.exec(ctx, qSetAgentState, a.Connected, a.Epoch, a.Epoch, nullTime(a.LastHeartbeat), a.ServerID, consumer,
			unconditional, a.ServerID)
		if err != nil {
			return fmt.Errorf("consumer %q: set agent state: %w", consumer, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("consumer %q: set agent state: %w", consumer, err)
		} else if n == 0 && unconditional {
			return fmt.Errorf("consumer %q: %w", consumer, store.ErrNotFound)
		}
		return nil
	})
}

type rowScanner interface{ Scan(dest ...any) error }

func scanConsumer(r rowScanner) (store.Consumer, error) {
	var (
		c                  store.Consumer
		labels             []byte
		hb                 sql.NullTime
		expires, contended sql.NullTime
	)
	err := r.Scan(&c.ID, &c.Name, &labels, &c.CreatedAt, &c.UpdatedAt,
		&c.Agent.Connected, &c.Agent.Epoch, &hb, &c.Agent.ServerID,
		&c.Agent.Lease.Holder, &expires, &c.Agent.Lease.Contender, &contended)
	if err != nil {
		return c, err
	}
	c.Agent.Lease.ExpiresAt, c.Agent.Lease.ContendedAt = timeOf(expires), timeOf(contended)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	c.Agent.LastHeartbeat = timeOf(hb)
	if c.Labels, err = decodeLabels(labels); err != nil {
		return c, fmt.Errorf("consumer %q: labels: %w", c.Name, err)
	}
	return c, nil
}

func encodeLabels(l map[string]string) (string, error) {
	if len(l) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "", fmt.Errorf("labels: %w", store.ErrInvalid)
	}
	return string(b), nil
}

func decodeLabels(b []byte) (map[string]string, error) {
	m := map[string]string{}
	if len(b) == 0 || string(b) == "{}" {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

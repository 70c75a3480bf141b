package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notification channels written by the PostgreSQL triggers of migration
// 00004: every outbox insert notifies its consumer, every transaction that
// appends to the change log notifies once.
const (
	channelOutbox  = "baton_outbox"
	channelChanges = "baton_changes"
)

// Listeners receive the notifications of writes made by any replica.
type Listeners struct {
	// Outbox is called with the consumer whose spec delivery has new work.
	Outbox func(consumer string)
	// Changes is called when the change log grew, and after every
	// (re)connect of the listener, since notifications sent while it was
	// down are lost.
	Changes func()
}

// Listen delivers PostgreSQL notifications of writes made through any
// replica until ctx ends (then it returns nil), reconnecting with backoff
// when the connection drops; the pollers of its callers stay as the
// fallback for what a dropped connection missed. On SQLite, where one
// process owns the database and its own writes kick its parts directly, it
// only waits for ctx.
func (s *Store) Listen(ctx context.Context, l Listeners) error {
	if s.d != postgresDialect {
		<-ctx.Done()
		return nil
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := s.listenOnce(ctx, l)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		s.log.Warn("sqlstore: notification listener down; polling until it is back", "err", err, "retry", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

func (s *Store) listenOnce(ctx context.Context, l Listeners) error {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing
	for _, ch := range []string{channelOutbox, channelChanges} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return fmt.Errorf("listen %s: %w", ch, err)
		}
	}
	if l.Changes != nil {
		l.Changes()
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		switch n.Channel {
		case channelOutbox:
			if l.Outbox != nil {
				l.Outbox(n.Payload)
			}
		case channelChanges:
			if l.Changes != nil {
				l.Changes()
			}
		}
	}
}

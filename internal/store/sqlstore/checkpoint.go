package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// WAL checkpoints off the write path (SQLite).
//
// SQLite copies the write-ahead log back into the database file in a
// checkpoint, which fsyncs the log and then the database. By default the
// connection whose commit makes the log pass 1,000 pages runs it, inside
// that commit: with one writer connection every write queued behind it
// waits for two fsyncs. Measured from outside (baton bench rest, 8 clients)
// this was a third of the writer's time, blocked in fsync while the CPU
// idled. So the writer connection turns automatic checkpoints off and a
// connection of its own runs PASSIVE checkpoints: they never wait for (or
// block) the writer or the readers, and the writer only appends to the log.
//
// The writer starts the log over only once all of it is copied, which a
// checkpoint running beside a busy writer never achieves: it copies what
// was there when it began, and the writer has appended more. So when the
// log is longer than finishFrames after a background pass, the writer
// itself runs one more PASSIVE checkpoint between two batches (finish):
// nothing is appended meanwhile, so it copies the rest, and the remainder
// is small, so its fsyncs are short. The next write starts the log over.
// Should readers still keep the log from being reset until it grows past
// restartFrames, one RESTART checkpoint (which waits for readers and
// briefly holds writers back) brings it back.

// checkpoint pacing: at most one checkpoint per checkpointEvery while
// writes arrive, at least one per checkpointIdle.
const (
	checkpointEvery = 50 * time.Millisecond
	checkpointIdle  = time.Second
	finishFrames    = 4 << 10  // 16 MB of 4 KB pages
	restartFrames   = 64 << 10 // 256 MB
)

// checkpointer runs WAL checkpoints on its own connection.
type checkpointer struct {
	db  *sql.DB
	log *slog.Logger
	// finish runs a checkpoint on the writer connection between batches.
	finish func(ctx context.Context) error
	kick   chan struct{}
	stop   context.CancelFunc
	done   chan struct{}
	// runs counts checkpoints that copied pages, for tests.
	runs atomic.Int64
}

func newCheckpointer(db *sql.DB, log *slog.Logger, finish func(ctx context.Context) error) *checkpointer {
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, log: log, finish: finish, kick: make(chan struct{}, 1), stop: cancel, done: make(chan struct{})}
	go c.run(ctx)
	return c
}

// written tells the checkpointer that a write transaction committed.
func (c *checkpointer) written() {
	if c == nil {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	idle := time.NewTicker(checkpointIdle)
	defer idle.Stop()
	pace := time.NewTimer(0)
	defer pace.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-idle.C:
		}
		c.pass(ctx)
		pace.Reset(checkpointEvery)
		select {
		case <-ctx.Done():
			return
		case <-pace.C:
		}
	}
}

// pass runs a background checkpoint and, when the log stays long, the
// writer's finishing one (or a RESTART when even that did not help).
func (c *checkpointer) pass(ctx context.Context) {
	frames, copied, err := walCheckpoint(ctx, c.db, "PASSIVE")
	if err == nil && copied > 0 {
		c.runs.Add(1)
	}
	switch {
	case err != nil:
	case frames > restartFrames:
		c.log.Info("sqlstore: WAL long; restarting it", "frames", frames, "copied", copied)
		_, _, err = walCheckpoint(ctx, c.db, "RESTART")
	case frames > finishFrames:
		err = c.finish(ctx)
	}
	if err != nil && ctx.Err() == nil {
		c.log.Warn("sqlstore: WAL checkpoint failed", "err", err)
	}
}

// walCheckpoint runs one checkpoint of mode on db and returns the log's
// length and how much of it is copied, in pages.
func walCheckpoint(ctx context.Context, db interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, mode string) (frames, copied int64, err error) {
	var busy int64
	err = db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &frames, &copied)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlstore: WAL checkpoint (%s): %w", mode, err)
	}
	return frames, copied, nil
}

// finishCheckpoint is the writer's part: a PASSIVE checkpoint on the
// writer connection, run by the batcher between two batches.
func (s *Store) finishCheckpoint(ctx context.Context) error {
	return s.enqueue(&writeReq{ctx: ctx, done: make(chan struct{}), direct: func() error {
		_, _, err := walCheckpoint(ctx, s.w, "PASSIVE")
		return err
	}})
}

// close stops the checkpointer and closes its connection.
func (c *checkpointer) close() error {
	if c == nil {
		return nil
	}
	c.stop()
	<-c.done
	return c.db.Close()
}

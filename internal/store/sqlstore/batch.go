package sqlstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Group commit: write transactions that arrive while another is running
// are queued and then run together, each in its own savepoint (SQLite) or
// back to back (PostgreSQL), in one database transaction with one commit.
// A commit costs a WAL write of every page the transaction touched (SQLite)
// or a WAL flush while the change counter's row stays locked (PostgreSQL),
// so sharing it between concurrent writers multiplies their throughput,
// while a lone writer runs exactly as before.
//
// Each function still sees its own writes and none of a failed neighbour's:
//   - SQLite: a function that fails is rolled back to its savepoint and
//     returns its error; the others commit.
//   - PostgreSQL: an error aborts the whole transaction, so the batch is
//     rolled back and every function runs again alone, in its own
//     transaction (functions only assign outside the database, so running
//     again is safe). A batch made only of single-statement writes
//     (creates) is pipelined: all statements in one round trip, as one
//     implicit transaction.
//
// Change sequence values are taken in the order the functions run and
// become visible together at the commit, so the change log still commits in
// sequence order.

// maxBatch bounds the write functions sharing one transaction.
const maxBatch = 32

// writeReq is one queued write function.
type writeReq struct {
	ctx context.Context
	fn  func(c conn) error
	// pg, when set, is fn as a single PostgreSQL statement, which lets a
	// batch of such writes be pipelined (pipeline).
	pg *pgStatement
	// direct, when set instead of fn, runs on the writer connection
	// outside any transaction, between two batches (a WAL checkpoint).
	direct func() error
	err    error
	done   chan struct{}
}

// batcher queues write functions; the first writer to find it idle runs
// the queue (leader), later ones wait for their result.
type batcher struct {
	mu      sync.Mutex
	queue   []*writeReq
	running bool
	// commits and writes count transactions and the write functions they
	// ran, for tests and benchmarks.
	commits, writes atomic.Int64
}

// write runs fn in a write transaction and commits it when fn returns nil,
// sharing the transaction with concurrent writers. A transaction PostgreSQL
// aborts for a deadlock or serialization failure is run again (fn must only
// assign, never accumulate, outside the database).
func (s *Store) write(ctx context.Context, fn func(c conn) error) error {
	return s.enqueue(&writeReq{ctx: ctx, fn: fn, done: make(chan struct{})})
}

// enqueue runs r with the next batch and returns its error.
func (s *Store) enqueue(r *writeReq) error {
	b := &s.batch
	b.mu.Lock()
	b.queue = append(b.queue, r)
	lead := !b.running
	b.running = true
	b.mu.Unlock()
	if lead {
		s.drain()
	}
	// The request is always completed (run or refused for its context),
	// never abandoned: fn may assign to the caller's variables.
	<-r.done
	return r.err
}

// drain runs the next batch from the queue. When more writes queued
// meanwhile it hands them to a new goroutine, so the leader's caller does
// not wait for writers that came later.
func (s *Store) drain() {
	b := &s.batch
	b.mu.Lock()
	reqs := b.queue[:min(len(b.queue), maxBatch)]
	b.queue = b.queue[len(reqs):]
	b.mu.Unlock()
	s.runBatch(reqs)
	s.ckpt.written()
	b.commits.Add(1)
	b.writes.Add(int64(len(reqs)))
	for _, r := range reqs {
		close(r.done)
	}
	b.mu.Lock()
	more := len(b.queue) > 0
	b.running = more
	b.mu.Unlock()
	if more {
		go s.drain()
	}
}

// runBatch runs reqs and sets each one's err.
func (s *Store) runBatch(reqs []*writeReq) {
	live := reqs[:0:0]
	for _, r := range reqs {
		if r.err = r.ctx.Err(); r.err != nil {
			continue
		}
		if r.direct != nil {
			r.err = r.direct()
			continue
		}
		live = append(live, r)
	}
	switch {
	case len(live) == 0:
		return
	case pipelined(live):
		if err := s.pipeline(live); err != nil {
			s.log.Debug("pipelined writes failed; running them one by one", "writes", len(live), "error", err)
			for _, r := range live {
				r.err = s.retry(r.ctx, func() error { return s.writeOnce(r.ctx, r.fn) })
			}
		}
		return
	case len(live) == 1:
		r := live[0]
		r.err = s.retry(r.ctx, func() error { return s.writeOnce(r.ctx, r.fn) })
		return
	}
	if err := s.writeShared(live); err != nil {
		// The shared transaction failed as a whole: run each alone.
		s.log.Debug("shared write transaction failed; running its writes one by one", "writes", len(live), "error", err)
		for _, r := range live {
			r.err = s.retry(r.ctx, func() error { return s.writeOnce(r.ctx, r.fn) })
		}
	}
}

// pipelined reports whether every write of a batch is a PostgreSQL statement.
func pipelined(reqs []*writeReq) bool {
	for _, r := range reqs {
		if r.pg == nil {
			return false
		}
	}
	return true
}

// Savepoint statements of a shared SQLite transaction.
var (
	qSavepoint  = prepared(`SAVEPOINT w`)
	qRelease    = prepared(`RELEASE w`)
	qRollbackTo = prepared(`ROLLBACK TO w`)
)

// writeShared runs reqs in one transaction. On SQLite it sets the error of
// each request whose function failed (rolled back to its savepoint); an
// error return means nothing was committed and no request's err is final.
// Statements run without the callers' cancellation: on SQLite an
// interrupted statement would roll back the whole transaction under the
// other functions' feet. Each caller's context is checked before its
// function starts.
func (s *Store) writeShared(reqs []*writeReq) error {
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	db := conn{q: tx, d: s.d, cache: s.cache, stmts: s.wst, tx: tx, detached: true}
	savepoints := s.d == sqliteDialect
	ok := 0
	for _, r := range reqs {
		if r.err = r.ctx.Err(); r.err != nil {
			continue
		}
		if !savepoints {
			if err := r.fn(db); err != nil {
				_ = tx.Rollback()
				return err
			}
			ok++
			continue
		}
		if _, err := db.exec(ctx, qSavepoint); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("sqlstore: savepoint: %w", err)
		}
		if r.err = r.fn(db); r.err != nil {
			if _, err := db.exec(ctx, qRollbackTo); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("sqlstore: rollback to savepoint: %w", err)
			}
		} else {
			ok++
		}
		if _, err := db.exec(ctx, qRelease); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("sqlstore: release savepoint: %w", err)
		}
	}
	if ok == 0 {
		return tx.Rollback()
	}
	if err := tx.Commit(); err != nil {
		if isRetryable(err) {
			return err
		}
		err = fmt.Errorf("sqlstore: commit: %w", err)
		for _, r := range reqs {
			if r.err == nil {
				r.err = err
			}
		}
	}
	return nil
}

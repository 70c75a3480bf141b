// Package sqlstore implements store.Store over database/sql for SQLite (the
// embedded default, pure-Go modernc.org/sqlite) and PostgreSQL (pgx). One
// implementation serves both; a small dialect value holds what differs
// (placeholders, label lookup in JSON, row locks, migrations).
//
// Schema and ordering:
//   - Migrations are embedded SQL files applied with goose on Open (and by
//     Migrate for `baton migrate`); the two dialects keep the same versions.
//   - Generations come from bundle_generations, a per-id high-water mark that
//     is never deleted, so a recreated id continues above its last generation.
//   - The global change sequence and the outbox sequence are rows of the
//     counters table, incremented with UPDATE … RETURNING inside the writing
//     transaction. On PostgreSQL the row lock makes transactions that change
//     bundles commit in sequence order, so a watcher reading ChangesSince never
//     skips a value that commits later. The log is gapless: a transaction that
//     fails gives its values back.
//   - Every bundle change (create, update, delete request, accepted status,
//     a confirmation that moves the observed generation, a digest mismatch
//     flip, purge) takes a change sequence value and appends to the changes
//     table. A confirmation that only moves ConfirmedAt does not.
//
// Outbox: writing an event for a bundle removes the bundle's older pending
// events (the newest generation supersedes them; the dispatcher always sends
// the current spec). Acknowledged events are deleted, not flagged, so the
// outbox holds exactly the pending work.
//
// Lists: filter and order fields go through a whitelist (bundles: id, name,
// consumer_name, source, created_at, updated_at, labels.<key>; consumers the
// same without consumer_name and source; ordering takes no labels), and every
// value is a bound parameter. Operators are =, !=, like, not like, in, not in
// and, on any field, <, <=, >, >=. LIKE is case-sensitive in both databases,
// with % and _ as wildcards and backslash as escape. A missing label reads as
// "". Time values are RFC 3339 or a date. Order defaults to created_at and
// always ends with id; Size <= 0 returns every match.
//
// Reads decode the JSON columns through a cache keyed by the JSON text (so it
// cannot serve stale values) and return deep copies; manifests are stored one
// compact JSON value per line and only split on read.
//
// Concurrency: SQLite runs in WAL mode with one writer connection (writes
// queue in the pool instead of failing with SQLITE_BUSY), a small pool of
// read-only connections and one connection that checkpoints the WAL in the
// background, so no write waits for a checkpoint's fsyncs (checkpoint.go). PostgreSQL uses one pool; rows a write depends on
// are locked with SELECT … FOR UPDATE.
//
// Write throughput: writes that arrive while another write transaction runs
// share the next transaction and its commit (group commit, batch.go), so
// concurrent writers pay one WAL write (SQLite) or one WAL flush under the
// change counter's lock (PostgreSQL) per batch instead of one each. On SQLite
// the fixed statements are prepared once per connection (stmts.go). On
// PostgreSQL a create is one statement and concurrent creates are
// pipelined (pgwrite.go). Pages after the first of a bundle list are a
// deferred join on PostgreSQL: the page's ids are found through the
// ordering index before any wide column is read.
//
// The change log grows with every change; Pruner deletes old entries,
// keeping enough for watchers to resume.
//
// Timestamps are stored in UTC with microsecond precision (PostgreSQL's), so
// both dialects return identical values.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/store"
)

// Config selects and configures the database.
type Config struct {
	// URL is "postgres://…" for PostgreSQL, or "sqlite://path" / "file:path"
	// for SQLite. Empty means SQLite at DataDir/baton.db.
	URL string
	// DataDir holds the SQLite file when URL is empty; it is created if missing.
	DataDir string
	// Logger receives migration progress; nil discards.
	Logger *slog.Logger
	// Clock stamps created/updated/deleted times; nil is the real clock.
	Clock clock.PassiveClock
	// DecodeCacheBytes bounds the memory of decoded bundle metadata, specs
	// and statuses kept to speed up reads; 0 means DefaultDecodeCacheBytes,
	// negative disables the cache.
	DecodeCacheBytes int
}

// DefaultDecodeCacheBytes is the default bound of the decode cache.
const DefaultDecodeCacheBytes = 96 << 20

// Store is a store.Store backed by SQLite or PostgreSQL.
type Store struct {
	d     *dialect
	w     *sql.DB // writer pool (one connection for SQLite)
	r     *sql.DB // reader pool (the writer pool for PostgreSQL)
	clock clock.PassiveClock
	log   *slog.Logger
	cache *decoders
	// wst and rst are the prepared statements of the writer and reader
	// pools (SQLite only; nil for PostgreSQL).
	wst, rst *stmtCache
	batch    batcher
	// dsn is the writer's connection string (Listen opens its own connection).
	dsn string
	// ckpt runs WAL checkpoints (SQLite only; nil for PostgreSQL).
	ckpt *checkpointer
}

var _ store.Store = (*Store)(nil)

// Open connects to the database, applies pending migrations and returns the store.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = withDefaults(cfg)
	t, err := parseTarget(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := migrate(ctx, cfg, t); err != nil {
		return nil, err
	}
	s := &Store{d: t.d, clock: cfg.Clock, log: cfg.Logger, cache: newDecoders(cfg.DecodeCacheBytes), dsn: t.write}
	if s.w, err = sql.Open(t.d.driver, t.write); err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", t.d.name, err)
	}
	if t.d == sqliteDialect {
		s.w.SetMaxOpenConns(1)
		s.w.SetConnMaxIdleTime(0)
		if s.r, err = sql.Open(t.d.driver, t.read); err != nil {
			s.w.Close()
			return nil, fmt.Errorf("sqlstore: open %s: %w", t.d.name, err)
		}
		s.r.SetMaxOpenConns(4)
		s.r.SetMaxIdleConns(4)
		s.wst, s.rst = prepareAll(ctx, s.w), prepareAll(ctx, s.r)
		ck, err := sql.Open(t.d.driver, t.checkpoint)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlstore: open %s: %w", t.d.name, err)
		}
		s.ckpt = newCheckpointer(ck, s.log, s.finishCheckpoint)
	} else {
		s.w.SetMaxOpenConns(16)
		s.w.SetMaxIdleConns(8)
		s.w.SetConnMaxIdleTime(5 * time.Minute)
		s.r = s.w
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.DecodeCacheBytes == 0 {
		cfg.DecodeCacheBytes = DefaultDecodeCacheBytes
	}
	return cfg
}

// Dialect names the database in use: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// DB returns the writer pool, for diagnostics and tests.
func (s *Store) DB() *sql.DB { return s.w }

// Ping checks that the database is reachable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping %s: %w", s.d.name, err)
	}
	return nil
}

// Close closes the connection pools.
func (s *Store) Close() error {
	err := errors.Join(s.ckpt.close(), s.wst.close(), s.rst.close(), s.w.Close())
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// ensureDir creates the directory of a SQLite file.
func ensureDir(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sqlstore: create data dir %s: %w", dir, err)
	}
	return nil
}

// now is the store's clock reading, normalised like every stored time.
func (s *Store) now() time.Time { return norm(s.clock.Now()) }

// norm converts t to UTC with microsecond precision.
func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs queries written with "?" placeholders in the dialect, through
// the pool's prepared statement when the query has one.
type conn struct {
	q     querier
	d     *dialect
	cache *decoders
	stmts *stmtCache
	tx    *sql.Tx // q as a transaction, nil outside one
	// detached runs statements without the caller's cancellation (in a
	// transaction shared by several writers).
	detached bool
}

// ctx returns the context a statement runs with.
func (c conn) ctx(ctx context.Context) context.Context {
	if c.detached {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx = c.ctx(ctx)
	if st := c.stmtFor(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.q.ExecContext(ctx, c.d.q(query), args...)
}

func (c conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = c.ctx(ctx)
	if st := c.stmtFor(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.q.QueryContext(ctx, c.d.q(query), args...)
}

func (c conn) row(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = c.ctx(ctx)
	if st := c.stmtFor(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.q.QueryRowContext(ctx, c.d.q(query), args...)
}

// maxAttempts bounds the runs of a write transaction.
const maxAttempts = 4

func (s *Store) writeOnce(ctx context.Context, fn func(c conn) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	if err := fn(conn{q: tx, d: s.d, cache: s.cache, stmts: s.wst, tx: tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		if isUnique(err) {
			return fmt.Errorf("sqlstore: commit: %w", store.ErrConflict)
		}
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	return nil
}

// read runs fn in a read transaction, so that several queries see one snapshot.
func (s *Store) read(ctx context.Context, fn func(c conn) error) error {
	tx, err := s.r.BeginTx(ctx, s.d.readTx)
	if err != nil {
		return fmt.Errorf("sqlstore: begin read: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	return fn(conn{q: tx, d: s.d, cache: s.cache, stmts: s.rst, tx: tx})
}

// reader runs single queries outside a transaction.
func (s *Store) reader() conn { return conn{q: s.r, d: s.d, cache: s.cache, stmts: s.rst} }

// nullTime converts an optional time for a nullable column.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return norm(t)
}

// timeOf converts a scanned nullable time.
func timeOf(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// timePtr converts a scanned nullable time to a pointer.
func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

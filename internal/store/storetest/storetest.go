// Package storetest provides fresh stores for tests and the conformance
// suite every store.Store implementation must pass.
//
// NewSQLite opens a store in a temporary directory. NewPostgres creates a
// database named baton_test_<random> on the server named by the
// BATON_TEST_POSTGRES environment variable (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable) and drops it at
// cleanup; an unreachable server fails the test, except under -short where it
// is skipped. Each runs a subtest per store.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for creating test databases
	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/sqlstore"
)

// DefaultPostgres is the server used when BATON_TEST_POSTGRES is unset.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Options configure a test store. The zero value uses the real clock and
// discards logs.
type Options struct {
	Clock  clock.PassiveClock
	Logger *slog.Logger
}

// NewSQLite returns a SQLite store in a temporary directory, closed at cleanup.
func NewSQLite(t testing.TB) store.Store { return NewSQLiteWith(t, Options{}) }

// NewSQLiteWith is NewSQLite with options.
func NewSQLiteWith(t testing.TB, o Options) store.Store {
	t.Helper()
	return open(t, sqlstore.Config{DataDir: t.TempDir(), Clock: o.Clock, Logger: o.Logger})
}

// SQLiteURL returns the URL of a fresh SQLite database file in a temporary
// directory, for tests that start a server process.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite://" + t.TempDir() + "/baton.db"
}

// NewPostgres returns a store on a fresh PostgreSQL database, dropped at cleanup.
func NewPostgres(t testing.TB) store.Store { return NewPostgresWith(t, Options{}) }

// NewPostgresWith is NewPostgres with options.
func NewPostgresWith(t testing.TB, o Options) store.Store {
	t.Helper()
	return open(t, sqlstore.Config{URL: PostgresURL(t), Clock: o.Clock, Logger: o.Logger})
}

// Each runs fn as a subtest against a fresh SQLite store and a fresh
// PostgreSQL store.
func Each(t *testing.T, fn func(t *testing.T, s store.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, NewSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, NewPostgres(t)) })
}

func open(t testing.TB, cfg sqlstore.Config) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := sqlstore.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// PostgresServer returns the URL of the test PostgreSQL server.
func PostgresServer() string {
	if u := os.Getenv("BATON_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultPostgres
}

// PostgresURL creates a fresh, empty database on the test PostgreSQL server
// and returns its URL; the database is dropped at cleanup. It fails the test
// when the server is unreachable (skips it under -short).
func PostgresURL(t testing.TB) string {
	t.Helper()
	server := PostgresServer()
	admin, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatalf("postgres %s: %v", redact(server), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		if testing.Short() {
			t.Skipf("postgres %s unreachable (-short): %v", redact(server), err)
		}
		t.Fatalf("postgres %s unreachable (set BATON_TEST_POSTGRES or run with -short): %v", redact(server), err)
	}
	name := "baton_test_" + randomHex(6)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("postgres: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("postgres: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("postgres URL %s: %v", redact(server), err)
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("storetest: random: %v", err))
	}
	return hex.EncodeToString(b)
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "<unparsable URL>"
	}
	return p.Redacted()
}

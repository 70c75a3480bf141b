package sqlstore_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/sqlstore"
	"github.com/baton-dev/baton/internal/store/storetest"
)

func TestConformanceSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.NewSQLite(t) })
}

func TestConformancePostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.NewPostgres(t) })
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	cfgs := map[string]func(t *testing.T) sqlstore.Config{
		"sqlite": func(t *testing.T) sqlstore.Config {
			return sqlstore.Config{DataDir: filepath.Join(t.TempDir(), "nested", "dir")}
		},
		"postgres": func(t *testing.T) sqlstore.Config { return sqlstore.Config{URL: storetest.PostgresURL(t)} },
	}
	for name, newCfg := range cfgs {
		t.Run(name, func(t *testing.T) {
			cfg := newCfg(t)
			applied, err := sqlstore.Migrate(ctx, cfg)
			if err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			if want := migrationFiles(t, "migrations/"+name); !reflect.DeepEqual(applied, want) {
				t.Fatalf("first Migrate applied %v; want %v", applied, want)
			}
			again, err := sqlstore.Migrate(ctx, cfg)
			if err != nil || len(again) != 0 {
				t.Fatalf("second Migrate applied %v, %v; want nothing", again, err)
			}
			s, err := sqlstore.Open(ctx, cfg)
			if err != nil {
				t.Fatalf("Open after Migrate: %v", err)
			}
			defer s.Close()
			if s.Dialect() != name {
				t.Fatalf("Dialect() = %q; want %q", s.Dialect(), name)
			}
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		})
	}
}

func migrationFiles(t *testing.T, dir string) []string {
	var out []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestMigrationsInStep checks both dialects have the same migration files.
func TestMigrationsInStep(t *testing.T) {
	sqlite, pg := migrationFiles(t, "migrations/sqlite"), migrationFiles(t, "migrations/postgres")
	if len(sqlite) == 0 || !reflect.DeepEqual(sqlite, pg) {
		t.Fatalf("migrations differ: sqlite %v, postgres %v", sqlite, pg)
	}
	v, err := sqlstore.MigrationVersion()
	if err != nil || v != int64(len(sqlite)) {
		t.Fatalf("MigrationVersion() = %d, %v; want %d", v, err, len(sqlite))
	}
}

func TestOpenURLs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, url := range []string{
		"sqlite://" + filepath.Join(dir, "a", "x.db"),
		"file:" + filepath.Join(dir, "b", "y.db"),
		"file:" + filepath.Join(dir, "c", "z.db") + "?_pragma=cache_size(-4000)",
	} {
		s, err := sqlstore.Open(ctx, sqlstore.Config{URL: url})
		if err != nil {
			t.Fatalf("Open(%s): %v", url, err)
		}
		if _, err := s.CreateConsumer(ctx, store.Consumer{Name: "c"}); err != nil {
			t.Fatalf("%s: CreateConsumer: %v", url, err)
		}
		s.Close()
	}
	for _, f := range []string{"a/x.db", "b/y.db", "c/z.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("database file %s: %v", f, err)
		}
	}
	for _, bad := range []sqlstore.Config{{URL: "mysql://x"}, {}, {URL: "sqlite://"}, {URL: "sqlite://:memory:"}} {
		if _, err := sqlstore.Open(ctx, bad); err == nil {
			t.Errorf("Open(%+v) succeeded; want an error", bad)
		}
	}
}

// TestSQLiteReopen checks data survives closing and reopening the file.
func TestSQLiteReopen(t *testing.T) {
	ctx := context.Background()
	cfg := sqlstore.Config{DataDir: t.TempDir()}
	s, err := sqlstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateConsumer(ctx, store.Consumer{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateBundle(ctx, store.Bundle{ConsumerName: "c", ID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetBundle(ctx, "b")
	if err != nil || !reflect.DeepEqual(got, b) {
		t.Fatalf("after reopen: %+v, %v; want %+v", got, err, b)
	}
}

// TestManifestsInSpecColumn checks rows in the version 1 layout (manifests
// inside the spec JSON, empty manifests column) still read correctly.
func TestManifestsInSpecColumn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		s := st.(*sqlstore.Store)
		if _, err := s.CreateConsumer(ctx, store.Consumer{Name: "c"}); err != nil {
			t.Fatal(err)
		}
		b, err := s.CreateBundle(ctx, storetest.RealisticBundle("c", 1))
		if err != nil {
			t.Fatal(err)
		}
		old, err := json.Marshal(b.Spec)
		if err != nil {
			t.Fatal(err)
		}
		q := "UPDATE bundles SET spec = ?, manifests = '' WHERE id = ?"
		if s.Dialect() == "postgres" {
			q = "UPDATE bundles SET spec = $1, manifests = '' WHERE id = $2"
		}
		if _, err := s.DB().ExecContext(ctx, q, string(old), b.ID); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetBundle(ctx, b.ID)
		if err != nil || !reflect.DeepEqual(got, b) {
			t.Fatalf("old layout read back as %+v, %v; want %+v", got.Spec, err, b.Spec)
		}
	})
}

// TestSQLiteTwoStoresOneFile writes to one SQLite file from two stores at
// once (as a server and a `baton migrate` or second process would): the busy
// timeout queues them instead of failing with SQLITE_BUSY.
func TestSQLiteTwoStoresOneFile(t *testing.T) {
	ctx := context.Background()
	cfg := sqlstore.Config{DataDir: t.TempDir()}
	var stores [2]*sqlstore.Store
	for i := range stores {
		s, err := sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	if _, err := stores[0].CreateConsumer(ctx, store.Consumer{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			s := stores[w%2]
			for range 20 {
				if _, err := s.CreateBundle(ctx, store.Bundle{ConsumerName: "c"}); err != nil {
					errs <- err
					return
				}
				if _, err := s.ListBundles(ctx, store.ListOptions{Size: 5}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range stores {
		if n, err := s.LatestChange(ctx); err != nil || n != 160 {
			t.Fatalf("LatestChange = %d, %v; want 160 seen by both stores", n, err)
		}
	}
}

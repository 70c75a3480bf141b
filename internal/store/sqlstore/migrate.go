package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations
var migrationsFS embed.FS

// Migrate applies every pending migration to the database cfg selects and
// returns the file names it applied, oldest first (none when up to date).
// Open calls it too; it is exported for `baton migrate`.
func Migrate(ctx context.Context, cfg Config) (applied []string, err error) {
	cfg = withDefaults(cfg)
	t, err := parseTarget(cfg)
	if err != nil {
		return nil, err
	}
	return migrate(ctx, cfg, t)
}

// MigrationVersion returns the schema version the migrations reach.
func MigrationVersion() (int64, error) {
	fsys, err := fs.Sub(migrationsFS, sqliteDialect.migrations)
	if err != nil {
		return 0, err
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil || len(names) == 0 {
		return 0, fmt.Errorf("sqlstore: no migrations: %w", err)
	}
	v, err := goose.NumericComponent(names[len(names)-1])
	if err != nil {
		return 0, fmt.Errorf("sqlstore: migration %s: %w", names[len(names)-1], err)
	}
	return v, nil
}

// migrate runs goose on its own connection pool, closed before returning, so
// the store's single SQLite writer connection is never shared with it.
func migrate(ctx context.Context, cfg Config, t target) ([]string, error) {
	if t.path != "" {
		if err := ensureDir(t.path); err != nil {
			return nil, err
		}
	}
	db, err := sql.Open(t.d.driver, t.write)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrate: open %s: %w", t.d.name, err)
	}
	defer db.Close()
	if t.d == sqliteDialect {
		db.SetMaxOpenConns(1)
	}
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlstore: migrate: connect to %s: %w", t.d.name, err)
	}
	fsys, err := fs.Sub(migrationsFS, t.d.migrations)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrate: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if t.d == postgresDialect {
		// Replicas starting together take turns.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migrate: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(t.d.goose, db, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrate: %w", err)
	}
	results, err := p.Up(ctx)
	var applied []string
	for _, r := range results {
		if r.Error == nil && r.Source != nil {
			applied = append(applied, filepath.Base(r.Source.Path))
			cfg.Logger.Info("applied migration", "dialect", t.d.name, "file", filepath.Base(r.Source.Path), "duration", r.Duration)
		}
	}
	if err != nil {
		var perr *goose.PartialError
		if errors.As(err, &perr) && perr.Err != nil {
			err = perr.Err
		}
		return applied, fmt.Errorf("sqlstore: migrate %s: %w", t.d.name, err)
	}
	return applied, nil
}

// SchemaReady returns nil when the database holds every migration this
// binary knows (for readiness: a replica serves only a migrated schema).
func (s *Store) SchemaReady(ctx context.Context) error {
	want, err := MigrationVersion()
	if err != nil {
		return err
	}
	var got sql.NullInt64
	if err := s.reader().row(ctx, `SELECT MAX(version_id) FROM goose_db_version WHERE is_applied`).Scan(&got); err != nil {
		return fmt.Errorf("sqlstore: schema version: %w", err)
	}
	if got.Int64 < want {
		return fmt.Errorf("sqlstore: schema at version %d, this binary needs %d (migrations pending)", got.Int64, want)
	}
	return nil
}

package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3/database"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is everything that differs between SQLite and PostgreSQL. Queries
// are written once with "?" placeholders in the SQL both databases share
// (INSERT … ON CONFLICT … DO UPDATE, UPDATE … RETURNING); the dialect rewrites
// placeholders and supplies the few expressions that differ.
type dialect struct {
	name       string
	driver     string
	goose      database.Dialect
	migrations string // directory in the embedded migrations FS
	// forUpdate locks the selected rows until commit (PostgreSQL); SQLite
	// needs nothing because it has one writer.
	forUpdate string
	// forNoKeyUpdate locks a row against updates but not against foreign
	// key checks of inserts that reference it (PostgreSQL).
	forNoKeyUpdate string
	// numbered: placeholders are $1, $2, … instead of ?.
	numbered bool
	// readTx are the options of the read transaction that pairs a page with
	// its total.
	readTx *sql.TxOptions
	// labelExpr returns the SQL expression reading label key from the JSON
	// column col (one placeholder) and the argument to bind for it.
	labelExpr func(col, key string) (string, any)
	// labelHas returns the SQL test that label key is present in col (one
	// placeholder) and its argument.
	labelHas func(col, key string) (string, any)
	// labelEq, when set, returns the test that label key equals a
	// non-empty value, with two placeholders (key, value), in a form the
	// labels index serves.
	labelEq func(col string) string
}

var sqliteDialect = &dialect{
	name:       "sqlite",
	driver:     "sqlite",
	goose:      database.DialectSQLite3,
	migrations: "migrations/sqlite",
	labelExpr: func(col, key string) (string, any) {
		return "COALESCE(json_extract(" + col + ", ?), '')", `$."` + key + `"`
	},
	labelHas: func(col, key string) (string, any) {
		return "json_type(" + col + ", ?) IS NOT NULL", `$."` + key + `"`
	},
}

var postgresDialect = &dialect{
	name:           "postgres",
	driver:         "pgx",
	goose:          database.DialectPostgres,
	migrations:     "migrations/postgres",
	forUpdate:      " FOR UPDATE",
	forNoKeyUpdate: " FOR NO KEY UPDATE",
	numbered:       true,
	readTx:         &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
	labelExpr: func(col, key string) (string, any) {
		return "COALESCE(" + col + " ->> ?, '')", key
	},
	labelHas: func(col, key string) (string, any) {
		return "jsonb_exists(" + col + ", ?)", key
	},
	// Containment is what the GIN index on labels (jsonb_path_ops) serves.
	labelEq: func(col string) string {
		return col + " @> jsonb_build_object(?::text, ?::text)"
	},
}

// q returns query with the dialect's placeholders.
func (d *dialect) q(query string) string {
	if !d.numbered {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// isUnique reports a unique or primary key violation.
func isUnique(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isRetryable reports a PostgreSQL deadlock or serialization failure: the
// transaction was rolled back and may simply be run again.
func isRetryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40P01" || pg.Code == "40001")
}

// isForeignKey reports a foreign key violation.
func isForeignKey(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// target is a parsed Config: the dialect and the driver data source names.
type target struct {
	d *dialect
	// write and read are the DSNs of the writer and reader pools (equal for
	// PostgreSQL); checkpoint is the DSN of the WAL checkpointer (SQLite).
	write, read, checkpoint string
	// path is the SQLite database file ("" for PostgreSQL).
	path string
}

// sqlitePragmas apply to every SQLite connection: WAL so readers never block
// the writer, a busy timeout as a second line of defence behind the single
// writer connection, foreign keys, case-sensitive LIKE (as in PostgreSQL),
// and integer microsecond timestamps.
var sqlitePragmas = []string{
	"_pragma=journal_mode(WAL)",
	"_pragma=busy_timeout(10000)",
	"_pragma=synchronous(NORMAL)",
	"_pragma=foreign_keys(1)",
	"_pragma=case_sensitive_like(1)",
	"_time_integer_format=unix_micro",
	"_inttotime=1",
}

// parseTarget maps Config.URL and Config.DataDir to a target.
func parseTarget(cfg Config) (target, error) {
	u := cfg.URL
	switch {
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return target{d: postgresDialect, write: u, read: u}, nil
	case u == "":
		if cfg.DataDir == "" {
			return target{}, errors.New("sqlstore: need a URL or a DataDir")
		}
		return sqliteTarget(filepath.Join(cfg.DataDir, "baton.db"), "")
	case strings.HasPrefix(u, "sqlite://"):
		path, query, _ := strings.Cut(strings.TrimPrefix(u, "sqlite://"), "?")
		if path == "" {
			return target{}, fmt.Errorf("sqlstore: %q: no file path", u)
		}
		return sqliteTarget(path, query)
	case strings.HasPrefix(u, "file:"):
		path, query, _ := strings.Cut(strings.TrimPrefix(u, "file:"), "?")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return target{}, fmt.Errorf("sqlstore: %q: no file path", u)
		}
		return sqliteTarget(path, query)
	default:
		return target{}, fmt.Errorf("sqlstore: unsupported database URL %q (want postgres://, sqlite:// or file:)", redact(u))
	}
}

func sqliteTarget(path, query string) (target, error) {
	if strings.Contains(path, ":memory:") || strings.Contains(query, "mode=memory") {
		// Every pooled connection would open its own, empty database.
		return target{}, fmt.Errorf("sqlstore: in-memory SQLite is not supported; use a file")
	}
	if _, err := url.ParseQuery(query); err != nil {
		return target{}, fmt.Errorf("sqlstore: sqlite options %q: %w", query, err)
	}
	opts := strings.Join(sqlitePragmas, "&")
	if query != "" {
		opts += "&" + query
	}
	base := "file:" + path + "?" + opts
	// The writer never checkpoints (checkpoint.go); a log grown large is
	// cut back to 64 MB when it starts over.
	noAuto := "&_pragma=wal_autocheckpoint(0)&_pragma=journal_size_limit(67108864)"
	return target{
		d:          sqliteDialect,
		write:      base + "&_txlock=immediate" + noAuto,
		read:       base + "&_pragma=query_only(1)",
		checkpoint: base + noAuto,
		path:       path,
	}, nil
}

// redact hides a password in a URL for error messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "<unparsable URL>"
	}
	return p.Redacted()
}

package sqlstore

import (
	"context"
	"database/sql"
	"errors"
)

// Prepared statements (SQLite): preparing a statement is a large share of
// a small write's CPU, and database/sql prepares again on every call. The
// fixed query texts are registered with prepared at package initialisation
// and prepared once per pool when the store opens; a statement is bound to
// each connection the first time it runs there and reused afterwards, in
// and out of transactions (Tx.StmtContext). PostgreSQL needs none of this:
// pgx keeps its own per-connection statement cache.
//
// Statements are prepared at Open, not on first use, because preparing on
// the pool needs a free connection and the single SQLite writer connection
// is held by the transaction that would ask.

// preparedQueries are the registered query texts, with "?" placeholders.
var preparedQueries = map[string]bool{}

// prepared registers a fixed query text for preparation and returns it.
func prepared(query string) string {
	preparedQueries[query] = true
	return query
}

// stmtCache holds a pool's prepared statements by query text. It is filled
// once, before use, and only read afterwards.
type stmtCache struct {
	m map[string]*sql.Stmt
}

// prepareAll prepares every registered query on db. A query the database
// refuses to prepare (say, a write on a read-only connection) is left out
// and runs unprepared.
func prepareAll(ctx context.Context, db *sql.DB) *stmtCache {
	c := &stmtCache{m: make(map[string]*sql.Stmt, len(preparedQueries))}
	for q := range preparedQueries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.m[q] = st
	}
	return c
}

// get returns the statement of query, or nil.
func (c *stmtCache) get(query string) *sql.Stmt {
	if c == nil {
		return nil
	}
	return c.m[query]
}

// close closes every statement.
func (c *stmtCache) close() error {
	if c == nil {
		return nil
	}
	var err error
	for _, st := range c.m {
		err = errors.Join(err, st.Close())
	}
	return err
}

// stmtFor returns the prepared statement of query for c's pool (bound to
// c's transaction when it has one), or nil to run the query unprepared.
func (c conn) stmtFor(ctx context.Context, query string) *sql.Stmt {
	st := c.stmts.get(query)
	if st == nil {
		return nil
	}
	if c.tx != nil {
		return c.tx.StmtContext(ctx, st)
	}
	return st
}

-- Leases decide who does what when several replicas share the database
-- (see the PostgreSQL migration of the same version); SQLite serves one
-- replica, but keeps the same rules so the two databases behave alike.

-- +goose Up
CREATE TABLE leases (
    name         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    session      TEXT NOT NULL,
    acquired_at  TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    contender    TEXT NOT NULL DEFAULT '',
    contended_at TIMESTAMP NULL
);

-- +goose Down
DROP TABLE leases;

-- Schema version 1 for SQLite. Keep in step with ../postgres/00001_init.sql:
-- same tables, columns and indexes; only the column types differ.
-- Timestamps are stored as integer Unix microseconds (driver option
-- _time_integer_format=unix_micro), JSON as TEXT.

-- +goose Up
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('change', 0), ('outbox', 0);

CREATE TABLE consumers (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    labels          TEXT NOT NULL DEFAULT '{}',
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    agent_connected BOOLEAN NOT NULL DEFAULT FALSE,
    agent_epoch     TEXT NOT NULL DEFAULT '',
    agent_heartbeat TIMESTAMP NULL,
    agent_server_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX consumers_created ON consumers (created_at, id);

CREATE TABLE bundle_generations (
    id         TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);

CREATE TABLE bundles (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    consumer_name       TEXT NOT NULL REFERENCES consumers (name),
    source              TEXT NOT NULL DEFAULT '',
    labels              TEXT NOT NULL DEFAULT '{}',
    meta                TEXT NOT NULL,
    spec                TEXT NOT NULL,
    generation          INTEGER NOT NULL,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL,
    deleted_at          TIMESTAMP NULL,
    change_seq          INTEGER NOT NULL,
    status              TEXT NOT NULL DEFAULT '',
    observed_generation INTEGER NOT NULL DEFAULT 0,
    revision            INTEGER NOT NULL DEFAULT 0,
    sequence_id         TEXT NOT NULL DEFAULT '',
    agent_epoch         TEXT NOT NULL DEFAULT '',
    agent_revision      INTEGER NOT NULL DEFAULT 0,
    status_hash         TEXT NOT NULL DEFAULT '',
    reported_at         TIMESTAMP NULL,
    confirmed_at        TIMESTAMP NULL,
    digest_mismatch     BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX bundles_consumer ON bundles (consumer_name, created_at, id);
CREATE INDEX bundles_created ON bundles (created_at, id);
CREATE INDEX bundles_change_seq ON bundles (change_seq);
CREATE INDEX bundles_name ON bundles (name);

CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY,
    consumer_name TEXT NOT NULL,
    bundle_id     TEXT NOT NULL,
    generation    INTEGER NOT NULL,
    op            TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_sent_at  TIMESTAMP NULL
);
CREATE INDEX outbox_consumer ON outbox (consumer_name, seq);
CREATE INDEX outbox_bundle ON outbox (bundle_id, generation);

CREATE TABLE changes (
    seq           INTEGER PRIMARY KEY,
    bundle_id     TEXT NOT NULL,
    consumer_name TEXT NOT NULL,
    source        TEXT NOT NULL,
    type          TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE changes;
DROP TABLE outbox;
DROP TABLE bundles;
DROP TABLE bundle_generations;
DROP TABLE consumers;
DROP TABLE counters;

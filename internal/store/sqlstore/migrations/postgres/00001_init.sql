-- Schema version 1 for PostgreSQL. Keep in step with ../sqlite/00001_init.sql:
-- same tables, columns and indexes; only the column types differ.
-- Text keys use the "C" collation so ordering and LIKE match SQLite's
-- byte-wise comparison. Spec, meta and status are TEXT (stored and returned
-- byte for byte, nothing to parse on the server); labels are JSONB.

-- +goose Up
CREATE TABLE counters (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('change', 0), ('outbox', 0);

CREATE TABLE consumers (
    id              TEXT COLLATE "C" PRIMARY KEY,
    name            TEXT COLLATE "C" NOT NULL UNIQUE,
    labels          JSONB NOT NULL DEFAULT '{}',
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    agent_connected BOOLEAN NOT NULL DEFAULT FALSE,
    agent_epoch     TEXT NOT NULL DEFAULT '',
    agent_heartbeat TIMESTAMPTZ NULL,
    agent_server_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX consumers_created ON consumers (created_at, id);

CREATE TABLE bundle_generations (
    id         TEXT COLLATE "C" PRIMARY KEY,
    generation BIGINT NOT NULL
);

CREATE TABLE bundles (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    name                TEXT COLLATE "C" NOT NULL,
    consumer_name       TEXT COLLATE "C" NOT NULL REFERENCES consumers (name),
    source              TEXT COLLATE "C" NOT NULL DEFAULT '',
    labels              JSONB NOT NULL DEFAULT '{}',
    meta                TEXT NOT NULL,
    spec                TEXT NOT NULL,
    generation          BIGINT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    deleted_at          TIMESTAMPTZ NULL,
    change_seq          BIGINT NOT NULL,
    status              TEXT NOT NULL DEFAULT '',
    observed_generation BIGINT NOT NULL DEFAULT 0,
    revision            BIGINT NOT NULL DEFAULT 0,
    sequence_id         TEXT NOT NULL DEFAULT '',
    agent_epoch         TEXT NOT NULL DEFAULT '',
    agent_revision      BIGINT NOT NULL DEFAULT 0,
    status_hash         TEXT NOT NULL DEFAULT '',
    reported_at         TIMESTAMPTZ NULL,
    confirmed_at        TIMESTAMPTZ NULL,
    digest_mismatch     BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX bundles_consumer ON bundles (consumer_name, created_at, id);
CREATE INDEX bundles_created ON bundles (created_at, id);
CREATE INDEX bundles_change_seq ON bundles (change_seq);
CREATE INDEX bundles_name ON bundles (name);

CREATE TABLE outbox (
    seq           BIGINT PRIMARY KEY,
    consumer_name TEXT COLLATE "C" NOT NULL,
    bundle_id     TEXT COLLATE "C" NOT NULL,
    generation    BIGINT NOT NULL,
    op            TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_sent_at  TIMESTAMPTZ NULL
);
CREATE INDEX outbox_consumer ON outbox (consumer_name, seq);
CREATE INDEX outbox_bundle ON outbox (bundle_id, generation);

CREATE TABLE changes (
    seq           BIGINT PRIMARY KEY,
    bundle_id     TEXT COLLATE "C" NOT NULL,
    consumer_name TEXT COLLATE "C" NOT NULL,
    source        TEXT COLLATE "C" NOT NULL,
    type          TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE changes;
DROP TABLE outbox;
DROP TABLE bundles;
DROP TABLE bundle_generations;
DROP TABLE consumers;
DROP TABLE counters;

-- Webhook subscriptions (package webhook). Keep in step with the other
-- dialect's 00005_subscriptions.sql.
--   subscriptions        one row per subscription, with its delivery status;
--                        last_seq numbers its events (per subscription).
--   subscription_events  events rendered from the change log and not yet
--                        acknowledged by the receiver, in seq order.
--   bundle_snapshots     the last state of each bundle the generator saw,
--                        so events carry old and new values.
--   counters 'webhook'   the change sequence the generator has processed.
--   changes_bundle       a bundle's recent history (web view) without a scan.

-- +goose Up
CREATE TABLE subscriptions (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    url           TEXT NOT NULL,
    secret        TEXT NOT NULL,
    search        TEXT NOT NULL DEFAULT '',
    events        TEXT NOT NULL DEFAULT '[]',
    headers       TEXT NOT NULL DEFAULT '{}',
    created_at    TIMESTAMP NOT NULL,
    last_seq      INTEGER NOT NULL DEFAULT 0,
    last_success  TIMESTAMP NULL,
    last_error    TEXT NOT NULL DEFAULT '',
    last_error_at TIMESTAMP NULL,
    failures      INTEGER NOT NULL DEFAULT 0,
    delivered     INTEGER NOT NULL DEFAULT 0,
    dropped       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE subscription_events (
    subscription_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    bundle_id       TEXT NOT NULL,
    type            TEXT NOT NULL,
    data            TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (subscription_id, seq)
);

CREATE TABLE bundle_snapshots (
    bundle_id TEXT PRIMARY KEY,
    snapshot  TEXT NOT NULL
);

INSERT INTO counters (name, value) VALUES ('webhook', -1);
CREATE INDEX changes_bundle ON changes (bundle_id, seq);

-- +goose Down
DROP INDEX changes_bundle;
DELETE FROM counters WHERE name = 'webhook';
DROP TABLE bundle_snapshots;
DROP TABLE subscription_events;
DROP TABLE subscriptions;

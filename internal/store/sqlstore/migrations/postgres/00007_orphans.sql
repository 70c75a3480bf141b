-- Deletes that always end (DESIGN I9). Keep in step with the other
-- dialect's 00007_orphans.sql.
--   orphaned_bundles         bundles finalized by an operator without their
--                            agent (DELETE …?orphan=true, or a consumer
--                            decommissioned): when the agent next says it
--                            holds one, it is told to drop the bundle and
--                            leave its objects; the row goes once it did, or
--                            once a complete Hello shows it does not hold it.
--   decommissioned_consumers consumers removed with DELETE …?cascade=orphan:
--                            their agents are refused with an error naming
--                            when; creating the consumer again clears it.
--   bundles_deleting         the delete backlog per consumer, for its metrics.
--   outbox_consumer_op       the hub reads creates/updates and deletes of a
--                            consumer separately, so a delete storm never
--                            hides a create.

-- +goose Up
CREATE TABLE orphaned_bundles (
    id            TEXT COLLATE "C" PRIMARY KEY,
    consumer_name TEXT COLLATE "C" NOT NULL,
    generation    BIGINT NOT NULL,
    orphaned_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX orphaned_bundles_consumer ON orphaned_bundles (consumer_name, id);

CREATE TABLE decommissioned_consumers (
    name              TEXT COLLATE "C" PRIMARY KEY,
    consumer_id       TEXT COLLATE "C" NOT NULL,
    bundles           BIGINT NOT NULL,
    decommissioned_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX outbox_consumer_op ON outbox (consumer_name, op, seq);

-- The delete backlog per consumer (pending-delete metrics) without a scan.
CREATE INDEX bundles_deleting ON bundles (consumer_name, deleted_at) WHERE deleted_at IS NOT NULL;

-- +goose Down
DROP INDEX bundles_deleting;
DROP INDEX outbox_consumer_op;
DROP TABLE decommissioned_consumers;
DROP TABLE orphaned_bundles;

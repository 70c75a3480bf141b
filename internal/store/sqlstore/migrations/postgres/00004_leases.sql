-- Leases decide who does what when several replicas share the database:
-- a replica's liveness (replica/<id>), the one agent session that serves a
-- consumer (consumer/<name>), and cluster-wide duties run by one replica
-- (duty/<name>). contender is the last holder refused while the lease was
-- held, shown as a conflict.
--
-- Writes notify the other replicas at once (LISTEN/NOTIFY): baton_outbox
-- carries the consumer whose spec delivery has new work, baton_changes
-- tells change-log tailers to read. Identical notifications of one
-- transaction are delivered once.

-- +goose Up
CREATE TABLE leases (
    name         TEXT COLLATE "C" PRIMARY KEY,
    holder       TEXT NOT NULL,
    session      TEXT NOT NULL,
    acquired_at  TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    contender    TEXT NOT NULL DEFAULT '',
    contended_at TIMESTAMPTZ NULL
);

-- +goose StatementBegin
CREATE FUNCTION baton_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('baton_outbox', NEW.consumer_name);
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH ROW EXECUTE FUNCTION baton_notify_outbox();

-- +goose StatementBegin
CREATE FUNCTION baton_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('baton_changes', '');
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION baton_notify_changes();

-- +goose Down
DROP TRIGGER changes_notify ON changes;
DROP FUNCTION baton_notify_changes();
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION baton_notify_outbox();
DROP TABLE leases;

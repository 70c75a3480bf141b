-- No query reads bundles by change_seq (watchers read the changes table),
-- but every bundle change and accepted status report rewrote this index.

-- +goose Up
DROP INDEX bundles_change_seq;

-- +goose Down
CREATE INDEX bundles_change_seq ON bundles (change_seq);

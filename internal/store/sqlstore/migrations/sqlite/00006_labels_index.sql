-- Kept in step with ../postgres/00006_labels_index.sql. SQLite cannot index
-- arbitrary JSON keys; label searches there scan the consumer's rows (the
-- consumer_name index narrows them first when the search names a consumer).
-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;

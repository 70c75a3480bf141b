-- Label searches (labels.<key>='v', Maestro's payload->'metadata'->'labels'
-- forms) are rendered as JSONB containment, which this index serves.
-- +goose Up
CREATE INDEX bundles_labels_gin ON bundles USING GIN (labels jsonb_path_ops);

-- +goose Down
DROP INDEX bundles_labels_gin;

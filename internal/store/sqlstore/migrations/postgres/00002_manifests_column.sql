-- Manifests move out of the spec JSON into their own column, one compact
-- JSON object per line, so reading a bundle splits lines instead of parsing
-- every manifest. Rows written before keep their manifests inside spec and
-- an empty manifests column; readers accept both.

-- +goose Up
ALTER TABLE bundles ADD COLUMN manifests TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE bundles DROP COLUMN manifests;

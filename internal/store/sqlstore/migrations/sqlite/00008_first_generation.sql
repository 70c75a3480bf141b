-- The generation each bundle was created at, so that the version sources
-- and REST clients see counts from 1 within one life of a bundle id while
-- generations go on (DESIGN I4). 0: stored before this was recorded, the
-- version is the generation. Keep in step with the other dialect's
-- 00008_first_generation.sql.

-- +goose Up
ALTER TABLE bundles ADD COLUMN first_generation BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE bundles DROP COLUMN first_generation;

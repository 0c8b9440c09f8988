-- +goose Up
ALTER TABLE users ADD COLUMN nickname text; -- want: CUT103
-- goose's transaction: SET LOCAL holds until the migration commits.
SET LOCAL lock_timeout = '2s';
ALTER TABLE users ADD COLUMN avatar text; -- ok: CUT103

ALTER TABLE users ADD COLUMN nickname text; -- want: CUT103
-- The migration's transaction: SET LOCAL holds until it commits.
SET LOCAL lock_timeout = '2s';
ALTER TABLE users ADD COLUMN avatar text; -- ok: CUT103

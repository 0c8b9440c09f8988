-- No lock_timeout here: SET LOCAL outside a transaction block lasts for
-- that statement only.
SET LOCAL lock_timeout = '2s';
ALTER TABLE users ADD COLUMN nickname text; -- want: CUT103
BEGIN;
SET LOCAL lock_timeout = '2s';
ALTER TABLE users ADD COLUMN avatar text; -- ok: CUT103
COMMIT;
ALTER TABLE users ADD COLUMN bio text; -- want: CUT103
SET lock_timeout = 0;
ALTER TABLE users ADD COLUMN motto text; -- want: CUT103
SELECT set_config('lock_timeout', '1s', false);
ALTER TABLE users ADD COLUMN pronouns text; -- ok: CUT103

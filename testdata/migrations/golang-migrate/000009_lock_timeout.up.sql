ALTER TABLE users ADD COLUMN nickname text; -- want: CUT103
-- In the query's implicit transaction SET LOCAL holds until its end.
SET LOCAL lock_timeout = '2s';
ALTER TABLE users ADD COLUMN avatar text; -- ok: CUT103

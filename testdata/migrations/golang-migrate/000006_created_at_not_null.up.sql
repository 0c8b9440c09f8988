-- The check added NOT VALID in 000002 is validated in a transaction of its
-- own: SET NOT NULL then needs no scan.
SET lock_timeout = '2s';
ALTER TABLE users VALIDATE CONSTRAINT users_created_at_not_null; -- ok: CUT102
ALTER TABLE users ALTER COLUMN created_at SET NOT NULL; -- ok: CUT009

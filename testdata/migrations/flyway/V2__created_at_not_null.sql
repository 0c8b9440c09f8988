-- The check added NOT VALID in V1.1 is validated in a transaction of its
-- own: SET NOT NULL then needs no scan.
SET lock_timeout = '2s';
ALTER TABLE users VALIDATE CONSTRAINT users_created_at_not_null; -- ok: CUT102
ALTER TABLE users ALTER COLUMN created_at SET NOT NULL; -- ok: CUT009

CREATE FUNCTION touch_created_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.created_at := coalesce(NEW.created_at, now());
  RETURN NEW;
END;
$$;

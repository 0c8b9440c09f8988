SET lock_timeout = '2s';

ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0); -- want: CUT010
ALTER TABLE orders ADD CONSTRAINT orders_note_short CHECK (length(note) < 100) NOT VALID; -- ok: CUT010
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id); -- want: CUT011
ALTER TABLE audit_log ADD COLUMN user_id bigint;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID; -- ok: CUT011
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email); -- want: CUT012

-- The safe way to a unique constraint: the index first, concurrently.
CREATE UNIQUE INDEX CONCURRENTLY orders_note_key ON orders (note); -- ok: CUT013
ALTER TABLE orders ADD CONSTRAINT orders_note_key UNIQUE USING INDEX orders_note_key; -- ok: CUT012
CREATE INDEX orders_total_idx ON orders (total); -- want: CUT013
DROP INDEX orders_user_id_idx; -- want: CUT014
DROP INDEX CONCURRENTLY orders_total_idx; -- ok: CUT014

-- NOT NULL proven by a check validated in its own transaction: SET NOT
-- NULL no longer scans.
ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (created_at IS NOT NULL) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null; -- ok: CUT102
ALTER TABLE users ALTER COLUMN created_at SET NOT NULL; -- ok: CUT009

SET lock_timeout = '2s';
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0); -- want: CUT010
ALTER TABLE orders ADD CONSTRAINT orders_note_short CHECK (length(note) < 100) NOT VALID; -- ok: CUT010
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id); -- want: CUT011
ALTER TABLE audit_log ADD COLUMN user_id bigint;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID; -- ok: CUT011
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email); -- want: CUT012
CREATE INDEX orders_total_idx ON orders (total); -- want: CUT013
DROP INDEX orders_user_id_idx; -- want: CUT014
ALTER TABLE users ADD CONSTRAINT users_created_at_not_null CHECK (created_at IS NOT NULL) NOT VALID;

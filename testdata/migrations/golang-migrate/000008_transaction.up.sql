-- Several statements: one transaction, so CONCURRENTLY fails and the
-- validation runs under the ADD's lock.
SET lock_timeout = '2s';
CREATE INDEX CONCURRENTLY purchases_note_idx ON purchases (note); -- want: CUT101
ALTER TABLE purchases ADD CONSTRAINT purchases_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE purchases VALIDATE CONSTRAINT purchases_user_fk; -- want: CUT102

-- Transactions written in the file.
SET lock_timeout = '2s';

BEGIN;
CREATE INDEX CONCURRENTLY purchases_note_idx ON purchases (note); -- want: CUT101
ALTER TABLE purchases ADD CONSTRAINT purchases_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE purchases VALIDATE CONSTRAINT purchases_user_fk; -- want: CUT102
COMMIT;

CREATE INDEX CONCURRENTLY purchases_status_idx ON purchases (status); -- ok: CUT101

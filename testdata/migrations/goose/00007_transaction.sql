-- +goose Up
-- Without NO TRANSACTION goose runs this in one transaction.
SET lock_timeout = '2s';
CREATE INDEX CONCURRENTLY purchases_note_idx ON purchases (note); -- want: CUT101
ALTER TABLE purchases ADD CONSTRAINT purchases_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE purchases VALIDATE CONSTRAINT purchases_user_fk; -- want: CUT102

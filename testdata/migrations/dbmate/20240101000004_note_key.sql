-- migrate:up
SET lock_timeout = '2s';
ALTER TABLE orders ADD CONSTRAINT orders_note_key UNIQUE USING INDEX orders_note_key; -- ok: CUT012

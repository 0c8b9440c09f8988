-- Alone in its migration, CREATE INDEX CONCURRENTLY runs outside a
-- transaction: Flyway sees it cannot run in one.
CREATE UNIQUE INDEX CONCURRENTLY orders_note_key ON orders (note); -- ok: CUT013 CUT101

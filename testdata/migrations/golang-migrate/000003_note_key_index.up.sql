CREATE UNIQUE INDEX CONCURRENTLY orders_note_key ON orders (note); -- ok: CUT013 CUT101

-- +goose NO TRANSACTION
-- +goose Up
CREATE UNIQUE INDEX CONCURRENTLY orders_note_key ON orders (note); -- ok: CUT013 CUT101
DROP INDEX CONCURRENTLY orders_total_idx; -- ok: CUT014

-- +goose Down
DROP INDEX orders_note_key;

-- +goose Up
SET lock_timeout = '2s';
-- next ok: CUT901
-- cutover:ignore CUT013 purchases holds a few hundred rows
-- +goose StatementBegin
CREATE INDEX purchases_total_idx ON purchases (total); -- suppressed: CUT013
-- +goose StatementEnd
-- next want: CUT901
-- cutover:ignore CUT013
CREATE INDEX purchases_id_total_idx ON purchases (id, total); -- want: CUT013
-- next want: CUT901
-- cutover:ignore CUT999 no such rule
-- next want: CUT901
-- cutover:ignore CUT005 this comment is followed by a blank line

COMMENT ON TABLE purchases IS 'orders, renamed';

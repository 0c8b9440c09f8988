SET lock_timeout = '2s';
CREATE TABLE scratch (id bigint PRIMARY KEY, label text, n integer);
ALTER TABLE scratch RENAME COLUMN label TO title; -- ok: CUT001
ALTER TABLE scratch ALTER COLUMN n TYPE bigint; -- ok: CUT006
ALTER TABLE scratch ADD COLUMN token uuid DEFAULT gen_random_uuid() NOT NULL; -- ok: CUT007
ALTER TABLE scratch ALTER COLUMN title SET NOT NULL; -- ok: CUT009
ALTER TABLE scratch ADD CONSTRAINT scratch_n_positive CHECK (n > 0); -- ok: CUT010
ALTER TABLE scratch ADD CONSTRAINT scratch_title_key UNIQUE (title); -- ok: CUT012
CREATE INDEX scratch_n_idx ON scratch (n); -- ok: CUT013
UPDATE scratch SET n = 0 WHERE n IS NULL; -- ok: CUT016
ALTER TABLE scratch RENAME TO scratch_pad; -- ok: CUT002
DROP TABLE scratch_pad; -- ok: CUT004
UPDATE users SET status = 'inactive' WHERE status = 'gone'; -- want: CUT016
DROP VIEW user_emails; -- want: CUT005
DROP VIEW IF EXISTS no_such_view; -- ok: CUT005
DROP TABLE audit_log; -- want: CUT004
ALTER TABLE orders RENAME TO purchases; -- want: CUT002
REFRESH MATERIALIZED VIEW order_totals; -- want: CUT017
REFRESH MATERIALIZED VIEW CONCURRENTLY order_totals; -- ok: CUT017

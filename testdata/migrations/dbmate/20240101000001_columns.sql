-- migrate:up
-- dbmate runs each migration in one transaction.
SET lock_timeout = '2s';

ALTER TABLE users RENAME COLUMN name TO full_name; -- want: CUT001
ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,4); -- want: CUT006
ALTER TABLE orders ALTER COLUMN note TYPE varchar(200); -- ok: CUT006
ALTER TABLE orders ADD COLUMN ref uuid DEFAULT gen_random_uuid(); -- want: CUT007
ALTER TABLE orders ADD COLUMN flagged boolean DEFAULT false NOT NULL; -- ok: CUT007
ALTER TABLE users ADD COLUMN tier integer NOT NULL; -- want: CUT008
ALTER TABLE users ADD COLUMN rank integer NOT NULL DEFAULT 0; -- ok: CUT008
ALTER TABLE users ALTER COLUMN full_name SET NOT NULL; -- want: CUT009
ALTER TABLE orders ALTER COLUMN total SET NOT NULL; -- ok: CUT009
ALTER TABLE users ALTER COLUMN status DROP DEFAULT; -- want: CUT015
ALTER TABLE users ALTER COLUMN created_at DROP DEFAULT; -- ok: CUT015
ALTER TABLE users DROP COLUMN legacy; -- want: CUT003
ALTER TABLE users DROP COLUMN IF EXISTS legacy; -- ok: CUT003

-- migrate:down
-- The down section is not checked.
ALTER TABLE users DROP COLUMN rank;
ALTER TABLE users DROP COLUMN tier;
ALTER TABLE users RENAME COLUMN full_name TO name;

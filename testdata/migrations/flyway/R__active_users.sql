-- Repeatable: runs after every versioned migration.
CREATE OR REPLACE VIEW active_users AS SELECT id, full_name, avatar FROM users WHERE status = 'active';

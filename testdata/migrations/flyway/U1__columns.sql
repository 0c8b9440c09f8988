-- Undo migrations are not checked.
DROP TABLE users;

-- Keys only ticketd knows: `bounce` signs the return path of every notification
-- (VERP), so a delivery report proves which notification it is about.
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO secrets (name, value) VALUES ('bounce', lower(hex(randomblob(32))));

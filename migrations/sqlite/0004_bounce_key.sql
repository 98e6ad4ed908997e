-- Keys only ticketd knows: `bounce` signs the return path of every notification
-- (VERP), so a delivery report proves which notification it is about.
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO secrets (name, value) VALUES ('bounce', lower(hex(randomblob(32))));
-- Flags set before reports had to prove themselves name no notification: drop them.
DELETE FROM bounced_addresses WHERE outbox_id IS NULL;

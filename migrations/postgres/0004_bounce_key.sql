-- Keys only ticketd knows: `bounce` signs the return path of every notification
-- (VERP), so a delivery report proves which notification it is about.
-- gen_random_uuid() draws from PostgreSQL's strong random source (version 13 on).
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO secrets (name, value)
VALUES ('bounce', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
-- Flags set before reports had to prove themselves name no notification: drop them.
DELETE FROM bounced_addresses WHERE outbox_id IS NULL;

-- Notifications: rendered when they are caused, delivered by the outbox sender.

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER REFERENCES tickets(id),
    held_id INTEGER REFERENCES held_messages(id),
    kind TEXT NOT NULL,
    -- 1 for automatic mail (acknowledgements, notices): subject to the loop rules.
    automatic INTEGER NOT NULL,
    mail_from TEXT NOT NULL,
    recipient TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    bytes BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox(recipient, created_at);
CREATE INDEX outbox_ticket ON outbox(ticket_id);

CREATE TABLE outbox_attempts (
    id INTEGER PRIMARY KEY,
    outbox_id INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    reply TEXT NOT NULL
);
CREATE INDEX outbox_attempts_outbox ON outbox_attempts(outbox_id);

-- Addresses our mail bounced from: no more automatic mail to them.
CREATE TABLE bounced_addresses (
    address TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    outbox_id INTEGER,
    at INTEGER NOT NULL
);

ALTER TABLE tickets ADD COLUMN reminded_at INTEGER;

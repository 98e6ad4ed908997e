-- Outlook's conversation (the GUID of Thread-Index) a ticket belongs to, and
-- other helpdesks' ticket numbers seen on a ticket, so that replies which lost
-- their headers and tag still find it.
ALTER TABLE tickets ADD COLUMN conversation_id TEXT;
CREATE INDEX tickets_conversation ON tickets(conversation_id);
CREATE TABLE ticket_references (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    reference TEXT NOT NULL,
    PRIMARY KEY (reference, ticket_id)
);

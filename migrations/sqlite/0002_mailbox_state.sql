-- Where each IMAP mailbox was read up to: the last UID acknowledged, valid
-- while the mailbox keeps its UIDVALIDITY.
CREATE TABLE mailbox_state (
    source TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    last_uid INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (source, mailbox)
);

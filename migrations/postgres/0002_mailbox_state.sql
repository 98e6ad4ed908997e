-- Where each IMAP mailbox was read up to: the last UID acknowledged, valid
-- while the mailbox keeps its UIDVALIDITY.
CREATE TABLE mailbox_state (
    source TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    last_uid BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (source, mailbox)
);

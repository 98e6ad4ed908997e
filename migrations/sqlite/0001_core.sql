-- Core schema: organizations, contacts, agents, queues, tickets, messages,
-- attachments, raw and held messages, and the audit log.
-- Timestamps are Unix seconds (UTC). Flags are 0/1 integers so one query
-- text serves SQLite and PostgreSQL through sqlx's Any driver.

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    parent_id INTEGER REFERENCES organizations(id),
    shares_tickets INTEGER NOT NULL DEFAULT 0,
    language TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE organization_domains (
    domain TEXT PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE
);

CREATE TABLE organization_notify_addresses (
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    PRIMARY KEY (organization_id, address)
);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT,
    organization_id INTEGER REFERENCES organizations(id),
    roles TEXT NOT NULL DEFAULT 'support',
    state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'locked', 'inactive')),
    language TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX contacts_organization ON contacts(organization_id);

CREATE TABLE agents (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE queues (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    addresses TEXT NOT NULL DEFAULT '',
    allowed_roles TEXT NOT NULL DEFAULT 'admin,support'
);

CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    queue_id INTEGER NOT NULL REFERENCES queues(id),
    organization_id INTEGER REFERENCES organizations(id),
    requester_email TEXT NOT NULL,
    requester_contact_id INTEGER REFERENCES contacts(id),
    subject TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new'
        CHECK (status IN ('new', 'open', 'pending', 'on_hold', 'solved', 'closed')),
    priority TEXT NOT NULL DEFAULT 'normal',
    assignee_id INTEGER REFERENCES agents(id),
    follows_up INTEGER REFERENCES tickets(id),
    merged_into INTEGER REFERENCES tickets(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX tickets_status ON tickets(status);
CREATE INDEX tickets_organization ON tickets(organization_id);

CREATE TABLE participants (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('requester', 'cc')),
    PRIMARY KEY (ticket_id, email)
);
CREATE INDEX participants_email ON participants(email);

CREATE TABLE raw_messages (
    sha256 TEXT PRIMARY KEY,
    message_id TEXT,
    from_address TEXT,
    size INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    source TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
-- The same Message-ID from the same sender is one message, whatever route it took.
CREATE UNIQUE INDEX raw_messages_message_id ON raw_messages(message_id, from_address);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    author_kind TEXT NOT NULL CHECK (author_kind IN ('contact', 'agent', 'system', 'unknown')),
    author_id INTEGER,
    author_email TEXT,
    author_name TEXT,
    message_id TEXT,
    in_reply_to TEXT,
    reference_ids TEXT,
    subject TEXT,
    body_text TEXT NOT NULL,
    body_html TEXT,
    visible_text TEXT NOT NULL,
    internal INTEGER NOT NULL DEFAULT 0,
    classification TEXT NOT NULL DEFAULT 'normal',
    raw_sha256 TEXT REFERENCES raw_messages(sha256),
    created_at INTEGER NOT NULL
);
CREATE INDEX messages_ticket ON messages(ticket_id);
CREATE INDEX messages_message_id ON messages(message_id);

CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    message_row_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    filename TEXT,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    stored INTEGER NOT NULL,
    inline INTEGER NOT NULL DEFAULT 0,
    content_id TEXT
);
CREATE INDEX attachments_message ON attachments(message_row_id);

CREATE TABLE held_messages (
    id INTEGER PRIMARY KEY,
    raw_sha256 TEXT NOT NULL REFERENCES raw_messages(sha256),
    reason_code TEXT NOT NULL,
    reason TEXT NOT NULL,
    sender TEXT,
    subject TEXT,
    queue_id INTEGER REFERENCES queues(id),
    ticket_id INTEGER REFERENCES tickets(id),
    created_at INTEGER NOT NULL,
    resolved_at INTEGER,
    resolution TEXT CHECK (resolution IN ('released', 'discarded'))
);
CREATE INDEX held_open ON held_messages(resolved_at);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER,
    contact_id INTEGER,
    organization_id INTEGER,
    held_id INTEGER,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX events_ticket ON events(ticket_id);

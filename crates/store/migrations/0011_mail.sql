-- Service desk (REQUIREMENTS §4), email channel, inbound half: the mailboxes a project
-- receives mail through, and every message received with what became of it. The UNIQUE
-- Message-ID, written in the same transaction as the ticket or reply, makes receiving
-- idempotent: a message delivered twice (an MTA retry, an IMAP poll after a crash before
-- the message was flagged) is stored once.

CREATE TABLE mailboxes (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    address TEXT NOT NULL,
    -- What happens to mail from an address no contact has: `create_contact` (in the
    -- project's organisation) or `hold` (recorded for review, no ticket).
    unknown_sender TEXT NOT NULL,
    imap_host TEXT,
    imap_port BIGINT,
    -- `tls`, `starttls` or `plain` (loopback only).
    imap_tls TEXT,
    imap_user TEXT,
    imap_secret TEXT,
    imap_folder TEXT,
    -- Where processed mail is moved; flagged \Seen when empty.
    imap_done_folder TEXT,
    active BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX mailboxes_address ON mailboxes (address);
CREATE INDEX mailboxes_project ON mailboxes (project_id);

CREATE TABLE mail_messages (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id),
    mailbox_id TEXT REFERENCES mailboxes (id),
    sender TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- `ticket`, `reply`, `ignored`, `held` or `refused`.
    outcome TEXT NOT NULL,
    reason TEXT,
    ticket_id TEXT REFERENCES tickets (id),
    comment_id TEXT REFERENCES ticket_comments (id),
    -- The sanitised HTML body of HTML mail, shown instead of the raw markup.
    safe_html TEXT,
    -- The raw message in the attachment store, by SHA-256.
    raw_sha256 TEXT,
    received_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX mail_messages_message_id ON mail_messages (message_id);
CREATE INDEX mail_messages_sender ON mail_messages (sender, received_at);
CREATE INDEX mail_messages_project ON mail_messages (project_id, received_at);

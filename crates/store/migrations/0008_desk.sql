-- Service desk (REQUIREMENTS §4), second part: files attached to tickets and to their
-- conversation. The bytes live under the data directory, named by their SHA-256 (so a file
-- attached twice is stored once); a row is written only after its file is durable.
-- `visibility` is the comment's for a file of a comment, `public` or `internal` otherwise:
-- a customer contact never downloads an internal one.

CREATE TABLE ticket_attachments (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    comment_id TEXT REFERENCES ticket_comments (id) ON DELETE CASCADE,
    visibility TEXT NOT NULL,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    uploaded_by TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX ticket_attachments_ticket ON ticket_attachments (ticket_id, created_at);
CREATE INDEX ticket_attachments_comment ON ticket_attachments (comment_id);
CREATE INDEX ticket_attachments_sha256 ON ticket_attachments (sha256);

-- Service requests (REQ-…) are ordered from catalogue items: an item belongs to a catalogue
-- service and carries its own form (`form`: JSON list of fields with key, label, kind
-- text/number/date/choice, required flag and choices). A request's validated answers are kept
-- with the ticket.
CREATE TABLE catalogue_items (
    id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL REFERENCES services (id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    form TEXT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX catalogue_items_code ON catalogue_items (code);
CREATE INDEX catalogue_items_service ON catalogue_items (service_id, name);

CREATE TABLE ticket_request_answers (
    ticket_id TEXT PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    catalogue_item_id TEXT NOT NULL REFERENCES catalogue_items (id),
    answers TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

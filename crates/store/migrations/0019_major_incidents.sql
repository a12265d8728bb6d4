-- Service desk and incident management (REQUIREMENTS §4, major incidents 重大事件): the
-- communication log of a major incident — each update to customers, the service desk,
-- management, stakeholders or suppliers, how it went out, who wrote it, and when the next one
-- is promised.

CREATE TABLE major_incident_communications (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    audience TEXT NOT NULL,
    medium TEXT NOT NULL,
    summary TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    next_update_due BIGINT,
    author_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX major_incident_communications_seq ON major_incident_communications (ticket_id, seq);

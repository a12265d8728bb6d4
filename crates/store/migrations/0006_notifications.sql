-- Notifications (REQUIREMENTS §1 "notifications by email and chat webhooks", ISO/IEC 20000-1
-- §8.3.2 communication with customers): one delivery row per announcement, channel and
-- recipient (the unique key makes dispatch exactly-once across instances), administrators'
-- template overrides of the shipped defaults, and chat webhooks.

CREATE TABLE notification_deliveries (
    id TEXT PRIMARY KEY,
    announcement_id TEXT NOT NULL,
    event_kind TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    recipient_user_id TEXT,
    language TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    thread_key TEXT,
    from_address TEXT,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    last_error TEXT,
    sent_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX notification_deliveries_once ON notification_deliveries (announcement_id, channel, recipient);
CREATE INDEX notification_deliveries_due ON notification_deliveries (status, next_attempt_at);
CREATE INDEX notification_deliveries_updated ON notification_deliveries (updated_at, id);

-- Announcements the dispatcher has turned into deliveries; re-scans of the safety window skip them.
CREATE TABLE notification_dispatched (
    announcement_id TEXT PRIMARY KEY,
    deliveries BIGINT NOT NULL,
    dispatched_at BIGINT NOT NULL
);

CREATE TABLE notification_templates (
    event_kind TEXT NOT NULL,
    language TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (event_kind, language)
);

CREATE TABLE notification_webhooks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT,
    event_kinds TEXT NOT NULL,
    project_id TEXT REFERENCES projects (id),
    team_id TEXT REFERENCES teams (id),
    language TEXT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

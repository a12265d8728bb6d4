-- Notification event kinds a person chose not to be emailed about (issue 4: per-recipient
-- opt-out). Mandatory kinds are never stored here (the application refuses them).
CREATE TABLE notification_opt_outs (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event_kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, event_kind)
);

-- Service desk and incident management (REQUIREMENTS §4): tickets (incidents INC- and service
-- requests REQ-), their status log (read by the SLA engine), priority log, comments (public
-- replies and internal notes), work log, links, watchers, satisfaction ratings and the
-- category tree. Portable SQL: app-made TEXT ids, BIGINT times (Unix ms), BIGINT 0/1 booleans.
-- The priority matrix and lifecycle policy live in `settings` (`incident.priority_matrix`,
-- `incident.reopen_window_days`); absent rows mean the defaults.

CREATE TABLE ticket_categories (
    id TEXT PRIMARY KEY,
    parent_id TEXT REFERENCES ticket_categories (id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    active BIGINT NOT NULL DEFAULT 1,
    sort_order BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX ticket_categories_code ON ticket_categories (code);
CREATE INDEX ticket_categories_parent ON ticket_categories (parent_id, sort_order);

CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    kind TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    reporter_id TEXT NOT NULL REFERENCES users (id),
    created_by TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT,
    channel TEXT NOT NULL,
    category_id TEXT REFERENCES ticket_categories (id),
    service_id TEXT,
    catalogue_item_id TEXT,
    impact TEXT NOT NULL,
    urgency TEXT NOT NULL,
    priority TEXT NOT NULL,
    status TEXT NOT NULL,
    pending_reason TEXT,
    pending_note TEXT,
    team_id TEXT REFERENCES teams (id),
    agent_id TEXT REFERENCES users (id),
    resolution_code TEXT,
    resolution_notes TEXT,
    resolved_by TEXT,
    closure_kind TEXT,
    closure_reason TEXT,
    closed_by TEXT,
    duplicate_of_id TEXT REFERENCES tickets (id),
    parent_id TEXT REFERENCES tickets (id),
    reopen_count BIGINT NOT NULL DEFAULT 0,
    major BIGINT NOT NULL DEFAULT 0,
    major_manager_id TEXT REFERENCES users (id),
    major_reason TEXT,
    major_declared_at BIGINT,
    major_declared_by TEXT,
    status_changed_at BIGINT NOT NULL,
    first_response_at BIGINT,
    assigned_at BIGINT,
    started_at BIGINT,
    pending_at BIGINT,
    resolved_at BIGINT,
    closed_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX tickets_number ON tickets (number);
CREATE INDEX tickets_team_queue ON tickets (team_id, status, priority, updated_at);
CREATE INDEX tickets_agent_queue ON tickets (agent_id, status, priority, updated_at);
CREATE INDEX tickets_project_queue ON tickets (project_id, status, priority, updated_at);
CREATE INDEX tickets_status_queue ON tickets (status, priority, updated_at);
CREATE INDEX tickets_organization ON tickets (organization_id, created_at);
CREATE INDEX tickets_reporter ON tickets (reporter_id, created_at);
CREATE INDEX tickets_parent ON tickets (parent_id);
CREATE INDEX tickets_updated ON tickets (updated_at, id);

-- One row per status change; the first row of a ticket (seq 1) is its logging as new.
CREATE TABLE ticket_status_log (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    pending_reason TEXT,
    sla_status TEXT NOT NULL,
    action TEXT,
    actor_id TEXT NOT NULL
);
CREATE UNIQUE INDEX ticket_status_log_seq ON ticket_status_log (ticket_id, seq);
CREATE INDEX ticket_status_log_at ON ticket_status_log (at);

-- One row per priority in force; the first row is the priority at logging.
CREATE TABLE ticket_priority_log (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    priority TEXT NOT NULL,
    actor_id TEXT NOT NULL
);
CREATE UNIQUE INDEX ticket_priority_log_seq ON ticket_priority_log (ticket_id, seq);

CREATE TABLE ticket_comments (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    visibility TEXT NOT NULL,
    body TEXT NOT NULL,
    author_id TEXT NOT NULL,
    author_kind TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ticket_comments_ticket ON ticket_comments (ticket_id, created_at);

CREATE TABLE ticket_work_log (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    author_id TEXT NOT NULL REFERENCES users (id),
    minutes BIGINT NOT NULL,
    performed_at BIGINT NOT NULL,
    note TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX ticket_work_log_ticket ON ticket_work_log (ticket_id, performed_at);
CREATE INDEX ticket_work_log_author ON ticket_work_log (author_id, performed_at);

-- Links to records of other processes (problem, change) and related tickets; parent/child and
-- duplicate-of are columns of `tickets`.
CREATE TABLE ticket_links (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX ticket_links_target ON ticket_links (ticket_id, target_type, target_id);
CREATE INDEX ticket_links_reverse ON ticket_links (target_type, target_id);

CREATE TABLE ticket_watchers (
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (ticket_id, user_id)
);
CREATE INDEX ticket_watchers_user ON ticket_watchers (user_id);

CREATE TABLE ticket_ratings (
    ticket_id TEXT PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    score BIGINT NOT NULL,
    comment TEXT,
    rated_by TEXT NOT NULL REFERENCES users (id),
    rated_at BIGINT NOT NULL
);
CREATE INDEX ticket_ratings_rated ON ticket_ratings (rated_at);

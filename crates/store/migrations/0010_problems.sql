-- Problem management (REQUIREMENTS §4): problems raised from incidents or proactively, their
-- root-cause analysis, workaround and status log, and the known error database (已知错误数据库)
-- with its search terms. Incidents are linked through `ticket_links` (target_type `problem` or
-- `known_error`). Portable SQL: app-made TEXT ids, BIGINT times (Unix ms), BIGINT 0/1 booleans.

CREATE TABLE problems (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    title TEXT NOT NULL,
    description TEXT,
    source TEXT NOT NULL,
    priority TEXT NOT NULL,
    service_id TEXT REFERENCES services (id),
    -- JSON list of configuration item ids
    ci_ids TEXT NOT NULL,
    status TEXT NOT NULL,
    team_id TEXT REFERENCES teams (id),
    agent_id TEXT REFERENCES users (id),
    rca_method TEXT,
    rca_findings TEXT,
    root_cause TEXT,
    rca_recorded_at BIGINT,
    rca_recorded_by TEXT,
    workaround TEXT,
    workaround_recorded_at BIGINT,
    workaround_recorded_by TEXT,
    resolution_notes TEXT,
    fixing_change_id TEXT,
    resolved_at BIGINT,
    resolved_by TEXT,
    closure_kind TEXT,
    closure_reason TEXT,
    closed_at BIGINT,
    closed_by TEXT,
    reopen_count BIGINT NOT NULL DEFAULT 0,
    status_changed_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX problems_number ON problems (number);
CREATE INDEX problems_project ON problems (project_id, status, updated_at);
CREATE INDEX problems_status ON problems (status, priority, updated_at);
CREATE INDEX problems_team ON problems (team_id, status);
CREATE INDEX problems_agent ON problems (agent_id, status);

CREATE TABLE problem_status_log (
    id TEXT PRIMARY KEY,
    problem_id TEXT NOT NULL REFERENCES problems (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    action TEXT,
    actor_id TEXT NOT NULL
);
CREATE UNIQUE INDEX problem_status_log_seq ON problem_status_log (problem_id, seq);

-- One known error per problem. `language` is the language of `title` and `symptoms` (and of
-- the problem's workaround); the translation_* columns hold the other language, if written.
CREATE TABLE known_errors (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    problem_id TEXT NOT NULL REFERENCES problems (id),
    language TEXT NOT NULL,
    title TEXT NOT NULL,
    symptoms TEXT NOT NULL,
    translation_title TEXT,
    translation_symptoms TEXT,
    translation_workaround TEXT,
    publish_to_portal BIGINT NOT NULL DEFAULT 0,
    recorded_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX known_errors_number ON known_errors (number);
CREATE UNIQUE INDEX known_errors_problem ON known_errors (problem_id);

-- The search terms of each known error (words and CJK character pairs of its titles, symptoms
-- and workarounds in both languages): matching looks terms up through the index.
CREATE TABLE known_error_terms (
    known_error_id TEXT NOT NULL REFERENCES known_errors (id) ON DELETE CASCADE,
    term TEXT NOT NULL,
    PRIMARY KEY (known_error_id, term)
);
CREATE INDEX known_error_terms_term ON known_error_terms (term, known_error_id);

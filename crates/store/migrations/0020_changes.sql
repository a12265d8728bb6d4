-- Change management (REQUIREMENTS §5): requests for change (CHG- numbers) of type standard,
-- normal or emergency, their affected CIs, status log, approval steps with approvers and
-- votes, delegations of approval, freeze windows, change tasks, and standard change
-- templates. Incidents caused by a change are linked through `ticket_links` (target_type
-- `change`). Portable SQL: app-made TEXT ids, BIGINT times (Unix ms), BIGINT 0/1 booleans.

CREATE TABLE change_templates (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    implementation_plan TEXT NOT NULL,
    back_out_plan TEXT NOT NULL,
    risk_level TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    approved_at BIGINT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX change_templates_name ON change_templates (name);

CREATE TABLE changes (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    change_type TEXT NOT NULL,
    template_id TEXT REFERENCES change_templates (id),
    title TEXT NOT NULL,
    description TEXT,
    category TEXT,
    reason TEXT,
    status TEXT NOT NULL,
    -- JSON object question key -> answer key
    risk_answers TEXT,
    risk_score BIGINT,
    risk_level TEXT,
    cost_estimate TEXT,
    implementation_plan TEXT,
    back_out_plan TEXT,
    test_plan TEXT,
    planned_start BIGINT,
    planned_end BIGINT,
    team_id TEXT REFERENCES teams (id),
    review_outcome TEXT,
    review_notes TEXT,
    review_follow_up TEXT,
    reviewed_by TEXT,
    reviewed_at BIGINT,
    status_reason TEXT,
    status_changed_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX changes_number ON changes (number);
CREATE INDEX changes_project ON changes (project_id, status, updated_at);
CREATE INDEX changes_status ON changes (status, updated_at);
CREATE INDEX changes_window ON changes (planned_start, planned_end);

CREATE TABLE change_cis (
    change_id TEXT NOT NULL REFERENCES changes (id) ON DELETE CASCADE,
    ci_id TEXT NOT NULL REFERENCES configuration_items (id),
    PRIMARY KEY (change_id, ci_id)
);
CREATE INDEX change_cis_ci ON change_cis (ci_id, change_id);

CREATE TABLE change_status_log (
    id TEXT PRIMARY KEY,
    change_id TEXT NOT NULL REFERENCES changes (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason TEXT,
    actor_id TEXT NOT NULL
);
CREATE UNIQUE INDEX change_status_log_seq ON change_status_log (change_id, seq);

-- The approval workflow of a change: steps in order (`seq` from 0), each with approvers
-- (`user` or `group`: a team id, or `organization:<id>` for the customer's contacts) and a
-- quorum (`all`, `any`, `at_least` with `quorum_n`).
CREATE TABLE change_approval_steps (
    change_id TEXT NOT NULL REFERENCES changes (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    name TEXT NOT NULL,
    quorum_rule TEXT NOT NULL,
    quorum_n BIGINT,
    -- `cab` or `customer`
    source TEXT NOT NULL,
    PRIMARY KEY (change_id, seq)
);

CREATE TABLE change_approvers (
    change_id TEXT NOT NULL REFERENCES changes (id) ON DELETE CASCADE,
    step_seq BIGINT NOT NULL,
    approver_kind TEXT NOT NULL,
    approver_id TEXT NOT NULL,
    PRIMARY KEY (change_id, step_seq, approver_kind, approver_id)
);

CREATE TABLE change_votes (
    id TEXT PRIMARY KEY,
    change_id TEXT NOT NULL REFERENCES changes (id) ON DELETE CASCADE,
    step_seq BIGINT NOT NULL,
    approver_kind TEXT NOT NULL,
    approver_id TEXT NOT NULL,
    actor_id TEXT NOT NULL REFERENCES users (id),
    verdict TEXT NOT NULL,
    reason TEXT,
    at BIGINT NOT NULL
);
CREATE UNIQUE INDEX change_votes_approver ON change_votes (change_id, step_seq, approver_kind, approver_id);

CREATE TABLE change_delegations (
    id TEXT PRIMARY KEY,
    delegator_id TEXT NOT NULL REFERENCES users (id),
    delegate_id TEXT NOT NULL REFERENCES users (id),
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX change_delegations_delegate ON change_delegations (delegate_id, ends_at);

-- Freeze (blackout) windows: for every CI when `ci_ids` is the empty JSON list.
CREATE TABLE change_freezes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    ci_ids TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX change_freezes_window ON change_freezes (starts_at, ends_at);

CREATE TABLE change_tasks (
    id TEXT PRIMARY KEY,
    change_id TEXT NOT NULL REFERENCES changes (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    title TEXT NOT NULL,
    team_id TEXT REFERENCES teams (id),
    -- `open` or `done`
    status TEXT NOT NULL,
    done_at BIGINT,
    done_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX change_tasks_seq ON change_tasks (change_id, seq);
CREATE INDEX change_tasks_team ON change_tasks (team_id, status);

-- The customer approves the changes of projects whose SLA says so.
ALTER TABLE slas ADD COLUMN change_approval_by_customer BIGINT NOT NULL DEFAULT 0;

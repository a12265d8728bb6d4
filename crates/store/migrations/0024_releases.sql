-- Release management (REQUIREMENTS §5, manual §5.1.4): releases (REL- numbers from `counters`)
-- grouping changes, their status log, and the build, test, acceptance and deployment stages,
-- each with its plan, checklist, expected and actual results, named signers (who sign in
-- order) and sign-off; the rollback plan and outcome and the release review. Portable SQL:
-- app-made TEXT ids, BIGINT times (Unix ms), BIGINT 0/1 booleans.

CREATE TABLE releases (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    title TEXT NOT NULL,
    release_version TEXT NOT NULL,
    description TEXT,
    status TEXT NOT NULL,
    rollback_plan TEXT,
    -- JSON list of strings
    known_issues TEXT NOT NULL,
    rollback_outcome TEXT,
    rollback_notes TEXT,
    rollback_by TEXT,
    rollback_at BIGINT,
    review_summary TEXT,
    reviewed_by TEXT,
    reviewed_at BIGINT,
    cancellation_reason TEXT,
    deployed_at BIGINT,
    status_changed_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX releases_number ON releases (number);
CREATE INDEX releases_project ON releases (project_id, status, updated_at);

CREATE TABLE release_status_log (
    id TEXT PRIMARY KEY,
    release_id TEXT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason TEXT,
    actor_id TEXT NOT NULL
);
CREATE UNIQUE INDEX release_status_log_seq ON release_status_log (release_id, seq);

-- The changes a release groups (change ids; the change table belongs to change management).
CREATE TABLE release_changes (
    release_id TEXT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    change_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (release_id, change_id)
);
CREATE INDEX release_changes_change ON release_changes (change_id);

-- One row per release and stage (build, test, acceptance, deployment).
CREATE TABLE release_stages (
    release_id TEXT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    stage TEXT NOT NULL,
    position BIGINT NOT NULL,
    planned_start BIGINT,
    planned_end BIGINT,
    signed_off_by TEXT,
    signed_off_at BIGINT,
    sign_off_note TEXT,
    PRIMARY KEY (release_id, stage)
);

CREATE TABLE release_checklist_items (
    release_id TEXT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    stage TEXT NOT NULL,
    position BIGINT NOT NULL,
    text TEXT NOT NULL,
    done_by TEXT,
    done_at BIGINT,
    PRIMARY KEY (release_id, stage, position)
);

-- Planned results (kind `expected`: description and target) and recorded ones (kind `actual`:
-- result, met, recorded_by/at), keyed per stage.
CREATE TABLE release_results (
    release_id TEXT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    stage TEXT NOT NULL,
    kind TEXT NOT NULL,
    result_key TEXT NOT NULL,
    position BIGINT NOT NULL,
    description TEXT,
    target TEXT,
    result TEXT,
    met BIGINT,
    recorded_by TEXT,
    recorded_at BIGINT,
    PRIMARY KEY (release_id, stage, kind, result_key)
);

-- The people who sign a stage off, in the order they sign; the stage is signed off with the
-- last signature.
CREATE TABLE release_stage_signers (
    release_id TEXT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    stage TEXT NOT NULL,
    position BIGINT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    signed_at BIGINT,
    note TEXT,
    PRIMARY KEY (release_id, stage, user_id)
);
CREATE INDEX release_stage_signers_user ON release_stage_signers (user_id);

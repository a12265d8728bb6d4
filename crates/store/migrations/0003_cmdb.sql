-- Configuration management (配置管理, REQUIREMENTS §5): CI classes with their attribute
-- definitions, configuration items, relationships and baselines. Same portable SQL as 0001:
-- app-made TEXT ids, BIGINT times (Unix ms), BIGINT 0/1 booleans, TEXT JSON.

CREATE TABLE ci_classes (
    class_key TEXT PRIMARY KEY,
    name_en TEXT NOT NULL,
    name_zh TEXT NOT NULL,
    parent_key TEXT REFERENCES ci_classes (class_key),
    -- JSON array of keel_domain::cmdb::AttributeDef
    attributes TEXT NOT NULL,
    shipped BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX ci_classes_parent ON ci_classes (parent_key);

CREATE TABLE configuration_items (
    id TEXT PRIMARY KEY,
    class_key TEXT NOT NULL REFERENCES ci_classes (class_key),
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    owner_user_id TEXT REFERENCES users (id),
    team_id TEXT REFERENCES teams (id),
    -- NULL: a shared CI, visible to all staff
    project_id TEXT REFERENCES projects (id),
    -- free text (site, room, rack); class attributes may also reference a Location CI
    location TEXT,
    description TEXT,
    -- JSON object of the class's validated, normalised attribute values
    attributes TEXT NOT NULL,
    last_verified_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX configuration_items_class ON configuration_items (class_key, status);
CREATE INDEX configuration_items_project ON configuration_items (project_id);
CREATE INDEX configuration_items_name ON configuration_items (name);
CREATE INDEX configuration_items_verified ON configuration_items (last_verified_at);

-- Values of attributes declared unique, per class that declares them (subclasses included):
-- the database refuses a second CI with the same value, even under concurrent writes.
CREATE TABLE ci_unique_values (
    class_key TEXT NOT NULL,
    attribute TEXT NOT NULL,
    -- the normalised value as JSON text
    value TEXT NOT NULL,
    ci_id TEXT NOT NULL REFERENCES configuration_items (id) ON DELETE CASCADE,
    PRIMARY KEY (class_key, attribute, value)
);
CREATE INDEX ci_unique_values_ci ON ci_unique_values (ci_id);

-- "source <kind> target", e.g. app runs_on server. Symmetric kinds (connected_to) are stored
-- with source < target so the unique index also catches the reversed duplicate.
CREATE TABLE ci_relations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    source_id TEXT NOT NULL REFERENCES configuration_items (id),
    target_id TEXT NOT NULL REFERENCES configuration_items (id),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX ci_relations_triple ON ci_relations (source_id, target_id, kind);
CREATE INDEX ci_relations_target ON ci_relations (target_id);
CREATE INDEX ci_relations_kind ON ci_relations (kind);

CREATE TABLE ci_baselines (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    -- scope: the CIs of a project, or (NULL) the whole CMDB; ci_ids narrows it to a JSON list
    project_id TEXT REFERENCES projects (id),
    ci_ids TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ci_count BIGINT NOT NULL,
    -- JSON keel_domain::cmdb::Snapshot
    snapshot TEXT NOT NULL
);
CREATE INDEX ci_baselines_project ON ci_baselines (project_id, created_at);

-- Service level management (§6.1): business calendars with their holidays and make-up working
-- days, the service catalogue with its version history, SLAs per service project, and the OLAs
-- and underpinning contracts that support them. Portable SQL: app-made TEXT ids, BIGINT times
-- (Unix ms), TEXT dates (YYYY-MM-DD), TEXT for JSON.

CREATE TABLE business_calendars (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    time_zone TEXT NOT NULL,
    week_hours TEXT NOT NULL,
    make_up_hours TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX business_calendars_name ON business_calendars (name);

CREATE TABLE calendar_days (
    calendar_id TEXT NOT NULL REFERENCES business_calendars (id) ON DELETE CASCADE,
    on_date TEXT NOT NULL,
    year BIGINT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT,
    PRIMARY KEY (calendar_id, on_date)
);
CREATE INDEX calendar_days_year ON calendar_days (calendar_id, year);

CREATE TABLE services (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    service_line TEXT NOT NULL,
    targets TEXT,
    availability_target TEXT,
    contact_points TEXT,
    calendar_id TEXT REFERENCES business_calendars (id),
    service_hours TEXT,
    exceptions TEXT,
    security TEXT,
    ci_ids TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX services_code ON services (code);
CREATE INDEX services_status ON services (status, name);

CREATE TABLE service_dependencies (
    service_id TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    depends_on_id TEXT NOT NULL REFERENCES services (id),
    PRIMARY KEY (service_id, depends_on_id)
);

CREATE TABLE service_versions (
    service_id TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    snapshot TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (service_id, version)
);

CREATE TABLE slas (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    calendar_id TEXT NOT NULL REFERENCES business_calendars (id),
    status TEXT NOT NULL,
    targets TEXT NOT NULL,
    clock_policy TEXT NOT NULL,
    valid_from TEXT,
    valid_to TEXT,
    review_on TEXT,
    workload_min BIGINT,
    workload_max BIGINT,
    workload_unit TEXT,
    max_outage_minutes BIGINT,
    max_degraded_minutes BIGINT,
    degraded_level TEXT,
    terms TEXT NOT NULL,
    approved_by TEXT,
    approved_at BIGINT,
    activated_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX slas_name ON slas (project_id, name);
CREATE INDEX slas_organization ON slas (organization_id);
CREATE INDEX slas_review ON slas (review_on);

CREATE TABLE sla_services (
    sla_id TEXT NOT NULL REFERENCES slas (id) ON DELETE CASCADE,
    service_id TEXT NOT NULL REFERENCES services (id),
    PRIMARY KEY (sla_id, service_id)
);
CREATE INDEX sla_services_service ON sla_services (service_id);

CREATE TABLE support_agreements (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    provider_team_id TEXT REFERENCES teams (id),
    supplier_name TEXT,
    supplier_contact TEXT,
    reference TEXT,
    targets TEXT,
    valid_from TEXT,
    valid_to TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX support_agreements_name ON support_agreements (kind, name);

CREATE TABLE support_agreement_slas (
    agreement_id TEXT NOT NULL REFERENCES support_agreements (id) ON DELETE CASCADE,
    sla_id TEXT NOT NULL REFERENCES slas (id),
    PRIMARY KEY (agreement_id, sla_id)
);
CREATE INDEX support_agreement_slas_sla ON support_agreement_slas (sla_id);

-- Service level management (§6.1): the live SLA clock of every ticket (one row per ticket and
-- target, computed by the domain clock from the status and priority logs, the SLA's calendar and
-- targets), escalation rules per SLA, the record of each escalation fired (once per ticket, rule
-- and threshold instant, guarded by a unique index), and the notices sent once per SLA version.
-- Portable SQL: app-made TEXT ids, BIGINT times (Unix ms), BIGINT 0/1 booleans, TEXT JSON.

CREATE TABLE ticket_sla_clocks (
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    sla_id TEXT NOT NULL REFERENCES slas (id),
    sla_version BIGINT NOT NULL,
    priority TEXT NOT NULL,
    target_ms BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    due_at BIGINT,
    warning_at BIGINT,
    state TEXT NOT NULL,
    phase TEXT NOT NULL,
    elapsed_ms BIGINT NOT NULL,
    paused_ms BIGINT NOT NULL,
    met_at BIGINT,
    breached_at BIGINT,
    stopped_at BIGINT,
    next_threshold_at BIGINT,
    thresholds TEXT NOT NULL,
    needs_check BIGINT NOT NULL DEFAULT 0,
    computed_at BIGINT NOT NULL,
    PRIMARY KEY (ticket_id, kind)
);
CREATE INDEX ticket_sla_clocks_next ON ticket_sla_clocks (next_threshold_at);
CREATE INDEX ticket_sla_clocks_due ON ticket_sla_clocks (state, due_at);
CREATE INDEX ticket_sla_clocks_sla ON ticket_sla_clocks (sla_id);
CREATE INDEX ticket_sla_clocks_check ON ticket_sla_clocks (needs_check);

-- Keyset walk over one project's tickets for recomputing their clocks in batches.
CREATE INDEX tickets_project_keyset ON tickets (project_id, id);

CREATE TABLE sla_escalation_rules (
    id TEXT PRIMARY KEY,
    sla_id TEXT NOT NULL REFERENCES slas (id) ON DELETE CASCADE,
    target_kind TEXT NOT NULL,
    percent BIGINT NOT NULL,
    action TEXT NOT NULL,
    audience TEXT NOT NULL,
    team_id TEXT REFERENCES teams (id),
    agent_id TEXT REFERENCES users (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX sla_escalation_rules_sla ON sla_escalation_rules (sla_id, target_kind, percent);

CREATE TABLE sla_escalation_firings (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL REFERENCES sla_escalation_rules (id) ON DELETE CASCADE,
    ticket_id TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    threshold_at BIGINT NOT NULL,
    target_kind TEXT NOT NULL,
    percent BIGINT NOT NULL,
    fired_at BIGINT NOT NULL,
    late BIGINT NOT NULL,
    late_by_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE UNIQUE INDEX sla_escalation_firings_once ON sla_escalation_firings (ticket_id, rule_id, threshold_at);
CREATE INDEX sla_escalation_firings_fired ON sla_escalation_firings (fired_at);

CREATE TABLE sla_notices (
    sla_id TEXT NOT NULL REFERENCES slas (id) ON DELETE CASCADE,
    sla_version BIGINT NOT NULL,
    kind TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (sla_id, sla_version, kind)
);

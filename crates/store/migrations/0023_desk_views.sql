-- Service desk and incident management (REQUIREMENTS §4, agent workspace): saved and shared
-- queue views, maintained queue counters, and the indexes the open queue's sort needs.

-- A view: filters, sort and columns an agent saved; shared with one team or with all staff.
CREATE TABLE incident_views (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner_id TEXT NOT NULL REFERENCES users (id),
    -- 'private', 'team' (team_id) or 'everyone' (all staff).
    audience TEXT NOT NULL,
    team_id TEXT REFERENCES teams (id),
    -- JSON object of the queue filters (view, status, priority, kind, team_id, project_id, ...).
    filters TEXT NOT NULL,
    sort TEXT NOT NULL,
    -- Comma-separated column names.
    columns TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX incident_views_owner ON incident_views (owner_id, name);
CREATE INDEX incident_views_audience ON incident_views (audience, team_id);

-- How many tickets sit in each (project, organisation, team, agent, status); '' for no team or
-- agent. Kept in the transaction of every ticket insert and update, rebuilt after bulk loads,
-- so queue tabs and counts per view do not scan the tickets.
CREATE TABLE ticket_queue_counters (
    project_id TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    team_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    status TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (project_id, organization_id, team_id, agent_id, status)
);
CREATE INDEX ticket_queue_counters_agent ON ticket_queue_counters (agent_id, status);
CREATE INDEX ticket_queue_counters_team ON ticket_queue_counters (team_id, status);

INSERT INTO ticket_queue_counters (project_id, organization_id, team_id, agent_id, status, n)
SELECT project_id, organization_id, COALESCE(team_id, ''), COALESCE(agent_id, ''), status, COUNT(*)
FROM tickets GROUP BY project_id, organization_id, COALESCE(team_id, ''), COALESCE(agent_id, ''), status;

-- The open queue sorted by priority (then id) walks this index instead of sorting every open
-- ticket; the team queue filtered by status does the same per team.
CREATE INDEX tickets_open_priority ON tickets (priority, id) WHERE status NOT IN ('resolved', 'closed');
CREATE INDEX tickets_open_updated ON tickets (updated_at, id) WHERE status NOT IN ('resolved', 'closed');
CREATE INDEX tickets_team_status_priority ON tickets (team_id, status, priority, id);

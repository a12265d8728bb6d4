-- Queues of the service desk at a million tickets. A queue page picks its ids from `tickets`
-- alone (store::incidents::list_tickets), so these indexes carry every column the scope and the
-- queue filters read: the sort then runs over index entries of the agent's projects' open
-- tickets without reading a table row.
CREATE INDEX tickets_open_scope_priority ON tickets (project_id, priority, id, team_id, agent_id) WHERE status NOT IN ('resolved', 'closed');
DROP INDEX tickets_team_status_priority;
CREATE INDEX tickets_team_status_priority ON tickets (team_id, status, priority, id, project_id, agent_id);

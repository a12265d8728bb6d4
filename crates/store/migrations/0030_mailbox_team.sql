-- Service desk (REQUIREMENTS §4), email channel: mailboxes per queue. A mailbox may name the
-- resolver group whose queue receives the tickets its mail creates. Teams are deactivated,
-- never deleted; mail intake leaves the ticket unassigned when the team is no longer active
-- or no longer works on the project.
ALTER TABLE mailboxes ADD COLUMN team_id TEXT REFERENCES teams (id);

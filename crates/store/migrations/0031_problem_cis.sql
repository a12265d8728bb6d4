-- Problem management (REQUIREMENTS §4): the configuration items each problem names,
-- one row per CI, so matching known errors by CI is an index lookup on `ci_id` instead of a
-- LIKE over every problem's JSON list. `problems.ci_ids` stays the record's own copy (the API,
-- the audit trail); the store keeps both in step, in the writing transaction, on every problem
-- write. Same portable SQL as 0001: app-made TEXT ids.

CREATE TABLE problem_cis (
    problem_id TEXT NOT NULL REFERENCES problems (id) ON DELETE CASCADE,
    ci_id TEXT NOT NULL,
    PRIMARY KEY (problem_id, ci_id)
);
CREATE INDEX problem_cis_ci ON problem_cis (ci_id, problem_id);

-- Backfill from the JSON lists, in SQL both databases run alike (no JSON functions): a CI is in
-- a problem's list when the list holds its id in quotes. Ids are app-made UUIDs, so they hold no
-- LIKE wildcards. A listed CI that no longer exists is not carried over: nothing can match it.
INSERT INTO problem_cis (problem_id, ci_id)
SELECT p.id, c.id FROM problems p JOIN configuration_items c ON p.ci_ids LIKE '%"' || c.id || '"%';

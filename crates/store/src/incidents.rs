//! Service desk and incident management (REQUIREMENTS §4): tickets, their status and priority
//! logs (which the SLA engine reads), comments, work log, links, watchers, satisfaction
//! ratings and the category tree.

use crate::directory::Scope;
use crate::page::{self, Page, PageRequest, like_pattern};
use crate::rows::RowExt;
use crate::sql::Sql;
use crate::{AnyConnection, Result, StoreError};
use serde::Serialize;
use sqlx::any::AnyRow;

// ---- tickets ----

/// A ticket row. The names after `version` come from joins, for display only: they are not
/// stored with the ticket and not part of its audit snapshot.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct TicketRecord {
    pub id: String,
    pub number: String,
    pub kind: String,
    pub project_id: String,
    pub organization_id: String,
    pub reporter_id: String,
    pub created_by: String,
    pub title: String,
    pub description: Option<String>,
    pub channel: String,
    pub category_id: Option<String>,
    pub service_id: Option<String>,
    pub catalogue_item_id: Option<String>,
    pub impact: String,
    pub urgency: String,
    pub priority: String,
    pub status: String,
    pub pending_reason: Option<String>,
    pub pending_note: Option<String>,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    pub resolution_code: Option<String>,
    pub resolution_notes: Option<String>,
    /// `staff:<id>`, `contact:<id>` or `system`.
    pub resolved_by: Option<String>,
    pub closure_kind: Option<String>,
    pub closure_reason: Option<String>,
    pub closed_by: Option<String>,
    pub duplicate_of_id: Option<String>,
    pub parent_id: Option<String>,
    pub reopen_count: i64,
    pub major: bool,
    pub major_manager_id: Option<String>,
    pub major_reason: Option<String>,
    pub major_declared_at: Option<i64>,
    pub major_declared_by: Option<String>,
    pub status_changed_at: i64,
    pub first_response_at: Option<i64>,
    pub assigned_at: Option<i64>,
    pub started_at: Option<i64>,
    pub pending_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    #[serde(skip)]
    pub names: TicketNames,
}

/// Display names of the records a ticket refers to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TicketNames {
    pub project_code: String,
    pub project_name: String,
    pub organization_name: String,
    pub reporter_name: String,
    pub team_name: Option<String>,
    pub agent_name: Option<String>,
    pub category_name: Option<String>,
    pub major_manager_name: Option<String>,
    pub duplicate_of_number: Option<String>,
}

macro_rules! ticket_columns {
    () => {
        "SELECT t.id AS id, t.number AS number, t.kind AS kind, t.project_id AS project_id, \
    t.organization_id AS organization_id, t.reporter_id AS reporter_id, t.created_by AS created_by, t.title AS title, \
    t.description AS description, t.channel AS channel, t.category_id AS category_id, t.service_id AS service_id, \
    t.catalogue_item_id AS catalogue_item_id, t.impact AS impact, t.urgency AS urgency, t.priority AS priority, t.status AS status, \
    t.pending_reason AS pending_reason, t.pending_note AS pending_note, t.team_id AS team_id, t.agent_id AS agent_id, \
    t.resolution_code AS resolution_code, t.resolution_notes AS resolution_notes, t.resolved_by AS resolved_by, \
    t.closure_kind AS closure_kind, t.closure_reason AS closure_reason, t.closed_by AS closed_by, t.duplicate_of_id AS duplicate_of_id, \
    t.parent_id AS parent_id, t.reopen_count AS reopen_count, t.major AS major, t.major_manager_id AS major_manager_id, \
    t.major_reason AS major_reason, t.major_declared_at AS major_declared_at, t.major_declared_by AS major_declared_by, \
    t.status_changed_at AS status_changed_at, t.first_response_at AS first_response_at, t.assigned_at AS assigned_at, \
    t.started_at AS started_at, t.pending_at AS pending_at, t.resolved_at AS resolved_at, t.closed_at AS closed_at, \
    t.created_at AS created_at, t.updated_at AS updated_at, t.version AS version, \
    p.code AS project_code, p.name AS project_name, o.name AS organization_name, r.display_name AS reporter_name, \
    tm.name AS team_name, a.display_name AS agent_name, c.name AS category_name, mm.display_name AS major_manager_name, \
    d.number AS duplicate_of_number"
    };
}

macro_rules! ticket_joins {
    () => {
        "JOIN projects p ON p.id = t.project_id \
    JOIN organizations o ON o.id = t.organization_id \
    JOIN users r ON r.id = t.reporter_id \
    LEFT JOIN teams tm ON tm.id = t.team_id \
    LEFT JOIN users a ON a.id = t.agent_id \
    LEFT JOIN ticket_categories c ON c.id = t.category_id \
    LEFT JOIN users mm ON mm.id = t.major_manager_id \
    LEFT JOIN tickets d ON d.id = t.duplicate_of_id"
    };
}

const TICKET_SELECT: &str = concat!(ticket_columns!(), " FROM tickets t ", ticket_joins!(), " WHERE 1 = 1");

fn ticket(r: &AnyRow) -> Result<TicketRecord> {
    Ok(TicketRecord {
        id: r.text("id")?,
        number: r.text("number")?,
        kind: r.text("kind")?,
        project_id: r.text("project_id")?,
        organization_id: r.text("organization_id")?,
        reporter_id: r.text("reporter_id")?,
        created_by: r.text("created_by")?,
        title: r.text("title")?,
        description: r.opt_text("description")?,
        channel: r.text("channel")?,
        category_id: r.opt_text("category_id")?,
        service_id: r.opt_text("service_id")?,
        catalogue_item_id: r.opt_text("catalogue_item_id")?,
        impact: r.text("impact")?,
        urgency: r.text("urgency")?,
        priority: r.text("priority")?,
        status: r.text("status")?,
        pending_reason: r.opt_text("pending_reason")?,
        pending_note: r.opt_text("pending_note")?,
        team_id: r.opt_text("team_id")?,
        agent_id: r.opt_text("agent_id")?,
        resolution_code: r.opt_text("resolution_code")?,
        resolution_notes: r.opt_text("resolution_notes")?,
        resolved_by: r.opt_text("resolved_by")?,
        closure_kind: r.opt_text("closure_kind")?,
        closure_reason: r.opt_text("closure_reason")?,
        closed_by: r.opt_text("closed_by")?,
        duplicate_of_id: r.opt_text("duplicate_of_id")?,
        parent_id: r.opt_text("parent_id")?,
        reopen_count: r.int("reopen_count")?,
        major: r.flag("major")?,
        major_manager_id: r.opt_text("major_manager_id")?,
        major_reason: r.opt_text("major_reason")?,
        major_declared_at: r.opt_int("major_declared_at")?,
        major_declared_by: r.opt_text("major_declared_by")?,
        status_changed_at: r.int("status_changed_at")?,
        first_response_at: r.opt_int("first_response_at")?,
        assigned_at: r.opt_int("assigned_at")?,
        started_at: r.opt_int("started_at")?,
        pending_at: r.opt_int("pending_at")?,
        resolved_at: r.opt_int("resolved_at")?,
        closed_at: r.opt_int("closed_at")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
        names: TicketNames {
            project_code: r.text("project_code")?,
            project_name: r.text("project_name")?,
            organization_name: r.text("organization_name")?,
            reporter_name: r.text("reporter_name")?,
            team_name: r.opt_text("team_name")?,
            agent_name: r.opt_text("agent_name")?,
            category_name: r.opt_text("category_name")?,
            major_manager_name: r.opt_text("major_manager_name")?,
            duplicate_of_number: r.opt_text("duplicate_of_number")?,
        },
    })
}

/// The columns every insert and update writes, in bind order after `id`.
const WRITE_COLS: &[&str] = &[
    "number",
    "kind",
    "project_id",
    "organization_id",
    "reporter_id",
    "created_by",
    "title",
    "description",
    "channel",
    "category_id",
    "service_id",
    "catalogue_item_id",
    "impact",
    "urgency",
    "priority",
    "status",
    "pending_reason",
    "pending_note",
    "team_id",
    "agent_id",
    "resolution_code",
    "resolution_notes",
    "resolved_by",
    "closure_kind",
    "closure_reason",
    "closed_by",
    "duplicate_of_id",
    "parent_id",
    "reopen_count",
    "major",
    "major_manager_id",
    "major_reason",
    "major_declared_at",
    "major_declared_by",
    "status_changed_at",
    "first_response_at",
    "assigned_at",
    "started_at",
    "pending_at",
    "resolved_at",
    "closed_at",
    "created_at",
    "updated_at",
    "version",
    "id",
];

fn bind_values(q: &mut Sql, t: &TicketRecord, cols: &[&str]) {
    let text = |v: &str| v.to_string();
    for (i, col) in cols.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        match *col {
            "number" => q.push_bind(text(&t.number)),
            "kind" => q.push_bind(text(&t.kind)),
            "project_id" => q.push_bind(text(&t.project_id)),
            "organization_id" => q.push_bind(text(&t.organization_id)),
            "reporter_id" => q.push_bind(text(&t.reporter_id)),
            "created_by" => q.push_bind(text(&t.created_by)),
            "title" => q.push_bind(text(&t.title)),
            "description" => q.push_bind(t.description.clone()),
            "channel" => q.push_bind(text(&t.channel)),
            "category_id" => q.push_bind(t.category_id.clone()),
            "service_id" => q.push_bind(t.service_id.clone()),
            "catalogue_item_id" => q.push_bind(t.catalogue_item_id.clone()),
            "impact" => q.push_bind(text(&t.impact)),
            "urgency" => q.push_bind(text(&t.urgency)),
            "priority" => q.push_bind(text(&t.priority)),
            "status" => q.push_bind(text(&t.status)),
            "pending_reason" => q.push_bind(t.pending_reason.clone()),
            "pending_note" => q.push_bind(t.pending_note.clone()),
            "team_id" => q.push_bind(t.team_id.clone()),
            "agent_id" => q.push_bind(t.agent_id.clone()),
            "resolution_code" => q.push_bind(t.resolution_code.clone()),
            "resolution_notes" => q.push_bind(t.resolution_notes.clone()),
            "resolved_by" => q.push_bind(t.resolved_by.clone()),
            "closure_kind" => q.push_bind(t.closure_kind.clone()),
            "closure_reason" => q.push_bind(t.closure_reason.clone()),
            "closed_by" => q.push_bind(t.closed_by.clone()),
            "duplicate_of_id" => q.push_bind(t.duplicate_of_id.clone()),
            "parent_id" => q.push_bind(t.parent_id.clone()),
            "reopen_count" => q.push_bind(t.reopen_count),
            "major" => q.push_bind(t.major as i64),
            "major_manager_id" => q.push_bind(t.major_manager_id.clone()),
            "major_reason" => q.push_bind(t.major_reason.clone()),
            "major_declared_at" => push_opt_int(q, t.major_declared_at),
            "major_declared_by" => q.push_bind(t.major_declared_by.clone()),
            "status_changed_at" => q.push_bind(t.status_changed_at),
            "first_response_at" => push_opt_int(q, t.first_response_at),
            "assigned_at" => push_opt_int(q, t.assigned_at),
            "started_at" => push_opt_int(q, t.started_at),
            "pending_at" => push_opt_int(q, t.pending_at),
            "resolved_at" => push_opt_int(q, t.resolved_at),
            "closed_at" => push_opt_int(q, t.closed_at),
            "created_at" => q.push_bind(t.created_at),
            "updated_at" => q.push_bind(t.updated_at),
            "version" => q.push_bind(t.version),
            "id" => q.push_bind(text(&t.id)),
            _ => q,
        };
    }
}

fn push_opt_int(q: &mut Sql, v: Option<i64>) -> &mut Sql {
    q.push_bind(v)
}

fn columns() -> Vec<&'static str> {
    WRITE_COLS.to_vec()
}

pub async fn insert_ticket(conn: &mut AnyConnection, t: &TicketRecord) -> Result<()> {
    let cols = columns();
    let mut q = Sql::new(format!("INSERT INTO tickets ({}) VALUES (", cols.join(", ")));
    bind_values(&mut q, t, &cols);
    q.push(")");
    q.execute(&mut *conn).await?;
    add_to_counter(conn, &CounterKey::of(t), 1).await
}

// ---- maintained queue counters ----

/// The cell of `ticket_queue_counters` a ticket is counted in ('' for no team or agent).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CounterKey([String; 5]);

impl CounterKey {
    fn of(t: &TicketRecord) -> Self {
        CounterKey([
            t.project_id.clone(),
            t.organization_id.clone(),
            t.team_id.clone().unwrap_or_default(),
            t.agent_id.clone().unwrap_or_default(),
            t.status.clone(),
        ])
    }
}

async fn add_to_counter(conn: &mut AnyConnection, k: &CounterKey, delta: i64) -> Result<()> {
    let [project, org, team, agent, status] = &k.0;
    sqlx::query(
        "INSERT INTO ticket_queue_counters (project_id, organization_id, team_id, agent_id, status, n) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (project_id, organization_id, team_id, agent_id, status) DO UPDATE SET n = ticket_queue_counters.n + excluded.n",
    )
    .bind(project)
    .bind(org)
    .bind(team)
    .bind(agent)
    .bind(status)
    .bind(delta)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves a ticket from one counter cell to another. Cells are touched in key order, so two
/// transactions moving tickets between the same cells cannot deadlock on PostgreSQL.
async fn move_in_counters(conn: &mut AnyConnection, from: CounterKey, to: CounterKey) -> Result<()> {
    if from == to {
        return Ok(());
    }
    let mut steps = [(from, -1), (to, 1)];
    steps.sort();
    for (k, d) in &steps {
        add_to_counter(conn, k, *d).await?;
    }
    Ok(())
}

/// Recounts `ticket_queue_counters` from the tickets. Loaders that insert tickets without
/// `insert_ticket` (bulk loads, benchmarks) call it before the desk is used.
pub async fn rebuild_queue_counters(conn: &mut AnyConnection) -> Result<()> {
    sqlx::query("DELETE FROM ticket_queue_counters").execute(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO ticket_queue_counters (project_id, organization_id, team_id, agent_id, status, n) \
         SELECT project_id, organization_id, COALESCE(team_id, ''), COALESCE(agent_id, ''), status, COUNT(*) FROM tickets \
         GROUP BY project_id, organization_id, COALESCE(team_id, ''), COALESCE(agent_id, ''), status",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn counter_key_of(conn: &mut AnyConnection, id: &str) -> Result<Option<CounterKey>> {
    let row = sqlx::query("SELECT project_id, organization_id, team_id, agent_id, status FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| {
        Ok(CounterKey([
            r.text("project_id")?,
            r.text("organization_id")?,
            r.opt_text("team_id")?.unwrap_or_default(),
            r.opt_text("agent_id")?.unwrap_or_default(),
            r.text("status")?,
        ]))
    })
    .transpose()
}

/// Writes every column of `t` if the stored version is still `expected_version`, raising the
/// version by one; `Stale` otherwise.
pub async fn update_ticket(conn: &mut AnyConnection, t: &TicketRecord, expected_version: i64) -> Result<()> {
    let mut q = Sql::new("UPDATE tickets SET ");
    let cols: Vec<&str> =
        columns().into_iter().filter(|c| !matches!(*c, "id" | "version" | "number" | "created_at" | "created_by")).collect();
    for (i, col) in cols.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push(format!("{col} = "));
        bind_values(&mut q, t, &[col]);
    }
    q.push(", version = version + 1 WHERE id = ").push_bind(t.id.clone()).push(" AND version = ").push_bind(expected_version);
    let before = counter_key_of(conn, &t.id).await?;
    let r = q.execute(&mut *conn).await?;
    match before {
        Some(before) if r.rows_affected() > 0 => move_in_counters(conn, before, CounterKey::of(t)).await,
        _ => Err(StoreError::Stale),
    }
}

/// Marks activity on a ticket (a comment, a work log entry) for the queues' "updated" order
/// without changing its version: the fields an agent may be editing did not change.
pub async fn touch_ticket(conn: &mut AnyConnection, id: &str, at: i64, first_response: bool) -> Result<()> {
    let sql = if first_response {
        "UPDATE tickets SET updated_at = $1, first_response_at = COALESCE(first_response_at, $1) WHERE id = $2"
    } else {
        "UPDATE tickets SET updated_at = $1 WHERE id = $2"
    };
    sqlx::query(sql).bind(at).bind(id).execute(&mut *conn).await?;
    Ok(())
}

pub async fn get_ticket(conn: &mut AnyConnection, id: &str) -> Result<Option<TicketRecord>> {
    let q = format!("{TICKET_SELECT} AND t.id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await?.map(|r| ticket(&r)).transpose()
}

/// The tickets of the given ids that exist, in no particular order.
pub async fn tickets_by_ids(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<TicketRecord>> {
    let mut q = Sql::new(format!("{TICKET_SELECT} AND t.id IN "));
    q.push_list(ids);
    q.fetch_all(conn).await?.iter().map(ticket).collect()
}

pub async fn get_ticket_by_number(conn: &mut AnyConnection, number: &str) -> Result<Option<TicketRecord>> {
    let q = format!("{TICKET_SELECT} AND t.number = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(number).fetch_optional(&mut *conn).await?.map(|r| ticket(&r)).transpose()
}

/// Filters of the queues and of `/api/v1/incidents`. Empty lists and `None` do not filter.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Assigned to this agent.
    pub agent_id: Option<String>,
    /// Assigned to a team this user belongs to.
    pub teams_of_user: Option<String>,
    /// Neither a team nor an agent.
    pub unassigned: bool,
    /// Not resolved or closed.
    pub open_only: bool,
    pub statuses: Vec<String>,
    pub priorities: Vec<String>,
    pub kind: Option<String>,
    pub team_id: Option<String>,
    pub project_id: Option<String>,
    pub organization_id: Option<String>,
    pub reporter_id: Option<String>,
    pub major: Option<bool>,
    /// Text in the number or the title.
    pub q: Option<String>,
    /// Breaching soon: an open SLA clock in warning or due before this instant.
    pub breaching_before: Option<i64>,
}

fn push_scope(q: &mut Sql, scope: &Scope) {
    if let Some(o) = &scope.organization_id {
        q.push(" AND t.organization_id = ").push_bind(o.clone());
    }
    if let Some(projects) = &scope.project_ids {
        q.push(" AND t.project_id IN ").push_list(projects);
    }
}

const OPEN: &str = "t.status NOT IN ('resolved', 'closed')";
const UNASSIGNED: &str = "t.team_id IS NULL AND t.agent_id IS NULL";

fn push_filter(q: &mut Sql, f: &TicketFilter) {
    if let Some(a) = &f.agent_id {
        q.push(" AND t.agent_id = ").push_bind(a.clone());
    }
    if let Some(u) = &f.teams_of_user {
        q.push(" AND t.team_id IN (SELECT team_id FROM team_members WHERE user_id = ").push_bind(u.clone()).push(")");
    }
    if f.unassigned {
        q.push(format!(" AND {UNASSIGNED}"));
    }
    if f.open_only {
        q.push(format!(" AND {OPEN}"));
    }
    if !f.statuses.is_empty() {
        q.push(" AND t.status IN ").push_list(&f.statuses);
    }
    if !f.priorities.is_empty() {
        q.push(" AND t.priority IN ").push_list(&f.priorities);
    }
    for (col, v) in [
        ("t.kind", &f.kind),
        ("t.team_id", &f.team_id),
        ("t.project_id", &f.project_id),
        ("t.organization_id", &f.organization_id),
        ("t.reporter_id", &f.reporter_id),
    ] {
        if let Some(v) = v {
            q.push(format!(" AND {col} = ")).push_bind(v.clone());
        }
    }
    if let Some(m) = f.major {
        q.push(" AND t.major = ").push_bind(m as i64);
    }
    if let Some(before) = f.breaching_before {
        crate::sla_clocks::push_breaching_before(q, before);
    }
    if let Some(text) = f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pat = like_pattern(text);
        q.push(" AND (LOWER(t.title) LIKE ")
            .push_bind(pat.clone())
            .push(" ESCAPE '\\' OR LOWER(t.number) LIKE ")
            .push_bind(pat)
            .push(" ESCAPE '\\')");
    }
}

/// A page of tickets. The page's ids are picked from `tickets` alone (the queue indexes cover
/// the scope and queue filters) before the names are joined in, so a queue over hundreds of
/// thousands of open tickets sorts index entries, not joined rows.
pub async fn list_tickets(conn: &mut AnyConnection, scope: &Scope, f: &TicketFilter, p: &PageRequest) -> Result<Page<TicketRecord>> {
    let ids = |q: &mut Sql| {
        q.push("SELECT t.id FROM tickets t WHERE 1 = 1");
        push_scope(q, scope);
        push_filter(q, f);
    };
    let joined = page::Deferred { columns: ticket_columns!(), table: "tickets t", id_col: "t.id", joins: ticket_joins!() };
    page::fetch_page_deferred(conn, &joined, ids, p, ticket).await
}

/// Whether the counters answer a count for this filter: it names only what they are keyed by.
fn counters_answer(f: &TicketFilter) -> bool {
    f.priorities.is_empty()
        && f.kind.is_none()
        && f.reporter_id.is_none()
        && f.major.is_none()
        && f.breaching_before.is_none()
        && f.q.as_deref().is_none_or(|q| q.trim().is_empty())
}

/// `push_filter` for `ticket_queue_counters t` (only the fields `counters_answer` allows).
fn push_counter_filter(q: &mut Sql, f: &TicketFilter) {
    if let Some(a) = &f.agent_id {
        q.push(" AND t.agent_id = ").push_bind(a.clone());
    }
    if let Some(u) = &f.teams_of_user {
        q.push(" AND t.team_id IN (SELECT team_id FROM team_members WHERE user_id = ").push_bind(u.clone()).push(")");
    }
    if f.unassigned {
        q.push(" AND t.team_id = '' AND t.agent_id = ''");
    }
    if f.open_only {
        q.push(format!(" AND {OPEN}"));
    }
    if !f.statuses.is_empty() {
        q.push(" AND t.status IN ").push_list(&f.statuses);
    }
    for (col, v) in [("t.team_id", &f.team_id), ("t.project_id", &f.project_id), ("t.organization_id", &f.organization_id)] {
        if let Some(v) = v {
            q.push(format!(" AND {col} = ")).push_bind(v.clone());
        }
    }
}

/// How many tickets match a filter within a scope: from the maintained counters when the
/// filter allows, else by counting the tickets.
pub async fn count_tickets(conn: &mut AnyConnection, scope: &Scope, f: &TicketFilter) -> Result<i64> {
    if counters_answer(f) {
        let mut q = Sql::new("SELECT CAST(COALESCE(SUM(t.n), 0) AS BIGINT) AS n FROM ticket_queue_counters t WHERE 1 = 1");
        push_scope(&mut q, scope);
        push_counter_filter(&mut q, f);
        let rows = q.fetch_all(conn).await?;
        return Ok(rows.first().map(|r| r.int("n")).transpose()?.unwrap_or(0));
    }
    count_by_scan(conn, scope, f).await
}

/// Counts the tickets themselves (what the counters must always agree with).
pub async fn count_by_scan(conn: &mut AnyConnection, scope: &Scope, f: &TicketFilter) -> Result<i64> {
    let mut q = Sql::new("SELECT COUNT(*) AS n FROM tickets t WHERE 1 = 1");
    push_scope(&mut q, scope);
    push_filter(&mut q, f);
    let rows = q.fetch_all(conn).await?;
    Ok(rows.first().map(|r| r.int("n")).transpose()?.unwrap_or(0))
}

/// The numbers on the queue tabs, in one pass over the actor's scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    /// Open and assigned to me.
    pub mine: i64,
    /// Open and assigned to one of my teams.
    pub team: i64,
    /// Open with neither team nor agent.
    pub unassigned: i64,
    pub pending: i64,
    /// All open tickets.
    pub open: i64,
    pub all: i64,
}

/// The queue tabs' numbers, from the maintained counters (one row per project, organisation,
/// team, agent and status — not per ticket).
pub async fn queue_counts(conn: &mut AnyConnection, scope: &Scope, user_id: &str) -> Result<QueueCounts> {
    let mut q = Sql::new("SELECT CAST(COALESCE(SUM(CASE WHEN ");
    q.push(OPEN).push(" AND t.agent_id = ").push_bind(user_id.to_string()).push(" THEN t.n ELSE 0 END), 0) AS BIGINT) AS mine, ");
    q.push("CAST(COALESCE(SUM(CASE WHEN ")
        .push(OPEN)
        .push(" AND t.team_id IN (SELECT team_id FROM team_members WHERE user_id = ")
        .push_bind(user_id.to_string())
        .push(") THEN t.n ELSE 0 END), 0) AS BIGINT) AS team, ");
    q.push(format!(
        "CAST(COALESCE(SUM(CASE WHEN {OPEN} AND t.team_id = '' AND t.agent_id = '' THEN t.n ELSE 0 END), 0) AS BIGINT) AS unassigned, "
    ));
    q.push("CAST(COALESCE(SUM(CASE WHEN t.status = 'pending' THEN t.n ELSE 0 END), 0) AS BIGINT) AS pending, ");
    q.push(format!("CAST(COALESCE(SUM(CASE WHEN {OPEN} THEN t.n ELSE 0 END), 0) AS BIGINT) AS open, "));
    q.push("CAST(COALESCE(SUM(t.n), 0) AS BIGINT) AS total FROM ticket_queue_counters t WHERE 1 = 1");
    push_scope(&mut q, scope);
    let rows = q.fetch_all(conn).await?;
    let Some(r) = rows.first() else { return Ok(QueueCounts::default()) };
    Ok(QueueCounts {
        mine: r.int("mine")?,
        team: r.int("team")?,
        unassigned: r.int("unassigned")?,
        pending: r.int("pending")?,
        open: r.int("open")?,
        all: r.int("total")?,
    })
}

// ---- status and priority logs ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusLogRow {
    pub seq: i64,
    pub at: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub pending_reason: Option<String>,
    /// The status the SLA clocks key on (`pending_customer`, …).
    pub sla_status: String,
    pub action: Option<String>,
    pub actor_id: String,
}

pub async fn append_status_log(conn: &mut AnyConnection, ticket_id: &str, e: &StatusLogRow) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO ticket_status_log (id, ticket_id, seq, at, from_status, to_status, pending_reason, sla_status, action, actor_id) \
         SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6, $7, $8, $9 FROM ticket_status_log WHERE ticket_id = $2 RETURNING seq",
    )
    .bind(crate::new_id())
    .bind(ticket_id)
    .bind(e.at)
    .bind(&e.from_status)
    .bind(&e.to_status)
    .bind(&e.pending_reason)
    .bind(&e.sla_status)
    .bind(&e.action)
    .bind(&e.actor_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.int("seq")?)
}

pub async fn status_log(conn: &mut AnyConnection, ticket_id: &str) -> Result<Vec<StatusLogRow>> {
    let rows = sqlx::query(
        "SELECT seq, at, from_status, to_status, pending_reason, sla_status, action, actor_id FROM ticket_status_log WHERE ticket_id = $1 ORDER BY seq",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StatusLogRow {
                seq: r.int("seq")?,
                at: r.int("at")?,
                from_status: r.opt_text("from_status")?,
                to_status: r.text("to_status")?,
                pending_reason: r.opt_text("pending_reason")?,
                sla_status: r.text("sla_status")?,
                action: r.opt_text("action")?,
                actor_id: r.text("actor_id")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PriorityLogRow {
    pub seq: i64,
    pub at: i64,
    pub priority: String,
    pub actor_id: String,
}

pub async fn append_priority_log(conn: &mut AnyConnection, ticket_id: &str, at: i64, priority: &str, actor_id: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_priority_log (id, ticket_id, seq, at, priority, actor_id) \
         SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5 FROM ticket_priority_log WHERE ticket_id = $2",
    )
    .bind(crate::new_id())
    .bind(ticket_id)
    .bind(at)
    .bind(priority)
    .bind(actor_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn priority_log(conn: &mut AnyConnection, ticket_id: &str) -> Result<Vec<PriorityLogRow>> {
    let rows = sqlx::query("SELECT seq, at, priority, actor_id FROM ticket_priority_log WHERE ticket_id = $1 ORDER BY seq")
        .bind(ticket_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| Ok(PriorityLogRow { seq: r.int("seq")?, at: r.int("at")?, priority: r.text("priority")?, actor_id: r.text("actor_id")? }))
        .collect()
}

// ---- comments ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CommentRecord {
    pub id: String,
    pub ticket_id: String,
    /// `public` (a reply the customer sees) or `internal` (staff only).
    pub visibility: String,
    pub body: String,
    pub author_id: String,
    /// `staff`, `contact` or `system`.
    pub author_kind: String,
    pub created_at: i64,
    #[serde(skip)]
    pub author_name: Option<String>,
}

pub async fn insert_comment(conn: &mut AnyConnection, c: &CommentRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_comments (id, ticket_id, visibility, body, author_id, author_kind, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&c.id)
    .bind(&c.ticket_id)
    .bind(&c.visibility)
    .bind(&c.body)
    .bind(&c.author_id)
    .bind(&c.author_kind)
    .bind(c.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A ticket's conversation, oldest first; `public_only` leaves internal notes out in SQL, so a
/// customer's read never even loads them.
pub async fn list_comments(conn: &mut AnyConnection, ticket_id: &str, public_only: bool) -> Result<Vec<CommentRecord>> {
    let mut q = Sql::new(
        "SELECT c.id AS id, c.ticket_id AS ticket_id, c.visibility AS visibility, c.body AS body, c.author_id AS author_id, \
         c.author_kind AS author_kind, c.created_at AS created_at, u.display_name AS author_name \
         FROM ticket_comments c LEFT JOIN users u ON u.id = c.author_id WHERE c.ticket_id = ",
    );
    q.push_bind(ticket_id);
    if public_only {
        q.push(" AND c.visibility = 'public'");
    }
    q.push(" ORDER BY c.created_at, c.id");
    let rows = q.fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            Ok(CommentRecord {
                id: r.text("id")?,
                ticket_id: r.text("ticket_id")?,
                visibility: r.text("visibility")?,
                body: r.text("body")?,
                author_id: r.text("author_id")?,
                author_kind: r.text("author_kind")?,
                created_at: r.int("created_at")?,
                author_name: r.opt_text("author_name")?,
            })
        })
        .collect()
}

// ---- work log ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkLogRecord {
    pub id: String,
    pub ticket_id: String,
    pub author_id: String,
    pub minutes: i64,
    pub performed_at: i64,
    pub note: Option<String>,
    pub created_at: i64,
    #[serde(skip)]
    pub author_name: Option<String>,
}

pub async fn insert_work_log(conn: &mut AnyConnection, w: &WorkLogRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_work_log (id, ticket_id, author_id, minutes, performed_at, note, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&w.id)
    .bind(&w.ticket_id)
    .bind(&w.author_id)
    .bind(w.minutes)
    .bind(w.performed_at)
    .bind(&w.note)
    .bind(w.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn list_work_log(conn: &mut AnyConnection, ticket_id: &str) -> Result<Vec<WorkLogRecord>> {
    let rows = sqlx::query(
        "SELECT w.id AS id, w.ticket_id AS ticket_id, w.author_id AS author_id, w.minutes AS minutes, w.performed_at AS performed_at, \
         w.note AS note, w.created_at AS created_at, u.display_name AS author_name \
         FROM ticket_work_log w LEFT JOIN users u ON u.id = w.author_id WHERE w.ticket_id = $1 ORDER BY w.performed_at, w.id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(WorkLogRecord {
                id: r.text("id")?,
                ticket_id: r.text("ticket_id")?,
                author_id: r.text("author_id")?,
                minutes: r.int("minutes")?,
                performed_at: r.int("performed_at")?,
                note: r.opt_text("note")?,
                created_at: r.int("created_at")?,
                author_name: r.opt_text("author_name")?,
            })
        })
        .collect()
}

// ---- satisfaction ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RatingRecord {
    pub ticket_id: String,
    pub score: i64,
    pub comment: Option<String>,
    pub rated_by: String,
    pub rated_at: i64,
}

pub async fn get_rating(conn: &mut AnyConnection, ticket_id: &str) -> Result<Option<RatingRecord>> {
    let r = sqlx::query("SELECT ticket_id, score, comment, rated_by, rated_at FROM ticket_ratings WHERE ticket_id = $1")
        .bind(ticket_id)
        .fetch_optional(&mut *conn)
        .await?;
    r.map(|r| {
        Ok(RatingRecord {
            ticket_id: r.text("ticket_id")?,
            score: r.int("score")?,
            comment: r.opt_text("comment")?,
            rated_by: r.text("rated_by")?,
            rated_at: r.int("rated_at")?,
        })
    })
    .transpose()
}

pub async fn upsert_rating(conn: &mut AnyConnection, r: &RatingRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_ratings (ticket_id, score, comment, rated_by, rated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (ticket_id) DO UPDATE SET score = excluded.score, comment = excluded.comment, rated_by = excluded.rated_by, rated_at = excluded.rated_at",
    )
    .bind(&r.ticket_id)
    .bind(r.score)
    .bind(&r.comment)
    .bind(&r.rated_by)
    .bind(r.rated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ---- links and watchers ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LinkRecord {
    pub id: String,
    pub ticket_id: String,
    /// `problem`, `change` or `ticket`.
    pub target_type: String,
    pub target_id: String,
    pub created_by: String,
    pub created_at: i64,
}

pub async fn insert_link(conn: &mut AnyConnection, l: &LinkRecord) -> Result<()> {
    sqlx::query("INSERT INTO ticket_links (id, ticket_id, target_type, target_id, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&l.id)
        .bind(&l.ticket_id)
        .bind(&l.target_type)
        .bind(&l.target_id)
        .bind(&l.created_by)
        .bind(l.created_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn list_links(conn: &mut AnyConnection, ticket_id: &str) -> Result<Vec<LinkRecord>> {
    let rows = sqlx::query(
        "SELECT id, ticket_id, target_type, target_id, created_by, created_at FROM ticket_links WHERE ticket_id = $1 ORDER BY created_at, id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(LinkRecord {
                id: r.text("id")?,
                ticket_id: r.text("ticket_id")?,
                target_type: r.text("target_type")?,
                target_id: r.text("target_id")?,
                created_by: r.text("created_by")?,
                created_at: r.int("created_at")?,
            })
        })
        .collect()
}

/// Adds a watcher; watching twice is not an error.
pub async fn add_watcher(conn: &mut AnyConnection, ticket_id: &str, user_id: &str, at: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_watchers (ticket_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT (ticket_id, user_id) DO NOTHING",
    )
    .bind(ticket_id)
    .bind(user_id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn list_watchers(conn: &mut AnyConnection, ticket_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT user_id FROM ticket_watchers WHERE ticket_id = $1 ORDER BY user_id")
        .bind(ticket_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.text("user_id").map_err(Into::into)).collect()
}

// ---- categories ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CategoryRecord {
    pub id: String,
    pub parent_id: Option<String>,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub active: bool,
    pub sort_order: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

const CATEGORY_COLS: &str = "id, parent_id, code, name, description, active, sort_order, created_at, updated_at, version";

fn category(r: &AnyRow) -> Result<CategoryRecord> {
    Ok(CategoryRecord {
        id: r.text("id")?,
        parent_id: r.opt_text("parent_id")?,
        code: r.text("code")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        active: r.flag("active")?,
        sort_order: r.int("sort_order")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

pub async fn insert_category(conn: &mut AnyConnection, c: &CategoryRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_categories (id, parent_id, code, name, description, active, sort_order, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, 1)",
    )
    .bind(&c.id)
    .bind(&c.parent_id)
    .bind(&c.code)
    .bind(&c.name)
    .bind(&c.description)
    .bind(c.active as i64)
    .bind(c.sort_order)
    .bind(c.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn update_category(conn: &mut AnyConnection, c: &CategoryRecord, expected_version: i64) -> Result<()> {
    let r = sqlx::query(
        "UPDATE ticket_categories SET parent_id = $1, code = $2, name = $3, description = $4, active = $5, sort_order = $6, updated_at = $7, \
         version = version + 1 WHERE id = $8 AND version = $9",
    )
    .bind(&c.parent_id)
    .bind(&c.code)
    .bind(&c.name)
    .bind(&c.description)
    .bind(c.active as i64)
    .bind(c.sort_order)
    .bind(c.updated_at)
    .bind(&c.id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 { Err(StoreError::Stale) } else { Ok(()) }
}

pub async fn get_category(conn: &mut AnyConnection, id: &str) -> Result<Option<CategoryRecord>> {
    let q = format!("SELECT {CATEGORY_COLS} FROM ticket_categories WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await?.map(|r| category(&r)).transpose()
}

/// The whole tree (it is small), parents before children is the caller's business.
pub async fn list_categories(conn: &mut AnyConnection) -> Result<Vec<CategoryRecord>> {
    let q = format!("SELECT {CATEGORY_COLS} FROM ticket_categories ORDER BY sort_order, name, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(q)).fetch_all(&mut *conn).await?;
    rows.iter().map(category).collect()
}

// ---- major incident communication log ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CommunicationRecord {
    pub id: String,
    pub ticket_id: String,
    pub seq: i64,
    pub audience: String,
    pub medium: String,
    pub summary: String,
    pub sent_at: i64,
    pub next_update_due: Option<i64>,
    pub author_id: String,
    pub created_at: i64,
    #[serde(skip)]
    pub author_name: Option<String>,
}

/// Appends to the log; the sequence number is assigned here.
pub async fn insert_communication(conn: &mut AnyConnection, r: &CommunicationRecord) -> Result<CommunicationRecord> {
    let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM major_incident_communications WHERE ticket_id = $1")
        .bind(&r.ticket_id)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO major_incident_communications \
         (id, ticket_id, seq, audience, medium, summary, sent_at, next_update_due, author_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&r.id)
    .bind(&r.ticket_id)
    .bind(seq)
    .bind(&r.audience)
    .bind(&r.medium)
    .bind(&r.summary)
    .bind(r.sent_at)
    .bind(r.next_update_due)
    .bind(&r.author_id)
    .bind(r.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(CommunicationRecord { seq, ..r.clone() })
}

/// The log in sequence; `customers_only` keeps the communications addressed to customers.
pub async fn list_communications(conn: &mut AnyConnection, ticket_id: &str, customers_only: bool) -> Result<Vec<CommunicationRecord>> {
    let mut q = Sql::new(
        "SELECT m.id AS id, m.ticket_id AS ticket_id, m.seq AS seq, m.audience AS audience, m.medium AS medium, \
         m.summary AS summary, m.sent_at AS sent_at, m.next_update_due AS next_update_due, m.author_id AS author_id, \
         m.created_at AS created_at, u.display_name AS author_name \
         FROM major_incident_communications m LEFT JOIN users u ON u.id = m.author_id WHERE m.ticket_id = ",
    );
    q.push_bind(ticket_id);
    if customers_only {
        q.push(" AND m.audience = 'customers'");
    }
    q.push(" ORDER BY m.seq");
    let rows = q.fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            Ok(CommunicationRecord {
                id: r.text("id")?,
                ticket_id: r.text("ticket_id")?,
                seq: r.int("seq")?,
                audience: r.text("audience")?,
                medium: r.text("medium")?,
                summary: r.text("summary")?,
                sent_at: r.int("sent_at")?,
                next_update_due: r.opt_int("next_update_due")?,
                author_id: r.text("author_id")?,
                created_at: r.int("created_at")?,
                author_name: r.opt_text("author_name")?,
            })
        })
        .collect()
}

//! Service level management (§6.1): the stored SLA clock of every ticket and target, the inputs
//! the clock is computed from (read in batches), escalation rules per SLA, the escalations
//! fired (once per ticket, rule and threshold instant) and the once-per-version SLA notices.

use crate::directory::Scope;
use crate::rows::RowExt;
use crate::sql::Sql;
use crate::{AnyConnection, Result, StoreError};
use serde::Serialize;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, HashMap, HashSet};

fn decode_err(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(sqlx::Error::Decode(format!("{col}: {e}").into()))
}

// ---------------------------------------------------------------- clock inputs

/// What the clock needs of a ticket besides its logs.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketClockInput {
    pub id: String,
    pub project_id: String,
    pub service_id: Option<String>,
    pub first_response_at: Option<i64>,
    pub status_log: Vec<(i64, String)>,
    pub priority_log: Vec<(i64, String)>,
    /// Staff replies the customer sees (public updates), oldest first.
    pub public_updates: Vec<i64>,
}

/// The clock inputs of the given tickets, each log in order, in four queries whatever their number.
pub async fn clock_inputs(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<TicketClockInput>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut q = Sql::new("SELECT id, project_id, service_id, first_response_at FROM tickets WHERE id IN ");
    q.push_list(ids).push(" ORDER BY id");
    let mut out: Vec<TicketClockInput> = q
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok(TicketClockInput {
                id: r.text("id")?,
                project_id: r.text("project_id")?,
                service_id: r.opt_text("service_id")?,
                first_response_at: r.opt_int("first_response_at")?,
                status_log: vec![],
                priority_log: vec![],
                public_updates: vec![],
            })
        })
        .collect::<Result<_>>()?;
    let index: HashMap<String, usize> = out.iter().enumerate().map(|(i, t)| (t.id.clone(), i)).collect();
    let mut q = Sql::new("SELECT ticket_id, at, sla_status FROM ticket_status_log WHERE ticket_id IN ");
    q.push_list(ids).push(" ORDER BY ticket_id, seq");
    for r in q.fetch_all(conn).await? {
        if let Some(&i) = index.get(&r.text("ticket_id")?) {
            out[i].status_log.push((r.int("at")?, r.text("sla_status")?));
        }
    }
    let mut q = Sql::new("SELECT ticket_id, at, priority FROM ticket_priority_log WHERE ticket_id IN ");
    q.push_list(ids).push(" ORDER BY ticket_id, seq");
    for r in q.fetch_all(conn).await? {
        if let Some(&i) = index.get(&r.text("ticket_id")?) {
            out[i].priority_log.push((r.int("at")?, r.text("priority")?));
        }
    }
    let mut q = Sql::new(
        "SELECT ticket_id, created_at FROM ticket_comments WHERE visibility = 'public' AND author_kind = 'staff' AND ticket_id IN ",
    );
    q.push_list(ids).push(" ORDER BY ticket_id, created_at, id");
    for r in q.fetch_all(conn).await? {
        if let Some(&i) = index.get(&r.text("ticket_id")?) {
            out[i].public_updates.push(r.int("created_at")?);
        }
    }
    Ok(out)
}

/// An active SLA as the clock uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveSla {
    pub id: String,
    pub version: i64,
    pub project_id: String,
    pub calendar_id: String,
    pub targets: String,
    pub clock_policy: String,
    pub activated_at: Option<i64>,
    pub service_ids: Vec<String>,
}

/// The active SLAs of the given projects.
pub async fn active_slas(conn: &mut AnyConnection, project_ids: &[String]) -> Result<Vec<ActiveSla>> {
    let mut q = Sql::new(
        "SELECT id, version, project_id, calendar_id, targets, clock_policy, activated_at FROM slas WHERE status = 'active' AND project_id IN ",
    );
    q.push_list(project_ids).push(" ORDER BY id");
    let mut out: Vec<ActiveSla> = q
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok(ActiveSla {
                id: r.text("id")?,
                version: r.int("version")?,
                project_id: r.text("project_id")?,
                calendar_id: r.text("calendar_id")?,
                targets: r.text("targets")?,
                clock_policy: r.text("clock_policy")?,
                activated_at: r.opt_int("activated_at")?,
                service_ids: vec![],
            })
        })
        .collect::<Result<_>>()?;
    if out.is_empty() {
        return Ok(out);
    }
    let ids: Vec<String> = out.iter().map(|s| s.id.clone()).collect();
    let mut q = Sql::new("SELECT sla_id, service_id FROM sla_services WHERE sla_id IN ");
    q.push_list(&ids);
    for r in q.fetch_all(conn).await? {
        let sla = r.text("sla_id")?;
        if let Some(s) = out.iter_mut().find(|s| s.id == sla) {
            s.service_ids.push(r.text("service_id")?);
        }
    }
    Ok(out)
}

/// Open tickets (not resolved or closed) after `after_id` in id order, of one project (`None`:
/// all), for recomputing in batches; one project at a time keeps the walk on an index.
pub async fn open_ticket_ids(conn: &mut AnyConnection, project_id: Option<&str>, after_id: &str, limit: i64) -> Result<Vec<String>> {
    let mut q = Sql::new("SELECT id FROM tickets WHERE status NOT IN ('resolved', 'closed') AND id > ");
    q.push_bind(after_id);
    if let Some(p) = project_id {
        q.push(" AND project_id = ").push_bind(p);
    }
    q.push(" ORDER BY id LIMIT ").push_bind(limit);
    q.fetch_all(conn).await?.iter().map(|r| r.text("id").map_err(Into::into)).collect()
}

/// The projects whose active SLAs measure in a calendar.
pub async fn projects_using_calendar(conn: &mut AnyConnection, calendar_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT DISTINCT project_id FROM slas WHERE calendar_id = $1 ORDER BY project_id")
        .bind(calendar_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.text("project_id").map_err(Into::into)).collect()
}

// ---------------------------------------------------------------- stored clocks

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClockRow {
    pub ticket_id: String,
    /// `first_response`, `resolution` or `update`.
    pub kind: String,
    pub sla_id: String,
    pub sla_version: i64,
    pub priority: String,
    pub target_ms: i64,
    pub started_at: i64,
    pub due_at: Option<i64>,
    /// When the first warning threshold was (or, running, will be) crossed.
    pub warning_at: Option<i64>,
    /// `running`, `paused`, `warning`, `met` or `breached`.
    pub state: String,
    /// `running`, `paused` or `stopped`.
    pub phase: String,
    pub elapsed_ms: i64,
    pub paused_ms: i64,
    pub met_at: Option<i64>,
    pub breached_at: Option<i64>,
    pub stopped_at: Option<i64>,
    /// While running, the next instant a threshold or the breach is crossed.
    pub next_threshold_at: Option<i64>,
    /// Thresholds crossed: `[[percent, crossed_at], …]`.
    pub thresholds: Vec<(i64, i64)>,
    /// Crossings the escalation job has not looked at yet.
    pub needs_check: bool,
    /// When these values were computed; a recompute that finds the same values leaves the row
    /// (and this instant) as it is.
    pub computed_at: i64,
}

const CLOCK_COLS: &str = "ticket_id, kind, sla_id, sla_version, priority, target_ms, started_at, due_at, warning_at, state, phase, \
     elapsed_ms, paused_ms, met_at, breached_at, stopped_at, next_threshold_at, thresholds, needs_check, computed_at";

fn clock_row(r: &AnyRow) -> Result<ClockRow> {
    Ok(ClockRow {
        ticket_id: r.text("ticket_id")?,
        kind: r.text("kind")?,
        sla_id: r.text("sla_id")?,
        sla_version: r.int("sla_version")?,
        priority: r.text("priority")?,
        target_ms: r.int("target_ms")?,
        started_at: r.int("started_at")?,
        due_at: r.opt_int("due_at")?,
        warning_at: r.opt_int("warning_at")?,
        state: r.text("state")?,
        phase: r.text("phase")?,
        elapsed_ms: r.int("elapsed_ms")?,
        paused_ms: r.int("paused_ms")?,
        met_at: r.opt_int("met_at")?,
        breached_at: r.opt_int("breached_at")?,
        stopped_at: r.opt_int("stopped_at")?,
        next_threshold_at: r.opt_int("next_threshold_at")?,
        thresholds: serde_json::from_str(&r.text("thresholds")?).map_err(|e| decode_err("thresholds", e))?,
        needs_check: r.flag("needs_check")?,
        computed_at: r.int("computed_at")?,
    })
}

/// The stored clocks of the given tickets, by ticket then kind.
pub async fn clocks_of(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<ClockRow>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut q = Sql::new(format!("SELECT {CLOCK_COLS} FROM ticket_sla_clocks WHERE ticket_id IN "));
    q.push_list(ids).push(" ORDER BY ticket_id, kind");
    q.fetch_all(conn).await?.iter().map(clock_row).collect()
}

/// Locks the tickets' rows until the transaction ends, so two recomputes of one ticket (an
/// incident write, a job on another instance) run one after the other and the later one wins.
pub async fn lock_tickets(conn: &mut AnyConnection, ids: &[String]) -> Result<()> {
    if conn.backend_name() == "SQLite" {
        // One writer connection: the write transaction already runs alone.
        return Ok(());
    }
    let mut q = Sql::new("UPDATE tickets SET version = version WHERE id IN ");
    q.push_list(ids);
    q.execute(conn).await?;
    Ok(())
}

/// Whether two clocks hold the same values (`computed_at` aside).
pub fn same_clock(a: &ClockRow, b: &ClockRow) -> bool {
    a.ticket_id == b.ticket_id
        && a.kind == b.kind
        && a.sla_id == b.sla_id
        && a.sla_version == b.sla_version
        && a.priority == b.priority
        && a.target_ms == b.target_ms
        && a.started_at == b.started_at
        && a.due_at == b.due_at
        && a.warning_at == b.warning_at
        && a.state == b.state
        && a.phase == b.phase
        && a.elapsed_ms == b.elapsed_ms
        && a.paused_ms == b.paused_ms
        && a.met_at == b.met_at
        && a.breached_at == b.breached_at
        && a.stopped_at == b.stopped_at
        && a.next_threshold_at == b.next_threshold_at
        && a.thresholds == b.thresholds
        && a.needs_check == b.needs_check
}

/// Deletes the stored clocks `(ticket_id, kind)`.
pub async fn delete_clocks(conn: &mut AnyConnection, keys: &[(String, String)]) -> Result<()> {
    for chunk in keys.chunks(200) {
        let mut q = Sql::new("DELETE FROM ticket_sla_clocks WHERE ");
        for (i, (ticket, kind)) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(ticket_id = " } else { " OR (ticket_id = " })
                .push_bind(ticket)
                .push(" AND kind = ")
                .push_bind(kind)
                .push(")");
        }
        q.execute(conn).await?;
    }
    Ok(())
}

/// Inserts the clocks, or updates those stored already (multi-row upserts).
pub async fn upsert_clocks(conn: &mut AnyConnection, rows: &[ClockRow]) -> Result<()> {
    for chunk in rows.chunks(200) {
        let mut q = Sql::new(format!("INSERT INTO ticket_sla_clocks ({CLOCK_COLS}) VALUES "));
        for (i, c) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push("(")
                .push_bind(&c.ticket_id)
                .push(", ")
                .push_bind(&c.kind)
                .push(", ")
                .push_bind(&c.sla_id)
                .push(", ")
                .push_bind(c.sla_version)
                .push(", ")
                .push_bind(&c.priority)
                .push(", ")
                .push_bind(c.target_ms)
                .push(", ")
                .push_bind(c.started_at)
                .push(", ")
                .push_bind(c.due_at)
                .push(", ")
                .push_bind(c.warning_at)
                .push(", ")
                .push_bind(&c.state)
                .push(", ")
                .push_bind(&c.phase)
                .push(", ")
                .push_bind(c.elapsed_ms)
                .push(", ")
                .push_bind(c.paused_ms)
                .push(", ")
                .push_bind(c.met_at)
                .push(", ")
                .push_bind(c.breached_at)
                .push(", ")
                .push_bind(c.stopped_at)
                .push(", ")
                .push_bind(c.next_threshold_at)
                .push(", ")
                .push_bind(serde_json::to_string(&c.thresholds).unwrap_or_else(|_| "[]".into()))
                .push(", ")
                .push_bind(c.needs_check as i64)
                .push(", ")
                .push_bind(c.computed_at)
                .push(")");
        }
        q.push(
            " ON CONFLICT (ticket_id, kind) DO UPDATE SET sla_id = excluded.sla_id, sla_version = excluded.sla_version, \
             priority = excluded.priority, target_ms = excluded.target_ms, started_at = excluded.started_at, due_at = excluded.due_at, \
             warning_at = excluded.warning_at, state = excluded.state, phase = excluded.phase, elapsed_ms = excluded.elapsed_ms, \
             paused_ms = excluded.paused_ms, met_at = excluded.met_at, breached_at = excluded.breached_at, stopped_at = excluded.stopped_at, \
             next_threshold_at = excluded.next_threshold_at, thresholds = excluded.thresholds, needs_check = excluded.needs_check, \
             computed_at = excluded.computed_at",
        );
        q.execute(conn).await?;
    }
    Ok(())
}

/// Claims up to `limit` tickets after `after_id` (in id order) whose clocks reached their next
/// threshold by `now` or have crossings not yet looked at, and locks them until the transaction
/// ends. On PostgreSQL tickets another transaction holds are skipped (`SKIP LOCKED`), so
/// instances escalating at once share the work; SQLite has one writer anyway.
pub async fn claim_due_for_escalation(conn: &mut AnyConnection, now: i64, after_id: &str, limit: i64) -> Result<Vec<String>> {
    let mut q = Sql::new("SELECT t.id FROM tickets t WHERE t.id > ");
    q.push_bind(after_id)
        .push(" AND t.id IN (SELECT ticket_id FROM ticket_sla_clocks WHERE (next_threshold_at IS NOT NULL AND next_threshold_at <= ")
        .push_bind(now)
        .push(") OR needs_check = 1) ORDER BY t.id LIMIT ")
        .push_bind(limit);
    if conn.backend_name() != "SQLite" {
        q.push(" FOR UPDATE SKIP LOCKED");
    }
    q.fetch_all(conn).await?.iter().map(|r| r.text("id").map_err(Into::into)).collect()
}

pub async fn clear_needs_check(conn: &mut AnyConnection, ticket_ids: &[String]) -> Result<()> {
    let mut q = Sql::new("UPDATE ticket_sla_clocks SET needs_check = 0 WHERE needs_check = 1 AND ticket_id IN ");
    q.push_list(ticket_ids);
    q.execute(conn).await?;
    Ok(())
}

/// The most urgent open clock (earliest due) of each ticket, for the time-left column of lists.
pub async fn most_urgent(conn: &mut AnyConnection, ids: &[String]) -> Result<HashMap<String, ClockRow>> {
    let mut out: HashMap<String, ClockRow> = HashMap::new();
    for c in clocks_of(conn, ids).await? {
        if c.phase == "stopped" {
            continue;
        }
        let better = match out.get(&c.ticket_id) {
            None => true,
            Some(o) => c.due_at.unwrap_or(i64::MAX) < o.due_at.unwrap_or(i64::MAX),
        };
        if better {
            out.insert(c.ticket_id.clone(), c);
        }
    }
    Ok(out)
}

/// SQL condition on `t` (tickets): an open clock that is in warning or due before `before`
/// (and not yet breached). Written as `t.id IN (clocks …)` over the clocks' `(state, due_at)`
/// index rather than `EXISTS` per ticket: the clocks about to breach are few, while an
/// agent's open tickets at a million tickets are tens of thousands, each probed by `EXISTS`
/// (about 200 ms per queue page on SQLite).
pub fn push_breaching_before(q: &mut Sql, before: i64) {
    q.push(
        " AND t.id IN (SELECT k.ticket_id FROM ticket_sla_clocks k WHERE k.phase <> 'stopped' \
         AND (k.state = 'warning' OR (k.state IN ('running', 'paused', 'met') AND k.due_at <= ",
    )
    .push_bind(before)
    .push(")))");
}

// ---------------------------------------------------------------- escalation rules

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RuleRecord {
    pub id: String,
    pub sla_id: String,
    /// `first_response`, `resolution` or `update`.
    pub target_kind: String,
    pub percent: i64,
    /// `notify`, `reassign` or `raise_priority`.
    pub action: String,
    /// For `notify`: who hears of it (JSON list of `Audience`).
    pub audience: serde_json::Value,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

const RULE_COLS: &str = "id, sla_id, target_kind, percent, action, audience, team_id, agent_id, created_at, updated_at, version";

fn rule(r: &AnyRow) -> Result<RuleRecord> {
    Ok(RuleRecord {
        id: r.text("id")?,
        sla_id: r.text("sla_id")?,
        target_kind: r.text("target_kind")?,
        percent: r.int("percent")?,
        action: r.text("action")?,
        audience: serde_json::from_str(&r.text("audience")?).map_err(|e| decode_err("audience", e))?,
        team_id: r.opt_text("team_id")?,
        agent_id: r.opt_text("agent_id")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

pub async fn insert_rule(conn: &mut AnyConnection, r: &RuleRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO sla_escalation_rules (id, sla_id, target_kind, percent, action, audience, team_id, agent_id, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 1)",
    )
    .bind(&r.id)
    .bind(&r.sla_id)
    .bind(&r.target_kind)
    .bind(r.percent)
    .bind(&r.action)
    .bind(r.audience.to_string())
    .bind(&r.team_id)
    .bind(&r.agent_id)
    .bind(r.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete_rule(conn: &mut AnyConnection, id: &str) -> Result<()> {
    let r = sqlx::query("DELETE FROM sla_escalation_rules WHERE id = $1").bind(id).execute(&mut *conn).await?;
    if r.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

pub async fn get_rule(conn: &mut AnyConnection, id: &str) -> Result<Option<RuleRecord>> {
    let q = format!("SELECT {RULE_COLS} FROM sla_escalation_rules WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await?.map(|r| rule(&r)).transpose()
}

pub async fn list_rules(conn: &mut AnyConnection, sla_id: &str) -> Result<Vec<RuleRecord>> {
    let q = format!("SELECT {RULE_COLS} FROM sla_escalation_rules WHERE sla_id = $1 ORDER BY target_kind, percent, id");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(sla_id).fetch_all(&mut *conn).await?.iter().map(rule).collect()
}

// ---------------------------------------------------------------- firings

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FiringRecord {
    pub id: String,
    pub rule_id: String,
    pub ticket_id: String,
    pub threshold_at: i64,
    pub target_kind: String,
    pub percent: i64,
    pub fired_at: i64,
    pub late: bool,
    pub late_by_ms: i64,
    pub outcome: String,
}

/// Inserts the firings whose ticket, rule and threshold instant did not fire yet, and returns
/// the ids of those this call inserted (and so must act on).
pub async fn insert_firings(conn: &mut AnyConnection, firings: &[FiringRecord]) -> Result<HashSet<String>> {
    let mut inserted = HashSet::new();
    for chunk in firings.chunks(200) {
        let mut q = Sql::new(
            "INSERT INTO sla_escalation_firings (id, rule_id, ticket_id, threshold_at, target_kind, percent, fired_at, late, late_by_ms, outcome) VALUES ",
        );
        for (i, f) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" })
                .push_bind(&f.id)
                .push(", ")
                .push_bind(&f.rule_id)
                .push(", ")
                .push_bind(&f.ticket_id)
                .push(", ")
                .push_bind(f.threshold_at)
                .push(", ")
                .push_bind(&f.target_kind)
                .push(", ")
                .push_bind(f.percent)
                .push(", ")
                .push_bind(f.fired_at)
                .push(", ")
                .push_bind(f.late as i64)
                .push(", ")
                .push_bind(f.late_by_ms)
                .push(", ")
                .push_bind(&f.outcome)
                .push(")");
        }
        q.push(" ON CONFLICT (ticket_id, rule_id, threshold_at) DO NOTHING RETURNING id");
        for r in q.fetch_all(conn).await? {
            inserted.insert(r.text("id")?);
        }
    }
    Ok(inserted)
}

/// Records what each firing did: `(firing id, outcome)`, one statement per distinct outcome.
pub async fn set_firing_outcomes(conn: &mut AnyConnection, outcomes: &[(String, &str)]) -> Result<()> {
    let mut by_outcome: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (id, outcome) in outcomes {
        by_outcome.entry(outcome).or_default().push(id.clone());
    }
    for (outcome, ids) in by_outcome {
        for chunk in ids.chunks(500) {
            let mut q = Sql::new("UPDATE sla_escalation_firings SET outcome = ");
            q.push_bind(outcome).push(" WHERE id IN ").push_list(chunk);
            q.execute(conn).await?;
        }
    }
    Ok(())
}

pub async fn firings_of(conn: &mut AnyConnection, ticket_id: &str) -> Result<Vec<FiringRecord>> {
    let rows = sqlx::query(
        "SELECT id, rule_id, ticket_id, threshold_at, target_kind, percent, fired_at, late, late_by_ms, outcome FROM sla_escalation_firings \
         WHERE ticket_id = $1 ORDER BY fired_at, id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(FiringRecord {
                id: r.text("id")?,
                rule_id: r.text("rule_id")?,
                ticket_id: r.text("ticket_id")?,
                threshold_at: r.int("threshold_at")?,
                target_kind: r.text("target_kind")?,
                percent: r.int("percent")?,
                fired_at: r.int("fired_at")?,
                late: r.flag("late")?,
                late_by_ms: r.int("late_by_ms")?,
                outcome: r.text("outcome")?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------- notices per SLA version

/// Records a notice (e.g. `review_due`) for one SLA version; true the first time only.
pub async fn insert_notice(conn: &mut AnyConnection, sla_id: &str, version: i64, kind: &str, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO sla_notices (sla_id, sla_version, kind, sent_at) VALUES ($1, $2, $3, $4) ON CONFLICT (sla_id, sla_version, kind) DO NOTHING",
    )
    .bind(sla_id)
    .bind(version)
    .bind(kind)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// SLAs (active or approved) with a review date on or before `date` (`YYYY-MM-DD`).
pub async fn slas_for_review(conn: &mut AnyConnection, date: &str) -> Result<Vec<(String, i64, String, String)>> {
    let rows = sqlx::query(
        "SELECT id, version, name, review_on FROM slas WHERE status IN ('active', 'approved') AND review_on IS NOT NULL AND review_on <= $1 \
         ORDER BY id",
    )
    .bind(date)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok((r.text("id")?, r.int("version")?, r.text("name")?, r.text("review_on")?))).collect()
}

/// SLAs (active or approved) whose validity ended before `date` (`YYYY-MM-DD`).
pub async fn slas_past_end(conn: &mut AnyConnection, date: &str) -> Result<Vec<String>> {
    let rows =
        sqlx::query("SELECT id FROM slas WHERE status IN ('active', 'approved') AND valid_to IS NOT NULL AND valid_to < $1 ORDER BY id")
            .bind(date)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter().map(|r| r.text("id").map_err(Into::into)).collect()
}

// ---------------------------------------------------------------- attainment report

/// One measured clock of a ticket created in the report's period.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttainmentRow {
    pub ticket_id: String,
    pub number: String,
    pub organization_id: String,
    pub organization_name: String,
    pub project_id: String,
    pub project_name: String,
    pub service_id: Option<String>,
    pub service_name: Option<String>,
    pub priority: String,
    pub kind: String,
    pub state: String,
    pub due_at: Option<i64>,
    pub breached_at: Option<i64>,
    pub stopped_at: Option<i64>,
}

/// The clocks of tickets created in `[from, to)` within a scope, met or breached only.
pub async fn attainment_rows(conn: &mut AnyConnection, scope: &Scope, from: i64, to: i64) -> Result<Vec<AttainmentRow>> {
    let mut q = Sql::new(
        "SELECT t.id AS ticket_id, t.number AS number, t.organization_id AS organization_id, o.name AS organization_name, \
         t.project_id AS project_id, p.name AS project_name, t.service_id AS service_id, s.name AS service_name, k.priority AS priority, \
         k.kind AS kind, k.state AS state, k.due_at AS due_at, k.breached_at AS breached_at, k.stopped_at AS stopped_at \
         FROM ticket_sla_clocks k JOIN tickets t ON t.id = k.ticket_id JOIN organizations o ON o.id = t.organization_id \
         JOIN projects p ON p.id = t.project_id LEFT JOIN services s ON s.id = t.service_id \
         WHERE k.state IN ('met', 'breached') AND t.created_at >= ",
    );
    q.push_bind(from).push(" AND t.created_at < ").push_bind(to);
    if let Some(o) = &scope.organization_id {
        q.push(" AND t.organization_id = ").push_bind(o.clone());
    }
    if let Some(projects) = &scope.project_ids {
        q.push(" AND t.project_id IN ").push_list(projects);
    }
    q.push(" ORDER BY t.number, k.kind");
    q.fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok(AttainmentRow {
                ticket_id: r.text("ticket_id")?,
                number: r.text("number")?,
                organization_id: r.text("organization_id")?,
                organization_name: r.text("organization_name")?,
                project_id: r.text("project_id")?,
                project_name: r.text("project_name")?,
                service_id: r.opt_text("service_id")?,
                service_name: r.opt_text("service_name")?,
                priority: r.text("priority")?,
                kind: r.text("kind")?,
                state: r.text("state")?,
                due_at: r.opt_int("due_at")?,
                breached_at: r.opt_int("breached_at")?,
                stopped_at: r.opt_int("stopped_at")?,
            })
        })
        .collect()
}

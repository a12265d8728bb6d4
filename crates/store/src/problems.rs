//! Problem management (REQUIREMENTS §4): problems with their root-cause analysis, workaround
//! and status log, the incidents linked to them, the known error database with its indexed
//! search terms, and the incident counts the trend view reads.

use crate::directory::Scope;
use crate::lifecycle_log::{self, LogTable, StatusRow};
use crate::page::{Page, PageRequest, fetch_page, like_pattern};
use crate::rows::RowExt;
use crate::sql::Sql;
use crate::{AnyConnection, Result, StoreError};
use serde::Serialize;
use sqlx::any::AnyRow;

// ---- problems ----

/// A problem row. `names` come from joins, for display only (not part of the audit snapshot).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ProblemRecord {
    pub id: String,
    pub number: String,
    pub project_id: String,
    pub organization_id: String,
    pub title: String,
    pub description: Option<String>,
    pub source: String,
    pub priority: String,
    pub service_id: Option<String>,
    pub ci_ids: Vec<String>,
    pub status: String,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    pub rca_method: Option<String>,
    pub rca_findings: Option<String>,
    pub root_cause: Option<String>,
    pub rca_recorded_at: Option<i64>,
    pub rca_recorded_by: Option<String>,
    pub workaround: Option<String>,
    pub workaround_recorded_at: Option<i64>,
    pub workaround_recorded_by: Option<String>,
    pub resolution_notes: Option<String>,
    pub fixing_change_id: Option<String>,
    pub resolved_at: Option<i64>,
    /// `staff:<id>` or `system`.
    pub resolved_by: Option<String>,
    /// `resolved` or `cancelled`.
    pub closure_kind: Option<String>,
    pub closure_reason: Option<String>,
    pub closed_at: Option<i64>,
    pub closed_by: Option<String>,
    pub reopen_count: i64,
    pub status_changed_at: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    #[serde(skip)]
    pub names: ProblemNames,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProblemNames {
    pub project_code: String,
    pub organization_name: String,
    pub team_name: Option<String>,
    pub agent_name: Option<String>,
    pub service_name: Option<String>,
    pub known_error_number: Option<String>,
}

const PROBLEM_COLS: &[&str] = &[
    "number",
    "project_id",
    "organization_id",
    "title",
    "description",
    "source",
    "priority",
    "service_id",
    "ci_ids",
    "status",
    "team_id",
    "agent_id",
    "rca_method",
    "rca_findings",
    "root_cause",
    "rca_recorded_at",
    "rca_recorded_by",
    "workaround",
    "workaround_recorded_at",
    "workaround_recorded_by",
    "resolution_notes",
    "fixing_change_id",
    "resolved_at",
    "resolved_by",
    "closure_kind",
    "closure_reason",
    "closed_at",
    "closed_by",
    "reopen_count",
    "status_changed_at",
    "created_by",
    "created_at",
    "updated_at",
    "version",
    "id",
];

fn problem_select() -> String {
    let cols: Vec<String> = PROBLEM_COLS.iter().map(|c| format!("p.{c} AS {c}")).collect();
    format!(
        "SELECT {}, pr.code AS project_code, o.name AS organization_name, tm.name AS team_name, a.display_name AS agent_name, \
         s.name AS service_name, k.number AS known_error_number \
         FROM problems p JOIN projects pr ON pr.id = p.project_id JOIN organizations o ON o.id = p.organization_id \
         LEFT JOIN teams tm ON tm.id = p.team_id LEFT JOIN users a ON a.id = p.agent_id LEFT JOIN services s ON s.id = p.service_id \
         LEFT JOIN known_errors k ON k.problem_id = p.id WHERE 1 = 1",
        cols.join(", ")
    )
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Db(sqlx::Error::Decode(Box::new(e)))
}

fn problem(r: &AnyRow) -> Result<ProblemRecord> {
    Ok(ProblemRecord {
        id: r.text("id")?,
        number: r.text("number")?,
        project_id: r.text("project_id")?,
        organization_id: r.text("organization_id")?,
        title: r.text("title")?,
        description: r.opt_text("description")?,
        source: r.text("source")?,
        priority: r.text("priority")?,
        service_id: r.opt_text("service_id")?,
        ci_ids: serde_json::from_str(&r.text("ci_ids")?).map_err(json_err)?,
        status: r.text("status")?,
        team_id: r.opt_text("team_id")?,
        agent_id: r.opt_text("agent_id")?,
        rca_method: r.opt_text("rca_method")?,
        rca_findings: r.opt_text("rca_findings")?,
        root_cause: r.opt_text("root_cause")?,
        rca_recorded_at: r.opt_int("rca_recorded_at")?,
        rca_recorded_by: r.opt_text("rca_recorded_by")?,
        workaround: r.opt_text("workaround")?,
        workaround_recorded_at: r.opt_int("workaround_recorded_at")?,
        workaround_recorded_by: r.opt_text("workaround_recorded_by")?,
        resolution_notes: r.opt_text("resolution_notes")?,
        fixing_change_id: r.opt_text("fixing_change_id")?,
        resolved_at: r.opt_int("resolved_at")?,
        resolved_by: r.opt_text("resolved_by")?,
        closure_kind: r.opt_text("closure_kind")?,
        closure_reason: r.opt_text("closure_reason")?,
        closed_at: r.opt_int("closed_at")?,
        closed_by: r.opt_text("closed_by")?,
        reopen_count: r.int("reopen_count")?,
        status_changed_at: r.int("status_changed_at")?,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
        names: ProblemNames {
            project_code: r.text("project_code")?,
            organization_name: r.text("organization_name")?,
            team_name: r.opt_text("team_name")?,
            agent_name: r.opt_text("agent_name")?,
            service_name: r.opt_text("service_name")?,
            known_error_number: r.opt_text("known_error_number")?,
        },
    })
}

fn bind_problem(q: &mut Sql, p: &ProblemRecord, col: &str) {
    match col {
        "number" => q.push_bind(&p.number),
        "project_id" => q.push_bind(&p.project_id),
        "organization_id" => q.push_bind(&p.organization_id),
        "title" => q.push_bind(&p.title),
        "description" => q.push_bind(p.description.clone()),
        "source" => q.push_bind(&p.source),
        "priority" => q.push_bind(&p.priority),
        "service_id" => q.push_bind(p.service_id.clone()),
        "ci_ids" => q.push_bind(serde_json::to_string(&p.ci_ids).unwrap_or_else(|_| "[]".into())),
        "status" => q.push_bind(&p.status),
        "team_id" => q.push_bind(p.team_id.clone()),
        "agent_id" => q.push_bind(p.agent_id.clone()),
        "rca_method" => q.push_bind(p.rca_method.clone()),
        "rca_findings" => q.push_bind(p.rca_findings.clone()),
        "root_cause" => q.push_bind(p.root_cause.clone()),
        "rca_recorded_at" => q.push_bind(p.rca_recorded_at),
        "rca_recorded_by" => q.push_bind(p.rca_recorded_by.clone()),
        "workaround" => q.push_bind(p.workaround.clone()),
        "workaround_recorded_at" => q.push_bind(p.workaround_recorded_at),
        "workaround_recorded_by" => q.push_bind(p.workaround_recorded_by.clone()),
        "resolution_notes" => q.push_bind(p.resolution_notes.clone()),
        "fixing_change_id" => q.push_bind(p.fixing_change_id.clone()),
        "resolved_at" => q.push_bind(p.resolved_at),
        "resolved_by" => q.push_bind(p.resolved_by.clone()),
        "closure_kind" => q.push_bind(p.closure_kind.clone()),
        "closure_reason" => q.push_bind(p.closure_reason.clone()),
        "closed_at" => q.push_bind(p.closed_at),
        "closed_by" => q.push_bind(p.closed_by.clone()),
        "reopen_count" => q.push_bind(p.reopen_count),
        "status_changed_at" => q.push_bind(p.status_changed_at),
        "created_by" => q.push_bind(&p.created_by),
        "created_at" => q.push_bind(p.created_at),
        "updated_at" => q.push_bind(p.updated_at),
        "version" => q.push_bind(p.version),
        _ => q.push_bind(&p.id),
    };
}

pub async fn insert_problem(conn: &mut AnyConnection, p: &ProblemRecord) -> Result<()> {
    let mut q = Sql::new(format!("INSERT INTO problems ({}) VALUES (", PROBLEM_COLS.join(", ")));
    for (i, col) in PROBLEM_COLS.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        bind_problem(&mut q, p, col);
    }
    q.push(")");
    q.execute(&mut *conn).await?;
    insert_problem_cis(conn, &p.id, &p.ci_ids.iter().collect::<Vec<_>>()).await
}

/// Adds rows of `problem_cis` (the CIs a problem names, for matching by CI), a statement per
/// 400 CIs.
async fn insert_problem_cis(conn: &mut AnyConnection, problem_id: &str, ci_ids: &[&String]) -> Result<()> {
    let mut distinct: Vec<&String> = Vec::with_capacity(ci_ids.len());
    for &c in ci_ids {
        if !distinct.contains(&c) {
            distinct.push(c);
        }
    }
    for chunk in distinct.chunks(400) {
        let mut q = Sql::new("INSERT INTO problem_cis (problem_id, ci_id) VALUES ");
        for (i, ci) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" }).push_bind(problem_id).push(", ").push_bind(*ci).push(")");
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Brings `problem_cis` in step with a problem's CI list: removes the CIs no longer named, adds
/// the new ones; writes nothing when the list did not change.
async fn sync_problem_cis(conn: &mut AnyConnection, problem_id: &str, ci_ids: &[String]) -> Result<()> {
    let stored: Vec<String> = sqlx::query("SELECT ci_id FROM problem_cis WHERE problem_id = $1")
        .bind(problem_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.text("ci_id"))
        .collect::<std::result::Result<_, _>>()?;
    let gone: Vec<&String> = stored.iter().filter(|c| !ci_ids.contains(*c)).collect();
    for chunk in gone.chunks(400) {
        let mut q = Sql::new("DELETE FROM problem_cis WHERE problem_id = ");
        q.push_bind(problem_id).push(" AND ci_id IN ").push_list(chunk.iter().copied());
        q.execute(&mut *conn).await?;
    }
    let added: Vec<&String> = ci_ids.iter().filter(|c| !stored.contains(*c)).collect();
    insert_problem_cis(conn, problem_id, &added).await
}

/// Writes every changeable column if the stored version is still `expected_version`.
pub async fn update_problem(conn: &mut AnyConnection, p: &ProblemRecord, expected_version: i64) -> Result<()> {
    let mut q = Sql::new("UPDATE problems SET ");
    let cols = PROBLEM_COLS.iter().filter(|c| !matches!(**c, "id" | "version" | "number" | "created_at" | "created_by"));
    for (i, col) in cols.enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push(format!("{col} = "));
        bind_problem(&mut q, p, col);
    }
    q.push(", version = version + 1 WHERE id = ").push_bind(&p.id).push(" AND version = ").push_bind(expected_version);
    if q.execute(&mut *conn).await?.rows_affected() == 0 {
        return Err(StoreError::Stale);
    }
    sync_problem_cis(conn, &p.id, &p.ci_ids).await
}

/// Marks activity (a linked incident) without changing the version.
pub async fn touch_problem(conn: &mut AnyConnection, id: &str, at: i64) -> Result<()> {
    sqlx::query("UPDATE problems SET updated_at = $1 WHERE id = $2").bind(at).bind(id).execute(&mut *conn).await?;
    Ok(())
}

pub async fn get_problem(conn: &mut AnyConnection, id: &str) -> Result<Option<ProblemRecord>> {
    let mut q = Sql::new(problem_select());
    q.push(" AND p.id = ").push_bind(id);
    q.fetch_all(conn).await?.first().map(problem).transpose()
}

pub async fn get_problem_by_number(conn: &mut AnyConnection, number: &str) -> Result<Option<ProblemRecord>> {
    let mut q = Sql::new(problem_select());
    q.push(" AND p.number = ").push_bind(number);
    q.fetch_all(conn).await?.first().map(problem).transpose()
}

#[derive(Debug, Clone, Default)]
pub struct ProblemFilter {
    pub statuses: Vec<String>,
    pub open_only: bool,
    pub project_id: Option<String>,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    pub priority: Option<String>,
    /// Text in the number or the title.
    pub q: Option<String>,
}

fn push_problem_scope(q: &mut Sql, scope: &Scope) {
    if let Some(o) = &scope.organization_id {
        q.push(" AND p.organization_id = ").push_bind(o);
    }
    if let Some(projects) = &scope.project_ids {
        q.push(" AND p.project_id IN ").push_list(projects);
    }
}

pub async fn list_problems(conn: &mut AnyConnection, scope: &Scope, f: &ProblemFilter, page: &PageRequest) -> Result<Page<ProblemRecord>> {
    let mut q = Sql::new(problem_select());
    push_problem_scope(&mut q, scope);
    if !f.statuses.is_empty() {
        q.push(" AND p.status IN ").push_list(&f.statuses);
    }
    if f.open_only {
        q.push(" AND p.status NOT IN ('resolved', 'closed')");
    }
    for (col, v) in [("p.project_id", &f.project_id), ("p.team_id", &f.team_id), ("p.agent_id", &f.agent_id), ("p.priority", &f.priority)] {
        if let Some(v) = v {
            q.push(format!(" AND {col} = ")).push_bind(v);
        }
    }
    if let Some(text) = f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pat = like_pattern(text);
        q.push(" AND (LOWER(p.title) LIKE ")
            .push_bind(pat.clone())
            .push(" ESCAPE '\\' OR LOWER(p.number) LIKE ")
            .push_bind(pat)
            .push(" ESCAPE '\\')");
    }
    fetch_page(conn, q, "p.id", page, problem).await
}

// ---- status log ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProblemStatusRow {
    pub seq: i64,
    pub at: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub action: Option<String>,
    pub actor_id: String,
}

const STATUS_LOG: LogTable = LogTable { table: "problem_status_log", key: "problem_id", note: "action" };

pub async fn append_status_log(conn: &mut AnyConnection, problem_id: &str, e: &ProblemStatusRow) -> Result<()> {
    let row = StatusRow {
        seq: e.seq,
        at: e.at,
        from_status: e.from_status.clone(),
        to_status: e.to_status.clone(),
        reason: e.action.clone(),
        actor_id: e.actor_id.clone(),
    };
    lifecycle_log::append(conn, &STATUS_LOG, problem_id, &row).await
}

pub async fn status_log(conn: &mut AnyConnection, problem_id: &str) -> Result<Vec<ProblemStatusRow>> {
    let rows = lifecycle_log::read(conn, &STATUS_LOG, problem_id).await?;
    Ok(rows
        .into_iter()
        .map(|l| ProblemStatusRow {
            seq: l.seq,
            at: l.at,
            from_status: l.from_status,
            to_status: l.to_status,
            action: l.reason,
            actor_id: l.actor_id,
        })
        .collect())
}

// ---- links between incidents and problems or known errors ----

/// A ticket linked to a problem or known error, as the problem page lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LinkedTicket {
    pub id: String,
    pub number: String,
    pub kind: String,
    pub title: String,
    pub status: String,
    pub priority: String,
    pub project_id: String,
    pub organization_id: String,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    pub reporter_id: String,
}

/// Tickets linked to `target_type`/`target_id` through `ticket_links`, oldest link first.
pub async fn linked_tickets(conn: &mut AnyConnection, target_type: &str, target_id: &str) -> Result<Vec<LinkedTicket>> {
    let rows = sqlx::query(
        "SELECT t.id AS id, t.number AS number, t.kind AS kind, t.title AS title, t.status AS status, t.priority AS priority, \
         t.project_id AS project_id, t.organization_id AS organization_id, t.team_id AS team_id, t.agent_id AS agent_id, \
         t.reporter_id AS reporter_id FROM ticket_links l JOIN tickets t ON t.id = l.ticket_id \
         WHERE l.target_type = $1 AND l.target_id = $2 ORDER BY l.created_at, t.number",
    )
    .bind(target_type)
    .bind(target_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(LinkedTicket {
                id: r.text("id")?,
                number: r.text("number")?,
                kind: r.text("kind")?,
                title: r.text("title")?,
                status: r.text("status")?,
                priority: r.text("priority")?,
                project_id: r.text("project_id")?,
                organization_id: r.text("organization_id")?,
                team_id: r.opt_text("team_id")?,
                agent_id: r.opt_text("agent_id")?,
                reporter_id: r.text("reporter_id")?,
            })
        })
        .collect()
}

/// Whether a ticket is already linked to the target.
pub async fn is_linked(conn: &mut AnyConnection, ticket_id: &str, target_type: &str, target_id: &str) -> Result<bool> {
    let n = sqlx::query("SELECT COUNT(*) AS n FROM ticket_links WHERE ticket_id = $1 AND target_type = $2 AND target_id = $3")
        .bind(ticket_id)
        .bind(target_type)
        .bind(target_id)
        .fetch_one(&mut *conn)
        .await?
        .int("n")?;
    Ok(n > 0)
}

/// The problems a ticket is linked to.
pub async fn problems_of_ticket(conn: &mut AnyConnection, ticket_id: &str) -> Result<Vec<ProblemRecord>> {
    let mut q = Sql::new(problem_select());
    q.push(" AND p.id IN (SELECT target_id FROM ticket_links WHERE target_type = 'problem' AND ticket_id = ").push_bind(ticket_id);
    q.push(") ORDER BY p.number");
    q.fetch_all(conn).await?.iter().map(problem).collect()
}

/// The known errors a ticket is linked to.
pub async fn known_errors_of_ticket(conn: &mut AnyConnection, ticket_id: &str) -> Result<Vec<KnownErrorRecord>> {
    let mut q = Sql::new(KE_SELECT);
    q.push(" AND k.id IN (SELECT target_id FROM ticket_links WHERE target_type = 'known_error' AND ticket_id = ").push_bind(ticket_id);
    q.push(") ORDER BY k.number");
    q.fetch_all(conn).await?.iter().map(known_error).collect()
}

// ---- known errors ----

/// A known error row with what it shows of its problem (root cause and workaround live on the
/// problem so the two never disagree).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct KnownErrorRecord {
    pub id: String,
    pub number: String,
    pub problem_id: String,
    /// `en` or `zh-CN`: the language of `title`, `symptoms` and the problem's workaround.
    pub language: String,
    pub title: String,
    pub symptoms: String,
    pub translation_title: Option<String>,
    pub translation_symptoms: Option<String>,
    pub translation_workaround: Option<String>,
    pub publish_to_portal: bool,
    pub recorded_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    #[serde(skip)]
    pub problem: KnownErrorProblem,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct KnownErrorProblem {
    pub number: String,
    pub status: String,
    pub project_id: String,
    pub organization_id: String,
    pub root_cause: Option<String>,
    pub workaround: Option<String>,
}

const KE_SELECT: &str = "SELECT k.id AS id, k.number AS number, k.problem_id AS problem_id, k.language AS language, k.title AS title, \
    k.symptoms AS symptoms, k.translation_title AS translation_title, k.translation_symptoms AS translation_symptoms, \
    k.translation_workaround AS translation_workaround, k.publish_to_portal AS publish_to_portal, k.recorded_at AS recorded_at, \
    k.created_at AS created_at, k.updated_at AS updated_at, k.version AS version, p.number AS problem_number, p.status AS problem_status, \
    p.project_id AS project_id, p.organization_id AS organization_id, p.root_cause AS root_cause, p.workaround AS workaround \
    FROM known_errors k JOIN problems p ON p.id = k.problem_id WHERE 1 = 1";

fn known_error(r: &AnyRow) -> Result<KnownErrorRecord> {
    Ok(KnownErrorRecord {
        id: r.text("id")?,
        number: r.text("number")?,
        problem_id: r.text("problem_id")?,
        language: r.text("language")?,
        title: r.text("title")?,
        symptoms: r.text("symptoms")?,
        translation_title: r.opt_text("translation_title")?,
        translation_symptoms: r.opt_text("translation_symptoms")?,
        translation_workaround: r.opt_text("translation_workaround")?,
        publish_to_portal: r.flag("publish_to_portal")?,
        recorded_at: r.int("recorded_at")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
        problem: KnownErrorProblem {
            number: r.text("problem_number")?,
            status: r.text("problem_status")?,
            project_id: r.text("project_id")?,
            organization_id: r.text("organization_id")?,
            root_cause: r.opt_text("root_cause")?,
            workaround: r.opt_text("workaround")?,
        },
    })
}

pub async fn insert_known_error(conn: &mut AnyConnection, k: &KnownErrorRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO known_errors (id, number, problem_id, language, title, symptoms, translation_title, translation_symptoms, \
         translation_workaround, publish_to_portal, recorded_at, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, 1)",
    )
    .bind(&k.id)
    .bind(&k.number)
    .bind(&k.problem_id)
    .bind(&k.language)
    .bind(&k.title)
    .bind(&k.symptoms)
    .bind(&k.translation_title)
    .bind(&k.translation_symptoms)
    .bind(&k.translation_workaround)
    .bind(k.publish_to_portal as i64)
    .bind(k.recorded_at)
    .bind(k.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn update_known_error(conn: &mut AnyConnection, k: &KnownErrorRecord, expected_version: i64) -> Result<()> {
    let r = sqlx::query(
        "UPDATE known_errors SET language = $1, title = $2, symptoms = $3, translation_title = $4, translation_symptoms = $5, \
         translation_workaround = $6, publish_to_portal = $7, updated_at = $8, version = version + 1 WHERE id = $9 AND version = $10",
    )
    .bind(&k.language)
    .bind(&k.title)
    .bind(&k.symptoms)
    .bind(&k.translation_title)
    .bind(&k.translation_symptoms)
    .bind(&k.translation_workaround)
    .bind(k.publish_to_portal as i64)
    .bind(k.updated_at)
    .bind(&k.id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 { Err(StoreError::Stale) } else { Ok(()) }
}

pub async fn get_known_error(conn: &mut AnyConnection, id: &str) -> Result<Option<KnownErrorRecord>> {
    let mut q = Sql::new(KE_SELECT);
    q.push(" AND (k.id = ").push_bind(id).push(" OR k.number = ").push_bind(id).push(")");
    q.fetch_all(conn).await?.first().map(known_error).transpose()
}

pub async fn known_error_of_problem(conn: &mut AnyConnection, problem_id: &str) -> Result<Option<KnownErrorRecord>> {
    let mut q = Sql::new(KE_SELECT);
    q.push(" AND k.problem_id = ").push_bind(problem_id);
    q.fetch_all(conn).await?.first().map(known_error).transpose()
}

/// Replaces the search terms of a known error.
pub async fn set_terms(conn: &mut AnyConnection, known_error_id: &str, terms: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM known_error_terms WHERE known_error_id = $1").bind(known_error_id).execute(&mut *conn).await?;
    for t in terms {
        sqlx::query("INSERT INTO known_error_terms (known_error_id, term) VALUES ($1, $2)")
            .bind(known_error_id)
            .bind(t)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct KnownErrorFilter {
    /// Only records published on the portal whose problem is open.
    pub portal_only: bool,
    pub project_id: Option<String>,
}

fn push_ke_scope(q: &mut Sql, scope: &Scope, f: &KnownErrorFilter) {
    push_problem_scope(q, scope);
    if f.portal_only {
        q.push(" AND k.publish_to_portal = 1 AND p.status NOT IN ('resolved', 'closed') AND p.workaround IS NOT NULL");
    }
    if let Some(pid) = &f.project_id {
        q.push(" AND p.project_id = ").push_bind(pid);
    }
}

/// Known errors in scope, by number (newest first).
pub async fn list_known_errors(
    conn: &mut AnyConnection,
    scope: &Scope,
    f: &KnownErrorFilter,
    page: &PageRequest,
) -> Result<Page<KnownErrorRecord>> {
    let mut q = Sql::new(KE_SELECT);
    push_ke_scope(&mut q, scope, f);
    fetch_page(conn, q, "k.id", page, known_error).await
}

/// Known errors sharing at least `min_hits` of `terms`, most shared terms first. The terms are
/// looked up through `known_error_terms_term`.
pub async fn search_known_errors(
    conn: &mut AnyConnection,
    scope: &Scope,
    f: &KnownErrorFilter,
    terms: &[String],
    min_hits: i64,
    limit: i64,
) -> Result<Vec<(KnownErrorRecord, i64)>> {
    if terms.is_empty() {
        return Ok(vec![]);
    }
    let mut q = Sql::new(
        "SELECT kt.known_error_id AS id, COUNT(*) AS hits FROM known_error_terms kt \
         JOIN known_errors k ON k.id = kt.known_error_id JOIN problems p ON p.id = k.problem_id WHERE kt.term IN ",
    );
    q.push_list(terms);
    push_ke_scope(&mut q, scope, f);
    q.push(" GROUP BY kt.known_error_id HAVING COUNT(*) >= ").push_bind(min_hits);
    q.push(" ORDER BY COUNT(*) DESC, kt.known_error_id DESC LIMIT ").push_bind(limit);
    let hits: Vec<(String, i64)> =
        q.fetch_all(&mut *conn).await?.iter().map(|r| Ok((r.text("id")?, r.int("hits")?))).collect::<Result<_>>()?;
    let mut out = Vec::new();
    for (id, n) in hits {
        if let Some(k) = get_known_error(conn, &id).await? {
            out.push((k, n));
        }
    }
    Ok(out)
}

/// Known errors of open problems that name one of `ci_ids` — on the problem itself or on an
/// incident linked to the problem — each with the CIs it matched (at most `limit` records).
pub async fn known_errors_by_cis(
    conn: &mut AnyConnection,
    scope: &Scope,
    f: &KnownErrorFilter,
    ci_ids: &[String],
    limit: i64,
) -> Result<Vec<(String, Vec<String>)>> {
    if ci_ids.is_empty() {
        return Ok(vec![]);
    }
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |id: String, ci: String| match found.iter_mut().find(|(k, _)| *k == id) {
        Some((_, cis)) if !cis.contains(&ci) => cis.push(ci),
        Some(_) => {}
        None => found.push((id, vec![ci])),
    };
    // the problem's own CIs, through `problem_cis_ci`: a known error has a row per CI it
    // matches, so the first `limit` known errors are within `limit` rows per CI asked for
    let mut q = Sql::new(
        "SELECT k.id AS id, pc.ci_id AS ci FROM problem_cis pc JOIN problems p ON p.id = pc.problem_id \
         JOIN known_errors k ON k.problem_id = p.id WHERE pc.ci_id IN ",
    );
    q.push_list(ci_ids).push(" AND p.status NOT IN ('resolved', 'closed')");
    push_ke_scope(&mut q, scope, f);
    let rows = i64::try_from(ci_ids.len()).unwrap_or(i64::MAX).saturating_mul(limit);
    q.push(" ORDER BY k.id DESC, pc.ci_id LIMIT ").push_bind(rows);
    let mut first: Vec<String> = Vec::new();
    for r in q.fetch_all(&mut *conn).await? {
        let id = r.text("id")?;
        if !first.contains(&id) {
            if i64::try_from(first.len()).unwrap_or(i64::MAX) >= limit {
                break;
            }
            first.push(id.clone());
        }
        add(id, r.text("ci")?);
    }
    let mut q = Sql::new(
        "SELECT k.id AS id, cl.target_id AS ci FROM known_errors k JOIN problems p ON p.id = k.problem_id \
         JOIN ticket_links pl ON pl.target_type = 'problem' AND pl.target_id = p.id \
         JOIN ticket_links cl ON cl.ticket_id = pl.ticket_id AND cl.target_type = 'ci' WHERE cl.target_id IN ",
    );
    q.push_list(ci_ids).push(" AND p.status NOT IN ('resolved', 'closed')");
    push_ke_scope(&mut q, scope, f);
    q.push(" ORDER BY k.id DESC LIMIT ").push_bind(limit);
    for r in q.fetch_all(&mut *conn).await? {
        add(r.text("id")?, r.text("ci")?);
    }
    Ok(found)
}

/// Known errors of open problems with an incident of `category_id` linked to the problem or to
/// the known error itself, newest first.
pub async fn known_errors_by_category(
    conn: &mut AnyConnection,
    scope: &Scope,
    f: &KnownErrorFilter,
    category_id: &str,
    limit: i64,
) -> Result<Vec<String>> {
    let mut q = Sql::new(
        "SELECT k.id AS id FROM known_errors k JOIN problems p ON p.id = k.problem_id WHERE EXISTS (SELECT 1 FROM ticket_links l \
         JOIN tickets t ON t.id = l.ticket_id WHERE ((l.target_type = 'problem' AND l.target_id = p.id) \
         OR (l.target_type = 'known_error' AND l.target_id = k.id)) AND t.category_id = ",
    );
    q.push_bind(category_id).push(") AND p.status NOT IN ('resolved', 'closed')");
    push_ke_scope(&mut q, scope, f);
    q.push(" ORDER BY k.id DESC LIMIT ").push_bind(limit);
    q.fetch_all(conn).await?.iter().map(|r| Ok(r.text("id")?)).collect()
}

// ---- trends ----

/// One incident as the trend view counts it, with the dimension value it falls under.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    pub ticket_id: String,
    pub created_at: i64,
    pub key: Option<String>,
    pub label: Option<String>,
}

/// By which dimension incidents are grouped in the trend view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendDimension {
    Category,
    Service,
    ConfigurationItem,
}

/// Incidents (not service requests) logged in `[from, to)` within scope, each with its value
/// for `dim`; an incident linked to several CIs appears once per CI.
pub async fn trend_points(
    conn: &mut AnyConnection,
    scope: &Scope,
    dim: TrendDimension,
    from: i64,
    to: i64,
    project_id: Option<&str>,
) -> Result<Vec<TrendPoint>> {
    let mut q = Sql::new(match dim {
        TrendDimension::Category => {
            "SELECT t.id AS id, t.created_at AS created_at, t.category_id AS k, c.name AS label FROM tickets t \
             LEFT JOIN ticket_categories c ON c.id = t.category_id WHERE t.kind = 'incident'"
        }
        TrendDimension::Service => {
            "SELECT t.id AS id, t.created_at AS created_at, t.service_id AS k, s.name AS label FROM tickets t \
             LEFT JOIN services s ON s.id = t.service_id WHERE t.kind = 'incident'"
        }
        TrendDimension::ConfigurationItem => {
            "SELECT t.id AS id, t.created_at AS created_at, l.target_id AS k, ci.name AS label FROM tickets t \
             JOIN ticket_links l ON l.ticket_id = t.id AND l.target_type = 'ci' \
             LEFT JOIN configuration_items ci ON ci.id = l.target_id WHERE t.kind = 'incident'"
        }
    });
    if let Some(o) = &scope.organization_id {
        q.push(" AND t.organization_id = ").push_bind(o);
    }
    if let Some(projects) = &scope.project_ids {
        q.push(" AND t.project_id IN ").push_list(projects);
    }
    if let Some(p) = project_id {
        q.push(" AND t.project_id = ").push_bind(p);
    }
    q.push(" AND t.created_at >= ").push_bind(from).push(" AND t.created_at < ").push_bind(to);
    q.push(" ORDER BY t.created_at DESC, t.id LIMIT 100000");
    q.fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok(TrendPoint {
                ticket_id: r.text("id")?,
                created_at: r.int("created_at")?,
                key: r.opt_text("k")?,
                label: r.opt_text("label")?,
            })
        })
        .collect()
}

//! Release management (REQUIREMENTS §5, manual §5.1.4): releases with their changes, stages
//! (plan, checklist, expected and actual results, named signers, sign-off) and status log.
//! A release is written whole: its child rows are replaced on every save.

use crate::directory::Scope;
use crate::lifecycle_log::{self, LogTable};
use crate::page::{Page, PageRequest, fetch_page, like_pattern};
use crate::rows::RowExt;
use crate::sql::Sql;
use crate::{AnyConnection, Result, StoreError};
use serde::Serialize;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ChecklistRow {
    pub text: String,
    pub done_by: Option<String>,
    pub done_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ExpectedRow {
    pub key: String,
    pub description: String,
    pub target: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ActualRow {
    pub key: String,
    pub result: String,
    pub met: bool,
    pub recorded_by: String,
    pub recorded_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct SignerRow {
    pub user_id: String,
    /// For display only (a join), not part of the audit snapshot.
    #[serde(skip)]
    pub display_name: String,
    pub signed_at: Option<i64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct StageRecord {
    /// `build`, `test`, `acceptance` or `deployment`.
    pub stage: String,
    pub planned_start: Option<i64>,
    pub planned_end: Option<i64>,
    pub checklist: Vec<ChecklistRow>,
    pub expected: Vec<ExpectedRow>,
    pub actual: Vec<ActualRow>,
    /// In the order they sign.
    pub signers: Vec<SignerRow>,
    pub signed_off_by: Option<String>,
    pub signed_off_at: Option<i64>,
    pub sign_off_note: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ReleaseRecord {
    pub id: String,
    pub number: String,
    pub project_id: String,
    pub organization_id: String,
    pub title: String,
    pub release_version: String,
    pub description: Option<String>,
    pub status: String,
    pub rollback_plan: Option<String>,
    pub known_issues: Vec<String>,
    pub rollback_outcome: Option<String>,
    pub rollback_notes: Option<String>,
    pub rollback_by: Option<String>,
    pub rollback_at: Option<i64>,
    pub review_summary: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<i64>,
    pub cancellation_reason: Option<String>,
    pub deployed_at: Option<i64>,
    pub status_changed_at: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    pub change_ids: Vec<String>,
    /// Build, test, acceptance and deployment, in that order (empty in list answers).
    pub stages: Vec<StageRecord>,
    #[serde(skip)]
    pub project_code: String,
}

const COLS: &[&str] = &[
    "number",
    "project_id",
    "organization_id",
    "title",
    "release_version",
    "description",
    "status",
    "rollback_plan",
    "known_issues",
    "rollback_outcome",
    "rollback_notes",
    "rollback_by",
    "rollback_at",
    "review_summary",
    "reviewed_by",
    "reviewed_at",
    "cancellation_reason",
    "deployed_at",
    "status_changed_at",
    "created_by",
    "created_at",
    "updated_at",
    "version",
    "id",
];

fn select() -> String {
    let cols: Vec<String> = COLS.iter().map(|c| format!("r.{c} AS {c}")).collect();
    format!("SELECT {}, pr.code AS project_code FROM releases r JOIN projects pr ON pr.id = r.project_id WHERE 1 = 1", cols.join(", "))
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Db(sqlx::Error::Decode(Box::new(e)))
}

fn release(r: &AnyRow) -> Result<ReleaseRecord> {
    Ok(ReleaseRecord {
        id: r.text("id")?,
        number: r.text("number")?,
        project_id: r.text("project_id")?,
        organization_id: r.text("organization_id")?,
        title: r.text("title")?,
        release_version: r.text("release_version")?,
        description: r.opt_text("description")?,
        status: r.text("status")?,
        rollback_plan: r.opt_text("rollback_plan")?,
        known_issues: serde_json::from_str(&r.text("known_issues")?).map_err(json_err)?,
        rollback_outcome: r.opt_text("rollback_outcome")?,
        rollback_notes: r.opt_text("rollback_notes")?,
        rollback_by: r.opt_text("rollback_by")?,
        rollback_at: r.opt_int("rollback_at")?,
        review_summary: r.opt_text("review_summary")?,
        reviewed_by: r.opt_text("reviewed_by")?,
        reviewed_at: r.opt_int("reviewed_at")?,
        cancellation_reason: r.opt_text("cancellation_reason")?,
        deployed_at: r.opt_int("deployed_at")?,
        status_changed_at: r.int("status_changed_at")?,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
        change_ids: vec![],
        stages: vec![],
        project_code: r.text("project_code")?,
    })
}

fn bind(q: &mut Sql, r: &ReleaseRecord, col: &str) {
    match col {
        "id" => q.push_bind(&r.id),
        "number" => q.push_bind(&r.number),
        "project_id" => q.push_bind(&r.project_id),
        "organization_id" => q.push_bind(&r.organization_id),
        "title" => q.push_bind(&r.title),
        "release_version" => q.push_bind(&r.release_version),
        "description" => q.push_bind(r.description.clone()),
        "status" => q.push_bind(&r.status),
        "rollback_plan" => q.push_bind(r.rollback_plan.clone()),
        "known_issues" => q.push_bind(serde_json::to_string(&r.known_issues).unwrap_or_else(|_| "[]".into())),
        "rollback_outcome" => q.push_bind(r.rollback_outcome.clone()),
        "rollback_notes" => q.push_bind(r.rollback_notes.clone()),
        "rollback_by" => q.push_bind(r.rollback_by.clone()),
        "rollback_at" => q.push_bind(r.rollback_at),
        "review_summary" => q.push_bind(r.review_summary.clone()),
        "reviewed_by" => q.push_bind(r.reviewed_by.clone()),
        "reviewed_at" => q.push_bind(r.reviewed_at),
        "cancellation_reason" => q.push_bind(r.cancellation_reason.clone()),
        "deployed_at" => q.push_bind(r.deployed_at),
        "status_changed_at" => q.push_bind(r.status_changed_at),
        "created_by" => q.push_bind(&r.created_by),
        "created_at" => q.push_bind(r.created_at),
        "updated_at" => q.push_bind(r.updated_at),
        "version" => q.push_bind(r.version),
        _ => unreachable!("unknown release column {col}"),
    };
}

/// Inserts a release with its changes and stages.
pub async fn insert_release(conn: &mut AnyConnection, r: &ReleaseRecord) -> Result<()> {
    let mut q = Sql::new(format!("INSERT INTO releases ({}) VALUES (", COLS.join(", ")));
    for (i, col) in COLS.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        bind(&mut q, r, col);
    }
    q.push(")");
    q.execute(conn).await?;
    write_children(conn, r).await
}

/// Writes every changeable column and replaces the child rows if the stored version is still
/// `expected_version`.
pub async fn update_release(conn: &mut AnyConnection, r: &ReleaseRecord, expected_version: i64) -> Result<()> {
    let mut q = Sql::new("UPDATE releases SET ");
    let cols = COLS.iter().filter(|c| !matches!(**c, "id" | "version" | "number" | "created_at" | "created_by"));
    for (i, col) in cols.enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push(format!("{col} = "));
        bind(&mut q, r, col);
    }
    q.push(", version = version + 1 WHERE id = ").push_bind(&r.id).push(" AND version = ").push_bind(expected_version);
    if q.execute(conn).await?.rows_affected() == 0 {
        return Err(StoreError::Stale);
    }
    for table in ["release_changes", "release_stages", "release_checklist_items", "release_results", "release_stage_signers"] {
        let mut q = Sql::new(format!("DELETE FROM {table} WHERE release_id = "));
        q.push_bind(&r.id);
        q.execute(conn).await?;
    }
    write_children(conn, r).await
}

async fn write_children(conn: &mut AnyConnection, r: &ReleaseRecord) -> Result<()> {
    for (i, c) in r.change_ids.iter().enumerate() {
        sqlx::query("INSERT INTO release_changes (release_id, change_id, position) VALUES ($1, $2, $3)")
            .bind(&r.id)
            .bind(c)
            .bind(i as i64)
            .execute(&mut *conn)
            .await?;
    }
    for (pos, s) in r.stages.iter().enumerate() {
        sqlx::query(
            "INSERT INTO release_stages (release_id, stage, position, planned_start, planned_end, signed_off_by, signed_off_at, sign_off_note) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&r.id)
        .bind(&s.stage)
        .bind(pos as i64)
        .bind(s.planned_start)
        .bind(s.planned_end)
        .bind(&s.signed_off_by)
        .bind(s.signed_off_at)
        .bind(&s.sign_off_note)
        .execute(&mut *conn)
        .await?;
        for (i, c) in s.checklist.iter().enumerate() {
            sqlx::query(
                "INSERT INTO release_checklist_items (release_id, stage, position, text, done_by, done_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&r.id)
            .bind(&s.stage)
            .bind(i as i64)
            .bind(&c.text)
            .bind(&c.done_by)
            .bind(c.done_at)
            .execute(&mut *conn)
            .await?;
        }
        for (i, e) in s.expected.iter().enumerate() {
            sqlx::query(
                "INSERT INTO release_results (release_id, stage, kind, result_key, position, description, target) \
                 VALUES ($1, $2, 'expected', $3, $4, $5, $6)",
            )
            .bind(&r.id)
            .bind(&s.stage)
            .bind(&e.key)
            .bind(i as i64)
            .bind(&e.description)
            .bind(&e.target)
            .execute(&mut *conn)
            .await?;
        }
        for (i, a) in s.actual.iter().enumerate() {
            sqlx::query(
                "INSERT INTO release_results (release_id, stage, kind, result_key, position, result, met, recorded_by, recorded_at) \
                 VALUES ($1, $2, 'actual', $3, $4, $5, $6, $7, $8)",
            )
            .bind(&r.id)
            .bind(&s.stage)
            .bind(&a.key)
            .bind(i as i64)
            .bind(&a.result)
            .bind(i64::from(a.met))
            .bind(&a.recorded_by)
            .bind(a.recorded_at)
            .execute(&mut *conn)
            .await?;
        }
        for (i, g) in s.signers.iter().enumerate() {
            sqlx::query(
                "INSERT INTO release_stage_signers (release_id, stage, position, user_id, signed_at, note) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&r.id)
            .bind(&s.stage)
            .bind(i as i64)
            .bind(&g.user_id)
            .bind(g.signed_at)
            .bind(&g.note)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Loads the changes and stages of a release row.
async fn fill(conn: &mut AnyConnection, r: &mut ReleaseRecord) -> Result<()> {
    r.change_ids = sqlx::query("SELECT change_id FROM release_changes WHERE release_id = $1 ORDER BY position")
        .bind(&r.id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| row.text("change_id"))
        .collect::<std::result::Result<_, _>>()?;
    let stages = sqlx::query(
        "SELECT stage, planned_start, planned_end, signed_off_by, signed_off_at, sign_off_note FROM release_stages \
         WHERE release_id = $1 ORDER BY position",
    )
    .bind(&r.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for s in &stages {
        out.push(StageRecord {
            stage: s.text("stage")?,
            planned_start: s.opt_int("planned_start")?,
            planned_end: s.opt_int("planned_end")?,
            signed_off_by: s.opt_text("signed_off_by")?,
            signed_off_at: s.opt_int("signed_off_at")?,
            sign_off_note: s.opt_text("sign_off_note")?,
            ..Default::default()
        });
    }
    let items = sqlx::query("SELECT stage, text, done_by, done_at FROM release_checklist_items WHERE release_id = $1 ORDER BY position")
        .bind(&r.id)
        .fetch_all(&mut *conn)
        .await?;
    for i in &items {
        let stage = i.text("stage")?;
        if let Some(s) = out.iter_mut().find(|s| s.stage == stage) {
            s.checklist.push(ChecklistRow { text: i.text("text")?, done_by: i.opt_text("done_by")?, done_at: i.opt_int("done_at")? });
        }
    }
    let results = sqlx::query(
        "SELECT stage, kind, result_key, description, target, result, met, recorded_by, recorded_at FROM release_results \
         WHERE release_id = $1 ORDER BY position",
    )
    .bind(&r.id)
    .fetch_all(&mut *conn)
    .await?;
    for x in &results {
        let stage = x.text("stage")?;
        let Some(s) = out.iter_mut().find(|s| s.stage == stage) else { continue };
        if x.text("kind")? == "expected" {
            s.expected.push(ExpectedRow {
                key: x.text("result_key")?,
                description: x.opt_text("description")?.unwrap_or_default(),
                target: x.opt_text("target")?.unwrap_or_default(),
            });
        } else {
            s.actual.push(ActualRow {
                key: x.text("result_key")?,
                result: x.opt_text("result")?.unwrap_or_default(),
                met: x.opt_int("met")?.unwrap_or(0) != 0,
                recorded_by: x.opt_text("recorded_by")?.unwrap_or_default(),
                recorded_at: x.opt_int("recorded_at")?.unwrap_or(0),
            });
        }
    }
    let signers = sqlx::query(
        "SELECT g.stage AS stage, g.user_id AS user_id, g.signed_at AS signed_at, g.note AS note, u.display_name AS display_name \
         FROM release_stage_signers g JOIN users u ON u.id = g.user_id WHERE g.release_id = $1 ORDER BY g.position",
    )
    .bind(&r.id)
    .fetch_all(&mut *conn)
    .await?;
    for g in &signers {
        let stage = g.text("stage")?;
        if let Some(s) = out.iter_mut().find(|s| s.stage == stage) {
            s.signers.push(SignerRow {
                user_id: g.text("user_id")?,
                display_name: g.text("display_name")?,
                signed_at: g.opt_int("signed_at")?,
                note: g.opt_text("note")?,
            });
        }
    }
    r.stages = out;
    Ok(())
}

pub async fn get_release(conn: &mut AnyConnection, id: &str) -> Result<Option<ReleaseRecord>> {
    let mut q = Sql::new(select());
    q.push(" AND r.id = ").push_bind(id);
    load_one(conn, q).await
}

pub async fn get_release_by_number(conn: &mut AnyConnection, number: &str) -> Result<Option<ReleaseRecord>> {
    let mut q = Sql::new(select());
    q.push(" AND r.number = ").push_bind(number);
    load_one(conn, q).await
}

async fn load_one(conn: &mut AnyConnection, q: Sql) -> Result<Option<ReleaseRecord>> {
    let Some(mut r) = q.fetch_all(conn).await?.first().map(release).transpose()? else { return Ok(None) };
    fill(conn, &mut r).await?;
    Ok(Some(r))
}

#[derive(Debug, Clone, Default)]
pub struct ReleaseFilter {
    pub statuses: Vec<String>,
    pub project_id: Option<String>,
    /// Matches the title, version or number.
    pub q: Option<String>,
}

/// Releases in the scope, without their stages and changes.
pub async fn list_releases(conn: &mut AnyConnection, scope: &Scope, f: &ReleaseFilter, page: &PageRequest) -> Result<Page<ReleaseRecord>> {
    let mut q = Sql::new(select());
    if let Some(o) = &scope.organization_id {
        q.push(" AND r.organization_id = ").push_bind(o);
    }
    if let Some(projects) = &scope.project_ids {
        q.push(" AND r.project_id IN ").push_list(projects);
    }
    if !f.statuses.is_empty() {
        q.push(" AND r.status IN ").push_list(&f.statuses);
    }
    if let Some(p) = &f.project_id {
        q.push(" AND r.project_id = ").push_bind(p);
    }
    if let Some(text) = f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pat = like_pattern(text);
        q.push(" AND (LOWER(r.title) LIKE ").push_bind(pat.clone()).push(" ESCAPE '\\' OR LOWER(r.number) LIKE ").push_bind(pat.clone());
        q.push(" ESCAPE '\\' OR LOWER(r.release_version) LIKE ").push_bind(pat).push(" ESCAPE '\\')");
    }
    fetch_page(conn, q, "r.id", page, release).await
}

// ---- status log ----

pub type ReleaseStatusRow = lifecycle_log::StatusRow;

const STATUS_LOG: LogTable = LogTable { table: "release_status_log", key: "release_id", note: "reason" };

pub async fn append_status_log(conn: &mut AnyConnection, release_id: &str, e: &ReleaseStatusRow) -> Result<()> {
    lifecycle_log::append(conn, &STATUS_LOG, release_id, e).await
}

pub async fn status_log(conn: &mut AnyConnection, release_id: &str) -> Result<Vec<ReleaseStatusRow>> {
    lifecycle_log::read(conn, &STATUS_LOG, release_id).await
}

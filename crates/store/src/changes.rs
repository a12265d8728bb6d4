//! Change management (REQUIREMENTS §5): requests for change with their affected CIs and status
//! log, approval steps, approvers and votes, delegations, freeze windows, change tasks and
//! standard change templates.

use crate::directory::Scope;
use crate::lifecycle_log::{self, LogTable};
use crate::page::{Page, PageRequest, fetch_page, like_pattern};
use crate::rows::RowExt;
use crate::sql::Sql;
use crate::{AnyConnection, Result, StoreError};
use serde::Serialize;
use sqlx::any::AnyRow;

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Db(sqlx::Error::Decode(Box::new(e)))
}

// ---- changes ----

/// A change row. `names` come from joins, for display only (not part of the audit snapshot).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ChangeRecord {
    pub id: String,
    pub number: String,
    pub project_id: String,
    pub organization_id: String,
    pub change_type: String,
    pub template_id: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub reason: Option<String>,
    pub status: String,
    /// JSON object: question key → answer key.
    pub risk_answers: Option<String>,
    pub risk_score: Option<i64>,
    pub risk_level: Option<String>,
    pub cost_estimate: Option<String>,
    pub implementation_plan: Option<String>,
    pub back_out_plan: Option<String>,
    pub test_plan: Option<String>,
    pub planned_start: Option<i64>,
    pub planned_end: Option<i64>,
    pub team_id: Option<String>,
    pub review_outcome: Option<String>,
    pub review_notes: Option<String>,
    pub review_follow_up: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<i64>,
    /// The reason given with the last status change that needed one.
    pub status_reason: Option<String>,
    pub status_changed_at: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    /// The affected CIs (table `change_cis`).
    pub ci_ids: Vec<String>,
    #[serde(skip)]
    pub names: ChangeNames,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeNames {
    pub project_code: String,
    pub organization_name: String,
    pub team_name: Option<String>,
    pub template_name: Option<String>,
}

const CHANGE_COLS: &[&str] = &[
    "number",
    "project_id",
    "organization_id",
    "change_type",
    "template_id",
    "title",
    "description",
    "category",
    "reason",
    "status",
    "risk_answers",
    "risk_score",
    "risk_level",
    "cost_estimate",
    "implementation_plan",
    "back_out_plan",
    "test_plan",
    "planned_start",
    "planned_end",
    "team_id",
    "review_outcome",
    "review_notes",
    "review_follow_up",
    "reviewed_by",
    "reviewed_at",
    "status_reason",
    "status_changed_at",
    "created_by",
    "created_at",
    "updated_at",
    "version",
    "id",
];

fn change_select() -> String {
    let cols: Vec<String> = CHANGE_COLS.iter().map(|c| format!("c.{c} AS {c}")).collect();
    format!(
        "SELECT {}, pr.code AS project_code, o.name AS organization_name, tm.name AS team_name, tp.name AS template_name \
         FROM changes c JOIN projects pr ON pr.id = c.project_id JOIN organizations o ON o.id = c.organization_id \
         LEFT JOIN teams tm ON tm.id = c.team_id LEFT JOIN change_templates tp ON tp.id = c.template_id WHERE 1 = 1",
        cols.join(", ")
    )
}

fn change(r: &AnyRow) -> Result<ChangeRecord> {
    Ok(ChangeRecord {
        id: r.text("id")?,
        number: r.text("number")?,
        project_id: r.text("project_id")?,
        organization_id: r.text("organization_id")?,
        change_type: r.text("change_type")?,
        template_id: r.opt_text("template_id")?,
        title: r.text("title")?,
        description: r.opt_text("description")?,
        category: r.opt_text("category")?,
        reason: r.opt_text("reason")?,
        status: r.text("status")?,
        risk_answers: r.opt_text("risk_answers")?,
        risk_score: r.opt_int("risk_score")?,
        risk_level: r.opt_text("risk_level")?,
        cost_estimate: r.opt_text("cost_estimate")?,
        implementation_plan: r.opt_text("implementation_plan")?,
        back_out_plan: r.opt_text("back_out_plan")?,
        test_plan: r.opt_text("test_plan")?,
        planned_start: r.opt_int("planned_start")?,
        planned_end: r.opt_int("planned_end")?,
        team_id: r.opt_text("team_id")?,
        review_outcome: r.opt_text("review_outcome")?,
        review_notes: r.opt_text("review_notes")?,
        review_follow_up: r.opt_text("review_follow_up")?,
        reviewed_by: r.opt_text("reviewed_by")?,
        reviewed_at: r.opt_int("reviewed_at")?,
        status_reason: r.opt_text("status_reason")?,
        status_changed_at: r.int("status_changed_at")?,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
        ci_ids: vec![],
        names: ChangeNames {
            project_code: r.text("project_code")?,
            organization_name: r.text("organization_name")?,
            team_name: r.opt_text("team_name")?,
            template_name: r.opt_text("template_name")?,
        },
    })
}

fn bind_change(q: &mut Sql, c: &ChangeRecord, col: &str) {
    match col {
        "number" => q.push_bind(&c.number),
        "project_id" => q.push_bind(&c.project_id),
        "organization_id" => q.push_bind(&c.organization_id),
        "change_type" => q.push_bind(&c.change_type),
        "template_id" => q.push_bind(c.template_id.clone()),
        "title" => q.push_bind(&c.title),
        "description" => q.push_bind(c.description.clone()),
        "category" => q.push_bind(c.category.clone()),
        "reason" => q.push_bind(c.reason.clone()),
        "status" => q.push_bind(&c.status),
        "risk_answers" => q.push_bind(c.risk_answers.clone()),
        "risk_score" => q.push_bind(c.risk_score),
        "risk_level" => q.push_bind(c.risk_level.clone()),
        "cost_estimate" => q.push_bind(c.cost_estimate.clone()),
        "implementation_plan" => q.push_bind(c.implementation_plan.clone()),
        "back_out_plan" => q.push_bind(c.back_out_plan.clone()),
        "test_plan" => q.push_bind(c.test_plan.clone()),
        "planned_start" => q.push_bind(c.planned_start),
        "planned_end" => q.push_bind(c.planned_end),
        "team_id" => q.push_bind(c.team_id.clone()),
        "review_outcome" => q.push_bind(c.review_outcome.clone()),
        "review_notes" => q.push_bind(c.review_notes.clone()),
        "review_follow_up" => q.push_bind(c.review_follow_up.clone()),
        "reviewed_by" => q.push_bind(c.reviewed_by.clone()),
        "reviewed_at" => q.push_bind(c.reviewed_at),
        "status_reason" => q.push_bind(c.status_reason.clone()),
        "status_changed_at" => q.push_bind(c.status_changed_at),
        "created_by" => q.push_bind(&c.created_by),
        "created_at" => q.push_bind(c.created_at),
        "updated_at" => q.push_bind(c.updated_at),
        "version" => q.push_bind(c.version),
        _ => q.push_bind(&c.id),
    };
}

async fn set_cis(conn: &mut AnyConnection, change_id: &str, ci_ids: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM change_cis WHERE change_id = $1").bind(change_id).execute(&mut *conn).await?;
    for ci in ci_ids {
        sqlx::query("INSERT INTO change_cis (change_id, ci_id) VALUES ($1, $2)").bind(change_id).bind(ci).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn with_cis(conn: &mut AnyConnection, mut v: Vec<ChangeRecord>) -> Result<Vec<ChangeRecord>> {
    if v.is_empty() {
        return Ok(v);
    }
    let ids: Vec<String> = v.iter().map(|c| c.id.clone()).collect();
    let mut q = Sql::new("SELECT change_id, ci_id FROM change_cis WHERE change_id IN ");
    q.push_list(&ids).push(" ORDER BY ci_id");
    for r in q.fetch_all(conn).await? {
        let (c, ci) = (r.text("change_id")?, r.text("ci_id")?);
        if let Some(rec) = v.iter_mut().find(|x| x.id == c) {
            rec.ci_ids.push(ci);
        }
    }
    Ok(v)
}

pub async fn insert_change(conn: &mut AnyConnection, c: &ChangeRecord) -> Result<()> {
    let mut q = Sql::new(format!("INSERT INTO changes ({}) VALUES (", CHANGE_COLS.join(", ")));
    for (i, col) in CHANGE_COLS.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        bind_change(&mut q, c, col);
    }
    q.push(")");
    q.execute(conn).await?;
    set_cis(conn, &c.id, &c.ci_ids).await
}

/// Writes every changeable column (and the CI list) if the stored version is still `expected_version`.
pub async fn update_change(conn: &mut AnyConnection, c: &ChangeRecord, expected_version: i64) -> Result<()> {
    let mut q = Sql::new("UPDATE changes SET ");
    let cols = CHANGE_COLS.iter().filter(|c| !matches!(**c, "id" | "version" | "number" | "created_at" | "created_by"));
    for (i, col) in cols.enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push(format!("{col} = "));
        bind_change(&mut q, c, col);
    }
    q.push(", version = version + 1 WHERE id = ").push_bind(&c.id).push(" AND version = ").push_bind(expected_version);
    if q.execute(conn).await?.rows_affected() == 0 {
        return Err(StoreError::Stale);
    }
    set_cis(conn, &c.id, &c.ci_ids).await
}

/// Marks activity (a vote, a task, a linked incident) without changing the version.
pub async fn touch_change(conn: &mut AnyConnection, id: &str, at: i64) -> Result<()> {
    sqlx::query("UPDATE changes SET updated_at = $1 WHERE id = $2").bind(at).bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// The changes of the given ids that exist, in the order of `ids`.
pub async fn changes_by_ids(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<ChangeRecord>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut q = Sql::new(change_select());
    q.push(" AND c.id IN ").push_list(ids);
    let mut v = q.fetch_all(conn).await?.iter().map(change).collect::<Result<Vec<_>>>()?;
    v.sort_by_key(|c| ids.iter().position(|i| *i == c.id));
    with_cis(conn, v).await
}

pub async fn get_change(conn: &mut AnyConnection, id: &str) -> Result<Option<ChangeRecord>> {
    let mut q = Sql::new(change_select());
    q.push(" AND (c.id = ").push_bind(id).push(" OR c.number = ").push_bind(id.to_ascii_uppercase()).push(")");
    let v = q.fetch_all(conn).await?.iter().map(change).collect::<Result<Vec<_>>>()?;
    Ok(with_cis(conn, v).await?.into_iter().next())
}

#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub statuses: Vec<String>,
    pub change_type: Option<String>,
    pub project_id: Option<String>,
    pub risk_level: Option<String>,
    /// Changes touching this CI.
    pub ci_id: Option<String>,
    /// Text in the number or the title.
    pub q: Option<String>,
}

fn push_scope(q: &mut Sql, scope: &Scope) {
    if let Some(o) = &scope.organization_id {
        q.push(" AND c.organization_id = ").push_bind(o);
    }
    if let Some(projects) = &scope.project_ids {
        q.push(" AND c.project_id IN ").push_list(projects);
    }
}

pub async fn list_changes(conn: &mut AnyConnection, scope: &Scope, f: &ChangeFilter, page: &PageRequest) -> Result<Page<ChangeRecord>> {
    let mut q = Sql::new(change_select());
    push_scope(&mut q, scope);
    if !f.statuses.is_empty() {
        q.push(" AND c.status IN ").push_list(&f.statuses);
    }
    for (col, v) in [("c.change_type", &f.change_type), ("c.project_id", &f.project_id), ("c.risk_level", &f.risk_level)] {
        if let Some(v) = v {
            q.push(format!(" AND {col} = ")).push_bind(v);
        }
    }
    if let Some(ci) = &f.ci_id {
        q.push(" AND c.id IN (SELECT change_id FROM change_cis WHERE ci_id = ").push_bind(ci).push(")");
    }
    if let Some(text) = f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pat = like_pattern(text);
        q.push(" AND (LOWER(c.title) LIKE ")
            .push_bind(pat.clone())
            .push(" ESCAPE '\\' OR LOWER(c.number) LIKE ")
            .push_bind(pat)
            .push(" ESCAPE '\\')");
    }
    let page = fetch_page(conn, q, "c.id", page, change).await?;
    Ok(Page { items: with_cis(conn, page.items).await?, next_cursor: page.next_cursor })
}

/// Changes with a planned window overlapping `[from, to)` in any of `statuses`, in `scope`
/// (`None`: every project), by start.
pub async fn changes_in_window(
    conn: &mut AnyConnection,
    scope: Option<&Scope>,
    from: i64,
    to: i64,
    statuses: &[String],
) -> Result<Vec<ChangeRecord>> {
    let mut q = Sql::new(change_select());
    if let Some(s) = scope {
        push_scope(&mut q, s);
    }
    q.push(" AND c.planned_start < ").push_bind(to).push(" AND c.planned_end > ").push_bind(from);
    if !statuses.is_empty() {
        q.push(" AND c.status IN ").push_list(statuses);
    }
    q.push(" ORDER BY c.planned_start, c.number");
    let v = q.fetch_all(conn).await?.iter().map(change).collect::<Result<Vec<_>>>()?;
    with_cis(conn, v).await
}

/// The changes in `statuses` that list the CI.
pub async fn changes_of_ci(conn: &mut AnyConnection, ci_id: &str, statuses: &[String]) -> Result<Vec<ChangeRecord>> {
    let mut q = Sql::new(change_select());
    q.push(" AND c.id IN (SELECT change_id FROM change_cis WHERE ci_id = ").push_bind(ci_id).push(")");
    if !statuses.is_empty() {
        q.push(" AND c.status IN ").push_list(statuses);
    }
    q.push(" ORDER BY c.number");
    let v = q.fetch_all(conn).await?.iter().map(change).collect::<Result<Vec<_>>>()?;
    with_cis(conn, v).await
}

// ---- status log ----

pub type ChangeStatusRow = lifecycle_log::StatusRow;

const STATUS_LOG: LogTable = LogTable { table: "change_status_log", key: "change_id", note: "reason" };

pub async fn append_status_log(conn: &mut AnyConnection, change_id: &str, e: &ChangeStatusRow) -> Result<()> {
    lifecycle_log::append(conn, &STATUS_LOG, change_id, e).await
}

pub async fn status_log(conn: &mut AnyConnection, change_id: &str) -> Result<Vec<ChangeStatusRow>> {
    lifecycle_log::read(conn, &STATUS_LOG, change_id).await
}

// ---- approval ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApprovalStepRow {
    pub seq: i64,
    pub name: String,
    /// `all`, `any` or `at_least`.
    pub quorum_rule: String,
    pub quorum_n: Option<i64>,
    /// `cab` or `customer`.
    pub source: String,
    /// (`user` or `group`, id)
    pub approvers: Vec<(String, String)>,
}

pub async fn set_approval_steps(conn: &mut AnyConnection, change_id: &str, steps: &[ApprovalStepRow]) -> Result<()> {
    sqlx::query("DELETE FROM change_approvers WHERE change_id = $1").bind(change_id).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM change_approval_steps WHERE change_id = $1").bind(change_id).execute(&mut *conn).await?;
    for s in steps {
        sqlx::query(
            "INSERT INTO change_approval_steps (change_id, seq, name, quorum_rule, quorum_n, source) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(change_id)
        .bind(s.seq)
        .bind(&s.name)
        .bind(&s.quorum_rule)
        .bind(s.quorum_n)
        .bind(&s.source)
        .execute(&mut *conn)
        .await?;
        for (kind, id) in &s.approvers {
            sqlx::query("INSERT INTO change_approvers (change_id, step_seq, approver_kind, approver_id) VALUES ($1, $2, $3, $4)")
                .bind(change_id)
                .bind(s.seq)
                .bind(kind)
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

pub async fn approval_steps(conn: &mut AnyConnection, change_id: &str) -> Result<Vec<ApprovalStepRow>> {
    let rows = sqlx::query("SELECT seq, name, quorum_rule, quorum_n, source FROM change_approval_steps WHERE change_id = $1 ORDER BY seq")
        .bind(change_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut steps = rows
        .iter()
        .map(|r| {
            Ok(ApprovalStepRow {
                seq: r.int("seq")?,
                name: r.text("name")?,
                quorum_rule: r.text("quorum_rule")?,
                quorum_n: r.opt_int("quorum_n")?,
                source: r.text("source")?,
                approvers: vec![],
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let rows = sqlx::query(
        "SELECT step_seq, approver_kind, approver_id FROM change_approvers WHERE change_id = $1 ORDER BY step_seq, approver_kind, approver_id",
    )
    .bind(change_id)
    .fetch_all(&mut *conn)
    .await?;
    for r in rows {
        let seq = r.int("step_seq")?;
        if let Some(s) = steps.iter_mut().find(|s| s.seq == seq) {
            s.approvers.push((r.text("approver_kind")?, r.text("approver_id")?));
        }
    }
    Ok(steps)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VoteRecord {
    pub id: String,
    pub step_seq: i64,
    pub approver_kind: String,
    pub approver_id: String,
    pub actor_id: String,
    /// `approve` or `reject`.
    pub verdict: String,
    pub reason: Option<String>,
    pub at: i64,
    /// For display (join).
    pub actor_name: Option<String>,
}

pub async fn insert_vote(conn: &mut AnyConnection, change_id: &str, v: &VoteRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO change_votes (id, change_id, step_seq, approver_kind, approver_id, actor_id, verdict, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&v.id)
    .bind(change_id)
    .bind(v.step_seq)
    .bind(&v.approver_kind)
    .bind(&v.approver_id)
    .bind(&v.actor_id)
    .bind(&v.verdict)
    .bind(&v.reason)
    .bind(v.at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn votes(conn: &mut AnyConnection, change_id: &str) -> Result<Vec<VoteRecord>> {
    let rows = sqlx::query(
        "SELECT v.id AS id, v.step_seq AS step_seq, v.approver_kind AS approver_kind, v.approver_id AS approver_id, v.actor_id AS actor_id, \
         v.verdict AS verdict, v.reason AS reason, v.at AS at, u.display_name AS actor_name \
         FROM change_votes v LEFT JOIN users u ON u.id = v.actor_id WHERE v.change_id = $1 ORDER BY v.at, v.id",
    )
    .bind(change_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(VoteRecord {
                id: r.text("id")?,
                step_seq: r.int("step_seq")?,
                approver_kind: r.text("approver_kind")?,
                approver_id: r.text("approver_id")?,
                actor_id: r.text("actor_id")?,
                verdict: r.text("verdict")?,
                reason: r.opt_text("reason")?,
                at: r.int("at")?,
                actor_name: r.opt_text("actor_name")?,
            })
        })
        .collect()
}

/// Forgets the votes (a change sent back to draft is approved afresh).
pub async fn clear_votes(conn: &mut AnyConnection, change_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM change_votes WHERE change_id = $1").bind(change_id).execute(&mut *conn).await?;
    Ok(())
}

/// The teams `user_id` is a member of, and the organisation of a contact, as approver groups
/// (`organization:<id>`).
pub async fn approver_groups_of(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = sqlx::query("SELECT team_id FROM team_members WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.text("team_id"))
        .collect::<std::result::Result<_, _>>()?;
    let org =
        sqlx::query("SELECT organization_id FROM users WHERE id = $1 AND kind = 'contact'").bind(user_id).fetch_all(&mut *conn).await?;
    for r in org {
        if let Some(o) = r.opt_text("organization_id")? {
            out.push(format!("organization:{o}"));
        }
    }
    Ok(out)
}

// ---- delegations ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DelegationRecord {
    pub id: String,
    pub delegator_id: String,
    pub delegate_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub created_by: String,
    pub created_at: i64,
}

fn delegation(r: &AnyRow) -> Result<DelegationRecord> {
    Ok(DelegationRecord {
        id: r.text("id")?,
        delegator_id: r.text("delegator_id")?,
        delegate_id: r.text("delegate_id")?,
        starts_at: r.int("starts_at")?,
        ends_at: r.int("ends_at")?,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
    })
}

pub async fn insert_delegation(conn: &mut AnyConnection, d: &DelegationRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO change_delegations (id, delegator_id, delegate_id, starts_at, ends_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&d.id)
    .bind(&d.delegator_id)
    .bind(&d.delegate_id)
    .bind(d.starts_at)
    .bind(d.ends_at)
    .bind(&d.created_by)
    .bind(d.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Delegations to or from `user_id` that have not ended at `now`.
pub async fn delegations_of(conn: &mut AnyConnection, user_id: &str, now: i64) -> Result<Vec<DelegationRecord>> {
    let rows = sqlx::query(
        "SELECT id, delegator_id, delegate_id, starts_at, ends_at, created_by, created_at FROM change_delegations \
         WHERE (delegate_id = $1 OR delegator_id = $2) AND ends_at > $3 ORDER BY starts_at, id",
    )
    .bind(user_id)
    .bind(user_id)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(delegation).collect()
}

// ---- freeze windows ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FreezeRecord {
    pub id: String,
    pub name: String,
    pub starts_at: i64,
    pub ends_at: i64,
    /// Empty: every CI.
    pub ci_ids: Vec<String>,
    pub created_by: String,
    pub created_at: i64,
}

pub async fn insert_freeze(conn: &mut AnyConnection, f: &FreezeRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO change_freezes (id, name, starts_at, ends_at, ci_ids, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&f.id)
    .bind(&f.name)
    .bind(f.starts_at)
    .bind(f.ends_at)
    .bind(serde_json::to_string(&f.ci_ids).map_err(json_err)?)
    .bind(&f.created_by)
    .bind(f.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete_freeze(conn: &mut AnyConnection, id: &str) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM change_freezes WHERE id = $1").bind(id).execute(&mut *conn).await?.rows_affected() > 0)
}

pub async fn get_freeze(conn: &mut AnyConnection, id: &str) -> Result<Option<FreezeRecord>> {
    let rows = sqlx::query("SELECT id, name, starts_at, ends_at, ci_ids, created_by, created_at FROM change_freezes WHERE id = $1")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    rows.first().map(freeze).transpose()
}

fn freeze(r: &AnyRow) -> Result<FreezeRecord> {
    Ok(FreezeRecord {
        id: r.text("id")?,
        name: r.text("name")?,
        starts_at: r.int("starts_at")?,
        ends_at: r.int("ends_at")?,
        ci_ids: serde_json::from_str(&r.text("ci_ids")?).map_err(json_err)?,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
    })
}

/// Freezes overlapping `[from, to)`, by start.
pub async fn freezes_in_window(conn: &mut AnyConnection, from: i64, to: i64) -> Result<Vec<FreezeRecord>> {
    let rows = sqlx::query(
        "SELECT id, name, starts_at, ends_at, ci_ids, created_by, created_at FROM change_freezes \
         WHERE starts_at < $1 AND ends_at > $2 ORDER BY starts_at, id",
    )
    .bind(to)
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(freeze).collect()
}

// ---- tasks ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskRecord {
    pub id: String,
    pub change_id: String,
    pub seq: i64,
    pub title: String,
    pub team_id: Option<String>,
    /// `open` or `done`.
    pub status: String,
    pub done_at: Option<i64>,
    pub done_by: Option<String>,
    pub created_at: i64,
    /// For display (join).
    pub team_name: Option<String>,
}

pub async fn insert_task(conn: &mut AnyConnection, t: &TaskRecord) -> Result<TaskRecord> {
    let seq = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS n FROM change_tasks WHERE change_id = $1")
        .bind(&t.change_id)
        .fetch_one(&mut *conn)
        .await?
        .int("n")?
        + 1;
    sqlx::query("INSERT INTO change_tasks (id, change_id, seq, title, team_id, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&t.id)
        .bind(&t.change_id)
        .bind(seq)
        .bind(&t.title)
        .bind(&t.team_id)
        .bind(&t.status)
        .bind(t.created_at)
        .execute(&mut *conn)
        .await?;
    Ok(TaskRecord { seq, ..t.clone() })
}

pub async fn complete_task(conn: &mut AnyConnection, id: &str, by: &str, at: i64) -> Result<bool> {
    let n = sqlx::query("UPDATE change_tasks SET status = 'done', done_at = $1, done_by = $2 WHERE id = $3 AND status = 'open'")
        .bind(at)
        .bind(by)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n > 0)
}

pub async fn tasks(conn: &mut AnyConnection, change_id: &str) -> Result<Vec<TaskRecord>> {
    let rows = sqlx::query(
        "SELECT k.id AS id, k.change_id AS change_id, k.seq AS seq, k.title AS title, k.team_id AS team_id, k.status AS status, \
         k.done_at AS done_at, k.done_by AS done_by, k.created_at AS created_at, t.name AS team_name \
         FROM change_tasks k LEFT JOIN teams t ON t.id = k.team_id WHERE k.change_id = $1 ORDER BY k.seq",
    )
    .bind(change_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TaskRecord {
                id: r.text("id")?,
                change_id: r.text("change_id")?,
                seq: r.int("seq")?,
                title: r.text("title")?,
                team_id: r.opt_text("team_id")?,
                status: r.text("status")?,
                done_at: r.opt_int("done_at")?,
                done_by: r.opt_text("done_by")?,
                created_at: r.int("created_at")?,
                team_name: r.opt_text("team_name")?,
            })
        })
        .collect()
}

// ---- standard change templates ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TemplateRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub implementation_plan: String,
    pub back_out_plan: String,
    pub risk_level: String,
    pub approved_by: String,
    pub approved_at: i64,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

fn template(r: &AnyRow) -> Result<TemplateRecord> {
    Ok(TemplateRecord {
        id: r.text("id")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        implementation_plan: r.text("implementation_plan")?,
        back_out_plan: r.text("back_out_plan")?,
        risk_level: r.text("risk_level")?,
        approved_by: r.text("approved_by")?,
        approved_at: r.int("approved_at")?,
        active: r.flag("active")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

const TEMPLATE_SELECT: &str = "SELECT id, name, description, implementation_plan, back_out_plan, risk_level, approved_by, approved_at, active, \
     created_at, updated_at, version FROM change_templates";

pub async fn insert_template(conn: &mut AnyConnection, t: &TemplateRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO change_templates (id, name, description, implementation_plan, back_out_plan, risk_level, approved_by, approved_at, \
         active, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&t.id)
    .bind(&t.name)
    .bind(&t.description)
    .bind(&t.implementation_plan)
    .bind(&t.back_out_plan)
    .bind(&t.risk_level)
    .bind(&t.approved_by)
    .bind(t.approved_at)
    .bind(i64::from(t.active))
    .bind(t.created_at)
    .bind(t.updated_at)
    .bind(t.version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_template_active(conn: &mut AnyConnection, id: &str, active: bool, at: i64, expected_version: i64) -> Result<()> {
    let n = sqlx::query("UPDATE change_templates SET active = $1, updated_at = $2, version = version + 1 WHERE id = $3 AND version = $4")
        .bind(i64::from(active))
        .bind(at)
        .bind(id)
        .bind(expected_version)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if n == 0 { Err(StoreError::Stale) } else { Ok(()) }
}

pub async fn get_template(conn: &mut AnyConnection, id: &str) -> Result<Option<TemplateRecord>> {
    let mut q = Sql::new(TEMPLATE_SELECT);
    q.push(" WHERE id = ").push_bind(id);
    q.fetch_all(conn).await?.first().map(template).transpose()
}

pub async fn list_templates(conn: &mut AnyConnection, active_only: bool) -> Result<Vec<TemplateRecord>> {
    let mut q = Sql::new(TEMPLATE_SELECT);
    q.push(if active_only { " WHERE active = 1 ORDER BY name" } else { " ORDER BY name" });
    q.fetch_all(conn).await?.iter().map(template).collect()
}

/// Whether any active SLA of the project asks for the customer's approval of changes.
pub async fn customer_approves_changes(conn: &mut AnyConnection, project_id: &str) -> Result<bool> {
    let n = sqlx::query("SELECT COUNT(*) AS n FROM slas WHERE project_id = $1 AND status = 'active' AND change_approval_by_customer = 1")
        .bind(project_id)
        .fetch_one(&mut *conn)
        .await?
        .int("n")?;
    Ok(n > 0)
}

/// Sets the SLA's flag that the customer approves the project's changes.
pub async fn set_customer_approval(conn: &mut AnyConnection, sla_id: &str, on: bool) -> Result<bool> {
    let n = sqlx::query("UPDATE slas SET change_approval_by_customer = $1 WHERE id = $2")
        .bind(i64::from(on))
        .bind(sla_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Replaces a template's texts and risk level (optimistic on `expected_version`).
pub async fn update_template(conn: &mut AnyConnection, t: &TemplateRecord, expected_version: i64) -> Result<()> {
    let n = sqlx::query(
        "UPDATE change_templates SET name = $1, description = $2, implementation_plan = $3, back_out_plan = $4, risk_level = $5, \
         approved_by = $6, approved_at = $7, updated_at = $8, version = version + 1 WHERE id = $9 AND version = $10",
    )
    .bind(&t.name)
    .bind(&t.description)
    .bind(&t.implementation_plan)
    .bind(&t.back_out_plan)
    .bind(&t.risk_level)
    .bind(&t.approved_by)
    .bind(t.approved_at)
    .bind(t.updated_at)
    .bind(&t.id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n == 0 { Err(StoreError::Stale) } else { Ok(()) }
}

/// Moves a freeze's end (ending it early).
pub async fn set_freeze_end(conn: &mut AnyConnection, id: &str, ends_at: i64) -> Result<bool> {
    Ok(sqlx::query("UPDATE change_freezes SET ends_at = $1 WHERE id = $2")
        .bind(ends_at)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0)
}

/// Changes in `submitted` or `assessed` with any of these users or groups among the approvers
/// of one of their steps.
pub async fn changes_awaiting(conn: &mut AnyConnection, users: &[String], groups: &[String]) -> Result<Vec<String>> {
    let mut q = Sql::new(
        "SELECT DISTINCT a.change_id FROM change_approvers a JOIN changes c ON c.id = a.change_id \
         WHERE c.status IN ('submitted', 'assessed') AND ((a.approver_kind = 'user' AND a.approver_id IN ",
    );
    q.push_list(users).push(") OR (a.approver_kind = 'group' AND a.approver_id IN ").push_list(groups).push("))");
    q.fetch_all(conn).await?.iter().map(|r| r.text("change_id")).collect::<std::result::Result<_, _>>().map_err(Into::into)
}

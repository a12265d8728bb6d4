//! Customer organisations, resolver teams and service projects with their tailoring: the
//! structure that scopes every process record (§2.1.4).

use crate::page::{Page, PageRequest, fetch_page, like_pattern};
use crate::rows::RowExt;
use crate::{AnyConnection, Result, StoreError};
use serde::Serialize;
use sqlx::any::AnyRow;

// ---- organisations ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OrganizationRecord {
    pub id: String,
    pub name: String,
    pub code: String,
    pub description: Option<String>,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

const ORG_COLS: &str = "id, name, code, description, active, created_at, updated_at, version";

fn org(r: &AnyRow) -> Result<OrganizationRecord> {
    Ok(OrganizationRecord {
        id: r.text("id")?,
        name: r.text("name")?,
        code: r.text("code")?,
        description: r.opt_text("description")?,
        active: r.flag("active")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

pub async fn insert_organization(conn: &mut AnyConnection, o: &OrganizationRecord) -> Result<()> {
    sqlx::query("INSERT INTO organizations (id, name, code, description, active, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $6, 1)")
        .bind(&o.id)
        .bind(&o.name)
        .bind(&o.code)
        .bind(&o.description)
        .bind(o.active as i64)
        .bind(o.created_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn update_organization(conn: &mut AnyConnection, o: &OrganizationRecord, expected_version: i64) -> Result<()> {
    let r = sqlx::query("UPDATE organizations SET name = $1, code = $2, description = $3, active = $4, updated_at = $5, version = version + 1 WHERE id = $6 AND version = $7")
        .bind(&o.name)
        .bind(&o.code)
        .bind(&o.description)
        .bind(o.active as i64)
        .bind(o.updated_at)
        .bind(&o.id)
        .bind(expected_version)
        .execute(&mut *conn)
        .await?;
    if r.rows_affected() == 0 { Err(StoreError::Stale) } else { Ok(()) }
}

pub async fn get_organization(conn: &mut AnyConnection, id: &str) -> Result<Option<OrganizationRecord>> {
    let q = format!("SELECT {ORG_COLS} FROM organizations WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await?.map(|r| org(&r)).transpose()
}

/// Scope for lists: `None` sees everything; staff see organisations of their projects; a
/// contact sees only their own organisation.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub project_ids: Option<Vec<String>>,
    pub organization_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct OrgFilter {
    pub q: Option<String>,
    pub active: Option<bool>,
}

fn push_in(q: &mut crate::sql::Sql, values: &[String]) {
    q.push_list(values);
}

pub async fn list_organizations(
    conn: &mut AnyConnection,
    scope: &Scope,
    f: &OrgFilter,
    p: &PageRequest,
) -> Result<Page<OrganizationRecord>> {
    let mut q = crate::sql::Sql::new(format!("SELECT {ORG_COLS} FROM organizations WHERE 1 = 1"));
    if let Some(o) = &scope.organization_id {
        q.push(" AND id = ").push_bind(o.clone());
    }
    if let Some(projects) = &scope.project_ids {
        q.push(" AND id IN (SELECT organization_id FROM projects WHERE id IN ");
        push_in(&mut q, projects);
        q.push(")");
    }
    if let Some(a) = f.active {
        q.push(" AND active = ").push_bind(a as i64);
    }
    if let Some(text) = f.q.as_deref().filter(|s| !s.trim().is_empty()) {
        let pat = like_pattern(text.trim());
        q.push(" AND (LOWER(name) LIKE ")
            .push_bind(pat.clone())
            .push(" ESCAPE '\\' OR LOWER(code) LIKE ")
            .push_bind(pat)
            .push(" ESCAPE '\\')");
    }
    fetch_page(conn, q, "id", p, org).await
}

pub async fn organization_project_ids(conn: &mut AnyConnection, org_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM projects WHERE organization_id = $1").bind(org_id).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| r.text("id").map_err(Into::into)).collect()
}

// ---- teams ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TeamRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub email: Option<String>,
    pub lead_user_id: Option<String>,
    pub active: bool,
    pub member_ids: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

const TEAM_COLS: &str = "id, name, description, email, lead_user_id, active, created_at, updated_at, version";

fn team(r: &AnyRow) -> Result<TeamRecord> {
    Ok(TeamRecord {
        id: r.text("id")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        email: r.opt_text("email")?,
        lead_user_id: r.opt_text("lead_user_id")?,
        active: r.flag("active")?,
        member_ids: vec![],
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

async fn team_members(conn: &mut AnyConnection, mut t: TeamRecord) -> Result<TeamRecord> {
    fill_team_members(conn, std::slice::from_mut(&mut t)).await?;
    Ok(t)
}

/// The members of many teams in one statement, each team's by user id.
async fn fill_team_members(conn: &mut AnyConnection, teams: &mut [TeamRecord]) -> Result<()> {
    if teams.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = teams.iter().map(|t| t.id.clone()).collect();
    let mut members = crate::sql::grouped(conn, "SELECT team_id AS k, user_id AS v FROM team_members WHERE team_id IN ", &ids).await?;
    for t in teams {
        t.member_ids = members.remove(&t.id).unwrap_or_default();
    }
    Ok(())
}

async fn set_team_members(conn: &mut AnyConnection, team_id: &str, members: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM team_members WHERE team_id = $1").bind(team_id).execute(&mut *conn).await?;
    for m in members {
        sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)").bind(team_id).bind(m).execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn insert_team(conn: &mut AnyConnection, t: &TeamRecord) -> Result<()> {
    sqlx::query("INSERT INTO teams (id, name, description, email, lead_user_id, active, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1)")
        .bind(&t.id)
        .bind(&t.name)
        .bind(&t.description)
        .bind(&t.email)
        .bind(&t.lead_user_id)
        .bind(t.active as i64)
        .bind(t.created_at)
        .execute(&mut *conn)
        .await?;
    set_team_members(conn, &t.id, &t.member_ids).await
}

pub async fn update_team(conn: &mut AnyConnection, t: &TeamRecord, expected_version: i64) -> Result<()> {
    let r = sqlx::query("UPDATE teams SET name = $1, description = $2, email = $3, lead_user_id = $4, active = $5, updated_at = $6, version = version + 1 WHERE id = $7 AND version = $8")
        .bind(&t.name)
        .bind(&t.description)
        .bind(&t.email)
        .bind(&t.lead_user_id)
        .bind(t.active as i64)
        .bind(t.updated_at)
        .bind(&t.id)
        .bind(expected_version)
        .execute(&mut *conn)
        .await?;
    if r.rows_affected() == 0 {
        return Err(StoreError::Stale);
    }
    set_team_members(conn, &t.id, &t.member_ids).await
}

pub async fn get_team(conn: &mut AnyConnection, id: &str) -> Result<Option<TeamRecord>> {
    let q = format!("SELECT {TEAM_COLS} FROM teams WHERE id = $1");
    match sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await? {
        Some(r) => Ok(Some(team_members(conn, team(&r)?).await?)),
        None => Ok(None),
    }
}

pub async fn list_teams(conn: &mut AnyConnection, text: Option<&str>, p: &PageRequest) -> Result<Page<TeamRecord>> {
    let mut q = crate::sql::Sql::new(format!("SELECT {TEAM_COLS} FROM teams WHERE 1 = 1"));
    if let Some(text) = text.filter(|s| !s.trim().is_empty()) {
        q.push(" AND LOWER(name) LIKE ").push_bind(like_pattern(text.trim())).push(" ESCAPE '\\'");
    }
    let mut page = fetch_page(conn, q, "id", p, team).await?;
    fill_team_members(conn, &mut page.items).await?;
    Ok(page)
}

/// The active teams, by name: id and name (the options of every team select).
pub async fn team_choices(conn: &mut AnyConnection) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT id, name FROM teams WHERE active = 1 ORDER BY name, id").fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((r.text("id")?, r.text("name")?))).collect()
}

// ---- service projects ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProjectRecord {
    pub id: String,
    pub code: String,
    pub name: String,
    pub organization_id: String,
    pub manager_user_id: Option<String>,
    pub description: Option<String>,
    pub starts_on: Option<String>,
    pub ends_on: Option<String>,
    pub status: String,
    pub member_ids: Vec<String>,
    /// Tailorable processes switched off for this project.
    pub disabled_processes: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

const PROJECT_COLS: &str =
    "id, code, name, organization_id, manager_user_id, description, starts_on, ends_on, status, created_at, updated_at, version";

fn project(r: &AnyRow) -> Result<ProjectRecord> {
    Ok(ProjectRecord {
        id: r.text("id")?,
        code: r.text("code")?,
        name: r.text("name")?,
        organization_id: r.text("organization_id")?,
        manager_user_id: r.opt_text("manager_user_id")?,
        description: r.opt_text("description")?,
        starts_on: r.opt_text("starts_on")?,
        ends_on: r.opt_text("ends_on")?,
        status: r.text("status")?,
        member_ids: vec![],
        disabled_processes: vec![],
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

async fn project_details(conn: &mut AnyConnection, mut p: ProjectRecord) -> Result<ProjectRecord> {
    fill_project_details(conn, std::slice::from_mut(&mut p)).await?;
    Ok(p)
}

/// The members (by user id) and switched-off processes (by name) of many projects, in two
/// statements.
async fn fill_project_details(conn: &mut AnyConnection, projects: &mut [ProjectRecord]) -> Result<()> {
    if projects.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = projects.iter().map(|p| p.id.clone()).collect();
    let mut members =
        crate::sql::grouped(conn, "SELECT project_id AS k, user_id AS v FROM project_members WHERE project_id IN ", &ids).await?;
    let mut disabled =
        crate::sql::grouped(conn, "SELECT project_id AS k, process AS v FROM project_processes WHERE enabled = 0 AND project_id IN ", &ids)
            .await?;
    for p in projects {
        p.member_ids = members.remove(&p.id).unwrap_or_default();
        p.disabled_processes = disabled.remove(&p.id).unwrap_or_default();
    }
    Ok(())
}

async fn set_project_members(conn: &mut AnyConnection, project_id: &str, members: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM project_members WHERE project_id = $1").bind(project_id).execute(&mut *conn).await?;
    for m in members {
        sqlx::query("INSERT INTO project_members (project_id, user_id) VALUES ($1, $2)")
            .bind(project_id)
            .bind(m)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn insert_project(conn: &mut AnyConnection, p: &ProjectRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO projects (id, code, name, organization_id, manager_user_id, description, starts_on, ends_on, status, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 1)",
    )
    .bind(&p.id)
    .bind(&p.code)
    .bind(&p.name)
    .bind(&p.organization_id)
    .bind(&p.manager_user_id)
    .bind(&p.description)
    .bind(&p.starts_on)
    .bind(&p.ends_on)
    .bind(&p.status)
    .bind(p.created_at)
    .execute(&mut *conn)
    .await?;
    set_project_members(conn, &p.id, &p.member_ids).await
}

pub async fn update_project(conn: &mut AnyConnection, p: &ProjectRecord, expected_version: i64) -> Result<()> {
    let r = sqlx::query(
        "UPDATE projects SET code = $1, name = $2, organization_id = $3, manager_user_id = $4, description = $5, starts_on = $6, ends_on = $7, status = $8, updated_at = $9, version = version + 1 \
         WHERE id = $10 AND version = $11",
    )
    .bind(&p.code)
    .bind(&p.name)
    .bind(&p.organization_id)
    .bind(&p.manager_user_id)
    .bind(&p.description)
    .bind(&p.starts_on)
    .bind(&p.ends_on)
    .bind(&p.status)
    .bind(p.updated_at)
    .bind(&p.id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Err(StoreError::Stale);
    }
    set_project_members(conn, &p.id, &p.member_ids).await
}

/// Records a tailoring decision for one process (who, when, why).
pub async fn set_process(
    conn: &mut AnyConnection,
    project_id: &str,
    process: &str,
    enabled: bool,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO project_processes (project_id, process, enabled, reason, changed_by, changed_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (project_id, process) DO UPDATE SET enabled = excluded.enabled, reason = excluded.reason, changed_by = excluded.changed_by, changed_at = excluded.changed_at",
    )
    .bind(project_id)
    .bind(process)
    .bind(enabled as i64)
    .bind(reason)
    .bind(actor)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct TailoringDecision {
    pub process: String,
    pub enabled: bool,
    pub reason: String,
    pub changed_by: String,
    pub changed_at: i64,
}

pub async fn tailoring(conn: &mut AnyConnection, project_id: &str) -> Result<Vec<TailoringDecision>> {
    let rows = sqlx::query(
        "SELECT process, enabled, reason, changed_by, changed_at FROM project_processes WHERE project_id = $1 ORDER BY process",
    )
    .bind(project_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TailoringDecision {
                process: r.text("process")?,
                enabled: r.flag("enabled")?,
                reason: r.text("reason")?,
                changed_by: r.text("changed_by")?,
                changed_at: r.int("changed_at")?,
            })
        })
        .collect()
}

pub async fn get_project(conn: &mut AnyConnection, id: &str) -> Result<Option<ProjectRecord>> {
    let q = format!("SELECT {PROJECT_COLS} FROM projects WHERE id = $1");
    match sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await? {
        Some(r) => Ok(Some(project_details(conn, project(&r)?).await?)),
        None => Ok(None),
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProjectFilter {
    pub q: Option<String>,
    pub organization_id: Option<String>,
    pub status: Option<String>,
}

pub async fn list_projects(conn: &mut AnyConnection, scope: &Scope, f: &ProjectFilter, p: &PageRequest) -> Result<Page<ProjectRecord>> {
    let mut q = crate::sql::Sql::new(format!("SELECT {PROJECT_COLS} FROM projects WHERE 1 = 1"));
    if let Some(o) = &scope.organization_id {
        q.push(" AND organization_id = ").push_bind(o.clone());
    }
    if let Some(projects) = &scope.project_ids {
        q.push(" AND id IN ");
        push_in(&mut q, projects);
    }
    if let Some(o) = &f.organization_id {
        q.push(" AND organization_id = ").push_bind(o.clone());
    }
    if let Some(s) = &f.status {
        q.push(" AND status = ").push_bind(s.clone());
    }
    if let Some(text) = f.q.as_deref().filter(|s| !s.trim().is_empty()) {
        let pat = like_pattern(text.trim());
        q.push(" AND (LOWER(name) LIKE ")
            .push_bind(pat.clone())
            .push(" ESCAPE '\\' OR LOWER(code) LIKE ")
            .push_bind(pat)
            .push(" ESCAPE '\\')");
    }
    let mut page = fetch_page(conn, q, "id", p, project).await?;
    fill_project_details(conn, &mut page.items).await?;
    Ok(page)
}

/// An active project as the project selects list it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectChoice {
    pub id: String,
    pub code: String,
    pub name: String,
    pub organization_id: String,
}

/// Every active project, by code (whoever reads them filters by scope).
pub async fn project_choices(conn: &mut AnyConnection) -> Result<Vec<ProjectChoice>> {
    let rows = sqlx::query("SELECT id, code, name, organization_id FROM projects WHERE status = 'active' ORDER BY code, id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ProjectChoice {
                id: r.text("id")?,
                code: r.text("code")?,
                name: r.text("name")?,
                organization_id: r.text("organization_id")?,
            })
        })
        .collect()
}

/// The projects a staff member belongs to, as manager or member: their scope.
pub async fn projects_of_user(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT project_id AS id FROM project_members WHERE user_id = $1 UNION SELECT id FROM projects WHERE manager_user_id = $1",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| r.text("id").map_err(Into::into)).collect()
}

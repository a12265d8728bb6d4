//! Service desk agent workspace (REQUIREMENTS §4): saved and shared queue views.

use crate::rows::RowExt;
use crate::{AnyConnection, Result, StoreError};
use serde::Serialize;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct IncidentViewRecord {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    /// `private`, `team` or `everyone` (all staff).
    pub audience: String,
    pub team_id: Option<String>,
    /// JSON object of the queue filters.
    pub filters: String,
    /// A sort key, `-` first for descending.
    pub sort: String,
    /// Comma-separated column names.
    pub columns: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    /// From a join, for display only.
    #[serde(skip)]
    pub owner_name: String,
}

const SELECT: &str = "SELECT v.id AS id, v.name AS name, v.owner_id AS owner_id, v.audience AS audience, v.team_id AS team_id, \
    v.filters AS filters, v.sort AS sort, v.columns AS columns, v.created_at AS created_at, v.updated_at AS updated_at, \
    v.version AS version, u.display_name AS owner_name FROM incident_views v JOIN users u ON u.id = v.owner_id";

fn view(r: &AnyRow) -> Result<IncidentViewRecord> {
    Ok(IncidentViewRecord {
        id: r.text("id")?,
        name: r.text("name")?,
        owner_id: r.text("owner_id")?,
        audience: r.text("audience")?,
        team_id: r.opt_text("team_id")?,
        filters: r.text("filters")?,
        sort: r.text("sort")?,
        columns: r.text("columns")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
        owner_name: r.text("owner_name")?,
    })
}

pub async fn insert_view(conn: &mut AnyConnection, v: &IncidentViewRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO incident_views (id, name, owner_id, audience, team_id, filters, sort, columns, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&v.id)
    .bind(&v.name)
    .bind(&v.owner_id)
    .bind(&v.audience)
    .bind(&v.team_id)
    .bind(&v.filters)
    .bind(&v.sort)
    .bind(&v.columns)
    .bind(v.created_at)
    .bind(v.updated_at)
    .bind(v.version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes the view if its stored version is still `expected_version`; `Stale` otherwise.
pub async fn update_view(conn: &mut AnyConnection, v: &IncidentViewRecord, expected_version: i64) -> Result<()> {
    let r = sqlx::query(
        "UPDATE incident_views SET name = $1, audience = $2, team_id = $3, filters = $4, sort = $5, columns = $6, updated_at = $7, \
         version = version + 1 WHERE id = $8 AND version = $9",
    )
    .bind(&v.name)
    .bind(&v.audience)
    .bind(&v.team_id)
    .bind(&v.filters)
    .bind(&v.sort)
    .bind(&v.columns)
    .bind(v.updated_at)
    .bind(&v.id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 { Err(StoreError::Stale) } else { Ok(()) }
}

pub async fn delete_view(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM incident_views WHERE id = $1").bind(id).execute(&mut *conn).await?;
    Ok(())
}

pub async fn get_view(conn: &mut AnyConnection, id: &str) -> Result<Option<IncidentViewRecord>> {
    let sql = format!("{SELECT} WHERE v.id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?.as_ref().map(view).transpose()
}

/// The views `user_id` may use, by name: their own, those shared with a team they belong to,
/// and (for staff) those shared with everyone.
pub async fn list_visible_views(conn: &mut AnyConnection, user_id: &str, staff: bool) -> Result<Vec<IncidentViewRecord>> {
    let everyone = if staff { " OR v.audience = 'everyone'" } else { "" };
    let sql = format!(
        "{SELECT} WHERE v.owner_id = $1{everyone} OR (v.audience = 'team' AND v.team_id IN \
         (SELECT team_id FROM team_members WHERE user_id = $2)) ORDER BY v.name, v.id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id).bind(user_id).fetch_all(&mut *conn).await?;
    rows.iter().map(view).collect()
}

/// The teams `user_id` belongs to.
pub async fn teams_of_user(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT team_id FROM team_members WHERE user_id = $1").bind(user_id).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| r.text("team_id").map_err(Into::into)).collect()
}

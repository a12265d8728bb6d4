//! Service desk (REQUIREMENTS §4), second part: attachments of tickets and their conversation,
//! watchers, links and the tickets the auto-close job looks at.

use crate::rows::RowExt;
use crate::{AnyConnection, Result};
use serde::Serialize;
use sqlx::any::AnyRow;

// ---- attachments ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttachmentRecord {
    pub id: String,
    pub ticket_id: String,
    pub comment_id: Option<String>,
    /// `public` or `internal` (a customer contact never downloads an internal one).
    pub visibility: String,
    pub file_name: String,
    /// The type it is served with (see `keel_domain::incident::attachment::served_type`).
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub uploaded_by: String,
    pub created_at: i64,
    #[serde(skip)]
    pub uploader_name: Option<String>,
}

const ATTACHMENT_SELECT: &str = "SELECT a.id AS id, a.ticket_id AS ticket_id, a.comment_id AS comment_id, a.visibility AS visibility, \
    a.file_name AS file_name, a.content_type AS content_type, a.size_bytes AS size_bytes, a.sha256 AS sha256, \
    a.uploaded_by AS uploaded_by, a.created_at AS created_at, u.display_name AS uploader_name \
    FROM ticket_attachments a LEFT JOIN users u ON u.id = a.uploaded_by";

fn attachment(r: &AnyRow) -> Result<AttachmentRecord> {
    Ok(AttachmentRecord {
        id: r.text("id")?,
        ticket_id: r.text("ticket_id")?,
        comment_id: r.opt_text("comment_id")?,
        visibility: r.text("visibility")?,
        file_name: r.text("file_name")?,
        content_type: r.text("content_type")?,
        size_bytes: r.int("size_bytes")?,
        sha256: r.text("sha256")?,
        uploaded_by: r.text("uploaded_by")?,
        created_at: r.int("created_at")?,
        uploader_name: r.opt_text("uploader_name")?,
    })
}

pub async fn insert_attachment(conn: &mut AnyConnection, a: &AttachmentRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_attachments (id, ticket_id, comment_id, visibility, file_name, content_type, size_bytes, sha256, uploaded_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&a.id)
    .bind(&a.ticket_id)
    .bind(&a.comment_id)
    .bind(&a.visibility)
    .bind(&a.file_name)
    .bind(&a.content_type)
    .bind(a.size_bytes)
    .bind(&a.sha256)
    .bind(&a.uploaded_by)
    .bind(a.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_attachment(conn: &mut AnyConnection, id: &str) -> Result<Option<AttachmentRecord>> {
    let sql = format!("{ATTACHMENT_SELECT} WHERE a.id = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    r.as_ref().map(attachment).transpose()
}

/// A ticket's files, oldest first; `public_only` leaves internal ones out in SQL.
pub async fn list_attachments(conn: &mut AnyConnection, ticket_id: &str, public_only: bool) -> Result<Vec<AttachmentRecord>> {
    let filter = if public_only { " AND a.visibility = 'public'" } else { "" };
    let sql = format!("{ATTACHMENT_SELECT} WHERE a.ticket_id = $1{filter} ORDER BY a.created_at, a.id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ticket_id).fetch_all(&mut *conn).await?;
    rows.iter().map(attachment).collect()
}

/// The visibility of a comment of a ticket, if the comment is the ticket's.
pub async fn comment_visibility(conn: &mut AnyConnection, ticket_id: &str, comment_id: &str) -> Result<Option<String>> {
    let r = sqlx::query("SELECT visibility FROM ticket_comments WHERE id = $1 AND ticket_id = $2")
        .bind(comment_id)
        .bind(ticket_id)
        .fetch_optional(&mut *conn)
        .await?;
    r.map(|r| r.text("visibility").map_err(Into::into)).transpose()
}

// ---- watchers ----

pub async fn remove_watcher(conn: &mut AnyConnection, ticket_id: &str, user_id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM ticket_watchers WHERE ticket_id = $1 AND user_id = $2")
        .bind(ticket_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WatcherRecord {
    pub user_id: String,
    pub display_name: String,
    /// `staff` or `contact`.
    pub kind: String,
    pub organization_id: Option<String>,
    pub created_at: i64,
}

pub async fn list_watcher_records(conn: &mut AnyConnection, ticket_id: &str) -> Result<Vec<WatcherRecord>> {
    let rows = sqlx::query(
        "SELECT w.user_id AS user_id, u.display_name AS display_name, u.kind AS kind, u.organization_id AS organization_id, \
         w.created_at AS created_at FROM ticket_watchers w JOIN users u ON u.id = w.user_id WHERE w.ticket_id = $1 \
         ORDER BY u.display_name, w.user_id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(WatcherRecord {
                user_id: r.text("user_id")?,
                display_name: r.text("display_name")?,
                kind: r.text("kind")?,
                organization_id: r.opt_text("organization_id")?,
                created_at: r.int("created_at")?,
            })
        })
        .collect()
}

// ---- links ----

pub async fn remove_link(conn: &mut AnyConnection, ticket_id: &str, link_id: &str) -> Result<bool> {
    let r =
        sqlx::query("DELETE FROM ticket_links WHERE id = $1 AND ticket_id = $2").bind(link_id).bind(ticket_id).execute(&mut *conn).await?;
    Ok(r.rows_affected() > 0)
}

/// Sets (or clears) a ticket's parent without touching anything else of the row.
pub async fn set_parent(conn: &mut AnyConnection, ticket_id: &str, parent_id: Option<&str>, at: i64) -> Result<()> {
    sqlx::query("UPDATE tickets SET parent_id = $1, updated_at = $2, version = version + 1 WHERE id = $3")
        .bind(parent_id)
        .bind(at)
        .bind(ticket_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets (or clears) a ticket's affected catalogue service.
pub async fn set_service(conn: &mut AnyConnection, ticket_id: &str, service_id: Option<&str>, at: i64) -> Result<()> {
    sqlx::query("UPDATE tickets SET service_id = $1, updated_at = $2, version = version + 1 WHERE id = $3")
        .bind(service_id)
        .bind(at)
        .bind(ticket_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The ids of a ticket's children and of the tickets merged into it, each in number order, in
/// one query.
pub async fn related_ids(conn: &mut AnyConnection, ticket_id: &str) -> Result<(Vec<String>, Vec<String>)> {
    let rows = sqlx::query(
        "SELECT id, 'child' AS rel, number FROM tickets WHERE parent_id = $1 \
         UNION ALL SELECT id, 'merged' AS rel, number FROM tickets WHERE duplicate_of_id = $1 ORDER BY number",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    let (mut children, mut merged) = (vec![], vec![]);
    for r in rows {
        let list = if r.text("rel")? == "child" { &mut children } else { &mut merged };
        list.push(r.text("id")?);
    }
    Ok((children, merged))
}

// ---- auto-close ----

/// Resolved tickets resolved at or before `resolved_before`, oldest first: the candidates of
/// the auto-close job (the job checks each with its calendar).
pub async fn resolved_before(conn: &mut AnyConnection, resolved_before: i64, limit: i64) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM tickets WHERE status = 'resolved' AND resolved_at <= $1 ORDER BY resolved_at, id LIMIT $2")
        .bind(resolved_before)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.text("id").map_err(Into::into)).collect()
}

// ---- catalogue items (service requests) ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CatalogueItemRecord {
    pub id: String,
    pub service_id: String,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    /// JSON list of `keel_domain::incident::request_form::FormField`.
    pub form: String,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

const ITEM_COLS: &str = "id, service_id, code, name, description, form, active, created_at, updated_at, version";

fn item(r: &AnyRow) -> Result<CatalogueItemRecord> {
    Ok(CatalogueItemRecord {
        id: r.text("id")?,
        service_id: r.text("service_id")?,
        code: r.text("code")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        form: r.text("form")?,
        active: r.flag("active")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

pub async fn insert_catalogue_item(conn: &mut AnyConnection, i: &CatalogueItemRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO catalogue_items (id, service_id, code, name, description, form, active, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&i.id)
    .bind(&i.service_id)
    .bind(&i.code)
    .bind(&i.name)
    .bind(&i.description)
    .bind(&i.form)
    .bind(i64::from(i.active))
    .bind(i.created_at)
    .bind(i.updated_at)
    .bind(i.version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn update_catalogue_item(conn: &mut AnyConnection, i: &CatalogueItemRecord, expected_version: i64) -> Result<()> {
    let r = sqlx::query(
        "UPDATE catalogue_items SET service_id = $1, code = $2, name = $3, description = $4, form = $5, active = $6, updated_at = $7, \
         version = version + 1 WHERE id = $8 AND version = $9",
    )
    .bind(&i.service_id)
    .bind(&i.code)
    .bind(&i.name)
    .bind(&i.description)
    .bind(&i.form)
    .bind(i64::from(i.active))
    .bind(i.updated_at)
    .bind(&i.id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Err(crate::StoreError::Stale);
    }
    Ok(())
}

pub async fn get_catalogue_item(conn: &mut AnyConnection, id: &str) -> Result<Option<CatalogueItemRecord>> {
    let sql = format!("SELECT {ITEM_COLS} FROM catalogue_items WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?.as_ref().map(item).transpose()
}

/// Catalogue items by name; `organization_id` keeps only active items of services that
/// organisation's SLAs include (a contact's view).
pub async fn list_catalogue_items(conn: &mut AnyConnection, organization_id: Option<&str>) -> Result<Vec<CatalogueItemRecord>> {
    let rows = match organization_id {
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ITEM_COLS} FROM catalogue_items ORDER BY name, id")))
                .fetch_all(&mut *conn)
                .await?
        }
        Some(org) => {
            let sql = format!(
                "SELECT {ITEM_COLS} FROM catalogue_items WHERE active = 1 AND service_id IN \
                 (SELECT ss.service_id FROM sla_services ss JOIN slas s ON s.id = ss.sla_id WHERE s.organization_id = $1) ORDER BY name, id"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org).fetch_all(&mut *conn).await?
        }
    };
    rows.iter().map(item).collect()
}

pub async fn insert_request_answers(conn: &mut AnyConnection, ticket_id: &str, item_id: &str, answers: &str, at: i64) -> Result<()> {
    sqlx::query("INSERT INTO ticket_request_answers (ticket_id, catalogue_item_id, answers, created_at) VALUES ($1, $2, $3, $4)")
        .bind(ticket_id)
        .bind(item_id)
        .bind(answers)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn request_answers(conn: &mut AnyConnection, ticket_id: &str) -> Result<Option<String>> {
    let r =
        sqlx::query("SELECT answers FROM ticket_request_answers WHERE ticket_id = $1").bind(ticket_id).fetch_optional(&mut *conn).await?;
    r.map(|r| r.text("answers").map_err(Into::into)).transpose()
}

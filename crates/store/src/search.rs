//! Reads that feed the full-text index of every process: the outbox after a position, the ids
//! of each indexed table for a rebuild, and the names documents show instead of ids.

use crate::rows::RowExt;
use crate::{AnyConnection, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: String,
    pub entity_type: String,
    pub entity_id: String,
    pub payload: String,
    pub created_at: i64,
}

/// `record_changed` messages after the keyset position (`created_at`, `id`), oldest first.
pub async fn outbox_after(conn: &mut AnyConnection, created_at: i64, id: &str, limit: i64) -> Result<Vec<OutboxRow>> {
    let rows = sqlx::query(
        "SELECT id, entity_type, entity_id, payload, created_at FROM outbox WHERE topic = 'record_changed' \
         AND (created_at > $1 OR (created_at = $1 AND id > $2)) ORDER BY created_at, id LIMIT $3",
    )
    .bind(created_at)
    .bind(id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxRow {
                id: r.text("id")?,
                entity_type: r.text("entity_type")?,
                entity_id: r.text("entity_id")?,
                payload: r.text("payload")?,
                created_at: r.int("created_at")?,
            })
        })
        .collect()
}

/// The tables whose rows the index holds, for a rebuild by pages of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexed {
    Tickets,
    ConfigurationItems,
    Services,
    Problems,
    KnownErrors,
}

/// Ids after `after`, in id order.
pub async fn ids_after(conn: &mut AnyConnection, t: Indexed, after: &str, limit: i64) -> Result<Vec<String>> {
    let sql = match t {
        Indexed::Tickets => "SELECT id FROM tickets WHERE id > $1 ORDER BY id LIMIT $2",
        Indexed::ConfigurationItems => "SELECT id FROM configuration_items WHERE id > $1 ORDER BY id LIMIT $2",
        Indexed::Services => "SELECT id FROM services WHERE id > $1 ORDER BY id LIMIT $2",
        Indexed::Problems => "SELECT id FROM problems WHERE id > $1 ORDER BY id LIMIT $2",
        Indexed::KnownErrors => "SELECT id FROM known_errors WHERE id > $1 ORDER BY id LIMIT $2",
    };
    let rows = sqlx::query(sql).bind(after).bind(limit).fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(|r| r.text("id")).collect::<std::result::Result<_, _>>()?)
}

pub async fn count(conn: &mut AnyConnection, t: Indexed) -> Result<i64> {
    let sql = match t {
        Indexed::Tickets => "SELECT COUNT(*) AS n FROM tickets",
        Indexed::ConfigurationItems => "SELECT COUNT(*) AS n FROM configuration_items",
        Indexed::Services => "SELECT COUNT(*) AS n FROM services",
        Indexed::Problems => "SELECT COUNT(*) AS n FROM problems",
        Indexed::KnownErrors => "SELECT COUNT(*) AS n FROM known_errors",
    };
    Ok(sqlx::query(sql).fetch_one(&mut *conn).await?.int("n")?)
}

pub async fn team_name(conn: &mut AnyConnection, id: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT name FROM teams WHERE id = $1").bind(id).fetch_optional(&mut *conn).await?;
    Ok(row.map(|r| r.text("name")).transpose()?)
}

/// A project's code and its customer organisation.
pub async fn project_of(conn: &mut AnyConnection, id: &str) -> Result<Option<(String, String)>> {
    let row = sqlx::query("SELECT code, organization_id FROM projects WHERE id = $1").bind(id).fetch_optional(&mut *conn).await?;
    Ok(row.map(|r| Ok::<_, sqlx::Error>((r.text("code")?, r.text("organization_id")?))).transpose()?)
}

/// File names of a ticket's attachments; empty while no attachment table exists.
pub async fn attachment_names(conn: &mut AnyConnection, ticket_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT file_name FROM ticket_attachments WHERE ticket_id = $1 AND visibility = 'public'")
        .bind(ticket_id)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.iter().map(|r| r.text("file_name")).collect::<std::result::Result<_, _>>()?)
}

/// Catalogue services an organisation's SLAs include (what its contacts may see).
pub async fn services_for_organization(conn: &mut AnyConnection, organization_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT ss.service_id AS id FROM sla_services ss JOIN slas s ON s.id = ss.sla_id WHERE s.organization_id = $1",
    )
    .bind(organization_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(|r| r.text("id")).collect::<std::result::Result<_, _>>()?)
}

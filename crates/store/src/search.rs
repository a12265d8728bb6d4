//! Reads that feed the full-text index of every process: the outbox after a position, the ids
//! of each indexed table for a rebuild, and the names documents show instead of ids.

use crate::rows::RowExt;
use crate::sql::Sql;
use crate::{AnyConnection, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: String,
    pub entity_type: String,
    pub entity_id: String,
    pub payload: String,
    pub created_at: i64,
}

fn outbox_row(r: &sqlx::any::AnyRow) -> Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.text("id")?,
        entity_type: r.text("entity_type")?,
        entity_id: r.text("entity_id")?,
        payload: r.text("payload")?,
        created_at: r.int("created_at")?,
    })
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
    rows.iter().map(outbox_row).collect()
}

/// The ids of the `record_changed` messages created from `from` to `to` (both included), oldest
/// first: the follower re-reads its late-commit window without the payloads.
pub async fn outbox_ids_between(conn: &mut AnyConnection, from: i64, to: i64) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT id FROM outbox WHERE topic = 'record_changed' AND created_at >= $1 AND created_at <= $2 ORDER BY created_at, id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok(r.text("id")?)).collect()
}

/// The outbox messages of the given ids, oldest first.
pub async fn outbox_rows(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<OutboxRow>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut q = Sql::new("SELECT id, entity_type, entity_id, payload, created_at FROM outbox WHERE id IN ");
    q.push_list(ids);
    q.push(" ORDER BY created_at, id");
    q.fetch_all(conn).await?.iter().map(outbox_row).collect()
}

/// The tables whose rows the index holds, for a rebuild by pages of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexed {
    Tickets,
    ConfigurationItems,
    Services,
    Problems,
    KnownErrors,
    Changes,
    Releases,
}

/// Ids after `after`, in id order.
pub async fn ids_after(conn: &mut AnyConnection, t: Indexed, after: &str, limit: i64) -> Result<Vec<String>> {
    let sql = format!("SELECT id FROM {} WHERE id > $1 ORDER BY id LIMIT $2", table_name(t));
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after).bind(limit).fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(|r| r.text("id")).collect::<std::result::Result<_, _>>()?)
}

pub async fn count(conn: &mut AnyConnection, t: Indexed) -> Result<i64> {
    let sql = format!("SELECT COUNT(*) AS n FROM {}", table_name(t));
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&mut *conn).await?.int("n")?)
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

/// A ticket's reply, internal note or work-log note, as the index reads it.
pub struct TicketText {
    pub ticket_id: String,
    pub public: bool,
    pub body: String,
}

/// The comments and work-log notes of the given tickets, oldest first per ticket.
pub async fn ticket_texts(conn: &mut AnyConnection, ticket_ids: &[String]) -> Result<Vec<TicketText>> {
    let mut q = Sql::new("SELECT ticket_id, visibility, body, created_at, id FROM ticket_comments WHERE ticket_id IN ");
    q.push_list(ticket_ids);
    q.push(" UNION ALL SELECT ticket_id, 'internal' AS visibility, note AS body, performed_at AS created_at, id FROM ticket_work_log WHERE note IS NOT NULL AND ticket_id IN ");
    q.push_list(ticket_ids);
    q.push(" ORDER BY created_at, id");
    q.fetch_all(conn)
        .await?
        .iter()
        .map(|r| Ok(TicketText { ticket_id: r.text("ticket_id")?, public: r.text("visibility")? == "public", body: r.text("body")? }))
        .collect()
}

/// (ticket id, file name) of the public attachments of the given tickets.
pub async fn attachment_names_of(conn: &mut AnyConnection, ticket_ids: &[String]) -> Result<Vec<(String, String)>> {
    let mut q = Sql::new("SELECT ticket_id, file_name FROM ticket_attachments WHERE visibility = 'public' AND ticket_id IN ");
    q.push_list(ticket_ids);
    q.push(" ORDER BY created_at, id");
    q.fetch_all(conn).await?.iter().map(|r| Ok((r.text("ticket_id")?, r.text("file_name")?))).collect()
}

/// Ids of the records of `t` whose `column` holds `value`; the column is named in code, never
/// taken from input.
pub async fn ids_where(conn: &mut AnyConnection, t: Indexed, column: &'static str, value: &str) -> Result<Vec<String>> {
    let mut q = Sql::new(format!("SELECT id FROM {} WHERE {column} = ", table_name(t)));
    q.push_bind(value);
    q.fetch_all(conn).await?.iter().map(|r| Ok(r.text("id")?)).collect()
}

/// Ids in `record` of the rows of the link table `table` whose `column` holds `value` (the
/// changes a CI is affected by: `change_cis`, `change_id`, `ci_id`); all names come from code.
pub async fn ids_linked(
    conn: &mut AnyConnection,
    table: &'static str,
    record: &'static str,
    column: &'static str,
    value: &str,
) -> Result<Vec<String>> {
    let mut q = Sql::new(format!("SELECT {record} AS id FROM {table} WHERE {column} = "));
    q.push_bind(value);
    q.fetch_all(conn).await?.iter().map(|r| Ok(r.text("id")?)).collect()
}

fn table_name(t: Indexed) -> &'static str {
    match t {
        Indexed::Tickets => "tickets",
        Indexed::ConfigurationItems => "configuration_items",
        Indexed::Services => "services",
        Indexed::Problems => "problems",
        Indexed::KnownErrors => "known_errors",
        Indexed::Changes => "changes",
        Indexed::Releases => "releases",
    }
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

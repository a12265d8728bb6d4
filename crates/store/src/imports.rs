//! Service desk and incident management: what a ticket import needs from the database besides
//! the ticket rows themselves (the external references kept from the source, name look-ups).

use crate::rows::RowExt;
use crate::{AnyConnection, Result};
use std::collections::HashMap;

/// The tickets already imported from `source`, by their number there.
pub async fn external_refs(conn: &mut AnyConnection, source: &str) -> Result<HashMap<String, String>> {
    let rows =
        sqlx::query("SELECT r.external_ref, t.number FROM ticket_external_refs r JOIN tickets t ON t.id = r.ticket_id WHERE r.source = $1")
            .bind(source)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter().map(|r| Ok((r.text("external_ref")?, r.text("number")?))).collect()
}

pub async fn insert_external_ref(conn: &mut AnyConnection, ticket_id: &str, source: &str, external_ref: &str, at: i64) -> Result<()> {
    sqlx::query("INSERT INTO ticket_external_refs (ticket_id, source, external_ref, imported_at) VALUES ($1, $2, $3, $4)")
        .bind(ticket_id)
        .bind(source)
        .bind(external_ref)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The external reference of a ticket, as `(source, reference)`.
pub async fn external_ref_of(conn: &mut AnyConnection, ticket_id: &str) -> Result<Option<(String, String)>> {
    let row = sqlx::query("SELECT source, external_ref FROM ticket_external_refs WHERE ticket_id = $1")
        .bind(ticket_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| Ok((r.text("source")?, r.text("external_ref")?))).transpose()
}

/// Active teams by name (teams have no code; a mapping names them).
pub async fn active_teams_by_name(conn: &mut AnyConnection) -> Result<HashMap<String, String>> {
    let rows = sqlx::query("SELECT id, name FROM teams WHERE active = 1").fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((r.text("name")?, r.text("id")?))).collect()
}

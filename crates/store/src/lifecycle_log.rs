//! Problem, change and release management: the status log of records that move through a
//! lifecycle, one row per status change numbered per record. Each process keeps its own table,
//! named here with its key and note columns.

use crate::rows::RowExt;
use crate::{AnyConnection, Result};

/// Where a process keeps its status log. The names are written in code, never taken from input.
pub(crate) struct LogTable {
    pub table: &'static str,
    pub key: &'static str,
    /// The column of the free-text note (`action` for problems, `reason` for changes and releases).
    pub note: &'static str,
}

/// One logged status change; `reason` is read from and written to the table's note column.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct StatusRow {
    pub seq: i64,
    pub at: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: Option<String>,
    pub actor_id: String,
}

/// Appends a status change as the record's next entry.
pub(crate) async fn append(conn: &mut AnyConnection, t: &LogTable, record_id: &str, e: &StatusRow) -> Result<()> {
    let next = format!("SELECT COALESCE(MAX(seq), 0) AS n FROM {} WHERE {} = $1", t.table, t.key);
    let seq = sqlx::query(sqlx::AssertSqlSafe(next)).bind(record_id).fetch_one(&mut *conn).await?.int("n")? + 1;
    let insert = format!(
        "INSERT INTO {} (id, {}, seq, at, from_status, to_status, {}, actor_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        t.table, t.key, t.note
    );
    sqlx::query(sqlx::AssertSqlSafe(insert))
        .bind(crate::new_id())
        .bind(record_id)
        .bind(seq)
        .bind(e.at)
        .bind(&e.from_status)
        .bind(&e.to_status)
        .bind(&e.reason)
        .bind(&e.actor_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A record's status changes, oldest first.
pub(crate) async fn read(conn: &mut AnyConnection, t: &LogTable, record_id: &str) -> Result<Vec<StatusRow>> {
    let sql = format!(
        "SELECT seq, at, from_status, to_status, {} AS reason, actor_id FROM {} WHERE {} = $1 ORDER BY seq",
        t.note, t.table, t.key
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(record_id).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok(StatusRow {
                seq: r.int("seq")?,
                at: r.int("at")?,
                from_status: r.opt_text("from_status")?,
                to_status: r.text("to_status")?,
                reason: r.opt_text("reason")?,
                actor_id: r.text("actor_id")?,
            })
        })
        .collect()
}

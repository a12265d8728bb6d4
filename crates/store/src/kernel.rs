//! Shared bookkeeping for every process: human-number counters, the outbox that feeds search
//! and notifications, and instance settings.

use crate::rows::RowExt;
use crate::{AnyConnection, Result};

/// Next value of a named counter (e.g. `INC`), incremented inside the caller's transaction so
/// numbers are gap-free per committed record and unique across instances.
pub async fn next_counter(conn: &mut AnyConnection, name: &str) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO counters (name, value) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.int("value")?)
}

/// The value of a named counter; 0 before its first increment.
pub async fn counter_value(conn: &mut AnyConnection, name: &str) -> Result<i64> {
    let row = sqlx::query("SELECT value FROM counters WHERE name = $1").bind(name).fetch_optional(&mut *conn).await?;
    Ok(match row {
        Some(r) => r.int("value")?,
        None => 0,
    })
}

/// Counts writes to the reference data a ticket write reads (priority matrix, SLAs and business
/// calendars) and to the lists the desk's pages offer (teams, staff accounts, catalogue
/// services, projects): a process caching that data re-reads it when this counter moved,
/// whichever instance wrote. The database bumps it in the writing transaction: triggers on
/// those tables (migration 32), so no write path, however new, can forget to.
pub const DESK_REFERENCE_COUNTER: &str = "desk_reference";

/// An outbox row, written in the same transaction as the record it announces.
pub struct OutboxMessage<'a> {
    pub topic: &'a str,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub payload: &'a str,
}

pub async fn push_outbox(conn: &mut AnyConnection, m: &OutboxMessage<'_>, at_ms: i64) -> Result<()> {
    push_outbox_rows(conn, &[(crate::new_id(), m)], at_ms).await
}

/// Several outbox rows in one statement, each with the id given (ids order the outbox).
pub async fn push_outbox_rows(conn: &mut AnyConnection, rows: &[(String, &OutboxMessage<'_>)], at_ms: i64) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut q = crate::sql::Sql::new("INSERT INTO outbox (id, topic, entity_type, entity_id, payload, created_at) VALUES ");
    for (i, (id, m)) in rows.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push("(").push_bind(id.as_str()).push(", ").push_bind(m.topic).push(", ").push_bind(m.entity_type);
        q.push(", ").push_bind(m.entity_id).push(", ").push_bind(m.payload).push(", ").push_bind(at_ms).push(")");
    }
    q.execute(conn).await?;
    Ok(())
}

/// Deletes up to `limit` outbox rows that every follower is done with: `record_changed` and
/// other topics older than `before`; announcements older than `announcements_before` and only
/// once dispatched (with their dispatch marks). Returns how many outbox rows went.
pub async fn prune_outbox(conn: &mut AnyConnection, before: i64, announcements_before: i64, limit: i64) -> Result<u64> {
    let others =
        sqlx::query("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE topic <> 'announcement' AND created_at < $1 LIMIT $2)")
            .bind(before)
            .bind(limit)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    let gone: Vec<String> = sqlx::query(
        "SELECT o.id FROM outbox o JOIN notification_dispatched d ON d.announcement_id = o.id \
         WHERE o.topic = 'announcement' AND o.created_at < $1 LIMIT $2",
    )
    .bind(announcements_before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.text("id"))
    .collect::<std::result::Result<_, _>>()?;
    if !gone.is_empty() {
        let mut q = crate::sql::Sql::new("DELETE FROM outbox WHERE id IN ");
        q.push_list(&gone);
        q.execute(conn).await?;
        let mut q = crate::sql::Sql::new("DELETE FROM notification_dispatched WHERE announcement_id IN ");
        q.push_list(&gone);
        q.execute(conn).await?;
    }
    Ok(others + gone.len() as u64)
}

pub async fn outbox_len(conn: &mut AnyConnection) -> Result<i64> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM outbox").fetch_one(&mut *conn).await?.int("n")?)
}

pub async fn get_setting(conn: &mut AnyConnection, name: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(&mut *conn).await?;
    Ok(row.map(|r| r.text("value")).transpose()?)
}

pub async fn set_setting(conn: &mut AnyConnection, name: &str, value: &str, at_ms: i64) -> Result<()> {
    sqlx::query("INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at")
        .bind(name)
        .bind(value)
        .bind(at_ms)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// SQLite's own integrity and foreign-key checks; empty when all is well (and on PostgreSQL,
/// which enforces both on every write).
pub async fn database_integrity(conn: &mut AnyConnection, backend: crate::Backend) -> Result<Vec<String>> {
    let mut messages = Vec::new();
    if backend == crate::Backend::Sqlite {
        for r in sqlx::query("PRAGMA integrity_check").fetch_all(&mut *conn).await? {
            let m: String = sqlx::Row::try_get(&r, 0usize)?;
            if m != "ok" {
                messages.push(m);
            }
        }
        let n = sqlx::query("SELECT COUNT(*) AS n FROM pragma_foreign_key_check").fetch_one(&mut *conn).await?.int("n")?;
        if n > 0 {
            messages.push(format!("{n} foreign key violations"));
        }
    }
    Ok(messages)
}

/// Writes a consistent copy of a live SQLite database (`VACUUM INTO`), safe while it serves.
pub async fn sqlite_snapshot(db: &crate::Db, path: &str) -> Result<()> {
    let sql = format!("VACUUM INTO '{}'", path.replace('\'', "''"));
    let mut conn = db.reader().acquire().await?;
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await?;
    Ok(())
}

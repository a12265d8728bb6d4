//! Schema migrations for every process: one ordered, embedded set applied in transactions,
//! checksummed so an edited migration is caught, and serialised across instances on PostgreSQL.
//!
//! A migration is portable SQL run whole on both backends, except for parts only one backend
//! understands (triggers, functions): a line `-- keel:sqlite` or `-- keel:postgres` starts a part
//! only that backend runs, up to the next such line or `-- keel:all`. The checksum covers the
//! whole file.

use crate::rows::RowExt;
use crate::{Backend, Db, Result, StoreError};
use sha2::{Digest, Sha256};
use sqlx::Executor;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// All migrations, oldest first. Add new ones at the end; never edit an applied one.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "platform", sql: include_str!("../migrations/0001_platform.sql") },
    Migration { version: 2, name: "incidents", sql: include_str!("../migrations/0002_incidents.sql") },
    Migration { version: 3, name: "cmdb", sql: include_str!("../migrations/0003_cmdb.sql") },
    Migration { version: 4, name: "service_level", sql: include_str!("../migrations/0004_service_level.sql") },
    Migration { version: 5, name: "sla_clocks", sql: include_str!("../migrations/0005_sla_clocks.sql") },
    Migration { version: 6, name: "notifications", sql: include_str!("../migrations/0006_notifications.sql") },
    Migration { version: 8, name: "desk", sql: include_str!("../migrations/0008_desk.sql") },
    Migration { version: 9, name: "imports", sql: include_str!("../migrations/0009_imports.sql") },
    Migration { version: 10, name: "problems", sql: include_str!("../migrations/0010_problems.sql") },
    Migration { version: 11, name: "mail", sql: include_str!("../migrations/0011_mail.sql") },
    Migration { version: 19, name: "major_incidents", sql: include_str!("../migrations/0019_major_incidents.sql") },
    Migration { version: 20, name: "changes", sql: include_str!("../migrations/0020_changes.sql") },
    Migration { version: 21, name: "cmdb_imports", sql: include_str!("../migrations/0021_cmdb_imports.sql") },
    Migration { version: 22, name: "mail_tls", sql: include_str!("../migrations/0022_mail_tls.sql") },
    Migration { version: 23, name: "desk_views", sql: include_str!("../migrations/0023_desk_views.sql") },
    Migration { version: 24, name: "releases", sql: include_str!("../migrations/0024_releases.sql") },
    Migration { version: 25, name: "notification_opt_outs", sql: include_str!("../migrations/0025_notification_opt_outs.sql") },
    Migration { version: 28, name: "queue_indexes", sql: include_str!("../migrations/0028_queue_indexes.sql") },
    Migration { version: 29, name: "ticket_duplicates_index", sql: include_str!("../migrations/0029_ticket_duplicates_index.sql") },
    Migration { version: 30, name: "mailbox_team", sql: include_str!("../migrations/0030_mailbox_team.sql") },
    Migration { version: 31, name: "problem_cis", sql: include_str!("../migrations/0031_problem_cis.sql") },
    Migration { version: 32, name: "desk_reference_triggers", sql: include_str!("../migrations/0032_desk_reference_triggers.sql") },
];

const PG_LOCK_KEY: i64 = 0x4b45_454c_0001;

/// The part of a migration's SQL that `backend` runs (see the module's documentation).
pub fn sql_for(sql: &str, backend: Backend) -> String {
    let mine = match backend {
        Backend::Sqlite => "-- keel:sqlite",
        Backend::Postgres => "-- keel:postgres",
    };
    let mut keep = true;
    let mut out = String::with_capacity(sql.len());
    for line in sql.split_inclusive('\n') {
        match line.trim() {
            "-- keel:all" => keep = true,
            "-- keel:sqlite" | "-- keel:postgres" => keep = line.trim() == mine,
            _ if keep => out.push_str(line),
            _ => {}
        }
    }
    out
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Applies every pending migration and returns the versions applied now.
pub async fn run(db: &Db) -> Result<Vec<i64>> {
    let mut conn = db.write.acquire().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)").bind(PG_LOCK_KEY).execute(&mut *conn).await?;
    }
    let result = apply_pending(&mut conn, db.backend()).await;
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(PG_LOCK_KEY).execute(&mut *conn).await?;
    }
    result
}

async fn apply_pending(conn: &mut sqlx::AnyConnection, backend: Backend) -> Result<Vec<i64>> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let applied = sqlx::query("SELECT version, checksum FROM schema_migrations ORDER BY version").fetch_all(&mut *conn).await?;
    let mut done = std::collections::HashMap::new();
    for r in &applied {
        done.insert(r.int("version")?, r.text("checksum")?);
    }
    let mut now_applied = Vec::new();
    for m in MIGRATIONS {
        if let Some(sum) = done.get(&m.version) {
            if *sum != checksum(m.sql) {
                return Err(StoreError::MigrationChanged(format!("{:04}_{}", m.version, m.name)));
            }
            continue;
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        tx.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql_for(m.sql, backend)))).await?;
        sqlx::query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
            .bind(m.version)
            .bind(m.name)
            .bind(checksum(m.sql))
            .bind(crate::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
        now_applied.push(m.version);
    }
    Ok(now_applied)
}

/// Versions applied so far, for `keel check` and `/readyz`.
pub async fn applied(db: &Db) -> Result<Vec<i64>> {
    let rows = match sqlx::query("SELECT version FROM schema_migrations ORDER BY version").fetch_all(db.reader()).await {
        Ok(r) => r,
        Err(_) => return Ok(vec![]),
    };
    rows.iter().map(|r| r.int("version").map_err(Into::into)).collect()
}

pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// A backend-neutral description of the schema: (table, column, normalised type, nullable),
/// and index names, sorted. Used to prove both databases end with the same schema.
pub async fn describe_schema(db: &Db) -> Result<(Vec<(String, String, String, bool)>, Vec<String>)> {
    let mut cols = Vec::new();
    let mut idx = Vec::new();
    match db.backend() {
        Backend::Sqlite => {
            let tables = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                .fetch_all(db.reader())
                .await?;
            for t in tables {
                let table = t.text("name")?;
                let q = format!("SELECT name, type, \"notnull\" AS nn, pk FROM pragma_table_info('{table}')");
                for c in sqlx::query(sqlx::AssertSqlSafe(q)).fetch_all(db.reader()).await? {
                    let nullable = c.int("nn")? == 0 && c.int("pk")? == 0;
                    cols.push((table.clone(), c.text("name")?, c.text("type")?.to_lowercase(), nullable));
                }
            }
            for r in sqlx::query("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'")
                .fetch_all(db.reader())
                .await?
            {
                idx.push(r.text("name")?);
            }
        }
        Backend::Postgres => {
            let rows = sqlx::query(
                "SELECT c.table_name::text AS t, c.column_name::text AS c, c.data_type::text AS ty, c.is_nullable::text AS n \
                 FROM information_schema.columns c JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema \
                 WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'",
            )
            .fetch_all(db.reader())
            .await?;
            for r in rows {
                cols.push((r.text("t")?, r.text("c")?, r.text("ty")?.to_lowercase(), r.text("n")? == "YES"));
            }
            let rows = sqlx::query(
                "SELECT indexname::text AS i FROM pg_indexes WHERE schemaname = current_schema() AND indexname NOT LIKE '%_pkey'",
            )
            .fetch_all(db.reader())
            .await?;
            for r in rows {
                idx.push(r.text("i")?);
            }
        }
    }
    cols.sort();
    idx.sort();
    Ok((cols, idx))
}

#[cfg(test)]
mod tests {
    /// The runner applies the list in order and `latest_version` reads its end, so versions
    /// written on parallel branches must be merged into ascending order.
    #[test]
    fn migrations_are_listed_in_ascending_version_order() {
        let versions: Vec<i64> = super::MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        assert_eq!(super::latest_version(), *versions.iter().max().unwrap());
    }

    #[test]
    fn a_backend_runs_the_portable_sql_and_its_own_parts_only() {
        use super::{Backend, sql_for};
        let sql = "CREATE TABLE a (x TEXT);\n-- keel:sqlite\nLITE;\n  -- keel:postgres\nPG;\n-- keel:all\nBOTH;\n";
        assert_eq!(sql_for(sql, Backend::Sqlite), "CREATE TABLE a (x TEXT);\nLITE;\nBOTH;\n");
        assert_eq!(sql_for(sql, Backend::Postgres), "CREATE TABLE a (x TEXT);\nPG;\nBOTH;\n");
        // a migration without markers runs whole on both
        let m = super::MIGRATIONS.iter().find(|m| m.version == 1).unwrap();
        assert_eq!(sql_for(m.sql, Backend::Sqlite), m.sql);
        assert_eq!(sql_for(m.sql, Backend::Postgres), m.sql);
    }
}

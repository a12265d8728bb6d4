//! Keel's persistence for every process: one SQL dialect that runs on SQLite (the default, one
//! file under the data directory) and on PostgreSQL (for several `keel serve` instances).
//!
//! Both go through sqlx's `Any` driver, so each statement is written once with `$n`
//! placeholders, app-made TEXT ids, BIGINT times and TEXT JSON. SQLite gets a pool of readers
//! and a single writer connection, so writers queue in-process instead of failing with
//! `SQLITE_BUSY`; PostgreSQL uses one pool for both.

pub mod accounts;
pub mod audit;
pub mod changes;
pub mod cmdb;
pub mod desk;
pub mod directory;
pub mod imports;
pub mod incident_views;
pub mod incidents;
pub mod jobs;
pub mod kernel;
pub mod lifecycle_log;
pub mod mail;
pub mod migrate;
pub mod notifications;
pub mod page;
pub mod problems;
pub mod releases;
pub mod rows;
pub mod search;
pub mod secrets;
pub mod service_level;
pub mod sla_clocks;
pub mod sql;
pub mod testing;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::time::Duration;

pub use sqlx::{Any, AnyConnection, Transaction};
pub type Tx = Transaction<'static, Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL (use sqlite:… or postgres://…)")]
    UnsupportedUrl,
    /// A unique constraint failed; `field` is the column it guards.
    #[error("{field} is already taken")]
    Unique { field: String },
    /// A referenced record does not exist.
    #[error("a referenced record does not exist")]
    ForeignKey,
    #[error("record not found")]
    NotFound,
    /// An optimistic-concurrency check failed: the record changed since it was read.
    #[error("the record was changed by someone else")]
    Stale,
    #[error("migration {0} was changed after it was applied")]
    MigrationChanged(String),
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(d) = &e {
            match d.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    return StoreError::Unique { field: unique_field(d.constraint(), d.table(), d.message()) };
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => return StoreError::ForeignKey,
                _ => {}
            }
        }
        if matches!(e, sqlx::Error::RowNotFound) {
            return StoreError::NotFound;
        }
        StoreError::Db(e)
    }
}

/// Index names follow `<table>_<column>`; SQLite reports `table.column` in its message.
fn unique_field(constraint: Option<&str>, table: Option<&str>, message: &str) -> String {
    if let Some(c) = constraint {
        if let Some(col) = table.and_then(|t| c.strip_prefix(t)).and_then(|rest| rest.strip_prefix('_')) {
            return col.to_string();
        }
        return c.split_once('_').map(|(_, col)| col).unwrap_or(c).to_string();
    }
    message
        .rsplit(": ")
        .next()
        .and_then(|cols| cols.split(',').next())
        .and_then(|tc| tc.trim().split_once('.'))
        .map(|(_, col)| col.to_string())
        .unwrap_or_else(|| "value".to_string())
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database handle every use case receives.
#[derive(Clone, Debug)]
pub struct Db {
    backend: Backend,
    read: AnyPool,
    write: AnyPool,
}

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { max_connections: 16, acquire_timeout: Duration::from_secs(15) }
    }
}

type ConnectHook<'c> = futures_core::future::BoxFuture<'c, Result<(), sqlx::Error>>;

async fn sqlite_pragmas(conn: &mut AnyConnection, writer: bool) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA busy_timeout = 10000").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    if writer {
        conn.execute("PRAGMA journal_mode = WAL").await?;
    }
    Ok(())
}

fn writer_pragmas(conn: &mut AnyConnection, _: sqlx::pool::PoolConnectionMetadata) -> ConnectHook<'_> {
    Box::pin(sqlite_pragmas(conn, true))
}

fn reader_pragmas(conn: &mut AnyConnection, _: sqlx::pool::PoolConnectionMetadata) -> ConnectHook<'_> {
    Box::pin(sqlite_pragmas(conn, false))
}

/// The URL of the default SQLite database inside a data directory.
pub fn sqlite_url_for_dir(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("keel.db").display())
}

impl Db {
    pub async fn connect(url: &str, opts: &ConnectOptions) -> Result<Db> {
        install_default_drivers();
        let backend = Backend::from_url(url).ok_or(StoreError::UnsupportedUrl)?;
        match backend {
            Backend::Sqlite => {
                // The writer connects first so the database file and WAL mode exist for readers.
                // A connection to a local file does not go stale, so it is not pinged on every
                // acquire (a round trip to the connection's thread).
                let write = AnyPoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .acquire_timeout(opts.acquire_timeout)
                    .after_connect(writer_pragmas)
                    .connect(url)
                    .await?;
                let read = AnyPoolOptions::new()
                    .max_connections(opts.max_connections.max(2))
                    .test_before_acquire(false)
                    .acquire_timeout(opts.acquire_timeout)
                    .after_connect(reader_pragmas)
                    .connect(url)
                    .await?;
                Ok(Db { backend, read, write })
            }
            Backend::Postgres => {
                let pool =
                    AnyPoolOptions::new().max_connections(opts.max_connections).acquire_timeout(opts.acquire_timeout).connect(url).await?;
                Ok(Db { backend, read: pool.clone(), write: pool })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Pool for reads outside a write transaction.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Starts the one kind of transaction that may write.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(self.write.begin().await?)
    }

    pub async fn ping(&self) -> Result<()> {
        self.read.execute("SELECT 1").await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// Current time in Unix milliseconds; the only clock the store layer offers, used by callers
/// that do not take time from the domain.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A short, non-reversible fingerprint of a secret for the audit trail.
pub fn short_digest(secret: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(secret.as_bytes())[..6])
}

#[cfg(test)]
mod tests {
    use super::unique_field;

    #[test]
    fn unique_field_names_the_column_after_the_table_name() {
        assert_eq!(unique_field(Some("catalogue_items_code"), Some("catalogue_items"), ""), "code");
        assert_eq!(unique_field(Some("ticket_external_refs_source"), Some("ticket_external_refs"), ""), "source");
        assert_eq!(unique_field(Some("users_email"), None, ""), "email");
        assert_eq!(unique_field(None, None, "UNIQUE constraint failed: mailboxes.address"), "address");
        assert_eq!(unique_field(None, None, "something else"), "value");
    }
}

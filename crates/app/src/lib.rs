//! Keel's use cases for every process: authorise → load → apply the domain rules → persist
//! the record, its audit entry and its outbox message in one transaction.

pub mod audit;
pub mod auth;
mod change_notices;
pub mod changes;
pub mod cmdb;
mod cmdb_classes;
pub mod cmdb_graph;
pub mod cmdb_import;
pub mod commit_group;
pub mod demo;
pub mod desk;
pub mod directory;
pub mod error;
pub mod history_names;
pub mod import;
pub mod incident_views;
pub mod incidents;
pub mod jobs;
pub mod mail_imap;
pub mod mail_in;
pub mod major_incidents;
pub mod notifications;
pub mod outbox;
pub mod problems;
pub mod reference;
pub mod releases;
pub mod search;
pub mod secrets;
pub mod service_level;
pub mod sla_clocks;
pub mod testing;
pub mod users;
pub mod writer;

pub use error::{AppError, Result};
pub use keel_domain::identity::Principal;
pub use keel_store::Db;
pub use writer::Writer;

use std::sync::Arc;

/// Where use cases read the time; tests substitute a controllable clock.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// Security settings of an instance, from `keel.toml` / `KEEL_*`.
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    pub session_idle_ms: i64,
    pub session_max_ms: i64,
    pub max_failed_logins: i64,
    pub lockout_ms: i64,
    pub ip_window_ms: i64,
    pub ip_max_failures: i64,
    pub setup_token_ttl_ms: i64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            session_idle_ms: 8 * 3600 * 1000,
            session_max_ms: 30 * 24 * 3600 * 1000,
            max_failed_logins: 5,
            lockout_ms: 15 * 60 * 1000,
            ip_window_ms: 15 * 60 * 1000,
            ip_max_failures: 30,
            setup_token_ttl_ms: 24 * 3600 * 1000,
        }
    }
}

/// The application: the database, the clock and the settings, passed to every use case.
#[derive(Clone, Debug)]
pub struct App {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub security: SecurityConfig,
    /// Identifies this process as a job lease owner.
    pub instance_id: String,
    /// Email and webhook delivery settings.
    pub notify: Arc<notifications::NotifyConfig>,
    /// Where attachments are kept, and how large one may be.
    pub files: Arc<desk::FileStore>,
    /// This process's full-text index (see `search`).
    pub search: search::Search,
    /// This process's copy of the CI graph for impact analysis (see `cmdb_graph`).
    pub cmdb_graph: Arc<cmdb_graph::GraphCache>,
    /// How often the job runner looks for due jobs, and how long it leases one.
    pub jobs: jobs::JobConfig,
    /// This process's copy of the priority matrix, SLAs and calendars (see `reference`).
    pub reference: Arc<reference::ReferenceCache>,
    /// This process's queue of new tickets written in one transaction (see `commit_group`).
    pub commit_group: Arc<commit_group::CommitGroup>,
    /// Encrypts the webhook secrets and IMAP passwords kept in the database (see `secrets`);
    /// without a key they cannot be stored.
    pub secrets: Arc<secrets::SecretBox>,
}

impl App {
    pub fn new(db: Db, security: SecurityConfig) -> Self {
        App {
            db,
            clock: Arc::new(SystemClock),
            security,
            instance_id: format!("keel-{}", uuid::Uuid::new_v4()),
            notify: Arc::new(notifications::NotifyConfig::default()),
            files: Arc::new(desk::FileStore::default()),
            search: search::Search::disabled(),
            cmdb_graph: Arc::default(),
            jobs: jobs::JobConfig::default(),
            reference: Arc::default(),
            commit_group: Arc::default(),
            secrets: Arc::default(),
        }
    }

    pub fn with_secrets(mut self, secrets: secrets::SecretBox) -> Self {
        self.secrets = Arc::new(secrets);
        self
    }

    pub fn with_jobs(mut self, jobs: jobs::JobConfig) -> Self {
        self.jobs = jobs;
        self
    }

    pub fn with_notify(mut self, notify: notifications::NotifyConfig) -> Self {
        self.notify = Arc::new(notify);
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_files(mut self, files: desk::FileStore) -> Self {
        self.files = Arc::new(files);
        self
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A connection for reads outside a write transaction.
    pub async fn read(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.db.reader().acquire().await.map_err(keel_store::StoreError::from)?)
    }

    /// Starts the one path through which every write goes.
    pub async fn write(&self, actor: &Principal) -> Result<Writer> {
        if actor.is_read_only() {
            return Err(AppError::Forbidden);
        }
        Writer::begin(&self.db, actor, self.clock.as_ref()).await
    }
}

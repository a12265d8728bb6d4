//! Reading and checking the audit trail (审计日志) of every process's records.

use crate::{App, AppError, Principal, Result};
use keel_domain::audit::AuditFault;
use keel_domain::identity::{Action, AdminArea};
use keel_store::audit::{self, HistoryEntry, TrailFilter};

/// The outcome of `keel check` and of the audit verification page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IntegrityReport {
    pub schema_version: i64,
    pub expected_schema_version: i64,
    pub audit_entries: i64,
    pub audit_faults: Vec<AuditFault>,
    pub database_ok: bool,
    pub database_messages: Vec<String>,
}

impl IntegrityReport {
    pub fn ok(&self) -> bool {
        self.schema_version == self.expected_schema_version && self.audit_faults.is_empty() && self.database_ok
    }
}

impl App {
    /// History of one record; callers have already checked the actor may see the record.
    pub async fn history(&self, entity_type: &str, entity_id: &str) -> Result<Vec<HistoryEntry>> {
        let mut c = self.read().await?;
        Ok(audit::history(&mut c, entity_type, entity_id).await?)
    }

    /// The trail across records: auditors, administrators and the management representative.
    pub async fn audit_trail(&self, actor: &Principal, f: &TrailFilter) -> Result<Vec<HistoryEntry>> {
        if !actor.may_admin(AdminArea::AuditTrail, Action::Read) {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        Ok(audit::trail(&mut c, f).await?)
    }

    /// Seals all unsealed entries into a new checkpoint.
    pub async fn audit_checkpoint(&self) -> Result<Option<(String, i64)>> {
        let mut tx = self.db.begin().await?;
        let r = audit::write_checkpoint(&mut tx, self.now()).await?;
        tx.commit().await.map_err(keel_store::StoreError::from)?;
        Ok(r)
    }

    /// Schema, audit chain and database integrity: what `keel check` reports.
    pub async fn integrity_check(&self) -> Result<IntegrityReport> {
        let applied = keel_store::migrate::applied(&self.db).await?;
        let mut c = self.read().await?;
        let (faults, entries) = audit::verify(&mut c).await?;
        let messages = keel_store::kernel::database_integrity(&mut c, self.db.backend()).await?;
        let ok = messages.is_empty();
        Ok(IntegrityReport {
            schema_version: applied.last().copied().unwrap_or(0),
            expected_schema_version: keel_store::migrate::latest_version(),
            audit_entries: entries,
            audit_faults: faults,
            database_ok: ok,
            database_messages: messages,
        })
    }
}

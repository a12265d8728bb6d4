//! The single write path of every process: one transaction holding the record changes, their
//! audit entries and their outbox messages, committed together or not at all.

use crate::{AppError, Principal, Result};
use keel_domain::audit::{AuditAction, diff};
use keel_store::{Db, Tx, audit as audit_store, kernel};

pub struct Writer {
    pub tx: Tx,
    pub actor: Principal,
    pub now: i64,
}

impl Writer {
    /// The time is read once the transaction has begun: on SQLite that is after waiting for the
    /// single writer, so `created_at` of outbox rows stays close to their commit, which the
    /// outbox followers' re-read window relies on.
    pub(crate) async fn begin(db: &Db, actor: &Principal, clock: &dyn crate::Clock) -> Result<Writer> {
        let tx = db.begin().await?;
        Ok(Writer { tx, actor: actor.clone(), now: clock.now_ms() })
    }

    /// The connection inside the transaction, for store calls.
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// Records a create / change / delete of one record: the audit entry (field, old → new)
    /// and an outbox message for search and notifications. An update that changed nothing
    /// writes nothing.
    pub async fn record(
        &mut self,
        entity_type: &str,
        entity_id: &str,
        action: AuditAction,
        before: Option<&serde_json::Value>,
        after: Option<&serde_json::Value>,
    ) -> Result<()> {
        let changes = diff(before, after, &[]);
        if changes.is_empty() && action == AuditAction::Update {
            return Ok(());
        }
        let changes_json = serde_json::to_string(&changes).map_err(|e| AppError::Internal(e.to_string()))?;
        audit_store::append(
            &mut self.tx,
            &audit_store::NewEntry {
                entity_type,
                entity_id,
                action: action.as_str(),
                actor_id: &self.actor.user_id,
                actor_label: &self.actor.display_name,
                at_ms: self.now,
                changes_json: &changes_json,
            },
        )
        .await?;
        let changed: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        let payload = serde_json::json!({ "action": action.as_str(), "record": after.or(before), "changed": changed }).to_string();
        kernel::push_outbox(
            &mut self.tx,
            &kernel::OutboxMessage { topic: "record_changed", entity_type, entity_id, payload: &payload },
            self.now,
        )
        .await?;
        Ok(())
    }

    /// Announces an event for notification, committed with the change it reports, so a
    /// notification is prepared exactly when (and only if) the change is stored.
    pub async fn announce(&mut self, a: &keel_domain::notification::Announcement) -> Result<()> {
        let payload = serde_json::to_string(a).map_err(|e| AppError::Internal(e.to_string()))?;
        kernel::push_outbox(
            &mut self.tx,
            &kernel::OutboxMessage {
                topic: keel_domain::notification::Announcement::TOPIC,
                entity_type: &a.entity_type,
                entity_id: &a.entity_id,
                payload: &payload,
            },
            self.now,
        )
        .await?;
        Ok(())
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await.map_err(keel_store::StoreError::from)?;
        Ok(())
    }
}

/// Serialises a record for the audit trail.
pub fn snapshot<T: serde::Serialize>(v: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(v).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("created_at");
        o.remove("updated_at");
        o.remove("version");
    }
    v
}

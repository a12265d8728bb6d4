//! The single write path of every process: one transaction holding the record changes, their
//! audit entries and their outbox messages, committed together or not at all.

use crate::{AppError, Principal, Result};
use keel_domain::audit::{AuditAction, diff};
use keel_store::{Db, Tx, audit as audit_store, kernel};

pub struct Writer {
    pub tx: Tx,
    pub actor: Principal,
    pub now: i64,
    /// Outbox messages held back to be written in one statement (grouped ticket writes, see `in_group`).
    deferred: Option<Vec<Deferred>>,
}

/// An outbox message held back until commit; its id is taken when it is pushed, so the outbox
/// keeps the order in which the messages were pushed.
struct Deferred {
    id: String,
    topic: &'static str,
    entity_type: String,
    entity_id: String,
    payload: String,
}

impl Writer {
    /// The time is read once the transaction has begun: on SQLite that is after waiting for the
    /// single writer, so `created_at` of outbox rows stays close to their commit, which the
    /// outbox followers' re-read window relies on.
    pub(crate) async fn begin(db: &Db, actor: &Principal, clock: &dyn crate::Clock) -> Result<Writer> {
        let tx = db.begin().await?;
        Ok(Writer { tx, actor: actor.clone(), now: clock.now_ms(), deferred: None })
    }

    async fn push_outbox(&mut self, topic: &'static str, entity_type: &str, entity_id: &str, payload: String) -> Result<()> {
        if let Some(d) = &mut self.deferred {
            let (entity_type, entity_id) = (entity_type.to_string(), entity_id.to_string());
            d.push(Deferred { id: keel_store::new_id(), topic, entity_type, entity_id, payload });
            return Ok(());
        }
        kernel::push_outbox(&mut self.tx, &kernel::OutboxMessage { topic, entity_type, entity_id, payload: &payload }, self.now).await?;
        Ok(())
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
        self.record_entry(entity_type, entity_id, action, before, after, false).await
    }

    /// Records the creation of a record whose id was made in this transaction (so its audit
    /// chain is empty).
    pub async fn record_new(&mut self, entity_type: &str, entity_id: &str, after: &serde_json::Value) -> Result<()> {
        self.record_entry(entity_type, entity_id, AuditAction::Create, None, Some(after), true).await
    }

    async fn record_entry(
        &mut self,
        entity_type: &str,
        entity_id: &str,
        action: AuditAction,
        before: Option<&serde_json::Value>,
        after: Option<&serde_json::Value>,
        first: bool,
    ) -> Result<()> {
        let changes = diff(before, after, &[]);
        if changes.is_empty() && action == AuditAction::Update {
            return Ok(());
        }
        let changes_json = serde_json::to_string(&changes).map_err(|e| AppError::Internal(e.to_string()))?;
        let entry = audit_store::NewEntry {
            entity_type,
            entity_id,
            action: action.as_str(),
            actor_id: &self.actor.user_id,
            actor_label: &self.actor.display_name,
            at_ms: self.now,
            changes_json: &changes_json,
        };
        if first {
            audit_store::append_first(&mut self.tx, &entry).await?;
        } else {
            audit_store::append(&mut self.tx, &entry).await?;
        }
        let changed: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        let payload = serde_json::json!({ "action": action.as_str(), "record": after.or(before), "changed": changed }).to_string();
        self.push_outbox("record_changed", entity_type, entity_id, payload).await
    }

    /// Announces an event for notification, committed with the change it reports, so a
    /// notification is prepared exactly when (and only if) the change is stored.
    pub async fn announce(&mut self, a: &keel_domain::notification::Announcement) -> Result<()> {
        let payload = serde_json::to_string(a).map_err(|e| AppError::Internal(e.to_string()))?;
        self.push_outbox(keel_domain::notification::Announcement::TOPIC, &a.entity_type, &a.entity_id, payload).await
    }

    pub async fn commit(mut self) -> Result<()> {
        self.write_deferred().await?;
        self.tx.commit().await.map_err(keel_store::StoreError::from)?;
        Ok(())
    }

    /// A writer for one job of the group transaction (`commit_group`). Its outbox messages
    /// are held back and written in one statement when the job ends.
    pub(crate) fn in_group(tx: Tx, actor: &Principal, now: i64) -> Writer {
        Writer { tx, actor: actor.clone(), now, deferred: Some(Vec::new()) }
    }

    /// Ends a grouped job: when it succeeded, writes its held-back outbox messages. Hands the
    /// transaction back to the group, which commits it.
    pub(crate) async fn release_to_group<T>(mut self, out: Result<T>) -> (Tx, Result<T>) {
        let out = match out {
            Ok(v) => self.write_deferred().await.map(|()| v),
            Err(e) => Err(e),
        };
        (self.tx, out)
    }

    async fn write_deferred(&mut self) -> Result<()> {
        if let Some(d) = self.deferred.take() {
            let messages: Vec<kernel::OutboxMessage> = d
                .iter()
                .map(|m| kernel::OutboxMessage {
                    topic: m.topic,
                    entity_type: &m.entity_type,
                    entity_id: &m.entity_id,
                    payload: &m.payload,
                })
                .collect();
            let rows: Vec<(String, &kernel::OutboxMessage)> = d.iter().zip(&messages).map(|(m, o)| (m.id.clone(), o)).collect();
            kernel::push_outbox_rows(&mut self.tx, &rows, self.now).await?;
        }
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

//! Communication with customers and staff (ISO/IEC 20000-1 §8.3.2): each person's choice of
//! the notification event kinds they are not emailed about.
//!
//! The rule: anyone (staff or customer contact) may opt out of any event kind except the
//! [`MANDATORY_KINDS`] — notices that ask the recipient to act or that §8.6 requires to reach
//! everyone concerned: major-incident updates, SLA breaches and SLA escalations. Opting out
//! stops email to that person only; chat webhooks and other recipients are not affected.

use super::templates::EVENT_KINDS;
use crate::{App, AppError, Principal, Result};
use keel_domain::FieldError;
use keel_domain::audit::AuditAction;
use keel_store::notifications as store;

/// Event kinds nobody can opt out of.
pub const MANDATORY_KINDS: &[&str] = &["incident.major_update", "sla.breached", "sla.escalated"];

/// One event kind as a person's preferences show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Preference {
    pub event_kind: String,
    /// Always sent; cannot be switched off.
    pub mandatory: bool,
    /// The person is emailed about it.
    pub subscribed: bool,
}

impl App {
    /// Every event kind and whether the signed-in person is emailed about it.
    pub async fn notification_preferences(&self, actor: &Principal) -> Result<Vec<Preference>> {
        if actor.user_id.is_empty() {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        let out = store::opt_outs(&mut c, &actor.user_id).await?;
        Ok(preferences(&out))
    }

    /// Replaces the signed-in person's opt-outs; a mandatory or unknown kind is refused
    /// (`mandatory_notification` / `invalid_choice` on `opt_outs`).
    pub async fn set_notification_opt_outs(&self, actor: &Principal, kinds: &[String]) -> Result<Vec<Preference>> {
        if actor.user_id.is_empty() {
            return Err(AppError::Forbidden);
        }
        let mut errors = Vec::new();
        for k in kinds {
            if MANDATORY_KINDS.contains(&k.as_str()) {
                errors.push(FieldError::new("opt_outs", "mandatory_notification", format!("{k} is always sent")));
            } else if !EVENT_KINDS.contains(&k.as_str()) {
                errors.push(FieldError::new("opt_outs", "invalid_choice", format!("unknown event kind {k}")));
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let mut kinds = kinds.to_vec();
        kinds.sort();
        kinds.dedup();
        let mut w = self.write(actor).await?;
        let before = store::opt_outs(&mut w.tx, &actor.user_id).await?;
        if before != kinds {
            store::set_opt_outs(&mut w.tx, &actor.user_id, &kinds, w.now).await?;
            let snap = |v: &[String]| serde_json::json!({ "notification_opt_outs": v });
            let user_id = actor.user_id.clone();
            w.record("user", &user_id, AuditAction::Update, Some(&snap(&before)), Some(&snap(&kinds))).await?;
        }
        w.commit().await?;
        Ok(preferences(&kinds))
    }
}

fn preferences(opted_out: &[String]) -> Vec<Preference> {
    EVENT_KINDS
        .iter()
        .map(|k| {
            let mandatory = MANDATORY_KINDS.contains(k);
            Preference { event_kind: k.to_string(), mandatory, subscribed: mandatory || !opted_out.iter().any(|o| o == k) }
        })
        .collect()
}

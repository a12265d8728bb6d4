//! Incident management: the major incident procedure (重大事件): declaring one with its
//! manager, standing it down, and the log of communications to customers and stakeholders.

use super::number::TicketKind;
use super::refs::{Ref, References, required_ref};
use super::ticket::{Actor, REASON_MAX, TicketState};
use crate::error::{DomainError, Errors, FieldError};
use crate::validate::required_text;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest communication summary in characters.
pub const SUMMARY_MAX: usize = 4_000;

/// A ticket's major incident flag. It exists only with a manager: a major incident nobody
/// runs is exactly what the procedure is there to prevent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MajorIncident {
    pub manager_id: String,
    pub reason: String,
    pub declared_at: DateTime<Utc>,
    pub declared_by: Actor,
}

/// The record of a major incident being downgraded to an ordinary one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandDown {
    pub reason: String,
    pub at: DateTime<Utc>,
    pub by: Actor,
}

fn staff_only(actor: &Actor, errors: &mut Errors) {
    if !actor.is_staff() {
        errors.push(FieldError::new("actor", "not_staff", "only staff run the major incident procedure"));
    }
}

/// Declares `ticket` a major incident run by `manager_id`.
pub fn declare_major_incident(
    ticket: &TicketState,
    current: Option<&MajorIncident>,
    manager_id: &str,
    reason: &str,
    actor: &Actor,
    refs: &impl References,
    now: DateTime<Utc>,
) -> Result<MajorIncident, DomainError> {
    let mut errors = Errors::new();
    staff_only(actor, &mut errors);
    if ticket.kind() != TicketKind::Incident {
        errors.push(FieldError::new("kind", "not_incident", "only incidents can be major incidents"));
    }
    if !ticket.status.is_open() {
        errors.push(FieldError::new("status", "not_open", "a resolved or closed ticket cannot be declared major"));
    }
    if current.is_some() {
        errors.push(FieldError::new("major_incident", "already_major", "the ticket is already a major incident"));
    }
    let manager_id = errors.check(required_ref(refs, Ref::Agent, "manager_id", manager_id));
    let reason = errors.check(required_text("reason", reason, REASON_MAX));
    errors.finish()?;
    match (manager_id, reason) {
        (Some(manager_id), Some(reason)) => Ok(MajorIncident { manager_id, reason, declared_at: now, declared_by: actor.clone() }),
        _ => unreachable!("each missing value recorded an error above"),
    }
}

/// Hands a major incident to another manager.
pub fn change_major_incident_manager(
    ticket: &TicketState,
    major: &MajorIncident,
    manager_id: &str,
    actor: &Actor,
    refs: &impl References,
) -> Result<MajorIncident, DomainError> {
    let mut errors = Errors::new();
    staff_only(actor, &mut errors);
    if ticket.closure.is_some() {
        errors.push(FieldError::new("status", "closed", "a closed ticket cannot be changed"));
    }
    let manager_id = errors.check(required_ref(refs, Ref::Agent, "manager_id", manager_id));
    if manager_id.as_deref() == Some(major.manager_id.as_str()) {
        errors.push(FieldError::new("manager_id", "unchanged", "this person already manages the major incident"));
    }
    errors.finish()?;
    Ok(MajorIncident { manager_id: manager_id.unwrap_or_else(|| major.manager_id.clone()), ..major.clone() })
}

/// Downgrades a major incident. The declaration and its communications stay on record.
pub fn stand_down_major_incident(
    ticket: &TicketState,
    major: Option<&MajorIncident>,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<StandDown, DomainError> {
    let mut errors = Errors::new();
    staff_only(actor, &mut errors);
    if major.is_none() {
        errors.push(FieldError::new("major_incident", "not_major", "the ticket is not a major incident"));
    }
    if ticket.closure.is_some() {
        errors.push(FieldError::new("status", "closed", "a closed ticket cannot be changed"));
    }
    let reason = errors.check(required_text("reason", reason, REASON_MAX));
    errors.finish()?;
    Ok(StandDown { reason: reason.unwrap_or_default(), at: now, by: actor.clone() })
}

stable_str_enum! {
    /// Who a major incident communication went to.
    pub enum Audience {
        Customers => "customers",
        ServiceDesk => "service_desk",
        Management => "management",
        Stakeholders => "stakeholders",
        Suppliers => "suppliers",
    }
}

stable_str_enum! {
    pub enum CommunicationMedium {
        Email => "email",
        Phone => "phone",
        Chat => "chat",
        Portal => "portal",
        Sms => "sms",
        Meeting => "meeting",
    }
}

/// A communication as entered in the form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CommunicationInput {
    pub audience: String,
    pub medium: String,
    pub summary: String,
    /// When it went out, if not now (a phone call logged afterwards).
    pub sent_at: Option<DateTime<Utc>>,
    /// When the next update is promised.
    pub next_update_due: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunicationEntry {
    pub audience: Audience,
    pub medium: CommunicationMedium,
    pub summary: String,
    pub sent_at: DateTime<Utc>,
    pub next_update_due: Option<DateTime<Utc>>,
    pub author: Actor,
}

/// Validates an entry of a major incident's communication log.
pub fn record_communication(
    ticket: &TicketState,
    major: Option<&MajorIncident>,
    input: &CommunicationInput,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<CommunicationEntry, DomainError> {
    let mut errors = Errors::new();
    staff_only(actor, &mut errors);
    if major.is_none() {
        errors.push(FieldError::new("major_incident", "not_major", "communications are logged for major incidents"));
    }
    if ticket.closure.is_some() {
        errors.push(FieldError::new("status", "closed", "a closed ticket cannot be changed"));
    }
    let audience = errors.check(Audience::parse_field("audience", &input.audience));
    let medium = errors.check(CommunicationMedium::parse_field("medium", &input.medium));
    let summary = errors.check(required_text("summary", &input.summary, SUMMARY_MAX));
    let sent_at = input.sent_at.unwrap_or(now);
    if sent_at > now {
        errors.push(FieldError::new("sent_at", "in_future", "a communication cannot be logged before it is sent"));
    }
    if input.next_update_due.is_some_and(|due| due <= sent_at) {
        errors.push(FieldError::new("next_update_due", "not_after_sent", "the next update must come after this one"));
    }
    errors.finish()?;
    match (audience, medium, summary) {
        (Some(audience), Some(medium), Some(summary)) => {
            Ok(CommunicationEntry { audience, medium, summary, sent_at, next_update_due: input.next_update_due, author: actor.clone() })
        }
        _ => unreachable!("each missing value recorded an error above"),
    }
}

/// Whether the update promised in the latest communication is overdue at `now`, while the
/// incident is still open: the reminder the major incident manager gets.
/// `promised` is the next update due of the latest communication.
pub fn communication_overdue(ticket: &TicketState, promised: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    ticket.status.is_open() && promised.is_some_and(|due| now > due)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::lifecycle::Status;
    use crate::incident::number::TicketNumber;
    use chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 11, 8, 0, 0).unwrap()
    }
    fn ticket(kind: TicketKind) -> TicketState {
        TicketState::open("t", TicketNumber::new(kind, 1).unwrap(), "c", now()).0
    }
    fn refs(kind: Ref, id: &str) -> bool {
        kind == Ref::Agent && id.starts_with("mgr")
    }
    fn staff() -> Actor {
        Actor::Staff("desk".into())
    }
    fn codes(e: DomainError) -> Vec<&'static str> {
        match e {
            DomainError::Invalid(v) => v.into_iter().map(|f| f.code).collect(),
            other => panic!("{other:?}"),
        }
    }
    fn major() -> MajorIncident {
        declare_major_incident(&ticket(TicketKind::Incident), None, "mgr-1", "core network down", &staff(), &refs, now()).unwrap()
    }

    #[test]
    fn declaring_needs_a_manager_and_a_reason() {
        let m = major();
        assert_eq!((m.manager_id.as_str(), m.declared_at), ("mgr-1", now()));
        let t = ticket(TicketKind::Incident);
        assert_eq!(codes(declare_major_incident(&t, None, "", "", &staff(), &refs, now()).unwrap_err()), ["required", "required"]);
        assert_eq!(codes(declare_major_incident(&t, None, "nobody", "x", &staff(), &refs, now()).unwrap_err()), ["not_found"]);
        assert_eq!(codes(declare_major_incident(&t, Some(&m), "mgr-1", "x", &staff(), &refs, now()).unwrap_err()), ["already_major"]);
        let contact = Actor::Contact("c".into());
        assert_eq!(codes(declare_major_incident(&t, None, "mgr-1", "x", &contact, &refs, now()).unwrap_err()), ["not_staff"]);
    }

    #[test]
    fn only_open_incidents_become_major() {
        let req = ticket(TicketKind::ServiceRequest);
        assert_eq!(codes(declare_major_incident(&req, None, "mgr-1", "x", &staff(), &refs, now()).unwrap_err()), ["not_incident"]);
        let mut resolved = ticket(TicketKind::Incident);
        resolved.status = Status::Resolved;
        assert_eq!(codes(declare_major_incident(&resolved, None, "mgr-1", "x", &staff(), &refs, now()).unwrap_err()), ["not_open"]);
    }

    #[test]
    fn manager_changes_and_stand_down() {
        let t = ticket(TicketKind::Incident);
        let m = major();
        assert_eq!(change_major_incident_manager(&t, &m, "mgr-2", &staff(), &refs).unwrap().manager_id, "mgr-2");
        assert_eq!(codes(change_major_incident_manager(&t, &m, "mgr-1", &staff(), &refs).unwrap_err()), ["unchanged"]);
        assert_eq!(codes(change_major_incident_manager(&t, &m, "", &staff(), &refs).unwrap_err()), ["required"]);
        let s = stand_down_major_incident(&t, Some(&m), " single site only ", &staff(), now()).unwrap();
        assert_eq!(s.reason, "single site only");
        assert_eq!(codes(stand_down_major_incident(&t, None, "", &staff(), now()).unwrap_err()), ["not_major", "required"]);
    }

    #[test]
    fn communications() {
        let t = ticket(TicketKind::Incident);
        let m = major();
        let input = CommunicationInput {
            audience: "customers".into(),
            medium: "email".into(),
            summary: "Core network outage; next update 09:00".into(),
            sent_at: None,
            next_update_due: Some(now() + Duration::hours(1)),
        };
        let e = record_communication(&t, Some(&m), &input, &staff(), now()).unwrap();
        assert_eq!((e.audience, e.medium, e.sent_at), (Audience::Customers, CommunicationMedium::Email, now()));
        assert!(!communication_overdue(&t, e.next_update_due, now() + Duration::hours(1)));
        assert!(communication_overdue(&t, e.next_update_due, now() + Duration::minutes(61)));
        assert!(!communication_overdue(&t, None, now() + Duration::days(1)));

        let bad = CommunicationInput {
            audience: "everyone".into(),
            medium: "pigeon".into(),
            summary: " ".into(),
            sent_at: Some(now() + Duration::minutes(5)),
            next_update_due: Some(now()),
        };
        assert_eq!(
            codes(record_communication(&t, None, &bad, &Actor::Contact("c".into()), now()).unwrap_err()),
            ["not_staff", "not_major", "invalid_choice", "invalid_choice", "required", "in_future", "not_after_sent"]
        );
    }
}

//! Service desk: public replies (公开回复) the customer sees and internal notes (内部备注)
//! only staff see.

use super::lifecycle::{PendingReason, Status};
use super::ticket::{Actor, Command, TicketState};
use crate::error::{DomainError, Errors, FieldError};
use crate::identity::AccountKind;
use crate::validate::required_text;
use serde::{Deserialize, Serialize};

/// Longest comment body in characters.
pub const BODY_MAX: usize = 100_000;

stable_str_enum! {
    pub enum Visibility {
        /// A public reply: the reporter and their organisation's contacts see it.
        Public => "public",
        /// An internal note: staff only.
        Internal => "internal",
    }
}

/// Whether a viewer of this kind may see a comment of this visibility.
pub fn may_see_comment(viewer: AccountKind, visibility: Visibility) -> bool {
    match viewer {
        AccountKind::Staff => true,
        AccountKind::Contact => visibility == Visibility::Public,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewComment {
    pub author: Actor,
    pub visibility: Visibility,
    pub body: String,
}

/// Validates a comment on a ticket in `status`. Contacts write public replies only; nobody
/// writes on a closed ticket, whose record is final (the reporter reopens it instead).
pub fn new_comment(status: Status, author: &Actor, visibility: Visibility, body: &str) -> Result<NewComment, DomainError> {
    let mut errors = Errors::new();
    if !may_see_comment(author.account_kind(), visibility) {
        errors.push(FieldError::new("visibility", "not_allowed", "customers can only write public replies"));
    }
    if status == Status::Closed {
        errors.push(FieldError::new("status", "closed", "a closed ticket cannot be changed"));
    }
    let body = errors.check(required_text("body", body, BODY_MAX));
    errors.finish()?;
    Ok(NewComment { author: author.clone(), visibility, body: body.unwrap_or_default() })
}

/// The command a reply sets off: when a ticket waits for the customer and the customer answers,
/// waiting is over. The system issues the resume, so it is recorded as automatic.
pub fn resume_on_reply(ticket: &TicketState, comment: &NewComment) -> Option<Command> {
    let customer_answers = matches!(comment.author, Actor::Contact(_)) || ticket.is_reporter(&comment.author);
    (ticket.status == Status::Pending
        && ticket.pending_reason() == Some(PendingReason::WaitingForCustomer)
        && comment.visibility == Visibility::Public
        && customer_answers)
        .then_some(Command::Resume)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::number::{TicketKind, TicketNumber};
    use crate::incident::ticket::{Assignment, Pending};
    use chrono::{TimeZone, Utc};

    fn contact() -> Actor {
        Actor::Contact("c1".into())
    }
    fn codes(e: DomainError) -> Vec<&'static str> {
        match e {
            DomainError::Invalid(v) => v.into_iter().map(|f| f.code).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn visibility_rules() {
        assert!(may_see_comment(AccountKind::Staff, Visibility::Internal));
        assert!(may_see_comment(AccountKind::Staff, Visibility::Public));
        assert!(may_see_comment(AccountKind::Contact, Visibility::Public));
        assert!(!may_see_comment(AccountKind::Contact, Visibility::Internal));
    }

    #[test]
    fn who_writes_what() {
        let c = new_comment(Status::InProgress, &contact(), Visibility::Public, " any news? ").unwrap();
        assert_eq!(c.body, "any news?");
        assert!(new_comment(Status::Resolved, &Actor::Staff("a".into()), Visibility::Internal, "checked logs").is_ok());
        assert!(new_comment(Status::New, &Actor::System, Visibility::Internal, "routed by rule").is_ok());
        assert_eq!(
            codes(new_comment(Status::Closed, &contact(), Visibility::Internal, "").unwrap_err()),
            ["not_allowed", "closed", "required"]
        );
        assert_eq!(codes(new_comment(Status::New, &contact(), Visibility::Public, &"x".repeat(BODY_MAX + 1)).unwrap_err()), ["too_long"]);
    }

    #[test]
    fn a_customer_reply_resumes_waiting_for_customer() {
        let at = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
        let (mut t, _) = TicketState::open("t", TicketNumber::new(TicketKind::Incident, 3).unwrap(), "c1", at);
        t.status = Status::Pending;
        t.assignment = Assignment { team_id: Some("team".into()), agent_id: None };
        t.pending = Some(Pending { reason: PendingReason::WaitingForCustomer, note: None });
        let reply = new_comment(t.status, &contact(), Visibility::Public, "here it is").unwrap();
        assert_eq!(resume_on_reply(&t, &reply), Some(Command::Resume));
        let note = new_comment(t.status, &Actor::Staff("a".into()), Visibility::Public, "reminder").unwrap();
        assert_eq!(resume_on_reply(&t, &note), None);
        t.pending = Some(Pending { reason: PendingReason::WaitingForSupplier, note: None });
        assert_eq!(resume_on_reply(&t, &reply), None);
    }
}

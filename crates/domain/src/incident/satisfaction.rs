//! Service desk and business relationship management: the customer's satisfaction rating
//! (客户满意度) of a resolved ticket.
//!
//! The reporter rates a ticket once it is resolved, 1 (very dissatisfied) to 5 (very
//! satisfied), with an optional comment. While the ticket is still resolved the reporter may
//! change the rating (e.g. after a second look); once the ticket is closed the rating is part
//! of a closed record and final. A ticket closed without a rating can still be rated once, as
//! survey e-mails often arrive after auto-close. Cancelled and merged tickets are not rated.

use super::lifecycle::Status;
use super::ticket::{Actor, TicketState};
use crate::error::{DomainError, Errors, FieldError};
use crate::validate::optional_text;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest rating comment in characters.
pub const COMMENT_MAX: usize = 2_000;

/// A score from 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Score(u8);

impl Score {
    pub const MIN: u8 = 1;
    pub const MAX: u8 = 5;

    pub fn new(field: &str, value: i64) -> Result<Self, FieldError> {
        u8::try_from(value)
            .ok()
            .filter(|v| (Self::MIN..=Self::MAX).contains(v))
            .map(Score)
            .ok_or_else(|| FieldError::new(field, "out_of_range", format!("{field} must be from 1 to 5")))
    }
    pub fn get(self) -> u8 {
        self.0
    }
    /// Scores of 1 or 2 call for a follow-up by the account manager.
    pub fn is_dissatisfied(self) -> bool {
        self.0 <= 2
    }
}

impl TryFrom<u8> for Score {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        Score::new("score", i64::from(v)).map_err(|e| e.message)
    }
}

impl From<Score> for u8 {
    fn from(s: Score) -> u8 {
        s.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Satisfaction {
    pub score: Score,
    pub comment: Option<String>,
    pub rated_by: String,
    pub rated_at: DateTime<Utc>,
}

/// Validates a rating (new, or replacing `existing`) by `rater` at `now`; see the module notes
/// for when a rating may be given or changed.
pub fn rate(
    ticket: &TicketState,
    existing: Option<&Satisfaction>,
    rater: &Actor,
    score: i64,
    comment: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Satisfaction, DomainError> {
    let mut errors = Errors::new();
    let rater_id = rater.user_id().filter(|_| ticket.is_reporter(rater));
    if rater_id.is_none() {
        errors.push(FieldError::new("actor", "not_reporter", "only the reporter may rate the ticket"));
    }
    let rateable = match ticket.status {
        Status::Resolved => true,
        Status::Closed => ticket.closure.as_ref().is_some_and(|c| c.kind.follows_resolution()),
        _ => false,
    };
    if !rateable {
        errors.push(FieldError::new("status", "not_resolved", "only resolved or closed tickets can be rated"));
    } else if existing.is_some() && ticket.status == Status::Closed {
        errors.push(FieldError::new("score", "already_rated", "the ticket is closed and its rating is final"));
    }
    let score = errors.check(Score::new("score", score));
    let comment = errors.check(optional_text("comment", comment, COMMENT_MAX)).flatten();
    errors.finish()?;
    match (score, rater_id) {
        (Some(score), Some(id)) => Ok(Satisfaction { score, comment, rated_by: id.to_string(), rated_at: now }),
        _ => unreachable!("each missing value recorded an error above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::number::{TicketKind, TicketNumber};
    use crate::incident::ticket::{Assignment, Closure, ClosureKind, Resolution, ResolutionCode};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 4, 1, 10, 0, 0).unwrap()
    }
    fn ticket(status: Status) -> TicketState {
        let (mut s, _) = TicketState::open("t", TicketNumber::new(TicketKind::Incident, 5).unwrap(), "contact-1", now());
        s.status = status;
        s.assignment = Assignment { team_id: Some("team".into()), agent_id: None };
        if matches!(status, Status::Resolved | Status::Closed) {
            s.resolution =
                Some(Resolution { code: ResolutionCode::Solved, notes: "n".into(), resolved_at: now(), resolved_by: Actor::System });
        }
        if status == Status::Closed {
            s.closure = Some(Closure { kind: ClosureKind::AutoClosed, closed_at: now(), closed_by: Actor::System });
        }
        s
    }
    fn reporter() -> Actor {
        Actor::Contact("contact-1".into())
    }
    fn codes(e: DomainError) -> Vec<&'static str> {
        match e {
            DomainError::Invalid(v) => v.into_iter().map(|f| f.code).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_reporter_rates_a_resolved_ticket() {
        let r = rate(&ticket(Status::Resolved), None, &reporter(), 4, Some(" quick fix "), now()).unwrap();
        assert_eq!((r.score.get(), r.comment.as_deref(), r.rated_by.as_str()), (4, Some("quick fix"), "contact-1"));
        assert!(!r.score.is_dissatisfied());
        let again = rate(&ticket(Status::Resolved), Some(&r), &reporter(), 2, None, now()).unwrap();
        assert!(again.score.is_dissatisfied());
    }

    #[test]
    fn closed_tickets_take_one_final_rating() {
        let closed = ticket(Status::Closed);
        let r = rate(&closed, None, &reporter(), 5, None, now()).unwrap();
        assert_eq!(codes(rate(&closed, Some(&r), &reporter(), 1, None, now()).unwrap_err()), ["already_rated"]);
        let mut cancelled = closed;
        cancelled.closure.as_mut().unwrap().kind = ClosureKind::Cancelled { reason: "x".into() };
        cancelled.resolution = None;
        assert_eq!(codes(rate(&cancelled, None, &reporter(), 5, None, now()).unwrap_err()), ["not_resolved"]);
    }

    #[test]
    fn refusals_are_collected() {
        assert_eq!(
            codes(
                rate(&ticket(Status::InProgress), None, &Actor::Staff("agent".into()), 6, Some(&"x".repeat(COMMENT_MAX + 1)), now())
                    .unwrap_err()
            ),
            ["not_reporter", "not_resolved", "out_of_range", "too_long"]
        );
        assert_eq!(
            codes(rate(&ticket(Status::Resolved), None, &Actor::System, 0, None, now()).unwrap_err()),
            ["not_reporter", "out_of_range"]
        );
        assert_eq!(codes(rate(&ticket(Status::Resolved), None, &reporter(), -1, None, now()).unwrap_err()), ["out_of_range"]);
    }

    #[test]
    fn score_serde_is_checked() {
        assert_eq!(serde_json::to_string(&Score::new("s", 3).unwrap()).unwrap(), "3");
        assert!(serde_json::from_str::<Score>("0").is_err());
        assert!(serde_json::from_str::<Score>("5").is_ok());
    }
}

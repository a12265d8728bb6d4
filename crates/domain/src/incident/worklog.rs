//! Incident management: work logs (工作记录), the time staff spend on a ticket, which feeds
//! cost accounting.

use super::lifecycle::Status;
use super::ticket::Actor;
use crate::error::{DomainError, Errors, FieldError};
use crate::validate::optional_text;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One entry covers at most a day; longer efforts are logged per day.
pub const MAX_MINUTES_PER_ENTRY: u32 = 24 * 60;
/// Longest work log note in characters.
pub const NOTE_MAX: usize = 4_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkLogEntry {
    pub author_id: String,
    pub minutes: u32,
    /// When the work was done (it may be logged afterwards).
    pub performed_at: DateTime<Utc>,
    pub note: Option<String>,
}

/// Validates a work log entry on a ticket in `status`. Only staff log work, and not on closed
/// tickets, whose records are final.
pub fn new_work_log(
    status: Status,
    author: &Actor,
    minutes: i64,
    performed_at: Option<DateTime<Utc>>,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<WorkLogEntry, DomainError> {
    let mut errors = Errors::new();
    let author_id = match author {
        Actor::Staff(id) => Some(id.clone()),
        Actor::Contact(_) | Actor::System => {
            errors.push(FieldError::new("actor", "not_staff", "only staff log work"));
            None
        }
    };
    if status == Status::Closed {
        errors.push(FieldError::new("status", "closed", "a closed ticket cannot be changed"));
    }
    let minutes = u32::try_from(minutes).ok().filter(|m| (1..=MAX_MINUTES_PER_ENTRY).contains(m));
    if minutes.is_none() {
        errors.push(FieldError::new("minutes", "out_of_range", format!("time spent must be from 1 to {MAX_MINUTES_PER_ENTRY} minutes")));
    }
    let performed_at = performed_at.unwrap_or(now);
    if performed_at > now {
        errors.push(FieldError::new("performed_at", "in_future", "work cannot be logged before it is done"));
    }
    let note = errors.check(optional_text("note", note, NOTE_MAX)).flatten();
    errors.finish()?;
    match (author_id, minutes) {
        (Some(author_id), Some(minutes)) => Ok(WorkLogEntry { author_id, minutes, performed_at, note }),
        _ => unreachable!("each missing value recorded an error above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }
    fn staff() -> Actor {
        Actor::Staff("tech".into())
    }
    fn codes(e: DomainError) -> Vec<&'static str> {
        match e {
            DomainError::Invalid(v) => v.into_iter().map(|f| f.code).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn minutes_are_bounded() {
        let e = new_work_log(Status::InProgress, &staff(), 90, None, Some(" swapped disk "), now()).unwrap();
        assert_eq!((e.minutes, e.performed_at, e.note.as_deref(), e.author_id.as_str()), (90, now(), Some("swapped disk"), "tech"));
        assert!(new_work_log(Status::Resolved, &staff(), 1440, None, None, now()).is_ok());
        for bad in [0, -5, 1441, i64::MAX] {
            assert_eq!(codes(new_work_log(Status::InProgress, &staff(), bad, None, None, now()).unwrap_err()), ["out_of_range"], "{bad}");
        }
    }

    #[test]
    fn who_when_and_where() {
        let later = now() + Duration::minutes(1);
        assert_eq!(
            codes(new_work_log(Status::Closed, &Actor::Contact("c".into()), 10, Some(later), None, now()).unwrap_err()),
            ["not_staff", "closed", "in_future"]
        );
        assert_eq!(codes(new_work_log(Status::New, &Actor::System, 10, None, None, now()).unwrap_err()), ["not_staff"]);
        let yesterday = now() - Duration::days(1);
        assert_eq!(new_work_log(Status::Pending, &staff(), 30, Some(yesterday), None, now()).unwrap().performed_at, yesterday);
    }
}

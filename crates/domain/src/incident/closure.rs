//! Incident management: automatic closure of resolved tickets the customer neither confirms nor
//! rejects within a number of business days.

use super::lifecycle::Status;
use super::ticket::TicketState;
use chrono::{DateTime, Utc};

/// When a ticket resolved at `resolved_at` becomes due for auto-close. Business days are counted
/// by the caller's calendar (`add_business_days`, from the SLA calendar module). The result is
/// never before the resolution, whatever the calendar returns.
pub fn auto_close_at(
    resolved_at: DateTime<Utc>,
    business_days: u32,
    add_business_days: impl Fn(DateTime<Utc>, u32) -> DateTime<Utc>,
) -> DateTime<Utc> {
    add_business_days(resolved_at, business_days).max(resolved_at)
}

/// Whether the auto-close job should apply `Command::AutoClose` to this ticket at `now`: it is
/// still resolved and the configured business days have passed since its latest resolution.
pub fn auto_close_due(
    state: &TicketState,
    business_days: u32,
    now: DateTime<Utc>,
    add_business_days: impl Fn(DateTime<Utc>, u32) -> DateTime<Utc>,
) -> bool {
    match (&state.status, &state.resolution) {
        (Status::Resolved, Some(r)) => now >= auto_close_at(r.resolved_at, business_days, add_business_days),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::number::{TicketKind, TicketNumber};
    use crate::incident::ticket::{Actor, Assignment, Resolution, ResolutionCode};
    use chrono::{Datelike, Duration, TimeZone, Weekday};

    /// A Monday-to-Friday calendar without holidays, enough to exercise the rule.
    fn weekdays(start: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        let mut t = start;
        let mut left = days;
        while left > 0 {
            t += Duration::days(1);
            if !matches!(t.weekday(), Weekday::Sat | Weekday::Sun) {
                left -= 1;
            }
        }
        t
    }

    fn resolved_on_friday() -> TicketState {
        let friday = Utc.with_ymd_and_hms(2026, 3, 6, 16, 0, 0).unwrap();
        let (mut s, _) = TicketState::open("t", TicketNumber::new(TicketKind::Incident, 1).unwrap(), "c", friday);
        s.status = Status::Resolved;
        s.assignment = Assignment { team_id: Some("team".into()), agent_id: None };
        s.resolution =
            Some(Resolution { code: ResolutionCode::Solved, notes: "n".into(), resolved_at: friday, resolved_by: Actor::System });
        s
    }

    #[test]
    fn due_after_business_days_not_calendar_days() {
        let s = resolved_on_friday();
        let resolved = s.resolution.as_ref().unwrap().resolved_at;
        let tuesday = resolved + Duration::days(4);
        assert_eq!(auto_close_at(resolved, 2, weekdays), tuesday);
        assert!(!auto_close_due(&s, 2, resolved + Duration::days(3), weekdays), "the weekend does not count");
        assert!(!auto_close_due(&s, 2, tuesday - Duration::seconds(1), weekdays));
        assert!(auto_close_due(&s, 2, tuesday, weekdays));
    }

    #[test]
    fn only_resolved_tickets_are_due() {
        let mut s = resolved_on_friday();
        let much_later = s.status_changed_at + Duration::days(365);
        s.status = Status::Closed;
        assert!(!auto_close_due(&s, 1, much_later, weekdays));
        s.status = Status::InProgress;
        s.resolution = None;
        assert!(!auto_close_due(&s, 1, much_later, weekdays));
    }

    #[test]
    fn a_backwards_calendar_cannot_close_before_resolution() {
        let s = resolved_on_friday();
        let resolved = s.resolution.as_ref().unwrap().resolved_at;
        let broken = |t: DateTime<Utc>, _| t - Duration::days(10);
        assert_eq!(auto_close_at(resolved, 3, broken), resolved);
        assert!(!auto_close_due(&s, 3, resolved - Duration::seconds(1), broken));
        assert!(auto_close_due(&s, 0, resolved, |t, _| t));
    }
}

//! Incident management: property tests of the lifecycle against random command sequences.

use super::lifecycle::{Action, PendingReason, Status, TRANSITIONS, reachable_from, transition};
use super::links::{LinkSubject, check_merge};
use super::number::{TicketKind, TicketNumber};
use super::ticket::*;
use crate::error::DomainError;
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

fn actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        3 => Just(Actor::Staff("agent-1".into())),
        1 => Just(Actor::Staff("agent-2".into())),
        2 => Just(Actor::Contact("reporter".into())),
        1 => Just(Actor::Contact("someone-else".into())),
        1 => Just(Actor::System),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![1 => Just(String::new()), 1 => Just("  ".to_string()), 8 => Just("because".to_string())]
}

fn assignment() -> impl Strategy<Value = Assignment> {
    let id = prop_oneof![Just(None), Just(Some("team-1".to_string())), Just(Some("team-2".to_string())), Just(Some(" ".to_string()))];
    let agent = prop_oneof![Just(None), Just(Some("agent-1".to_string())), Just(Some("agent-2".to_string()))];
    (id, agent).prop_map(|(team_id, agent_id)| Assignment { team_id, agent_id })
}

/// Random command inputs, valid or not.
#[derive(Debug, Clone)]
struct Inputs {
    assignment: Assignment,
    pending_reason: PendingReason,
    note: Option<String>,
    code: ResolutionCode,
    text: String,
    checked_for_this: bool,
}

fn inputs() -> impl Strategy<Value = Inputs> {
    (
        assignment(),
        prop::sample::select(PendingReason::ALL.to_vec()),
        prop::option::of(text()),
        prop::sample::select(ResolutionCode::ALL.to_vec()),
        text(),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(assignment, pending_reason, note, code, text, checked_for_this)| Inputs {
            assignment,
            pending_reason,
            note,
            code,
            text,
            checked_for_this,
        })
}

#[derive(Debug, Clone)]
enum Step {
    /// Any action at all, most of them not allowed from the current status.
    Any(Action, Inputs),
    /// One of the actions the table allows from the current status (the `usize` picks which),
    /// so that sequences get deep into the lifecycle; cancelling and merging, which end it, only
    /// when the flag says so.
    Allowed(usize, bool, Inputs),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (prop::sample::select(Action::ALL.to_vec()), inputs()).prop_map(|(a, i)| Step::Any(a, i)),
        4 => (any::<usize>(), prop::bool::weighted(0.1), inputs()).prop_map(|(n, end, i)| Step::Allowed(n, end, i)),
    ]
}

fn command(action: Action, i: Inputs, state: &TicketState) -> Command {
    match action {
        Action::Assign => Command::Assign { assignment: i.assignment },
        Action::Reassign => Command::Reassign { assignment: i.assignment },
        Action::Start => Command::Start,
        Action::Pend => Command::Pend { reason: i.pending_reason, note: i.note },
        Action::Resume => Command::Resume,
        Action::Resolve => Command::Resolve { code: i.code, notes: i.text },
        Action::Confirm => Command::Confirm,
        Action::Reject => Command::Reject { reason: i.text },
        Action::Close => Command::Close,
        Action::AutoClose => Command::AutoClose,
        Action::Reopen => Command::Reopen { reason: i.text },
        Action::Cancel => Command::Cancel { reason: i.text },
        Action::MarkDuplicate => {
            let number = state.number;
            let other = TicketNumber::new(number.kind(), number.seq() + 1).unwrap_or(number);
            let dup_id = if i.checked_for_this { state.id.as_str() } else { "another" };
            let dup = LinkSubject { id: dup_id, number, project_id: "p", status: Status::New };
            let target = LinkSubject { id: "target", number: other, project_id: "p", status: Status::InProgress };
            Command::MarkDuplicate { target: check_merge(&dup, &target, |_| None).expect("a valid merge") }
        }
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random commands by random actors, at times that sometimes run backwards: every accepted
    /// command follows a row of the table and keeps the state consistent; every refused one is
    /// refused for the right reason; and the status log stays ordered and ends in the final state.
    #[test]
    fn random_commands_follow_the_table(
        request in any::<bool>(),
        window in prop::option::weighted(0.8, 0u32..10),
        steps in prop::collection::vec((actor(), step(), -30i64..3000), 1..50),
    ) {
        let kind = if request { TicketKind::ServiceRequest } else { TicketKind::Incident };
        let (mut state, first) = TicketState::open("t-1", TicketNumber::new(kind, 1).unwrap(), "reporter", t0());
        let mut log = vec![first];
        let policy = LifecyclePolicy { reopen_window_days: window };
        let reachable = reachable_from(Status::New);
        let mut now = t0();
        for (actor, step, minutes) in steps {
            now += Duration::minutes(minutes);
            let (action, inputs) = match step {
                Step::Any(action, inputs) => (action, inputs),
                Step::Allowed(n, end, inputs) => {
                    let ends = |a: &Action| matches!(a, Action::Cancel | Action::MarkDuplicate);
                    let allowed: Vec<Action> =
                        TRANSITIONS.iter().filter(|t| t.from == state.status).map(|t| t.action).filter(|a| end || !ends(a)).collect();
                    (allowed[n % allowed.len()], inputs)
                }
            };
            let cmd = command(action, inputs, &state);
            let ctx = Context::new(now, &actor, &policy);
            let offered = available_actions(&state, &ctx).contains(&cmd.action());
            let row = transition(state.status, cmd.action());
            match apply(&state, &cmd, &ctx) {
                Ok(applied) => {
                    let row = row.expect("accepted only along a row of the table");
                    prop_assert!(offered, "{} was accepted but not offered", cmd.action());
                    prop_assert_eq!(applied.state.status, row.to);
                    prop_assert!(reachable.contains(&applied.state.status));
                    applied.state.check_invariants().map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                    let changed = applied.state.status != state.status;
                    prop_assert_eq!(applied.status_log_entry().is_some(), changed);
                    if let Some(entry) = applied.status_log_entry() {
                        prop_assert_eq!(entry.at, now.max(state.status_changed_at));
                        prop_assert_eq!(entry.from, Some(state.status));
                        prop_assert_eq!(entry.to, applied.state.status);
                        prop_assert_eq!(entry.pending_reason, applied.state.pending_reason());
                        log.push(entry.clone());
                    } else {
                        prop_assert_eq!(applied.state.status_changed_at, state.status_changed_at);
                    }
                    state = applied.state;
                }
                Err(DomainError::InvalidTransition { from, .. }) => {
                    prop_assert!(row.is_none());
                    prop_assert_eq!(from, state.status.as_str());
                }
                Err(DomainError::Invalid(errors)) => {
                    prop_assert!(row.is_some());
                    prop_assert!(!errors.is_empty());
                }
                Err(other) => prop_assert!(false, "unexpected error {:?}", other),
            }
        }
        let (status, reason) = check_status_log(&log).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(status, state.status);
        prop_assert_eq!(reason, state.pending_reason());
        prop_assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
        prop_assert_eq!(log.last().map(|e| e.at), Some(state.status_changed_at));
    }
}

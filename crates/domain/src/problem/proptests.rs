//! Problem management: property tests of the lifecycle against random command sequences.

use super::lifecycle::{Action, Status, TRANSITIONS, reachable_from, transition};
use super::number::{KnownErrorNumber, ProblemNumber};
use super::record::*;
use crate::error::DomainError;
use crate::incident::ticket::{Actor, Assignment};
use crate::validate::Locale;
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

fn actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        6 => Just(Actor::Staff("analyst".into())),
        1 => Just(Actor::Contact("customer".into())),
        1 => Just(Actor::System),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![1 => Just(String::new()), 1 => Just(" ".to_string()), 8 => Just("found it".to_string())]
}

#[derive(Debug, Clone)]
struct Inputs {
    assignment: Assignment,
    method: RcaMethod,
    text: String,
    root_cause: Option<String>,
    publish: bool,
}

fn inputs() -> impl Strategy<Value = Inputs> {
    let team = prop_oneof![Just(None), Just(Some("net".to_string())), Just(Some("apps".to_string()))];
    (team, prop::sample::select(RcaMethod::ALL.to_vec()), text(), prop::option::of(text()), any::<bool>()).prop_map(
        |(team_id, method, text, root_cause, publish)| Inputs {
            assignment: Assignment { team_id, agent_id: None },
            method,
            text,
            root_cause,
            publish,
        },
    )
}

#[derive(Debug, Clone)]
enum Step {
    Any(Action, Inputs),
    /// An action the table allows from the current status; cancelling only when the flag says so.
    Allowed(usize, bool, Inputs),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (prop::sample::select(Action::ALL.to_vec()), inputs()).prop_map(|(a, i)| Step::Any(a, i)),
        4 => (any::<usize>(), prop::bool::weighted(0.1), inputs()).prop_map(|(n, end, i)| Step::Allowed(n, end, i)),
    ]
}

fn command(action: Action, i: Inputs, ke_seq: u64) -> Command {
    match action {
        Action::Investigate => Command::Investigate { assignment: i.assignment },
        Action::Reassign => Command::Reassign { assignment: i.assignment },
        Action::RecordRca => Command::RecordRca { method: i.method, findings: i.text, root_cause: i.root_cause },
        Action::RecordWorkaround => Command::RecordWorkaround { text: i.text },
        Action::DeclareKnownError => Command::DeclareKnownError {
            number: KnownErrorNumber::new(ke_seq).unwrap_or(KnownErrorNumber::new(1).unwrap()),
            title: i.text.clone(),
            symptoms: i.text,
            publish_to_portal: i.publish,
            language: if i.publish { Locale::ZhCn } else { Locale::En },
        },
        Action::SetPublication => Command::SetPublication { publish_to_portal: i.publish },
        Action::Resolve => Command::Resolve { notes: i.text, fixing_change_id: i.root_cause },
        Action::Reopen => Command::Reopen { reason: i.text },
        Action::Close => Command::Close,
        Action::Cancel => Command::Cancel { reason: i.text },
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random commands by random actors, at times that sometimes run backwards: accepted
    /// commands follow the table and keep the problem consistent, refusals have the right
    /// kind, and the status log stays ordered and ends in the final status.
    #[test]
    fn random_commands_follow_the_table(steps in prop::collection::vec((actor(), step(), -30i64..3000), 1..50)) {
        let (mut state, first) = ProblemState::open("p-1", ProblemNumber::new(1).unwrap(), t0());
        let mut log = vec![first];
        let reachable = reachable_from(Status::New);
        let mut now = t0();
        for (n, (actor, step, minutes)) in steps.into_iter().enumerate() {
            now += Duration::minutes(minutes);
            let (action, inputs) = match step {
                Step::Any(action, inputs) => (action, inputs),
                Step::Allowed(k, end, inputs) => {
                    let allowed: Vec<Action> = TRANSITIONS
                        .iter()
                        .filter(|t| t.from == state.status && (end || t.action != Action::Cancel))
                        .map(|t| t.action)
                        .collect();
                    match allowed.len() {
                        0 => (Action::Cancel, inputs),
                        len => (allowed[k % len], inputs),
                    }
                }
            };
            let cmd = command(action, inputs, n as u64 + 1);
            let ctx = Context::new(now, &actor);
            let offered = available_actions(&state, &ctx).contains(&action);
            let row = transition(state.status, action);
            match apply(&state, &cmd, &ctx) {
                Ok(applied) => {
                    let row = row.expect("accepted only along a row of the table");
                    prop_assert!(offered, "{} was accepted but not offered", action);
                    prop_assert_eq!(applied.state.status, row.to);
                    prop_assert!(reachable.contains(&applied.state.status));
                    applied.state.check_invariants().map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                    prop_assert_eq!(applied.status_log_entry().is_some(), applied.state.status != state.status);
                    if let Some(entry) = applied.status_log_entry() {
                        prop_assert_eq!(entry.at, now.max(state.status_changed_at));
                        log.push(entry.clone());
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
        let status = check_status_log(&log).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(status, state.status);
        prop_assert_eq!(log.last().map(|e| e.at), Some(state.status_changed_at));
    }
}

//! Problem management: a problem's state (root-cause analysis, workaround, known error,
//! resolution), the commands that change it, and [`apply`], which enforces the lifecycle table.

use super::known_error::{KnownError, KnownErrorEntry, SYMPTOMS_MAX, TITLE_MAX};
use super::lifecycle::{Action, Guard, Status, TRANSITIONS, transition};
use super::number::{KnownErrorNumber, ProblemNumber};
use crate::error::{DomainError, Errors, FieldError};
use crate::incident::stable_str_enum;
use crate::incident::ticket::{Actor, Assignment, REASON_MAX};
use crate::validate::{Locale, optional_text, required_text};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const FINDINGS_MAX: usize = 20_000;
pub const ROOT_CAUSE_MAX: usize = 4_000;
pub const WORKAROUND_MAX: usize = 10_000;
/// Kept below the incidents' limit so the notes fit when copied to linked incidents.
pub const RESOLUTION_NOTES_MAX: usize = 8_000;

stable_str_enum! {
    /// The root-cause analysis technique used.
    pub enum RcaMethod {
        FiveWhys => "five_whys",
        /// Cause-and-effect (fishbone) diagram.
        Ishikawa => "ishikawa",
        KepnerTregoe => "kepner_tregoe",
        FaultTree => "fault_tree",
        Other => "other",
    }
}

/// Root-cause analysis: how it was done, what was found, and the root cause once identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rca {
    pub method: RcaMethod,
    pub findings: String,
    pub root_cause: Option<String>,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Actor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workaround {
    pub text: String,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Actor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemResolution {
    pub notes: String,
    /// The change that removed the root cause, if one did. Its existence is checked by the
    /// caller (`References`), as `apply` sees no other records.
    pub fixing_change_id: Option<String>,
    pub resolved_at: DateTime<Utc>,
    pub resolved_by: Actor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProblemClosureKind {
    Resolved,
    Cancelled { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemClosure {
    pub kind: ProblemClosureKind,
    pub closed_at: DateTime<Utc>,
    pub closed_by: Actor,
}

/// One status change of a problem. The first entry has no `from` and no `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusLogEntry {
    pub at: DateTime<Utc>,
    pub from: Option<Status>,
    pub to: Status,
    pub action: Option<Action>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemState {
    pub id: String,
    pub number: ProblemNumber,
    pub status: Status,
    pub status_changed_at: DateTime<Utc>,
    pub assignment: Assignment,
    pub rca: Option<Rca>,
    pub workaround: Option<Workaround>,
    /// Set once the known error is declared; it stays, as a record, after resolution.
    pub known_error: Option<KnownErrorEntry>,
    pub resolution: Option<ProblemResolution>,
    pub closure: Option<ProblemClosure>,
    pub reopen_count: u32,
}

impl ProblemState {
    pub fn open(id: impl Into<String>, number: ProblemNumber, now: DateTime<Utc>) -> (Self, StatusLogEntry) {
        let state = ProblemState {
            id: id.into(),
            number,
            status: Status::New,
            status_changed_at: now,
            assignment: Assignment::default(),
            rca: None,
            workaround: None,
            known_error: None,
            resolution: None,
            closure: None,
            reopen_count: 0,
        };
        (state, StatusLogEntry { at: now, from: None, to: Status::New, action: None })
    }

    pub fn root_cause(&self) -> Option<&str> {
        self.rca.as_ref().and_then(|r| r.root_cause.as_deref())
    }

    /// The known error record as the known error database shows it, if one was declared.
    pub fn known_error_record(&self) -> Option<KnownError> {
        KnownError::of(self)
    }

    /// Checks the rules every state reachable through [`apply`] obeys.
    pub fn check_invariants(&self) -> Result<(), DomainError> {
        let closed_as_resolved = matches!(&self.closure, Some(c) if c.kind == ProblemClosureKind::Resolved);
        let cause_or_workaround = self.root_cause().is_some() || self.workaround.is_some();
        let broken = [
            (self.status.requires_assignment() && self.assignment.is_empty(), "an assignment once investigated"),
            (self.closure.is_some() != (self.status == Status::Closed), "a closure exactly when closed"),
            (
                self.resolution.is_some() != (self.status == Status::Resolved || closed_as_resolved),
                "a resolution exactly when resolved or closed after resolution",
            ),
            (self.resolution.is_some() && self.root_cause().is_none(), "a root cause when resolved"),
            (self.status == Status::KnownError && self.known_error.is_none(), "a known error record when a known error"),
            (self.known_error.is_some() && !cause_or_workaround, "a root cause or workaround in its known error"),
            (self.known_error.as_ref().is_some_and(|k| k.publish_to_portal) && self.workaround.is_none(), "a workaround when published"),
        ];
        match broken.iter().find(|(bad, _)| *bad) {
            Some((_, rule)) => Err(DomainError::Conflict(format!("problem {} is inconsistent: it must have {rule}", self.number))),
            None => Ok(()),
        }
    }
}

/// Everything [`apply`] needs besides the problem and the command.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub actor: &'a Actor,
}

impl<'a> Context<'a> {
    pub fn new(now: DateTime<Utc>, actor: &'a Actor) -> Self {
        Context { now, actor }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Command {
    Investigate {
        assignment: Assignment,
    },
    Reassign {
        assignment: Assignment,
    },
    RecordRca {
        method: RcaMethod,
        findings: String,
        root_cause: Option<String>,
    },
    RecordWorkaround {
        text: String,
    },
    /// `number` comes from the known error counter, taken in the same transaction.
    DeclareKnownError {
        number: KnownErrorNumber,
        title: String,
        symptoms: String,
        publish_to_portal: bool,
        language: Locale,
    },
    SetPublication {
        publish_to_portal: bool,
    },
    Resolve {
        notes: String,
        fixing_change_id: Option<String>,
    },
    Reopen {
        reason: String,
    },
    Close,
    Cancel {
        reason: String,
    },
}

impl Command {
    pub fn action(&self) -> Action {
        match self {
            Command::Investigate { .. } => Action::Investigate,
            Command::Reassign { .. } => Action::Reassign,
            Command::RecordRca { .. } => Action::RecordRca,
            Command::RecordWorkaround { .. } => Action::RecordWorkaround,
            Command::DeclareKnownError { .. } => Action::DeclareKnownError,
            Command::SetPublication { .. } => Action::SetPublication,
            Command::Resolve { .. } => Action::Resolve,
            Command::Reopen { .. } => Action::Reopen,
            Command::Close => Action::Close,
            Command::Cancel { .. } => Action::Cancel,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    StatusChanged(StatusLogEntry),
    AssignmentChanged {
        previous: Assignment,
        current: Assignment,
    },
    RcaRecorded {
        method: RcaMethod,
        root_cause_identified: bool,
    },
    WorkaroundRecorded,
    /// The known error database entry is new or changed (content, publication or status):
    /// refresh the search index and the portal.
    KnownErrorChanged(KnownError),
    /// Resolved: see `linked::follow_ups_on_resolution` for the linked incidents.
    Resolved,
    Reopened {
        reason: String,
    },
    Closed {
        kind: ProblemClosureKind,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub state: ProblemState,
    pub events: Vec<Event>,
}

impl Applied {
    pub fn status_log_entry(&self) -> Option<&StatusLogEntry> {
        self.events.iter().find_map(|e| match e {
            Event::StatusChanged(entry) => Some(entry),
            _ => None,
        })
    }
}

fn command_assignment(cmd: &Command) -> Option<&Assignment> {
    match cmd {
        Command::Investigate { assignment } | Command::Reassign { assignment } => Some(assignment),
        _ => None,
    }
}

fn normalized(a: &Assignment) -> Assignment {
    let clean = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    Assignment { team_id: clean(&a.team_id), agent_id: clean(&a.agent_id) }
}

/// Checks one guard. Without a command (`None`), only what depends on the actor and the problem
/// is checked, which is what [`available_actions`] needs.
fn check_guard(guard: Guard, state: &ProblemState, cmd: Option<&Command>, ctx: &Context<'_>, e: &mut Errors) {
    let has_workaround = state.workaround.is_some();
    match (guard, cmd) {
        (Guard::Staff, _) if !ctx.actor.is_staff() => {
            e.push(FieldError::new("actor", "not_staff", "only staff work on problems"));
        }
        (Guard::AssigneeGiven, Some(cmd)) if command_assignment(cmd).is_some_and(Assignment::is_empty) => {
            e.push(FieldError::new("assignment", "required", "a team or an agent is required"));
        }
        (Guard::AssignmentChanges, Some(cmd))
            if command_assignment(cmd).is_some_and(|a| normalized(a) == normalized(&state.assignment)) =>
        {
            e.push(FieldError::new("assignment", "unchanged", "the problem is already assigned there"));
        }
        (Guard::RcaGiven, Some(Command::RecordRca { findings, root_cause, .. })) => {
            e.check(required_text("findings", findings, FINDINGS_MAX));
            let cause = e.check(optional_text("root_cause", root_cause.as_deref(), ROOT_CAUSE_MAX)).flatten();
            if state.known_error.is_some() && cause.is_none() && !has_workaround {
                e.push(FieldError::new("root_cause", "required", "the known error needs its root cause or a workaround"));
            }
        }
        (Guard::WorkaroundGiven, Some(Command::RecordWorkaround { text })) => {
            e.check(required_text("workaround", text, WORKAROUND_MAX));
        }
        (Guard::RootCauseOrWorkaround, _) if state.root_cause().is_none() && !has_workaround => {
            e.push(FieldError::new("root_cause", "root_cause_or_workaround", "record the root cause or a workaround first"));
        }
        (Guard::KnownErrorGiven, Some(Command::DeclareKnownError { title, symptoms, .. })) => {
            e.check(required_text("title", title, TITLE_MAX));
            e.check(required_text("symptoms", symptoms, SYMPTOMS_MAX));
        }
        (
            Guard::PublishableWorkaround,
            Some(Command::SetPublication { publish_to_portal: true } | Command::DeclareKnownError { publish_to_portal: true, .. }),
        ) if !has_workaround => {
            e.push(FieldError::new("publish_to_portal", "workaround_required", "only known errors with a workaround are published"));
        }
        (Guard::RootCauseKnown, _) if state.root_cause().is_none() => {
            e.push(FieldError::new("root_cause", "required", "a problem is resolved by removing its root cause: record it first"));
        }
        (Guard::ResolutionGiven, Some(Command::Resolve { notes, fixing_change_id })) => {
            e.check(required_text("resolution_notes", notes, RESOLUTION_NOTES_MAX));
            if let Some(id) = fixing_change_id.as_deref().map(str::trim).filter(|s| !s.is_empty())
                && (id.len() > crate::incident::refs::MAX_ID_LEN || id.chars().any(char::is_whitespace))
            {
                e.push(FieldError::new("fixing_change_id", "invalid_id", "fixing_change_id is not a record id"));
            }
        }
        (Guard::ReasonGiven, Some(Command::Reopen { reason } | Command::Cancel { reason })) => {
            e.check(required_text("reason", reason, REASON_MAX));
        }
        _ => {}
    }
}

fn refused(state: &ProblemState, action: Action) -> DomainError {
    let to = action.target().map_or(action.as_str(), Status::as_str);
    DomainError::InvalidTransition { from: state.status.as_str().into(), to: to.into() }
}

/// Applies `cmd` to `problem`: finds the row of [`TRANSITIONS`], checks every guard (reporting
/// all failures at once) and returns the new state and its events. A refused action names the
/// status it would lead to, or itself for work within a status. Status log instants never go
/// back, even if this server's clock is slightly behind the one that wrote the previous entry.
pub fn apply(problem: &ProblemState, cmd: &Command, ctx: &Context<'_>) -> Result<Applied, DomainError> {
    let action = cmd.action();
    let row = transition(problem.status, action).ok_or_else(|| refused(problem, action))?;
    let mut errors = Errors::new();
    for &g in row.guards {
        check_guard(g, problem, Some(cmd), ctx, &mut errors);
    }
    errors.finish()?;

    let at = ctx.now.max(problem.status_changed_at);
    let actor = ctx.actor.clone();
    let trimmed = |s: &str| s.trim().to_string();
    let mut next = problem.clone();
    let mut events = Vec::new();
    match cmd {
        Command::Investigate { assignment } | Command::Reassign { assignment } => {
            next.assignment = normalized(assignment);
            events.push(Event::AssignmentChanged { previous: problem.assignment.clone(), current: next.assignment.clone() });
        }
        Command::RecordRca { method, findings, root_cause } => {
            let root_cause = root_cause.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
            events.push(Event::RcaRecorded { method: *method, root_cause_identified: root_cause.is_some() });
            next.rca = Some(Rca { method: *method, findings: trimmed(findings), root_cause, recorded_at: at, recorded_by: actor });
        }
        Command::RecordWorkaround { text } => {
            next.workaround = Some(Workaround { text: trimmed(text), recorded_at: at, recorded_by: actor });
            events.push(Event::WorkaroundRecorded);
        }
        Command::DeclareKnownError { number, title, symptoms, publish_to_portal, language } => {
            next.known_error = Some(KnownErrorEntry {
                number: *number,
                title: trimmed(title),
                symptoms: trimmed(symptoms),
                publish_to_portal: *publish_to_portal,
                language: *language,
                recorded_at: at,
            });
        }
        Command::SetPublication { publish_to_portal } => {
            if let Some(k) = next.known_error.as_mut() {
                k.publish_to_portal = *publish_to_portal;
            }
        }
        Command::Resolve { notes, fixing_change_id } => {
            let fixing_change_id = fixing_change_id.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
            next.resolution = Some(ProblemResolution { notes: trimmed(notes), fixing_change_id, resolved_at: at, resolved_by: actor });
            events.push(Event::Resolved);
        }
        Command::Reopen { reason } => {
            next.resolution = None;
            next.reopen_count += 1;
            events.push(Event::Reopened { reason: trimmed(reason) });
        }
        Command::Close => {
            next.closure = Some(ProblemClosure { kind: ProblemClosureKind::Resolved, closed_at: at, closed_by: actor });
        }
        Command::Cancel { reason } => {
            let kind = ProblemClosureKind::Cancelled { reason: trimmed(reason) };
            next.closure = Some(ProblemClosure { kind, closed_at: at, closed_by: actor });
        }
    }
    next.status = row.to;
    if let (Some(c), None) = (&next.closure, &problem.closure) {
        events.push(Event::Closed { kind: c.kind.clone() });
    }
    if next.status != problem.status {
        next.status_changed_at = at;
        events.insert(0, Event::StatusChanged(StatusLogEntry { at, from: Some(problem.status), to: next.status, action: Some(action) }));
    }
    if let Some(after) = next.known_error_record()
        && problem.known_error_record().as_ref() != Some(&after)
    {
        events.push(Event::KnownErrorChanged(after));
    }
    Ok(Applied { state: next, events })
}

/// The actions `ctx.actor` may take on this problem now, judged on who they are and on the
/// problem's content; what the command carries is checked when it is applied.
pub fn available_actions(problem: &ProblemState, ctx: &Context<'_>) -> Vec<Action> {
    TRANSITIONS
        .iter()
        .filter(|t| t.from == problem.status)
        .filter(|t| {
            let mut errors = Errors::new();
            for &g in t.guards {
                check_guard(g, problem, None, ctx, &mut errors);
            }
            errors.finish().is_ok()
        })
        .map(|t| t.action)
        .collect()
}

/// Checks a problem's status log: it starts new, each entry continues the previous one along a
/// row of [`TRANSITIONS`], and instants never go back. Returns the status the problem must be in.
pub fn check_status_log(entries: &[StatusLogEntry]) -> Result<Status, DomainError> {
    let bad = |i: usize, code: &'static str, message: &str| DomainError::field(format!("status_log[{i}]"), code, message);
    let first = entries.first().ok_or_else(|| DomainError::field("status_log", "required", "the status log is empty"))?;
    if first.from.is_some() || first.to != Status::New || first.action.is_some() {
        return Err(bad(0, "invalid_start", "a problem's log starts with it being raised as new"));
    }
    for (i, pair) in entries.windows(2).enumerate() {
        let (prev, e) = (&pair[0], &pair[1]);
        if e.at < prev.at {
            return Err(bad(i + 1, "out_of_order", "a status change is earlier than the one before it"));
        }
        if e.from != Some(prev.to) {
            return Err(bad(i + 1, "broken_chain", "a status change does not start where the previous one ended"));
        }
        if !e.action.and_then(|a| transition(prev.to, a)).is_some_and(|t| t.to == e.to && t.from != t.to) {
            return Err(bad(i + 1, "not_in_lifecycle", "a status change is not in the lifecycle table"));
        }
    }
    Ok(entries.last().unwrap_or(first).to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 2, 9, 0, 0).unwrap()
    }
    fn hours(h: i64) -> DateTime<Utc> {
        t0() + Duration::hours(h)
    }
    fn analyst() -> Actor {
        Actor::Staff("analyst".into())
    }
    fn team(id: &str) -> Assignment {
        Assignment { team_id: Some(id.into()), agent_id: None }
    }
    fn codes(e: DomainError) -> Vec<&'static str> {
        match e {
            DomainError::Invalid(v) => v.into_iter().map(|f| f.code).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }
    fn rca(root_cause: Option<&str>) -> Command {
        Command::RecordRca { method: RcaMethod::FiveWhys, findings: "why ×5".into(), root_cause: root_cause.map(String::from) }
    }
    fn declare(publish: bool) -> Command {
        Command::DeclareKnownError {
            number: KnownErrorNumber::new(1).unwrap(),
            title: "VPN drops after sleep".into(),
            symptoms: "Client shows 'tunnel closed' on wake".into(),
            publish_to_portal: publish,
            language: Locale::ZhCn,
        }
    }
    fn resolve() -> Command {
        Command::Resolve { notes: "driver upgraded by CHG-000012".into(), fixing_change_id: Some(" chg-12 ".into()) }
    }

    struct Run {
        state: ProblemState,
        log: Vec<StatusLogEntry>,
    }

    impl Run {
        fn new() -> Self {
            let (state, first) = ProblemState::open("p-1", ProblemNumber::new(1).unwrap(), t0());
            Run { state, log: vec![first] }
        }
        fn try_do(&self, at: DateTime<Utc>, cmd: Command) -> Result<Applied, DomainError> {
            apply(&self.state, &cmd, &Context::new(at, &analyst()))
        }
        fn ok(&mut self, at: DateTime<Utc>, cmd: Command) -> Vec<Event> {
            let applied = self.try_do(at, cmd).unwrap_or_else(|e| panic!("refused: {e:?}"));
            if let Some(e) = applied.status_log_entry() {
                self.log.push(e.clone());
            }
            self.state = applied.state;
            self.state.check_invariants().unwrap();
            assert_eq!(check_status_log(&self.log).unwrap(), self.state.status);
            applied.events
        }
        fn investigating(mut self) -> Self {
            self.ok(hours(1), Command::Investigate { assignment: team("network") });
            self
        }
    }

    fn is_refused_transition(r: Result<Applied, DomainError>) -> bool {
        matches!(r, Err(DomainError::InvalidTransition { .. }))
    }

    #[test]
    fn full_lifecycle() {
        let mut run = Run::new().investigating();
        run.ok(hours(2), Command::RecordWorkaround { text: " reconnect manually ".into() });
        let events = run.ok(hours(3), declare(true));
        let Some(Event::KnownErrorChanged(ke)) = events.last() else { panic!("{events:?}") };
        assert_eq!((ke.workaround.as_deref(), ke.root_cause.as_deref()), (Some("reconnect manually"), None));
        assert!(ke.for_portal().is_some());
        run.ok(hours(4), rca(Some("NIC driver power management bug")));
        let events = run.ok(hours(5), resolve());
        assert!(events.contains(&Event::Resolved));
        let Some(Event::KnownErrorChanged(ke)) = events.last() else { panic!("{events:?}") };
        assert!(ke.for_portal().is_none(), "a resolved known error leaves the portal");
        assert_eq!(run.state.resolution.as_ref().unwrap().fixing_change_id.as_deref(), Some("chg-12"));
        run.ok(hours(6), Command::Close);
        let statuses: Vec<Status> = run.log.iter().map(|e| e.to).collect();
        assert_eq!(statuses, [Status::New, Status::UnderInvestigation, Status::KnownError, Status::Resolved, Status::Closed]);
        assert!(available_actions(&run.state, &Context::new(hours(7), &analyst())).is_empty());
    }

    #[test]
    fn investigation_needs_staff_and_an_assignee() {
        let run = Run::new();
        let nobody = Command::Investigate { assignment: Assignment::default() };
        assert_eq!(codes(run.try_do(hours(1), nobody).unwrap_err()), ["required"]);
        let by_customer =
            apply(&run.state, &Command::Investigate { assignment: team("x") }, &Context::new(hours(1), &Actor::Contact("c".into())));
        assert_eq!(codes(by_customer.unwrap_err()), ["not_staff"]);
        for cmd in [rca(None), Command::RecordWorkaround { text: "x".into() }, declare(false), resolve(), Command::Close] {
            assert!(is_refused_transition(run.try_do(hours(1), cmd)));
        }
    }

    #[test]
    fn reassigning_must_change_something() {
        let mut run = Run::new().investigating();
        assert_eq!(codes(run.try_do(hours(2), Command::Reassign { assignment: team(" network ") }).unwrap_err()), ["unchanged"]);
        let events = run.ok(hours(2), Command::Reassign { assignment: team("servers") });
        assert_eq!(events.len(), 1, "no status change: {events:?}");
    }

    #[test]
    fn rca_and_workaround_validation() {
        let mut run = Run::new().investigating();
        let empty =
            Command::RecordRca { method: RcaMethod::Ishikawa, findings: " ".into(), root_cause: Some("x".repeat(ROOT_CAUSE_MAX + 1)) };
        assert_eq!(codes(run.try_do(hours(2), empty).unwrap_err()), ["required", "too_long"]);
        assert_eq!(codes(run.try_do(hours(2), Command::RecordWorkaround { text: "".into() }).unwrap_err()), ["required"]);
        let events = run.ok(hours(2), rca(None));
        assert_eq!(events, [Event::RcaRecorded { method: RcaMethod::FiveWhys, root_cause_identified: false }]);
        assert!(run.state.root_cause().is_none());
    }

    #[test]
    fn known_error_needs_root_cause_or_workaround() {
        let mut run = Run::new().investigating();
        assert_eq!(codes(run.try_do(hours(2), declare(false)).unwrap_err()), ["root_cause_or_workaround"]);
        assert!(!available_actions(&run.state, &Context::new(hours(2), &analyst())).contains(&Action::DeclareKnownError));
        run.ok(hours(2), rca(Some("expired certificate")));
        assert!(available_actions(&run.state, &Context::new(hours(2), &analyst())).contains(&Action::DeclareKnownError));
        let blank = Command::DeclareKnownError {
            number: KnownErrorNumber::new(2).unwrap(),
            title: "".into(),
            symptoms: " ".into(),
            publish_to_portal: true,
            language: Locale::En,
        };
        assert_eq!(codes(run.try_do(hours(3), blank).unwrap_err()), ["required", "required", "workaround_required"]);
        run.ok(hours(3), declare(false));
        assert_eq!(run.state.status, Status::KnownError);
        assert_eq!(codes(run.try_do(hours(4), rca(None)).unwrap_err()), ["required"], "the known error would lose its content");
        assert_eq!(codes(run.try_do(hours(4), Command::SetPublication { publish_to_portal: true }).unwrap_err()), ["workaround_required"]);
        run.ok(hours(4), Command::RecordWorkaround { text: "renew by hand".into() });
        let events = run.ok(hours(5), Command::SetPublication { publish_to_portal: true });
        assert!(matches!(&events[..], [Event::KnownErrorChanged(k)] if k.publish_to_portal));
        run.ok(hours(6), rca(None));
        assert!(is_refused_transition(run.try_do(hours(6), Command::Cancel { reason: "x".into() })));
    }

    #[test]
    fn resolving_needs_the_root_cause_and_notes() {
        let mut run = Run::new().investigating();
        run.ok(hours(2), Command::RecordWorkaround { text: "restart".into() });
        let no_notes = Command::Resolve { notes: " ".into(), fixing_change_id: Some("has space".into()) };
        assert_eq!(codes(run.try_do(hours(3), no_notes).unwrap_err()), ["required", "required", "invalid_id"]);
        run.ok(hours(3), rca(Some("memory leak")));
        run.ok(hours(4), Command::Resolve { notes: "patched".into(), fixing_change_id: Some("  ".into()) });
        assert_eq!(run.state.resolution.as_ref().unwrap().fixing_change_id, None);
    }

    #[test]
    fn reopen_and_cancel() {
        let mut run = Run::new().investigating();
        run.ok(hours(2), rca(Some("cause")));
        run.ok(hours(3), resolve());
        assert_eq!(codes(run.try_do(hours(4), Command::Reopen { reason: "".into() }).unwrap_err()), ["required"]);
        let events = run.ok(hours(4), Command::Reopen { reason: "it recurred".into() });
        assert!(events.contains(&Event::Reopened { reason: "it recurred".into() }));
        assert_eq!((run.state.status, run.state.reopen_count, run.state.resolution.is_none()), (Status::UnderInvestigation, 1, true));
        let events = run.ok(hours(5), Command::Cancel { reason: "duplicate of PRB-000002".into() });
        assert_eq!(
            events.last().unwrap(),
            &Event::Closed { kind: ProblemClosureKind::Cancelled { reason: "duplicate of PRB-000002".into() } }
        );
        assert!(is_refused_transition(run.try_do(hours(6), Command::Reopen { reason: "x".into() })), "closed problems are final");

        let mut fresh = Run::new();
        assert_eq!(codes(fresh.try_do(hours(1), Command::Cancel { reason: " ".into() }).unwrap_err()), ["required"]);
        fresh.ok(hours(1), Command::Cancel { reason: "not a problem".into() });
    }

    #[test]
    fn refusals_name_the_target_or_the_action() {
        let run = Run::new();
        assert_eq!(
            run.try_do(hours(1), resolve()).unwrap_err(),
            DomainError::InvalidTransition { from: "new".into(), to: "resolved".into() }
        );
        assert_eq!(
            run.try_do(hours(1), rca(None)).unwrap_err(),
            DomainError::InvalidTransition { from: "new".into(), to: "record_rca".into() }
        );
    }

    #[test]
    fn status_log_checks() {
        let mut run = Run::new().investigating();
        run.ok(hours(0), rca(Some("c")));
        run.ok(hours(2), resolve());
        assert_eq!(run.log.last().unwrap().at, hours(2));
        assert_eq!(check_status_log(&run.log).unwrap(), Status::Resolved);
        let mut bad = run.log.clone();
        bad[2].action = Some(Action::Close);
        assert_eq!(codes(check_status_log(&bad).unwrap_err()), ["not_in_lifecycle"]);
        let mut bad = run.log.clone();
        bad[1].at = hours(5);
        assert_eq!(codes(check_status_log(&bad).unwrap_err()), ["out_of_order"]);
        assert_eq!(codes(check_status_log(&run.log[1..]).unwrap_err()), ["invalid_start"]);
    }

    #[test]
    fn serde_forms() {
        let mut run = Run::new().investigating();
        run.ok(hours(2), rca(Some("c")));
        let json = serde_json::to_value(&run.state).unwrap();
        assert_eq!(json["status"], "under_investigation");
        assert_eq!(json["number"], "PRB-000001");
        assert_eq!(json["rca"]["method"], "five_whys");
        assert_eq!(serde_json::from_value::<ProblemState>(json).unwrap(), run.state);
        assert_eq!(serde_json::to_value(declare(false)).unwrap()["language"], "zh-CN");
    }
}

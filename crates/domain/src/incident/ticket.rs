//! Incident management: a ticket's lifecycle state, the commands that move it, and [`apply`],
//! which enforces the transition table and writes the status log the SLA engine reads.

use super::lifecycle::{Action, Guard, GuardKind, PendingReason, Status, TRANSITIONS, sla_status, transition};
use super::links::DuplicateTarget;
use super::number::{TicketKind, TicketNumber};
use super::refs::{Ref, References, optional_ref};
use crate::error::{DomainError, Errors, FieldError};
use crate::identity::{AccountKind, Principal};
use crate::validate::{optional_text, required_text};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Longest reason (for pending, rejecting, reopening, cancelling) in characters.
pub const REASON_MAX: usize = 2_000;
/// Longest resolution notes in characters.
pub const RESOLUTION_NOTES_MAX: usize = 10_000;

/// Who issues a command: a staff member, a customer contact, or Keel itself (jobs, rules).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    Staff(String),
    Contact(String),
    System,
}

impl Actor {
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Actor::Staff(id) | Actor::Contact(id) => Some(id),
            Actor::System => None,
        }
    }
    /// Staff, or the system acting on the provider's behalf.
    pub fn is_staff(&self) -> bool {
        matches!(self, Actor::Staff(_) | Actor::System)
    }
    /// The account kind whose visibility rules apply; the system sees what staff see.
    pub fn account_kind(&self) -> AccountKind {
        match self {
            Actor::Contact(_) => AccountKind::Contact,
            Actor::Staff(_) | Actor::System => AccountKind::Staff,
        }
    }
}

impl From<&Principal> for Actor {
    fn from(p: &Principal) -> Self {
        match p.kind {
            AccountKind::Staff => Actor::Staff(p.user_id.clone()),
            AccountKind::Contact => Actor::Contact(p.user_id.clone()),
        }
    }
}

/// The resolver group (职能小组) and/or agent a ticket is assigned to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
}

fn clean(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

impl Assignment {
    /// Validates an assignment from a form: at least one of team and agent, each existing.
    pub fn new(team_id: Option<&str>, agent_id: Option<&str>, refs: &impl References) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        let team_id = errors.check(optional_ref(refs, Ref::Team, "team_id", team_id)).flatten();
        let agent_id = errors.check(optional_ref(refs, Ref::Agent, "agent_id", agent_id)).flatten();
        let a = Assignment { team_id, agent_id };
        if a.is_empty() {
            errors.push(FieldError::new("assignment", "required", "a team or an agent is required"));
        }
        errors.finish()?;
        Ok(a)
    }
    pub fn is_empty(&self) -> bool {
        clean(self.team_id.as_deref()).is_none() && clean(self.agent_id.as_deref()).is_none()
    }
    fn normalized(&self) -> Assignment {
        Assignment { team_id: clean(self.team_id.as_deref()), agent_id: clean(self.agent_id.as_deref()) }
    }
}

stable_str_enum! {
    /// How a ticket was resolved; feeds reports such as first-time fix and problem candidates.
    pub enum ResolutionCode {
        /// Fixed for good.
        Solved => "solved",
        /// Service restored by a workaround; the cause may remain (incidents only).
        Workaround => "workaround",
        /// The request was delivered (service requests only).
        Fulfilled => "fulfilled",
        /// Answered a question or explained how to do something.
        AdviceGiven => "advice_given",
        /// The fault could not be found or reproduced (incidents only).
        NoFaultFound => "no_fault_found",
        ResolvedByChange => "resolved_by_change",
        ResolvedBySupplier => "resolved_by_supplier",
        /// Resolved because the problem behind it was resolved (incidents only).
        ResolvedByProblem => "resolved_by_problem",
    }
}

impl ResolutionCode {
    pub fn applies_to(self, kind: TicketKind) -> bool {
        match self {
            ResolutionCode::Fulfilled => kind == TicketKind::ServiceRequest,
            ResolutionCode::Workaround | ResolutionCode::NoFaultFound | ResolutionCode::ResolvedByProblem => kind == TicketKind::Incident,
            ResolutionCode::Solved
            | ResolutionCode::AdviceGiven
            | ResolutionCode::ResolvedByChange
            | ResolutionCode::ResolvedBySupplier => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub reason: PendingReason,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub code: ResolutionCode,
    pub notes: String,
    pub resolved_at: DateTime<Utc>,
    pub resolved_by: Actor,
}

/// How a ticket came to be closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClosureKind {
    /// The reporter accepted the resolution.
    ConfirmedByReporter,
    /// Staff closed the resolved ticket.
    ClosedByStaff,
    /// Nobody answered within the configured business days.
    AutoClosed,
    /// Withdrawn or logged in error; never resolved.
    Cancelled { reason: String },
    /// Merged into another ticket, which carries on.
    Duplicate { of_id: String, of_number: TicketNumber },
}

impl ClosureKind {
    /// Whether the ticket was closed after being resolved (as opposed to cancelled or merged).
    pub fn follows_resolution(&self) -> bool {
        matches!(self, ClosureKind::ConfirmedByReporter | ClosureKind::ClosedByStaff | ClosureKind::AutoClosed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    pub kind: ClosureKind,
    pub closed_at: DateTime<Utc>,
    pub closed_by: Actor,
}

/// One status change, the input of the SLA clock: when, from what, to what, and why pending.
/// The first entry of a ticket has no `from` and no `action`: it is the ticket being logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusLogEntry {
    pub at: DateTime<Utc>,
    pub from: Option<Status>,
    pub to: Status,
    pub pending_reason: Option<PendingReason>,
    pub action: Option<Action>,
}

impl StatusLogEntry {
    /// The SLA status the ticket is in from `at` on (`pending_customer`, …).
    pub fn sla_status(&self) -> &'static str {
        sla_status(self.to, self.pending_reason)
    }
}

/// The part of a ticket its lifecycle governs. Descriptive fields live in `fields::TicketFields`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketState {
    pub id: String,
    pub number: TicketNumber,
    pub reporter_id: String,
    pub status: Status,
    /// When the current status began; the next log entry can never be earlier.
    pub status_changed_at: DateTime<Utc>,
    pub pending: Option<Pending>,
    pub assignment: Assignment,
    pub resolution: Option<Resolution>,
    pub closure: Option<Closure>,
    /// Times the ticket came back after a resolution (reopened or resolution rejected).
    pub reopen_count: u32,
}

impl TicketState {
    /// A newly logged ticket and the first entry of its status log.
    pub fn open(id: impl Into<String>, number: TicketNumber, reporter_id: impl Into<String>, now: DateTime<Utc>) -> (Self, StatusLogEntry) {
        let state = TicketState {
            id: id.into(),
            number,
            reporter_id: reporter_id.into(),
            status: Status::New,
            status_changed_at: now,
            pending: None,
            assignment: Assignment::default(),
            resolution: None,
            closure: None,
            reopen_count: 0,
        };
        let entry = StatusLogEntry { at: now, from: None, to: Status::New, pending_reason: None, action: None };
        (state, entry)
    }

    pub fn kind(&self) -> TicketKind {
        self.number.kind()
    }
    pub fn pending_reason(&self) -> Option<PendingReason> {
        self.pending.as_ref().map(|p| p.reason)
    }
    pub fn sla_status(&self) -> &'static str {
        sla_status(self.status, self.pending_reason())
    }
    pub fn is_reporter(&self, actor: &Actor) -> bool {
        actor.user_id() == Some(self.reporter_id.as_str())
    }

    /// Checks the rules every state reachable through [`apply`] obeys; use it on states loaded
    /// from elsewhere (imports, migrations) before trusting them.
    pub fn check_invariants(&self) -> Result<(), DomainError> {
        let closed_as_resolved = self.closure.as_ref().is_some_and(|c| c.kind.follows_resolution());
        let broken = [
            (self.pending.is_some() != (self.status == Status::Pending), "a pending reason exactly when pending"),
            (self.status.requires_assignment() && self.assignment.is_empty(), "an assignment from assigned to resolved"),
            (self.closure.is_some() != (self.status == Status::Closed), "a closure exactly when closed"),
            (
                self.resolution.is_some() != (self.status == Status::Resolved || closed_as_resolved),
                "a resolution exactly when resolved or closed after resolution",
            ),
            (closed_as_resolved && self.assignment.is_empty(), "an assignment on a resolved ticket"),
            (matches!((&self.resolution, &self.closure), (Some(r), Some(c)) if r.resolved_at > c.closed_at), "resolution before closure"),
        ];
        match broken.iter().find(|(bad, _)| *bad) {
            Some((_, rule)) => Err(DomainError::Conflict(format!("ticket {} is inconsistent: it must have {rule}", self.number))),
            None => Ok(()),
        }
    }
}

/// Lifecycle settings an administrator configures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecyclePolicy {
    /// Days after closure during which a ticket may still be reopened; `None`: never.
    pub reopen_window_days: Option<u32>,
}

/// Everything [`apply`] needs besides the ticket and the command.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub actor: &'a Actor,
    pub policy: &'a LifecyclePolicy,
}

impl<'a> Context<'a> {
    pub fn new(now: DateTime<Utc>, actor: &'a Actor, policy: &'a LifecyclePolicy) -> Self {
        Context { now, actor, policy }
    }
}

/// A request to move a ticket through its lifecycle. Each command is one [`Action`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Command {
    Assign { assignment: Assignment },
    Reassign { assignment: Assignment },
    Start,
    Pend { reason: PendingReason, note: Option<String> },
    Resume,
    Resolve { code: ResolutionCode, notes: String },
    Confirm,
    Reject { reason: String },
    Close,
    AutoClose,
    Reopen { reason: String },
    Cancel { reason: String },
    MarkDuplicate { target: DuplicateTarget },
}

impl Command {
    pub fn action(&self) -> Action {
        match self {
            Command::Assign { .. } => Action::Assign,
            Command::Reassign { .. } => Action::Reassign,
            Command::Start => Action::Start,
            Command::Pend { .. } => Action::Pend,
            Command::Resume => Action::Resume,
            Command::Resolve { .. } => Action::Resolve,
            Command::Confirm => Action::Confirm,
            Command::Reject { .. } => Action::Reject,
            Command::Close => Action::Close,
            Command::AutoClose => Action::AutoClose,
            Command::Reopen { .. } => Action::Reopen,
            Command::Cancel { .. } => Action::Cancel,
            Command::MarkDuplicate { .. } => Action::MarkDuplicate,
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Command::Reject { reason } | Command::Reopen { reason } | Command::Cancel { reason } => Some(reason),
            _ => None,
        }
    }

    fn assignment(&self) -> Option<&Assignment> {
        match self {
            Command::Assign { assignment } | Command::Reassign { assignment } => Some(assignment),
            _ => None,
        }
    }
}

/// What happened, for the audit trail, notifications and the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Append this to the ticket's status log.
    StatusChanged(StatusLogEntry),
    AssignmentChanged {
        previous: Assignment,
        current: Assignment,
    },
    Resolved {
        code: ResolutionCode,
    },
    ResolutionConfirmed,
    ResolutionRejected {
        reason: String,
    },
    Reopened {
        reason: String,
    },
    Closed {
        kind: ClosureKind,
    },
}

/// The outcome of a successful [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub state: TicketState,
    pub events: Vec<Event>,
}

impl Applied {
    /// The status log entry to append, if the status changed.
    pub fn status_log_entry(&self) -> Option<&StatusLogEntry> {
        self.events.iter().find_map(|e| match e {
            Event::StatusChanged(entry) => Some(entry),
            _ => None,
        })
    }
}

fn check_guard(guard: Guard, state: &TicketState, cmd: Option<&Command>, ctx: &Context<'_>, errors: &mut Errors) {
    let actor = ctx.actor;
    let fail = |field: &str, code: &'static str, message: &str| FieldError::new(field, code, message);
    match guard {
        Guard::Staff if !actor.is_staff() => errors.push(fail("actor", "not_staff", "only staff may do this")),
        Guard::System if *actor != Actor::System => {
            errors.push(fail("actor", "not_system", "only Keel itself does this"));
        }
        Guard::Reporter if !state.is_reporter(actor) => {
            errors.push(fail("actor", "not_reporter", "only the reporter may do this"));
        }
        Guard::StaffOrReporter if !actor.is_staff() && !state.is_reporter(actor) => {
            errors.push(fail("actor", "not_staff_or_reporter", "only staff or the reporter may do this"));
        }
        Guard::AssigneeGiven => {
            if cmd.and_then(Command::assignment).is_some_and(Assignment::is_empty) {
                errors.push(fail("assignment", "required", "a team or an agent is required"));
            }
        }
        Guard::AssignmentChanges => {
            if cmd.and_then(Command::assignment).is_some_and(|a| a.normalized() == state.assignment.normalized()) {
                errors.push(fail("assignment", "unchanged", "the ticket is already assigned there"));
            }
        }
        Guard::PendingReasonGiven => {
            if let Some(Command::Pend { reason, note }) = cmd {
                let note = errors.check(optional_text("pending_note", note.as_deref(), REASON_MAX)).flatten();
                if *reason == PendingReason::Other && note.is_none() {
                    errors.push(fail("pending_note", "required", "say what the ticket is waiting for"));
                }
            }
        }
        Guard::ResolutionGiven => {
            if let Some(Command::Resolve { code, notes }) = cmd {
                if !code.applies_to(state.kind()) {
                    errors.push(FieldError::new(
                        "resolution_code",
                        "not_applicable",
                        format!("{code} does not apply to {} tickets", state.kind()),
                    ));
                }
                errors.check(required_text("resolution_notes", notes, RESOLUTION_NOTES_MAX));
            }
        }
        Guard::ReasonGiven => {
            if let Some(reason) = cmd.and_then(Command::reason) {
                errors.check(required_text("reason", reason, REASON_MAX));
            }
        }
        Guard::ClosedAsResolved => {
            if !state.closure.as_ref().is_some_and(|c| c.kind.follows_resolution()) {
                errors.push(fail("status", "not_reopenable", "a cancelled or merged ticket cannot be reopened"));
            }
        }
        Guard::WithinReopenWindow => match (ctx.policy.reopen_window_days, &state.closure) {
            (None, _) => errors.push(fail("status", "reopen_not_allowed", "closed tickets cannot be reopened")),
            (Some(days), Some(c)) if ctx.now > c.closed_at + Duration::days(i64::from(days)) => {
                errors.push(fail("status", "reopen_window_expired", "the ticket was closed too long ago to reopen"));
            }
            _ => {}
        },
        Guard::MergeChecked => {
            if let Some(Command::MarkDuplicate { target }) = cmd
                && target.duplicate_id() != state.id
            {
                errors.push(fail("duplicate_of", "not_checked", "the merge was checked for another ticket"));
            }
        }
        Guard::Staff | Guard::System | Guard::Reporter | Guard::StaffOrReporter => {}
    }
}

fn refused(state: &TicketState, action: Action) -> DomainError {
    DomainError::InvalidTransition { from: state.status.as_str().into(), to: action.target().as_str().into() }
}

/// Applies `cmd` to `state`: finds the row of [`TRANSITIONS`] for the current status and the
/// command's action, checks all its guards (reporting every failure at once), and returns the
/// new state with the events to record. The status log entry's instant is never earlier than
/// the previous one's, even if this server's clock is slightly behind the one that wrote it.
pub fn apply(state: &TicketState, cmd: &Command, ctx: &Context<'_>) -> Result<Applied, DomainError> {
    let action = cmd.action();
    let row = transition(state.status, action).ok_or_else(|| refused(state, action))?;
    let mut errors = Errors::new();
    for &g in row.guards {
        check_guard(g, state, Some(cmd), ctx, &mut errors);
    }
    errors.finish()?;

    let at = ctx.now.max(state.status_changed_at);
    let actor = ctx.actor.clone();
    let mut next = state.clone();
    let mut events = Vec::new();
    match cmd {
        Command::Assign { assignment } | Command::Reassign { assignment } => {
            next.assignment = assignment.normalized();
            next.pending = None;
            events.push(Event::AssignmentChanged { previous: state.assignment.clone(), current: next.assignment.clone() });
        }
        Command::Start => {
            if let (None, Actor::Staff(id)) = (&next.assignment.agent_id, &actor) {
                next.assignment.agent_id = Some(id.clone());
                events.push(Event::AssignmentChanged { previous: state.assignment.clone(), current: next.assignment.clone() });
            }
        }
        Command::Pend { reason, note } => {
            next.pending = Some(Pending { reason: *reason, note: clean(note.as_deref()) });
        }
        Command::Resume => next.pending = None,
        Command::Resolve { code, notes } => {
            next.pending = None;
            next.resolution = Some(Resolution { code: *code, notes: notes.trim().into(), resolved_at: at, resolved_by: actor });
            events.push(Event::Resolved { code: *code });
        }
        Command::Confirm => {
            events.push(Event::ResolutionConfirmed);
            next.closure = Some(Closure { kind: ClosureKind::ConfirmedByReporter, closed_at: at, closed_by: actor });
        }
        Command::Close => next.closure = Some(Closure { kind: ClosureKind::ClosedByStaff, closed_at: at, closed_by: actor }),
        Command::AutoClose => next.closure = Some(Closure { kind: ClosureKind::AutoClosed, closed_at: at, closed_by: actor }),
        Command::Reject { reason } => {
            next.resolution = None;
            next.reopen_count += 1;
            events.push(Event::ResolutionRejected { reason: reason.trim().into() });
        }
        Command::Reopen { reason } => {
            next.resolution = None;
            next.closure = None;
            next.reopen_count += 1;
            events.push(Event::Reopened { reason: reason.trim().into() });
        }
        Command::Cancel { reason } => {
            next.pending = None;
            let kind = ClosureKind::Cancelled { reason: reason.trim().into() };
            next.closure = Some(Closure { kind, closed_at: at, closed_by: actor });
        }
        Command::MarkDuplicate { target } => {
            next.pending = None;
            let kind = ClosureKind::Duplicate { of_id: target.target_id().into(), of_number: target.target_number() };
            next.closure = Some(Closure { kind, closed_at: at, closed_by: actor });
        }
    }
    next.status = row.to;
    if let Some(c) = &next.closure
        && state.closure.is_none()
    {
        events.push(Event::Closed { kind: c.kind.clone() });
    }
    if next.status != state.status {
        next.status_changed_at = at;
        let entry =
            StatusLogEntry { at, from: Some(state.status), to: next.status, pending_reason: next.pending_reason(), action: Some(action) };
        events.insert(0, Event::StatusChanged(entry));
    }
    Ok(Applied { state: next, events })
}

/// The actions `ctx.actor` may take on this ticket now, judged on who they are and on the
/// ticket; what a command must carry (a reason, a resolution) is checked when it is applied.
/// This is what the UI shows as buttons and the API lists as links.
pub fn available_actions(state: &TicketState, ctx: &Context<'_>) -> Vec<Action> {
    TRANSITIONS
        .iter()
        .filter(|t| t.from == state.status)
        .filter(|t| {
            let mut errors = Errors::new();
            for &g in t.guards.iter().filter(|g| g.kind() != GuardKind::Input) {
                check_guard(g, state, None, ctx, &mut errors);
            }
            errors.finish().is_ok()
        })
        .map(|t| t.action)
        .collect()
}

/// Checks a ticket's whole status log: it starts with the ticket being logged as new, each entry
/// continues from the previous one by a row of [`TRANSITIONS`], instants never go back, and a
/// pending reason is given exactly when pending. Returns the status (and pending reason) the
/// ticket must be in now.
pub fn check_status_log(entries: &[StatusLogEntry]) -> Result<(Status, Option<PendingReason>), DomainError> {
    let bad = |i: usize, code: &'static str, message: &str| DomainError::field(format!("status_log[{i}]"), code, message);
    let first = entries.first().ok_or_else(|| DomainError::field("status_log", "required", "the status log is empty"))?;
    if first.from.is_some() || first.to != Status::New || first.action.is_some() || first.pending_reason.is_some() {
        return Err(bad(0, "invalid_start", "a ticket's log starts with it being logged as new"));
    }
    for (i, pair) in entries.windows(2).enumerate() {
        let (prev, e) = (&pair[0], &pair[1]);
        let i = i + 1;
        if e.at < prev.at {
            return Err(bad(i, "out_of_order", "a status change is earlier than the one before it"));
        }
        if e.from != Some(prev.to) {
            return Err(bad(i, "broken_chain", "a status change does not start where the previous one ended"));
        }
        let allowed = e.action.and_then(|a| transition(prev.to, a)).is_some_and(|t| t.to == e.to);
        if !allowed {
            return Err(bad(i, "not_in_lifecycle", "a status change is not in the lifecycle table"));
        }
        if e.pending_reason.is_some() != (e.to == Status::Pending) {
            return Err(bad(i, "pending_reason", "a pending reason is given exactly when pending"));
        }
    }
    let last = entries.last().unwrap_or(first);
    Ok((last.to, last.pending_reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::links::{LinkSubject, check_merge};
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
    }
    fn hours(h: i64) -> DateTime<Utc> {
        t0() + Duration::hours(h)
    }
    fn agent() -> Actor {
        Actor::Staff("agent-1".into())
    }
    fn reporter() -> Actor {
        Actor::Contact("contact-1".into())
    }
    fn stranger() -> Actor {
        Actor::Contact("contact-2".into())
    }
    fn team(id: &str) -> Assignment {
        Assignment { team_id: Some(id.into()), agent_id: None }
    }
    fn new_ticket(kind: TicketKind) -> TicketState {
        TicketState::open("t-1", TicketNumber::new(kind, 42).unwrap(), "contact-1", t0()).0
    }

    struct Run {
        state: TicketState,
        log: Vec<StatusLogEntry>,
        policy: LifecyclePolicy,
    }

    impl Run {
        fn new(kind: TicketKind) -> Self {
            let (state, entry) = TicketState::open("t-1", TicketNumber::new(kind, 42).unwrap(), "contact-1", t0());
            Run { state, log: vec![entry], policy: LifecyclePolicy { reopen_window_days: Some(7) } }
        }
        fn try_do(&self, actor: &Actor, at: DateTime<Utc>, cmd: Command) -> Result<Applied, DomainError> {
            apply(&self.state, &cmd, &Context::new(at, actor, &self.policy))
        }
        fn ok(&mut self, actor: &Actor, at: DateTime<Utc>, cmd: Command) -> Vec<Event> {
            let applied = self.try_do(actor, at, cmd).unwrap_or_else(|e| panic!("refused: {e:?}"));
            if let Some(e) = applied.status_log_entry() {
                self.log.push(e.clone());
            }
            self.state = applied.state;
            self.state.check_invariants().unwrap();
            assert_eq!(check_status_log(&self.log).unwrap(), (self.state.status, self.state.pending_reason()));
            applied.events
        }
        fn in_progress(mut self) -> Self {
            self.ok(&agent(), hours(1), Command::Assign { assignment: team("team-1") });
            self.ok(&agent(), hours(2), Command::Start);
            self
        }
        fn resolved(mut self) -> Self {
            self = self.in_progress();
            self.ok(&agent(), hours(3), resolve());
            self
        }
        fn closed(mut self) -> Self {
            self = self.resolved();
            self.ok(&reporter(), hours(4), Command::Confirm);
            self
        }
    }

    fn resolve() -> Command {
        Command::Resolve { code: ResolutionCode::Solved, notes: "replaced the toner".into() }
    }

    fn codes(e: DomainError) -> Vec<&'static str> {
        match e {
            DomainError::Invalid(v) => v.into_iter().map(|f| f.code).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    fn is_refused_transition(r: Result<Applied, DomainError>) -> bool {
        matches!(r, Err(DomainError::InvalidTransition { .. }))
    }

    #[test]
    fn happy_path_logs_every_status_with_instants() {
        let mut run = Run::new(TicketKind::Incident).closed();
        let statuses: Vec<Status> = run.log.iter().map(|e| e.to).collect();
        assert_eq!(statuses, [Status::New, Status::Assigned, Status::InProgress, Status::Resolved, Status::Closed]);
        assert_eq!(run.log.iter().map(|e| e.at).collect::<Vec<_>>(), [t0(), hours(1), hours(2), hours(3), hours(4)]);
        assert_eq!(run.state.assignment.agent_id.as_deref(), Some("agent-1"), "starting work takes the ticket");
        assert_eq!(run.state.closure.as_ref().unwrap().kind, ClosureKind::ConfirmedByReporter);
        assert_eq!(run.state.resolution.as_ref().unwrap().resolved_at, hours(3));
        assert!(available_actions(&run.state, &Context::new(hours(5), &agent(), &run.policy)).contains(&Action::Reopen));
        run.ok(&reporter(), hours(5), Command::Reopen { reason: "printer jams again".into() });
        assert_eq!(run.state.status, Status::Assigned);
        assert_eq!(run.state.reopen_count, 1);
        assert!(run.state.resolution.is_none() && run.state.closure.is_none());
    }

    #[test]
    fn assign_needs_staff_and_a_team_or_agent() {
        let run = Run::new(TicketKind::Incident);
        let empty = Command::Assign { assignment: Assignment { team_id: Some("  ".into()), agent_id: None } };
        assert_eq!(codes(run.try_do(&agent(), hours(1), empty).unwrap_err()), ["required"]);
        let by_contact = Command::Assign { assignment: team("team-1") };
        assert_eq!(codes(run.try_do(&reporter(), hours(1), by_contact.clone()).unwrap_err()), ["not_staff"]);
        let applied = run.try_do(&Actor::System, hours(1), by_contact).unwrap();
        assert_eq!(applied.state.status, Status::Assigned);
        assert_eq!(applied.events[1], Event::AssignmentChanged { previous: Assignment::default(), current: team("team-1") });
        assert!(is_refused_transition(run.try_do(&agent(), hours(1), Command::Start)));
        assert!(is_refused_transition(run.try_do(&agent(), hours(1), Command::Reassign { assignment: team("x") })));
    }

    #[test]
    fn assignment_form_validation() {
        let refs = |k: Ref, id: &str| matches!((k, id), (Ref::Team, "team-1") | (Ref::Agent, "agent-1"));
        assert_eq!(Assignment::new(Some(" team-1 "), None, &refs).unwrap(), team("team-1"));
        assert!(Assignment::new(None, Some("agent-1"), &refs).is_ok());
        assert_eq!(codes(Assignment::new(None, Some(""), &refs).unwrap_err()), ["required"]);
        assert_eq!(codes(Assignment::new(Some("team-9"), Some("agent-9"), &refs).unwrap_err()), ["not_found", "not_found", "required"]);
    }

    #[test]
    fn reassign_must_change_the_assignment_and_ends_pending() {
        let mut run = Run::new(TicketKind::Incident).in_progress();
        let same = Command::Reassign { assignment: Assignment { team_id: Some("team-1".into()), agent_id: Some("agent-1".into()) } };
        assert_eq!(codes(run.try_do(&agent(), hours(3), same).unwrap_err()), ["unchanged"]);
        run.ok(&agent(), hours(3), Command::Pend { reason: PendingReason::WaitingForSupplier, note: None });
        let events = run.ok(&agent(), hours(4), Command::Reassign { assignment: team("team-2") });
        assert_eq!(run.state.status, Status::Assigned);
        assert!(run.state.pending.is_none());
        assert!(matches!(&events[0], Event::StatusChanged(e) if e.from == Some(Status::Pending) && e.pending_reason.is_none()));
        let events = run.ok(&agent(), hours(5), Command::Reassign { assignment: team("team-3") });
        assert_eq!(events.len(), 1, "assigned to assigned changes no status: {events:?}");
        assert_eq!(run.log.last().unwrap().at, hours(4));
    }

    #[test]
    fn start_keeps_an_existing_agent_and_is_staff_only() {
        let mut run = Run::new(TicketKind::Incident);
        let a = Assignment { team_id: None, agent_id: Some("agent-7".into()) };
        run.ok(&agent(), hours(1), Command::Assign { assignment: a.clone() });
        assert_eq!(codes(run.try_do(&reporter(), hours(2), Command::Start).unwrap_err()), ["not_staff"]);
        let events = run.ok(&agent(), hours(2), Command::Start);
        assert_eq!(run.state.assignment, a);
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn pend_needs_a_reason_and_other_needs_a_note() {
        let mut run = Run::new(TicketKind::Incident).in_progress();
        let vague = Command::Pend { reason: PendingReason::Other, note: Some("   ".into()) };
        assert_eq!(codes(run.try_do(&agent(), hours(3), vague).unwrap_err()), ["required"]);
        let long = Command::Pend { reason: PendingReason::WaitingForCustomer, note: Some("x".repeat(REASON_MAX + 1)) };
        assert_eq!(codes(run.try_do(&agent(), hours(3), long).unwrap_err()), ["too_long"]);
        run.ok(&agent(), hours(3), Command::Pend { reason: PendingReason::Other, note: Some(" parts on order ".into()) });
        assert_eq!(run.state.pending, Some(Pending { reason: PendingReason::Other, note: Some("parts on order".into()) }));
        assert_eq!(run.state.sla_status(), "pending_other");
        assert!(is_refused_transition(run.try_do(
            &agent(),
            hours(4),
            Command::Pend { reason: PendingReason::WaitingForCustomer, note: None }
        )));
        assert!(is_refused_transition(run.try_do(&agent(), hours(4), Command::Start)));
        run.ok(&agent(), hours(4), Command::Resume);
        assert_eq!((run.state.status, run.state.pending.clone()), (Status::InProgress, None));
        assert!(is_refused_transition(run.try_do(&agent(), hours(5), Command::Resume)));
    }

    #[test]
    fn pend_from_assigned_is_logged_with_its_sla_status() {
        let mut run = Run::new(TicketKind::Incident);
        run.ok(&agent(), hours(1), Command::Assign { assignment: team("team-1") });
        run.ok(&agent(), hours(2), Command::Pend { reason: PendingReason::WaitingForCustomer, note: None });
        assert_eq!(run.log.last().unwrap().sla_status(), "pending_customer");
        assert!(is_refused_transition(Run::new(TicketKind::Incident).try_do(
            &agent(),
            hours(1),
            Command::Pend { reason: PendingReason::WaitingForCustomer, note: None }
        )));
    }

    #[test]
    fn resolve_needs_code_valid_for_the_kind_and_notes() {
        let run = Run::new(TicketKind::Incident).in_progress();
        let bad = Command::Resolve { code: ResolutionCode::Fulfilled, notes: " ".into() };
        assert_eq!(codes(run.try_do(&agent(), hours(3), bad).unwrap_err()), ["not_applicable", "required"]);
        assert_eq!(codes(run.try_do(&reporter(), hours(3), resolve()).unwrap_err()), ["not_staff"]);
        assert!(
            is_refused_transition(Run::new(TicketKind::Incident).try_do(&agent(), hours(3), resolve())),
            "new tickets are assigned first"
        );

        let mut req = Run::new(TicketKind::ServiceRequest).in_progress();
        let wa = Command::Resolve { code: ResolutionCode::Workaround, notes: "x".into() };
        assert_eq!(codes(req.try_do(&agent(), hours(3), wa).unwrap_err()), ["not_applicable"]);
        let events = req.ok(&agent(), hours(3), Command::Resolve { code: ResolutionCode::Fulfilled, notes: " laptop delivered ".into() });
        assert_eq!(events[1], Event::Resolved { code: ResolutionCode::Fulfilled });
        let r = req.state.resolution.unwrap();
        assert_eq!((r.notes.as_str(), r.resolved_by), ("laptop delivered", agent()));
    }

    #[test]
    fn resolving_from_pending_and_assigned_is_allowed() {
        let mut run = Run::new(TicketKind::Incident).in_progress();
        run.ok(&agent(), hours(3), Command::Pend { reason: PendingReason::WaitingForChange, note: None });
        run.ok(&agent(), hours(4), resolve());
        assert!(run.state.pending.is_none());
        let mut run = Run::new(TicketKind::Incident);
        run.ok(&agent(), hours(1), Command::Assign { assignment: team("desk") });
        run.ok(&agent(), hours(1), resolve());
        assert_eq!(run.state.status, Status::Resolved);
    }

    #[test]
    fn closing_requires_resolved() {
        let run = Run::new(TicketKind::Incident).in_progress();
        for cmd in [Command::Close, Command::Confirm, Command::AutoClose] {
            assert!(is_refused_transition(run.try_do(&agent(), hours(3), cmd)));
        }
        let mut run = Run::new(TicketKind::Incident).resolved();
        assert_eq!(codes(run.try_do(&reporter(), hours(4), Command::Close).unwrap_err()), ["not_staff"]);
        assert_eq!(codes(run.try_do(&agent(), hours(4), Command::AutoClose).unwrap_err()), ["not_system"]);
        let events = run.ok(&agent(), hours(4), Command::Close);
        assert_eq!(events.last().unwrap(), &Event::Closed { kind: ClosureKind::ClosedByStaff });
        let mut run = Run::new(TicketKind::Incident).resolved();
        run.ok(&Actor::System, hours(80), Command::AutoClose);
        assert_eq!(run.state.closure.unwrap().closed_by, Actor::System);
    }

    #[test]
    fn only_the_reporter_confirms_or_rejects() {
        let mut run = Run::new(TicketKind::Incident).resolved();
        assert_eq!(codes(run.try_do(&stranger(), hours(4), Command::Confirm).unwrap_err()), ["not_reporter"]);
        assert_eq!(codes(run.try_do(&agent(), hours(4), Command::Confirm).unwrap_err()), ["not_reporter"]);
        let no_reason = Command::Reject { reason: "".into() };
        assert_eq!(codes(run.try_do(&stranger(), hours(4), no_reason).unwrap_err()), ["not_reporter", "required"]);
        let events = run.ok(&reporter(), hours(4), Command::Reject { reason: "still broken".into() });
        assert_eq!(run.state.status, Status::Assigned);
        assert_eq!(run.state.reopen_count, 1);
        assert!(run.state.resolution.is_none());
        assert_eq!(run.state.assignment.agent_id.as_deref(), Some("agent-1"), "back to whoever resolved it");
        assert_eq!(events[1], Event::ResolutionRejected { reason: "still broken".into() });
    }

    #[test]
    fn staff_who_report_may_confirm_their_own_tickets() {
        let (mut state, _) = TicketState::open("t-9", TicketNumber::new(TicketKind::Incident, 9).unwrap(), "agent-1", t0());
        state.status = Status::Resolved;
        state.assignment = team("team-1");
        state.resolution = Some(Resolution { code: ResolutionCode::Solved, notes: "x".into(), resolved_at: t0(), resolved_by: agent() });
        let policy = LifecyclePolicy::default();
        assert!(apply(&state, &Command::Confirm, &Context::new(hours(1), &agent(), &policy)).is_ok());
    }

    #[test]
    fn reopen_rules() {
        let run = Run::new(TicketKind::Incident).resolved();
        assert_eq!(codes(run.try_do(&reporter(), hours(4), Command::Reopen { reason: "x".into() }).unwrap_err()), ["not_staff"]);
        assert_eq!(codes(run.try_do(&agent(), hours(4), Command::Reopen { reason: " ".into() }).unwrap_err()), ["required"]);

        let mut run = Run::new(TicketKind::Incident).closed();
        let reopen = || Command::Reopen { reason: "again".into() };
        assert_eq!(codes(run.try_do(&stranger(), hours(5), reopen()).unwrap_err()), ["not_staff_or_reporter"]);
        let last_moment = hours(4) + Duration::days(7);
        assert!(run.try_do(&reporter(), last_moment, reopen()).is_ok());
        assert_eq!(codes(run.try_do(&reporter(), last_moment + Duration::seconds(1), reopen()).unwrap_err()), ["reopen_window_expired"]);
        run.policy.reopen_window_days = None;
        assert_eq!(codes(run.try_do(&agent(), hours(5), reopen()).unwrap_err()), ["reopen_not_allowed"]);
        assert!(!available_actions(&run.state, &Context::new(hours(5), &agent(), &run.policy)).contains(&Action::Reopen));
    }

    #[test]
    fn cancelled_tickets_close_without_resolution_and_stay_closed() {
        let mut run = Run::new(TicketKind::ServiceRequest);
        assert_eq!(
            codes(run.try_do(&stranger(), hours(1), Command::Cancel { reason: "x".into() }).unwrap_err()),
            ["not_staff_or_reporter"]
        );
        let events = run.ok(&reporter(), hours(1), Command::Cancel { reason: " no longer needed ".into() });
        let kind = ClosureKind::Cancelled { reason: "no longer needed".into() };
        assert_eq!(events.last().unwrap(), &Event::Closed { kind: kind.clone() });
        assert_eq!(run.state.closure.as_ref().unwrap().kind, kind);
        assert!(run.state.resolution.is_none());
        assert_eq!(codes(run.try_do(&agent(), hours(2), Command::Reopen { reason: "oops".into() }).unwrap_err()), ["not_reopenable"]);

        let mut run = Run::new(TicketKind::Incident).in_progress();
        run.ok(&agent(), hours(3), Command::Pend { reason: PendingReason::WaitingForCustomer, note: None });
        run.ok(&agent(), hours(4), Command::Cancel { reason: "logged twice".into() });
        assert!(run.state.pending.is_none());
        assert!(is_refused_transition(Run::new(TicketKind::Incident).resolved().try_do(
            &agent(),
            hours(5),
            Command::Cancel { reason: "x".into() }
        )));
    }

    #[test]
    fn duplicates_close_with_a_pointer_to_the_checked_target() {
        let mut run = Run::new(TicketKind::Incident).in_progress();
        let target_number = TicketNumber::new(TicketKind::Incident, 7).unwrap();
        let subject = |id: &'static str, number| LinkSubject { id, number, project_id: "p1", status: Status::InProgress };
        let ok = check_merge(&subject("t-1", run.state.number), &subject("t-7", target_number), |_| None).unwrap();
        let other = check_merge(&subject("t-2", run.state.number), &subject("t-7", target_number), |_| None).unwrap();
        assert_eq!(codes(run.try_do(&agent(), hours(3), Command::MarkDuplicate { target: other }).unwrap_err()), ["not_checked"]);
        assert_eq!(codes(run.try_do(&reporter(), hours(3), Command::MarkDuplicate { target: ok.clone() }).unwrap_err()), ["not_staff"]);
        run.ok(&agent(), hours(3), Command::MarkDuplicate { target: ok });
        assert_eq!(run.state.closure.unwrap().kind, ClosureKind::Duplicate { of_id: "t-7".into(), of_number: target_number });
    }

    #[test]
    fn the_log_never_goes_back_in_time() {
        let mut run = Run::new(TicketKind::Incident);
        run.ok(&agent(), hours(2), Command::Assign { assignment: team("team-1") });
        run.ok(&agent(), hours(1), Command::Start);
        assert_eq!(run.log.last().unwrap().at, hours(2));
        assert_eq!(run.state.status_changed_at, hours(2));
    }

    #[test]
    fn refusals_name_the_status_and_the_target() {
        let run = Run::new(TicketKind::Incident);
        assert_eq!(
            run.try_do(&agent(), hours(1), Command::Close).unwrap_err(),
            DomainError::InvalidTransition { from: "new".into(), to: "closed".into() }
        );
    }

    #[test]
    fn available_actions_follow_the_actor() {
        let policy = LifecyclePolicy { reopen_window_days: Some(3) };
        let state = Run::new(TicketKind::Incident).resolved().state;
        let at = |actor: &Actor| available_actions(&state, &Context::new(hours(4), actor, &policy));
        assert_eq!(at(&agent()), [Action::Close, Action::Reopen]);
        assert_eq!(at(&reporter()), [Action::Confirm, Action::Reject]);
        assert_eq!(at(&stranger()), []);
        assert_eq!(at(&Actor::System), [Action::Close, Action::AutoClose, Action::Reopen]);
        let fresh = new_ticket(TicketKind::Incident);
        assert_eq!(available_actions(&fresh, &Context::new(hours(1), &reporter(), &policy)), [Action::Cancel]);
    }

    #[test]
    fn status_log_checks() {
        let log = Run::new(TicketKind::Incident).closed().log;
        assert_eq!(check_status_log(&log).unwrap(), (Status::Closed, None));
        assert_eq!(codes(check_status_log(&[]).unwrap_err()), ["required"]);
        assert_eq!(codes(check_status_log(&log[1..]).unwrap_err()), ["invalid_start"]);
        let mut skipped = log.clone();
        skipped.remove(2);
        assert_eq!(codes(check_status_log(&skipped).unwrap_err()), ["broken_chain"]);
        let mut early = log.clone();
        early[3].at = t0();
        assert_eq!(codes(check_status_log(&early).unwrap_err()), ["out_of_order"]);
        let mut wrong_action = log.clone();
        wrong_action[4].action = Some(Action::Cancel);
        assert_eq!(codes(check_status_log(&wrong_action).unwrap_err()), ["not_in_lifecycle"]);
        let mut reason = log;
        reason[2].pending_reason = Some(PendingReason::Other);
        assert_eq!(codes(check_status_log(&reason).unwrap_err()), ["pending_reason"]);
    }

    #[test]
    fn invariants_catch_inconsistent_states() {
        let mut s = new_ticket(TicketKind::Incident);
        assert!(s.check_invariants().is_ok());
        s.status = Status::Assigned;
        assert!(s.check_invariants().is_err());
        s.assignment = team("x");
        assert!(s.check_invariants().is_ok());
        s.pending = Some(Pending { reason: PendingReason::Other, note: None });
        assert!(s.check_invariants().is_err());
    }

    #[test]
    fn actors_and_serde_forms() {
        let p = Principal {
            user_id: "u1".into(),
            display_name: "U".into(),
            kind: AccountKind::Contact,
            roles: vec![],
            organization_id: Some("o".into()),
            project_ids: vec![],
        };
        assert_eq!(Actor::from(&p), Actor::Contact("u1".into()));
        assert_eq!(Actor::System.account_kind(), AccountKind::Staff);
        assert_eq!(serde_json::to_value(Actor::Staff("a".into())).unwrap(), serde_json::json!({"kind": "staff", "id": "a"}));
        assert_eq!(serde_json::to_value(Actor::System).unwrap(), serde_json::json!({"kind": "system"}));
        let cmd = Command::Pend { reason: PendingReason::WaitingForCustomer, note: None };
        assert_eq!(serde_json::to_value(&cmd).unwrap()["action"], "pend");
        let run = Run::new(TicketKind::Incident).closed();
        let json = serde_json::to_string(&run.state).unwrap();
        assert_eq!(serde_json::from_str::<TicketState>(&json).unwrap(), run.state);
    }
}

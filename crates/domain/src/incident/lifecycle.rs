//! Incident management: the ticket lifecycle as data. One table says which action leads from
//! which status to which, under which guards; `ticket::apply` enforces it, and the UI, the API
//! documentation and the tests read the same table.

use serde::Serialize;

stable_str_enum! {
    /// Ticket status (new → assigned → in progress → pending → resolved → closed).
    pub enum Status {
        New => "new",
        Assigned => "assigned",
        InProgress => "in_progress",
        Pending => "pending",
        Resolved => "resolved",
        Closed => "closed",
    }
}

impl Status {
    /// Open tickets are still being worked on: not yet resolved or closed.
    pub fn is_open(self) -> bool {
        !matches!(self, Status::Resolved | Status::Closed)
    }
    /// Statuses in which a team or agent must be assigned.
    pub fn requires_assignment(self) -> bool {
        matches!(self, Status::Assigned | Status::InProgress | Status::Pending | Status::Resolved)
    }
}

stable_str_enum! {
    /// Why a ticket is pending (挂起). Only waiting for the customer or a supplier pauses the SLA.
    pub enum PendingReason {
        WaitingForCustomer => "waiting_for_customer",
        WaitingForSupplier => "waiting_for_supplier",
        WaitingForChange => "waiting_for_change",
        Other => "other",
    }
}

/// The status string the SLA engine keys its clocks on: the status, with pending split by reason
/// (`pending_customer`, `pending_supplier`, `pending_change`, `pending_other`).
pub fn sla_status(status: Status, pending_reason: Option<PendingReason>) -> &'static str {
    match (status, pending_reason) {
        (Status::Pending, Some(PendingReason::WaitingForCustomer)) => "pending_customer",
        (Status::Pending, Some(PendingReason::WaitingForSupplier)) => "pending_supplier",
        (Status::Pending, Some(PendingReason::WaitingForChange)) => "pending_change",
        (Status::Pending, Some(PendingReason::Other) | None) => "pending_other",
        (s, _) => s.as_str(),
    }
}

/// Every string [`sla_status`] can return, for configuring which ones pause a clock.
pub const SLA_STATUSES: [&str; 9] =
    ["new", "assigned", "in_progress", "pending_customer", "pending_supplier", "pending_change", "pending_other", "resolved", "closed"];

/// The SLA statuses in which resolution clocks pause by default: the provider is waiting on
/// someone outside its control.
pub const SLA_PAUSING_STATUSES: [&str; 2] = ["pending_customer", "pending_supplier"];

/// Whether a ticket in this status pauses its SLA clocks under the default policy.
pub fn pauses_sla(status: Status, pending_reason: Option<PendingReason>) -> bool {
    SLA_PAUSING_STATUSES.contains(&sla_status(status, pending_reason))
}

stable_str_enum! {
    /// What someone can do to a ticket's status. Each action always leads to the same status.
    pub enum Action {
        /// 分派: give a new ticket to a resolver group and/or agent.
        Assign => "assign",
        /// 重新分派: hand an open ticket to another group or agent (functional escalation).
        Reassign => "reassign",
        /// The assignee starts work.
        Start => "start",
        /// 挂起: wait for someone, with a reason.
        Pend => "pend",
        /// Waiting is over.
        Resume => "resume",
        Resolve => "resolve",
        /// The reporter accepts the resolution.
        Confirm => "confirm",
        /// The reporter does not accept the resolution: the ticket goes back to its assignee.
        Reject => "reject",
        /// Staff close a resolved ticket (e.g. the customer confirmed by phone).
        Close => "close",
        /// The system closes a resolved ticket nobody answered (see `closure::auto_close_due`).
        AutoClose => "auto_close",
        /// 重新打开.
        Reopen => "reopen",
        /// Withdrawn or logged in error; closed without a resolution.
        Cancel => "cancel",
        /// Closed as a duplicate of another ticket, keeping a pointer to it.
        MarkDuplicate => "mark_duplicate",
    }
}

stable_str_enum! {
    /// A condition a transition needs. `Guard::kind` tells whether it depends on who acts, on the
    /// ticket, or on what the command carries.
    pub enum Guard {
        /// Staff (or the system acting for them).
        Staff => "staff",
        /// The system itself, e.g. the auto-close job.
        System => "system",
        /// The ticket's reporter.
        Reporter => "reporter",
        /// Staff, the system, or the reporter.
        StaffOrReporter => "staff_or_reporter",
        /// The command names a team or an agent.
        AssigneeGiven => "assignee_given",
        /// The command names a different team or agent than the current one.
        AssignmentChanges => "assignment_changes",
        /// A pending reason; "other" must be explained in a note.
        PendingReasonGiven => "pending_reason_given",
        /// A resolution code valid for the ticket kind and resolution notes.
        ResolutionGiven => "resolution_given",
        /// A reason in words.
        ReasonGiven => "reason_given",
        /// The ticket was closed after a resolution, not cancelled or merged.
        ClosedAsResolved => "closed_as_resolved",
        /// Reopening after closure is configured and the window has not passed.
        WithinReopenWindow => "within_reopen_window",
        /// The duplicate target was checked for this very ticket (`links::check_merge`).
        MergeChecked => "merge_checked",
    }
}

/// What a guard depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardKind {
    Actor,
    State,
    Input,
}

impl Guard {
    pub fn kind(self) -> GuardKind {
        match self {
            Guard::Staff | Guard::System | Guard::Reporter | Guard::StaffOrReporter => GuardKind::Actor,
            Guard::ClosedAsResolved | Guard::WithinReopenWindow => GuardKind::State,
            Guard::AssigneeGiven
            | Guard::AssignmentChanges
            | Guard::PendingReasonGiven
            | Guard::ResolutionGiven
            | Guard::ReasonGiven
            | Guard::MergeChecked => GuardKind::Input,
        }
    }
}

/// One row of the lifecycle table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub from: Status,
    pub action: Action,
    pub to: Status,
    pub guards: &'static [Guard],
}

const fn row(from: Status, action: Action, to: Status, guards: &'static [Guard]) -> Transition {
    Transition { from, action, to, guards }
}

use Action as A;
use Guard as G;
use Status as S;

const ASSIGN: &[Guard] = &[G::Staff, G::AssigneeGiven];
const REASSIGN: &[Guard] = &[G::Staff, G::AssigneeGiven, G::AssignmentChanges];
const PEND: &[Guard] = &[G::Staff, G::PendingReasonGiven];
const RESOLVE: &[Guard] = &[G::Staff, G::ResolutionGiven];
const CANCEL: &[Guard] = &[G::StaffOrReporter, G::ReasonGiven];
const DUPLICATE: &[Guard] = &[G::Staff, G::MergeChecked];

/// The ticket lifecycle. Incidents and service requests share it.
pub const TRANSITIONS: &[Transition] = &[
    row(S::New, A::Assign, S::Assigned, ASSIGN),
    row(S::Assigned, A::Reassign, S::Assigned, REASSIGN),
    row(S::InProgress, A::Reassign, S::Assigned, REASSIGN),
    row(S::Pending, A::Reassign, S::Assigned, REASSIGN),
    row(S::Assigned, A::Start, S::InProgress, &[G::Staff]),
    row(S::Assigned, A::Pend, S::Pending, PEND),
    row(S::InProgress, A::Pend, S::Pending, PEND),
    row(S::Pending, A::Resume, S::InProgress, &[G::Staff]),
    row(S::Assigned, A::Resolve, S::Resolved, RESOLVE),
    row(S::InProgress, A::Resolve, S::Resolved, RESOLVE),
    row(S::Pending, A::Resolve, S::Resolved, RESOLVE),
    row(S::Resolved, A::Confirm, S::Closed, &[G::Reporter]),
    row(S::Resolved, A::Reject, S::Assigned, &[G::Reporter, G::ReasonGiven]),
    row(S::Resolved, A::Close, S::Closed, &[G::Staff]),
    row(S::Resolved, A::AutoClose, S::Closed, &[G::System]),
    row(S::Resolved, A::Reopen, S::Assigned, &[G::Staff, G::ReasonGiven]),
    row(S::Closed, A::Reopen, S::Assigned, &[G::StaffOrReporter, G::ReasonGiven, G::ClosedAsResolved, G::WithinReopenWindow]),
    row(S::New, A::Cancel, S::Closed, CANCEL),
    row(S::Assigned, A::Cancel, S::Closed, CANCEL),
    row(S::InProgress, A::Cancel, S::Closed, CANCEL),
    row(S::Pending, A::Cancel, S::Closed, CANCEL),
    row(S::New, A::MarkDuplicate, S::Closed, DUPLICATE),
    row(S::Assigned, A::MarkDuplicate, S::Closed, DUPLICATE),
    row(S::InProgress, A::MarkDuplicate, S::Closed, DUPLICATE),
    row(S::Pending, A::MarkDuplicate, S::Closed, DUPLICATE),
];

/// The row for `action` taken from `from`, if the lifecycle allows it at all.
pub fn transition(from: Status, action: Action) -> Option<&'static Transition> {
    TRANSITIONS.iter().find(|t| t.from == from && t.action == action)
}

/// Whether some action leads directly from `from` to `to`.
pub fn is_edge(from: Status, to: Status) -> bool {
    TRANSITIONS.iter().any(|t| t.from == from && t.to == to)
}

impl Action {
    /// The status this action leads to, wherever it is taken from.
    pub fn target(self) -> Status {
        TRANSITIONS.iter().find(|t| t.action == self).map_or(Status::New, |t| t.to)
    }
}

/// Statuses reachable from `start` through the table, `start` included.
pub fn reachable_from(start: Status) -> Vec<Status> {
    let mut seen = vec![start];
    let mut i = 0;
    while let Some(&s) = seen.get(i) {
        for t in TRANSITIONS.iter().filter(|t| t.from == s) {
            if !seen.contains(&t.to) {
                seen.push(t.to);
            }
        }
        i += 1;
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_strings_round_trip_and_match_serde() {
        for &s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for &a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        for &g in Guard::ALL {
            assert_eq!(Guard::parse(g.as_str()), Some(g));
        }
        for &r in PendingReason::ALL {
            assert_eq!(serde_json::from_value::<PendingReason>(r.as_str().into()).unwrap(), r);
        }
        assert_eq!(Status::parse("In Progress"), None);
        assert_eq!(Status::parse_field("status", " in_progress ").unwrap(), Status::InProgress);
        assert_eq!(Status::parse_field("status", "open").unwrap_err().code, "invalid_choice");
    }

    #[test]
    fn the_table_is_well_formed() {
        for (i, t) in TRANSITIONS.iter().enumerate() {
            assert_eq!(t.to, t.action.target(), "{} has two targets", t.action);
            assert!(TRANSITIONS[..i].iter().all(|u| (u.from, u.action) != (t.from, t.action)), "row {i} repeated");
            assert!(t.guards.iter().any(|g| g.kind() == GuardKind::Actor), "row {i} says nothing about who may act");
        }
        for &a in Action::ALL {
            assert!(TRANSITIONS.iter().any(|t| t.action == a), "{a} is never allowed");
        }
        assert_eq!(reachable_from(Status::New).len(), Status::ALL.len(), "every status is reachable");
        for &s in Status::ALL {
            assert!(TRANSITIONS.iter().any(|t| t.from == s), "{s} is a dead end");
        }
    }

    #[test]
    fn closed_is_left_only_by_reopening() {
        let out: Vec<Action> = TRANSITIONS.iter().filter(|t| t.from == Status::Closed).map(|t| t.action).collect();
        assert_eq!(out, vec![Action::Reopen]);
        assert!(transition(Status::Closed, Action::Reopen).unwrap().guards.contains(&Guard::WithinReopenWindow));
        assert!(transition(Status::New, Action::Close).is_none());
        assert!(transition(Status::InProgress, Action::Close).is_none(), "closing requires resolved");
        assert!(is_edge(Status::Resolved, Status::Closed));
        assert!(!is_edge(Status::New, Status::Resolved));
    }

    #[test]
    fn sla_statuses() {
        assert_eq!(sla_status(Status::Pending, Some(PendingReason::WaitingForCustomer)), "pending_customer");
        assert_eq!(sla_status(Status::Pending, Some(PendingReason::WaitingForSupplier)), "pending_supplier");
        assert_eq!(sla_status(Status::Pending, Some(PendingReason::WaitingForChange)), "pending_change");
        assert_eq!(sla_status(Status::Pending, Some(PendingReason::Other)), "pending_other");
        assert_eq!(sla_status(Status::InProgress, Some(PendingReason::Other)), "in_progress");
        assert!(pauses_sla(Status::Pending, Some(PendingReason::WaitingForSupplier)));
        assert!(!pauses_sla(Status::Pending, Some(PendingReason::WaitingForChange)));
        assert!(!pauses_sla(Status::Resolved, None));
        for &s in Status::ALL {
            for r in PendingReason::ALL.iter().copied().map(Some).chain([None]) {
                assert!(SLA_STATUSES.contains(&sla_status(s, r)));
            }
        }
    }
}

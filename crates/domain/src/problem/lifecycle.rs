//! Problem management: the problem lifecycle as data (new → under investigation → known error
//! → resolved → closed). `record::apply` enforces it; the UI, API docs and tests read it.
//!
//! Rows whose `from` equals `to` are work done within a status (recording the root-cause
//! analysis, a workaround, publication of the known error): the table also says in which
//! statuses that work may happen.

use crate::incident::stable_str_enum;
use serde::Serialize;

stable_str_enum! {
    pub enum Status {
        New => "new",
        UnderInvestigation => "under_investigation",
        /// 已知错误: the cause or a workaround is known and recorded in the known error database.
        KnownError => "known_error",
        Resolved => "resolved",
        Closed => "closed",
    }
}

impl Status {
    pub fn is_open(self) -> bool {
        !matches!(self, Status::Resolved | Status::Closed)
    }
    pub fn requires_assignment(self) -> bool {
        matches!(self, Status::UnderInvestigation | Status::KnownError | Status::Resolved)
    }
}

stable_str_enum! {
    pub enum Action {
        /// Give the problem to an analyst or resolver group and start the investigation.
        Investigate => "investigate",
        Reassign => "reassign",
        /// Record (or revise) the root-cause analysis.
        RecordRca => "record_rca",
        /// Record (or revise) the workaround (临时解决方案).
        RecordWorkaround => "record_workaround",
        /// Record the known error in the known error database.
        DeclareKnownError => "declare_known_error",
        /// Publish the known error on the customer portal, or withdraw it.
        SetPublication => "set_publication",
        /// The root cause is removed (typically by a change).
        Resolve => "resolve",
        /// The problem recurred after its resolution.
        Reopen => "reopen",
        Close => "close",
        /// Not a problem after all (or a duplicate of another problem).
        Cancel => "cancel",
    }
}

stable_str_enum! {
    pub enum Guard {
        /// Staff (or the system acting for them); customers never act on problems.
        Staff => "staff",
        AssigneeGiven => "assignee_given",
        AssignmentChanges => "assignment_changes",
        /// A method and findings.
        RcaGiven => "rca_given",
        WorkaroundGiven => "workaround_given",
        /// A known error needs a root cause or a workaround, or it would tell the desk nothing.
        RootCauseOrWorkaround => "root_cause_or_workaround",
        /// A title and symptoms the desk can match incidents against.
        KnownErrorGiven => "known_error_given",
        /// Only a known error with a workaround goes on the portal: customers need something to do.
        PublishableWorkaround => "publishable_workaround",
        /// Resolving means removing the root cause, so it must be known.
        RootCauseKnown => "root_cause_known",
        ResolutionGiven => "resolution_given",
        ReasonGiven => "reason_given",
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

const REASSIGN: &[Guard] = &[G::Staff, G::AssigneeGiven, G::AssignmentChanges];
const RCA: &[Guard] = &[G::Staff, G::RcaGiven];
const WORKAROUND: &[Guard] = &[G::Staff, G::WorkaroundGiven];
const RESOLVE: &[Guard] = &[G::Staff, G::RootCauseKnown, G::ResolutionGiven];
const CANCEL: &[Guard] = &[G::Staff, G::ReasonGiven];

pub const TRANSITIONS: &[Transition] = &[
    row(S::New, A::Investigate, S::UnderInvestigation, &[G::Staff, G::AssigneeGiven]),
    row(S::UnderInvestigation, A::Reassign, S::UnderInvestigation, REASSIGN),
    row(S::KnownError, A::Reassign, S::KnownError, REASSIGN),
    row(S::UnderInvestigation, A::RecordRca, S::UnderInvestigation, RCA),
    row(S::KnownError, A::RecordRca, S::KnownError, RCA),
    row(S::UnderInvestigation, A::RecordWorkaround, S::UnderInvestigation, WORKAROUND),
    row(S::KnownError, A::RecordWorkaround, S::KnownError, WORKAROUND),
    row(
        S::UnderInvestigation,
        A::DeclareKnownError,
        S::KnownError,
        &[G::Staff, G::RootCauseOrWorkaround, G::KnownErrorGiven, G::PublishableWorkaround],
    ),
    row(S::KnownError, A::SetPublication, S::KnownError, &[G::Staff, G::PublishableWorkaround]),
    row(S::UnderInvestigation, A::Resolve, S::Resolved, RESOLVE),
    row(S::KnownError, A::Resolve, S::Resolved, RESOLVE),
    row(S::Resolved, A::Reopen, S::UnderInvestigation, &[G::Staff, G::ReasonGiven]),
    row(S::Resolved, A::Close, S::Closed, &[G::Staff]),
    row(S::New, A::Cancel, S::Closed, CANCEL),
    row(S::UnderInvestigation, A::Cancel, S::Closed, CANCEL),
];

pub fn transition(from: Status, action: Action) -> Option<&'static Transition> {
    TRANSITIONS.iter().find(|t| t.from == from && t.action == action)
}

impl Action {
    /// The status this action leads to, or `None` for work within a status.
    pub fn target(self) -> Option<Status> {
        let mut rows = TRANSITIONS.iter().filter(|t| t.action == self);
        let first = rows.next()?;
        (first.from != first.to).then_some(first.to)
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
    fn stable_strings() {
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
    }

    #[test]
    fn the_table_is_well_formed() {
        for (i, t) in TRANSITIONS.iter().enumerate() {
            assert!(TRANSITIONS[..i].iter().all(|u| (u.from, u.action) != (t.from, t.action)), "row {i} repeated");
            assert_eq!(t.guards.first(), Some(&Guard::Staff), "row {i}: only staff act on problems");
            let same_kind = TRANSITIONS.iter().filter(|u| u.action == t.action).all(|u| (u.from == u.to) == (t.from == t.to));
            assert!(same_kind, "{} is sometimes a change of status and sometimes not", t.action);
            if let Some(target) = t.action.target() {
                assert_eq!(target, t.to);
            }
        }
        for &a in Action::ALL {
            assert!(TRANSITIONS.iter().any(|t| t.action == a), "{a} is never allowed");
        }
        assert_eq!(reachable_from(Status::New).len(), Status::ALL.len());
        assert_eq!(reachable_from(Status::Closed), [Status::Closed], "closed problems are final");
    }

    #[test]
    fn key_rules_are_in_the_table() {
        let declare = transition(Status::UnderInvestigation, Action::DeclareKnownError).unwrap();
        assert!(declare.guards.contains(&Guard::RootCauseOrWorkaround));
        assert!(transition(Status::New, Action::DeclareKnownError).is_none(), "investigate first");
        assert!(transition(Status::New, Action::Resolve).is_none());
        assert!(transition(Status::KnownError, Action::Cancel).is_none(), "known errors are resolved, not cancelled");
        assert!(transition(Status::Resolved, Action::RecordRca).is_none());
        assert_eq!(Action::RecordRca.target(), None);
        assert_eq!(Action::Resolve.target(), Some(Status::Resolved));
    }
}

//! Change management: change types and the change lifecycle, as a transition table with
//! per-type guards that the UI, the API, the documentation and the tests all read.

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Errors, FieldError};
use crate::validate::Locale;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeType {
    /// Pre-approved, low-risk, from a standard change template: no assessment and no CAB.
    Standard,
    /// Assessed and approved by the change advisory board.
    Normal,
    /// Approved by the emergency CAB, possibly implemented at once, always reviewed afterwards.
    Emergency,
}

impl ChangeType {
    pub const ALL: [ChangeType; 3] = [ChangeType::Standard, ChangeType::Normal, ChangeType::Emergency];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Standard => "standard",
            ChangeType::Normal => "normal",
            ChangeType::Emergency => "emergency",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn label(self, locale: Locale) -> &'static str {
        match (self, locale) {
            (ChangeType::Standard, Locale::En) => "Standard change",
            (ChangeType::Normal, Locale::En) => "Normal change",
            (ChangeType::Emergency, Locale::En) => "Emergency change",
            (ChangeType::Standard, Locale::ZhCn) => "标准变更",
            (ChangeType::Normal, Locale::ZhCn) => "常规变更",
            (ChangeType::Emergency, Locale::ZhCn) => "紧急变更",
        }
    }

    /// Whether a CAB (or, for emergencies, the emergency CAB) must approve.
    pub fn needs_approval(self) -> bool {
        self != ChangeType::Standard
    }

    /// Whether a post-implementation review is required even when the change succeeded.
    pub fn must_be_reviewed(self) -> bool {
        self == ChangeType::Emergency
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    Draft,
    Submitted,
    Assessed,
    Approved,
    Rejected,
    Scheduled,
    Implementing,
    Implemented,
    Failed,
    BackedOut,
    Reviewed,
    Closed,
    Cancelled,
}

impl ChangeStatus {
    pub const ALL: [ChangeStatus; 13] = [
        ChangeStatus::Draft,
        ChangeStatus::Submitted,
        ChangeStatus::Assessed,
        ChangeStatus::Approved,
        ChangeStatus::Rejected,
        ChangeStatus::Scheduled,
        ChangeStatus::Implementing,
        ChangeStatus::Implemented,
        ChangeStatus::Failed,
        ChangeStatus::BackedOut,
        ChangeStatus::Reviewed,
        ChangeStatus::Closed,
        ChangeStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Draft => "draft",
            ChangeStatus::Submitted => "submitted",
            ChangeStatus::Assessed => "assessed",
            ChangeStatus::Approved => "approved",
            ChangeStatus::Rejected => "rejected",
            ChangeStatus::Scheduled => "scheduled",
            ChangeStatus::Implementing => "implementing",
            ChangeStatus::Implemented => "implemented",
            ChangeStatus::Failed => "failed",
            ChangeStatus::BackedOut => "backed_out",
            ChangeStatus::Reviewed => "reviewed",
            ChangeStatus::Closed => "closed",
            ChangeStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn label(self, locale: Locale) -> &'static str {
        match locale {
            Locale::En => match self {
                ChangeStatus::Draft => "Draft",
                ChangeStatus::Submitted => "Submitted",
                ChangeStatus::Assessed => "Assessed",
                ChangeStatus::Approved => "Approved",
                ChangeStatus::Rejected => "Rejected",
                ChangeStatus::Scheduled => "Scheduled",
                ChangeStatus::Implementing => "Implementing",
                ChangeStatus::Implemented => "Implemented",
                ChangeStatus::Failed => "Failed",
                ChangeStatus::BackedOut => "Backed out",
                ChangeStatus::Reviewed => "Reviewed",
                ChangeStatus::Closed => "Closed",
                ChangeStatus::Cancelled => "Cancelled",
            },
            Locale::ZhCn => match self {
                ChangeStatus::Draft => "草稿",
                ChangeStatus::Submitted => "已提交",
                ChangeStatus::Assessed => "已评估",
                ChangeStatus::Approved => "已批准",
                ChangeStatus::Rejected => "已拒绝",
                ChangeStatus::Scheduled => "已排期",
                ChangeStatus::Implementing => "实施中",
                ChangeStatus::Implemented => "已实施",
                ChangeStatus::Failed => "实施失败",
                ChangeStatus::BackedOut => "已回退",
                ChangeStatus::Reviewed => "已评审",
                ChangeStatus::Closed => "已关闭",
                ChangeStatus::Cancelled => "已取消",
            },
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, ChangeStatus::Closed | ChangeStatus::Cancelled)
    }

    /// Whether CIs may be modified under this change: only while it is being implemented, so
    /// every CI modification is tied to an authorised change.
    pub fn authorises_ci_updates(self) -> bool {
        self == ChangeStatus::Implementing
    }

    /// Whether a change of this type in this status is authorised and has not since failed,
    /// been backed out or cancelled: what a release needs of every change it deploys. A
    /// standard change is pre-approved by its template once submitted.
    pub fn is_authorised(self, change_type: ChangeType) -> bool {
        matches!(
            self,
            ChangeStatus::Approved
                | ChangeStatus::Scheduled
                | ChangeStatus::Implementing
                | ChangeStatus::Implemented
                | ChangeStatus::Reviewed
                | ChangeStatus::Closed
        ) || (change_type == ChangeType::Standard && self == ChangeStatus::Submitted)
    }

    /// Whether the change occupies its window on the forward schedule of change.
    pub fn is_on_schedule(self) -> bool {
        matches!(self, ChangeStatus::Scheduled | ChangeStatus::Implementing)
    }
}

/// A condition a transition needs besides being in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// A standard change comes from an active, pre-approved template.
    ActiveTemplate,
    /// Implementation and back-out plans are written.
    Plans,
    RiskAssessment,
    /// The approval workflow (CAB, or emergency CAB) has approved.
    Approval,
    /// The approval workflow has rejected.
    Rejection,
    /// A valid implementation window is planned.
    Window,
    /// The actor gave a reason.
    Reason,
    /// A post-implementation review is recorded.
    Review,
}

impl Requirement {
    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::ActiveTemplate => "active_template",
            Requirement::Plans => "plans",
            Requirement::RiskAssessment => "risk_assessment",
            Requirement::Approval => "approval",
            Requirement::Rejection => "rejection",
            Requirement::Window => "window",
            Requirement::Reason => "reason",
            Requirement::Review => "review",
        }
    }

    fn is_met(self, f: &ChangeFacts) -> bool {
        match self {
            Requirement::ActiveTemplate => f.template_active,
            Requirement::Plans => f.has_plans,
            Requirement::RiskAssessment => f.risk_assessed,
            Requirement::Approval => f.approved,
            Requirement::Rejection => f.rejected,
            Requirement::Window => f.has_window,
            Requirement::Reason => f.reason.is_some_and(|r| !r.trim().is_empty()),
            Requirement::Review => f.review_recorded,
        }
    }

    fn error(self) -> FieldError {
        let (field, code, message) = match self {
            Requirement::ActiveTemplate => {
                ("template", "active_template_required", "a standard change needs an active standard change template")
            }
            Requirement::Plans => ("implementation_plan", "plans_required", "implementation and back-out plans are required"),
            Requirement::RiskAssessment => ("risk_assessment", "risk_assessment_required", "the risk assessment must be completed first"),
            Requirement::Approval => ("approval", "approval_required", "the change has not been approved"),
            Requirement::Rejection => ("approval", "rejection_required", "the change has not been rejected by its approvers"),
            Requirement::Window => ("window", "window_required", "a planned implementation window is required"),
            Requirement::Reason => ("reason", "reason_required", "a reason is required"),
            Requirement::Review => ("review", "review_required", "a post-implementation review must be recorded"),
        };
        FieldError::new(field, code, message)
    }
}

/// What the caller knows about the change when it asks for a transition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeFacts<'a> {
    pub template_active: bool,
    pub has_plans: bool,
    pub risk_assessed: bool,
    pub approved: bool,
    pub rejected: bool,
    pub has_window: bool,
    pub review_recorded: bool,
    pub reason: Option<&'a str>,
}

/// One row of the change lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChangeTransition {
    pub from: ChangeStatus,
    pub to: ChangeStatus,
    pub types: &'static [ChangeType],
    pub requires: &'static [Requirement],
}

const ALL: &[ChangeType] = &ChangeType::ALL;
const STANDARD: &[ChangeType] = &[ChangeType::Standard];
const ASSESSED_TYPES: &[ChangeType] = &[ChangeType::Normal, ChangeType::Emergency];
const EMERGENCY: &[ChangeType] = &[ChangeType::Emergency];
const NOT_EMERGENCY: &[ChangeType] = &[ChangeType::Standard, ChangeType::Normal];

const fn t(from: ChangeStatus, to: ChangeStatus, types: &'static [ChangeType], requires: &'static [Requirement]) -> ChangeTransition {
    ChangeTransition { from, to, types, requires }
}

use ChangeStatus as S;
use Requirement as R;

/// The change lifecycle. At most one row matches a (type, from, to) triple.
pub const CHANGE_TRANSITIONS: &[ChangeTransition] = &[
    t(S::Draft, S::Submitted, STANDARD, &[R::ActiveTemplate]),
    t(S::Draft, S::Submitted, ASSESSED_TYPES, &[R::Plans]),
    t(S::Submitted, S::Draft, ALL, &[R::Reason]),
    t(S::Submitted, S::Scheduled, STANDARD, &[R::Window]),
    t(S::Submitted, S::Assessed, ASSESSED_TYPES, &[R::RiskAssessment]),
    // The emergency CAB may decide before a full assessment.
    t(S::Submitted, S::Approved, EMERGENCY, &[R::Approval]),
    t(S::Submitted, S::Rejected, EMERGENCY, &[R::Rejection]),
    t(S::Assessed, S::Draft, ASSESSED_TYPES, &[R::Reason]),
    t(S::Assessed, S::Approved, ASSESSED_TYPES, &[R::Approval]),
    t(S::Assessed, S::Rejected, ASSESSED_TYPES, &[R::Rejection]),
    t(S::Approved, S::Scheduled, ASSESSED_TYPES, &[R::Window]),
    t(S::Approved, S::Implementing, EMERGENCY, &[]),
    t(S::Scheduled, S::Implementing, ALL, &[R::Window]),
    t(S::Implementing, S::Implemented, ALL, &[]),
    t(S::Implementing, S::Failed, ALL, &[R::Reason]),
    t(S::Implementing, S::BackedOut, ALL, &[R::Reason]),
    t(S::Failed, S::BackedOut, ALL, &[]),
    t(S::Implemented, S::Reviewed, ALL, &[R::Review]),
    t(S::Failed, S::Reviewed, ALL, &[R::Review]),
    t(S::BackedOut, S::Reviewed, ALL, &[R::Review]),
    t(S::Implemented, S::Closed, NOT_EMERGENCY, &[]),
    t(S::Reviewed, S::Closed, ALL, &[]),
    t(S::Rejected, S::Closed, ALL, &[]),
    t(S::Draft, S::Cancelled, ALL, &[R::Reason]),
    t(S::Submitted, S::Cancelled, ALL, &[R::Reason]),
    t(S::Assessed, S::Cancelled, ALL, &[R::Reason]),
    t(S::Approved, S::Cancelled, ALL, &[R::Reason]),
    t(S::Scheduled, S::Cancelled, ALL, &[R::Reason]),
];

/// The rows a change of type `ty` in status `from` may take, in table order.
pub fn transitions_from(ty: ChangeType, from: ChangeStatus) -> impl Iterator<Item = &'static ChangeTransition> {
    CHANGE_TRANSITIONS.iter().filter(move |t| t.from == from && t.types.contains(&ty))
}

pub fn find_transition(ty: ChangeType, from: ChangeStatus, to: ChangeStatus) -> Option<&'static ChangeTransition> {
    transitions_from(ty, from).find(|t| t.to == to)
}

/// Checks a status change: it must be in the table for the change's type, and every
/// requirement of its row must hold; all unmet requirements are reported together.
pub fn check_transition(ty: ChangeType, from: ChangeStatus, to: ChangeStatus, facts: &ChangeFacts) -> Result<ChangeStatus, DomainError> {
    let row = find_transition(ty, from, to)
        .ok_or_else(|| DomainError::InvalidTransition { from: from.as_str().into(), to: to.as_str().into() })?;
    let mut errors = Errors::new();
    for r in row.requires.iter().filter(|r| !r.is_met(facts)) {
        errors.push(r.error());
    }
    errors.finish()?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn all_facts() -> ChangeFacts<'static> {
        ChangeFacts {
            template_active: true,
            has_plans: true,
            risk_assessed: true,
            approved: true,
            rejected: true,
            has_window: true,
            review_recorded: true,
            reason: Some("because"),
        }
    }

    fn walk(ty: ChangeType, path: &[ChangeStatus]) {
        for w in path.windows(2) {
            assert!(check_transition(ty, w[0], w[1], &all_facts()).is_ok(), "{ty:?}: {:?} -> {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn names_round_trip() {
        for s in ChangeStatus::ALL {
            assert_eq!(ChangeStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert!(!s.label(Locale::ZhCn).is_empty() && !s.label(Locale::En).is_empty());
        }
        for t in ChangeType::ALL {
            assert_eq!(ChangeType::parse(t.as_str()), Some(t));
        }
        assert_eq!(ChangeType::Emergency.label(Locale::ZhCn), "紧急变更");
    }

    #[test]
    fn the_table_is_unambiguous_and_terminal_states_are_final() {
        let mut seen = HashSet::new();
        for row in CHANGE_TRANSITIONS {
            assert_ne!(row.from, row.to);
            assert!(!row.from.is_terminal());
            for ty in row.types {
                assert!(seen.insert((*ty, row.from, row.to)), "duplicate row {ty:?} {:?}->{:?}", row.from, row.to);
            }
        }
    }

    fn reachable(ty: ChangeType, start: ChangeStatus) -> Vec<ChangeStatus> {
        let mut seen = vec![start];
        let mut i = 0;
        while i < seen.len() {
            for t in transitions_from(ty, seen[i]) {
                if !seen.contains(&t.to) {
                    seen.push(t.to);
                }
            }
            i += 1;
        }
        seen
    }

    #[test]
    fn no_change_gets_stuck() {
        for ty in ChangeType::ALL {
            for status in reachable(ty, ChangeStatus::Draft) {
                let ends = reachable(ty, status);
                assert!(ends.iter().any(|s| s.is_terminal()), "{ty:?} stuck in {status:?}");
            }
            assert!(reachable(ty, ChangeStatus::Draft).contains(&ChangeStatus::Closed));
        }
        assert!(!reachable(ChangeType::Standard, ChangeStatus::Draft).contains(&ChangeStatus::Assessed));
        assert!(!reachable(ChangeType::Standard, ChangeStatus::Draft).contains(&ChangeStatus::Approved));
    }

    #[test]
    fn happy_paths_per_type() {
        use ChangeStatus::*;
        walk(ChangeType::Normal, &[Draft, Submitted, Assessed, Approved, Scheduled, Implementing, Implemented, Closed]);
        walk(ChangeType::Normal, &[Draft, Submitted, Assessed, Approved, Scheduled, Implementing, Implemented, Reviewed, Closed]);
        walk(ChangeType::Normal, &[Draft, Submitted, Assessed, Rejected, Closed]);
        walk(ChangeType::Standard, &[Draft, Submitted, Scheduled, Implementing, Implemented, Closed]);
        walk(ChangeType::Emergency, &[Draft, Submitted, Approved, Implementing, Implemented, Reviewed, Closed]);
        walk(ChangeType::Emergency, &[Draft, Submitted, Assessed, Approved, Scheduled, Implementing, Failed, BackedOut, Reviewed, Closed]);
    }

    #[test]
    fn guards_by_type() {
        use ChangeStatus::*;
        let f = all_facts();
        let refused = |ty, from, to| matches!(check_transition(ty, from, to, &f), Err(DomainError::InvalidTransition { .. }));
        assert!(refused(ChangeType::Standard, Submitted, Assessed), "standard skips assessment");
        assert!(refused(ChangeType::Standard, Submitted, Approved), "standard skips the CAB");
        assert!(refused(ChangeType::Normal, Submitted, Scheduled), "normal changes are assessed and approved");
        assert!(refused(ChangeType::Normal, Submitted, Approved));
        assert!(refused(ChangeType::Normal, Approved, Implementing), "only emergencies skip scheduling");
        assert!(refused(ChangeType::Emergency, Implemented, Closed), "emergencies must be reviewed");
        assert!(refused(ChangeType::Normal, Failed, Closed), "failed changes are reviewed");
        assert!(refused(ChangeType::Normal, Closed, Draft));
        assert!(refused(ChangeType::Normal, Cancelled, Draft));
        assert_eq!(
            check_transition(ChangeType::Normal, Draft, Implemented, &f),
            Err(DomainError::InvalidTransition { from: "draft".into(), to: "implemented".into() })
        );
    }

    #[test]
    fn unmet_requirements_are_all_reported() {
        use ChangeStatus::*;
        let none = ChangeFacts::default();
        let code = |ty, from, to, facts: &ChangeFacts| match check_transition(ty, from, to, facts) {
            Err(DomainError::Invalid(v)) => v.iter().map(|e| e.code).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(code(ChangeType::Standard, Draft, Submitted, &none), vec!["active_template_required"]);
        assert_eq!(code(ChangeType::Normal, Draft, Submitted, &none), vec!["plans_required"]);
        assert_eq!(code(ChangeType::Normal, Submitted, Assessed, &none), vec!["risk_assessment_required"]);
        assert_eq!(code(ChangeType::Normal, Assessed, Approved, &none), vec!["approval_required"]);
        assert_eq!(code(ChangeType::Normal, Assessed, Rejected, &none), vec!["rejection_required"]);
        assert_eq!(code(ChangeType::Emergency, Submitted, Approved, &none), vec!["approval_required"]);
        assert_eq!(code(ChangeType::Normal, Approved, Scheduled, &none), vec!["window_required"]);
        assert_eq!(code(ChangeType::Normal, Implementing, Failed, &ChangeFacts { reason: Some("  "), ..none }), vec!["reason_required"]);
        assert_eq!(code(ChangeType::Emergency, Implemented, Reviewed, &none), vec!["review_required"]);
        assert_eq!(code(ChangeType::Normal, Scheduled, Cancelled, &none), vec!["reason_required"]);
        assert!(check_transition(ChangeType::Emergency, Approved, Implementing, &none).is_ok());
    }

    #[test]
    fn status_helpers() {
        assert!(ChangeStatus::Implementing.authorises_ci_updates());
        assert!(!ChangeStatus::Approved.authorises_ci_updates());
        assert!(ChangeStatus::Scheduled.is_on_schedule() && !ChangeStatus::Draft.is_on_schedule());
        assert!(ChangeType::Emergency.must_be_reviewed() && !ChangeType::Normal.must_be_reviewed());
        assert!(!ChangeType::Standard.needs_approval());
        let next: Vec<ChangeStatus> = transitions_from(ChangeType::Standard, ChangeStatus::Submitted).map(|t| t.to).collect();
        assert_eq!(next, vec![ChangeStatus::Draft, ChangeStatus::Scheduled, ChangeStatus::Cancelled]);
        let row =
            serde_json::to_value(find_transition(ChangeType::Normal, ChangeStatus::Assessed, ChangeStatus::Approved).unwrap()).unwrap();
        assert_eq!(row["requires"], serde_json::json!(["approval"]));
        assert_eq!(row["types"], serde_json::json!(["normal", "emergency"]));
    }
}

//! Release management: the release lifecycle and its stages, as data.

use serde::{Deserialize, Serialize};

use crate::validate::Locale;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    Planned,
    InProgress,
    Deployed,
    RolledBack,
    Reviewed,
    Closed,
    Cancelled,
}

impl ReleaseStatus {
    pub const ALL: [ReleaseStatus; 7] = [
        ReleaseStatus::Planned,
        ReleaseStatus::InProgress,
        ReleaseStatus::Deployed,
        ReleaseStatus::RolledBack,
        ReleaseStatus::Reviewed,
        ReleaseStatus::Closed,
        ReleaseStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Planned => "planned",
            ReleaseStatus::InProgress => "in_progress",
            ReleaseStatus::Deployed => "deployed",
            ReleaseStatus::RolledBack => "rolled_back",
            ReleaseStatus::Reviewed => "reviewed",
            ReleaseStatus::Closed => "closed",
            ReleaseStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn label(self, locale: Locale) -> &'static str {
        match (self, locale) {
            (ReleaseStatus::Planned, Locale::En) => "Planned",
            (ReleaseStatus::InProgress, Locale::En) => "In progress",
            (ReleaseStatus::Deployed, Locale::En) => "Deployed",
            (ReleaseStatus::RolledBack, Locale::En) => "Rolled back",
            (ReleaseStatus::Reviewed, Locale::En) => "Reviewed",
            (ReleaseStatus::Closed, Locale::En) => "Closed",
            (ReleaseStatus::Cancelled, Locale::En) => "Cancelled",
            (ReleaseStatus::Planned, Locale::ZhCn) => "计划中",
            (ReleaseStatus::InProgress, Locale::ZhCn) => "进行中",
            (ReleaseStatus::Deployed, Locale::ZhCn) => "已部署",
            (ReleaseStatus::RolledBack, Locale::ZhCn) => "已回退",
            (ReleaseStatus::Reviewed, Locale::ZhCn) => "已评审",
            (ReleaseStatus::Closed, Locale::ZhCn) => "已关闭",
            (ReleaseStatus::Cancelled, Locale::ZhCn) => "已取消",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, ReleaseStatus::Closed | ReleaseStatus::Cancelled)
    }

    /// Whether the release's content (changes, stage plans) may still be edited.
    pub fn is_editable(self) -> bool {
        matches!(self, ReleaseStatus::Planned | ReleaseStatus::InProgress)
    }
}

/// A condition a release transition needs besides being in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseRequirement {
    /// The release groups at least one change.
    HasChanges,
    RollbackPlan,
    /// Build, test, acceptance and deployment are all signed off.
    AllStagesSignedOff,
    RollbackRecorded,
    ReviewRecorded,
    Reason,
}

impl ReleaseRequirement {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseRequirement::HasChanges => "has_changes",
            ReleaseRequirement::RollbackPlan => "rollback_plan",
            ReleaseRequirement::AllStagesSignedOff => "all_stages_signed_off",
            ReleaseRequirement::RollbackRecorded => "rollback_recorded",
            ReleaseRequirement::ReviewRecorded => "review_recorded",
            ReleaseRequirement::Reason => "reason",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReleaseTransition {
    pub from: ReleaseStatus,
    pub to: ReleaseStatus,
    pub requires: &'static [ReleaseRequirement],
}

use ReleaseRequirement as R;
use ReleaseStatus as S;

const fn t(from: ReleaseStatus, to: ReleaseStatus, requires: &'static [ReleaseRequirement]) -> ReleaseTransition {
    ReleaseTransition { from, to, requires }
}

/// The release lifecycle.
pub const RELEASE_TRANSITIONS: &[ReleaseTransition] = &[
    t(S::Planned, S::InProgress, &[R::HasChanges, R::RollbackPlan]),
    t(S::Planned, S::Cancelled, &[R::Reason]),
    t(S::InProgress, S::Deployed, &[R::AllStagesSignedOff]),
    t(S::InProgress, S::RolledBack, &[R::RollbackRecorded]),
    t(S::InProgress, S::Cancelled, &[R::Reason]),
    t(S::Deployed, S::RolledBack, &[R::RollbackRecorded]),
    t(S::Deployed, S::Reviewed, &[R::ReviewRecorded]),
    t(S::RolledBack, S::Reviewed, &[R::ReviewRecorded]),
    t(S::Reviewed, S::Closed, &[]),
];

pub fn release_transitions_from(from: ReleaseStatus) -> impl Iterator<Item = &'static ReleaseTransition> {
    RELEASE_TRANSITIONS.iter().filter(move |t| t.from == from)
}

pub fn find_release_transition(from: ReleaseStatus, to: ReleaseStatus) -> Option<&'static ReleaseTransition> {
    release_transitions_from(from).find(|t| t.to == to)
}

/// The four stages of a release, in the order they must be signed off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    Build,
    Test,
    Acceptance,
    Deployment,
}

impl StageKind {
    pub const ALL: [StageKind; 4] = [StageKind::Build, StageKind::Test, StageKind::Acceptance, StageKind::Deployment];

    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Build => "build",
            StageKind::Test => "test",
            StageKind::Acceptance => "acceptance",
            StageKind::Deployment => "deployment",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn label(self, locale: Locale) -> &'static str {
        match (self, locale) {
            (StageKind::Build, Locale::En) => "Build",
            (StageKind::Test, Locale::En) => "Test",
            (StageKind::Acceptance, Locale::En) => "Acceptance",
            (StageKind::Deployment, Locale::En) => "Deployment",
            (StageKind::Build, Locale::ZhCn) => "构建",
            (StageKind::Test, Locale::ZhCn) => "测试",
            (StageKind::Acceptance, Locale::ZhCn) => "验收",
            (StageKind::Deployment, Locale::ZhCn) => "部署",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The stage that must be signed off before this one.
    pub fn previous(self) -> Option<StageKind> {
        self.index().checked_sub(1).map(|i| Self::ALL[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ReleaseStatus::ALL {
            assert_eq!(ReleaseStatus::parse(s.as_str()), Some(s));
            assert!(!s.label(Locale::ZhCn).is_empty());
        }
        for k in StageKind::ALL {
            assert_eq!(StageKind::parse(k.as_str()), Some(k));
            assert_eq!(StageKind::ALL[k.index()], k);
        }
        assert_eq!(StageKind::Build.previous(), None);
        assert_eq!(StageKind::Deployment.previous(), Some(StageKind::Acceptance));
    }

    #[test]
    fn table_shape() {
        for (i, a) in RELEASE_TRANSITIONS.iter().enumerate() {
            assert!(!a.from.is_terminal());
            assert!(RELEASE_TRANSITIONS[i + 1..].iter().all(|b| (a.from, a.to) != (b.from, b.to)));
        }
        let mut seen = vec![ReleaseStatus::Planned];
        let mut i = 0;
        while i < seen.len() {
            for t in release_transitions_from(seen[i]) {
                if !seen.contains(&t.to) {
                    seen.push(t.to);
                }
            }
            i += 1;
        }
        assert_eq!(seen.len(), ReleaseStatus::ALL.len(), "every status is reachable");
        assert!(find_release_transition(ReleaseStatus::Planned, ReleaseStatus::Deployed).is_none());
    }
}

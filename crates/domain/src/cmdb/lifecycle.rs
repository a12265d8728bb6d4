//! Configuration management: the lifecycle of a configuration item (配置项), as data.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::validate::Locale;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CiStatus {
    Planned,
    InBuild,
    Live,
    Maintenance,
    Retired,
}

/// Every allowed status change of a CI. Retired is final: a CI brought back is a new CI.
pub const CI_TRANSITIONS: &[(CiStatus, CiStatus)] = &[
    (CiStatus::Planned, CiStatus::InBuild),
    (CiStatus::Planned, CiStatus::Retired),
    (CiStatus::InBuild, CiStatus::Planned),
    (CiStatus::InBuild, CiStatus::Live),
    (CiStatus::InBuild, CiStatus::Retired),
    (CiStatus::Live, CiStatus::Maintenance),
    (CiStatus::Live, CiStatus::Retired),
    (CiStatus::Maintenance, CiStatus::Live),
    (CiStatus::Maintenance, CiStatus::Retired),
];

impl CiStatus {
    pub const ALL: [CiStatus; 5] = [CiStatus::Planned, CiStatus::InBuild, CiStatus::Live, CiStatus::Maintenance, CiStatus::Retired];

    pub fn as_str(self) -> &'static str {
        match self {
            CiStatus::Planned => "planned",
            CiStatus::InBuild => "in_build",
            CiStatus::Live => "live",
            CiStatus::Maintenance => "maintenance",
            CiStatus::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn label(self, locale: Locale) -> &'static str {
        match (self, locale) {
            (CiStatus::Planned, Locale::En) => "Planned",
            (CiStatus::InBuild, Locale::En) => "In build",
            (CiStatus::Live, Locale::En) => "Live",
            (CiStatus::Maintenance, Locale::En) => "Maintenance",
            (CiStatus::Retired, Locale::En) => "Retired",
            (CiStatus::Planned, Locale::ZhCn) => "规划中",
            (CiStatus::InBuild, Locale::ZhCn) => "建设中",
            (CiStatus::Live, Locale::ZhCn) => "运行中",
            (CiStatus::Maintenance, Locale::ZhCn) => "维护中",
            (CiStatus::Retired, Locale::ZhCn) => "已退役",
        }
    }

    pub fn is_terminal(self) -> bool {
        self.next().next().is_none()
    }

    /// Whether the CI exists physically or logically, so that a verification audit can check it.
    pub fn is_verifiable(self) -> bool {
        matches!(self, CiStatus::InBuild | CiStatus::Live | CiStatus::Maintenance)
    }

    /// The statuses this one may change to, in table order.
    pub fn next(self) -> impl Iterator<Item = CiStatus> {
        CI_TRANSITIONS.iter().filter(move |(f, _)| *f == self).map(|(_, t)| *t)
    }

    pub fn can_become(self, to: CiStatus) -> bool {
        CI_TRANSITIONS.contains(&(self, to))
    }

    pub fn transition(self, to: CiStatus) -> Result<CiStatus, DomainError> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(DomainError::InvalidTransition { from: self.as_str().into(), to: to.as_str().into() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in CiStatus::ALL {
            assert_eq!(CiStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert!(!s.label(Locale::ZhCn).is_empty());
        }
        assert_eq!(CiStatus::parse("gone"), None);
    }

    #[test]
    fn the_transition_table_is_the_rule() {
        for from in CiStatus::ALL {
            for to in CiStatus::ALL {
                let listed = CI_TRANSITIONS.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), listed, "{from:?} -> {to:?}");
            }
        }
        assert!(CiStatus::Retired.is_terminal());
        assert!(CiStatus::ALL.iter().filter(|s| **s != CiStatus::Retired).all(|s| s.can_become(CiStatus::Retired)));
        assert_eq!(CiStatus::Live.next().collect::<Vec<_>>(), vec![CiStatus::Maintenance, CiStatus::Retired]);
        assert_eq!(
            CiStatus::Retired.transition(CiStatus::Live),
            Err(DomainError::InvalidTransition { from: "retired".into(), to: "live".into() })
        );
    }

    #[test]
    fn every_status_is_reachable_from_planned() {
        let mut seen = vec![CiStatus::Planned];
        let mut i = 0;
        while i < seen.len() {
            for n in seen[i].next() {
                if !seen.contains(&n) {
                    seen.push(n);
                }
            }
            i += 1;
        }
        assert_eq!(seen.len(), CiStatus::ALL.len());
    }
}

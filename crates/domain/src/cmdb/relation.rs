//! Configuration management: relationships (关系) between CIs, the direction in which a
//! failure propagates along each, and the rules a new relationship must satisfy.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::validate::Locale;

/// A relationship type. A relation reads `source <type> target`: "app runs_on server".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationType {
    RunsOn,
    DependsOn,
    ConnectedTo,
    PartOf,
    Provides,
    HostedIn,
}

/// Which end of a relation is impacted when the other end fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Propagation {
    /// A failing target impacts the source: if B runs_on A, A failing impacts B.
    ToSource,
    /// A failing source impacts the target: if A provides S, A failing impacts S.
    ToTarget,
    Both,
}

impl RelationType {
    pub const ALL: [RelationType; 6] = [
        RelationType::RunsOn,
        RelationType::DependsOn,
        RelationType::ConnectedTo,
        RelationType::PartOf,
        RelationType::Provides,
        RelationType::HostedIn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RelationType::RunsOn => "runs_on",
            RelationType::DependsOn => "depends_on",
            RelationType::ConnectedTo => "connected_to",
            RelationType::PartOf => "part_of",
            RelationType::Provides => "provides",
            RelationType::HostedIn => "hosted_in",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The impact rule. A part that fails degrades the whole it belongs to, so `part_of`
    /// propagates from source (the part) to target (the whole).
    pub fn propagation(self) -> Propagation {
        match self {
            RelationType::RunsOn | RelationType::DependsOn | RelationType::HostedIn => Propagation::ToSource,
            RelationType::PartOf | RelationType::Provides => Propagation::ToTarget,
            RelationType::ConnectedTo => Propagation::Both,
        }
    }

    /// Whether `a <type> b` and `b <type> a` are the same relation.
    pub fn is_symmetric(self) -> bool {
        self == RelationType::ConnectedTo
    }

    /// Whether relations of this type form a hierarchy, in which cycles are refused.
    pub fn is_hierarchical(self) -> bool {
        self == RelationType::PartOf
    }

    /// The label read from the source: "runs on".
    pub fn label(self, locale: Locale) -> &'static str {
        match (self, locale) {
            (RelationType::RunsOn, Locale::En) => "runs on",
            (RelationType::DependsOn, Locale::En) => "depends on",
            (RelationType::ConnectedTo, Locale::En) => "connected to",
            (RelationType::PartOf, Locale::En) => "part of",
            (RelationType::Provides, Locale::En) => "provides",
            (RelationType::HostedIn, Locale::En) => "hosted in",
            (RelationType::RunsOn, Locale::ZhCn) => "运行于",
            (RelationType::DependsOn, Locale::ZhCn) => "依赖于",
            (RelationType::ConnectedTo, Locale::ZhCn) => "连接到",
            (RelationType::PartOf, Locale::ZhCn) => "属于",
            (RelationType::Provides, Locale::ZhCn) => "提供",
            (RelationType::HostedIn, Locale::ZhCn) => "托管于",
        }
    }

    /// The label read from the target: "runs" (the server runs the application).
    pub fn inverse_label(self, locale: Locale) -> &'static str {
        match (self, locale) {
            (RelationType::RunsOn, Locale::En) => "runs",
            (RelationType::DependsOn, Locale::En) => "is needed by",
            (RelationType::ConnectedTo, Locale::En) => "connected to",
            (RelationType::PartOf, Locale::En) => "contains",
            (RelationType::Provides, Locale::En) => "is provided by",
            (RelationType::HostedIn, Locale::En) => "hosts",
            (RelationType::RunsOn, Locale::ZhCn) => "承载",
            (RelationType::DependsOn, Locale::ZhCn) => "被依赖于",
            (RelationType::ConnectedTo, Locale::ZhCn) => "连接到",
            (RelationType::PartOf, Locale::ZhCn) => "包含",
            (RelationType::Provides, Locale::ZhCn) => "由其提供",
            (RelationType::HostedIn, Locale::ZhCn) => "托管",
        }
    }
}

/// A directed, typed relation between two CIs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Relation {
    pub source: String,
    pub target: String,
    pub kind: RelationType,
}

impl Relation {
    pub fn new(source: impl Into<String>, target: impl Into<String>, kind: RelationType) -> Self {
        Relation { source: source.into(), target: target.into(), kind }
    }

    /// The same relation with the ends of a symmetric type in a fixed order, for comparisons.
    pub fn canonical(&self) -> Relation {
        if self.kind.is_symmetric() && self.target < self.source {
            Relation { source: self.target.clone(), target: self.source.clone(), kind: self.kind }
        } else {
            self.clone()
        }
    }

    pub fn same_as(&self, other: &Relation) -> bool {
        self.canonical() == other.canonical()
    }
}

/// Whether adding `source part_of target` to `existing` would close a cycle of `part_of`
/// relations (including `source == target`). Other types are ignored: their cycles are allowed.
pub fn would_create_part_of_cycle<'a>(existing: impl IntoIterator<Item = &'a Relation>, source: &str, target: &str) -> bool {
    if source == target {
        return true;
    }
    let mut wholes: HashMap<&str, Vec<&str>> = HashMap::new();
    for r in existing.into_iter().filter(|r| r.kind == RelationType::PartOf) {
        wholes.entry(r.source.as_str()).or_default().push(r.target.as_str());
    }
    let mut seen = HashSet::from([target]);
    let mut stack = vec![target];
    while let Some(part) = stack.pop() {
        for &whole in wholes.get(part).into_iter().flatten() {
            if whole == source {
                return true;
            }
            if seen.insert(whole) {
                stack.push(whole);
            }
        }
    }
    false
}

/// Checks a relation about to be added: no relation of a CI to itself, no duplicate (in
/// either direction for symmetric types), no cycle of `part_of`.
pub fn check_new_relation(existing: &[Relation], new: &Relation) -> Result<(), DomainError> {
    if new.source == new.target {
        return Err(DomainError::field("target", "self_relation", "a CI cannot be related to itself"));
    }
    if existing.iter().any(|r| r.same_as(new)) {
        return Err(DomainError::field("target", "duplicate_relation", "this relation already exists"));
    }
    if new.kind.is_hierarchical() && would_create_part_of_cycle(existing, &new.source, &new.target) {
        return Err(DomainError::field(
            "target",
            "part_of_cycle",
            format!("{} already contains {}, directly or indirectly", new.source, new.target),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use RelationType::*;

    fn code(r: Result<(), DomainError>) -> &'static str {
        match r {
            Err(DomainError::Invalid(v)) => v[0].code,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_and_rules() {
        for t in RelationType::ALL {
            assert_eq!(RelationType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(RunsOn.propagation(), Propagation::ToSource);
        assert_eq!(DependsOn.propagation(), Propagation::ToSource);
        assert_eq!(HostedIn.propagation(), Propagation::ToSource);
        assert_eq!(PartOf.propagation(), Propagation::ToTarget);
        assert_eq!(Provides.propagation(), Propagation::ToTarget);
        assert_eq!(ConnectedTo.propagation(), Propagation::Both);
        assert!(ConnectedTo.is_symmetric() && !RunsOn.is_symmetric());
        assert_eq!(RunsOn.label(Locale::ZhCn), "运行于");
        assert_eq!(PartOf.inverse_label(Locale::En), "contains");
    }

    #[test]
    fn symmetric_relations_compare_both_ways() {
        let a = Relation::new("x", "y", ConnectedTo);
        assert!(a.same_as(&Relation::new("y", "x", ConnectedTo)));
        assert!(!Relation::new("x", "y", RunsOn).same_as(&Relation::new("y", "x", RunsOn)));
    }

    #[test]
    fn part_of_cycles_are_refused_other_cycles_allowed() {
        let existing =
            vec![Relation::new("disk", "array", PartOf), Relation::new("array", "rack", PartOf), Relation::new("a", "b", DependsOn)];
        assert!(would_create_part_of_cycle(&existing, "rack", "disk"));
        assert!(would_create_part_of_cycle(&existing, "rack", "array"));
        assert!(would_create_part_of_cycle(&existing, "x", "x"));
        assert!(!would_create_part_of_cycle(&existing, "disk", "rack"), "a shortcut is not a cycle");
        assert!(!would_create_part_of_cycle(&existing, "b", "a"), "depends_on edges do not count");
        assert_eq!(code(check_new_relation(&existing, &Relation::new("rack", "disk", PartOf))), "part_of_cycle");
        assert!(check_new_relation(&existing, &Relation::new("b", "a", DependsOn)).is_ok());
        assert!(check_new_relation(&existing, &Relation::new("rack", "disk", ConnectedTo)).is_ok());
    }

    #[test]
    fn self_and_duplicate_relations_are_refused() {
        let existing = vec![Relation::new("s1", "sw", ConnectedTo), Relation::new("app", "s1", RunsOn)];
        assert_eq!(code(check_new_relation(&existing, &Relation::new("a", "a", DependsOn))), "self_relation");
        assert_eq!(code(check_new_relation(&existing, &Relation::new("sw", "s1", ConnectedTo))), "duplicate_relation");
        assert_eq!(code(check_new_relation(&existing, &Relation::new("app", "s1", RunsOn))), "duplicate_relation");
        assert!(check_new_relation(&existing, &Relation::new("app", "s1", DependsOn)).is_ok());
    }
}

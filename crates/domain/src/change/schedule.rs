//! Change management: the forward schedule of change (变更日程表), implementation windows,
//! freeze windows (变更冻结期) and conflict detection between changes.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::cmdb::ImpactGraph;
use crate::error::{DomainError, FieldError};

/// A half-open period `[start, end)` with `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawWindow")]
pub struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

#[derive(Deserialize)]
struct RawWindow {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl TryFrom<RawWindow> for Window {
    type Error = String;
    fn try_from(r: RawWindow) -> Result<Self, String> {
        Window::new(r.start, r.end).map_err(|e| e.to_string())
    }
}

impl Window {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, DomainError> {
        Self::check(start, end).map_err(|e| DomainError::Invalid(vec![e]))
    }

    /// As [`Window::new`], as a field error for forms that collect several.
    pub fn check(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, FieldError> {
        if start < end {
            Ok(Window { start, end })
        } else {
            Err(FieldError::new("end", "end_not_after_start", "the window must end after it starts"))
        }
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    pub fn duration(&self) -> Duration {
        self.end - self.start
    }

    /// Whether the two windows share any instant; windows that only touch do not.
    pub fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn contains(&self, other: &Window) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

/// A period in which changes are frozen (变更冻结期), for every CI or for listed CIs only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeWindow {
    pub id: String,
    pub name: String,
    pub window: Window,
    /// Empty: the freeze applies to every CI.
    #[serde(default)]
    pub ci_ids: Vec<String>,
}

/// A change as the forward schedule sees it: its planned window and the CIs it touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    pub id: String,
    pub window: Window,
    pub ci_ids: Vec<String>,
}

/// A CI of the candidate change and a CI of the other change that depend on one another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CiPair {
    pub ours: String,
    pub theirs: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezeOverlap {
    /// The change window lies entirely inside the freeze.
    Inside,
    /// The change window overlaps the freeze partly.
    Overlapping,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Conflict {
    /// Another change works on the same CIs in an overlapping window.
    SameCi { change_id: String, ci_ids: Vec<String> },
    /// Another change works on CIs that depend on ours, or that ours depend on, in an
    /// overlapping window.
    DependentCi { change_id: String, pairs: Vec<CiPair> },
    /// The window falls in a freeze that covers the change's CIs. `ci_ids` lists the CIs the
    /// freeze names; it is empty for a freeze of every CI.
    Freeze { freeze_id: String, overlap: FreezeOverlap, ci_ids: Vec<String> },
}

/// Which CIs depend on which: pass a closure, or the CMDB's [`ImpactGraph`].
pub trait CiDependencies {
    /// Whether `dependent` is impacted when `dependency` fails (directly or transitively).
    fn depends_on(&self, dependent: &str, dependency: &str) -> bool;
}

impl<F: Fn(&str, &str) -> bool> CiDependencies for F {
    fn depends_on(&self, dependent: &str, dependency: &str) -> bool {
        self(dependent, dependency)
    }
}

impl CiDependencies for ImpactGraph {
    fn depends_on(&self, dependent: &str, dependency: &str) -> bool {
        self.impacted_by(dependent, dependency, None)
    }
}

/// The conflicts of `candidate` with `others` (scheduled changes; the candidate itself, if
/// listed, is skipped) and with freeze windows. Two changes conflict only when their windows
/// overlap; then on shared CIs, and on pairs of distinct CIs where either depends on the other.
pub fn conflicts(
    candidate: &PlannedChange,
    others: &[PlannedChange],
    freezes: &[FreezeWindow],
    deps: &dyn CiDependencies,
) -> Vec<Conflict> {
    let ours: BTreeSet<&str> = candidate.ci_ids.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for other in others.iter().filter(|o| o.id != candidate.id && o.window.overlaps(&candidate.window)) {
        let theirs: BTreeSet<&str> = other.ci_ids.iter().map(String::as_str).collect();
        let shared: Vec<String> = ours.intersection(&theirs).map(|s| s.to_string()).collect();
        if !shared.is_empty() {
            out.push(Conflict::SameCi { change_id: other.id.clone(), ci_ids: shared });
        }
        let mut pairs = Vec::new();
        for &a in &ours {
            for &b in theirs.iter().filter(|&&b| b != a) {
                if deps.depends_on(a, b) || deps.depends_on(b, a) {
                    pairs.push(CiPair { ours: a.to_string(), theirs: b.to_string() });
                }
            }
        }
        if !pairs.is_empty() {
            out.push(Conflict::DependentCi { change_id: other.id.clone(), pairs });
        }
    }
    for f in freezes.iter().filter(|f| f.window.overlaps(&candidate.window)) {
        let named: Vec<String> =
            f.ci_ids.iter().filter(|c| ours.contains(c.as_str())).cloned().collect::<BTreeSet<_>>().into_iter().collect();
        if f.ci_ids.is_empty() || !named.is_empty() {
            let overlap = if f.window.contains(&candidate.window) { FreezeOverlap::Inside } else { FreezeOverlap::Overlapping };
            out.push(Conflict::Freeze { freeze_id: f.id.clone(), overlap, ci_ids: named });
        }
    }
    out
}

/// The changes whose windows overlap `range`, by start then id: the calendar view.
pub fn forward_schedule<'a>(changes: &'a [PlannedChange], range: &Window) -> Vec<&'a PlannedChange> {
    let mut v: Vec<&PlannedChange> = changes.iter().filter(|c| c.window.overlaps(range)).collect();
    v.sort_by(|a, b| (a.window.start, a.window.end, &a.id).cmp(&(b.window.start, b.window.end, &b.id)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdb::{GraphNode, Relation, RelationType};
    use proptest::prelude::*;

    fn t(h: i64) -> DateTime<Utc> {
        "2026-09-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::hours(h)
    }
    fn w(a: i64, b: i64) -> Window {
        Window::new(t(a), t(b)).unwrap()
    }
    fn change(id: &str, win: Window, cis: &[&str]) -> PlannedChange {
        PlannedChange { id: id.into(), window: win, ci_ids: cis.iter().map(|s| s.to_string()).collect() }
    }
    fn none(_: &str, _: &str) -> bool {
        false
    }

    #[test]
    fn windows() {
        assert!(Window::new(t(2), t(2)).is_err());
        let e = Window::new(t(3), t(2)).unwrap_err();
        assert!(matches!(e, DomainError::Invalid(v) if v[0].code == "end_not_after_start" && v[0].field == "end"));
        assert!(w(0, 4).overlaps(&w(3, 5)));
        assert!(!w(0, 4).overlaps(&w(4, 5)), "touching windows do not overlap");
        assert!(w(0, 10).contains(&w(2, 3)) && !w(2, 3).contains(&w(0, 10)));
        assert_eq!(w(1, 4).duration(), Duration::hours(3));
        let json = serde_json::to_value(w(0, 1)).unwrap();
        assert_eq!(serde_json::from_value::<Window>(json).unwrap(), w(0, 1));
        let bad = serde_json::json!({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"});
        assert!(serde_json::from_value::<Window>(bad).is_err());
    }

    #[test]
    fn same_ci_conflicts_need_overlapping_windows() {
        let ours = change("c1", w(0, 4), &["db1", "app1"]);
        let others = vec![
            change("c1", w(0, 4), &["db1"]),
            change("c2", w(2, 6), &["db1", "x"]),
            change("c3", w(4, 8), &["db1"]),
            change("c4", w(1, 2), &["y"]),
        ];
        assert_eq!(conflicts(&ours, &others, &[], &none), vec![Conflict::SameCi { change_id: "c2".into(), ci_ids: vec!["db1".into()] }]);
    }

    #[test]
    fn dependent_cis_conflict_through_a_closure_or_the_cmdb() {
        let ours = change("c1", w(0, 4), &["app1"]);
        let others = vec![change("c2", w(3, 5), &["db1"]), change("c3", w(3, 5), &["other"])];
        let app_needs_db = |a: &str, b: &str| a == "app1" && b == "db1";
        let want =
            vec![Conflict::DependentCi { change_id: "c2".into(), pairs: vec![CiPair { ours: "app1".into(), theirs: "db1".into() }] }];
        assert_eq!(conflicts(&ours, &others, &[], &app_needs_db), want);

        let nodes: Vec<GraphNode> = ["app1", "db1", "host", "other"]
            .iter()
            .map(|id| GraphNode { id: id.to_string(), class: "x".into(), project_ids: vec![], customer_ids: vec![] })
            .collect();
        let rels = vec![Relation::new("app1", "host", RelationType::RunsOn), Relation::new("db1", "host", RelationType::RunsOn)];
        let g = ImpactGraph::new(&nodes, &rels).unwrap();
        assert!(conflicts(&ours, &others, &[], &g).is_empty(), "neighbours on one host do not depend on each other");
        let rels = vec![Relation::new("app1", "host", RelationType::RunsOn), Relation::new("host", "db1", RelationType::DependsOn)];
        let g = ImpactGraph::new(&nodes, &rels).unwrap();
        assert_eq!(conflicts(&ours, &others, &[], &g), want, "app1 needs db1 through its host");
    }

    #[test]
    fn freezes_inside_overlapping_and_scoped() {
        let ours = change("c1", w(10, 12), &["db1"]);
        let freezes = vec![
            FreezeWindow { id: "year-end".into(), name: "Year end".into(), window: w(0, 48), ci_ids: vec![] },
            FreezeWindow { id: "billing-run".into(), name: "Billing".into(), window: w(11, 20), ci_ids: vec!["db1".into(), "db2".into()] },
            FreezeWindow { id: "mail".into(), name: "Mail".into(), window: w(0, 48), ci_ids: vec!["mx".into()] },
            FreezeWindow { id: "later".into(), name: "Later".into(), window: w(12, 20), ci_ids: vec![] },
        ];
        assert_eq!(
            conflicts(&ours, &[], &freezes, &none),
            vec![
                Conflict::Freeze { freeze_id: "year-end".into(), overlap: FreezeOverlap::Inside, ci_ids: vec![] },
                Conflict::Freeze { freeze_id: "billing-run".into(), overlap: FreezeOverlap::Overlapping, ci_ids: vec!["db1".into()] },
            ]
        );
        let json = serde_json::to_value(&conflicts(&ours, &[], &freezes[..1], &none)[0]).unwrap();
        assert_eq!(json["kind"], "freeze");
        assert_eq!(json["overlap"], "inside");
    }

    #[test]
    fn the_forward_schedule_is_sorted() {
        let cs = vec![change("b", w(5, 6), &[]), change("a", w(5, 6), &[]), change("c", w(1, 9), &[]), change("d", w(20, 21), &[])];
        let ids: Vec<&str> = forward_schedule(&cs, &w(4, 10)).iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, vec!["c", "a", "b"]);
    }

    fn mirrored(c: &Conflict) -> Conflict {
        match c {
            Conflict::DependentCi { change_id, pairs } => {
                let mut p: Vec<CiPair> = pairs.iter().map(|p| CiPair { ours: p.theirs.clone(), theirs: p.ours.clone() }).collect();
                p.sort();
                Conflict::DependentCi { change_id: change_id.clone(), pairs: p }
            }
            other => other.clone(),
        }
    }

    fn strip_id(c: Conflict) -> Conflict {
        match c {
            Conflict::SameCi { ci_ids, .. } => Conflict::SameCi { change_id: String::new(), ci_ids },
            Conflict::DependentCi { pairs, .. } => Conflict::DependentCi { change_id: String::new(), pairs },
            other => other,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn conflict_detection_is_symmetric(
            a in (0i64..48, 1i64..24, prop::collection::vec(0u8..10, 0..5)),
            b in (0i64..48, 1i64..24, prop::collection::vec(0u8..10, 0..5)),
            edges in prop::collection::vec((0u8..10, 0u8..10), 0..15),
        ) {
            let mk = |id: &str, (start, len, cis): &(i64, i64, Vec<u8>)| PlannedChange {
                id: id.into(),
                window: w(*start, start + len),
                ci_ids: cis.iter().map(|c| format!("ci{c}")).collect(),
            };
            let (ca, cb) = (mk("a", &a), mk("b", &b));
            let deps = |x: &str, y: &str| edges.iter().any(|(p, q)| format!("ci{p}") == x && format!("ci{q}") == y);
            let ab: Vec<Conflict> = conflicts(&ca, std::slice::from_ref(&cb), &[], &deps).into_iter().map(strip_id).collect();
            let ba: Vec<Conflict> = conflicts(&cb, std::slice::from_ref(&ca), &[], &deps).iter().map(mirrored).map(strip_id).collect();
            prop_assert_eq!(ab.is_empty(), ba.is_empty());
            prop_assert_eq!(ab, ba);
        }
    }
}

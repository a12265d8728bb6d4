//! Configuration management: baselines (基线), snapshots of a set of CIs and their relations,
//! and the difference between a baseline and the current state.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lifecycle::CiStatus;
use super::relation::Relation;
use crate::error::{DomainError, Errors, FieldError};
use crate::validate::{optional_text, required_text};

/// One CI as captured: its id, class, status and attribute values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CiSnapshot {
    pub id: String,
    pub class: String,
    pub status: CiStatus,
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// A set of CIs and the relations that touch them, sorted so equal states compare equal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub cis: Vec<CiSnapshot>,
    pub relations: Vec<Relation>,
}

impl Snapshot {
    /// Builds a snapshot: CIs sorted by id (an id listed twice is refused), relations kept only
    /// when at least one end is in the set, symmetric ones in canonical order, duplicates dropped.
    pub fn new(cis: Vec<CiSnapshot>, relations: Vec<Relation>) -> Result<Self, DomainError> {
        let mut cis = cis;
        cis.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(w) = cis.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(DomainError::field("cis", "duplicate_ci", format!("CI {} is listed twice", w[0].id)));
        }
        let ids: BTreeSet<&str> = cis.iter().map(|c| c.id.as_str()).collect();
        let relations: BTreeSet<Relation> = relations
            .iter()
            .filter(|r| ids.contains(r.source.as_str()) || ids.contains(r.target.as_str()))
            .map(Relation::canonical)
            .collect();
        Ok(Snapshot { cis, relations: relations.into_iter().collect() })
    }

    pub fn ci(&self, id: &str) -> Option<&CiSnapshot> {
        self.cis.binary_search_by(|c| c.id.as_str().cmp(id)).ok().map(|i| &self.cis[i])
    }

    pub fn ci_ids(&self) -> impl Iterator<Item = &str> {
        self.cis.iter().map(|c| c.id.as_str())
    }
}

/// A named, dated snapshot kept as a configuration record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub name: String,
    pub description: Option<String>,
    pub taken_at: DateTime<Utc>,
    pub taken_by: String,
    pub snapshot: Snapshot,
}

impl Baseline {
    pub fn capture(
        name: &str,
        description: Option<&str>,
        taken_at: DateTime<Utc>,
        taken_by: &str,
        snapshot: Snapshot,
    ) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        let name = errors.check(required_text("name", name, 200));
        let description = errors.check(optional_text("description", description, 4000));
        let taken_by = errors.check(required_text("taken_by", taken_by, 200));
        if snapshot.cis.is_empty() {
            errors.push(FieldError::new("cis", "required", "a baseline needs at least one CI"));
        }
        errors.finish()?;
        Ok(Baseline {
            name: name.unwrap_or_default(),
            description: description.flatten(),
            taken_at,
            taken_by: taken_by.unwrap_or_default(),
            snapshot,
        })
    }

    /// What changed from this baseline to `current`.
    pub fn diff(&self, current: &Snapshot) -> SnapshotDiff {
        diff(&self.snapshot, current)
    }
}

/// One attribute that differs; `None` means absent (a null value counts as absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeChange {
    pub attribute: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// A CI present on both sides whose class, status or attributes differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CiChange {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<(CiStatus, CiStatus)>,
    pub attributes: Vec<AttributeChange>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotDiff {
    pub added_cis: Vec<String>,
    pub removed_cis: Vec<String>,
    pub changed_cis: Vec<CiChange>,
    pub added_relations: Vec<Relation>,
    pub removed_relations: Vec<Relation>,
}

impl SnapshotDiff {
    pub fn is_empty(&self) -> bool {
        self.added_cis.is_empty()
            && self.removed_cis.is_empty()
            && self.changed_cis.is_empty()
            && self.added_relations.is_empty()
            && self.removed_relations.is_empty()
    }
}

/// Field-by-field differences of two attribute maps, sorted by attribute.
pub fn attribute_changes(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<AttributeChange> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (old.get(k).filter(|v| !v.is_null()), new.get(k).filter(|v| !v.is_null()));
            (a != b).then(|| AttributeChange { attribute: k.clone(), old: a.cloned(), new: b.cloned() })
        })
        .collect()
}

/// What changed from `before` to `after`: CIs added, removed and changed, relations added and
/// removed. Everything is listed in id order.
pub fn diff(before: &Snapshot, after: &Snapshot) -> SnapshotDiff {
    let old: BTreeMap<&str, &CiSnapshot> = before.cis.iter().map(|c| (c.id.as_str(), c)).collect();
    let new: BTreeMap<&str, &CiSnapshot> = after.cis.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut out = SnapshotDiff {
        added_cis: new.keys().filter(|k| !old.contains_key(*k)).map(|k| k.to_string()).collect(),
        removed_cis: old.keys().filter(|k| !new.contains_key(*k)).map(|k| k.to_string()).collect(),
        ..Default::default()
    };
    for (id, a) in &old {
        let Some(b) = new.get(id) else { continue };
        let change = CiChange {
            id: id.to_string(),
            class: (a.class != b.class).then(|| (a.class.clone(), b.class.clone())),
            status: (a.status != b.status).then_some((a.status, b.status)),
            attributes: attribute_changes(&a.attributes, &b.attributes),
        };
        if change.class.is_some() || change.status.is_some() || !change.attributes.is_empty() {
            out.changed_cis.push(change);
        }
    }
    let canon = |s: &Snapshot| s.relations.iter().map(Relation::canonical).collect::<BTreeSet<_>>();
    let (r0, r1) = (canon(before), canon(after));
    out.added_relations = r1.difference(&r0).cloned().collect();
    out.removed_relations = r0.difference(&r1).cloned().collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdb::relation::RelationType::*;
    use serde_json::json;

    fn ci(id: &str, status: CiStatus, attrs: Value) -> CiSnapshot {
        CiSnapshot { id: id.into(), class: "server".into(), status, attributes: attrs.as_object().unwrap().clone() }
    }

    fn at() -> DateTime<Utc> {
        "2026-03-01T08:00:00Z".parse().unwrap()
    }

    #[test]
    fn capture_sorts_scopes_and_validates() {
        let s = Snapshot::new(
            vec![ci("b", CiStatus::Live, json!({})), ci("a", CiStatus::Live, json!({}))],
            vec![
                Relation::new("b", "a", ConnectedTo),
                Relation::new("a", "b", ConnectedTo),
                Relation::new("x", "y", RunsOn),
                Relation::new("a", "outside", RunsOn),
            ],
        )
        .unwrap();
        assert_eq!(s.ci_ids().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(s.relations, vec![Relation::new("a", "b", ConnectedTo), Relation::new("a", "outside", RunsOn)]);
        assert!(s.ci("b").is_some() && s.ci("c").is_none());
        let dup = Snapshot::new(vec![ci("a", CiStatus::Live, json!({})), ci("a", CiStatus::Live, json!({}))], vec![]);
        assert!(matches!(dup, Err(DomainError::Invalid(v)) if v[0].code == "duplicate_ci"));
        let b = Baseline::capture(" Go-live 2026 ", Some(" "), at(), "ann", s.clone()).unwrap();
        assert_eq!(b.name, "Go-live 2026");
        assert_eq!(b.description, None);
        let bad = Baseline::capture("", None, at(), "", Snapshot::default()).unwrap_err();
        let DomainError::Invalid(v) = bad else { panic!() };
        assert_eq!(v.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), vec!["name", "taken_by", "cis"]);
    }

    #[test]
    fn diff_lists_added_removed_and_changed() {
        let before = Snapshot::new(
            vec![
                ci("a", CiStatus::Live, json!({"hostname": "a", "memory_gb": 16, "os": null})),
                ci("b", CiStatus::Live, json!({"hostname": "b"})),
                ci("c", CiStatus::Live, json!({"hostname": "c"})),
            ],
            vec![Relation::new("a", "b", ConnectedTo), Relation::new("c", "a", RunsOn)],
        )
        .unwrap();
        let b = Baseline::capture("v1", None, at(), "ann", before).unwrap();
        let mut moved = ci("c", CiStatus::Maintenance, json!({"hostname": "c"}));
        moved.class = "virtual_machine".into();
        let now = Snapshot::new(
            vec![
                ci("a", CiStatus::Live, json!({"hostname": "a", "memory_gb": 32, "ip_address": "10.0.0.1"})),
                moved,
                ci("d", CiStatus::Planned, json!({})),
            ],
            vec![Relation::new("b", "a", ConnectedTo), Relation::new("d", "a", RunsOn)],
        )
        .unwrap();
        let d = b.diff(&now);
        assert_eq!(d.added_cis, vec!["d"]);
        assert_eq!(d.removed_cis, vec!["b"]);
        assert_eq!(d.changed_cis.len(), 2);
        assert_eq!(
            d.changed_cis[0].attributes,
            vec![
                AttributeChange { attribute: "ip_address".into(), old: None, new: Some(json!("10.0.0.1")) },
                AttributeChange { attribute: "memory_gb".into(), old: Some(json!(16)), new: Some(json!(32)) },
            ]
        );
        assert_eq!(d.changed_cis[1].status, Some((CiStatus::Live, CiStatus::Maintenance)));
        assert_eq!(d.changed_cis[1].class, Some(("server".into(), "virtual_machine".into())));
        assert!(d.changed_cis[1].attributes.is_empty());
        assert_eq!(d.added_relations, vec![Relation::new("d", "a", RunsOn)]);
        assert_eq!(d.removed_relations, vec![Relation::new("c", "a", RunsOn)]);
        assert!(diff(&now, &now).is_empty());
    }
}

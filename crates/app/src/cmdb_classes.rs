//! Configuration management (ISO/IEC 20000-1 8.2.6): editing a CI class checks the CIs that
//! already belong to it and its subclasses, so the CMDB never holds CIs that its own class
//! definitions refuse. A class edit that existing CIs violate is refused, naming the attribute
//! and how many CIs violate it; a value for existing CIs fills a new required attribute.

use crate::{AppError, Result};
use keel_domain::cmdb::{AttributeType, CiClass, CiLookup, ClassRegistry};
use keel_domain::{DomainError, FieldError};
use keel_store::cmdb::{self as store, CiRecord, CmdbScope};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Unique-attribute index rows of a CI: (declaring class, attribute, JSON value).
type UniqueRows = Vec<(String, String, String)>;

/// What a class edit does to the existing CIs.
pub(crate) struct Migration {
    /// CIs whose stored attributes change (a value given for existing CIs, a value normalised
    /// to a new type, the value of a removed attribute dropped), with their new attributes.
    pub rewritten: Vec<(CiRecord, Map<String, Value>, UniqueRows)>,
    /// When the unique flags changed: every CI's unique-attribute rows.
    pub unique_rows: Vec<(String, UniqueRows)>,
}

struct Known(HashMap<String, String>);

impl CiLookup for Known {
    fn class_of(&self, ci_id: &str) -> Option<String> {
        self.0.get(ci_id).cloned()
    }
    // Duplicates among the CIs are counted by `check_existing_cis` itself.
    fn value_taken(&self, _: &str, _: &str, _: &Value, _: Option<&str>) -> bool {
        false
    }
}

fn is_blank(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}

fn unique_defs(registry: &ClassRegistry, keys: &[String]) -> BTreeSet<(String, String, String)> {
    keys.iter()
        .flat_map(|k| {
            registry.attributes(k).into_iter().filter(|(_, d)| d.unique).map(move |(o, d)| (k.clone(), o.key.clone(), d.key.clone()))
        })
        .collect()
}

/// Checks every CI of `class` and its subclasses against `next` (the registry with the edited
/// class), after filling blank attributes from `fill` (attribute key → value for existing
/// CIs). Refused with one error per attribute that some CI violates: the attribute's row
/// (`attributes[i]`, or `attributes.<key>` for one it inherits), how many CIs, and why.
pub(crate) async fn check_existing_cis(
    conn: &mut sqlx::AnyConnection,
    before: &ClassRegistry,
    next: &ClassRegistry,
    class: &CiClass,
    fill: &Map<String, Value>,
) -> Result<Migration> {
    let keys: Vec<String> = next.classes().iter().filter(|c| next.is_a(&c.key, &class.key)).map(|c| c.key.clone()).collect();
    let cis = store::cis_of_classes(conn, &keys).await?;
    let unique_changed = unique_defs(before, &keys) != unique_defs(next, &keys);
    let mut refs: Vec<String> = cis
        .iter()
        .flat_map(|ci| {
            next.attributes(&ci.class_key)
                .into_iter()
                .filter(|(_, d)| matches!(d.kind, AttributeType::Reference { .. }))
                .filter_map(|(_, d)| ci.attributes.get(&d.key).and_then(Value::as_str).map(|s| s.trim().to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    refs.sort();
    refs.dedup();
    let known = Known(if refs.is_empty() {
        HashMap::new()
    } else {
        store::classes_of(conn, &CmdbScope::default(), &refs).await?.into_iter().collect()
    });
    // by attribute: how many CIs fail it, and the code and message of the first failure
    let mut failed: BTreeMap<String, (usize, &'static str, String)> = BTreeMap::new();
    let mut values: HashMap<(String, String, String), usize> = HashMap::new();
    let mut out = Migration { rewritten: vec![], unique_rows: vec![] };
    for ci in cis {
        let defs = next.attributes(&ci.class_key);
        let mut raw = ci.attributes.clone();
        raw.retain(|k, _| defs.iter().any(|(_, d)| &d.key == k));
        for (_, d) in &defs {
            if let Some(v) = fill.get(&d.key).filter(|v| !is_blank(Some(v)))
                && is_blank(raw.get(&d.key))
            {
                raw.insert(d.key.clone(), v.clone());
            }
            // a number or yes/no becomes text when the attribute stops being one
            let scalar = matches!(raw.get(&d.key), Some(Value::Number(_) | Value::Bool(_)));
            if scalar && !matches!(d.kind, AttributeType::Number { .. } | AttributeType::Boolean) {
                let text = match raw.get(&d.key) {
                    Some(Value::Number(n)) => match n.as_f64() {
                        Some(f) if f.fract() == 0.0 && n.as_i64().is_none() && n.as_u64().is_none() => format!("{f:.0}"),
                        _ => n.to_string(),
                    },
                    other => other.map(Value::to_string).unwrap_or_default(),
                };
                raw.insert(d.key.clone(), Value::String(text));
            }
        }
        match next.validate_attributes(&ci.class_key, Some(&ci.id), &Value::Object(raw), &known) {
            Ok(normal) => {
                let rows: UniqueRows = defs
                    .iter()
                    .filter(|(_, d)| d.unique)
                    .filter_map(|(owner, d)| normal.get(&d.key).map(|v| (owner.key.clone(), d.key.clone(), v.to_string())))
                    .collect();
                for r in &rows {
                    *values.entry(r.clone()).or_default() += 1;
                }
                if unique_changed {
                    out.unique_rows.push((ci.id.clone(), rows.clone()));
                }
                if normal != ci.attributes {
                    out.rewritten.push((ci, normal, rows));
                }
            }
            Err(DomainError::Invalid(list)) => {
                for fe in list {
                    failed.entry(fe.field.clone()).or_insert((0, fe.code, fe.message.clone())).0 += 1;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    for ((_, attribute, _), n) in values.into_iter().filter(|(_, n)| *n > 1) {
        failed.entry(attribute).or_insert((0, "not_unique", String::new())).0 += n;
    }
    if failed.is_empty() {
        return Ok(out);
    }
    let errors = failed
        .into_iter()
        .map(|(key, (n, code, first))| {
            let field = class
                .attributes
                .iter()
                .position(|a| a.key == key)
                .map_or_else(|| format!("attributes.{key}"), |i| format!("attributes[{i}]"));
            let (code, message) = match code {
                "required" => (
                    "existing_cis_missing",
                    format!("{n} existing CIs have no {key}: give a value for existing CIs, or leave {key} optional"),
                ),
                "not_unique" => ("existing_cis_not_unique", format!("{n} existing CIs share a value of {key}")),
                _ => ("existing_cis_invalid", format!("{n} existing CIs have a {key} that the new definition refuses ({first})")),
            };
            FieldError::new(field, code, message)
        })
        .collect();
    Err(AppError::Validation(errors))
}

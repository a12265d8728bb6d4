//! Audit trail (审计日志): a record's history as its page shows it, with the stored values
//! made readable — times in the reader's zone and format, statuses and other coded values
//! through the locale files, approval steps as sentences, lists and nested records as text
//! instead of JSON, references to other records (teams, people, categories, projects,
//! organisations, services, CIs…) by the names the reader may see — for every kind of record.
//! A field that the record's own definition gives (a CI's attribute, by its class) reads as
//! that definition says: its label in the reader's language, a reference to a CI by name.

use super::{ChangeView, HistoryView, OrPage};
use crate::i18n::{Arg, Lang, Tr};
use keel_app::history_names::{HistoryNames, RefKind, RefName, Side, ref_kind};
use keel_store::audit::HistoryEntry;
use serde_json::Value;

/// The entries of a record's history, newest first, as the reader reads them; `names` are the
/// names of the records they refer to that the reader may see (`App::history_names`).
pub fn history_views(tr: &Tr, entries: &[HistoryEntry], names: &HistoryNames) -> Vec<HistoryView> {
    let fields = names.fields();
    entries
        .iter()
        .rev()
        .map(|h| {
            let changes: Vec<keel_domain::audit::FieldChange> = serde_json::from_value(h.changes.clone()).unwrap_or_default();
            HistoryView {
                when: tr.datetime(&h.at),
                who: if h.actor_label.trim().is_empty() { reference(tr, names, RefKind::User, &h.actor_id) } else { h.actor_label.clone() },
                action: tr.t(&format!("audit-action-{}", h.action)),
                changes: changes
                    .iter()
                    .map(|c| {
                        let (old, new) = changed_entries(&c.old, &c.new);
                        let show = |v: &Option<Value>, side| {
                            v.as_ref()
                                .map(|v| value(tr, names, &h.entity_type, &c.field, fields.kind(h, &c.field, side), v))
                                .unwrap_or_default()
                        };
                        ChangeView {
                            field: field_label(tr, fields.label(h, &c.field), &c.field),
                            old: show(&old, Side::Old),
                            new: show(&new, Side::New),
                        }
                    })
                    .filter(|c| !(c.old.is_empty() && c.new.is_empty()))
                    .collect(),
            }
        })
        .collect()
}

/// A record's history as `actor` reads it: the entries with the names of the records they
/// refer to, read in one go.
pub async fn readable_history(
    app: &keel_app::App,
    tr: &Tr,
    actor: &keel_app::Principal,
    entries: &[HistoryEntry],
) -> Result<Vec<HistoryView>, super::UiError> {
    let names = app.history_names(actor, entries).await.or_page(tr)?;
    Ok(history_views(tr, entries, &names))
}

/// Of two lists of records of the same length (a release's stages), only the entries that
/// differ; anything else as it is.
fn changed_entries(old: &Option<Value>, new: &Option<Value>) -> (Option<Value>, Option<Value>) {
    match (old, new) {
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() && a.iter().chain(b).all(Value::is_object) => {
            let differ: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            let pick = |l: &[Value]| Some(Value::Array(differ.iter().map(|&i| l[i].clone()).collect()));
            (pick(a), pick(b))
        }
        _ => (old.clone(), new.clone()),
    }
}

/// A field's label: the one the record's definition gives it (English, Chinese) in the
/// reader's language, else the locale files', else the field's name.
fn field_label(tr: &Tr, defined: Option<(&str, &str)>, field: &str) -> String {
    if let Some((en, zh)) = defined {
        return if tr.lang == Lang::Zh { zh } else { en }.to_string();
    }
    let key = format!("field-{}", field.replace(['_', '.'], "-"));
    if tr.has(&key) { tr.t(&key) } else { field.to_string() }
}

/// The locale prefix of a field's coded values, by kind of record.
fn vocabulary(entity: &str, field: &str) -> Option<&'static str> {
    Some(match (entity, field) {
        ("ticket", "status") => "incident-status",
        ("ticket" | "problem", "priority") => "incident-priority",
        ("ticket", "impact" | "urgency") => "incident-level",
        ("ticket", "channel") => "incident-channel",
        ("ticket", "kind") => "incident-kind",
        ("ticket", "closure_kind") => "incident-closure",
        ("ticket", "pending_reason") => "incident-pending",
        ("ticket", "resolution_code") => "incident-resolution",
        ("change", "status") => "change-status",
        ("change", "change_type") => "change-type",
        ("change", "risk_level") => "change-risk",
        ("change", "review_outcome") => "change-outcome",
        ("change", "quorum_rule") => "change-quorum",
        ("problem", "status") => "problem-status",
        ("problem", "source") => "problem-source",
        ("problem", "closure_kind") => "problem-closure",
        ("problem", "rca_method") => "problem-rca",
        ("known_error", "language") => "problem-language",
        ("release", "status") => "release-status",
        ("release", "stage") => "release-stage",
        ("release", "rollback_outcome") => "release-rollback",
        ("configuration_item", "status") => "ci-status",
        // only whether a secret is stored: `set`, `not_set` or `replaced`
        ("notification_webhook", "secret") | ("mailbox", "imap_secret") => "secret-state",
        _ => return None,
    })
}

/// Stored as Unix milliseconds.
fn is_time(field: &str) -> bool {
    field.ends_with("_at") || matches!(field, "at" | "planned_start" | "planned_end")
}

fn coded(tr: &Tr, prefix: &str, v: &str) -> String {
    let key = format!("{prefix}-{}", v.replace('_', "-"));
    if tr.has(&key) { tr.t(&key) } else { v.to_string() }
}

/// A stored reference to a record of `kind`, as the reader may read it: the record's name (in
/// Chinese where the record has a Chinese name), or a neutral placeholder for a record that no
/// longer exists or that the reader may not see — never the stored id.
fn reference(tr: &Tr, names: &HistoryNames, kind: RefKind, raw: &str) -> String {
    match names.get(kind, raw) {
        RefName::Name { zh: Some(zh), .. } if tr.lang == Lang::Zh => zh.to_string(),
        RefName::Name { en, .. } => en.to_string(),
        RefName::System => tr.t("history-system"),
        RefName::Unavailable => tr.t("history-not-available"),
    }
}

/// One stored value of `field` of an `entity` record, as the reader reads it; `kind` is the kind
/// of record the field refers to, if it refers to one.
pub fn value(tr: &Tr, names: &HistoryNames, entity: &str, field: &str, kind: Option<RefKind>, v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => tr.t(if *b { "value-yes" } else { "value-no" }),
        Value::Number(n) => match n.as_i64() {
            Some(ms) if is_time(field) => tr.datetime(&ms),
            _ => n.to_string(),
        },
        Value::String(s) => {
            if let Some(kind) = kind {
                return reference(tr, names, kind, s);
            }
            // a status change is recorded as its action `from_to_to`
            if field == "action"
                && let (Some(prefix), Some((from, to))) = (vocabulary(entity, "status"), s.split_once("_to_"))
            {
                return format!("{} → {}", coded(tr, prefix, from), coded(tr, prefix, to));
            }
            match vocabulary(entity, field) {
                Some(prefix) => coded(tr, prefix, s),
                // some records keep a JSON object in a text column (e.g. a change's risk answers)
                None if s.starts_with('{') => match serde_json::from_str::<Value>(s) {
                    Ok(inner @ Value::Object(_)) => value(tr, names, entity, field, kind, &inner),
                    _ => s.clone(),
                },
                None => s.clone(),
            }
        }
        Value::Array(items) if field == "approval_steps" => items.iter().map(|s| approval_step(tr, s)).collect::<Vec<_>>().join("; "),
        Value::Array(items) => {
            items.iter().map(|x| value(tr, names, entity, field, kind, x)).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", ")
        }
        Value::Object(o) if matches!(field, "relation_added" | "relation_removed") => {
            let end = |k: &str| o.get(k).and_then(Value::as_str).map(|id| reference(tr, names, RefKind::Ci, id)).unwrap_or_default();
            let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
            format!("{} {} {}", end("source_id"), coded(tr, "relation", kind), end("target_id"))
        }
        Value::Object(fields) => fields
            .iter()
            .filter(|(_, x)| !x.is_null())
            .map(|(k, x)| format!("{}: {}", field_label(tr, None, k), value(tr, names, entity, k, ref_kind(entity, k), x)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// "Step 1: CAB — 2 of 3" from a stored approval step (`seq`, `name`, `quorum_rule`,
/// `quorum_n`, `approvers`).
fn approval_step(tr: &Tr, step: &Value) -> String {
    // steps are stored from 0
    let seq = step["seq"].as_i64().unwrap_or_default() + 1;
    let name = step["name"].as_str().unwrap_or_default();
    let count = step["approvers"].as_array().map_or(0, |a| a.len() as i64);
    let rule = step["quorum_rule"].as_str().unwrap_or_default();
    let n = step["quorum_n"].as_i64().unwrap_or(1);
    let quorum = tr.args(&format!("history-quorum-{}", rule.replace('_', "-")), &[("n", Arg::Number(n)), ("count", Arg::Number(count))]);
    tr.args("history-approval-step", &[("seq", Arg::Number(seq)), ("name", Arg::Text(name)), ("quorum", Arg::Text(&quorum))])
}

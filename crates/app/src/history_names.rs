//! Audit trail (审计日志) of every process's records, made readable: the names of the records a
//! history's entries refer to by id — teams, people, categories, projects, organisations,
//! services, CIs and the other records — as one reader may see them, read in one statement
//! per kind of record (or from the desk's reference cache).
//!
//! A record that no longer exists, or that the reader may not see, has no name here: the page
//! shows a neutral placeholder instead, so a history never tells a reader more than the
//! record's own page would.
//!
//! Most fields refer to the same kind of record whatever the record ([`ref_kind`]); a few are
//! defined by the record itself — a configuration item's attributes by its class — and are
//! read per entry ([`HistoryFields`]).

use crate::reference::DeskLists;
use crate::{App, Principal, Result};
use keel_domain::identity::AccountKind;
use keel_store::AnyConnection;
use keel_store::audit::{self, HistoryEntry, RefRow};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use keel_store::audit::RefKind;

/// Which kind of record the `field` of an `entity` record refers to, if it refers to one. Fields
/// of nested records (a release stage's signers) are named by their own field names.
pub fn ref_kind(entity: &str, field: &str) -> Option<RefKind> {
    use RefKind::*;
    Some(match (entity, field) {
        ("ticket", "parent_id" | "duplicate_of_id") => Ticket,
        ("ticket_category", "parent_id") => Category,
        ("configuration_item", "class_key") => CiClass,
        // the two ends of a relationship added or removed
        ("configuration_item", "source_id" | "target_id") => Ci,
        ("change", "template_id") => ChangeTemplate,
        // a change template's `approved_by` is the approving body's name, as typed
        ("sla" | "ola" | "underpinning_contract", "approved_by") => User,
        (_, "team_id" | "team_ids" | "provider_team_id") => Team,
        (
            _,
            "agent_id"
            | "reporter_id"
            | "created_by"
            | "resolved_by"
            | "closed_by"
            | "reviewed_by"
            | "rollback_by"
            | "signed_off_by"
            | "major_manager_id"
            | "major_declared_by"
            | "rca_recorded_by"
            | "workaround_recorded_by"
            | "owner_user_id"
            | "manager_user_id"
            | "lead_user_id"
            | "member_ids"
            | "user_id"
            | "approver_id"
            | "delegator_id"
            | "delegate_id"
            | "recipient_user_id"
            | "author_id"
            | "uploaded_by"
            | "rated_by"
            | "done_by",
        ) => User,
        (_, "category_id") => Category,
        (_, "project_id" | "project_ids") => Project,
        (_, "organization_id") => Organization,
        (_, "service_id" | "service_ids") => Service,
        (_, "catalogue_item_id") => CatalogueItem,
        (_, "ci_id" | "ci_ids") => Ci,
        (_, "ticket_id") => Ticket,
        (_, "problem_id") => Problem,
        (_, "change_id" | "change_ids" | "fixing_change_id") => Change,
        (_, "release_id") => Release,
        (_, "sla_id" | "sla_ids") => Sla,
        (_, "calendar_id") => Calendar,
        (_, "mailbox_id") => Mailbox,
        _ => return None,
    })
}

/// Which value of a field change: the one before the write or the one after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Old,
    New,
}

/// A field of an entry that the record's own definition gives a meaning (a CI attribute, by the
/// CI's class): its label in each language and, on each side of the change, the kind of record
/// its value refers to, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinedField {
    pub label_en: String,
    pub label_zh: String,
    pub old: Option<RefKind>,
    pub new: Option<RefKind>,
}

/// What the fields of a history's entries mean: the fields that a record's own definition
/// gives, by entry, and every other field by [`ref_kind`].
#[derive(Debug, Clone, Default)]
pub struct HistoryFields {
    /// entry id → field → meaning
    defined: HashMap<String, HashMap<String, DefinedField>>,
}

impl HistoryFields {
    pub fn define(&mut self, entry_id: &str, field: &str, meaning: DefinedField) {
        self.defined.entry(entry_id.to_string()).or_default().insert(field.to_string(), meaning);
    }

    fn defined(&self, entry: &HistoryEntry, field: &str) -> Option<&DefinedField> {
        self.defined.get(&entry.id).and_then(|f| f.get(field))
    }

    /// Which kind of record the `side` value of `field` in `entry` refers to, if any.
    pub fn kind(&self, entry: &HistoryEntry, field: &str, side: Side) -> Option<RefKind> {
        match self.defined(entry, field) {
            Some(d) => match side {
                Side::Old => d.old,
                Side::New => d.new,
            },
            None => ref_kind(&entry.entity_type, field),
        }
    }

    /// The label (English, Chinese) the record's definition gives `field` in `entry`.
    pub fn label(&self, entry: &HistoryEntry, field: &str) -> Option<(&str, &str)> {
        self.defined(entry, field).map(|d| (d.label_en.as_str(), d.label_zh.as_str()))
    }
}

/// What a stored reference reads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefName<'a> {
    /// The record's name; the Chinese one where the record has one.
    Name { en: &'a str, zh: Option<&'a str> },
    /// The platform itself (an automatic step).
    System,
    /// A record that no longer exists or that the reader may not see.
    Unavailable,
}

/// The names of the records a history refers to, as one reader may see them, and what the
/// history's fields mean.
#[derive(Debug, Clone, Default)]
pub struct HistoryNames {
    names: HashMap<(RefKind, String), (String, Option<String>)>,
    fields: HistoryFields,
}

/// A stored reference as an id: people acting on a ticket or problem are kept as
/// `staff:<id>` / `contact:<id>`, the platform as `system`.
fn id_of(kind: RefKind, raw: &str) -> Option<&str> {
    let raw = raw.trim();
    if raw.is_empty() || (kind == RefKind::User && raw == "system") {
        return None;
    }
    if kind == RefKind::User {
        for prefix in ["staff:", "contact:"] {
            if let Some(id) = raw.strip_prefix(prefix) {
                return Some(id);
            }
        }
    }
    Some(raw)
}

impl HistoryNames {
    /// How the stored reference `raw` to a record of `kind` reads.
    pub fn get(&self, kind: RefKind, raw: &str) -> RefName<'_> {
        match id_of(kind, raw) {
            None if kind == RefKind::User && raw.trim() == "system" => RefName::System,
            None => RefName::Unavailable,
            Some(id) => match self.names.get(&(kind, id.to_string())) {
                Some((en, zh)) => RefName::Name { en: en.as_str(), zh: zh.as_deref() },
                None => RefName::Unavailable,
            },
        }
    }

    /// Whether any reference was resolved.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// What the fields of the history's entries mean.
    pub fn fields(&self) -> &HistoryFields {
        &self.fields
    }
}

/// The references that the entries' field changes make, by kind, with the fields meaning what
/// `fields` says.
pub fn references_of(entries: &[HistoryEntry], fields: &HistoryFields) -> BTreeMap<RefKind, BTreeSet<String>> {
    fn walk(out: &mut BTreeMap<RefKind, BTreeSet<String>>, entity: &str, kind: Option<RefKind>, v: &Value) {
        match v {
            Value::String(s) => {
                if let Some(kind) = kind
                    && let Some(id) = id_of(kind, s)
                {
                    out.entry(kind).or_default().insert(id.to_string());
                }
            }
            Value::Array(items) => items.iter().for_each(|x| walk(out, entity, kind, x)),
            Value::Object(fields) => fields.iter().for_each(|(k, x)| walk(out, entity, ref_kind(entity, k), x)),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    for e in entries {
        let Some(changes) = e.changes.as_array() else { continue };
        for c in changes {
            let Some(field) = c.get("field").and_then(Value::as_str) else { continue };
            for (side, key) in [(Side::Old, "old"), (Side::New, "new")] {
                if let Some(v) = c.get(key) {
                    walk(&mut out, &e.entity_type, fields.kind(e, field, side), v);
                }
            }
        }
        // an entry whose label was not kept is shown by its actor's name
        if e.actor_label.trim().is_empty()
            && let Some(id) = id_of(RefKind::User, &e.actor_id)
        {
            out.entry(RefKind::User).or_default().insert(id.to_string());
        }
    }
    out
}

/// Whether `actor` may read the name of a referenced record, by the same rules as the pages that
/// show those records: teams, staff, services, calendars and the change and CMDB records to staff
/// only, and within the projects they may see; a customer contact only the people, projects
/// and tickets of their own organisation, the categories and the catalogue.
fn may_see(actor: &Principal, kind: RefKind, r: &RefRow, org_projects: &HashMap<&str, Vec<String>>) -> bool {
    let staff = actor.is_staff();
    let in_project = |p: &Option<String>| match p {
        Some(p) => actor.can_see_project(p, r.organization_id.as_deref()),
        None => staff,
    };
    match kind {
        RefKind::Category | RefKind::CatalogueItem => true,
        RefKind::User => {
            staff
                || (r.account_kind.as_deref() == Some(AccountKind::Contact.as_str())
                    && r.organization_id.is_some()
                    && r.organization_id == actor.organization_id)
        }
        RefKind::Team | RefKind::Service | RefKind::CiClass | RefKind::Calendar | RefKind::ChangeTemplate => staff,
        RefKind::Project | RefKind::Ticket => in_project(&r.project_id),
        RefKind::Organization => actor.can_see_organization(&r.id, org_projects.get(r.id.as_str()).map(Vec::as_slice).unwrap_or_default()),
        RefKind::Ci | RefKind::Problem | RefKind::Change | RefKind::Release | RefKind::Sla | RefKind::Mailbox => {
            staff && in_project(&r.project_id)
        }
    }
}

/// The display name of a referenced record: a project or service as "code · name" (as the
/// desk's forms show them), anything else by its name.
fn label(kind: RefKind, r: &RefRow) -> String {
    match (kind, &r.code) {
        (RefKind::Project | RefKind::Service, Some(code)) => format!("{code} · {}", r.name),
        _ => r.name.clone(),
    }
}

/// Reads the names of `refs` that `actor` may see. Teams, active staff, services and active
/// projects come from the reference cache `lists` when given; the rest in one statement per kind.
pub(crate) async fn names_in(
    conn: &mut AnyConnection,
    actor: &Principal,
    lists: &DeskLists,
    refs: &BTreeMap<RefKind, BTreeSet<String>>,
) -> Result<HistoryNames> {
    let mut names = HistoryNames::default();
    // which of the actor's projects belong to an organisation (for organisations' visibility)
    let mut org_projects: HashMap<&str, Vec<String>> = HashMap::new();
    for p in lists.projects() {
        org_projects.entry(p.organization_id.as_str()).or_default().push(p.id.clone());
    }
    for (&kind, ids) in refs {
        let mut rows = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match lists.ref_row(kind, id) {
                Some(r) => rows.push(r),
                None => missing.push(id.clone()),
            }
        }
        if !missing.is_empty() {
            rows.extend(audit::referenced(conn, kind, &missing).await?);
        }
        for r in rows {
            if may_see(actor, kind, &r, &org_projects) {
                names.names.insert((kind, r.id.clone()), (label(kind, &r), r.name_zh.clone()));
            }
        }
    }
    Ok(names)
}

/// What the entries of a history mean and the names of the records they refer to, as `actor`
/// may see them: the fields that records' own definitions give (a CI's attributes by its
/// class), then the references those and all other fields make.
pub(crate) async fn history_names_in(
    conn: &mut AnyConnection,
    actor: &Principal,
    lists: &DeskLists,
    entries: &[HistoryEntry],
) -> Result<HistoryNames> {
    let fields = crate::cmdb::attribute_fields_in(conn, entries).await?;
    let refs = references_of(entries, &fields);
    let mut names = if refs.is_empty() { HistoryNames::default() } else { names_in(conn, actor, lists, &refs).await? };
    names.fields = fields;
    Ok(names)
}

impl App {
    /// The names of the records the entries of a history refer to, as `actor` may see them
    /// (see [`HistoryNames`]). Callers have already checked the actor may see the history.
    pub async fn history_names(&self, actor: &Principal, entries: &[HistoryEntry]) -> Result<HistoryNames> {
        if entries.is_empty() {
            return Ok(HistoryNames::default());
        }
        let mut c = self.read().await?;
        let lists = self.reference.lists(&mut c).await?;
        history_names_in(&mut c, actor, &lists, entries).await
    }

    /// The names of the given records of each kind that `actor` may see: an id → name map per
    /// kind, for readers other than a history.
    pub async fn reference_names(&self, actor: &Principal, refs: &[(RefKind, String)]) -> Result<HistoryNames> {
        let mut by_kind: BTreeMap<RefKind, BTreeSet<String>> = BTreeMap::new();
        for (k, id) in refs {
            if let Some(id) = id_of(*k, id) {
                by_kind.entry(*k).or_default().insert(id.to_string());
            }
        }
        if by_kind.is_empty() {
            return Ok(HistoryNames::default());
        }
        let mut c = self.read().await?;
        let lists = self.reference.lists(&mut c).await?;
        names_in(&mut c, actor, &lists, &by_kind).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An update of record `entity_id` by Ann.
    pub(crate) fn entry_of(id: &str, entity: &str, entity_id: &str, seq: i64, changes: Value) -> HistoryEntry {
        HistoryEntry {
            id: id.into(),
            entity_type: entity.into(),
            entity_id: entity_id.into(),
            seq,
            action: "update".into(),
            actor_id: "u".into(),
            actor_label: "Ann".into(),
            at: 0,
            changes,
        }
    }

    fn entry(entity: &str, changes: Value) -> HistoryEntry {
        entry_of("e", entity, "x", 1, changes)
    }

    #[test]
    fn references_are_collected_by_kind_from_fields_lists_and_nested_records() {
        let h = [
            entry(
                "ticket",
                serde_json::json!([
                    {"field": "team_id", "old": "t1", "new": "t2"},
                    {"field": "resolved_by", "new": "staff:u1"},
                    {"field": "closed_by", "new": "system"},
                    {"field": "parent_id", "new": "k1"},
                    {"field": "title", "old": "a", "new": "b"},
                ]),
            ),
            entry(
                "release",
                serde_json::json!([{"field": "stages", "new": [{"signers": [{"user_id": "u2"}], "signed_off_by": "u3"}]},
                    {"field": "change_ids", "new": ["c1", "c2"]}]),
            ),
        ];
        let refs = references_of(&h, &HistoryFields::default());
        let ids = |k| refs.get(&k).map(|s| s.iter().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(ids(RefKind::Team), ["t1", "t2"]);
        assert_eq!(ids(RefKind::User), ["u1", "u2", "u3"]);
        assert_eq!(ids(RefKind::Ticket), ["k1"]);
        assert_eq!(ids(RefKind::Change), ["c1", "c2"]);
        assert_eq!(refs.len(), 4);
    }

    #[test]
    fn a_name_not_read_is_unavailable_and_the_platform_is_itself() {
        let mut n = HistoryNames::default();
        n.names.insert((RefKind::User, "u1".into()), ("Ann".into(), None));
        assert_eq!(n.get(RefKind::User, "staff:u1"), RefName::Name { en: "Ann", zh: None });
        assert_eq!(n.get(RefKind::User, "u1"), RefName::Name { en: "Ann", zh: None });
        assert_eq!(n.get(RefKind::User, "system"), RefName::System);
        assert_eq!(n.get(RefKind::User, "u2"), RefName::Unavailable);
        assert_eq!(n.get(RefKind::Team, "u1"), RefName::Unavailable);
    }
}

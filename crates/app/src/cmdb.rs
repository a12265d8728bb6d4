//! Configuration management (配置管理, REQUIREMENTS §5): configuration items (配置项) of typed
//! classes, their lifecycle, relationships (关系), impact analysis (影响分析), baselines (基线)
//! and verification audits.
//!
//! Visibility: staff see the CIs of their service projects and every shared CI (no project);
//! customer contacts see no CMDB. CIs of projects that tailored the configuration process out
//! are hidden from lists and graphs and refused on every use.

use crate::cmdb_graph::CmdbGraph;
use crate::history_names::{DefinedField, HistoryFields, RefKind};
use crate::{App, AppError, Principal, Result};
use keel_domain::FieldError;
use keel_domain::audit::AuditAction;
use keel_domain::cmdb::{
    Affected, AttributeDef, AttributeType, CiClass, CiLookup, CiSnapshot, CiStatus, ClassRegistry, Direction, OverdueCi, Relation,
    RelationType, Snapshot, SnapshotDiff, VerificationState, check_new_relation, overdue_verifications,
};
use keel_domain::error::Errors;
use keel_domain::process::Process;
use keel_domain::validate;
use keel_store::audit::HistoryEntry;
use keel_store::cmdb::{self as store, BaselineRecord, CiFilter, CiRecord, ClassRecord, CmdbScope, RelationRecord};
use keel_store::page::{Page, PageRequest};
use keel_store::{directory, kernel};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::collections::HashMap;

pub const CI_ENTITY: &str = "configuration_item";
pub const RELATION_ENTITY: &str = "ci_relation";
pub const BASELINE_ENTITY: &str = "ci_baseline";
pub const CLASS_ENTITY: &str = "ci_class";

/// A CI as entered in a form or an API call. On update, `status` is ignored: status changes go
/// through [`App::transition_ci`].
#[derive(Debug, Clone, Default)]
pub struct CiInput {
    pub class_key: String,
    pub name: String,
    pub status: Option<String>,
    pub owner_user_id: Option<String>,
    pub team_id: Option<String>,
    pub project_id: Option<String>,
    pub location: Option<String>,
    pub description: Option<String>,
    /// A JSON object of attribute values, checked against the class.
    pub attributes: Value,
    /// On update: the change (id or number) that authorises modifying a live CI; checked as
    /// the `cmdb.change_control` setting says.
    pub change_id: Option<String>,
}

/// List filter as the API and UI take it.
#[derive(Debug, Clone, Default)]
pub struct CiQuery {
    /// A class key; its subclasses are included.
    pub class: Option<String>,
    pub status: Option<String>,
    /// A project id, or `none` for shared CIs.
    pub project_id: Option<String>,
    pub q: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RelationInput {
    pub kind: String,
    pub source_id: String,
    pub target_id: String,
}

#[derive(Debug, Clone, Default)]
pub struct BaselineInput {
    pub name: String,
    pub description: Option<String>,
    /// The CIs of this project; `None` for the whole CMDB (staff who see every project).
    pub project_id: Option<String>,
    /// Narrows the baseline to these CIs.
    pub ci_ids: Option<Vec<String>>,
}

/// The few facts about a CI that lists of other records show.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CiSummary {
    pub id: String,
    pub name: String,
    pub class_key: String,
    pub status: String,
    pub project_id: Option<String>,
}

impl From<&CiRecord> for CiSummary {
    fn from(c: &CiRecord) -> Self {
        CiSummary {
            id: c.id.clone(),
            name: c.name.clone(),
            class_key: c.class_key.clone(),
            status: c.status.clone(),
            project_id: c.project_id.clone(),
        }
    }
}

/// A relation of one CI, seen from that CI.
#[derive(Debug, Clone, Serialize)]
pub struct RelationView {
    pub relation: RelationRecord,
    /// `outgoing` when the CI is the source ("this runs on other"), else `incoming`.
    pub direction: &'static str,
    pub other: CiSummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImpactStep {
    pub source_id: String,
    pub target_id: String,
    pub kind: RelationType,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImpactEntry {
    pub ci: CiSummary,
    pub depth: u32,
    /// The relations from the origin to this CI, in order.
    pub path: Vec<ImpactStep>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectRef {
    pub id: String,
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomerRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImpactResult {
    pub origin: CiSummary,
    pub direction: Direction,
    pub max_depth: Option<u32>,
    /// Nearest first.
    pub reached: Vec<ImpactEntry>,
    /// Services (CIs of class `service` or a subclass), origin included.
    pub services: Vec<CiSummary>,
    pub projects: Vec<ProjectRef>,
    pub customers: Vec<CustomerRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BaselineDiff {
    pub baseline: BaselineRecord,
    pub diff: SnapshotDiff,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerificationDue {
    pub ci: CiSummary,
    pub last_verified_at: Option<i64>,
    pub days_since: Option<i64>,
}

/// Answers attribute validation from data loaded beforehand. The first pass records the unique
/// values validation asks about, the second answers them from the store.
#[derive(Default)]
struct Prefetched {
    classes: HashMap<String, String>,
    taken: HashMap<(String, String, String), String>,
    asked: RefCell<Vec<(String, String, String)>>,
}

impl CiLookup for Prefetched {
    fn class_of(&self, ci_id: &str) -> Option<String> {
        self.classes.get(ci_id).cloned()
    }
    fn value_taken(&self, class: &str, attribute: &str, value: &Value, except: Option<&str>) -> bool {
        let key = (class.to_string(), attribute.to_string(), value.to_string());
        self.asked.borrow_mut().push(key.clone());
        self.taken.get(&key).is_some_and(|owner| Some(owner.as_str()) != except)
    }
}

/// Attribute errors are reported as `attributes.<key>`.
fn prefix_attribute_errors(e: keel_domain::DomainError) -> AppError {
    match e {
        keel_domain::DomainError::Invalid(list) => AppError::Validation(
            list.into_iter()
                .map(|f| match f.field.as_str() {
                    "class" => FieldError { field: "class_key".into(), ..f },
                    "attributes" => f,
                    _ => FieldError { field: format!("attributes.{}", f.field), ..f },
                })
                .collect(),
        ),
        other => other.into(),
    }
}

fn staff_only(actor: &Principal) -> Result<()> {
    if actor.is_staff() { Ok(()) } else { Err(AppError::Forbidden) }
}

pub(crate) fn may_write(actor: &Principal) -> Result<()> {
    if actor.is_staff() && !actor.is_read_only() { Ok(()) } else { Err(AppError::Forbidden) }
}

/// What the actor may see of the CMDB.
pub fn cmdb_scope(actor: &Principal) -> CmdbScope {
    if actor.sees_all_projects() { CmdbScope { project_ids: None } } else { CmdbScope { project_ids: Some(actor.project_ids.clone()) } }
}

pub(crate) fn sees_ci(actor: &Principal, project_id: Option<&str>) -> bool {
    actor.is_staff() && project_id.is_none_or(|p| actor.sees_all_projects() || actor.project_ids.iter().any(|x| x == p))
}

/// How a CI's audit entries name an attribute's field: `attributes.<key>`.
const ATTRIBUTE_FIELD: &str = "attributes.";

/// The CI as its audit entries show it: attribute values as `attributes.<key>` fields.
pub(crate) fn audit_view(c: &CiRecord) -> Value {
    let mut m = Map::new();
    m.insert("class_key".into(), json!(c.class_key));
    m.insert("name".into(), json!(c.name));
    m.insert("status".into(), json!(c.status));
    m.insert("owner_user_id".into(), json!(c.owner_user_id));
    m.insert("team_id".into(), json!(c.team_id));
    m.insert("project_id".into(), json!(c.project_id));
    m.insert("location".into(), json!(c.location));
    m.insert("description".into(), json!(c.description));
    m.insert("last_verified_at".into(), json!(c.last_verified_at));
    for (k, v) in &c.attributes {
        m.insert(format!("{ATTRIBUTE_FIELD}{k}"), v.clone());
    }
    Value::Object(m)
}

/// The attribute fields a CI's audit entry changes, each with its attribute key.
fn changed_attributes(e: &HistoryEntry) -> impl Iterator<Item = (&str, &str)> {
    e.changes.as_array().into_iter().flatten().filter_map(|c| {
        let field = c.get("field")?.as_str()?;
        Some((field, field.strip_prefix(ATTRIBUTE_FIELD)?))
    })
}

/// The class each CI entry's values were written under, before and after the write: the class
/// the CI's create entry or latest class change recorded, else `now` (the CI's class today).
/// Entries of other records are left out.
fn classes_of_entries<'a>(
    entries: &'a [HistoryEntry],
    now: &'a HashMap<String, String>,
) -> Vec<(&'a HistoryEntry, Option<&'a str>, Option<&'a str>)> {
    let mut cis: Vec<&HistoryEntry> = entries.iter().filter(|e| e.entity_type == CI_ENTITY).collect();
    cis.sort_by(|a, b| (a.entity_id.as_str(), a.seq).cmp(&(b.entity_id.as_str(), b.seq)));
    let mut recorded: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::with_capacity(cis.len());
    for e in cis {
        let class_change = e.changes.as_array().into_iter().flatten().find(|c| c.get("field").and_then(Value::as_str) == Some("class_key"));
        let recorded_side = |side: &str| class_change.and_then(|c| c.get(side)).and_then(Value::as_str);
        let known = recorded.get(e.entity_id.as_str()).copied().or_else(|| now.get(&e.entity_id).map(String::as_str));
        let (old, new) = (recorded_side("old").or(known), recorded_side("new").or(known));
        if let Some(class) = new {
            recorded.insert(&e.entity_id, class);
        }
        out.push((e, old, new));
    }
    out
}

/// What the attribute fields of CI entries mean: the attribute as the class the CI had when the
/// entry was written defines it (or one of the class's ancestors) — its label, and whether its
/// value refers to another CI. `now` gives the class of CIs whose entries do not record one.
pub(crate) fn attribute_fields(registry: &ClassRegistry, entries: &[HistoryEntry], now: &HashMap<String, String>) -> HistoryFields {
    fn definition<'r>(registry: &'r ClassRegistry, class: Option<&str>, key: &str) -> Option<&'r AttributeDef> {
        registry.attributes(class?).into_iter().map(|(_, d)| d).find(|d| d.key == key)
    }
    fn refers_to(d: Option<&AttributeDef>) -> Option<RefKind> {
        d.and_then(|d| matches!(d.kind, AttributeType::Reference { .. }).then_some(RefKind::Ci))
    }
    let mut fields = HistoryFields::default();
    for (e, old_class, new_class) in classes_of_entries(entries, now) {
        for (field, key) in changed_attributes(e) {
            let (old, new) = (definition(registry, old_class, key), definition(registry, new_class, key));
            if let Some(d) = new.or(old) {
                let meaning =
                    DefinedField { label_en: d.label_en.clone(), label_zh: d.label_zh.clone(), old: refers_to(old), new: refers_to(new) };
                fields.define(&e.id, field, meaning);
            }
        }
    }
    fields
}

/// [`attribute_fields`] of the entries, with the classes as stored.
pub(crate) async fn attribute_fields_in(conn: &mut sqlx::AnyConnection, entries: &[HistoryEntry]) -> Result<HistoryFields> {
    if !entries.iter().any(|e| e.entity_type == CI_ENTITY && changed_attributes(e).next().is_some()) {
        return Ok(HistoryFields::default());
    }
    let registry = registry_in(conn).await?;
    let mut now = HashMap::new();
    let unrecorded: Vec<String> = classes_of_entries(entries, &now)
        .into_iter()
        .filter(|(e, _, new)| new.is_none() && changed_attributes(e).next().is_some())
        .map(|(e, ..)| e.entity_id.clone())
        .collect();
    for id in unrecorded {
        if !now.contains_key(&id)
            && let Some(ci) = store::get_ci(conn, &id).await?
        {
            now.insert(id, ci.class_key);
        }
    }
    Ok(attribute_fields(&registry, entries, &now))
}

/// The classes as stored, checked as a whole.
async fn registry_in(conn: &mut sqlx::AnyConnection) -> Result<ClassRegistry> {
    let rows = store::list_classes(conn).await?;
    ClassRegistry::new(rows.into_iter().map(|r| r.class).collect()).map_err(|e| AppError::Internal(format!("stored CI classes: {e:?}")))
}

/// A CI as a baseline keeps it: its attributes plus the core fields as `@name`, `@owner_user_id`…
/// (attribute keys never start with `@`).
fn snapshot_of(c: &CiRecord) -> Option<CiSnapshot> {
    let mut attributes = c.attributes.clone();
    for (k, v) in [
        ("@name", Some(c.name.clone())),
        ("@owner_user_id", c.owner_user_id.clone()),
        ("@team_id", c.team_id.clone()),
        ("@project_id", c.project_id.clone()),
        ("@location", c.location.clone()),
    ] {
        if let Some(v) = v {
            attributes.insert(k.into(), Value::String(v));
        }
    }
    Some(CiSnapshot { id: c.id.clone(), class: c.class_key.clone(), status: CiStatus::parse(&c.status)?, attributes })
}

fn opt_id(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn csv_cell(s: &str) -> String {
    // Cells starting with a formula character are prefixed so spreadsheets show them as text.
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// Per project of the cached graph: may the actor see its CIs? Shared CIs are always visible;
/// projects that tailored configuration management out are hidden from everyone.
pub(crate) async fn graph_visibility(c: &mut sqlx::AnyConnection, actor: &Principal, g: &CmdbGraph) -> Result<Vec<bool>> {
    let hidden = store::projects_without_configuration(c).await?;
    let scope = cmdb_scope(actor);
    Ok(g.projects.iter().map(|p| !hidden.contains(p) && scope.project_ids.as_ref().is_none_or(|ps| ps.contains(p))).collect())
}

impl App {
    // ---- classes ----

    /// Inserts the shipped CI classes that are missing (idempotent); call on start.
    pub async fn seed_cmdb_classes(&self) -> Result<usize> {
        let registry = ClassRegistry::shipped();
        let mut classes: Vec<_> = registry.classes().to_vec();
        classes.sort_by_key(|c| registry.lineage(&c.key).count());
        let mut w = self.write(&Principal::system()).await?;
        let mut n = 0;
        for c in &classes {
            if store::insert_class_if_missing(&mut w.tx, c, true, w.now).await? {
                let view = serde_json::to_value(c).unwrap_or_default();
                w.record(CLASS_ENTITY, &c.key, AuditAction::Create, None, Some(&view)).await?;
                n += 1;
            }
        }
        w.commit().await?;
        Ok(n)
    }

    /// The classes as stored, checked as a whole.
    pub async fn class_registry(&self) -> Result<ClassRegistry> {
        let mut c = self.read().await?;
        registry_in(&mut c).await
    }

    pub async fn list_ci_classes(&self, actor: &Principal) -> Result<Vec<ClassRecord>> {
        staff_only(actor)?;
        let mut c = self.read().await?;
        Ok(store::list_classes(&mut c).await?)
    }

    /// Adds a CI class (administrators). The class is checked with the others: a known parent,
    /// no inheritance cycle, no attribute its ancestors define, known reference classes.
    pub async fn create_ci_class(&self, actor: &Principal, class: CiClass) -> Result<ClassRecord> {
        self.save_ci_class(actor, class, None, &Map::new()).await
    }

    /// Replaces a class's names, parent and attributes (administrators); subclasses are checked
    /// again (an attribute the class now defines must not be defined by a subclass too), and so
    /// are the existing CIs of the class and its subclasses: refused, per attribute, while any
    /// CI violates the new definition. `fill` gives a value (by attribute key) for existing CIs
    /// that have none, e.g. for a new required attribute. CIs whose values change (filled,
    /// normalised to a new type, or a removed attribute's value dropped) are rewritten with an
    /// audit entry each.
    pub async fn update_ci_class(
        &self,
        actor: &Principal,
        class: CiClass,
        expected_version: i64,
        fill: &Map<String, Value>,
    ) -> Result<ClassRecord> {
        self.save_ci_class(actor, class, Some(expected_version), fill).await
    }

    async fn save_ci_class(
        &self,
        actor: &Principal,
        class: CiClass,
        expected_version: Option<i64>,
        fill: &Map<String, Value>,
    ) -> Result<ClassRecord> {
        if !actor.is_admin() || actor.is_read_only() {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let rows = store::list_classes(&mut w.tx).await?;
        let before = rows.iter().find(|r| r.class.key == class.key).cloned();
        match (&before, expected_version) {
            (Some(_), None) => return Err(AppError::field("key", "duplicate_class", format!("class {} exists", class.key))),
            (None, Some(_)) => return Err(AppError::NotFound),
            _ => {}
        }
        let registry = ClassRegistry::new(rows.into_iter().map(|r| r.class).collect())
            .map_err(|e| AppError::Internal(format!("stored CI classes: {e:?}")))?;
        let next = registry.upsert(class.clone())?;
        let view = serde_json::to_value(&class).unwrap_or_default();
        let mut graph = Vec::new();
        match (&before, expected_version) {
            (Some(b), Some(v)) => {
                let migration = crate::cmdb_classes::check_existing_cis(&mut w.tx, &registry, &next, &class, fill).await?;
                store::update_class(&mut w.tx, &class, w.now, v).await?;
                let old = serde_json::to_value(&b.class).unwrap_or_default();
                w.record(CLASS_ENTITY, &class.key, AuditAction::Update, Some(&old), Some(&view)).await?;
                for (id, rows) in &migration.unique_rows {
                    store::set_unique_values(&mut w.tx, id, rows).await?;
                }
                for (ci, attributes, rows) in migration.rewritten {
                    let after = CiRecord { attributes, updated_at: w.now, ..ci.clone() };
                    graph.push(store::update_ci(&mut w.tx, &after, ci.version).await?);
                    store::set_unique_values(&mut w.tx, &ci.id, &rows).await?;
                    let mut a = audit_view(&after);
                    if let Some(o) = a.as_object_mut() {
                        o.insert("class_edited".into(), Value::String(class.key.clone()));
                    }
                    w.record(CI_ENTITY, &ci.id, AuditAction::Update, Some(&audit_view(&ci)), Some(&a)).await?;
                }
            }
            _ => {
                store::insert_class_if_missing(&mut w.tx, &class, false, w.now).await?;
                w.record(CLASS_ENTITY, &class.key, AuditAction::Create, None, Some(&view)).await?;
            }
        }
        let saved = store::list_classes(&mut w.tx).await?.into_iter().find(|r| r.class.key == class.key).ok_or(AppError::NotFound)?;
        w.commit().await?;
        self.graph_written(&graph).await;
        Ok(saved)
    }

    // ---- configuration items ----

    /// Refuses a project that tailored configuration management out; an unknown or invisible
    /// project is left to field validation.
    async fn require_configuration(&self, actor: &Principal, project_id: &str) -> Result<()> {
        if !sees_ci(actor, Some(project_id)) {
            return Ok(());
        }
        match self.require_process(project_id, Process::Configuration).await {
            Err(AppError::NotFound) => Ok(()),
            other => other,
        }
    }

    /// A CI the actor may see; NotFound otherwise, ProcessDisabled when its project tailored
    /// the configuration process out.
    pub async fn get_ci(&self, actor: &Principal, id: &str) -> Result<CiRecord> {
        let mut c = self.read().await?;
        let ci = store::get_ci(&mut c, id).await?.ok_or(AppError::NotFound)?;
        drop(c);
        if !sees_ci(actor, ci.project_id.as_deref()) {
            return Err(AppError::NotFound);
        }
        if let Some(p) = &ci.project_id {
            self.require_process(p, Process::Configuration).await?;
        }
        Ok(ci)
    }

    fn class_filter(registry: &ClassRegistry, class: Option<&str>) -> Result<Option<Vec<String>>> {
        let Some(class) = class.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
        if registry.get(class).is_none() {
            return Err(AppError::field("class", "unknown_class", format!("there is no class {class}")));
        }
        Ok(Some(registry.classes().iter().filter(|c| registry.is_a(&c.key, class)).map(|c| c.key.clone()).collect()))
    }

    pub async fn list_cis(&self, actor: &Principal, q: &CiQuery, page: &PageRequest) -> Result<Page<CiRecord>> {
        staff_only(actor)?;
        let registry = self.class_registry().await?;
        let f = CiFilter {
            class_keys: Self::class_filter(&registry, q.class.as_deref())?,
            status: q.status.clone(),
            project_id: q.project_id.clone(),
            q: q.q.clone(),
        };
        let mut c = self.read().await?;
        Ok(store::list_cis(&mut c, &cmdb_scope(actor), &f, page).await?)
    }

    /// Checks a CI's fields and attributes; returns the record to store (id and times unset)
    /// and the rows of the unique-value index.
    pub(crate) async fn check_ci(
        &self,
        actor: &Principal,
        conn: &mut sqlx::AnyConnection,
        registry: &ClassRegistry,
        ci_id: Option<&str>,
        input: &CiInput,
    ) -> Result<(CiRecord, Vec<(String, String, String)>)> {
        let mut errs = Errors::new();
        let name = errs.check(validate::required_text("name", &input.name, 200));
        let location = errs.check(validate::optional_text("location", input.location.as_deref(), 500));
        let description = errs.check(validate::optional_text("description", input.description.as_deref(), 8000));
        let status = input.status.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or("planned");
        if CiStatus::parse(status).is_none() {
            errs.push(FieldError::new("status", "invalid_status", "unknown CI status"));
        }
        let class_key = input.class_key.trim().to_string();
        let class_known = registry.get(&class_key).is_some();
        if class_key.is_empty() {
            errs.push(FieldError::new("class_key", "required", "choose the CI class"));
        } else if !class_known {
            errs.push(FieldError::new("class_key", "unknown_class", format!("there is no class {class_key}")));
        }
        let project_id = opt_id(&input.project_id);
        if let Some(p) = &project_id {
            match directory::get_project(conn, p).await? {
                Some(pr) if actor.can_see_project(&pr.id, Some(&pr.organization_id)) => {}
                _ => errs.push(FieldError::new("project_id", "unknown_reference", "no such service project")),
            }
        }
        let owner = opt_id(&input.owner_user_id);
        if let Some(o) = &owner {
            match keel_store::accounts::get_user(conn, o).await? {
                Some(u) if u.kind == "staff" => {}
                _ => errs.push(FieldError::new("owner_user_id", "unknown_reference", "no such staff member")),
            }
        }
        let team = opt_id(&input.team_id);
        if let Some(t) = &team
            && directory::get_team(conn, t).await?.is_none()
        {
            errs.push(FieldError::new("team_id", "unknown_reference", "no such resolver group"));
        }
        let mut attributes = Map::new();
        let mut unique = Vec::new();
        if class_known {
            match self.check_attributes(actor, conn, registry, &class_key, ci_id, &input.attributes).await {
                Ok((a, u)) => {
                    attributes = a;
                    unique = u;
                }
                Err(AppError::Validation(list)) => list.into_iter().for_each(|f| errs.push(f)),
                Err(other) => return Err(other),
            }
        }
        errs.finish()?;
        let rec = CiRecord {
            id: ci_id.unwrap_or_default().to_string(),
            class_key,
            name: name.unwrap_or_default(),
            status: status.to_string(),
            owner_user_id: owner,
            team_id: team,
            project_id,
            location: location.flatten(),
            description: description.flatten(),
            attributes,
            last_verified_at: None,
            created_at: 0,
            updated_at: 0,
            version: 1,
        };
        Ok((rec, unique))
    }

    async fn check_attributes(
        &self,
        actor: &Principal,
        conn: &mut sqlx::AnyConnection,
        registry: &ClassRegistry,
        class: &str,
        ci_id: Option<&str>,
        raw: &Value,
    ) -> Result<(Map<String, Value>, Vec<(String, String, String)>)> {
        let empty = Value::Object(Map::new());
        let raw = if raw.is_null() { &empty } else { raw };
        let defs = registry.attributes(class);
        let ref_ids: Vec<String> = defs
            .iter()
            .filter(|(_, d)| matches!(d.kind, keel_domain::cmdb::AttributeType::Reference { .. }))
            .filter_map(|(_, d)| raw.get(&d.key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string))
            .collect();
        let mut lookup = Prefetched::default();
        if !ref_ids.is_empty() {
            lookup.classes = store::classes_of(conn, &cmdb_scope(actor), &ref_ids).await?.into_iter().collect();
            // A reference the editor may not see, left as it was, is kept: editing other fields
            // must neither fail on it nor clear it.
            let current = match ci_id {
                Some(id) => store::get_ci(conn, id).await?.map(|c| c.attributes).unwrap_or_default(),
                None => Map::new(),
            };
            let kept: Vec<String> = defs
                .iter()
                .filter(|(_, d)| matches!(d.kind, keel_domain::cmdb::AttributeType::Reference { .. }))
                .filter_map(|(_, d)| {
                    raw.get(&d.key)
                        .and_then(Value::as_str)
                        .map(str::trim)
                        .filter(|v| current.get(&d.key).and_then(Value::as_str) == Some(*v))
                })
                .filter(|v| !lookup.classes.contains_key(*v))
                .map(str::to_string)
                .collect();
            if !kept.is_empty() {
                lookup.classes.extend(store::classes_of(conn, &CmdbScope { project_ids: None }, &kept).await?);
            }
        }
        // First pass: learn which unique values to look up.
        let _ = registry.validate_attributes(class, ci_id, raw, &lookup);
        let asked = std::mem::take(&mut *lookup.asked.borrow_mut());
        let mut by_attr: HashMap<(String, String), Vec<String>> = HashMap::new();
        for (c, a, v) in asked {
            by_attr.entry((c, a)).or_default().push(v);
        }
        for ((c, a), values) in by_attr {
            for (v, owner) in store::unique_taken(conn, &c, &a, &values).await? {
                lookup.taken.insert((c.clone(), a.clone(), v), owner);
            }
        }
        let out = registry.validate_attributes(class, ci_id, raw, &lookup).map_err(prefix_attribute_errors)?;
        let unique = defs
            .iter()
            .filter(|(_, d)| d.unique)
            .filter_map(|(owner, d)| out.get(&d.key).map(|v| (owner.key.clone(), d.key.clone(), v.to_string())))
            .collect();
        Ok((out, unique))
    }

    pub async fn create_ci(&self, actor: &Principal, input: CiInput) -> Result<CiRecord> {
        may_write(actor)?;
        if let Some(p) = opt_id(&input.project_id) {
            self.require_configuration(actor, &p).await?;
        }
        let registry = self.class_registry().await?;
        let mut w = self.write(actor).await?;
        let id = keel_store::new_id();
        let (mut rec, unique) = self.check_ci(actor, &mut w.tx, &registry, Some(&id), &input).await?;
        rec.created_at = w.now;
        rec.updated_at = w.now;
        let change = store::insert_ci(&mut w.tx, &rec).await?;
        store::set_unique_values(&mut w.tx, &rec.id, &unique).await?;
        w.record(CI_ENTITY, &rec.id, AuditAction::Create, None, Some(&audit_view(&rec))).await?;
        w.commit().await?;
        self.graph_written(&[change]).await;
        Ok(rec)
    }

    /// Changes a CI's fields and attributes (not its status).
    pub async fn update_ci(&self, actor: &Principal, id: &str, input: CiInput, expected_version: Option<i64>) -> Result<CiRecord> {
        let before = self.get_ci(actor, id).await?;
        may_write(actor)?;
        if let Some(p) = opt_id(&input.project_id).filter(|p| Some(p) != before.project_id.as_ref()) {
            self.require_configuration(actor, &p).await?;
        }
        let registry = self.class_registry().await?;
        let mut w = self.write(actor).await?;
        let control = self.change_control(&mut w.tx, actor, &before, input.change_id.as_deref()).await?;
        let input = CiInput { status: Some(before.status.clone()), ..input };
        let (checked, unique) = self.check_ci(actor, &mut w.tx, &registry, Some(id), &input).await?;
        let after = CiRecord {
            id: before.id.clone(),
            last_verified_at: before.last_verified_at,
            created_at: before.created_at,
            updated_at: w.now,
            version: before.version,
            ..checked
        };
        let change = store::update_ci(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await?;
        store::set_unique_values(&mut w.tx, id, &unique).await?;
        let mut a = audit_view(&after);
        if let (Some(o), Some(c)) = (a.as_object_mut(), control) {
            o.extend(c);
        }
        w.record(CI_ENTITY, id, AuditAction::Update, Some(&audit_view(&before)), Some(&a)).await?;
        let fresh = store::get_ci(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        self.graph_written(&[change]).await;
        Ok(fresh)
    }

    /// Moves a CI along its lifecycle (planned → in build → live ⇄ maintenance → retired).
    pub async fn transition_ci(&self, actor: &Principal, id: &str, to: &str, expected_version: Option<i64>) -> Result<CiRecord> {
        let before = self.get_ci(actor, id).await?;
        may_write(actor)?;
        let to = CiStatus::parse(to.trim()).ok_or_else(|| AppError::field("status", "invalid_status", "unknown CI status"))?;
        let from = CiStatus::parse(&before.status).ok_or_else(|| AppError::Internal(format!("stored CI status {}", before.status)))?;
        from.transition(to)?;
        let mut w = self.write(actor).await?;
        let after = CiRecord { status: to.as_str().to_string(), updated_at: w.now, ..before.clone() };
        let change = store::update_ci(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await?;
        w.record(CI_ENTITY, id, AuditAction::Update, Some(&audit_view(&before)), Some(&audit_view(&after))).await?;
        let fresh = store::get_ci(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        self.graph_written(&[change]).await;
        Ok(fresh)
    }

    /// Records that the CI was checked against reality now (a verification audit).
    pub async fn verify_ci(&self, actor: &Principal, id: &str, expected_version: Option<i64>) -> Result<CiRecord> {
        let before = self.get_ci(actor, id).await?;
        may_write(actor)?;
        let status = CiStatus::parse(&before.status).unwrap_or(CiStatus::Retired);
        if !status.is_verifiable() {
            return Err(AppError::Conflict {
                code: "not_verifiable",
                field: Some("status".into()),
                message: "only CIs in build, live or in maintenance can be verified".into(),
            });
        }
        let mut w = self.write(actor).await?;
        let after = CiRecord { last_verified_at: Some(w.now), updated_at: w.now, ..before.clone() };
        let change = store::update_ci(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await?;
        w.record(CI_ENTITY, id, AuditAction::Update, Some(&audit_view(&before)), Some(&audit_view(&after))).await?;
        let fresh = store::get_ci(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        self.graph_written(&[change]).await;
        Ok(fresh)
    }

    /// Existing CIs not verified within `max_age_days`, never-verified first.
    pub async fn verification_due(&self, actor: &Principal, max_age_days: u32) -> Result<Vec<VerificationDue>> {
        staff_only(actor)?;
        let mut c = self.read().await?;
        let states: Vec<VerificationState> = store::verification_states(&mut c, &cmdb_scope(actor))
            .await?
            .into_iter()
            .filter_map(|(id, status, at)| {
                Some(VerificationState {
                    ci_id: id,
                    status: CiStatus::parse(&status)?,
                    last_verified: at.and_then(chrono::DateTime::from_timestamp_millis),
                })
            })
            .collect();
        let now = chrono::DateTime::from_timestamp_millis(self.now()).unwrap_or_default();
        let due: Vec<OverdueCi> = overdue_verifications(&states, now, max_age_days).into_iter().take(1000).collect();
        let ids: Vec<String> = due.iter().map(|d| d.ci_id.clone()).collect();
        let cis: HashMap<String, CiRecord> = store::get_cis(&mut c, &ids).await?.into_iter().map(|c| (c.id.clone(), c)).collect();
        Ok(due
            .into_iter()
            .filter_map(|d| {
                Some(VerificationDue {
                    ci: CiSummary::from(cis.get(&d.ci_id)?),
                    last_verified_at: d.last_verified.map(|t| t.timestamp_millis()),
                    days_since: d.days_since,
                })
            })
            .collect())
    }

    /// The CIs matching a filter as CSV (UTF-8 with BOM, for spreadsheets), attributes as JSON.
    pub async fn export_cis_csv(&self, actor: &Principal, q: &CiQuery) -> Result<String> {
        staff_only(actor)?;
        let registry = self.class_registry().await?;
        let f = CiFilter {
            class_keys: Self::class_filter(&registry, q.class.as_deref())?,
            status: q.status.clone(),
            project_id: q.project_id.clone(),
            q: q.q.clone(),
        };
        let mut c = self.read().await?;
        let cis = store::all_cis(&mut c, &cmdb_scope(actor), &f).await?;
        let mut out =
            String::from("\u{feff}id,class,name,status,project_id,owner_user_id,team_id,location,last_verified_at,attributes\r\n");
        for ci in cis {
            let verified = ci
                .last_verified_at
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            let cells = [
                ci.id.clone(),
                ci.class_key.clone(),
                ci.name.clone(),
                ci.status.clone(),
                ci.project_id.clone().unwrap_or_default(),
                ci.owner_user_id.clone().unwrap_or_default(),
                ci.team_id.clone().unwrap_or_default(),
                ci.location.clone().unwrap_or_default(),
                verified,
                Value::Object(ci.attributes.clone()).to_string(),
            ];
            out.push_str(&cells.iter().map(|s| csv_cell(s)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
        Ok(out)
    }

    // ---- relationships ----

    /// The relations of a CI whose other end the actor may also see.
    pub async fn ci_relations(&self, actor: &Principal, id: &str) -> Result<Vec<RelationView>> {
        self.get_ci(actor, id).await?;
        let mut c = self.read().await?;
        let rels = store::relations_of(&mut c, id).await?;
        let others: Vec<String> = rels.iter().map(|r| if r.source_id == id { r.target_id.clone() } else { r.source_id.clone() }).collect();
        let cis: HashMap<String, CiRecord> = store::get_cis(&mut c, &others).await?.into_iter().map(|c| (c.id.clone(), c)).collect();
        Ok(rels
            .into_iter()
            .filter_map(|r| {
                let outgoing = r.source_id == id;
                let other = cis.get(if outgoing { &r.target_id } else { &r.source_id })?;
                sees_ci(actor, other.project_id.as_deref()).then(|| RelationView {
                    direction: if outgoing { "outgoing" } else { "incoming" },
                    other: CiSummary::from(other),
                    relation: r,
                })
            })
            .collect())
    }

    /// Adds `source <kind> target`: no relation to itself, no duplicate, no `part_of` cycle.
    pub async fn add_relation(&self, actor: &Principal, input: RelationInput) -> Result<RelationRecord> {
        may_write(actor)?;
        let mut errs = Errors::new();
        let kind = RelationType::parse(input.kind.trim());
        if kind.is_none() {
            errs.push(FieldError::new("kind", "invalid_choice", "unknown relationship type"));
        }
        let mut ends = Vec::new();
        for (field, id) in [("source_id", input.source_id.trim()), ("target_id", input.target_id.trim())] {
            if id.is_empty() {
                errs.push(FieldError::new(field, "required", "choose a CI"));
                continue;
            }
            match self.get_ci(actor, id).await {
                Ok(ci) if ci.status == CiStatus::Retired.as_str() => {
                    errs.push(FieldError::new(field, "retired_ci", "a retired CI takes no new relations"))
                }
                Ok(ci) => ends.push(ci),
                Err(AppError::NotFound) => errs.push(FieldError::new(field, "unknown_ci", format!("there is no CI {id}"))),
                Err(e) => return Err(e),
            }
        }
        errs.finish()?;
        let (Some(kind), [source, target]) = (kind, ends.as_slice()) else {
            return Err(AppError::Internal("relation ends".into()));
        };
        let mut w = self.write(actor).await?;
        // Serialises relation writes across instances, so two concurrent additions cannot
        // close a part_of cycle together.
        kernel::next_counter(&mut w.tx, "cmdb_relation_lock").await?;
        let existing: Vec<Relation> = store::relations_to_check(&mut w.tx, &source.id, &target.id)
            .await?
            .into_iter()
            .filter_map(|r| Some(Relation::new(r.source_id, r.target_id, RelationType::parse(&r.kind)?)))
            .collect();
        let new = Relation::new(source.id.clone(), target.id.clone(), kind);
        check_new_relation(&existing, &new).map_err(|e| match e {
            keel_domain::DomainError::Invalid(list) => AppError::Validation(
                list.into_iter().map(|f| if f.field == "target" { FieldError { field: "target_id".into(), ..f } } else { f }).collect(),
            ),
            other => other.into(),
        })?;
        let stored = new.canonical();
        let rec = RelationRecord {
            id: keel_store::new_id(),
            kind: kind.as_str().into(),
            source_id: stored.source,
            target_id: stored.target,
            created_by: actor.user_id.clone(),
            created_at: w.now,
        };
        let change = store::insert_relation(&mut w.tx, &rec).await?;
        let view = json!({ "kind": rec.kind, "source_id": rec.source_id, "target_id": rec.target_id });
        w.record(RELATION_ENTITY, &rec.id, AuditAction::Create, None, Some(&view)).await?;
        self.record_relation_on_cis(&mut w, &rec, source, target, "relation_added").await?;
        w.commit().await?;
        self.graph_written(&[change]).await;
        Ok(rec)
    }

    async fn record_relation_on_cis(
        &self,
        w: &mut crate::Writer,
        rec: &RelationRecord,
        a: &CiRecord,
        b: &CiRecord,
        field: &str,
    ) -> Result<()> {
        // Ids, not names: the history names each end as its reader may see it.
        let relation = json!({ "source_id": rec.source_id, "kind": rec.kind, "target_id": rec.target_id });
        for ci in [a, b] {
            w.record(CI_ENTITY, &ci.id, AuditAction::Update, Some(&json!({})), Some(&json!({ field: relation }))).await?;
        }
        Ok(())
    }

    pub async fn remove_relation(&self, actor: &Principal, relation_id: &str) -> Result<()> {
        may_write(actor)?;
        let rec = {
            let mut c = self.read().await?;
            store::get_relation(&mut c, relation_id).await?.ok_or(AppError::NotFound)?
        };
        let source = self.get_ci(actor, &rec.source_id).await?;
        let target = self.get_ci(actor, &rec.target_id).await?;
        let mut w = self.write(actor).await?;
        let change = store::delete_relation(&mut w.tx, relation_id, w.now).await?;
        let view = json!({ "kind": rec.kind, "source_id": rec.source_id, "target_id": rec.target_id });
        w.record(RELATION_ENTITY, &rec.id, AuditAction::Delete, Some(&view), None).await?;
        self.record_relation_on_cis(&mut w, &rec, &source, &target, "relation_removed").await?;
        w.commit().await?;
        self.graph_written(&[change]).await;
        Ok(())
    }

    // ---- impact analysis ----

    /// What a failure of the CI impacts (downstream) or what it needs (upstream), through the
    /// CIs the actor may see, with depth and path, and the services, projects and customers
    /// affected. Retired CIs take no part.
    pub async fn impact(&self, actor: &Principal, id: &str, direction: Direction, max_depth: Option<u32>) -> Result<ImpactResult> {
        let origin = self.get_ci(actor, id).await?;
        let registry = self.class_registry().await?;
        let g = self.cmdb_graph().await?;
        let mut c = self.read().await?;
        let visible = graph_visibility(&mut c, actor, &g).await?;
        let mut result = ImpactResult {
            origin: CiSummary::from(&origin),
            direction,
            max_depth,
            reached: vec![],
            services: vec![],
            projects: vec![],
            customers: vec![],
        };
        if !g.graph.contains(id) {
            return Ok(result);
        }
        let t = g.graph.traverse_where(&[id], direction, max_depth, |n| g.ci(n).project.is_none_or(|p| visible[p as usize]))?;
        let summary = |i: &str| {
            g.graph.index_of(i).map(|n| {
                let ci = g.ci(n);
                CiSummary {
                    id: ci.id.clone(),
                    name: ci.name.clone(),
                    class_key: ci.class_key.clone(),
                    status: ci.status.clone(),
                    project_id: g.project_of(ci).map(str::to_string),
                }
            })
        };
        result.reached = t
            .reached()
            .filter_map(|r| {
                let path = t
                    .path_to(r.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| ImpactStep { source_id: s.source.to_string(), target_id: s.target.to_string(), kind: s.kind })
                    .collect();
                Some(ImpactEntry { ci: summary(r.id)?, depth: r.depth, path })
            })
            .collect();
        let Affected { services, projects, .. } = t.affected(|class| registry.is_a(class, "service"));
        result.services = services.iter().filter_map(|i| summary(i)).collect();
        let mut customers = std::collections::BTreeMap::new();
        for (id, code, name, org_id, org_name) in store::projects_with_customers(&mut c, &projects).await? {
            result.projects.push(ProjectRef { id, code, name });
            customers.insert(org_id, org_name);
        }
        result.projects.sort_by(|a, b| a.id.cmp(&b.id));
        result.customers = customers.into_iter().map(|(id, name)| CustomerRef { id, name }).collect();
        Ok(result)
    }

    // ---- baselines ----

    async fn current_snapshot(
        &self,
        conn: &mut sqlx::AnyConnection,
        project_id: Option<&str>,
        ci_ids: Option<&[String]>,
    ) -> Result<Snapshot> {
        let cis = match (ci_ids, project_id) {
            (Some(ids), _) => store::get_cis(conn, ids).await?,
            (None, Some(p)) => {
                store::all_cis(conn, &CmdbScope::default(), &CiFilter { project_id: Some(p.into()), ..Default::default() }).await?
            }
            (None, None) => store::all_cis(conn, &CmdbScope::default(), &CiFilter::default()).await?,
        };
        let ids: Vec<String> = cis.iter().map(|c| c.id.clone()).collect();
        let relations = store::relations_touching(conn, &ids)
            .await?
            .into_iter()
            .filter_map(|r| Some(Relation::new(r.source_id, r.target_id, RelationType::parse(&r.kind)?)))
            .collect();
        Ok(Snapshot::new(cis.iter().filter_map(snapshot_of).collect(), relations)?)
    }

    /// Captures the current configuration of a project (or the whole CMDB) as a baseline.
    pub async fn capture_baseline(&self, actor: &Principal, input: BaselineInput) -> Result<BaselineRecord> {
        may_write(actor)?;
        let project_id = opt_id(&input.project_id);
        match &project_id {
            Some(p) => {
                if !sees_ci(actor, Some(p)) {
                    return Err(AppError::field("project_id", "unknown_reference", "no such service project"));
                }
                self.require_configuration(actor, p).await?;
            }
            None if !actor.sees_all_projects() => {
                return Err(AppError::field("project_id", "required", "choose the service project to baseline"));
            }
            None => {}
        }
        let ci_ids = input.ci_ids.clone().filter(|v| !v.is_empty());
        if let Some(ids) = &ci_ids {
            for id in ids {
                let ci =
                    self.get_ci(actor, id).await.map_err(|_| AppError::field("ci_ids", "unknown_ci", format!("there is no CI {id}")))?;
                if project_id.is_some() && ci.project_id != project_id {
                    return Err(AppError::field("ci_ids", "outside_scope", format!("CI {id} is not in the project")));
                }
            }
        }
        let mut w = self.write(actor).await?;
        let snapshot = self.current_snapshot(&mut w.tx, project_id.as_deref(), ci_ids.as_deref()).await?;
        let now = chrono::DateTime::from_timestamp_millis(w.now).unwrap_or_default();
        let b = keel_domain::cmdb::Baseline::capture(&input.name, input.description.as_deref(), now, &actor.user_id, snapshot)?;
        let rec = BaselineRecord {
            id: keel_store::new_id(),
            name: b.name.clone(),
            description: b.description.clone(),
            project_id,
            ci_ids,
            created_by: actor.user_id.clone(),
            created_at: w.now,
            ci_count: b.snapshot.cis.len() as i64,
            snapshot: serde_json::to_string(&b.snapshot).map_err(|e| AppError::Internal(e.to_string()))?,
        };
        store::insert_baseline(&mut w.tx, &rec).await?;
        let view = json!({ "name": rec.name, "description": rec.description, "project_id": rec.project_id, "ci_count": rec.ci_count });
        w.record(BASELINE_ENTITY, &rec.id, AuditAction::Create, None, Some(&view)).await?;
        w.commit().await?;
        Ok(rec)
    }

    fn sees_baseline(actor: &Principal, b: &BaselineRecord) -> bool {
        match &b.project_id {
            Some(p) => sees_ci(actor, Some(p)),
            None => actor.is_staff() && actor.sees_all_projects(),
        }
    }

    pub async fn get_baseline(&self, actor: &Principal, id: &str) -> Result<BaselineRecord> {
        let mut c = self.read().await?;
        let b = store::get_baseline(&mut c, id).await?.ok_or(AppError::NotFound)?;
        if !Self::sees_baseline(actor, &b) {
            return Err(AppError::NotFound);
        }
        Ok(b)
    }

    pub async fn list_baselines(&self, actor: &Principal) -> Result<Vec<BaselineRecord>> {
        staff_only(actor)?;
        let mut c = self.read().await?;
        Ok(if actor.sees_all_projects() {
            store::list_baselines(&mut c, None, true).await?
        } else {
            store::list_baselines(&mut c, Some(&actor.project_ids), false).await?
        })
    }

    /// What changed since the baseline: CIs added, removed and changed (status, class,
    /// attributes, and the core fields as `@name`, `@owner_user_id`…), relations added and removed.
    pub async fn baseline_diff(&self, actor: &Principal, id: &str) -> Result<BaselineDiff> {
        let b = self.get_baseline(actor, id).await?;
        let then: Snapshot = serde_json::from_str(&b.snapshot).map_err(|e| AppError::Internal(e.to_string()))?;
        let mut c = self.read().await?;
        let now = self.current_snapshot(&mut c, b.project_id.as_deref(), b.ci_ids.as_deref()).await?;
        Ok(BaselineDiff { diff: keel_domain::cmdb::baseline::diff(&then, &now), baseline: b })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
    }

    fn entry(id: &str, ci: &str, seq: i64, changes: Value) -> HistoryEntry {
        crate::history_names::tests::entry_of(id, CI_ENTITY, ci, seq, changes)
    }

    #[test]
    fn attribute_fields_mean_what_the_class_of_the_time_defines() {
        use crate::history_names::{Side, references_of};
        let h = [
            entry(
                "e1",
                "vm",
                1,
                json!([{"field": "class_key", "new": "virtual_machine"}, {"field": "attributes.host", "new": "a"},
                    {"field": "attributes.hostname", "new": "vm"}]),
            ),
            entry("e2", "vm", 2, json!([{"field": "attributes.host", "old": "a", "new": "b"}])),
            // no longer a virtual machine: a server has no host
            entry(
                "e3",
                "vm",
                3,
                json!([{"field": "class_key", "old": "virtual_machine", "new": "server"}, {"field": "attributes.host", "old": "b"}]),
            ),
            // a CI whose entries do not say its class
            entry("e4", "other", 7, json!([{"field": "attributes.location", "old": "l1", "new": "l2"}])),
        ];
        let registry = ClassRegistry::shipped();
        let now = HashMap::from([("other".to_string(), "network_device".to_string())]);
        let fields = attribute_fields(&registry, &h, &now);
        let kind = |i: usize, field: &str, side| fields.kind(&h[i], field, side);
        assert_eq!(kind(0, "attributes.host", Side::New), Some(RefKind::Ci));
        assert_eq!(fields.label(&h[0], "attributes.host"), Some(("Host", "宿主机")));
        assert_eq!(kind(0, "attributes.hostname", Side::New), None);
        assert_eq!(fields.label(&h[0], "attributes.hostname"), Some(("Host name", "主机名")), "inherited from server");
        assert_eq!((kind(1, "attributes.host", Side::Old), kind(1, "attributes.host", Side::New)), (Some(RefKind::Ci), Some(RefKind::Ci)));
        assert_eq!((kind(2, "attributes.host", Side::Old), kind(2, "attributes.host", Side::New)), (Some(RefKind::Ci), None));
        assert_eq!(fields.label(&h[2], "attributes.host"), Some(("Host", "宿主机")));
        assert_eq!(kind(3, "attributes.location", Side::Old), Some(RefKind::Ci));
        assert_eq!(fields.label(&h[3], "attributes.location"), Some(("Location", "位置")));
        let refs = references_of(&h, &fields);
        let ids = |k| refs.get(&k).map(|s| s.iter().map(String::as_str).collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(ids(RefKind::Ci), ["a", "b", "l1", "l2"]);
        assert_eq!(ids(RefKind::CiClass), ["server", "virtual_machine"]);
        assert_eq!(refs.len(), 2, "{refs:?}");

        let unknown = attribute_fields(&registry, &h[3..], &HashMap::new());
        assert_eq!((unknown.kind(&h[3], "attributes.location", Side::Old), unknown.label(&h[3], "attributes.location")), (None, None));
    }
}

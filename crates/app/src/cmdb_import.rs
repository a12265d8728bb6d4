//! Configuration management (配置管理): importing CIs and their relationships from CSV files with
//! a TOML mapping, and from iTop's XML data files.
//!
//! Both end in the same check: every CI is validated like one entered by hand (class
//! attributes, unique values, project scope) and every relation like one added by hand (known
//! ends, no duplicate, no `part_of` cycle). A dry run lists every bad row with its line and
//! reason and writes nothing; an import writes everything in one transaction, with audit
//! entries, or nothing. Each imported CI keeps its reference in the source
//! (`ci_external_refs`), so relations in later files can name it and it is never imported twice.

use crate::cmdb::{CI_ENTITY, CiInput, RELATION_ENTITY, may_write};
use crate::import::{BadRow, Headers, ImportReport, Mapping, Reader, Row, SourceFormat, TicketRow, bad, read_rows};
use crate::{App, AppError, Principal, Result};
use keel_domain::audit::AuditAction;
use keel_domain::cmdb::{Relation, RelationType, check_new_relation};
use keel_domain::process::Process;
use keel_store::cmdb::{self as store, CiRecord, RelationRecord};
use keel_store::{imports, kernel};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// The CI fields a CSV mapping may fill (attributes go under `[attributes]`).
pub const CI_FIELDS: [&str; 9] = ["external_ref", "class", "name", "status", "project", "location", "description", "owner_email", "team"];

/// How a CSV file maps onto CIs and relations; read from TOML (see `docs/import/`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CiMapping {
    pub source: SourceFormat,
    /// Field → column name or template (`"{site}-{rack}"`); `external_ref`, `class` and `name`
    /// are required. `project` is a project code, `team` a resolver group's name.
    pub fields: BTreeMap<String, String>,
    /// Attribute key → column or template.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Field or attribute key → (source value → Keel value); `"*"` catches every other value.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Field or attribute key → value used when the source has none.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// Relationship type → column listing the external references of the targets, separated
    /// by `;` ("this CI runs_on those").
    #[serde(default)]
    pub relations: BTreeMap<String, String>,
}

const ATTR: &str = "attributes.";
const REL: &str = "relations.";

impl CiMapping {
    pub fn from_toml(text: &str) -> Result<CiMapping> {
        let m: CiMapping = toml::from_str(text).map_err(|e| AppError::field("mapping", "invalid_mapping", e.to_string()))?;
        if let Some(f) = m.fields.keys().find(|f| !CI_FIELDS.contains(&f.as_str())) {
            return Err(AppError::field("mapping", "invalid_mapping", format!("unknown field '{f}' (known: {})", CI_FIELDS.join(", "))));
        }
        for required in ["external_ref", "class", "name"] {
            if !m.fields.contains_key(required) {
                return Err(AppError::field("mapping", "invalid_mapping", format!("[fields] must map '{required}'")));
            }
        }
        if let Some(k) = m.relations.keys().find(|k| RelationType::parse(k).is_none()) {
            return Err(AppError::field("mapping", "invalid_mapping", format!("unknown relationship type '{k}' in [relations]")));
        }
        if m.source.delimiter.len() != 1 {
            return Err(AppError::field("mapping", "invalid_mapping", "the delimiter must be one ASCII character"));
        }
        Ok(m)
    }

    /// The ticket importer's reader takes one flat field map: attributes and relations are
    /// given prefixed keys.
    fn flat(&self) -> Mapping {
        let mut fields = self.fields.clone();
        let prefix = |key: &str| if CI_FIELDS.contains(&key) { key.to_string() } else { format!("{ATTR}{key}") };
        fields.extend(self.attributes.iter().map(|(k, v)| (format!("{ATTR}{k}"), v.clone())));
        fields.extend(self.relations.iter().map(|(k, v)| (format!("{REL}{k}"), v.clone())));
        Mapping {
            source: self.source.clone(),
            fields,
            values: self.values.iter().map(|(k, v)| (prefix(k), v.clone())).collect(),
            defaults: self.defaults.iter().map(|(k, v)| (prefix(k), v.clone())).collect(),
        }
    }
}

/// A CI read from a file, before the checks.
#[derive(Debug, Clone)]
pub struct SourceCi {
    pub line: u64,
    pub external_ref: String,
    pub class_key: String,
    pub name: String,
    pub status: Option<String>,
    pub project: Option<String>,
    pub location: Option<String>,
    pub description: Option<String>,
    pub owner_email: Option<String>,
    pub team: Option<String>,
    pub attributes: Map<String, Value>,
}

/// `source <kind> target`, ends named by external reference.
#[derive(Debug, Clone)]
pub struct SourceRelation {
    pub line: u64,
    pub source_ref: String,
    pub kind: String,
    pub target_ref: String,
}

/// What a CI import found (dry run) or did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CiImportReport {
    pub cis: u64,
    pub relations: u64,
    pub bad_rows: Vec<BadRow>,
    /// CIs and relations written: 0 on a dry run or when any row is bad.
    pub imported_cis: u64,
    pub imported_relations: u64,
    /// iTop classes the import does not map (persons, organisations…), with their counts.
    pub skipped: BTreeMap<String, u64>,
}

impl CiImportReport {
    pub fn ok(&self) -> bool {
        self.bad_rows.is_empty()
    }
}

/// Reads a CSV file through a mapping into CIs and relations; unreadable rows are bad rows.
pub fn read_csv(csv: &[u8], mapping: &CiMapping) -> (Vec<SourceCi>, Vec<SourceRelation>, Vec<BadRow>) {
    let flat = mapping.flat();
    let mut dummy = ImportReport::default();
    let (headers, rows, mut bad_rows): (Headers, Vec<TicketRow>, Vec<BadRow>) = match read_rows(csv, &flat, &mut dummy, &|_| {}) {
        Ok(r) => r,
        Err(e) => return (vec![], vec![], vec![bad(1, None, "file", e.to_string())]),
    };
    let reader = Reader { m: &flat, tz: chrono_tz::UTC };
    let mut cis = Vec::new();
    let mut relations = Vec::new();
    for (cells, line) in rows {
        let row = Row { line, cells, headers: &headers };
        let mut row_bad = Vec::new();
        let mut get = |field: &str| match reader.value(&row, field) {
            Ok(v) => v,
            Err(reason) => {
                row_bad.push((field.to_string(), reason));
                None
            }
        };
        let external_ref = get("external_ref");
        let class_key = get("class");
        let name = get("name");
        let mut ci = SourceCi {
            line,
            external_ref: external_ref.clone().unwrap_or_default(),
            class_key: class_key.unwrap_or_default(),
            name: name.unwrap_or_default(),
            status: get("status"),
            project: get("project"),
            location: get("location"),
            description: get("description"),
            owner_email: get("owner_email"),
            team: get("team"),
            attributes: Map::new(),
        };
        for key in mapping.attributes.keys() {
            if let Some(v) = get(&format!("{ATTR}{key}")) {
                ci.attributes.insert(key.clone(), Value::String(v));
            }
        }
        for kind in mapping.relations.keys() {
            for target in get(&format!("{REL}{kind}")).iter().flat_map(|v| v.split(';')).map(str::trim).filter(|t| !t.is_empty()) {
                relations.push(SourceRelation {
                    line,
                    source_ref: ci.external_ref.clone(),
                    kind: kind.clone(),
                    target_ref: target.to_string(),
                });
            }
        }
        if external_ref.is_none() {
            row_bad.push(("external_ref".into(), "no external reference".into()));
        }
        for (field, reason) in row_bad {
            bad_rows.push(bad(line, external_ref.as_deref(), &field, reason));
        }
        cis.push(ci);
    }
    (cis, relations, bad_rows)
}

// ---- iTop ----

/// iTop's classes as Keel classes. References to functional CIs are looked up in this order
/// (the sample data sets of different iTop modules reuse ids).
const ITOP_CLASSES: [(&str, &str); 13] = [
    ("Server", "server"),
    ("VirtualMachine", "virtual_machine"),
    ("Hypervisor", "server"),
    ("Farm", "server"),
    ("NetworkDevice", "network_device"),
    ("DBServer", "database"),
    ("DatabaseSchema", "database"),
    ("WebServer", "application"),
    ("WebApplication", "application"),
    ("ApplicationSolution", "application"),
    ("Location", "location"),
    ("Rack", "location"),
    ("Service", "service"),
];

/// `(field, relationship, candidate classes of the target)`: the row's CI `<kind>` the target.
const ITOP_LINKS: [(&str, &str, &[&str]); 9] = [
    ("location_id", "hosted_in", &["Location"]),
    ("rack_id", "hosted_in", &["Rack"]),
    ("system_id", "runs_on", &["Server", "VirtualMachine", "Hypervisor", "Farm"]),
    ("server_id", "runs_on", &["Server"]),
    ("virtualhost_id", "runs_on", &["Farm", "Hypervisor", "Server"]),
    ("farm_id", "part_of", &["Farm"]),
    ("dbserver_id", "runs_on", &["DBServer"]),
    ("webserver_id", "runs_on", &["WebServer"]),
    ("applicationsolution_id", "part_of", &["ApplicationSolution"]),
];

fn functional() -> Vec<&'static str> {
    ITOP_CLASSES.iter().map(|(c, _)| *c).filter(|c| !matches!(*c, "Location" | "Rack" | "Service")).collect()
}

fn itop_status(s: Option<&str>) -> Option<String> {
    let keel = match s? {
        "production" | "active" => "live",
        "implementation" => "in_build",
        "stock" => "planned",
        "obsolete" | "inactive" => "retired",
        _ => return None,
    };
    Some(keel.to_string())
}

/// The line of a node in the file.
fn line_of(doc: &roxmltree::Document, node: roxmltree::Node) -> u64 {
    u64::from(doc.text_pos_at(node.range().start).row)
}

/// Reads iTop XML data files (`<Set>` of objects, as in iTop's `data.sample.*.xml`). Returns
/// the CIs, the relations (targets as `Class:id` candidates, resolved later) and bad rows;
/// classes with no Keel counterpart are counted in `skipped`.
pub fn read_itop(files: &[(String, String)], skipped: &mut BTreeMap<String, u64>) -> (Vec<SourceCi>, Vec<ItopLink>, Vec<BadRow>) {
    let mut cis = Vec::new();
    let mut links = Vec::new();
    let mut bad_rows = Vec::new();
    for (file, text) in files {
        let doc = match roxmltree::Document::parse(text) {
            Ok(d) => d,
            Err(e) => {
                bad_rows.push(bad(u64::from(e.pos().row), None, "file", format!("{file}: not XML: {e}")));
                continue;
            }
        };
        for obj in doc.root_element().children().filter(|n| n.is_element()) {
            let class = obj.tag_name().name();
            let id = obj.attribute("id").unwrap_or_default();
            let line = line_of(&doc, obj);
            let field = |name: &str| {
                obj.children()
                    .find(|c| c.is_element() && c.tag_name().name() == name)
                    .and_then(|c| c.text())
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            let xref = format!("{class}:{id}");
            if class == "lnkApplicationSolutionToFunctionalCI" {
                if let (Some(s), Some(t)) = (field("functionalci_id"), field("applicationsolution_id")) {
                    links.push(ItopLink {
                        line,
                        source: Candidates::of(&functional(), &s),
                        kind: "part_of",
                        target: Candidates::of(&["ApplicationSolution"], &t),
                    });
                }
                continue;
            }
            let Some((_, keel_class)) = ITOP_CLASSES.iter().find(|(c, _)| *c == class) else {
                *skipped.entry(class.to_string()).or_default() += 1;
                continue;
            };
            let name = field("name").unwrap_or_default();
            let mut attributes = Map::new();
            let mut put = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    attributes.insert(k.into(), Value::String(v));
                }
            };
            match *keel_class {
                "server" | "virtual_machine" => {
                    put("hostname", Some(name.clone()));
                    put("serial_number", field("serialnumber"));
                    put("ip_address", field("managementip"));
                    put("warranty_end", field("end_of_warranty"));
                }
                "network_device" => {
                    put("hostname", Some(name.clone()));
                    let lower = name.to_lowercase();
                    let kind = ["router", "switch", "firewall"].into_iter().find(|k| lower.contains(k)).unwrap_or("other");
                    put("device_type", Some(kind.into()));
                    put("serial_number", field("serialnumber"));
                    put("management_ip", field("managementip"));
                }
                "database" => put("engine", Some("other".into())),
                "application" => {
                    put("url", field("url"));
                    put("criticality", field("business_criticity"));
                }
                "location" => {
                    put("location_type", Some(if class == "Rack" { "rack" } else { "office" }.into()));
                    put("address", field("address"));
                    put("city", field("city"));
                }
                "service" => {
                    put("service_code", Some(format!("ITOP-{id}")));
                    put("criticality", Some("medium".into()));
                }
                _ => {}
            }
            for (f, kind, targets) in ITOP_LINKS {
                if let Some(t) = field(f).filter(|t| t != "0") {
                    links.push(ItopLink { line, source: Candidates::of(&[class], id), kind, target: Candidates::of(targets, &t) });
                }
            }
            cis.push(SourceCi {
                line,
                external_ref: xref,
                class_key: keel_class.to_string(),
                name,
                status: itop_status(field("status").as_deref()),
                project: None,
                location: None,
                description: field("description"),
                owner_email: None,
                team: None,
                attributes,
            });
        }
    }
    (cis, links, bad_rows)
}

/// An iTop reference: the id and the classes it may belong to, in order of preference.
#[derive(Debug, Clone)]
pub struct Candidates(Vec<String>);

impl Candidates {
    fn of(classes: &[&str], id: &str) -> Self {
        Candidates(classes.iter().map(|c| format!("{c}:{id}")).collect())
    }
}

#[derive(Debug, Clone)]
pub struct ItopLink {
    pub line: u64,
    pub source: Candidates,
    pub kind: &'static str,
    pub target: Candidates,
}

/// Resolves iTop links to the external references known (in the files or imported earlier);
/// a link to an object outside both is a bad row.
fn resolve_links(links: Vec<ItopLink>, known: &dyn Fn(&str) -> bool) -> (Vec<SourceRelation>, Vec<BadRow>) {
    let mut out = Vec::new();
    let mut bad_rows = Vec::new();
    for l in links {
        let pick = |c: &Candidates| c.0.iter().find(|r| known(r)).cloned();
        match (pick(&l.source), pick(&l.target)) {
            (Some(s), Some(t)) => out.push(SourceRelation { line: l.line, source_ref: s, kind: l.kind.into(), target_ref: t }),
            (s, _) => {
                let missing = if s.is_none() { &l.source } else { &l.target };
                bad_rows.push(bad(
                    l.line,
                    None,
                    "relation",
                    format!("{} is in none of the files nor imported before", missing.0.join(" or ")),
                ));
            }
        }
    }
    (out, bad_rows)
}

/// A checked CI, ready to write.
struct Ready {
    line: u64,
    external_ref: String,
    record: CiRecord,
    unique: Vec<(String, String, String)>,
}

impl App {
    /// Imports CIs and relations from a CSV file with a mapping (see [`CiMapping`]).
    pub async fn import_cis_csv(&self, actor: &Principal, csv: &[u8], mapping: &CiMapping, dry_run: bool) -> Result<CiImportReport> {
        may_write(actor)?;
        let (cis, relations, bad_rows) = read_csv(csv, mapping);
        self.import_cis(actor, &mapping.source.name, cis, relations, bad_rows, BTreeMap::new(), dry_run).await
    }

    /// Imports iTop XML data files `(name, text)` in one go: locations, servers, virtual
    /// machines, hypervisors and farms, network devices, databases, web servers and
    /// applications, application solutions, services, and the links between them.
    pub async fn import_itop(&self, actor: &Principal, files: &[(String, String)], dry_run: bool) -> Result<CiImportReport> {
        may_write(actor)?;
        let mut skipped = BTreeMap::new();
        let (cis, links, mut bad_rows) = read_itop(files, &mut skipped);
        let earlier = {
            let mut c = self.read().await?;
            store::ci_external_refs(&mut c, "itop").await?
        };
        let in_files: std::collections::HashSet<&str> = cis.iter().map(|c| c.external_ref.as_str()).collect();
        let (relations, more_bad) = resolve_links(links, &|r| in_files.contains(r) || earlier.contains_key(r));
        bad_rows.extend(more_bad);
        self.import_cis(actor, "itop", cis, relations, bad_rows, skipped, dry_run).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn import_cis(
        &self,
        actor: &Principal,
        source: &str,
        cis: Vec<SourceCi>,
        relations: Vec<SourceRelation>,
        mut bad_rows: Vec<BadRow>,
        skipped: BTreeMap<String, u64>,
        dry_run: bool,
    ) -> Result<CiImportReport> {
        let mut report = CiImportReport { cis: cis.len() as u64, relations: relations.len() as u64, skipped, ..Default::default() };
        let registry = self.class_registry().await?;
        let mut c = self.read().await?;
        let earlier = store::ci_external_refs(&mut c, source).await?;
        let teams = imports::active_teams_by_name(&mut c).await?;
        let mut projects: HashMap<String, Option<String>> = HashMap::new();
        let mut owners: HashMap<String, Option<String>> = HashMap::new();
        // external ref → CI id (new ones get their id now, so relations can name them)
        let mut ids: HashMap<String, String> = earlier.clone();
        let mut ready = Vec::new();
        // Rows the reader refused already are not validated again (one reason per mistake).
        let unreadable: std::collections::HashSet<u64> = bad_rows.iter().map(|b| b.line).collect();
        for ci in cis {
            let xref = ci.external_ref.clone();
            if xref.is_empty() {
                continue;
            }
            if earlier.contains_key(&xref) {
                bad_rows.push(bad(ci.line, Some(&xref), "external_ref", format!("already imported from {source}")));
                continue;
            }
            if ids.contains_key(&xref) {
                bad_rows.push(bad(ci.line, Some(&xref), "external_ref", "appears twice in the file"));
                continue;
            }
            let id = keel_store::new_id();
            ids.insert(xref.clone(), id.clone());
            if unreadable.contains(&ci.line) {
                continue;
            }
            let project_id = match &ci.project {
                None => None,
                Some(code) => {
                    if !projects.contains_key(code) {
                        let id: Option<String> = sqlx::query_scalar("SELECT id FROM projects WHERE code = $1 OR id = $1")
                            .bind(code)
                            .fetch_optional(&mut *c)
                            .await
                            .map_err(keel_store::StoreError::from)?;
                        projects.insert(code.clone(), id);
                    }
                    match projects.get(code).cloned().flatten() {
                        Some(p) => {
                            match self.require_process(&p, Process::Configuration).await {
                                Err(AppError::ProcessDisabled(_)) => {
                                    bad_rows.push(bad(
                                        ci.line,
                                        Some(&xref),
                                        "project",
                                        format!("{code} does not use configuration management"),
                                    ));
                                    continue;
                                }
                                Err(AppError::NotFound) | Ok(()) => {}
                                Err(e) => return Err(e),
                            }
                            Some(p)
                        }
                        None => {
                            bad_rows.push(bad(ci.line, Some(&xref), "project", format!("there is no service project {code}")));
                            continue;
                        }
                    }
                }
            };
            let owner_user_id = match &ci.owner_email {
                None => None,
                Some(email) => {
                    if !owners.contains_key(email) {
                        let u = keel_store::accounts::get_user_by_email(&mut c, email).await?.filter(|u| u.kind == "staff").map(|u| u.id);
                        owners.insert(email.clone(), u);
                    }
                    match owners.get(email).cloned().flatten() {
                        Some(u) => Some(u),
                        None => {
                            bad_rows.push(bad(ci.line, Some(&xref), "owner_email", format!("no staff account {email}")));
                            continue;
                        }
                    }
                }
            };
            let team_id = match &ci.team {
                None => None,
                Some(t) => match teams.get(t) {
                    Some(id) => Some(id.clone()),
                    None => {
                        bad_rows.push(bad(ci.line, Some(&xref), "team", format!("no active resolver group named {t}")));
                        continue;
                    }
                },
            };
            let input = CiInput {
                class_key: ci.class_key.clone(),
                name: ci.name.clone(),
                status: ci.status.clone(),
                owner_user_id,
                team_id,
                project_id,
                location: ci.location.clone(),
                description: ci.description.clone(),
                attributes: Value::Object(ci.attributes.clone()),
                change_id: None,
            };
            match self.check_ci(actor, &mut c, &registry, Some(&id), &input).await {
                Ok((record, unique)) => ready.push(Ready { line: ci.line, external_ref: xref, record: CiRecord { id, ..record }, unique }),
                Err(AppError::Validation(list)) => {
                    for f in list {
                        bad_rows.push(bad(ci.line, Some(&xref), &f.field, f.message));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // Unique attribute values must also differ within the file.
        let mut seen: HashMap<&(String, String, String), &str> = HashMap::new();
        for r in &ready {
            for u in &r.unique {
                if let Some(first) = seen.insert(u, &r.external_ref) {
                    bad_rows.push(bad(r.line, Some(&r.external_ref), &format!("attributes.{}", u.1), format!("the same value as {first}")));
                }
            }
        }

        let mut part_of: Vec<Relation> =
            store::part_of_pairs(&mut c).await?.into_iter().map(|(s, t)| Relation::new(s, t, RelationType::PartOf)).collect();
        let mut new_relations: Vec<Relation> = Vec::new();
        for r in &relations {
            let (Some(s), Some(t)) = (ids.get(&r.source_ref), ids.get(&r.target_ref)) else {
                let missing = if ids.contains_key(&r.source_ref) { &r.target_ref } else { &r.source_ref };
                bad_rows.push(bad(
                    r.line,
                    Some(&r.source_ref),
                    "relation",
                    format!("no CI {missing} in the file or imported from {source}"),
                ));
                continue;
            };
            let Some(kind) = RelationType::parse(&r.kind) else {
                bad_rows.push(bad(r.line, Some(&r.source_ref), "relation", format!("unknown relationship type {}", r.kind)));
                continue;
            };
            let rel = Relation::new(s.clone(), t.clone(), kind);
            let existing: Vec<Relation> =
                part_of.iter().chain(new_relations.iter().filter(|n| n.kind != RelationType::PartOf)).cloned().collect();
            match check_new_relation(&existing, &rel) {
                Ok(()) => {
                    if kind == RelationType::PartOf {
                        part_of.push(rel.clone());
                    }
                    new_relations.push(rel.canonical());
                }
                Err(keel_domain::DomainError::Invalid(list)) => {
                    for f in list {
                        bad_rows.push(bad(
                            r.line,
                            Some(&r.source_ref),
                            "relation",
                            format!("{} {} {}: {}", r.source_ref, r.kind, r.target_ref, f.message),
                        ));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        drop(c);
        bad_rows.sort_by_key(|b| b.line);
        report.bad_rows = bad_rows;
        if dry_run || !report.ok() {
            return Ok(report);
        }

        let mut w = self.write(actor).await?;
        kernel::next_counter(&mut w.tx, "cmdb_relation_lock").await?;
        let mut changes = Vec::with_capacity(ready.len() + new_relations.len());
        for r in &ready {
            let rec = CiRecord { created_at: w.now, updated_at: w.now, ..r.record.clone() };
            changes.push(store::insert_ci(&mut w.tx, &rec).await?);
            store::set_unique_values(&mut w.tx, &rec.id, &r.unique).await?;
            store::insert_ci_external_ref(&mut w.tx, &rec.id, source, &r.external_ref, w.now).await?;
            let mut view = crate::cmdb::audit_view(&rec);
            if let Value::Object(m) = &mut view {
                m.insert("imported_from".into(), json!(format!("{source} {}", r.external_ref)));
            }
            w.record(CI_ENTITY, &rec.id, AuditAction::Create, None, Some(&view)).await?;
        }
        for rel in &new_relations {
            let rec = RelationRecord {
                id: keel_store::new_id(),
                kind: rel.kind.as_str().into(),
                source_id: rel.source.clone(),
                target_id: rel.target.clone(),
                created_by: actor.user_id.clone(),
                created_at: w.now,
            };
            changes.push(store::insert_relation(&mut w.tx, &rec).await?);
            let view = json!({ "kind": rec.kind, "source_id": rec.source_id, "target_id": rec.target_id, "imported_from": source });
            w.record(RELATION_ENTITY, &rec.id, AuditAction::Create, None, Some(&view)).await?;
        }
        w.commit().await?;
        self.graph_written(&changes).await;
        report.imported_cis = ready.len() as u64;
        report.imported_relations = new_relations.len() as u64;
        Ok(report)
    }
}

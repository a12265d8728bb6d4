//! Service desk and every process (ISO/IEC 20000-1 8.6, 8.2, 8.7.3): full-text search over the
//! records of all processes. The index is derived data under the data directory, fed from the
//! outbox written in each record's transaction; the follower position is committed inside the
//! index, so index and position never disagree. Every hit is re-checked against the asker.
//!
//! `SOURCES` is the one place where each process declares what it indexes.

use crate::{App, AppError, Principal, Result};
use keel_domain::identity::AccountKind;
use keel_search::{Access, Change, Document, Permission, SearchIndex, SearchRequest};
use keel_store::AnyConnection;
use keel_store::search::{self as store, Indexed, OutboxRow};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Outbox rows may commit after rows with a later `created_at`: each step re-reads this
/// window behind the position and applies the rows it has not seen yet.
pub const LATE_COMMIT_WINDOW_MS: i64 = 30_000;
const OUTBOX_PAGE: i64 = 500;
const MAX_ROWS_PER_COMMIT: usize = 2_000;
/// Records loaded from the database per batch (a ticket batch is four queries).
const LOAD_BATCH: usize = 500;
/// Under load the follower commits at most about this often: a commit rewrites the index's
/// metadata with the position, applies deletions to every segment and reloads the reader.
const FOLLOW_COMMIT_INTERVAL: Duration = Duration::from_secs(1);
const FOLLOW_IDLE_POLL: Duration = Duration::from_millis(200);
const FOLLOW_RETRY: Duration = Duration::from_secs(2);

/// The documents of the given ids that still exist (a missing id is a deleted record).
type Loaded<'c> = Pin<Box<dyn Future<Output = keel_store::Result<Vec<Document>>> + Send + 'c>>;
type Loader = for<'c> fn(&'c mut AnyConnection, &'c [String]) -> Loaded<'c>;

/// Records whose document shows a field of another record (a ticket shows its team's name):
/// when an outbox row of `entity_type` changed `field`, the records of this source whose
/// `column` holds that entity's id are indexed again.
pub struct Cascade {
    pub entity_type: &'static str,
    pub field: &'static str,
    /// The column holding that entity's id: of the source's table, or of the link table `via`.
    pub column: &'static str,
    /// A link table and its column naming the source's record (a change names its CIs in
    /// `change_cis`: `("change_cis", "change_id")` with `column` `ci_id`).
    pub via: Option<(&'static str, &'static str)>,
}

const TEAM_NAME: Cascade = Cascade { entity_type: "team", field: "name", column: "team_id", via: None };
const PROJECT_CODE: Cascade = Cascade { entity_type: "project", field: "code", column: "project_id", via: None };

/// Staff of the record's project; customer contacts never.
fn staff_of_project(a: &Asker, x: &Access) -> bool {
    a.principal.is_staff() && a.principal.can_see_project(&x.project_id, Some(&x.organization_id))
}

/// An outbox entity type that changes an indexed record; the record id is the entity id, or
/// the named field of the payload's record (a comment names its ticket).
pub struct Trigger {
    pub entity_type: &'static str,
    pub id_field: Option<&'static str>,
}

/// What one process indexes: its records' kinds, how to list and load them fresh from the
/// database, which outbox messages touch them, and who may see a hit.
pub struct Source {
    pub name: &'static str,
    pub kinds: &'static [&'static str],
    pub table: Indexed,
    pub triggers: &'static [Trigger],
    pub load: Loader,
    pub cascades: &'static [Cascade],
    pub visible: fn(&Asker, &Access) -> bool,
    /// Whether `visible` depends on the record itself rather than on its project/organisation.
    pub per_record: bool,
}

/// The registry: add a process here (documents, suppliers…).
pub static SOURCES: &[Source] = &[
    Source {
        name: "ticket",
        kinds: &["incident", "request"],
        table: Indexed::Tickets,
        triggers: &[
            Trigger { entity_type: "ticket", id_field: None },
            Trigger { entity_type: "ticket_comment", id_field: Some("ticket_id") },
            Trigger { entity_type: "ticket_work_log", id_field: Some("ticket_id") },
            Trigger { entity_type: "ticket_attachment", id_field: Some("ticket_id") },
        ],
        load: load_tickets,
        cascades: &[TEAM_NAME, PROJECT_CODE],
        visible: |a, x| a.principal.can_see_project(&x.project_id, Some(&x.organization_id)),
        per_record: false,
    },
    Source {
        name: "ci",
        kinds: &["ci"],
        table: Indexed::ConfigurationItems,
        triggers: &[Trigger { entity_type: "configuration_item", id_field: None }],
        load: load_cis,
        cascades: &[TEAM_NAME, PROJECT_CODE],
        visible: |a, x| {
            let p = &a.principal;
            p.is_staff() && (x.project_id.is_empty() || p.sees_all_projects() || p.project_ids.contains(&x.project_id))
        },
        per_record: false,
    },
    Source {
        name: "service",
        kinds: &["service"],
        table: Indexed::Services,
        triggers: &[Trigger { entity_type: "service", id_field: None }],
        load: load_services,
        cascades: &[],
        visible: |a, x| a.principal.is_staff() || a.services.contains(&x.id),
        per_record: true,
    },
    // Problem management is staff-only; customers read published known errors as portal
    // articles, not through search.
    Source {
        name: "problem",
        kinds: &["problem"],
        table: Indexed::Problems,
        triggers: &[Trigger { entity_type: "problem", id_field: None }],
        load: load_problems,
        cascades: &[TEAM_NAME, PROJECT_CODE],
        visible: staff_of_project,
        per_record: false,
    },
    Source {
        name: "known_error",
        kinds: &["known_error"],
        table: Indexed::KnownErrors,
        triggers: &[Trigger { entity_type: "known_error", id_field: None }],
        load: load_known_errors,
        cascades: &[],
        visible: staff_of_project,
        per_record: false,
    },
    // Change and release management are staff work (ISO/IEC 20000-1 8.5.1.3, 8.5.3): contacts
    // never find them through search.
    Source {
        name: "change",
        kinds: &["change"],
        table: Indexed::Changes,
        triggers: &[Trigger { entity_type: "change", id_field: None }],
        load: load_change_records,
        cascades: &[
            TEAM_NAME,
            PROJECT_CODE,
            Cascade { entity_type: "configuration_item", field: "name", column: "ci_id", via: Some(("change_cis", "change_id")) },
        ],
        visible: staff_of_project,
        per_record: false,
    },
    Source {
        name: "release",
        kinds: &["release"],
        table: Indexed::Releases,
        triggers: &[Trigger { entity_type: "release", id_field: None }],
        load: load_releases,
        cascades: &[
            PROJECT_CODE,
            Cascade { entity_type: "change", field: "title", column: "change_id", via: Some(("release_changes", "release_id")) },
        ],
        visible: staff_of_project,
        per_record: false,
    },
];

fn source_of_kind(kind: &str) -> Option<&'static Source> {
    SOURCES.iter().find(|s| s.kinds.contains(&kind))
}

/// Whether an update changed `field`. A created record lists every field as changed, but
/// nothing can refer to it yet (records written with it are indexed by their own rows), so
/// creations never cascade: after a bulk load or an import that created teams and projects,
/// cascading their creation re-indexed every ticket of every team.
fn payload_changed(row: &OutboxRow, field: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(&row.payload)
        .ok()
        .filter(|v| v.get("action").and_then(|a| a.as_str()) == Some("update"))
        .and_then(|v| v.get("changed").and_then(|c| c.as_array()).map(|c| c.iter().any(|f| f.as_str() == Some(field))))
        .unwrap_or(false)
}

/// Records an outbox message asks to (re)index through a `Cascade`: (source, cascade, value).
fn cascades(row: &OutboxRow) -> Vec<(&'static Source, &'static Cascade, String)> {
    SOURCES
        .iter()
        .flat_map(|s| s.cascades.iter().map(move |c| (s, c)))
        .filter(|(_, c)| c.entity_type == row.entity_type && payload_changed(row, c.field))
        .map(|(s, c)| (s, c, row.entity_id.clone()))
        .collect()
}

/// The records an outbox message asks to (re)index by id.
fn targets(row: &OutboxRow) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for s in SOURCES {
        for t in s.triggers.iter().filter(|t| t.entity_type == row.entity_type) {
            let id = match t.id_field {
                None => Some(row.entity_id.clone()),
                Some(f) => serde_json::from_str::<serde_json::Value>(&row.payload)
                    .ok()
                    .and_then(|v| v.get("record").and_then(|r| r.get(f)).and_then(|v| v.as_str()).map(str::to_string)),
            };
            if let Some(id) = id {
                out.push((s.name, id));
            }
        }
    }
    out
}

// ---- loading documents, one per process ----

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        serde_json::Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

fn joined(parts: &[&Option<String>]) -> String {
    parts.iter().filter_map(|p| p.as_deref()).filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n")
}

fn load_tickets<'c>(c: &'c mut AnyConnection, ids: &'c [String]) -> Loaded<'c> {
    Box::pin(async move {
        let tickets = keel_store::incidents::tickets_by_ids(c, ids).await?;
        let mut public: HashMap<String, Vec<String>> = HashMap::new();
        let mut internal: HashMap<String, Vec<String>> = HashMap::new();
        for t in store::ticket_texts(c, ids).await? {
            if t.public { &mut public } else { &mut internal }.entry(t.ticket_id).or_default().push(t.body);
        }
        let mut attachments: HashMap<String, Vec<String>> = HashMap::new();
        for (ticket_id, name) in store::attachment_names_of(c, ids).await? {
            attachments.entry(ticket_id).or_default().push(name);
        }
        Ok(tickets
            .into_iter()
            .map(|t| Document {
                source: "ticket".into(),
                comments: public.remove(&t.id).unwrap_or_default(),
                internal: internal.remove(&t.id).unwrap_or_default(),
                attachments: attachments.remove(&t.id).unwrap_or_default(),
                body: joined(&[&t.description, &t.resolution_notes]),
                number: Some(t.number),
                id: t.id,
                kind: t.kind,
                title: t.title,
                status: t.status,
                priority: t.priority,
                team: t.names.team_name.unwrap_or_default(),
                project: t.names.project_code,
                project_id: t.project_id,
                organization_id: t.organization_id,
                created_at: t.created_at,
                updated_at: t.updated_at,
            })
            .collect())
    })
}

fn load_change_records<'c>(c: &'c mut AnyConnection, ids: &'c [String]) -> Loaded<'c> {
    Box::pin(async move {
        let changes = keel_store::changes::changes_by_ids(c, ids).await?;
        let ci_ids: Vec<String> = changes.iter().flat_map(|x| x.ci_ids.iter().cloned()).collect::<BTreeSet<_>>().into_iter().collect();
        let ci_names: HashMap<String, String> = if ci_ids.is_empty() {
            HashMap::new()
        } else {
            keel_store::cmdb::get_cis(c, &ci_ids).await?.into_iter().map(|ci| (ci.id, ci.name)).collect()
        };
        Ok(changes
            .into_iter()
            .map(|ch| {
                let cis: Vec<&str> = ch.ci_ids.iter().filter_map(|id| ci_names.get(id).map(String::as_str)).collect();
                let text = joined(&[&ch.description, &ch.reason, &ch.implementation_plan, &ch.back_out_plan, &ch.test_plan]);
                Document {
                    source: "change".into(),
                    kind: "change".into(),
                    number: Some(ch.number),
                    title: ch.title,
                    body: [text, cis.join("\n")].join("\n"),
                    status: ch.status,
                    team: ch.names.team_name.unwrap_or_default(),
                    project: ch.names.project_code,
                    id: ch.id,
                    project_id: ch.project_id,
                    organization_id: ch.organization_id,
                    created_at: ch.created_at,
                    updated_at: ch.updated_at,
                    ..Default::default()
                }
            })
            .collect())
    })
}

fn load_releases<'c>(c: &'c mut AnyConnection, ids: &'c [String]) -> Loaded<'c> {
    Box::pin(one_by_one(c, ids, load_release))
}

/// A release with its notes: version, known issues and the changes it groups (number, title).
fn load_release<'c>(c: &'c mut AnyConnection, id: &'c str) -> LoadedOne<'c> {
    Box::pin(async move {
        let Some(r) = keel_store::releases::get_release(c, id).await? else { return Ok(None) };
        let changes = keel_store::changes::changes_by_ids(c, &r.change_ids).await?;
        let notes: Vec<String> = changes.iter().map(|ch| format!("{} {}", ch.number, ch.title)).collect();
        let version = Some(r.release_version.clone());
        Ok(Some(Document {
            source: "release".into(),
            id: r.id.clone(),
            kind: "release".into(),
            number: Some(r.number.clone()),
            title: r.title.clone(),
            body: [joined(&[&version, &r.description]), r.known_issues.join("\n"), notes.join("\n")].join("\n"),
            status: r.status.clone(),
            project: r.project_code.clone(),
            project_id: r.project_id.clone(),
            organization_id: r.organization_id.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            ..Default::default()
        }))
    })
}

type LoadedOne<'c> = Pin<Box<dyn Future<Output = keel_store::Result<Option<Document>>> + Send + 'c>>;
type LoaderOne = for<'c> fn(&'c mut AnyConnection, &'c str) -> LoadedOne<'c>;

/// A batch loader for processes with few records: one record at a time.
async fn one_by_one(c: &mut AnyConnection, ids: &[String], one: LoaderOne) -> keel_store::Result<Vec<Document>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.extend(one(c, id).await?);
    }
    Ok(out)
}

fn load_cis<'c>(c: &'c mut AnyConnection, ids: &'c [String]) -> Loaded<'c> {
    Box::pin(one_by_one(c, ids, load_ci))
}

fn load_services<'c>(c: &'c mut AnyConnection, ids: &'c [String]) -> Loaded<'c> {
    Box::pin(one_by_one(c, ids, load_service))
}

fn load_problems<'c>(c: &'c mut AnyConnection, ids: &'c [String]) -> Loaded<'c> {
    Box::pin(one_by_one(c, ids, load_problem))
}

fn load_known_errors<'c>(c: &'c mut AnyConnection, ids: &'c [String]) -> Loaded<'c> {
    Box::pin(one_by_one(c, ids, load_known_error))
}

fn load_ci<'c>(c: &'c mut AnyConnection, id: &'c str) -> LoadedOne<'c> {
    Box::pin(async move {
        let Some(ci) = keel_store::cmdb::get_ci(c, id).await? else { return Ok(None) };
        let (project, organization_id) = match &ci.project_id {
            Some(p) => store::project_of(c, p).await?.unwrap_or_default(),
            None => Default::default(),
        };
        let team = match &ci.team_id {
            Some(team) => store::team_name(c, team).await?.unwrap_or_default(),
            None => String::new(),
        };
        let attributes: Vec<String> = ci.attributes.values().map(text_of).filter(|s| !s.is_empty()).collect();
        Ok(Some(Document {
            source: "ci".into(),
            id: ci.id.clone(),
            kind: "ci".into(),
            title: ci.name.clone(),
            body: [joined(&[&ci.description, &ci.location]), ci.class_key.clone(), attributes.join("\n")].join("\n"),
            status: ci.status.clone(),
            team,
            project,
            project_id: ci.project_id.clone().unwrap_or_default(),
            organization_id,
            created_at: ci.created_at,
            updated_at: ci.updated_at,
            ..Default::default()
        }))
    })
}

fn load_service<'c>(c: &'c mut AnyConnection, id: &'c str) -> LoadedOne<'c> {
    Box::pin(async move {
        let Some(s) = keel_store::service_level::get_service(c, id).await? else { return Ok(None) };
        Ok(Some(Document {
            source: "service".into(),
            id: s.id.clone(),
            kind: "service".into(),
            number: Some(s.code.clone()),
            title: s.name.clone(),
            body: [joined(&[&s.description, &s.targets, &s.contact_points, &s.service_hours]), s.service_line.clone()].join("\n"),
            status: s.status.clone(),
            created_at: s.created_at,
            updated_at: s.updated_at,
            ..Default::default()
        }))
    })
}

fn load_problem<'c>(c: &'c mut AnyConnection, id: &'c str) -> LoadedOne<'c> {
    Box::pin(async move {
        let Some(p) = keel_store::problems::get_problem(c, id).await? else { return Ok(None) };
        let team = match &p.team_id {
            Some(team) => store::team_name(c, team).await?.unwrap_or_default(),
            None => String::new(),
        };
        let project = store::project_of(c, &p.project_id).await?.map(|x| x.0).unwrap_or_default();
        Ok(Some(Document {
            source: "problem".into(),
            id: p.id.clone(),
            kind: "problem".into(),
            number: Some(p.number.clone()),
            title: p.title.clone(),
            body: joined(&[&p.description, &p.rca_findings, &p.root_cause, &p.workaround, &p.resolution_notes]),
            status: p.status.clone(),
            priority: p.priority.clone(),
            team,
            project,
            project_id: p.project_id.clone(),
            organization_id: p.organization_id.clone(),
            created_at: p.created_at,
            updated_at: p.updated_at,
            ..Default::default()
        }))
    })
}

fn load_known_error<'c>(c: &'c mut AnyConnection, id: &'c str) -> LoadedOne<'c> {
    Box::pin(async move {
        let Some(k) = keel_store::problems::get_known_error(c, id).await? else { return Ok(None) };
        let project = store::project_of(c, &k.problem.project_id).await?.map(|x| x.0).unwrap_or_default();
        let symptoms = Some(k.symptoms.clone());
        Ok(Some(Document {
            source: "known_error".into(),
            id: k.id.clone(),
            kind: "known_error".into(),
            number: Some(k.number.clone()),
            title: joined(&[&Some(k.title.clone()), &k.translation_title]).replace('\n', " · "),
            body: joined(&[&symptoms, &k.translation_symptoms, &k.problem.workaround, &k.translation_workaround]),
            status: k.problem.status.clone(),
            project,
            project_id: k.problem.project_id.clone(),
            organization_id: k.problem.organization_id.clone(),
            created_at: k.created_at,
            updated_at: k.updated_at,
            ..Default::default()
        }))
    })
}

// ---- permissions ----

/// The asker, with what their hits are checked against.
pub struct Asker {
    pub principal: Principal,
    /// For contacts: the catalogue services their organisation's SLAs include.
    pub services: HashSet<String>,
}

impl Permission for Asker {
    fn allows(&self, a: &Access) -> bool {
        source_of_kind(&a.kind).is_some_and(|s| (s.visible)(self, a))
    }
    fn needs_id(&self, kind: &str) -> bool {
        source_of_kind(kind).is_some_and(|s| s.per_record)
    }
    fn sees_internal(&self) -> bool {
        self.principal.is_staff()
    }
}

// ---- the index and its follower ----

/// The follower position stored as the index's commit payload.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Position {
    /// The latest `created_at` applied.
    pub at: i64,
    /// Rows applied inside the late-commit window behind `at`: (id, created_at).
    pub seen: Vec<(String, i64)>,
}

/// The directory name in use and its open index.
type OpenIndex = (String, Arc<SearchIndex>);

/// This process's search index, under `<data>/search/`: `CURRENT` names the directory in use,
/// so `keel reindex` can build a new one beside it and swap.
#[derive(Clone)]
pub struct Search {
    root: Option<PathBuf>,
    current: Arc<RwLock<Option<OpenIndex>>>,
}

impl std::fmt::Debug for Search {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Search").field("root", &self.root).finish()
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

impl Search {
    /// No index: searches answer nothing (processes that do not serve search).
    pub fn disabled() -> Self {
        Search { root: None, current: Arc::new(RwLock::new(None)) }
    }

    /// The index under `root` (created by the follower or `keel reindex` when missing).
    pub fn at(root: &Path) -> Self {
        Search { root: Some(root.to_path_buf()), current: Arc::new(RwLock::new(None)) }
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    fn current_name(&self) -> Option<String> {
        let root = self.root.as_ref()?;
        std::fs::read_to_string(root.join("CURRENT")).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    }

    /// The open index, reopening when `CURRENT` names another directory (after a reindex).
    pub fn index(&self) -> Result<Option<Arc<SearchIndex>>> {
        let Some(root) = &self.root else { return Ok(None) };
        let Some(name) = self.current_name() else { return Ok(None) };
        if let Some((open, ix)) = self.current.read().unwrap_or_else(|e| e.into_inner()).as_ref()
            && *open == name
        {
            return Ok(Some(ix.clone()));
        }
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        if let Some((open, ix)) = cur.as_ref()
            && *open == name
        {
            return Ok(Some(ix.clone()));
        }
        let previous = cur.take();
        drop(previous);
        let ix = Arc::new(SearchIndex::open(&root.join(&name)).map_err(internal)?);
        *cur = Some((name.clone(), ix.clone()));
        // Directories of earlier builds are no longer read by this process.
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if n.starts_with("index-") && n != name && !n.ends_with(".building") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(Some(ix))
    }
}

/// One page of search results for an asker.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchPage {
    pub total: usize,
    pub hits: Vec<keel_search::Hit>,
    pub by_kind: Vec<(String, usize)>,
    pub by_status: Vec<(String, usize)>,
    /// Pass back as `cursor` for the next page.
    pub next_cursor: Option<String>,
    /// False while the index is first being built.
    pub ready: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SearchInput {
    pub q: String,
    pub kind: Option<String>,
    pub cursor: Option<String>,
    pub limit: usize,
    pub utc_offset_minutes: i32,
    /// Type-ahead: the last word may be unfinished.
    pub typing: bool,
}

pub const MAX_QUERY_CHARS: usize = 500;

pub use keel_search::warm;

impl App {
    pub fn with_search(mut self, search: Search) -> Self {
        self.search = search;
        self
    }

    async fn asker(&self, actor: &Principal) -> Result<Asker> {
        let services = if actor.kind == AccountKind::Contact {
            let mut c = self.read().await?;
            store::services_for_organization(&mut c, actor.organization_id.as_deref().unwrap_or_default()).await?.into_iter().collect()
        } else {
            HashSet::new()
        };
        Ok(Asker { principal: actor.clone(), services })
    }

    /// Searches every indexed process for the actor: hits, counts and facets hold only records
    /// the actor may see; a contact's query never reads internal notes.
    pub async fn search_records(&self, actor: &Principal, input: &SearchInput) -> Result<SearchPage> {
        if input.q.chars().count() > MAX_QUERY_CHARS {
            return Err(AppError::field("q", "too_long", format!("at most {MAX_QUERY_CHARS} characters")));
        }
        if let Some(k) = input.kind.as_deref().filter(|k| !k.is_empty())
            && source_of_kind(k).is_none()
        {
            return Err(AppError::field("type", "unknown_type", format!("no record type {k}")));
        }
        let offset = match input.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => c
                .parse::<usize>()
                .ok()
                .filter(|o| *o <= 10_000)
                .ok_or_else(|| AppError::field("cursor", "invalid", "not a cursor from this search"))?,
            None => 0,
        };
        let limit = input.limit.clamp(1, 100);
        let Some(ix) = self.search.index()? else {
            return Ok(SearchPage { total: 0, hits: vec![], by_kind: vec![], by_status: vec![], next_cursor: None, ready: false });
        };
        let asker: Arc<dyn Permission> = Arc::new(self.asker(actor).await?);
        let req = SearchRequest {
            query: input.q.clone(),
            kind: input.kind.clone().filter(|k| !k.is_empty()),
            offset,
            limit,
            utc_offset_minutes: input.utc_offset_minutes,
            snippets: !input.typing,
            prefix_last: input.typing,
        };
        let r = tokio::task::spawn_blocking(move || ix.search(&req, asker)).await.map_err(internal)?.map_err(internal)?;
        let next_cursor = (offset + r.hits.len() < r.total && !r.hits.is_empty()).then(|| (offset + r.hits.len()).to_string());
        Ok(SearchPage { total: r.total, hits: r.hits, by_kind: r.by_kind, by_status: r.by_status, next_cursor, ready: true })
    }

    /// Applies the outbox rows this index has not applied yet, loading each named record fresh
    /// from the database; returns how many rows were applied.
    pub async fn follow_outbox(&self) -> Result<usize> {
        let Some(ix) = self.search.index()? else { return Ok(0) };
        let mut pos: Position = ix.position().map_err(internal)?.and_then(|p| serde_json::from_str(&p).ok()).unwrap_or_default();
        let pruned_before = self.outbox_pruned_before().await?;
        if pruned_before > 0 && pruned_before > pos.at - LATE_COMMIT_WINDOW_MS {
            // Rows this index has not applied may have been pruned: only a rebuild is exact.
            tracing::warn!("search index is behind the pruned outbox; rebuilding");
            drop(ix);
            return Ok(usize::try_from(self.rebuild_search_index(|_, _| {}).await?).unwrap_or(usize::MAX));
        }
        let mut seen: HashSet<String> = pos.seen.iter().map(|(id, _)| id.clone()).collect();
        let mut fresh: Vec<OutboxRow> = Vec::new();
        {
            let mut c = self.read().await?;
            // Behind the position only ids are read: under load the window holds thousands of
            // rows already applied, and only the few committed late need their payload.
            let window = store::outbox_ids_between(&mut c, pos.at - LATE_COMMIT_WINDOW_MS - 1, pos.at).await?;
            let late: Vec<String> = window.into_iter().filter(|id| !seen.contains(id)).take(MAX_ROWS_PER_COMMIT).collect();
            for ids in late.chunks(OUTBOX_PAGE as usize) {
                fresh.extend(store::outbox_rows(&mut c, ids).await?);
            }
            seen.extend(late);
            let (mut at, mut id) = (pos.at, String::new());
            while fresh.len() < MAX_ROWS_PER_COMMIT {
                let rows = store::outbox_after(&mut c, at, &id, OUTBOX_PAGE).await?;
                let full = rows.len() as i64 == OUTBOX_PAGE;
                if let Some(last) = rows.last() {
                    (at, id) = (last.created_at, last.id.clone());
                }
                fresh.extend(rows.into_iter().filter(|r| !seen.contains(&r.id)));
                if !full {
                    break;
                }
            }
        }
        if fresh.is_empty() {
            return Ok(0);
        }
        let mut wanted: BTreeSet<(&'static str, String)> = fresh.iter().flat_map(targets).collect();
        let cascaded: Vec<_> = fresh.iter().flat_map(cascades).collect();
        if !cascaded.is_empty() {
            let mut c = self.read().await?;
            let mut done = HashSet::new();
            for (s, cascade, value) in cascaded {
                if !done.insert((s.name, cascade.column, cascade.via, value.clone())) {
                    continue;
                }
                let ids = match cascade.via {
                    None => store::ids_where(&mut c, s.table, cascade.column, &value).await?,
                    Some((table, record)) => store::ids_linked(&mut c, table, record, cascade.column, &value).await?,
                };
                wanted.extend(ids.into_iter().map(|id| (s.name, id)));
            }
        }
        let changes = self.load_changes(wanted).await?;
        pos.at = fresh.iter().map(|r| r.created_at).max().unwrap_or(pos.at).max(pos.at);
        pos.seen.extend(fresh.iter().map(|r| (r.id.clone(), r.created_at)));
        let horizon = pos.at - LATE_COMMIT_WINDOW_MS;
        // One millisecond more than the window read above, so a row at its very edge stays seen.
        pos.seen.retain(|(_, at)| *at >= horizon - 1);
        let payload = serde_json::to_string(&pos).map_err(internal)?;
        tokio::task::spawn_blocking(move || ix.apply(&changes, &payload)).await.map_err(internal)?.map_err(internal)?;
        Ok(fresh.len())
    }

    async fn load_changes(&self, wanted: BTreeSet<(&'static str, String)>) -> Result<Vec<Change>> {
        let mut c = self.read().await?;
        let mut changes = Vec::with_capacity(wanted.len());
        for s in SOURCES {
            let ids: Vec<String> = wanted.iter().filter(|(name, _)| *name == s.name).map(|(_, id)| id.clone()).collect();
            for chunk in ids.chunks(LOAD_BATCH) {
                let docs = (s.load)(&mut c, chunk).await?;
                let found: HashSet<&str> = docs.iter().map(|d| d.id.as_str()).collect();
                let gone: Vec<Change> = chunk
                    .iter()
                    .filter(|id| !found.contains(id.as_str()))
                    .map(|id| Change::Delete { source: s.name.to_string(), id: id.clone() })
                    .collect();
                changes.extend(gone);
                changes.extend(docs.into_iter().map(|d| Change::Upsert(Box::new(d))));
            }
        }
        Ok(changes)
    }

    /// Builds a complete index from the database in a new directory beside the current one,
    /// then makes it current; the running index keeps serving meanwhile. `progress` gets
    /// (records done, records total).
    pub async fn rebuild_search_index(&self, mut progress: impl FnMut(u64, u64)) -> Result<u64> {
        let Some(root) = self.search.root().map(Path::to_path_buf) else { return Ok(0) };
        let name = format!("index-{}", keel_store::new_id());
        let building = root.join(format!("{name}.building"));
        // Changes committed while the build reads are re-applied by the follower from here.
        let start = Position { at: self.now() - LATE_COMMIT_WINDOW_MS, seen: vec![] };
        let mut total = 0u64;
        {
            let mut c = self.read().await?;
            for s in SOURCES {
                total += u64::try_from(store::count(&mut c, s.table).await?).unwrap_or(0);
            }
        }
        let ix = Arc::new(SearchIndex::open_for_build(&building).map_err(internal)?);
        let mut done = 0u64;
        progress(0, total);
        for s in SOURCES {
            let mut after = String::new();
            loop {
                let mut c = self.read().await?;
                let ids = store::ids_after(&mut c, s.table, &after, LOAD_BATCH as i64).await?;
                let Some(last) = ids.last().cloned() else { break };
                let docs = (s.load)(&mut c, &ids).await?;
                drop(c);
                let ix2 = ix.clone();
                tokio::task::spawn_blocking(move || ix2.add(&docs)).await.map_err(internal)?.map_err(internal)?;
                done += ids.len() as u64;
                progress(done, total);
                after = last;
            }
        }
        let payload = serde_json::to_string(&start).map_err(internal)?;
        let ix = Arc::into_inner(ix).ok_or_else(|| internal("index still shared"))?;
        tokio::task::spawn_blocking(move || {
            ix.commit(&payload)?;
            ix.finish()
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;
        std::fs::rename(&building, root.join(&name)).map_err(internal)?;
        let tmp = root.join("CURRENT.tmp");
        std::fs::write(&tmp, &name).map_err(internal)?;
        std::fs::rename(&tmp, root.join("CURRENT")).map_err(internal)?;
        Ok(done)
    }

    /// The follower of this process: builds the index when there is none, then applies the
    /// outbox as it grows, until `stop` turns true. An idle follower looks every 200 ms; after
    /// applying rows it waits until a second has passed since that step began, so under load
    /// it commits about once a second (a full batch means a backlog: it goes on at once).
    pub async fn search_follower(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        if self.search.root().is_none() {
            return;
        }
        keel_search::warm();
        loop {
            let began = std::time::Instant::now();
            let step = async {
                if self.search.index()?.is_none() {
                    let n = self.rebuild_search_index(|_, _| {}).await?;
                    tracing::info!(records = n, "search index built");
                }
                self.follow_outbox().await
            };
            let wait = match step.await {
                Ok(n) if n >= MAX_ROWS_PER_COMMIT => Duration::ZERO,
                Ok(n) if n > 0 => FOLLOW_COMMIT_INTERVAL.saturating_sub(began.elapsed()),
                Ok(_) => FOLLOW_IDLE_POLL,
                Err(e) => {
                    tracing::warn!(error = %e, "search follower");
                    FOLLOW_RETRY
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
    }
}

impl From<keel_search::SearchError> for AppError {
    fn from(e: keel_search::SearchError) -> Self {
        AppError::Internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(action: &str, changed: &[&str]) -> OutboxRow {
        let payload = serde_json::json!({ "action": action, "record": { "id": "t1", "name": "Network" }, "changed": changed });
        OutboxRow { id: "o1".into(), entity_type: "team".into(), entity_id: "t1".into(), payload: payload.to_string(), created_at: 0 }
    }

    #[test]
    fn a_renamed_team_cascades_to_the_records_naming_it() {
        let hit: Vec<&str> = cascades(&row("update", &["name"])).iter().map(|(s, _, _)| s.name).collect();
        assert!(hit.contains(&"ticket") && hit.contains(&"problem"), "{hit:?}");
        assert!(cascades(&row("update", &["description"])).is_empty());
    }

    #[test]
    fn a_created_team_cascades_to_nothing() {
        assert!(cascades(&row("create", &["name", "description"])).is_empty());
        assert!(cascades(&row("delete", &["name"])).is_empty());
    }
}

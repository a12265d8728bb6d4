//! Service desk and incident management (REQUIREMENTS §4): importing incidents from another
//! tool's CSV export in the browser — mapping, dry-run report, then the import with its
//! progress shown on the page (htmx polls the import job).
//!
//! An import runs in one transaction; on SQLite that transaction holds the only writer, so its
//! progress cannot be written to a table while it runs. Import jobs therefore live in this
//! process's memory, visible only to the person who started them (behind a load balancer the
//! poll must reach the same instance; the CLI `keel import incidents` has no such limit).

use super::{Ctx, OrPage, UiResult, render};
use crate::AppState;
use crate::auth::{CsrfForm, UiUser};
use crate::i18n::Tr;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use keel_app::AppError;
use keel_app::import::{BadRow, ImportReport, Mapping, Progress};
use keel_store::directory::ProjectFilter;
use keel_store::page::{PageRequest, SortKey, SortKind};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// The mapping the form starts with: the UCI ServiceNow event log example.
const EXAMPLE_MAPPING: &str = include_str!("../../../../docs/import/uci-servicenow-event-log.toml");

#[derive(Debug, Clone, Default)]
struct Job {
    owner: String,
    phase: &'static str,
    done: u64,
    total: u64,
    outcome: Option<Result<ImportReport, String>>,
}

static JOBS: LazyLock<Mutex<HashMap<String, Job>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn jobs() -> std::sync::MutexGuard<'static, HashMap<String, Job>> {
    JOBS.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(serde::Deserialize, Default, Clone)]
#[serde(default)]
pub struct ImportPost {
    project_id: String,
    mapping: String,
    content: String,
    /// `check` (dry run) or `import`.
    mode: String,
}

pub struct BadRowView {
    pub line: u64,
    pub reference: String,
    pub field: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "incidents/import.html")]
pub struct ImportPage {
    pub ctx: Ctx,
    pub title: String,
    pub projects: Vec<(String, String, bool)>,
    pub mapping: String,
    /// The key of the mapping's help text.
    pub mapping_help: &'static str,
    pub content: String,
    pub error: Option<String>,
    /// After a dry run: rows, tickets, new categories, bad rows.
    pub checked: Option<(u64, u64, String)>,
    pub bad_rows: Vec<BadRowView>,
}

#[derive(Template)]
#[template(path = "incidents/import_job.html")]
pub struct JobPage {
    pub ctx: Ctx,
    pub title: String,
    pub progress: JobFragment,
}

#[derive(Template)]
#[template(path = "incidents/import_progress.html")]
pub struct JobFragment {
    pub tr: Tr,
    pub id: String,
    pub phase: String,
    pub done: u64,
    pub total: u64,
    pub finished: bool,
    pub imported: Option<u64>,
    pub error: Option<String>,
    pub bad_rows: Vec<BadRowView>,
}

const PROJECT_SORT: SortKey = SortKey { name: "code", column: "code", kind: SortKind::Text };

pub(super) fn bad_views(rows: &[BadRow]) -> Vec<BadRowView> {
    rows.iter()
        .take(500)
        .map(|b| BadRowView {
            line: b.line,
            reference: b.external_ref.clone().unwrap_or_default(),
            field: b.field.clone(),
            reason: b.reason.clone(),
        })
        .collect()
}

async fn page(state: &AppState, tr: &Tr, who: &crate::auth::Identity, f: &ImportPost) -> Result<ImportPage, AppError> {
    if !who.principal.is_staff() || who.principal.is_read_only() {
        return Err(AppError::Forbidden);
    }
    let projects = state
        .app
        .list_projects(
            &who.principal,
            &ProjectFilter::default(),
            &PageRequest { sort: PROJECT_SORT, desc: false, after: None, limit: 1000 },
        )
        .await?
        .items
        .into_iter()
        .filter(|p| p.status == "active")
        .map(|p| {
            let selected = p.id == f.project_id;
            (p.id, format!("{} — {}", p.code, p.name), selected)
        })
        .collect();
    Ok(ImportPage {
        ctx: Ctx::new(tr, Some(who), "/incidents/import", None),
        title: tr.t("import-title"),
        projects,
        mapping: if f.mapping.is_empty() { EXAMPLE_MAPPING.to_string() } else { f.mapping.clone() },
        content: f.content.clone(),
        mapping_help: "import-mapping-help",
        error: None,
        checked: None,
        bad_rows: vec![],
    })
}

pub(super) fn message(tr: &Tr, e: &AppError) -> String {
    match e {
        AppError::Validation(list) => list.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "),
        AppError::NotFound => tr.t("import-no-project"),
        other => super::error_message(tr, other),
    }
}

pub async fn form(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    Ok(render(&page(&state, &tr, &who, &ImportPost::default()).await.or_page(&tr)?))
}

pub async fn post(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<ImportPost>) -> UiResult {
    let mut p = page(&state, &tr, &who, &f).await.or_page(&tr)?;
    let mapping = match Mapping::from_toml(&f.mapping) {
        Ok(m) => m,
        Err(e) => {
            p.error = Some(message(&tr, &e));
            return Ok(render(&p));
        }
    };
    if f.mode != "import" {
        match state.app.import_incidents(&who.principal, &f.project_id, f.content.as_bytes(), &mapping, true, &|_| {}).await {
            Ok(r) => {
                p.checked = Some((r.rows, r.tickets, r.new_categories.join(", ")));
                p.bad_rows = bad_views(&r.bad_rows);
            }
            Err(e) => p.error = Some(message(&tr, &e)),
        }
        return Ok(render(&p));
    }
    let id = keel_store::new_id();
    jobs().insert(id.clone(), Job { owner: who.principal.user_id.clone(), phase: "reading", ..Default::default() });
    let app = state.app.clone();
    let actor = who.principal.clone();
    let job = id.clone();
    tokio::spawn(async move {
        let progress = {
            let job = job.clone();
            Arc::new(move |p: Progress| {
                let (phase, done, total) = match p {
                    Progress::Reading(n) => ("reading", n, 0),
                    Progress::Checking(n, t) => ("checking", n, t),
                    Progress::Writing(n, t) => ("writing", n, t),
                };
                if let Some(j) = jobs().get_mut(&job) {
                    (j.phase, j.done, j.total) = (phase, done, total);
                }
            })
        };
        let r = app.import_incidents(&actor, &f.project_id, f.content.as_bytes(), &mapping, false, &*progress).await;
        if let Some(j) = jobs().get_mut(&job) {
            j.outcome = Some(r.map_err(|e| format!("{e}")));
        }
    });
    Ok(Redirect::to(&format!("/incidents/import/jobs/{id}")).into_response())
}

fn fragment(tr: &Tr, id: &str, owner: &str) -> Option<JobFragment> {
    let j = jobs().get(id).filter(|j| j.owner == owner).cloned()?;
    let (imported, error, bad_rows) = match &j.outcome {
        Some(Ok(r)) if r.ok() => (Some(r.imported), None, vec![]),
        Some(Ok(r)) => (None, Some(tr.t1("import-refused", "count", r.bad_rows.len())), bad_views(&r.bad_rows)),
        Some(Err(e)) => (None, Some(e.clone()), vec![]),
        None => (None, None, vec![]),
    };
    Some(JobFragment {
        tr: tr.clone(),
        id: id.to_string(),
        phase: tr.t(&format!("import-phase-{}", j.phase)),
        done: j.done,
        total: j.total,
        finished: j.outcome.is_some(),
        imported,
        error,
        bad_rows,
    })
}

pub async fn job(tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    let progress = fragment(&tr, &id, &who.principal.user_id).ok_or_else(|| super::UiError(tr.clone(), AppError::NotFound))?;
    Ok(render(&JobPage { ctx: Ctx::new(&tr, Some(&who), "/incidents/import", None), title: tr.t("import-title"), progress }))
}

pub async fn job_progress(tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> Response {
    match fragment(&tr, &id, &who.principal.user_id) {
        Some(f) => render(&f),
        None => super::app_error_page(&tr, &AppError::NotFound),
    }
}

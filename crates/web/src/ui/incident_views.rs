//! Service desk agent workspace (REQUIREMENTS §4): saved and shared queue views on the queue
//! page — the sidebar with a count per view, the columns a view chooses, saving, changing and
//! deleting views.

use super::incidents::QueueFailure;
use super::{UiResult, see_other};
use crate::AppState;
use crate::auth::{CsrfForm, UiUser, urlencode};
use crate::i18n::Tr;
use axum::extract::{Path, State};
use keel_app::AppError;
use keel_app::incident_views::{DEFAULT_COLUMNS, IncidentView, STAFF_COLUMNS, VIEW_COLUMNS, ViewFilters, ViewInput};
use keel_store::incidents::TicketRecord;

/// A view in the queue sidebar.
pub struct SavedLink {
    pub href: String,
    pub name: String,
    pub count: i64,
    pub shared: String,
    pub active: bool,
}

/// One column choice in the save form.
pub struct ColumnChoice {
    pub name: &'static str,
    pub label: String,
    pub checked: bool,
}

/// One cell of a queue row, rendered by its `kind`: `link` (to the ticket), `badge` or `text`.
pub struct Cell {
    pub kind: &'static str,
    pub text: String,
    pub class: String,
    pub title: String,
    pub major: bool,
}

/// The save/change form of a view as the page shows it (typed values kept on error).
#[derive(serde::Deserialize, Default, Clone)]
#[serde(default)]
pub struct ViewForm {
    pub name: String,
    pub audience: String,
    pub share_team_id: String,
    pub columns: Vec<String>,
    /// The queue and filters the view keeps, copied from the queue page.
    pub f_view: String,
    pub f_status: String,
    pub f_priority: String,
    pub f_team_id: String,
    pub f_project_id: String,
    pub f_q: String,
    pub sort: String,
    pub version: Option<i64>,
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty()).collect()
}

fn some(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

impl ViewForm {
    fn input(&self) -> ViewInput {
        ViewInput {
            name: self.name.clone(),
            audience: self.audience.clone(),
            team_id: some(&self.share_team_id),
            filters: ViewFilters {
                queue: some(&self.f_view),
                statuses: list(&self.f_status),
                priorities: list(&self.f_priority),
                team_id: some(&self.f_team_id),
                project_id: some(&self.f_project_id),
                q: some(&self.f_q),
                ..Default::default()
            },
            sort: self.sort.clone(),
            columns: self.columns.clone(),
        }
    }

    /// The form pre-filled from a stored view.
    pub fn of(v: &IncidentView) -> ViewForm {
        let f = &v.filters;
        ViewForm {
            name: v.record.name.clone(),
            audience: v.record.audience.clone(),
            share_team_id: v.record.team_id.clone().unwrap_or_default(),
            columns: v.columns.clone(),
            f_view: f.queue.clone().unwrap_or_default(),
            f_status: f.statuses.join(","),
            f_priority: f.priorities.join(","),
            f_team_id: f.team_id.clone().unwrap_or_default(),
            f_project_id: f.project_id.clone().unwrap_or_default(),
            f_q: f.q.clone().unwrap_or_default(),
            sort: v.record.sort.clone(),
            version: Some(v.record.version),
        }
    }
}

/// The queue page's query for a stored view (what its link opens).
pub fn href(v: &IncidentView) -> String {
    format!("/incidents?saved={}", urlencode(&v.record.id))
}

/// The sidebar: every view the reader may use, with its count.
pub fn sidebar(tr: &Tr, views: Vec<(IncidentView, i64)>, active: Option<&str>) -> Vec<SavedLink> {
    views
        .into_iter()
        .map(|(v, count)| SavedLink {
            href: href(&v),
            shared: if v.record.audience == "private" { String::new() } else { tr.t(&format!("view-audience-{}", v.record.audience)) },
            active: active == Some(v.record.id.as_str()),
            name: v.record.name,
            count,
        })
        .collect()
}

/// The columns a reader may choose, checked as `chosen`.
pub fn column_choices(tr: &Tr, staff: bool, chosen: &[String]) -> Vec<ColumnChoice> {
    VIEW_COLUMNS
        .iter()
        .filter(|c| staff || !STAFF_COLUMNS.contains(c))
        .map(|c| ColumnChoice { name: c, label: column_label(tr, c), checked: chosen.iter().any(|x| x == c) })
        .collect()
}

pub fn column_label(tr: &Tr, c: &str) -> String {
    tr.t(&format!("view-column-{}", c.replace('_', "-")))
}

/// The columns shown when no view chooses them.
pub fn default_columns(staff: bool) -> Vec<String> {
    DEFAULT_COLUMNS.iter().filter(|c| staff || !STAFF_COLUMNS.contains(c)).map(|c| c.to_string()).collect()
}

/// The cells of a ticket's row for the chosen columns.
pub fn cells(tr: &Tr, t: &TicketRecord, columns: &[String], sla: Option<&super::sla_clocks::ClockView>) -> Vec<Cell> {
    let text = |s: String| Cell { kind: "text", text: s, class: String::new(), title: String::new(), major: false };
    let badge = |s: String, class: String| Cell { kind: "badge", text: s, class, title: String::new(), major: false };
    let at = |ms: i64| tr.datetime(&ms);
    columns
        .iter()
        .map(|c| match c.as_str() {
            "number" => Cell { kind: "link", class: "mono".into(), ..text(t.number.clone()) },
            "title" => Cell { kind: "link", major: t.major, ..text(t.title.clone()) },
            "status" => badge(super::incidents::label(tr, "incident-status", &t.status), format!("status-{}", t.status.replace('_', "-"))),
            "priority" => badge(super::incidents::label(tr, "incident-priority", &t.priority), format!("prio-{}", t.priority)),
            "sla" => match sla {
                Some(s) => Cell { title: format!("{} · {}", s.kind, s.state_label), ..badge(s.time_left.clone(), s.class.clone()) },
                None => text(String::new()),
            },
            "project" => text(t.names.project_code.clone()),
            "assignee" => {
                text([t.names.team_name.clone(), t.names.agent_name.clone()].into_iter().flatten().collect::<Vec<_>>().join(" · "))
            }
            "team" => text(t.names.team_name.clone().unwrap_or_default()),
            "agent" => text(t.names.agent_name.clone().unwrap_or_default()),
            "reporter" => text(t.names.reporter_name.clone()),
            "organization" => text(t.names.organization_name.clone()),
            "category" => text(t.names.category_name.clone().unwrap_or_default()),
            "kind" => text(super::incidents::label(tr, "incident-kind", &t.kind)),
            "impact" => text(super::incidents::label(tr, "incident-level", &t.impact)),
            "urgency" => text(super::incidents::label(tr, "incident-level", &t.urgency)),
            "created_at" => text(at(t.created_at)),
            "updated_at" => text(at(t.updated_at)),
            _ => text(String::new()),
        })
        .collect()
}

fn back(form: &ViewForm) -> super::incidents::QueueQuery {
    super::incidents::QueueQuery::from_view_form(form)
}

pub async fn create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<ViewForm>) -> UiResult {
    match state.app.create_view(&who.principal, f.input()).await {
        Ok(v) => Ok(see_other(&href(&v), "saved")),
        Err(e) => super::incidents::queue_page(&state, &tr, &who, back(&f), Some(QueueFailure::View(f, e, None))).await,
    }
}

pub async fn update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<ViewForm>,
) -> UiResult {
    match state.app.update_view(&who.principal, &id, f.input(), f.version).await {
        Ok(v) => Ok(see_other(&href(&v), "saved")),
        Err(AppError::NotFound) => Err(super::UiError(tr, AppError::NotFound)),
        Err(e) => {
            let q = super::incidents::QueueQuery { saved: id.clone(), ..Default::default() };
            super::incidents::queue_page(&state, &tr, &who, q, Some(QueueFailure::View(f, e, Some(id)))).await
        }
    }
}

pub async fn delete(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(_f): CsrfForm<ViewForm>,
) -> UiResult {
    match state.app.delete_view(&who.principal, &id).await {
        Ok(()) => Ok(see_other("/incidents", "view-deleted")),
        Err(e) => Err(super::UiError(tr, e)),
    }
}

//! Service desk pages (REQUIREMENTS §4): the agents' queues, the ticket page with its status
//! actions, conversation, work log and history, the form to log a ticket, and the same pages
//! as the customer portal for contacts (their organisation's tickets, public replies only).

use super::{Ctx, Field, FormPage, HistoryView, OrPage, UiResult, attach_errors, history_views, render_status, see_other};
use crate::AppState;
use crate::api::incidents::{INCIDENT_SORTS, IncidentQuery, filter_of};
use crate::auth::{CsrfForm, Identity, UiUser, urlencode};
use crate::i18n::Tr;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use keel_app::incidents::{NewTicket, Queue, TransitionInput};
use keel_app::{AppError, Principal};
use keel_domain::incident::{Action, Impact, PendingReason, Priority, ResolutionCode, Status, TicketKind, Urgency};
use keel_store::accounts::UserFilter;
use keel_store::page::{PageRequest, SortKey, SortKind, decode_cursor};
use std::collections::HashMap;

pub(crate) type Form = HashMap<String, String>;

fn val(f: &Form, k: &str) -> String {
    f.get(k).cloned().unwrap_or_default()
}

fn opt(f: &Form, k: &str) -> Option<String> {
    f.get(k).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn choices<T: Copy>(tr: &Tr, prefix: &str, all: &[T], as_str: fn(T) -> &'static str) -> Vec<(String, String)> {
    all.iter().map(|v| (as_str(*v).to_string(), tr.t(&format!("{prefix}-{}", as_str(*v).replace('_', "-"))))).collect()
}

pub(crate) fn label(tr: &Tr, prefix: &str, v: &str) -> String {
    let key = format!("{prefix}-{}", v.replace('_', "-"));
    if tr.has(&key) { tr.t(&key) } else { v.to_string() }
}

const USER_SORT: SortKey = SortKey { name: "display_name", column: "display_name", kind: SortKind::Text };

fn all(sort: SortKey) -> PageRequest {
    PageRequest { sort, desc: false, after: None, limit: 1000 }
}

pub(super) async fn team_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    if !who.is_staff() {
        return Ok(vec![]);
    }
    Ok(state.app.choices(who).await?.teams().to_vec())
}

async fn user_options(state: &AppState, who: &Principal, kind: Option<&str>) -> Result<Vec<(String, String)>, AppError> {
    if !who.is_staff() {
        return Ok(vec![]);
    }
    if kind == Some("staff") {
        return Ok(state.app.choices(who).await?.staff().to_vec());
    }
    let f = UserFilter { kind: kind.map(str::to_string), active: Some(true), ..Default::default() };
    let users = state.app.list_users(who, f, &all(USER_SORT)).await?;
    Ok(users.items.into_iter().map(|u| (u.id, format!("{} <{}>", u.display_name, u.email))).collect())
}

pub(crate) async fn project_choices(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    project_options(state, who).await
}

pub(super) async fn project_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    Ok(state.app.choices(who).await?.projects().map(|p| (p.id.clone(), format!("{} · {}", p.code, p.name))).collect())
}

async fn category_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    let cats = state.app.list_categories(who).await?;
    let names: HashMap<String, String> = cats.iter().map(|c| (c.id.clone(), c.name.clone())).collect();
    Ok(cats
        .into_iter()
        .filter(|c| c.active)
        .map(|c| {
            let name = match c.parent_id.as_ref().and_then(|p| names.get(p)) {
                Some(parent) => format!("{parent} / {}", c.name),
                None => c.name,
            };
            (c.id, name)
        })
        .collect())
}

// ---------------------------------------------------------------- the queues

pub struct Tab {
    pub href: String,
    pub label: String,
    pub count: i64,
    pub active: bool,
}

pub struct QueueRow {
    pub id: String,
    pub number: String,
    pub href: String,
    pub cells: Vec<super::incident_views::Cell>,
}

/// The saved view open on the queue page.
pub struct OpenView {
    pub id: String,
    pub name: String,
    pub editable: bool,
    pub version: i64,
}

#[derive(Template)]
#[template(path = "incidents/queue.html")]
pub struct QueuePage {
    pub ctx: Ctx,
    pub title: String,
    pub is_staff: bool,
    pub tabs: Vec<Tab>,
    pub view: String,
    pub filters: Vec<Field>,
    /// Column names and their headings.
    pub columns: Vec<(String, String)>,
    pub rows: Vec<QueueRow>,
    pub next_href: Option<String>,
    pub total: i64,
    pub q: String,
    pub breaching: bool,
    /// The CSV of this view (same filters, the reader's scope).
    pub export_href: String,
    pub saved_views: Vec<super::incident_views::SavedLink>,
    pub open_view: Option<OpenView>,
    /// The save form: typed values, column choices, sharing options, errors.
    pub view_form: super::incident_views::ViewForm,
    pub column_choices: Vec<super::incident_views::ColumnChoice>,
    pub share_teams: Vec<(String, String)>,
    /// Value, label, selected.
    pub audience_options: Vec<(String, String, bool)>,
    pub view_errors: Vec<String>,
    /// Where the view form posts: a new view, or the view being changed (with its version).
    pub form_action: String,
    pub form_version: Option<i64>,
    pub read_only: bool,
    /// The bulk change form (staff who may write); empty otherwise.
    pub bulk_fields: Vec<BulkField>,
    pub bulk_errors: Vec<String>,
    /// How many ticked tickets a partly refused bulk change did change.
    pub bulk_applied: usize,
    pub bulk_back: String,
    /// Tickets ticked when a bulk change failed.
    pub bulk_checked: Vec<String>,
}

/// One control of the bulk form, with its own element id (the page holds several forms).
pub struct BulkField {
    pub id: &'static str,
    pub name: &'static str,
    pub label: String,
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<super::Opt>,
}

impl BulkField {
    fn select(id: &'static str, name: &'static str, label: String, opts: Vec<(String, String)>, selected: &[String]) -> Self {
        let options = opts.into_iter().map(|(value, label)| super::Opt { selected: selected.contains(&value), value, label }).collect();
        BulkField { id, name, label, kind: "select", value: String::new(), options }
    }
    fn text(id: &'static str, name: &'static str, label: String, value: &str) -> Self {
        BulkField { id, name, label, kind: "text", value: value.to_string(), options: vec![] }
    }
}

#[derive(serde::Deserialize, Default, Clone)]
pub struct QueueQuery {
    #[serde(default)]
    pub view: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub priority: String,
    #[serde(default)]
    pub team_id: String,
    #[serde(default)]
    pub project_id: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub sort: String,
    /// `1`: breaching soon only.
    #[serde(default)]
    pub breaching: String,
    /// A saved view's id: its filters, sort and columns.
    #[serde(default)]
    pub saved: String,
    pub cursor: Option<String>,
    pub flash: Option<String>,
}

impl QueueQuery {
    fn href(&self, view: &str, cursor: Option<&str>) -> String {
        let mut s = format!("/incidents?view={}", urlencode(view));
        for (k, v) in [
            ("status", &self.status),
            ("priority", &self.priority),
            ("team_id", &self.team_id),
            ("project_id", &self.project_id),
            ("q", &self.q),
            ("sort", &self.sort),
            ("breaching", &self.breaching),
            ("saved", &self.saved),
        ] {
            if !v.is_empty() {
                s.push_str(&format!("&{k}={}", urlencode(v)));
            }
        }
        if let Some(c) = cursor {
            s.push_str(&format!("&cursor={}", urlencode(c)));
        }
        s
    }

    /// The queue a view form was posted from, to show it again with the form's errors.
    pub fn from_view_form(f: &super::incident_views::ViewForm) -> QueueQuery {
        QueueQuery {
            view: f.f_view.clone(),
            status: f.f_status.clone(),
            priority: f.f_priority.clone(),
            team_id: f.f_team_id.clone(),
            project_id: f.f_project_id.clone(),
            q: f.f_q.clone(),
            sort: f.sort.clone(),
            ..Default::default()
        }
    }
}

fn status_class(s: &str) -> String {
    format!("status-{}", s.replace('_', "-"))
}

pub async fn queue(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<QueueQuery>) -> UiResult {
    queue_page(&state, &tr, &who, q, None).await
}

/// A form of the queue page that failed.
pub enum QueueFailure {
    /// The view form: what was typed, the error, and the view it was changing.
    View(super::incident_views::ViewForm, AppError, Option<String>),
    /// A bulk change refused as a whole: what was chosen and why nothing changed.
    Bulk(BulkForm, AppError),
    /// A bulk change some tickets refused: what was chosen and what each of them said.
    BulkTickets(BulkForm, keel_app::desk::BulkOutcome),
}

/// The bulk change form under the queue (several tickets, one lifecycle step).
#[derive(serde::Deserialize, Default, Clone)]
#[serde(default)]
pub struct BulkForm {
    pub ids: Vec<String>,
    pub action: String,
    pub team_id: String,
    pub agent_id: String,
    pub resolution_code: String,
    pub resolution_notes: String,
    pub pending_reason: String,
    pub note: String,
    pub reason: String,
    /// The queue to return to.
    pub back: String,
}

/// The steps offered for several tickets at once.
const BULK_ACTIONS: [Action; 9] = [
    Action::Assign,
    Action::Reassign,
    Action::Start,
    Action::Resolve,
    Action::Close,
    Action::Cancel,
    Action::Pend,
    Action::Resume,
    Action::Reopen,
];

pub async fn bulk(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<BulkForm>) -> UiResult {
    let some = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let input = TransitionInput {
        action: f.action.clone(),
        team_id: some(&f.team_id),
        agent_id: some(&f.agent_id),
        resolution_code: some(&f.resolution_code),
        resolution_notes: some(&f.resolution_notes),
        pending_reason: some(&f.pending_reason),
        note: some(&f.note),
        reason: some(&f.reason),
        ..Default::default()
    };
    let back = if f.back.starts_with("/incidents") && !f.back.starts_with("//") { f.back.clone() } else { "/incidents".into() };
    let failure = match state.app.bulk_transition_each(&who.principal, &f.ids, input).await {
        Ok(out) if out.refused.is_empty() => return Ok(see_other(&back, "saved")),
        Ok(out) => QueueFailure::BulkTickets(f, out),
        Err(e) => QueueFailure::Bulk(f, e),
    };
    let q = back.split_once('?').map(|(_, q)| serde_html_form::from_str::<QueueQuery>(q).unwrap_or_default()).unwrap_or_default();
    queue_page(&state, &tr, &who, q, Some(failure)).await
}

pub async fn queue_page(state: &AppState, tr: &Tr, who: &Identity, mut q: QueueQuery, failed: Option<QueueFailure>) -> UiResult {
    use super::incident_views as views;
    let tr = tr.clone();
    let p = &who.principal;
    let is_staff = p.is_staff();
    let saved = match q.saved.trim() {
        "" => None,
        id => Some(state.app.get_view(p, id).await.or_page(&tr)?),
    };
    if let Some(v) = &saved {
        // the view decides filters and order; the page's own selectors show them
        let form = views::ViewForm::of(v);
        q = QueueQuery {
            saved: v.record.id.clone(),
            cursor: q.cursor.clone(),
            flash: q.flash.clone(),
            ..QueueQuery::from_view_form(&form)
        };
    }
    let default_view = if is_staff { "open" } else { "all" };
    let view = if q.view.is_empty() { default_view.to_string() } else { q.view.clone() };
    let filter = match &saved {
        Some(v) => v.filters.to_filter(&p.user_id),
        None => {
            let query = IncidentQuery {
                view: Some(view.clone()),
                status: Some(q.status.clone()),
                priority: Some(q.priority.clone()),
                team_id: Some(q.team_id.clone()),
                project_id: Some(q.project_id.clone()),
                q: Some(q.q.clone()),
                ..Default::default()
            };
            filter_of(query, &p.user_id).map_err(|_| super::UiError(tr.clone(), AppError::NotFound))?
        }
    };
    let (desc, sort_name) = match q.sort.as_str() {
        "" => (!is_staff, if is_staff { "priority" } else { "created_at" }),
        s if s.starts_with('-') => (true, &s[1..]),
        s => (false, s),
    };
    let sort = *INCIDENT_SORTS.iter().find(|k| k.name == sort_name).unwrap_or(&INCIDENT_SORTS[0]);
    let page = PageRequest { sort, desc, after: q.cursor.as_deref().and_then(|c| decode_cursor(&sort, c)), limit: 50 };
    let keel_app::incident_views::QueuePageData { list, total, counts, breaching_soon, clocks, views: saved_views, choices: lists } =
        state.app.queue_page_data(p, &filter, &page, q.breaching == "1").await.or_page(&tr)?;
    let queues: &[Queue] = if is_staff {
        &[Queue::Mine, Queue::Team, Queue::Unassigned, Queue::Pending, Queue::Open, Queue::All]
    } else {
        &[Queue::Open, Queue::All]
    };
    let tab_query = QueueQuery { saved: String::new(), ..q.clone() };
    let mut tabs = queues
        .iter()
        .map(|v| Tab {
            href: tab_query.href(v.as_str(), None),
            label: tr.t(&format!("incident-view-{}", v.as_str())),
            count: v.count(&counts),
            active: v.as_str() == view && saved.is_none(),
        })
        .collect::<Vec<Tab>>();
    if let Some(count) = breaching_soon {
        tabs.iter_mut().for_each(|t| t.active = t.active && q.breaching != "1");
        tabs.push(Tab {
            href: "/incidents?view=open&breaching=1".into(),
            label: tr.t("incident-view-breaching"),
            count,
            active: q.breaching == "1",
        });
    }
    let mut filters = vec![
        Field::new(&tr, "status", "select", "")
            .options(choices(&tr, "incident-status", Status::ALL, Status::as_str), std::slice::from_ref(&q.status)),
        Field::new(&tr, "priority", "select", "")
            .options(choices(&tr, "incident-priority", Priority::ALL, Priority::as_str), std::slice::from_ref(&q.priority)),
    ];
    let teams = lists.teams().to_vec();
    if is_staff {
        filters.push(Field::new(&tr, "team_id", "select", "").options(teams.clone(), std::slice::from_ref(&q.team_id)));
        let projects = lists.projects().map(|p| (p.id.clone(), format!("{} · {}", p.code, p.name)));
        filters.push(Field::new(&tr, "project_id", "select", "").options(projects, std::slice::from_ref(&q.project_id)));
    }
    let sorts = ["priority", "-updated_at", "updated_at", "-created_at", "created_at", "number"];
    filters.push(Field::new(&tr, "sort", "select", "").options(
        sorts.iter().map(|s| (s.to_string(), tr.t(&format!("incident-sort-{}", s.replace('-', "desc-").replace('_', "-"))))),
        std::slice::from_ref(&q.sort),
    ));
    let column_names = match &saved {
        Some(v) if !v.columns.is_empty() => v.columns.clone(),
        _ => views::default_columns(is_staff),
    };
    let clocks = super::sla_clocks::queue_clocks(state, &tr, clocks);
    let rows = list
        .items
        .iter()
        .map(|t| QueueRow {
            id: t.id.clone(),
            number: t.number.clone(),
            href: format!("/incidents/{}", t.id),
            cells: views::cells(&tr, t, &column_names, clocks.get(&t.id)),
        })
        .collect();
    let next_href = list.next_cursor.as_deref().map(|c| q.href(&view, Some(c)));
    let title = match &saved {
        Some(v) => v.record.name.clone(),
        None => tr.t(if is_staff { "incident-queue-title" } else { "incident-portal-title" }),
    };
    let ctx = Ctx::new(&tr, Some(who), "/incidents", q.flash.as_deref());
    let export_href = match &saved {
        Some(v) => format!("/api/v1/incident-views/{}/export", urlencode(&v.record.id)),
        None => QueueQuery { sort: String::new(), ..q.clone() }.href(&view, None).replacen("/incidents?", "/api/v1/incidents/export?", 1),
    };
    let saved_views = views::sidebar(&tr, saved_views, saved.as_ref().map(|v| v.record.id.as_str()));
    let (failed, bulk_failed) = match failed {
        Some(QueueFailure::Bulk(f, e)) => (None, Some((f, Err(e)))),
        Some(QueueFailure::BulkTickets(f, out)) => (None, Some((f, Ok(out)))),
        Some(QueueFailure::View(f, e, id)) => (Some((f, e, id)), None),
        None => (None, None),
    };
    let (view_form, view_errors, failed_view, mut status) = match failed {
        Some((f, e, id)) => {
            let errs = attach_errors(&tr, &mut [], &e);
            (f, errs, id, super::status_for(&Some(e)))
        }
        None => {
            let f = match &saved {
                Some(v) => views::ViewForm::of(v),
                None => views::ViewForm { columns: column_names.clone(), ..QueueQuery { view: view.clone(), ..q.clone() }.view_form() },
            };
            (f, vec![], None, StatusCode::OK)
        }
    };
    let changing = failed_view.clone().or_else(|| saved.as_ref().filter(|v| v.editable).map(|v| v.record.id.clone()));
    let form_action = match &changing {
        Some(id) => format!("/incidents/views/{}", urlencode(id)),
        None => "/incidents/views".to_string(),
    };
    let form_version = changing.as_ref().and(view_form.version);
    let column_choices = views::column_choices(&tr, is_staff, &view_form.columns);
    let audience_options = keel_app::incident_views::AUDIENCES
        .iter()
        .map(|a| (a.to_string(), tr.t(&format!("view-audience-{a}")), view_form.audience == *a))
        .collect();
    let open_view = saved.as_ref().map(|v| OpenView {
        id: v.record.id.clone(),
        name: v.record.name.clone(),
        editable: v.editable,
        version: v.record.version,
    });
    let columns = column_names.iter().map(|c| (c.clone(), views::column_label(&tr, c))).collect();
    let (bulk_form, bulk_errors, bulk_applied) = match bulk_failed {
        Some((f, Err(e))) => {
            let errs = attach_errors(&tr, &mut [], &e);
            status = super::status_for(&Some(e));
            (f, errs, 0)
        }
        Some((f, Ok(out))) => {
            status = StatusCode::UNPROCESSABLE_ENTITY;
            let errs = out.refused.iter().map(|r| bulk_refusal(&tr, r)).collect();
            // the refused tickets stay ticked, ready for another try
            let ids = out.refused.iter().map(|r| r.ticket_id.clone()).collect();
            (BulkForm { ids, ..f }, errs, out.done.len())
        }
        None => (BulkForm::default(), vec![], 0),
    };
    let bulk_fields = if is_staff && !p.is_read_only() {
        let codes: Vec<ResolutionCode> = ResolutionCode::ALL.to_vec();
        let agents = lists.staff().to_vec();
        let sel = |v: &String| vec![v.clone()];
        vec![
            BulkField::select(
                "bulk-action",
                "action",
                tr.t("bulk-action"),
                BULK_ACTIONS
                    .iter()
                    .map(|a| (a.as_str().to_string(), tr.t(&format!("incident-action-{}", a.as_str().replace('_', "-")))))
                    .collect(),
                &sel(&bulk_form.action),
            ),
            BulkField::select("bulk-team", "team_id", tr.t("field-team-id"), teams.clone(), &sel(&bulk_form.team_id)),
            BulkField::select("bulk-agent", "agent_id", tr.t("field-agent-id"), agents, &sel(&bulk_form.agent_id)),
            BulkField::select(
                "bulk-resolution-code",
                "resolution_code",
                tr.t("field-resolution-code"),
                choices(&tr, "incident-resolution", &codes, ResolutionCode::as_str),
                &sel(&bulk_form.resolution_code),
            ),
            BulkField::text("bulk-resolution-notes", "resolution_notes", tr.t("field-resolution-notes"), &bulk_form.resolution_notes),
            BulkField::text("bulk-reason", "reason", tr.t("field-reason"), &bulk_form.reason),
            BulkField::select(
                "bulk-pending-reason",
                "pending_reason",
                tr.t("field-pending-reason"),
                choices(&tr, "incident-pending", PendingReason::ALL, PendingReason::as_str),
                &sel(&bulk_form.pending_reason),
            ),
            BulkField::text("bulk-note", "note", tr.t("field-note"), &bulk_form.note),
        ]
    } else {
        vec![]
    };
    let bulk_back = q.href(&view, None);
    let bulk_checked = bulk_form.ids;
    Ok(render_status(
        status,
        &QueuePage {
            ctx,
            title,
            is_staff,
            tabs,
            view,
            filters,
            columns,
            rows,
            next_href,
            total,
            q: q.q.clone(),
            breaching: q.breaching == "1",
            export_href,
            saved_views,
            open_view,
            view_form,
            column_choices,
            share_teams: teams,
            audience_options,
            view_errors,
            form_action,
            form_version,
            read_only: p.is_read_only(),
            bulk_fields,
            bulk_errors,
            bulk_applied,
            bulk_back,
            bulk_checked,
        },
    ))
}

/// One ticket's refusal of a bulk change, in the reader's language: the ticket, the field
/// that refused (when it is one of the step's) and why.
fn bulk_refusal(tr: &Tr, r: &keel_app::desk::BulkRefusal) -> String {
    let ticket = r.number.clone().unwrap_or_else(|| r.ticket_id.clone());
    let why = super::translate_field_error(tr, r.code, &r.message);
    if r.field == "ticket" {
        format!("{ticket}: {why}")
    } else {
        format!("{ticket} · {}: {why}", tr.t(&format!("field-{}", r.field.replace('_', "-"))))
    }
}

impl QueueQuery {
    /// The save form for the queue as it is shown now.
    fn view_form(&self) -> super::incident_views::ViewForm {
        super::incident_views::ViewForm {
            f_view: self.view.clone(),
            f_status: self.status.clone(),
            f_priority: self.priority.clone(),
            f_team_id: self.team_id.clone(),
            f_project_id: self.project_id.clone(),
            f_q: self.q.clone(),
            sort: self.sort.clone(),
            ..Default::default()
        }
    }
}

// ---------------------------------------------------------------- logging a ticket

async fn new_fields(state: &AppState, tr: &Tr, who: &Principal, f: &Form) -> Result<Vec<Field>, AppError> {
    let projects = project_options(state, who).await?;
    let mut v = vec![Field::new(tr, "project_id", "select", "").required().options(projects, &[val(f, "project_id")])];
    if who.is_staff() {
        v.push(
            Field::new(tr, "kind", "select", "")
                .required()
                .options(choices(tr, "incident-kind", TicketKind::ALL, TicketKind::as_str), &[val(f, "kind")]),
        );
        // narrows the caller's type-ahead to one customer organisation; not stored (the
        // ticket's organisation is the reporter's)
        v.push(
            Field::new(tr, "organization_id", "select", "")
                .options(super::admin::organization_options(state, who).await?, &[val(f, "organization_id")])
                .typeahead(tr, "organizations", val(f, "organization_id_find")),
        );
        let mut reporter = Field::new(tr, "reporter_id", "select", "")
            .required()
            .options(user_options(state, who, None).await?, &[val(f, "reporter_id")])
            .help(tr.t("incident-help-reporter"))
            .typeahead(tr, "contacts", val(f, "reporter_id_find"));
        reporter.typeahead_include = "#f-organization_id";
        v.push(reporter);
        let channels: Vec<(String, String)> =
            ["phone", "email", "portal", "monitoring"].iter().map(|c| (c.to_string(), tr.t(&format!("incident-channel-{c}")))).collect();
        v.push(Field::new(tr, "channel", "select", "").required().options(channels, &[val(f, "channel")]));
    }
    v.push(Field::new(tr, "title", "text", val(f, "title")).required());
    v.push(Field::new(tr, "description", "textarea", val(f, "description")));
    if who.is_staff() {
        v.push(
            Field::new(tr, "impact", "select", "").options(choices(tr, "incident-level", Impact::ALL, Impact::as_str), &[val(f, "impact")]),
        );
    }
    v.push(
        Field::new(tr, "urgency", "select", "").options(choices(tr, "incident-level", Urgency::ALL, Urgency::as_str), &[val(f, "urgency")]),
    );
    v.push(Field::new(tr, "category_id", "select", "").options(category_options(state, who).await?, &[val(f, "category_id")]).typeahead(
        tr,
        "categories",
        val(f, "category_id_find"),
    ));
    if who.is_staff() {
        // the CIs offered are those chosen so far; typing finds others the agent may see
        let chosen = super::problems::split_ids(&val(f, "ci_ids"));
        let mut cis = Vec::new();
        for id in &chosen {
            let name = state.app.get_ci(who, id).await.map_or_else(|_| id.clone(), |c| format!("{} ({})", c.name, c.class_key));
            cis.push((id.clone(), name));
        }
        let mut affected = Field::new(tr, "ci_ids", "multiselect", "")
            .options(cis, &chosen)
            .typeahead(tr, "cis", val(f, "ci_ids_find"))
            .help(tr.t("incident-help-affected-cis"));
        affected.label = tr.t("incident-affected-cis");
        v.push(affected);
        v.push(Field::new(tr, "team_id", "select", "").options(team_options(state, who).await?, &[val(f, "team_id")]));
        v.push(Field::new(tr, "agent_id", "select", "").options(user_options(state, who, Some("staff")).await?, &[val(f, "agent_id")]));
    }
    Ok(v)
}

async fn new_page(state: &AppState, tr: &Tr, who: &Identity, f: &Form, err: Option<AppError>) -> UiResult {
    let mut fields = new_fields(state, tr, &who.principal, f).await.or_page(tr)?;
    let err = err.map(super::fold_indexed_fields);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), "/incidents/new", None);
    let title = tr.t(if who.principal.is_staff() { "incident-new-title" } else { "incident-portal-new-title" });
    let mut page = FormPage::new(ctx, title, "/incidents".into(), fields, "/incidents");
    page.errors = errors;
    page.submit = tr.t("incident-action-log");
    // contacts are offered the articles published for their organisation
    page.suggest_href = Some("/known-errors/suggest".to_string());
    Ok(render_status(super::status_for(&err), &page))
}

pub async fn new_form(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    let mut f = Form::new();
    f.insert("urgency".into(), "medium".into());
    f.insert("impact".into(), "medium".into());
    f.insert("channel".into(), "phone".into());
    new_page(&state, &tr, &who, &f, None).await
}

pub async fn create(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    let f = super::form_of(pairs);
    let input = NewTicket {
        kind: opt(&f, "kind"),
        project_id: val(&f, "project_id"),
        reporter_id: opt(&f, "reporter_id"),
        channel: opt(&f, "channel"),
        title: val(&f, "title"),
        description: opt(&f, "description"),
        impact: opt(&f, "impact"),
        urgency: opt(&f, "urgency"),
        category_id: opt(&f, "category_id"),
        team_id: opt(&f, "team_id"),
        agent_id: opt(&f, "agent_id"),
        ci_ids: super::problems::split_ids(&val(&f, "ci_ids")),
        ..Default::default()
    };
    match state.app.create_ticket(&who.principal, input).await {
        Ok(t) => Ok(see_other(&format!("/incidents/{}", t.id), "created")),
        Err(e) => new_page(&state, &tr, &who, &f, Some(e)).await,
    }
}

// ---------------------------------------------------------------- the ticket page

pub struct Detail {
    pub label: String,
    pub value: String,
}

/// One lifecycle action as a small form.
pub struct ActionForm {
    pub action: String,
    pub label: String,
    pub fields: Vec<Field>,
    pub open: bool,
    pub danger: bool,
}

pub struct CommentView {
    pub author: String,
    pub when: String,
    pub body: String,
    pub internal: bool,
    pub from_customer: bool,
}

pub struct WorkView {
    pub author: String,
    pub when: String,
    pub minutes: i64,
    pub note: String,
}

/// A form on the ticket page (reply, work log, rating, major incident) with its fields.
pub struct SideForm {
    pub action: String,
    pub title: String,
    pub submit: String,
    pub fields: Vec<Field>,
}

#[derive(Template)]
#[template(path = "incidents/ticket.html")]
pub struct TicketPage {
    pub ctx: Ctx,
    pub title: String,
    pub heading: String,
    pub number: String,
    pub id: String,
    pub version: i64,
    pub status: String,
    pub status_class: String,
    pub priority: String,
    pub priority_class: String,
    pub major: bool,
    pub is_staff: bool,
    pub description: String,
    pub details: Vec<Detail>,
    pub errors: Vec<String>,
    pub actions: Vec<ActionForm>,
    pub comments: Vec<CommentView>,
    pub reply: Option<SideForm>,
    pub work: Vec<WorkView>,
    pub work_total: i64,
    pub work_form: Option<SideForm>,
    pub rating: Option<String>,
    pub rating_form: Option<SideForm>,
    pub major_form: Option<SideForm>,
    pub communications: Option<super::major_incidents::CommunicationPanel>,
    pub history: Vec<HistoryView>,
    pub sla: Vec<super::sla_clocks::ClockView>,
    pub problem_panel: Option<super::problems::ProblemPanel>,
    pub attachments: Vec<super::desk::AttachmentView>,
    pub upload: Option<SideForm>,
    /// Watchers, links, parent, merge and affected service forms.
    pub desk: Option<super::ticket_desk::DeskPanel>,
}

/// A failed post, shown in place: which form, what was typed, and why it was refused.
struct Failed {
    form: String,
    values: Form,
    error: AppError,
}

fn action_fields(tr: &Tr, a: Action, f: &Form, teams: &[(String, String)], agents: &[(String, String)], kind: &str) -> Vec<Field> {
    let reason = || Field::new(tr, "reason", "text", val(f, "reason")).required();
    match a {
        Action::Assign | Action::Reassign => vec![
            Field::new(tr, "team_id", "select", "").options(teams.to_vec(), &[val(f, "team_id")]),
            Field::new(tr, "agent_id", "select", "").options(agents.to_vec(), &[val(f, "agent_id")]),
        ],
        Action::Pend => vec![
            Field::new(tr, "pending_reason", "select", "")
                .required()
                .options(choices(tr, "incident-pending", PendingReason::ALL, PendingReason::as_str), &[val(f, "pending_reason")]),
            Field::new(tr, "note", "text", val(f, "note")),
        ],
        Action::Resolve => {
            let kind = TicketKind::parse(kind).unwrap_or(TicketKind::Incident);
            let codes: Vec<ResolutionCode> = ResolutionCode::ALL.iter().copied().filter(|c| c.applies_to(kind)).collect();
            vec![
                Field::new(tr, "resolution_code", "select", "")
                    .required()
                    .options(choices(tr, "incident-resolution", &codes, ResolutionCode::as_str), &[val(f, "resolution_code")]),
                Field::new(tr, "resolution_notes", "textarea", val(f, "resolution_notes")).required(),
            ]
        }
        Action::Reject | Action::Reopen | Action::Cancel => vec![reason()],
        Action::MarkDuplicate => vec![Field::new(tr, "duplicate_of", "text", val(f, "duplicate_of")).required()],
        _ => vec![],
    }
}

fn with_failed(tr: &Tr, name: &str, failed: &Option<Failed>, fields: &mut [Field], errors: &mut Vec<String>) -> bool {
    match failed {
        Some(fl) if fl.form == name => {
            errors.extend(attach_errors(tr, fields, &fl.error));
            true
        }
        _ => false,
    }
}

async fn ticket_page(state: &AppState, tr: &Tr, who: &Identity, id: &str, failed: Option<Failed>, flash: Option<&str>) -> UiResult {
    let p = &who.principal;
    let keel_app::desk::TicketPageData {
        ticket: t,
        comments,
        work_log,
        rating: existing,
        attachments,
        children,
        duplicates,
        watchers,
        links,
        history,
        history_names,
        actions: allowed,
        communications: log,
        problems,
        known_errors,
        sla,
        choices: lists,
    } = state.app.ticket_page_data(p, id).await.or_page(tr)?;
    let is_staff = p.is_staff();
    let empty = Form::new();
    let typed = |name: &str| failed.as_ref().filter(|fl| fl.form == name).map(|fl| &fl.values).unwrap_or(&empty);
    let mut errors = Vec::new();
    let (teams, agents) = (lists.teams(), lists.staff());

    let mut details = vec![
        Detail { label: tr.t("field-kind"), value: label(tr, "incident-kind", &t.kind) },
        Detail { label: tr.t("field-project-id"), value: format!("{} · {}", t.names.project_code, t.names.project_name) },
        Detail { label: tr.t("field-organization-id"), value: t.names.organization_name.clone() },
        Detail { label: tr.t("field-reporter-id"), value: t.names.reporter_name.clone() },
        Detail { label: tr.t("field-channel"), value: label(tr, "incident-channel", &t.channel) },
        Detail { label: tr.t("field-category-id"), value: t.names.category_name.clone().unwrap_or_default() },
        Detail { label: tr.t("field-impact"), value: label(tr, "incident-level", &t.impact) },
        Detail { label: tr.t("field-urgency"), value: label(tr, "incident-level", &t.urgency) },
    ];
    if is_staff {
        details.push(Detail { label: tr.t("field-team-id"), value: t.names.team_name.clone().unwrap_or_default() });
        details.push(Detail { label: tr.t("field-agent-id"), value: t.names.agent_name.clone().unwrap_or_default() });
    }
    if let Some(r) = &t.pending_reason {
        let note = t.pending_note.as_deref().map(|n| format!(" — {n}")).unwrap_or_default();
        details.push(Detail { label: tr.t("field-pending-reason"), value: format!("{}{note}", label(tr, "incident-pending", r)) });
    }
    if let Some(code) = &t.resolution_code {
        details.push(Detail { label: tr.t("field-resolution-code"), value: label(tr, "incident-resolution", code) });
        details.push(Detail { label: tr.t("field-resolution-notes"), value: t.resolution_notes.clone().unwrap_or_default() });
    }
    if let Some(k) = &t.closure_kind {
        let extra = t.closure_reason.clone().or(t.names.duplicate_of_number.clone()).map(|r| format!(" — {r}")).unwrap_or_default();
        details.push(Detail { label: tr.t("incident-closure"), value: format!("{}{extra}", label(tr, "incident-closure", k)) });
    }
    if t.major {
        details.push(Detail { label: tr.t("incident-major"), value: t.names.major_manager_name.clone().unwrap_or_default() });
    }
    details.push(Detail { label: tr.t("field-created-at"), value: tr.datetime(&t.created_at) });
    details.push(Detail { label: tr.t("incident-updated-at"), value: tr.datetime(&t.updated_at) });

    let mut actions = Vec::new();
    for a in allowed {
        let name = a.as_str().to_string();
        let mut fields = action_fields(tr, a, typed(&name), teams, agents, &t.kind);
        let open = with_failed(tr, &name, &failed, &mut fields, &mut errors);
        let danger = matches!(a, Action::Cancel | Action::Reject);
        actions.push(ActionForm {
            action: name,
            label: tr.t(&format!("incident-action-{}", a.as_str().replace('_', "-"))),
            fields,
            open,
            danger,
        });
    }

    let comments = comments
        .into_iter()
        .map(|c| CommentView {
            author: c.author_name.clone().unwrap_or_else(|| c.author_id.clone()),
            when: tr.datetime(&c.created_at),
            internal: c.visibility == "internal",
            from_customer: c.author_kind == "contact",
            body: c.body,
        })
        .collect();
    let open_ticket = t.status != "closed" && !p.is_read_only();
    let reply = open_ticket.then(|| {
        let f = typed("comment");
        let mut fields = vec![Field::new(tr, "body", "textarea", val(f, "body")).required()];
        if is_staff {
            let vis = if f.contains_key("visibility") { val(f, "visibility") } else { "public".into() };
            fields.push(
                Field::new(tr, "visibility", "select", "").required().options(
                    [("public", "incident-visibility-public"), ("internal", "incident-visibility-internal")]
                        .iter()
                        .map(|(v, k)| (v.to_string(), tr.t(k))),
                    &[vis],
                ),
            );
        }
        with_failed(tr, "comment", &failed, &mut fields, &mut errors);
        SideForm {
            action: format!("/incidents/{}/comments", t.id),
            title: tr.t("incident-conversation-add"),
            submit: tr.t("incident-action-send"),
            fields,
        }
    });

    let (work, work_total, work_form) = if is_staff {
        let entries = work_log;
        let total = entries.iter().map(|e| e.minutes).sum();
        let views = entries
            .into_iter()
            .map(|e| WorkView {
                author: e.author_name.unwrap_or(e.author_id),
                when: tr.datetime(&e.performed_at),
                minutes: e.minutes,
                note: e.note.unwrap_or_default(),
            })
            .collect();
        let form = open_ticket.then(|| {
            let f = typed("worklog");
            let mut fields =
                vec![Field::new(tr, "minutes", "text", val(f, "minutes")).required(), Field::new(tr, "note", "text", val(f, "note"))];
            with_failed(tr, "worklog", &failed, &mut fields, &mut errors);
            SideForm {
                action: format!("/incidents/{}/worklog", t.id),
                title: tr.t("incident-worklog-add"),
                submit: tr.t("incident-action-log-work"),
                fields,
            }
        });
        (views, total, form)
    } else {
        (vec![], 0, None)
    };

    let rating = existing.as_ref().map(|r| {
        let stars = "★".repeat(usize::try_from(r.score).unwrap_or(0));
        format!("{stars} {}", r.comment.clone().unwrap_or_default())
    });
    let rateable = t.reporter_id == p.user_id
        && (t.status == "resolved"
            || (t.status == "closed"
                && existing.is_none()
                && t.closure_kind.as_deref().is_some_and(|k| k != "cancelled" && k != "duplicate")));
    let rating_form = rateable.then(|| {
        let f = typed("rating");
        let scores: Vec<(String, String)> = (1..=5).rev().map(|s| (s.to_string(), tr.t(&format!("incident-score-{s}")))).collect();
        let mut fields = vec![
            Field::new(tr, "score", "select", "").required().options(scores, &[val(f, "score")]),
            Field::new(tr, "comment", "text", val(f, "comment")),
        ];
        with_failed(tr, "rating", &failed, &mut fields, &mut errors);
        SideForm {
            action: format!("/incidents/{}/rating", t.id),
            title: tr.t("incident-rating-title"),
            submit: tr.t("incident-action-rate"),
            fields,
        }
    });

    let major_form = (is_staff && open_ticket && t.kind == "incident" && (t.major || (t.status != "resolved"))).then(|| {
        let f = typed("major");
        let mut fields = Vec::new();
        if !t.major {
            fields.push(Field::new(tr, "manager_id", "select", "").required().options(agents.to_vec(), &[val(f, "manager_id")]));
        }
        fields.push(Field::new(tr, "reason", "text", val(f, "reason")).required());
        with_failed(tr, "major", &failed, &mut fields, &mut errors);
        SideForm {
            action: format!("/incidents/{}/major", t.id),
            title: tr.t(if t.major { "incident-major-stand-down" } else { "incident-major-declare" }),
            submit: tr.t(if t.major { "incident-action-stand-down" } else { "incident-action-declare-major" }),
            fields,
        }
    });
    let communications = super::major_incidents::panel(
        tr,
        p,
        &t,
        log,
        typed("communication"),
        failed.as_ref().filter(|f| f.form == "communication").map(|f| &f.error),
        &mut errors,
    );
    let (attachments, upload) = super::desk::attachments_panel(
        state,
        tr,
        p,
        (&t, attachments),
        typed("attachment"),
        &failed.as_ref().filter(|f| f.form == "attachment").map(|f| &f.error),
        &mut errors,
    )
    .await
    .or_page(tr)?;
    let mut merged = Vec::new();
    for (key, list) in [("incident-children", children), ("incident-merged", duplicates)] {
        if !list.is_empty() {
            merged.push(Detail { label: tr.t(key), value: list.iter().map(|x| x.number.clone()).collect::<Vec<_>>().join(", ") });
        }
    }
    details.extend(merged);
    if !watchers.is_empty() {
        details.push(Detail {
            label: tr.t("incident-watchers"),
            value: watchers.iter().map(|w| w.display_name.clone()).collect::<Vec<_>>().join(", "),
        });
    }
    if !links.is_empty() {
        let value = links
            .iter()
            .map(|l| format!("{} {}", tr.t(&format!("incident-link-{}", l.target_type)), l.target_id))
            .collect::<Vec<_>>()
            .join(", ");
        details.push(Detail { label: tr.t("incident-links"), value });
    }
    if let Some(fl) = &failed
        && errors.is_empty()
    {
        errors.push(super::error_message(tr, &fl.error));
    }

    let typed_desk = failed.as_ref().map(|f| (f.form.as_str(), &f.values));
    let desk = super::ticket_desk::panel(tr, p, &t, (watchers, links), &lists, typed_desk);
    let history = if is_staff { history_views(tr, &history, &history_names) } else { vec![] };
    let problem_panel = super::problems::ticket_panel(p, &t, (problems, known_errors));
    let status = failed.as_ref().map(|f| crate::error::status_of(&f.error)).unwrap_or(StatusCode::OK);
    let ctx = Ctx::new(tr, Some(who), "/incidents", flash);
    let page = TicketPage {
        ctx,
        title: format!("{} {}", t.number, t.title),
        heading: t.title.clone(),
        number: t.number.clone(),
        id: t.id.clone(),
        version: t.version,
        status: label(tr, "incident-status", &t.status),
        status_class: status_class(&t.status),
        priority: label(tr, "incident-priority", &t.priority),
        priority_class: format!("prio-{}", t.priority),
        major: t.major,
        is_staff,
        description: t.description.clone().unwrap_or_default(),
        details,
        errors,
        actions,
        comments,
        reply,
        work,
        work_total,
        work_form,
        rating,
        rating_form,
        major_form,
        communications,
        history,
        sla: super::sla_clocks::ticket_panel(state, tr, &sla),
        problem_panel,
        attachments,
        upload,
        desk: Some(desk),
    };
    Ok(render_status(status, &page))
}

#[derive(serde::Deserialize, Default)]
pub struct FlashQuery {
    flash: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<FlashQuery>,
) -> UiResult {
    ticket_page(&state, &tr, &who, &id, None, q.flash.as_deref()).await
}

fn expected(f: &Form) -> Option<i64> {
    f.get("_version").and_then(|v| v.parse().ok())
}

pub(crate) async fn after_post(
    state: &AppState,
    tr: &Tr,
    who: &Identity,
    id: &str,
    form: &str,
    f: Form,
    r: Result<(), AppError>,
) -> UiResult {
    match r {
        Ok(()) => Ok(see_other(&format!("/incidents/{id}"), "saved")),
        Err(AppError::NotFound) => Err(super::UiError(tr.clone(), AppError::NotFound)),
        Err(error) => ticket_page(state, tr, who, id, Some(Failed { form: form.to_string(), values: f, error }), None).await,
    }
}

pub async fn transition(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let input = TransitionInput {
        action: val(&f, "action"),
        team_id: opt(&f, "team_id"),
        agent_id: opt(&f, "agent_id"),
        pending_reason: opt(&f, "pending_reason"),
        note: opt(&f, "note"),
        resolution_code: opt(&f, "resolution_code"),
        resolution_notes: opt(&f, "resolution_notes"),
        reason: opt(&f, "reason"),
        duplicate_of: opt(&f, "duplicate_of"),
    };
    let r = state.app.transition_ticket(&who.principal, &id, input, expected(&f)).await.map(|_| ());
    let form = val(&f, "action");
    after_post(&state, &tr, &who, &id, &form, f, r).await
}

pub async fn comment(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let visibility = opt(&f, "visibility").unwrap_or_else(|| "public".into());
    let r = state.app.add_comment(&who.principal, &id, &visibility, &val(&f, "body")).await.map(|_| ());
    after_post(&state, &tr, &who, &id, "comment", f, r).await
}

pub async fn worklog(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = match val(&f, "minutes").trim().parse::<i64>() {
        Ok(m) => state.app.add_work_log(&who.principal, &id, m, None, opt(&f, "note").as_deref()).await.map(|_| ()),
        Err(_) => Err(AppError::field("minutes", "not_a_number", "enter the minutes spent")),
    };
    after_post(&state, &tr, &who, &id, "worklog", f, r).await
}

pub async fn rating(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = match val(&f, "score").trim().parse::<i64>() {
        Ok(s) => state.app.rate_ticket(&who.principal, &id, s, opt(&f, "comment").as_deref()).await.map(|_| ()),
        Err(_) => Err(AppError::field("score", "required", "choose a score")),
    };
    after_post(&state, &tr, &who, &id, "rating", f, r).await
}

pub async fn major(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let p = &who.principal;
    let r = match state.app.get_ticket(p, &id).await {
        Ok(t) if t.major => state.app.stand_down_major_incident(p, &id, &val(&f, "reason"), None).await.map(|_| ()),
        Ok(_) => state.app.declare_major_incident(p, &id, &val(&f, "manager_id"), &val(&f, "reason"), None).await.map(|_| ()),
        Err(e) => Err(e),
    };
    after_post(&state, &tr, &who, &id, "major", f, r).await
}

//! `/api/v1/incidents`: the service desk's tickets (incidents and service requests), their
//! lifecycle, conversation, work log and satisfaction rating (REQUIREMENTS §4).

use super::directory::IntoResponseOk;
use super::{
    ApiJson, ApiPath, ApiQuery, ApiResponse, Forbidden, InvalidQuery, JsonBodyErrors, ListOf, NotFound, PageParams, Unauthorized,
    VersionErrors, created, if_match, page_request, with_etag,
};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ErrorBody};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use keel_app::incidents::{NewTicket, Queue, TransitionInput};
use keel_domain::incident::TicketPatch;
use keel_store::incidents::{CommentRecord, QueueCounts, RatingRecord, TicketFilter, TicketRecord, WorkLogRecord};
use keel_store::page::{SortKey, SortKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_incidents, create_incident))
        .routes(routes!(incident_counts))
        .routes(routes!(get_incident, update_incident))
        .routes(routes!(transition_incident))
        .routes(routes!(list_comments, add_comment))
        .routes(routes!(list_work_log, add_work_log))
        .routes(routes!(rate_incident))
        .routes(routes!(declare_major, stand_down_major))
}

pub const INCIDENT_SORTS: &[SortKey] = &[
    SortKey { name: "updated_at", column: "t.updated_at", kind: SortKind::IntNotNull },
    SortKey { name: "created_at", column: "t.created_at", kind: SortKind::IntNotNull },
    SortKey { name: "priority", column: "t.priority", kind: SortKind::TextNotNull },
    SortKey { name: "number", column: "t.number", kind: SortKind::TextNotNull },
    SortKey { name: "status", column: "t.status", kind: SortKind::TextNotNull },
];

/// A ticket: an incident (`INC-000042`) or a service request (`REQ-000042`).
#[derive(Serialize, ToSchema)]
pub struct Incident {
    pub id: String,
    pub number: String,
    /// `incident` or `service_request`.
    pub kind: String,
    pub project_id: String,
    pub project_code: String,
    pub organization_id: String,
    pub organization_name: String,
    pub reporter_id: String,
    pub reporter_name: String,
    pub title: String,
    pub description: Option<String>,
    /// `portal`, `email`, `phone`, `api` or `monitoring`.
    pub channel: String,
    pub category_id: Option<String>,
    pub category_name: Option<String>,
    /// `high`, `medium` or `low`.
    pub impact: String,
    pub urgency: String,
    /// `p1` (most urgent) to `p4`, from the priority matrix.
    pub priority: String,
    /// `new`, `assigned`, `in_progress`, `pending`, `resolved` or `closed`.
    pub status: String,
    pub pending_reason: Option<String>,
    pub pending_note: Option<String>,
    pub team_id: Option<String>,
    pub team_name: Option<String>,
    pub agent_id: Option<String>,
    pub agent_name: Option<String>,
    pub resolution_code: Option<String>,
    pub resolution_notes: Option<String>,
    /// `confirmed_by_reporter`, `closed_by_staff`, `auto_closed`, `cancelled` or `duplicate`.
    pub closure_kind: Option<String>,
    pub closure_reason: Option<String>,
    pub duplicate_of_id: Option<String>,
    pub duplicate_of_number: Option<String>,
    pub reopen_count: i64,
    pub major: bool,
    pub major_manager_id: Option<String>,
    pub major_reason: Option<String>,
    /// Unix milliseconds.
    pub status_changed_at: i64,
    pub first_response_at: Option<i64>,
    pub assigned_at: Option<i64>,
    pub started_at: Option<i64>,
    pub pending_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    /// Lifecycle actions the caller may take now (only in single-record answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_actions: Option<Vec<String>>,
}

impl From<TicketRecord> for Incident {
    fn from(t: TicketRecord) -> Self {
        Incident {
            id: t.id,
            number: t.number,
            kind: t.kind,
            project_id: t.project_id,
            project_code: t.names.project_code,
            organization_id: t.organization_id,
            organization_name: t.names.organization_name,
            reporter_id: t.reporter_id,
            reporter_name: t.names.reporter_name,
            title: t.title,
            description: t.description,
            channel: t.channel,
            category_id: t.category_id,
            category_name: t.names.category_name,
            impact: t.impact,
            urgency: t.urgency,
            priority: t.priority,
            status: t.status,
            pending_reason: t.pending_reason,
            pending_note: t.pending_note,
            team_id: t.team_id,
            team_name: t.names.team_name,
            agent_id: t.agent_id,
            agent_name: t.names.agent_name,
            resolution_code: t.resolution_code,
            resolution_notes: t.resolution_notes,
            closure_kind: t.closure_kind,
            closure_reason: t.closure_reason,
            duplicate_of_id: t.duplicate_of_id,
            duplicate_of_number: t.names.duplicate_of_number,
            reopen_count: t.reopen_count,
            major: t.major,
            major_manager_id: t.major_manager_id,
            major_reason: t.major_reason,
            status_changed_at: t.status_changed_at,
            first_response_at: t.first_response_at,
            assigned_at: t.assigned_at,
            started_at: t.started_at,
            pending_at: t.pending_at,
            resolved_at: t.resolved_at,
            closed_at: t.closed_at,
            created_at: t.created_at,
            updated_at: t.updated_at,
            version: t.version,
            available_actions: None,
        }
    }
}

async fn detailed(s: &AppState, who: &keel_app::Principal, t: TicketRecord) -> Result<Incident, ApiError> {
    let actions = s.app.ticket_actions(who, &t).await?;
    let mut i = Incident::from(t);
    i.available_actions = Some(actions.iter().map(|a| a.as_str().to_string()).collect());
    Ok(i)
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    /// Queue: `mine`, `team`, `unassigned`, `pending`, `open` or `all` (default).
    pub view: Option<String>,
    /// Comma-separated statuses.
    pub status: Option<String>,
    /// Comma-separated priorities (`p1,p2`).
    pub priority: Option<String>,
    /// `incident` or `service_request`.
    pub kind: Option<String>,
    pub team_id: Option<String>,
    pub project_id: Option<String>,
    pub organization_id: Option<String>,
    pub reporter_id: Option<String>,
    pub major: Option<bool>,
    /// Text in the number or the title.
    pub q: Option<String>,
    /// Breaching soon: an open SLA clock in warning or due within the configured horizon
    /// (setting `sla.breaching_soon_minutes`, default 60).
    pub breaching_soon: Option<bool>,
}

fn list(s: &Option<String>) -> Vec<String> {
    s.as_deref().unwrap_or("").split(',').map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty()).collect()
}

fn some(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// The store filter for a query, refusing unknown queues.
pub fn filter_of(q: IncidentQuery, user_id: &str) -> Result<TicketFilter, ApiError> {
    let mut f = TicketFilter {
        statuses: list(&q.status),
        priorities: list(&q.priority),
        kind: some(q.kind),
        team_id: some(q.team_id),
        project_id: some(q.project_id),
        organization_id: some(q.organization_id),
        reporter_id: some(q.reporter_id),
        major: q.major,
        q: some(q.q),
        ..Default::default()
    };
    let view = match some(q.view) {
        None => Queue::All,
        Some(v) => Queue::parse(&v)
            .ok_or_else(|| ApiError::field("view", "invalid_choice", "view is mine, team, unassigned, pending, open or all"))?,
    };
    view.apply(&mut f, user_id);
    Ok(f)
}

#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(IncidentQuery, PageParams),
    responses((status = 200, body = ListOf<Incident>), Unauthorized, InvalidQuery))]
async fn list_incidents(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<IncidentQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    let page = page_request(&pp, INCIDENT_SORTS)?;
    let soon = q.breaching_soon == Some(true);
    let mut f = filter_of(q, &who.principal.user_id)?;
    if soon {
        f.breaching_before = Some(s.app.breaching_soon_before().await?);
    }
    let r = s.app.list_tickets(&who.principal, &f, &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(Incident::from).collect(), next_cursor: r.next_cursor }).into_response_ok())
}

/// How many tickets each queue holds for the caller.
#[derive(Serialize, ToSchema)]
pub struct Counts {
    pub mine: i64,
    pub team: i64,
    pub unassigned: i64,
    pub pending: i64,
    pub open: i64,
    pub all: i64,
}

impl From<QueueCounts> for Counts {
    fn from(c: QueueCounts) -> Self {
        Counts { mine: c.mine, team: c.team, unassigned: c.unassigned, pending: c.pending, open: c.open, all: c.all }
    }
}

#[utoipa::path(get, path = "/api/v1/incidents/counts", tag = "incidents",
    responses((status = 200, body = Counts), Unauthorized))]
async fn incident_counts(State(s): State<AppState>, ApiUser(who): ApiUser) -> ApiResponse {
    Ok(axum::Json(Counts::from(s.app.queue_counts(&who.principal).await?)).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// `incident` (default) or `service_request`.
    pub kind: Option<String>,
    pub project_id: String,
    /// Staff: the caller the ticket is logged for (required). Contacts: omit (themselves).
    pub reporter_id: Option<String>,
    /// Staff only; defaults to `api`. Contacts' tickets are always `portal`.
    pub channel: Option<String>,
    pub title: String,
    pub description: Option<String>,
    /// Staff only: `high`, `medium` (default) or `low`, or 1–3.
    pub impact: Option<String>,
    pub urgency: Option<String>,
    pub category_id: Option<String>,
    /// Staff only: assign while logging.
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    /// The affected configuration items (ids), each one the caller may see (else the field
    /// error `unknown_ci` on `ci_ids[i]`); linked to the ticket as `ci` links.
    #[serde(default)]
    pub ci_ids: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", request_body = NewIncident,
    responses((status = 201, body = Incident), Unauthorized, JsonBodyErrors, Forbidden))]
async fn create_incident(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewIncident>) -> ApiResponse {
    let input = NewTicket {
        kind: b.kind,
        project_id: b.project_id,
        reporter_id: b.reporter_id,
        channel: b.channel.or_else(|| Some("api".into())),
        title: b.title,
        description: b.description,
        impact: b.impact,
        urgency: b.urgency,
        category_id: b.category_id,
        team_id: b.team_id,
        agent_id: b.agent_id,
        ci_ids: b.ci_ids,
        ..Default::default()
    };
    let t = s.app.create_ticket(&who.principal, input).await?;
    let (version, location) = (t.version, format!("/api/v1/incidents/{}", t.id));
    Ok(created(version, location, detailed(&s, &who.principal, t).await?))
}

#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", params(("id" = String, Path, description = "Id or number (INC-000042)")),
    responses((status = 200, body = Incident, headers(("ETag" = String))), Unauthorized, NotFound))]
async fn get_incident(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let t = s.app.get_ticket(&who.principal, &id).await?;
    Ok(with_etag(t.version, detailed(&s, &who.principal, t).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentPatch {
    pub title: Option<String>,
    /// Empty string clears it.
    pub description: Option<String>,
    pub impact: Option<String>,
    pub urgency: Option<String>,
    /// Empty string clears it.
    pub category_id: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/incidents/{id}", tag = "incidents", params(("id" = String, Path), ("If-Match" = String, Header, description = "ETag of the version the change is based on")),
    request_body = IncidentPatch,
    responses((status = 200, body = Incident), Unauthorized, JsonBodyErrors, VersionErrors, NotFound))]
async fn update_incident(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<IncidentPatch>,
) -> ApiResponse {
    s.app.get_ticket(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let patch = TicketPatch {
        title: b.title,
        description: b.description,
        impact: b.impact,
        urgency: b.urgency,
        category_id: b.category_id,
        service_id: None,
        ci_ids: None,
    };
    let t = s.app.update_ticket(&who.principal, &id, patch, Some(version)).await?;
    Ok(with_etag(t.version, detailed(&s, &who.principal, t).await?))
}

/// A lifecycle step. Which fields are needed depends on `action`: `assign`/`reassign` need
/// `team_id` and/or `agent_id`; `pend` needs `pending_reason` (and `note` for `other`);
/// `resolve` needs `resolution_code` and `resolution_notes`; `reject`, `reopen` and `cancel`
/// need `reason`; `mark_duplicate` needs `duplicate_of` (a number or id).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// `assign`, `reassign`, `start`, `pend`, `resume`, `resolve`, `confirm`, `reject`, `close`,
    /// `reopen`, `cancel` or `mark_duplicate`.
    pub action: String,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    /// `waiting_for_customer`, `waiting_for_supplier`, `waiting_for_change` or `other`.
    pub pending_reason: Option<String>,
    pub note: Option<String>,
    /// `solved`, `workaround`, `fulfilled`, `advice_given`, `no_fault_found`,
    /// `resolved_by_change`, `resolved_by_supplier` or `resolved_by_problem`.
    pub resolution_code: Option<String>,
    pub resolution_notes: Option<String>,
    pub reason: Option<String>,
    pub duplicate_of: Option<String>,
}

fn optional_if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    if headers.contains_key(header::IF_MATCH) { if_match(headers).map(Some) } else { Ok(None) }
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/transitions", tag = "incidents",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "Optional: refuse if the ticket changed since this ETag")),
    request_body = TransitionBody,
    responses((status = 200, body = Incident), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, VersionErrors, NotFound))]
async fn transition_incident(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<TransitionBody>,
) -> ApiResponse {
    let version = optional_if_match(&headers)?;
    let input = TransitionInput {
        action: b.action,
        team_id: b.team_id,
        agent_id: b.agent_id,
        pending_reason: b.pending_reason,
        note: b.note,
        resolution_code: b.resolution_code,
        resolution_notes: b.resolution_notes,
        reason: b.reason,
        duplicate_of: b.duplicate_of,
    };
    let t = s.app.transition_ticket(&who.principal, &id, input, version).await?;
    Ok(with_etag(t.version, detailed(&s, &who.principal, t).await?))
}

/// A public reply (the customer sees it) or an internal note (staff only).
#[derive(Serialize, ToSchema)]
pub struct Comment {
    pub id: String,
    /// `public` or `internal`.
    pub visibility: String,
    pub body: String,
    pub author_id: String,
    pub author_name: Option<String>,
    /// `staff` or `contact`.
    pub author_kind: String,
    pub created_at: i64,
}

impl From<CommentRecord> for Comment {
    fn from(c: CommentRecord) -> Self {
        Comment {
            id: c.id,
            visibility: c.visibility,
            body: c.body,
            author_id: c.author_id,
            author_name: c.author_name,
            author_kind: c.author_kind,
            created_at: c.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// `public` (default) or `internal` (staff only).
    pub visibility: Option<String>,
    pub body: String,
}

#[utoipa::path(get, path = "/api/v1/incidents/{id}/comments", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Comment>, description = "Customer contacts receive public replies only"), Unauthorized, NotFound))]
async fn list_comments(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let c = s.app.list_comments(&who.principal, &id).await?;
    Ok(axum::Json(c.into_iter().map(Comment::from).collect::<Vec<_>>()).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/comments", tag = "incidents", params(("id" = String, Path)), request_body = NewComment,
    responses((status = 201, body = Comment), Unauthorized, JsonBodyErrors, NotFound))]
async fn add_comment(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NewComment>,
) -> ApiResponse {
    let c = s.app.add_comment(&who.principal, &id, b.visibility.as_deref().unwrap_or("public"), &b.body).await?;
    Ok(axum::response::IntoResponse::into_response((StatusCode::CREATED, axum::Json(Comment::from(c)))))
}

/// Time a staff member spent on a ticket.
#[derive(Serialize, ToSchema)]
pub struct WorkLogEntry {
    pub id: String,
    pub author_id: String,
    pub author_name: Option<String>,
    pub minutes: i64,
    /// When the work was done (Unix milliseconds).
    pub performed_at: i64,
    pub note: Option<String>,
    pub created_at: i64,
}

impl From<WorkLogRecord> for WorkLogEntry {
    fn from(w: WorkLogRecord) -> Self {
        WorkLogEntry {
            id: w.id,
            author_id: w.author_id,
            author_name: w.author_name,
            minutes: w.minutes,
            performed_at: w.performed_at,
            note: w.note,
            created_at: w.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkLog {
    /// 1 to 1440.
    pub minutes: i64,
    /// Unix milliseconds; default now.
    pub performed_at: Option<i64>,
    pub note: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/incidents/{id}/worklog", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = Vec<WorkLogEntry>), Unauthorized, Forbidden, NotFound))]
async fn list_work_log(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let v = s.app.list_work_log(&who.principal, &id).await?;
    Ok(axum::Json(v.into_iter().map(WorkLogEntry::from).collect::<Vec<_>>()).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/worklog", tag = "incidents", params(("id" = String, Path)), request_body = NewWorkLog,
    responses((status = 201, body = WorkLogEntry), Unauthorized, JsonBodyErrors, NotFound))]
async fn add_work_log(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NewWorkLog>,
) -> ApiResponse {
    let e = s.app.add_work_log(&who.principal, &id, b.minutes, b.performed_at, b.note.as_deref()).await?;
    Ok(axum::response::IntoResponse::into_response((StatusCode::CREATED, axum::Json(WorkLogEntry::from(e)))))
}

/// The reporter's satisfaction (客户满意度) with a resolved ticket.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Rating {
    /// 1 (very dissatisfied) to 5 (very satisfied).
    pub score: i64,
    pub comment: Option<String>,
    #[serde(default, skip_deserializing)]
    pub rated_by: String,
    #[serde(default, skip_deserializing)]
    pub rated_at: i64,
}

impl From<RatingRecord> for Rating {
    fn from(r: RatingRecord) -> Self {
        Rating { score: r.score, comment: r.comment, rated_by: r.rated_by, rated_at: r.rated_at }
    }
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/rating", tag = "incidents", params(("id" = String, Path)), request_body = Rating,
    responses((status = 200, body = Rating), Unauthorized, JsonBodyErrors, NotFound))]
async fn rate_incident(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<Rating>,
) -> ApiResponse {
    let r = s.app.rate_ticket(&who.principal, &id, b.score, b.comment.as_deref()).await?;
    Ok(axum::Json(Rating::from(r)).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MajorIncidentBody {
    /// Who runs the major incident (declaring only).
    pub manager_id: Option<String>,
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/major", tag = "incidents", params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body = MajorIncidentBody,
    responses((status = 200, body = Incident), Unauthorized, JsonBodyErrors, VersionErrors, NotFound))]
async fn declare_major(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<MajorIncidentBody>,
) -> ApiResponse {
    let version = optional_if_match(&headers)?;
    let t = s.app.declare_major_incident(&who.principal, &id, b.manager_id.as_deref().unwrap_or(""), &b.reason, version).await?;
    Ok(with_etag(t.version, detailed(&s, &who.principal, t).await?))
}

#[utoipa::path(delete, path = "/api/v1/incidents/{id}/major", tag = "incidents", params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body = MajorIncidentBody,
    responses((status = 200, body = Incident), Unauthorized, JsonBodyErrors, VersionErrors, NotFound))]
async fn stand_down_major(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<MajorIncidentBody>,
) -> ApiResponse {
    let version = optional_if_match(&headers)?;
    let t = s.app.stand_down_major_incident(&who.principal, &id, &b.reason, version).await?;
    Ok(with_etag(t.version, detailed(&s, &who.principal, t).await?))
}

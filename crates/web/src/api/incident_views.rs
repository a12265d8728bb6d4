//! `/api/v1/incident-views`: the service desk's saved and shared queue views (REQUIREMENTS §4
//! agent workspace) — their tickets, counts and CSV export, always within the reader's scope.

use super::incidents::{INCIDENT_SORTS, Incident};
use super::{ApiJson, ApiPath, ApiQuery, ApiResponse, Forbidden, JsonBodyErrors, ListOf, NotFound, Unauthorized, VersionErrors};
use crate::AppState;
use crate::auth::ApiUser;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use keel_app::incident_views::{IncidentView, ViewFilters, ViewInput};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_views, create_view))
        .routes(routes!(get_view, update_view, delete_view))
        .routes(routes!(view_incidents))
        .routes(routes!(export_view))
}

/// The filters a view keeps; empty values do not filter.
#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ViewFiltersDoc {
    /// `mine`, `team`, `unassigned`, `pending`, `open` or `all`; "mine" and "team" follow the reader.
    pub queue: Option<String>,
    pub statuses: Vec<String>,
    pub priorities: Vec<String>,
    /// `incident` or `service_request`.
    pub kind: Option<String>,
    pub team_id: Option<String>,
    pub project_id: Option<String>,
    pub organization_id: Option<String>,
    pub major: Option<bool>,
    /// Text in the number or the title.
    pub q: Option<String>,
}

impl From<ViewFilters> for ViewFiltersDoc {
    fn from(f: ViewFilters) -> Self {
        ViewFiltersDoc {
            queue: f.queue,
            statuses: f.statuses,
            priorities: f.priorities,
            kind: f.kind,
            team_id: f.team_id,
            project_id: f.project_id,
            organization_id: f.organization_id,
            major: f.major,
            q: f.q,
        }
    }
}

impl From<ViewFiltersDoc> for ViewFilters {
    fn from(f: ViewFiltersDoc) -> Self {
        ViewFilters {
            queue: f.queue,
            statuses: f.statuses,
            priorities: f.priorities,
            kind: f.kind,
            team_id: f.team_id,
            project_id: f.project_id,
            organization_id: f.organization_id,
            major: f.major,
            q: f.q,
        }
    }
}

/// A saved queue view.
#[derive(Serialize, ToSchema)]
pub struct IncidentViewDoc {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    pub owner_name: String,
    /// `private`, `team` or `everyone` (all staff).
    pub audience: String,
    pub team_id: Option<String>,
    pub filters: ViewFiltersDoc,
    /// Sort key (`priority`, `updated_at`, `created_at`, `number`, `status`), `-` first for descending.
    pub sort: String,
    pub columns: Vec<String>,
    /// Whether the caller may change or delete it (its owner or an administrator).
    pub editable: bool,
    /// How many tickets it shows the caller now.
    pub count: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

fn doc(v: IncidentView, count: i64) -> IncidentViewDoc {
    IncidentViewDoc {
        id: v.record.id,
        name: v.record.name,
        owner_id: v.record.owner_id,
        owner_name: v.record.owner_name,
        audience: v.record.audience,
        team_id: v.record.team_id,
        filters: v.filters.into(),
        sort: v.record.sort,
        columns: v.columns,
        editable: v.editable,
        count,
        created_at: v.record.created_at,
        updated_at: v.record.updated_at,
        version: v.record.version,
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentViewBody {
    pub name: String,
    /// `private` (default), `team` (with `team_id`, a team of yours) or `everyone`.
    pub audience: Option<String>,
    pub team_id: Option<String>,
    pub filters: Option<ViewFiltersDoc>,
    /// Default `priority`.
    pub sort: Option<String>,
    /// Columns in order; default number, title, status, priority, sla, project, assignee, reporter, updated_at.
    pub columns: Option<Vec<String>>,
}

fn input(b: IncidentViewBody) -> ViewInput {
    ViewInput {
        name: b.name,
        audience: b.audience.unwrap_or_default(),
        team_id: b.team_id,
        filters: b.filters.unwrap_or_default().into(),
        sort: b.sort.unwrap_or_default(),
        columns: b.columns.unwrap_or_default(),
    }
}

async fn counted(s: &AppState, who: &keel_app::Principal, v: IncidentView) -> Result<IncidentViewDoc, crate::error::ApiError> {
    let n = s.app.count_view(who, &v).await?;
    Ok(doc(v, n))
}

#[utoipa::path(get, path = "/api/v1/incident-views", tag = "incidents",
    responses((status = 200, body = Vec<IncidentViewDoc>, description = "The caller's views, their teams' and those shared with all staff, each with its count"), Unauthorized))]
async fn list_views(State(s): State<AppState>, ApiUser(who): ApiUser) -> ApiResponse {
    let mut out = Vec::new();
    for v in s.app.list_views(&who.principal).await? {
        out.push(counted(&s, &who.principal, v).await?);
    }
    Ok(axum::Json(out).into_response())
}

#[utoipa::path(post, path = "/api/v1/incident-views", tag = "incidents", request_body = IncidentViewBody,
    responses((status = 201, body = IncidentViewDoc), Unauthorized, Forbidden, JsonBodyErrors))]
async fn create_view(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<IncidentViewBody>) -> ApiResponse {
    let v = s.app.create_view(&who.principal, input(b)).await?;
    let (version, loc) = (v.record.version, format!("/api/v1/incident-views/{}", v.record.id));
    Ok(super::created(version, loc, counted(&s, &who.principal, v).await?))
}

#[utoipa::path(get, path = "/api/v1/incident-views/{id}", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = IncidentViewDoc), Unauthorized, NotFound))]
async fn get_view(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let v = s.app.get_view(&who.principal, &id).await?;
    let version = v.record.version;
    Ok(super::with_etag(version, counted(&s, &who.principal, v).await?))
}

#[utoipa::path(put, path = "/api/v1/incident-views/{id}", tag = "incidents", params(("id" = String, Path)), request_body = IncidentViewBody,
    responses((status = 200, body = IncidentViewDoc), Unauthorized, Forbidden, JsonBodyErrors, VersionErrors, NotFound))]
async fn update_view(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: axum::http::HeaderMap,
    ApiJson(b): ApiJson<IncidentViewBody>,
) -> ApiResponse {
    let expected = super::if_match(&headers)?;
    let v = s.app.update_view(&who.principal, &id, input(b), Some(expected)).await?;
    let version = v.record.version;
    Ok(super::with_etag(version, counted(&s, &who.principal, v).await?))
}

#[utoipa::path(delete, path = "/api/v1/incident-views/{id}", tag = "incidents", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), Unauthorized, Forbidden, NotFound))]
async fn delete_view(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    s.app.delete_view(&who.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ViewPageParams {
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// The page request of a view: its own sort, the caller's cursor and size.
fn view_page(v: &IncidentView, pp: ViewPageParams) -> Result<keel_store::page::PageRequest, crate::error::ApiError> {
    super::page_request(&super::PageParams { cursor: pp.cursor, limit: pp.limit, sort: Some(v.record.sort.clone()) }, INCIDENT_SORTS)
}

#[utoipa::path(get, path = "/api/v1/incident-views/{id}/incidents", tag = "incidents", params(("id" = String, Path), ViewPageParams),
    responses((status = 200, body = ListOf<Incident>, description = "The view's tickets in its sort order, within the caller's scope"), Unauthorized, NotFound, super::InvalidQuery))]
async fn view_incidents(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(pp): ApiQuery<ViewPageParams>,
) -> ApiResponse {
    let v = s.app.get_view(&who.principal, &id).await?;
    let page = view_page(&v, pp)?;
    let r = s.app.list_tickets(&who.principal, &v.filters.to_filter(&who.principal.user_id), &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(Incident::from).collect(), next_cursor: r.next_cursor }).into_response())
}

#[utoipa::path(get, path = "/api/v1/incident-views/{id}/export", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, description = "CSV (UTF-8) of every ticket the view shows the caller", content_type = "text/csv", body = String),
        Unauthorized, NotFound))]
async fn export_view(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let v = s.app.get_view(&who.principal, &id).await?;
    let page = view_page(&v, ViewPageParams { cursor: None, limit: None })?;
    let f = v.filters.to_filter(&who.principal.user_id);
    Ok(super::desk::csv_stream(s.app.clone(), who.principal, f, page))
}

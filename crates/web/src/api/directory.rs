//! `/api/v1/organizations`, `/api/v1/teams`, `/api/v1/projects`: the structure that scopes
//! every process record, with process tailoring per service project (§2.1.4).

use super::{
    ApiJson, ApiPath, ApiQuery, ApiResponse, Forbidden, InvalidQuery, JsonBodyErrors, ListOf, NotFound, PageParams, ProcessName,
    Unauthorized, VersionErrors, created, if_match, page_request, with_etag,
};
use crate::AppState;
use crate::auth::ApiUser;
use axum::extract::State;
use axum::http::HeaderMap;
use keel_app::directory::{OrganizationInput, ProjectInput, TeamInput};
use keel_store::directory::{OrgFilter, OrganizationRecord, ProjectFilter, ProjectRecord, TailoringDecision, TeamRecord};
use keel_store::page::{SortKey, SortKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_organizations, create_organization))
        .routes(routes!(get_organization, update_organization))
        .routes(routes!(list_teams, create_team))
        .routes(routes!(get_team, update_team))
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, update_project))
        .routes(routes!(get_tailoring))
        .routes(routes!(set_process))
}

const ORG_SORTS: &[SortKey] = &[
    SortKey { name: "name", column: "name", kind: SortKind::Text },
    SortKey { name: "code", column: "code", kind: SortKind::Text },
    SortKey { name: "created_at", column: "created_at", kind: SortKind::Int },
    SortKey { name: "updated_at", column: "updated_at", kind: SortKind::Int },
];
const TEAM_SORTS: &[SortKey] = &[
    SortKey { name: "name", column: "name", kind: SortKind::Text },
    SortKey { name: "created_at", column: "created_at", kind: SortKind::Int },
];
const PROJECT_SORTS: &[SortKey] = &[
    SortKey { name: "code", column: "code", kind: SortKind::Text },
    SortKey { name: "name", column: "name", kind: SortKind::Text },
    SortKey { name: "created_at", column: "created_at", kind: SortKind::Int },
    SortKey { name: "updated_at", column: "updated_at", kind: SortKind::Int },
];

// ---- organisations ----

/// A customer organisation.
#[derive(Serialize, ToSchema)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub code: String,
    #[schema(required = true)]
    pub description: Option<String>,
    pub active: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl From<OrganizationRecord> for Organization {
    fn from(o: OrganizationRecord) -> Self {
        Organization {
            id: o.id,
            name: o.name,
            code: o.code,
            description: o.description,
            active: o.active,
            created_at: o.created_at,
            updated_at: o.updated_at,
            version: o.version,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Short code: letters, digits, `-`, `_`; stored upper-case; unique.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,32}$", example = "ACME")]
    pub code: String,
    #[schema(max_length = 4000)]
    pub description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationPatch {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9_-]{1,32}$", example = "ACME")]
    pub code: Option<String>,
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    pub active: Option<bool>,
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct OrgQuery {
    /// Text in name or code.
    pub q: Option<String>,
    pub active: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/organizations", tag = "directory", params(OrgQuery, PageParams),
    responses((status = 200, description = "A page of the organisations the caller may see", body = ListOf<Organization>), Unauthorized, InvalidQuery))]
async fn list_organizations(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<OrgQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    let page = page_request(&pp, ORG_SORTS)?;
    let r = s.app.list_organizations(&who.principal, &OrgFilter { q: q.q, active: q.active }, &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(Organization::from).collect(), next_cursor: r.next_cursor }).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/organizations", tag = "directory", request_body = NewOrganization,
    responses((status = 201, description = "The organisation was created", body = Organization, headers(("ETag" = String, description = "The record's version, for `If-Match`"), ("Location" = String, description = "The new record's URL")),
        links(("get" = (operation_id = "get_organization", parameters(("id" = "$response.body#/id")))), ("update" = (operation_id = "update_organization", parameters(("id" = "$response.body#/id"), ("If-Match" = "$response.header.ETag")))))), JsonBodyErrors, Unauthorized, Forbidden))]
async fn create_organization(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewOrganization>) -> ApiResponse {
    let o = s
        .app
        .create_organization(&who.principal, OrganizationInput { name: b.name, code: b.code, description: b.description, active: None })
        .await?;
    Ok(created(o.version, format!("/api/v1/organizations/{}", o.id), Organization::from(o)))
}

#[utoipa::path(get, path = "/api/v1/organizations/{id}", tag = "directory", params(("id" = String, Path)),
    responses((status = 200, description = "The organisation", body = Organization, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), Unauthorized, NotFound))]
async fn get_organization(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let o = s.app.get_organization(&who.principal, &id).await?;
    Ok(with_etag(o.version, Organization::from(o)))
}

#[utoipa::path(patch, path = "/api/v1/organizations/{id}", tag = "directory", params(("id" = String, Path), ("If-Match" = String, Header, description = "ETag of the version the change is based on")),
    request_body = OrganizationPatch,
    responses((status = 200, description = "The updated organisation", body = Organization, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), JsonBodyErrors, VersionErrors, Unauthorized, Forbidden, NotFound))]
async fn update_organization(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<OrganizationPatch>,
) -> ApiResponse {
    let cur = s.app.get_organization(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let input = OrganizationInput {
        name: b.name.unwrap_or(cur.name),
        code: b.code.unwrap_or(cur.code),
        description: b.description.or(cur.description),
        active: b.active,
    };
    let o = s.app.update_organization(&who.principal, &id, input, Some(version)).await?;
    Ok(with_etag(o.version, Organization::from(o)))
}

// ---- teams ----

/// A resolver group (职能小组).
#[derive(Serialize, ToSchema)]
pub struct Team {
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(required = true)]
    pub email: Option<String>,
    #[schema(required = true)]
    pub lead_user_id: Option<String>,
    pub member_ids: Vec<String>,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl From<TeamRecord> for Team {
    fn from(t: TeamRecord) -> Self {
        Team {
            id: t.id,
            name: t.name,
            description: t.description,
            email: t.email,
            lead_user_id: t.lead_user_id,
            member_ids: t.member_ids,
            active: t.active,
            created_at: t.created_at,
            updated_at: t.updated_at,
            version: t.version,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    pub lead_user_id: Option<String>,
    #[serde(default)]
    pub member_ids: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamPatch {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    pub lead_user_id: Option<String>,
    pub member_ids: Option<Vec<String>>,
    pub active: Option<bool>,
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct TextQuery {
    pub q: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/teams", tag = "directory", params(TextQuery, PageParams),
    responses((status = 200, description = "A page of teams (staff only)", body = ListOf<Team>), Unauthorized, Forbidden, InvalidQuery))]
async fn list_teams(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<TextQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    let page = page_request(&pp, TEAM_SORTS)?;
    let r = s.app.list_teams(&who.principal, q.q.as_deref(), &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(Team::from).collect(), next_cursor: r.next_cursor }).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/teams", tag = "directory", request_body = NewTeam,
    responses((status = 201, description = "The team was created", body = Team, headers(("ETag" = String, description = "The record's version, for `If-Match`"), ("Location" = String, description = "The new record's URL")),
        links(("get" = (operation_id = "get_team", parameters(("id" = "$response.body#/id")))), ("update" = (operation_id = "update_team", parameters(("id" = "$response.body#/id"), ("If-Match" = "$response.header.ETag")))))), JsonBodyErrors, Unauthorized, Forbidden))]
async fn create_team(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewTeam>) -> ApiResponse {
    let t = s
        .app
        .create_team(
            &who.principal,
            TeamInput {
                name: b.name,
                description: b.description,
                email: b.email,
                lead_user_id: b.lead_user_id,
                member_ids: b.member_ids,
                active: None,
            },
        )
        .await?;
    Ok(created(t.version, format!("/api/v1/teams/{}", t.id), Team::from(t)))
}

#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "directory", params(("id" = String, Path)),
    responses((status = 200, description = "The team", body = Team, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), Unauthorized, NotFound))]
async fn get_team(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let t = s.app.get_team(&who.principal, &id).await?;
    Ok(with_etag(t.version, Team::from(t)))
}

#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "directory", params(("id" = String, Path), ("If-Match" = String, Header, description = "ETag of the version the change is based on")), request_body = TeamPatch,
    responses((status = 200, description = "The updated team", body = Team, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), JsonBodyErrors, VersionErrors, Unauthorized, Forbidden, NotFound))]
async fn update_team(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<TeamPatch>,
) -> ApiResponse {
    let cur = s.app.get_team(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let input = TeamInput {
        name: b.name.unwrap_or(cur.name),
        description: b.description.or(cur.description),
        email: b.email.or(cur.email),
        lead_user_id: b.lead_user_id.or(cur.lead_user_id),
        member_ids: b.member_ids.unwrap_or(cur.member_ids),
        active: b.active,
    };
    let t = s.app.update_team(&who.principal, &id, input, Some(version)).await?;
    Ok(with_etag(t.version, Team::from(t)))
}

// ---- service projects ----

/// A service project (服务项目): one customer contract.
#[derive(Serialize, ToSchema)]
pub struct Project {
    pub id: String,
    pub code: String,
    pub name: String,
    pub organization_id: String,
    #[schema(required = true)]
    pub manager_user_id: Option<String>,
    #[schema(required = true)]
    pub description: Option<String>,
    /// `YYYY-MM-DD`
    #[schema(required = true)]
    pub starts_on: Option<String>,
    #[schema(required = true)]
    pub ends_on: Option<String>,
    /// `active` or `closed`.
    pub status: String,
    pub member_ids: Vec<String>,
    /// Tailorable processes switched off for this project.
    pub disabled_processes: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl From<ProjectRecord> for Project {
    fn from(p: ProjectRecord) -> Self {
        Project {
            id: p.id,
            code: p.code,
            name: p.name,
            organization_id: p.organization_id,
            manager_user_id: p.manager_user_id,
            description: p.description,
            starts_on: p.starts_on,
            ends_on: p.ends_on,
            status: p.status,
            member_ids: p.member_ids,
            disabled_processes: p.disabled_processes,
            created_at: p.created_at,
            updated_at: p.updated_at,
            version: p.version,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    /// Short code: letters, digits, `-`, `_`; stored upper-case; unique.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,32}$", example = "ACME")]
    pub code: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub organization_id: String,
    pub manager_user_id: Option<String>,
    #[schema(max_length = 8000)]
    pub description: Option<String>,
    #[schema(format = Date)]
    pub starts_on: Option<String>,
    /// Not before `starts_on`.
    #[schema(format = Date)]
    pub ends_on: Option<String>,
    #[serde(default)]
    pub member_ids: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,32}$", example = "ACME")]
    pub code: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    pub organization_id: Option<String>,
    pub manager_user_id: Option<String>,
    #[schema(max_length = 8000)]
    pub description: Option<String>,
    #[schema(format = Date)]
    pub starts_on: Option<String>,
    #[schema(format = Date)]
    pub ends_on: Option<String>,
    /// `active` or `closed`.
    #[schema(pattern = "^(active|closed)$")]
    pub status: Option<String>,
    pub member_ids: Option<Vec<String>>,
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ProjectQuery {
    pub q: Option<String>,
    pub organization_id: Option<String>,
    pub status: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/projects", tag = "directory", params(ProjectQuery, PageParams),
    responses((status = 200, description = "A page of the service projects the caller may see", body = ListOf<Project>), Unauthorized, InvalidQuery))]
async fn list_projects(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<ProjectQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    let page = page_request(&pp, PROJECT_SORTS)?;
    let r =
        s.app.list_projects(&who.principal, &ProjectFilter { q: q.q, organization_id: q.organization_id, status: q.status }, &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(Project::from).collect(), next_cursor: r.next_cursor }).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "directory", request_body = NewProject,
    responses((status = 201, description = "The service project was created", body = Project, headers(("ETag" = String, description = "The record's version, for `If-Match`"), ("Location" = String, description = "The new record's URL")),
        links(("get" = (operation_id = "get_project", parameters(("id" = "$response.body#/id")))), ("update" = (operation_id = "update_project", parameters(("id" = "$response.body#/id"), ("If-Match" = "$response.header.ETag")))))), JsonBodyErrors, Unauthorized, Forbidden))]
async fn create_project(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewProject>) -> ApiResponse {
    let input = ProjectInput {
        code: b.code,
        name: b.name,
        organization_id: b.organization_id,
        manager_user_id: b.manager_user_id,
        description: b.description,
        starts_on: b.starts_on,
        ends_on: b.ends_on,
        status: None,
        member_ids: b.member_ids,
    };
    let p = s.app.create_project(&who.principal, input).await?;
    Ok(created(p.version, format!("/api/v1/projects/{}", p.id), Project::from(p)))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "directory", params(("id" = String, Path)),
    responses((status = 200, description = "The service project", body = Project, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), Unauthorized, NotFound))]
async fn get_project(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let p = s.app.get_project(&who.principal, &id).await?;
    Ok(with_etag(p.version, Project::from(p)))
}

#[utoipa::path(patch, path = "/api/v1/projects/{id}", tag = "directory", params(("id" = String, Path), ("If-Match" = String, Header, description = "ETag of the version the change is based on")), request_body = ProjectPatch,
    responses((status = 200, description = "The updated service project", body = Project, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), JsonBodyErrors, VersionErrors, Unauthorized, Forbidden, NotFound))]
async fn update_project(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ProjectPatch>,
) -> ApiResponse {
    let cur = s.app.get_project(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let input = ProjectInput {
        code: b.code.unwrap_or(cur.code),
        name: b.name.unwrap_or(cur.name),
        organization_id: b.organization_id.unwrap_or(cur.organization_id),
        manager_user_id: b.manager_user_id.or(cur.manager_user_id),
        description: b.description.or(cur.description),
        starts_on: b.starts_on.or(cur.starts_on),
        ends_on: b.ends_on.or(cur.ends_on),
        status: b.status.or(Some(cur.status)),
        member_ids: b.member_ids.unwrap_or(cur.member_ids),
    };
    let p = s.app.update_project(&who.principal, &id, input, Some(version)).await?;
    Ok(with_etag(p.version, Project::from(p)))
}

/// One tailoring decision: who switched a process on or off, when and why.
#[derive(Serialize, ToSchema)]
pub struct TailoringEntry {
    pub process: String,
    pub mandatory: bool,
    pub enabled: bool,
    pub reason: String,
    pub changed_by: String,
    pub changed_at: i64,
}

impl From<TailoringDecision> for TailoringEntry {
    fn from(d: TailoringDecision) -> Self {
        let mandatory = keel_domain::process::Process::parse(&d.process).is_some_and(|p| p.is_mandatory());
        TailoringEntry {
            process: d.process,
            mandatory,
            enabled: d.enabled,
            reason: d.reason,
            changed_by: d.changed_by,
            changed_at: d.changed_at,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/processes", tag = "directory", params(("id" = String, Path)),
    responses((status = 200, description = "Each process's tailoring decision for the project", body = Vec<TailoringEntry>), Unauthorized, NotFound))]
async fn get_tailoring(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let d = s.app.project_tailoring(&who.principal, &id).await?;
    Ok(axum::Json(d.into_iter().map(TailoringEntry::from).collect::<Vec<_>>()).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessSwitch {
    pub enabled: bool,
    /// Why the process is switched on or off (kept as an ISO/IEC 20000 record).
    #[schema(min_length = 1)]
    pub reason: String,
}

#[utoipa::path(put, path = "/api/v1/projects/{id}/processes/{process}", tag = "directory",
    params(("id" = String, Path), ("process" = ProcessName, Path)),
    request_body = ProcessSwitch,
    responses((status = 200, description = "The service project after the change", body = Project, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), JsonBodyErrors, Unauthorized, Forbidden, NotFound))]
async fn set_process(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath((id, process)): ApiPath<(String, String)>,
    ApiJson(b): ApiJson<ProcessSwitch>,
) -> ApiResponse {
    let p = s.app.tailor_project(&who.principal, &id, &process, b.enabled, &b.reason).await?;
    Ok(with_etag(p.version, Project::from(p)))
}

/// `Json(x).into_response()` without importing the trait everywhere.
pub trait IntoResponseOk {
    fn into_response_ok(self) -> axum::response::Response;
}

impl<T: Serialize> IntoResponseOk for axum::Json<T> {
    fn into_response_ok(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

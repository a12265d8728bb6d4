//! `/api/v1/problems` and `/api/v1/known-errors`: problem management and the known error
//! database (REQUIREMENTS §4), with the portal's knowledge articles and the incident trends.
//! Staff only, except the published articles under `/api/v1/portal/articles`.

use super::directory::IntoResponseOk;
use super::{
    ApiJson, ApiPath, ApiQuery, ApiResponse, Forbidden, InvalidQuery, JsonBodyErrors, ListOf, NotFound, PageParams, Unauthorized,
    VersionErrors, created, if_match, page_request, with_etag,
};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ErrorBody};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use keel_app::problems::{KnownErrorPatch, NewProblem, PortalArticle, ProblemPatch, ProblemStep, Trend, TrendBucket, TrendQuery, TrendRow};
use keel_domain::validate::Locale;
use keel_store::page::{SortKey, SortKind};
use keel_store::problems::{KnownErrorFilter, KnownErrorRecord, LinkedTicket, ProblemFilter, ProblemRecord, TrendDimension};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_problems, create_problem))
        .routes(routes!(problem_trend))
        .routes(routes!(get_problem, update_problem))
        .routes(routes!(transition_problem))
        .routes(routes!(list_problem_incidents, link_problem_incidents))
        .routes(routes!(list_known_errors))
        .routes(routes!(suggest_known_errors))
        .routes(routes!(get_known_error, update_known_error))
        .routes(routes!(link_known_error))
        .routes(routes!(list_articles))
        .routes(routes!(get_article))
}

pub const PROBLEM_SORTS: &[SortKey] = &[
    SortKey { name: "updated_at", column: "p.updated_at", kind: SortKind::Int },
    SortKey { name: "created_at", column: "p.created_at", kind: SortKind::Int },
    SortKey { name: "number", column: "p.number", kind: SortKind::Text },
    SortKey { name: "priority", column: "p.priority", kind: SortKind::Text },
    SortKey { name: "status", column: "p.status", kind: SortKind::Text },
];

pub const KNOWN_ERROR_SORTS: &[SortKey] = &[
    SortKey { name: "number", column: "k.number", kind: SortKind::Text },
    SortKey { name: "updated_at", column: "k.updated_at", kind: SortKind::Int },
];

/// A problem (PRB-000001): the unknown cause of one or more incidents.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    pub id: String,
    pub number: String,
    pub project_id: String,
    pub project_code: String,
    pub organization_id: String,
    pub title: String,
    pub description: Option<String>,
    /// `incident_trend`, `major_incident`, `proactive` or `supplier`.
    pub source: String,
    /// `p1` to `p4`.
    pub priority: String,
    pub service_id: Option<String>,
    pub service_name: Option<String>,
    pub ci_ids: Vec<String>,
    /// `new`, `under_investigation`, `known_error`, `resolved` or `closed`.
    pub status: String,
    pub team_id: Option<String>,
    pub team_name: Option<String>,
    pub agent_id: Option<String>,
    pub agent_name: Option<String>,
    /// `five_whys`, `ishikawa`, `kepner_tregoe`, `fault_tree` or `other`.
    pub rca_method: Option<String>,
    pub rca_findings: Option<String>,
    pub root_cause: Option<String>,
    pub workaround: Option<String>,
    pub known_error_number: Option<String>,
    pub resolution_notes: Option<String>,
    pub resolved_at: Option<i64>,
    /// `resolved` or `cancelled`.
    pub closure_kind: Option<String>,
    pub closure_reason: Option<String>,
    pub closed_at: Option<i64>,
    pub reopen_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    /// Lifecycle actions the caller may take now (only in single-record answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_actions: Option<Vec<String>>,
}

impl From<ProblemRecord> for Problem {
    fn from(p: ProblemRecord) -> Self {
        Problem {
            id: p.id,
            number: p.number,
            project_id: p.project_id,
            project_code: p.names.project_code,
            organization_id: p.organization_id,
            title: p.title,
            description: p.description,
            source: p.source,
            priority: p.priority,
            service_id: p.service_id,
            service_name: p.names.service_name,
            ci_ids: p.ci_ids,
            status: p.status,
            team_id: p.team_id,
            team_name: p.names.team_name,
            agent_id: p.agent_id,
            agent_name: p.names.agent_name,
            rca_method: p.rca_method,
            rca_findings: p.rca_findings,
            root_cause: p.root_cause,
            workaround: p.workaround,
            known_error_number: p.names.known_error_number,
            resolution_notes: p.resolution_notes,
            resolved_at: p.resolved_at,
            closure_kind: p.closure_kind,
            closure_reason: p.closure_reason,
            closed_at: p.closed_at,
            reopen_count: p.reopen_count,
            created_at: p.created_at,
            updated_at: p.updated_at,
            version: p.version,
            available_actions: None,
        }
    }
}

async fn detailed(s: &AppState, who: &keel_app::Principal, p: ProblemRecord) -> Result<Problem, ApiError> {
    let actions = s.app.problem_actions(who, &p).await?;
    let mut out = Problem::from(p);
    out.available_actions = Some(actions.iter().map(|a| a.as_str().to_string()).collect());
    Ok(out)
}

fn some(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ProblemQuery {
    /// Comma-separated statuses.
    pub status: Option<String>,
    /// Only problems not yet resolved or closed.
    pub open: Option<bool>,
    pub project_id: Option<String>,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    pub priority: Option<String>,
    /// Text in the number or the title.
    pub q: Option<String>,
}

pub fn problem_filter(q: ProblemQuery) -> ProblemFilter {
    ProblemFilter {
        statuses: q.status.unwrap_or_default().split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        open_only: q.open.unwrap_or(false),
        project_id: some(q.project_id),
        team_id: some(q.team_id),
        agent_id: some(q.agent_id),
        priority: some(q.priority).map(|p| p.to_ascii_lowercase()),
        q: some(q.q),
    }
}

#[utoipa::path(get, path = "/api/v1/problems", tag = "problems", params(ProblemQuery, PageParams),
    responses((status = 200, body = ListOf<Problem>), Unauthorized, NotFound, InvalidQuery))]
async fn list_problems(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<ProblemQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    let page = page_request(&pp, PROBLEM_SORTS)?;
    let r = s.app.list_problems(&who.principal, &problem_filter(q), &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(Problem::from).collect(), next_cursor: r.next_cursor }).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProblemBody {
    pub project_id: String,
    pub title: String,
    pub description: Option<String>,
    /// `incident_trend` (default with two or more incidents), `major_incident`, `proactive`
    /// (default otherwise) or `supplier`.
    pub source: Option<String>,
    /// `p1`–`p4` (default `p3`).
    pub priority: Option<String>,
    pub service_id: Option<String>,
    #[serde(default)]
    pub ci_ids: Vec<String>,
    /// Ids or numbers (INC-000042) of incidents of the same project.
    #[serde(default)]
    pub incident_ids: Vec<String>,
    /// Assign at once, which starts the investigation.
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/problems", tag = "problems", request_body = NewProblemBody,
    responses((status = 201, body = Problem), (status = 409, body = ErrorBody, description = "Problem management is switched off for the project"), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn create_problem(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewProblemBody>) -> ApiResponse {
    let input = NewProblem {
        project_id: b.project_id,
        title: b.title,
        description: b.description,
        source: b.source,
        priority: b.priority,
        service_id: b.service_id,
        ci_ids: b.ci_ids,
        incident_ids: b.incident_ids,
        team_id: b.team_id,
        agent_id: b.agent_id,
    };
    let p = s.app.create_problem(&who.principal, input).await?;
    let (version, location) = (p.version, format!("/api/v1/problems/{}", p.id));
    Ok(created(version, location, detailed(&s, &who.principal, p).await?))
}

#[utoipa::path(get, path = "/api/v1/problems/{id}", tag = "problems", params(("id" = String, Path, description = "Id or number (PRB-000001)")),
    responses((status = 200, body = Problem, headers(("ETag" = String))), Unauthorized, NotFound))]
async fn get_problem(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let p = s.app.get_problem(&who.principal, &id).await?;
    Ok(with_etag(p.version, detailed(&s, &who.principal, p).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProblemPatchBody {
    pub title: Option<String>,
    /// Empty string clears it.
    pub description: Option<String>,
    pub priority: Option<String>,
    /// Empty string clears it.
    pub service_id: Option<String>,
    pub ci_ids: Option<Vec<String>>,
}

#[utoipa::path(patch, path = "/api/v1/problems/{id}", tag = "problems",
    params(("id" = String, Path), ("If-Match" = String, Header, description = "ETag of the version the change is based on")),
    request_body = ProblemPatchBody,
    responses((status = 200, body = Problem), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn update_problem(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ProblemPatchBody>,
) -> ApiResponse {
    s.app.get_problem(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let patch =
        ProblemPatch { title: b.title, description: b.description, priority: b.priority, service_id: b.service_id, ci_ids: b.ci_ids };
    let p = s.app.update_problem(&who.principal, &id, patch, Some(version)).await?;
    Ok(with_etag(p.version, detailed(&s, &who.principal, p).await?))
}

/// A lifecycle step. `investigate`/`reassign` need `team_id` and/or `agent_id`; `record_rca`
/// needs `rca_method` and `findings` (and `root_cause` once known); `record_workaround` needs
/// `workaround`; `declare_known_error` needs `title` and `symptoms` (in `language`, default
/// `en`), optionally the `translation_*` texts in the other language and `publish_to_portal`;
/// `set_publication` needs `publish_to_portal`; `resolve` needs `resolution_notes`; `reopen`
/// and `cancel` need `reason`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProblemStepBody {
    /// `investigate`, `reassign`, `record_rca`, `record_workaround`, `declare_known_error`,
    /// `set_publication`, `resolve`, `reopen`, `close` or `cancel`.
    pub action: String,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    pub rca_method: Option<String>,
    pub findings: Option<String>,
    pub root_cause: Option<String>,
    pub workaround: Option<String>,
    /// `en` or `zh-CN`.
    pub language: Option<String>,
    pub title: Option<String>,
    pub symptoms: Option<String>,
    pub translation_title: Option<String>,
    pub translation_symptoms: Option<String>,
    pub translation_workaround: Option<String>,
    pub publish_to_portal: Option<bool>,
    pub resolution_notes: Option<String>,
    pub fixing_change_id: Option<String>,
    pub reason: Option<String>,
}

fn optional_if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    if headers.contains_key(header::IF_MATCH) { if_match(headers).map(Some) } else { Ok(None) }
}

#[utoipa::path(post, path = "/api/v1/problems/{id}/transitions", tag = "problems",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "Optional: refuse if the problem changed since this ETag")),
    request_body = ProblemStepBody,
    responses((status = 200, body = Problem), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn transition_problem(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ProblemStepBody>,
) -> ApiResponse {
    let version = optional_if_match(&headers)?;
    let step = ProblemStep {
        action: b.action,
        team_id: b.team_id,
        agent_id: b.agent_id,
        rca_method: b.rca_method,
        findings: b.findings,
        root_cause: b.root_cause,
        workaround: b.workaround,
        language: b.language,
        title: b.title,
        symptoms: b.symptoms,
        translation_title: b.translation_title,
        translation_symptoms: b.translation_symptoms,
        translation_workaround: b.translation_workaround,
        publish_to_portal: b.publish_to_portal,
        resolution_notes: b.resolution_notes,
        fixing_change_id: b.fixing_change_id,
        reason: b.reason,
    };
    let p = s.app.transition_problem(&who.principal, &id, step, version).await?;
    Ok(with_etag(p.version, detailed(&s, &who.principal, p).await?))
}

/// An incident linked to a problem.
#[derive(Serialize, ToSchema)]
pub struct LinkedIncident {
    pub id: String,
    pub number: String,
    pub title: String,
    pub status: String,
    pub priority: String,
}

impl From<LinkedTicket> for LinkedIncident {
    fn from(t: LinkedTicket) -> Self {
        LinkedIncident { id: t.id, number: t.number, title: t.title, status: t.status, priority: t.priority }
    }
}

#[utoipa::path(get, path = "/api/v1/problems/{id}/incidents", tag = "problems", params(("id" = String, Path)),
    responses((status = 200, body = Vec<LinkedIncident>), Unauthorized, NotFound))]
async fn list_problem_incidents(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let v = s.app.problem_incidents(&who.principal, &id).await?;
    Ok(axum::Json(v.into_iter().map(LinkedIncident::from).collect::<Vec<_>>()).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkIncidentsBody {
    /// Ids or numbers of incidents of the problem's project.
    pub incident_ids: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/problems/{id}/incidents", tag = "problems", params(("id" = String, Path)), request_body = LinkIncidentsBody,
    responses((status = 200, body = Vec<LinkedIncident>, description = "Every incident now linked"), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn link_problem_incidents(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<LinkIncidentsBody>,
) -> ApiResponse {
    let v = s.app.link_incidents(&who.principal, &id, &b.incident_ids).await?;
    Ok(axum::Json(v.into_iter().map(LinkedIncident::from).collect::<Vec<_>>()).into_response_ok())
}

/// Incident counts per category, service or CI and bucket.
#[derive(Serialize, ToSchema)]
pub struct TrendBody {
    /// Start of each bucket (Unix ms, UTC), oldest first.
    pub buckets: Vec<i64>,
    pub rows: Vec<TrendRowBody>,
}

#[derive(Serialize, ToSchema)]
pub struct TrendRowBody {
    pub key: Option<String>,
    pub label: Option<String>,
    pub counts: Vec<i64>,
    pub total: i64,
    /// The incidents counted (newest first, at most 100), to raise a problem from.
    pub incident_ids: Vec<String>,
}

impl From<Trend> for TrendBody {
    fn from(t: Trend) -> Self {
        TrendBody {
            buckets: t.buckets,
            rows: t
                .rows
                .into_iter()
                .map(|r: TrendRow| TrendRowBody {
                    key: r.key,
                    label: r.label,
                    counts: r.counts,
                    total: r.total,
                    incident_ids: r.incident_ids,
                })
                .collect(),
        }
    }
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct TrendParams {
    /// `category` (default), `service` or `ci`.
    pub dimension: Option<String>,
    /// `week` (default) or `month`.
    pub bucket: Option<String>,
    /// How many buckets back, 1–104 (default 12).
    #[param(minimum = 1, maximum = 104)]
    pub periods: Option<u32>,
    pub project_id: Option<String>,
}

pub fn trend_query(p: TrendParams) -> Result<TrendQuery, ApiError> {
    let dimension = match p.dimension.as_deref().unwrap_or("category") {
        "category" => TrendDimension::Category,
        "service" => TrendDimension::Service,
        "ci" => TrendDimension::ConfigurationItem,
        _ => return Err(ApiError::field("dimension", "invalid_choice", "dimension is category, service or ci")),
    };
    let bucket = match p.bucket.as_deref().unwrap_or("week") {
        "week" => TrendBucket::Week,
        "month" => TrendBucket::Month,
        _ => return Err(ApiError::field("bucket", "invalid_choice", "bucket is week or month")),
    };
    let periods = p.periods.unwrap_or(12);
    if !(1..=104).contains(&periods) {
        return Err(ApiError::field("periods", "out_of_range", "periods must be between 1 and 104"));
    }
    Ok(TrendQuery { dimension, bucket, periods, project_id: some(p.project_id) })
}

#[utoipa::path(get, path = "/api/v1/problems/trend", tag = "problems", params(TrendParams),
    responses((status = 200, body = TrendBody), Unauthorized, NotFound, InvalidQuery))]
async fn problem_trend(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(p): ApiQuery<TrendParams>) -> ApiResponse {
    let q = trend_query(p)?;
    Ok(axum::Json(TrendBody::from(s.app.incident_trend(&who.principal, &q).await?)).into_response_ok())
}

/// A known error (KE-000001) of the known error database, as the service desk sees it.
#[derive(Serialize, ToSchema)]
pub struct KnownErrorBody {
    pub id: String,
    pub number: String,
    pub problem_id: String,
    pub problem_number: String,
    pub problem_status: String,
    /// The language of `title`, `symptoms` and `workaround`: `en` or `zh-CN`.
    pub language: String,
    pub title: String,
    pub symptoms: String,
    pub root_cause: Option<String>,
    pub workaround: Option<String>,
    /// The same in the other language, where written.
    pub translation_title: Option<String>,
    pub translation_symptoms: Option<String>,
    pub translation_workaround: Option<String>,
    pub publish_to_portal: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl From<KnownErrorRecord> for KnownErrorBody {
    fn from(k: KnownErrorRecord) -> Self {
        KnownErrorBody {
            id: k.id,
            number: k.number,
            problem_id: k.problem_id,
            problem_number: k.problem.number,
            problem_status: k.problem.status,
            language: k.language,
            title: k.title,
            symptoms: k.symptoms,
            root_cause: k.problem.root_cause,
            workaround: k.problem.workaround,
            translation_title: k.translation_title,
            translation_symptoms: k.translation_symptoms,
            translation_workaround: k.translation_workaround,
            publish_to_portal: k.publish_to_portal,
            created_at: k.created_at,
            updated_at: k.updated_at,
            version: k.version,
        }
    }
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct KnownErrorQuery {
    /// Search text (either language); the best matches come first and paging is off.
    pub q: Option<String>,
    pub project_id: Option<String>,
    /// Only the records published on the portal.
    pub published: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/known-errors", tag = "problems", params(KnownErrorQuery, PageParams),
    responses((status = 200, body = ListOf<KnownErrorBody>), Unauthorized, NotFound, InvalidQuery))]
async fn list_known_errors(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<KnownErrorQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    let page = page_request(&pp, KNOWN_ERROR_SORTS)?;
    if !who.principal.is_staff() {
        return Err(keel_app::AppError::NotFound.into());
    }
    if let Some(text) = some(q.q) {
        let found = s.app.search_known_errors(&who.principal, &text, page.limit).await?;
        return Ok(
            axum::Json(ListOf { items: found.into_iter().map(KnownErrorBody::from).collect(), next_cursor: None }).into_response_ok()
        );
    }
    let f = KnownErrorFilter { portal_only: q.published.unwrap_or(false), project_id: some(q.project_id) };
    let r = s.app.list_known_errors(&who.principal, &f, &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(KnownErrorBody::from).collect(), next_cursor: r.next_cursor }).into_response_ok())
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct SuggestionQuery {
    /// The incident title being typed.
    pub title: Option<String>,
    pub description: Option<String>,
    /// The incident's configuration items, comma-separated ids (those the caller may not see
    /// are ignored).
    pub ci_ids: Option<String>,
    /// The incident's category.
    pub category_id: Option<String>,
}

/// A suggested known error and why it matched.
#[derive(Serialize, ToSchema)]
pub struct KnownErrorSuggestionBody {
    #[serde(flatten)]
    pub known_error: KnownErrorBody,
    /// `same_ci` (its problem or an incident of it names one of the CIs), `related_ci` (its
    /// problem names a CI they run on or depend on), `same_category`, `text`.
    pub matched_by: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/known-errors/suggestions", tag = "problems", params(SuggestionQuery),
    responses((status = 200, body = Vec<KnownErrorSuggestionBody>, description = "Open known errors matching the CIs, the category or the text, best first (at most 5)"), Unauthorized, NotFound, InvalidQuery))]
async fn suggest_known_errors(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(q): ApiQuery<SuggestionQuery>) -> ApiResponse {
    if !who.principal.is_staff() {
        return Err(keel_app::AppError::NotFound.into());
    }
    let input = keel_app::problems::SuggestInput {
        title: q.title.unwrap_or_default(),
        description: q.description.unwrap_or_default(),
        ci_ids: q.ci_ids.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        category_id: some(q.category_id),
    };
    let v = s.app.suggest_known_errors(&who.principal, &input).await?;
    let body: Vec<KnownErrorSuggestionBody> = v
        .into_iter()
        .map(|s| KnownErrorSuggestionBody {
            matched_by: s.reasons.iter().map(|r| r.as_str().to_string()).collect(),
            known_error: KnownErrorBody::from(s.known_error),
        })
        .collect();
    Ok(axum::Json(body).into_response_ok())
}

#[utoipa::path(get, path = "/api/v1/known-errors/{id}", tag = "problems", params(("id" = String, Path, description = "Id or number (KE-000001)")),
    responses((status = 200, body = KnownErrorBody, headers(("ETag" = String))), Unauthorized, NotFound))]
async fn get_known_error(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let k = s.app.get_known_error(&who.principal, &id).await?;
    Ok(with_etag(k.version, KnownErrorBody::from(k)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnownErrorPatchBody {
    pub title: Option<String>,
    pub symptoms: Option<String>,
    /// Empty string clears it (and then the other translations must be empty too).
    pub translation_title: Option<String>,
    pub translation_symptoms: Option<String>,
    pub translation_workaround: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/known-errors/{id}", tag = "problems",
    params(("id" = String, Path), ("If-Match" = String, Header, description = "ETag of the version the change is based on")),
    request_body = KnownErrorPatchBody,
    responses((status = 200, body = KnownErrorBody), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn update_known_error(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<KnownErrorPatchBody>,
) -> ApiResponse {
    s.app.get_known_error(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let patch = KnownErrorPatch {
        title: b.title,
        symptoms: b.symptoms,
        translation_title: b.translation_title,
        translation_symptoms: b.translation_symptoms,
        translation_workaround: b.translation_workaround,
    };
    let k = s.app.update_known_error(&who.principal, &id, patch, Some(version)).await?;
    Ok(with_etag(k.version, KnownErrorBody::from(k)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkKnownErrorBody {
    /// Id or number (KE-000001).
    pub known_error_id: String,
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/known-errors", tag = "problems", params(("id" = String, Path, description = "Incident id or number")),
    request_body = LinkKnownErrorBody,
    responses((status = 200, body = KnownErrorBody, description = "The known error now linked"), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn link_known_error(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<LinkKnownErrorBody>,
) -> ApiResponse {
    let k = s.app.link_known_error(&who.principal, &id, &b.known_error_id).await?;
    Ok(axum::Json(KnownErrorBody::from(k)).into_response_ok())
}

/// A known error published on the customer portal, in one language, without root cause.
#[derive(Serialize, ToSchema)]
pub struct Article {
    pub id: String,
    pub number: String,
    pub language: String,
    pub title: String,
    pub symptoms: String,
    pub workaround: String,
    pub updated_at: i64,
}

impl From<PortalArticle> for Article {
    fn from(a: PortalArticle) -> Self {
        Article {
            id: a.id,
            number: a.number,
            language: a.language,
            title: a.title,
            symptoms: a.symptoms,
            workaround: a.workaround,
            updated_at: a.updated_at,
        }
    }
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ArticleQuery {
    /// `en` or `zh-CN`; default the caller's language.
    pub lang: Option<String>,
    /// Search text.
    pub q: Option<String>,
}

fn article_lang(q: &Option<String>, who: &crate::auth::Identity) -> Result<Locale, ApiError> {
    match q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(l) => Locale::parse("lang", l).map_err(|e| ApiError::field("lang", "invalid_choice", e.message)),
        None => Ok(Locale::parse("lang", &who.user.locale).unwrap_or_default()),
    }
}

#[utoipa::path(get, path = "/api/v1/portal/articles", tag = "problems", params(ArticleQuery),
    responses((status = 200, body = Vec<Article>, description = "Known errors published for the caller's organisation"), Unauthorized, InvalidQuery))]
async fn list_articles(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(q): ApiQuery<ArticleQuery>) -> ApiResponse {
    let lang = article_lang(&q.lang, &who)?;
    let v = s.app.portal_articles(&who.principal, lang, q.q.as_deref()).await?;
    Ok(axum::Json(v.into_iter().map(Article::from).collect::<Vec<_>>()).into_response_ok())
}

#[utoipa::path(get, path = "/api/v1/portal/articles/{id}", tag = "problems", params(("id" = String, Path, description = "Id or number (KE-000001)"), ArticleQuery),
    responses((status = 200, body = Article), Unauthorized, NotFound, InvalidQuery))]
async fn get_article(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ArticleQuery>,
) -> ApiResponse {
    let lang = article_lang(&q.lang, &who)?;
    let a = s.app.portal_article(&who.principal, &id, lang).await?;
    Ok(axum::Json(Article::from(a)).into_response_ok())
}

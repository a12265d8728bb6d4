//! `/api/v1/releases`: release management (REQUIREMENTS §5, manual §5.1.4): releases, their
//! stage plans, checklists, results and ordered sign-offs, lifecycle, rollback and review.
//! Staff of the release's project only.

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
use keel_app::releases::{NewRelease, StagePlanInput};
use keel_domain::release::ExpectedResult;
use keel_domain::validate::Locale;
use keel_store::page::{SortKey, SortKind};
use keel_store::releases::{ReleaseFilter, ReleaseRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_releases, create_release))
        .routes(routes!(get_release))
        .routes(routes!(transition_release))
        .routes(routes!(plan_stage))
        .routes(routes!(tick_item))
        .routes(routes!(record_result))
        .routes(routes!(sign_off))
        .routes(routes!(set_rollback_plan))
        .routes(routes!(record_rollback))
        .routes(routes!(get_review, record_review))
        .routes(routes!(release_notes))
}

pub const RELEASE_SORTS: &[SortKey] = &[
    SortKey { name: "updated_at", column: "r.updated_at", kind: SortKind::Int },
    SortKey { name: "created_at", column: "r.created_at", kind: SortKind::Int },
    SortKey { name: "number", column: "r.number", kind: SortKind::Text },
    SortKey { name: "status", column: "r.status", kind: SortKind::Text },
];

/// A release (REL-000001) grouping changes.
#[derive(Serialize, ToSchema)]
pub struct ReleaseView {
    pub id: String,
    pub number: String,
    pub project_id: String,
    pub project_code: String,
    pub title: String,
    pub version: String,
    pub description: Option<String>,
    /// `planned`, `in_progress`, `deployed`, `rolled_back`, `reviewed`, `closed` or `cancelled`.
    pub status: String,
    pub change_ids: Vec<String>,
    pub rollback_plan: Option<String>,
    pub known_issues: Vec<String>,
    /// `restored`, `partially_restored` or `failed`.
    pub rollback_outcome: Option<String>,
    pub rollback_notes: Option<String>,
    pub review_summary: Option<String>,
    pub cancellation_reason: Option<String>,
    pub deployed_at: Option<i64>,
    /// Build, test, acceptance and deployment: plan, checklist, expected and actual results,
    /// signers in signing order, sign-off (empty in lists).
    #[schema(value_type = Vec<Object>)]
    pub stages: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
    /// Also the ETag.
    pub version_number: i64,
}

impl From<ReleaseRecord> for ReleaseView {
    fn from(r: ReleaseRecord) -> Self {
        ReleaseView {
            stages: serde_json::to_value(&r.stages).unwrap_or_default(),
            id: r.id,
            number: r.number,
            project_id: r.project_id,
            project_code: r.project_code,
            title: r.title,
            version: r.release_version,
            description: r.description,
            status: r.status,
            change_ids: r.change_ids,
            rollback_plan: r.rollback_plan,
            known_issues: r.known_issues,
            rollback_outcome: r.rollback_outcome,
            rollback_notes: r.rollback_notes,
            review_summary: r.review_summary,
            cancellation_reason: r.cancellation_reason,
            deployed_at: r.deployed_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version_number: r.version,
        }
    }
}

fn ok(r: ReleaseRecord) -> ApiResponse {
    Ok(with_etag(r.version, ReleaseView::from(r)))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ReleaseQuery {
    /// Comma-separated statuses.
    pub status: Option<String>,
    pub project_id: Option<String>,
    /// Text in the number, title or version.
    pub q: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/releases", tag = "releases", params(ReleaseQuery, PageParams),
    responses((status = 200, body = ListOf<ReleaseView>), Unauthorized, NotFound, InvalidQuery))]
async fn list_releases(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<ReleaseQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    let page = page_request(&pp, RELEASE_SORTS)?;
    let f = ReleaseFilter {
        statuses: q.status.unwrap_or_default().split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        project_id: q.project_id.filter(|p| !p.trim().is_empty()),
        q: q.q,
    };
    let r = s.app.list_releases(&who.principal, &f, &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(ReleaseView::from).collect(), next_cursor: r.next_cursor }).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReleaseBody {
    pub project_id: String,
    pub title: String,
    pub version: String,
    pub description: Option<String>,
    #[serde(default)]
    pub change_ids: Vec<String>,
    pub rollback_plan: Option<String>,
    #[serde(default)]
    pub known_issues: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/releases", tag = "releases", request_body = NewReleaseBody,
    responses((status = 201, body = ReleaseView), (status = 409, body = ErrorBody, description = "Release management is switched off for the project"), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn create_release(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewReleaseBody>) -> ApiResponse {
    let input = NewRelease {
        project_id: b.project_id,
        title: b.title,
        version: b.version,
        description: b.description,
        change_ids: b.change_ids,
        rollback_plan: b.rollback_plan,
        known_issues: b.known_issues,
    };
    let r = s.app.create_release(&who.principal, input).await?;
    let (version, location) = (r.version, format!("/api/v1/releases/{}", r.id));
    Ok(created(version, location, ReleaseView::from(r)))
}

#[utoipa::path(get, path = "/api/v1/releases/{id}", tag = "releases", params(("id" = String, Path, description = "Id or number (REL-000001)")),
    responses((status = 200, body = ReleaseView, headers(("ETag" = String))), Unauthorized, NotFound))]
async fn get_release(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    ok(s.app.get_release(&who.principal, &id).await?)
}

fn optional_if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    if headers.contains_key(header::IF_MATCH) { if_match(headers).map(Some) } else { Ok(None) }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// The status to move to.
    pub status: String,
    /// Needed to cancel.
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/releases/{id}/transitions", tag = "releases",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "Optional: refuse if the release changed since this ETag")),
    request_body = TransitionBody,
    responses((status = 200, body = ReleaseView), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn transition_release(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<TransitionBody>,
) -> ApiResponse {
    let version = optional_if_match(&headers)?;
    ok(s.app.transition_release(&who.principal, &id, &b.status, b.reason.as_deref(), version).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedBody {
    pub key: String,
    pub description: String,
    pub target: String,
}

/// A stage's plan; replacing it clears ticks and signatures.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StagePlanBody {
    /// Unix ms.
    pub planned_start: Option<i64>,
    pub planned_end: Option<i64>,
    #[serde(default)]
    pub checklist: Vec<String>,
    #[serde(default)]
    pub expected: Vec<ExpectedBody>,
    /// Staff of the project who sign the stage off, in signing order.
    #[serde(default)]
    pub signer_ids: Vec<String>,
}

#[utoipa::path(put, path = "/api/v1/releases/{id}/stages/{stage}", tag = "releases",
    params(("id" = String, Path), ("stage" = String, Path, description = "`build`, `test`, `acceptance` or `deployment`"),
        ("If-Match" = Option<String>, Header)),
    request_body = StagePlanBody,
    responses((status = 200, body = ReleaseView), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn plan_stage(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath((id, stage)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<StagePlanBody>,
) -> ApiResponse {
    let version = optional_if_match(&headers)?;
    let plan = StagePlanInput {
        planned_start: b.planned_start,
        planned_end: b.planned_end,
        checklist: b.checklist,
        expected: b.expected.into_iter().map(|e| ExpectedResult { key: e.key, description: e.description, target: e.target }).collect(),
        signer_ids: b.signer_ids,
    };
    ok(s.app.plan_release_stage(&who.principal, &id, &stage, plan, version).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TickBody {
    pub done: bool,
}

#[utoipa::path(put, path = "/api/v1/releases/{id}/stages/{stage}/checklist/{index}", tag = "releases",
    params(("id" = String, Path), ("stage" = String, Path), ("index" = usize, Path, description = "From 0")),
    request_body = TickBody,
    responses((status = 200, body = ReleaseView), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn tick_item(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath((id, stage, index)): ApiPath<(String, String, usize)>,
    ApiJson(b): ApiJson<TickBody>,
) -> ApiResponse {
    ok(s.app.tick_release_item(&who.principal, &id, &stage, index, b.done).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultBody {
    /// The expected result's key (another key is kept as an unplanned result).
    pub key: String,
    pub result: String,
    pub met: bool,
}

#[utoipa::path(post, path = "/api/v1/releases/{id}/stages/{stage}/results", tag = "releases",
    params(("id" = String, Path), ("stage" = String, Path)), request_body = ResultBody,
    responses((status = 200, body = ReleaseView), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn record_result(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath((id, stage)): ApiPath<(String, String)>,
    ApiJson(b): ApiJson<ResultBody>,
) -> ApiResponse {
    ok(s.app.record_release_result(&who.principal, &id, &stage, &b.key, &b.result, b.met).await?)
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SignOffBody {
    pub note: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/releases/{id}/stages/{stage}/sign-off", tag = "releases",
    params(("id" = String, Path), ("stage" = String, Path)), request_body = SignOffBody,
    responses((status = 200, body = ReleaseView),
        (status = 409, body = ErrorBody, description = "`not_a_signer`, `signer_out_of_order` or `already_signed`"),
        Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn sign_off(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath((id, stage)): ApiPath<(String, String)>,
    ApiJson(b): ApiJson<SignOffBody>,
) -> ApiResponse {
    ok(s.app.sign_off_release_stage(&who.principal, &id, &stage, b.note.as_deref()).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackPlanBody {
    pub rollback_plan: String,
}

#[utoipa::path(put, path = "/api/v1/releases/{id}/rollback-plan", tag = "releases", params(("id" = String, Path)), request_body = RollbackPlanBody,
    responses((status = 200, body = ReleaseView), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn set_rollback_plan(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<RollbackPlanBody>,
) -> ApiResponse {
    ok(s.app.set_release_rollback_plan(&who.principal, &id, &b.rollback_plan).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// `restored`, `partially_restored` or `failed`.
    pub outcome: String,
    pub notes: String,
}

#[utoipa::path(post, path = "/api/v1/releases/{id}/rollback", tag = "releases", params(("id" = String, Path)), request_body = RollbackBody,
    responses((status = 200, body = ReleaseView), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn record_rollback(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<RollbackBody>,
) -> ApiResponse {
    ok(s.app.record_release_rollback(&who.principal, &id, &b.outcome, &b.notes).await?)
}

/// The release review: per stage, expected against actual results and planned end against
/// sign-off, with counts and a verdict (`as_expected`, `deviations`, `incomplete`).
#[utoipa::path(get, path = "/api/v1/releases/{id}/review", tag = "releases", params(("id" = String, Path)),
    responses((status = 200, body = Object), Unauthorized, NotFound))]
async fn get_review(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let review = s.app.release_review(&who.principal, &id).await?;
    Ok(axum::Json(review).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    pub summary: String,
}

#[utoipa::path(post, path = "/api/v1/releases/{id}/review", tag = "releases", params(("id" = String, Path)), request_body = ReviewBody,
    responses((status = 200, body = ReleaseView), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn record_review(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ReviewBody>,
) -> ApiResponse {
    ok(s.app.record_release_review(&who.principal, &id, &b.summary).await?)
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct NotesQuery {
    /// `en` (default) or `zh-CN`.
    pub lang: Option<String>,
    /// IANA time zone of the times shown (default UTC).
    pub tz: Option<String>,
    /// `markdown` (default) or `pdf`.
    pub format: Option<String>,
}

/// Release notes for customers, as Markdown, or as PDF with `format=pdf`.
#[utoipa::path(get, path = "/api/v1/releases/{id}/notes", tag = "releases", params(("id" = String, Path), NotesQuery),
    responses((status = 200, content_type = "text/markdown", body = String), Unauthorized, NotFound, InvalidQuery))]
async fn release_notes(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<NotesQuery>,
) -> ApiResponse {
    let locale = Locale::parse("lang", q.lang.as_deref().unwrap_or("en")).map_err(|e| ApiError::field("lang", e.code, e.message))?;
    let tz: chrono_tz::Tz = match q.tz.as_deref() {
        None | Some("") => chrono_tz::UTC,
        Some(t) => t.parse().map_err(|_| ApiError::field("tz", "invalid_time_zone", "unknown time zone"))?,
    };
    let md = s.app.release_notes_markdown(&who.principal, &id, locale, tz).await?;
    match q.format.as_deref().unwrap_or("markdown") {
        "markdown" => {}
        "pdf" => {
            return Ok(axum::response::IntoResponse::into_response((
                [(header::CONTENT_TYPE, "application/pdf")],
                crate::pdf::notes_pdf(&md),
            )));
        }
        _ => return Err(ApiError::field("format", "invalid_format", "markdown or pdf")),
    }
    Ok(axum::response::IntoResponse::into_response(([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], md)))
}

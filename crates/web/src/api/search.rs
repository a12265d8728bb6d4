//! `/api/v1/search`: full-text search across the records of every process (incidents and
//! requests, CIs, catalogue services…), in Chinese and English, with only what the caller may see.

use super::directory::IntoResponseOk;
use super::{ApiQuery, ApiResponse, InvalidQuery, Unauthorized};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::ApiError;
use axum::extract::State;
use chrono::Offset;
use keel_app::search::SearchInput;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Words (Chinese or English), `"phrases"`, `-excluded` words, filters `status:`, `type:`,
    /// `team:`, `project:`, `priority:` and `created:2026-01-01..2026-02-01`.
    pub q: Option<String>,
    /// Only records of this type: `incident`, `request`, `ci`, `service`, `problem`,
    /// `known_error`, `change` or `release` (the last four for staff only).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Hits per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// One record found.
#[derive(Serialize, ToSchema)]
pub struct SearchHit {
    /// `incident`, `request`, `ci`, `service`, `problem`, `known_error`, `change` or `release`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    /// Ticket, problem, change or release number or service code, when the record has one.
    pub number: Option<String>,
    pub title: String,
    /// HTML: the title with the matched words in `<b>`, all other text escaped.
    pub title_html: String,
    pub status: String,
    /// HTML: the matched words in `<b>`, all other text escaped.
    pub snippet: String,
    pub score: f32,
    pub created_at: i64,
    /// Where the record is shown in the web interface.
    pub href: String,
}

/// A facet value and how many visible hits have it.
#[derive(Serialize, ToSchema)]
pub struct FacetCount {
    pub value: String,
    pub count: usize,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResults {
    /// Hits the caller may see (records of other organisations and internal notes are never
    /// counted for a customer contact).
    pub total: usize,
    pub items: Vec<SearchHit>,
    pub by_type: Vec<FacetCount>,
    pub by_status: Vec<FacetCount>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// False while this server is building its index for the first time.
    pub ready: bool,
}

/// The page of the web interface showing a record.
pub fn href_of(source: &str, id: &str) -> String {
    match source {
        "ticket" => format!("/incidents/{id}"),
        "ci" => format!("/cmdb/{id}"),
        "service" => format!("/catalogue/{id}"),
        "problem" => format!("/problems/{id}"),
        "known_error" => format!("/known-errors/{id}"),
        "change" => format!("/changes/{id}"),
        "release" => format!("/releases/{id}"),
        _ => "/".into(),
    }
}

/// Minutes east of UTC in a time zone now, for the days of `created:` ranges.
pub fn utc_offset_minutes(tz: chrono_tz::Tz) -> i32 {
    chrono::Utc::now().with_timezone(&tz).offset().fix().local_minus_utc() / 60
}

fn facets(v: Vec<(String, usize)>) -> Vec<FacetCount> {
    v.into_iter().map(|(value, count)| FacetCount { value, count }).collect()
}

#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(SearchQuery),
    responses((status = 200, body = SearchResults), Unauthorized, InvalidQuery))]
async fn search(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(q): ApiQuery<SearchQuery>) -> ApiResponse {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::field("limit", "out_of_range", "limit must be between 1 and 100"));
    }
    let tz = who.user.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    let input = SearchInput {
        q: q.q.unwrap_or_default(),
        kind: q.kind,
        cursor: q.cursor,
        limit: usize::try_from(limit).unwrap_or(20),
        utc_offset_minutes: utc_offset_minutes(tz),
        typing: false,
    };
    let r = s.app.search_records(&who.principal, &input).await?;
    Ok(axum::Json(SearchResults {
        total: r.total,
        items: r
            .hits
            .into_iter()
            .map(|h| SearchHit {
                href: href_of(&h.source, &h.id),
                kind: h.kind,
                id: h.id,
                number: h.number,
                title: h.title,
                title_html: h.title_html,
                status: h.status,
                snippet: h.snippet,
                score: h.score,
                created_at: h.created_at,
            })
            .collect(),
        by_type: facets(r.by_kind),
        by_status: facets(r.by_status),
        next_cursor: r.next_cursor,
        ready: r.ready,
    })
    .into_response_ok())
}

//! The JSON API (`/api/v1`) for every process, with its OpenAPI 3.1 document: strict input
//! parsing with stable error codes, cursor pagination, and ETag / If-Match on updates.

pub mod accounts;
pub mod directory;
pub mod service_level;
pub mod trail;

use crate::error::{ApiError, ErrorBody};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keel_app::AppError;
use keel_store::page::{PageRequest, SortKey, decode_cursor};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Keel API", version = "1", description = "ISO/IEC 20000 service management. Authenticate with `Authorization: Bearer <token>` (create tokens under API tokens), or with the session cookie plus an `X-CSRF-Token` header for state-changing requests. Errors are `{code, message, details}` with stable codes."),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "accounts"), (name = "directory"), (name = "service_level", description = "Service level management (§6.1): calendars, catalogue, SLAs, OLAs, underpinning contracts"), (name = "audit"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// A JSON body: 415 without a JSON content type, 400 when malformed, 422 naming the field
/// when a value has the wrong type, is missing or unknown.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json") || m.trim().ends_with("+json"));
        if !json {
            return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send Content-Type: application/json"));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large")
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", "the request body could not be read")
            }
        })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => Ok(ApiJson(v)),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if inner.classify() == serde_json::error::Category::Data {
                    let field = if path == "." { unknown_field(&inner.to_string()).unwrap_or_default() } else { path };
                    Err(ApiError {
                        status: StatusCode::UNPROCESSABLE_ENTITY,
                        code: "validation_failed".into(),
                        message: "invalid input".into(),
                        details: serde_json::json!([{ "field": field, "code": "invalid_value", "message": inner.to_string() }]),
                        retry_after: None,
                    })
                } else {
                    Err(ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {inner}")))
                }
            }
        }
    }
}

fn unknown_field(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = start + msg[start..].find('`')?;
    Some(msg[start..end].to_string())
}

/// Query parameters with 422 on bad values instead of a plain-text 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        serde_html_form::from_str(q).map(ApiQuery).map_err(|e| ApiError::field("query", "invalid_query", e.to_string()))
    }
}

/// Common list parameters.
#[derive(serde::Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Sort field; prefix with `-` for descending.
    pub sort: Option<String>,
}

pub fn page_request(p: &PageParams, allowed: &[SortKey]) -> Result<PageRequest, ApiError> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "out_of_range", "limit must be between 1 and 200"));
    }
    let (desc, name) = match p.sort.as_deref() {
        Some(s) if s.starts_with('-') => (true, &s[1..]),
        Some(s) => (false, s),
        None => (false, allowed[0].name),
    };
    let sort = *allowed.iter().find(|k| k.name == name).ok_or_else(|| {
        ApiError::field(
            "sort",
            "invalid_sort",
            format!("sort by one of: {}", allowed.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")),
        )
    })?;
    let after = match &p.cursor {
        Some(c) => Some(
            decode_cursor(&sort, c)
                .ok_or_else(|| ApiError::field("cursor", "invalid_cursor", "the cursor is malformed or belongs to another sort order"))?,
        ),
        None => None,
    };
    Ok(PageRequest { sort, desc, after, limit })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ListOf<T: utoipa::ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A single record with its version as a strong ETag.
pub fn with_etag(version: i64, body: impl Serialize) -> Response {
    let mut r = axum::Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

pub fn created(version: i64, location: String, body: impl Serialize) -> Response {
    let mut r = with_etag(version, body);
    *r.status_mut() = StatusCode::CREATED;
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The version an update was based on, from `If-Match`; required on every update.
pub fn if_match(headers: &HeaderMap) -> Result<i64, ApiError> {
    let raw = headers.get(header::IF_MATCH).ok_or_else(|| ApiError::from(AppError::PreconditionRequired))?;
    let s = raw.to_str().unwrap_or("").trim();
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    s.parse::<i64>()
        .map_err(|_| ApiError::new(StatusCode::PRECONDITION_FAILED, "stale_version", "If-Match does not match the current ETag"))
}

pub type ApiResponse = Result<Response, ApiError>;

/// JSON 404 for unknown API paths.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
}

//! The JSON API (`/api/v1`) for every process, with its OpenAPI 3.1 document: strict input
//! parsing with stable error codes, cursor pagination, and ETag / If-Match on updates.

pub mod accounts;
pub mod changes;
pub mod cmdb;
pub mod desk;
pub mod directory;
pub mod incident_views;
pub mod incidents;
pub mod jobs;
pub mod mail;
pub mod major_incidents;
pub mod notifications;
pub mod problems;
pub mod releases;
pub mod search;
pub mod service_level;
pub mod sla_clocks;
pub mod trail;

use crate::error::{ApiError, ErrorBody, FieldProblem};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keel_app::AppError;
use keel_store::page::{PageRequest, SortKey, decode_cursor};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Keel API", version = "1", description = "ISO/IEC 20000 service management. Authenticate with `Authorization: Bearer <token>` (create tokens under API tokens), or with the session cookie plus an `X-CSRF-Token` header for state-changing requests. Errors are `{code, message, details}` with stable codes."),
    components(schemas(ErrorBody, FieldProblem, RoleName, ProcessName)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "accounts"),
        (name = "directory"),
        (name = "incidents", description = "Service desk and incident management"),
        (name = "service_level", description = "Service level management (§6.1): calendars, catalogue, SLAs, OLAs, underpinning contracts"),
        (name = "cmdb", description = "Configuration management: CIs, relationships, impact analysis, baselines"),
        (name = "notifications", description = "Notifications (§8.3.2): delivery log and dead letters, templates, chat webhooks"),
        (name = "problems", description = "Problem management: problems, root-cause analysis, the known error database and its portal articles, incident trends"),
        (name = "audit"),
        (name = "search", description = "Full-text search across every process, in Chinese and English"),
        (name = "changes", description = "Change management: requests for change, risk, impact, CAB approval, the forward schedule of change, freezes, standard templates"),
        (name = "releases", description = "Release management: releases, stage plans, checklists, ordered sign-offs, rollback and the release review"),
        (name = "jobs", description = "Background jobs: the schedules of the built-in jobs and their overrides")
    )
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

/// A staff role, as `roles` takes it.
pub struct RoleName;

impl utoipa::PartialSchema for RoleName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_enum("A staff role.", keel_domain::identity::Role::ALL.iter().map(|r| r.as_str()))
    }
}
impl utoipa::ToSchema for RoleName {}

/// A process of ISO/IEC 20000-1 that a service project can tailor.
pub struct ProcessName;

impl utoipa::PartialSchema for ProcessName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_enum(
            "A service management process; the mandatory ones cannot be switched off.",
            keel_domain::process::Process::ALL.iter().map(|p| p.as_str()),
        )
    }
}
impl utoipa::ToSchema for ProcessName {}

fn string_enum<'a>(description: &str, values: impl Iterator<Item = &'a str>) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(description))
        .enum_values(Some(values.map(str::to_string).collect::<Vec<_>>()))
        .into()
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
            Ok(v) => match nul_in_json(&bytes) {
                Some(field) => Err(nul_refused(&field)),
                None => Ok(ApiJson(v)),
            },
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

/// U+0000 is in no valid Keel value and PostgreSQL cannot store it in text: it is refused at
/// the edge, naming the field, instead of failing in the database.
fn nul_refused(field: &str) -> ApiError {
    ApiError::field(field, "invalid_characters", format!("{field} contains a NUL character"))
}

/// The path (`a.b[2]`, as in other validation errors) of the first string or key in a JSON
/// body that holds U+0000; JSON can only carry one as the escape `\u0000`.
fn nul_in_json(bytes: &[u8]) -> Option<String> {
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    fn walk(v: &serde_json::Value, path: &str) -> Option<String> {
        let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
        match v {
            serde_json::Value::String(s) => s.contains('\0').then(|| if path.is_empty() { ".".to_string() } else { path.to_string() }),
            serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            serde_json::Value::Object(m) => {
                m.iter().find_map(|(k, x)| if k.contains('\0') { Some(join(&k.replace('\0', ""))) } else { walk(x, &join(k)) })
            }
            _ => None,
        }
    }
    walk(&serde_json::from_slice(bytes).ok()?, "")
}

fn unknown_field(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = start + msg[start..].find('`')?;
    Some(msg[start..end].to_string())
}

/// Path parameters with a JSON 404 when a segment cannot be decoded (say, percent-encoded bytes
/// that are not UTF-8) instead of axum's plain-text 400: such an id names no record.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if has_encoded_nul(parts.uri.path()) {
            return Err(ApiError::from(AppError::NotFound));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|_| ApiError::from(AppError::NotFound))
    }
}

/// Whether a percent-encoded path or query part decodes to a U+0000.
fn has_encoded_nul(raw: &str) -> bool {
    raw.contains("%00")
}

/// Query parameters with 422 on bad values instead of a plain-text 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        if let Some((name, _)) =
            q.split('&').map(|kv| kv.split_once('=').unwrap_or((kv, ""))).find(|(k, v)| has_encoded_nul(k) || has_encoded_nul(v))
        {
            return Err(nul_refused(name));
        }
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
    #[param(minimum = 1, maximum = 200)]
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
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
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

/// Gives every error under `/api/` the documented `{code, message, details}` body, also those
/// answered before a handler runs: 405 for a method a path does not have (its `Allow` header is
/// kept) and 413 from the body-size limit.
pub async fn json_errors(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this API path does not support the method"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::NOT_FOUND => ("not_found", "no such API endpoint"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "send Content-Type: application/json"),
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("bad_request", "the request could not be understood"),
    };
    let (mut parts, _) = res.into_parts();
    let mut fresh = ApiError::new(status, code, message).into_response();
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    for (k, v) in parts.headers.iter() {
        fresh.headers_mut().entry(k).or_insert(v.clone());
    }
    fresh
}

// ---- responses shared by the documented operations ----

/// Not signed in: no bearer token or session, or the token is invalid, expired or revoked.
#[derive(utoipa::IntoResponses)]
#[response(status = 401)]
pub struct Unauthorized(pub ErrorBody);

/// Not allowed for this account (or, with cookie authentication, a missing `X-CSRF-Token`).
#[derive(utoipa::IntoResponses)]
#[response(status = 403)]
pub struct Forbidden(pub ErrorBody);

/// No such record, or not one the caller may see.
#[derive(utoipa::IntoResponses)]
#[response(status = 404)]
pub struct NotFound(pub ErrorBody);

/// A query parameter has the wrong type or is out of range (`validation_failed`, naming it).
#[derive(utoipa::IntoResponses)]
#[response(status = 422)]
pub struct InvalidQuery(pub ErrorBody);

/// What a JSON request body can be refused for.
#[derive(utoipa::IntoResponses)]
pub enum JsonBodyErrors {
    /// The body is not valid JSON (`malformed_json`).
    #[response(status = 400)]
    Malformed(ErrorBody),
    /// The body exceeds the configured size limit (`payload_too_large`).
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not sent as `Content-Type: application/json` (`unsupported_media_type`).
    #[response(status = 415)]
    NotJson(ErrorBody),
    /// A field is missing, unknown, of the wrong type or invalid (`validation_failed`, with
    /// `details` naming each field).
    #[response(status = 422)]
    Invalid(ErrorBody),
}

/// Optimistic concurrency on updates.
#[derive(utoipa::IntoResponses)]
pub enum VersionErrors {
    /// `If-Match` does not name the record's current version (`stale_version`).
    #[response(status = 412)]
    Stale(ErrorBody),
    /// `If-Match` is missing (`precondition_required`).
    #[response(status = 428)]
    Required(ErrorBody),
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::{get, post};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn call(app: &Router, method: &str, uri: &str, body: Vec<u8>) -> (StatusCode, HeaderMap, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Body1 {
        name: String,
        tags: Vec<String>,
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Q {
        q: Option<String>,
    }

    fn app() -> Router {
        Router::new()
            .route("/api/things/{id}", get(|ApiPath(id): ApiPath<String>| async move { id }))
            .route(
                "/api/things",
                post(|ApiJson(b): ApiJson<Body1>| async move { b.name })
                    .get(|ApiQuery(q): ApiQuery<Q>| async move { q.q.unwrap_or_default() }),
            )
            .route("/page", get(|| async { "page" }))
            .layer(tower_http::limit::RequestBodyLimitLayer::new(64))
            .layer(axum::middleware::from_fn(json_errors))
    }

    #[tokio::test]
    async fn errors_answered_before_a_handler_get_the_documented_body() {
        let app = app();
        let (status, headers, body) = call(&app, "DELETE", "/api/things", vec![]).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["code"], "method_not_allowed");
        assert!(body["details"].is_null());
        assert!(headers.get(header::ALLOW).is_some_and(|v| v.to_str().unwrap().contains("POST")), "{headers:?}");
        let (status, _, body) = call(&app, "POST", "/api/things", vec![b' '; 100]).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
        let (status, _, body) = call(&app, "POST", "/page", vec![]).await;
        assert_eq!((status, body), (StatusCode::METHOD_NOT_ALLOWED, serde_json::Value::Null), "pages keep their own errors");
    }

    #[tokio::test]
    async fn undecodable_ids_are_not_found_and_nul_is_refused_by_field() {
        let app = app();
        for id in ["%FF", "a%00b"] {
            let (status, _, body) = call(&app, "GET", &format!("/api/things/{id}"), vec![]).await;
            assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{id}");
        }
        let (status, _, body) = call(&app, "GET", "/api/things?q=a%00", vec![]).await;
        assert_eq!((status, body["details"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("q")));
        let (status, _, body) = call(&app, "POST", "/api/things", br#"{"name": "ok", "tags": ["x", "a\u0000"]}"#.to_vec()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            (body["details"][0]["field"].as_str(), body["details"][0]["code"].as_str()),
            (Some("tags[1]"), Some("invalid_characters"))
        );
        let (status, _, _) = call(&app, "POST", "/api/things", br#"{"name": "a\\u0000", "tags": []}"#.to_vec()).await;
        assert_eq!(status, StatusCode::OK, "an escaped backslash before u0000 is no NUL");
    }

    #[test]
    fn every_operation_documents_its_errors_with_the_error_body() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        let details = &doc["components"]["schemas"]["ErrorBody"]["properties"]["details"];
        assert_eq!(details["type"], serde_json::json!(["array", "null"]));
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("401"), "{method} {path} documents no 401");
                let has_body = op.get("requestBody").is_some();
                for code in ["400", "413", "415", "422"] {
                    assert!(!has_body || responses.contains_key(code), "{method} {path} takes a body but documents no {code}");
                }
                if op["parameters"].as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "If-Match")) {
                    assert!(responses.contains_key("412") && responses.contains_key("428"), "{method} {path}");
                }
                for (status, r) in responses {
                    if status.starts_with('4') {
                        assert_eq!(
                            r["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    } else if status == "204" {
                        assert!(r.get("content").is_none(), "{method} {path}: 204 has no body");
                    }
                }
            }
        }
    }
}

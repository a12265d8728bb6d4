//! `/api/v1/incidents/{id}/attachments…`, `/api/v1/attachments/{id}`, watchers and links of
//! the service desk's tickets (REQUIREMENTS §4): files with a size limit served with a safe
//! content type and `Content-Disposition`, and the links between tickets and other records.

use super::directory::IntoResponseOk;
use super::incidents::Incident;
use super::{ApiJson, ApiPath, ApiResponse, Forbidden, JsonBodyErrors, NotFound, Unauthorized, VersionErrors};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ErrorBody};
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keel_app::desk::{AttachInput, CatalogueItemInput, ServiceRequestInput, Staged};
use keel_app::{App, AppError, Principal};
use keel_domain::incident::attachment;
use keel_domain::incident::request_form::{FieldKind, FormField};
use keel_store::desk::CatalogueItemRecord;
use keel_store::desk::{AttachmentRecord, WatcherRecord};
use keel_store::incidents::LinkRecord;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_attachments, upload_attachment))
        .routes(routes!(download_attachment))
        .routes(routes!(list_watchers, add_watcher))
        .routes(routes!(remove_watcher))
        .routes(routes!(list_links, add_link))
        .routes(routes!(remove_link))
        .routes(routes!(set_parent))
        .routes(routes!(merge_incident))
        .routes(routes!(set_service))
        .routes(routes!(list_catalogue_items, create_catalogue_item))
        .routes(routes!(get_catalogue_item, update_catalogue_item))
        .routes(routes!(create_service_request))
        .routes(routes!(request_answers))
        .routes(routes!(bulk_change))
        .routes(routes!(export_incidents))
}

/// A file attached to a ticket or to one of its replies.
#[derive(Serialize, ToSchema)]
pub struct Attachment {
    pub id: String,
    pub ticket_id: String,
    pub comment_id: Option<String>,
    /// `public` or `internal`.
    pub visibility: String,
    pub file_name: String,
    /// The type it is served with: an image type or `application/pdf` when the bytes are
    /// really that, `application/octet-stream` otherwise.
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub uploaded_by: String,
    pub uploader_name: Option<String>,
    pub created_at: i64,
    /// Where to download it.
    pub href: String,
}

impl From<AttachmentRecord> for Attachment {
    fn from(a: AttachmentRecord) -> Self {
        Attachment {
            href: format!("/api/v1/attachments/{}", a.id),
            id: a.id,
            ticket_id: a.ticket_id,
            comment_id: a.comment_id,
            visibility: a.visibility,
            file_name: a.file_name,
            content_type: a.content_type,
            size_bytes: a.size_bytes,
            sha256: a.sha256,
            uploaded_by: a.uploaded_by,
            uploader_name: a.uploader_name,
            created_at: a.created_at,
        }
    }
}

/// A multipart upload: the file and where it goes.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AttachmentUpload {
    /// The file (its part's `filename` is kept, cleaned of paths).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// Attach to this reply of the ticket (the file takes its visibility).
    pub comment_id: Option<String>,
    /// `public` (default) or `internal` (staff only).
    pub visibility: Option<String>,
    /// A reply to write with the file, in the same transaction.
    pub body: Option<String>,
}

/// What an upload can be refused for.
#[derive(utoipa::IntoResponses)]
pub enum UploadErrors {
    /// The multipart body has no boundary or cannot be read (`malformed_body`).
    #[response(status = 400)]
    Malformed(ErrorBody),
    /// The body is not sent as `multipart/form-data` (`unsupported_media_type`).
    #[response(status = 415)]
    NotMultipart(ErrorBody),
    /// The request is larger than the attachment limit allows (`payload_too_large`).
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// No file, an empty file, a file over the size limit (`file`: `too_large`), a malformed
    /// multipart body (`file`: `malformed`), or an invalid visibility or reply
    /// (`validation_failed`, naming the field).
    #[response(status = 422)]
    Invalid(ErrorBody),
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::field("file", "too_large", "the file is larger than the attachment limit")
    } else {
        AppError::field("file", "malformed", format!("the upload could not be read: {}", e.body_text()))
    }
}

/// Reads a multipart upload: its text fields, and its `file` part streamed to a synced
/// temporary file (removed again if anything fails later).
pub async fn receive(app: &App, mut mp: Multipart) -> Result<(HashMap<String, String>, Option<(AttachInput, Staged)>), AppError> {
    let mut fields = HashMap::new();
    let mut file = None;
    while let Some(mut field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            if file.is_some() {
                return Err(AppError::field("file", "too_many", "send one file per request"));
            }
            let input = AttachInput {
                file_name: field.file_name().unwrap_or("").to_string(),
                declared_type: field.content_type().unwrap_or("").to_string(),
                ..Default::default()
            };
            let mut up = app.files.begin().await?;
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                up.write(&chunk).await?;
            }
            file = Some((input, up.finish().await?));
        } else {
            let text = field.text().await.map_err(multipart_error)?;
            if text.contains('\0') {
                return Err(AppError::field(&name, "invalid_characters", format!("{name} contains a NUL character")));
            }
            fields.insert(name, text);
        }
    }
    Ok((fields, file))
}

/// Receives an upload for a ticket the actor may see and records it.
pub async fn upload(
    app: &App,
    who: &Principal,
    ticket: &str,
    mp: Multipart,
    check: impl FnOnce(&HashMap<String, String>) -> Result<(), AppError>,
) -> Result<AttachmentRecord, AppError> {
    // Refused before a byte is stored when the ticket is not the actor's to see.
    let t = app.get_ticket(who, ticket).await?;
    let (fields, file) = receive(app, mp).await?;
    check(&fields)?;
    let (mut input, staged) = file.ok_or_else(|| AppError::field("file", "required", "choose a file"))?;
    let get = |k: &str| fields.get(k).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    input.comment_id = get("comment_id");
    input.visibility = get("visibility");
    input.body = get("body");
    app.attach_file(who, &t.id, input, staged).await
}

/// The bytes of an attachment with headers that keep a browser from running them.
pub async fn serve(app: &App, who: &Principal, id: &str) -> Result<Response, AppError> {
    let (a, path) = app.attachment_file(who, id).await?;
    let bytes = tokio::fs::read(&path).await.map_err(|e| AppError::Internal(format!("attachment {}: {e}", a.id)))?;
    let inline = attachment::is_inline(&a.content_type);
    let content_type = if inline { a.content_type.as_str() } else { attachment::OPAQUE_TYPE };
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(static_type(content_type)));
    if let Ok(v) = HeaderValue::from_str(&attachment::content_disposition(inline, &a.file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(res)
}

fn static_type(t: &str) -> &'static str {
    attachment::INLINE_TYPES.iter().find(|x| **x == t).copied().unwrap_or(attachment::OPAQUE_TYPE)
}

#[utoipa::path(get, path = "/api/v1/incidents/{id}/attachments", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Attachment>, description = "Customer contacts receive public files only"), Unauthorized, NotFound))]
async fn list_attachments(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let list = s.app.list_attachments(&who.principal, &id).await?;
    Ok(axum::Json(list.into_iter().map(Attachment::from).collect::<Vec<_>>()).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/attachments", tag = "incidents", params(("id" = String, Path)),
    request_body(content = AttachmentUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = Attachment), Unauthorized, UploadErrors, NotFound))]
async fn upload_attachment(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResponse {
    let mp = mp.map_err(|_| {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send Content-Type: multipart/form-data")
    })?;
    let a = upload(&s.app, &who.principal, &id, mp, |_| Ok(())).await?;
    Ok((StatusCode::CREATED, axum::Json(Attachment::from(a))).into_response())
}

#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, description = "The file; images and PDF inline, anything else as a download", content_type = "application/octet-stream", body = Vec<u8>), Unauthorized, NotFound))]
async fn download_attachment(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    Ok(serve(&s.app, &who.principal, &id).await?)
}

/// Someone who follows a ticket.
#[derive(Serialize, ToSchema)]
pub struct Watcher {
    pub user_id: String,
    pub display_name: String,
    /// `staff` or `contact`.
    pub kind: String,
    pub created_at: i64,
}

impl From<WatcherRecord> for Watcher {
    fn from(w: WatcherRecord) -> Self {
        Watcher { user_id: w.user_id, display_name: w.display_name, kind: w.kind, created_at: w.created_at }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWatcher {
    /// Blank or absent: the caller.
    pub user_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/incidents/{id}/watchers", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Watcher>), Unauthorized, NotFound))]
async fn list_watchers(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let list = s.app.list_watchers(&who.principal, &id).await?;
    Ok(axum::Json(list.into_iter().map(Watcher::from).collect::<Vec<_>>()).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/watchers", tag = "incidents", params(("id" = String, Path)), request_body = NewWatcher,
    responses((status = 204, description = "Watching"), Unauthorized, Forbidden, JsonBodyErrors, NotFound))]
async fn add_watcher(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NewWatcher>,
) -> ApiResponse {
    s.app.add_watcher(&who.principal, &id, b.user_id.as_deref().unwrap_or("")).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(delete, path = "/api/v1/incidents/{id}/watchers/{user_id}", tag = "incidents", params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204, description = "No longer watching"), Unauthorized, Forbidden, NotFound))]
async fn remove_watcher(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath((id, user_id)): ApiPath<(String, String)>,
) -> ApiResponse {
    s.app.remove_watcher(&who.principal, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A link from a ticket to a problem, a change (by reference) or a configuration item.
#[derive(Serialize, ToSchema)]
pub struct Link {
    pub id: String,
    /// `problem`, `change` or `ci`.
    pub target_type: String,
    pub target_id: String,
    pub created_by: String,
    pub created_at: i64,
}

impl From<LinkRecord> for Link {
    fn from(l: LinkRecord) -> Self {
        Link { id: l.id, target_type: l.target_type, target_id: l.target_id, created_by: l.created_by, created_at: l.created_at }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    /// `problem`, `change` or `ci`.
    pub target_type: String,
    /// The problem's or change's reference, or the CI's id.
    pub target_id: String,
}

#[utoipa::path(get, path = "/api/v1/incidents/{id}/links", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Link>, description = "Staff only; contacts receive an empty list"), Unauthorized, NotFound))]
async fn list_links(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let list = s.app.list_links(&who.principal, &id).await?;
    Ok(axum::Json(list.into_iter().map(Link::from).collect::<Vec<_>>()).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/links", tag = "incidents", params(("id" = String, Path)), request_body = NewLink,
    responses((status = 201, body = Link), Unauthorized, Forbidden, JsonBodyErrors, NotFound))]
async fn add_link(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NewLink>,
) -> ApiResponse {
    let l = s.app.link_record(&who.principal, &id, &b.target_type, &b.target_id).await?;
    Ok((StatusCode::CREATED, axum::Json(Link::from(l))).into_response())
}

#[utoipa::path(delete, path = "/api/v1/incidents/{id}/links/{link_id}", tag = "incidents", params(("id" = String, Path), ("link_id" = String, Path)),
    responses((status = 204, description = "Unlinked"), Unauthorized, Forbidden, NotFound))]
async fn remove_link(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath((id, link_id)): ApiPath<(String, String)>) -> ApiResponse {
    s.app.unlink_record(&who.principal, &id, &link_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParentInput {
    /// The parent's id or number; `null` clears it.
    pub parent: Option<String>,
}

#[utoipa::path(put, path = "/api/v1/incidents/{id}/parent", tag = "incidents", params(("id" = String, Path)), request_body = ParentInput,
    responses((status = 200, body = Incident), Unauthorized, Forbidden, JsonBodyErrors, NotFound))]
async fn set_parent(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ParentInput>,
) -> ApiResponse {
    let t = s.app.set_parent(&who.principal, &id, b.parent.as_deref()).await?;
    Ok(axum::Json(Incident::from(t)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeInput {
    /// The id or number of the ticket that carries on.
    pub into: String,
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/merge", tag = "incidents", params(("id" = String, Path)), request_body = MergeInput,
    responses((status = 200, body = Incident, description = "The duplicate, closed and pointing to the ticket it was merged into"), Unauthorized, Forbidden, JsonBodyErrors, NotFound))]
async fn merge_incident(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<MergeInput>,
) -> ApiResponse {
    let t = s.app.merge_ticket(&who.principal, &id, &b.into).await?;
    Ok(axum::Json(Incident::from(t)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    /// A catalogue service's id; `null` clears it.
    pub service_id: Option<String>,
}

#[utoipa::path(put, path = "/api/v1/incidents/{id}/service", tag = "incidents", params(("id" = String, Path)), request_body = ServiceInput,
    responses((status = 200, body = Incident), Unauthorized, Forbidden, JsonBodyErrors, NotFound))]
async fn set_service(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ServiceInput>,
) -> ApiResponse {
    let t = s.app.set_affected_service(&who.principal, &id, b.service_id.as_deref()).await?;
    Ok(axum::Json(Incident::from(t)).into_response())
}

/// One question of a catalogue item's form.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormFieldDoc {
    /// Key the answer is stored under: a-z, 0-9 and `_`, starting with a letter.
    pub key: String,
    pub label: String,
    /// `text`, `number`, `date` (YYYY-MM-DD) or `choice`.
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    /// For `choice` fields: the allowed answers.
    #[serde(default)]
    pub choices: Vec<String>,
}

fn domain_fields(list: Vec<FormFieldDoc>) -> Result<Vec<FormField>, AppError> {
    let mut out = Vec::new();
    for (i, f) in list.into_iter().enumerate() {
        let kind = FieldKind::parse_field(&format!("fields[{i}].kind"), &f.kind).map_err(|e| AppError::Validation(vec![e]))?;
        out.push(FormField { key: f.key, label: f.label, kind, required: f.required, choices: f.choices });
    }
    Ok(out)
}

/// An orderable item of the service catalogue with its request form.
#[derive(Serialize, ToSchema)]
pub struct CatalogueItem {
    pub id: String,
    pub service_id: String,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub fields: Vec<FormFieldDoc>,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

fn item_doc(i: CatalogueItemRecord) -> Result<CatalogueItem, AppError> {
    let fields = keel_app::desk::form_of(&i)?
        .into_iter()
        .map(|f| FormFieldDoc { key: f.key, label: f.label, kind: f.kind.as_str().into(), required: f.required, choices: f.choices })
        .collect();
    Ok(CatalogueItem {
        id: i.id,
        service_id: i.service_id,
        code: i.code,
        name: i.name,
        description: i.description,
        fields,
        active: i.active,
        created_at: i.created_at,
        updated_at: i.updated_at,
        version: i.version,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogueItemBody {
    pub service_id: String,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub fields: Vec<FormFieldDoc>,
    pub active: Option<bool>,
}

fn item_input(b: CatalogueItemBody) -> Result<CatalogueItemInput, AppError> {
    Ok(CatalogueItemInput {
        service_id: b.service_id,
        code: b.code,
        name: b.name,
        description: b.description,
        fields: domain_fields(b.fields)?,
        active: b.active,
    })
}

#[utoipa::path(get, path = "/api/v1/catalogue-items", tag = "incidents",
    responses((status = 200, body = Vec<CatalogueItem>, description = "Contacts receive the active items of services their organisation's SLAs include"), Unauthorized))]
async fn list_catalogue_items(State(s): State<AppState>, ApiUser(who): ApiUser) -> ApiResponse {
    let items = s.app.list_catalogue_items(&who.principal).await?;
    let docs = items.into_iter().map(item_doc).collect::<Result<Vec<_>, _>>()?;
    Ok(axum::Json(docs).into_response())
}

#[utoipa::path(post, path = "/api/v1/catalogue-items", tag = "incidents", request_body = CatalogueItemBody,
    responses((status = 201, body = CatalogueItem), Unauthorized, Forbidden, JsonBodyErrors))]
async fn create_catalogue_item(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<CatalogueItemBody>) -> ApiResponse {
    let i = s.app.create_catalogue_item(&who.principal, item_input(b)?).await?;
    let (v, loc) = (i.version, format!("/api/v1/catalogue-items/{}", i.id));
    Ok(super::created(v, loc, item_doc(i)?))
}

#[utoipa::path(get, path = "/api/v1/catalogue-items/{id}", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = CatalogueItem), Unauthorized, NotFound))]
async fn get_catalogue_item(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let i = s.app.get_catalogue_item(&who.principal, &id).await?;
    Ok(super::with_etag(i.version, item_doc(i)?))
}

#[utoipa::path(put, path = "/api/v1/catalogue-items/{id}", tag = "incidents", params(("id" = String, Path)), request_body = CatalogueItemBody,
    responses((status = 200, body = CatalogueItem), Unauthorized, Forbidden, JsonBodyErrors, VersionErrors, NotFound))]
async fn update_catalogue_item(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: axum::http::HeaderMap,
    ApiJson(b): ApiJson<CatalogueItemBody>,
) -> ApiResponse {
    let expected = super::if_match(&headers)?;
    let i = s.app.update_catalogue_item(&who.principal, &id, item_input(b)?, Some(expected)).await?;
    Ok(super::with_etag(i.version, item_doc(i)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServiceRequest {
    pub catalogue_item_id: String,
    pub project_id: String,
    /// Staff: the caller who orders; contacts order for themselves.
    pub reporter_id: Option<String>,
    /// Blank: the item's name.
    pub title: Option<String>,
    pub description: Option<String>,
    /// Answers by field key: strings, numbers or booleans.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub answers: serde_json::Map<String, serde_json::Value>,
}

#[utoipa::path(post, path = "/api/v1/service-requests", tag = "incidents", request_body = NewServiceRequest,
    responses((status = 201, body = Incident, description = "The REQ ticket opened"), Unauthorized, Forbidden, JsonBodyErrors))]
async fn create_service_request(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewServiceRequest>) -> ApiResponse {
    let mut answers = std::collections::BTreeMap::new();
    for (k, v) in b.answers {
        let text = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => return Err(ApiError::field(&format!("answers.{k}"), "invalid_value", "answer with a string, number or boolean")),
        };
        answers.insert(k, text);
    }
    let input = ServiceRequestInput {
        catalogue_item_id: b.catalogue_item_id,
        project_id: b.project_id,
        reporter_id: b.reporter_id,
        title: b.title,
        description: b.description,
        answers,
    };
    let t = s.app.request_service(&who.principal, input).await?;
    let (v, loc) = (t.version, format!("/api/v1/incidents/{}", t.id));
    Ok(super::created(v, loc, Incident::from(t)))
}

#[utoipa::path(get, path = "/api/v1/incidents/{id}/answers", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = Object, description = "The answers of a service request's form (`null` for other tickets)"), Unauthorized, NotFound))]
async fn request_answers(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let a = s.app.request_answers(&who.principal, &id).await?;
    Ok(axum::Json(a).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkChange {
    /// Ticket ids or numbers, 1 to 500.
    pub ids: Vec<String>,
    /// The lifecycle action for every ticket, e.g. `assign`, `reassign`, `start`, `resolve`.
    pub action: String,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    pub pending_reason: Option<String>,
    pub note: Option<String>,
    pub resolution_code: Option<String>,
    pub resolution_notes: Option<String>,
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BulkResult {
    /// The tickets as changed.
    pub items: Vec<Incident>,
}

#[utoipa::path(post, path = "/api/v1/incidents/bulk", tag = "incidents", request_body = BulkChange,
    responses((status = 200, body = BulkResult, description = "Every ticket changed"),
        (status = 422, body = ErrorBody, description = "Nothing changed: `details` names each refusing ticket (as `field`) with its code and message"),
        Unauthorized, JsonBodyErrors))]
async fn bulk_change(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<BulkChange>) -> ApiResponse {
    let input = keel_app::incidents::TransitionInput {
        action: b.action,
        team_id: b.team_id,
        agent_id: b.agent_id,
        pending_reason: b.pending_reason,
        note: b.note,
        resolution_code: b.resolution_code,
        resolution_notes: b.resolution_notes,
        reason: b.reason,
        duplicate_of: None,
    };
    let done = s.app.bulk_transition(&who.principal, &b.ids, input).await?;
    Ok(axum::Json(BulkResult { items: done.into_iter().map(Incident::from).collect() }).into_response())
}

/// One CSV cell: quoted when needed, and a leading `=`, `+`, `-` or `@` neutralised so a
/// spreadsheet does not run it as a formula.
fn csv_cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) { format!("'{v}") } else { v.to_string() };
    if v.contains([',', '"', '\n', '\r']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v }
}

const CSV_COLUMNS: &[&str] = &[
    "number",
    "kind",
    "title",
    "status",
    "priority",
    "impact",
    "urgency",
    "organization",
    "project",
    "reporter",
    "team",
    "agent",
    "category",
    "created_at",
    "updated_at",
    "resolved_at",
    "closed_at",
];

fn csv_row(t: &keel_store::incidents::TicketRecord) -> String {
    let at = |ms: Option<i64>| ms.and_then(chrono::DateTime::from_timestamp_millis).map(|d| d.to_rfc3339()).unwrap_or_default();
    let cells = [
        t.number.clone(),
        t.kind.clone(),
        t.title.clone(),
        t.status.clone(),
        t.priority.clone(),
        t.impact.clone(),
        t.urgency.clone(),
        t.names.organization_name.clone(),
        t.names.project_code.clone(),
        t.names.reporter_name.clone(),
        t.names.team_name.clone().unwrap_or_default(),
        t.names.agent_name.clone().unwrap_or_default(),
        t.names.category_name.clone().unwrap_or_default(),
        at(Some(t.created_at)),
        at(Some(t.updated_at)),
        at(t.resolved_at),
        at(t.closed_at),
    ];
    let mut line = cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// The CSV of every ticket a filtered list shows the caller, written page by page as it is
/// read (the same filters and tenancy as the list).
pub fn csv_stream(app: App, who: Principal, filter: keel_store::incidents::TicketFilter, sort: keel_store::page::PageRequest) -> Response {
    let header_line = format!("{}\r\n", CSV_COLUMNS.join(","));
    let state = (Some(header_line), Some(sort), app, who, filter);
    let stream = futures_util::stream::unfold(state, |(header, page, app, who, filter)| async move {
        if let Some(h) = header {
            return Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(h)), (None, page, app, who, filter)));
        }
        let mut page = page?;
        page.limit = 500;
        match app.list_tickets(&who, &filter, &page).await {
            Ok(r) => {
                let chunk: String = r.items.iter().map(csv_row).collect();
                let next = r
                    .next_cursor
                    .as_deref()
                    .and_then(|c| keel_store::page::decode_cursor(&page.sort, c))
                    .map(|after| keel_store::page::PageRequest { after: Some(after), ..page.clone() });
                Some((Ok(axum::body::Bytes::from(chunk)), (None, next, app, who, filter)))
            }
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), (None, None, app, who, filter))),
        }
    });
    let mut res = axum::body::Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"tickets.csv\""));
    res
}

#[utoipa::path(get, path = "/api/v1/incidents/export", tag = "incidents", params(super::incidents::IncidentQuery, super::PageParams),
    responses((status = 200, description = "CSV (UTF-8) of every ticket the list would show, one header line", content_type = "text/csv", body = String),
        Unauthorized, super::InvalidQuery))]
async fn export_incidents(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    super::ApiQuery(q): super::ApiQuery<super::incidents::IncidentQuery>,
    super::ApiQuery(pp): super::ApiQuery<super::PageParams>,
) -> ApiResponse {
    let page = super::page_request(&pp, super::incidents::INCIDENT_SORTS)?;
    let f = super::incidents::filter_of(q, &who.principal.user_id)?;
    Ok(csv_stream(s.app.clone(), who.principal, f, page))
}

//! `/api/v1/notifications`: communication with customers and staff (ISO/IEC 20000-1 §8.3.2) —
//! the delivery log with its dead letters, message templates per event and language, and the
//! chat webhooks notifications go out on.

use super::{
    ApiJson, ApiPath, ApiQuery, ApiResponse, Forbidden, InvalidQuery, JsonBodyErrors, NotFound, Unauthorized, VersionErrors, created,
    if_match, with_etag,
};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ErrorBody};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use keel_app::notifications::templates::MessageTemplate;
use keel_app::notifications::{TemplateView, WebhookInput};
use keel_store::notifications::{Delivery as DeliveryRecord, DeliveryFilter, WebhookRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(retry_delivery))
        .routes(routes!(list_templates))
        .routes(routes!(get_template, save_template, reset_template))
        .routes(routes!(preview_template))
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(get_sender, set_sender))
        .routes(routes!(my_preferences, set_my_preferences))
}

/// The From address of a service project's notification emails.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    /// e.g. `Acme Desk <acme@desk.example>`; `null` uses the instance's `[smtp] from`.
    #[schema(required = true)]
    pub from: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/notifications/projects/{id}/sender", tag = "notifications", params(("id" = String, Path)),
    responses((status = 200, description = "The project's From address", body = Sender), Unauthorized, Forbidden, NotFound))]
async fn get_sender(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    Ok(axum::Json(Sender { from: s.app.project_sender(&who.principal, &id).await? }).into_response())
}

#[utoipa::path(put, path = "/api/v1/notifications/projects/{id}/sender", tag = "notifications", params(("id" = String, Path)), request_body = Sender,
    responses((status = 200, description = "The project's From address is set", body = Sender), JsonBodyErrors, Unauthorized, Forbidden, NotFound))]
async fn set_sender(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<Sender>,
) -> ApiResponse {
    let from = s.app.set_project_sender(&who.principal, &id, b.from.as_deref()).await?;
    Ok(axum::Json(Sender { from }).into_response())
}

/// One message to one recipient on one channel.
#[derive(Serialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    /// The outbox announcement it was prepared from.
    pub announcement_id: String,
    /// e.g. `incident.assigned`, `sla.breached`.
    pub event_kind: String,
    pub entity_type: String,
    pub entity_id: String,
    /// `email` or `webhook`.
    pub channel: String,
    /// The email address, or the webhook's id.
    pub recipient: String,
    pub recipient_user_id: Option<String>,
    /// `en` or `zh-CN`.
    pub language: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    /// `pending`, `sending`, `sent` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<DeliveryRecord> for Delivery {
    fn from(d: DeliveryRecord) -> Self {
        Delivery {
            id: d.id,
            announcement_id: d.announcement_id,
            event_kind: d.event_kind,
            entity_type: d.entity_type,
            entity_id: d.entity_id,
            channel: d.channel,
            recipient: d.recipient,
            recipient_user_id: d.recipient_user_id,
            language: d.language,
            subject: d.subject,
            body_text: d.body_text,
            body_html: d.body_html,
            status: d.status,
            attempts: d.attempts,
            max_attempts: d.max_attempts,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
            sent_at: d.sent_at,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `pending`, `sending`, `sent` or `dead` (the dead letters).
    pub status: Option<String>,
    pub entity_id: Option<String>,
    pub event_kind: Option<String>,
}

const STATUSES: &[&str] = &["pending", "sending", "sent", "dead"];

#[utoipa::path(get, path = "/api/v1/notifications/deliveries", tag = "notifications", params(DeliveryQuery),
    responses((status = 200, description = "The latest 200 deliveries matching the filter, newest change first", body = Vec<Delivery>), Unauthorized, Forbidden, InvalidQuery))]
async fn list_deliveries(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(q): ApiQuery<DeliveryQuery>) -> ApiResponse {
    if let Some(st) = &q.status
        && !STATUSES.contains(&st.as_str())
    {
        return Err(ApiError::field("status", "invalid_choice", "status is one of pending, sending, sent, dead"));
    }
    let f = DeliveryFilter { status: q.status, entity_id: q.entity_id, event_kind: q.event_kind };
    let items = s.app.list_deliveries(&who.principal, &f).await?;
    Ok(axum::Json(items.into_iter().map(Delivery::from).collect::<Vec<_>>()).into_response())
}

#[utoipa::path(get, path = "/api/v1/notifications/deliveries/{id}", tag = "notifications", params(("id" = String, Path)),
    responses((status = 200, description = "The delivery", body = Delivery), Unauthorized, Forbidden, NotFound))]
async fn get_delivery(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    Ok(axum::Json(Delivery::from(s.app.get_delivery(&who.principal, &id).await?)).into_response())
}

#[utoipa::path(post, path = "/api/v1/notifications/deliveries/{id}/retry", tag = "notifications", params(("id" = String, Path)),
    responses((status = 200, description = "The dead letter is queued again with fresh attempts", body = Delivery),
        (status = 409, description = "Only a dead delivery can be retried (`not_dead`)", body = ErrorBody), Unauthorized, Forbidden, NotFound))]
async fn retry_delivery(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    Ok(axum::Json(Delivery::from(s.app.retry_delivery(&who.principal, &id).await?)).into_response())
}

/// A message template: subject, plain-text and HTML bodies in minijinja syntax.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub subject: String,
    pub body_text: String,
    /// Values are HTML-escaped automatically.
    pub body_html: String,
}

impl From<Template> for MessageTemplate {
    fn from(t: Template) -> Self {
        MessageTemplate { subject: t.subject, body_text: t.body_text, body_html: t.body_html }
    }
}

/// The template in force for one event kind and language.
#[derive(Serialize, ToSchema)]
pub struct TemplateEntry {
    pub event_kind: String,
    /// `en` or `zh-CN`.
    pub language: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    /// False while the shipped default is used.
    pub overridden: bool,
    /// 0 for the shipped default; the ETag for `If-Match`.
    pub version: i64,
}

impl From<TemplateView> for TemplateEntry {
    fn from(v: TemplateView) -> Self {
        TemplateEntry {
            event_kind: v.event_kind,
            language: v.language,
            subject: v.template.subject,
            body_text: v.template.body_text,
            body_html: v.template.body_html,
            overridden: v.overridden,
            version: v.version,
        }
    }
}

/// A rendered message.
#[derive(Serialize, ToSchema)]
pub struct Preview {
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
}

#[utoipa::path(get, path = "/api/v1/notifications/templates", tag = "notifications",
    responses((status = 200, description = "Every event kind and language with the template in force", body = Vec<TemplateEntry>), Unauthorized, Forbidden))]
async fn list_templates(State(s): State<AppState>, ApiUser(who): ApiUser) -> ApiResponse {
    let items = s.app.notification_templates(&who.principal).await?;
    Ok(axum::Json(items.into_iter().map(TemplateEntry::from).collect::<Vec<_>>()).into_response())
}

#[utoipa::path(get, path = "/api/v1/notifications/templates/{event_kind}/{language}", tag = "notifications",
    params(("event_kind" = String, Path), ("language" = String, Path, description = "en or zh-CN")),
    responses((status = 200, description = "The template in force", body = TemplateEntry, headers(("ETag" = String, description = "The template's version, for `If-Match`"))), Unauthorized, Forbidden, NotFound))]
async fn get_template(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath((kind, lang)): ApiPath<(String, String)>) -> ApiResponse {
    let v = s.app.notification_template(&who.principal, &kind, &lang).await?;
    Ok(with_etag(v.version, TemplateEntry::from(v)))
}

#[utoipa::path(put, path = "/api/v1/notifications/templates/{event_kind}/{language}", tag = "notifications",
    params(("event_kind" = String, Path), ("language" = String, Path, description = "en or zh-CN"), ("If-Match" = String, Header, description = "ETag of the version the change is based on (\"0\" for the shipped default)")),
    request_body = Template,
    responses((status = 200, description = "The override is saved; a template that does not render is refused with each error's part and line", body = TemplateEntry, headers(("ETag" = String, description = "The template's version, for `If-Match`"))), JsonBodyErrors, VersionErrors, Unauthorized, Forbidden, NotFound))]
async fn save_template(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath((kind, lang)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<Template>,
) -> ApiResponse {
    s.app.notification_template(&who.principal, &kind, &lang).await?;
    let version = if_match(&headers)?;
    let v = s.app.save_template(&who.principal, &kind, &lang, b.into(), Some(version)).await?;
    Ok(with_etag(v.version, TemplateEntry::from(v)))
}

#[utoipa::path(delete, path = "/api/v1/notifications/templates/{event_kind}/{language}", tag = "notifications",
    params(("event_kind" = String, Path), ("language" = String, Path, description = "en or zh-CN")),
    responses((status = 200, description = "The override is removed; the shipped default is in force", body = TemplateEntry), Unauthorized, Forbidden, NotFound))]
async fn reset_template(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath((kind, lang)): ApiPath<(String, String)>) -> ApiResponse {
    let v = s.app.reset_template(&who.principal, &kind, &lang).await?;
    Ok(with_etag(v.version, TemplateEntry::from(v)))
}

#[utoipa::path(post, path = "/api/v1/notifications/templates/preview", tag = "notifications", request_body = Template,
    responses((status = 200, description = "The template rendered with sample values; errors name the part and line", body = Preview), JsonBodyErrors, Unauthorized, Forbidden))]
async fn preview_template(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<Template>) -> ApiResponse {
    let r = s.app.preview_template(&who.principal, &b.into())?;
    Ok(axum::Json(Preview { subject: r.subject, body_text: r.body_text, body_html: r.body_html }).into_response())
}

/// A chat webhook. The secret is never returned.
#[derive(Serialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub name: String,
    /// `dingtalk`, `wecom`, `feishu`, `slack` or `generic`.
    pub kind: String,
    pub url: String,
    pub has_secret: bool,
    /// Event kinds it carries; empty means all.
    pub event_kinds: Vec<String>,
    pub project_id: Option<String>,
    pub team_id: Option<String>,
    pub language: String,
    pub active: bool,
    pub version: i64,
}

impl From<WebhookRecord> for Webhook {
    fn from(h: WebhookRecord) -> Self {
        Webhook {
            id: h.id,
            name: h.name,
            kind: h.kind,
            url: h.url,
            has_secret: h.secret.is_some(),
            event_kinds: h.event_kinds,
            project_id: h.project_id,
            team_id: h.team_id,
            language: h.language,
            active: h.active,
            version: h.version,
        }
    }
}

/// A new chat webhook.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub name: String,
    /// `dingtalk`, `wecom`, `feishu`, `slack` or `generic`.
    pub kind: String,
    pub url: String,
    /// DingTalk/Feishu signing secret, or the HMAC key of `X-Keel-Signature` for generic hooks.
    pub secret: Option<String>,
    #[serde(default)]
    pub event_kinds: Vec<String>,
    pub project_id: Option<String>,
    pub team_id: Option<String>,
    /// `en` or `zh-CN` (default).
    pub language: Option<String>,
    pub active: Option<bool>,
}

/// Changes to a webhook; absent fields keep their value, an empty `secret` keeps the secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub url: Option<String>,
    pub secret: Option<String>,
    pub event_kinds: Option<Vec<String>>,
    pub project_id: Option<String>,
    pub team_id: Option<String>,
    pub language: Option<String>,
    pub active: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/notifications/webhooks", tag = "notifications",
    responses((status = 200, description = "The chat webhooks", body = Vec<Webhook>), Unauthorized, Forbidden))]
async fn list_webhooks(State(s): State<AppState>, ApiUser(who): ApiUser) -> ApiResponse {
    let items = s.app.list_webhooks(&who.principal).await?;
    Ok(axum::Json(items.into_iter().map(Webhook::from).collect::<Vec<_>>()).into_response())
}

#[utoipa::path(post, path = "/api/v1/notifications/webhooks", tag = "notifications", request_body = NewWebhook,
    responses((status = 201, description = "The webhook was created", body = Webhook, headers(("ETag" = String, description = "The record's version, for `If-Match`"), ("Location" = String, description = "The new record's URL"))), JsonBodyErrors, Unauthorized, Forbidden))]
async fn create_webhook(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewWebhook>) -> ApiResponse {
    let input = WebhookInput {
        name: b.name,
        kind: b.kind,
        url: b.url,
        secret: b.secret,
        event_kinds: b.event_kinds,
        project_id: b.project_id,
        team_id: b.team_id,
        language: b.language,
        active: b.active,
    };
    let h = s.app.create_webhook(&who.principal, input).await?;
    Ok(created(h.version, format!("/api/v1/notifications/webhooks/{}", h.id), Webhook::from(h)))
}

#[utoipa::path(get, path = "/api/v1/notifications/webhooks/{id}", tag = "notifications", params(("id" = String, Path)),
    responses((status = 200, description = "The webhook", body = Webhook, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), Unauthorized, Forbidden, NotFound))]
async fn get_webhook(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let h = s.app.get_webhook(&who.principal, &id).await?;
    Ok(with_etag(h.version, Webhook::from(h)))
}

#[utoipa::path(patch, path = "/api/v1/notifications/webhooks/{id}", tag = "notifications", params(("id" = String, Path), ("If-Match" = String, Header, description = "ETag of the version the change is based on")),
    request_body = WebhookPatch,
    responses((status = 200, description = "The updated webhook", body = Webhook, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), JsonBodyErrors, VersionErrors, Unauthorized, Forbidden, NotFound))]
async fn update_webhook(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<WebhookPatch>,
) -> ApiResponse {
    let cur = s.app.get_webhook(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let input = WebhookInput {
        name: b.name.unwrap_or(cur.name),
        kind: b.kind.unwrap_or(cur.kind),
        url: b.url.unwrap_or(cur.url),
        secret: b.secret,
        event_kinds: b.event_kinds.unwrap_or(cur.event_kinds),
        project_id: b.project_id.or(cur.project_id),
        team_id: b.team_id.or(cur.team_id),
        language: b.language.or(Some(cur.language)),
        active: b.active.or(Some(cur.active)),
    };
    let h = s.app.update_webhook(&who.principal, &id, input, Some(version)).await?;
    Ok(with_etag(h.version, Webhook::from(h)))
}

#[utoipa::path(delete, path = "/api/v1/notifications/webhooks/{id}", tag = "notifications", params(("id" = String, Path)),
    responses((status = 204, description = "The webhook is removed; its undelivered messages become dead letters"), Unauthorized, Forbidden, NotFound))]
async fn delete_webhook(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    s.app.delete_webhook(&who.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// One event kind in a person's notification preferences.
#[derive(Serialize, ToSchema)]
pub struct Preference {
    /// e.g. `incident.resolved`.
    pub event_kind: String,
    /// Always sent (major-incident updates, SLA breaches and escalations); cannot be opted out of.
    pub mandatory: bool,
    /// The person is emailed about it.
    pub subscribed: bool,
}

/// The event kinds the signed-in person does not want to be emailed about.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptOuts {
    /// Replaces the current list; `[]` subscribes to everything again. A mandatory kind is
    /// refused with `mandatory_notification`, an unknown one with `invalid_choice` (field `opt_outs`).
    pub opt_outs: Vec<String>,
}

fn preference_list(list: Vec<keel_app::notifications::preferences::Preference>) -> Vec<Preference> {
    list.into_iter().map(|p| Preference { event_kind: p.event_kind, mandatory: p.mandatory, subscribed: p.subscribed }).collect()
}

#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "notifications",
    responses((status = 200, description = "Every event kind and whether the signed-in person is emailed about it", body = Vec<Preference>), Unauthorized, Forbidden))]
async fn my_preferences(State(s): State<AppState>, ApiUser(who): ApiUser) -> ApiResponse {
    Ok(axum::Json(preference_list(s.app.notification_preferences(&who.principal).await?)).into_response())
}

#[utoipa::path(put, path = "/api/v1/me/notifications", tag = "notifications", request_body = OptOuts,
    responses((status = 200, description = "The opt-outs are saved", body = Vec<Preference>), JsonBodyErrors, Unauthorized, Forbidden))]
async fn set_my_preferences(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<OptOuts>) -> ApiResponse {
    Ok(axum::Json(preference_list(s.app.set_notification_opt_outs(&who.principal, &b.opt_outs).await?)).into_response())
}

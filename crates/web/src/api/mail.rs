//! `/api/v1/mail/inbound` and `/api/v1/projects/{id}/mailboxes`: the service desk's email
//! channel (REQUIREMENTS §4) — a message delivered over HTTP (the same gateway as `keel
//! mailgate`) and the mailboxes a project receives mail through.

use super::directory::IntoResponseOk;
use super::{ApiJson, ApiPath, ApiQuery, ApiResponse, Forbidden, JsonBodyErrors, NotFound, Unauthorized};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ErrorBody};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use keel_app::mail_in::{MailboxInput, Receipt};
use keel_store::mail::MailboxRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(receive_mail))
        .routes(routes!(list_mailboxes, create_mailbox))
        .routes(routes!(get_mailbox, update_mailbox))
        .routes(routes!(list_held))
        .routes(routes!(release_held))
        .routes(routes!(discard_held))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboundQuery {
    /// The project's id or code.
    pub project: String,
}

/// What became of a received message.
#[derive(Serialize, ToSchema)]
pub struct MailReceipt {
    /// The Message-ID, without angle brackets.
    pub message_id: String,
    /// `ticket`, `reply`, `ignored` (auto-reply, bounce, Keel's own mail, storm) or `held`
    /// (for review: unknown sender, another organisation's contact).
    pub outcome: String,
    pub reason: Option<String>,
    pub ticket_id: Option<String>,
    pub comment_id: Option<String>,
    /// The message had been received before; nothing new was stored.
    pub duplicate: bool,
}

impl From<Receipt> for MailReceipt {
    fn from(r: Receipt) -> Self {
        let m = r.message;
        MailReceipt {
            message_id: m.message_id,
            outcome: m.outcome,
            reason: m.reason,
            ticket_id: m.ticket_id,
            comment_id: m.comment_id,
            duplicate: r.duplicate,
        }
    }
}

/// What an inbound message can be refused for.
#[derive(utoipa::IntoResponses)]
pub enum InboundErrors {
    /// The body could not be read (`malformed_body`).
    #[response(status = 400)]
    Malformed(ErrorBody),
    /// The message is larger than the limit (`payload_too_large`).
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not sent as `message/rfc822` (`unsupported_media_type`).
    #[response(status = 415)]
    NotMail(ErrorBody),
    /// Not a message, or no sender address (`message`: `invalid`).
    #[response(status = 422)]
    Invalid(ErrorBody),
}

#[utoipa::path(post, path = "/api/v1/mail/inbound", tag = "incidents", params(InboundQuery),
    request_body(content = Vec<u8>, content_type = "message/rfc822", description = "One RFC 5322 message as received"),
    responses(
        (status = 201, body = MailReceipt, description = "Recorded: a ticket, a reply, ignored as noise or held for review"),
        (status = 200, body = MailReceipt, description = "Received before; nothing new stored"),
        Unauthorized, Forbidden, NotFound, InboundErrors))]
async fn receive_mail(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<InboundQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResponse {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the message is larger than the limit")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", "the message could not be read")
        }
    })?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.trim().to_ascii_lowercase().starts_with("message/rfc822") {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send Content-Type: message/rfc822"));
    }
    let r = s.app.receive_mail(&who.principal, &q.project, &body).await?;
    let status = if r.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, axum::Json(MailReceipt::from(r))).into_response())
}

/// A mailbox of a project: the address mail arrives at, what happens to unknown senders, and
/// the IMAP server polled for it (its secret is never returned).
#[derive(Serialize, ToSchema)]
pub struct Mailbox {
    pub id: String,
    pub project_id: String,
    pub address: String,
    /// `create_contact` (in the project's organisation) or `hold` (for review).
    pub unknown_sender: String,
    pub imap_host: Option<String>,
    pub imap_port: Option<i64>,
    /// `tls`, `starttls` or `plain`.
    pub imap_tls: Option<String>,
    pub imap_user: Option<String>,
    /// Whether an IMAP password is stored (encrypted; it is never returned).
    pub has_imap_secret: bool,
    pub imap_folder: Option<String>,
    pub imap_done_folder: Option<String>,
    /// The private CA trusted for the IMAP server, PEM.
    pub imap_ca_pem: Option<String>,
    /// The resolver group whose queue receives the tickets this mailbox's mail creates.
    pub team_id: Option<String>,
    pub active: bool,
    pub created_at: i64,
}

impl From<MailboxRecord> for Mailbox {
    fn from(m: MailboxRecord) -> Self {
        Mailbox {
            id: m.id,
            project_id: m.project_id,
            address: m.address,
            unknown_sender: m.unknown_sender,
            imap_host: m.imap_host,
            imap_port: m.imap_port,
            imap_tls: m.imap_tls,
            imap_user: m.imap_user,
            has_imap_secret: m.imap_secret.is_some(),
            imap_folder: m.imap_folder,
            imap_done_folder: m.imap_done_folder,
            imap_ca_pem: m.imap_ca_pem,
            team_id: m.team_id,
            active: m.active,
            created_at: m.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMailbox {
    pub address: String,
    /// `create_contact` or `hold` (default).
    pub unknown_sender: Option<String>,
    pub imap_host: Option<String>,
    pub imap_port: Option<i64>,
    /// `tls`, `starttls` or `plain` (loopback only).
    pub imap_tls: Option<String>,
    pub imap_user: Option<String>,
    pub imap_secret: Option<String>,
    /// Default `INBOX`.
    pub imap_folder: Option<String>,
    /// Where processed mail is moved; flagged as seen when absent.
    pub imap_done_folder: Option<String>,
    /// PEM certificate(s) of a private CA that issued the IMAP server's certificate.
    pub imap_ca_pem: Option<String>,
    /// A team working on the project (a member belongs to it) whose queue receives the
    /// tickets this mailbox's mail creates; absent or empty leaves them unassigned.
    pub team_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/mailboxes", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Mailbox>), Unauthorized, NotFound))]
async fn list_mailboxes(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let list = s.app.list_mailboxes(&who.principal, &id).await?;
    Ok(axum::Json(list.into_iter().map(Mailbox::from).collect::<Vec<_>>()).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/mailboxes", tag = "incidents", params(("id" = String, Path)), request_body = NewMailbox,
    responses((status = 201, body = Mailbox), Unauthorized, Forbidden, JsonBodyErrors, NotFound))]
async fn create_mailbox(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NewMailbox>,
) -> ApiResponse {
    let m = s.app.create_mailbox(&who.principal, &id, b.into()).await?;
    Ok((StatusCode::CREATED, axum::Json(Mailbox::from(m))).into_response())
}

impl From<NewMailbox> for MailboxInput {
    fn from(b: NewMailbox) -> Self {
        MailboxInput {
            address: b.address,
            unknown_sender: b.unknown_sender,
            imap_host: b.imap_host,
            imap_port: b.imap_port,
            imap_tls: b.imap_tls,
            imap_user: b.imap_user,
            imap_secret: b.imap_secret,
            imap_folder: b.imap_folder,
            imap_done_folder: b.imap_done_folder,
            imap_ca_pem: b.imap_ca_pem,
            team_id: b.team_id,
        }
    }
}

/// A mailbox's settings as a whole, and whether it is in use.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
// The fields are repeated rather than flattened: serde cannot deny unknown fields of a
// flattened struct, and the allOf that flattening produces contradicts itself in OpenAPI.
pub struct MailboxUpdate {
    pub address: String,
    /// `create_contact` or `hold` (default).
    pub unknown_sender: Option<String>,
    pub imap_host: Option<String>,
    pub imap_port: Option<i64>,
    /// `tls`, `starttls` or `plain` (loopback only).
    pub imap_tls: Option<String>,
    pub imap_user: Option<String>,
    /// Absent or empty keeps the stored secret.
    pub imap_secret: Option<String>,
    /// Default `INBOX`.
    pub imap_folder: Option<String>,
    /// Where processed mail is moved; flagged as seen when absent.
    pub imap_done_folder: Option<String>,
    /// PEM certificate(s) of a private CA that issued the IMAP server's certificate.
    pub imap_ca_pem: Option<String>,
    /// A team working on the project (a member belongs to it) whose queue receives the
    /// tickets this mailbox's mail creates; absent or empty leaves them unassigned.
    pub team_id: Option<String>,
    /// `false` stops polling and receiving through the mailbox.
    pub active: bool,
}

impl MailboxUpdate {
    fn split(self) -> (NewMailbox, bool) {
        let m = NewMailbox {
            address: self.address,
            unknown_sender: self.unknown_sender,
            imap_host: self.imap_host,
            imap_port: self.imap_port,
            imap_tls: self.imap_tls,
            imap_user: self.imap_user,
            imap_secret: self.imap_secret,
            imap_folder: self.imap_folder,
            imap_done_folder: self.imap_done_folder,
            imap_ca_pem: self.imap_ca_pem,
            team_id: self.team_id,
        };
        (m, self.active)
    }
}

#[utoipa::path(get, path = "/api/v1/mailboxes/{id}", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = Mailbox), Unauthorized, NotFound))]
async fn get_mailbox(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    Ok(axum::Json(Mailbox::from(s.app.get_mailbox(&who.principal, &id).await?)).into_response_ok())
}

/// Replaces a mailbox's settings; an absent or empty `imap_secret` keeps the stored one.
#[utoipa::path(put, path = "/api/v1/mailboxes/{id}", tag = "incidents", params(("id" = String, Path)), request_body = MailboxUpdate,
    responses((status = 200, body = Mailbox), Unauthorized, Forbidden, JsonBodyErrors, NotFound))]
async fn update_mailbox(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<MailboxUpdate>,
) -> ApiResponse {
    let (mailbox, active) = b.split();
    let m = s.app.update_mailbox(&who.principal, &id, mailbox.into(), active).await?;
    Ok(axum::Json(Mailbox::from(m)).into_response_ok())
}

/// A received message and what became of it.
#[derive(Serialize, ToSchema)]
pub struct ReceivedMessage {
    pub id: String,
    /// The Message-ID, without angle brackets.
    pub message_id: String,
    pub sender: String,
    pub subject: String,
    /// `ticket`, `reply`, `ignored`, `held` or `discarded`.
    pub outcome: String,
    pub reason: Option<String>,
    pub ticket_id: Option<String>,
    pub received_at: i64,
}

impl From<keel_store::mail::MailMessageRecord> for ReceivedMessage {
    fn from(m: keel_store::mail::MailMessageRecord) -> Self {
        ReceivedMessage {
            id: m.id,
            message_id: m.message_id,
            sender: m.sender,
            subject: m.subject,
            outcome: m.outcome,
            reason: m.reason,
            ticket_id: m.ticket_id,
            received_at: m.received_at,
        }
    }
}

/// Messages held for review (unknown senders under the hold policy, another organisation's
/// contacts), newest first.
#[utoipa::path(get, path = "/api/v1/projects/{id}/held-mail", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = Vec<ReceivedMessage>), Unauthorized, NotFound))]
async fn list_held(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let list = s.app.list_held_mail(&who.principal, &id).await?;
    Ok(axum::Json(list.into_iter().map(ReceivedMessage::from).collect::<Vec<_>>()).into_response_ok())
}

/// Releases a held message: the sender becomes a contact of the project's organisation and
/// the message a ticket (or a reply on its ticket).
#[utoipa::path(post, path = "/api/v1/held-mail/{id}/release", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = ReceivedMessage), Unauthorized, Forbidden, NotFound, JsonBodyErrors,
        (status = 409, body = ErrorBody, description = "No longer held (`conflict`)")))]
async fn release_held(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    Ok(axum::Json(ReceivedMessage::from(s.app.release_held_mail(&who.principal, &id).await?)).into_response_ok())
}

/// Discards a held message; it stays in the log as `discarded`.
#[utoipa::path(post, path = "/api/v1/held-mail/{id}/discard", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = ReceivedMessage), Unauthorized, Forbidden, NotFound,
        (status = 409, body = ErrorBody, description = "No longer held (`conflict`)")))]
async fn discard_held(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    Ok(axum::Json(ReceivedMessage::from(s.app.discard_held_mail(&who.principal, &id).await?)).into_response_ok())
}

//! `/api/v1/incidents/{id}/communications`: the communication log of a major incident
//! (incident management, REQUIREMENTS §4). Contacts read the communications addressed to
//! customers; staff of the ticket's project read and write all of it.

use super::directory::IntoResponseOk;
use super::{ApiJson, ApiPath, ApiResponse, Forbidden, JsonBodyErrors, NotFound, Unauthorized};
use crate::AppState;
use crate::auth::ApiUser;
use axum::extract::State;
use axum::http::StatusCode;
use keel_app::major_incidents::{CommunicationLog, CommunicationPost};
use keel_store::incidents::CommunicationRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_communications, record_communication))
}

/// One communication of a major incident.
#[derive(Serialize, ToSchema)]
pub struct Communication {
    pub id: String,
    pub seq: i64,
    /// `customers`, `service_desk`, `management`, `stakeholders` or `suppliers`.
    pub audience: String,
    /// `email`, `phone`, `chat`, `portal`, `sms` or `meeting`.
    pub medium: String,
    pub summary: String,
    /// When it went out (Unix milliseconds).
    pub sent_at: i64,
    /// When the next update is promised (Unix milliseconds).
    pub next_update_due: Option<i64>,
    pub author_id: String,
    pub author_name: Option<String>,
}

impl From<CommunicationRecord> for Communication {
    fn from(r: CommunicationRecord) -> Self {
        Communication {
            id: r.id,
            seq: r.seq,
            audience: r.audience,
            medium: r.medium,
            summary: r.summary,
            sent_at: r.sent_at,
            next_update_due: r.next_update_due,
            author_id: r.author_id,
            author_name: r.author_name,
        }
    }
}

/// The log as the caller may read it.
#[derive(Serialize, ToSchema)]
pub struct Communications {
    pub items: Vec<Communication>,
    /// The update promised by the latest communication is overdue (staff only; always false for contacts).
    pub next_update_overdue: bool,
}

impl From<CommunicationLog> for Communications {
    fn from(l: CommunicationLog) -> Self {
        Communications { items: l.entries.into_iter().map(Communication::from).collect(), next_update_overdue: l.next_update_overdue }
    }
}

/// A communication to log. E-mail and portal communications to customers, the service desk,
/// management or stakeholders are also sent to them through the notification outbox.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCommunication {
    pub audience: String,
    pub medium: String,
    pub summary: String,
    /// When it went out, if earlier than now (Unix milliseconds).
    pub sent_at: Option<i64>,
    /// When the next update is promised (Unix milliseconds).
    pub next_update_due: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/incidents/{id}/communications", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = Communications, description = "Customer contacts receive the communications to customers only"), Unauthorized, NotFound))]
async fn list_communications(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let log = s.app.major_communications(&who.principal, &id).await?;
    Ok(axum::Json(Communications::from(log)).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/incidents/{id}/communications", tag = "incidents", params(("id" = String, Path)),
    request_body = NewCommunication, responses((status = 201, body = Communication), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn record_communication(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NewCommunication>,
) -> ApiResponse {
    let post = CommunicationPost {
        audience: b.audience,
        medium: b.medium,
        summary: b.summary,
        sent_at: b.sent_at,
        next_update_due: b.next_update_due,
    };
    let c = s.app.record_major_communication(&who.principal, &id, post).await?;
    Ok(axum::response::IntoResponse::into_response((StatusCode::CREATED, axum::Json(Communication::from(c)))))
}

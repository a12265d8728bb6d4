//! `/api/v1/audit`: the audit trail (审计日志) across records, and each record's history.

use super::directory::IntoResponseOk;
use super::{ApiPath, ApiQuery, ApiResponse, Forbidden, InvalidQuery, NotFound, Unauthorized};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::ApiError;
use axum::extract::State;
use keel_app::AppError;
use keel_store::audit::{HistoryEntry, TrailFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit)).routes(routes!(history)).routes(routes!(verify))
}

/// One audit entry: who changed what, when, field by field.
#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub entity_type: String,
    pub entity_id: String,
    /// Position in the record's hash chain, from 1.
    pub seq: i64,
    /// `create`, `update` or `delete`.
    pub action: String,
    pub actor_id: String,
    pub actor_label: String,
    pub at: i64,
    /// `[{"field", "old", "new"}]`
    #[schema(value_type = Vec<Object>)]
    pub changes: serde_json::Value,
}

impl From<HistoryEntry> for AuditEntry {
    fn from(h: HistoryEntry) -> Self {
        AuditEntry {
            id: h.id,
            entity_type: h.entity_type,
            entity_id: h.entity_id,
            seq: h.seq,
            action: h.action,
            actor_id: h.actor_id,
            actor_label: h.actor_label,
            at: h.at,
            changes: h.changes,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor_id: Option<String>,
    /// Unix ms, inclusive.
    pub from: Option<i64>,
    /// Unix ms, exclusive.
    pub to: Option<i64>,
    pub cursor: Option<String>,
    /// 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "A page of audit entries, newest first", body = AuditPage), Unauthorized, Forbidden, InvalidQuery))]
async fn audit(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(q): ApiQuery<AuditQuery>) -> ApiResponse {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "out_of_range", "limit must be between 1 and 500"));
    }
    let before = match &q.cursor {
        Some(c) => Some(
            c.split_once(':')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| ApiError::field("cursor", "invalid_cursor", "malformed cursor"))?,
        ),
        None => None,
    };
    let f = TrailFilter {
        entity_type: q.entity_type,
        entity_id: q.entity_id,
        actor_id: q.actor_id,
        from_ms: q.from,
        to_ms: q.to,
        before,
        limit,
    };
    let items = s.app.audit_trail(&who.principal, &f).await?;
    let next_cursor = (items.len() as i64 == limit).then(|| items.last().map(|e| format!("{}:{}", e.at, e.id))).flatten();
    Ok(axum::Json(AuditPage { items: items.into_iter().map(AuditEntry::from).collect(), next_cursor }).into_response_ok())
}

#[utoipa::path(get, path = "/api/v1/history/{entity_type}/{id}", tag = "audit", params(("entity_type" = String, Path, description = "organization, project, team, user, business_calendar, service, sla, ola, underpinning_contract"), ("id" = String, Path)),
    responses((status = 200, description = "The record's audit entries, oldest first", body = Vec<AuditEntry>), Unauthorized, NotFound))]
async fn history(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath((entity_type, id)): ApiPath<(String, String)>) -> ApiResponse {
    let p = &who.principal;
    match entity_type.as_str() {
        "organization" => drop(s.app.get_organization(p, &id).await?),
        "project" => drop(s.app.get_project(p, &id).await?),
        "team" => drop(s.app.get_team(p, &id).await?),
        "user" => drop(s.app.get_user(p, &id).await?),
        "business_calendar" => drop(s.app.get_calendar(p, &id).await?),
        "service" => drop(s.app.get_service(p, &id).await?),
        "sla" => drop(s.app.get_sla(p, &id).await?),
        "ola" => drop(s.app.get_support(p, keel_domain::sla::agreement::SupportKind::Ola, &id).await?),
        "underpinning_contract" => drop(s.app.get_support(p, keel_domain::sla::agreement::SupportKind::Contract, &id).await?),
        _ if p.may_admin(keel_domain::identity::AdminArea::AuditTrail, keel_domain::identity::Action::Read) => {}
        _ => return Err(AppError::NotFound.into()),
    }
    let h = s.app.history(&entity_type, &id).await?;
    Ok(axum::Json(h.into_iter().map(AuditEntry::from).collect::<Vec<_>>()).into_response_ok())
}

#[derive(Serialize, ToSchema)]
pub struct Integrity {
    pub ok: bool,
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "The integrity check's result", body = Integrity), Unauthorized, Forbidden))]
async fn verify(State(s): State<AppState>, ApiUser(who): ApiUser) -> ApiResponse {
    if !who.principal.may_admin(keel_domain::identity::AdminArea::AuditTrail, keel_domain::identity::Action::Read) {
        return Err(AppError::Forbidden.into());
    }
    let r = s.app.integrity_check().await?;
    Ok(axum::Json(Integrity { ok: r.ok(), report: serde_json::to_value(&r).unwrap_or_default() }).into_response_ok())
}

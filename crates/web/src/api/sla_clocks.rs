//! Service level management (§6.1) on tickets: `/api/v1/incidents/{id}/sla` (the live clocks and
//! the escalations fired), `/api/v1/slas/{id}/escalation-rules`, and the SLA attainment report
//! as JSON and CSV.

use super::directory::IntoResponseOk;
use super::{ApiJson, ApiPath, ApiQuery, ApiResponse, Forbidden, InvalidQuery, JsonBodyErrors, NotFound, Unauthorized, created};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::NaiveDate;
use keel_app::sla_clocks::{AttainmentReport, RuleInput};
use keel_domain::notification::Audience;
use keel_store::sla_clocks::{ClockRow, FiringRecord, RuleRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ticket_sla))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(delete_rule))
        .routes(routes!(attainment))
        .routes(routes!(attainment_csv))
}

/// One SLA clock of a ticket (first response, resolution or update interval).
#[derive(Serialize, ToSchema)]
pub struct SlaClock {
    /// `first_response`, `resolution` or `update`.
    pub kind: String,
    pub sla_id: String,
    /// The SLA's version the clock was computed with.
    pub sla_version: i64,
    /// The priority whose target applies (`p1` … `p4`).
    pub priority: String,
    pub target_ms: i64,
    /// Unix milliseconds, like every instant here.
    pub started_at: i64,
    pub due_at: Option<i64>,
    /// When the first warning threshold was (or, running, will be) crossed.
    pub warning_at: Option<i64>,
    /// `running`, `paused`, `warning`, `met` or `breached`.
    pub state: String,
    /// `running`, `paused` or `stopped`.
    pub phase: String,
    /// Business time used and paused.
    pub elapsed_ms: i64,
    pub paused_ms: i64,
    pub met_at: Option<i64>,
    pub breached_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub next_threshold_at: Option<i64>,
    /// Thresholds crossed as `[percent, crossed_at]`.
    pub thresholds: Vec<(i64, i64)>,
    pub computed_at: i64,
}

impl From<ClockRow> for SlaClock {
    fn from(c: ClockRow) -> Self {
        SlaClock {
            kind: c.kind,
            sla_id: c.sla_id,
            sla_version: c.sla_version,
            priority: c.priority,
            target_ms: c.target_ms,
            started_at: c.started_at,
            due_at: c.due_at,
            warning_at: c.warning_at,
            state: c.state,
            phase: c.phase,
            elapsed_ms: c.elapsed_ms,
            paused_ms: c.paused_ms,
            met_at: c.met_at,
            breached_at: c.breached_at,
            stopped_at: c.stopped_at,
            next_threshold_at: c.next_threshold_at,
            thresholds: c.thresholds,
            computed_at: c.computed_at,
        }
    }
}

/// An escalation fired on a ticket (staff only).
#[derive(Serialize, ToSchema)]
pub struct SlaFiring {
    pub rule_id: String,
    pub target_kind: String,
    pub percent: i64,
    pub threshold_at: i64,
    pub fired_at: i64,
    /// Fired more than two minutes after its threshold (e.g. after downtime).
    pub late: bool,
    pub late_by_ms: i64,
    /// `notified`, `reassigned`, `priority_raised` or `not_applicable`.
    pub outcome: String,
}

impl From<FiringRecord> for SlaFiring {
    fn from(f: FiringRecord) -> Self {
        SlaFiring {
            rule_id: f.rule_id,
            target_kind: f.target_kind,
            percent: f.percent,
            threshold_at: f.threshold_at,
            fired_at: f.fired_at,
            late: f.late,
            late_by_ms: f.late_by_ms,
            outcome: f.outcome,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TicketSlaBody {
    /// Empty when no active SLA covers the ticket.
    pub sla: Vec<SlaClock>,
    pub escalations: Vec<SlaFiring>,
}

#[utoipa::path(get, path = "/api/v1/incidents/{id}/sla", tag = "incidents", params(("id" = String, Path, description = "Id or number (INC-000042)")),
    description = "The ticket's SLA clocks (due times, state, business time used and paused) and, for staff, the escalations fired.",
    responses((status = 200, body = TicketSlaBody), Unauthorized, NotFound))]
async fn ticket_sla(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let r = s.app.ticket_sla(&who.principal, &id).await?;
    Ok(axum::Json(TicketSlaBody {
        sla: r.clocks.into_iter().map(SlaClock::from).collect(),
        escalations: r.firings.into_iter().map(SlaFiring::from).collect(),
    })
    .into_response_ok())
}

/// An escalation rule: when a ticket's clock of `target_kind` crosses `percent`, do `action`.
#[derive(Serialize, ToSchema)]
pub struct EscalationRule {
    pub id: String,
    pub sla_id: String,
    pub target_kind: String,
    pub percent: i64,
    /// `notify`, `reassign` or `raise_priority`.
    pub action: String,
    /// For `notify`: e.g. `[{"to": "assignee"}, {"to": "project_manager"}]`.
    #[schema(value_type = Vec<Object>)]
    pub audience: serde_json::Value,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    pub created_at: i64,
}

impl From<RuleRecord> for EscalationRule {
    fn from(r: RuleRecord) -> Self {
        EscalationRule {
            id: r.id,
            sla_id: r.sla_id,
            target_kind: r.target_kind,
            percent: r.percent,
            action: r.action,
            audience: r.audience,
            team_id: r.team_id,
            agent_id: r.agent_id,
            created_at: r.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEscalationRule {
    /// `first_response`, `resolution` or `update`.
    pub target_kind: String,
    /// One of the SLA's thresholds, or 100 (the breach).
    pub percent: i64,
    /// `notify`, `reassign` or `raise_priority`.
    pub action: String,
    /// Who is notified: objects `{"to": "assignee" | "assignment_team" | "team_lead" | "project_manager" | "reporter" | "customer_contacts" | "watchers"}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub audience: Vec<Audience>,
    /// For `reassign`: the team and/or agent that takes the ticket over.
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/slas/{id}/escalation-rules", tag = "service_level", params(("id" = String, Path)),
    responses((status = 200, body = Vec<EscalationRule>), Unauthorized, NotFound))]
async fn list_rules(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let rules = s.app.list_escalation_rules(&who.principal, &id).await?;
    Ok(axum::Json(rules.into_iter().map(EscalationRule::from).collect::<Vec<_>>()).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/slas/{id}/escalation-rules", tag = "service_level", params(("id" = String, Path)), request_body = NewEscalationRule,
    responses((status = 201, body = EscalationRule), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn create_rule(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NewEscalationRule>,
) -> ApiResponse {
    let input = RuleInput {
        target_kind: b.target_kind,
        percent: b.percent,
        action: b.action,
        audience: b.audience,
        team_id: b.team_id,
        agent_id: b.agent_id,
    };
    let r = s.app.create_escalation_rule(&who.principal, &id, input).await?;
    let location = format!("/api/v1/slas/{id}/escalation-rules/{}", r.id);
    Ok(created(r.version, location, EscalationRule::from(r)))
}

#[utoipa::path(delete, path = "/api/v1/slas/{id}/escalation-rules/{rule_id}", tag = "service_level",
    params(("id" = String, Path), ("rule_id" = String, Path)),
    responses((status = 204), Unauthorized, Forbidden, NotFound))]
async fn delete_rule(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath((id, rule_id)): ApiPath<(String, String)>) -> ApiResponse {
    s.app.delete_escalation_rule(&who.principal, &id, &rule_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// First day of the period (`YYYY-MM-DD`, UTC), by ticket creation.
    pub from: String,
    /// Last day of the period, included.
    pub to: String,
}

/// The period as Unix milliseconds `[from, to + 1 day)`.
pub fn period(q: &PeriodQuery) -> Result<(i64, i64), ApiError> {
    let day = |field: &str, v: &str| {
        NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
            .map_err(|_| ApiError::field(field, "invalid_date", format!("{field} must be a date YYYY-MM-DD")))
    };
    let (from, to) = (day("from", &q.from)?, day("to", &q.to)?);
    let end = to.succ_opt().ok_or_else(|| ApiError::field("to", "invalid_date", "to is out of range"))?;
    let ms = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis()).unwrap_or_default();
    Ok((ms(from), ms(end)))
}

/// Met and breached SLA clocks of the tickets created in a period.
#[derive(Serialize, ToSchema)]
pub struct AttainmentBody {
    /// `{from, to, total, by_organization, by_project, by_service, by_priority, breaches}`; each
    /// group `{key, label, met, breached, percent_met}`, each breach `{ticket_id, number, target,
    /// due_at, breached_at, late_by_ms, reason}`.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

fn report_json(r: &AttainmentReport) -> serde_json::Value {
    serde_json::to_value(r).unwrap_or_default()
}

#[utoipa::path(get, path = "/api/v1/reports/sla-attainment", tag = "service_level", params(PeriodQuery),
    description = "SLA attainment per customer organisation, project, service and priority, and the breaches, for tickets created in the period. Contacts see their organisation only.",
    responses((status = 200, body = AttainmentBody), Unauthorized, Forbidden, InvalidQuery))]
async fn attainment(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(q): ApiQuery<PeriodQuery>) -> ApiResponse {
    let (from, to) = period(&q)?;
    let r = s.app.sla_attainment(&who.principal, from, to).await?;
    Ok(axum::Json(AttainmentBody { report: report_json(&r) }).into_response_ok())
}

#[utoipa::path(get, path = "/api/v1/reports/sla-attainment.csv", tag = "service_level", params(PeriodQuery),
    description = "The SLA attainment report as a CSV file.",
    responses((status = 200, content((String = "text/csv"))), Unauthorized, Forbidden, InvalidQuery))]
async fn attainment_csv(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(q): ApiQuery<PeriodQuery>) -> ApiResponse {
    let (from, to) = period(&q)?;
    let r = s.app.sla_attainment(&who.principal, from, to).await?;
    Ok(csv_response(&r, &q))
}

/// The report as a downloadable CSV file named after its period.
pub fn csv_response(r: &AttainmentReport, q: &PeriodQuery) -> axum::response::Response {
    let safe = |s: &str| s.chars().filter(|c| c.is_ascii_digit() || *c == '-').collect::<String>();
    let disposition = format!("attachment; filename=\"sla-attainment-{}-{}.csv\"", safe(&q.from), safe(&q.to));
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, disposition)], r.to_csv())
        .into_response()
}

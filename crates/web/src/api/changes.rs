//! `/api/v1/changes` and friends: change management (REQUIREMENTS §5) — requests for change,
//! risk, impact, CAB approval with quorum and delegation, conflicts, tasks, the review,
//! incidents caused, the forward schedule of change, freeze windows and standard templates.

use super::directory::IntoResponseOk;
use super::{
    ApiJson, ApiPath, ApiQuery, ApiResponse, Forbidden, InvalidQuery, JsonBodyErrors, ListOf, NotFound, PageParams, Unauthorized,
    VersionErrors, created, if_match, page_request, with_etag,
};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ErrorBody};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use keel_app::changes::{
    ApprovalView, ApproverInput, ChangePatch, DecisionInput, DelegationInput, FreezeInput, NewChange, ReviewInput, StepInput, TemplateInput,
};
use keel_store::changes::{ChangeFilter, ChangeRecord, DelegationRecord, FreezeRecord, TaskRecord, TemplateRecord};
use keel_store::page::{SortKey, SortKind};
use keel_store::problems::LinkedTicket;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_changes, create_change))
        .routes(routes!(get_change, update_change))
        .routes(routes!(transition_change))
        .routes(routes!(assess_risk))
        .routes(routes!(get_approval, set_approval_steps))
        .routes(routes!(decide))
        .routes(routes!(change_impact))
        .routes(routes!(change_conflicts))
        .routes(routes!(review_change))
        .routes(routes!(list_tasks, add_task))
        .routes(routes!(complete_task))
        .routes(routes!(list_incidents, link_incidents))
        .routes(routes!(risk_questionnaire))
        .routes(routes!(change_schedule))
        .routes(routes!(list_freezes, create_freeze))
        .routes(routes!(delete_freeze))
        .routes(routes!(list_templates, create_template))
        .routes(routes!(set_template_active))
        .routes(routes!(list_delegations, create_delegation))
        .routes(routes!(set_sla_change_approval))
        .routes(routes!(get_change_control, set_change_control))
}

pub const CHANGE_SORTS: &[SortKey] = &[
    SortKey { name: "updated_at", column: "c.updated_at", kind: SortKind::Int },
    SortKey { name: "created_at", column: "c.created_at", kind: SortKind::Int },
    SortKey { name: "number", column: "c.number", kind: SortKind::Text },
    SortKey { name: "planned_start", column: "c.planned_start", kind: SortKind::Int },
    SortKey { name: "status", column: "c.status", kind: SortKind::Text },
];

/// A request for change (CHG-000001).
#[derive(Serialize, ToSchema)]
pub struct Change {
    pub id: String,
    pub number: String,
    pub project_id: String,
    pub project_code: String,
    pub organization_id: String,
    /// `standard`, `normal` or `emergency`.
    pub change_type: String,
    pub template_id: Option<String>,
    pub template_name: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub reason: Option<String>,
    /// `draft`, `submitted`, `assessed`, `approved`, `rejected`, `scheduled`, `implementing`,
    /// `implemented`, `failed`, `backed_out`, `reviewed`, `closed` or `cancelled`.
    pub status: String,
    /// The reason given with the last status change that needed one.
    pub status_reason: Option<String>,
    /// Question key → answer key of the risk questionnaire.
    pub risk_answers: Option<BTreeMap<String, String>>,
    pub risk_score: Option<i64>,
    /// `low`, `medium`, `high` or `very_high`.
    pub risk_level: Option<String>,
    pub cost_estimate: Option<String>,
    pub implementation_plan: Option<String>,
    pub back_out_plan: Option<String>,
    pub test_plan: Option<String>,
    /// The planned window (Unix ms).
    pub planned_start: Option<i64>,
    pub planned_end: Option<i64>,
    pub ci_ids: Vec<String>,
    pub team_id: Option<String>,
    pub team_name: Option<String>,
    /// `successful`, `partially_successful` or `failed`.
    pub review_outcome: Option<String>,
    pub review_notes: Option<String>,
    pub review_follow_up: Option<String>,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    /// Statuses the caller may move the change to now (only in single-record answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_statuses: Option<Vec<String>>,
}

impl From<ChangeRecord> for Change {
    fn from(c: ChangeRecord) -> Self {
        Change {
            risk_answers: c.risk_answers.as_deref().and_then(|a| serde_json::from_str(a).ok()),
            id: c.id,
            number: c.number,
            project_id: c.project_id,
            project_code: c.names.project_code,
            organization_id: c.organization_id,
            change_type: c.change_type,
            template_id: c.template_id,
            template_name: c.names.template_name,
            title: c.title,
            description: c.description,
            category: c.category,
            reason: c.reason,
            status: c.status,
            status_reason: c.status_reason,
            risk_score: c.risk_score,
            risk_level: c.risk_level,
            cost_estimate: c.cost_estimate,
            implementation_plan: c.implementation_plan,
            back_out_plan: c.back_out_plan,
            test_plan: c.test_plan,
            planned_start: c.planned_start,
            planned_end: c.planned_end,
            ci_ids: c.ci_ids,
            team_id: c.team_id,
            team_name: c.names.team_name,
            review_outcome: c.review_outcome,
            review_notes: c.review_notes,
            review_follow_up: c.review_follow_up,
            reviewed_by: c.reviewed_by,
            reviewed_at: c.reviewed_at,
            created_by: c.created_by,
            created_at: c.created_at,
            updated_at: c.updated_at,
            version: c.version,
            next_statuses: None,
        }
    }
}

async fn detailed(s: &AppState, who: &keel_app::Principal, c: ChangeRecord) -> Result<Change, ApiError> {
    let next = s.app.change_next_statuses(who, &c).await?;
    let mut out = Change::from(c);
    out.next_statuses = Some(next.iter().map(|s| s.as_str().to_string()).collect());
    Ok(out)
}

fn some(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn optional_if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    if headers.contains_key(header::IF_MATCH) { if_match(headers).map(Some) } else { Ok(None) }
}

/// Anything serialisable, documented as a JSON object.
fn json_of(v: impl Serialize) -> axum::response::Response {
    axum::Json(v).into_response()
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ChangeQuery {
    /// Comma-separated statuses.
    pub status: Option<String>,
    /// `standard`, `normal` or `emergency`.
    pub change_type: Option<String>,
    pub project_id: Option<String>,
    pub risk_level: Option<String>,
    /// Changes touching this CI.
    pub ci_id: Option<String>,
    /// Text in the number or the title.
    pub q: Option<String>,
}

pub fn change_filter(q: ChangeQuery) -> ChangeFilter {
    ChangeFilter {
        statuses: q.status.unwrap_or_default().split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        change_type: some(q.change_type),
        project_id: some(q.project_id),
        risk_level: some(q.risk_level),
        ci_id: some(q.ci_id),
        q: some(q.q),
    }
}

#[utoipa::path(get, path = "/api/v1/changes", tag = "changes", params(ChangeQuery, PageParams),
    responses((status = 200, body = ListOf<Change>), Unauthorized, NotFound, InvalidQuery))]
async fn list_changes(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<ChangeQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    let page = page_request(&pp, CHANGE_SORTS)?;
    let r = s.app.list_changes(&who.principal, &change_filter(q), &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(Change::from).collect(), next_cursor: r.next_cursor }).into_response_ok())
}

/// An approver: `user` with a user id, or `group` with a team id (or `organization:<id>`).
#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct ApproverBody {
    pub kind: String,
    pub id: String,
}

impl From<ApproverBody> for ApproverInput {
    fn from(a: ApproverBody) -> Self {
        ApproverInput { kind: a.kind, id: a.id }
    }
}

/// A step of the approval workflow.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepBody {
    pub name: String,
    pub approvers: Vec<ApproverBody>,
    /// `all` (default), `any` or `at_least` (with `quorum_n`).
    pub quorum: Option<String>,
    pub quorum_n: Option<u32>,
}

fn steps_of(v: Vec<StepBody>) -> Vec<StepInput> {
    v.into_iter()
        .map(|s| StepInput {
            name: s.name,
            approvers: s.approvers.into_iter().map(ApproverInput::from).collect(),
            quorum: s.quorum.unwrap_or_default(),
            quorum_n: s.quorum_n,
        })
        .collect()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChangeBody {
    pub project_id: String,
    /// `standard`, `normal` or `emergency`.
    pub change_type: String,
    /// Required for standard changes.
    pub template_id: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub reason: Option<String>,
    pub cost_estimate: Option<String>,
    pub implementation_plan: Option<String>,
    pub back_out_plan: Option<String>,
    pub test_plan: Option<String>,
    /// Unix ms.
    pub planned_start: Option<i64>,
    pub planned_end: Option<i64>,
    #[serde(default)]
    pub ci_ids: Vec<String>,
    pub team_id: Option<String>,
    /// Normal and emergency changes: the CAB steps (the customer's step is added when their SLA asks).
    #[serde(default)]
    pub approval_steps: Vec<StepBody>,
}

#[utoipa::path(post, path = "/api/v1/changes", tag = "changes", request_body = NewChangeBody,
    responses((status = 201, body = Change), (status = 409, body = ErrorBody, description = "Change management is switched off for the project"), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn create_change(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewChangeBody>) -> ApiResponse {
    let input = NewChange {
        project_id: b.project_id,
        change_type: b.change_type,
        template_id: b.template_id,
        title: b.title,
        description: b.description,
        category: b.category,
        reason: b.reason,
        cost_estimate: b.cost_estimate,
        implementation_plan: b.implementation_plan,
        back_out_plan: b.back_out_plan,
        test_plan: b.test_plan,
        planned_start: b.planned_start,
        planned_end: b.planned_end,
        ci_ids: b.ci_ids,
        team_id: b.team_id,
        approval_steps: steps_of(b.approval_steps),
    };
    let c = s.app.create_change(&who.principal, input).await?;
    let (version, location) = (c.version, format!("/api/v1/changes/{}", c.id));
    Ok(created(version, location, detailed(&s, &who.principal, c).await?))
}

#[utoipa::path(get, path = "/api/v1/changes/{id}", tag = "changes", params(("id" = String, Path, description = "Id or number (CHG-000001)")),
    responses((status = 200, body = Change, headers(("ETag" = String))), Unauthorized, NotFound))]
async fn get_change(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let c = s.app.get_change(&who.principal, &id).await?;
    Ok(with_etag(c.version, detailed(&s, &who.principal, c).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePatchBody {
    pub title: Option<String>,
    /// Empty strings clear the texts.
    pub description: Option<String>,
    pub category: Option<String>,
    pub reason: Option<String>,
    pub cost_estimate: Option<String>,
    pub implementation_plan: Option<String>,
    pub back_out_plan: Option<String>,
    pub test_plan: Option<String>,
    /// Both ends replace the window.
    pub planned_start: Option<i64>,
    pub planned_end: Option<i64>,
    /// Removes the window.
    pub clear_window: Option<bool>,
    pub ci_ids: Option<Vec<String>>,
    /// Empty string clears it.
    pub team_id: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/changes/{id}", tag = "changes",
    params(("id" = String, Path), ("If-Match" = String, Header, description = "ETag of the version the change is based on")),
    request_body = ChangePatchBody,
    responses((status = 200, body = Change), (status = 409, body = ErrorBody, description = "`change_locked`: approved content is fixed"), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn update_change(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ChangePatchBody>,
) -> ApiResponse {
    s.app.get_change(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let patch = ChangePatch {
        title: b.title,
        description: b.description,
        category: b.category,
        reason: b.reason,
        cost_estimate: b.cost_estimate,
        implementation_plan: b.implementation_plan,
        back_out_plan: b.back_out_plan,
        test_plan: b.test_plan,
        planned_start: b.planned_start,
        planned_end: b.planned_end,
        clear_window: b.clear_window.unwrap_or(false),
        ci_ids: b.ci_ids,
        team_id: b.team_id,
    };
    let c = s.app.update_change(&who.principal, &id, patch, Some(version)).await?;
    Ok(with_etag(c.version, detailed(&s, &who.principal, c).await?))
}

/// A status change. `reason` is needed to send back to draft, cancel, fail or back out.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// The target status (see `next_statuses`).
    pub to: String,
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/changes/{id}/transitions", tag = "changes",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "Optional: refuse if the change changed since this ETag")),
    request_body = TransitionBody,
    responses((status = 200, body = Change), (status = 409, body = ErrorBody, description = "`invalid_transition`"), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn transition_change(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<TransitionBody>,
) -> ApiResponse {
    let version = optional_if_match(&headers)?;
    let c = s.app.transition_change(&who.principal, &id, &b.to, b.reason, version).await?;
    Ok(with_etag(c.version, detailed(&s, &who.principal, c).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskBody {
    /// Question key → answer key, every question answered (see `/api/v1/change-risk-questionnaire`).
    pub answers: BTreeMap<String, String>,
}

#[utoipa::path(put, path = "/api/v1/changes/{id}/risk", tag = "changes",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "Optional: refuse if the change changed since this ETag")),
    request_body = RiskBody,
    responses((status = 200, body = Change), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn assess_risk(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<RiskBody>,
) -> ApiResponse {
    let version = optional_if_match(&headers)?;
    let (c, _) = s.app.assess_change_risk(&who.principal, &id, b.answers, version).await?;
    Ok(with_etag(c.version, detailed(&s, &who.principal, c).await?))
}

/// The risk questionnaire in force: questions with weighted answers in both languages, and
/// the thresholds of the risk levels.
#[utoipa::path(get, path = "/api/v1/change-risk-questionnaire", tag = "changes",
    responses((status = 200, body = Object), Unauthorized))]
async fn risk_questionnaire(State(s): State<AppState>, ApiUser(_who): ApiUser) -> ApiResponse {
    Ok(json_of(s.app.risk_questionnaire().await?))
}

/// The approval: `steps` (with approvers and quorum), `votes`, `evaluation` (outcome, current
/// step, per-step counts) and whether the caller may vote now (`may_decide`).
#[derive(Serialize, ToSchema)]
pub struct ApprovalBody {
    #[schema(value_type = Vec<Object>)]
    pub steps: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub votes: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub evaluation: serde_json::Value,
    pub may_decide: bool,
}

impl From<ApprovalView> for ApprovalBody {
    fn from(v: ApprovalView) -> Self {
        let steps = v
            .steps
            .iter()
            .map(|s| {
                serde_json::json!({
                    "seq": s.seq, "name": s.name, "quorum": s.quorum_rule, "quorum_n": s.quorum_n, "source": s.source,
                    "approvers": s.approvers.iter().map(|(k, i)| serde_json::json!({ "kind": k, "id": i })).collect::<Vec<_>>(),
                })
            })
            .collect();
        ApprovalBody {
            steps,
            votes: serde_json::to_value(&v.votes).unwrap_or_default(),
            evaluation: serde_json::to_value(&v.evaluation).unwrap_or_default(),
            may_decide: v.may_decide,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/changes/{id}/approval", tag = "changes", params(("id" = String, Path)),
    responses((status = 200, body = ApprovalBody), Unauthorized, NotFound))]
async fn get_approval(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    Ok(axum::Json(ApprovalBody::from(s.app.change_approval(&who.principal, &id).await?)).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepsBody {
    pub steps: Vec<StepBody>,
}

#[utoipa::path(put, path = "/api/v1/changes/{id}/approval", tag = "changes", params(("id" = String, Path)), request_body = StepsBody,
    responses((status = 200, body = ApprovalBody), (status = 409, body = ErrorBody, description = "`change_locked`: voting has started"), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn set_approval_steps(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<StepsBody>,
) -> ApiResponse {
    let v = s.app.set_change_approval_steps(&who.principal, &id, steps_of(b.steps)).await?;
    Ok(axum::Json(ApprovalBody::from(v)).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// `approve` or `reject` (a rejection needs a `reason`).
    pub verdict: String,
    pub reason: Option<String>,
    /// The approver the caller decides for, when they stand for several (a group, a delegator).
    pub on_behalf_of: Option<ApproverBody>,
}

#[utoipa::path(post, path = "/api/v1/changes/{id}/decisions", tag = "changes", params(("id" = String, Path)), request_body = DecisionBody,
    responses((status = 200, body = ApprovalBody), (status = 409, body = ErrorBody, description = "`approval_not_open`"), (status = 422, body = ErrorBody, description = "`not_an_approver`, `already_decided`, a rejection without reason"), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn decide(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<DecisionBody>,
) -> ApiResponse {
    let input = DecisionInput { verdict: b.verdict, reason: b.reason, on_behalf_of: b.on_behalf_of.map(ApproverInput::from) };
    Ok(axum::Json(ApprovalBody::from(s.app.decide_change(&who.principal, &id, input).await?)).into_response_ok())
}

/// What the change's CIs affect: `cis`, `services`, `projects`, `customers`.
#[utoipa::path(get, path = "/api/v1/changes/{id}/impact", tag = "changes", params(("id" = String, Path)),
    responses((status = 200, body = Object), Unauthorized, NotFound))]
async fn change_impact(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    Ok(json_of(s.app.change_impact(&who.principal, &id).await?))
}

/// Conflicts of the planned window: `same_ci` and `dependent_ci` with other changes (with
/// `change_number`), `freeze` windows (with `freeze_name` and `overlap`).
#[utoipa::path(get, path = "/api/v1/changes/{id}/conflicts", tag = "changes", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Object>), Unauthorized, NotFound))]
async fn change_conflicts(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    Ok(json_of(s.app.change_conflicts(&who.principal, &id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// `successful`, `partially_successful` or `failed`.
    pub outcome: String,
    pub notes: Option<String>,
    pub follow_up: Option<String>,
    /// Ids or numbers of incidents the change caused.
    #[serde(default)]
    pub caused_incident_ids: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/changes/{id}/review", tag = "changes",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "Optional: refuse if the change changed since this ETag")),
    request_body = ReviewBody,
    responses((status = 200, body = Change), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn review_change(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ReviewBody>,
) -> ApiResponse {
    let version = optional_if_match(&headers)?;
    let input = ReviewInput { outcome: b.outcome, notes: b.notes, follow_up: b.follow_up, caused_incident_ids: b.caused_incident_ids };
    let c = s.app.review_change(&who.principal, &id, input, version).await?;
    Ok(with_etag(c.version, detailed(&s, &who.principal, c).await?))
}

/// A task of a change, assigned to a team.
#[derive(Serialize, ToSchema)]
pub struct TaskBody {
    pub id: String,
    pub seq: i64,
    pub title: String,
    pub team_id: Option<String>,
    pub team_name: Option<String>,
    /// `open` or `done`.
    pub status: String,
    pub done_at: Option<i64>,
    pub done_by: Option<String>,
    pub created_at: i64,
}

impl From<TaskRecord> for TaskBody {
    fn from(t: TaskRecord) -> Self {
        TaskBody {
            id: t.id,
            seq: t.seq,
            title: t.title,
            team_id: t.team_id,
            team_name: t.team_name,
            status: t.status,
            done_at: t.done_at,
            done_by: t.done_by,
            created_at: t.created_at,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/changes/{id}/tasks", tag = "changes", params(("id" = String, Path)),
    responses((status = 200, body = Vec<TaskBody>), Unauthorized, NotFound))]
async fn list_tasks(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let v = s.app.change_tasks(&who.principal, &id).await?;
    Ok(axum::Json(v.into_iter().map(TaskBody::from).collect::<Vec<_>>()).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTaskBody {
    pub title: String,
    pub team_id: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/changes/{id}/tasks", tag = "changes", params(("id" = String, Path)), request_body = NewTaskBody,
    responses((status = 201, body = TaskBody), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn add_task(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NewTaskBody>,
) -> ApiResponse {
    let t = s.app.add_change_task(&who.principal, &id, &b.title, b.team_id).await?;
    Ok((StatusCode::CREATED, axum::Json(TaskBody::from(t))).into_response())
}

#[utoipa::path(post, path = "/api/v1/changes/{id}/tasks/{task_id}/complete", tag = "changes", params(("id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = TaskBody), (status = 409, body = ErrorBody, description = "Already done"), Unauthorized, Forbidden, NotFound))]
async fn complete_task(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath((id, task_id)): ApiPath<(String, String)>) -> ApiResponse {
    let t = s.app.complete_change_task(&who.principal, &id, &task_id).await?;
    Ok(axum::Json(TaskBody::from(t)).into_response_ok())
}

/// An incident caused by the change.
#[derive(Serialize, ToSchema)]
pub struct CausedIncident {
    pub id: String,
    pub number: String,
    pub title: String,
    pub status: String,
    pub priority: String,
}

impl From<LinkedTicket> for CausedIncident {
    fn from(t: LinkedTicket) -> Self {
        CausedIncident { id: t.id, number: t.number, title: t.title, status: t.status, priority: t.priority }
    }
}

#[utoipa::path(get, path = "/api/v1/changes/{id}/incidents", tag = "changes", params(("id" = String, Path)),
    responses((status = 200, body = Vec<CausedIncident>), Unauthorized, NotFound))]
async fn list_incidents(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let v = s.app.change_incidents(&who.principal, &id).await?;
    Ok(axum::Json(v.into_iter().map(CausedIncident::from).collect::<Vec<_>>()).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkIncidentsBody {
    /// Ids or numbers of incidents.
    pub incident_ids: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/changes/{id}/incidents", tag = "changes", params(("id" = String, Path)), request_body = LinkIncidentsBody,
    responses((status = 200, body = Vec<CausedIncident>, description = "Every incident now linked"), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn link_incidents(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<LinkIncidentsBody>,
) -> ApiResponse {
    let v = s.app.link_change_incidents(&who.principal, &id, &b.incident_ids).await?;
    Ok(axum::Json(v.into_iter().map(CausedIncident::from).collect::<Vec<_>>()).into_response_ok())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// Start of the period (Unix ms).
    pub from: i64,
    /// End of the period (Unix ms), at most 100 days after `from`.
    pub to: i64,
}

/// The forward schedule of change: `changes` with windows in the period (each with its
/// `conflicts`) and the `freezes`.
#[utoipa::path(get, path = "/api/v1/change-schedule", tag = "changes", params(RangeParams),
    responses((status = 200, body = Object), Unauthorized, NotFound, InvalidQuery))]
async fn change_schedule(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(q): ApiQuery<RangeParams>) -> ApiResponse {
    Ok(json_of(s.app.change_schedule(&who.principal, q.from, q.to).await?))
}

/// A freeze (blackout) window.
#[derive(Serialize, ToSchema)]
pub struct FreezeBody {
    pub id: String,
    pub name: String,
    pub starts_at: i64,
    pub ends_at: i64,
    /// Empty: every CI.
    pub ci_ids: Vec<String>,
    pub created_by: String,
    pub created_at: i64,
}

impl From<FreezeRecord> for FreezeBody {
    fn from(f: FreezeRecord) -> Self {
        FreezeBody {
            id: f.id,
            name: f.name,
            starts_at: f.starts_at,
            ends_at: f.ends_at,
            ci_ids: f.ci_ids,
            created_by: f.created_by,
            created_at: f.created_at,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/change-freezes", tag = "changes", params(RangeParams),
    responses((status = 200, body = Vec<FreezeBody>), Unauthorized, NotFound, InvalidQuery))]
async fn list_freezes(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(q): ApiQuery<RangeParams>) -> ApiResponse {
    let v = s.app.list_change_freezes(&who.principal, q.from, q.to).await?;
    Ok(axum::Json(v.into_iter().map(FreezeBody::from).collect::<Vec<_>>()).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFreezeBody {
    pub name: String,
    pub starts_at: i64,
    pub ends_at: i64,
    #[serde(default)]
    pub ci_ids: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/change-freezes", tag = "changes", request_body = NewFreezeBody,
    responses((status = 201, body = FreezeBody), Unauthorized, JsonBodyErrors, Forbidden))]
async fn create_freeze(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewFreezeBody>) -> ApiResponse {
    let f = s
        .app
        .create_change_freeze(&who.principal, FreezeInput { name: b.name, starts_at: b.starts_at, ends_at: b.ends_at, ci_ids: b.ci_ids })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(FreezeBody::from(f))).into_response())
}

#[utoipa::path(delete, path = "/api/v1/change-freezes/{id}", tag = "changes", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), Unauthorized, Forbidden, NotFound))]
async fn delete_freeze(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    s.app.delete_change_freeze(&who.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A pre-approved standard change template.
#[derive(Serialize, ToSchema)]
pub struct TemplateBody {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub implementation_plan: String,
    pub back_out_plan: String,
    /// `low` or `medium`.
    pub risk_level: String,
    pub approved_by: String,
    pub approved_at: i64,
    pub active: bool,
    pub version: i64,
}

impl From<TemplateRecord> for TemplateBody {
    fn from(t: TemplateRecord) -> Self {
        TemplateBody {
            id: t.id,
            name: t.name,
            description: t.description,
            implementation_plan: t.implementation_plan,
            back_out_plan: t.back_out_plan,
            risk_level: t.risk_level,
            approved_by: t.approved_by,
            approved_at: t.approved_at,
            active: t.active,
            version: t.version,
        }
    }
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct TemplateQuery {
    /// Only active templates.
    pub active: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/change-templates", tag = "changes", params(TemplateQuery),
    responses((status = 200, body = Vec<TemplateBody>), Unauthorized, NotFound, InvalidQuery))]
async fn list_templates(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(q): ApiQuery<TemplateQuery>) -> ApiResponse {
    let v = s.app.list_change_templates(&who.principal, q.active.unwrap_or(false)).await?;
    Ok(axum::Json(v.into_iter().map(TemplateBody::from).collect::<Vec<_>>()).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplateBody {
    pub name: String,
    pub description: Option<String>,
    pub implementation_plan: String,
    pub back_out_plan: String,
    /// `low` or `medium`.
    pub risk_level: String,
}

#[utoipa::path(post, path = "/api/v1/change-templates", tag = "changes", request_body = NewTemplateBody,
    responses((status = 201, body = TemplateBody), Unauthorized, JsonBodyErrors, Forbidden))]
async fn create_template(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewTemplateBody>) -> ApiResponse {
    let input = TemplateInput {
        name: b.name,
        description: b.description,
        implementation_plan: b.implementation_plan,
        back_out_plan: b.back_out_plan,
        risk_level: b.risk_level,
    };
    let t = s.app.create_change_template(&who.principal, input).await?;
    Ok((StatusCode::CREATED, axum::Json(TemplateBody::from(t))).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActiveBody {
    pub active: bool,
}

#[utoipa::path(put, path = "/api/v1/change-templates/{id}/active", tag = "changes", params(("id" = String, Path)), request_body = ActiveBody,
    responses((status = 200, body = TemplateBody), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn set_template_active(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ActiveBody>,
) -> ApiResponse {
    let t = s.app.set_change_template_active(&who.principal, &id, b.active).await?;
    Ok(axum::Json(TemplateBody::from(t)).into_response_ok())
}

/// A delegation of approvals for a period.
#[derive(Serialize, ToSchema)]
pub struct DelegationBody {
    pub id: String,
    pub delegator_id: String,
    pub delegate_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
}

impl From<DelegationRecord> for DelegationBody {
    fn from(d: DelegationRecord) -> Self {
        DelegationBody { id: d.id, delegator_id: d.delegator_id, delegate_id: d.delegate_id, starts_at: d.starts_at, ends_at: d.ends_at }
    }
}

#[utoipa::path(get, path = "/api/v1/change-delegations", tag = "changes",
    responses((status = 200, body = Vec<DelegationBody>, description = "The caller's current and future delegations, given and received"), Unauthorized))]
async fn list_delegations(State(s): State<AppState>, ApiUser(who): ApiUser) -> ApiResponse {
    let v = s.app.my_change_delegations(&who.principal).await?;
    Ok(axum::Json(v.into_iter().map(DelegationBody::from).collect::<Vec<_>>()).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDelegationBody {
    /// Default: the caller (change administrators may delegate for others).
    pub delegator_id: Option<String>,
    pub delegate_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
}

#[utoipa::path(post, path = "/api/v1/change-delegations", tag = "changes", request_body = NewDelegationBody,
    responses((status = 201, body = DelegationBody), Unauthorized, JsonBodyErrors, Forbidden))]
async fn create_delegation(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewDelegationBody>) -> ApiResponse {
    let input = DelegationInput { delegator_id: b.delegator_id, delegate_id: b.delegate_id, starts_at: b.starts_at, ends_at: b.ends_at };
    let d = s.app.create_change_delegation(&who.principal, input).await?;
    Ok((StatusCode::CREATED, axum::Json(DelegationBody::from(d))).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerApprovalBody {
    /// Whether the customer approves the changes of the SLA's project.
    pub change_approval_by_customer: bool,
}

#[utoipa::path(put, path = "/api/v1/slas/{id}/change-approval", tag = "changes", params(("id" = String, Path)), request_body = CustomerApprovalBody,
    responses((status = 204, description = "Set"), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn set_sla_change_approval(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<CustomerApprovalBody>,
) -> ApiResponse {
    s.app.set_sla_change_approval(&who.principal, &id, b.change_approval_by_customer).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// How strictly changes to live CIs must reference a change in implementation.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeControlBody {
    /// `off`, `warn` (accepted, noted in the audit trail) or `enforce` (refused).
    pub mode: String,
}

#[utoipa::path(get, path = "/api/v1/cmdb/change-control", tag = "changes",
    responses((status = 200, body = ChangeControlBody), Unauthorized))]
async fn get_change_control(State(s): State<AppState>, ApiUser(_who): ApiUser) -> ApiResponse {
    Ok(axum::Json(ChangeControlBody { mode: s.app.change_control_mode().await?.as_str().into() }).into_response_ok())
}

#[utoipa::path(put, path = "/api/v1/cmdb/change-control", tag = "changes", request_body = ChangeControlBody,
    responses((status = 200, body = ChangeControlBody), Unauthorized, JsonBodyErrors, Forbidden))]
async fn set_change_control(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<ChangeControlBody>) -> ApiResponse {
    let mode = s.app.set_change_control_mode(&who.principal, &b.mode).await?;
    Ok(axum::Json(ChangeControlBody { mode: mode.as_str().into() }).into_response_ok())
}

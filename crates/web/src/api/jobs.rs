//! `/api/v1/job-schedules`: the schedules of the background jobs every process runs (audit
//! checkpoints, SLA escalation, notification dispatch and delivery, …), which an administrator
//! may override per job (setting `job.schedule.<kind>`).

use super::{ApiJson, ApiPath, ApiResponse, Forbidden, JsonBodyErrors, NotFound, Unauthorized};
use crate::AppState;
use crate::auth::ApiUser;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_schedules)).routes(routes!(set_schedule))
}

/// A built-in job's schedule: cron, five fields or six with seconds first.
#[derive(Serialize, ToSchema)]
pub struct JobSchedule {
    /// e.g. `sla_escalate`.
    pub kind: String,
    /// The shipped schedule.
    pub default: String,
    /// The administrator's override; `null` when the shipped schedule is in force.
    #[serde(rename = "override")]
    pub override_: Option<String>,
    /// The schedule in force.
    pub schedule: String,
}

impl From<keel_app::jobs::JobSchedule> for JobSchedule {
    fn from(s: keel_app::jobs::JobSchedule) -> Self {
        JobSchedule { kind: s.kind, default: s.default, override_: s.override_, schedule: s.schedule }
    }
}

/// A new schedule for one job.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleOverride {
    /// e.g. `*/10 * * * * *` (every ten seconds); `null` or empty restores the shipped one.
    /// A schedule that does not parse is refused with `invalid_schedule` on `schedule`.
    #[schema(required = true)]
    pub schedule: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/job-schedules", tag = "jobs",
    responses((status = 200, description = "Every built-in job with its shipped schedule and the override in force", body = Vec<JobSchedule>), Unauthorized, Forbidden))]
async fn list_schedules(State(s): State<AppState>, ApiUser(who): ApiUser) -> ApiResponse {
    let list: Vec<JobSchedule> = s.app.job_schedules(&who.principal).await?.into_iter().map(Into::into).collect();
    Ok(axum::Json(list).into_response())
}

#[utoipa::path(put, path = "/api/v1/job-schedules/{kind}", tag = "jobs", params(("kind" = String, Path, description = "a built-in job, e.g. sla_escalate")),
    request_body = ScheduleOverride,
    responses((status = 200, description = "The schedule is in force; the job's next run moved", body = JobSchedule), JsonBodyErrors, Unauthorized, Forbidden, NotFound))]
async fn set_schedule(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(kind): ApiPath<String>,
    ApiJson(b): ApiJson<ScheduleOverride>,
) -> ApiResponse {
    let v = s.app.set_job_schedule(&who.principal, &kind, b.schedule.as_deref()).await?;
    Ok(axum::Json(JobSchedule::from(v)).into_response())
}

//! `/api/v1/calendars`, `/api/v1/services`, `/api/v1/slas`, `/api/v1/olas`,
//! `/api/v1/underpinning-contracts`: service level management (§6.1) — business calendars with
//! yearly CSV/ICS import and export, the service catalogue with its versions, SLAs with their
//! approval lifecycle and the clock preview, and the agreements that support them.

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
use chrono::{DateTime, Utc};
use keel_app::service_level::{CalendarFormat, CalendarInput, ClockPreviewInput, ServiceInput, SlaInput, SupportInput};
use keel_domain::sla::Priority;
use keel_domain::sla::agreement::{SlaAction, SlaTerms, SupportKind};
use keel_domain::sla::calendar::{MakeUpSpec, WeekSpec};
use keel_domain::sla::target::{PriorityTargets, TargetsSpec};
use keel_store::page::{SortKey, SortKind};
use keel_store::service_level::{
    CalendarRecord, ServiceFilter, ServiceRecord, ServiceVersion, SlaFilter, SlaRecord, SupportFilter, SupportRecord,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_calendars, create_calendar))
        .routes(routes!(create_china_calendar))
        .routes(routes!(get_calendar, update_calendar, delete_calendar))
        .routes(routes!(export_year, import_year))
        .routes(routes!(load_china_year))
        .routes(routes!(list_services, create_service))
        .routes(routes!(get_service, update_service))
        .routes(routes!(service_versions))
        .routes(routes!(list_slas, create_sla))
        .routes(routes!(get_sla, update_sla))
        .routes(routes!(sla_lifecycle))
        .routes(routes!(clock_preview))
        .routes(routes!(list_olas, create_ola))
        .routes(routes!(get_ola, update_ola))
        .routes(routes!(list_contracts, create_contract))
        .routes(routes!(get_contract, update_contract))
}

const NAME_SORTS: &[SortKey] = &[
    SortKey { name: "name", column: "name", kind: SortKind::Text },
    SortKey { name: "created_at", column: "created_at", kind: SortKind::Int },
    SortKey { name: "updated_at", column: "updated_at", kind: SortKind::Int },
];
const SERVICE_SORTS: &[SortKey] = &[
    SortKey { name: "name", column: "name", kind: SortKind::Text },
    SortKey { name: "code", column: "code", kind: SortKind::Text },
    SortKey { name: "updated_at", column: "updated_at", kind: SortKind::Int },
];
const SLA_SORTS: &[SortKey] = &[
    SortKey { name: "name", column: "name", kind: SortKind::Text },
    SortKey { name: "review_on", column: "review_on", kind: SortKind::Text },
    SortKey { name: "updated_at", column: "updated_at", kind: SortKind::Int },
];

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct TextQuery {
    /// Text in the name (or code).
    pub q: Option<String>,
}

// ---------------------------------------------------------------- shared shapes

/// Working intervals per weekday, each `HH:MM-HH:MM`; a missing or empty day is closed.
#[derive(Serialize, Deserialize, ToSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct WeekHours {
    #[serde(default)]
    pub mon: Vec<String>,
    #[serde(default)]
    pub tue: Vec<String>,
    #[serde(default)]
    pub wed: Vec<String>,
    #[serde(default)]
    pub thu: Vec<String>,
    #[serde(default)]
    pub fri: Vec<String>,
    #[serde(default)]
    pub sat: Vec<String>,
    #[serde(default)]
    pub sun: Vec<String>,
}

impl From<WeekHours> for WeekSpec {
    fn from(w: WeekHours) -> Self {
        WeekSpec { mon: w.mon, tue: w.tue, wed: w.wed, thu: w.thu, fri: w.fri, sat: w.sat, sun: w.sun }
    }
}

impl From<WeekSpec> for WeekHours {
    fn from(w: WeekSpec) -> Self {
        WeekHours { mon: w.mon, tue: w.tue, wed: w.wed, thu: w.thu, fri: w.fri, sat: w.sat, sun: w.sun }
    }
}

/// The hours of a make-up working day (调休上班日): those of a weekday, or their own intervals.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(rename_all = "snake_case")]
pub enum MakeUpHours {
    /// A weekday key, e.g. `mon`.
    SameAs(String),
    Custom(Vec<String>),
}

impl From<MakeUpHours> for MakeUpSpec {
    fn from(m: MakeUpHours) -> Self {
        match m {
            MakeUpHours::SameAs(d) => MakeUpSpec::SameAs(d),
            MakeUpHours::Custom(l) => MakeUpSpec::Custom(l),
        }
    }
}

impl From<MakeUpSpec> for MakeUpHours {
    fn from(m: MakeUpSpec) -> Self {
        match m {
            MakeUpSpec::SameAs(d) => MakeUpHours::SameAs(d),
            MakeUpSpec::Custom(l) => MakeUpHours::Custom(l),
        }
    }
}

/// The targets of one priority, as business milliseconds in the SLA's calendar.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct PriorityTarget {
    /// 首次响应时间
    pub first_response_ms: i64,
    /// 解决时间
    pub resolution_ms: i64,
    /// Longest time between public updates.
    pub update_interval_ms: Option<i64>,
}

/// Service level targets (服务级别目标) per priority, with the warning thresholds in percent.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(rename = "P1")]
    pub p1: PriorityTarget,
    #[serde(rename = "P2")]
    pub p2: PriorityTarget,
    #[serde(rename = "P3")]
    pub p3: PriorityTarget,
    #[serde(rename = "P4")]
    pub p4: PriorityTarget,
    /// Ascending percentages of a target at which a warning (预警) is raised; default `[75, 100]`.
    #[serde(default = "default_thresholds")]
    pub thresholds: Vec<u16>,
}

fn default_thresholds() -> Vec<u16> {
    vec![75, 100]
}

fn pt_in(p: PriorityTarget) -> PriorityTargets {
    PriorityTargets { first_response_ms: p.first_response_ms, resolution_ms: p.resolution_ms, update_interval_ms: p.update_interval_ms }
}

fn pt_out(p: PriorityTargets) -> PriorityTarget {
    PriorityTarget { first_response_ms: p.first_response_ms, resolution_ms: p.resolution_ms, update_interval_ms: p.update_interval_ms }
}

impl From<Targets> for TargetsSpec {
    fn from(t: Targets) -> Self {
        TargetsSpec { p1: pt_in(t.p1), p2: pt_in(t.p2), p3: pt_in(t.p3), p4: pt_in(t.p4), thresholds: t.thresholds }
    }
}

impl From<TargetsSpec> for Targets {
    fn from(t: TargetsSpec) -> Self {
        Targets { p1: pt_out(t.p1), p2: pt_out(t.p2), p3: pt_out(t.p3), p4: pt_out(t.p4), thresholds: t.thresholds }
    }
}

// ---------------------------------------------------------------- calendars

/// One holiday (法定节假日) or make-up working day (调休上班日).
#[derive(Serialize, ToSchema)]
pub struct CalendarDayOut {
    /// `YYYY-MM-DD`
    pub date: String,
    /// `holiday` or `workday`.
    pub kind: String,
    pub name: Option<String>,
}

/// A business calendar (工作日历).
#[derive(Serialize, ToSchema)]
pub struct Calendar {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// IANA time zone, e.g. `Asia/Shanghai`.
    pub time_zone: String,
    pub hours: WeekHours,
    pub make_up_hours: MakeUpHours,
    /// Holidays and make-up working days (only on single-calendar responses).
    pub days: Vec<CalendarDayOut>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl From<CalendarRecord> for Calendar {
    fn from(c: CalendarRecord) -> Self {
        Calendar {
            id: c.id,
            name: c.name,
            description: c.description,
            time_zone: c.time_zone,
            hours: c.hours.into(),
            make_up_hours: c.make_up_hours.into(),
            days: c.days.into_iter().map(|d| CalendarDayOut { date: d.date, kind: d.kind, name: d.name }).collect(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            version: c.version,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarBody {
    pub name: Option<String>,
    pub description: Option<String>,
    pub time_zone: Option<String>,
    pub hours: Option<WeekHours>,
    pub make_up_hours: Option<MakeUpHours>,
}

fn calendar_input(b: CalendarBody, cur: Option<&CalendarRecord>) -> CalendarInput {
    CalendarInput {
        name: b.name.or(cur.map(|c| c.name.clone())).unwrap_or_default(),
        description: b.description.or(cur.and_then(|c| c.description.clone())),
        time_zone: b.time_zone.or(cur.map(|c| c.time_zone.clone())).unwrap_or_default(),
        hours: b.hours.map(Into::into).or(cur.map(|c| c.hours.clone())).unwrap_or_default(),
        make_up_hours: b.make_up_hours.map(Into::into).or(cur.map(|c| c.make_up_hours.clone())),
    }
}

#[utoipa::path(get, path = "/api/v1/calendars", tag = "service_level", params(TextQuery, PageParams),
    responses((status = 200, body = ListOf<Calendar>), Unauthorized, InvalidQuery, Forbidden))]
async fn list_calendars(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<TextQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    let page = page_request(&pp, NAME_SORTS)?;
    let r = s.app.list_calendars(&who.principal, q.q.as_deref(), &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(Calendar::from).collect(), next_cursor: r.next_cursor }).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/calendars", tag = "service_level", request_body = CalendarBody,
    responses((status = 201, body = Calendar), Unauthorized, JsonBodyErrors, Forbidden))]
async fn create_calendar(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<CalendarBody>) -> ApiResponse {
    let c = s.app.create_calendar(&who.principal, calendar_input(b, None)).await?;
    Ok(created(c.version, format!("/api/v1/calendars/{}", c.id), Calendar::from(c)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChinaCalendarBody {
    pub name: String,
}

#[utoipa::path(post, path = "/api/v1/calendars/china-mainland", tag = "service_level", request_body = ChinaCalendarBody,
    description = "Creates a mainland China calendar (Asia/Shanghai, Mon–Fri 09:00–12:00 and 13:30–18:00) with the official holidays and make-up working days of 2025 and 2026.",
    responses((status = 201, body = Calendar), Unauthorized, JsonBodyErrors, Forbidden))]
async fn create_china_calendar(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<ChinaCalendarBody>) -> ApiResponse {
    let c = s.app.create_china_calendar(&who.principal, &b.name).await?;
    Ok(created(c.version, format!("/api/v1/calendars/{}", c.id), Calendar::from(c)))
}

#[utoipa::path(get, path = "/api/v1/calendars/{id}", tag = "service_level", params(("id" = String, Path)),
    responses((status = 200, body = Calendar, headers(("ETag" = String))), Unauthorized, NotFound))]
async fn get_calendar(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let c = s.app.get_calendar(&who.principal, &id).await?;
    Ok(with_etag(c.version, Calendar::from(c)))
}

#[utoipa::path(patch, path = "/api/v1/calendars/{id}", tag = "service_level", params(("id" = String, Path), ("If-Match" = String, Header)), request_body = CalendarBody,
    responses((status = 200, body = Calendar), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn update_calendar(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<CalendarBody>,
) -> ApiResponse {
    let cur = s.app.get_calendar(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let c = s.app.update_calendar(&who.principal, &id, calendar_input(b, Some(&cur)), Some(version)).await?;
    Ok(with_etag(c.version, Calendar::from(c)))
}

#[utoipa::path(delete, path = "/api/v1/calendars/{id}", tag = "service_level", params(("id" = String, Path), ("If-Match" = String, Header)),
    responses((status = 204), (status = 409, body = ErrorBody), Unauthorized, VersionErrors, Forbidden, NotFound))]
async fn delete_calendar(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResponse {
    s.app.get_calendar(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    s.app.delete_calendar(&who.principal, &id, Some(version)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (default) or `ics`.
    #[param(value_type = Option<String>)]
    pub format: Option<CalendarFormat>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct YearImport {
    /// `csv` (`date,kind[,name]` per line; kind `holiday`/`workday`, 休/班 accepted) or `ics`.
    #[schema(value_type = String)]
    pub format: CalendarFormat,
    /// The file's text.
    pub content: String,
}

fn year_of(year: i64) -> Result<i32, ApiError> {
    i32::try_from(year)
        .ok()
        .filter(|y| (1900..=9999).contains(y))
        .ok_or_else(|| ApiError::field("year", "out_of_range", "the year must be between 1900 and 9999"))
}

#[utoipa::path(get, path = "/api/v1/calendars/{id}/years/{year}", tag = "service_level", params(("id" = String, Path), ("year" = i64, Path), ExportQuery),
    description = "Exports one year's holidays and make-up working days as CSV or iCalendar.",
    responses((status = 200, content((String = "text/csv"), (String = "text/calendar"))), Unauthorized, InvalidQuery, NotFound))]
async fn export_year(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath((id, year)): ApiPath<(String, i64)>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResponse {
    let year = year_of(year)?;
    let format = q.format.unwrap_or(CalendarFormat::Csv);
    let text = s.app.export_calendar_year(&who.principal, &id, year, format).await?;
    let (mime, ext) = match format {
        CalendarFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        CalendarFormat::Ics => ("text/calendar; charset=utf-8", "ics"),
    };
    let disposition = format!("attachment; filename=\"calendar-{year}.{ext}\"");
    Ok(([(header::CONTENT_TYPE, mime.to_string()), (header::CONTENT_DISPOSITION, disposition)], text).into_response())
}

#[utoipa::path(put, path = "/api/v1/calendars/{id}/years/{year}", tag = "service_level", params(("id" = String, Path), ("year" = i64, Path), ("If-Match" = String, Header)),
    request_body = YearImport,
    description = "Replaces one year's holidays and make-up working days with those of a CSV or iCalendar file. A file with any problem is refused whole; each problem names its line (`line 3`).",
    responses((status = 200, body = Calendar), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn import_year(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath((id, year)): ApiPath<(String, i64)>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<YearImport>,
) -> ApiResponse {
    let year = year_of(year)?;
    s.app.get_calendar(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let c = s.app.import_calendar_year(&who.principal, &id, year, b.format, &b.content, Some(version)).await?;
    Ok(with_etag(c.version, Calendar::from(c)))
}

#[utoipa::path(post, path = "/api/v1/calendars/{id}/years/{year}/china-mainland", tag = "service_level", params(("id" = String, Path), ("year" = i64, Path), ("If-Match" = String, Header)),
    description = "Replaces one year's days with the official mainland China calendar Keel ships (2025, 2026).",
    responses((status = 200, body = Calendar), Unauthorized, InvalidQuery, VersionErrors, Forbidden, NotFound))]
async fn load_china_year(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath((id, year)): ApiPath<(String, i64)>,
    headers: HeaderMap,
) -> ApiResponse {
    let year = year_of(year)?;
    s.app.get_calendar(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let c = s.app.load_china_year(&who.principal, &id, year, Some(version)).await?;
    Ok(with_etag(c.version, Calendar::from(c)))
}

// ---------------------------------------------------------------- services

/// A service catalogue entry (服务目录).
#[derive(Serialize, ToSchema)]
pub struct Service {
    pub id: String,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    /// `infrastructure`, `operations_maintenance`, `professional_technical`, `it_security`,
    /// `consulting_design_assessment`, `training`, `on_site_resident`, `periodic_inspection`,
    /// `consulting_planning`.
    pub service_line: String,
    /// Service targets or standards.
    pub targets: Option<String>,
    /// Availability target in percent, e.g. `99.9`.
    pub availability_target: Option<String>,
    pub contact_points: Option<String>,
    /// Business calendar of the service hours.
    pub calendar_id: Option<String>,
    pub service_hours: Option<String>,
    pub exceptions: Option<String>,
    /// Security considerations and arrangements.
    pub security: Option<String>,
    /// Services this one depends on.
    pub depends_on: Vec<String>,
    /// Configuration items this one depends on.
    pub ci_ids: Vec<String>,
    /// `pipeline`, `live` or `retired`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The catalogue version: every change makes a new one.
    pub version: i64,
}

impl From<ServiceRecord> for Service {
    fn from(s: ServiceRecord) -> Self {
        Service {
            id: s.id,
            code: s.code,
            name: s.name,
            description: s.description,
            service_line: s.service_line,
            targets: s.targets,
            availability_target: s.availability_target,
            contact_points: s.contact_points,
            calendar_id: s.calendar_id,
            service_hours: s.service_hours,
            exceptions: s.exceptions,
            security: s.security,
            depends_on: s.depends_on,
            ci_ids: s.ci_ids,
            status: s.status,
            created_at: s.created_at,
            updated_at: s.updated_at,
            version: s.version,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceBody {
    pub code: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub service_line: Option<String>,
    pub targets: Option<String>,
    pub availability_target: Option<String>,
    pub contact_points: Option<String>,
    pub calendar_id: Option<String>,
    pub service_hours: Option<String>,
    pub exceptions: Option<String>,
    pub security: Option<String>,
    pub depends_on: Option<Vec<String>>,
    pub ci_ids: Option<Vec<String>>,
    pub status: Option<String>,
}

fn service_input(b: ServiceBody, cur: Option<&ServiceRecord>) -> ServiceInput {
    let keep = |v: Option<String>, c: fn(&ServiceRecord) -> Option<String>| v.or(cur.and_then(c));
    ServiceInput {
        code: b.code.or(cur.map(|c| c.code.clone())).unwrap_or_default(),
        name: b.name.or(cur.map(|c| c.name.clone())).unwrap_or_default(),
        service_line: b.service_line.or(cur.map(|c| c.service_line.clone())).unwrap_or_default(),
        description: keep(b.description, |c| c.description.clone()),
        targets: keep(b.targets, |c| c.targets.clone()),
        availability_target: keep(b.availability_target, |c| c.availability_target.clone()),
        contact_points: keep(b.contact_points, |c| c.contact_points.clone()),
        calendar_id: keep(b.calendar_id, |c| c.calendar_id.clone()),
        service_hours: keep(b.service_hours, |c| c.service_hours.clone()),
        exceptions: keep(b.exceptions, |c| c.exceptions.clone()),
        security: keep(b.security, |c| c.security.clone()),
        depends_on: b.depends_on.or(cur.map(|c| c.depends_on.clone())).unwrap_or_default(),
        ci_ids: b.ci_ids.or(cur.map(|c| c.ci_ids.clone())).unwrap_or_default(),
        status: keep(b.status, |c| Some(c.status.clone())),
    }
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ServiceQuery {
    pub q: Option<String>,
    pub status: Option<String>,
    pub service_line: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/services", tag = "service_level", params(ServiceQuery, PageParams),
    description = "The service catalogue. A customer contact sees the services their organisation's SLAs include.",
    responses((status = 200, body = ListOf<Service>), Unauthorized, InvalidQuery))]
async fn list_services(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<ServiceQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    let page = page_request(&pp, SERVICE_SORTS)?;
    let f = ServiceFilter { q: q.q, status: q.status, service_line: q.service_line, organization_id: None };
    let r = s.app.list_services(&who.principal, &f, &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(Service::from).collect(), next_cursor: r.next_cursor }).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/services", tag = "service_level", request_body = ServiceBody,
    responses((status = 201, body = Service), Unauthorized, JsonBodyErrors, Forbidden))]
async fn create_service(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<ServiceBody>) -> ApiResponse {
    let v = s.app.create_service(&who.principal, service_input(b, None)).await?;
    Ok(created(v.version, format!("/api/v1/services/{}", v.id), Service::from(v)))
}

#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "service_level", params(("id" = String, Path)),
    responses((status = 200, body = Service, headers(("ETag" = String))), Unauthorized, NotFound))]
async fn get_service(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let v = s.app.get_service(&who.principal, &id).await?;
    Ok(with_etag(v.version, Service::from(v)))
}

#[utoipa::path(patch, path = "/api/v1/services/{id}", tag = "service_level", params(("id" = String, Path), ("If-Match" = String, Header)), request_body = ServiceBody,
    responses((status = 200, body = Service), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn update_service(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ServiceBody>,
) -> ApiResponse {
    let cur = s.app.get_service(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let v = s.app.update_service(&who.principal, &id, service_input(b, Some(&cur)), Some(version)).await?;
    Ok(with_etag(v.version, Service::from(v)))
}

/// One version of a catalogue entry.
#[derive(Serialize, ToSchema)]
pub struct ServiceVersionOut {
    pub version: i64,
    /// The entry as it was in this version.
    #[schema(value_type = Object)]
    pub snapshot: serde_json::Value,
    pub changed_by: String,
    pub changed_at: i64,
}

impl From<ServiceVersion> for ServiceVersionOut {
    fn from(v: ServiceVersion) -> Self {
        ServiceVersionOut { version: v.version, snapshot: v.snapshot, changed_by: v.changed_by, changed_at: v.changed_at }
    }
}

#[utoipa::path(get, path = "/api/v1/services/{id}/versions", tag = "service_level", params(("id" = String, Path)),
    responses((status = 200, body = Vec<ServiceVersionOut>), Unauthorized, NotFound))]
async fn service_versions(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let v = s.app.service_versions(&who.principal, &id).await?;
    Ok(axum::Json(v.into_iter().map(ServiceVersionOut::from).collect::<Vec<_>>()).into_response_ok())
}

// ---------------------------------------------------------------- SLAs

/// The prose elements of an SLA (§6.1.6).
#[derive(Serialize, Deserialize, ToSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// 服务的简述
    pub service_description: Option<String>,
    /// 术语表
    pub glossary: Option<String>,
    /// 客户职责
    pub customer_responsibilities: Option<String>,
    /// 服务部门职责和义务
    pub provider_responsibilities: Option<String>,
    /// 服务目标 (prose)
    pub service_targets: Option<String>,
    /// 支持和相关服务
    pub support_services: Option<String>,
    /// 影响和优先级描述
    pub impact_priority: Option<String>,
    /// 授权细节及授权人员联系信息
    pub authorisations_contacts: Option<String>,
    /// 有效期或SLA变更控制机制（包含升级和通知流程）
    pub change_control: Option<String>,
    /// 服务中断采取的纠正措施
    pub interruption_actions: Option<String>,
    /// 计划和协调中断，包括通知事件及频率
    pub planned_interruptions: Option<String>,
    /// 沟通的简述，包括报告
    pub communication_reporting: Option<String>,
    /// 投诉程序
    pub complaints_procedure: Option<String>,
    /// 例外情况
    pub exceptions: Option<String>,
}

impl From<Terms> for SlaTerms {
    fn from(t: Terms) -> Self {
        SlaTerms {
            service_description: t.service_description,
            glossary: t.glossary,
            customer_responsibilities: t.customer_responsibilities,
            provider_responsibilities: t.provider_responsibilities,
            service_targets: t.service_targets,
            support_services: t.support_services,
            impact_priority: t.impact_priority,
            authorisations_contacts: t.authorisations_contacts,
            change_control: t.change_control,
            interruption_actions: t.interruption_actions,
            planned_interruptions: t.planned_interruptions,
            communication_reporting: t.communication_reporting,
            complaints_procedure: t.complaints_procedure,
            exceptions: t.exceptions,
        }
    }
}

impl From<SlaTerms> for Terms {
    fn from(t: SlaTerms) -> Self {
        Terms {
            service_description: t.service_description,
            glossary: t.glossary,
            customer_responsibilities: t.customer_responsibilities,
            provider_responsibilities: t.provider_responsibilities,
            service_targets: t.service_targets,
            support_services: t.support_services,
            impact_priority: t.impact_priority,
            authorisations_contacts: t.authorisations_contacts,
            change_control: t.change_control,
            interruption_actions: t.interruption_actions,
            planned_interruptions: t.planned_interruptions,
            communication_reporting: t.communication_reporting,
            complaints_procedure: t.complaints_procedure,
            exceptions: t.exceptions,
        }
    }
}

/// A service level agreement (服务级别协议) of one service project.
#[derive(Serialize, ToSchema)]
pub struct Sla {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub organization_id: String,
    /// The business calendar its targets are measured in.
    pub calendar_id: String,
    /// `draft`, `approved`, `active` or `expired`.
    pub status: String,
    pub targets: Targets,
    /// Ticket statuses in which the clocks pause.
    pub pause_statuses: Vec<String>,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    /// Next review (§6.1.8).
    pub review_on: Option<String>,
    /// Workload limits (最大及最小工作量).
    pub workload_min: Option<i64>,
    pub workload_max: Option<i64>,
    pub workload_unit: Option<String>,
    /// §6.1.4: longest acceptable continuous loss of service.
    pub max_outage_minutes: Option<i64>,
    /// §6.1.4: longest acceptable period of degraded service.
    pub max_degraded_minutes: Option<i64>,
    /// §6.1.4: acceptable degraded service level during recovery.
    pub degraded_level: Option<String>,
    pub terms: Terms,
    pub service_ids: Vec<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
    pub activated_at: Option<i64>,
    /// Lifecycle actions open now.
    pub actions: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl From<SlaRecord> for Sla {
    fn from(s: SlaRecord) -> Self {
        let actions = keel_domain::sla::agreement::SlaStatus::parse(&s.status)
            .map(|st| st.actions().into_iter().map(|a| a.as_str().to_string()).collect())
            .unwrap_or_default();
        Sla {
            id: s.id,
            name: s.name,
            project_id: s.project_id,
            organization_id: s.organization_id,
            calendar_id: s.calendar_id,
            status: s.status,
            targets: s.targets.into(),
            pause_statuses: s.clock_policy.pause_statuses,
            valid_from: s.valid_from,
            valid_to: s.valid_to,
            review_on: s.review_on,
            workload_min: s.workload_min,
            workload_max: s.workload_max,
            workload_unit: s.workload_unit,
            max_outage_minutes: s.max_outage_minutes,
            max_degraded_minutes: s.max_degraded_minutes,
            degraded_level: s.degraded_level,
            terms: s.terms.into(),
            service_ids: s.service_ids,
            approved_by: s.approved_by,
            approved_at: s.approved_at,
            activated_at: s.activated_at,
            actions,
            created_at: s.created_at,
            updated_at: s.updated_at,
            version: s.version,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaBody {
    pub name: Option<String>,
    /// Required on create; cannot change.
    pub project_id: Option<String>,
    pub calendar_id: Option<String>,
    /// Default: P1 1 h / 4 h, P2 2 h / 8 h, P3 4 h / 24 h, P4 8 h / 40 h.
    pub targets: Option<Targets>,
    pub pause_statuses: Option<Vec<String>>,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    pub review_on: Option<String>,
    pub workload_min: Option<i64>,
    pub workload_max: Option<i64>,
    pub workload_unit: Option<String>,
    pub max_outage_minutes: Option<i64>,
    pub max_degraded_minutes: Option<i64>,
    pub degraded_level: Option<String>,
    pub terms: Option<Terms>,
    pub service_ids: Option<Vec<String>>,
}

fn sla_input(b: SlaBody, cur: Option<&SlaRecord>) -> SlaInput {
    SlaInput {
        name: b.name.or(cur.map(|c| c.name.clone())).unwrap_or_default(),
        project_id: b.project_id.or(cur.map(|c| c.project_id.clone())).unwrap_or_default(),
        calendar_id: b.calendar_id.or(cur.map(|c| c.calendar_id.clone())).unwrap_or_default(),
        targets: b.targets.map(Into::into).or(cur.map(|c| c.targets.clone())),
        pause_statuses: b.pause_statuses.or(cur.map(|c| c.clock_policy.pause_statuses.clone())),
        valid_from: b.valid_from.or(cur.and_then(|c| c.valid_from.clone())),
        valid_to: b.valid_to.or(cur.and_then(|c| c.valid_to.clone())),
        review_on: b.review_on.or(cur.and_then(|c| c.review_on.clone())),
        workload_min: b.workload_min.or(cur.and_then(|c| c.workload_min)),
        workload_max: b.workload_max.or(cur.and_then(|c| c.workload_max)),
        workload_unit: b.workload_unit.or(cur.and_then(|c| c.workload_unit.clone())),
        max_outage_minutes: b.max_outage_minutes.or(cur.and_then(|c| c.max_outage_minutes)),
        max_degraded_minutes: b.max_degraded_minutes.or(cur.and_then(|c| c.max_degraded_minutes)),
        degraded_level: b.degraded_level.or(cur.and_then(|c| c.degraded_level.clone())),
        terms: b.terms.map(Into::into).or(cur.map(|c| c.terms.clone())).unwrap_or_default(),
        service_ids: b.service_ids.or(cur.map(|c| c.service_ids.clone())).unwrap_or_default(),
    }
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct SlaQuery {
    pub q: Option<String>,
    pub project_id: Option<String>,
    /// `draft`, `approved`, `active`, `expired`.
    pub status: Option<String>,
    /// SLAs whose review date is on or before this date (`YYYY-MM-DD`).
    pub review_due_by: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/slas", tag = "service_level", params(SlaQuery, PageParams),
    description = "SLAs the caller may see: all for the service department, their projects' for project staff, their organisation's for a customer contact.",
    responses((status = 200, body = ListOf<Sla>), Unauthorized, InvalidQuery))]
async fn list_slas(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<SlaQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    let page = page_request(&pp, SLA_SORTS)?;
    let f = SlaFilter { q: q.q, project_id: q.project_id, status: q.status, review_due_by: q.review_due_by };
    let r = s.app.list_slas(&who.principal, &f, &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(Sla::from).collect(), next_cursor: r.next_cursor }).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/slas", tag = "service_level", request_body = SlaBody,
    description = "Drafts an SLA. Refused with `process_disabled` when the project tailored service level management out.",
    responses((status = 201, body = Sla), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, Forbidden))]
async fn create_sla(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<SlaBody>) -> ApiResponse {
    let v = s.app.create_sla(&who.principal, sla_input(b, None)).await?;
    Ok(created(v.version, format!("/api/v1/slas/{}", v.id), Sla::from(v)))
}

#[utoipa::path(get, path = "/api/v1/slas/{id}", tag = "service_level", params(("id" = String, Path)),
    responses((status = 200, body = Sla, headers(("ETag" = String))), Unauthorized, NotFound))]
async fn get_sla(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let v = s.app.get_sla(&who.principal, &id).await?;
    Ok(with_etag(v.version, Sla::from(v)))
}

#[utoipa::path(patch, path = "/api/v1/slas/{id}", tag = "service_level", params(("id" = String, Path), ("If-Match" = String, Header)), request_body = SlaBody,
    description = "Changes a draft SLA (`sla_not_editable` otherwise: revise it first).",
    responses((status = 200, body = Sla), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn update_sla(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<SlaBody>,
) -> ApiResponse {
    let cur = s.app.get_sla(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let v = s.app.update_sla(&who.principal, &id, sla_input(b, Some(&cur)), Some(version)).await?;
    Ok(with_etag(v.version, Sla::from(v)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleBody {
    /// `approve` (draft → approved; service department manager only), `activate` (approved →
    /// active), `expire` (approved/active → expired), `revise` (approved/active → draft).
    #[schema(value_type = String)]
    pub action: SlaAction,
}

#[utoipa::path(post, path = "/api/v1/slas/{id}/lifecycle", tag = "service_level", params(("id" = String, Path), ("If-Match" = String, Header)), request_body = LifecycleBody,
    responses((status = 200, body = Sla), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn sla_lifecycle(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<LifecycleBody>,
) -> ApiResponse {
    s.app.get_sla(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let v = s.app.sla_action(&who.principal, &id, b.action, Some(version)).await?;
    Ok(with_etag(v.version, Sla::from(v)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// RFC 3339 instant.
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// Ticket status, e.g. `in_progress`, `pending_customer`, `resolved`.
    pub status: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityChange {
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// `P1` … `P4`.
    #[schema(value_type = String)]
    pub priority: Priority,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockPreviewBody {
    /// `P1` … `P4` at creation.
    #[schema(value_type = String)]
    pub priority: Priority,
    /// RFC 3339 instant the ticket was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Status at creation (default `new`).
    pub initial_status: Option<String>,
    #[serde(default)]
    pub status_changes: Vec<StatusChange>,
    #[serde(default)]
    pub priority_changes: Vec<PriorityChange>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_response_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub public_updates: Vec<DateTime<Utc>>,
    /// Compute as of this instant (default: now).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub now: Option<DateTime<Utc>>,
}

/// The clocks of a ticket under the SLA (首次响应时间, 解决时间, update interval).
#[derive(Serialize, ToSchema)]
pub struct ClockReport {
    pub as_of: String,
    pub status: String,
    pub priority: String,
    /// `{kind, priority, target_ms, started_at, elapsed_ms, paused_ms, remaining_ms, percent_used, phase, state, due_at, breached_at, stopped_at, thresholds, next_threshold_at, earlier_breaches}`
    #[schema(value_type = Object)]
    pub first_response: serde_json::Value,
    #[schema(value_type = Object)]
    pub resolution: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub update: Option<serde_json::Value>,
}

#[utoipa::path(post, path = "/api/v1/slas/{id}/clock-preview", tag = "service_level", params(("id" = String, Path)), request_body = ClockPreviewBody,
    description = "Runs a ticket history through the SLA's business calendar, targets and pause statuses and returns its clocks: due times, paused time, warnings and breaches.",
    responses((status = 200, body = ClockReport), Unauthorized, JsonBodyErrors, NotFound))]
async fn clock_preview(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ClockPreviewBody>,
) -> ApiResponse {
    let input = ClockPreviewInput {
        priority: b.priority,
        created_at: b.created_at,
        initial_status: b.initial_status,
        status_changes: b.status_changes.into_iter().map(|c| (c.at, c.status)).collect(),
        priority_changes: b.priority_changes.into_iter().map(|c| (c.at, c.priority)).collect(),
        first_response_at: b.first_response_at,
        public_updates: b.public_updates,
        now: b.now,
    };
    let r = s.app.sla_clock_preview(&who.principal, &id, &input).await?;
    let v = |c: &keel_domain::sla::TargetClock| serde_json::to_value(c).unwrap_or_default();
    Ok(axum::Json(ClockReport {
        as_of: r.as_of.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        status: r.status.clone(),
        priority: r.priority.as_str().into(),
        first_response: v(&r.first_response),
        resolution: v(&r.resolution),
        update: r.update.as_ref().map(v),
    })
    .into_response_ok())
}

// ---------------------------------------------------------------- OLAs and underpinning contracts

/// An OLA (运营级别协议) with an internal group, or an underpinning contract (支持合同) with a
/// supplier, linked to the SLAs whose targets it supports.
#[derive(Serialize, ToSchema)]
pub struct SupportAgreement {
    pub id: String,
    /// `ola` or `contract`.
    pub kind: String,
    pub name: String,
    pub description: Option<String>,
    /// OLA: the internal group.
    pub provider_team_id: Option<String>,
    /// Underpinning contract: the supplier.
    pub supplier_name: Option<String>,
    pub supplier_contact: Option<String>,
    pub reference: Option<String>,
    /// Its own targets; never longer than those of the SLAs it supports.
    pub targets: Option<Targets>,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    pub sla_ids: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl From<SupportRecord> for SupportAgreement {
    fn from(s: SupportRecord) -> Self {
        SupportAgreement {
            id: s.id,
            kind: s.kind,
            name: s.name,
            description: s.description,
            provider_team_id: s.provider_team_id,
            supplier_name: s.supplier_name,
            supplier_contact: s.supplier_contact,
            reference: s.reference,
            targets: s.targets.map(Into::into),
            valid_from: s.valid_from,
            valid_to: s.valid_to,
            sla_ids: s.sla_ids,
            created_at: s.created_at,
            updated_at: s.updated_at,
            version: s.version,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupportBody {
    pub name: Option<String>,
    pub description: Option<String>,
    /// OLAs: required.
    pub provider_team_id: Option<String>,
    /// Underpinning contracts: required.
    pub supplier_name: Option<String>,
    pub supplier_contact: Option<String>,
    pub reference: Option<String>,
    pub targets: Option<Targets>,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    pub sla_ids: Option<Vec<String>>,
}

fn support_input(b: SupportBody, cur: Option<&SupportRecord>) -> SupportInput {
    let keep = |v: Option<String>, c: fn(&SupportRecord) -> Option<String>| v.or(cur.and_then(c));
    SupportInput {
        name: b.name.or(cur.map(|c| c.name.clone())).unwrap_or_default(),
        description: keep(b.description, |c| c.description.clone()),
        provider_team_id: keep(b.provider_team_id, |c| c.provider_team_id.clone()),
        supplier_name: keep(b.supplier_name, |c| c.supplier_name.clone()),
        supplier_contact: keep(b.supplier_contact, |c| c.supplier_contact.clone()),
        reference: keep(b.reference, |c| c.reference.clone()),
        targets: b.targets.map(Into::into).or(cur.and_then(|c| c.targets.clone())),
        valid_from: keep(b.valid_from, |c| c.valid_from.clone()),
        valid_to: keep(b.valid_to, |c| c.valid_to.clone()),
        sla_ids: b.sla_ids.or(cur.map(|c| c.sla_ids.clone())).unwrap_or_default(),
    }
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct SupportQuery {
    pub q: Option<String>,
    /// Only agreements supporting this SLA.
    pub sla_id: Option<String>,
}

async fn list_kind(s: AppState, who: crate::auth::Identity, kind: SupportKind, q: SupportQuery, pp: PageParams) -> ApiResponse {
    let page = page_request(&pp, NAME_SORTS)?;
    let r = s.app.list_support(&who.principal, kind, &SupportFilter { q: q.q, sla_id: q.sla_id }, &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(SupportAgreement::from).collect(), next_cursor: r.next_cursor })
        .into_response_ok())
}

async fn create_kind(s: AppState, who: crate::auth::Identity, kind: SupportKind, b: SupportBody, base: &str) -> ApiResponse {
    let v = s.app.create_support(&who.principal, kind, support_input(b, None)).await?;
    Ok(created(v.version, format!("{base}/{}", v.id), SupportAgreement::from(v)))
}

async fn get_kind(s: AppState, who: crate::auth::Identity, kind: SupportKind, id: String) -> ApiResponse {
    let v = s.app.get_support(&who.principal, kind, &id).await?;
    Ok(with_etag(v.version, SupportAgreement::from(v)))
}

async fn update_kind(
    s: AppState,
    who: crate::auth::Identity,
    kind: SupportKind,
    id: String,
    headers: HeaderMap,
    b: SupportBody,
) -> ApiResponse {
    let cur = s.app.get_support(&who.principal, kind, &id).await?;
    let version = if_match(&headers)?;
    let v = s.app.update_support(&who.principal, kind, &id, support_input(b, Some(&cur)), Some(version)).await?;
    Ok(with_etag(v.version, SupportAgreement::from(v)))
}

#[utoipa::path(get, path = "/api/v1/olas", tag = "service_level", params(SupportQuery, PageParams),
    responses((status = 200, body = ListOf<SupportAgreement>), Unauthorized, InvalidQuery, Forbidden))]
async fn list_olas(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<SupportQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    list_kind(s, who, SupportKind::Ola, q, pp).await
}

#[utoipa::path(post, path = "/api/v1/olas", tag = "service_level", request_body = SupportBody,
    responses((status = 201, body = SupportAgreement), Unauthorized, JsonBodyErrors, Forbidden))]
async fn create_ola(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<SupportBody>) -> ApiResponse {
    create_kind(s, who, SupportKind::Ola, b, "/api/v1/olas").await
}

#[utoipa::path(get, path = "/api/v1/olas/{id}", tag = "service_level", params(("id" = String, Path)),
    responses((status = 200, body = SupportAgreement), Unauthorized, NotFound))]
async fn get_ola(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    get_kind(s, who, SupportKind::Ola, id).await
}

#[utoipa::path(patch, path = "/api/v1/olas/{id}", tag = "service_level", params(("id" = String, Path), ("If-Match" = String, Header)), request_body = SupportBody,
    responses((status = 200, body = SupportAgreement), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn update_ola(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<SupportBody>,
) -> ApiResponse {
    update_kind(s, who, SupportKind::Ola, id, headers, b).await
}

#[utoipa::path(get, path = "/api/v1/underpinning-contracts", tag = "service_level", params(SupportQuery, PageParams),
    responses((status = 200, body = ListOf<SupportAgreement>), Unauthorized, InvalidQuery, Forbidden))]
async fn list_contracts(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<SupportQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    list_kind(s, who, SupportKind::Contract, q, pp).await
}

#[utoipa::path(post, path = "/api/v1/underpinning-contracts", tag = "service_level", request_body = SupportBody,
    responses((status = 201, body = SupportAgreement), Unauthorized, JsonBodyErrors, Forbidden))]
async fn create_contract(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<SupportBody>) -> ApiResponse {
    create_kind(s, who, SupportKind::Contract, b, "/api/v1/underpinning-contracts").await
}

#[utoipa::path(get, path = "/api/v1/underpinning-contracts/{id}", tag = "service_level", params(("id" = String, Path)),
    responses((status = 200, body = SupportAgreement), Unauthorized, NotFound))]
async fn get_contract(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    get_kind(s, who, SupportKind::Contract, id).await
}

#[utoipa::path(patch, path = "/api/v1/underpinning-contracts/{id}", tag = "service_level", params(("id" = String, Path), ("If-Match" = String, Header)), request_body = SupportBody,
    responses((status = 200, body = SupportAgreement), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn update_contract(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<SupportBody>,
) -> ApiResponse {
    update_kind(s, who, SupportKind::Contract, id, headers, b).await
}

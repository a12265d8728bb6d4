//! Service level management (§6.1): business calendars and their yearly days, the service
//! catalogue with a snapshot per version, SLAs per service project, and the OLAs and
//! underpinning contracts that support them.

use crate::directory::Scope;
use crate::page::{Page, PageRequest, fetch_page, like_pattern};
use crate::rows::RowExt;
use crate::sql::Sql;
use crate::{AnyConnection, Result, StoreError};
use keel_domain::sla::agreement::SlaTerms;
use keel_domain::sla::calendar::{DaySpec, MakeUpSpec, WeekSpec};
use keel_domain::sla::clock::PolicySpec;
use keel_domain::sla::target::TargetsSpec;
use serde::Serialize;
use sqlx::any::AnyRow;

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn from_json<T: serde::de::DeserializeOwned>(col: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Db(sqlx::Error::Decode(format!("{col}: {e}").into())))
}

fn stale_if_none(r: sqlx::any::AnyQueryResult) -> Result<()> {
    if r.rows_affected() == 0 { Err(StoreError::Stale) } else { Ok(()) }
}

async fn ids(conn: &mut AnyConnection, sql: &'static str, key: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(sql).bind(key).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| r.text("id").map_err(Into::into)).collect()
}

fn text_filter(q: &mut Sql, text: Option<&str>, cols: &[&str]) {
    if let Some(text) = text.map(str::trim).filter(|s| !s.is_empty()) {
        let pat = like_pattern(text);
        q.push(" AND (");
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                q.push(" OR ");
            }
            q.push(format!("LOWER({c}) LIKE ")).push_bind(pat.clone()).push(" ESCAPE '\\'");
        }
        q.push(")");
    }
}

// ---------------------------------------------------------------- business calendars

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CalendarRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub time_zone: String,
    pub hours: WeekSpec,
    pub make_up_hours: MakeUpSpec,
    /// Holidays and make-up working days, by date (filled by `get_calendar`, empty in lists).
    pub days: Vec<DaySpec>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

const CAL_COLS: &str = "id, name, description, time_zone, week_hours, make_up_hours, created_at, updated_at, version";

fn calendar(r: &AnyRow) -> Result<CalendarRecord> {
    Ok(CalendarRecord {
        id: r.text("id")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        time_zone: r.text("time_zone")?,
        hours: from_json("week_hours", &r.text("week_hours")?)?,
        make_up_hours: from_json("make_up_hours", &r.text("make_up_hours")?)?,
        days: vec![],
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

pub async fn insert_calendar(conn: &mut AnyConnection, c: &CalendarRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO business_calendars (id, name, description, time_zone, week_hours, make_up_hours, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1)",
    )
    .bind(&c.id)
    .bind(&c.name)
    .bind(&c.description)
    .bind(&c.time_zone)
    .bind(to_json(&c.hours))
    .bind(to_json(&c.make_up_hours))
    .bind(c.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn update_calendar(conn: &mut AnyConnection, c: &CalendarRecord, expected_version: i64) -> Result<()> {
    let r = sqlx::query(
        "UPDATE business_calendars SET name = $1, description = $2, time_zone = $3, week_hours = $4, make_up_hours = $5, updated_at = $6, \
         version = version + 1 WHERE id = $7 AND version = $8",
    )
    .bind(&c.name)
    .bind(&c.description)
    .bind(&c.time_zone)
    .bind(to_json(&c.hours))
    .bind(to_json(&c.make_up_hours))
    .bind(c.updated_at)
    .bind(&c.id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?;
    stale_if_none(r)
}

/// Replaces the days of the given years (all of them when `years` is `None`) with `days`.
pub async fn replace_calendar_days(conn: &mut AnyConnection, calendar_id: &str, years: Option<&[i32]>, days: &[DaySpec]) -> Result<()> {
    match years {
        None => {
            sqlx::query("DELETE FROM calendar_days WHERE calendar_id = $1").bind(calendar_id).execute(&mut *conn).await?;
        }
        Some(years) => {
            for y in years {
                sqlx::query("DELETE FROM calendar_days WHERE calendar_id = $1 AND year = $2")
                    .bind(calendar_id)
                    .bind(i64::from(*y))
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    for d in days {
        let year: i64 = d.date.get(..4).and_then(|y| y.parse().ok()).unwrap_or_default();
        sqlx::query("INSERT INTO calendar_days (calendar_id, on_date, year, kind, name) VALUES ($1, $2, $3, $4, $5)")
            .bind(calendar_id)
            .bind(&d.date)
            .bind(year)
            .bind(&d.kind)
            .bind(&d.name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Marks the calendar changed (its days are part of it) under optimistic concurrency.
pub async fn touch_calendar(conn: &mut AnyConnection, id: &str, expected_version: i64, now: i64) -> Result<()> {
    let r = sqlx::query("UPDATE business_calendars SET updated_at = $1, version = version + 1 WHERE id = $2 AND version = $3")
        .bind(now)
        .bind(id)
        .bind(expected_version)
        .execute(&mut *conn)
        .await?;
    stale_if_none(r)
}

/// Deletes a calendar at the given version; `ForeignKey` when a service or SLA still uses it.
pub async fn delete_calendar(conn: &mut AnyConnection, id: &str, expected_version: i64) -> Result<()> {
    let r = sqlx::query("DELETE FROM business_calendars WHERE id = $1 AND version = $2")
        .bind(id)
        .bind(expected_version)
        .execute(&mut *conn)
        .await?;
    stale_if_none(r)
}

pub async fn get_calendar(conn: &mut AnyConnection, id: &str) -> Result<Option<CalendarRecord>> {
    let q = format!("SELECT {CAL_COLS} FROM business_calendars WHERE id = $1");
    let Some(r) = sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let mut c = calendar(&r)?;
    let rows = sqlx::query("SELECT on_date, kind, name FROM calendar_days WHERE calendar_id = $1 ORDER BY on_date")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    c.days = rows
        .iter()
        .map(|r| Ok(DaySpec { date: r.text("on_date")?, kind: r.text("kind")?, name: r.opt_text("name")? }))
        .collect::<Result<_>>()?;
    Ok(Some(c))
}

pub async fn list_calendars(conn: &mut AnyConnection, text: Option<&str>, p: &PageRequest) -> Result<Page<CalendarRecord>> {
    let mut q = Sql::new(format!("SELECT {CAL_COLS} FROM business_calendars WHERE 1 = 1"));
    text_filter(&mut q, text, &["name"]);
    fetch_page(conn, q, "id", p, calendar).await
}

// ---------------------------------------------------------------- service catalogue

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceRecord {
    pub id: String,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub service_line: String,
    /// Service targets or standards (服务目标或标准), as agreed prose.
    pub targets: Option<String>,
    /// Availability target in percent, e.g. `99.9`.
    pub availability_target: Option<String>,
    pub contact_points: Option<String>,
    /// The business calendar of its service hours.
    pub calendar_id: Option<String>,
    pub service_hours: Option<String>,
    pub exceptions: Option<String>,
    pub security: Option<String>,
    pub depends_on: Vec<String>,
    /// Configuration items it depends on (CMDB ids).
    pub ci_ids: Vec<String>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

const SERVICE_COLS: &str = "id, code, name, description, service_line, targets, availability_target, contact_points, calendar_id, \
     service_hours, exceptions, security, ci_ids, status, created_at, updated_at, version";

fn service(r: &AnyRow) -> Result<ServiceRecord> {
    Ok(ServiceRecord {
        id: r.text("id")?,
        code: r.text("code")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        service_line: r.text("service_line")?,
        targets: r.opt_text("targets")?,
        availability_target: r.opt_text("availability_target")?,
        contact_points: r.opt_text("contact_points")?,
        calendar_id: r.opt_text("calendar_id")?,
        service_hours: r.opt_text("service_hours")?,
        exceptions: r.opt_text("exceptions")?,
        security: r.opt_text("security")?,
        depends_on: vec![],
        ci_ids: from_json("ci_ids", &r.text("ci_ids")?)?,
        status: r.text("status")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

async fn service_details(conn: &mut AnyConnection, mut s: ServiceRecord) -> Result<ServiceRecord> {
    fill_service_details(conn, std::slice::from_mut(&mut s)).await?;
    Ok(s)
}

/// What many services depend on, in one statement, each service's by id.
async fn fill_service_details(conn: &mut AnyConnection, services: &mut [ServiceRecord]) -> Result<()> {
    if services.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = services.iter().map(|s| s.id.clone()).collect();
    let mut deps =
        crate::sql::grouped(conn, "SELECT service_id AS k, depends_on_id AS v FROM service_dependencies WHERE service_id IN ", &ids)
            .await?;
    for s in services {
        s.depends_on = deps.remove(&s.id).unwrap_or_default();
    }
    Ok(())
}

async fn set_dependencies(conn: &mut AnyConnection, s: &ServiceRecord) -> Result<()> {
    sqlx::query("DELETE FROM service_dependencies WHERE service_id = $1").bind(&s.id).execute(&mut *conn).await?;
    for d in &s.depends_on {
        sqlx::query("INSERT INTO service_dependencies (service_id, depends_on_id) VALUES ($1, $2)")
            .bind(&s.id)
            .bind(d)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn insert_service(conn: &mut AnyConnection, s: &ServiceRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO services (id, code, name, description, service_line, targets, availability_target, contact_points, calendar_id, \
         service_hours, exceptions, security, ci_ids, status, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, 1)",
    )
    .bind(&s.id)
    .bind(&s.code)
    .bind(&s.name)
    .bind(&s.description)
    .bind(&s.service_line)
    .bind(&s.targets)
    .bind(&s.availability_target)
    .bind(&s.contact_points)
    .bind(&s.calendar_id)
    .bind(&s.service_hours)
    .bind(&s.exceptions)
    .bind(&s.security)
    .bind(to_json(&s.ci_ids))
    .bind(&s.status)
    .bind(s.created_at)
    .execute(&mut *conn)
    .await?;
    set_dependencies(conn, s).await
}

pub async fn update_service(conn: &mut AnyConnection, s: &ServiceRecord, expected_version: i64) -> Result<()> {
    let r = sqlx::query(
        "UPDATE services SET code = $1, name = $2, description = $3, service_line = $4, targets = $5, availability_target = $6, \
         contact_points = $7, calendar_id = $8, service_hours = $9, exceptions = $10, security = $11, ci_ids = $12, status = $13, \
         updated_at = $14, version = version + 1 WHERE id = $15 AND version = $16",
    )
    .bind(&s.code)
    .bind(&s.name)
    .bind(&s.description)
    .bind(&s.service_line)
    .bind(&s.targets)
    .bind(&s.availability_target)
    .bind(&s.contact_points)
    .bind(&s.calendar_id)
    .bind(&s.service_hours)
    .bind(&s.exceptions)
    .bind(&s.security)
    .bind(to_json(&s.ci_ids))
    .bind(&s.status)
    .bind(s.updated_at)
    .bind(&s.id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?;
    stale_if_none(r)?;
    set_dependencies(conn, s).await
}

pub async fn get_service(conn: &mut AnyConnection, id: &str) -> Result<Option<ServiceRecord>> {
    let q = format!("SELECT {SERVICE_COLS} FROM services WHERE id = $1");
    match sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await? {
        Some(r) => Ok(Some(service_details(conn, service(&r)?).await?)),
        None => Ok(None),
    }
}

/// Every catalogue service, by code: id, code and name (the options of the service selects).
pub async fn service_choices(conn: &mut AnyConnection) -> Result<Vec<(String, String, String)>> {
    let rows = sqlx::query("SELECT id, code, name FROM services ORDER BY code, id").fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((r.text("id")?, r.text("code")?, r.text("name")?))).collect()
}

#[derive(Debug, Clone, Default)]
pub struct ServiceFilter {
    pub q: Option<String>,
    pub status: Option<String>,
    pub service_line: Option<String>,
    /// Only the services the SLAs of this customer organisation include (a contact's view).
    pub organization_id: Option<String>,
}

pub async fn list_services(conn: &mut AnyConnection, f: &ServiceFilter, p: &PageRequest) -> Result<Page<ServiceRecord>> {
    let mut q = Sql::new(format!("SELECT {SERVICE_COLS} FROM services WHERE 1 = 1"));
    if let Some(o) = &f.organization_id {
        q.push(" AND id IN (SELECT ss.service_id FROM sla_services ss JOIN slas s ON s.id = ss.sla_id WHERE s.organization_id = ")
            .push_bind(o.clone())
            .push(")");
    }
    if let Some(s) = &f.status {
        q.push(" AND status = ").push_bind(s.clone());
    }
    if let Some(s) = &f.service_line {
        q.push(" AND service_line = ").push_bind(s.clone());
    }
    text_filter(&mut q, f.q.as_deref(), &["name", "code"]);
    let mut page = fetch_page(conn, q, "id", p, service).await?;
    fill_service_details(conn, &mut page.items).await?;
    Ok(page)
}

/// Whether a customer organisation's SLAs include a service.
pub async fn service_is_included_for(conn: &mut AnyConnection, service_id: &str, organization_id: &str) -> Result<bool> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n FROM sla_services ss JOIN slas s ON s.id = ss.sla_id WHERE ss.service_id = $1 AND s.organization_id = $2",
    )
    .bind(service_id)
    .bind(organization_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(r.int("n")? > 0)
}

/// The services that (directly) depend on `service_id`.
pub async fn dependants_of(conn: &mut AnyConnection, service_id: &str) -> Result<Vec<String>> {
    ids(conn, "SELECT service_id AS id FROM service_dependencies WHERE depends_on_id = $1 ORDER BY service_id", service_id).await
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceVersion {
    pub version: i64,
    pub snapshot: serde_json::Value,
    pub changed_by: String,
    pub changed_at: i64,
}

pub async fn insert_service_version(conn: &mut AnyConnection, service_id: &str, v: &ServiceVersion) -> Result<()> {
    sqlx::query("INSERT INTO service_versions (service_id, version, snapshot, changed_by, changed_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(service_id)
        .bind(v.version)
        .bind(v.snapshot.to_string())
        .bind(&v.changed_by)
        .bind(v.changed_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn service_versions(conn: &mut AnyConnection, service_id: &str) -> Result<Vec<ServiceVersion>> {
    let rows = sqlx::query("SELECT version, snapshot, changed_by, changed_at FROM service_versions WHERE service_id = $1 ORDER BY version")
        .bind(service_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ServiceVersion {
                version: r.int("version")?,
                snapshot: from_json("snapshot", &r.text("snapshot")?)?,
                changed_by: r.text("changed_by")?,
                changed_at: r.int("changed_at")?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------- SLAs

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SlaRecord {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub organization_id: String,
    pub calendar_id: String,
    pub status: String,
    pub targets: TargetsSpec,
    pub clock_policy: PolicySpec,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    pub review_on: Option<String>,
    pub workload_min: Option<i64>,
    pub workload_max: Option<i64>,
    pub workload_unit: Option<String>,
    pub max_outage_minutes: Option<i64>,
    pub max_degraded_minutes: Option<i64>,
    pub degraded_level: Option<String>,
    #[serde(flatten)]
    pub terms: SlaTerms,
    pub service_ids: Vec<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

const SLA_COLS: &str = "id, name, project_id, organization_id, calendar_id, status, targets, clock_policy, valid_from, valid_to, review_on, \
     workload_min, workload_max, workload_unit, max_outage_minutes, max_degraded_minutes, degraded_level, terms, approved_by, approved_at, \
     activated_at, created_at, updated_at, version";

fn sla(r: &AnyRow) -> Result<SlaRecord> {
    Ok(SlaRecord {
        id: r.text("id")?,
        name: r.text("name")?,
        project_id: r.text("project_id")?,
        organization_id: r.text("organization_id")?,
        calendar_id: r.text("calendar_id")?,
        status: r.text("status")?,
        targets: from_json("targets", &r.text("targets")?)?,
        clock_policy: from_json("clock_policy", &r.text("clock_policy")?)?,
        valid_from: r.opt_text("valid_from")?,
        valid_to: r.opt_text("valid_to")?,
        review_on: r.opt_text("review_on")?,
        workload_min: r.opt_int("workload_min")?,
        workload_max: r.opt_int("workload_max")?,
        workload_unit: r.opt_text("workload_unit")?,
        max_outage_minutes: r.opt_int("max_outage_minutes")?,
        max_degraded_minutes: r.opt_int("max_degraded_minutes")?,
        degraded_level: r.opt_text("degraded_level")?,
        terms: from_json("terms", &r.text("terms")?)?,
        service_ids: vec![],
        approved_by: r.opt_text("approved_by")?,
        approved_at: r.opt_int("approved_at")?,
        activated_at: r.opt_int("activated_at")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

async fn sla_details(conn: &mut AnyConnection, mut s: SlaRecord) -> Result<SlaRecord> {
    fill_sla_details(conn, std::slice::from_mut(&mut s)).await?;
    Ok(s)
}

/// The services of many SLAs, in one statement, each SLA's by id.
async fn fill_sla_details(conn: &mut AnyConnection, slas: &mut [SlaRecord]) -> Result<()> {
    if slas.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = slas.iter().map(|s| s.id.clone()).collect();
    let mut services = crate::sql::grouped(conn, "SELECT sla_id AS k, service_id AS v FROM sla_services WHERE sla_id IN ", &ids).await?;
    for s in slas {
        s.service_ids = services.remove(&s.id).unwrap_or_default();
    }
    Ok(())
}

async fn set_sla_services(conn: &mut AnyConnection, s: &SlaRecord) -> Result<()> {
    sqlx::query("DELETE FROM sla_services WHERE sla_id = $1").bind(&s.id).execute(&mut *conn).await?;
    for id in &s.service_ids {
        sqlx::query("INSERT INTO sla_services (sla_id, service_id) VALUES ($1, $2)").bind(&s.id).bind(id).execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn insert_sla(conn: &mut AnyConnection, s: &SlaRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO slas (id, name, project_id, organization_id, calendar_id, status, targets, clock_policy, valid_from, valid_to, review_on, \
         workload_min, workload_max, workload_unit, max_outage_minutes, max_degraded_minutes, degraded_level, terms, approved_by, approved_at, \
         activated_at, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $22, 1)",
    )
    .bind(&s.id)
    .bind(&s.name)
    .bind(&s.project_id)
    .bind(&s.organization_id)
    .bind(&s.calendar_id)
    .bind(&s.status)
    .bind(to_json(&s.targets))
    .bind(to_json(&s.clock_policy))
    .bind(&s.valid_from)
    .bind(&s.valid_to)
    .bind(&s.review_on)
    .bind(s.workload_min)
    .bind(s.workload_max)
    .bind(&s.workload_unit)
    .bind(s.max_outage_minutes)
    .bind(s.max_degraded_minutes)
    .bind(&s.degraded_level)
    .bind(to_json(&s.terms))
    .bind(&s.approved_by)
    .bind(s.approved_at)
    .bind(s.activated_at)
    .bind(s.created_at)
    .execute(&mut *conn)
    .await?;
    set_sla_services(conn, s).await
}

pub async fn update_sla(conn: &mut AnyConnection, s: &SlaRecord, expected_version: i64) -> Result<()> {
    let r = sqlx::query(
        "UPDATE slas SET name = $1, calendar_id = $2, status = $3, targets = $4, clock_policy = $5, valid_from = $6, valid_to = $7, \
         review_on = $8, workload_min = $9, workload_max = $10, workload_unit = $11, max_outage_minutes = $12, max_degraded_minutes = $13, \
         degraded_level = $14, terms = $15, approved_by = $16, approved_at = $17, activated_at = $18, updated_at = $19, version = version + 1 \
         WHERE id = $20 AND version = $21",
    )
    .bind(&s.name)
    .bind(&s.calendar_id)
    .bind(&s.status)
    .bind(to_json(&s.targets))
    .bind(to_json(&s.clock_policy))
    .bind(&s.valid_from)
    .bind(&s.valid_to)
    .bind(&s.review_on)
    .bind(s.workload_min)
    .bind(s.workload_max)
    .bind(&s.workload_unit)
    .bind(s.max_outage_minutes)
    .bind(s.max_degraded_minutes)
    .bind(&s.degraded_level)
    .bind(to_json(&s.terms))
    .bind(&s.approved_by)
    .bind(s.approved_at)
    .bind(s.activated_at)
    .bind(s.updated_at)
    .bind(&s.id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?;
    stale_if_none(r)?;
    set_sla_services(conn, s).await
}

pub async fn get_sla(conn: &mut AnyConnection, id: &str) -> Result<Option<SlaRecord>> {
    let q = format!("SELECT {SLA_COLS} FROM slas WHERE id = $1");
    match sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await? {
        Some(r) => Ok(Some(sla_details(conn, sla(&r)?).await?)),
        None => Ok(None),
    }
}

#[derive(Debug, Clone, Default)]
pub struct SlaFilter {
    pub q: Option<String>,
    pub project_id: Option<String>,
    pub status: Option<String>,
    /// Only SLAs with a review date on or before this date (`YYYY-MM-DD`): the review cycle.
    pub review_due_by: Option<String>,
}

pub async fn list_slas(conn: &mut AnyConnection, scope: &Scope, f: &SlaFilter, p: &PageRequest) -> Result<Page<SlaRecord>> {
    let mut q = Sql::new(format!("SELECT {SLA_COLS} FROM slas WHERE 1 = 1"));
    if let Some(o) = &scope.organization_id {
        q.push(" AND organization_id = ").push_bind(o.clone());
    }
    if let Some(projects) = &scope.project_ids {
        q.push(" AND project_id IN ").push_list(projects);
    }
    if let Some(pid) = &f.project_id {
        q.push(" AND project_id = ").push_bind(pid.clone());
    }
    if let Some(s) = &f.status {
        q.push(" AND status = ").push_bind(s.clone());
    }
    if let Some(d) = &f.review_due_by {
        q.push(" AND review_on IS NOT NULL AND review_on <= ").push_bind(d.clone());
    }
    text_filter(&mut q, f.q.as_deref(), &["name"]);
    let mut page = fetch_page(conn, q, "id", p, sla).await?;
    fill_sla_details(conn, &mut page.items).await?;
    Ok(page)
}

// ---------------------------------------------------------------- OLAs and underpinning contracts

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SupportRecord {
    pub id: String,
    /// `ola` or `contract`.
    pub kind: String,
    pub name: String,
    pub description: Option<String>,
    /// OLA: the internal group that commits to the targets.
    pub provider_team_id: Option<String>,
    /// Underpinning contract: the supplier and how to reach them.
    pub supplier_name: Option<String>,
    pub supplier_contact: Option<String>,
    /// Contract or document reference.
    pub reference: Option<String>,
    pub targets: Option<TargetsSpec>,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    /// The SLAs whose targets it supports.
    pub sla_ids: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

const SUPPORT_COLS: &str = "id, kind, name, description, provider_team_id, supplier_name, supplier_contact, reference, targets, valid_from, \
     valid_to, created_at, updated_at, version";

fn support(r: &AnyRow) -> Result<SupportRecord> {
    Ok(SupportRecord {
        id: r.text("id")?,
        kind: r.text("kind")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        provider_team_id: r.opt_text("provider_team_id")?,
        supplier_name: r.opt_text("supplier_name")?,
        supplier_contact: r.opt_text("supplier_contact")?,
        reference: r.opt_text("reference")?,
        targets: r.opt_text("targets")?.map(|t| from_json("targets", &t)).transpose()?,
        valid_from: r.opt_text("valid_from")?,
        valid_to: r.opt_text("valid_to")?,
        sla_ids: vec![],
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

async fn support_details(conn: &mut AnyConnection, mut s: SupportRecord) -> Result<SupportRecord> {
    fill_support_details(conn, std::slice::from_mut(&mut s)).await?;
    Ok(s)
}

/// The SLAs many OLAs or contracts support, in one statement, each one's by id.
async fn fill_support_details(conn: &mut AnyConnection, items: &mut [SupportRecord]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = items.iter().map(|s| s.id.clone()).collect();
    let mut slas =
        crate::sql::grouped(conn, "SELECT agreement_id AS k, sla_id AS v FROM support_agreement_slas WHERE agreement_id IN ", &ids).await?;
    for s in items {
        s.sla_ids = slas.remove(&s.id).unwrap_or_default();
    }
    Ok(())
}

async fn set_support_slas(conn: &mut AnyConnection, s: &SupportRecord) -> Result<()> {
    sqlx::query("DELETE FROM support_agreement_slas WHERE agreement_id = $1").bind(&s.id).execute(&mut *conn).await?;
    for id in &s.sla_ids {
        sqlx::query("INSERT INTO support_agreement_slas (agreement_id, sla_id) VALUES ($1, $2)")
            .bind(&s.id)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn insert_support(conn: &mut AnyConnection, s: &SupportRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO support_agreements (id, kind, name, description, provider_team_id, supplier_name, supplier_contact, reference, targets, \
         valid_from, valid_to, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, 1)",
    )
    .bind(&s.id)
    .bind(&s.kind)
    .bind(&s.name)
    .bind(&s.description)
    .bind(&s.provider_team_id)
    .bind(&s.supplier_name)
    .bind(&s.supplier_contact)
    .bind(&s.reference)
    .bind(s.targets.as_ref().map(to_json))
    .bind(&s.valid_from)
    .bind(&s.valid_to)
    .bind(s.created_at)
    .execute(&mut *conn)
    .await?;
    set_support_slas(conn, s).await
}

pub async fn update_support(conn: &mut AnyConnection, s: &SupportRecord, expected_version: i64) -> Result<()> {
    let r = sqlx::query(
        "UPDATE support_agreements SET name = $1, description = $2, provider_team_id = $3, supplier_name = $4, supplier_contact = $5, \
         reference = $6, targets = $7, valid_from = $8, valid_to = $9, updated_at = $10, version = version + 1 WHERE id = $11 AND version = $12",
    )
    .bind(&s.name)
    .bind(&s.description)
    .bind(&s.provider_team_id)
    .bind(&s.supplier_name)
    .bind(&s.supplier_contact)
    .bind(&s.reference)
    .bind(s.targets.as_ref().map(to_json))
    .bind(&s.valid_from)
    .bind(&s.valid_to)
    .bind(s.updated_at)
    .bind(&s.id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?;
    stale_if_none(r)?;
    set_support_slas(conn, s).await
}

pub async fn get_support(conn: &mut AnyConnection, id: &str) -> Result<Option<SupportRecord>> {
    let q = format!("SELECT {SUPPORT_COLS} FROM support_agreements WHERE id = $1");
    match sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await? {
        Some(r) => Ok(Some(support_details(conn, support(&r)?).await?)),
        None => Ok(None),
    }
}

#[derive(Debug, Clone, Default)]
pub struct SupportFilter {
    pub q: Option<String>,
    pub sla_id: Option<String>,
}

pub async fn list_support(conn: &mut AnyConnection, kind: &str, f: &SupportFilter, p: &PageRequest) -> Result<Page<SupportRecord>> {
    let mut q = Sql::new(format!("SELECT {SUPPORT_COLS} FROM support_agreements WHERE kind = "));
    q.push_bind(kind);
    if let Some(s) = &f.sla_id {
        q.push(" AND id IN (SELECT agreement_id FROM support_agreement_slas WHERE sla_id = ").push_bind(s.clone()).push(")");
    }
    text_filter(&mut q, f.q.as_deref(), &["name", "supplier_name"]);
    let mut page = fetch_page(conn, q, "id", p, support).await?;
    fill_support_details(conn, &mut page.items).await?;
    Ok(page)
}

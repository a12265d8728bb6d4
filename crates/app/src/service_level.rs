//! Service level management (§6.1): business calendars (工作日历) with yearly holidays and
//! make-up working days, the service catalogue (服务目录), SLAs (服务级别协议) per service project
//! with their approval lifecycle, OLAs (运营级别协议) and underpinning contracts (支持合同), and
//! the SLA clock preview that incidents will use.
//!
//! Who may do what: the service department manager (and administrators) keep calendars, the
//! catalogue, SLAs and supporting agreements; only the service department manager approves an
//! SLA. Staff read calendars, the catalogue and supporting agreements; project staff read the
//! SLAs of their projects; customer contacts read their organisation's SLAs and the catalogue
//! entries those SLAs include. Everything else answers NotFound.

use crate::directory::scope_of;
use crate::writer::snapshot;
use crate::{App, AppError, Principal, Result};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use keel_domain::FieldError;
use keel_domain::audit::AuditAction;
use keel_domain::error::{DomainError, Errors};
use keel_domain::identity::{AccountKind, Role};
use keel_domain::process::Process;
use keel_domain::sla::agreement::{ServiceLine, ServiceStatus, SlaAction, SlaStatus, SlaTerms, SupportKind, check_supports};
use keel_domain::sla::calendar::{CalendarSpec, DaySpec, MakeUpSpec, WeekSpec};
use keel_domain::sla::calendar_io;
use keel_domain::sla::china::{CHINA_MAINLAND_YEARS, CHINA_OFFICE_HOURS, china_mainland_days};
use keel_domain::sla::target::TargetsSpec;
use keel_domain::sla::{BusinessCalendar, CalendarDay, ClockContext, ClockPolicy, Priority, SlaReport, SlaTargets, TicketHistory};
use keel_domain::validate;
use keel_store::page::{Page, PageRequest};
use keel_store::service_level::{
    self as store, CalendarRecord, ServiceFilter, ServiceRecord, ServiceVersion, SlaFilter, SlaRecord, SupportFilter, SupportRecord,
};

/// Keepers of calendars, the catalogue, SLAs and supporting agreements.
pub fn may_manage(actor: &Principal) -> bool {
    !actor.is_read_only() && (actor.has(Role::ServiceManager) || actor.is_admin())
}

/// Only the service department manager approves SLAs (§6.1.5).
pub fn may_approve(actor: &Principal) -> bool {
    !actor.is_read_only() && actor.has(Role::ServiceManager)
}

fn require_manage(actor: &Principal) -> Result<()> {
    if may_manage(actor) { Ok(()) } else { Err(AppError::Forbidden) }
}

/// A unique index reported under the form field it guards.
fn unique_as(field: &str) -> impl Fn(keel_store::StoreError) -> AppError + '_ {
    move |e| match AppError::from(e) {
        AppError::Validation(mut f) if f.len() == 1 && f[0].code == "already_taken" => {
            f[0].field = field.to_string();
            AppError::Validation(f)
        }
        other => other,
    }
}

fn check_date(field: &str, v: Option<&str>, errs: &mut Errors) -> Option<String> {
    let v = v.map(str::trim).filter(|s| !s.is_empty())?;
    match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        Ok(d) => Some(d.to_string()),
        Err(_) => {
            errs.push(FieldError::new(field, "invalid_date", "use the form YYYY-MM-DD"));
            None
        }
    }
}

fn check_range(from_field: &str, from: &Option<String>, to_field: &str, to: &Option<String>, errs: &mut Errors) {
    let _ = from_field;
    if let (Some(f), Some(t)) = (from, to)
        && t < f
    {
        errs.push(FieldError::new(to_field, "ends_before_start", "the end must come after the start"));
    }
}

fn opt_text(field: &str, v: &Option<String>, max: usize, errs: &mut Errors) -> Option<String> {
    errs.check(validate::optional_text(field, v.as_deref(), max)).flatten()
}

fn non_negative(field: &str, v: Option<i64>, errs: &mut Errors) -> Option<i64> {
    match v {
        Some(n) if n < 0 => {
            errs.push(FieldError::new(field, "out_of_range", "must not be negative"));
            None
        }
        other => other,
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.retain(|s| !s.trim().is_empty());
    v.sort();
    v.dedup();
    v
}

fn targets_of(field: &str, spec: &TargetsSpec) -> Result<SlaTargets> {
    SlaTargets::from_spec(spec).map_err(|e| prefix(field, e))
}

/// Puts a nested value's field errors under the field that holds it.
fn prefix(field: &str, e: DomainError) -> AppError {
    match e {
        DomainError::Invalid(list) => AppError::Validation(
            list.into_iter()
                .map(|f| {
                    let name = if f.field.starts_with(field) { f.field } else { format!("{field}.{}", f.field) };
                    FieldError { field: name, ..f }
                })
                .collect(),
        ),
        other => other.into(),
    }
}

// ---------------------------------------------------------------- calendars

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CalendarInput {
    pub name: String,
    pub description: Option<String>,
    pub time_zone: String,
    pub hours: WeekSpec,
    /// Defaults to Monday's hours.
    pub make_up_hours: Option<MakeUpSpec>,
}

/// A yearly holiday file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CalendarFormat {
    Csv,
    Ics,
}

fn day_spec(d: &CalendarDay) -> DaySpec {
    DaySpec { date: d.date.to_string(), kind: d.kind.as_str().to_string(), name: d.name.clone() }
}

/// Builds the domain calendar a stored one describes.
pub fn business_calendar(c: &CalendarRecord) -> Result<BusinessCalendar> {
    let spec = CalendarSpec {
        time_zone: c.time_zone.clone(),
        hours: c.hours.clone(),
        make_up_hours: c.make_up_hours.clone(),
        days: c.days.clone(),
    };
    Ok(BusinessCalendar::from_spec(&spec)?)
}

/// The calendar with all of its days, for the audit trail.
fn calendar_snapshot(c: &CalendarRecord) -> serde_json::Value {
    let mut v = snapshot(c);
    v["days"] = serde_json::json!(
        c.days.iter().map(|d| format!("{} {} {}", d.date, d.kind, d.name.clone().unwrap_or_default())).collect::<Vec<_>>()
    );
    v
}

fn check_year(year: i32) -> Result<()> {
    if (1900..=9999).contains(&year) {
        Ok(())
    } else {
        Err(AppError::field("year", "out_of_range", "the year must be between 1900 and 9999"))
    }
}

impl App {
    fn check_calendar(&self, input: &CalendarInput, days: &[DaySpec]) -> Result<(String, Option<String>, BusinessCalendar)> {
        let mut errs = Errors::new();
        let name = errs.check(validate::required_text("name", &input.name, 200));
        let description = opt_text("description", &input.description, 4000, &mut errs);
        let spec = CalendarSpec {
            time_zone: input.time_zone.trim().to_string(),
            hours: input.hours.clone(),
            make_up_hours: input.make_up_hours.clone().unwrap_or_default(),
            days: days.to_vec(),
        };
        let cal = match BusinessCalendar::from_spec(&spec) {
            Ok(c) => Some(c),
            Err(DomainError::Invalid(list)) => {
                for f in list {
                    errs.push(f);
                }
                None
            }
            Err(e) => return Err(e.into()),
        };
        errs.finish()?;
        match (name, cal) {
            (Some(n), Some(c)) => Ok((n, description, c)),
            _ => Err(AppError::Internal("calendar validation".into())),
        }
    }

    pub async fn create_calendar(&self, actor: &Principal, input: CalendarInput) -> Result<CalendarRecord> {
        require_manage(actor)?;
        let (name, description, cal) = self.check_calendar(&input, &[])?;
        self.insert_calendar(actor, name, description, cal).await
    }

    async fn insert_calendar(
        &self,
        actor: &Principal,
        name: String,
        description: Option<String>,
        cal: BusinessCalendar,
    ) -> Result<CalendarRecord> {
        let spec = cal.to_spec();
        let mut w = self.write(actor).await?;
        let rec = CalendarRecord {
            id: keel_store::new_id(),
            name,
            description,
            time_zone: spec.time_zone,
            hours: spec.hours,
            make_up_hours: spec.make_up_hours,
            days: spec.days,
            created_at: w.now,
            updated_at: w.now,
            version: 1,
        };
        store::insert_calendar(&mut w.tx, &rec).await.map_err(unique_as("name"))?;
        store::replace_calendar_days(&mut w.tx, &rec.id, None, &rec.days).await?;
        w.record("business_calendar", &rec.id, AuditAction::Create, None, Some(&calendar_snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    /// A mainland China calendar (Asia/Shanghai, Monday–Friday 09:00–12:00 and 13:30–18:00) with
    /// the official holidays and make-up working days of every year Keel ships.
    pub async fn create_china_calendar(&self, actor: &Principal, name: &str) -> Result<CalendarRecord> {
        require_manage(actor)?;
        let name = validate::required_text("name", name, 200).map_err(|e| AppError::Validation(vec![e]))?;
        let cal = BusinessCalendar::china_mainland(CHINA_MAINLAND_YEARS)?;
        self.insert_calendar(actor, name, Some(format!("中国大陆 / mainland China, {CHINA_OFFICE_HOURS}")), cal).await
    }

    pub async fn get_calendar(&self, actor: &Principal, id: &str) -> Result<CalendarRecord> {
        if !actor.is_staff() {
            return Err(AppError::NotFound);
        }
        let mut c = self.read().await?;
        store::get_calendar(&mut c, id).await?.ok_or(AppError::NotFound)
    }

    pub async fn list_calendars(&self, actor: &Principal, q: Option<&str>, page: &PageRequest) -> Result<Page<CalendarRecord>> {
        if !actor.is_staff() {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        Ok(store::list_calendars(&mut c, q, page).await?)
    }

    pub async fn update_calendar(
        &self,
        actor: &Principal,
        id: &str,
        input: CalendarInput,
        expected_version: Option<i64>,
    ) -> Result<CalendarRecord> {
        let before = self.get_calendar(actor, id).await?;
        require_manage(actor)?;
        let (name, description, cal) = self.check_calendar(&input, &before.days)?;
        let spec = cal.to_spec();
        let mut w = self.write(actor).await?;
        let after = CalendarRecord {
            name,
            description,
            time_zone: spec.time_zone,
            hours: spec.hours,
            make_up_hours: spec.make_up_hours,
            updated_at: w.now,
            ..before.clone()
        };
        store::update_calendar(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await.map_err(unique_as("name"))?;
        w.record("business_calendar", id, AuditAction::Update, Some(&calendar_snapshot(&before)), Some(&calendar_snapshot(&after))).await?;
        crate::sla_clocks::enqueue_recompute(&mut w.tx, serde_json::json!({ "calendar_id": id }), w.now).await?;
        let fresh = store::get_calendar(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Deletes a calendar no service or SLA uses.
    pub async fn delete_calendar(&self, actor: &Principal, id: &str, expected_version: Option<i64>) -> Result<()> {
        let before = self.get_calendar(actor, id).await?;
        require_manage(actor)?;
        if expected_version.is_some_and(|v| v != before.version) {
            return Err(AppError::Stale);
        }
        let mut w = self.write(actor).await?;
        let r = store::delete_calendar(&mut w.tx, id, before.version).await;
        match r {
            Ok(()) => {}
            Err(keel_store::StoreError::ForeignKey) => {
                return Err(AppError::Conflict {
                    code: "calendar_in_use",
                    field: None,
                    message: "a service or SLA uses this calendar".into(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        w.record("business_calendar", id, AuditAction::Delete, Some(&calendar_snapshot(&before)), None).await?;
        w.commit().await?;
        Ok(())
    }

    async fn replace_year(
        &self,
        actor: &Principal,
        id: &str,
        year: i32,
        days: Vec<CalendarDay>,
        expected_version: Option<i64>,
    ) -> Result<CalendarRecord> {
        check_year(year)?;
        let before = self.get_calendar(actor, id).await?;
        require_manage(actor)?;
        let cal = business_calendar(&before)?.replace_year(year, days)?;
        let mut w = self.write(actor).await?;
        let year_days: Vec<DaySpec> = cal.days_in_year(year).iter().map(day_spec).collect();
        store::touch_calendar(&mut w.tx, id, expected_version.unwrap_or(before.version), w.now).await?;
        store::replace_calendar_days(&mut w.tx, id, Some(&[year]), &year_days).await?;
        let fresh = store::get_calendar(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        let mut after = calendar_snapshot(&fresh);
        after["imported_year"] = serde_json::json!(year);
        w.record("business_calendar", id, AuditAction::Update, Some(&calendar_snapshot(&before)), Some(&after)).await?;
        crate::sla_clocks::enqueue_recompute(&mut w.tx, serde_json::json!({ "calendar_id": id }), w.now).await?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Replaces one year's holidays and make-up working days with those of a CSV or iCalendar
    /// file. A file with any problem is refused whole, each problem naming its line.
    pub async fn import_calendar_year(
        &self,
        actor: &Principal,
        id: &str,
        year: i32,
        format: CalendarFormat,
        content: &str,
        expected_version: Option<i64>,
    ) -> Result<CalendarRecord> {
        self.get_calendar(actor, id).await?;
        require_manage(actor)?;
        let days = match format {
            CalendarFormat::Csv => calendar_io::parse_csv(content)?,
            CalendarFormat::Ics => calendar_io::parse_ics(content)?,
        };
        self.replace_year(actor, id, year, days, expected_version).await
    }

    /// Loads the official mainland China calendar of a year Keel ships (2025, 2026).
    pub async fn load_china_year(&self, actor: &Principal, id: &str, year: i32, expected_version: Option<i64>) -> Result<CalendarRecord> {
        let days = china_mainland_days(year).ok_or_else(|| {
            AppError::field(
                "year",
                "unsupported_year",
                format!("Keel ships the mainland China calendar for 2025 and 2026, not {year}; import it as CSV or ICS"),
            )
        })?;
        self.replace_year(actor, id, year, days, expected_version).await
    }

    /// One year's holidays and make-up working days as a CSV or iCalendar file.
    pub async fn export_calendar_year(&self, actor: &Principal, id: &str, year: i32, format: CalendarFormat) -> Result<String> {
        check_year(year)?;
        let rec = self.get_calendar(actor, id).await?;
        let cal = business_calendar(&rec)?;
        let days = cal.days_in_year(year);
        Ok(match format {
            CalendarFormat::Csv => calendar_io::to_csv(days),
            CalendarFormat::Ics => {
                let stamp = DateTime::from_timestamp_millis(self.now()).unwrap_or_default();
                calendar_io::to_ics(days, &rec.name, stamp)
            }
        })
    }
}

/// The years that have days in a calendar, ascending.
pub fn calendar_years(rec: &CalendarRecord) -> Vec<i32> {
    let mut y: Vec<i32> = rec.days.iter().filter_map(|d| NaiveDate::parse_from_str(&d.date, "%Y-%m-%d").ok()).map(|d| d.year()).collect();
    y.dedup();
    y
}

// ---------------------------------------------------------------- service catalogue

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ServiceInput {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub service_line: String,
    pub targets: Option<String>,
    pub availability_target: Option<String>,
    pub contact_points: Option<String>,
    pub calendar_id: Option<String>,
    pub service_hours: Option<String>,
    pub exceptions: Option<String>,
    pub security: Option<String>,
    pub depends_on: Vec<String>,
    pub ci_ids: Vec<String>,
    /// `pipeline` (default), `live` or `retired`.
    pub status: Option<String>,
}

impl App {
    async fn check_service(&self, conn: &mut sqlx::AnyConnection, id: Option<&str>, input: &ServiceInput) -> Result<ServiceRecord> {
        let mut errs = Errors::new();
        let code = errs.check(validate::code("code", &input.code, 32));
        let name = errs.check(validate::required_text("name", &input.name, 200));
        let line = errs.check(ServiceLine::parse_field("service_line", &input.service_line));
        let status = errs.check(ServiceStatus::parse_field("status", input.status.as_deref().unwrap_or("pipeline")));
        let availability = opt_text("availability_target", &input.availability_target, 20, &mut errs);
        if let Some(a) = &availability {
            let ok = a.trim_end_matches('%').trim().parse::<f64>().is_ok_and(|v| v > 0.0 && v <= 100.0);
            if !ok {
                errs.push(FieldError::new("availability_target", "out_of_range", "a percentage above 0 and at most 100, e.g. 99.9"));
            }
        }
        let calendar_id = input.calendar_id.clone().filter(|s| !s.trim().is_empty());
        if let Some(c) = &calendar_id
            && store::get_calendar(conn, c).await?.is_none()
        {
            errs.push(FieldError::new("calendar_id", "unknown_reference", "no such calendar"));
        }
        let depends_on = dedup(input.depends_on.clone());
        for d in &depends_on {
            if Some(d.as_str()) == id {
                errs.push(FieldError::new("depends_on", "dependency_cycle", "a service cannot depend on itself"));
            } else if store::get_service(conn, d).await?.is_none() {
                errs.push(FieldError::new("depends_on", "unknown_reference", format!("no service {d}")));
            }
        }
        if let Some(me) = id {
            // A new dependency must not lead back to this service.
            let mut seen = std::collections::BTreeSet::new();
            let mut stack = depends_on.clone();
            while let Some(s) = stack.pop() {
                if s == me {
                    errs.push(FieldError::new("depends_on", "dependency_cycle", "these dependencies lead back to this service"));
                    break;
                }
                if seen.insert(s.clone())
                    && let Some(rec) = store::get_service(conn, &s).await?
                {
                    stack.extend(rec.depends_on);
                }
            }
        }
        let rec = ServiceRecord {
            id: id.unwrap_or_default().to_string(),
            code: code.unwrap_or_default(),
            name: name.unwrap_or_default(),
            description: opt_text("description", &input.description, 8000, &mut errs),
            service_line: line.map(|l| l.as_str().to_string()).unwrap_or_default(),
            targets: opt_text("targets", &input.targets, 8000, &mut errs),
            availability_target: availability.map(|a| a.trim_end_matches('%').trim().to_string()),
            contact_points: opt_text("contact_points", &input.contact_points, 4000, &mut errs),
            calendar_id,
            service_hours: opt_text("service_hours", &input.service_hours, 4000, &mut errs),
            exceptions: opt_text("exceptions", &input.exceptions, 8000, &mut errs),
            security: opt_text("security", &input.security, 8000, &mut errs),
            depends_on,
            ci_ids: dedup(input.ci_ids.iter().map(|s| s.trim().to_string()).collect()),
            status: status.map(|s| s.as_str().to_string()).unwrap_or_default(),
            created_at: 0,
            updated_at: 0,
            version: 1,
        };
        errs.finish()?;
        Ok(rec)
    }

    pub async fn create_service(&self, actor: &Principal, input: ServiceInput) -> Result<ServiceRecord> {
        require_manage(actor)?;
        let mut w = self.write(actor).await?;
        let mut rec = self.check_service(&mut w.tx, None, &input).await?;
        rec.id = keel_store::new_id();
        rec.created_at = w.now;
        rec.updated_at = w.now;
        store::insert_service(&mut w.tx, &rec).await.map_err(unique_as("code"))?;
        let snap = snapshot(&rec);
        store::insert_service_version(
            &mut w.tx,
            &rec.id,
            &ServiceVersion { version: 1, snapshot: snap.clone(), changed_by: actor.user_id.clone(), changed_at: w.now },
        )
        .await?;
        w.record("service", &rec.id, AuditAction::Create, None, Some(&with_version(snap, 1))).await?;
        w.commit().await?;
        Ok(rec)
    }

    pub async fn get_service(&self, actor: &Principal, id: &str) -> Result<ServiceRecord> {
        let mut c = self.read().await?;
        let s = store::get_service(&mut c, id).await?.ok_or(AppError::NotFound)?;
        if actor.kind == AccountKind::Contact {
            let org = actor.organization_id.clone().unwrap_or_default();
            if !store::service_is_included_for(&mut c, id, &org).await? {
                return Err(AppError::NotFound);
            }
        }
        Ok(s)
    }

    /// The catalogue; a contact sees only the services their organisation's SLAs include.
    pub async fn list_services(&self, actor: &Principal, f: &ServiceFilter, page: &PageRequest) -> Result<Page<ServiceRecord>> {
        let mut f = f.clone();
        if actor.kind == AccountKind::Contact {
            f.organization_id = Some(actor.organization_id.clone().unwrap_or_default());
        }
        let mut c = self.read().await?;
        Ok(store::list_services(&mut c, &f, page).await?)
    }

    /// Changes a catalogue entry: every change is a new version of the service.
    pub async fn update_service(
        &self,
        actor: &Principal,
        id: &str,
        input: ServiceInput,
        expected_version: Option<i64>,
    ) -> Result<ServiceRecord> {
        let before = self.get_service(actor, id).await?;
        require_manage(actor)?;
        let mut w = self.write(actor).await?;
        let checked = self.check_service(&mut w.tx, Some(id), &input).await?;
        let from = ServiceStatus::parse(&before.status).unwrap_or(ServiceStatus::Pipeline);
        let to = ServiceStatus::parse(&checked.status).unwrap_or(from);
        from.check_change(to).map_err(|_| {
            AppError::field("status", "invalid_transition", format!("a {} service cannot become {}", from.as_str(), to.as_str()))
        })?;
        let after =
            ServiceRecord { id: before.id.clone(), created_at: before.created_at, updated_at: w.now, version: before.version, ..checked };
        if snapshot(&after) == snapshot(&before) {
            w.commit().await?;
            return Ok(before);
        }
        let base = expected_version.unwrap_or(before.version);
        store::update_service(&mut w.tx, &after, base).await.map_err(unique_as("code"))?;
        let version = base + 1;
        let snap = snapshot(&after);
        store::insert_service_version(
            &mut w.tx,
            id,
            &ServiceVersion { version, snapshot: snap.clone(), changed_by: actor.user_id.clone(), changed_at: w.now },
        )
        .await?;
        w.record(
            "service",
            id,
            AuditAction::Update,
            Some(&with_version(snapshot(&before), before.version)),
            Some(&with_version(snap, version)),
        )
        .await?;
        let fresh = store::get_service(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Every version of a catalogue entry, oldest first.
    pub async fn service_versions(&self, actor: &Principal, id: &str) -> Result<Vec<ServiceVersion>> {
        self.get_service(actor, id).await?;
        let mut c = self.read().await?;
        Ok(store::service_versions(&mut c, id).await?)
    }
}

/// The audit trail shows the catalogue version a change made.
fn with_version(mut v: serde_json::Value, version: i64) -> serde_json::Value {
    v["catalogue_version"] = serde_json::json!(version);
    v
}

// ---------------------------------------------------------------- SLAs

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SlaInput {
    pub name: String,
    pub project_id: String,
    pub calendar_id: String,
    pub targets: Option<TargetsSpec>,
    /// Statuses that pause the clocks; default `pending_customer`, `pending_supplier`.
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
    pub terms: SlaTerms,
    pub service_ids: Vec<String>,
}

/// A ticket history to run through an SLA's clocks.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ClockPreviewInput {
    pub priority: Priority,
    pub created_at: DateTime<Utc>,
    /// The status at creation; default `new`.
    pub initial_status: Option<String>,
    /// Later status changes, in time order.
    pub status_changes: Vec<(DateTime<Utc>, String)>,
    pub priority_changes: Vec<(DateTime<Utc>, Priority)>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub public_updates: Vec<DateTime<Utc>>,
    /// The instant to compute the clocks at; default now.
    pub now: Option<DateTime<Utc>>,
}

fn default_targets() -> TargetsSpec {
    use keel_domain::sla::PriorityTargets;
    const H: i64 = 3_600_000;
    let pt = |fr: i64, res: i64| PriorityTargets { first_response_ms: fr * H, resolution_ms: res * H, update_interval_ms: None };
    TargetsSpec { p1: pt(1, 4), p2: pt(2, 8), p3: pt(4, 24), p4: pt(8, 40), thresholds: vec![75, 100] }
}

impl App {
    async fn check_sla(&self, conn: &mut sqlx::AnyConnection, input: &SlaInput) -> Result<SlaRecord> {
        let mut errs = Errors::new();
        let name = errs.check(validate::required_text("name", &input.name, 200));
        if input.calendar_id.trim().is_empty() {
            errs.push(FieldError::new("calendar_id", "required", "choose the business calendar of the service hours"));
        } else if store::get_calendar(conn, &input.calendar_id).await?.is_none() {
            errs.push(FieldError::new("calendar_id", "unknown_reference", "no such calendar"));
        }
        let targets = input.targets.clone().unwrap_or_else(default_targets);
        if let Err(AppError::Validation(list)) = targets_of("targets", &targets) {
            for f in list {
                errs.push(f);
            }
        }
        let mut policy = ClockPolicy::default().to_spec();
        if let Some(p) = &input.pause_statuses {
            policy.pause_statuses = dedup(p.iter().map(|s| s.trim().to_string()).collect());
        }
        if let Err(DomainError::Invalid(list)) = ClockPolicy::from_spec(&policy) {
            for f in list {
                errs.push(f);
            }
        }
        let valid_from = check_date("valid_from", input.valid_from.as_deref(), &mut errs);
        let valid_to = check_date("valid_to", input.valid_to.as_deref(), &mut errs);
        check_range("valid_from", &valid_from, "valid_to", &valid_to, &mut errs);
        let review_on = check_date("review_on", input.review_on.as_deref(), &mut errs);
        let workload_min = non_negative("workload_min", input.workload_min, &mut errs);
        let workload_max = non_negative("workload_max", input.workload_max, &mut errs);
        if let (Some(a), Some(b)) = (workload_min, workload_max)
            && b < a
        {
            errs.push(FieldError::new("workload_max", "max_below_min", "the maximum workload must not be below the minimum"));
        }
        let service_ids = dedup(input.service_ids.clone());
        for s in &service_ids {
            match store::get_service(conn, s).await? {
                None => errs.push(FieldError::new("service_ids", "unknown_reference", format!("no service {s}"))),
                Some(svc) if svc.status == ServiceStatus::Retired.as_str() => {
                    errs.push(FieldError::new("service_ids", "service_retired", format!("{} is retired", svc.name)))
                }
                Some(_) => {}
            }
        }
        let rec = SlaRecord {
            id: String::new(),
            name: name.unwrap_or_default(),
            project_id: input.project_id.clone(),
            organization_id: String::new(),
            calendar_id: input.calendar_id.clone(),
            status: SlaStatus::Draft.as_str().into(),
            targets,
            clock_policy: policy,
            valid_from,
            valid_to,
            review_on,
            workload_min,
            workload_max,
            workload_unit: opt_text("workload_unit", &input.workload_unit, 200, &mut errs),
            max_outage_minutes: non_negative("max_outage_minutes", input.max_outage_minutes, &mut errs),
            max_degraded_minutes: non_negative("max_degraded_minutes", input.max_degraded_minutes, &mut errs),
            degraded_level: opt_text("degraded_level", &input.degraded_level, 4000, &mut errs),
            terms: input.terms.clone().normalise(&mut errs),
            service_ids,
            approved_by: None,
            approved_at: None,
            activated_at: None,
            created_at: 0,
            updated_at: 0,
            version: 1,
        };
        errs.finish()?;
        Ok(rec)
    }

    /// Drafts an SLA for a service project that runs service level management.
    pub async fn create_sla(&self, actor: &Principal, input: SlaInput) -> Result<SlaRecord> {
        require_manage(actor)?;
        if input.project_id.trim().is_empty() {
            return Err(AppError::field("project_id", "required", "choose the service project"));
        }
        let project = self.get_project(actor, &input.project_id).await.map_err(|e| match e {
            AppError::NotFound => AppError::field("project_id", "unknown_reference", "no such service project"),
            other => other,
        })?;
        self.require_process(&project.id, Process::ServiceLevel).await?;
        let mut w = self.write(actor).await?;
        let mut rec = self.check_sla(&mut w.tx, &input).await?;
        rec.id = keel_store::new_id();
        rec.organization_id = project.organization_id;
        rec.created_at = w.now;
        rec.updated_at = w.now;
        store::insert_sla(&mut w.tx, &rec).await.map_err(unique_as("name"))?;
        w.record("sla", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    pub async fn get_sla(&self, actor: &Principal, id: &str) -> Result<SlaRecord> {
        let mut c = self.read().await?;
        let s = store::get_sla(&mut c, id).await?.ok_or(AppError::NotFound)?;
        if !actor.can_see_project(&s.project_id, Some(&s.organization_id)) {
            return Err(AppError::NotFound);
        }
        Ok(s)
    }

    pub async fn list_slas(&self, actor: &Principal, f: &SlaFilter, page: &PageRequest) -> Result<Page<SlaRecord>> {
        let mut c = self.read().await?;
        Ok(store::list_slas(&mut c, &scope_of(actor), f, page).await?)
    }

    /// Changes a draft SLA; an approved or active one is revised first (change control).
    pub async fn update_sla(&self, actor: &Principal, id: &str, input: SlaInput, expected_version: Option<i64>) -> Result<SlaRecord> {
        let before = self.get_sla(actor, id).await?;
        require_manage(actor)?;
        self.require_process(&before.project_id, Process::ServiceLevel).await?;
        if !SlaStatus::parse(&before.status).is_some_and(SlaStatus::is_editable) {
            return Err(AppError::Conflict {
                code: "sla_not_editable",
                field: None,
                message: format!("a {} SLA cannot be changed; revise it to a draft first", before.status),
            });
        }
        let mut w = self.write(actor).await?;
        let input = SlaInput { project_id: before.project_id.clone(), ..input };
        let checked = self.check_sla(&mut w.tx, &input).await?;
        let after = SlaRecord {
            id: before.id.clone(),
            project_id: before.project_id.clone(),
            organization_id: before.organization_id.clone(),
            status: before.status.clone(),
            created_at: before.created_at,
            updated_at: w.now,
            version: before.version,
            ..checked
        };
        store::update_sla(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await.map_err(unique_as("name"))?;
        w.record("sla", id, AuditAction::Update, Some(&snapshot(&before)), Some(&snapshot(&after))).await?;
        let fresh = store::get_sla(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Moves an SLA through its lifecycle: approve (service department manager only), activate
    /// (needs approval; the service department manager or the project's manager), expire, revise.
    pub async fn sla_action(&self, actor: &Principal, id: &str, action: SlaAction, expected_version: Option<i64>) -> Result<SlaRecord> {
        let before = self.get_sla(actor, id).await?;
        let allowed = match action {
            SlaAction::Approve | SlaAction::Expire | SlaAction::Revise => may_approve(actor),
            SlaAction::Activate => {
                may_approve(actor)
                    || (!actor.is_read_only() && actor.has(Role::ProjectManager) && actor.project_ids.contains(&before.project_id))
            }
        };
        if !allowed {
            return Err(AppError::Forbidden);
        }
        self.require_process(&before.project_id, Process::ServiceLevel).await?;
        let from = SlaStatus::parse(&before.status).unwrap_or(SlaStatus::Draft);
        let to = from.apply(action)?;
        let mut w = self.write(actor).await?;
        let mut after = SlaRecord { status: to.as_str().into(), updated_at: w.now, ..before.clone() };
        match action {
            SlaAction::Approve => {
                after.approved_by = Some(actor.user_id.clone());
                after.approved_at = Some(w.now);
            }
            SlaAction::Activate => after.activated_at = Some(w.now),
            SlaAction::Revise => {
                after.approved_by = None;
                after.approved_at = None;
                after.activated_at = None;
            }
            SlaAction::Expire => {}
        }
        store::update_sla(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await?;
        let mut a = snapshot(&after);
        a["lifecycle_action"] = serde_json::json!(action.as_str());
        w.record("sla", id, AuditAction::Update, Some(&snapshot(&before)), Some(&a)).await?;
        // Only active SLAs measure tickets: approving a draft moves no clock.
        if from == SlaStatus::Active || to == SlaStatus::Active {
            crate::sla_clocks::enqueue_recompute(&mut w.tx, serde_json::json!({ "project_ids": [before.project_id] }), w.now).await?;
        }
        let fresh = store::get_sla(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Runs a ticket history through an SLA's calendar, targets and clock policy: the clocks the
    /// incident page shows.
    pub async fn sla_clock_preview(&self, actor: &Principal, id: &str, input: &ClockPreviewInput) -> Result<SlaReport> {
        let sla = self.get_sla(actor, id).await?;
        let mut c = self.read().await?;
        let cal = store::get_calendar(&mut c, &sla.calendar_id).await?.ok_or(AppError::NotFound)?;
        drop(c);
        let calendar = business_calendar(&cal)?;
        let targets = targets_of("targets", &sla.targets)?;
        let policy = ClockPolicy::from_spec(&sla.clock_policy)?;
        let ctx = ClockContext { calendar: &calendar, targets: &targets, policy: &policy };
        let mut statuses = vec![(input.created_at, input.initial_status.clone().unwrap_or_else(|| "new".into()))];
        statuses.extend(input.status_changes.iter().cloned());
        let mut priorities = vec![(input.created_at, input.priority)];
        priorities.extend(input.priority_changes.iter().cloned());
        let history = TicketHistory {
            statuses: &statuses,
            priorities: &priorities,
            first_response_at: input.first_response_at,
            public_updates: &input.public_updates,
        };
        let now = input.now.unwrap_or_else(|| DateTime::from_timestamp_millis(self.now()).unwrap_or_default());
        Ok(keel_domain::sla::compute_clocks(&history, &ctx, now)?)
    }
}

// ---------------------------------------------------------------- OLAs and underpinning contracts

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SupportInput {
    pub name: String,
    pub description: Option<String>,
    /// OLA: the internal group (team id) that commits to the targets.
    pub provider_team_id: Option<String>,
    /// Underpinning contract: the supplier.
    pub supplier_name: Option<String>,
    pub supplier_contact: Option<String>,
    pub reference: Option<String>,
    pub targets: Option<TargetsSpec>,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    /// The SLAs whose targets this agreement supports.
    pub sla_ids: Vec<String>,
}

fn entity_of(kind: SupportKind) -> &'static str {
    match kind {
        SupportKind::Ola => "ola",
        SupportKind::Contract => "underpinning_contract",
    }
}

impl App {
    async fn check_support(&self, conn: &mut sqlx::AnyConnection, kind: SupportKind, input: &SupportInput) -> Result<SupportRecord> {
        let mut errs = Errors::new();
        let name = errs.check(validate::required_text("name", &input.name, 200));
        let team = input.provider_team_id.clone().filter(|s| !s.trim().is_empty());
        let supplier_name = opt_text("supplier_name", &input.supplier_name, 200, &mut errs);
        match kind {
            SupportKind::Ola => match &team {
                None => errs.push(FieldError::new("provider_team_id", "required", "choose the internal group that commits to the targets")),
                Some(t) if keel_store::directory::get_team(conn, t).await?.is_none() => {
                    errs.push(FieldError::new("provider_team_id", "unknown_reference", "no such team"))
                }
                Some(_) => {}
            },
            SupportKind::Contract if supplier_name.is_none() => {
                errs.push(FieldError::new("supplier_name", "required", "name the supplier"));
            }
            SupportKind::Contract => {}
        }
        let targets = match &input.targets {
            Some(t) => match targets_of("targets", t) {
                Ok(parsed) => Some((t.clone(), parsed)),
                Err(AppError::Validation(list)) => {
                    for f in list {
                        errs.push(f);
                    }
                    None
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        let sla_ids = dedup(input.sla_ids.clone());
        for id in &sla_ids {
            match store::get_sla(conn, id).await? {
                None => errs.push(FieldError::new("sla_ids", "unknown_reference", format!("no SLA {id}"))),
                Some(sla) => {
                    if let (Some((_, mine)), Ok(theirs)) = (&targets, SlaTargets::from_spec(&sla.targets)) {
                        for f in check_supports("targets", &sla.name, &theirs, mine) {
                            errs.push(f);
                        }
                    }
                }
            }
        }
        let valid_from = check_date("valid_from", input.valid_from.as_deref(), &mut errs);
        let valid_to = check_date("valid_to", input.valid_to.as_deref(), &mut errs);
        check_range("valid_from", &valid_from, "valid_to", &valid_to, &mut errs);
        let rec = SupportRecord {
            id: String::new(),
            kind: kind.as_str().into(),
            name: name.unwrap_or_default(),
            description: opt_text("description", &input.description, 8000, &mut errs),
            provider_team_id: if kind == SupportKind::Ola { team } else { None },
            supplier_name: if kind == SupportKind::Contract { supplier_name } else { None },
            supplier_contact: if kind == SupportKind::Contract {
                opt_text("supplier_contact", &input.supplier_contact, 1000, &mut errs)
            } else {
                None
            },
            reference: opt_text("reference", &input.reference, 200, &mut errs),
            targets: targets.map(|t| t.0),
            valid_from,
            valid_to,
            sla_ids,
            created_at: 0,
            updated_at: 0,
            version: 1,
        };
        errs.finish()?;
        Ok(rec)
    }

    pub async fn create_support(&self, actor: &Principal, kind: SupportKind, input: SupportInput) -> Result<SupportRecord> {
        require_manage(actor)?;
        let mut w = self.write(actor).await?;
        let mut rec = self.check_support(&mut w.tx, kind, &input).await?;
        rec.id = keel_store::new_id();
        rec.created_at = w.now;
        rec.updated_at = w.now;
        store::insert_support(&mut w.tx, &rec).await.map_err(unique_as("name"))?;
        w.record(entity_of(kind), &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    /// OLAs and underpinning contracts are internal records: staff only.
    pub async fn get_support(&self, actor: &Principal, kind: SupportKind, id: &str) -> Result<SupportRecord> {
        if !actor.is_staff() {
            return Err(AppError::NotFound);
        }
        let mut c = self.read().await?;
        store::get_support(&mut c, id).await?.filter(|s| s.kind == kind.as_str()).ok_or(AppError::NotFound)
    }

    pub async fn list_support(
        &self,
        actor: &Principal,
        kind: SupportKind,
        f: &SupportFilter,
        page: &PageRequest,
    ) -> Result<Page<SupportRecord>> {
        if !actor.is_staff() {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        Ok(store::list_support(&mut c, kind.as_str(), f, page).await?)
    }

    pub async fn update_support(
        &self,
        actor: &Principal,
        kind: SupportKind,
        id: &str,
        input: SupportInput,
        expected_version: Option<i64>,
    ) -> Result<SupportRecord> {
        let before = self.get_support(actor, kind, id).await?;
        require_manage(actor)?;
        let mut w = self.write(actor).await?;
        let checked = self.check_support(&mut w.tx, kind, &input).await?;
        let after =
            SupportRecord { id: before.id.clone(), created_at: before.created_at, updated_at: w.now, version: before.version, ..checked };
        store::update_support(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await.map_err(unique_as("name"))?;
        w.record(entity_of(kind), id, AuditAction::Update, Some(&snapshot(&before)), Some(&snapshot(&after))).await?;
        let fresh = store::get_support(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }
}

//! Pages for service level management (§6.1): business calendars with yearly import/export and
//! the shipped mainland China calendars, the service catalogue (read-only for customers), SLAs
//! with their approval steps, and the OLAs and underpinning contracts that support them.

use super::{
    Ctx, Field, FormPage, ListQuery, OrPage, Panel, Row, UiResult, attach_errors, expected_version, list_page, render, render_status,
    see_other, status_for,
};
use crate::AppState;
use crate::auth::{CsrfForm, Identity, UiUser};
use crate::i18n::Tr;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use keel_app::service_level::{CalendarFormat, CalendarInput, ServiceInput, SlaInput, SupportInput, may_approve, may_manage};
use keel_app::{AppError, Principal};
use keel_domain::FieldError;
use keel_domain::identity::Role;
use keel_domain::sla::agreement::{ServiceLine, ServiceStatus, SlaAction, SlaStatus, SlaTerms, SupportKind};
use keel_domain::sla::calendar::{MakeUpSpec, WeekSpec};
use keel_domain::sla::china::CHINA_MAINLAND_YEARS;
use keel_domain::sla::target::{PriorityTargets, TargetsSpec};
use keel_store::page::{PageRequest, SortKey, SortKind, decode_cursor};
use keel_store::service_level::{CalendarRecord, ServiceFilter, ServiceRecord, SlaFilter, SlaRecord, SupportFilter, SupportRecord};

const NAME_SORT: SortKey = SortKey { name: "name", column: "name", kind: SortKind::Text };
const MINUTE_MS: i64 = 60_000;

fn page(q: &ListQuery) -> PageRequest {
    PageRequest { sort: NAME_SORT, desc: false, after: q.cursor.as_deref().and_then(|c| decode_cursor(&NAME_SORT, c)), limit: 50 }
}

fn all() -> PageRequest {
    PageRequest { sort: NAME_SORT, desc: false, after: None, limit: 1000 }
}

fn some(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

fn list_of(s: &str) -> Vec<String> {
    s.split([',', '，', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Renames the fields of validation errors to the form's field names.
fn remap(e: AppError, f: impl Fn(&str) -> String) -> AppError {
    match e {
        AppError::Validation(list) => AppError::Validation(list.into_iter().map(|fe| FieldError { field: f(&fe.field), ..fe }).collect()),
        other => other,
    }
}

/// Parses an optional whole number typed in a form.
fn number(field: &'static str, v: &str, errs: &mut Vec<FieldError>) -> Option<i64> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    match v.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            errs.push(FieldError::new(field, "not_a_number", "enter a whole number"));
            None
        }
    }
}

async fn calendar_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    Ok(state.app.list_calendars(who, None, &all()).await?.items.into_iter().map(|c| (c.id, c.name)).collect())
}

async fn service_options(state: &AppState, who: &Principal, except: Option<&str>) -> Result<Vec<(String, String)>, AppError> {
    let list = state.app.list_services(who, &ServiceFilter::default(), &all()).await?;
    Ok(list.items.into_iter().filter(|s| Some(s.id.as_str()) != except).map(|s| (s.id, format!("{} ({})", s.name, s.code))).collect())
}

async fn sla_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    Ok(state.app.list_slas(who, &SlaFilter::default(), &all()).await?.items.into_iter().map(|s| (s.id, s.name)).collect())
}

/// A posted form as name/value pairs, for forms with many or repeated fields.
pub struct Pairs(Vec<(String, String)>);

impl Pairs {
    fn one(&self, k: &str) -> String {
        self.0.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default()
    }
    fn many(&self, k: &str) -> Vec<String> {
        self.0.iter().filter(|(n, _)| n == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty()).collect()
    }
    fn version(&self) -> Option<String> {
        Some(self.one("_version")).filter(|v| !v.is_empty())
    }
}

// ---------------------------------------------------------------- targets in minutes

const TARGET_FIELDS: [(&str, &str, &str, &str); 4] = [
    ("P1", "p1_fr", "p1_res", "p1_upd"),
    ("P2", "p2_fr", "p2_res", "p2_upd"),
    ("P3", "p3_fr", "p3_res", "p3_upd"),
    ("P4", "p4_fr", "p4_res", "p4_upd"),
];

/// The targets of a form: twelve minute fields and the thresholds, as typed.
#[derive(Default, Clone)]
pub struct TargetsForm {
    p1_fr: String,
    p1_res: String,
    p1_upd: String,
    p2_fr: String,
    p2_res: String,
    p2_upd: String,
    p3_fr: String,
    p3_res: String,
    p3_upd: String,
    p4_fr: String,
    p4_res: String,
    p4_upd: String,
    thresholds: String,
}

impl TargetsForm {
    fn from_pairs(p: &Pairs) -> TargetsForm {
        TargetsForm {
            p1_fr: p.one("p1_fr"),
            p1_res: p.one("p1_res"),
            p1_upd: p.one("p1_upd"),
            p2_fr: p.one("p2_fr"),
            p2_res: p.one("p2_res"),
            p2_upd: p.one("p2_upd"),
            p3_fr: p.one("p3_fr"),
            p3_res: p.one("p3_res"),
            p3_upd: p.one("p3_upd"),
            p4_fr: p.one("p4_fr"),
            p4_res: p.one("p4_res"),
            p4_upd: p.one("p4_upd"),
            thresholds: p.one("thresholds"),
        }
    }

    fn rows(&self) -> [[&String; 3]; 4] {
        [
            [&self.p1_fr, &self.p1_res, &self.p1_upd],
            [&self.p2_fr, &self.p2_res, &self.p2_upd],
            [&self.p3_fr, &self.p3_res, &self.p3_upd],
            [&self.p4_fr, &self.p4_res, &self.p4_upd],
        ]
    }

    fn of(t: &TargetsSpec) -> TargetsForm {
        let m = |ms: i64| (ms / MINUTE_MS).to_string();
        let u = |ms: Option<i64>| ms.map(|v| (v / MINUTE_MS).to_string()).unwrap_or_default();
        TargetsForm {
            p1_fr: m(t.p1.first_response_ms),
            p1_res: m(t.p1.resolution_ms),
            p1_upd: u(t.p1.update_interval_ms),
            p2_fr: m(t.p2.first_response_ms),
            p2_res: m(t.p2.resolution_ms),
            p2_upd: u(t.p2.update_interval_ms),
            p3_fr: m(t.p3.first_response_ms),
            p3_res: m(t.p3.resolution_ms),
            p3_upd: u(t.p3.update_interval_ms),
            p4_fr: m(t.p4.first_response_ms),
            p4_res: m(t.p4.resolution_ms),
            p4_upd: u(t.p4.update_interval_ms),
            thresholds: t.thresholds.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
        }
    }

    fn is_blank(&self) -> bool {
        self.rows().iter().flatten().all(|v| v.trim().is_empty())
    }

    /// The targets typed, or `None` when every minute field is blank.
    fn parse(&self, errs: &mut Vec<FieldError>) -> Option<TargetsSpec> {
        if self.is_blank() {
            return None;
        }
        let mut pts = Vec::new();
        for ((_, fr, res, upd), row) in TARGET_FIELDS.iter().zip(self.rows()) {
            let req = |field: &'static str, v: &str, errs: &mut Vec<FieldError>| match number(field, v, errs) {
                Some(n) => n.saturating_mul(MINUTE_MS),
                None => {
                    if v.trim().is_empty() {
                        errs.push(FieldError::new(field, "required", "required"));
                    }
                    0
                }
            };
            pts.push(PriorityTargets {
                first_response_ms: req(fr, row[0], errs),
                resolution_ms: req(res, row[1], errs),
                update_interval_ms: number(upd, row[2], errs).map(|n| n.saturating_mul(MINUTE_MS)),
            });
        }
        let mut thresholds = Vec::new();
        for t in list_of(&self.thresholds) {
            match t.trim_end_matches('%').parse::<u16>() {
                Ok(n) => thresholds.push(n),
                Err(_) => errs.push(FieldError::new("thresholds", "not_a_number", "enter whole percentages, e.g. 75, 100")),
            }
        }
        Some(TargetsSpec { p1: pts[0], p2: pts[1], p3: pts[2], p4: pts[3], thresholds })
    }

    fn fields(&self, tr: &Tr) -> Vec<Field> {
        let mut v = Vec::new();
        for ((_, fr, res, upd), row) in TARGET_FIELDS.iter().zip(self.rows()) {
            v.push(Field::new(tr, fr, "number", row[0].clone()));
            v.push(Field::new(tr, res, "number", row[1].clone()));
            v.push(Field::new(tr, upd, "number", row[2].clone()));
        }
        v.push(Field::new(tr, "thresholds", "text", self.thresholds.clone()).help(tr.t("help-thresholds")));
        v
    }
}

/// `targets.P1.resolution_ms` (or `.resolution`) → `p1_res`.
fn target_field(f: &str) -> Option<String> {
    let rest = f.strip_prefix("targets.")?;
    if rest.starts_with("thresholds") {
        return Some("thresholds".into());
    }
    let (p, kind) = rest.split_once('.')?;
    let (_, fr, res, upd) = TARGET_FIELDS.iter().find(|t| t.0 == p)?;
    Some(match kind.trim_end_matches("_ms") {
        "first_response" => fr.to_string(),
        "resolution" => res.to_string(),
        _ => upd.to_string(),
    })
}

// ---------------------------------------------------------------- calendars

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct CalendarForm {
    preset: String,
    name: String,
    description: String,
    time_zone: String,
    hours_mon: String,
    hours_tue: String,
    hours_wed: String,
    hours_thu: String,
    hours_fri: String,
    hours_sat: String,
    hours_sun: String,
    make_up_hours: String,
    #[serde(rename = "_version")]
    version: Option<String>,
}

const WEEKDAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl CalendarForm {
    fn of(c: &CalendarRecord) -> CalendarForm {
        let j = |l: &Vec<String>| l.join(", ");
        CalendarForm {
            preset: String::new(),
            name: c.name.clone(),
            description: c.description.clone().unwrap_or_default(),
            time_zone: c.time_zone.clone(),
            hours_mon: j(&c.hours.mon),
            hours_tue: j(&c.hours.tue),
            hours_wed: j(&c.hours.wed),
            hours_thu: j(&c.hours.thu),
            hours_fri: j(&c.hours.fri),
            hours_sat: j(&c.hours.sat),
            hours_sun: j(&c.hours.sun),
            make_up_hours: match &c.make_up_hours {
                MakeUpSpec::SameAs(d) => d.clone(),
                MakeUpSpec::Custom(l) => j(l),
            },
            version: None,
        }
    }

    fn new_default() -> CalendarForm {
        let office = "09:00-12:00, 13:30-18:00".to_string();
        CalendarForm {
            preset: "china_mainland".into(),
            time_zone: "Asia/Shanghai".into(),
            hours_mon: office.clone(),
            hours_tue: office.clone(),
            hours_wed: office.clone(),
            hours_thu: office.clone(),
            hours_fri: office,
            make_up_hours: "mon".into(),
            ..Default::default()
        }
    }

    fn input(&self) -> CalendarInput {
        let m = self.make_up_hours.trim().to_lowercase();
        let make_up = if m.is_empty() {
            None
        } else if WEEKDAY_KEYS.contains(&m.as_str()) {
            Some(MakeUpSpec::SameAs(m))
        } else {
            Some(MakeUpSpec::Custom(list_of(&m)))
        };
        CalendarInput {
            name: self.name.clone(),
            description: some(&self.description),
            time_zone: self.time_zone.clone(),
            hours: WeekSpec {
                mon: list_of(&self.hours_mon),
                tue: list_of(&self.hours_tue),
                wed: list_of(&self.hours_wed),
                thu: list_of(&self.hours_thu),
                fri: list_of(&self.hours_fri),
                sat: list_of(&self.hours_sat),
                sun: list_of(&self.hours_sun),
            },
            make_up_hours: make_up,
        }
    }

    fn fields(&self, tr: &Tr, new: bool) -> Vec<Field> {
        let mut v = Vec::new();
        if new {
            let presets = ["china_mainland", "custom"]
                .iter()
                .map(|p| (p.to_string(), tr.t(&format!("calendar-preset-{}", p.replace('_', "-")))))
                .collect::<Vec<_>>();
            v.push(
                Field::new(tr, "preset", "select", "")
                    .required()
                    .options(presets, std::slice::from_ref(&self.preset))
                    .help(tr.t("help-calendar-preset")),
            );
        }
        v.push(Field::new(tr, "name", "text", &self.name).required());
        v.push(Field::new(tr, "time_zone", "text", &self.time_zone).required().help(tr.t("help-time-zone")));
        let days = [
            ("hours_mon", &self.hours_mon),
            ("hours_tue", &self.hours_tue),
            ("hours_wed", &self.hours_wed),
            ("hours_thu", &self.hours_thu),
            ("hours_fri", &self.hours_fri),
            ("hours_sat", &self.hours_sat),
            ("hours_sun", &self.hours_sun),
        ];
        for (i, (name, value)) in days.into_iter().enumerate() {
            let f = Field::new(tr, name, "text", value.clone());
            v.push(if i == 0 { f.help(tr.t("help-working-hours")) } else { f });
        }
        v.push(Field::new(tr, "make_up_hours", "text", &self.make_up_hours).help(tr.t("help-make-up-hours")));
        v.push(Field::new(tr, "description", "textarea", &self.description));
        v
    }
}

fn calendar_field(f: &str) -> String {
    if let Some(rest) = f.strip_prefix("hours.") {
        return format!("hours_{}", &rest[..rest.len().min(3)]);
    }
    if f.starts_with("make_up_hours") {
        return "make_up_hours".into();
    }
    f.to_string()
}

pub async fn calendars(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    let p = &who.principal;
    let list = state.app.list_calendars(p, Some(&q.q), &page(&q)).await.or_page(&tr)?;
    let rows = list
        .items
        .iter()
        .map(|c| Row { href: format!("/calendars/{}", c.id), cells: vec![c.name.clone(), c.time_zone.clone(), tr.datetime(&c.updated_at)] })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/calendars", q.flash.as_deref());
    let new = may_manage(p).then(|| ("/calendars/new".to_string(), tr.t("action-new-calendar")));
    Ok(list_page(
        ctx,
        tr.t("nav-calendars"),
        "/calendars",
        &q,
        new,
        (vec![tr.t("field-name"), tr.t("field-time-zone"), tr.t("field-updated-at")], rows),
        list.next_cursor,
    ))
}

fn calendar_new_page(tr: &Tr, who: &Identity, f: &CalendarForm, err: Option<AppError>) -> Response {
    let mut fields = f.fields(tr, true);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), "/calendars/new", None);
    let mut page = FormPage::new(ctx, tr.t("action-new-calendar"), "/calendars".into(), fields, "/calendars");
    page.errors = errors;
    page.panels.push(help_panel(tr));
    render_status(status_for(&err), &page)
}

fn help_panel(tr: &Tr) -> Panel {
    Panel {
        title: tr.t("calendar-help-title"),
        columns: vec![],
        rows: vec![],
        action: Some(("/calendars/help".into(), tr.t("calendar-help-link"))),
    }
}

pub async fn calendar_new(tr: Tr, UiUser(who): UiUser) -> Response {
    calendar_new_page(&tr, &who, &CalendarForm::new_default(), None)
}

pub async fn calendar_create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<CalendarForm>) -> Response {
    let r = if f.preset == "china_mainland" {
        state.app.create_china_calendar(&who.principal, &f.name).await
    } else {
        state.app.create_calendar(&who.principal, f.input()).await
    };
    match r {
        Ok(c) => see_other(&format!("/calendars/{}", c.id), "created"),
        Err(e) => calendar_new_page(&tr, &who, &f, Some(remap(e, calendar_field))),
    }
}

async fn calendar_page(
    state: &AppState,
    tr: &Tr,
    who: &Identity,
    id: &str,
    form: Option<(CalendarForm, AppError)>,
    flash: Option<&str>,
) -> UiResult {
    let p = &who.principal;
    let c = state.app.get_calendar(p, id).await.or_page(tr)?;
    let (f, err) = match form {
        Some((f, e)) => (f, Some(e)),
        None => (CalendarForm::of(&c), None),
    };
    let mut fields = f.fields(tr, false);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let editable = may_manage(p);
    let ctx = Ctx::new(tr, Some(who), &format!("/calendars/{id}"), flash);
    let mut page = FormPage::new(ctx, c.name.clone(), format!("/calendars/{id}"), fields, "/calendars");
    page.version = Some(c.version);
    page.errors = errors;
    page.editable = editable;
    let years = keel_app::service_level::calendar_years(&c);
    page.panels.push(Panel {
        title: tr.t("calendar-years-title"),
        columns: vec![tr.t("field-year"), tr.t("calendar-holidays"), tr.t("calendar-workdays"), tr.t("field-format")],
        rows: years
            .iter()
            .flat_map(|y| {
                let of = |kind: &str| c.days.iter().filter(|d| d.date.starts_with(&y.to_string()) && d.kind == kind).count().to_string();
                ["csv", "ics"].map(|fmt| Row {
                    href: format!("/calendars/{id}/export?year={y}&format={fmt}"),
                    cells: vec![format!("{y} ({})", tr.t("action-export")), of("holiday"), of("workday"), fmt.to_uppercase()],
                })
            })
            .collect(),
        action: editable.then(|| (format!("/calendars/{id}/import"), tr.t("action-import-year"))),
    });
    if editable {
        page.panels.push(Panel {
            title: tr.t("calendar-china-title"),
            columns: vec![tr.t("field-year")],
            rows: CHINA_MAINLAND_YEARS
                .iter()
                .map(|y| Row { href: format!("/calendars/{id}/china/{y}"), cells: vec![tr.t1("action-load-china", "year", y)] })
                .collect(),
            action: None,
        });
    }
    page.panels.push(Panel {
        title: tr.t("calendar-days-title"),
        columns: vec![tr.t("field-date"), tr.t("field-kind"), tr.t("field-name")],
        rows: c
            .days
            .iter()
            .rev()
            .map(|d| Row {
                href: String::new(),
                cells: vec![d.date.clone(), tr.t(&format!("day-kind-{}", d.kind)), d.name.clone().unwrap_or_default()],
            })
            .collect(),
        action: None,
    });
    page.panels.push(help_panel(tr));
    page.show_history = true;
    page.history =
        super::readable_history(&state.app, tr, &who.principal, &state.app.history("business_calendar", id).await.or_page(tr)?).await?;
    Ok(render_status(status_for(&err), &page))
}

pub async fn calendar_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    calendar_page(&state, &tr, &who, &id, None, q.flash.as_deref()).await
}

pub async fn calendar_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<CalendarForm>,
) -> UiResult {
    match state.app.update_calendar(&who.principal, &id, f.input(), expected_version(&f.version)).await {
        Ok(_) => Ok(see_other(&format!("/calendars/{id}"), "saved")),
        Err(e) => calendar_page(&state, &tr, &who, &id, Some((f, remap(e, calendar_field))), None).await,
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ImportForm {
    year: String,
    format: String,
    content: String,
}

fn import_fields(tr: &Tr, f: &ImportForm) -> Vec<Field> {
    let formats = vec![("csv".to_string(), "CSV".to_string()), ("ics".to_string(), "iCalendar (ICS)".to_string())];
    vec![
        Field::new(tr, "year", "number", &f.year).required(),
        Field::new(tr, "format", "select", "").required().options(formats, std::slice::from_ref(&f.format)),
        Field::new(tr, "content", "textarea", &f.content).required().help(tr.t("help-calendar-import")),
    ]
}

async fn import_page(state: &AppState, tr: &Tr, who: &Identity, id: &str, f: &ImportForm, err: Option<AppError>) -> UiResult {
    let c = state.app.get_calendar(&who.principal, id).await.or_page(tr)?;
    let mut fields = import_fields(tr, f);
    // Problems in the file name their line; they are listed above the form, line by line.
    let mut errors = Vec::new();
    let err = err.map(|e| match e {
        AppError::Validation(list) => {
            let (lines, rest): (Vec<_>, Vec<_>) = list.into_iter().partition(|fe| fe.field.starts_with("line "));
            for fe in lines {
                let line = fe.field.trim_start_matches("line ");
                errors.push(format!(
                    "{}: {}",
                    tr.t1("calendar-line", "line", line),
                    super::translate_field_error(tr, fe.code, &fe.message)
                ));
            }
            AppError::Validation(rest)
        }
        other => other,
    });
    errors.extend(err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default());
    let ctx = Ctx::new(tr, Some(who), &format!("/calendars/{id}/import"), None);
    let mut page = FormPage::new(
        ctx,
        format!("{} — {}", tr.t("action-import-year"), c.name),
        format!("/calendars/{id}/import"),
        fields,
        &format!("/calendars/{id}"),
    );
    page.version = Some(c.version);
    page.errors = errors;
    page.submit = tr.t("action-import-year");
    page.panels.push(help_panel(tr));
    Ok(render_status(status_for(&err), &page))
}

pub async fn calendar_import_form(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    let year = chrono::Utc::now().format("%Y").to_string().parse::<i32>().unwrap_or(2026) + 1;
    import_page(&state, &tr, &who, &id, &ImportForm { year: year.to_string(), format: "csv".into(), content: String::new() }, None).await
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ImportPost {
    year: String,
    format: String,
    content: String,
    #[serde(rename = "_version")]
    version: Option<String>,
}

pub async fn calendar_import(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<ImportPost>,
) -> UiResult {
    let form = ImportForm { year: f.year.clone(), format: f.format.clone(), content: f.content.clone() };
    let mut errs = Vec::new();
    let year = number("year", &f.year, &mut errs);
    if year.is_none() && errs.is_empty() {
        errs.push(FieldError::new("year", "required", "required"));
    }
    let format = match f.format.as_str() {
        "ics" => CalendarFormat::Ics,
        _ => CalendarFormat::Csv,
    };
    if !errs.is_empty() {
        return import_page(&state, &tr, &who, &id, &form, Some(AppError::Validation(errs))).await;
    }
    let year = i32::try_from(year.unwrap_or_default()).unwrap_or(0);
    match state.app.import_calendar_year(&who.principal, &id, year, format, &f.content, expected_version(&f.version)).await {
        Ok(_) => Ok(see_other(&format!("/calendars/{id}"), "saved")),
        Err(e) => import_page(&state, &tr, &who, &id, &form, Some(e)).await,
    }
}

pub async fn calendar_china_form(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, year)): Path<(String, i32)>,
) -> UiResult {
    let c = state.app.get_calendar(&who.principal, &id).await.or_page(&tr)?;
    let ctx = Ctx::new(&tr, Some(&who), &format!("/calendars/{id}/china/{year}"), None);
    let mut page = FormPage::new(
        ctx,
        format!("{} — {}", tr.t1("action-load-china", "year", year), c.name),
        format!("/calendars/{id}/china/{year}"),
        vec![],
        &format!("/calendars/{id}"),
    );
    page.version = Some(c.version);
    page.submit = tr.t1("action-load-china", "year", year);
    page.errors = vec![tr.t1("calendar-china-confirm", "year", year)];
    page.editable = may_manage(&who.principal);
    Ok(render(&page))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct VersionOnly {
    #[serde(rename = "_version")]
    version: Option<String>,
}

pub async fn calendar_china(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, year)): Path<(String, i32)>,
    CsrfForm(f): CsrfForm<VersionOnly>,
) -> UiResult {
    state.app.load_china_year(&who.principal, &id, year, expected_version(&f.version)).await.or_page(&tr)?;
    Ok(see_other(&format!("/calendars/{id}"), "saved"))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ExportQuery {
    year: i32,
    format: String,
}

pub async fn calendar_export(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> UiResult {
    let (format, mime, ext) = match q.format.as_str() {
        "ics" => (CalendarFormat::Ics, "text/calendar; charset=utf-8", "ics"),
        _ => (CalendarFormat::Csv, "text/csv; charset=utf-8", "csv"),
    };
    let text = state.app.export_calendar_year(&who.principal, &id, q.year, format).await.or_page(&tr)?;
    let disposition = format!("attachment; filename=\"calendar-{}.{ext}\"", q.year);
    Ok(([(header::CONTENT_TYPE, mime.to_string()), (header::CONTENT_DISPOSITION, disposition)], text).into_response())
}

#[derive(Template)]
#[template(path = "calendar_help.html")]
pub struct CalendarHelpPage {
    pub ctx: Ctx,
    pub title: String,
    pub steps: Vec<String>,
    pub example: String,
}

pub async fn calendar_help(tr: Tr, UiUser(who): UiUser) -> Response {
    let ctx = Ctx::new(&tr, Some(&who), "/calendars/help", None);
    let steps = (1..=6).map(|i| tr.t(&format!("calendar-help-step-{i}"))).collect();
    let example = "date,kind,name\n2027-01-01,holiday,元旦\n2027-02-06,workday,春节调休上班\n2027-02-07,休,春节\n".to_string();
    render(&CalendarHelpPage { ctx, title: tr.t("calendar-help-title"), steps, example })
}

// ---------------------------------------------------------------- service catalogue

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct ServiceForm {
    code: String,
    name: String,
    service_line: String,
    status: String,
    description: String,
    targets: String,
    availability_target: String,
    contact_points: String,
    calendar_id: String,
    service_hours: String,
    exceptions: String,
    security: String,
    depends_on: Vec<String>,
    ci_ids: String,
    #[serde(rename = "_version")]
    version: Option<String>,
}

impl ServiceForm {
    fn of(s: &ServiceRecord) -> ServiceForm {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        ServiceForm {
            code: s.code.clone(),
            name: s.name.clone(),
            service_line: s.service_line.clone(),
            status: s.status.clone(),
            description: o(&s.description),
            targets: o(&s.targets),
            availability_target: o(&s.availability_target),
            contact_points: o(&s.contact_points),
            calendar_id: o(&s.calendar_id),
            service_hours: o(&s.service_hours),
            exceptions: o(&s.exceptions),
            security: o(&s.security),
            depends_on: s.depends_on.clone(),
            ci_ids: s.ci_ids.join(", "),
            version: None,
        }
    }

    fn input(&self) -> ServiceInput {
        ServiceInput {
            code: self.code.clone(),
            name: self.name.clone(),
            description: some(&self.description),
            service_line: self.service_line.clone(),
            targets: some(&self.targets),
            availability_target: some(&self.availability_target),
            contact_points: some(&self.contact_points),
            calendar_id: some(&self.calendar_id),
            service_hours: some(&self.service_hours),
            exceptions: some(&self.exceptions),
            security: some(&self.security),
            depends_on: self.depends_on.clone(),
            ci_ids: list_of(&self.ci_ids),
            status: some(&self.status),
        }
    }

    fn fields(&self, tr: &Tr, calendars: Vec<(String, String)>, services: Vec<(String, String)>) -> Vec<Field> {
        let lines = ServiceLine::ALL
            .iter()
            .map(|l| (l.as_str().to_string(), tr.t(&format!("service-line-{}", l.as_str().replace('_', "-")))))
            .collect::<Vec<_>>();
        let statuses = ServiceStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), tr.t(&format!("service-status-{}", s.as_str()))))
            .collect::<Vec<_>>();
        let status = if self.status.is_empty() { "pipeline".to_string() } else { self.status.clone() };
        vec![
            Field::new(tr, "code", "text", &self.code).required().help(tr.t("help-code")),
            Field::new(tr, "name", "text", &self.name).required(),
            Field::new(tr, "service_line", "select", "").required().options(lines, std::slice::from_ref(&self.service_line)),
            Field::new(tr, "status", "select", "").required().options(statuses, &[status]),
            Field::new(tr, "description", "textarea", &self.description),
            Field::new(tr, "targets", "textarea", &self.targets),
            Field::new(tr, "availability_target", "text", &self.availability_target).help(tr.t("help-availability-target")),
            Field::new(tr, "contact_points", "textarea", &self.contact_points),
            Field::new(tr, "calendar_id", "select", "").options(calendars, std::slice::from_ref(&self.calendar_id)),
            Field::new(tr, "service_hours", "textarea", &self.service_hours),
            Field::new(tr, "exceptions", "textarea", &self.exceptions),
            Field::new(tr, "security", "textarea", &self.security),
            Field::new(tr, "depends_on", "multiselect", "").options(services, &self.depends_on),
            Field::new(tr, "ci_ids", "text", &self.ci_ids).help(tr.t("help-ci-ids")),
        ]
    }
}

pub async fn catalogue(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    let p = &who.principal;
    let list = state.app.list_services(p, &ServiceFilter { q: Some(q.q.clone()), ..Default::default() }, &page(&q)).await.or_page(&tr)?;
    let rows = list
        .items
        .iter()
        .map(|s| Row {
            href: format!("/catalogue/{}", s.id),
            cells: vec![
                s.name.clone(),
                s.code.clone(),
                tr.t(&format!("service-line-{}", s.service_line.replace('_', "-"))),
                tr.t(&format!("service-status-{}", s.status)),
                s.version.to_string(),
            ],
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/catalogue", q.flash.as_deref());
    let new = may_manage(p).then(|| ("/catalogue/new".to_string(), tr.t("action-new-service")));
    let columns =
        vec![tr.t("field-name"), tr.t("field-code"), tr.t("field-service-line"), tr.t("field-status"), tr.t("field-catalogue-version")];
    Ok(list_page(ctx, tr.t("nav-catalogue"), "/catalogue", &q, new, (columns, rows), list.next_cursor))
}

async fn service_new_page(state: &AppState, tr: &Tr, who: &Identity, f: &ServiceForm, err: Option<AppError>) -> UiResult {
    let calendars = calendar_options(state, &who.principal).await.or_page(tr)?;
    let services = service_options(state, &who.principal, None).await.or_page(tr)?;
    let mut fields = f.fields(tr, calendars, services);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), "/catalogue/new", None);
    let mut page = FormPage::new(ctx, tr.t("action-new-service"), "/catalogue".into(), fields, "/catalogue");
    page.errors = errors;
    Ok(render_status(status_for(&err), &page))
}

pub async fn service_new(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    service_new_page(&state, &tr, &who, &ServiceForm::default(), None).await
}

pub async fn service_create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<ServiceForm>) -> UiResult {
    match state.app.create_service(&who.principal, f.input()).await {
        Ok(s) => Ok(see_other(&format!("/catalogue/{}", s.id), "created")),
        Err(e) => service_new_page(&state, &tr, &who, &f, Some(e)).await,
    }
}

async fn service_page(
    state: &AppState,
    tr: &Tr,
    who: &Identity,
    id: &str,
    form: Option<(ServiceForm, AppError)>,
    flash: Option<&str>,
) -> UiResult {
    let p = &who.principal;
    let s = state.app.get_service(p, id).await.or_page(tr)?;
    let (f, err) = match form {
        Some((f, e)) => (f, Some(e)),
        None => (ServiceForm::of(&s), None),
    };
    let (calendars, services) = if p.is_staff() {
        (calendar_options(state, p).await.or_page(tr)?, service_options(state, p, Some(id)).await.or_page(tr)?)
    } else {
        (vec![], vec![])
    };
    let mut fields = f.fields(tr, calendars, services);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), &format!("/catalogue/{id}"), flash);
    let mut page = FormPage::new(ctx, format!("{} — {}", s.code, s.name), format!("/catalogue/{id}"), fields, "/catalogue");
    page.version = Some(s.version);
    page.errors = errors;
    page.editable = may_manage(p);
    let versions = state.app.service_versions(p, id).await.or_page(tr)?;
    page.panels.push(Panel {
        title: tr.t("service-versions-title"),
        columns: vec![tr.t("field-catalogue-version"), tr.t("history-when"), tr.t("field-status")],
        rows: versions
            .iter()
            .rev()
            .map(|v| Row {
                href: String::new(),
                cells: vec![
                    v.version.to_string(),
                    tr.datetime(&v.changed_at),
                    v.snapshot["status"].as_str().map(|s| tr.t(&format!("service-status-{s}"))).unwrap_or_default(),
                ],
            })
            .collect(),
        action: None,
    });
    if p.is_staff() {
        page.show_history = true;
        page.history =
            super::readable_history(&state.app, tr, &who.principal, &state.app.history("service", id).await.or_page(tr)?).await?;
    }
    Ok(render_status(status_for(&err), &page))
}

pub async fn service_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    service_page(&state, &tr, &who, &id, None, q.flash.as_deref()).await
}

pub async fn service_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<ServiceForm>,
) -> UiResult {
    match state.app.update_service(&who.principal, &id, f.input(), expected_version(&f.version)).await {
        Ok(_) => Ok(see_other(&format!("/catalogue/{id}"), "saved")),
        Err(e) => service_page(&state, &tr, &who, &id, Some((f, e)), None).await,
    }
}

// ---------------------------------------------------------------- SLAs

#[derive(Default)]
pub struct SlaForm {
    name: String,
    project_id: String,
    calendar_id: String,
    service_ids: Vec<String>,
    valid_from: String,
    valid_to: String,
    review_on: String,
    pause_statuses: String,
    workload_min: String,
    workload_max: String,
    workload_unit: String,
    max_outage_minutes: String,
    max_degraded_minutes: String,
    degraded_level: String,
    targets: TargetsForm,
    terms: std::collections::BTreeMap<String, String>,
    version: Option<String>,
}

impl SlaForm {
    fn from_pairs(p: &Pairs) -> SlaForm {
        SlaForm {
            name: p.one("name"),
            project_id: p.one("project_id"),
            calendar_id: p.one("calendar_id"),
            service_ids: p.many("service_ids"),
            valid_from: p.one("valid_from"),
            valid_to: p.one("valid_to"),
            review_on: p.one("review_on"),
            pause_statuses: p.one("pause_statuses"),
            workload_min: p.one("workload_min"),
            workload_max: p.one("workload_max"),
            workload_unit: p.one("workload_unit"),
            max_outage_minutes: p.one("max_outage_minutes"),
            max_degraded_minutes: p.one("max_degraded_minutes"),
            degraded_level: p.one("degraded_level"),
            targets: TargetsForm::from_pairs(p),
            terms: SlaTerms::FIELDS.iter().map(|f| (f.to_string(), p.one(f))).collect(),
            version: p.version(),
        }
    }

    fn of(s: &SlaRecord) -> SlaForm {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        let n = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        SlaForm {
            name: s.name.clone(),
            project_id: s.project_id.clone(),
            calendar_id: s.calendar_id.clone(),
            service_ids: s.service_ids.clone(),
            valid_from: o(&s.valid_from),
            valid_to: o(&s.valid_to),
            review_on: o(&s.review_on),
            pause_statuses: s.clock_policy.pause_statuses.join(", "),
            workload_min: n(s.workload_min),
            workload_max: n(s.workload_max),
            workload_unit: o(&s.workload_unit),
            max_outage_minutes: n(s.max_outage_minutes),
            max_degraded_minutes: n(s.max_degraded_minutes),
            degraded_level: o(&s.degraded_level),
            targets: TargetsForm::of(&s.targets),
            terms: SlaTerms::FIELDS.iter().map(|f| (f.to_string(), s.terms.get(f).unwrap_or_default().to_string())).collect(),
            version: None,
        }
    }

    fn new_default() -> SlaForm {
        SlaForm { pause_statuses: "pending_customer, pending_supplier".into(), ..Default::default() }
    }

    fn input(&self) -> Result<SlaInput, AppError> {
        let mut errs = Vec::new();
        let targets = self.targets.parse(&mut errs);
        let workload_min = number("workload_min", &self.workload_min, &mut errs);
        let workload_max = number("workload_max", &self.workload_max, &mut errs);
        let max_outage_minutes = number("max_outage_minutes", &self.max_outage_minutes, &mut errs);
        let max_degraded_minutes = number("max_degraded_minutes", &self.max_degraded_minutes, &mut errs);
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let mut terms = SlaTerms::default();
        for f in SlaTerms::FIELDS {
            terms.set(f, self.terms.get(f).and_then(|v| some(v)));
        }
        Ok(SlaInput {
            name: self.name.clone(),
            project_id: self.project_id.clone(),
            calendar_id: self.calendar_id.clone(),
            targets,
            pause_statuses: Some(list_of(&self.pause_statuses)),
            valid_from: some(&self.valid_from),
            valid_to: some(&self.valid_to),
            review_on: some(&self.review_on),
            workload_min,
            workload_max,
            workload_unit: some(&self.workload_unit),
            max_outage_minutes,
            max_degraded_minutes,
            degraded_level: some(&self.degraded_level),
            terms,
            service_ids: self.service_ids.clone(),
        })
    }

    fn fields(
        &self,
        tr: &Tr,
        projects: Option<Vec<(String, String)>>,
        calendars: Vec<(String, String)>,
        services: Vec<(String, String)>,
    ) -> Vec<Field> {
        let mut v = vec![Field::new(tr, "name", "text", &self.name).required()];
        if let Some(projects) = projects {
            v.push(Field::new(tr, "project_id", "select", "").required().options(projects, std::slice::from_ref(&self.project_id)));
        }
        v.push(Field::new(tr, "calendar_id", "select", "").required().options(calendars, std::slice::from_ref(&self.calendar_id)));
        v.push(Field::new(tr, "service_ids", "multiselect", "").options(services, &self.service_ids));
        v.push(Field::new(tr, "valid_from", "date", &self.valid_from));
        v.push(Field::new(tr, "valid_to", "date", &self.valid_to));
        v.push(Field::new(tr, "review_on", "date", &self.review_on));
        let mut t = self.targets.fields(tr);
        if let Some(first) = t.first_mut() {
            first.help = tr.t("help-targets-minutes");
        }
        v.extend(t);
        v.push(Field::new(tr, "pause_statuses", "text", &self.pause_statuses).help(tr.t("help-pause-statuses")));
        v.push(Field::new(tr, "workload_min", "number", &self.workload_min));
        v.push(Field::new(tr, "workload_max", "number", &self.workload_max));
        v.push(Field::new(tr, "workload_unit", "text", &self.workload_unit));
        v.push(Field::new(tr, "max_outage_minutes", "number", &self.max_outage_minutes));
        v.push(Field::new(tr, "max_degraded_minutes", "number", &self.max_degraded_minutes));
        v.push(Field::new(tr, "degraded_level", "text", &self.degraded_level));
        for f in SlaTerms::FIELDS {
            v.push(Field::new(tr, f, "textarea", self.terms.get(f).cloned().unwrap_or_default()));
        }
        v
    }
}

fn sla_field(f: &str) -> String {
    if let Some(t) = target_field(f) {
        return t;
    }
    if f.starts_with("thresholds") {
        return "thresholds".into();
    }
    if f.starts_with("pause_statuses") {
        return "pause_statuses".into();
    }
    f.to_string()
}

pub async fn slas(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    let p = &who.principal;
    let list = state.app.list_slas(p, &SlaFilter { q: Some(q.q.clone()), ..Default::default() }, &page(&q)).await.or_page(&tr)?;
    let projects = state
        .app
        .list_projects(p, &Default::default(), &PageRequest { sort: super::admin::PROJECT_SORT, desc: false, after: None, limit: 1000 })
        .await
        .or_page(&tr)?;
    let project_name = |id: &str| projects.items.iter().find(|pr| pr.id == id).map(|pr| pr.code.clone()).unwrap_or_default();
    let rows = list
        .items
        .iter()
        .map(|s| Row {
            href: format!("/slas/{}", s.id),
            cells: vec![
                s.name.clone(),
                project_name(&s.project_id),
                tr.t(&format!("sla-status-{}", s.status)),
                format!("{} – {}", s.valid_from.clone().unwrap_or_default(), s.valid_to.clone().unwrap_or_default()),
                s.review_on.clone().unwrap_or_default(),
            ],
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/slas", q.flash.as_deref());
    let new = may_manage(p).then(|| ("/slas/new".to_string(), tr.t("action-new-sla")));
    let columns = vec![tr.t("field-name"), tr.t("field-project-id"), tr.t("field-status"), tr.t("field-validity"), tr.t("field-review-on")];
    Ok(list_page(ctx, tr.t("nav-slas"), "/slas", &q, new, (columns, rows), list.next_cursor))
}

async fn sla_choices(state: &AppState, tr: &Tr, who: &Principal) -> Result<(Vec<(String, String)>, Vec<(String, String)>), super::UiError> {
    let calendars = if who.is_staff() { calendar_options(state, who).await.or_page(tr)? } else { vec![] };
    let services = service_options(state, who, None).await.or_page(tr)?;
    Ok((calendars, services))
}

async fn sla_new_page(state: &AppState, tr: &Tr, who: &Identity, f: &SlaForm, err: Option<AppError>) -> UiResult {
    let p = &who.principal;
    let projects = state
        .app
        .list_projects(p, &Default::default(), &PageRequest { sort: super::admin::PROJECT_SORT, desc: false, after: None, limit: 1000 })
        .await
        .or_page(tr)?
        .items
        .into_iter()
        .map(|pr| (pr.id, format!("{} — {}", pr.code, pr.name)))
        .collect();
    let (calendars, services) = sla_choices(state, tr, p).await?;
    let mut fields = f.fields(tr, Some(projects), calendars, services);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), "/slas/new", None);
    let mut page = FormPage::new(ctx, tr.t("action-new-sla"), "/slas".into(), fields, "/slas");
    page.errors = errors;
    Ok(render_status(status_for(&err), &page))
}

pub async fn sla_new(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    sla_new_page(&state, &tr, &who, &SlaForm::new_default(), None).await
}

pub async fn sla_create(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    CsrfForm(f): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    let f = SlaForm::from_pairs(&Pairs(f));
    let r = match f.input() {
        Ok(input) => state.app.create_sla(&who.principal, input).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(s) => Ok(see_other(&format!("/slas/{}", s.id), "created")),
        Err(e) => sla_new_page(&state, &tr, &who, &f, Some(remap(e, sla_field))).await,
    }
}

async fn sla_page(state: &AppState, tr: &Tr, who: &Identity, id: &str, form: Option<(SlaForm, AppError)>, flash: Option<&str>) -> UiResult {
    let p = &who.principal;
    let s = state.app.get_sla(p, id).await.or_page(tr)?;
    let (f, err) = match form {
        Some((f, e)) => (f, Some(e)),
        None => (SlaForm::of(&s), None),
    };
    let (calendars, services) = sla_choices(state, tr, p).await?;
    let mut fields = f.fields(tr, None, calendars, services);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let status = SlaStatus::parse(&s.status).unwrap_or(SlaStatus::Draft);
    let ctx = Ctx::new(tr, Some(who), &format!("/slas/{id}"), flash);
    let mut page =
        FormPage::new(ctx, format!("{} ({})", s.name, tr.t(&format!("sla-status-{}", s.status))), format!("/slas/{id}"), fields, "/slas");
    page.version = Some(s.version);
    page.errors = errors;
    page.editable = may_manage(p) && status.is_editable();
    let is_pm = p.has(Role::ProjectManager) && p.project_ids.contains(&s.project_id) && !p.is_read_only();
    let actions: Vec<Row> = status
        .actions()
        .into_iter()
        .filter(|a| may_approve(p) || (*a == SlaAction::Activate && is_pm))
        .map(|a| Row { href: format!("/slas/{id}/lifecycle/{}", a.as_str()), cells: vec![tr.t(&format!("sla-action-{}", a.as_str()))] })
        .collect();
    let approval = match (&s.approved_by, s.approved_at) {
        (Some(by), Some(at)) => tr.t1("sla-approved-at", "when", tr.datetime(&at)) + &format!(" ({by})"),
        _ => tr.t("sla-not-approved"),
    };
    page.panels.push(Panel { title: tr.t("sla-lifecycle-title"), columns: vec![approval], rows: actions, action: None });
    if p.is_staff() {
        let f = SupportFilter { sla_id: Some(id.to_string()), ..Default::default() };
        let mut rows = Vec::new();
        for (kind, base) in [(SupportKind::Ola, "/olas"), (SupportKind::Contract, "/contracts")] {
            for a in state.app.list_support(p, kind, &f, &all()).await.or_page(tr)?.items {
                rows.push(Row { href: format!("{base}/{}", a.id), cells: vec![a.name, tr.t(&format!("support-kind-{}", a.kind))] });
            }
        }
        page.panels.push(Panel {
            title: tr.t("sla-supported-by"),
            columns: vec![tr.t("field-name"), tr.t("field-kind")],
            rows,
            action: None,
        });
    }
    page.panels.extend(super::sla_clocks::escalation_panel(state, tr, p, id).await.or_page(tr)?);
    page.show_history = true;
    page.history = super::readable_history(&state.app, tr, &who.principal, &state.app.history("sla", id).await.or_page(tr)?).await?;
    Ok(render_status(status_for(&err), &page))
}

pub async fn sla_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    sla_page(&state, &tr, &who, &id, None, q.flash.as_deref()).await
}

pub async fn sla_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    let f = SlaForm::from_pairs(&Pairs(f));
    let r = match f.input() {
        Ok(input) => state.app.update_sla(&who.principal, &id, input, expected_version(&f.version)).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => Ok(see_other(&format!("/slas/{id}"), "saved")),
        Err(e) => sla_page(&state, &tr, &who, &id, Some((f, remap(e, sla_field))), None).await,
    }
}

fn action_of(tr: &Tr, a: &str) -> Result<SlaAction, super::UiError> {
    SlaAction::parse(a).ok_or_else(|| super::UiError(tr.clone(), AppError::NotFound))
}

pub async fn sla_lifecycle_form(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, action)): Path<(String, String)>,
) -> UiResult {
    let a = action_of(&tr, &action)?;
    let s = state.app.get_sla(&who.principal, &id).await.or_page(&tr)?;
    let ctx = Ctx::new(&tr, Some(&who), &format!("/slas/{id}/lifecycle/{action}"), None);
    let label = tr.t(&format!("sla-action-{}", a.as_str()));
    let mut page =
        FormPage::new(ctx, format!("{label} — {}", s.name), format!("/slas/{id}/lifecycle/{}", a.as_str()), vec![], &format!("/slas/{id}"));
    page.version = Some(s.version);
    page.submit = label;
    page.errors = vec![tr.t(&format!("sla-action-{}-help", a.as_str()))];
    Ok(render(&page))
}

pub async fn sla_lifecycle(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, action)): Path<(String, String)>,
    CsrfForm(f): CsrfForm<VersionOnly>,
) -> UiResult {
    let a = action_of(&tr, &action)?;
    match state.app.sla_action(&who.principal, &id, a, expected_version(&f.version)).await {
        Ok(_) => Ok(see_other(&format!("/slas/{id}"), "saved")),
        Err(e @ (AppError::Forbidden | AppError::InvalidTransition(_) | AppError::Stale | AppError::ProcessDisabled(_))) => {
            let mut r = sla_page(&state, &tr, &who, &id, None, None).await?;
            *r.status_mut() = crate::error::status_of(&e);
            let _ = e;
            Ok(r)
        }
        Err(e) => Err(super::UiError(tr, e)),
    }
}

// ---------------------------------------------------------------- OLAs and underpinning contracts

fn kind_of(base: &str) -> SupportKind {
    if base == "/olas" { SupportKind::Ola } else { SupportKind::Contract }
}

#[derive(Default)]
pub struct SupportForm {
    name: String,
    description: String,
    provider_team_id: String,
    supplier_name: String,
    supplier_contact: String,
    reference: String,
    valid_from: String,
    valid_to: String,
    sla_ids: Vec<String>,
    targets: TargetsForm,
    version: Option<String>,
}

impl SupportForm {
    fn from_pairs(p: &Pairs) -> SupportForm {
        SupportForm {
            name: p.one("name"),
            description: p.one("description"),
            provider_team_id: p.one("provider_team_id"),
            supplier_name: p.one("supplier_name"),
            supplier_contact: p.one("supplier_contact"),
            reference: p.one("reference"),
            valid_from: p.one("valid_from"),
            valid_to: p.one("valid_to"),
            sla_ids: p.many("sla_ids"),
            targets: TargetsForm::from_pairs(p),
            version: p.version(),
        }
    }

    fn of(s: &SupportRecord) -> SupportForm {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        SupportForm {
            name: s.name.clone(),
            description: o(&s.description),
            provider_team_id: o(&s.provider_team_id),
            supplier_name: o(&s.supplier_name),
            supplier_contact: o(&s.supplier_contact),
            reference: o(&s.reference),
            valid_from: o(&s.valid_from),
            valid_to: o(&s.valid_to),
            sla_ids: s.sla_ids.clone(),
            targets: s.targets.as_ref().map(TargetsForm::of).unwrap_or_default(),
            version: None,
        }
    }

    fn input(&self) -> Result<SupportInput, AppError> {
        let mut errs = Vec::new();
        let targets = self.targets.parse(&mut errs);
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        Ok(SupportInput {
            name: self.name.clone(),
            description: some(&self.description),
            provider_team_id: some(&self.provider_team_id),
            supplier_name: some(&self.supplier_name),
            supplier_contact: some(&self.supplier_contact),
            reference: some(&self.reference),
            targets,
            valid_from: some(&self.valid_from),
            valid_to: some(&self.valid_to),
            sla_ids: self.sla_ids.clone(),
        })
    }

    fn fields(&self, tr: &Tr, kind: SupportKind, teams: Vec<(String, String)>, slas: Vec<(String, String)>) -> Vec<Field> {
        let mut v = vec![Field::new(tr, "name", "text", &self.name).required()];
        match kind {
            SupportKind::Ola => v.push(
                Field::new(tr, "provider_team_id", "select", "").required().options(teams, std::slice::from_ref(&self.provider_team_id)),
            ),
            SupportKind::Contract => {
                v.push(Field::new(tr, "supplier_name", "text", &self.supplier_name).required());
                v.push(Field::new(tr, "supplier_contact", "textarea", &self.supplier_contact));
            }
        }
        v.push(Field::new(tr, "reference", "text", &self.reference));
        v.push(Field::new(tr, "valid_from", "date", &self.valid_from));
        v.push(Field::new(tr, "valid_to", "date", &self.valid_to));
        v.push(Field::new(tr, "sla_ids", "multiselect", "").options(slas, &self.sla_ids).help(tr.t("help-support-slas")));
        let mut t = self.targets.fields(tr);
        if let Some(first) = t.first_mut() {
            first.help = tr.t("help-support-targets");
        }
        v.extend(t);
        v.push(Field::new(tr, "description", "textarea", &self.description));
        v
    }
}

fn support_field(f: &str) -> String {
    target_field(f).unwrap_or_else(|| f.to_string())
}

async fn support_choices(
    state: &AppState,
    tr: &Tr,
    who: &Principal,
) -> Result<(Vec<(String, String)>, Vec<(String, String)>), super::UiError> {
    let teams = state.app.list_teams(who, None, &all()).await.or_page(tr)?.items.into_iter().map(|t| (t.id, t.name)).collect();
    let slas = sla_options(state, who).await.or_page(tr)?;
    Ok((teams, slas))
}

fn support_titles(kind: SupportKind) -> (&'static str, &'static str) {
    match kind {
        SupportKind::Ola => ("nav-olas", "action-new-ola"),
        SupportKind::Contract => ("nav-contracts", "action-new-contract"),
    }
}

async fn support_list(state: &AppState, tr: &Tr, who: &Identity, q: &ListQuery, base: &str) -> UiResult {
    let kind = kind_of(base);
    let (title, new_key) = support_titles(kind);
    let p = &who.principal;
    let list =
        state.app.list_support(p, kind, &SupportFilter { q: Some(q.q.clone()), ..Default::default() }, &page(q)).await.or_page(tr)?;
    let rows = list
        .items
        .iter()
        .map(|a| Row {
            href: format!("{base}/{}", a.id),
            cells: vec![
                a.name.clone(),
                a.supplier_name.clone().unwrap_or_default(),
                a.sla_ids.len().to_string(),
                format!("{} – {}", a.valid_from.clone().unwrap_or_default(), a.valid_to.clone().unwrap_or_default()),
            ],
        })
        .collect();
    let ctx = Ctx::new(tr, Some(who), base, q.flash.as_deref());
    let new = may_manage(p).then(|| (format!("{base}/new"), tr.t(new_key)));
    let columns = vec![tr.t("field-name"), tr.t("field-supplier-name"), tr.t("field-sla-count"), tr.t("field-validity")];
    Ok(list_page(ctx, tr.t(title), base, q, new, (columns, rows), list.next_cursor))
}

pub async fn olas(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    support_list(&state, &tr, &who, &q, "/olas").await
}

pub async fn contracts(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    support_list(&state, &tr, &who, &q, "/contracts").await
}

async fn support_new_page(state: &AppState, tr: &Tr, who: &Identity, base: &str, f: &SupportForm, err: Option<AppError>) -> UiResult {
    let kind = kind_of(base);
    let (teams, slas) = support_choices(state, tr, &who.principal).await?;
    let mut fields = f.fields(tr, kind, teams, slas);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), &format!("{base}/new"), None);
    let mut page = FormPage::new(ctx, tr.t(support_titles(kind).1), base.to_string(), fields, base);
    page.errors = errors;
    Ok(render_status(status_for(&err), &page))
}

pub async fn ola_new(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    support_new_page(&state, &tr, &who, "/olas", &SupportForm::default(), None).await
}

pub async fn contract_new(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    support_new_page(&state, &tr, &who, "/contracts", &SupportForm::default(), None).await
}

async fn support_create(state: &AppState, tr: &Tr, who: &Identity, base: &str, f: SupportForm) -> UiResult {
    let r = match f.input() {
        Ok(input) => state.app.create_support(&who.principal, kind_of(base), input).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(a) => Ok(see_other(&format!("{base}/{}", a.id), "created")),
        Err(e) => support_new_page(state, tr, who, base, &f, Some(remap(e, support_field))).await,
    }
}

pub async fn ola_create(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    CsrfForm(f): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    let f = SupportForm::from_pairs(&Pairs(f));
    support_create(&state, &tr, &who, "/olas", f).await
}

pub async fn contract_create(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    CsrfForm(f): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    let f = SupportForm::from_pairs(&Pairs(f));
    support_create(&state, &tr, &who, "/contracts", f).await
}

async fn support_page(
    state: &AppState,
    tr: &Tr,
    who: &Identity,
    base: &str,
    id: &str,
    form: Option<(SupportForm, AppError)>,
    flash: Option<&str>,
) -> UiResult {
    let kind = kind_of(base);
    let p = &who.principal;
    let a = state.app.get_support(p, kind, id).await.or_page(tr)?;
    let (f, err) = match form {
        Some((f, e)) => (f, Some(e)),
        None => (SupportForm::of(&a), None),
    };
    let (teams, slas) = support_choices(state, tr, p).await?;
    let mut fields = f.fields(tr, kind, teams, slas);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), &format!("{base}/{id}"), flash);
    let mut page = FormPage::new(ctx, a.name.clone(), format!("{base}/{id}"), fields, base);
    page.version = Some(a.version);
    page.errors = errors;
    page.editable = may_manage(p);
    page.show_history = true;
    page.history = super::readable_history(
        &state.app,
        tr,
        &who.principal,
        &state.app.history(if kind == SupportKind::Ola { "ola" } else { "underpinning_contract" }, id).await.or_page(tr)?,
    )
    .await?;
    Ok(render_status(status_for(&err), &page))
}

pub async fn ola_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    support_page(&state, &tr, &who, "/olas", &id, None, q.flash.as_deref()).await
}

pub async fn contract_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    support_page(&state, &tr, &who, "/contracts", &id, None, q.flash.as_deref()).await
}

async fn support_update(state: &AppState, tr: &Tr, who: &Identity, base: &str, id: &str, f: SupportForm) -> UiResult {
    let r = match f.input() {
        Ok(input) => state.app.update_support(&who.principal, kind_of(base), id, input, expected_version(&f.version)).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => Ok(see_other(&format!("{base}/{id}"), "saved")),
        Err(e) => support_page(state, tr, who, base, id, Some((f, remap(e, support_field))), None).await,
    }
}

pub async fn ola_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    let f = SupportForm::from_pairs(&Pairs(f));
    support_update(&state, &tr, &who, "/olas", &id, f).await
}

pub async fn contract_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    let f = SupportForm::from_pairs(&Pairs(f));
    support_update(&state, &tr, &who, "/contracts", &id, f).await
}

//! Service level management (§6.1) pages: the SLA panel of the ticket page and the time-left
//! column of the queues, the escalation rules of an SLA, and the SLA attainment report.

use super::{Ctx, Field, OrPage, Panel, Row, UiResult, attach_errors, render_status, see_other};
use crate::AppState;
use crate::api::sla_clocks::{PeriodQuery, period};
use crate::auth::{CsrfForm, Identity, UiUser, urlencode};
use crate::i18n::Tr;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::Datelike;
use keel_app::sla_clocks::{AttainmentGroup, RULE_ACTIONS, RuleInput};
use keel_app::{AppError, Principal};
use keel_domain::notification::Audience;
use keel_domain::sla::TargetKind;
use keel_store::page::{PageRequest, SortKey, SortKind};
use keel_store::sla_clocks::ClockRow;
use std::collections::HashMap;

type Form = HashMap<String, String>;

/// A business or wall-clock duration as hours and minutes in the reader's language.
pub fn duration(tr: &Tr, ms: i64) -> String {
    let minutes = ms.abs() / 60_000;
    let (h, m) = (minutes / 60, minutes % 60);
    if h == 0 { tr.t1("sla-minutes", "m", m) } else { format!("{} {}", tr.t1("sla-hours", "h", h), tr.t1("sla-minutes", "m", m)) }
}

/// One clock as the ticket page and the queues show it.
pub struct ClockView {
    pub kind: String,
    pub state: String,
    pub state_label: String,
    /// CSS class giving the colour: `sla-running`, `sla-warning`, `sla-breached`, `sla-paused`, `sla-met`.
    pub class: String,
    pub due: String,
    pub time_left: String,
}

pub fn clock_view(tr: &Tr, c: &ClockRow, now: i64) -> ClockView {
    let time_left = match (c.state.as_str(), c.due_at) {
        ("met", _) => tr.t1("sla-met-at", "when", tr.opt_datetime(&c.met_at)),
        ("paused", _) => tr.t1("sla-paused-left", "time", duration(tr, c.target_ms - c.elapsed_ms)),
        ("breached", Some(due)) => tr.t1("sla-overdue", "time", duration(tr, c.stopped_at.unwrap_or(now) - due)),
        (_, Some(due)) if due <= now => tr.t1("sla-overdue", "time", duration(tr, now - due)),
        (_, Some(due)) => tr.t1("sla-left", "time", duration(tr, due - now)),
        (_, None) => String::new(),
    };
    ClockView {
        kind: tr.t(&format!("sla-target-{}", c.kind.replace('_', "-"))),
        state: c.state.clone(),
        state_label: tr.t(&format!("sla-state-{}", c.state)),
        class: format!("sla-{}", c.state),
        due: tr.opt_datetime(&c.due_at),
        time_left,
    }
}

/// The SLA panel of a ticket page.
pub fn ticket_panel(state: &AppState, tr: &Tr, s: &keel_app::sla_clocks::TicketSla) -> Vec<ClockView> {
    let now = state.app.now();
    s.clocks.iter().map(|c| clock_view(tr, c, now)).collect()
}

/// The most urgent open clock of each listed ticket, for the queues' time-left column.
pub fn queue_clocks(state: &AppState, tr: &Tr, clocks: HashMap<String, ClockRow>) -> HashMap<String, ClockView> {
    let now = state.app.now();
    clocks.into_iter().map(|(id, c)| (id, clock_view(tr, &c, now))).collect()
}

fn rule_cells(tr: &Tr, r: &keel_store::sla_clocks::RuleRecord) -> Vec<String> {
    let what = match r.action.as_str() {
        "notify" => {
            let a: Vec<Audience> = serde_json::from_value(r.audience.clone()).unwrap_or_default();
            a.iter().map(|x| audience_label(tr, x)).collect::<Vec<_>>().join(", ")
        }
        "reassign" => [r.team_id.clone(), r.agent_id.clone()].into_iter().flatten().collect::<Vec<_>>().join(" · "),
        _ => String::new(),
    };
    vec![
        tr.t(&format!("sla-target-{}", r.target_kind.replace('_', "-"))),
        format!("{}%", r.percent),
        tr.t(&format!("sla-rule-action-{}", r.action.replace('_', "-"))),
        what,
    ]
}

const AUDIENCES: [&str; 7] = ["assignee", "assignment_team", "team_lead", "project_manager", "reporter", "customer_contacts", "watchers"];

fn audience_label(tr: &Tr, a: &Audience) -> String {
    let key = serde_json::to_value(a).ok().and_then(|v| v["to"].as_str().map(str::to_string)).unwrap_or_default();
    let k = format!("sla-audience-{}", key.replace('_', "-"));
    if tr.has(&k) { tr.t(&k) } else { key }
}

/// The escalation rules panel of an SLA page (staff only).
pub async fn escalation_panel(state: &AppState, tr: &Tr, p: &Principal, sla_id: &str) -> Result<Option<Panel>, AppError> {
    if !p.is_staff() {
        return Ok(None);
    }
    let rules = state.app.list_escalation_rules(p, sla_id).await?;
    Ok(Some(Panel {
        title: tr.t("sla-escalations-title"),
        columns: vec![tr.t("field-target-kind"), tr.t("field-percent"), tr.t("field-rule-action"), tr.t("sla-rule-what")],
        rows: rules.iter().map(|r| Row { href: String::new(), cells: rule_cells(tr, r) }).collect(),
        action: Some((format!("/slas/{sla_id}/escalations"), tr.t("sla-escalations-manage"))),
    }))
}

pub struct RuleRow {
    pub id: String,
    pub cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "sla/escalations.html")]
pub struct EscalationsPage {
    pub ctx: Ctx,
    pub title: String,
    pub sla_id: String,
    pub rules: Vec<RuleRow>,
    pub editable: bool,
    pub fields: Vec<Field>,
    pub errors: Vec<String>,
}

fn val(f: &Form, k: &str) -> String {
    f.get(k).cloned().unwrap_or_default()
}

async fn escalations_page(state: &AppState, tr: &Tr, who: &Identity, id: &str, failed: Option<(Form, AppError)>) -> UiResult {
    let p = &who.principal;
    let sla = state.app.get_sla(p, id).await.or_page(tr)?;
    let rules = state.app.list_escalation_rules(p, id).await.or_page(tr)?;
    let empty = Form::new();
    let f = failed.as_ref().map(|x| &x.0).unwrap_or(&empty);
    let kinds = TargetKind::ALL.iter().map(|k| (k.as_str().to_string(), tr.t(&format!("sla-target-{}", k.as_str().replace('_', "-")))));
    let actions = RULE_ACTIONS.iter().map(|a| (a.to_string(), tr.t(&format!("sla-rule-action-{}", a.replace('_', "-")))));
    let audiences = AUDIENCES.iter().map(|a| (a.to_string(), tr.t(&format!("sla-audience-{}", a.replace('_', "-")))));
    let teams = state
        .app
        .list_teams(
            p,
            None,
            &PageRequest { sort: SortKey { name: "name", column: "name", kind: SortKind::Text }, desc: false, after: None, limit: 1000 },
        )
        .await
        .or_page(tr)?;
    let mut fields = vec![
        Field::new(tr, "target_kind", "select", "").required().options(kinds, &[val(f, "target_kind")]),
        Field::new(tr, "percent", "number", val(f, "percent")).required().help(tr.t("sla-percent-help")),
        Field::new(tr, "rule_action", "select", "").required().options(actions, &[val(f, "rule_action")]),
        Field::new(tr, "audience", "select", "").options(audiences, &[val(f, "audience")]),
        Field::new(tr, "team_id", "select", "").options(teams.items.into_iter().map(|t| (t.id, t.name)), &[val(f, "team_id")]),
    ];
    let errors = failed.as_ref().map(|(_, e)| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let page = EscalationsPage {
        ctx: Ctx::new(tr, Some(who), &format!("/slas/{id}"), None),
        title: format!("{} · {}", sla.name, tr.t("sla-escalations-title")),
        sla_id: id.to_string(),
        rules: rules.iter().map(|r| RuleRow { id: r.id.clone(), cells: rule_cells(tr, r) }).collect(),
        editable: keel_app::service_level::may_manage(p),
        fields,
        errors,
    };
    let status = if failed.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(render_status(status, &page))
}

pub async fn escalations(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    escalations_page(&state, &tr, &who, &id, None).await
}

pub async fn escalation_create(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let audience = match val(&f, "audience").as_str() {
        "" => vec![],
        a => serde_json::from_value::<Audience>(serde_json::json!({ "to": a })).map(|x| vec![x]).unwrap_or_default(),
    };
    let percent = val(&f, "percent").trim().parse::<i64>().ok();
    let input = RuleInput {
        target_kind: val(&f, "target_kind"),
        percent: percent.unwrap_or(0),
        action: val(&f, "rule_action"),
        audience,
        team_id: Some(val(&f, "team_id")),
        agent_id: None,
    };
    let r = match percent {
        None => Err(AppError::field("percent", "invalid_number", "percent must be a whole number")),
        Some(_) => state.app.create_escalation_rule(&who.principal, &id, input).await.map(|_| ()),
    };
    match r {
        Ok(()) => Ok(see_other(&format!("/slas/{id}/escalations"), "saved")),
        Err(AppError::Validation(v)) => escalations_page(&state, &tr, &who, &id, Some((f, AppError::Validation(v)))).await,
        Err(e) => Err(super::UiError(tr, e)),
    }
}

pub async fn escalation_delete(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, rule)): Path<(String, String)>,
    CsrfForm(_f): CsrfForm<Form>,
) -> UiResult {
    state.app.delete_escalation_rule(&who.principal, &id, &rule).await.or_page(&tr)?;
    Ok(see_other(&format!("/slas/{id}/escalations"), "saved"))
}

// ---------------------------------------------------------------- attainment report

pub struct GroupTable {
    pub title: String,
    pub rows: Vec<AttainmentGroup>,
}

pub struct BreachRow {
    pub href: String,
    pub number: String,
    pub target: String,
    pub due: String,
    pub breached: String,
    pub late_by: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "sla/attainment.html")]
pub struct AttainmentPage {
    pub ctx: Ctx,
    pub title: String,
    pub from: String,
    pub to: String,
    pub csv_href: String,
    pub total: Option<AttainmentGroup>,
    pub tables: Vec<GroupTable>,
    pub breaches: Vec<BreachRow>,
    pub error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct PeriodForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

pub async fn attainment(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<PeriodForm>) -> UiResult {
    let today = chrono::DateTime::from_timestamp_millis(state.app.now()).unwrap_or_default().date_naive();
    let first = today.with_day0(0).unwrap_or(today);
    let from = if q.from.is_empty() { first.format("%Y-%m-%d").to_string() } else { q.from.clone() };
    let to = if q.to.is_empty() { today.format("%Y-%m-%d").to_string() } else { q.to.clone() };
    let pq = PeriodQuery { from: from.clone(), to: to.clone() };
    let csv_href = format!("/api/v1/reports/sla-attainment.csv?from={}&to={}", urlencode(&from), urlencode(&to));
    let mut page = AttainmentPage {
        ctx: Ctx::new(&tr, Some(&who), "/reports/sla-attainment", None),
        title: tr.t("sla-attainment-title"),
        from,
        to,
        csv_href,
        total: None,
        tables: vec![],
        breaches: vec![],
        error: None,
    };
    let range = match period(&pq) {
        Ok(r) => r,
        Err(_) => {
            page.error = Some(tr.t("err-invalid-date"));
            return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let r = match state.app.sla_attainment(&who.principal, range.0, range.1).await {
        Ok(r) => r,
        Err(AppError::Validation(_)) => {
            page.error = Some(tr.t("sla-period-invalid"));
            return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
        Err(e) => return Err(super::UiError(tr, e)),
    };
    let upper = |mut g: Vec<AttainmentGroup>| {
        for x in g.iter_mut() {
            if x.label.is_empty() {
                x.label = tr.t("sla-no-service");
            }
        }
        g
    };
    page.tables = vec![
        GroupTable { title: tr.t("field-organization-id"), rows: r.by_organization.clone() },
        GroupTable { title: tr.t("field-project-id"), rows: r.by_project.clone() },
        GroupTable { title: tr.t("sla-by-service"), rows: upper(r.by_service.clone()) },
        GroupTable { title: tr.t("field-priority"), rows: r.by_priority.clone() },
    ];
    page.breaches = r
        .breaches
        .iter()
        .map(|b| BreachRow {
            href: format!("/incidents/{}", b.ticket_id),
            number: b.number.clone(),
            target: tr.t(&format!("sla-target-{}", b.target.replace('_', "-"))),
            due: tr.opt_datetime(&b.due_at),
            breached: tr.opt_datetime(&b.breached_at),
            late_by: duration(&tr, b.late_by_ms),
            reason: b.reason.clone(),
        })
        .collect();
    page.total = Some(r.total);
    Ok(render_status(StatusCode::OK, &page))
}

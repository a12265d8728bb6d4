//! The audit trail across records, background jobs and the integrity check, for auditors,
//! administrators and the management representative.

use super::{Ctx, Field, FormPage, ListPage, OrPage, Row, UiError, UiResult, attach_errors, render, render_status, see_other, status_for};
use crate::AppState;
use crate::auth::{CsrfForm, Identity, UiUser};
use crate::i18n::{Arg, Tr};
use axum::extract::{Path, Query, State};
use keel_app::AppError;
use keel_store::audit::TrailFilter;

#[derive(serde::Deserialize, Default)]
pub struct TrailQuery {
    #[serde(default)]
    q: String,
    before: Option<String>,
    flash: Option<String>,
}

pub async fn audit(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<TrailQuery>) -> UiResult {
    let before = q.before.as_deref().and_then(|b| b.split_once(':')).and_then(|(at, id)| Some((at.parse().ok()?, id.to_string())));
    let entity_type = Some(q.q.trim().to_string()).filter(|s| !s.is_empty());
    let f = TrailFilter { entity_type, before, limit: 100, ..Default::default() };
    let entries = state.app.audit_trail(&who.principal, &f).await.or_page(&tr)?;
    let next = (entries.len() == 100)
        .then(|| entries.last().map(|e| format!("/audit?q={}&before={}:{}", crate::auth::urlencode(&q.q), e.at, e.id)))
        .flatten();
    let rows = entries
        .iter()
        .map(|e| {
            let n = e.changes.as_array().map(|a| a.len()).unwrap_or(0);
            let href = match e.entity_type.as_str() {
                "organization" => format!("/organizations/{}", e.entity_id),
                "project" => format!("/projects/{}", e.entity_id),
                "team" => format!("/teams/{}", e.entity_id),
                "user" => format!("/users/{}", e.entity_id),
                "business_calendar" => format!("/calendars/{}", e.entity_id),
                "service" => format!("/catalogue/{}", e.entity_id),
                "sla" => format!("/slas/{}", e.entity_id),
                "ola" => format!("/olas/{}", e.entity_id),
                "underpinning_contract" => format!("/contracts/{}", e.entity_id),
                _ => String::new(),
            };
            Row {
                href,
                cells: vec![
                    tr.datetime(&e.at),
                    e.actor_label.clone(),
                    tr.t(&format!("audit-action-{}", e.action)),
                    format!("{} {}", e.entity_type, e.entity_id),
                    tr.t1("audit-field-count", "count", n),
                ],
            }
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/audit", q.flash.as_deref());
    Ok(render(&ListPage {
        ctx,
        title: tr.t("nav-audit"),
        base_href: "/audit".into(),
        q: q.q.clone(),
        new_href: Some("/audit/verify".into()),
        new_label: tr.t("action-verify-audit"),
        columns: vec![tr.t("history-when"), tr.t("history-who"), tr.t("history-action"), tr.t("audit-record"), tr.t("history-changes")],
        rows,
        next_href: next,
    }))
}

pub async fn verify(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    if !who.principal.may_admin(keel_domain::identity::AdminArea::AuditTrail, keel_domain::identity::Action::Read) {
        return Err(super::UiError(tr, keel_app::AppError::Forbidden));
    }
    let report = state.app.integrity_check().await.or_page(&tr)?;
    let ok = report.ok();
    let counted = tr.number(&report.audit_entries);
    let mut message = tr.args("audit-verified-entries", &[("count", Arg::Text(&counted)), ("n", Arg::Number(report.audit_entries))]);
    for f in &report.audit_faults {
        message.push_str(" · ");
        message.push_str(&serde_json::to_string(f).unwrap_or_default());
    }
    for m in &report.database_messages {
        message.push_str(" · ");
        message.push_str(m);
    }
    let ctx = Ctx::new(&tr, Some(&who), "/audit", None);
    Ok(render(&super::MessagePage {
        ctx,
        title: tr.t(if ok { "audit-verify-ok" } else { "audit-verify-failed" }),
        kind: if ok { "ok" } else { "error" },
        message,
        secret: None,
        back_href: "/audit".into(),
    }))
}

pub async fn jobs(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<TrailQuery>) -> UiResult {
    let status = Some(q.q.trim()).filter(|s| !s.is_empty());
    let jobs = state.app.list_jobs(&who.principal, status).await.or_page(&tr)?;
    let rows = jobs
        .iter()
        .map(|j| Row {
            href: if j.status == "failed" { format!("/admin/jobs/{}/retry", j.id) } else { String::new() },
            cells: vec![
                j.kind.clone(),
                tr.t(&format!("job-status-{}", j.status)),
                tr.datetime(&j.run_at),
                j.attempts.to_string(),
                j.schedule.clone().unwrap_or_default(),
                j.last_error.clone().unwrap_or_default(),
            ],
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/admin/jobs", q.flash.as_deref());
    Ok(render(&ListPage {
        ctx,
        title: tr.t("nav-jobs"),
        base_href: "/admin/jobs".into(),
        q: q.q.clone(),
        new_href: Some("/admin/jobs/schedules".into()),
        new_label: tr.t("job-schedules"),
        columns: vec![
            tr.t("job-kind"),
            tr.t("field-status"),
            tr.t("job-run-at"),
            tr.t("job-attempts"),
            tr.t("job-schedule"),
            tr.t("job-last-error"),
        ],
        rows,
        next_href: None,
    }))
}

pub async fn job_retry_form(tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    let ctx = Ctx::new(&tr, Some(&who), "/admin/jobs", None);
    let mut page = super::FormPage::new(ctx, tr.t("action-retry-job"), format!("/admin/jobs/{id}/retry"), vec![], "/admin/jobs");
    page.submit = tr.t("action-retry-job");
    Ok(render(&page))
}

pub async fn job_retry(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<serde_json::Value>,
) -> UiResult {
    state.app.retry_job(&who.principal, &id).await.or_page(&tr)?;
    Ok(see_other("/admin/jobs", "job-retried"))
}

// ---------------------------------------------------------------- job schedules

pub async fn job_schedules(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<TrailQuery>) -> UiResult {
    let list = state.app.job_schedules(&who.principal).await.or_page(&tr)?;
    let rows = list
        .iter()
        .map(|s| Row {
            href: format!("/admin/jobs/schedules/{}", s.kind),
            cells: vec![
                s.kind.clone(),
                s.schedule.clone(),
                s.default.clone(),
                tr.t(if s.override_.is_some() { "job-schedule-overridden" } else { "job-schedule-default" }),
            ],
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/admin/jobs/schedules", q.flash.as_deref());
    Ok(render(&ListPage {
        ctx,
        title: tr.t("job-schedules"),
        base_href: "/admin/jobs/schedules".into(),
        q: String::new(),
        new_href: None,
        new_label: String::new(),
        columns: vec![tr.t("job-kind"), tr.t("job-schedule"), tr.t("job-schedule-shipped"), tr.t("field-status")],
        rows,
        next_href: None,
    }))
}

#[derive(serde::Deserialize, Default)]
pub struct ScheduleForm {
    #[serde(default)]
    schedule: String,
}

async fn job_schedule_page(state: &AppState, tr: Tr, who: &Identity, kind: &str, form: Option<(String, AppError)>) -> UiResult {
    let list = state.app.job_schedules(&who.principal).await.or_page(&tr)?;
    let Some(s) = list.into_iter().find(|s| s.kind == kind) else { return Err(UiError(tr, AppError::NotFound)) };
    let (value, err) = match form {
        Some((v, e)) => (v, Some(e)),
        None => (s.override_.clone().unwrap_or_default(), None),
    };
    let mut fields = vec![Field::new(&tr, "schedule", "text", value).help(tr.t1("job-schedule-help", "default", &s.default))];
    let errors = err.as_ref().map(|e| attach_errors(&tr, &mut fields, e)).unwrap_or_default();
    let path = format!("/admin/jobs/schedules/{kind}");
    let ctx = Ctx::new(&tr, Some(who), &path, None);
    let mut page = FormPage::new(ctx, s.kind.clone(), path, fields, "/admin/jobs/schedules");
    page.errors = errors;
    page.editable = who.principal.is_admin();
    page.show_history = true;
    page.history = super::readable_history(
        &state.app,
        &tr,
        &who.principal,
        &state.app.history("setting", &keel_app::jobs::schedule_setting(kind)).await.or_page(&tr)?,
    )
    .await?;
    Ok(render_status(status_for(&err), &page))
}

pub async fn job_schedule_show(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(kind): Path<String>) -> UiResult {
    job_schedule_page(&state, tr, &who, &kind, None).await
}

pub async fn job_schedule_save(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(kind): Path<String>,
    CsrfForm(f): CsrfForm<ScheduleForm>,
) -> UiResult {
    match state.app.set_job_schedule(&who.principal, &kind, Some(&f.schedule)).await {
        Ok(_) => Ok(see_other("/admin/jobs/schedules", "saved")),
        Err(e) => job_schedule_page(&state, tr, &who, &kind, Some((f.schedule, e))).await,
    }
}

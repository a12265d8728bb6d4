//! Pages for communication with customers and staff (ISO/IEC 20000-1 §8.3.2): the delivery log
//! with dead letters to retry, the chat webhooks, and the message templates with a preview.

use super::incidents::{project_options, team_options};
use super::{
    Ctx, Field, FormPage, ListQuery, OrPage, Panel, Row, UiResult, attach_errors, expected_version, list_page, render_status, see_other,
    status_for,
};
use crate::AppState;
use crate::auth::{CsrfForm, Identity, UiUser};
use crate::i18n::Tr;
use axum::extract::{Path, Query, State};
use keel_app::AppError;
use keel_app::notifications::templates::{EVENT_KINDS, LANGUAGES, MessageTemplate};
use keel_app::notifications::{WEBHOOK_KINDS, WebhookInput};
use keel_store::notifications::DeliveryFilter;

fn choices(tr: &Tr, prefix: &str, values: &[&str]) -> Vec<(String, String)> {
    values.iter().map(|v| (v.to_string(), tr.t(&format!("{prefix}-{}", v.replace(['.', '_'], "-"))))).collect()
}

pub async fn deliveries(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    let status = Some(q.q.trim().to_string()).filter(|s| !s.is_empty());
    let list = state.app.list_deliveries(&who.principal, &DeliveryFilter { status, ..Default::default() }).await.or_page(&tr)?;
    let rows = list
        .iter()
        .map(|d| Row {
            href: if d.status == "dead" { format!("/admin/notifications/{}/retry", d.id) } else { String::new() },
            cells: vec![
                d.subject.clone(),
                tr.t(&format!("event-{}", d.event_kind.replace(['.', '_'], "-"))),
                tr.t(&format!("channel-{}", d.channel)),
                d.recipient.clone(),
                tr.t(&format!("delivery-status-{}", d.status)),
                d.attempts.to_string(),
                tr.datetime(&d.updated_at),
                d.last_error.clone().unwrap_or_default(),
            ],
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/admin/notifications", q.flash.as_deref());
    let columns = vec![
        tr.t("field-subject"),
        tr.t("field-event-kind"),
        tr.t("field-channel"),
        tr.t("field-recipient"),
        tr.t("field-status"),
        tr.t("job-attempts"),
        tr.t("field-updated-at"),
        tr.t("job-last-error"),
    ];
    let new = Some(("/admin/notifications/webhooks".to_string(), tr.t("nav-notification-webhooks")));
    Ok(list_page(ctx, tr.t("nav-notifications"), "/admin/notifications", &q, new, (columns, rows), None))
}

pub async fn retry_form(tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    let ctx = Ctx::new(&tr, Some(&who), "/admin/notifications", None);
    let mut page =
        FormPage::new(ctx, tr.t("action-retry-delivery"), format!("/admin/notifications/{id}/retry"), vec![], "/admin/notifications");
    page.submit = tr.t("action-retry-delivery");
    Ok(render_status(axum::http::StatusCode::OK, &page))
}

pub async fn retry(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<serde_json::Value>,
) -> UiResult {
    state.app.retry_delivery(&who.principal, &id).await.or_page(&tr)?;
    Ok(see_other("/admin/notifications", "saved"))
}

// ---------------------------------------------------------------- webhooks

#[derive(serde::Deserialize, Default)]
pub struct WebhookForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    event_kinds: Vec<String>,
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    language: String,
    /// The checkbox posts `false` (hidden) and, when ticked, `true`.
    #[serde(default)]
    active: Vec<String>,
    #[serde(rename = "_version")]
    version: Option<String>,
}

fn webhook_input(f: &WebhookForm) -> WebhookInput {
    WebhookInput {
        name: f.name.clone(),
        kind: f.kind.clone(),
        url: f.url.clone(),
        secret: Some(f.secret.clone()),
        event_kinds: f.event_kinds.clone(),
        project_id: Some(f.project_id.clone()),
        team_id: Some(f.team_id.clone()),
        language: Some(f.language.clone()),
        active: (!f.active.is_empty()).then(|| f.active.iter().any(|a| a == "true")),
    }
}

async fn webhook_fields(state: &AppState, tr: &Tr, who: &Identity, f: &WebhookForm, existing: bool) -> Result<Vec<Field>, AppError> {
    let projects = project_options(state, &who.principal).await?;
    let teams = team_options(state, &who.principal).await?;
    let mut v = vec![
        Field::new(tr, "name", "text", &f.name).required(),
        Field::new(tr, "kind", "select", "").options(choices(tr, "webhook-kind", WEBHOOK_KINDS), std::slice::from_ref(&f.kind)).required(),
        Field::new(tr, "url", "url", &f.url).required(),
        Field::new(tr, "secret", "password", "").help(tr.t("webhook-secret-help")).autocomplete("off"),
        Field::new(tr, "event_kinds", "multiselect", "")
            .options(choices(tr, "event", EVENT_KINDS), &f.event_kinds)
            .help(tr.t("webhook-events-help")),
        Field::new(tr, "project_id", "select", "").options(projects, std::slice::from_ref(&f.project_id)),
        Field::new(tr, "team_id", "select", "").options(teams, std::slice::from_ref(&f.team_id)),
        Field::new(tr, "language", "select", "").options(choices(tr, "language", LANGUAGES), std::slice::from_ref(&f.language)).required(),
    ];
    if existing {
        let on = f.active.is_empty() || f.active.iter().any(|a| a == "true");
        v.push(Field::new(tr, "active", "checkbox", on.to_string()));
    }
    Ok(v)
}

pub async fn webhooks(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    let list = state.app.list_webhooks(&who.principal).await.or_page(&tr)?;
    let rows = list
        .iter()
        .map(|h| Row {
            href: format!("/admin/notifications/webhooks/{}", h.id),
            cells: vec![
                h.name.clone(),
                tr.t(&format!("webhook-kind-{}", h.kind)),
                h.url.clone(),
                tr.t(if h.active { "value-yes" } else { "value-no" }),
            ],
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/admin/notifications/webhooks", q.flash.as_deref());
    let columns = vec![tr.t("field-name"), tr.t("field-kind"), tr.t("field-url"), tr.t("field-active")];
    let new = Some(("/admin/notifications/webhooks/new".to_string(), tr.t("action-new-webhook")));
    Ok(list_page(ctx, tr.t("nav-notification-webhooks"), "/admin/notifications/webhooks", &q, new, (columns, rows), None))
}

async fn webhook_new_page(state: &AppState, tr: &Tr, who: &Identity, f: &WebhookForm, err: Option<AppError>) -> UiResult {
    let mut fields = webhook_fields(state, tr, who, f, false).await.or_page(tr)?;
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), "/admin/notifications/webhooks/new", None);
    let mut page =
        FormPage::new(ctx, tr.t("action-new-webhook"), "/admin/notifications/webhooks".into(), fields, "/admin/notifications/webhooks");
    page.errors = errors;
    Ok(render_status(status_for(&err), &page))
}

pub async fn webhook_new(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    if !who.principal.is_admin() {
        return Err(super::UiError(tr, AppError::Forbidden));
    }
    let f = WebhookForm { language: "zh-CN".into(), ..Default::default() };
    webhook_new_page(&state, &tr, &who, &f, None).await
}

pub async fn webhook_create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<WebhookForm>) -> UiResult {
    match state.app.create_webhook(&who.principal, webhook_input(&f)).await {
        Ok(h) => Ok(see_other(&format!("/admin/notifications/webhooks/{}", h.id), "created")),
        Err(e) => webhook_new_page(&state, &tr, &who, &f, Some(e)).await,
    }
}

async fn webhook_page(
    state: &AppState,
    tr: &Tr,
    who: &Identity,
    id: &str,
    form: Option<(WebhookForm, AppError)>,
    flash: Option<&str>,
) -> UiResult {
    let h = state.app.get_webhook(&who.principal, id).await.or_page(tr)?;
    let (f, err) = match form {
        Some((f, e)) => (f, Some(e)),
        None => (
            WebhookForm {
                name: h.name.clone(),
                kind: h.kind.clone(),
                url: h.url.clone(),
                secret: String::new(),
                event_kinds: h.event_kinds.clone(),
                project_id: h.project_id.clone().unwrap_or_default(),
                team_id: h.team_id.clone().unwrap_or_default(),
                language: h.language.clone(),
                active: vec![h.active.to_string()],
                version: None,
            },
            None,
        ),
    };
    let mut fields = webhook_fields(state, tr, who, &f, true).await.or_page(tr)?;
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), &format!("/admin/notifications/webhooks/{id}"), flash);
    let mut page =
        FormPage::new(ctx, h.name.clone(), format!("/admin/notifications/webhooks/{id}"), fields, "/admin/notifications/webhooks");
    page.version = Some(h.version);
    page.errors = errors;
    page.panels.push(Panel {
        title: tr.t("action-delete-webhook"),
        columns: vec![],
        rows: vec![],
        action: Some((format!("/admin/notifications/webhooks/{id}/delete"), tr.t("action-delete-webhook"))),
    });
    page.show_history = true;
    page.history =
        super::readable_history(&state.app, tr, &who.principal, &state.app.history("notification_webhook", id).await.or_page(tr)?).await?;
    Ok(render_status(status_for(&err), &page))
}

pub async fn webhook_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    webhook_page(&state, &tr, &who, &id, None, q.flash.as_deref()).await
}

pub async fn webhook_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<WebhookForm>,
) -> UiResult {
    match state.app.update_webhook(&who.principal, &id, webhook_input(&f), expected_version(&f.version)).await {
        Ok(_) => Ok(see_other(&format!("/admin/notifications/webhooks/{id}"), "saved")),
        Err(e) => webhook_page(&state, &tr, &who, &id, Some((f, e)), None).await,
    }
}

// ---------------------------------------------------------------- templates

pub async fn templates(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    let list = state.app.notification_templates(&who.principal).await.or_page(&tr)?;
    let rows = list
        .iter()
        .map(|t| Row {
            href: format!("/admin/notifications/templates/{}/{}", t.event_kind, t.language),
            cells: vec![
                tr.t(&format!("event-{}", t.event_kind.replace(['.', '_'], "-"))),
                tr.t(&format!("language-{}", t.language)),
                t.template.subject.clone(),
                tr.t(if t.overridden { "template-overridden" } else { "template-default" }),
            ],
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/admin/notifications/templates", q.flash.as_deref());
    let columns = vec![tr.t("field-event-kind"), tr.t("field-language"), tr.t("field-subject"), tr.t("field-status")];
    Ok(list_page(ctx, tr.t("nav-notification-templates"), "/admin/notifications/templates", &q, None, (columns, rows), None))
}

#[derive(serde::Deserialize, Default)]
pub struct TemplateForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body_text: String,
    #[serde(default)]
    body_html: String,
    /// The checkbox posts `false` (hidden) and, when ticked, `true`.
    #[serde(default)]
    preview_only: Vec<String>,
    #[serde(rename = "_version")]
    version: Option<String>,
}

impl TemplateForm {
    fn preview(&self) -> bool {
        self.preview_only.iter().any(|v| v == "true")
    }
}

async fn template_page(
    state: &AppState,
    tr: &Tr,
    who: &Identity,
    (kind, lang): (&str, &str),
    form: Option<(TemplateForm, Option<AppError>)>,
    flash: Option<&str>,
) -> UiResult {
    let v = state.app.notification_template(&who.principal, kind, lang).await.or_page(tr)?;
    let (f, err) = form.unwrap_or_else(|| {
        let t = &v.template;
        (
            TemplateForm {
                subject: t.subject.clone(),
                body_text: t.body_text.clone(),
                body_html: t.body_html.clone(),
                ..Default::default()
            },
            None,
        )
    });
    let mut fields = vec![
        Field::new(tr, "subject", "text", &f.subject).required(),
        Field::new(tr, "body_text", "textarea", &f.body_text).help(tr.t("template-help")),
        Field::new(tr, "body_html", "textarea", &f.body_html),
        Field::new(tr, "preview_only", "checkbox", if f.preview() { "true" } else { "false" }),
    ];
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let path = format!("/admin/notifications/templates/{kind}/{lang}");
    let ctx = Ctx::new(tr, Some(who), &path, flash);
    let title = format!("{} · {}", tr.t(&format!("event-{}", kind.replace(['.', '_'], "-"))), tr.t(&format!("language-{lang}")));
    let mut page = FormPage::new(ctx, title, path, fields, "/admin/notifications/templates");
    page.version = Some(v.version);
    page.errors = errors;
    if err.is_none() && f.preview() {
        let t = MessageTemplate { subject: f.subject.clone(), body_text: f.body_text.clone(), body_html: f.body_html.clone() };
        if let Ok(r) = state.app.preview_template(&who.principal, &t) {
            page.panels.push(Panel {
                title: tr.t("template-preview"),
                columns: vec![tr.t("template-part"), tr.t("template-rendered")],
                rows: vec![
                    Row { href: String::new(), cells: vec![tr.t("field-subject"), r.subject] },
                    Row { href: String::new(), cells: vec![tr.t("field-body-text"), r.body_text] },
                    Row { href: String::new(), cells: vec![tr.t("field-body-html"), r.body_html] },
                ],
                action: None,
            });
        }
    }
    if v.overridden {
        page.panels.push(Panel {
            title: tr.t("action-reset-template"),
            columns: vec![],
            rows: vec![],
            action: Some((format!("/admin/notifications/templates/{kind}/{lang}/reset"), tr.t("action-reset-template"))),
        });
    }
    page.show_history = true;
    page.history = super::readable_history(
        &state.app,
        tr,
        &who.principal,
        &state.app.history("notification_template", &format!("{kind}/{lang}")).await.or_page(tr)?,
    )
    .await?;
    Ok(render_status(status_for(&err), &page))
}

pub async fn template_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((kind, lang)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    template_page(&state, &tr, &who, (&kind, &lang), None, q.flash.as_deref()).await
}

pub async fn template_save(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((kind, lang)): Path<(String, String)>,
    CsrfForm(f): CsrfForm<TemplateForm>,
) -> UiResult {
    let t = MessageTemplate { subject: f.subject.clone(), body_text: f.body_text.clone(), body_html: f.body_html.clone() };
    if f.preview() {
        let err = state.app.preview_template(&who.principal, &t).err();
        return template_page(&state, &tr, &who, (&kind, &lang), Some((f, err)), None).await;
    }
    match state.app.save_template(&who.principal, &kind, &lang, t, expected_version(&f.version)).await {
        Ok(_) => Ok(see_other(&format!("/admin/notifications/templates/{kind}/{lang}"), "saved")),
        Err(e) => template_page(&state, &tr, &who, (&kind, &lang), Some((f, Some(e))), None).await,
    }
}

// ---------------------------------------------------------------- one's own preferences

#[derive(serde::Deserialize, Default)]
pub struct OptOutForm {
    #[serde(default)]
    opt_outs: Vec<String>,
}

async fn preferences_page(
    state: &AppState,
    tr: &Tr,
    who: &Identity,
    form: Option<(OptOutForm, AppError)>,
    flash: Option<&str>,
) -> UiResult {
    let prefs = state.app.notification_preferences(&who.principal).await.or_page(tr)?;
    let (chosen, err) = match form {
        Some((f, e)) => (f.opt_outs, Some(e)),
        None => (prefs.iter().filter(|p| !p.subscribed).map(|p| p.event_kind.clone()).collect(), None),
    };
    let optional: Vec<&str> = prefs.iter().filter(|p| !p.mandatory).map(|p| p.event_kind.as_str()).collect();
    let mut fields =
        vec![Field::new(tr, "opt_outs", "multiselect", "").options(choices(tr, "event", &optional), &chosen).help(tr.t("opt-outs-help"))];
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), "/profile/notifications", flash);
    let mut page = FormPage::new(ctx, tr.t("opt-outs-title"), "/profile/notifications".into(), fields, "/profile");
    page.errors = errors;
    page.panels.push(Panel {
        title: tr.t("opt-outs-mandatory"),
        columns: vec![tr.t("field-event-kind")],
        rows: prefs
            .iter()
            .filter(|p| p.mandatory)
            .map(|p| Row { href: String::new(), cells: vec![tr.t(&format!("event-{}", p.event_kind.replace(['.', '_'], "-")))] })
            .collect(),
        action: None,
    });
    Ok(render_status(status_for(&err), &page))
}

pub async fn preferences(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    preferences_page(&state, &tr, &who, None, q.flash.as_deref()).await
}

pub async fn preferences_save(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<OptOutForm>) -> UiResult {
    match state.app.set_notification_opt_outs(&who.principal, &f.opt_outs).await {
        Ok(_) => Ok(see_other("/profile/notifications", "saved")),
        Err(e) => preferences_page(&state, &tr, &who, Some((f, e)), None).await,
    }
}

// ---------------------------------------------------------------- deleting and resetting

/// A confirmation page: the action's title, what it does, and one button posting to `action`.
fn confirm_page(tr: &Tr, who: &Identity, (title, help): (&str, &str), action: String, back: &str) -> UiResult {
    if !who.principal.is_admin() {
        return Err(super::UiError(tr.clone(), AppError::Forbidden));
    }
    let ctx = Ctx::new(tr, Some(who), &action, None);
    let mut page = FormPage::new(ctx, tr.t(title), action, vec![], back);
    page.submit = tr.t(title);
    page.panels.push(Panel { title: tr.t(help), columns: vec![], rows: vec![], action: None });
    Ok(render_status(axum::http::StatusCode::OK, &page))
}

pub async fn webhook_delete_form(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    let h = state.app.get_webhook(&who.principal, &id).await.or_page(&tr)?;
    let back = format!("/admin/notifications/webhooks/{}", h.id);
    confirm_page(&tr, &who, ("action-delete-webhook", "webhook-delete-help"), format!("{back}/delete"), &back)
}

pub async fn webhook_delete(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<serde_json::Value>,
) -> UiResult {
    state.app.delete_webhook(&who.principal, &id).await.or_page(&tr)?;
    Ok(see_other("/admin/notifications/webhooks", "webhook-deleted"))
}

pub async fn template_reset_form(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((kind, lang)): Path<(String, String)>,
) -> UiResult {
    state.app.notification_template(&who.principal, &kind, &lang).await.or_page(&tr)?;
    let back = format!("/admin/notifications/templates/{kind}/{lang}");
    confirm_page(&tr, &who, ("action-reset-template", "template-reset-help"), format!("{back}/reset"), &back)
}

pub async fn template_reset(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((kind, lang)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<serde_json::Value>,
) -> UiResult {
    state.app.reset_template(&who.principal, &kind, &lang).await.or_page(&tr)?;
    Ok(see_other(&format!("/admin/notifications/templates/{kind}/{lang}"), "template-reset"))
}

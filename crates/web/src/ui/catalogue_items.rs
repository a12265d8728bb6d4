//! Service request fulfilment setup (REQUIREMENTS §4): the administrators' pages for catalogue
//! items — the orderable items of a catalogue service and the questions of their forms.

use super::incidents::Form;
use super::{Field, OrPage, UiResult};
use crate::AppState;
use crate::auth::{CsrfForm, Identity, UiUser};
use crate::i18n::Tr;
use axum::extract::{Path, Query, State};
use keel_app::AppError;
use keel_app::desk::CatalogueItemInput;
use keel_domain::error::FieldError;
use keel_domain::incident::request_form::{FieldKind, FormField};

const BASE: &str = "/admin/catalogue-items";

/// The form's questions as text: one per line, `key | label | kind | required | choice, choice`.
fn questions_text(fields: &[FormField]) -> String {
    fields
        .iter()
        .map(|f| {
            let mut line = format!("{} | {} | {} | {}", f.key, f.label, f.kind.as_str(), if f.required { "required" } else { "optional" });
            if !f.choices.is_empty() {
                line.push_str(&format!(" | {}", f.choices.join(", ")));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads the questions back; an unreadable line is an error naming its number.
fn parse_questions(text: &str) -> Result<Vec<FormField>, AppError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let parts: Vec<&str> = line.split('|').map(str::trim).collect();
        let kind = parts.get(2).and_then(|k| FieldKind::parse(k));
        let (Some(key), Some(label), Some(kind)) = (parts.first(), parts.get(1), kind) else {
            return Err(AppError::Validation(vec![FieldError::new(
                "form",
                "invalid_format",
                format!("line {}: write key | label | text, number, date or choice | required | choices", i + 1),
            )]));
        };
        out.push(FormField {
            key: key.to_string(),
            label: label.to_string(),
            kind,
            required: matches!(parts.get(3).map(|r| r.to_ascii_lowercase()).as_deref(), Some("required" | "yes" | "1" | "*" | "必填")),
            choices: parts
                .get(4)
                .map(|c| c.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

fn input(f: &Form) -> Result<CatalogueItemInput, AppError> {
    let v = |k: &str| f.get(k).cloned().unwrap_or_default();
    Ok(CatalogueItemInput {
        service_id: v("service_id"),
        code: v("code"),
        name: v("name"),
        description: Some(v("description")).filter(|d| !d.trim().is_empty()),
        fields: parse_questions(&v("form"))?,
        active: Some(f.get("active").is_some_and(|a| a == "true")),
    })
}

pub async fn list(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<super::ListQuery>) -> UiResult {
    if !who.principal.is_staff() {
        return Err(super::UiError(tr, AppError::NotFound));
    }
    let items = state.app.list_catalogue_items(&who.principal).await.or_page(&tr)?;
    let needle = q.q.trim().to_lowercase();
    let rows = items
        .iter()
        .filter(|i| needle.is_empty() || i.name.to_lowercase().contains(&needle) || i.code.to_lowercase().contains(&needle))
        .map(|i| super::Row {
            href: format!("{BASE}/{}", i.id),
            cells: vec![i.name.clone(), i.code.clone(), tr.t(if i.active { "value-yes" } else { "value-no" })],
        })
        .collect();
    let ctx = super::Ctx::new(&tr, Some(&who), BASE, q.flash.as_deref());
    let new = (!who.principal.is_read_only()).then(|| (format!("{BASE}/new"), tr.t("catalogue-item-new")));
    let columns = vec![tr.t("field-name"), tr.t("field-code"), tr.t("field-active")];
    Ok(super::list_page(ctx, tr.t("nav-catalogue-items"), BASE, &q, new, (columns, rows), None))
}

async fn form_page(state: &AppState, tr: &Tr, who: &Identity, id: Option<&str>, f: &Form, err: Option<AppError>) -> UiResult {
    let p = &who.principal;
    let v = |k: &str| f.get(k).cloned().unwrap_or_default();
    let services = super::problems::service_options(state, p).await.or_page(tr)?;
    let mut service = Field::new(tr, "service_id", "select", "").required().options(services, &[v("service_id")]);
    service.label = tr.t("catalogue-item-service");
    let mut form = Field::new(tr, "form", "textarea", v("form")).help(tr.t("catalogue-item-form-help"));
    form.label = tr.t("catalogue-item-form");
    let mut fields = vec![
        service,
        Field::new(tr, "code", "text", v("code")).required(),
        Field::new(tr, "name", "text", v("name")).required(),
        Field::new(tr, "description", "textarea", v("description")),
        form,
        Field::new(tr, "active", "checkbox", if id.is_none() || v("active") == "true" { "true" } else { "false" }),
    ];
    let errors = err.as_ref().map(|e| super::attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let (title, action, path) = match id {
        Some(id) => (v("name"), format!("{BASE}/{id}"), format!("{BASE}/{id}")),
        None => (tr.t("catalogue-item-new"), BASE.to_string(), format!("{BASE}/new")),
    };
    let ctx = super::Ctx::new(tr, Some(who), &path, f.get("flash").map(String::as_str));
    let mut page = super::FormPage::new(ctx, title, action, fields, BASE);
    page.errors = errors;
    page.version = f.get("_version").and_then(|v| v.parse().ok());
    page.editable = !p.is_read_only();
    if let Some(id) = id {
        page.show_history = true;
        page.history =
            super::readable_history(&state.app, tr, &who.principal, &state.app.history("catalogue_item", id).await.or_page(tr)?).await?;
    }
    Ok(super::render_status(super::status_for(&err), &page))
}

pub async fn new(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    form_page(&state, &tr, &who, None, &Form::new(), None).await
}

pub async fn create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<Form>) -> UiResult {
    let r = match input(&f) {
        Ok(i) => state.app.create_catalogue_item(&who.principal, i).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(i) => Ok(super::see_other(&format!("{BASE}/{}", i.id), "created")),
        Err(e) => form_page(&state, &tr, &who, None, &f, Some(e)).await,
    }
}

pub async fn show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<super::ListQuery>,
) -> UiResult {
    if !who.principal.is_staff() {
        return Err(super::UiError(tr, AppError::NotFound));
    }
    let i = state.app.get_catalogue_item(&who.principal, &id).await.or_page(&tr)?;
    let questions = keel_app::desk::form_of(&i).or_page(&tr)?;
    let mut f = Form::new();
    for (k, v) in [
        ("service_id", i.service_id.clone()),
        ("code", i.code.clone()),
        ("name", i.name.clone()),
        ("description", i.description.clone().unwrap_or_default()),
        ("form", questions_text(&questions)),
        ("active", i.active.to_string()),
        ("_version", i.version.to_string()),
    ] {
        f.insert(k.into(), v);
    }
    if let Some(fl) = q.flash {
        f.insert("flash".into(), fl);
    }
    form_page(&state, &tr, &who, Some(&id), &f, None).await
}

pub async fn update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let version = f.get("_version").and_then(|v| v.parse().ok());
    let r = match input(&f) {
        Ok(i) => state.app.update_catalogue_item(&who.principal, &id, i, version).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => Ok(super::see_other(&format!("{BASE}/{id}"), "saved")),
        Err(e) => form_page(&state, &tr, &who, Some(&id), &f, Some(e)).await,
    }
}

//! Service desk pages (REQUIREMENTS §4): files attached from the ticket page (agents and the
//! customer portal) and their download link, with the same authorisation as the API.

use super::{OrPage, UiResult};
use crate::AppState;
use crate::auth::UiUser;
use crate::i18n::Tr;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use keel_app::AppError;

/// Uploads a file (optionally with a reply) from the ticket page; the form carries `_csrf`.
pub async fn upload(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>, mp: Multipart) -> UiResult {
    let expected = who.csrf().to_string();
    let mut typed = std::collections::HashMap::new();
    let r = crate::api::desk::upload(&state.app, &who.principal, &id, mp, |fields| {
        typed = fields.clone();
        let sent = fields.get("_csrf").map(String::as_str).unwrap_or("");
        if expected.is_empty() || !crate::constant_time_eq(sent, &expected) {
            return Err(AppError::Forbidden);
        }
        Ok(())
    })
    .await;
    match r {
        Err(AppError::Forbidden) => Ok(super::error_page(&tr, StatusCode::FORBIDDEN, "error-csrf")),
        r => super::incidents::after_post(&state, &tr, &who, &id, "attachment", typed, r.map(|_| ())).await,
    }
}

/// Downloads a file the reader may see (404 otherwise, as for the ticket itself).
pub async fn download(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    crate::api::desk::serve(&state.app, &who.principal, &id).await.or_page(&tr)
}

pub struct AttachmentView {
    pub href: String,
    pub file_name: String,
    pub size: String,
    pub who: String,
    pub when: String,
    pub internal: bool,
}

fn human_size(bytes: i64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// The files of a ticket and the form to add one (with an optional reply).
pub async fn attachments_panel(
    state: &AppState,
    tr: &Tr,
    p: &keel_app::Principal,
    t: &keel_store::incidents::TicketRecord,
    typed: &std::collections::HashMap<String, String>,
    failed: &Option<&AppError>,
    errors: &mut Vec<String>,
) -> Result<(Vec<AttachmentView>, Option<super::incidents::SideForm>), AppError> {
    let views = state
        .app
        .list_attachments(p, &t.id)
        .await?
        .into_iter()
        .map(|a| AttachmentView {
            href: format!("/attachments/{}", a.id),
            size: human_size(a.size_bytes),
            who: a.uploader_name.clone().unwrap_or_else(|| a.uploaded_by.clone()),
            when: tr.datetime(&a.created_at),
            internal: a.visibility == "internal",
            file_name: a.file_name,
        })
        .collect();
    let form = (t.status != "closed" && !p.is_read_only()).then(|| {
        let val = |k: &str| typed.get(k).cloned().unwrap_or_default();
        let mut fields = vec![
            super::Field::new(tr, "file", "file", "").required().help(tr.t1(
                "incident-attachment-limit",
                "size",
                human_size(i64::try_from(state.app.files.max_bytes).unwrap_or(i64::MAX)),
            )),
            super::Field::new(tr, "body", "textarea", val("body")),
        ];
        if p.is_staff() {
            let vis = typed.get("visibility").cloned().unwrap_or_else(|| "public".into());
            fields.push(
                super::Field::new(tr, "visibility", "select", "").required().options(
                    [("public", "incident-visibility-public"), ("internal", "incident-visibility-internal")]
                        .iter()
                        .map(|(v, k)| (v.to_string(), tr.t(k))),
                    &[vis],
                ),
            );
        }
        if let Some(e) = failed {
            errors.extend(super::attach_errors(tr, &mut fields, e));
        }
        super::incidents::SideForm {
            action: format!("/incidents/{}/attachments", t.id),
            title: tr.t("incident-attachment-add"),
            submit: tr.t("incident-action-attach"),
            fields,
        }
    });
    Ok((views, form))
}

// ---- service requests from the catalogue ----

/// One input of a request form; names are dynamic (`a_<key>` for the item's own questions).
pub struct RequestField {
    pub name: String,
    pub label: String,
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<super::Opt>,
    pub required: bool,
    pub error: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "incidents/request.html")]
pub struct RequestPage {
    pub ctx: super::Ctx,
    pub title: String,
    pub description: String,
    pub action: String,
    pub fields: Vec<RequestField>,
    pub errors: Vec<String>,
}

type Form = std::collections::HashMap<String, String>;

/// The catalogue items the reader may request.
pub async fn requests(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    let items = state.app.list_catalogue_items(&who.principal).await.or_page(&tr)?;
    let rows = items
        .into_iter()
        .filter(|i| i.active)
        .map(|i| super::Row { href: format!("/requests/{}", i.id), cells: vec![i.name, i.description.unwrap_or_default()] })
        .collect();
    let ctx = super::Ctx::new(&tr, Some(&who), "/requests", None);
    let q = super::ListQuery::default();
    let columns = vec![tr.t("field-name"), tr.t("field-description")];
    Ok(super::list_page(ctx, tr.t("request-title"), "/requests", &q, None, (columns, rows), None))
}

async fn request_page(state: &AppState, tr: &Tr, who: &crate::auth::Identity, id: &str, f: &Form, err: Option<AppError>) -> UiResult {
    let p = &who.principal;
    let item = state.app.get_catalogue_item(p, id).await.or_page(tr)?;
    let form = keel_app::desk::form_of(&item).or_page(tr)?;
    let val = |k: &str| f.get(k).cloned().unwrap_or_default();
    let opts = |list: Vec<(String, String)>, sel: String| {
        list.into_iter().map(|(value, label)| super::Opt { selected: value == sel, value, label }).collect::<Vec<_>>()
    };
    let f_ = |name: &str, label: String, kind: &'static str, required: bool| RequestField {
        name: name.into(),
        label,
        kind,
        value: val(name),
        options: vec![],
        required,
        error: None,
    };
    let f_project = RequestField {
        options: opts(super::incidents::project_choices(state, p).await.or_page(tr)?, val("project_id")),
        ..f_("project_id", tr.t("field-project-id"), "select", true)
    };
    let mut fields = vec![f_project];
    if p.is_staff() {
        fields.push(f_("reporter_id", tr.t("field-reporter-id"), "text", false));
    }
    for q in &form {
        let name = format!("a_{}", q.key);
        use keel_domain::incident::request_form::FieldKind;
        let (kind, options) = match q.kind {
            FieldKind::Text => ("text", vec![]),
            FieldKind::Number => ("number", vec![]),
            FieldKind::Date => ("date", vec![]),
            FieldKind::Choice => ("select", opts(q.choices.iter().map(|c| (c.clone(), c.clone())).collect(), val(&name))),
        };
        fields.push(RequestField { options, ..f_(&name, q.label.clone(), kind, q.required) });
    }
    fields.push(f_("title", tr.t("field-title"), "text", false));
    fields.push(f_("description", tr.t("field-description"), "textarea", false));
    let mut errors = Vec::new();
    if let Some(e) = &err {
        match e {
            AppError::Validation(list) => {
                for fe in list {
                    let name = fe.field.strip_prefix("answers.").map(|k| format!("a_{k}")).unwrap_or_else(|| fe.field.clone());
                    let msg = super::translate_field_error(tr, fe.code, &fe.message);
                    match fields.iter_mut().find(|x| x.name == name) {
                        Some(x) if x.error.is_none() => x.error = Some(msg),
                        _ => errors.push(msg),
                    }
                }
            }
            other => errors.push(super::error_message(tr, other)),
        }
    }
    let page = RequestPage {
        ctx: super::Ctx::new(tr, Some(who), "/requests", None),
        title: item.name.clone(),
        description: item.description.clone().unwrap_or_default(),
        action: format!("/requests/{}", item.id),
        fields,
        errors,
    };
    Ok(super::render_status(super::status_for(&err), &page))
}

pub async fn request_form(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    let mut f = Form::new();
    if let Ok(projects) = super::incidents::project_choices(&state, &who.principal).await
        && projects.len() == 1
    {
        f.insert("project_id".into(), projects[0].0.clone());
    }
    request_page(&state, &tr, &who, &id, &f, None).await
}

pub async fn request_create(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    crate::auth::CsrfForm(f): crate::auth::CsrfForm<Form>,
) -> UiResult {
    let get = |k: &str| f.get(k).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let answers = f.iter().filter_map(|(k, v)| k.strip_prefix("a_").map(|k| (k.to_string(), v.clone()))).collect();
    let input = keel_app::desk::ServiceRequestInput {
        catalogue_item_id: id.clone(),
        project_id: get("project_id").unwrap_or_default(),
        reporter_id: get("reporter_id"),
        title: get("title"),
        description: get("description"),
        answers,
    };
    match state.app.request_service(&who.principal, input).await {
        Ok(t) => Ok(super::see_other(&format!("/incidents/{}", t.id), "created")),
        Err(e) => request_page(&state, &tr, &who, &id, &f, Some(e)).await,
    }
}

//! Service desk pages (REQUIREMENTS §4): files attached from the ticket page (agents and the
//! customer portal) and their download link, with the same authorisation as the API.

use super::{OrPage, UiResult};
use crate::AppState;
use crate::auth::UiUser;
use crate::i18n::Tr;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
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

pub(super) fn human_size(bytes: i64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// The files of a ticket (as the page read them) and the form to add one (with an optional reply).
pub async fn attachments_panel(
    state: &AppState,
    tr: &Tr,
    p: &keel_app::Principal,
    (t, list): (&keel_store::incidents::TicketRecord, Vec<keel_store::desk::AttachmentRecord>),
    typed: &std::collections::HashMap<String, String>,
    failed: &Option<&AppError>,
    errors: &mut Vec<String>,
) -> Result<(Vec<AttachmentView>, Option<super::incidents::SideForm>), AppError> {
    let views = list
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

// ---- service desk configuration: the category tree and the priority matrix ----

fn category_fields(tr: &Tr, f: &Form, parents: &[(String, String)]) -> Vec<super::Field> {
    use super::Field;
    let val = |k: &str| f.get(k).cloned().unwrap_or_default();
    let active = if f.contains_key("active") { val("active") } else { "1".into() };
    vec![
        Field::new(tr, "parent_id", "select", "").options(parents.to_vec(), &[val("parent_id")]),
        Field::new(tr, "code", "text", val("code")).required(),
        Field::new(tr, "name", "text", val("name")).required(),
        Field::new(tr, "description", "textarea", val("description")),
        Field::new(tr, "sort_order", "text", val("sort_order")),
        Field::new(tr, "active", "select", "")
            .required()
            .options([("1".to_string(), tr.t("value-yes")), ("0".to_string(), tr.t("value-no"))], &[active]),
    ]
}

fn category_input(f: &Form) -> Result<keel_app::incidents::CategoryInput, AppError> {
    let get = |k: &str| f.get(k).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let sort_order = match get("sort_order") {
        None => None,
        Some(s) => Some(s.parse::<i64>().map_err(|_| AppError::field("sort_order", "not_a_number", "enter a whole number"))?),
    };
    Ok(keel_app::incidents::CategoryInput {
        parent_id: get("parent_id"),
        code: get("code").unwrap_or_default(),
        name: get("name").unwrap_or_default(),
        description: get("description"),
        active: Some(get("active").as_deref() != Some("0")),
        sort_order,
    })
}

async fn parent_choices(state: &AppState, p: &keel_app::Principal, except: Option<&str>) -> Result<Vec<(String, String)>, AppError> {
    let cats = state.app.list_categories(p).await?;
    Ok(cats.into_iter().filter(|c| Some(c.id.as_str()) != except).map(|c| (c.id, format!("{} · {}", c.code, c.name))).collect())
}

pub async fn categories(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    axum::extract::Query(q): axum::extract::Query<super::ListQuery>,
) -> UiResult {
    let cats = state.app.list_categories(&who.principal).await.or_page(&tr)?;
    let names: std::collections::HashMap<String, String> = cats.iter().map(|c| (c.id.clone(), c.name.clone())).collect();
    let needle = q.q.trim().to_lowercase();
    let rows = cats
        .iter()
        .filter(|c| needle.is_empty() || c.name.to_lowercase().contains(&needle) || c.code.to_lowercase().contains(&needle))
        .map(|c| super::Row {
            href: format!("/admin/categories/{}", c.id),
            cells: vec![
                c.name.clone(),
                c.code.clone(),
                c.parent_id.as_ref().and_then(|p| names.get(p).cloned()).unwrap_or_default(),
                tr.t(if c.active { "value-yes" } else { "value-no" }),
            ],
        })
        .collect();
    let ctx = super::Ctx::new(&tr, Some(&who), "/admin/categories", q.flash.as_deref());
    let new = who.principal.is_staff().then(|| ("/admin/categories/new".to_string(), tr.t("category-new")));
    let columns = vec![tr.t("field-name"), tr.t("field-code"), tr.t("field-parent-id"), tr.t("field-active")];
    Ok(super::list_page(ctx, tr.t("nav-categories"), "/admin/categories", &q, new, (columns, rows), None))
}

async fn category_form_page(
    state: &AppState,
    tr: &Tr,
    who: &crate::auth::Identity,
    id: Option<&str>,
    f: &Form,
    err: Option<AppError>,
) -> UiResult {
    let p = &who.principal;
    let mut fields = category_fields(tr, f, &parent_choices(state, p, id).await.or_page(tr)?);
    let errors = err.as_ref().map(|e| super::attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let (title, action, path) = match id {
        Some(id) => (f.get("name").cloned().unwrap_or_default(), format!("/admin/categories/{id}"), format!("/admin/categories/{id}")),
        None => (tr.t("category-new"), "/admin/categories".to_string(), "/admin/categories/new".to_string()),
    };
    let ctx = super::Ctx::new(tr, Some(who), &path, f.get("flash").map(String::as_str));
    let mut page = super::FormPage::new(ctx, title, action, fields, "/admin/categories");
    page.errors = errors;
    page.version = f.get("_version").and_then(|v| v.parse().ok());
    if let Some(id) = id {
        page.show_history = true;
        page.history =
            super::readable_history(&state.app, tr, &who.principal, &state.app.history("ticket_category", id).await.or_page(tr)?).await?;
    }
    Ok(super::render_status(super::status_for(&err), &page))
}

pub async fn category_new(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    category_form_page(&state, &tr, &who, None, &Form::new(), None).await
}

pub async fn category_create(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    crate::auth::CsrfForm(f): crate::auth::CsrfForm<Form>,
) -> UiResult {
    let r = match category_input(&f) {
        Ok(input) => state.app.create_category(&who.principal, input).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(c) => Ok(super::see_other(&format!("/admin/categories/{}", c.id), "created")),
        Err(e) => category_form_page(&state, &tr, &who, None, &f, Some(e)).await,
    }
}

pub async fn category_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<super::ListQuery>,
) -> UiResult {
    let cats = state.app.list_categories(&who.principal).await.or_page(&tr)?;
    let c = cats.into_iter().find(|c| c.id == id).ok_or(AppError::NotFound).or_page(&tr)?;
    let mut f = Form::new();
    f.insert("parent_id".into(), c.parent_id.clone().unwrap_or_default());
    f.insert("code".into(), c.code.clone());
    f.insert("name".into(), c.name.clone());
    f.insert("description".into(), c.description.clone().unwrap_or_default());
    f.insert("sort_order".into(), c.sort_order.to_string());
    f.insert("active".into(), if c.active { "1" } else { "0" }.into());
    f.insert("_version".into(), c.version.to_string());
    if let Some(fl) = q.flash {
        f.insert("flash".into(), fl);
    }
    category_form_page(&state, &tr, &who, Some(&id), &f, None).await
}

pub async fn category_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    crate::auth::CsrfForm(f): crate::auth::CsrfForm<Form>,
) -> UiResult {
    let version = f.get("_version").and_then(|v| v.parse().ok());
    let r = match category_input(&f) {
        Ok(input) => state.app.update_category(&who.principal, &id, input, version).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => Ok(super::see_other(&format!("/admin/categories/{id}"), "saved")),
        Err(e) => category_form_page(&state, &tr, &who, Some(&id), &f, Some(e)).await,
    }
}

/// Field names of the matrix cells, impact first (`high`, `medium`, `low` each way).
const MATRIX_CELLS: [&str; 9] =
    ["high_high", "high_medium", "high_low", "medium_high", "medium_medium", "medium_low", "low_high", "low_medium", "low_low"];

async fn matrix_page(
    state: &AppState,
    tr: &Tr,
    who: &crate::auth::Identity,
    f: Option<&Form>,
    err: Option<AppError>,
    flash: Option<&str>,
) -> UiResult {
    use keel_domain::incident::Priority;
    let matrix = state.app.priority_matrix().await.or_page(tr)?;
    let current: std::collections::HashMap<String, String> = matrix
        .cells()
        .into_iter()
        .map(|c| (format!("{}_{}", c.impact.as_str(), c.urgency.as_str()), c.priority.as_str().to_string()))
        .collect();
    let prios: Vec<(String, String)> =
        Priority::ALL.iter().map(|p| (p.as_str().to_string(), tr.t(&format!("incident-priority-{}", p.as_str())))).collect();
    let mut fields: Vec<super::Field> = MATRIX_CELLS
        .iter()
        .map(|name| {
            let (impact, urgency) = name.split_once('_').unwrap_or((name, name));
            let sel = f.and_then(|f| f.get(*name)).or_else(|| current.get(*name)).cloned().unwrap_or_default();
            let mut field = super::Field::new(tr, name, "select", "").required().options(prios.clone(), &[sel]);
            field.label = format!(
                "{} {} × {} {}",
                tr.t("field-impact"),
                tr.t(&format!("incident-level-{impact}")),
                tr.t("field-urgency"),
                tr.t(&format!("incident-level-{urgency}"))
            );
            field
        })
        .collect();
    let errors = err.as_ref().map(|e| super::attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = super::Ctx::new(tr, Some(who), "/admin/priority-matrix", flash);
    let mut page = super::FormPage::new(ctx, tr.t("nav-priority-matrix"), "/admin/priority-matrix".into(), fields, "/incidents");
    page.errors = errors;
    page.editable = !who.principal.is_read_only();
    page.show_history = true;
    page.history = super::readable_history(
        &state.app,
        tr,
        &who.principal,
        &state.app.history("setting", keel_app::incidents::PRIORITY_MATRIX_SETTING).await.or_page(tr)?,
    )
    .await?;
    Ok(super::render_status(super::status_for(&err), &page))
}

pub async fn priority_matrix(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    axum::extract::Query(q): axum::extract::Query<super::ListQuery>,
) -> UiResult {
    matrix_page(&state, &tr, &who, None, None, q.flash.as_deref()).await
}

pub async fn priority_matrix_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    crate::auth::CsrfForm(f): crate::auth::CsrfForm<Form>,
) -> UiResult {
    use keel_domain::incident::{Impact, MatrixCell, Priority, Urgency};
    let mut cells = Vec::new();
    let mut errs = Vec::new();
    for name in MATRIX_CELLS {
        let (i, u) = name.split_once('_').unwrap_or((name, name));
        match (Impact::parse(i), Urgency::parse(u), f.get(name).and_then(|p| Priority::parse(p.trim()))) {
            (Some(impact), Some(urgency), Some(priority)) => cells.push(MatrixCell { impact, urgency, priority }),
            _ => errs.push(keel_domain::error::FieldError::new(name, "required", "choose a priority")),
        }
    }
    let r = if errs.is_empty() {
        state.app.set_priority_matrix(&who.principal, cells).await.map(|_| ())
    } else {
        Err(AppError::Validation(errs))
    };
    match r {
        Ok(()) => Ok(super::see_other("/admin/priority-matrix", "saved")),
        Err(e) => matrix_page(&state, &tr, &who, Some(&f), Some(e), None).await,
    }
}

// ---- type-ahead (htmx) for the create form ----

/// `q`, or the `<field>_find` search box of a form's type-ahead select.
#[derive(serde::Deserialize, Default)]
pub struct TypeaheadQuery {
    #[serde(default)]
    q: String,
    #[serde(flatten)]
    find: std::collections::HashMap<String, String>,
}

/// Up to 20 `<option>`s matching `q` for a `<datalist>`: `contacts`, `organizations`,
/// `categories` or `cis`; each within the reader's scope (contacts, organisations and CIs are
/// for staff only).
pub async fn typeahead(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(kind): Path<String>,
    axum::extract::Query(q): axum::extract::Query<TypeaheadQuery>,
    axum::extract::Query(pairs): axum::extract::Query<Vec<(String, String)>>,
) -> UiResult {
    use keel_store::page::{PageRequest, SortKey, SortKind};
    let p = &who.principal;
    // a multiselect sends what is chosen in it (`ci_ids=…` beside `ci_ids_find`): kept, selected
    let list = q.find.keys().find_map(|k| k.strip_suffix("_find")).unwrap_or_default().to_string();
    let chosen: Vec<String> = pairs.into_iter().filter(|(k, v)| *k == list && !v.trim().is_empty()).map(|(_, v)| v).collect();
    let text = match q.find.iter().find(|(k, _)| k.ends_with("_find")) {
        Some((_, v)) if q.q.is_empty() => v.trim().to_string(),
        _ => q.q.trim().to_string(),
    };
    let page = |column: &'static str| PageRequest {
        sort: SortKey { name: column, column, kind: SortKind::Text },
        desc: false,
        after: None,
        limit: 20,
    };
    let staff_only = || if p.is_staff() { Ok(()) } else { Err(AppError::NotFound) };
    let options: Vec<(String, String)> = match kind.as_str() {
        "contacts" => {
            staff_only().or_page(&tr)?;
            let org = q.find.get("organization_id").map(|o| o.trim().to_string()).filter(|o| !o.is_empty());
            let f = keel_store::accounts::UserFilter {
                kind: Some("contact".into()),
                active: Some(true),
                q: Some(text),
                organization_id: org,
                ..Default::default()
            };
            let users = state.app.list_users(p, f, &page("display_name")).await.or_page(&tr)?;
            users.items.into_iter().map(|u| (u.id, format!("{} <{}>", u.display_name, u.email))).collect()
        }
        "organizations" => {
            staff_only().or_page(&tr)?;
            let f = keel_store::directory::OrgFilter { q: Some(text), active: Some(true) };
            let orgs = state.app.list_organizations(p, &f, &page("name")).await.or_page(&tr)?;
            orgs.items.into_iter().map(|o| (o.id, format!("{} · {}", o.code, o.name))).collect()
        }
        "categories" => {
            let needle = text.to_lowercase();
            let cats = state.app.list_categories(p).await.or_page(&tr)?;
            cats.into_iter()
                .filter(|c| c.active && (c.name.to_lowercase().contains(&needle) || c.code.to_lowercase().contains(&needle)))
                .take(20)
                .map(|c| (c.id, format!("{} · {}", c.code, c.name)))
                .collect()
        }
        "cis" => {
            staff_only().or_page(&tr)?;
            let mut kept = Vec::new();
            for id in &chosen {
                if let Ok(c) = state.app.get_ci(p, id).await {
                    kept.push((c.id, format!("{} ({})", c.name, c.class_key)));
                }
            }
            let query = keel_app::cmdb::CiQuery { q: Some(text), ..Default::default() };
            let cis = state.app.list_cis(p, &query, &page("name")).await.or_page(&tr)?;
            let found = cis.items.into_iter().filter(|c| !chosen.contains(&c.id)).map(|c| (c.id, format!("{} ({})", c.name, c.class_key)));
            kept.into_iter().chain(found).collect()
        }
        _ => return Err(super::UiError(tr, AppError::NotFound)),
    };
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let html: String = options
        .iter()
        .map(|(v, l)| format!("<option value=\"{}\"{}>{}</option>", esc(v), if chosen.contains(v) { " selected" } else { "" }, esc(l)))
        .collect();
    Ok(axum::response::Html(html).into_response())
}

//! Pages for the structure every process works in: customer organisations and their
//! contacts, staff users, resolver teams, and service projects with their tailoring.

use super::{
    Ctx, Field, FormPage, ListQuery, OrPage, Panel, Row, TailoringRow, UiResult, attach_errors, expected_version, list_page, render,
    render_status, see_other, status_for,
};
use crate::AppState;
use crate::auth::{CsrfForm, UiUser};
use crate::i18n::Tr;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use keel_app::directory::{OrganizationInput, ProjectInput, TeamInput};
use keel_app::users::{NewUser, UserPatch};
use keel_app::{AppError, Principal};
use keel_domain::identity::{AccountKind, Action, AdminArea, Role};
use keel_domain::process::Process;
use keel_store::accounts::{UserFilter, UserRecord};
use keel_store::directory::{OrgFilter, ProjectFilter};
use keel_store::page::{PageRequest, SortKey, SortKind, decode_cursor};

pub const ORG_SORT: SortKey = SortKey { name: "name", column: "name", kind: SortKind::Text };
pub const PROJECT_SORT: SortKey = SortKey { name: "code", column: "code", kind: SortKind::Text };
pub const TEAM_SORT: SortKey = SortKey { name: "name", column: "name", kind: SortKind::Text };
pub const USER_SORT: SortKey = SortKey { name: "display_name", column: "display_name", kind: SortKind::Text };

fn page(sort: SortKey, q: &ListQuery) -> PageRequest {
    PageRequest { sort, desc: false, after: q.cursor.as_deref().and_then(|c| decode_cursor(&sort, c)), limit: 50 }
}

fn all(sort: SortKey) -> PageRequest {
    PageRequest { sort, desc: false, after: None, limit: 1000 }
}

fn yes_no(tr: &Tr, b: bool) -> String {
    tr.t(if b { "value-yes" } else { "value-no" })
}

pub(super) async fn organization_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    let orgs = state.app.list_organizations(who, &OrgFilter { active: Some(true), ..Default::default() }, &all(ORG_SORT)).await?;
    Ok(orgs.items.into_iter().map(|o| (o.id, format!("{} ({})", o.name, o.code))).collect())
}

async fn staff_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    let users = state
        .app
        .list_users(who, UserFilter { kind: Some("staff".into()), active: Some(true), ..Default::default() }, &all(USER_SORT))
        .await?;
    Ok(users.items.into_iter().map(|u| (u.id, format!("{} <{}>", u.display_name, u.email))).collect())
}

// ---------------------------------------------------------------- organisations

#[derive(serde::Deserialize, Default)]
pub struct OrgForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    active: Option<String>,
    #[serde(rename = "_version")]
    version: Option<String>,
}

fn org_fields(tr: &Tr, f: &OrgForm, existing: bool) -> Vec<Field> {
    let mut v = vec![
        Field::new(tr, "name", "text", &f.name).required(),
        Field::new(tr, "code", "text", &f.code).required().help(tr.t("help-code")),
        Field::new(tr, "description", "textarea", &f.description),
    ];
    if existing {
        v.push(Field::new(tr, "active", "checkbox", f.active.clone().unwrap_or_else(|| "true".into())));
    }
    v
}

fn org_input(f: &OrgForm) -> OrganizationInput {
    OrganizationInput {
        name: f.name.clone(),
        code: f.code.clone(),
        description: Some(f.description.clone()),
        active: f.active.as_deref().map(|a| a == "true"),
    }
}

pub async fn organizations(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    let p = &who.principal;
    let list =
        state.app.list_organizations(p, &OrgFilter { q: Some(q.q.clone()), active: None }, &page(ORG_SORT, &q)).await.or_page(&tr)?;
    let rows = list
        .items
        .iter()
        .map(|o| Row { href: format!("/organizations/{}", o.id), cells: vec![o.name.clone(), o.code.clone(), yes_no(&tr, o.active)] })
        .collect();
    let new =
        p.may_admin(AdminArea::Organizations, Action::Write).then(|| ("/organizations/new".to_string(), tr.t("action-new-organization")));
    let ctx = Ctx::new(&tr, Some(&who), "/organizations", q.flash.as_deref());
    Ok(list_page(
        ctx,
        tr.t("nav-organizations"),
        "/organizations",
        &q,
        new,
        (vec![tr.t("field-name"), tr.t("field-code"), tr.t("field-active")], rows),
        list.next_cursor,
    ))
}

pub async fn organization_new(tr: Tr, UiUser(who): UiUser) -> Response {
    let ctx = Ctx::new(&tr, Some(&who), "/organizations/new", None);
    let page = FormPage::new(
        ctx,
        tr.t("action-new-organization"),
        "/organizations".into(),
        org_fields(&tr, &OrgForm::default(), false),
        "/organizations",
    );
    render(&page)
}

pub async fn organization_create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<OrgForm>) -> Response {
    match state.app.create_organization(&who.principal, org_input(&f)).await {
        Ok(o) => see_other(&format!("/organizations/{}", o.id), "created"),
        Err(e) => {
            let mut fields = org_fields(&tr, &f, false);
            let errors = attach_errors(&tr, &mut fields, &e);
            let ctx = Ctx::new(&tr, Some(&who), "/organizations/new", None);
            let mut page = FormPage::new(ctx, tr.t("action-new-organization"), "/organizations".into(), fields, "/organizations");
            page.errors = errors;
            render_status(crate::error::status_of(&e), &page)
        }
    }
}

async fn organization_page(
    state: &AppState,
    tr: &Tr,
    who: &crate::auth::Identity,
    id: &str,
    form: Option<(OrgForm, AppError)>,
    flash: Option<&str>,
) -> UiResult {
    let p = &who.principal;
    let o = state.app.get_organization(p, id).await.or_page(tr)?;
    let (f, err) = match form {
        Some((f, e)) => (f, Some(e)),
        None => (
            OrgForm {
                name: o.name.clone(),
                code: o.code.clone(),
                description: o.description.clone().unwrap_or_default(),
                active: Some(o.active.to_string()),
                version: None,
            },
            None,
        ),
    };
    let mut fields = org_fields(tr, &f, true);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let contacts = if p.is_staff() {
        state
            .app
            .list_users(
                p,
                UserFilter { kind: Some("contact".into()), organization_id: Some(id.to_string()), ..Default::default() },
                &all(USER_SORT),
            )
            .await
            .or_page(tr)?
            .items
    } else {
        vec![]
    };
    let projects = state
        .app
        .list_projects(p, &ProjectFilter { organization_id: Some(id.to_string()), ..Default::default() }, &all(PROJECT_SORT))
        .await
        .or_page(tr)?;
    let editable = p.may_admin(AdminArea::Organizations, Action::Write);
    let ctx = Ctx::new(tr, Some(who), &format!("/organizations/{id}"), flash);
    let mut page = FormPage::new(ctx, o.name.clone(), format!("/organizations/{id}"), fields, "/organizations");
    page.version = Some(o.version);
    page.errors = errors;
    page.editable = editable;
    page.panels.push(Panel {
        title: tr.t("nav-contacts"),
        columns: vec![tr.t("field-display-name"), tr.t("field-email"), tr.t("field-phone"), tr.t("field-active")],
        rows: contacts
            .iter()
            .map(|c| Row {
                href: format!("/contacts/{}", c.id),
                cells: vec![c.display_name.clone(), c.email.clone(), c.phone.clone().unwrap_or_default(), yes_no(tr, c.active)],
            })
            .collect(),
        action: (editable || p.has(Role::Sales) || p.has(Role::ProjectManager))
            .then(|| (format!("/contacts/new?organization_id={id}"), tr.t("action-new-contact"))),
    });
    page.panels.push(Panel {
        title: tr.t("nav-projects"),
        columns: vec![tr.t("field-code"), tr.t("field-name"), tr.t("field-status")],
        rows: projects
            .items
            .iter()
            .map(|pr| Row {
                href: format!("/projects/{}", pr.id),
                cells: vec![pr.code.clone(), pr.name.clone(), tr.t(&format!("project-status-{}", pr.status))],
            })
            .collect(),
        action: None,
    });
    page.show_history = true;
    page.history =
        super::readable_history(&state.app, tr, &who.principal, &state.app.history("organization", id).await.or_page(tr)?).await?;
    let status = status_for(&err);
    Ok(render_status(status, &page))
}

pub async fn organization_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    organization_page(&state, &tr, &who, &id, None, q.flash.as_deref()).await
}

pub async fn organization_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<OrgForm>,
) -> UiResult {
    match state.app.update_organization(&who.principal, &id, org_input(&f), expected_version(&f.version)).await {
        Ok(_) => Ok(see_other(&format!("/organizations/{id}"), "saved")),
        Err(e) => organization_page(&state, &tr, &who, &id, Some((f, e)), None).await,
    }
}

// ---------------------------------------------------------------- users and contacts

#[derive(serde::Deserialize, Default)]
pub struct UserForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    organization_id: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    active: Option<String>,
    #[serde(rename = "_version")]
    version: Option<String>,
}

fn locale_options(tr: &Tr) -> Vec<(String, String)> {
    let _ = tr;
    vec![("en".into(), "English".into()), ("zh-CN".into(), "简体中文".into())]
}

fn role_options(tr: &Tr) -> Vec<(String, String)> {
    Role::ALL.iter().map(|r| (r.as_str().to_string(), tr.t(&format!("role-{}", r.as_str().replace('_', "-"))))).collect()
}

fn user_fields(tr: &Tr, f: &UserForm, kind: AccountKind, existing: bool, orgs: Vec<(String, String)>) -> Vec<Field> {
    let mut v = vec![
        Field::new(tr, "display_name", "text", &f.display_name).required(),
        Field::new(tr, "email", "email", &f.email).required(),
        Field::new(tr, "phone", "text", &f.phone),
    ];
    if kind == AccountKind::Contact && !existing {
        v.push(Field::new(tr, "organization_id", "select", "").required().options(orgs, std::slice::from_ref(&f.organization_id)));
    }
    if !existing {
        v.push(Field::new(tr, "password", "password", "").autocomplete("new-password").help(tr.t(if kind == AccountKind::Contact {
            "help-contact-password"
        } else {
            "help-password"
        })));
    }
    v.push(Field::new(tr, "locale", "select", "").required().options(locale_options(tr), std::slice::from_ref(&f.locale)));
    v.push(Field::new(tr, "time_zone", "text", &f.time_zone).required().help(tr.t("help-time-zone")));
    if kind == AccountKind::Staff {
        v.push(Field::new(tr, "roles", "multiselect", "").options(role_options(tr), &f.roles));
    }
    if existing {
        v.push(Field::new(tr, "active", "checkbox", f.active.clone().unwrap_or_else(|| "true".into())));
    }
    v
}

fn kind_paths(kind: AccountKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        AccountKind::Staff => ("/users", "nav-users", "action-new-user"),
        AccountKind::Contact => ("/contacts", "nav-contacts", "action-new-contact"),
    }
}

async fn users_list(state: &AppState, tr: &Tr, who: &crate::auth::Identity, q: &ListQuery, kind: AccountKind) -> UiResult {
    let (base, title, new_key) = kind_paths(kind);
    let p = &who.principal;
    let list = state
        .app
        .list_users(p, UserFilter { kind: Some(kind.as_str().into()), q: Some(q.q.clone()), ..Default::default() }, &page(USER_SORT, q))
        .await
        .or_page(tr)?;
    let rows = list
        .items
        .iter()
        .map(|u| {
            let extra = if kind == AccountKind::Staff {
                u.roles.iter().map(|r| tr.t(&format!("role-{}", r.replace('_', "-")))).collect::<Vec<_>>().join(", ")
            } else {
                u.phone.clone().unwrap_or_default()
            };
            Row { href: format!("{base}/{}", u.id), cells: vec![u.display_name.clone(), u.email.clone(), extra, yes_no(tr, u.active)] }
        })
        .collect();
    let can_new = match kind {
        AccountKind::Staff => p.may_admin(AdminArea::Users, Action::Write),
        AccountKind::Contact => {
            !p.is_read_only() && (p.may_admin(AdminArea::Organizations, Action::Write) || p.has(Role::Sales) || p.has(Role::ProjectManager))
        }
    };
    let third = if kind == AccountKind::Staff { tr.t("field-roles") } else { tr.t("field-phone") };
    let ctx = Ctx::new(tr, Some(who), base, q.flash.as_deref());
    Ok(list_page(
        ctx,
        tr.t(title),
        base,
        q,
        can_new.then(|| (format!("{base}/new"), tr.t(new_key))),
        (vec![tr.t("field-display-name"), tr.t("field-email"), third, tr.t("field-active")], rows),
        list.next_cursor,
    ))
}

pub async fn users(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    users_list(&state, &tr, &who, &q, AccountKind::Staff).await
}

pub async fn contacts(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    users_list(&state, &tr, &who, &q, AccountKind::Contact).await
}

#[derive(serde::Deserialize, Default)]
pub struct NewContactQuery {
    #[serde(default)]
    organization_id: String,
}

async fn user_new_page(
    state: &AppState,
    tr: &Tr,
    who: &crate::auth::Identity,
    kind: AccountKind,
    f: &UserForm,
    err: Option<AppError>,
) -> UiResult {
    let (base, _, new_key) = kind_paths(kind);
    let orgs = if kind == AccountKind::Contact { organization_options(state, &who.principal).await.or_page(tr)? } else { vec![] };
    let mut fields = user_fields(tr, f, kind, false, orgs);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), &format!("{base}/new"), None);
    let mut page = FormPage::new(ctx, tr.t(new_key), base.to_string(), fields, base);
    page.errors = errors;
    Ok(render_status(status_for(&err), &page))
}

pub async fn user_new(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    let f = UserForm { locale: tr.lang.code().into(), time_zone: who.user.time_zone.clone(), ..Default::default() };
    user_new_page(&state, &tr, &who, AccountKind::Staff, &f, None).await
}

pub async fn contact_new(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<NewContactQuery>) -> UiResult {
    let f = UserForm {
        locale: tr.lang.code().into(),
        time_zone: who.user.time_zone.clone(),
        organization_id: q.organization_id,
        ..Default::default()
    };
    user_new_page(&state, &tr, &who, AccountKind::Contact, &f, None).await
}

async fn user_create_kind(state: &AppState, tr: &Tr, who: &crate::auth::Identity, kind: AccountKind, f: UserForm) -> UiResult {
    let input = NewUser {
        kind,
        email: f.email.clone(),
        display_name: f.display_name.clone(),
        phone: Some(f.phone.clone()).filter(|s| !s.trim().is_empty()),
        organization_id: Some(f.organization_id.clone()).filter(|s| !s.is_empty() && kind == AccountKind::Contact),
        password: Some(f.password.clone()).filter(|s| !s.is_empty()),
        locale: Some(f.locale.clone()),
        time_zone: Some(f.time_zone.clone()),
        roles: f.roles.iter().filter_map(|r| Role::parse(r)).collect(),
    };
    match state.app.create_user(&who.principal, input).await {
        Ok(u) => Ok(see_other(&format!("{}/{}", kind_paths(kind).0, u.id), "created")),
        Err(e) => user_new_page(state, tr, who, kind, &f, Some(e)).await,
    }
}

pub async fn user_create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<UserForm>) -> UiResult {
    user_create_kind(&state, &tr, &who, AccountKind::Staff, f).await
}

pub async fn contact_create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<UserForm>) -> UiResult {
    user_create_kind(&state, &tr, &who, AccountKind::Contact, f).await
}

fn user_form_of(u: &UserRecord) -> UserForm {
    UserForm {
        display_name: u.display_name.clone(),
        email: u.email.clone(),
        phone: u.phone.clone().unwrap_or_default(),
        organization_id: u.organization_id.clone().unwrap_or_default(),
        password: String::new(),
        locale: u.locale.clone(),
        time_zone: u.time_zone.clone(),
        roles: u.roles.clone(),
        active: Some(u.active.to_string()),
        version: None,
    }
}

async fn user_page(
    state: &AppState,
    tr: &Tr,
    who: &crate::auth::Identity,
    id: &str,
    form: Option<(UserForm, AppError)>,
    flash: Option<&str>,
) -> UiResult {
    let u = state.app.get_user(&who.principal, id).await.or_page(tr)?;
    let kind = AccountKind::parse(&u.kind).unwrap_or(AccountKind::Contact);
    let (base, _, _) = kind_paths(kind);
    let (f, err) = match form {
        Some((f, e)) => (f, Some(e)),
        None => (user_form_of(&u), None),
    };
    let mut fields = user_fields(tr, &f, kind, true, vec![]);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), &format!("{base}/{id}"), flash);
    let mut page = FormPage::new(ctx, u.display_name.clone(), format!("{base}/{id}"), fields, base);
    page.version = Some(u.version);
    page.errors = errors;
    if let Some(org) = &u.organization_id
        && let Ok(o) = state.app.get_organization(&who.principal, org).await
    {
        page.panels.push(Panel {
            title: tr.t("field-organization-id"),
            columns: vec![tr.t("field-name"), tr.t("field-code")],
            rows: vec![Row { href: format!("/organizations/{}", o.id), cells: vec![o.name, o.code] }],
            action: None,
        });
    }
    if who.principal.may_admin(AdminArea::Users, Action::Write) && who.principal.user_id != u.id {
        page.panels.push(Panel {
            title: tr.t("reset-password-title"),
            columns: vec![],
            rows: vec![],
            action: Some((format!("/users/{id}/password"), tr.t("action-reset-password"))),
        });
    }
    page.show_history = true;
    page.history = super::readable_history(&state.app, tr, &who.principal, &state.app.history("user", id).await.or_page(tr)?).await?;
    Ok(render_status(status_for(&err), &page))
}

pub async fn user_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    user_page(&state, &tr, &who, &id, None, q.flash.as_deref()).await
}

pub async fn user_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<UserForm>,
) -> UiResult {
    let current = state.app.get_user(&who.principal, &id).await.or_page(&tr)?;
    let staff = current.kind == "staff";
    let patch = UserPatch {
        email: Some(f.email.clone()).filter(|e| *e != current.email),
        display_name: Some(f.display_name.clone()),
        phone: Some(Some(f.phone.clone()).filter(|s| !s.trim().is_empty())),
        locale: Some(f.locale.clone()),
        time_zone: Some(f.time_zone.clone()),
        active: f.active.as_deref().map(|a| a == "true").filter(|a| *a != current.active),
        roles: if staff {
            let mut new: Vec<String> = f.roles.clone();
            new.sort();
            (new != current.roles).then(|| f.roles.iter().filter_map(|r| Role::parse(r)).collect())
        } else {
            None
        },
    };
    let base = if staff { "/users" } else { "/contacts" };
    match state.app.update_user(&who.principal, &id, patch, expected_version(&f.version)).await {
        Ok(_) => Ok(see_other(&format!("{base}/{id}"), "saved")),
        Err(e) => user_page(&state, &tr, &who, &id, Some((f, e)), None).await,
    }
}

#[derive(serde::Deserialize, Default)]
pub struct ResetForm {
    #[serde(default)]
    password: String,
}

pub async fn user_reset_form(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    let u = state.app.get_user(&who.principal, &id).await.or_page(&tr)?;
    let ctx = Ctx::new(&tr, Some(&who), &format!("/users/{id}/password"), None);
    let mut page = FormPage::new(
        ctx,
        format!("{} — {}", tr.t("reset-password-title"), u.display_name),
        format!("/users/{id}/password"),
        vec![Field::new(&tr, "password", "password", "").required().autocomplete("new-password").help(tr.t("help-password"))],
        &format!("/users/{id}"),
    );
    page.submit = tr.t("action-reset-password");
    Ok(render(&page))
}

pub async fn user_reset(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<ResetForm>,
) -> UiResult {
    let u = state.app.get_user(&who.principal, &id).await.or_page(&tr)?;
    let base = if u.kind == "staff" { "/users" } else { "/contacts" };
    match state.app.reset_password(&who.principal, &id, &f.password).await {
        Ok(()) => Ok(see_other(&format!("{base}/{id}"), "saved")),
        Err(e) => {
            let mut fields =
                vec![Field::new(&tr, "password", "password", "").required().autocomplete("new-password").help(tr.t("help-password"))];
            let errors = attach_errors(&tr, &mut fields, &e);
            let ctx = Ctx::new(&tr, Some(&who), &format!("/users/{id}/password"), None);
            let mut page =
                FormPage::new(ctx, tr.t("reset-password-title"), format!("/users/{id}/password"), fields, &format!("{base}/{id}"));
            page.errors = errors;
            page.submit = tr.t("action-reset-password");
            Ok(render_status(crate::error::status_of(&e), &page))
        }
    }
}

// ---------------------------------------------------------------- teams

#[derive(serde::Deserialize, Default)]
pub struct TeamForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    lead_user_id: String,
    #[serde(default)]
    member_ids: Vec<String>,
    #[serde(default)]
    active: Option<String>,
    #[serde(rename = "_version")]
    version: Option<String>,
}

fn team_fields(tr: &Tr, f: &TeamForm, staff: &[(String, String)], existing: bool) -> Vec<Field> {
    let mut v = vec![
        Field::new(tr, "name", "text", &f.name).required(),
        Field::new(tr, "description", "textarea", &f.description),
        Field::new(tr, "email", "email", &f.email),
        Field::new(tr, "lead_user_id", "select", "").options(staff.to_vec(), std::slice::from_ref(&f.lead_user_id)),
        Field::new(tr, "member_ids", "multiselect", "").options(staff.to_vec(), &f.member_ids),
    ];
    if existing {
        v.push(Field::new(tr, "active", "checkbox", f.active.clone().unwrap_or_else(|| "true".into())));
    }
    v
}

fn team_input(f: &TeamForm) -> TeamInput {
    TeamInput {
        name: f.name.clone(),
        description: Some(f.description.clone()),
        email: Some(f.email.clone()),
        lead_user_id: Some(f.lead_user_id.clone()).filter(|s| !s.is_empty()),
        member_ids: f.member_ids.clone(),
        active: f.active.as_deref().map(|a| a == "true"),
    }
}

pub async fn teams(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    let p = &who.principal;
    let list = state.app.list_teams(p, Some(&q.q), &page(TEAM_SORT, &q)).await.or_page(&tr)?;
    let rows = list
        .items
        .iter()
        .map(|t| Row {
            href: format!("/teams/{}", t.id),
            cells: vec![t.name.clone(), t.member_ids.len().to_string(), yes_no(&tr, t.active)],
        })
        .collect();
    let new = p.may_admin(AdminArea::Teams, Action::Write).then(|| ("/teams/new".to_string(), tr.t("action-new-team")));
    let ctx = Ctx::new(&tr, Some(&who), "/teams", q.flash.as_deref());
    Ok(list_page(
        ctx,
        tr.t("nav-teams"),
        "/teams",
        &q,
        new,
        (vec![tr.t("field-name"), tr.t("field-member-count"), tr.t("field-active")], rows),
        list.next_cursor,
    ))
}

async fn team_new_page(state: &AppState, tr: &Tr, who: &crate::auth::Identity, f: &TeamForm, err: Option<AppError>) -> UiResult {
    let staff = staff_options(state, &who.principal).await.or_page(tr)?;
    let mut fields = team_fields(tr, f, &staff, false);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), "/teams/new", None);
    let mut page = FormPage::new(ctx, tr.t("action-new-team"), "/teams".into(), fields, "/teams");
    page.errors = errors;
    Ok(render_status(status_for(&err), &page))
}

pub async fn team_new(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    team_new_page(&state, &tr, &who, &TeamForm::default(), None).await
}

pub async fn team_create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<TeamForm>) -> UiResult {
    match state.app.create_team(&who.principal, team_input(&f)).await {
        Ok(t) => Ok(see_other(&format!("/teams/{}", t.id), "created")),
        Err(e) => team_new_page(&state, &tr, &who, &f, Some(e)).await,
    }
}

async fn team_page(
    state: &AppState,
    tr: &Tr,
    who: &crate::auth::Identity,
    id: &str,
    form: Option<(TeamForm, AppError)>,
    flash: Option<&str>,
) -> UiResult {
    let t = state.app.get_team(&who.principal, id).await.or_page(tr)?;
    let staff = staff_options(state, &who.principal).await.or_page(tr)?;
    let (f, err) = match form {
        Some((f, e)) => (f, Some(e)),
        None => (
            TeamForm {
                name: t.name.clone(),
                description: t.description.clone().unwrap_or_default(),
                email: t.email.clone().unwrap_or_default(),
                lead_user_id: t.lead_user_id.clone().unwrap_or_default(),
                member_ids: t.member_ids.clone(),
                active: Some(t.active.to_string()),
                version: None,
            },
            None,
        ),
    };
    let mut fields = team_fields(tr, &f, &staff, true);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), &format!("/teams/{id}"), flash);
    let mut page = FormPage::new(ctx, t.name.clone(), format!("/teams/{id}"), fields, "/teams");
    page.version = Some(t.version);
    page.errors = errors;
    page.editable =
        who.principal.may_admin(AdminArea::Teams, Action::Write) || t.lead_user_id.as_deref() == Some(who.principal.user_id.as_str());
    page.show_history = true;
    page.history = super::readable_history(&state.app, tr, &who.principal, &state.app.history("team", id).await.or_page(tr)?).await?;
    Ok(render_status(status_for(&err), &page))
}

pub async fn team_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    team_page(&state, &tr, &who, &id, None, q.flash.as_deref()).await
}

pub async fn team_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<TeamForm>,
) -> UiResult {
    match state.app.update_team(&who.principal, &id, team_input(&f), expected_version(&f.version)).await {
        Ok(_) => Ok(see_other(&format!("/teams/{id}"), "saved")),
        Err(e) => team_page(&state, &tr, &who, &id, Some((f, e)), None).await,
    }
}

// ---------------------------------------------------------------- service projects

#[derive(serde::Deserialize, Default)]
pub struct ProjectForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    organization_id: String,
    #[serde(default)]
    manager_user_id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    starts_on: String,
    #[serde(default)]
    ends_on: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    member_ids: Vec<String>,
    #[serde(rename = "_version")]
    version: Option<String>,
}

fn project_fields(tr: &Tr, f: &ProjectForm, orgs: Vec<(String, String)>, staff: &[(String, String)], existing: bool) -> Vec<Field> {
    let mut v = vec![
        Field::new(tr, "code", "text", &f.code).required().help(tr.t("help-code")),
        Field::new(tr, "name", "text", &f.name).required(),
        Field::new(tr, "organization_id", "select", "").required().options(orgs, std::slice::from_ref(&f.organization_id)),
        Field::new(tr, "manager_user_id", "select", "").options(staff.to_vec(), std::slice::from_ref(&f.manager_user_id)),
        Field::new(tr, "member_ids", "multiselect", "").options(staff.to_vec(), &f.member_ids),
        Field::new(tr, "starts_on", "date", &f.starts_on),
        Field::new(tr, "ends_on", "date", &f.ends_on),
        Field::new(tr, "description", "textarea", &f.description),
    ];
    if existing {
        let statuses = ["active", "closed"].iter().map(|s| (s.to_string(), tr.t(&format!("project-status-{s}")))).collect::<Vec<_>>();
        v.push(Field::new(tr, "status", "select", "").required().options(statuses, std::slice::from_ref(&f.status)));
    }
    v
}

fn project_input(f: &ProjectForm) -> ProjectInput {
    ProjectInput {
        code: f.code.clone(),
        name: f.name.clone(),
        organization_id: f.organization_id.clone(),
        manager_user_id: Some(f.manager_user_id.clone()).filter(|s| !s.is_empty()),
        description: Some(f.description.clone()),
        starts_on: Some(f.starts_on.clone()),
        ends_on: Some(f.ends_on.clone()),
        status: Some(f.status.clone()).filter(|s| !s.is_empty()),
        member_ids: f.member_ids.clone(),
    }
}

pub async fn projects(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    let p = &who.principal;
    let list = state
        .app
        .list_projects(p, &ProjectFilter { q: Some(q.q.clone()), ..Default::default() }, &page(PROJECT_SORT, &q))
        .await
        .or_page(&tr)?;
    let rows = list
        .items
        .iter()
        .map(|pr| Row {
            href: format!("/projects/{}", pr.id),
            cells: vec![pr.code.clone(), pr.name.clone(), tr.t(&format!("project-status-{}", pr.status))],
        })
        .collect();
    let new = p.may_admin(AdminArea::Projects, Action::Write).then(|| ("/projects/new".to_string(), tr.t("action-new-project")));
    let ctx = Ctx::new(&tr, Some(&who), "/projects", q.flash.as_deref());
    Ok(list_page(
        ctx,
        tr.t("nav-projects"),
        "/projects",
        &q,
        new,
        (vec![tr.t("field-code"), tr.t("field-name"), tr.t("field-status")], rows),
        list.next_cursor,
    ))
}

async fn project_new_page(state: &AppState, tr: &Tr, who: &crate::auth::Identity, f: &ProjectForm, err: Option<AppError>) -> UiResult {
    let orgs = organization_options(state, &who.principal).await.or_page(tr)?;
    let staff = staff_options(state, &who.principal).await.or_page(tr)?;
    let mut fields = project_fields(tr, f, orgs, &staff, false);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), "/projects/new", None);
    let mut page = FormPage::new(ctx, tr.t("action-new-project"), "/projects".into(), fields, "/projects");
    page.errors = errors;
    Ok(render_status(status_for(&err), &page))
}

pub async fn project_new(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    project_new_page(&state, &tr, &who, &ProjectForm::default(), None).await
}

pub async fn project_create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<ProjectForm>) -> UiResult {
    match state.app.create_project(&who.principal, project_input(&f)).await {
        Ok(p) => Ok(see_other(&format!("/projects/{}", p.id), "created")),
        Err(e) => project_new_page(&state, &tr, &who, &f, Some(e)).await,
    }
}

async fn project_page(
    state: &AppState,
    tr: &Tr,
    who: &crate::auth::Identity,
    id: &str,
    form: Option<(ProjectForm, AppError)>,
    flash: Option<&str>,
    tailoring_error: Option<String>,
) -> UiResult {
    let pr = state.app.get_project(&who.principal, id).await.or_page(tr)?;
    let orgs = organization_options(state, &who.principal).await.or_page(tr)?;
    let staff = staff_options(state, &who.principal).await.or_page(tr)?;
    let (f, err) = match form {
        Some((f, e)) => (f, Some(e)),
        None => (
            ProjectForm {
                code: pr.code.clone(),
                name: pr.name.clone(),
                organization_id: pr.organization_id.clone(),
                manager_user_id: pr.manager_user_id.clone().unwrap_or_default(),
                description: pr.description.clone().unwrap_or_default(),
                starts_on: pr.starts_on.clone().unwrap_or_default(),
                ends_on: pr.ends_on.clone().unwrap_or_default(),
                status: pr.status.clone(),
                member_ids: pr.member_ids.clone(),
                version: None,
            },
            None,
        ),
    };
    let mut fields = project_fields(tr, &f, orgs, &staff, true);
    let mut errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    errors.extend(tailoring_error);
    let decisions = state.app.project_tailoring(&who.principal, id).await.or_page(tr)?;
    let names: std::collections::HashMap<String, String> = staff.iter().cloned().collect();
    let rows = Process::ALL
        .iter()
        .map(|p| {
            let d = decisions.iter().find(|d| d.process == p.as_str());
            TailoringRow {
                process: p.as_str().to_string(),
                label: tr.t(&format!("process-{}", p.as_str().replace('_', "-"))),
                mandatory: p.is_mandatory(),
                enabled: !pr.disabled_processes.iter().any(|x| x == p.as_str()),
                decision: d
                    .filter(|d| d.reason != "default")
                    .map(|d| {
                        format!(
                            "{} — {} ({})",
                            d.reason,
                            names.get(&d.changed_by).cloned().unwrap_or_else(|| d.changed_by.clone()),
                            tr.datetime(&d.changed_at)
                        )
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let p = &who.principal;
    let is_manager = pr.manager_user_id.as_deref() == Some(p.user_id.as_str()) && p.has(Role::ProjectManager);
    let ctx = Ctx::new(tr, Some(who), &format!("/projects/{id}"), flash);
    let mut page = FormPage::new(ctx, format!("{} — {}", pr.code, pr.name), format!("/projects/{id}"), fields, "/projects");
    page.version = Some(pr.version);
    page.errors = errors;
    page.editable = p.may_admin(AdminArea::Projects, Action::Write) || (is_manager && !p.is_read_only());
    page.tailoring = Some(rows);
    // The project's working pages, for the processes it has not tailored out.
    let enabled = |p: Process| !pr.disabled_processes.iter().any(|x| x == p.as_str());
    let pages = [
        (Process::Incident, format!("/incidents?project_id={id}")),
        (Process::Configuration, format!("/cmdb?project_id={id}")),
        (Process::ServiceLevel, format!("/slas?project_id={id}")),
    ];
    page.panels.push(Panel {
        title: tr.t("project-processes"),
        columns: vec![tr.t("tailoring-process")],
        rows: pages
            .into_iter()
            .filter(|(p, _)| enabled(*p))
            .map(|(p, href)| Row { href, cells: vec![tr.t(&format!("process-{}", p.as_str().replace('_', "-")))] })
            .collect(),
        action: None,
    });
    let mail = [("mail-mailboxes", "mailboxes"), ("mail-received", "mail"), ("mail-held", "held-mail"), ("mail-sender-title", "sender")];
    page.panels.push(Panel {
        title: tr.t("mail-channel"),
        columns: vec![tr.t("mail-page")],
        rows: mail.iter().map(|(key, path)| Row { href: format!("/projects/{id}/{path}"), cells: vec![tr.t(key)] }).collect(),
        action: None,
    });
    page.editable_tailoring = p.may_admin(AdminArea::ProjectTailoring, Action::Write);
    page.show_history = true;
    page.history = super::readable_history(&state.app, tr, &who.principal, &state.app.history("project", id).await.or_page(tr)?).await?;
    Ok(render_status(status_for(&err), &page))
}

pub async fn project_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    project_page(&state, &tr, &who, &id, None, q.flash.as_deref(), None).await
}

pub async fn project_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<ProjectForm>,
) -> UiResult {
    match state.app.update_project(&who.principal, &id, project_input(&f), expected_version(&f.version)).await {
        Ok(_) => Ok(see_other(&format!("/projects/{id}"), "saved")),
        Err(e) => project_page(&state, &tr, &who, &id, Some((f, e)), None, None).await,
    }
}

#[derive(serde::Deserialize, Default)]
pub struct TailorForm {
    #[serde(default)]
    process: String,
    #[serde(default)]
    enabled: String,
    #[serde(default)]
    reason: String,
}

pub async fn project_tailor(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<TailorForm>,
) -> UiResult {
    match state.app.tailor_project(&who.principal, &id, &f.process, f.enabled == "true", &f.reason).await {
        Ok(_) => Ok(see_other(&format!("/projects/{id}#tailoring"), "tailored")),
        Err(e @ (AppError::Validation(_) | AppError::Forbidden)) => {
            let msg = match &e {
                AppError::Validation(list) => {
                    list.iter().map(|fe| super::translate_field_error(&tr, fe.code, &fe.message)).collect::<Vec<_>>().join("; ")
                }
                other => super::error_message(&tr, other),
            };
            let mut r = project_page(&state, &tr, &who, &id, None, None, Some(msg)).await?;
            *r.status_mut() = crate::error::status_of(&e);
            Ok(r)
        }
        Err(e) => Err(super::UiError(tr, e)),
    }
}

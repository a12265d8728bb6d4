//! One's own account: profile, language and time zone, password, sessions and API tokens.

use super::{
    Ctx, Field, FormPage, MessagePage, OrPage, Panel, Row, UiResult, attach_errors, expected_version, render, render_status, see_other,
    status_for,
};
use crate::AppState;
use crate::auth::{CsrfForm, UiUser, Via};
use crate::i18n::Tr;
use axum::extract::{Path, Query, State};
use keel_app::AppError;
use keel_app::users::UserPatch;

#[derive(serde::Deserialize, Default)]
pub struct ProfileForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    time_zone: String,
    #[serde(rename = "_version")]
    version: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

#[derive(serde::Deserialize, Default)]
pub struct FlashQuery {
    flash: Option<String>,
}

fn profile_fields(tr: &Tr, f: &ProfileForm) -> Vec<Field> {
    vec![
        Field::new(tr, "display_name", "text", &f.display_name).required(),
        Field::new(tr, "phone", "text", &f.phone),
        Field::new(tr, "locale", "select", "")
            .required()
            .options(vec![("en".into(), "English".into()), ("zh-CN".into(), "简体中文".into())], std::slice::from_ref(&f.locale)),
        Field::new(tr, "time_zone", "text", &f.time_zone).required().help(tr.t("help-time-zone")),
    ]
}

async fn profile_page(
    state: &AppState,
    tr: &Tr,
    who: &crate::auth::Identity,
    form: Option<(ProfileForm, AppError)>,
    flash: Option<&str>,
) -> UiResult {
    let u = state.app.get_user(&who.principal, &who.principal.user_id).await.or_page(tr)?;
    let (f, err) = match form {
        Some((f, e)) => (f, Some(e)),
        None => (
            ProfileForm {
                display_name: u.display_name.clone(),
                phone: u.phone.clone().unwrap_or_default(),
                locale: u.locale.clone(),
                time_zone: u.time_zone.clone(),
                version: None,
            },
            None,
        ),
    };
    let mut fields = profile_fields(tr, &f);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), "/profile", flash);
    let mut page = FormPage::new(ctx, tr.t("nav-profile"), "/profile".into(), fields, "/");
    page.version = Some(u.version);
    page.errors = errors;
    page.panels.push(Panel {
        title: tr.t("password-title"),
        columns: vec![],
        rows: vec![],
        action: Some(("/profile/password".into(), tr.t("action-change-password"))),
    });
    page.panels.push(Panel {
        title: tr.t("sessions-title"),
        columns: vec![],
        rows: vec![],
        action: Some(("/profile/sessions".into(), tr.t("action-logout-everywhere"))),
    });
    page.panels.push(Panel {
        title: tr.t("opt-outs-title"),
        columns: vec![],
        rows: vec![],
        action: Some(("/profile/notifications".into(), tr.t("action-choose-notifications"))),
    });
    Ok(render_status(status_for(&err), &page))
}

pub async fn profile(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<FlashQuery>) -> UiResult {
    profile_page(&state, &tr, &who, None, q.flash.as_deref()).await
}

pub async fn profile_update(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<ProfileForm>) -> UiResult {
    let patch = UserPatch {
        display_name: Some(f.display_name.clone()),
        phone: Some(Some(f.phone.clone()).filter(|s| !s.trim().is_empty())),
        locale: Some(f.locale.clone()),
        time_zone: Some(f.time_zone.clone()),
        ..Default::default()
    };
    let v = expected_version(&f.version);
    match state.app.update_user(&who.principal, &who.principal.user_id, patch, v).await {
        Ok(_) => Ok(see_other("/profile", "saved")),
        Err(e) => profile_page(&state, &tr, &who, Some((f, e)), None).await,
    }
}

fn password_fields(tr: &Tr) -> Vec<Field> {
    vec![
        Field::new(tr, "current_password", "password", "").required().autocomplete("current-password"),
        Field::new(tr, "new_password", "password", "").required().autocomplete("new-password").help(tr.t("help-password")),
    ]
}

pub async fn password_form(tr: Tr, UiUser(who): UiUser) -> UiResult {
    let ctx = Ctx::new(&tr, Some(&who), "/profile/password", None);
    let mut page = FormPage::new(ctx, tr.t("password-title"), "/profile/password".into(), password_fields(&tr), "/profile");
    page.submit = tr.t("action-change-password");
    Ok(render(&page))
}

pub async fn password_change(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<PasswordForm>) -> UiResult {
    let keep = match &who.via {
        Via::Session { token, .. } => Some(token.clone()),
        Via::Token => None,
    };
    match state.app.change_password(&who.principal, &f.current_password, &f.new_password, keep.as_deref()).await {
        Ok(()) => Ok(see_other("/profile", "password-changed")),
        Err(e) => {
            let mut fields = password_fields(&tr);
            let errors = attach_errors(&tr, &mut fields, &e);
            let ctx = Ctx::new(&tr, Some(&who), "/profile/password", None);
            let mut page = FormPage::new(ctx, tr.t("password-title"), "/profile/password".into(), fields, "/profile");
            page.errors = errors;
            page.submit = tr.t("action-change-password");
            Ok(render_status(crate::error::status_of(&e), &page))
        }
    }
}

pub async fn sessions_form(tr: Tr, UiUser(who): UiUser) -> UiResult {
    let ctx = Ctx::new(&tr, Some(&who), "/profile/sessions", None);
    let mut page = FormPage::new(ctx, tr.t("sessions-title"), "/profile/sessions".into(), vec![], "/profile");
    page.submit = tr.t("action-logout-everywhere");
    page.panels.push(Panel { title: tr.t("sessions-help"), columns: vec![], rows: vec![], action: None });
    Ok(render(&page))
}

pub async fn logout_everywhere(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    CsrfForm(_): CsrfForm<serde_json::Value>,
) -> UiResult {
    let keep = match &who.via {
        Via::Session { token, .. } => Some(token.clone()),
        Via::Token => None,
    };
    state.app.logout_everywhere(&who.principal, keep.as_deref()).await.or_page(&tr)?;
    Ok(see_other("/profile", "signed-out-elsewhere"))
}

// ---- API tokens ----

#[derive(serde::Deserialize, Default)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expires_in_days: String,
}

fn token_fields(tr: &Tr, f: &TokenForm) -> Vec<Field> {
    vec![
        Field::new(tr, "name", "text", &f.name).required(),
        Field::new(tr, "expires_in_days", "text", &f.expires_in_days).help(tr.t("help-expires-in-days")),
    ]
}

async fn tokens_page(
    state: &AppState,
    tr: &Tr,
    who: &crate::auth::Identity,
    f: &TokenForm,
    err: Option<AppError>,
    flash: Option<&str>,
) -> UiResult {
    let tokens = state.app.list_api_tokens(&who.principal, false).await.or_page(tr)?;
    let mut fields = token_fields(tr, f);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let ctx = Ctx::new(tr, Some(who), "/tokens", flash);
    let mut page = FormPage::new(ctx, tr.t("nav-tokens"), "/tokens".into(), fields, "/");
    page.errors = errors;
    page.submit = tr.t("action-create-token");
    page.panels.push(Panel {
        title: tr.t("tokens-existing"),
        columns: vec![
            tr.t("field-name"),
            tr.t("field-prefix"),
            tr.t("field-created-at"),
            tr.t("field-last-used-at"),
            tr.t("field-expires-at"),
            tr.t("field-status"),
        ],
        rows: tokens
            .iter()
            .map(|t| Row {
                href: if t.revoked_at.is_none() { format!("/tokens/{}/revoke", t.id) } else { String::new() },
                cells: vec![
                    t.name.clone(),
                    format!("{}…", t.prefix),
                    tr.datetime(&t.created_at),
                    tr.opt_datetime(&t.last_used_at),
                    tr.opt_datetime(&t.expires_at),
                    if t.revoked_at.is_some() { tr.t("token-revoked") } else { tr.t("token-active") },
                ],
            })
            .collect(),
        action: None,
    });
    Ok(render_status(status_for(&err), &page))
}

pub async fn tokens(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<FlashQuery>) -> UiResult {
    tokens_page(&state, &tr, &who, &TokenForm::default(), None, q.flash.as_deref()).await
}

pub async fn token_create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<TokenForm>) -> UiResult {
    let days = match f.expires_in_days.trim() {
        "" => None,
        s => match s.parse::<i64>() {
            Ok(d) => Some(d),
            Err(_) => {
                return tokens_page(
                    &state,
                    &tr,
                    &who,
                    &f,
                    Some(AppError::field("expires_in_days", "not_a_number", "a whole number of days")),
                    None,
                )
                .await;
            }
        },
    };
    match state.app.create_api_token(&who.principal, &f.name, days).await {
        Ok((secret, _)) => {
            let ctx = Ctx::new(&tr, Some(&who), "/tokens", None);
            Ok(render(&MessagePage {
                ctx,
                title: tr.t("token-created"),
                kind: "ok",
                message: tr.t("token-created"),
                secret: Some(secret),
                back_href: "/tokens".into(),
            }))
        }
        Err(e) => tokens_page(&state, &tr, &who, &f, Some(e), None).await,
    }
}

pub async fn token_revoke_form(tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    let ctx = Ctx::new(&tr, Some(&who), "/tokens", None);
    let mut page = FormPage::new(ctx, tr.t("action-revoke-token"), format!("/tokens/{id}/revoke"), vec![], "/tokens");
    page.submit = tr.t("action-revoke-token");
    page.panels.push(Panel { title: tr.t("token-revoke-help"), columns: vec![], rows: vec![], action: None });
    Ok(render(&page))
}

pub async fn token_revoke(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<serde_json::Value>,
) -> UiResult {
    state.app.revoke_api_token(&who.principal, &id).await.or_page(&tr)?;
    Ok(see_other("/tokens", "token-revoked"))
}

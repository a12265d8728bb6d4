//! Signing in and out, first-run setup, language choice and the home page.

use super::{Ctx, Field, OrPage, UiResult, render, render_status, see_other};
use crate::AppState;
use crate::auth::{CsrfForm, LANG_COOKIE, PRE_CSRF_COOKIE, SESSION_COOKIE, UiUser, Via, cookie};
use crate::i18n::{Lang, Tr};
use askama::Template;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use keel_app::AppError;
use keel_app::users::NewUser;
use std::net::SocketAddr;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: Ctx,
    title: String,
    action: String,
    next: String,
    fields: Vec<Field>,
    submit: String,
    error: Option<String>,
    notice: Option<String>,
}

fn session_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.cfg.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"))
        .unwrap_or(HeaderValue::from_static(""))
}

/// Pre-session forms (login, setup) use a double-submit cookie for CSRF.
fn pre_csrf(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, PRE_CSRF_COOKIE) {
        Some(v) if v.len() >= 32 => (v.to_string(), None),
        _ => {
            let v = keel_app::auth::random_secret();
            let c = session_cookie(state, PRE_CSRF_COOKIE, &v, 3600);
            (v, Some(c))
        }
    }
}

fn with_cookie(mut r: Response, c: Option<HeaderValue>) -> Response {
    if let Some(c) = c {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// Only local paths may be a post-login destination.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') { next.to_string() } else { "/".to_string() }
}

#[derive(serde::Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
    flash: Option<String>,
}

fn login_fields(tr: &Tr, email: &str) -> Vec<Field> {
    vec![
        Field::new(tr, "email", "email", email).required().autocomplete("username"),
        Field::new(tr, "password", "password", "").required().autocomplete("current-password"),
    ]
}

pub async fn login_form(State(state): State<AppState>, tr: Tr, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let (csrf, set) = pre_csrf(&state, &headers);
    let notice = match q.flash.as_deref() {
        Some("setup-done") => Some(tr.t("flash-setup-done")),
        Some("signed-out") => Some(tr.t("flash-signed-out")),
        _ => None,
    };
    let page = LoginPage {
        ctx: Ctx::anonymous(&tr, csrf, "/login"),
        title: tr.t("login-title"),
        action: "/login".into(),
        next: safe_next(&q.next),
        fields: login_fields(&tr, ""),
        submit: tr.t("action-login"),
        error: None,
        notice,
    };
    with_cookie(render(&page), set)
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(state): State<AppState>,
    tr: Tr,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    CsrfForm(f): CsrfForm<LoginForm>,
) -> Response {
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    match state.app.login(&f.email, &f.password, &peer.ip().to_string(), ua).await {
        Ok(s) => {
            let mut r = Redirect::to(&safe_next(&f.next)).into_response();
            let max_age = state.app.security.session_max_ms / 1000;
            r.headers_mut().append(header::SET_COOKIE, session_cookie(&state, SESSION_COOKIE, &s.token, max_age));
            r
        }
        Err(e) => {
            let (csrf, set) = pre_csrf(&state, &headers);
            let status = crate::error::status_of(&e);
            let message = match &e {
                AppError::RateLimited { retry_after_secs } => tr.t1("err-rate-limited-minutes", "minutes", (retry_after_secs + 59) / 60),
                other => super::error_message(&tr, other),
            };
            let page = LoginPage {
                ctx: Ctx::anonymous(&tr, csrf, "/login"),
                title: tr.t("login-title"),
                action: "/login".into(),
                next: safe_next(&f.next),
                fields: login_fields(&tr, &f.email),
                submit: tr.t("action-login"),
                error: Some(message),
                notice: None,
            };
            with_cookie(render_status(status, &page), set)
        }
    }
}

pub async fn logout(State(state): State<AppState>, UiUser(who): UiUser, CsrfForm(_): CsrfForm<serde_json::Value>) -> Response {
    if let Via::Session { token, .. } = &who.via
        && let Err(e) = state.app.logout(token).await
    {
        tracing::warn!(error = %e, "logout");
    }
    let mut r = Redirect::to("/login?flash=signed-out").into_response();
    r.headers_mut().append(header::SET_COOKIE, session_cookie(&state, SESSION_COOKIE, "", 0));
    r
}

#[derive(serde::Deserialize)]
pub struct LangQuery {
    #[serde(default)]
    back: String,
}

/// Switches the interface language (a cookie; the profile keeps the default).
/// Returns to the page the language was chosen on, query string included (so a setup link
/// keeps its token and a login page its destination).
pub async fn switch_language(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = Lang::parse(&code).unwrap_or_default();
    let from_referer = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_string()));
    let back = from_referer.filter(|r| r.split('?').next() == Some(q.back.as_str()) || q.back.is_empty()).unwrap_or(q.back);
    let mut r = Redirect::to(&safe_next(&back)).into_response();
    let secure = if state.cfg.secure_cookies { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!("{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000{secure}", lang.code())) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

// ---- first-run setup ----

#[derive(serde::Deserialize, Default)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

fn setup_fields(tr: &Tr, f: &SetupForm) -> Vec<Field> {
    vec![
        Field::new(tr, "display_name", "text", &f.display_name).required().autocomplete("name"),
        Field::new(tr, "email", "email", &f.email).required().autocomplete("username"),
        Field::new(tr, "password", "password", "").required().autocomplete("new-password").help(tr.t("help-password")),
        Field::new(tr, "time_zone", "text", &f.time_zone).required().help(tr.t("help-time-zone")),
    ]
}

fn setup_page(tr: &Tr, csrf: String, f: &SetupForm, error: Option<String>, fields: Vec<Field>) -> LoginPage {
    let _ = f;
    LoginPage {
        ctx: Ctx::anonymous(tr, csrf, "/setup"),
        title: tr.t("setup-title"),
        action: format!("/setup?token={}", crate::auth::urlencode(&f.token)),
        next: String::new(),
        fields,
        submit: tr.t("setup-submit"),
        error,
        notice: Some(tr.t("setup-intro")),
    }
}

pub async fn setup_form(State(state): State<AppState>, tr: Tr, headers: HeaderMap, Query(q): Query<SetupQuery>) -> UiResult {
    if !state.app.setup_token_valid(&q.token).await.or_page(&tr)? {
        return Ok(super::error_page(&tr, StatusCode::NOT_FOUND, "err-setup-token-invalid"));
    }
    let (csrf, set) = pre_csrf(&state, &headers);
    let f = SetupForm { token: q.token, time_zone: "Asia/Shanghai".into(), ..Default::default() };
    let fields = setup_fields(&tr, &f);
    Ok(with_cookie(render(&setup_page(&tr, csrf, &f, None, fields)), set))
}

#[derive(serde::Deserialize, Default)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    time_zone: String,
}

pub async fn setup(
    State(state): State<AppState>,
    tr: Tr,
    headers: HeaderMap,
    Query(q): Query<SetupQuery>,
    CsrfForm(mut f): CsrfForm<SetupForm>,
) -> Response {
    f.token = q.token.clone();
    let input = NewUser {
        email: f.email.clone(),
        display_name: f.display_name.clone(),
        password: Some(f.password.clone()),
        locale: Some(tr.lang.code().to_string()),
        time_zone: Some(f.time_zone.clone()),
        ..Default::default()
    };
    match state.app.complete_setup(&q.token, input).await {
        Ok(_) => see_other("/login", "setup-done"),
        Err(e) => {
            let (csrf, set) = pre_csrf(&state, &headers);
            let mut fields = setup_fields(&tr, &f);
            let loose = super::attach_errors(&tr, &mut fields, &e);
            let status = crate::error::status_of(&e);
            with_cookie(render_status(status, &setup_page(&tr, csrf, &f, loose.first().cloned(), fields)), set)
        }
    }
}

// ---- home ----

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    ctx: Ctx,
    title: String,
    greeting: String,
    projects: Vec<super::Row>,
    notices: Vec<String>,
    /// How many changes wait for the user's vote (shown when there are any).
    awaiting: usize,
}

pub async fn home(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<NextQuery>) -> UiResult {
    let page = keel_store::page::PageRequest { sort: super::admin::PROJECT_SORT, desc: false, after: None, limit: 50 };
    let projects = state.app.list_projects(&who.principal, &Default::default(), &page).await.or_page(&tr)?;
    let rows = projects
        .items
        .iter()
        .map(|p| super::Row {
            href: format!("/projects/{}", p.id),
            cells: vec![p.code.clone(), p.name.clone(), tr.t(&format!("project-status-{}", p.status))],
        })
        .collect();
    let notices = Vec::new();
    let awaiting = state.app.changes_awaiting_me(&who.principal).await.or_page(&tr)?.len();
    let ctx = Ctx::new(&tr, Some(&who), "/", q.flash.as_deref());
    Ok(render(&HomePage {
        ctx,
        title: tr.t("home-title"),
        greeting: tr.t1("home-greeting", "name", &who.user.display_name),
        projects: rows,
        notices,
        awaiting,
    }))
}

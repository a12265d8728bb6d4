//! Who is calling, for every route of every process: the session cookie or API token is
//! resolved once per request, CSRF is enforced on state-changing requests, and extractors hand
//! handlers a principal or refuse.

use crate::AppState;
use crate::error::ApiError;
use crate::i18n::{Lang, Tr};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use keel_app::Principal;
use keel_store::accounts::UserRecord;

pub const SESSION_COOKIE: &str = "keel_session";
pub const LANG_COOKIE: &str = "keel_lang";
pub const PRE_CSRF_COOKIE: &str = "keel_pre_csrf";

#[derive(Clone, Debug)]
pub enum Via {
    Session { token: String, csrf: String },
    Token,
}

/// The resolved caller, put in the request's extensions by `identify`.
#[derive(Clone, Debug)]
pub struct Identity {
    pub principal: Principal,
    pub user: UserRecord,
    pub via: Via,
}

impl Identity {
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token => "",
        }
    }
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

pub fn client_address(parts_headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> String {
    let _ = parts_headers;
    peer.map(|p| p.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

fn is_unsafe(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Resolves the caller and the reader's language once per request.
pub async fn identify(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let headers = req.headers().clone();
    let is_api = req.uri().path().starts_with("/api/");
    let mut identity = None;
    if let Some(bearer) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) {
        match state.app.api_identity(bearer.trim()).await {
            Ok(Some((principal, user))) => identity = Some(Identity { principal, user, via: Via::Token }),
            Ok(None) => {
                return ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", "the API token is invalid, expired or revoked")
                    .into_response();
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        match state.app.session(token).await {
            Ok(Some((principal, user, sess))) => {
                identity = Some(Identity { principal, user, via: Via::Session { token: token.to_string(), csrf: sess.csrf_token } });
            }
            Ok(None) => {}
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    if is_api
        && is_unsafe(req.method())
        && let Some(Identity { via: Via::Session { csrf, .. }, .. }) = &identity
    {
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !crate::constant_time_eq(sent, csrf) {
            return ApiError::new(StatusCode::FORBIDDEN, "csrf_failed", "send the X-CSRF-Token header with cookie authentication")
                .into_response();
        }
    }
    let lang = cookie(&headers, LANG_COOKIE)
        .and_then(Lang::parse)
        .or_else(|| identity.as_ref().and_then(|i| Lang::parse(&i.user.locale)))
        .or_else(|| headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(Lang::from_accept_language))
        .unwrap_or_default();
    let tz = identity.as_ref().and_then(|i| i.user.time_zone.parse().ok()).unwrap_or(state.cfg.default_time_zone);
    req.extensions_mut().insert(Tr::new(lang, tz));
    if let Some(i) = identity {
        req.extensions_mut().insert(i);
    }
    next.run(req).await
}

/// A caller of `/api/v1` (token or session); 401 JSON otherwise.
pub struct ApiUser(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for ApiUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Identity>()
            .cloned()
            .map(ApiUser)
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in or send a bearer token"))
    }
}

/// A signed-in browser user; others are sent to the login page.
pub struct UiUser(pub Identity);

pub struct LoginRedirect(String);

impl IntoResponse for LoginRedirect {
    fn into_response(self) -> Response {
        Redirect::to(&format!("/login?next={}", urlencode(&self.0))).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UiUser {
    type Rejection = LoginRedirect;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, LoginRedirect> {
        parts.extensions.get::<Identity>().cloned().map(UiUser).ok_or_else(|| LoginRedirect(parts.uri.path().to_string()))
    }
}

/// The translator for this request.
impl<S: Send + Sync> FromRequestParts<S> for Tr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Tr>().cloned().unwrap_or_else(|| Tr::new(Lang::En, chrono_tz::UTC)))
    }
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A form posted from one of Keel's pages: the body parsed into `T` after its `_csrf` field
/// matched the session's token (or, before sign-in, the pre-session cookie).
pub struct CsrfForm<T>(pub T);

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for CsrfForm<T> {
    type Rejection = Response;
    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let tr = req.extensions().get::<Tr>().cloned().unwrap_or_else(|| Tr::new(Lang::En, chrono_tz::UTC));
        let expected = match req.extensions().get::<Identity>() {
            Some(i) => i.csrf().to_string(),
            None => cookie(req.headers(), PRE_CSRF_COOKIE).unwrap_or_default().to_string(),
        };
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        let sent: CsrfField =
            serde_html_form::from_bytes(&bytes).map_err(|_| crate::ui::error_page(&tr, StatusCode::BAD_REQUEST, "error-malformed-form"))?;
        if expected.is_empty() || !crate::constant_time_eq(&sent.csrf, &expected) {
            return Err(crate::ui::error_page(&tr, StatusCode::FORBIDDEN, "error-csrf"));
        }
        let v = serde_html_form::from_bytes(&bytes)
            .map_err(|_| crate::ui::error_page(&tr, StatusCode::UNPROCESSABLE_ENTITY, "error-malformed-form"))?;
        Ok(CsrfForm(v))
    }
}

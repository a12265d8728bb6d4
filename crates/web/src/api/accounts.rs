//! `/api/v1/users`, `/api/v1/contacts`, `/api/v1/me`, `/api/v1/tokens`: the people who work in
//! Keel and the customer contacts it serves, and their API tokens.

use super::directory::IntoResponseOk;
use super::{
    ApiJson, ApiPath, ApiQuery, ApiResponse, Forbidden, InvalidQuery, JsonBodyErrors, ListOf, NotFound, PageParams, RoleName, Unauthorized,
    VersionErrors, created, if_match, page_request, with_etag,
};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use keel_app::users::{NewUser, UserPatch};
use keel_domain::identity::{AccountKind, Role};
use keel_store::accounts::{TokenRecord, UserFilter, UserRecord};
use keel_store::page::{SortKey, SortKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(reset_password))
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(get_contact, update_contact))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

const USER_SORTS: &[SortKey] = &[
    SortKey { name: "display_name", column: "display_name", kind: SortKind::Text },
    SortKey { name: "email", column: "email", kind: SortKind::Text },
    SortKey { name: "created_at", column: "created_at", kind: SortKind::Int },
    SortKey { name: "updated_at", column: "updated_at", kind: SortKind::Int },
];

/// A staff member or customer contact.
#[derive(Serialize, ToSchema)]
pub struct User {
    pub id: String,
    /// `staff` or `contact`.
    pub kind: String,
    pub email: String,
    pub display_name: String,
    #[schema(required = true)]
    pub phone: Option<String>,
    /// For contacts: their organisation.
    #[schema(required = true)]
    pub organization_id: Option<String>,
    /// `en` or `zh-CN`.
    pub locale: String,
    /// IANA time zone.
    pub time_zone: String,
    pub active: bool,
    /// Staff roles, e.g. `service_desk_agent`, `project_manager`, `auditor`.
    pub roles: Vec<String>,
    /// Whether the account can sign in.
    pub has_password: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl From<UserRecord> for User {
    fn from(u: UserRecord) -> Self {
        User {
            has_password: u.password_hash.is_some(),
            id: u.id,
            kind: u.kind,
            email: u.email,
            display_name: u.display_name,
            phone: u.phone,
            organization_id: u.organization_id,
            locale: u.locale,
            time_zone: u.time_zone,
            active: u.active,
            roles: u.roles,
            created_at: u.created_at,
            updated_at: u.updated_at,
            version: u.version,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Unique; stored lower-case.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(min_length = 1, max_length = 200)]
    pub display_name: String,
    #[schema(max_length = 50)]
    pub phone: Option<String>,
    /// Required for contacts; staff have none.
    pub organization_id: Option<String>,
    /// 10–256 characters; omit for an account that cannot sign in yet.
    #[schema(min_length = 10, max_length = 256)]
    pub password: Option<String>,
    /// `en` (the default) or `zh-CN`.
    #[schema(pattern = "^(en|en-US|en-GB|zh-CN|zh|zh-Hans)$", example = "zh-CN")]
    pub locale: Option<String>,
    /// IANA time zone (default `UTC`).
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: Option<String>,
    /// Staff only.
    #[serde(default)]
    #[schema(value_type = Vec<RoleName>)]
    pub roles: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    pub display_name: Option<String>,
    #[schema(max_length = 50)]
    pub phone: Option<String>,
    #[schema(pattern = "^(en|en-US|en-GB|zh-CN|zh|zh-Hans)$", example = "zh-CN")]
    pub locale: Option<String>,
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: Option<String>,
    pub active: Option<bool>,
    #[schema(value_type = Option<Vec<RoleName>>)]
    pub roles: Option<Vec<String>>,
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Text in name or e-mail.
    pub q: Option<String>,
    pub organization_id: Option<String>,
    pub role: Option<String>,
    pub active: Option<bool>,
}

fn parse_roles(roles: &[String]) -> Result<Vec<Role>, ApiError> {
    roles.iter().map(|r| Role::parse(r).ok_or_else(|| ApiError::field("roles", "unknown_role", format!("unknown role {r}")))).collect()
}

async fn list_kind(s: &AppState, who: &crate::auth::Identity, q: UserQuery, pp: PageParams, kind: AccountKind) -> ApiResponse {
    let page = page_request(&pp, USER_SORTS)?;
    let f = UserFilter {
        kind: Some(kind.as_str().into()),
        organization_id: q.organization_id,
        role: q.role,
        active: q.active,
        q: q.q,
        visible_org_projects: None,
    };
    let r = s.app.list_users(&who.principal, f, &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(User::from).collect(), next_cursor: r.next_cursor }).into_response_ok())
}

async fn create_kind(s: &AppState, who: &crate::auth::Identity, b: NewAccount, kind: AccountKind) -> ApiResponse {
    let input = NewUser {
        kind,
        email: b.email,
        display_name: b.display_name,
        phone: b.phone,
        organization_id: b.organization_id,
        password: b.password,
        locale: b.locale,
        time_zone: b.time_zone,
        roles: parse_roles(&b.roles)?,
    };
    let u = s.app.create_user(&who.principal, input).await?;
    let base = if kind == AccountKind::Staff { "users" } else { "contacts" };
    Ok(created(u.version, format!("/api/v1/{base}/{}", u.id), User::from(u)))
}

async fn get_kind(s: &AppState, who: &crate::auth::Identity, id: &str, kind: AccountKind) -> Result<UserRecord, ApiError> {
    let u = s.app.get_user(&who.principal, id).await?;
    if u.kind != kind.as_str() {
        return Err(ApiError::from(keel_app::AppError::NotFound));
    }
    Ok(u)
}

async fn update_kind(
    s: &AppState,
    who: &crate::auth::Identity,
    id: &str,
    headers: &HeaderMap,
    b: AccountPatch,
    kind: AccountKind,
) -> ApiResponse {
    get_kind(s, who, id, kind).await?;
    let version = if_match(headers)?;
    let roles = match &b.roles {
        Some(r) => Some(parse_roles(r)?),
        None => None,
    };
    let patch = UserPatch {
        email: b.email,
        display_name: b.display_name,
        phone: b.phone.map(Some),
        locale: b.locale,
        time_zone: b.time_zone,
        active: b.active,
        roles,
    };
    let u = s.app.update_user(&who.principal, id, patch, Some(version)).await?;
    Ok(with_etag(u.version, User::from(u)))
}

#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    responses((status = 200, description = "The caller's own account", body = User, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), Unauthorized))]
async fn me(ApiUser(who): ApiUser) -> ApiResponse {
    Ok(with_etag(who.user.version, User::from(who.user)))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "accounts", params(UserQuery, PageParams),
    responses((status = 200, description = "A page of staff accounts", body = ListOf<User>), Unauthorized, Forbidden, InvalidQuery))]
async fn list_users(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<UserQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    list_kind(&s, &who, q, pp, AccountKind::Staff).await
}

#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", request_body = NewAccount,
    responses((status = 201, description = "The staff account was created", body = User, headers(("ETag" = String, description = "The record's version, for `If-Match`"), ("Location" = String, description = "The new record's URL")),
        links(("get" = (operation_id = "get_user", parameters(("id" = "$response.body#/id")))), ("update" = (operation_id = "update_user", parameters(("id" = "$response.body#/id"), ("If-Match" = "$response.header.ETag")))))), JsonBodyErrors, Unauthorized, Forbidden))]
async fn create_user(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewAccount>) -> ApiResponse {
    create_kind(&s, &who, b, AccountKind::Staff).await
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "accounts", params(("id" = String, Path)),
    responses((status = 200, description = "The staff account", body = User, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), Unauthorized, NotFound))]
async fn get_user(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let u = get_kind(&s, &who, &id, AccountKind::Staff).await?;
    Ok(with_etag(u.version, User::from(u)))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "accounts", params(("id" = String, Path), ("If-Match" = String, Header, description = "ETag of the version the change is based on")), request_body = AccountPatch,
    responses((status = 200, description = "The updated staff account", body = User, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), JsonBodyErrors, VersionErrors, Unauthorized, Forbidden, NotFound))]
async fn update_user(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<AccountPatch>,
) -> ApiResponse {
    update_kind(&s, &who, &id, &headers, b, AccountKind::Staff).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
}

#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "accounts", params(("id" = String, Path)), request_body = PasswordReset,
    responses((status = 204, description = "The password was set and the account's sessions ended"), JsonBodyErrors, Unauthorized, Forbidden, NotFound))]
async fn reset_password(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<PasswordReset>,
) -> ApiResponse {
    s.app.get_user(&who.principal, &id).await?;
    s.app.reset_password(&who.principal, &id, &b.password).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/api/v1/contacts", tag = "accounts", params(UserQuery, PageParams),
    responses((status = 200, description = "A page of customer contacts", body = ListOf<User>), Unauthorized, Forbidden, InvalidQuery))]
async fn list_contacts(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<UserQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    list_kind(&s, &who, q, pp, AccountKind::Contact).await
}

#[utoipa::path(post, path = "/api/v1/contacts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, description = "The contact was created", body = User, headers(("ETag" = String, description = "The record's version, for `If-Match`"), ("Location" = String, description = "The new record's URL")),
        links(("get" = (operation_id = "get_contact", parameters(("id" = "$response.body#/id")))), ("update" = (operation_id = "update_contact", parameters(("id" = "$response.body#/id"), ("If-Match" = "$response.header.ETag")))))), JsonBodyErrors, Unauthorized, Forbidden))]
async fn create_contact(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewAccount>) -> ApiResponse {
    create_kind(&s, &who, b, AccountKind::Contact).await
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "accounts", params(("id" = String, Path)),
    responses((status = 200, description = "The contact", body = User, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), Unauthorized, NotFound))]
async fn get_contact(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let u = get_kind(&s, &who, &id, AccountKind::Contact).await?;
    Ok(with_etag(u.version, User::from(u)))
}

#[utoipa::path(patch, path = "/api/v1/contacts/{id}", tag = "accounts", params(("id" = String, Path), ("If-Match" = String, Header, description = "ETag of the version the change is based on")), request_body = AccountPatch,
    responses((status = 200, description = "The updated contact", body = User, headers(("ETag" = String, description = "The record's version, for `If-Match`"))), JsonBodyErrors, VersionErrors, Unauthorized, Forbidden, NotFound))]
async fn update_contact(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<AccountPatch>,
) -> ApiResponse {
    update_kind(&s, &who, &id, &headers, b, AccountKind::Contact).await
}

// ---- API tokens ----

/// An API token; the secret itself is shown only in the response that created it.
#[derive(Serialize, ToSchema)]
pub struct Token {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    pub created_at: i64,
    #[schema(required = true)]
    pub expires_at: Option<i64>,
    #[schema(required = true)]
    pub last_used_at: Option<i64>,
    #[schema(required = true)]
    pub revoked_at: Option<i64>,
}

impl From<TokenRecord> for Token {
    fn from(t: TokenRecord) -> Self {
        Token {
            id: t.id,
            user_id: t.user_id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: Token,
    /// The bearer secret. Store it now: Keel keeps only its digest.
    pub secret: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// 1–3650; omit for a token that does not expire.
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<i64>,
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// Administrators: list every user's tokens.
    pub all: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "accounts", params(TokenQuery),
    responses((status = 200, description = "The caller's API tokens (every user's with `all=true`, for administrators)", body = Vec<Token>), Unauthorized, InvalidQuery))]
async fn list_tokens(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(q): ApiQuery<TokenQuery>) -> ApiResponse {
    let t = s.app.list_api_tokens(&who.principal, q.all.unwrap_or(false)).await?;
    Ok(axum::Json(t.into_iter().map(Token::from).collect::<Vec<_>>()).into_response_ok())
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "accounts", request_body = NewToken,
    responses((status = 201, description = "The token was created; its secret is shown only here", body = CreatedToken, headers(("Location" = String, description = "The new token's URL"))), JsonBodyErrors, Unauthorized, Forbidden))]
async fn create_token(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewToken>) -> ApiResponse {
    let (secret, t) = s.app.create_api_token(&who.principal, &b.name, b.expires_in_days).await?;
    let loc = format!("/api/v1/tokens/{}", t.id);
    let mut r = (StatusCode::CREATED, axum::Json(CreatedToken { token: Token::from(t), secret })).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&loc) {
        r.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(r)
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "accounts", params(("id" = String, Path)),
    responses((status = 204, description = "The token is revoked (or already was)"), Unauthorized, Forbidden, NotFound))]
async fn revoke_token(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    s.app.revoke_api_token(&who.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

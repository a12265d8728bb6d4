//! Accounts of staff and customer contacts, their roles, sessions, API tokens, the first-run
//! setup token and login throttling — the access control every process relies on.

use crate::page::{Page, PageRequest, fetch_page, like_pattern};
use crate::rows::RowExt;
use crate::{AnyConnection, Result, StoreError};
use serde::Serialize;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UserRecord {
    pub id: String,
    pub kind: String,
    pub email: String,
    pub display_name: String,
    pub phone: Option<String>,
    pub organization_id: Option<String>,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub locale: String,
    pub time_zone: String,
    pub active: bool,
    pub roles: Vec<String>,
    #[serde(skip)]
    pub failed_logins: i64,
    #[serde(skip)]
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl UserRecord {
    /// The audited view: the password hash is a secret, so only its change is recorded.
    pub fn audit_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("created_at");
            o.remove("updated_at");
            o.remove("version");
            o.insert("password_hash".into(), serde_json::json!(self.password_hash.as_ref().map(|h| crate::short_digest(h))));
        }
        v
    }
}

const USER_COLS: &str = "id, kind, email, display_name, phone, organization_id, password_hash, locale, time_zone, active, failed_logins, locked_until, created_at, updated_at, version";

fn user(r: &AnyRow) -> Result<UserRecord> {
    Ok(UserRecord {
        id: r.text("id")?,
        kind: r.text("kind")?,
        email: r.text("email")?,
        display_name: r.text("display_name")?,
        phone: r.opt_text("phone")?,
        organization_id: r.opt_text("organization_id")?,
        password_hash: r.opt_text("password_hash")?,
        locale: r.text("locale")?,
        time_zone: r.text("time_zone")?,
        active: r.flag("active")?,
        roles: vec![],
        failed_logins: r.int("failed_logins")?,
        locked_until: r.opt_int("locked_until")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

async fn with_roles(conn: &mut AnyConnection, mut u: UserRecord) -> Result<UserRecord> {
    fill_roles(conn, std::slice::from_mut(&mut u)).await?;
    Ok(u)
}

/// The roles of many users in one statement, each user's by name.
async fn fill_roles(conn: &mut AnyConnection, users: &mut [UserRecord]) -> Result<()> {
    if users.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let mut roles = crate::sql::grouped(conn, "SELECT user_id AS k, role AS v FROM user_roles WHERE user_id IN ", &ids).await?;
    for u in users {
        u.roles = roles.remove(&u.id).unwrap_or_default();
    }
    Ok(())
}

pub async fn insert_user(conn: &mut AnyConnection, u: &UserRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, kind, email, display_name, phone, organization_id, password_hash, locale, time_zone, active, failed_logins, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $11, 1)",
    )
    .bind(&u.id)
    .bind(&u.kind)
    .bind(&u.email)
    .bind(&u.display_name)
    .bind(&u.phone)
    .bind(&u.organization_id)
    .bind(&u.password_hash)
    .bind(&u.locale)
    .bind(&u.time_zone)
    .bind(u.active as i64)
    .bind(u.created_at)
    .execute(&mut *conn)
    .await?;
    set_roles(conn, &u.id, &u.roles).await
}

pub async fn set_roles(conn: &mut AnyConnection, user_id: &str, roles: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
    for r in roles {
        sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)").bind(user_id).bind(r).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Writes the editable fields when `expected_version` still matches; bumps the version.
pub async fn update_user(conn: &mut AnyConnection, u: &UserRecord, expected_version: i64) -> Result<()> {
    let r = sqlx::query(
        "UPDATE users SET email = $1, display_name = $2, phone = $3, organization_id = $4, locale = $5, time_zone = $6, active = $7, updated_at = $8, version = version + 1 \
         WHERE id = $9 AND version = $10",
    )
    .bind(&u.email)
    .bind(&u.display_name)
    .bind(&u.phone)
    .bind(&u.organization_id)
    .bind(&u.locale)
    .bind(&u.time_zone)
    .bind(u.active as i64)
    .bind(u.updated_at)
    .bind(&u.id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Err(StoreError::Stale);
    }
    set_roles(conn, &u.id, &u.roles).await
}

pub async fn set_password_hash(conn: &mut AnyConnection, user_id: &str, hash: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2, failed_logins = 0, locked_until = NULL, updated_at = $2, version = version + 1 WHERE id = $3")
        .bind(hash)
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn get_user(conn: &mut AnyConnection, id: &str) -> Result<Option<UserRecord>> {
    let q = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
    match sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await? {
        Some(r) => Ok(Some(with_roles(conn, user(&r)?).await?)),
        None => Ok(None),
    }
}

/// The user row without its roles (a caller that reads them otherwise, e.g. with the projects).
pub async fn get_user_row(conn: &mut AnyConnection, id: &str) -> Result<Option<UserRecord>> {
    let q = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await?.map(|r| user(&r)).transpose()
}

pub async fn get_user_by_email(conn: &mut AnyConnection, email: &str) -> Result<Option<UserRecord>> {
    let q = format!("SELECT {USER_COLS} FROM users WHERE email = $1");
    match sqlx::query(sqlx::AssertSqlSafe(q)).bind(email).fetch_optional(&mut *conn).await? {
        Some(r) => Ok(Some(with_roles(conn, user(&r)?).await?)),
        None => Ok(None),
    }
}

/// The active staff, by name: id, display name and email (the options of every agent select).
pub async fn staff_choices(conn: &mut AnyConnection) -> Result<Vec<(String, String, String)>> {
    let rows = sqlx::query("SELECT id, display_name, email FROM users WHERE kind = 'staff' AND active = 1 ORDER BY display_name, id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| Ok((r.text("id")?, r.text("display_name")?, r.text("email")?))).collect()
}

/// A user's roles and the projects they manage or belong to, in one statement (a principal's
/// parts besides the user row).
pub async fn roles_and_projects(conn: &mut AnyConnection, user_id: &str) -> Result<(Vec<String>, Vec<String>)> {
    let rows = sqlx::query(
        "SELECT 'r' AS k, role AS v FROM user_roles WHERE user_id = $1 \
         UNION ALL SELECT 'p' AS k, project_id AS v FROM project_members WHERE user_id = $1 \
         UNION ALL SELECT 'p' AS k, id AS v FROM projects WHERE manager_user_id = $1",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    let (mut roles, mut projects) = (Vec::new(), Vec::new());
    for r in &rows {
        let v = r.text("v")?;
        if r.text("k")? == "r" { roles.push(v) } else { projects.push(v) }
    }
    roles.sort();
    projects.sort();
    projects.dedup();
    Ok((roles, projects))
}

pub async fn count_staff(conn: &mut AnyConnection) -> Result<i64> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM users WHERE kind = 'staff'").fetch_one(&mut *conn).await?.int("n")?)
}

#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    pub kind: Option<String>,
    pub organization_id: Option<String>,
    pub role: Option<String>,
    pub active: Option<bool>,
    pub q: Option<String>,
    /// Only contacts of organisations served by these projects (staff scope); `None` = no limit.
    pub visible_org_projects: Option<Vec<String>>,
}

pub async fn list_users(conn: &mut AnyConnection, f: &UserFilter, p: &PageRequest) -> Result<Page<UserRecord>> {
    let mut q = crate::sql::Sql::new(format!("SELECT {USER_COLS} FROM users WHERE 1 = 1"));
    if let Some(k) = &f.kind {
        q.push(" AND kind = ").push_bind(k.clone());
    }
    if let Some(o) = &f.organization_id {
        q.push(" AND organization_id = ").push_bind(o.clone());
    }
    if let Some(r) = &f.role {
        q.push(" AND id IN (SELECT user_id FROM user_roles WHERE role = ").push_bind(r.clone()).push(")");
    }
    if let Some(a) = f.active {
        q.push(" AND active = ").push_bind(a as i64);
    }
    if let Some(text) = f.q.as_deref().filter(|s| !s.trim().is_empty()) {
        let pat = like_pattern(text.trim());
        q.push(" AND (LOWER(email) LIKE ")
            .push_bind(pat.clone())
            .push(" ESCAPE '\\' OR LOWER(display_name) LIKE ")
            .push_bind(pat)
            .push(" ESCAPE '\\')");
    }
    if let Some(projects) = &f.visible_org_projects {
        q.push(" AND (kind = 'staff' OR organization_id IN (SELECT organization_id FROM projects WHERE id IN ");
        q.push_list(projects).push("))");
    }
    let mut page = fetch_page(conn, q, "id", p, user).await?;
    fill_roles(conn, &mut page.items).await?;
    Ok(page)
}

/// Records a failed login; locks the account for `lock_ms` once `max_failures` is reached.
pub async fn record_login_failure(conn: &mut AnyConnection, user_id: &str, now: i64, max_failures: i64, lock_ms: i64) -> Result<bool> {
    let row = sqlx::query("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins")
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
    let n = row.int("failed_logins")?;
    if n >= max_failures {
        sqlx::query("UPDATE users SET locked_until = $1, failed_logins = 0 WHERE id = $2")
            .bind(now + lock_ms)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        return Ok(true);
    }
    Ok(false)
}

pub async fn record_login_success(conn: &mut AnyConnection, user_id: &str) -> Result<()> {
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1").bind(user_id).execute(&mut *conn).await?;
    Ok(())
}

/// Counts a failure against a throttle key (e.g. a client address) within a sliding window and
/// returns the failures in the current window.
pub async fn throttle_hit(conn: &mut AnyConnection, key: &str, now: i64, window_ms: i64) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO login_throttle (throttle_key, window_start, failures) VALUES ($1, $2, 1) \
         ON CONFLICT (throttle_key) DO UPDATE SET \
           failures = CASE WHEN login_throttle.window_start < $3 THEN 1 ELSE login_throttle.failures + 1 END, \
           window_start = CASE WHEN login_throttle.window_start < $3 THEN $2 ELSE login_throttle.window_start END \
         RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .bind(now - window_ms)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.int("failures")?)
}

pub async fn throttle_count(conn: &mut AnyConnection, key: &str, now: i64, window_ms: i64) -> Result<i64> {
    let row = sqlx::query("SELECT failures FROM login_throttle WHERE throttle_key = $1 AND window_start >= $2")
        .bind(key)
        .bind(now - window_ms)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.int("failures")).transpose()?.unwrap_or(0))
}

// ---- sessions ----

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

pub async fn insert_session(conn: &mut AnyConnection, s: &SessionRecord, ip: Option<&str>, user_agent: Option<&str>) -> Result<()> {
    sqlx::query("INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&s.id_hash)
        .bind(&s.user_id)
        .bind(&s.csrf_token)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(ip)
        .bind(user_agent)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn get_session(conn: &mut AnyConnection, id_hash: &str, now: i64) -> Result<Option<SessionRecord>> {
    let row = sqlx::query(
        "SELECT id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at FROM sessions WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(SessionRecord {
            id_hash: r.text("id_hash")?,
            user_id: r.text("user_id")?,
            csrf_token: r.text("csrf_token")?,
            created_at: r.int("created_at")?,
            last_seen_at: r.int("last_seen_at")?,
            expires_at: r.int("expires_at")?,
        })
    })
    .transpose()
}

pub async fn touch_session(conn: &mut AnyConnection, id_hash: &str, now: i64, expires_at: i64) -> Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id_hash = $3")
        .bind(now)
        .bind(expires_at)
        .bind(id_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete_session(conn: &mut AnyConnection, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&mut *conn).await?;
    Ok(())
}

/// Ends every session of a user ("log out everywhere", password change or reset).
pub async fn delete_user_sessions(conn: &mut AnyConnection, user_id: &str, except: Option<&str>) -> Result<u64> {
    let r = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
        .bind(user_id)
        .bind(except.unwrap_or(""))
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

pub async fn sweep_sessions(conn: &mut AnyConnection, now: i64) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(&mut *conn).await?.rows_affected())
}

// ---- API tokens ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    pub prefix: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const TOKEN_COLS: &str = "id, user_id, name, token_hash, prefix, created_at, expires_at, last_used_at, revoked_at";

fn token(r: &AnyRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.text("id")?,
        user_id: r.text("user_id")?,
        name: r.text("name")?,
        token_hash: r.text("token_hash")?,
        prefix: r.text("prefix")?,
        created_at: r.int("created_at")?,
        expires_at: r.opt_int("expires_at")?,
        last_used_at: r.opt_int("last_used_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

pub async fn insert_token(conn: &mut AnyConnection, t: &TokenRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&t.id)
    .bind(&t.user_id)
    .bind(&t.name)
    .bind(&t.token_hash)
    .bind(&t.prefix)
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_token_by_hash(conn: &mut AnyConnection, hash: &str) -> Result<Option<TokenRecord>> {
    let q = format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE token_hash = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(hash).fetch_optional(&mut *conn).await?.map(|r| token(&r)).transpose()
}

pub async fn get_token(conn: &mut AnyConnection, id: &str) -> Result<Option<TokenRecord>> {
    let q = format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await?.map(|r| token(&r)).transpose()
}

pub async fn list_tokens(conn: &mut AnyConnection, user_id: Option<&str>) -> Result<Vec<TokenRecord>> {
    let mut q = crate::sql::Sql::new(format!("SELECT {TOKEN_COLS} FROM api_tokens"));
    if let Some(u) = user_id {
        q.push(" WHERE user_id = ").push_bind(u.to_string());
    }
    q.push(" ORDER BY created_at DESC, id DESC");
    q.fetch_all(&mut *conn).await?.iter().map(token).collect()
}

/// Records use at most once a minute per token, so the hot path stays read-mostly.
pub async fn touch_token(conn: &mut AnyConnection, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)")
        .bind(now)
        .bind(id)
        .bind(now - 60_000)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn revoke_token(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool> {
    Ok(sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1)
}

// ---- first-run setup ----

pub async fn insert_setup_token(conn: &mut AnyConnection, hash: &str, now: i64, expires_at: i64) -> Result<()> {
    sqlx::query("INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)")
        .bind(hash)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Consumes a setup token; true when it existed, was unused and unexpired.
pub async fn use_setup_token(conn: &mut AnyConnection, hash: &str, now: i64) -> Result<bool> {
    let r = sqlx::query("UPDATE setup_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1")
        .bind(now)
        .bind(hash)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn setup_token_valid(conn: &mut AnyConnection, hash: &str, now: i64) -> Result<bool> {
    let r = sqlx::query("SELECT 1 AS ok FROM setup_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2")
        .bind(hash)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(r.is_some())
}

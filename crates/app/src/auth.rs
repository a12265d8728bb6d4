//! Access control for every process: passwords, sessions, CSRF tokens, API tokens, first-run
//! setup, and login throttling with temporary lockout.

use crate::{App, AppError, Principal, Result};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use keel_domain::identity::{AccountKind, Role};
use keel_domain::validate;
use keel_store::accounts::{self, SessionRecord, TokenRecord, UserRecord};
use keel_store::directory;
use rand::RngExt;
use sha2::{Digest, Sha256};

/// A fresh 256-bit secret, URL-safe.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Fast digest for high-entropy secrets (session ids, API tokens): a slow password hash would
/// cost every request tens of milliseconds and buys nothing against a 256-bit secret.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(e.to_string()))
}

async fn verify_password(password: String, hash: Option<String>) -> bool {
    // Unknown accounts are verified against a fixed hash so timing does not reveal them.
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let known = hash.is_some();
    let hash = match hash {
        Some(h) => h,
        None => DUMMY
            .get_or_init(|| Argon2::default().hash_password(random_secret().as_bytes()).map(|h| h.to_string()).unwrap_or_default())
            .clone(),
    };
    tokio::task::spawn_blocking(move || Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok())
        .await
        .unwrap_or(false)
        && known
}

/// Builds the principal of an account: roles for staff, organisation for contacts, and the
/// service projects that scope what staff see.
pub async fn principal_of(conn: &mut sqlx::AnyConnection, u: &UserRecord) -> Result<Principal> {
    let project_ids = if u.kind == AccountKind::Staff.as_str() { directory::projects_of_user(conn, &u.id).await? } else { vec![] };
    Ok(principal_from(u, project_ids))
}

fn principal_from(u: &UserRecord, project_ids: Vec<String>) -> Principal {
    let kind = AccountKind::parse(&u.kind).unwrap_or(AccountKind::Contact);
    let staff = kind == AccountKind::Staff;
    Principal {
        user_id: u.id.clone(),
        display_name: u.display_name.clone(),
        kind,
        roles: if staff { u.roles.iter().filter_map(|r| Role::parse(r)).collect() } else { vec![] },
        organization_id: u.organization_id.clone(),
        project_ids: if staff { project_ids } else { vec![] },
    }
}

/// An active account and its principal, for a session or token naming it: the user row, then its
/// roles and projects in one statement.
async fn signed_in(conn: &mut sqlx::AnyConnection, user_id: &str) -> Result<Option<(Principal, UserRecord)>> {
    let Some(mut user) = accounts::get_user_row(conn, user_id).await? else {
        return Ok(None);
    };
    if !user.active {
        return Ok(None);
    }
    let (roles, projects) = accounts::roles_and_projects(conn, &user.id).await?;
    user.roles = roles;
    Ok(Some((principal_from(&user, projects), user)))
}

/// A signed-in browser session: the secret goes in the cookie, only its digest is stored.
pub struct NewSession {
    pub token: String,
    pub csrf_token: String,
    pub principal: Principal,
    pub user: UserRecord,
}

impl App {
    pub async fn login(&self, email: &str, password: &str, client: &str, user_agent: Option<&str>) -> Result<NewSession> {
        let now = self.now();
        let s = &self.security;
        let throttle_key = format!("ip:{client}");
        {
            let mut c = self.read().await?;
            let n = accounts::throttle_count(&mut c, &throttle_key, now, s.ip_window_ms).await?;
            if n >= s.ip_max_failures {
                return Err(AppError::RateLimited { retry_after_secs: s.ip_window_ms / 1000 });
            }
        }
        let email = email.trim().to_lowercase();
        let user = {
            let mut c = self.read().await?;
            accounts::get_user_by_email(&mut c, &email).await?
        };
        let usable = user.as_ref().filter(|u| u.active && u.password_hash.is_some());
        if let Some(u) = usable
            && let Some(until) = u.locked_until.filter(|t| *t > now)
        {
            return Err(AppError::RateLimited { retry_after_secs: ((until - now) / 1000).max(1) });
        }
        let ok = verify_password(password.to_string(), usable.and_then(|u| u.password_hash.clone())).await;
        let mut tx = self.db.begin().await?;
        if !ok {
            accounts::throttle_hit(&mut tx, &throttle_key, now, s.ip_window_ms).await?;
            if let Some(u) = usable {
                accounts::record_login_failure(&mut tx, &u.id, now, s.max_failed_logins, s.lockout_ms).await?;
            }
            tx.commit().await.map_err(keel_store::StoreError::from)?;
            tracing::info!(client, "failed login");
            return Err(AppError::BadCredentials);
        }
        let user = usable.cloned().ok_or(AppError::BadCredentials)?;
        accounts::record_login_success(&mut tx, &user.id).await?;
        let token = random_secret();
        let csrf_token = random_secret();
        accounts::insert_session(
            &mut tx,
            &SessionRecord {
                id_hash: digest(&token),
                user_id: user.id.clone(),
                csrf_token: csrf_token.clone(),
                created_at: now,
                last_seen_at: now,
                expires_at: now + s.session_idle_ms,
            },
            Some(client),
            user_agent,
        )
        .await?;
        let principal = principal_of(&mut tx, &user).await?;
        tx.commit().await.map_err(keel_store::StoreError::from)?;
        Ok(NewSession { token, csrf_token, principal, user })
    }

    /// Resolves a session cookie; sliding expiry within the absolute maximum.
    pub async fn session(&self, token: &str) -> Result<Option<(Principal, UserRecord, SessionRecord)>> {
        let now = self.now();
        let hash = digest(token);
        let mut c = self.read().await?;
        let Some(sess) = accounts::get_session(&mut c, &hash, now).await? else {
            return Ok(None);
        };
        let Some((principal, user)) = signed_in(&mut c, &sess.user_id).await? else {
            return Ok(None);
        };
        drop(c);
        if now - sess.last_seen_at > 60_000 {
            let expires = (now + self.security.session_idle_ms).min(sess.created_at + self.security.session_max_ms);
            let mut tx = self.db.begin().await?;
            accounts::touch_session(&mut tx, &hash, now, expires).await?;
            tx.commit().await.map_err(keel_store::StoreError::from)?;
        }
        Ok(Some((principal, user, sess)))
    }

    pub async fn logout(&self, token: &str) -> Result<()> {
        let mut tx = self.db.begin().await?;
        accounts::delete_session(&mut tx, &digest(token)).await?;
        tx.commit().await.map_err(keel_store::StoreError::from)?;
        Ok(())
    }

    /// Ends every session of the principal, optionally keeping the current one.
    pub async fn logout_everywhere(&self, actor: &Principal, keep_token: Option<&str>) -> Result<u64> {
        let keep = keep_token.map(digest);
        let mut tx = self.db.begin().await?;
        let n = accounts::delete_user_sessions(&mut tx, &actor.user_id, keep.as_deref()).await?;
        tx.commit().await.map_err(keel_store::StoreError::from)?;
        Ok(n)
    }

    pub async fn change_password(&self, actor: &Principal, current: &str, new: &str, keep_token: Option<&str>) -> Result<()> {
        validate::password("new_password", new).map_err(|e| AppError::Validation(vec![e]))?;
        let user = {
            let mut c = self.read().await?;
            accounts::get_user(&mut c, &actor.user_id).await?.ok_or(AppError::NotFound)?
        };
        if !verify_password(current.to_string(), user.password_hash.clone()).await {
            return Err(AppError::field("current_password", "wrong_password", "the current password is not correct"));
        }
        let hash = hash_password(new.to_string()).await?;
        let mut w = Writer::begin(&self.db, actor, self.clock.as_ref()).await?;
        accounts::set_password_hash(&mut w.tx, &user.id, &hash, w.now).await?;
        let keep = keep_token.map(digest);
        accounts::delete_user_sessions(&mut w.tx, &user.id, keep.as_deref()).await?;
        let after = accounts::get_user(&mut w.tx, &user.id).await?.ok_or(AppError::NotFound)?;
        w.record("user", &user.id, keel_domain::audit::AuditAction::Update, Some(&user.audit_json()), Some(&after.audit_json())).await?;
        w.commit().await
    }

    /// An administrator sets a new password for someone; all their sessions end.
    pub async fn reset_password(&self, actor: &Principal, user_id: &str, new: &str) -> Result<()> {
        if !actor.may_admin(keel_domain::identity::AdminArea::Users, keel_domain::identity::Action::Write) {
            return Err(AppError::Forbidden);
        }
        validate::password("password", new).map_err(|e| AppError::Validation(vec![e]))?;
        let hash = hash_password(new.to_string()).await?;
        let mut w = self.write(actor).await?;
        let before = accounts::get_user(&mut w.tx, user_id).await?.ok_or(AppError::NotFound)?;
        accounts::set_password_hash(&mut w.tx, user_id, &hash, w.now).await?;
        accounts::delete_user_sessions(&mut w.tx, user_id, None).await?;
        let after = accounts::get_user(&mut w.tx, user_id).await?.ok_or(AppError::NotFound)?;
        w.record("user", user_id, keel_domain::audit::AuditAction::Update, Some(&before.audit_json()), Some(&after.audit_json())).await?;
        w.commit().await
    }

    // ---- API tokens ----

    /// Creates an API token for the actor; the secret is returned once and only its digest kept.
    pub async fn create_api_token(&self, actor: &Principal, name: &str, expires_in_days: Option<i64>) -> Result<(String, TokenRecord)> {
        let name = validate::required_text("name", name, 100).map_err(|e| AppError::Validation(vec![e]))?;
        if let Some(d) = expires_in_days
            && !(1..=3650).contains(&d)
        {
            return Err(AppError::field("expires_in_days", "out_of_range", "between 1 and 3650 days"));
        }
        let secret = format!("keel_{}", random_secret());
        let mut w = Writer::begin(&self.db, actor, self.clock.as_ref()).await?;
        let rec = TokenRecord {
            id: keel_store::new_id(),
            user_id: actor.user_id.clone(),
            name,
            token_hash: digest(&secret),
            prefix: secret[..12].to_string(),
            created_at: w.now,
            expires_at: expires_in_days.map(|d| w.now + d * 86_400_000),
            last_used_at: None,
            revoked_at: None,
        };
        accounts::insert_token(&mut w.tx, &rec).await?;
        w.record("api_token", &rec.id, keel_domain::audit::AuditAction::Create, None, Some(&crate::writer::snapshot(&rec))).await?;
        w.commit().await?;
        Ok((secret, rec))
    }

    /// Resolves a bearer token to the principal it acts for (scoped to its creator's rights).
    pub async fn api_principal(&self, secret: &str) -> Result<Option<Principal>> {
        Ok(self.api_identity(secret).await?.map(|(p, _)| p))
    }

    /// The caller of an API token and their account, read on one connection.
    pub async fn api_identity(&self, secret: &str) -> Result<Option<(Principal, UserRecord)>> {
        let now = self.now();
        let hash = digest(secret);
        let mut c = self.read().await?;
        let Some(t) = accounts::get_token_by_hash(&mut c, &hash).await? else {
            return Ok(None);
        };
        if t.revoked_at.is_some() || t.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        let Some((p, user)) = signed_in(&mut c, &t.user_id).await? else {
            return Ok(None);
        };
        drop(c);
        if t.last_used_at.is_none_or(|l| now - l > 60_000) {
            let mut tx = self.db.begin().await?;
            accounts::touch_token(&mut tx, &t.id, now).await?;
            tx.commit().await.map_err(keel_store::StoreError::from)?;
        }
        Ok(Some((p, user)))
    }

    pub async fn list_api_tokens(&self, actor: &Principal, all: bool) -> Result<Vec<TokenRecord>> {
        let mut c = self.read().await?;
        let everyone = all && actor.may_admin(keel_domain::identity::AdminArea::Users, keel_domain::identity::Action::Read);
        Ok(accounts::list_tokens(&mut c, if everyone { None } else { Some(actor.user_id.as_str()) }).await?)
    }

    /// Revokes a token: its owner, or an administrator.
    pub async fn revoke_api_token(&self, actor: &Principal, id: &str) -> Result<()> {
        let mut w = self.write(actor).await?;
        let t = accounts::get_token(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        if t.user_id != actor.user_id && !actor.is_admin() {
            return Err(AppError::NotFound);
        }
        if accounts::revoke_token(&mut w.tx, id, w.now).await? {
            let after = accounts::get_token(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
            w.record(
                "api_token",
                id,
                keel_domain::audit::AuditAction::Update,
                Some(&crate::writer::snapshot(&t)),
                Some(&crate::writer::snapshot(&after)),
            )
            .await?;
        }
        w.commit().await
    }

    // ---- first-run setup ----

    /// When no staff account exists, issues a one-time setup token (printed as a link).
    pub async fn issue_setup_token_if_needed(&self) -> Result<Option<String>> {
        let mut tx = self.db.begin().await?;
        if accounts::count_staff(&mut tx).await? > 0 {
            return Ok(None);
        }
        let token = random_secret();
        let now = self.now();
        accounts::insert_setup_token(&mut tx, &digest(&token), now, now + self.security.setup_token_ttl_ms).await?;
        tx.commit().await.map_err(keel_store::StoreError::from)?;
        Ok(Some(token))
    }

    pub async fn setup_token_valid(&self, token: &str) -> Result<bool> {
        let mut c = self.read().await?;
        Ok(accounts::count_staff(&mut c).await? == 0 && accounts::setup_token_valid(&mut c, &digest(token), self.now()).await?)
    }

    /// Creates the first administrator with a setup token; the token works once.
    pub async fn complete_setup(&self, token: &str, input: crate::users::NewUser) -> Result<UserRecord> {
        let system = Principal::system();
        let mut w = self.write(&system).await?;
        if accounts::count_staff(&mut w.tx).await? > 0 || !accounts::use_setup_token(&mut w.tx, &digest(token), w.now).await? {
            return Err(AppError::Conflict {
                code: "setup_token_invalid",
                field: Some("token".into()),
                message: "this setup link is invalid, used or expired".into(),
            });
        }
        let user = crate::users::insert_user_in(
            &mut w,
            crate::users::NewUser { kind: AccountKind::Staff, roles: vec![Role::Administrator], organization_id: None, ..input },
        )
        .await?;
        w.commit().await?;
        Ok(user)
    }
}

use crate::writer::Writer;

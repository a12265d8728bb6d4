//! Staff accounts and customer contacts: who works in Keel and who is served by it.

use crate::writer::Writer;
use crate::{App, AppError, Principal, Result};
use keel_domain::audit::AuditAction;
use keel_domain::error::Errors;
use keel_domain::identity::{AccountKind, Action, AdminArea, Role};
use keel_domain::validate::{self, Email, Locale};
use keel_store::accounts::{self, UserFilter, UserRecord};
use keel_store::directory;
use keel_store::page::{Page, PageRequest};

#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub kind: AccountKind,
    pub email: String,
    pub display_name: String,
    pub phone: Option<String>,
    pub organization_id: Option<String>,
    pub password: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub roles: Vec<Role>,
}

/// Changes to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub phone: Option<Option<String>>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub active: Option<bool>,
    pub roles: Option<Vec<Role>>,
}

struct Checked {
    email: String,
    display_name: String,
    phone: Option<String>,
    locale: String,
    time_zone: String,
}

fn check(email: &str, name: &str, phone: Option<&str>, locale: Option<&str>, tz: Option<&str>, errs: &mut Errors) -> Option<Checked> {
    let email = errs.check(Email::parse("email", email));
    let display_name = errs.check(validate::required_text("display_name", name, 200));
    let phone = errs.check(validate::optional_text("phone", phone, 50));
    let locale = errs.check(Locale::parse("locale", locale.unwrap_or("en")));
    let time_zone = errs.check(validate::time_zone("time_zone", tz.unwrap_or("UTC")));
    Some(Checked {
        email: email?.as_str().to_string(),
        display_name: display_name?,
        phone: phone?,
        locale: locale?.as_str().to_string(),
        time_zone: time_zone?.name().to_string(),
    })
}

fn role_strings(kind: AccountKind, roles: &[Role]) -> Vec<String> {
    if kind == AccountKind::Contact {
        return vec![];
    }
    let mut r: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
    r.sort();
    r.dedup();
    r
}

/// Inserts an account inside an open write (used by setup and by `create_user`).
pub(crate) async fn insert_user_in(w: &mut Writer, input: NewUser) -> Result<UserRecord> {
    let mut errs = Errors::new();
    let checked =
        check(&input.email, &input.display_name, input.phone.as_deref(), input.locale.as_deref(), input.time_zone.as_deref(), &mut errs);
    if let Some(p) = &input.password {
        errs.check(validate::password("password", p));
    }
    if input.kind == AccountKind::Contact && input.organization_id.is_none() {
        errs.push(keel_domain::FieldError::new("organization_id", "required", "a contact belongs to an organisation"));
    }
    if input.kind == AccountKind::Staff && input.organization_id.is_some() {
        errs.push(keel_domain::FieldError::new("organization_id", "not_allowed", "staff do not belong to a customer organisation"));
    }
    errs.finish()?;
    let c = checked.ok_or(AppError::Internal("validation".into()))?;
    if let Some(org) = &input.organization_id {
        directory::get_organization(&mut w.tx, org)
            .await?
            .ok_or_else(|| AppError::field("organization_id", "unknown_reference", "no such organisation"))?;
    }
    let password_hash = match input.password {
        Some(p) => Some(crate::auth::hash_password(p).await?),
        None => None,
    };
    let rec = UserRecord {
        id: keel_store::new_id(),
        kind: input.kind.as_str().to_string(),
        email: c.email,
        display_name: c.display_name,
        phone: c.phone,
        organization_id: input.organization_id,
        password_hash,
        locale: c.locale,
        time_zone: c.time_zone,
        active: true,
        roles: role_strings(input.kind, &input.roles),
        failed_logins: 0,
        locked_until: None,
        created_at: w.now,
        updated_at: w.now,
        version: 1,
    };
    accounts::insert_user(&mut w.tx, &rec).await?;
    w.record("user", &rec.id, AuditAction::Create, None, Some(&rec.audit_json())).await?;
    Ok(rec)
}

impl App {
    /// Who may manage accounts of this kind: administrators and service managers for staff;
    /// for contacts also sales and the project managers of the contact's organisation.
    async fn may_manage_account(
        &self,
        conn: &mut sqlx::AnyConnection,
        actor: &Principal,
        kind: AccountKind,
        org: Option<&str>,
    ) -> Result<bool> {
        if actor.may_admin(AdminArea::Users, Action::Write) {
            return Ok(true);
        }
        if kind == AccountKind::Contact && !actor.is_read_only() && actor.is_staff() {
            if actor.has(Role::Sales) {
                return Ok(true);
            }
            if let (true, Some(org)) = (actor.has(Role::ProjectManager), org) {
                let projects = directory::organization_project_ids(conn, org).await?;
                return Ok(actor.can_see_organization(org, &projects));
            }
        }
        Ok(false)
    }

    pub async fn create_user(&self, actor: &Principal, input: NewUser) -> Result<UserRecord> {
        let mut w = self.write(actor).await?;
        if !self.may_manage_account(&mut w.tx, actor, input.kind, input.organization_id.as_deref()).await? {
            return Err(AppError::Forbidden);
        }
        if input.roles.contains(&Role::Administrator) && !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        let rec = insert_user_in(&mut w, input).await?;
        w.commit().await?;
        Ok(rec)
    }

    /// Reads an account the actor may see; otherwise `NotFound`, so existence does not leak.
    pub async fn get_user(&self, actor: &Principal, id: &str) -> Result<UserRecord> {
        let mut c = self.read().await?;
        let u = accounts::get_user(&mut c, id).await?.ok_or(AppError::NotFound)?;
        if !self.may_see_user(&mut c, actor, &u).await? {
            return Err(AppError::NotFound);
        }
        Ok(u)
    }

    async fn may_see_user(&self, conn: &mut sqlx::AnyConnection, actor: &Principal, u: &UserRecord) -> Result<bool> {
        if actor.user_id == u.id {
            return Ok(true);
        }
        match actor.kind {
            AccountKind::Contact => Ok(false),
            AccountKind::Staff => match &u.organization_id {
                None => Ok(true),
                Some(org) => {
                    let projects = directory::organization_project_ids(conn, org).await?;
                    Ok(actor.can_see_organization(org, &projects))
                }
            },
        }
    }

    pub async fn list_users(&self, actor: &Principal, mut f: UserFilter, page: &PageRequest) -> Result<Page<UserRecord>> {
        match actor.kind {
            AccountKind::Contact => return Err(AppError::Forbidden),
            AccountKind::Staff if !actor.sees_all_projects() => f.visible_org_projects = Some(actor.project_ids.clone()),
            _ => {}
        }
        let mut c = self.read().await?;
        Ok(accounts::list_users(&mut c, &f, page).await?)
    }

    pub async fn update_user(&self, actor: &Principal, id: &str, patch: UserPatch, expected_version: Option<i64>) -> Result<UserRecord> {
        let mut w = self.write(actor).await?;
        let before = accounts::get_user(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        let kind = AccountKind::parse(&before.kind).unwrap_or(AccountKind::Contact);
        let is_self = actor.user_id == id;
        let manager = self.may_manage_account(&mut w.tx, actor, kind, before.organization_id.as_deref()).await?;
        if !manager && !is_self {
            return Err(if self.may_see_user(&mut w.tx, actor, &before).await? { AppError::Forbidden } else { AppError::NotFound });
        }
        if !manager && (patch.active.is_some() || patch.roles.is_some() || patch.email.is_some()) {
            return Err(AppError::Forbidden);
        }
        if let Some(roles) = &patch.roles {
            let grants_admin = roles.contains(&Role::Administrator) != before.roles.iter().any(|r| r == Role::Administrator.as_str());
            if grants_admin && !actor.is_admin() {
                return Err(AppError::Forbidden);
            }
            if is_self && !roles.contains(&Role::Administrator) && actor.is_admin() {
                return Err(AppError::field("roles", "cannot_remove_own_admin", "you cannot remove your own administrator role"));
            }
        }
        if is_self && patch.active == Some(false) {
            return Err(AppError::field("active", "cannot_deactivate_self", "you cannot deactivate your own account"));
        }
        if let Some(v) = expected_version
            && v != before.version
        {
            return Err(AppError::Stale);
        }
        let mut errs = Errors::new();
        let phone = patch.phone.clone().unwrap_or(before.phone.clone());
        let c = check(
            patch.email.as_deref().unwrap_or(&before.email),
            patch.display_name.as_deref().unwrap_or(&before.display_name),
            phone.as_deref(),
            Some(patch.locale.as_deref().unwrap_or(&before.locale)),
            Some(patch.time_zone.as_deref().unwrap_or(&before.time_zone)),
            &mut errs,
        );
        errs.finish()?;
        let c = c.ok_or(AppError::Internal("validation".into()))?;
        let after = UserRecord {
            email: c.email,
            display_name: c.display_name,
            phone: c.phone,
            locale: c.locale,
            time_zone: c.time_zone,
            active: patch.active.unwrap_or(before.active),
            roles: patch.roles.as_ref().map(|r| role_strings(kind, r)).unwrap_or(before.roles.clone()),
            updated_at: w.now,
            ..before.clone()
        };
        accounts::update_user(&mut w.tx, &after, before.version).await?;
        if !after.active {
            accounts::delete_user_sessions(&mut w.tx, id, None).await?;
        }
        w.record("user", id, AuditAction::Update, Some(&before.audit_json()), Some(&after.audit_json())).await?;
        let fresh = accounts::get_user(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }
}

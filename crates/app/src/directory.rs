//! Customer organisations, resolver teams and service projects with process tailoring
//! (§2.1.4): the structure every process record is scoped by.

use crate::writer::snapshot;
use crate::{App, AppError, Principal, Result};
use keel_domain::audit::AuditAction;
use keel_domain::error::Errors;
use keel_domain::identity::{AccountKind, Action, AdminArea, Role};
use keel_domain::process::{Process, Tailoring};
use keel_domain::validate;
use keel_store::directory::{self, OrgFilter, OrganizationRecord, ProjectFilter, ProjectRecord, Scope, TailoringDecision, TeamRecord};
use keel_store::page::{Page, PageRequest};

/// What the principal may see, as the store's list filter.
pub fn scope_of(actor: &Principal) -> Scope {
    match actor.kind {
        AccountKind::Contact => Scope { project_ids: None, organization_id: Some(actor.organization_id.clone().unwrap_or_default()) },
        AccountKind::Staff if actor.sees_all_projects() => Scope::default(),
        AccountKind::Staff => Scope { project_ids: Some(actor.project_ids.clone()), organization_id: None },
    }
}

#[derive(Debug, Clone, Default)]
pub struct OrganizationInput {
    pub name: String,
    pub code: String,
    pub description: Option<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct TeamInput {
    pub name: String,
    pub description: Option<String>,
    pub email: Option<String>,
    pub lead_user_id: Option<String>,
    pub member_ids: Vec<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct ProjectInput {
    pub code: String,
    pub name: String,
    pub organization_id: String,
    pub manager_user_id: Option<String>,
    pub description: Option<String>,
    pub starts_on: Option<String>,
    pub ends_on: Option<String>,
    pub status: Option<String>,
    pub member_ids: Vec<String>,
}

fn require(actor: &Principal, area: AdminArea, action: Action) -> Result<()> {
    if actor.may_admin(area, action) { Ok(()) } else { Err(AppError::Forbidden) }
}

fn check_date(field: &str, v: Option<&str>, errs: &mut Errors) -> Option<String> {
    let v = v.map(str::trim).filter(|s| !s.is_empty())?;
    match chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        Ok(d) => Some(d.to_string()),
        Err(_) => {
            errs.push(keel_domain::FieldError::new(field, "invalid_date", "use the form YYYY-MM-DD"));
            None
        }
    }
}

async fn check_staff(conn: &mut sqlx::AnyConnection, field: &str, ids: &[String], errs: &mut Errors) -> Result<()> {
    for id in ids {
        match keel_store::accounts::get_user(conn, id).await? {
            Some(u) if u.kind == "staff" => {}
            _ => errs.push(keel_domain::FieldError::new(field, "unknown_reference", format!("no staff member {id}"))),
        }
    }
    Ok(())
}

impl App {
    // ---- organisations ----

    pub async fn create_organization(&self, actor: &Principal, input: OrganizationInput) -> Result<OrganizationRecord> {
        require(actor, AdminArea::Organizations, Action::Write)?;
        let mut errs = Errors::new();
        let name = errs.check(validate::required_text("name", &input.name, 200));
        let code = errs.check(validate::code("code", &input.code, 32));
        let description = errs.check(validate::optional_text("description", input.description.as_deref(), 4000));
        errs.finish()?;
        let mut w = self.write(actor).await?;
        let rec = OrganizationRecord {
            id: keel_store::new_id(),
            name: name.unwrap_or_default(),
            code: code.unwrap_or_default(),
            description: description.flatten(),
            active: input.active.unwrap_or(true),
            created_at: w.now,
            updated_at: w.now,
            version: 1,
        };
        directory::insert_organization(&mut w.tx, &rec).await?;
        w.record("organization", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    pub async fn get_organization(&self, actor: &Principal, id: &str) -> Result<OrganizationRecord> {
        let mut c = self.read().await?;
        let o = directory::get_organization(&mut c, id).await?.ok_or(AppError::NotFound)?;
        let projects = directory::organization_project_ids(&mut c, id).await?;
        if !actor.can_see_organization(id, &projects) {
            return Err(AppError::NotFound);
        }
        Ok(o)
    }

    pub async fn list_organizations(&self, actor: &Principal, f: &OrgFilter, page: &PageRequest) -> Result<Page<OrganizationRecord>> {
        let mut c = self.read().await?;
        Ok(directory::list_organizations(&mut c, &scope_of(actor), f, page).await?)
    }

    pub async fn update_organization(
        &self,
        actor: &Principal,
        id: &str,
        input: OrganizationInput,
        expected_version: Option<i64>,
    ) -> Result<OrganizationRecord> {
        let before = self.get_organization(actor, id).await?;
        require(actor, AdminArea::Organizations, Action::Write)?;
        let mut errs = Errors::new();
        let name = errs.check(validate::required_text("name", &input.name, 200));
        let code = errs.check(validate::code("code", &input.code, 32));
        let description = errs.check(validate::optional_text("description", input.description.as_deref(), 4000));
        errs.finish()?;
        let mut w = self.write(actor).await?;
        let after = OrganizationRecord {
            name: name.unwrap_or_default(),
            code: code.unwrap_or_default(),
            description: description.flatten(),
            active: input.active.unwrap_or(before.active),
            updated_at: w.now,
            ..before.clone()
        };
        directory::update_organization(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await?;
        w.record("organization", id, AuditAction::Update, Some(&snapshot(&before)), Some(&snapshot(&after))).await?;
        let fresh = directory::get_organization(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    // ---- teams ----

    async fn check_team(&self, conn: &mut sqlx::AnyConnection, input: &TeamInput) -> Result<(String, Option<String>, Option<String>)> {
        let mut errs = Errors::new();
        let name = errs.check(validate::required_text("name", &input.name, 200));
        let description = errs.check(validate::optional_text("description", input.description.as_deref(), 4000));
        let email = match input.email.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(e) => errs.check(validate::Email::parse("email", e)).map(|e| Some(e.as_str().to_string())),
            None => Some(None),
        };
        let mut people = input.member_ids.clone();
        people.extend(input.lead_user_id.clone());
        check_staff(conn, "member_ids", &people, &mut errs).await?;
        errs.finish()?;
        Ok((name.unwrap_or_default(), description.flatten(), email.flatten()))
    }

    pub async fn create_team(&self, actor: &Principal, input: TeamInput) -> Result<TeamRecord> {
        require(actor, AdminArea::Teams, Action::Write)?;
        let mut w = self.write(actor).await?;
        let (name, description, email) = self.check_team(&mut w.tx, &input).await?;
        let mut members = input.member_ids.clone();
        members.sort();
        members.dedup();
        let rec = TeamRecord {
            id: keel_store::new_id(),
            name,
            description,
            email,
            lead_user_id: input.lead_user_id.clone(),
            active: input.active.unwrap_or(true),
            member_ids: members,
            created_at: w.now,
            updated_at: w.now,
            version: 1,
        };
        directory::insert_team(&mut w.tx, &rec).await?;
        w.record("team", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    pub async fn get_team(&self, actor: &Principal, id: &str) -> Result<TeamRecord> {
        if !actor.is_staff() {
            return Err(AppError::NotFound);
        }
        let mut c = self.read().await?;
        directory::get_team(&mut c, id).await?.ok_or(AppError::NotFound)
    }

    pub async fn list_teams(&self, actor: &Principal, q: Option<&str>, page: &PageRequest) -> Result<Page<TeamRecord>> {
        if !actor.is_staff() {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        Ok(directory::list_teams(&mut c, q, page).await?)
    }

    pub async fn update_team(&self, actor: &Principal, id: &str, input: TeamInput, expected_version: Option<i64>) -> Result<TeamRecord> {
        let before = self.get_team(actor, id).await?;
        let is_lead = before.lead_user_id.as_deref() == Some(actor.user_id.as_str());
        let lead_may = is_lead && !actor.is_read_only();
        if !actor.may_admin(AdminArea::Teams, Action::Write) && !lead_may {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let (name, description, email) = self.check_team(&mut w.tx, &input).await?;
        let mut members = input.member_ids.clone();
        members.sort();
        members.dedup();
        let after = TeamRecord {
            name,
            description,
            email,
            lead_user_id: input.lead_user_id,
            member_ids: members,
            active: input.active.unwrap_or(before.active),
            updated_at: w.now,
            ..before.clone()
        };
        directory::update_team(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await?;
        w.record("team", id, AuditAction::Update, Some(&snapshot(&before)), Some(&snapshot(&after))).await?;
        let fresh = directory::get_team(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    // ---- service projects ----

    async fn check_project(&self, conn: &mut sqlx::AnyConnection, input: &ProjectInput) -> Result<ProjectRecord> {
        let mut errs = Errors::new();
        let code = errs.check(validate::code("code", &input.code, 32));
        let name = errs.check(validate::required_text("name", &input.name, 200));
        let description = errs.check(validate::optional_text("description", input.description.as_deref(), 8000));
        let starts_on = check_date("starts_on", input.starts_on.as_deref(), &mut errs);
        let ends_on = check_date("ends_on", input.ends_on.as_deref(), &mut errs);
        if let (Some(s), Some(e)) = (&starts_on, &ends_on)
            && e < s
        {
            errs.push(keel_domain::FieldError::new("ends_on", "ends_before_start", "the term must end after it starts"));
        }
        let status = input.status.clone().unwrap_or_else(|| "active".into());
        if !["active", "closed"].contains(&status.as_str()) {
            errs.push(keel_domain::FieldError::new("status", "invalid_status", "status is active or closed"));
        }
        if input.organization_id.trim().is_empty() {
            errs.push(keel_domain::FieldError::new("organization_id", "required", "choose the customer organisation"));
        } else if directory::get_organization(conn, &input.organization_id).await?.is_none() {
            errs.push(keel_domain::FieldError::new("organization_id", "unknown_reference", "no such organisation"));
        }
        let mut people = input.member_ids.clone();
        people.extend(input.manager_user_id.clone());
        check_staff(conn, "member_ids", &people, &mut errs).await?;
        errs.finish()?;
        let mut members = input.member_ids.clone();
        members.sort();
        members.dedup();
        Ok(ProjectRecord {
            id: String::new(),
            code: code.unwrap_or_default(),
            name: name.unwrap_or_default(),
            organization_id: input.organization_id.clone(),
            manager_user_id: input.manager_user_id.clone().filter(|s| !s.is_empty()),
            description: description.flatten(),
            starts_on,
            ends_on,
            status,
            member_ids: members,
            disabled_processes: vec![],
            created_at: 0,
            updated_at: 0,
            version: 1,
        })
    }

    pub async fn create_project(&self, actor: &Principal, input: ProjectInput) -> Result<ProjectRecord> {
        require(actor, AdminArea::Projects, Action::Write)?;
        let mut w = self.write(actor).await?;
        let mut rec = self.check_project(&mut w.tx, &input).await?;
        rec.id = keel_store::new_id();
        rec.created_at = w.now;
        rec.updated_at = w.now;
        directory::insert_project(&mut w.tx, &rec).await?;
        for p in Process::ALL {
            directory::set_process(&mut w.tx, &rec.id, p.as_str(), true, "default", &actor.user_id, w.now).await?;
        }
        w.record("project", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    pub async fn get_project(&self, actor: &Principal, id: &str) -> Result<ProjectRecord> {
        let mut c = self.read().await?;
        let p = directory::get_project(&mut c, id).await?.ok_or(AppError::NotFound)?;
        if !actor.can_see_project(&p.id, Some(&p.organization_id)) {
            return Err(AppError::NotFound);
        }
        Ok(p)
    }

    pub async fn list_projects(&self, actor: &Principal, f: &ProjectFilter, page: &PageRequest) -> Result<Page<ProjectRecord>> {
        let mut c = self.read().await?;
        Ok(directory::list_projects(&mut c, &scope_of(actor), f, page).await?)
    }

    pub async fn update_project(
        &self,
        actor: &Principal,
        id: &str,
        input: ProjectInput,
        expected_version: Option<i64>,
    ) -> Result<ProjectRecord> {
        let before = self.get_project(actor, id).await?;
        let is_manager = before.manager_user_id.as_deref() == Some(actor.user_id.as_str()) && actor.has(Role::ProjectManager);
        let manager_may = is_manager && !actor.is_read_only();
        if !actor.may_admin(AdminArea::Projects, Action::Write) && !manager_may {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let checked = self.check_project(&mut w.tx, &input).await?;
        let after = ProjectRecord {
            id: before.id.clone(),
            created_at: before.created_at,
            updated_at: w.now,
            version: before.version,
            disabled_processes: before.disabled_processes.clone(),
            ..checked
        };
        directory::update_project(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await?;
        w.record("project", id, AuditAction::Update, Some(&snapshot(&before)), Some(&snapshot(&after))).await?;
        let fresh = directory::get_project(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Switches a tailorable process on or off for a project, recording who, when and why.
    pub async fn tailor_project(&self, actor: &Principal, id: &str, process: &str, enabled: bool, reason: &str) -> Result<ProjectRecord> {
        let before = self.get_project(actor, id).await?;
        require(actor, AdminArea::ProjectTailoring, Action::Write)?;
        let process = Process::parse(process).ok_or_else(|| AppError::field("process", "unknown_process", "no such process"))?;
        let mut tailoring = Tailoring::from_disabled(before.disabled_processes.iter().filter_map(|p| Process::parse(p)));
        let changed = tailoring.set(process, enabled, reason)?;
        let mut w = self.write(actor).await?;
        if changed {
            directory::set_process(&mut w.tx, id, process.as_str(), enabled, reason.trim(), &actor.user_id, w.now).await?;
            let after = directory::get_project(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
            let mut a = snapshot(&after);
            a["tailoring_reason"] = serde_json::json!(reason.trim());
            w.record("project", id, AuditAction::Update, Some(&snapshot(&before)), Some(&a)).await?;
        }
        let fresh = directory::get_project(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    pub async fn project_tailoring(&self, actor: &Principal, id: &str) -> Result<Vec<TailoringDecision>> {
        self.get_project(actor, id).await?;
        let mut c = self.read().await?;
        Ok(directory::tailoring(&mut c, id).await?)
    }

    /// Refuses use of a process the project has tailored out; every process module calls this.
    pub async fn require_process(&self, project_id: &str, process: Process) -> Result<()> {
        if process.is_mandatory() {
            return Ok(());
        }
        let mut c = self.read().await?;
        let p = directory::get_project(&mut c, project_id).await?.ok_or(AppError::NotFound)?;
        process_in_use(&p, process)
    }
}

/// Refuses use of a process the given project has tailored out.
pub(crate) fn process_in_use(p: &directory::ProjectRecord, process: Process) -> Result<()> {
    if !process.is_mandatory() && p.disabled_processes.iter().any(|d| d == process.as_str()) {
        return Err(AppError::ProcessDisabled(process.as_str().to_string()));
    }
    Ok(())
}

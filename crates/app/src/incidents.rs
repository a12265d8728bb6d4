//! Service desk and incident management (REQUIREMENTS §4): logging incidents and service
//! requests, the queues, classification and priority, the lifecycle through the domain's
//! `apply`, public replies and internal notes, the work log, satisfaction and the major
//! incident procedure.
//!
//! Tenancy is enforced here, not only in the pages: a ticket the actor may not see answers
//! `NotFound`, and a customer contact never receives an internal note or the work log.

use crate::auth::principal_of;
use crate::directory::scope_of;
use crate::writer::{Writer, snapshot};
use crate::{App, AppError, Principal, Result};
use chrono::{DateTime, Utc};
use keel_domain::audit::AuditAction;
use keel_domain::error::{Errors, FieldError};
use keel_domain::identity::{AccountKind, Role};
use keel_domain::incident::{
    self as inc, Action, Actor, Applied, Assignment, Channel, Closure, ClosureKind, Command, Context, Impact, LifecyclePolicy, MatrixCell,
    Pending, PendingReason, Priority, PriorityMatrix, Ref, References, Resolution, ResolutionCode, Status, TicketFields, TicketForm,
    TicketKind, TicketNumber, TicketPatch, TicketState, Urgency, Visibility,
};
use keel_domain::process::Process;
use keel_store::incidents::{
    self as store, CategoryRecord, CommentRecord, QueueCounts, RatingRecord, StatusLogRow, TicketFilter, TicketRecord, WorkLogRecord,
};
use keel_store::page::{Page, PageRequest};
use keel_store::{accounts, directory, kernel};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Settings rows of the service desk.
pub const PRIORITY_MATRIX_SETTING: &str = "incident.priority_matrix";
pub const REOPEN_WINDOW_SETTING: &str = "incident.reopen_window_days";
/// Days after closure a ticket may be reopened when no setting says otherwise.
pub const DEFAULT_REOPEN_WINDOW_DAYS: u32 = 7;

/// A new ticket as a form or the API delivers it.
#[derive(Debug, Clone, Default)]
pub struct NewTicket {
    /// `incident` (default) or `service_request`.
    pub kind: Option<String>,
    pub project_id: String,
    /// Who reports it: for staff logging on a caller's behalf, the caller; contacts always
    /// report for themselves (blank means themselves).
    pub reporter_id: Option<String>,
    /// Staff choose (default `phone`); the portal is always `portal`.
    pub channel: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub impact: Option<String>,
    pub urgency: Option<String>,
    pub category_id: Option<String>,
    /// Staff may assign while logging.
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    /// The affected catalogue service (one the customer's SLAs include).
    pub service_id: Option<String>,
    /// Service requests: the catalogue item ordered (see `desk::request_service`).
    pub catalogue_item_id: Option<String>,
    /// The affected configuration items (ids), among those the actor may see; each becomes a
    /// `ci` link of the ticket.
    pub ci_ids: Vec<String>,
}

/// A lifecycle step as a form or the API delivers it; which fields matter depends on `action`.
#[derive(Debug, Clone, Default)]
pub struct TransitionInput {
    pub action: String,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    pub pending_reason: Option<String>,
    pub note: Option<String>,
    pub resolution_code: Option<String>,
    pub resolution_notes: Option<String>,
    pub reason: Option<String>,
    /// For `mark_duplicate`: the number (INC-000042) or id of the ticket that carries on.
    pub duplicate_of: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CategoryInput {
    pub parent_id: Option<String>,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub active: Option<bool>,
    pub sort_order: Option<i64>,
}

/// Which queue a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Queue {
    /// Open tickets assigned to me.
    Mine,
    /// Open tickets of my resolver groups.
    Team,
    /// Open tickets nobody has.
    Unassigned,
    Pending,
    /// Open tickets.
    Open,
    /// Everything in scope.
    #[default]
    All,
}

impl Queue {
    pub const ALL: [Queue; 6] = [Queue::Mine, Queue::Team, Queue::Unassigned, Queue::Pending, Queue::Open, Queue::All];
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Mine => "mine",
            Queue::Team => "team",
            Queue::Unassigned => "unassigned",
            Queue::Pending => "pending",
            Queue::Open => "open",
            Queue::All => "all",
        }
    }
    pub fn parse(s: &str) -> Option<Queue> {
        Self::ALL.into_iter().find(|q| q.as_str() == s)
    }
    pub fn count(self, c: &QueueCounts) -> i64 {
        match self {
            Queue::Mine => c.mine,
            Queue::Team => c.team,
            Queue::Unassigned => c.unassigned,
            Queue::Pending => c.pending,
            Queue::Open => c.open,
            Queue::All => c.all,
        }
    }
    /// Narrows a filter to this queue for `user_id`.
    pub fn apply(self, f: &mut TicketFilter, user_id: &str) {
        match self {
            Queue::Mine => {
                f.agent_id = Some(user_id.to_string());
                f.open_only = true;
            }
            Queue::Team => {
                f.teams_of_user = Some(user_id.to_string());
                f.open_only = true;
            }
            Queue::Unassigned => {
                f.unassigned = true;
                f.open_only = true;
            }
            Queue::Pending => f.statuses = vec![Status::Pending.as_str().to_string()],
            Queue::Open => f.open_only = true,
            Queue::All => {}
        }
    }
}

// ---- conversions between rows and the domain ----

fn internal(what: &str) -> AppError {
    AppError::Internal(format!("stored ticket has an invalid {what}"))
}

pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// How an actor is stored in `resolved_by` / `closed_by`.
pub fn actor_str(a: &Actor) -> String {
    match a {
        Actor::Staff(id) => format!("staff:{id}"),
        Actor::Contact(id) => format!("contact:{id}"),
        Actor::System => "system".into(),
    }
}

/// The ticket's major incident flag as the domain holds it.
pub(crate) fn major_of(t: &TicketRecord) -> Option<inc::MajorIncident> {
    t.major.then(|| inc::MajorIncident {
        manager_id: t.major_manager_id.clone().unwrap_or_default(),
        reason: t.major_reason.clone().unwrap_or_default(),
        declared_at: time(t.major_declared_at.unwrap_or_default()),
        declared_by: parse_actor(t.major_declared_by.as_deref().unwrap_or("system")),
    })
}

pub(crate) fn parse_actor(s: &str) -> Actor {
    match s.split_once(':') {
        Some(("staff", id)) => Actor::Staff(id.into()),
        Some(("contact", id)) => Actor::Contact(id.into()),
        _ => Actor::System,
    }
}

/// The lifecycle state of a stored ticket.
pub fn state_of(t: &TicketRecord) -> Result<TicketState> {
    let number = TicketNumber::parse(&t.number).ok_or_else(|| internal("number"))?;
    let status = Status::parse(&t.status).ok_or_else(|| internal("status"))?;
    let pending = match &t.pending_reason {
        Some(r) => {
            Some(Pending { reason: PendingReason::parse(r).ok_or_else(|| internal("pending reason"))?, note: t.pending_note.clone() })
        }
        None => None,
    };
    let resolution = match &t.resolution_code {
        Some(code) => Some(Resolution {
            code: ResolutionCode::parse(code).ok_or_else(|| internal("resolution code"))?,
            notes: t.resolution_notes.clone().unwrap_or_default(),
            resolved_at: time(t.resolved_at.unwrap_or(t.status_changed_at)),
            resolved_by: parse_actor(t.resolved_by.as_deref().unwrap_or("system")),
        }),
        None => None,
    };
    let closure = match t.closure_kind.as_deref() {
        None => None,
        Some(k) => {
            let kind = match k {
                "confirmed_by_reporter" => ClosureKind::ConfirmedByReporter,
                "closed_by_staff" => ClosureKind::ClosedByStaff,
                "auto_closed" => ClosureKind::AutoClosed,
                "cancelled" => ClosureKind::Cancelled { reason: t.closure_reason.clone().unwrap_or_default() },
                "duplicate" => ClosureKind::Duplicate {
                    of_id: t.duplicate_of_id.clone().unwrap_or_default(),
                    of_number: t.names.duplicate_of_number.as_deref().and_then(TicketNumber::parse).unwrap_or(number),
                },
                _ => return Err(internal("closure")),
            };
            Some(Closure {
                kind,
                closed_at: time(t.closed_at.unwrap_or(t.status_changed_at)),
                closed_by: parse_actor(t.closed_by.as_deref().unwrap_or("system")),
            })
        }
    };
    Ok(TicketState {
        id: t.id.clone(),
        number,
        reporter_id: t.reporter_id.clone(),
        status,
        status_changed_at: time(t.status_changed_at),
        pending,
        assignment: Assignment { team_id: t.team_id.clone(), agent_id: t.agent_id.clone() },
        resolution,
        closure,
        reopen_count: u32::try_from(t.reopen_count).unwrap_or(0),
    })
}

/// Copies a lifecycle state onto the row; the timestamp of the status entered is set to `at`.
fn write_state(t: &mut TicketRecord, s: &TicketState) {
    let at = s.status_changed_at.timestamp_millis();
    if t.status != s.status.as_str() {
        match s.status {
            Status::New => {}
            Status::Assigned => t.assigned_at = Some(at),
            Status::InProgress => t.started_at = Some(at),
            Status::Pending => t.pending_at = Some(at),
            Status::Resolved => t.resolved_at = Some(at),
            Status::Closed => t.closed_at = Some(at),
        }
    }
    t.status = s.status.as_str().to_string();
    t.status_changed_at = at;
    t.pending_reason = s.pending.as_ref().map(|p| p.reason.as_str().to_string());
    t.pending_note = s.pending.as_ref().and_then(|p| p.note.clone());
    t.team_id = s.assignment.team_id.clone();
    t.agent_id = s.assignment.agent_id.clone();
    t.resolution_code = s.resolution.as_ref().map(|r| r.code.as_str().to_string());
    t.resolution_notes = s.resolution.as_ref().map(|r| r.notes.clone());
    t.resolved_by = s.resolution.as_ref().map(|r| actor_str(&r.resolved_by));
    if let Some(r) = &s.resolution {
        t.resolved_at = Some(r.resolved_at.timestamp_millis());
    }
    t.closure_kind = None;
    t.closure_reason = None;
    t.closed_by = None;
    t.duplicate_of_id = None;
    if let Some(c) = &s.closure {
        let (kind, reason, dup) = match &c.kind {
            ClosureKind::ConfirmedByReporter => ("confirmed_by_reporter", None, None),
            ClosureKind::ClosedByStaff => ("closed_by_staff", None, None),
            ClosureKind::AutoClosed => ("auto_closed", None, None),
            ClosureKind::Cancelled { reason } => ("cancelled", Some(reason.clone()), None),
            ClosureKind::Duplicate { of_id, .. } => ("duplicate", None, Some(of_id.clone())),
        };
        t.closure_kind = Some(kind.into());
        t.closure_reason = reason;
        t.duplicate_of_id = dup;
        t.closed_by = Some(actor_str(&c.closed_by));
        t.closed_at = Some(c.closed_at.timestamp_millis());
    }
    t.reopen_count = i64::from(s.reopen_count);
}

fn fields_of(t: &TicketRecord) -> Result<TicketFields> {
    Ok(TicketFields {
        kind: TicketKind::parse(&t.kind).ok_or_else(|| internal("kind"))?,
        project_id: t.project_id.clone(),
        reporter_id: t.reporter_id.clone(),
        channel: Channel::parse(&t.channel).ok_or_else(|| internal("channel"))?,
        title: t.title.clone(),
        description: t.description.clone(),
        impact: Impact::parse(&t.impact).ok_or_else(|| internal("impact"))?,
        urgency: Urgency::parse(&t.urgency).ok_or_else(|| internal("urgency"))?,
        priority: Priority::parse(&t.priority).ok_or_else(|| internal("priority"))?,
        category_id: t.category_id.clone(),
        service_id: t.service_id.clone(),
        catalogue_item_id: t.catalogue_item_id.clone(),
        ci_ids: vec![],
    })
}

/// A new ticket checked by `prepare_ticket`, ready for `write_ticket`.
struct ReadyTicket {
    fields: TicketFields,
    project: directory::ProjectRecord,
    assignment: Option<Assignment>,
    /// The lifecycle policy, read when the ticket is assigned at once.
    policy: Option<LifecyclePolicy>,
    /// The SLAs in force for the ticket's project.
    slas: std::sync::Arc<crate::sla_clocks::SlaCache>,
}

/// The references a rule may ask about, looked up beforehand (the domain never queries).
#[derive(Default)]
struct Known(HashSet<(RefKey, String)>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RefKey {
    Project,
    Person,
    Agent,
    Team,
    Category,
    Service,
    CatalogueItem,
    ConfigurationItem,
}

impl Known {
    fn add(&mut self, k: RefKey, id: &str) {
        self.0.insert((k, id.trim().to_string()));
    }
}

impl References for Known {
    fn exists(&self, kind: Ref, id: &str) -> bool {
        let key = match kind {
            Ref::Project => RefKey::Project,
            Ref::Person => RefKey::Person,
            Ref::Agent => RefKey::Agent,
            Ref::Team => RefKey::Team,
            Ref::Category => RefKey::Category,
            Ref::Service => RefKey::Service,
            Ref::CatalogueItem => RefKey::CatalogueItem,
            Ref::ConfigurationItem => RefKey::ConfigurationItem,
            // problems and changes are linked through `desk`.
            _ => return false,
        };
        self.0.contains(&(key, id.to_string()))
    }
}

/// A CI the actor may not see is refused as unknown, like one that does not exist.
fn unknown_cis(e: keel_domain::DomainError) -> keel_domain::DomainError {
    match e {
        keel_domain::DomainError::Invalid(list) => keel_domain::DomainError::Invalid(
            list.into_iter()
                .map(|fe| match fe.field.starts_with("ci_ids[") && fe.code == "not_found" {
                    true => FieldError::new(fe.field, "unknown_ci", "no such configuration item that you may see"),
                    false => fe,
                })
                .collect(),
        ),
        other => other,
    }
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

async fn is_active_team(conn: &mut sqlx::AnyConnection, id: &str) -> Result<bool> {
    Ok(directory::get_team(conn, id).await?.is_some_and(|t| t.active))
}

/// Staff who can be assigned work on a project: active staff who can see the project.
async fn is_agent_for(conn: &mut sqlx::AnyConnection, id: &str, project_id: &str, organization_id: &str) -> Result<bool> {
    let Some(u) = accounts::get_user(conn, id).await? else { return Ok(false) };
    if u.kind != AccountKind::Staff.as_str() || !u.active {
        return Ok(false);
    }
    let p = principal_of(conn, &u).await?;
    Ok(p.can_see_project(project_id, Some(organization_id)) && !p.is_read_only())
}

/// People who can report on a project: active staff, or active contacts of its customer.
async fn is_person_for(conn: &mut sqlx::AnyConnection, id: &str, organization_id: &str) -> Result<bool> {
    let Some(u) = accounts::get_user(conn, id).await? else { return Ok(false) };
    Ok(u.active && (u.kind == AccountKind::Staff.as_str() || u.organization_id.as_deref() == Some(organization_id)))
}

async fn is_active_category(conn: &mut sqlx::AnyConnection, id: &str) -> Result<bool> {
    Ok(store::get_category(conn, id).await?.is_some_and(|c| c.active))
}

/// May manage the service desk's configuration (categories, priority matrix).
fn may_configure(actor: &Principal) -> bool {
    actor.is_staff() && !actor.is_read_only() && (actor.is_admin() || actor.has(Role::ServiceManager))
}

/// The audited view of a ticket. The per-status timestamps are left out: every audit entry has
/// its own instant, and the status log keeps the exact times the SLA engine reads.
pub(crate) fn audit_of(t: &TicketRecord) -> serde_json::Value {
    let mut v = snapshot(t);
    if let Some(o) = v.as_object_mut() {
        for k in [
            "status_changed_at",
            "assigned_at",
            "started_at",
            "pending_at",
            "resolved_at",
            "closed_at",
            "first_response_at",
            "major_declared_at",
        ] {
            o.remove(k);
        }
    }
    v
}

impl App {
    // ---- settings ----

    /// The priority matrix in force (the default ITIL matrix until an administrator sets one).
    pub async fn priority_matrix(&self) -> Result<PriorityMatrix> {
        let mut c = self.read().await?;
        matrix_in(&mut c).await
    }

    pub async fn set_priority_matrix(&self, actor: &Principal, cells: Vec<MatrixCell>) -> Result<PriorityMatrix> {
        if !may_configure(actor) {
            return Err(AppError::Forbidden);
        }
        let matrix = PriorityMatrix::from_cells(cells)?;
        let mut w = self.write(actor).await?;
        let before = matrix_in(&mut w.tx).await?;
        let json = serde_json::to_string(&matrix).map_err(|e| AppError::Internal(e.to_string()))?;
        kernel::set_setting(&mut w.tx, PRIORITY_MATRIX_SETTING, &json, w.now).await?;
        let b = serde_json::json!({ "cells": before });
        let a = serde_json::json!({ "cells": matrix });
        w.record("setting", PRIORITY_MATRIX_SETTING, AuditAction::Update, Some(&b), Some(&a)).await?;
        w.commit().await?;
        Ok(matrix)
    }

    // ---- categories ----

    pub async fn list_categories(&self, actor: &Principal) -> Result<Vec<CategoryRecord>> {
        let _ = actor;
        let mut c = self.read().await?;
        Ok(store::list_categories(&mut c).await?)
    }

    async fn check_category(&self, conn: &mut sqlx::AnyConnection, id: Option<&str>, input: &CategoryInput) -> Result<CategoryRecord> {
        let mut errs = Errors::new();
        let code = errs.check(keel_domain::validate::code("code", &input.code, 32));
        let name = errs.check(keel_domain::validate::required_text("name", &input.name, 200));
        let description = errs.check(keel_domain::validate::optional_text("description", input.description.as_deref(), 4000));
        let parent_id = blank(&input.parent_id).map(str::to_string);
        if let Some(p) = &parent_id {
            // The parent must exist and must not be the category itself or one of its descendants.
            let all = store::list_categories(conn).await?;
            let parent_of: HashMap<&str, Option<&str>> = all.iter().map(|c| (c.id.as_str(), c.parent_id.as_deref())).collect();
            if !parent_of.contains_key(p.as_str()) {
                errs.push(FieldError::new("parent_id", "unknown_reference", "no such category"));
            } else if let Some(me) = id {
                let mut cur = Some(p.as_str());
                let mut steps = 0;
                while let Some(c) = cur {
                    if c == me || steps > 64 {
                        errs.push(FieldError::new("parent_id", "cycle", "a category cannot be inside itself"));
                        break;
                    }
                    cur = parent_of.get(c).copied().flatten();
                    steps += 1;
                }
            }
        }
        errs.finish()?;
        Ok(CategoryRecord {
            id: id.unwrap_or_default().to_string(),
            parent_id,
            code: code.unwrap_or_default(),
            name: name.unwrap_or_default(),
            description: description.flatten(),
            active: input.active.unwrap_or(true),
            sort_order: input.sort_order.unwrap_or(0),
            created_at: 0,
            updated_at: 0,
            version: 1,
        })
    }

    pub async fn create_category(&self, actor: &Principal, input: CategoryInput) -> Result<CategoryRecord> {
        if !may_configure(actor) {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let mut rec = self.check_category(&mut w.tx, None, &input).await?;
        rec.id = keel_store::new_id();
        rec.created_at = w.now;
        rec.updated_at = w.now;
        store::insert_category(&mut w.tx, &rec).await?;
        w.record("ticket_category", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    pub async fn update_category(
        &self,
        actor: &Principal,
        id: &str,
        input: CategoryInput,
        expected_version: Option<i64>,
    ) -> Result<CategoryRecord> {
        if !may_configure(actor) {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let before = store::get_category(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        let checked = self.check_category(&mut w.tx, Some(id), &input).await?;
        let after = CategoryRecord { created_at: before.created_at, updated_at: w.now, version: before.version, ..checked };
        store::update_category(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await?;
        w.record("ticket_category", id, AuditAction::Update, Some(&snapshot(&before)), Some(&snapshot(&after))).await?;
        let fresh = store::get_category(&mut w.tx, id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    // ---- tickets: reading ----

    /// A ticket the actor may see, by id or by number (`INC-000042`); `NotFound` otherwise.
    pub async fn get_ticket(&self, actor: &Principal, id: &str) -> Result<TicketRecord> {
        let mut c = self.read().await?;
        load_visible(&mut c, actor, id).await
    }

    pub async fn list_tickets(&self, actor: &Principal, f: &TicketFilter, page: &PageRequest) -> Result<Page<TicketRecord>> {
        let mut c = self.read().await?;
        Ok(store::list_tickets(&mut c, &scope_of(actor), f, page).await?)
    }

    pub async fn count_tickets(&self, actor: &Principal, f: &TicketFilter) -> Result<i64> {
        let mut c = self.read().await?;
        Ok(store::count_tickets(&mut c, &scope_of(actor), f).await?)
    }

    /// The numbers on the queue tabs for this actor.
    pub async fn queue_counts(&self, actor: &Principal) -> Result<QueueCounts> {
        let mut c = self.read().await?;
        Ok(store::queue_counts(&mut c, &scope_of(actor), &actor.user_id).await?)
    }

    /// The lifecycle actions the actor may take on the ticket now (buttons, API links).
    pub async fn ticket_actions(&self, actor: &Principal, t: &TicketRecord) -> Result<Vec<Action>> {
        if actor.is_read_only() {
            return Ok(vec![]);
        }
        let policy = self.lifecycle_policy().await?;
        self.actions_under(actor, t, &policy)
    }

    /// The same under a lifecycle policy the caller has read.
    pub(crate) fn actions_under(&self, actor: &Principal, t: &TicketRecord, policy: &LifecyclePolicy) -> Result<Vec<Action>> {
        if actor.is_read_only() {
            return Ok(vec![]);
        }
        let state = state_of(t)?;
        let who = Actor::from(actor);
        let ctx = Context::new(time(self.now()), &who, policy);
        Ok(inc::available_actions(&state, &ctx).into_iter().filter(|a| *a != Action::AutoClose).collect())
    }

    pub async fn lifecycle_policy(&self) -> Result<LifecyclePolicy> {
        let mut c = self.read().await?;
        policy_in(&mut c).await
    }

    /// The conversation: contacts get public replies only (filtered in SQL).
    pub async fn list_comments(&self, actor: &Principal, id: &str) -> Result<Vec<CommentRecord>> {
        let mut c = self.read().await?;
        let t = load_visible(&mut c, actor, id).await?;
        comments_of(&mut c, actor, &t.id).await
    }

    /// The work log is internal: staff only.
    pub async fn list_work_log(&self, actor: &Principal, id: &str) -> Result<Vec<WorkLogRecord>> {
        let mut c = self.read().await?;
        let t = load_visible(&mut c, actor, id).await?;
        if !actor.is_staff() {
            return Err(AppError::Forbidden);
        }
        Ok(store::list_work_log(&mut c, &t.id).await?)
    }

    pub async fn status_log(&self, actor: &Principal, id: &str) -> Result<Vec<StatusLogRow>> {
        let mut c = self.read().await?;
        let t = load_visible(&mut c, actor, id).await?;
        Ok(store::status_log(&mut c, &t.id).await?)
    }

    pub async fn get_rating(&self, actor: &Principal, id: &str) -> Result<Option<RatingRecord>> {
        let mut c = self.read().await?;
        let t = load_visible(&mut c, actor, id).await?;
        Ok(store::get_rating(&mut c, &t.id).await?)
    }

    /// The audit trail of a ticket: staff only (it names teams, agents and internal reasons).
    pub async fn ticket_history(&self, actor: &Principal, id: &str) -> Result<Vec<keel_store::audit::HistoryEntry>> {
        let t = self.get_ticket(actor, id).await?;
        if !actor.is_staff() {
            return Err(AppError::Forbidden);
        }
        self.history("ticket", &t.id).await
    }

    // ---- tickets: writing ----

    /// Logs a ticket: staff on behalf of a caller, or a customer contact from the portal for a
    /// project of their own organisation. Staff may assign it at once.
    pub async fn create_ticket(&self, actor: &Principal, input: NewTicket) -> Result<TicketRecord> {
        if actor.is_read_only() {
            return Err(AppError::Forbidden);
        }
        // Checked inside the write transaction: checked on a read connection first, a project
        // closed, a team deactivated or an SLA activated while the request waited for the
        // writer would not be seen.
        let id = self
            .write_in_group(actor, move |app, mut w| async move {
                let actor = w.actor.clone();
                let out = match app.prepare_ticket(&mut w.tx, &actor, input, None).await {
                    Ok(ready) => app.write_ticket(&mut w, &actor, ready).await,
                    Err(e) => Err(e),
                };
                (w, out)
            })
            .await?;
        store::get_ticket(&mut *self.read().await?, &id).await?.ok_or(AppError::NotFound)
    }

    /// Creates a ticket inside the caller's transaction; `channel` fixes the channel it came
    /// by (the mail gateway: `email`) whoever reports it.
    pub(crate) async fn create_ticket_in(
        &self,
        w: &mut Writer,
        actor: &Principal,
        input: NewTicket,
        channel: Option<&str>,
    ) -> Result<TicketRecord> {
        let ready = self.prepare_ticket(&mut w.tx, actor, input, channel).await?;
        let id = self.write_ticket(w, actor, ready).await?;
        store::get_ticket(&mut w.tx, &id).await?.ok_or(AppError::NotFound)
    }

    /// Checks a new ticket against the reference data (the project, the people, the category,
    /// the priority matrix) and picks up the SLAs that will measure it.
    async fn prepare_ticket(
        &self,
        conn: &mut sqlx::AnyConnection,
        actor: &Principal,
        input: NewTicket,
        channel: Option<&str>,
    ) -> Result<ReadyTicket> {
        let who = Actor::from(actor);
        let is_contact = actor.kind == AccountKind::Contact;
        let project = directory::get_project(conn, input.project_id.trim()).await?;
        let project = project.filter(|p| actor.can_see_project(&p.id, Some(&p.organization_id)));
        let mut known = Known::default();
        let mut errs = Errors::new();
        if let Some(p) = &project {
            if p.status != "active" {
                errs.push(FieldError::new("project_id", "project_closed", "the service project is closed"));
            }
            known.add(RefKey::Project, &p.id);
            crate::directory::process_in_use(p, Process::Incident)?;
            crate::directory::process_in_use(p, Process::ServiceDesk)?;
        }
        let org = project.as_ref().map(|p| p.organization_id.clone()).unwrap_or_default();
        let reporter = if is_contact {
            blank(&input.reporter_id).unwrap_or(&actor.user_id).to_string()
        } else {
            blank(&input.reporter_id).unwrap_or_default().to_string()
        };
        if !reporter.is_empty() && project.is_some() && is_person_for(conn, &reporter, &org).await? {
            known.add(RefKey::Person, &reporter);
        }
        if let Some(cat) = blank(&input.category_id)
            && is_active_category(conn, cat).await?
        {
            known.add(RefKey::Category, cat);
        }
        if let Some(svc) = blank(&input.service_id)
            && crate::desk::service_open_to(conn, actor, svc).await?
        {
            known.add(RefKey::Service, svc);
        }
        if let Some(item) = blank(&input.catalogue_item_id)
            && crate::desk::catalogue_item_open_to(conn, actor, item).await?
        {
            known.add(RefKey::CatalogueItem, item);
        }
        let distinct: BTreeSet<&str> = input.ci_ids.iter().map(|i| i.trim()).filter(|i| !i.is_empty()).collect();
        for id in distinct.into_iter().take(inc::fields::MAX_CIS + 1) {
            if let Some(ci) = keel_store::cmdb::get_ci(conn, id).await?
                && crate::cmdb::sees_ci(actor, ci.project_id.as_deref())
            {
                known.add(RefKey::ConfigurationItem, id);
            }
        }
        let channel = if let Some(c) = channel {
            c.to_string()
        } else if is_contact {
            "portal".to_string()
        } else {
            blank(&input.channel).unwrap_or("phone").to_string()
        };
        let form = TicketForm {
            kind: blank(&input.kind).unwrap_or("incident").to_string(),
            project_id: input.project_id.clone(),
            reporter_id: reporter.clone(),
            channel,
            title: input.title.clone(),
            description: input.description.clone(),
            impact: input.impact.clone(),
            urgency: input.urgency.clone(),
            category_id: input.category_id.clone(),
            service_id: input.service_id.clone(),
            catalogue_item_id: input.catalogue_item_id.clone(),
            ci_ids: input.ci_ids.clone(),
        };
        let reference = self.reference.current(conn).await?;
        let fields = inc::validate_new_ticket(&form, &who, &reference.matrix, &known).map_err(unknown_cis);
        // Assignment while logging: staff only, checked with everything else.
        let wants_assignment = blank(&input.team_id).is_some() || blank(&input.agent_id).is_some();
        let mut assignment = None;
        if wants_assignment {
            if is_contact {
                errs.push(FieldError::new("team_id", "not_allowed", "the service desk assigns tickets"));
            } else {
                if let Some(team) = blank(&input.team_id)
                    && is_active_team(conn, team).await?
                {
                    known.add(RefKey::Team, team);
                }
                if let (Some(agent), Some(p)) = (blank(&input.agent_id), &project)
                    && is_agent_for(conn, agent, &p.id, &p.organization_id).await?
                {
                    known.add(RefKey::Agent, agent);
                }
                match Assignment::new(input.team_id.as_deref(), input.agent_id.as_deref(), &known) {
                    Ok(a) => assignment = Some(a),
                    Err(keel_domain::DomainError::Invalid(list)) => list.into_iter().for_each(|e| errs.push(e)),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let fields = match (fields, errs.finish()) {
            (Ok(f), Ok(())) => f,
            (Ok(_), Err(e)) => return Err(e.into()),
            (Err(keel_domain::DomainError::Invalid(mut a)), Err(keel_domain::DomainError::Invalid(b))) => {
                a.extend(b);
                return Err(AppError::Validation(a));
            }
            (Err(e), _) => return Err(e.into()),
        };
        let project = project.ok_or(AppError::NotFound)?;
        let slas = reference.slas_of(conn, &project.id).await?;
        let policy = match assignment {
            Some(_) => Some(policy_in(conn).await?),
            None => None,
        };
        Ok(ReadyTicket { fields, project, assignment, policy, slas })
    }

    /// Writes a checked ticket: the row, its first status and priority log entries, the
    /// reporter as watcher, the audit entry, the assignment if asked, the SLA clocks and the
    /// announcement. Returns the new ticket's id.
    async fn write_ticket(&self, w: &mut Writer, actor: &Principal, ready: ReadyTicket) -> Result<String> {
        let ReadyTicket { fields, project, assignment, policy, slas } = ready;
        let who = Actor::from(actor);
        let seq = kernel::next_counter(&mut w.tx, fields.kind.prefix()).await?;
        let number = TicketNumber::new(fields.kind, u64::try_from(seq).unwrap_or(1)).ok_or_else(|| internal("counter"))?;
        let id = keel_store::new_id();
        let (state, first) = TicketState::open(&id, number, &fields.reporter_id, time(w.now));
        let mut rec = TicketRecord {
            id: id.clone(),
            number: number.to_string(),
            kind: fields.kind.as_str().into(),
            project_id: project.id.clone(),
            organization_id: project.organization_id.clone(),
            reporter_id: fields.reporter_id.clone(),
            created_by: actor.user_id.clone(),
            title: fields.title.clone(),
            description: fields.description.clone(),
            channel: fields.channel.as_str().into(),
            category_id: fields.category_id.clone(),
            service_id: fields.service_id.clone(),
            catalogue_item_id: fields.catalogue_item_id.clone(),
            impact: fields.impact.as_str().into(),
            urgency: fields.urgency.as_str().into(),
            priority: fields.priority.as_str().into(),
            status: Status::New.as_str().into(),
            status_changed_at: w.now,
            created_at: w.now,
            updated_at: w.now,
            version: 1,
            ..Default::default()
        };
        write_state(&mut rec, &state);
        store::insert_ticket(&mut w.tx, &rec).await?;
        log_status(w, &rec.id, &first, &actor.user_id).await?;
        store::append_priority_log(&mut w.tx, &rec.id, w.now, &rec.priority, &actor.user_id).await?;
        store::add_watcher(&mut w.tx, &rec.id, &rec.reporter_id, w.now).await?;
        w.record_new("ticket", &rec.id, &audit_of(&rec)).await?;
        for ci in &fields.ci_ids {
            let link = keel_store::incidents::LinkRecord {
                id: keel_store::new_id(),
                ticket_id: id.clone(),
                target_type: "ci".into(),
                target_id: ci.clone(),
                created_by: actor.user_id.clone(),
                created_at: w.now,
            };
            store::insert_link(&mut w.tx, &link).await?;
            w.record("ticket_link", &link.id, AuditAction::Create, None, Some(&snapshot(&link))).await?;
        }
        // The clocks start from the logs as written here; nothing needs reading back.
        let mut clock = keel_store::sla_clocks::TicketClockInput {
            id: id.clone(),
            project_id: rec.project_id.clone(),
            service_id: rec.service_id.clone(),
            first_response_at: None,
            status_log: vec![(w.now, first.sla_status().to_string())],
            priority_log: vec![(w.now, rec.priority.clone())],
            public_updates: vec![],
        };
        if let (Some(a), Some(policy)) = (assignment, policy) {
            let applied = inc::apply(&state, &Command::Assign { assignment: a }, &Context::new(time(w.now), &who, &policy))?;
            let mut after = rec.clone();
            write_state(&mut after, &applied.state);
            if let Some(e) = applied.status_log_entry() {
                clock.status_log.push((e.at.timestamp_millis(), e.sla_status().to_string()));
            }
            persist_applied(w, &rec, applied, 1, &actor.user_id, Some("assign"), None).await?;
            rec = after;
        }
        crate::sla_clocks::start_clocks(w, &clock, &slas).await?;
        let team = vec![keel_domain::notification::Audience::AssignmentTeam];
        crate::notifications::announce_ticket(w, "incident.created", &rec, team, serde_json::json!({})).await?;
        Ok(id)
    }

    /// Changes a ticket's descriptive fields (title, description, impact, urgency, category),
    /// based on `expected_version`. Priority follows the matrix when impact or urgency change.
    pub async fn update_ticket(
        &self,
        actor: &Principal,
        id: &str,
        patch: TicketPatch,
        expected_version: Option<i64>,
    ) -> Result<TicketRecord> {
        let mut w = self.write(actor).await?;
        let before = load_visible(&mut w.tx, actor, id).await?;
        let expected = expected_version.unwrap_or(before.version);
        if expected != before.version {
            return Err(AppError::Stale);
        }
        let current = fields_of(&before)?;
        let status = Status::parse(&before.status).ok_or_else(|| internal("status"))?;
        let mut known = Known::default();
        if let Some(cat) = blank(&patch.category_id)
            && is_active_category(&mut w.tx, cat).await?
        {
            known.add(RefKey::Category, cat);
        }
        let patch = TicketPatch { service_id: None, ci_ids: None, ..patch };
        let matrix = matrix_in(&mut w.tx).await?;
        let next = inc::validate_ticket_update(&current, status, &patch, &Actor::from(actor), &matrix, &known)?;
        let mut after = before.clone();
        after.title = next.title;
        after.description = next.description;
        after.impact = next.impact.as_str().into();
        after.urgency = next.urgency.as_str().into();
        after.priority = next.priority.as_str().into();
        after.category_id = next.category_id;
        after.updated_at = w.now;
        if (TicketRecord { updated_at: before.updated_at, ..after.clone() }) == before {
            w.commit().await?;
            return Ok(before);
        }
        store::update_ticket(&mut w.tx, &after, expected).await?;
        if after.priority != before.priority {
            store::append_priority_log(&mut w.tx, &after.id, w.now, &after.priority, &actor.user_id).await?;
        }
        w.record("ticket", &after.id, AuditAction::Update, Some(&audit_of(&before)), Some(&audit_of(&after))).await?;
        crate::sla_clocks::refresh(&mut w, &after.id).await?;
        let fresh = store::get_ticket(&mut w.tx, &after.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Moves a ticket through its lifecycle with the domain's `apply`: every guard is checked,
    /// the status log is appended and the change audited, all in one transaction.
    pub async fn transition_ticket(
        &self,
        actor: &Principal,
        id: &str,
        input: TransitionInput,
        expected_version: Option<i64>,
    ) -> Result<TicketRecord> {
        let mut w = self.write(actor).await?;
        let fresh = self.transition_in(&mut w, actor, id, &input, expected_version).await?;
        w.commit().await?;
        Ok(fresh)
    }

    /// A lifecycle step inside the caller's transaction (one ticket of a bulk change).
    pub(crate) async fn transition_in(
        &self,
        w: &mut Writer,
        actor: &Principal,
        id: &str,
        input: &TransitionInput,
        expected_version: Option<i64>,
    ) -> Result<TicketRecord> {
        let before = load_visible(&mut w.tx, actor, id).await?;
        let expected = expected_version.unwrap_or(before.version);
        if expected != before.version {
            return Err(AppError::Stale);
        }
        let state = state_of(&before)?;
        let who = Actor::from(actor);
        let cmd = self.command(w, actor, &before, &state, input).await?;
        let policy = policy_in(&mut w.tx).await?;
        let applied = inc::apply(&state, &cmd, &Context::new(time(w.now), &who, &policy))?;
        let reason = match &cmd {
            Command::Reject { reason } | Command::Reopen { reason } | Command::Cancel { reason } => Some(reason.trim().to_string()),
            Command::Pend { note, .. } => note.clone(),
            _ => None,
        };
        persist_applied(w, &before, applied, expected, &actor.user_id, Some(cmd.action().as_str()), reason).await?;
        crate::sla_clocks::refresh(w, &before.id).await?;
        let fresh = store::get_ticket(&mut w.tx, &before.id).await?.ok_or(AppError::NotFound)?;
        if let Some((kind, to)) = crate::notifications::step_announcement(cmd.action().as_str(), &fresh) {
            let extra = serde_json::json!({ "resolution": fresh.resolution_notes });
            crate::notifications::announce_ticket(w, kind, &fresh, to, extra).await?;
        }
        Ok(fresh)
    }

    /// Builds the domain command from form input, reporting every missing or unknown value.
    async fn command(
        &self,
        w: &mut Writer,
        actor: &Principal,
        t: &TicketRecord,
        state: &TicketState,
        input: &TransitionInput,
    ) -> Result<Command> {
        let action = Action::parse_field("action", &input.action)?;
        // A step the lifecycle does not allow from here is refused before its inputs are judged.
        if inc::transition(state.status, action).is_none() {
            let (from, to) = (state.status.as_str().into(), action.target().as_str().into());
            return Err(keel_domain::DomainError::InvalidTransition { from, to }.into());
        }
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        Ok(match action {
            Action::Assign | Action::Reassign => {
                let mut known = Known::default();
                if let Some(team) = blank(&input.team_id)
                    && is_active_team(&mut w.tx, team).await?
                {
                    known.add(RefKey::Team, team);
                }
                if let Some(agent) = blank(&input.agent_id)
                    && is_agent_for(&mut w.tx, agent, &t.project_id, &t.organization_id).await?
                {
                    known.add(RefKey::Agent, agent);
                }
                let assignment = Assignment::new(input.team_id.as_deref(), input.agent_id.as_deref(), &known)?;
                if action == Action::Assign { Command::Assign { assignment } } else { Command::Reassign { assignment } }
            }
            Action::Start => Command::Start,
            Action::Pend => {
                let reason = match blank(&input.pending_reason) {
                    None => return Err(AppError::field("pending_reason", "required", "say what the ticket is waiting for")),
                    Some(r) => PendingReason::parse_field("pending_reason", r)?,
                };
                Command::Pend { reason, note: input.note.clone() }
            }
            Action::Resume => Command::Resume,
            Action::Resolve => {
                let mut errs = Errors::new();
                let code = match blank(&input.resolution_code) {
                    None => {
                        errs.push(FieldError::new("resolution_code", "required", "choose how the ticket was resolved"));
                        None
                    }
                    Some(c) => errs.check(ResolutionCode::parse_field("resolution_code", c)),
                };
                let notes = text(&input.resolution_notes);
                if code.is_none() {
                    errs.check(keel_domain::validate::required_text("resolution_notes", &notes, inc::ticket::RESOLUTION_NOTES_MAX));
                }
                errs.finish()?;
                Command::Resolve { code: code.ok_or_else(|| internal("resolution code"))?, notes }
            }
            Action::Confirm => Command::Confirm,
            Action::Reject => Command::Reject { reason: text(&input.reason) },
            Action::Close => Command::Close,
            Action::AutoClose => Command::AutoClose,
            Action::Reopen => Command::Reopen { reason: text(&input.reason) },
            Action::Cancel => Command::Cancel { reason: text(&input.reason) },
            Action::MarkDuplicate => {
                let target_ref = blank(&input.duplicate_of)
                    .ok_or_else(|| AppError::field("duplicate_of", "required", "name the ticket this one duplicates"))?;
                let target = match load_visible(&mut w.tx, actor, target_ref).await {
                    Ok(t) => t,
                    Err(AppError::NotFound) => {
                        return Err(AppError::field("duplicate_of", "not_found", "no such ticket"));
                    }
                    Err(e) => return Err(e),
                };
                // The chain of merges from the target on, for the cycle check.
                let mut merged: HashMap<String, String> = HashMap::new();
                let mut cur = target.duplicate_of_id.clone().map(|d| (target.id.clone(), d));
                while let Some((from, to)) = cur.take() {
                    if merged.len() > inc::links::MAX_CHAIN || merged.contains_key(&from) {
                        break;
                    }
                    merged.insert(from, to.clone());
                    cur = store::get_ticket(&mut w.tx, &to).await?.and_then(|n| n.duplicate_of_id.map(|d| (n.id, d)));
                }
                let target_state = state_of(&target)?;
                let me = inc::LinkSubject { id: &t.id, number: state.number, project_id: &t.project_id, status: state.status };
                let other = inc::LinkSubject {
                    id: &target.id,
                    number: target_state.number,
                    project_id: &target.project_id,
                    status: target_state.status,
                };
                let checked = inc::check_merge(&me, &other, |id| merged.get(id).cloned())?;
                Command::MarkDuplicate { target: checked }
            }
        })
    }

    /// Adds a public reply or an internal note. A customer's reply to a ticket waiting for them
    /// resumes it (recorded as done by the system); a staff member's first public reply is the
    /// ticket's first response.
    pub async fn add_comment(&self, actor: &Principal, id: &str, visibility: &str, body: &str) -> Result<CommentRecord> {
        let mut w = self.write(actor).await?;
        let t = load_visible(&mut w.tx, actor, id).await?;
        let rec = comment_in(&mut w, actor, &t, visibility, body).await?;
        w.commit().await?;
        Ok(rec)
    }

    /// Logs time spent on a ticket (staff only).
    pub async fn add_work_log(
        &self,
        actor: &Principal,
        id: &str,
        minutes: i64,
        performed_at: Option<i64>,
        note: Option<&str>,
    ) -> Result<WorkLogRecord> {
        let mut w = self.write(actor).await?;
        let t = load_visible(&mut w.tx, actor, id).await?;
        let status = Status::parse(&t.status).ok_or_else(|| internal("status"))?;
        let entry = inc::new_work_log(status, &Actor::from(actor), minutes, performed_at.map(time), note, time(w.now))?;
        let rec = WorkLogRecord {
            id: keel_store::new_id(),
            ticket_id: t.id.clone(),
            author_id: entry.author_id.clone(),
            minutes: i64::from(entry.minutes),
            performed_at: entry.performed_at.timestamp_millis(),
            note: entry.note.clone(),
            created_at: w.now,
            author_name: Some(actor.display_name.clone()),
        };
        store::insert_work_log(&mut w.tx, &rec).await?;
        w.record("ticket_work_log", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        store::touch_ticket(&mut w.tx, &t.id, w.now, false).await?;
        w.commit().await?;
        Ok(rec)
    }

    /// The reporter rates a resolved (or closed after resolution) ticket, 1 to 5.
    pub async fn rate_ticket(&self, actor: &Principal, id: &str, score: i64, comment: Option<&str>) -> Result<RatingRecord> {
        let mut w = self.write(actor).await?;
        let t = load_visible(&mut w.tx, actor, id).await?;
        let state = state_of(&t)?;
        let existing = store::get_rating(&mut w.tx, &t.id).await?;
        let existing_domain = existing.as_ref().and_then(|r| {
            Some(inc::Satisfaction {
                score: inc::Score::new("score", r.score).ok()?,
                comment: r.comment.clone(),
                rated_by: r.rated_by.clone(),
                rated_at: time(r.rated_at),
            })
        });
        let s = inc::rate(&state, existing_domain.as_ref(), &Actor::from(actor), score, comment, time(w.now))?;
        let rec = RatingRecord {
            ticket_id: t.id.clone(),
            score: i64::from(s.score.get()),
            comment: s.comment.clone(),
            rated_by: s.rated_by.clone(),
            rated_at: w.now,
        };
        store::upsert_rating(&mut w.tx, &rec).await?;
        let action = if existing.is_some() { AuditAction::Update } else { AuditAction::Create };
        w.record("ticket_rating", &t.id, action, existing.as_ref().map(snapshot).as_ref(), Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    /// Declares the ticket a major incident (重大事件) run by `manager_id`.
    pub async fn declare_major_incident(
        &self,
        actor: &Principal,
        id: &str,
        manager_id: &str,
        reason: &str,
        expected_version: Option<i64>,
    ) -> Result<TicketRecord> {
        let mut w = self.write(actor).await?;
        let before = load_visible(&mut w.tx, actor, id).await?;
        let expected = expected_version.unwrap_or(before.version);
        let state = state_of(&before)?;
        let mut known = Known::default();
        if is_agent_for(&mut w.tx, manager_id.trim(), &before.project_id, &before.organization_id).await? {
            known.add(RefKey::Agent, manager_id);
        }
        let current = major_of(&before);
        let m = inc::declare_major_incident(&state, current.as_ref(), manager_id, reason, &Actor::from(actor), &known, time(w.now))?;
        let mut after = before.clone();
        after.major = true;
        after.major_manager_id = Some(m.manager_id);
        after.major_reason = Some(m.reason);
        after.major_declared_at = Some(w.now);
        after.major_declared_by = Some(actor_str(&m.declared_by));
        after.updated_at = w.now;
        store::update_ticket(&mut w.tx, &after, expected).await?;
        w.record("ticket", &after.id, AuditAction::Update, Some(&audit_of(&before)), Some(&audit_of(&after))).await?;
        let fresh = store::get_ticket(&mut w.tx, &after.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Downgrades a major incident; the declaration stays in the audit trail.
    pub async fn stand_down_major_incident(
        &self,
        actor: &Principal,
        id: &str,
        reason: &str,
        expected_version: Option<i64>,
    ) -> Result<TicketRecord> {
        let mut w = self.write(actor).await?;
        let before = load_visible(&mut w.tx, actor, id).await?;
        let expected = expected_version.unwrap_or(before.version);
        let state = state_of(&before)?;
        let current = major_of(&before);
        let down = inc::stand_down_major_incident(&state, current.as_ref(), reason, &Actor::from(actor), time(w.now))?;
        let mut after = before.clone();
        after.major = false;
        after.major_manager_id = None;
        after.major_reason = None;
        after.major_declared_at = None;
        after.major_declared_by = None;
        after.updated_at = w.now;
        store::update_ticket(&mut w.tx, &after, expected).await?;
        let mut a = audit_of(&after);
        a["stand_down_reason"] = serde_json::json!(down.reason);
        w.record("ticket", &after.id, AuditAction::Update, Some(&audit_of(&before)), Some(&a)).await?;
        let fresh = store::get_ticket(&mut w.tx, &after.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }
}

/// Adds a comment inside the caller's transaction (the reply form and a reply with files).
pub(crate) async fn comment_in(w: &mut Writer, actor: &Principal, t: &TicketRecord, visibility: &str, body: &str) -> Result<CommentRecord> {
    let state = state_of(t)?;
    let who = Actor::from(actor);
    let visibility = Visibility::parse_field("visibility", visibility)?;
    let comment = inc::new_comment(state.status, &who, visibility, body)?;
    let rec = CommentRecord {
        id: keel_store::new_id(),
        ticket_id: t.id.clone(),
        visibility: comment.visibility.as_str().into(),
        body: comment.body.clone(),
        author_id: actor.user_id.clone(),
        author_kind: actor.kind.as_str().into(),
        created_at: w.now,
        author_name: Some(actor.display_name.clone()),
    };
    store::insert_comment(&mut w.tx, &rec).await?;
    w.record("ticket_comment", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
    let first_response = actor.is_staff() && comment.visibility == Visibility::Public;
    store::touch_ticket(&mut w.tx, &t.id, w.now, first_response).await?;
    if comment.visibility == Visibility::Public {
        let to = crate::notifications::reply_audience(actor, t);
        crate::notifications::announce_ticket(w, "incident.public_reply", t, to, serde_json::json!({ "reply": rec.body })).await?;
    }
    if let Some(cmd) = inc::resume_on_reply(&state, &comment) {
        let policy = policy_in(&mut w.tx).await?;
        let applied = inc::apply(&state, &cmd, &Context::new(time(w.now), &Actor::System, &policy))?;
        let current = store::get_ticket(&mut w.tx, &t.id).await?.ok_or(AppError::NotFound)?;
        persist_applied(w, &current, applied, current.version, "system", Some("resume"), Some("customer replied".into())).await?;
    }
    crate::sla_clocks::refresh(w, &t.id).await?;
    Ok(rec)
}

/// Loads a ticket by id or number and checks the actor may see it; `NotFound` either way.
pub(crate) async fn load_visible(conn: &mut sqlx::AnyConnection, actor: &Principal, id: &str) -> Result<TicketRecord> {
    let id = id.trim();
    let t = match store::get_ticket(conn, id).await? {
        Some(t) => Some(t),
        None => match TicketNumber::parse(id) {
            Some(n) => store::get_ticket_by_number(conn, &n.to_string()).await?,
            None => None,
        },
    };
    let t = t.ok_or(AppError::NotFound)?;
    if !actor.can_see_project(&t.project_id, Some(&t.organization_id)) {
        return Err(AppError::NotFound);
    }
    Ok(t)
}

/// The conversation of a ticket the actor may see: contacts get public replies only.
pub(crate) async fn comments_of(conn: &mut sqlx::AnyConnection, actor: &Principal, ticket_id: &str) -> Result<Vec<CommentRecord>> {
    let comments = store::list_comments(conn, ticket_id, !actor.is_staff()).await?;
    // Belt and braces: the domain's visibility rule, whatever the query did.
    Ok(comments.into_iter().filter(|cm| Visibility::parse(&cm.visibility).is_some_and(|v| inc::may_see_comment(actor.kind, v))).collect())
}

pub(crate) async fn matrix_in(conn: &mut sqlx::AnyConnection) -> Result<PriorityMatrix> {
    match kernel::get_setting(conn, PRIORITY_MATRIX_SETTING).await? {
        Some(json) => serde_json::from_str(&json).map_err(|e| AppError::Internal(format!("priority matrix setting: {e}"))),
        None => Ok(PriorityMatrix::default()),
    }
}

pub(crate) async fn policy_in(conn: &mut sqlx::AnyConnection) -> Result<LifecyclePolicy> {
    let days = match kernel::get_setting(conn, REOPEN_WINDOW_SETTING).await? {
        Some(s) if s.trim().is_empty() || s.trim() == "never" => None,
        Some(s) => Some(s.trim().parse::<u32>().map_err(|e| AppError::Internal(format!("reopen window setting: {e}")))?),
        None => Some(DEFAULT_REOPEN_WINDOW_DAYS),
    };
    Ok(LifecyclePolicy { reopen_window_days: days })
}

async fn log_status(w: &mut Writer, ticket_id: &str, e: &inc::StatusLogEntry, actor_id: &str) -> Result<()> {
    let row = StatusLogRow {
        seq: 0,
        at: e.at.timestamp_millis(),
        from_status: e.from.map(|s| s.as_str().to_string()),
        to_status: e.to.as_str().to_string(),
        pending_reason: e.pending_reason.map(|r| r.as_str().to_string()),
        sla_status: e.sla_status().to_string(),
        action: e.action.map(|a| a.as_str().to_string()),
        actor_id: actor_id.to_string(),
    };
    store::append_status_log(&mut w.tx, ticket_id, &row).await?;
    Ok(())
}

/// Writes the outcome of `apply` onto the ticket (version checked), appends the status log entry
/// and records the change, naming the transition (and its reason) in the audit entry.
pub(crate) async fn persist_applied(
    w: &mut Writer,
    before: &TicketRecord,
    applied: Applied,
    expected_version: i64,
    actor_id: &str,
    transition: Option<&str>,
    reason: Option<String>,
) -> Result<()> {
    let mut after = before.clone();
    write_state(&mut after, &applied.state);
    after.updated_at = w.now;
    store::update_ticket(&mut w.tx, &after, expected_version).await?;
    if let Some(entry) = applied.status_log_entry() {
        log_status(w, &after.id, entry, actor_id).await?;
    }
    let mut a = audit_of(&after);
    if let Some(t) = transition {
        a["transition"] = serde_json::json!(t);
    }
    if let Some(r) = reason.filter(|r| !r.is_empty()) {
        a["reason"] = serde_json::json!(r);
    }
    w.record("ticket", &after.id, AuditAction::Update, Some(&audit_of(before)), Some(&a)).await?;
    Ok(())
}

//! Change management (变更管理, REQUIREMENTS §5): requests for change of type standard (from a
//! pre-approved template, no CAB), normal (risk assessment and CAB) or emergency (emergency CAB,
//! always reviewed); the lifecycle through the domain's transition table; risk by questionnaire;
//! impact from the CMDB; approval steps with quorum, delegation and the customer's approval
//! where their SLA asks for it; the forward schedule of change with freeze windows and
//! conflict detection; change tasks; the post-implementation review; incidents caused by a
//! change.
//!
//! Change management is staff work of the change's project. Others see a change only when they
//! are asked to approve it: listed approvers, their delegates, members of an approver team,
//! and the customer's contacts for a customer approval step.

use crate::cmdb::{CiSummary, CustomerRef, ProjectRef, graph_visibility};
use crate::cmdb_graph::CmdbGraph;
use crate::directory::scope_of;
use crate::incidents::{load_visible, time};
use crate::writer::{Writer, snapshot};
use crate::{App, AppError, Principal, Result};
use chrono::{DateTime, Utc};
use keel_domain::FieldError;
use keel_domain::audit::AuditAction;
use keel_domain::change::{
    self as chg, ApprovalStep, ApprovalWorkflow, Approver, ChangeFacts, ChangeNumber, ChangeStatus, ChangeType, Conflict, Decision,
    DecisionRequest, Delegation, Evaluation, FreezeWindow, Outcome, PlannedChange, PostImplementationReview, Questionnaire, Quorum,
    ReviewOutcome, RiskAssessment, RiskLevel, StandardChangeTemplate, Verdict, Window,
};
use keel_domain::cmdb::Direction;
use keel_domain::error::Errors;
use keel_domain::identity::{AccountKind, Role};
use keel_domain::process::Process;
use keel_domain::validate::{optional_text, required_text};
use keel_store::changes::{
    self as store, ApprovalStepRow, ChangeFilter, ChangeRecord, ChangeStatusRow, DelegationRecord, FreezeRecord, TaskRecord,
    TemplateRecord, VoteRecord,
};
use keel_store::page::{Page, PageRequest};
use keel_store::problems::LinkedTicket;
use keel_store::{accounts, cmdb, directory, kernel};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

pub const CHANGE_ENTITY: &str = "change";
/// The setting holding a custom risk questionnaire (JSON of the domain's `Questionnaire`).
pub const RISK_QUESTIONNAIRE_SETTING: &str = "change.risk_questionnaire";

const TEXT_MAX: usize = 20_000;

/// An approver as a form or the API names it: `user` with a user id, or `group` with a team id
/// (or `organization:<id>` for a customer's contacts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApproverInput {
    pub kind: String,
    pub id: String,
}

/// A step of the approval workflow; `quorum` is `all`, `any` or `at_least` (with `quorum_n`).
#[derive(Debug, Clone, Default)]
pub struct StepInput {
    pub name: String,
    pub approvers: Vec<ApproverInput>,
    pub quorum: String,
    pub quorum_n: Option<u32>,
}

/// A request for change as a form or the API delivers it; times in ms since the epoch.
#[derive(Debug, Clone, Default)]
pub struct NewChange {
    pub project_id: String,
    /// `standard`, `normal` or `emergency`.
    pub change_type: String,
    /// Required for standard changes: the pre-approved template.
    pub template_id: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub reason: Option<String>,
    pub cost_estimate: Option<String>,
    pub implementation_plan: Option<String>,
    pub back_out_plan: Option<String>,
    pub test_plan: Option<String>,
    pub planned_start: Option<i64>,
    pub planned_end: Option<i64>,
    pub ci_ids: Vec<String>,
    pub team_id: Option<String>,
    /// The approval workflow (normal and emergency changes); more can be set until the first vote.
    pub approval_steps: Vec<StepInput>,
}

/// Changes to a change's fields; `None` keeps a value, an empty string clears it. The window is
/// replaced when both ends are given, cleared with `clear_window`.
#[derive(Debug, Clone, Default)]
pub struct ChangePatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub reason: Option<String>,
    pub cost_estimate: Option<String>,
    pub implementation_plan: Option<String>,
    pub back_out_plan: Option<String>,
    pub test_plan: Option<String>,
    pub planned_start: Option<i64>,
    pub planned_end: Option<i64>,
    pub clear_window: bool,
    pub ci_ids: Option<Vec<String>>,
    pub team_id: Option<String>,
}

/// An approval decision; `on_behalf_of` names the approver when the actor stands for several.
#[derive(Debug, Clone, Default)]
pub struct DecisionInput {
    /// `approve` or `reject`.
    pub verdict: String,
    pub reason: Option<String>,
    pub on_behalf_of: Option<ApproverInput>,
}

#[derive(Debug, Clone, Default)]
pub struct ReviewInput {
    /// `successful`, `partially_successful` or `failed`.
    pub outcome: String,
    pub notes: Option<String>,
    pub follow_up: Option<String>,
    /// Ids or numbers of incidents the change caused; they are linked to the change.
    pub caused_incident_ids: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct TemplateInput {
    pub name: String,
    pub description: Option<String>,
    pub implementation_plan: String,
    pub back_out_plan: String,
    /// `low` or `medium`.
    pub risk_level: String,
}

#[derive(Debug, Clone, Default)]
pub struct FreezeInput {
    pub name: String,
    pub starts_at: i64,
    pub ends_at: i64,
    /// Empty: every CI.
    pub ci_ids: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DelegationInput {
    /// Default: the actor. Only change administrators delegate for someone else.
    pub delegator_id: Option<String>,
    pub delegate_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
}

/// The approval of a change: its steps, the votes and where the workflow stands.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalView {
    pub steps: Vec<ApprovalStepRow>,
    pub votes: Vec<VoteRecord>,
    /// `None` while no step is set.
    pub evaluation: Option<Evaluation>,
    /// Whether the asker may vote now.
    pub may_decide: bool,
}

/// What the change's CIs affect if they fail, merged over its CIs.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ChangeImpact {
    /// The affected CIs (the change's own first), each once.
    pub cis: Vec<CiSummary>,
    pub services: Vec<CiSummary>,
    pub projects: Vec<ProjectRef>,
    pub customers: Vec<CustomerRef>,
}

/// A conflict of a change, with the number of the other change for display.
#[derive(Debug, Clone, Serialize)]
pub struct ConflictView {
    #[serde(flatten)]
    pub conflict: Conflict,
    pub change_number: Option<String>,
    pub freeze_name: Option<String>,
}

/// The forward schedule of change for a period.
#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    pub from: i64,
    pub to: i64,
    pub changes: Vec<ScheduledChange>,
    pub freezes: Vec<FreezeRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScheduledChange {
    pub id: String,
    pub number: String,
    pub title: String,
    pub change_type: String,
    pub status: String,
    pub risk_level: Option<String>,
    pub planned_start: i64,
    pub planned_end: i64,
    pub ci_ids: Vec<String>,
    pub conflicts: Vec<ConflictView>,
}

fn internal(what: &str) -> AppError {
    AppError::Internal(format!("stored change has an invalid {what}"))
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn type_of(c: &ChangeRecord) -> Result<ChangeType> {
    ChangeType::parse(&c.change_type).ok_or_else(|| internal("type"))
}

pub fn status_of(c: &ChangeRecord) -> Result<ChangeStatus> {
    ChangeStatus::parse(&c.status).ok_or_else(|| internal("status"))
}

fn window_of(c: &ChangeRecord) -> Option<Window> {
    Window::new(time(c.planned_start?), time(c.planned_end?)).ok()
}

/// Who configures change management: templates, freezes, delegations for others.
fn may_administer(actor: &Principal) -> bool {
    !actor.is_read_only() && (actor.is_admin() || actor.has(Role::ServiceManager) || actor.has(Role::CabMember))
}

fn audit_of(c: &ChangeRecord) -> serde_json::Value {
    let mut v = snapshot(c);
    if let Some(o) = v.as_object_mut() {
        for k in ["status_changed_at", "reviewed_at"] {
            o.remove(k);
        }
    }
    v
}

fn approver_of(kind: &str, id: &str) -> Option<Approver> {
    match kind {
        "user" => Some(Approver::User(id.to_string())),
        "group" => Some(Approver::Group(id.to_string())),
        _ => None,
    }
}

fn approver_parts(a: &Approver) -> (&'static str, &str) {
    match a {
        Approver::User(u) => ("user", u),
        Approver::Group(g) => ("group", g),
    }
}

fn quorum_of(rule: &str, n: Option<i64>) -> Option<Quorum> {
    match rule {
        "all" => Some(Quorum::All),
        "any" => Some(Quorum::Any),
        "at_least" => Some(Quorum::AtLeast { n: u32::try_from(n.unwrap_or(0)).unwrap_or(0) }),
        _ => None,
    }
}

fn workflow_of(steps: &[ApprovalStepRow]) -> Result<Option<ApprovalWorkflow>> {
    if steps.is_empty() {
        return Ok(None);
    }
    let steps = steps
        .iter()
        .map(|s| {
            Ok(ApprovalStep {
                name: s.name.clone(),
                approvers: s.approvers.iter().filter_map(|(k, i)| approver_of(k, i)).collect(),
                quorum: quorum_of(&s.quorum_rule, s.quorum_n).ok_or_else(|| internal("quorum"))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(ApprovalWorkflow { steps }))
}

fn decisions_of(votes: &[VoteRecord]) -> Vec<Decision> {
    votes
        .iter()
        .filter_map(|v| {
            Some(Decision {
                step: usize::try_from(v.step_seq).ok()?,
                approver: approver_of(&v.approver_kind, &v.approver_id)?,
                actor: v.actor_id.clone(),
                verdict: if v.verdict == "reject" { Verdict::Reject } else { Verdict::Approve },
                reason: v.reason.clone(),
                at: time(v.at),
            })
        })
        .collect()
}

async fn evaluation_of(conn: &mut sqlx::AnyConnection, change_id: &str) -> Result<Option<Evaluation>> {
    let steps = store::approval_steps(conn, change_id).await?;
    let Some(wf) = workflow_of(&steps)? else { return Ok(None) };
    let votes = store::votes(conn, change_id).await?;
    Ok(Some(chg::evaluate(&wf, &decisions_of(&votes))))
}

/// Whether the actor takes part in the change's approval: a listed user, a delegate of one, a
/// member of a listed team, or a contact of a listed organisation.
async fn is_approver_of(conn: &mut sqlx::AnyConnection, actor: &Principal, change_id: &str, now: i64) -> Result<bool> {
    let steps = store::approval_steps(conn, change_id).await?;
    if steps.is_empty() {
        return Ok(false);
    }
    let mut who: Vec<String> = vec![actor.user_id.clone()];
    for d in store::delegations_of(conn, &actor.user_id, now).await? {
        if d.delegate_id == actor.user_id && d.starts_at <= now {
            who.push(d.delegator_id);
        }
    }
    let mut groups = HashSet::new();
    for u in &who {
        groups.extend(store::approver_groups_of(conn, u).await?);
    }
    Ok(steps.iter().flat_map(|s| &s.approvers).any(|(k, i)| match k.as_str() {
        "user" => who.contains(i),
        _ => groups.contains(i),
    }))
}

/// Loads a change by id or number that the actor may see; `NotFound` otherwise.
async fn load(conn: &mut sqlx::AnyConnection, actor: &Principal, id: &str, now: i64) -> Result<ChangeRecord> {
    let c = store::get_change(conn, id.trim()).await?.ok_or(AppError::NotFound)?;
    let project_staff = actor.is_staff() && actor.can_see_project(&c.project_id, Some(&c.organization_id));
    if project_staff || is_approver_of(conn, actor, &c.id, now).await? { Ok(c) } else { Err(AppError::NotFound) }
}

/// Loads a change the actor may work on (staff of its project who may write).
async fn load_for_work(conn: &mut sqlx::AnyConnection, actor: &Principal, id: &str, now: i64) -> Result<ChangeRecord> {
    let c = load(conn, actor, id, now).await?;
    if !actor.is_staff() || !actor.can_see_project(&c.project_id, Some(&c.organization_id)) || actor.is_read_only() {
        return Err(AppError::Forbidden);
    }
    Ok(c)
}

async fn log_status(w: &mut Writer, c: &ChangeRecord, from: Option<&str>, reason: Option<String>, actor_id: &str) -> Result<()> {
    let row = ChangeStatusRow {
        seq: 0,
        at: w.now,
        from_status: from.map(str::to_string),
        to_status: c.status.clone(),
        reason,
        actor_id: actor_id.to_string(),
    };
    store::append_status_log(&mut w.tx, &c.id, &row).await?;
    Ok(())
}

/// Merges field errors of several checks into one validation error.
fn merge(results: Vec<std::result::Result<(), AppError>>) -> Result<()> {
    let mut all = Vec::new();
    for r in results {
        match r {
            Ok(()) => {}
            Err(AppError::Validation(v)) => all.extend(v),
            Err(e) => return Err(e),
        }
    }
    if all.is_empty() { Ok(()) } else { Err(AppError::Validation(all)) }
}

impl App {
    async fn change_questionnaire_in(&self, conn: &mut sqlx::AnyConnection) -> Result<Questionnaire> {
        match kernel::get_setting(conn, RISK_QUESTIONNAIRE_SETTING).await? {
            Some(json) => serde_json::from_str(&json).map_err(|e| AppError::Internal(format!("risk questionnaire setting: {e}"))),
            None => Ok(Questionnaire::default_questionnaire()),
        }
    }

    /// The risk questionnaire in force.
    pub async fn risk_questionnaire(&self) -> Result<Questionnaire> {
        let mut c = self.read().await?;
        self.change_questionnaire_in(&mut c).await
    }

    /// Checks the CIs named: each must exist and be visible to the actor.
    async fn check_change_cis(
        &self,
        conn: &mut sqlx::AnyConnection,
        actor: &Principal,
        ci_ids: &[String],
        errs: &mut Errors,
    ) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for (i, ci) in ci_ids.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).enumerate() {
            let found = cmdb::get_ci(conn, ci).await?;
            match found {
                Some(c) if crate::cmdb::sees_ci(actor, c.project_id.as_deref()) => {
                    if !out.contains(&c.id) {
                        out.push(c.id.clone());
                    }
                }
                _ => errs.push(FieldError::new(format!("ci_ids[{i}]"), "unknown_reference", "no such configuration item")),
            }
        }
        Ok(out)
    }

    async fn check_change_team(
        &self,
        conn: &mut sqlx::AnyConnection,
        field: &str,
        team: &Option<String>,
        errs: &mut Errors,
    ) -> Result<Option<String>> {
        let Some(t) = blank(team) else { return Ok(None) };
        if directory::get_team(conn, t).await?.is_some_and(|t| t.active) {
            Ok(Some(t.to_string()))
        } else {
            errs.push(FieldError::new(field, "unknown_reference", "no such team"));
            Ok(None)
        }
    }

    /// Validates approval steps against the directory and the domain's rules.
    async fn check_change_steps(
        &self,
        conn: &mut sqlx::AnyConnection,
        input: &[StepInput],
        source: &str,
        first_seq: i64,
    ) -> Result<Vec<ApprovalStepRow>> {
        let mut errs = Errors::new();
        let mut steps = Vec::new();
        for (i, s) in input.iter().enumerate() {
            let at = |f: &str| format!("approval_steps[{i}].{f}");
            let quorum = match (s.quorum.trim(), s.quorum_n) {
                ("" | "all", _) => Some(Quorum::All),
                ("any", _) => Some(Quorum::Any),
                ("at_least", Some(n)) => Some(Quorum::AtLeast { n }),
                _ => {
                    errs.push(FieldError::new(at("quorum"), "invalid_quorum", "all, any, or at_least with a number"));
                    None
                }
            };
            let mut approvers = Vec::new();
            for a in &s.approvers {
                let id = a.id.trim();
                let known = match a.kind.trim() {
                    "user" => accounts::get_user(conn, id).await?.is_some_and(|u| u.active && u.kind == AccountKind::Staff.as_str()),
                    "group" => match id.strip_prefix("organization:") {
                        Some(org) => directory::get_organization(conn, org).await?.is_some(),
                        None => directory::get_team(conn, id).await?.is_some_and(|t| t.active),
                    },
                    _ => false,
                };
                match approver_of(a.kind.trim(), id) {
                    Some(ap) if known => approvers.push(ap),
                    _ => errs.push(FieldError::new(at("approvers"), "unknown_reference", format!("no such approver: {id}"))),
                }
            }
            if let Some(q) = quorum {
                match ApprovalStep::new(&s.name, approvers.clone(), q) {
                    Ok(step) => steps.push(step),
                    Err(keel_domain::DomainError::Invalid(v)) => {
                        for e in v {
                            errs.push(FieldError::new(at(&e.field), e.code, e.message));
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        errs.finish()?;
        Ok(steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let (rule, n) = match s.quorum {
                    Quorum::All => ("all", None),
                    Quorum::Any => ("any", None),
                    Quorum::AtLeast { n } => ("at_least", Some(i64::from(n))),
                };
                ApprovalStepRow {
                    seq: first_seq + i as i64,
                    name: s.name,
                    quorum_rule: rule.into(),
                    quorum_n: n,
                    source: source.into(),
                    approvers: s.approvers.iter().map(|a| approver_parts(a)).map(|(k, i)| (k.to_string(), i.to_string())).collect(),
                }
            })
            .collect())
    }

    /// The customer's approval step when an active SLA of the project asks for it: any
    /// contact of the customer organisation approves.
    async fn change_customer_step(&self, conn: &mut sqlx::AnyConnection, c: &ChangeRecord, seq: i64) -> Result<Option<ApprovalStepRow>> {
        if !store::customer_approves_changes(conn, &c.project_id).await? {
            return Ok(None);
        }
        Ok(Some(ApprovalStepRow {
            seq,
            name: "Customer".into(),
            quorum_rule: "any".into(),
            quorum_n: None,
            source: "customer".into(),
            approvers: vec![("group".into(), format!("organization:{}", c.organization_id))],
        }))
    }

    // ---- reading ----

    pub async fn get_change(&self, actor: &Principal, id: &str) -> Result<ChangeRecord> {
        let mut c = self.read().await?;
        load(&mut c, actor, id, self.now()).await
    }

    pub async fn list_changes(&self, actor: &Principal, f: &ChangeFilter, page: &PageRequest) -> Result<Page<ChangeRecord>> {
        if !actor.is_staff() {
            return Err(AppError::NotFound);
        }
        let mut c = self.read().await?;
        Ok(store::list_changes(&mut c, &scope_of(actor), f, page).await?)
    }

    pub async fn change_status_log(&self, actor: &Principal, id: &str) -> Result<Vec<ChangeStatusRow>> {
        let mut c = self.read().await?;
        let ch = load(&mut c, actor, id, self.now()).await?;
        Ok(store::status_log(&mut c, &ch.id).await?)
    }

    pub async fn change_history(&self, actor: &Principal, id: &str) -> Result<Vec<keel_store::audit::HistoryEntry>> {
        let ch = self.get_change(actor, id).await?;
        self.history(CHANGE_ENTITY, &ch.id).await
    }

    /// The statuses the actor may move the change to now (those the approval decides excluded).
    pub async fn change_next_statuses(&self, actor: &Principal, ch: &ChangeRecord) -> Result<Vec<ChangeStatus>> {
        if !actor.is_staff() || actor.is_read_only() || !actor.can_see_project(&ch.project_id, Some(&ch.organization_id)) {
            return Ok(vec![]);
        }
        let (ty, from) = (type_of(ch)?, status_of(ch)?);
        Ok(chg::transitions_from(ty, from)
            .map(|t| t.to)
            .filter(|to| !matches!(to, ChangeStatus::Approved | ChangeStatus::Rejected | ChangeStatus::Reviewed))
            .collect())
    }

    pub async fn change_approval(&self, actor: &Principal, id: &str) -> Result<ApprovalView> {
        let mut c = self.read().await?;
        let ch = load(&mut c, actor, id, self.now()).await?;
        let steps = store::approval_steps(&mut c, &ch.id).await?;
        let votes = store::votes(&mut c, &ch.id).await?;
        let evaluation = workflow_of(&steps)?.map(|wf| chg::evaluate(&wf, &decisions_of(&votes)));
        let open = approval_open(type_of(&ch)?, status_of(&ch)?);
        let may_decide = open
            && !actor.is_read_only()
            && evaluation.as_ref().is_some_and(|e| e.outcome == Outcome::Pending)
            && is_approver_of(&mut c, actor, &ch.id, self.now()).await?;
        Ok(ApprovalView { steps, votes, evaluation, may_decide })
    }

    pub async fn change_tasks(&self, actor: &Principal, id: &str) -> Result<Vec<TaskRecord>> {
        let mut c = self.read().await?;
        let ch = load(&mut c, actor, id, self.now()).await?;
        Ok(store::tasks(&mut c, &ch.id).await?)
    }

    /// The incidents linked to the change (caused by it).
    pub async fn change_incidents(&self, actor: &Principal, id: &str) -> Result<Vec<LinkedTicket>> {
        let mut c = self.read().await?;
        let ch = load(&mut c, actor, id, self.now()).await?;
        let all = keel_store::problems::linked_tickets(&mut c, CHANGE_ENTITY, &ch.id).await?;
        Ok(all.into_iter().filter(|t| actor.can_see_project(&t.project_id, Some(&t.organization_id))).collect())
    }

    /// What the change's CIs affect if they fail: CIs, services, projects and customers.
    pub async fn change_impact(&self, actor: &Principal, id: &str) -> Result<ChangeImpact> {
        let ch = self.get_change(actor, id).await?;
        let mut out = ChangeImpact::default();
        let (mut seen, mut services, mut projects, mut customers) = (HashSet::new(), HashSet::new(), HashSet::new(), HashSet::new());
        let mut reached = Vec::new();
        for ci in &ch.ci_ids {
            let r = match self.impact(actor, ci, Direction::Downstream, None).await {
                Ok(r) => r,
                Err(AppError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            if seen.insert(r.origin.id.clone()) {
                out.cis.push(r.origin.clone());
            }
            reached.extend(r.reached.into_iter().map(|e| (e.depth, e.ci)));
            out.services.extend(r.services.into_iter().filter(|s| services.insert(s.id.clone())));
            out.projects.extend(r.projects.into_iter().filter(|p| projects.insert(p.id.clone())));
            out.customers.extend(r.customers.into_iter().filter(|o| customers.insert(o.id.clone())));
        }
        reached.sort_by_key(|(d, _)| *d);
        out.cis.extend(reached.into_iter().map(|(_, c)| c).filter(|c| seen.insert(c.id.clone())));
        Ok(out)
    }

    /// Conflicts of the change's planned window with other changes (same or dependent CIs)
    /// and with freeze windows. Empty without a window.
    pub async fn change_conflicts(&self, actor: &Principal, id: &str) -> Result<Vec<ConflictView>> {
        let ch = self.get_change(actor, id).await?;
        let Some(window) = window_of(&ch) else { return Ok(vec![]) };
        let graph = self.cmdb_graph().await?;
        let mut c = self.read().await?;
        let found = self.change_conflicts_in(&mut c, actor, &graph, &[ch], window.start(), window.end()).await?;
        Ok(found.into_iter().next().map(|(_, v)| v).unwrap_or_default())
    }

    /// Conflicts of each of `candidates` with the visible changes that occupy the schedule
    /// (approved, scheduled, implementing) and with freezes. Dependencies are read from the
    /// cached CI graph (`graph`, taken before `c`), through the CIs the actor may see.
    async fn change_conflicts_in(
        &self,
        c: &mut sqlx::AnyConnection,
        actor: &Principal,
        graph: &CmdbGraph,
        candidates: &[ChangeRecord],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, Vec<ConflictView>)>> {
        let busy: Vec<String> = ["approved", "scheduled", "implementing"].map(String::from).to_vec();
        let others = store::changes_in_window(c, Some(&scope_of(actor)), ms(from), ms(to), &busy).await?;
        let freezes = store::freezes_in_window(c, ms(from), ms(to)).await?;
        let visible = graph_visibility(c, actor, graph).await?;
        let sees = |n: keel_domain::cmdb::NodeIndex| graph.ci(n).project.is_none_or(|p| visible[p as usize]);
        let deps = |dependent: &str, dependency: &str| graph.graph.impacted_by_where(dependent, dependency, None, sees);
        let planned: Vec<PlannedChange> = others
            .iter()
            .filter_map(|o| Some(PlannedChange { id: o.id.clone(), window: window_of(o)?, ci_ids: o.ci_ids.clone() }))
            .collect();
        let fw: Vec<FreezeWindow> = freezes
            .iter()
            .filter_map(|f| {
                Some(FreezeWindow {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    window: Window::new(time(f.starts_at), time(f.ends_at)).ok()?,
                    ci_ids: f.ci_ids.clone(),
                })
            })
            .collect();
        let numbers: HashMap<&str, &str> = others.iter().map(|o| (o.id.as_str(), o.number.as_str())).collect();
        let names: HashMap<&str, &str> = freezes.iter().map(|f| (f.id.as_str(), f.name.as_str())).collect();
        let mut out = Vec::new();
        for cand in candidates {
            let Some(window) = window_of(cand) else {
                out.push((cand.id.clone(), vec![]));
                continue;
            };
            let me = PlannedChange { id: cand.id.clone(), window, ci_ids: cand.ci_ids.clone() };
            let views = chg::conflicts(&me, &planned, &fw, &deps)
                .into_iter()
                .map(|k| {
                    let (change_number, freeze_name) = match &k {
                        Conflict::SameCi { change_id, .. } | Conflict::DependentCi { change_id, .. } => {
                            (numbers.get(change_id.as_str()).map(|s| s.to_string()), None)
                        }
                        Conflict::Freeze { freeze_id, .. } => (None, names.get(freeze_id.as_str()).map(|s| s.to_string())),
                    };
                    ConflictView { conflict: k, change_number, freeze_name }
                })
                .collect();
            out.push((cand.id.clone(), views));
        }
        Ok(out)
    }

    /// The forward schedule of change: the visible changes with a window overlapping
    /// `[from, to)` (not drafts, rejected or cancelled ones), each with its conflicts, and the
    /// freezes in the period.
    pub async fn change_schedule(&self, actor: &Principal, from: i64, to: i64) -> Result<Schedule> {
        if !actor.is_staff() {
            return Err(AppError::NotFound);
        }
        let range = Window::new(time(from), time(to)).map_err(AppError::from)?;
        if range.duration() > chrono::Duration::days(100) {
            return Err(AppError::field("to", "range_too_long", "at most 100 days at once"));
        }
        let graph = self.cmdb_graph().await?;
        let mut c = self.read().await?;
        let statuses: Vec<String> = ChangeStatus::ALL
            .iter()
            .filter(|s| !matches!(s, ChangeStatus::Draft | ChangeStatus::Rejected | ChangeStatus::Cancelled))
            .map(|s| s.as_str().to_string())
            .collect();
        let list = store::changes_in_window(&mut c, Some(&scope_of(actor)), from, to, &statuses).await?;
        let mut conflicts: HashMap<String, Vec<ConflictView>> =
            self.change_conflicts_in(&mut c, actor, &graph, &list, range.start(), range.end()).await?.into_iter().collect();
        let freezes = store::freezes_in_window(&mut c, from, to).await?;
        let changes = list
            .into_iter()
            .map(|ch| ScheduledChange {
                conflicts: conflicts.remove(&ch.id).unwrap_or_default(),
                planned_start: ch.planned_start.unwrap_or_default(),
                planned_end: ch.planned_end.unwrap_or_default(),
                id: ch.id,
                number: ch.number,
                title: ch.title,
                change_type: ch.change_type,
                status: ch.status,
                risk_level: ch.risk_level,
                ci_ids: ch.ci_ids,
            })
            .collect();
        Ok(Schedule { from, to, changes, freezes })
    }

    // ---- writing ----

    /// Raises a request for change (in draft). A standard change takes its plans and risk from
    /// its active template; normal and emergency changes take the approval steps given, and
    /// the customer's step when their SLA asks for it.
    pub async fn create_change(&self, actor: &Principal, input: NewChange) -> Result<ChangeRecord> {
        if !actor.is_staff() {
            return Err(AppError::NotFound);
        }
        let mut w = self.write(actor).await?;
        let mut errs = Errors::new();
        let project = directory::get_project(&mut w.tx, input.project_id.trim())
            .await?
            .filter(|p| actor.can_see_project(&p.id, Some(&p.organization_id)));
        match &project {
            None => errs.push(FieldError::new("project_id", "unknown_reference", "no such service project")),
            Some(p) => {
                if p.status != "active" {
                    errs.push(FieldError::new("project_id", "project_closed", "the service project is closed"));
                }
                self.require_process(&p.id, Process::Change).await?;
            }
        }
        let ty = ChangeType::parse(input.change_type.trim());
        if ty.is_none() {
            errs.push(FieldError::new("change_type", "invalid_choice", "standard, normal or emergency"));
        }
        let title = errs.check(required_text("title", &input.title, 200));
        let texts = check_texts(&mut errs, &input.description, &input.category, &input.reason, &input.cost_estimate, &input.test_plan);
        let mut implementation_plan =
            errs.check(optional_text("implementation_plan", input.implementation_plan.as_deref(), TEXT_MAX)).flatten();
        let mut back_out_plan = errs.check(optional_text("back_out_plan", input.back_out_plan.as_deref(), TEXT_MAX)).flatten();
        let window = check_window(&mut errs, input.planned_start, input.planned_end);
        let ci_ids = self.check_change_cis(&mut w.tx, actor, &input.ci_ids, &mut errs).await?;
        let team_id = self.check_change_team(&mut w.tx, "team_id", &input.team_id, &mut errs).await?;
        let mut risk_level = None;
        let mut template_id = None;
        if ty == Some(ChangeType::Standard) {
            match blank(&input.template_id) {
                None => errs.push(FieldError::new("template_id", "active_template_required", "a standard change comes from a template")),
                Some(t) => match store::get_template(&mut w.tx, t).await? {
                    Some(t) if t.active => {
                        implementation_plan = implementation_plan.or(Some(t.implementation_plan.clone()));
                        back_out_plan = back_out_plan.or(Some(t.back_out_plan.clone()));
                        risk_level = Some(t.risk_level.clone());
                        template_id = Some(t.id);
                    }
                    Some(_) => errs.push(FieldError::new("template_id", "active_template_required", "the template is no longer active")),
                    None => errs.push(FieldError::new("template_id", "unknown_reference", "no such template")),
                },
            }
            if !input.approval_steps.is_empty() {
                errs.push(FieldError::new("approval_steps", "not_allowed", "standard changes are pre-approved"));
            }
        }
        let steps = if ty.is_some_and(|t| t.needs_approval()) && !input.approval_steps.is_empty() {
            self.check_change_steps(&mut w.tx, &input.approval_steps, "cab", 0).await.map(Some)
        } else {
            Ok(None)
        };
        let steps_result = steps.as_ref().map(|_| ()).map_err(|e| match e {
            AppError::Validation(v) => AppError::Validation(v.clone()),
            other => AppError::Internal(other.to_string()),
        });
        merge(vec![errs.finish().map_err(AppError::from), steps_result])?;
        let (project, ty) = (project.ok_or(AppError::NotFound)?, ty.ok_or(AppError::NotFound)?);
        let seq = kernel::next_counter(&mut w.tx, ChangeNumber::PREFIX).await?;
        let number = ChangeNumber::new(u64::try_from(seq).unwrap_or(1)).ok_or_else(|| internal("counter"))?;
        let (description, category, reason, cost_estimate, test_plan) = texts;
        let rec = ChangeRecord {
            id: keel_store::new_id(),
            number: number.to_string(),
            project_id: project.id.clone(),
            organization_id: project.organization_id.clone(),
            change_type: ty.as_str().into(),
            template_id,
            title: title.unwrap_or_default(),
            description,
            category,
            reason,
            status: ChangeStatus::Draft.as_str().into(),
            risk_level,
            cost_estimate,
            implementation_plan,
            back_out_plan,
            test_plan,
            planned_start: window.map(|w| ms(w.start())),
            planned_end: window.map(|w| ms(w.end())),
            team_id,
            status_changed_at: w.now,
            created_by: actor.user_id.clone(),
            created_at: w.now,
            updated_at: w.now,
            version: 1,
            ci_ids,
            ..Default::default()
        };
        store::insert_change(&mut w.tx, &rec).await?;
        log_status(&mut w, &rec, None, None, &actor.user_id).await?;
        let mut all_steps = steps?.unwrap_or_default();
        if ty.needs_approval()
            && let Some(s) = self.change_customer_step(&mut w.tx, &rec, all_steps.len() as i64).await?
        {
            all_steps.push(s);
        }
        store::set_approval_steps(&mut w.tx, &rec.id, &all_steps).await?;
        let mut a = audit_of(&rec);
        a["approval_steps"] = serde_json::json!(all_steps);
        w.record(CHANGE_ENTITY, &rec.id, AuditAction::Create, None, Some(&a)).await?;
        let fresh = store::get_change(&mut w.tx, &rec.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Edits a change. Its content is fixed once approved; the window may still move until
    /// implementation starts.
    pub async fn update_change(&self, actor: &Principal, id: &str, p: ChangePatch, expected_version: Option<i64>) -> Result<ChangeRecord> {
        let mut w = self.write(actor).await?;
        let before = load_for_work(&mut w.tx, actor, id, w.now).await?;
        let status = status_of(&before)?;
        let content = p.title.is_some()
            || p.description.is_some()
            || p.category.is_some()
            || p.reason.is_some()
            || p.cost_estimate.is_some()
            || p.implementation_plan.is_some()
            || p.back_out_plan.is_some()
            || p.test_plan.is_some()
            || p.ci_ids.is_some();
        let editable = matches!(status, ChangeStatus::Draft | ChangeStatus::Submitted | ChangeStatus::Assessed);
        let movable = editable || matches!(status, ChangeStatus::Approved | ChangeStatus::Scheduled);
        if (content && !editable) || !movable {
            return Err(AppError::Conflict {
                code: "change_locked",
                field: None,
                message: format!("a change in status {} cannot be edited", status.as_str()),
            });
        }
        let mut errs = Errors::new();
        let mut after = before.clone();
        if let Some(t) = &p.title
            && let Some(t) = errs.check(required_text("title", t, 200))
        {
            after.title = t;
        }
        let fields: [(&str, &Option<String>, &mut Option<String>, usize); 7] = [
            ("description", &p.description, &mut after.description, TEXT_MAX),
            ("category", &p.category, &mut after.category, 200),
            ("reason", &p.reason, &mut after.reason, TEXT_MAX),
            ("cost_estimate", &p.cost_estimate, &mut after.cost_estimate, 200),
            ("implementation_plan", &p.implementation_plan, &mut after.implementation_plan, TEXT_MAX),
            ("back_out_plan", &p.back_out_plan, &mut after.back_out_plan, TEXT_MAX),
            ("test_plan", &p.test_plan, &mut after.test_plan, TEXT_MAX),
        ];
        for (name, given, slot, max) in fields {
            if let Some(v) = given
                && let Some(v) = errs.check(optional_text(name, Some(v), max))
            {
                *slot = v;
            }
        }
        if p.clear_window {
            if status == ChangeStatus::Scheduled {
                errs.push(FieldError::new("window", "window_required", "a scheduled change keeps a window"));
            }
            after.planned_start = None;
            after.planned_end = None;
        } else if (p.planned_start.is_some() || p.planned_end.is_some())
            && let Some(win) = check_window(&mut errs, p.planned_start, p.planned_end)
        {
            after.planned_start = Some(ms(win.start()));
            after.planned_end = Some(ms(win.end()));
        }
        if let Some(cis) = &p.ci_ids {
            after.ci_ids = self.check_change_cis(&mut w.tx, actor, cis, &mut errs).await?;
        }
        if p.team_id.is_some() {
            after.team_id = self.check_change_team(&mut w.tx, "team_id", &p.team_id, &mut errs).await?;
        }
        errs.finish()?;
        after.updated_at = w.now;
        store::update_change(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await?;
        w.record(CHANGE_ENTITY, &after.id, AuditAction::Update, Some(&audit_of(&before)), Some(&audit_of(&after))).await?;
        let fresh = store::get_change(&mut w.tx, &after.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Replaces the approval steps (normal and emergency changes, before the first vote). The
    /// customer's step, when their SLA asks for it, is kept last.
    pub async fn set_change_approval_steps(&self, actor: &Principal, id: &str, input: Vec<StepInput>) -> Result<ApprovalView> {
        let mut w = self.write(actor).await?;
        let ch = load_for_work(&mut w.tx, actor, id, w.now).await?;
        if !type_of(&ch)?.needs_approval() {
            return Err(AppError::field("approval_steps", "not_allowed", "standard changes are pre-approved"));
        }
        let status = status_of(&ch)?;
        let votes = store::votes(&mut w.tx, &ch.id).await?;
        if !matches!(status, ChangeStatus::Draft | ChangeStatus::Submitted | ChangeStatus::Assessed) || !votes.is_empty() {
            return Err(AppError::Conflict {
                code: "change_locked",
                field: Some("approval_steps".into()),
                message: "the approval has started; its steps are fixed".into(),
            });
        }
        let before = store::approval_steps(&mut w.tx, &ch.id).await?;
        let mut steps = self.check_change_steps(&mut w.tx, &input, "cab", 0).await?;
        if let Some(s) = self.change_customer_step(&mut w.tx, &ch, steps.len() as i64).await? {
            steps.push(s);
        }
        store::set_approval_steps(&mut w.tx, &ch.id, &steps).await?;
        store::touch_change(&mut w.tx, &ch.id, w.now).await?;
        let (b, a) = (serde_json::json!({ "approval_steps": before }), serde_json::json!({ "approval_steps": steps }));
        w.record(CHANGE_ENTITY, &ch.id, AuditAction::Update, Some(&b), Some(&a)).await?;
        w.commit().await?;
        self.change_approval(actor, &ch.id).await
    }

    /// Answers the risk questionnaire; the score gives the change's risk level.
    pub async fn assess_change_risk(
        &self,
        actor: &Principal,
        id: &str,
        answers: BTreeMap<String, String>,
        expected_version: Option<i64>,
    ) -> Result<(ChangeRecord, RiskAssessment)> {
        let mut w = self.write(actor).await?;
        let before = load_for_work(&mut w.tx, actor, id, w.now).await?;
        if type_of(&before)? == ChangeType::Standard {
            return Err(AppError::field("risk_answers", "not_allowed", "a standard change takes its risk from its template"));
        }
        if !matches!(status_of(&before)?, ChangeStatus::Draft | ChangeStatus::Submitted | ChangeStatus::Assessed) {
            return Err(AppError::Conflict { code: "change_locked", field: None, message: "the change is past its assessment".into() });
        }
        let q = self.change_questionnaire_in(&mut w.tx).await?;
        let assessment = q.assess(&answers)?;
        let mut after = before.clone();
        after.risk_answers = Some(serde_json::to_string(&assessment.answers).map_err(|e| AppError::Internal(e.to_string()))?);
        after.risk_score = Some(i64::from(assessment.score));
        after.risk_level = Some(assessment.level.as_str().into());
        after.updated_at = w.now;
        store::update_change(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await?;
        w.record(CHANGE_ENTITY, &after.id, AuditAction::Update, Some(&audit_of(&before)), Some(&audit_of(&after))).await?;
        let fresh = store::get_change(&mut w.tx, &after.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok((fresh, assessment))
    }

    /// Moves the change along its lifecycle; the domain's table decides what is allowed and
    /// what each step needs. Approval and rejection follow the votes ([`App::decide_change`]);
    /// the review is recorded with [`App::review_change`].
    pub async fn transition_change(
        &self,
        actor: &Principal,
        id: &str,
        to: &str,
        reason: Option<String>,
        expected_version: Option<i64>,
    ) -> Result<ChangeRecord> {
        let to = ChangeStatus::parse(to.trim()).ok_or_else(|| AppError::field("to", "invalid_choice", "no such status"))?;
        let mut w = self.write(actor).await?;
        let before = load_for_work(&mut w.tx, actor, id, w.now).await?;
        let after = self.apply_change_transition(&mut w, &before, to, reason.as_deref(), expected_version, &actor.user_id).await?;
        w.commit().await?;
        Ok(after)
    }

    async fn change_facts(&self, w: &mut Writer, c: &ChangeRecord) -> Result<(bool, bool, bool)> {
        let template_active = match &c.template_id {
            Some(t) => store::get_template(&mut w.tx, t).await?.is_some_and(|t| t.active),
            None => false,
        };
        let outcome = evaluation_of(&mut w.tx, &c.id).await?.map(|e| e.outcome);
        Ok((template_active, outcome == Some(Outcome::Approved), outcome == Some(Outcome::Rejected)))
    }

    async fn apply_change_transition(
        &self,
        w: &mut Writer,
        before: &ChangeRecord,
        to: ChangeStatus,
        reason: Option<&str>,
        expected_version: Option<i64>,
        actor_id: &str,
    ) -> Result<ChangeRecord> {
        let (ty, from) = (type_of(before)?, status_of(before)?);
        let (template_active, approved, rejected) = self.change_facts(w, before).await?;
        let has = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
        let facts = ChangeFacts {
            template_active,
            has_plans: has(&before.implementation_plan) && has(&before.back_out_plan),
            risk_assessed: before.risk_level.is_some(),
            approved,
            rejected,
            has_window: window_of(before).is_some(),
            review_recorded: before.review_outcome.is_some(),
            reason,
        };
        chg::check_transition(ty, from, to, &facts)?;
        let reason = reason.map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
        if let Some(r) = &reason
            && r.chars().count() > 4000
        {
            return Err(AppError::field("reason", "too_long", "at most 4000 characters"));
        }
        let mut after = before.clone();
        after.status = to.as_str().into();
        after.status_changed_at = w.now;
        after.updated_at = w.now;
        if reason.is_some() {
            after.status_reason = reason.clone();
        }
        store::update_change(&mut w.tx, &after, expected_version.unwrap_or(before.version)).await?;
        if to == ChangeStatus::Draft {
            // Sent back: whatever changes now is approved afresh.
            store::clear_votes(&mut w.tx, &after.id).await?;
        }
        log_status(w, &after, Some(from.as_str()), reason.clone(), actor_id).await?;
        let mut a = audit_of(&after);
        a["action"] = serde_json::json!(format!("{}_to_{}", from.as_str(), to.as_str()));
        if let Some(r) = &reason {
            a["transition_reason"] = serde_json::json!(r);
        }
        w.record(CHANGE_ENTITY, &after.id, AuditAction::Update, Some(&audit_of(before)), Some(&a)).await?;
        // reaching approval asks the first open step's approvers; the requester hears the outcome
        if approval_open(ty, to) && !approval_open(ty, from) {
            let steps = store::approval_steps(&mut w.tx, &after.id).await?;
            if let Some(wf) = workflow_of(&steps)? {
                let evaluation = chg::evaluate(&wf, &decisions_of(&store::votes(&mut w.tx, &after.id).await?));
                crate::change_notices::announce_open_step(w, &after, &steps, &evaluation).await?;
            }
        }
        if matches!(to, ChangeStatus::Approved | ChangeStatus::Rejected) {
            crate::change_notices::announce_outcome(w, &after, to == ChangeStatus::Approved).await?;
        }
        store::get_change(&mut w.tx, &after.id).await?.ok_or(AppError::NotFound)
    }

    /// Approves or rejects (with a reason) as an approver of the current step, for oneself,
    /// a group, or someone who delegated to the actor. When the workflow is decided, the change
    /// moves to approved or rejected in the same transaction.
    pub async fn decide_change(&self, actor: &Principal, id: &str, input: DecisionInput) -> Result<ApprovalView> {
        let verdict = match input.verdict.trim() {
            "approve" => Verdict::Approve,
            "reject" => Verdict::Reject,
            _ => return Err(AppError::field("verdict", "invalid_choice", "approve or reject")),
        };
        let mut w = self.write(actor).await?;
        let ch = load(&mut w.tx, actor, id, w.now).await?;
        let (ty, status) = (type_of(&ch)?, status_of(&ch)?);
        if !approval_open(ty, status) {
            return Err(AppError::Conflict {
                code: "approval_not_open",
                field: None,
                message: format!("a {} change in status {} is not awaiting approval", ty.as_str(), status.as_str()),
            });
        }
        let steps = store::approval_steps(&mut w.tx, &ch.id).await?;
        let wf = workflow_of(&steps)?.ok_or_else(|| AppError::field("approval_steps", "required", "the change has no approval steps"))?;
        let votes = store::votes(&mut w.tx, &ch.id).await?;
        let decisions = decisions_of(&votes);
        let delegations: Vec<Delegation> = store::delegations_of(&mut w.tx, &actor.user_id, w.now)
            .await?
            .into_iter()
            .filter(|d| d.delegate_id == actor.user_id)
            .map(|d| Delegation {
                delegator: d.delegator_id,
                delegate: d.delegate_id,
                starts_at: time(d.starts_at),
                ends_at: time(d.ends_at),
            })
            .collect();
        let mut groups: HashMap<String, Vec<String>> = HashMap::new();
        groups.insert(actor.user_id.clone(), store::approver_groups_of(&mut w.tx, &actor.user_id).await?);
        for d in &delegations {
            groups.insert(d.delegator.clone(), store::approver_groups_of(&mut w.tx, &d.delegator).await?);
        }
        let is_member = |user: &str, group: &str| groups.get(user).is_some_and(|g| g.iter().any(|x| x == group));
        let on_behalf = match &input.on_behalf_of {
            Some(a) => Some(
                approver_of(a.kind.trim(), a.id.trim())
                    .ok_or_else(|| AppError::field("on_behalf_of", "invalid_choice", "user or group"))?,
            ),
            None => None,
        };
        let request = DecisionRequest {
            actor: &actor.user_id,
            verdict,
            reason: input.reason.as_deref(),
            at: time(w.now),
            on_behalf_of: on_behalf.as_ref(),
        };
        let d = chg::decide(&wf, &decisions, request, &delegations, &is_member)?;
        let (kind, approver_id) = approver_parts(&d.approver);
        let vote = VoteRecord {
            id: keel_store::new_id(),
            step_seq: d.step as i64,
            approver_kind: kind.into(),
            approver_id: approver_id.into(),
            actor_id: actor.user_id.clone(),
            verdict: match d.verdict {
                Verdict::Approve => "approve".into(),
                Verdict::Reject => "reject".into(),
            },
            reason: d.reason.clone(),
            at: w.now,
            actor_name: None,
        };
        store::insert_vote(&mut w.tx, &ch.id, &vote).await?;
        w.record(
            "change_vote",
            &vote.id,
            AuditAction::Create,
            None,
            Some(&serde_json::json!({ "change_id": ch.id, "vote": snapshot(&vote) })),
        )
        .await?;
        let voted_step = d.step;
        let mut all = decisions;
        all.push(d);
        let evaluation = chg::evaluate(&wf, &all);
        let next = match evaluation.outcome {
            Outcome::Approved => Some(ChangeStatus::Approved),
            Outcome::Rejected => Some(ChangeStatus::Rejected),
            Outcome::Pending => None,
        };
        match next {
            Some(to) => {
                self.apply_change_transition(&mut w, &ch, to, None, None, &actor.user_id).await?;
            }
            None => {
                store::touch_change(&mut w.tx, &ch.id, w.now).await?;
                // the step is decided and the next one opens: ask its approvers
                if evaluation.current_step != Some(voted_step) {
                    crate::change_notices::announce_open_step(&mut w, &ch, &steps, &evaluation).await?;
                }
            }
        }
        w.commit().await?;
        self.change_approval(actor, &ch.id).await
    }

    /// Records the post-implementation review and moves the change to reviewed. Incidents the
    /// change caused are linked to it.
    pub async fn review_change(
        &self,
        actor: &Principal,
        id: &str,
        input: ReviewInput,
        expected_version: Option<i64>,
    ) -> Result<ChangeRecord> {
        let mut w = self.write(actor).await?;
        let before = load_for_work(&mut w.tx, actor, id, w.now).await?;
        let outcome = ReviewOutcome::parse(input.outcome.trim());
        let mut incident_ids = Vec::new();
        let mut errs = Errors::new();
        for (i, r) in input.caused_incident_ids.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).enumerate() {
            match load_visible(&mut w.tx, actor, r).await {
                Ok(t) => incident_ids.push(t.id),
                Err(AppError::NotFound) => {
                    errs.push(FieldError::new(format!("caused_incident_ids[{i}]"), "unknown_reference", "no such incident"))
                }
                Err(e) => return Err(e),
            }
        }
        let Some(outcome) = outcome else {
            errs.push(FieldError::new("outcome", "invalid_choice", "successful, partially_successful or failed"));
            return Err(errs.finish().map_err(AppError::from).unwrap_err());
        };
        let review = PostImplementationReview::new(
            status_of(&before)?,
            outcome,
            input.notes.as_deref(),
            incident_ids.clone(),
            input.follow_up.as_deref(),
            &actor.user_id,
            time(w.now),
        );
        let review = match (review, errs.finish()) {
            (Ok(r), Ok(())) => r,
            (Err(keel_domain::DomainError::Invalid(mut a)), Err(keel_domain::DomainError::Invalid(b))) => {
                a.extend(b);
                return Err(AppError::Validation(a));
            }
            (Err(e), _) | (Ok(_), Err(e)) => return Err(e.into()),
        };
        let mut reviewed = before.clone();
        reviewed.review_outcome = Some(review.outcome.as_str().into());
        reviewed.review_notes = review.notes.clone();
        reviewed.review_follow_up = review.follow_up.clone();
        reviewed.reviewed_by = Some(actor.user_id.clone());
        reviewed.reviewed_at = Some(w.now);
        let after = self
            .apply_change_transition(
                &mut w,
                &reviewed,
                ChangeStatus::Reviewed,
                None,
                expected_version.or(Some(before.version)),
                &actor.user_id,
            )
            .await?;
        for t in incident_ids {
            if !keel_store::problems::is_linked(&mut w.tx, &t, CHANGE_ENTITY, &after.id).await? {
                link(&mut w, &t, &after.id, &actor.user_id).await?;
            }
        }
        w.commit().await?;
        Ok(after)
    }

    /// Links incidents to the change as caused by it.
    pub async fn link_change_incidents(&self, actor: &Principal, id: &str, incident_ids: &[String]) -> Result<Vec<LinkedTicket>> {
        let mut w = self.write(actor).await?;
        let ch = load_for_work(&mut w.tx, actor, id, w.now).await?;
        let mut errs = Errors::new();
        let mut ids = Vec::new();
        for (i, r) in incident_ids.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).enumerate() {
            match load_visible(&mut w.tx, actor, r).await {
                Ok(t) if t.kind == "incident" => ids.push(t.id),
                Ok(_) => errs.push(FieldError::new(
                    format!("incident_ids[{i}]"),
                    "not_an_incident",
                    "service requests are not caused by changes",
                )),
                Err(AppError::NotFound) => {
                    errs.push(FieldError::new(format!("incident_ids[{i}]"), "unknown_reference", "no such incident"))
                }
                Err(e) => return Err(e),
            }
        }
        if ids.is_empty() && incident_ids.is_empty() {
            errs.push(FieldError::new("incident_ids", "required", "name at least one incident"));
        }
        errs.finish()?;
        for t in ids {
            if !keel_store::problems::is_linked(&mut w.tx, &t, CHANGE_ENTITY, &ch.id).await? {
                link(&mut w, &t, &ch.id, &actor.user_id).await?;
            }
        }
        store::touch_change(&mut w.tx, &ch.id, w.now).await?;
        w.commit().await?;
        self.change_incidents(actor, &ch.id).await
    }

    /// Adds a task of the change, assigned to a team.
    pub async fn add_change_task(&self, actor: &Principal, id: &str, title: &str, team_id: Option<String>) -> Result<TaskRecord> {
        let mut w = self.write(actor).await?;
        let ch = load_for_work(&mut w.tx, actor, id, w.now).await?;
        if status_of(&ch)?.is_terminal() {
            return Err(AppError::Conflict { code: "change_locked", field: None, message: "the change is closed".into() });
        }
        let mut errs = Errors::new();
        let title = errs.check(required_text("title", title, 200));
        let team_id = self.check_change_team(&mut w.tx, "team_id", &team_id, &mut errs).await?;
        errs.finish()?;
        let t = TaskRecord {
            id: keel_store::new_id(),
            change_id: ch.id.clone(),
            seq: 0,
            title: title.unwrap_or_default(),
            team_id,
            status: "open".into(),
            done_at: None,
            done_by: None,
            created_at: w.now,
            team_name: None,
        };
        let t = store::insert_task(&mut w.tx, &t).await?;
        w.record("change_task", &t.id, AuditAction::Create, None, Some(&snapshot(&t))).await?;
        store::touch_change(&mut w.tx, &ch.id, w.now).await?;
        w.commit().await?;
        Ok(t)
    }

    /// Marks a task done: staff of the change's project, or members of the task's team.
    pub async fn complete_change_task(&self, actor: &Principal, id: &str, task_id: &str) -> Result<TaskRecord> {
        let mut w = self.write(actor).await?;
        let ch = load(&mut w.tx, actor, id, w.now).await?;
        let tasks = store::tasks(&mut w.tx, &ch.id).await?;
        let task = tasks.into_iter().find(|t| t.id == task_id.trim()).ok_or(AppError::NotFound)?;
        let in_team = match &task.team_id {
            Some(team) => store::approver_groups_of(&mut w.tx, &actor.user_id).await?.contains(team),
            None => false,
        };
        if actor.is_read_only() || !actor.is_staff() || !(in_team || actor.can_see_project(&ch.project_id, Some(&ch.organization_id))) {
            return Err(AppError::Forbidden);
        }
        if !store::complete_task(&mut w.tx, &task.id, &actor.user_id, w.now).await? {
            return Err(AppError::Conflict { code: "conflict", field: None, message: "the task is already done".into() });
        }
        let after = TaskRecord { status: "done".into(), done_at: Some(w.now), done_by: Some(actor.user_id.clone()), ..task.clone() };
        w.record("change_task", &task.id, AuditAction::Update, Some(&snapshot(&task)), Some(&snapshot(&after))).await?;
        store::touch_change(&mut w.tx, &ch.id, w.now).await?;
        w.commit().await?;
        Ok(after)
    }

    // ---- templates, freezes, delegations ----

    pub async fn list_change_templates(&self, actor: &Principal, active_only: bool) -> Result<Vec<TemplateRecord>> {
        if !actor.is_staff() {
            return Err(AppError::NotFound);
        }
        let mut c = self.read().await?;
        Ok(store::list_templates(&mut c, active_only).await?)
    }

    /// Records a pre-approved standard change template (change administrators).
    pub async fn create_change_template(&self, actor: &Principal, input: TemplateInput) -> Result<TemplateRecord> {
        if !may_administer(actor) {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let id = keel_store::new_id();
        let level = RiskLevel::parse(input.risk_level.trim())
            .ok_or_else(|| AppError::field("risk_level", "invalid_choice", "low, medium, high or very_high"))?;
        let t = StandardChangeTemplate::new(
            &id,
            &input.name,
            input.description.as_deref(),
            &input.implementation_plan,
            &input.back_out_plan,
            level,
            &actor.user_id,
            time(w.now),
        )?;
        let rec = TemplateRecord {
            id,
            name: t.name,
            description: t.description,
            implementation_plan: t.implementation_plan,
            back_out_plan: t.back_out_plan,
            risk_level: t.risk_level.as_str().into(),
            approved_by: t.approved_by,
            approved_at: w.now,
            active: true,
            created_at: w.now,
            updated_at: w.now,
            version: 1,
        };
        store::insert_template(&mut w.tx, &rec).await?;
        w.record("change_template", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    /// Withdraws (or restores) a template; changes raised from it keep their history.
    pub async fn set_change_template_active(&self, actor: &Principal, id: &str, active: bool) -> Result<TemplateRecord> {
        if !may_administer(actor) {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let before = store::get_template(&mut w.tx, id.trim()).await?.ok_or(AppError::NotFound)?;
        store::set_template_active(&mut w.tx, &before.id, active, w.now, before.version).await?;
        let after = store::get_template(&mut w.tx, &before.id).await?.ok_or(AppError::NotFound)?;
        w.record("change_template", &after.id, AuditAction::Update, Some(&snapshot(&before)), Some(&snapshot(&after))).await?;
        w.commit().await?;
        Ok(after)
    }

    pub async fn list_change_freezes(&self, actor: &Principal, from: i64, to: i64) -> Result<Vec<FreezeRecord>> {
        if !actor.is_staff() {
            return Err(AppError::NotFound);
        }
        let mut c = self.read().await?;
        Ok(store::freezes_in_window(&mut c, from, to).await?)
    }

    /// Declares a freeze (blackout) window, for every CI or listed ones (change administrators).
    pub async fn create_change_freeze(&self, actor: &Principal, input: FreezeInput) -> Result<FreezeRecord> {
        if !may_administer(actor) {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let mut errs = Errors::new();
        let name = errs.check(required_text("name", &input.name, 200));
        let window = check_window(&mut errs, Some(input.starts_at), Some(input.ends_at));
        let ci_ids = self.check_change_cis(&mut w.tx, actor, &input.ci_ids, &mut errs).await?;
        errs.finish()?;
        let window = window.ok_or_else(|| internal("window"))?;
        let rec = FreezeRecord {
            id: keel_store::new_id(),
            name: name.unwrap_or_default(),
            starts_at: ms(window.start()),
            ends_at: ms(window.end()),
            ci_ids,
            created_by: actor.user_id.clone(),
            created_at: w.now,
        };
        store::insert_freeze(&mut w.tx, &rec).await?;
        w.record("change_freeze", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    pub async fn delete_change_freeze(&self, actor: &Principal, id: &str) -> Result<()> {
        if !may_administer(actor) {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let f = store::get_freeze(&mut w.tx, id.trim()).await?.ok_or(AppError::NotFound)?;
        store::delete_freeze(&mut w.tx, &f.id).await?;
        w.record("change_freeze", &f.id, AuditAction::Delete, Some(&snapshot(&f)), None).await?;
        w.commit().await?;
        Ok(())
    }

    /// Delegates one's approvals for a period (or, for change administrators, someone else's).
    pub async fn create_change_delegation(&self, actor: &Principal, input: DelegationInput) -> Result<DelegationRecord> {
        let delegator = blank(&input.delegator_id).unwrap_or(&actor.user_id).to_string();
        if !actor.is_staff() || actor.is_read_only() || (delegator != actor.user_id && !may_administer(actor)) {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let d = Delegation::new(&delegator, input.delegate_id.trim(), time(input.starts_at), time(input.ends_at))?;
        let known = accounts::get_user(&mut w.tx, &d.delegate).await?.is_some_and(|u| u.active && u.kind == AccountKind::Staff.as_str());
        if !known {
            return Err(AppError::field("delegate_id", "unknown_reference", "no such staff user"));
        }
        if accounts::get_user(&mut w.tx, &d.delegator).await?.is_none() {
            return Err(AppError::field("delegator_id", "unknown_reference", "no such user"));
        }
        let rec = DelegationRecord {
            id: keel_store::new_id(),
            delegator_id: d.delegator,
            delegate_id: d.delegate,
            starts_at: ms(d.starts_at),
            ends_at: ms(d.ends_at),
            created_by: actor.user_id.clone(),
            created_at: w.now,
        };
        store::insert_delegation(&mut w.tx, &rec).await?;
        w.record("change_delegation", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    /// The actor's current and future delegations, given and received.
    pub async fn my_change_delegations(&self, actor: &Principal) -> Result<Vec<DelegationRecord>> {
        let mut c = self.read().await?;
        Ok(store::delegations_of(&mut c, &actor.user_id, self.now()).await?)
    }

    /// Sets whether the customer approves the changes of the SLA's project (service managers).
    pub async fn set_sla_change_approval(&self, actor: &Principal, sla_id: &str, on: bool) -> Result<()> {
        if actor.is_read_only() || !(actor.is_admin() || actor.has(Role::ServiceManager)) {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        if !store::set_customer_approval(&mut w.tx, sla_id.trim(), on).await? {
            return Err(AppError::NotFound);
        }
        let (b, a) = (serde_json::json!({ "change_approval_by_customer": !on }), serde_json::json!({ "change_approval_by_customer": on }));
        w.record("sla", sla_id.trim(), AuditAction::Update, Some(&b), Some(&a)).await?;
        w.commit().await?;
        Ok(())
    }

    /// The change a problem's resolution names, by id or number, if the actor may see it.
    pub(crate) async fn change_ref(&self, conn: &mut sqlx::AnyConnection, actor: &Principal, r: &str) -> Result<Option<ChangeRecord>> {
        match load(conn, actor, r, self.now()).await {
            Ok(c) => Ok(Some(c)),
            Err(AppError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Whether votes are taken: normal changes once assessed, emergencies from submission.
fn approval_open(ty: ChangeType, status: ChangeStatus) -> bool {
    match ty {
        ChangeType::Standard => false,
        ChangeType::Normal => status == ChangeStatus::Assessed,
        ChangeType::Emergency => matches!(status, ChangeStatus::Submitted | ChangeStatus::Assessed),
    }
}

type Texts = (Option<String>, Option<String>, Option<String>, Option<String>, Option<String>);

fn check_texts(
    errs: &mut Errors,
    description: &Option<String>,
    category: &Option<String>,
    reason: &Option<String>,
    cost: &Option<String>,
    test_plan: &Option<String>,
) -> Texts {
    (
        errs.check(optional_text("description", description.as_deref(), TEXT_MAX)).flatten(),
        errs.check(optional_text("category", category.as_deref(), 200)).flatten(),
        errs.check(optional_text("reason", reason.as_deref(), TEXT_MAX)).flatten(),
        errs.check(optional_text("cost_estimate", cost.as_deref(), 200)).flatten(),
        errs.check(optional_text("test_plan", test_plan.as_deref(), TEXT_MAX)).flatten(),
    )
}

fn check_window(errs: &mut Errors, start: Option<i64>, end: Option<i64>) -> Option<Window> {
    match (start, end) {
        (None, None) => None,
        (Some(s), Some(e)) => match Window::check(time(s), time(e)) {
            Ok(w) => Some(w),
            Err(_) => {
                errs.push(FieldError::new("planned_end", "end_not_after_start", "the window must end after it starts"));
                None
            }
        },
        (None, Some(_)) => {
            errs.push(FieldError::new("planned_start", "required", "the window needs a start"));
            None
        }
        (Some(_), None) => {
            errs.push(FieldError::new("planned_end", "required", "the window needs an end"));
            None
        }
    }
}

async fn link(w: &mut Writer, ticket_id: &str, change_id: &str, actor_id: &str) -> Result<()> {
    let l = keel_store::incidents::LinkRecord {
        id: keel_store::new_id(),
        ticket_id: ticket_id.to_string(),
        target_type: CHANGE_ENTITY.to_string(),
        target_id: change_id.to_string(),
        created_by: actor_id.to_string(),
        created_at: w.now,
    };
    keel_store::incidents::insert_link(&mut w.tx, &l).await?;
    w.record("ticket_link", &l.id, AuditAction::Create, None, Some(&snapshot(&l))).await?;
    Ok(())
}

/// How strictly modifications of live CIs must reference a change (`cmdb.change_control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeControl {
    Off,
    /// Accept, and note the missing or unsuitable change in the audit entry.
    Warn,
    /// Refuse without a change in implementation that lists the CI.
    Enforce,
}

impl ChangeControl {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(ChangeControl::Off),
            "warn" => Some(ChangeControl::Warn),
            "enforce" => Some(ChangeControl::Enforce),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeControl::Off => "off",
            ChangeControl::Warn => "warn",
            ChangeControl::Enforce => "enforce",
        }
    }
}

pub const CHANGE_CONTROL_SETTING: &str = "cmdb.change_control";

impl App {
    async fn change_control_in(&self, conn: &mut sqlx::AnyConnection) -> Result<ChangeControl> {
        Ok(kernel::get_setting(conn, CHANGE_CONTROL_SETTING).await?.as_deref().and_then(ChangeControl::parse).unwrap_or(ChangeControl::Off))
    }

    pub async fn change_control_mode(&self) -> Result<ChangeControl> {
        let mut c = self.read().await?;
        self.change_control_in(&mut c).await
    }

    /// Sets how strictly live CIs need a change (administrators and service managers).
    pub async fn set_change_control_mode(&self, actor: &Principal, mode: &str) -> Result<ChangeControl> {
        if actor.is_read_only() || !(actor.is_admin() || actor.has(Role::ServiceManager)) {
            return Err(AppError::Forbidden);
        }
        let mode = ChangeControl::parse(mode.trim()).ok_or_else(|| AppError::field("mode", "invalid_choice", "off, warn or enforce"))?;
        let mut w = self.write(actor).await?;
        let before = self.change_control_in(&mut w.tx).await?;
        kernel::set_setting(&mut w.tx, CHANGE_CONTROL_SETTING, mode.as_str(), w.now).await?;
        let (b, a) = (serde_json::json!({ "mode": before.as_str() }), serde_json::json!({ "mode": mode.as_str() }));
        w.record("setting", CHANGE_CONTROL_SETTING, AuditAction::Update, Some(&b), Some(&a)).await?;
        w.commit().await?;
        Ok(mode)
    }

    /// Checks the change an update of `ci` references, as the setting says: a live CI is changed
    /// under a change in implementation that lists it. Returns what the audit entry should note.
    pub(crate) async fn change_control(
        &self,
        conn: &mut sqlx::AnyConnection,
        actor: &Principal,
        ci: &keel_store::cmdb::CiRecord,
        change_ref: Option<&str>,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
        let mode = self.change_control_in(conn).await?;
        let change = match change_ref.map(str::trim).filter(|s| !s.is_empty()) {
            Some(r) => Some(
                self.change_ref(conn, actor, r)
                    .await?
                    .ok_or_else(|| AppError::field("change_id", "unknown_reference", "no such change"))?,
            ),
            None => None,
        };
        let mut note = serde_json::Map::new();
        if let Some(c) = &change {
            note.insert("change_id".into(), serde_json::json!(c.id));
        }
        let authorises = change
            .as_ref()
            .is_some_and(|c| c.ci_ids.contains(&ci.id) && ChangeStatus::parse(&c.status).is_some_and(ChangeStatus::authorises_ci_updates));
        if ci.status == "live" && !authorises && mode != ChangeControl::Off {
            let (code, message) = if change.is_some() {
                ("change_not_authorising", "the change is not in implementation or does not list this CI")
            } else {
                ("change_required", "a live CI is changed under an approved change in implementation")
            };
            if mode == ChangeControl::Enforce {
                return Err(AppError::field("change_id", code, message));
            }
            note.insert("change_control_warning".into(), serde_json::json!(code));
        }
        Ok((!note.is_empty()).then_some(note))
    }
}

/// A change whose open approval step waits for the actor (or someone they stand in for).
#[derive(Debug, Clone, Serialize)]
pub struct AwaitingApproval {
    pub change: ChangeRecord,
    /// The name of the step waiting.
    pub step: String,
}

/// Whether the actor administers change management: standard change templates, freezes and
/// other people's delegations (administrators, service managers, CAB members).
pub fn may_administer_changes(actor: &Principal) -> bool {
    may_administer(actor)
}

impl App {
    /// Edits a standard change template (change administrators); editing approves it again in
    /// the editor's name.
    pub async fn update_change_template(
        &self,
        actor: &Principal,
        id: &str,
        input: TemplateInput,
        expected_version: Option<i64>,
    ) -> Result<TemplateRecord> {
        if !may_administer(actor) {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let before = store::get_template(&mut w.tx, id.trim()).await?.ok_or(AppError::NotFound)?;
        if expected_version.is_some_and(|v| v != before.version) {
            return Err(AppError::Stale);
        }
        let level = RiskLevel::parse(input.risk_level.trim())
            .ok_or_else(|| AppError::field("risk_level", "invalid_choice", "low, medium, high or very_high"))?;
        let t = StandardChangeTemplate::new(
            &before.id,
            &input.name,
            input.description.as_deref(),
            &input.implementation_plan,
            &input.back_out_plan,
            level,
            &actor.user_id,
            time(w.now),
        )?;
        let after = TemplateRecord {
            name: t.name,
            description: t.description,
            implementation_plan: t.implementation_plan,
            back_out_plan: t.back_out_plan,
            risk_level: t.risk_level.as_str().into(),
            approved_by: t.approved_by,
            approved_at: w.now,
            updated_at: w.now,
            version: before.version + 1,
            ..before.clone()
        };
        store::update_template(&mut w.tx, &after, before.version).await?;
        w.record("change_template", &after.id, AuditAction::Update, Some(&snapshot(&before)), Some(&snapshot(&after))).await?;
        w.commit().await?;
        Ok(after)
    }

    /// Ends a freeze now (change administrators); a freeze not yet begun is withdrawn.
    pub async fn end_change_freeze(&self, actor: &Principal, id: &str) -> Result<()> {
        if !may_administer(actor) {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let f = store::get_freeze(&mut w.tx, id.trim()).await?.ok_or(AppError::NotFound)?;
        if f.ends_at <= w.now {
            return Err(AppError::Conflict { code: "freeze_over", field: None, message: "the freeze has already ended".into() });
        }
        if f.starts_at >= w.now {
            store::delete_freeze(&mut w.tx, &f.id).await?;
            w.record("change_freeze", &f.id, AuditAction::Delete, Some(&snapshot(&f)), None).await?;
        } else {
            store::set_freeze_end(&mut w.tx, &f.id, w.now).await?;
            let after = FreezeRecord { ends_at: w.now, ..f.clone() };
            w.record("change_freeze", &f.id, AuditAction::Update, Some(&snapshot(&f)), Some(&snapshot(&after))).await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// The changes whose open approval step waits for the actor's vote: as a listed user, a
    /// member of a listed team or organisation, or the delegate of someone listed. Steps the
    /// actor already voted on are left out.
    pub async fn changes_awaiting_me(&self, actor: &Principal) -> Result<Vec<AwaitingApproval>> {
        if actor.is_read_only() {
            return Ok(vec![]);
        }
        let mut c = self.read().await?;
        let now = self.now();
        let mut who = vec![actor.user_id.clone()];
        for d in store::delegations_of(&mut c, &actor.user_id, now).await? {
            if d.delegate_id == actor.user_id && d.starts_at <= now {
                who.push(d.delegator_id);
            }
        }
        let mut groups = Vec::new();
        for u in &who {
            groups.extend(store::approver_groups_of(&mut c, u).await?);
        }
        let ids = store::changes_awaiting(&mut c, &who, &groups).await?;
        let mut out = Vec::new();
        for ch in store::changes_by_ids(&mut c, &ids).await? {
            if !approval_open(type_of(&ch)?, status_of(&ch)?) {
                continue;
            }
            let steps = store::approval_steps(&mut c, &ch.id).await?;
            let Some(wf) = workflow_of(&steps)? else { continue };
            let votes = store::votes(&mut c, &ch.id).await?;
            let ev = chg::evaluate(&wf, &decisions_of(&votes));
            let Some(i) = ev.current_step else { continue };
            let waits = ev.steps[i].undecided.iter().any(|a| match a {
                Approver::User(u) => who.contains(u),
                Approver::Group(g) => groups.contains(g),
            });
            let voted = votes.iter().any(|v| v.step_seq == i as i64 && v.actor_id == actor.user_id);
            if waits && !voted {
                out.push(AwaitingApproval { step: steps[i].name.clone(), change: ch });
            }
        }
        out.sort_by(|a, b| (a.change.planned_start, &a.change.number).cmp(&(b.change.planned_start, &b.change.number)));
        Ok(out)
    }
}

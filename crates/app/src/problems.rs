//! Problem management (REQUIREMENTS §4): raising problems proactively or from incidents,
//! root-cause analysis, workarounds and the lifecycle through the domain's `apply`; what
//! resolving a problem does to its linked incidents; the known error database (search,
//! suggestions for the desk, links to incidents, articles on the customer portal); and the
//! incident trends that point at candidate problems.
//!
//! Problem management is staff work: a customer contact reads nothing of it but the known
//! errors published on the portal for their organisation, and never their root cause.

use crate::directory::scope_of;
use crate::incidents::{actor_str, load_visible, parse_actor, persist_applied, policy_in, state_of, time};
use crate::writer::{Writer, snapshot};
use crate::{App, AppError, Principal, Result};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use keel_domain::audit::AuditAction;
use keel_domain::cmdb::Direction;
use keel_domain::error::{Errors, FieldError};
use keel_domain::identity::AccountKind;
use keel_domain::incident::{self as inc, Actor, Assignment, Ref, TicketKind, TicketNumber};
use keel_domain::notification::{Announcement, Audience};
use keel_domain::problem::{
    self as prb, Action, Command, Context, IncidentFollowUp, KnownError, KnownErrorEntry, KnownErrorNumber, LinkedIncident, ProblemClosure,
    ProblemClosureKind, ProblemForm, ProblemNumber, ProblemResolution, ProblemState, Rca, RcaMethod, Status, Workaround,
};
use keel_domain::process::Process;
use keel_domain::validate::{Locale, optional_text, required_text};
use keel_store::incidents::{self as tickets, CommentRecord};
use keel_store::page::{Page, PageRequest};
use keel_store::problems::{
    self as store, KnownErrorFilter, KnownErrorRecord, LinkedTicket, ProblemFilter, ProblemRecord, ProblemStatusRow, TrendDimension,
};
use keel_store::{accounts, cmdb, directory, kernel, service_level};
use std::collections::{BTreeMap, HashSet};

/// A new problem as a form or the API delivers it.
#[derive(Debug, Clone, Default)]
pub struct NewProblem {
    pub project_id: String,
    pub title: String,
    pub description: Option<String>,
    /// `incident_trend`, `major_incident`, `proactive` (default without incidents) or `supplier`.
    pub source: Option<String>,
    pub priority: Option<String>,
    pub service_id: Option<String>,
    pub ci_ids: Vec<String>,
    /// Ids or numbers (INC-000042) of the incidents it is raised from.
    pub incident_ids: Vec<String>,
    /// Assign at once (starts the investigation).
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
}

/// A ticket being typed, as the known error suggestions read it.
#[derive(Debug, Clone, Default)]
pub struct SuggestInput {
    pub title: String,
    pub description: String,
    /// The configuration items the ticket names.
    pub ci_ids: Vec<String>,
    pub category_id: Option<String>,
}

/// Why a known error is suggested for a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionReason {
    /// Its problem (or an incident of it) names one of the ticket's CIs.
    SameCi,
    /// Its problem names a CI one of the ticket's CIs runs on or depends on.
    RelatedCi,
    /// An incident of its problem has the ticket's category.
    SameCategory,
    /// Its texts share terms with the ticket's title and description.
    Text,
}

impl SuggestionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionReason::SameCi => "same_ci",
            SuggestionReason::RelatedCi => "related_ci",
            SuggestionReason::SameCategory => "same_category",
            SuggestionReason::Text => "text",
        }
    }

    fn weight(self) -> u32 {
        match self {
            SuggestionReason::SameCi => 4,
            SuggestionReason::RelatedCi => 2,
            SuggestionReason::SameCategory | SuggestionReason::Text => 1,
        }
    }
}

/// A suggested known error and why it matched.
#[derive(Debug, Clone)]
pub struct KnownErrorSuggestion {
    pub known_error: KnownErrorRecord,
    pub reasons: Vec<SuggestionReason>,
}

impl KnownErrorSuggestion {
    /// A CI match outranks everything else; ties go to the better text match.
    fn score(&self) -> u32 {
        self.reasons.iter().map(|r| r.weight()).sum()
    }
}

/// Changes to a problem's descriptive fields; `None` keeps a value, an empty string clears it.
#[derive(Debug, Clone, Default)]
pub struct ProblemPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<String>,
    pub service_id: Option<String>,
    pub ci_ids: Option<Vec<String>>,
}

/// A lifecycle step; which fields matter depends on `action` (see `lifecycle::TRANSITIONS`).
#[derive(Debug, Clone, Default)]
pub struct ProblemStep {
    pub action: String,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
    pub rca_method: Option<String>,
    pub findings: Option<String>,
    pub root_cause: Option<String>,
    pub workaround: Option<String>,
    /// Declaring the known error: its language (`en` or `zh-CN`), title and symptoms …
    pub language: Option<String>,
    pub title: Option<String>,
    pub symptoms: Option<String>,
    /// … and optionally the same in the other language.
    pub translation_title: Option<String>,
    pub translation_symptoms: Option<String>,
    pub translation_workaround: Option<String>,
    pub publish_to_portal: Option<bool>,
    pub resolution_notes: Option<String>,
    pub fixing_change_id: Option<String>,
    pub reason: Option<String>,
}

/// Edits of a known error's texts in either language.
#[derive(Debug, Clone, Default)]
pub struct KnownErrorPatch {
    pub title: Option<String>,
    pub symptoms: Option<String>,
    pub translation_title: Option<String>,
    pub translation_symptoms: Option<String>,
    pub translation_workaround: Option<String>,
}

/// A known error as a customer reads it on the portal, in one language, without root cause.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PortalArticle {
    pub id: String,
    pub number: String,
    pub language: String,
    pub title: String,
    pub symptoms: String,
    pub workaround: String,
    pub updated_at: i64,
}

/// Week or month buckets of the trend view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendBucket {
    Week,
    Month,
}

#[derive(Debug, Clone)]
pub struct TrendQuery {
    pub dimension: TrendDimension,
    pub bucket: TrendBucket,
    /// How many buckets back from the current one (1–104).
    pub periods: u32,
    pub project_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrendRow {
    /// The category, service or CI id; `None` for incidents without one.
    pub key: Option<String>,
    pub label: Option<String>,
    /// One count per bucket, oldest first.
    pub counts: Vec<i64>,
    pub total: i64,
    /// The incidents counted, newest first (at most 100), to raise a problem from.
    pub incident_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Trend {
    /// The start of each bucket (Unix ms, UTC), oldest first.
    pub buckets: Vec<i64>,
    /// Most incidents first.
    pub rows: Vec<TrendRow>,
}

/// How many linked incidents the trend row offers to raise a problem from.
pub const TREND_INCIDENTS_MAX: usize = 100;

fn internal(what: &str) -> AppError {
    AppError::Internal(format!("stored problem has an invalid {what}"))
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The domain state of a stored problem and its known error row.
pub fn problem_state(p: &ProblemRecord, ke: Option<&KnownErrorRecord>) -> Result<ProblemState> {
    let number = ProblemNumber::parse(&p.number).ok_or_else(|| internal("number"))?;
    let status = Status::parse(&p.status).ok_or_else(|| internal("status"))?;
    let rca = match (&p.rca_method, &p.rca_findings) {
        (Some(m), Some(f)) => Some(Rca {
            method: RcaMethod::parse(m).ok_or_else(|| internal("rca method"))?,
            findings: f.clone(),
            root_cause: p.root_cause.clone(),
            recorded_at: time(p.rca_recorded_at.unwrap_or(p.created_at)),
            recorded_by: parse_actor(p.rca_recorded_by.as_deref().unwrap_or("system")),
        }),
        _ => None,
    };
    let workaround = p.workaround.as_ref().map(|w| Workaround {
        text: w.clone(),
        recorded_at: time(p.workaround_recorded_at.unwrap_or(p.created_at)),
        recorded_by: parse_actor(p.workaround_recorded_by.as_deref().unwrap_or("system")),
    });
    let known_error = match ke {
        Some(k) => Some(KnownErrorEntry {
            number: KnownErrorNumber::parse(&k.number).ok_or_else(|| internal("known error number"))?,
            title: k.title.clone(),
            symptoms: k.symptoms.clone(),
            publish_to_portal: k.publish_to_portal,
            language: Locale::parse("language", &k.language).map_err(|_| internal("known error language"))?,
            recorded_at: time(k.recorded_at),
        }),
        None => None,
    };
    let resolution = p.resolution_notes.as_ref().map(|n| ProblemResolution {
        notes: n.clone(),
        fixing_change_id: p.fixing_change_id.clone(),
        resolved_at: time(p.resolved_at.unwrap_or(p.status_changed_at)),
        resolved_by: parse_actor(p.resolved_by.as_deref().unwrap_or("system")),
    });
    let closure = match p.closure_kind.as_deref() {
        None => None,
        Some(k) => Some(ProblemClosure {
            kind: match k {
                "resolved" => ProblemClosureKind::Resolved,
                "cancelled" => ProblemClosureKind::Cancelled { reason: p.closure_reason.clone().unwrap_or_default() },
                _ => return Err(internal("closure")),
            },
            closed_at: time(p.closed_at.unwrap_or(p.status_changed_at)),
            closed_by: parse_actor(p.closed_by.as_deref().unwrap_or("system")),
        }),
    };
    Ok(ProblemState {
        id: p.id.clone(),
        number,
        status,
        status_changed_at: time(p.status_changed_at),
        assignment: Assignment { team_id: p.team_id.clone(), agent_id: p.agent_id.clone() },
        rca,
        workaround,
        known_error,
        resolution,
        closure,
        reopen_count: u32::try_from(p.reopen_count).unwrap_or(0),
    })
}

/// Copies a lifecycle state onto the problem row.
fn write_state(p: &mut ProblemRecord, s: &ProblemState) {
    p.status = s.status.as_str().into();
    p.status_changed_at = ms(s.status_changed_at);
    p.team_id = s.assignment.team_id.clone();
    p.agent_id = s.assignment.agent_id.clone();
    p.rca_method = s.rca.as_ref().map(|r| r.method.as_str().into());
    p.rca_findings = s.rca.as_ref().map(|r| r.findings.clone());
    p.root_cause = s.rca.as_ref().and_then(|r| r.root_cause.clone());
    p.rca_recorded_at = s.rca.as_ref().map(|r| ms(r.recorded_at));
    p.rca_recorded_by = s.rca.as_ref().map(|r| actor_str(&r.recorded_by));
    p.workaround = s.workaround.as_ref().map(|w| w.text.clone());
    p.workaround_recorded_at = s.workaround.as_ref().map(|w| ms(w.recorded_at));
    p.workaround_recorded_by = s.workaround.as_ref().map(|w| actor_str(&w.recorded_by));
    p.resolution_notes = s.resolution.as_ref().map(|r| r.notes.clone());
    p.fixing_change_id = s.resolution.as_ref().and_then(|r| r.fixing_change_id.clone());
    p.resolved_at = s.resolution.as_ref().map(|r| ms(r.resolved_at));
    p.resolved_by = s.resolution.as_ref().map(|r| actor_str(&r.resolved_by));
    p.closure_kind = s.closure.as_ref().map(|c| match c.kind {
        ProblemClosureKind::Resolved => "resolved".into(),
        ProblemClosureKind::Cancelled { .. } => "cancelled".into(),
    });
    p.closure_reason = s.closure.as_ref().and_then(|c| match &c.kind {
        ProblemClosureKind::Cancelled { reason } => Some(reason.clone()),
        ProblemClosureKind::Resolved => None,
    });
    p.closed_at = s.closure.as_ref().map(|c| ms(c.closed_at));
    p.closed_by = s.closure.as_ref().map(|c| actor_str(&c.closed_by));
    p.reopen_count = i64::from(s.reopen_count);
}

/// The audited view of a problem (timestamps are in the audit entries themselves).
fn audit_of(p: &ProblemRecord) -> serde_json::Value {
    let mut v = snapshot(p);
    if let Some(o) = v.as_object_mut() {
        for k in ["status_changed_at", "rca_recorded_at", "workaround_recorded_at", "resolved_at", "closed_at"] {
            o.remove(k);
        }
    }
    v
}

fn ke_audit(k: &KnownErrorRecord) -> serde_json::Value {
    let mut v = snapshot(k);
    if let Some(o) = v.as_object_mut() {
        o.remove("recorded_at");
    }
    v
}

/// Problem management is staff work; a contact is answered as if nothing existed.
fn staff_only(actor: &Principal) -> Result<()> {
    if actor.is_staff() { Ok(()) } else { Err(AppError::NotFound) }
}

/// Loads a problem by id or number (PRB-000001) the actor may see; `NotFound` otherwise.
async fn load_problem(conn: &mut sqlx::AnyConnection, actor: &Principal, id: &str) -> Result<ProblemRecord> {
    staff_only(actor)?;
    let id = id.trim();
    let p = match store::get_problem(conn, id).await? {
        Some(p) => Some(p),
        None => match ProblemNumber::parse(id) {
            Some(n) => store::get_problem_by_number(conn, &n.to_string()).await?,
            None => None,
        },
    };
    let p = p.ok_or(AppError::NotFound)?;
    if !actor.can_see_project(&p.project_id, Some(&p.organization_id)) {
        return Err(AppError::NotFound);
    }
    Ok(p)
}

/// Whether the actor may read a known error: staff who see its project; contacts only when
/// it is on the portal (published, open, with a workaround) for their own organisation.
fn may_read_known_error(actor: &Principal, k: &KnownErrorRecord, state: &ProblemState) -> bool {
    if !actor.can_see_project(&k.problem.project_id, Some(&k.problem.organization_id)) {
        return false;
    }
    actor.is_staff() || KnownError::of(state).and_then(|ke| ke.for_portal()).is_some()
}

async fn load_known_error(conn: &mut sqlx::AnyConnection, actor: &Principal, id: &str) -> Result<(KnownErrorRecord, ProblemState)> {
    let k = store::get_known_error(conn, id.trim()).await?.ok_or(AppError::NotFound)?;
    let p = store::get_problem(conn, &k.problem_id).await?.ok_or(AppError::NotFound)?;
    let state = problem_state(&p, Some(&k))?;
    if !may_read_known_error(actor, &k, &state) {
        return Err(AppError::NotFound);
    }
    Ok((k, state))
}

/// The portal's article of a known error in `lang`: the translation when it is written in the
/// reader's language, else the original.
pub fn article_of(k: &KnownErrorRecord, lang: Locale) -> PortalArticle {
    let translated = k.language != lang.as_str() && k.translation_title.is_some();
    let workaround = k.problem.workaround.clone().unwrap_or_default();
    let (title, symptoms, workaround, language) = if translated {
        (
            k.translation_title.clone().unwrap_or_default(),
            k.translation_symptoms.clone().unwrap_or_else(|| k.symptoms.clone()),
            k.translation_workaround.clone().unwrap_or(workaround),
            lang.as_str().to_string(),
        )
    } else {
        (k.title.clone(), k.symptoms.clone(), workaround, k.language.clone())
    };
    PortalArticle { id: k.id.clone(), number: k.number.clone(), language, title, symptoms, workaround, updated_at: k.updated_at }
}

/// Every text of a known error that search should find, in both languages.
fn known_error_terms(k: &KnownErrorRecord) -> Vec<String> {
    let texts = [
        Some(k.number.as_str()),
        Some(k.title.as_str()),
        Some(k.symptoms.as_str()),
        k.translation_title.as_deref(),
        k.translation_symptoms.as_deref(),
        k.translation_workaround.as_deref(),
        k.problem.workaround.as_deref(),
    ];
    let joined: Vec<&str> = texts.into_iter().flatten().collect();
    prb::search_terms(&joined.join("\n"))
}

/// Validates the optional translation texts of a known error.
fn translations(
    e: &mut Errors,
    title: &Option<String>,
    symptoms: &Option<String>,
    workaround: &Option<String>,
) -> (Option<String>, Option<String>, Option<String>) {
    use keel_domain::problem::known_error::{SYMPTOMS_MAX, TITLE_MAX};
    let t = e.check(optional_text("translation_title", title.as_deref(), TITLE_MAX)).flatten();
    let s = e.check(optional_text("translation_symptoms", symptoms.as_deref(), SYMPTOMS_MAX)).flatten();
    let w = e.check(optional_text("translation_workaround", workaround.as_deref(), prb::record::WORKAROUND_MAX)).flatten();
    if t.is_none() && (s.is_some() || w.is_some()) {
        e.push(FieldError::new("translation_title", "required", "a translation needs its title"));
    }
    (t, s, w)
}

async fn log_status(w: &mut Writer, problem_id: &str, e: &prb::StatusLogEntry, actor_id: &str) -> Result<()> {
    let row = ProblemStatusRow {
        seq: 0,
        at: ms(e.at),
        from_status: e.from.map(|s| s.as_str().to_string()),
        to_status: e.to.as_str().to_string(),
        action: e.action.map(|a| a.as_str().to_string()),
        actor_id: actor_id.to_string(),
    };
    store::append_status_log(&mut w.tx, problem_id, &row).await?;
    Ok(())
}

/// Resolves ids or numbers of tickets to ids (unknown ones are kept, so validation names them).
async fn ticket_ids(
    conn: &mut sqlx::AnyConnection,
    actor: &Principal,
    refs: &[String],
) -> Result<Vec<(String, Option<tickets::TicketRecord>)>> {
    let mut out = Vec::new();
    for r in refs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        match load_visible(conn, actor, r).await {
            Ok(t) => out.push((t.id.clone(), Some(t))),
            Err(AppError::NotFound) => out.push((r.to_string(), None)),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn is_incident(t: &tickets::TicketRecord) -> bool {
    t.kind == TicketKind::Incident.as_str()
}

impl App {
    // ---- problems: reading ----

    pub async fn get_problem(&self, actor: &Principal, id: &str) -> Result<ProblemRecord> {
        let mut c = self.read().await?;
        load_problem(&mut c, actor, id).await
    }

    pub async fn list_problems(&self, actor: &Principal, f: &ProblemFilter, page: &PageRequest) -> Result<Page<ProblemRecord>> {
        staff_only(actor)?;
        let mut c = self.read().await?;
        Ok(store::list_problems(&mut c, &scope_of(actor), f, page).await?)
    }

    /// The incidents linked to a problem.
    pub async fn problem_incidents(&self, actor: &Principal, id: &str) -> Result<Vec<LinkedTicket>> {
        let mut c = self.read().await?;
        let p = load_problem(&mut c, actor, id).await?;
        Ok(store::linked_tickets(&mut c, "problem", &p.id).await?)
    }

    pub async fn problem_status_log(&self, actor: &Principal, id: &str) -> Result<Vec<ProblemStatusRow>> {
        let mut c = self.read().await?;
        let p = load_problem(&mut c, actor, id).await?;
        Ok(store::status_log(&mut c, &p.id).await?)
    }

    /// The audit trail of a problem and of its known error, oldest first.
    pub async fn problem_history(&self, actor: &Principal, id: &str) -> Result<Vec<keel_store::audit::HistoryEntry>> {
        let mut c = self.read().await?;
        let p = load_problem(&mut c, actor, id).await?;
        let ke = store::known_error_of_problem(&mut c, &p.id).await?;
        drop(c);
        let mut h = self.history("problem", &p.id).await?;
        if let Some(k) = ke {
            h.extend(self.history("known_error", &k.id).await?);
            h.sort_by_key(|e| e.at);
        }
        Ok(h)
    }

    /// The known error of a problem, if declared.
    pub async fn problem_known_error(&self, actor: &Principal, id: &str) -> Result<Option<KnownErrorRecord>> {
        let mut c = self.read().await?;
        let p = load_problem(&mut c, actor, id).await?;
        Ok(store::known_error_of_problem(&mut c, &p.id).await?)
    }

    /// The lifecycle actions the actor may take now.
    pub async fn problem_actions(&self, actor: &Principal, p: &ProblemRecord) -> Result<Vec<Action>> {
        if actor.is_read_only() || !actor.is_staff() {
            return Ok(vec![]);
        }
        let mut c = self.read().await?;
        let ke = store::known_error_of_problem(&mut c, &p.id).await?;
        let state = problem_state(p, ke.as_ref())?;
        let who = Actor::from(actor);
        Ok(prb::available_actions(&state, &Context::new(time(self.now()), &who)))
    }

    // ---- problems: writing ----

    /// Raises a problem, proactively or from incidents (linked in the same transaction). Given
    /// a team or an agent, the investigation starts at once.
    pub async fn create_problem(&self, actor: &Principal, input: NewProblem) -> Result<ProblemRecord> {
        staff_only(actor)?;
        let who = Actor::from(actor);
        let mut w = self.write(actor).await?;
        let project = directory::get_project(&mut w.tx, input.project_id.trim()).await?;
        let project = project.filter(|p| actor.can_see_project(&p.id, Some(&p.organization_id)));
        let mut known: HashSet<(u8, String)> = HashSet::new();
        let mut errs = Errors::new();
        if let Some(p) = &project {
            if p.status != "active" {
                errs.push(FieldError::new("project_id", "project_closed", "the service project is closed"));
            }
            self.require_process(&p.id, Process::Problem).await?;
            known.insert((0, p.id.clone()));
        }
        if let Some(s) = blank(&input.service_id)
            && service_level::get_service(&mut w.tx, s).await?.is_some()
        {
            known.insert((1, s.to_string()));
        }
        for ci in input.ci_ids.iter().map(|s| s.trim()) {
            if cmdb::get_ci(&mut w.tx, ci).await?.is_some() {
                known.insert((2, ci.to_string()));
            }
        }
        let resolved = ticket_ids(&mut w.tx, actor, &input.incident_ids).await?;
        for (i, (id, t)) in resolved.iter().enumerate() {
            match (t, &project) {
                (Some(t), Some(p)) if t.project_id == p.id && is_incident(t) => {
                    known.insert((3, id.clone()));
                }
                (Some(t), Some(_)) if !is_incident(t) => errs.push(FieldError::new(
                    format!("incident_ids[{i}]"),
                    "not_an_incident",
                    "service requests are not caused by problems",
                )),
                (Some(_), Some(_)) => {
                    errs.push(FieldError::new(format!("incident_ids[{i}]"), "other_project", "the incident belongs to another project"))
                }
                _ => {}
            }
        }
        let source = blank(&input.source)
            .map(str::to_string)
            .unwrap_or_else(|| if resolved.len() >= 2 { "incident_trend".into() } else { "proactive".into() });
        let form = ProblemForm {
            project_id: input.project_id.clone(),
            title: input.title.clone(),
            description: input.description.clone(),
            source,
            priority: input.priority.clone(),
            service_id: input.service_id.clone(),
            ci_ids: input.ci_ids.clone(),
            incident_ids: resolved.iter().map(|(id, _)| id.clone()).collect(),
        };
        let refs = |kind: Ref, id: &str| {
            let k = match kind {
                Ref::Project => 0,
                Ref::Service => 1,
                Ref::ConfigurationItem => 2,
                Ref::Incident => 3,
                _ => return false,
            };
            known.contains(&(k, id.to_string()))
        };
        let fields = prb::validate_new_problem(&form, &refs);
        let wants_assignment = blank(&input.team_id).is_some() || blank(&input.agent_id).is_some();
        let assignment = if wants_assignment {
            match self.assignment_for(&mut w, project.as_ref(), &input.team_id, &input.agent_id).await {
                Ok(a) => Some(a),
                Err(AppError::Validation(list)) => {
                    list.into_iter().for_each(|e| errs.push(e));
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
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
        let seq = kernel::next_counter(&mut w.tx, ProblemNumber::PREFIX).await?;
        let number = ProblemNumber::new(u64::try_from(seq).unwrap_or(1)).ok_or_else(|| internal("counter"))?;
        let id = keel_store::new_id();
        let (state, first) = ProblemState::open(&id, number, time(w.now));
        let mut rec = ProblemRecord {
            id: id.clone(),
            number: number.to_string(),
            project_id: project.id.clone(),
            organization_id: project.organization_id.clone(),
            title: fields.title.clone(),
            description: fields.description.clone(),
            source: fields.source.as_str().into(),
            priority: fields.priority.as_str().into(),
            service_id: fields.service_id.clone(),
            ci_ids: fields.ci_ids.clone(),
            created_by: actor.user_id.clone(),
            created_at: w.now,
            updated_at: w.now,
            version: 1,
            ..Default::default()
        };
        write_state(&mut rec, &state);
        store::insert_problem(&mut w.tx, &rec).await?;
        log_status(&mut w, &id, &first, &actor.user_id).await?;
        let mut a = audit_of(&rec);
        a["incident_ids"] = serde_json::json!(fields.incident_ids);
        w.record("problem", &id, AuditAction::Create, None, Some(&a)).await?;
        for ticket_id in &fields.incident_ids {
            link(&mut w, ticket_id, "problem", &id, &actor.user_id).await?;
        }
        if let Some(assignment) = assignment {
            let applied = prb::apply(&state, &Command::Investigate { assignment }, &Context::new(time(w.now), &who))?;
            persist(&mut w, &rec, applied, 1, &actor.user_id, None).await?;
        }
        let fresh = store::get_problem(&mut w.tx, &id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    async fn assignment_for(
        &self,
        w: &mut Writer,
        project: Option<&keel_store::directory::ProjectRecord>,
        team_id: &Option<String>,
        agent_id: &Option<String>,
    ) -> Result<Assignment> {
        let mut ok: HashSet<(bool, String)> = HashSet::new();
        if let Some(team) = blank(team_id)
            && directory::get_team(&mut w.tx, team).await?.is_some_and(|t| t.active)
        {
            ok.insert((true, team.to_string()));
        }
        if let (Some(agent), Some(p)) = (blank(agent_id), project)
            && let Some(u) = accounts::get_user(&mut w.tx, agent).await?
            && u.kind == AccountKind::Staff.as_str()
            && u.active
        {
            let who = crate::auth::principal_of(&mut w.tx, &u).await?;
            if who.can_see_project(&p.id, Some(&p.organization_id)) && !who.is_read_only() {
                ok.insert((false, agent.to_string()));
            }
        }
        let refs = |kind: Ref, id: &str| match kind {
            Ref::Team => ok.contains(&(true, id.to_string())),
            Ref::Agent => ok.contains(&(false, id.to_string())),
            _ => false,
        };
        Ok(Assignment::new(team_id.as_deref(), agent_id.as_deref(), &refs)?)
    }

    /// Changes a problem's title, description, priority, service or CIs (version checked).
    pub async fn update_problem(
        &self,
        actor: &Principal,
        id: &str,
        patch: ProblemPatch,
        expected_version: Option<i64>,
    ) -> Result<ProblemRecord> {
        let mut w = self.write(actor).await?;
        let before = load_problem(&mut w.tx, actor, id).await?;
        let expected = expected_version.unwrap_or(before.version);
        if expected != before.version {
            return Err(AppError::Stale);
        }
        if !Status::parse(&before.status).is_some_and(Status::is_open) {
            return Err(AppError::Conflict {
                code: "problem_closed",
                field: None,
                message: "a resolved or closed problem is not edited".into(),
            });
        }
        let mut e = Errors::new();
        let mut after = before.clone();
        if let Some(t) = &patch.title
            && let Some(t) = e.check(required_text("title", t, prb::fields::TITLE_MAX))
        {
            after.title = t;
        }
        if let Some(d) = &patch.description
            && let Some(d) = e.check(optional_text("description", Some(d), prb::fields::DESCRIPTION_MAX))
        {
            after.description = d;
        }
        if let Some(p) = &patch.priority
            && let Some(p) = e.check(inc::Priority::from_input("priority", p))
        {
            after.priority = p.as_str().into();
        }
        if let Some(s) = &patch.service_id {
            let s = s.trim();
            if s.is_empty() {
                after.service_id = None;
            } else if service_level::get_service(&mut w.tx, s).await?.is_some() {
                after.service_id = Some(s.to_string());
            } else {
                e.push(FieldError::new("service_id", "not_found", "no such service"));
            }
        }
        if let Some(cis) = &patch.ci_ids {
            let mut list = Vec::new();
            for (i, ci) in cis.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).enumerate() {
                if cmdb::get_ci(&mut w.tx, ci).await?.is_some() {
                    if !list.iter().any(|c| c == ci) {
                        list.push(ci.to_string());
                    }
                } else {
                    e.push(FieldError::new(format!("ci_ids[{i}]"), "not_found", "no such configuration item"));
                }
            }
            after.ci_ids = list;
        }
        e.finish()?;
        if after == before {
            w.commit().await?;
            return Ok(before);
        }
        after.updated_at = w.now;
        store::update_problem(&mut w.tx, &after, expected).await?;
        w.record("problem", &after.id, AuditAction::Update, Some(&audit_of(&before)), Some(&audit_of(&after))).await?;
        let fresh = store::get_problem(&mut w.tx, &after.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Links further incidents (ids or numbers) of the problem's project to it.
    pub async fn link_incidents(&self, actor: &Principal, id: &str, incident_refs: &[String]) -> Result<Vec<LinkedTicket>> {
        let mut w = self.write(actor).await?;
        let p = load_problem(&mut w.tx, actor, id).await?;
        if Status::parse(&p.status) == Some(Status::Closed) {
            return Err(AppError::Conflict {
                code: "problem_closed",
                field: None,
                message: "a closed problem takes no more incidents".into(),
            });
        }
        let mut e = Errors::new();
        let resolved = ticket_ids(&mut w.tx, actor, incident_refs).await?;
        if resolved.is_empty() {
            e.push(FieldError::new("incident_ids", "required", "name at least one incident"));
        }
        let mut to_link = Vec::new();
        for (i, (tid, t)) in resolved.iter().enumerate() {
            let field = format!("incident_ids[{i}]");
            match t {
                None => e.push(FieldError::new(field, "not_found", "no such incident")),
                Some(t) if !is_incident(t) => {
                    e.push(FieldError::new(field, "not_an_incident", "service requests are not caused by problems"))
                }
                Some(t) if t.project_id != p.project_id => {
                    e.push(FieldError::new(field, "other_project", "the incident belongs to another project"))
                }
                Some(_) => {
                    if !store::is_linked(&mut w.tx, tid, "problem", &p.id).await? && !to_link.contains(tid) {
                        to_link.push(tid.clone());
                    }
                }
            }
        }
        e.finish()?;
        for tid in &to_link {
            link(&mut w, tid, "problem", &p.id, &actor.user_id).await?;
        }
        if !to_link.is_empty() {
            store::touch_problem(&mut w.tx, &p.id, w.now).await?;
        }
        let linked = store::linked_tickets(&mut w.tx, "problem", &p.id).await?;
        w.commit().await?;
        Ok(linked)
    }

    /// Moves a problem through its lifecycle with the domain's `apply`. Declaring the known
    /// error numbers it (KE-…); resolving follows up on every linked incident.
    pub async fn transition_problem(
        &self,
        actor: &Principal,
        id: &str,
        step: ProblemStep,
        expected_version: Option<i64>,
    ) -> Result<ProblemRecord> {
        let mut w = self.write(actor).await?;
        let before = load_problem(&mut w.tx, actor, id).await?;
        let expected = expected_version.unwrap_or(before.version);
        if expected != before.version {
            return Err(AppError::Stale);
        }
        let ke = store::known_error_of_problem(&mut w.tx, &before.id).await?;
        let state = problem_state(&before, ke.as_ref())?;
        let action = Action::parse_field("action", &step.action)?;
        if prb::lifecycle::transition(state.status, action).is_none() {
            let to = action.target().map_or(action.as_str(), Status::as_str);
            return Err(keel_domain::DomainError::InvalidTransition { from: state.status.as_str().into(), to: to.into() }.into());
        }
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut translation = (None, None, None);
        let cmd = match action {
            Action::Investigate | Action::Reassign => {
                let project = directory::get_project(&mut w.tx, &before.project_id).await?;
                let assignment = self.assignment_for(&mut w, project.as_ref(), &step.team_id, &step.agent_id).await?;
                if action == Action::Investigate { Command::Investigate { assignment } } else { Command::Reassign { assignment } }
            }
            Action::RecordRca => {
                let method = match blank(&step.rca_method) {
                    None => return Err(AppError::field("rca_method", "required", "choose the analysis method")),
                    Some(m) => RcaMethod::parse_field("rca_method", m)?,
                };
                Command::RecordRca { method, findings: text(&step.findings), root_cause: step.root_cause.clone() }
            }
            Action::RecordWorkaround => Command::RecordWorkaround { text: text(&step.workaround) },
            Action::DeclareKnownError => {
                let mut e = Errors::new();
                let language = match blank(&step.language) {
                    None => Some(Locale::En),
                    Some(l) => e.check(Locale::parse("language", l)),
                };
                translation = translations(&mut e, &step.translation_title, &step.translation_symptoms, &step.translation_workaround);
                e.finish()?;
                let seq = kernel::next_counter(&mut w.tx, KnownErrorNumber::PREFIX).await?;
                Command::DeclareKnownError {
                    number: KnownErrorNumber::new(u64::try_from(seq).unwrap_or(1)).ok_or_else(|| internal("counter"))?,
                    title: text(&step.title),
                    symptoms: text(&step.symptoms),
                    publish_to_portal: step.publish_to_portal.unwrap_or(false),
                    language: language.unwrap_or_default(),
                }
            }
            Action::SetPublication => Command::SetPublication { publish_to_portal: step.publish_to_portal.unwrap_or(false) },
            Action::Resolve => {
                let fixing_change_id = match blank(&step.fixing_change_id) {
                    Some(r) => match self.change_ref(&mut w.tx, actor, r).await? {
                        Some(c) => Some(c.id),
                        None => return Err(AppError::field("fixing_change_id", "not_found", "no such change")),
                    },
                    None => None,
                };
                Command::Resolve { notes: text(&step.resolution_notes), fixing_change_id }
            }
            Action::Reopen => Command::Reopen { reason: text(&step.reason) },
            Action::Close => Command::Close,
            Action::Cancel => Command::Cancel { reason: text(&step.reason) },
        };
        let who = Actor::from(actor);
        let applied = prb::apply(&state, &cmd, &Context::new(time(w.now), &who))?;
        let next = applied.state.clone();
        let reason = match &cmd {
            Command::Reopen { reason } | Command::Cancel { reason } => Some(reason.trim().to_string()),
            _ => None,
        };
        let after = persist(&mut w, &before, applied, expected, &actor.user_id, reason).await?;
        // The known error database follows the problem.
        match (&cmd, &next.known_error, ke) {
            (Command::DeclareKnownError { .. }, Some(entry), None) => {
                let (translation_title, translation_symptoms, translation_workaround) = translation;
                let mut rec = KnownErrorRecord {
                    id: keel_store::new_id(),
                    number: entry.number.to_string(),
                    problem_id: after.id.clone(),
                    language: entry.language.as_str().into(),
                    title: entry.title.clone(),
                    symptoms: entry.symptoms.clone(),
                    translation_title,
                    translation_symptoms,
                    translation_workaround,
                    publish_to_portal: entry.publish_to_portal,
                    recorded_at: ms(entry.recorded_at),
                    created_at: w.now,
                    updated_at: w.now,
                    version: 1,
                    ..Default::default()
                };
                store::insert_known_error(&mut w.tx, &rec).await?;
                rec = store::get_known_error(&mut w.tx, &rec.id).await?.ok_or(AppError::NotFound)?;
                store::set_terms(&mut w.tx, &rec.id, &known_error_terms(&rec)).await?;
                w.record("known_error", &rec.id, AuditAction::Create, None, Some(&ke_audit(&rec))).await?;
            }
            (_, Some(entry), Some(old)) => {
                let mut rec = old.clone();
                rec.publish_to_portal = entry.publish_to_portal;
                if rec.publish_to_portal != old.publish_to_portal {
                    rec.updated_at = w.now;
                    store::update_known_error(&mut w.tx, &rec, old.version).await?;
                    w.record("known_error", &rec.id, AuditAction::Update, Some(&ke_audit(&old)), Some(&ke_audit(&rec))).await?;
                }
                let fresh = store::get_known_error(&mut w.tx, &rec.id).await?.ok_or(AppError::NotFound)?;
                store::set_terms(&mut w.tx, &fresh.id, &known_error_terms(&fresh)).await?;
            }
            _ => {}
        }
        if let (Command::Resolve { .. }, Some(resolution)) = (&cmd, &next.resolution) {
            follow_up_incidents(&mut w, &after, next.number, resolution).await?;
        }
        let fresh = store::get_problem(&mut w.tx, &after.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    // ---- known errors ----

    pub async fn get_known_error(&self, actor: &Principal, id: &str) -> Result<KnownErrorRecord> {
        staff_only(actor)?;
        let mut c = self.read().await?;
        Ok(load_known_error(&mut c, actor, id).await?.0)
    }

    pub async fn list_known_errors(&self, actor: &Principal, f: &KnownErrorFilter, page: &PageRequest) -> Result<Page<KnownErrorRecord>> {
        staff_only(actor)?;
        let mut c = self.read().await?;
        Ok(store::list_known_errors(&mut c, &scope_of(actor), f, page).await?)
    }

    /// Searches the known error database: the known errors sharing the most terms with `text`
    /// (at least [`prb::min_hits`]). Contacts search their organisation's portal articles only.
    pub async fn search_known_errors(&self, actor: &Principal, text: &str, limit: i64) -> Result<Vec<KnownErrorRecord>> {
        let terms = prb::search_terms(text);
        let f = KnownErrorFilter { portal_only: !actor.is_staff(), project_id: None };
        let mut c = self.read().await?;
        let min = i64::try_from(prb::min_hits(terms.len())).unwrap_or(1);
        let found = store::search_known_errors(&mut c, &scope_of(actor), &f, &terms, min, limit.clamp(1, 100)).await?;
        Ok(found.into_iter().map(|(k, _)| k).collect())
    }

    /// "Does this match a known error?" for a ticket being typed: the open known errors whose
    /// problem names one of the ticket's CIs (or a CI they run on or depend on), whose
    /// incidents share its category, or whose terms the title and description share — best
    /// first, each with why it matched. CIs the actor may not see are ignored; a contact gets
    /// only the known errors published for their organisation.
    pub async fn suggest_known_errors(&self, actor: &Principal, input: &SuggestInput) -> Result<Vec<KnownErrorSuggestion>> {
        let text = self.search_known_errors(actor, &format!("{}\n{}", input.title, input.description), 10).await?;
        let f = KnownErrorFilter { portal_only: !actor.is_staff(), project_id: None };
        let scope = scope_of(actor);
        let mut c = self.read().await?;
        let mut own = Vec::new();
        for id in input.ci_ids.iter().map(|i| i.trim()).filter(|i| !i.is_empty()).take(inc::fields::MAX_CIS) {
            if let Some(ci) = cmdb::get_ci(&mut c, id).await?
                && crate::cmdb::sees_ci(actor, ci.project_id.as_deref())
                && !own.contains(&ci.id)
            {
                own.push(ci.id);
            }
        }
        drop(c);
        let upstream = self.upstream_cis(actor, &own).await?;
        let mut c = self.read().await?;
        let all: Vec<String> = own.iter().chain(&upstream).cloned().collect();
        let by_ci = store::known_errors_by_cis(&mut c, &scope, &f, &all, 50).await?;
        let by_category = match input.category_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(cat) => store::known_errors_by_category(&mut c, &scope, &f, cat, 20).await?,
            None => vec![],
        };
        let text_ids: Vec<String> = text.iter().map(|k| k.id.clone()).collect();
        let mut records = text;
        for id in by_ci.iter().map(|(k, _)| k).chain(&by_category) {
            if !records.iter().any(|k| &k.id == id)
                && let Some(k) = store::get_known_error(&mut c, id).await?
            {
                records.push(k);
            }
        }
        let mut found: Vec<(usize, KnownErrorSuggestion)> = records
            .into_iter()
            .filter(|k| Status::parse(&k.problem.status).is_some_and(Status::is_open))
            .map(|k| {
                let cis = by_ci.iter().find(|(id, _)| *id == k.id).map(|(_, c)| c.as_slice()).unwrap_or_default();
                let mut reasons = Vec::new();
                if cis.iter().any(|c| own.contains(c)) {
                    reasons.push(SuggestionReason::SameCi);
                } else if !cis.is_empty() {
                    reasons.push(SuggestionReason::RelatedCi);
                }
                if by_category.contains(&k.id) {
                    reasons.push(SuggestionReason::SameCategory);
                }
                let text_rank = text_ids.iter().position(|i| *i == k.id);
                if text_rank.is_some() {
                    reasons.push(SuggestionReason::Text);
                }
                (text_rank.unwrap_or(usize::MAX), KnownErrorSuggestion { known_error: k, reasons })
            })
            .collect();
        found.sort_by(|(ra, a), (rb, b)| b.score().cmp(&a.score()).then(ra.cmp(rb)).then(b.known_error.number.cmp(&a.known_error.number)));
        Ok(found.into_iter().map(|(_, s)| s).take(5).collect())
    }

    /// The CIs that `origins` run on or depend on, two relations deep at most, among those
    /// the actor may see (from the cached CMDB graph; none when no origin is in it).
    async fn upstream_cis(&self, actor: &Principal, origins: &[String]) -> Result<Vec<String>> {
        if origins.is_empty() {
            return Ok(vec![]);
        }
        let g = self.cmdb_graph().await?;
        let in_graph: Vec<&String> = origins.iter().filter(|o| g.graph.contains(o)).collect();
        if in_graph.is_empty() {
            return Ok(vec![]);
        }
        let mut c = self.read().await?;
        let visible = crate::cmdb::graph_visibility(&mut c, actor, &g).await?;
        let t = g.graph.traverse_where(&in_graph, Direction::Upstream, Some(2), |n| g.ci(n).project.is_none_or(|p| visible[p as usize]))?;
        Ok(t.reached().take(50).map(|r| r.id.to_string()).collect())
    }

    /// Edits a known error's texts in either language (staff, while its problem is open).
    pub async fn update_known_error(
        &self,
        actor: &Principal,
        id: &str,
        patch: KnownErrorPatch,
        expected_version: Option<i64>,
    ) -> Result<KnownErrorRecord> {
        staff_only(actor)?;
        let mut w = self.write(actor).await?;
        let (before, state) = load_known_error(&mut w.tx, actor, id).await?;
        let expected = expected_version.unwrap_or(before.version);
        if expected != before.version {
            return Err(AppError::Stale);
        }
        if !state.status.is_open() {
            return Err(AppError::Conflict { code: "problem_closed", field: None, message: "the problem is resolved or closed".into() });
        }
        use keel_domain::problem::known_error::{SYMPTOMS_MAX, TITLE_MAX};
        let mut e = Errors::new();
        let mut after = before.clone();
        if let Some(t) = &patch.title
            && let Some(t) = e.check(required_text("title", t, TITLE_MAX))
        {
            after.title = t;
        }
        if let Some(s) = &patch.symptoms
            && let Some(s) = e.check(required_text("symptoms", s, SYMPTOMS_MAX))
        {
            after.symptoms = s;
        }
        let keep = |new: &Option<String>, old: &Option<String>| if new.is_some() { new.clone() } else { old.clone() };
        let (t, s, w2) = translations(
            &mut e,
            &keep(&patch.translation_title, &before.translation_title),
            &keep(&patch.translation_symptoms, &before.translation_symptoms),
            &keep(&patch.translation_workaround, &before.translation_workaround),
        );
        e.finish()?;
        (after.translation_title, after.translation_symptoms, after.translation_workaround) = (t, s, w2);
        if after == before {
            w.commit().await?;
            return Ok(before);
        }
        after.updated_at = w.now;
        store::update_known_error(&mut w.tx, &after, expected).await?;
        store::set_terms(&mut w.tx, &after.id, &known_error_terms(&after)).await?;
        w.record("known_error", &after.id, AuditAction::Update, Some(&ke_audit(&before)), Some(&ke_audit(&after))).await?;
        let fresh = store::get_known_error(&mut w.tx, &after.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Links a known error to an incident (the desk found the incident matches it).
    pub async fn link_known_error(&self, actor: &Principal, ticket: &str, known_error: &str) -> Result<KnownErrorRecord> {
        staff_only(actor)?;
        let mut w = self.write(actor).await?;
        let t = load_visible(&mut w.tx, actor, ticket).await?;
        let (k, _) = match load_known_error(&mut w.tx, actor, known_error).await {
            Ok(found) => found,
            Err(AppError::NotFound) => return Err(AppError::field("known_error_id", "not_found", "no such known error")),
            Err(e) => return Err(e),
        };
        if !store::is_linked(&mut w.tx, &t.id, "known_error", &k.id).await? {
            link(&mut w, &t.id, "known_error", &k.id, &actor.user_id).await?;
        }
        w.commit().await?;
        Ok(k)
    }

    /// The problems and known errors a ticket is linked to (staff only; contacts see none).
    pub async fn ticket_problem_links(&self, actor: &Principal, ticket: &str) -> Result<(Vec<ProblemRecord>, Vec<KnownErrorRecord>)> {
        let mut c = self.read().await?;
        let t = load_visible(&mut c, actor, ticket).await?;
        problem_links_in(&mut c, actor, &t.id).await
    }

    // ---- the customer portal ----

    /// The known errors published for the actor's organisation, in `lang` where translated.
    pub async fn portal_articles(&self, actor: &Principal, lang: Locale, text: Option<&str>) -> Result<Vec<PortalArticle>> {
        let list = match text.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) if !actor.is_staff() => self.search_known_errors(actor, t, 100).await?,
            Some(t) => {
                let terms = prb::search_terms(t);
                let min = i64::try_from(prb::min_hits(terms.len())).unwrap_or(1);
                let f = KnownErrorFilter { portal_only: true, project_id: None };
                let mut c = self.read().await?;
                store::search_known_errors(&mut c, &scope_of(actor), &f, &terms, min, 100).await?.into_iter().map(|(k, _)| k).collect()
            }
            None => {
                let f = KnownErrorFilter { portal_only: true, project_id: None };
                let sort = keel_store::page::SortKey { name: "number", column: "k.number", kind: keel_store::page::SortKind::Text };
                let page = PageRequest { sort, desc: true, after: None, limit: 500 };
                let mut c = self.read().await?;
                store::list_known_errors(&mut c, &scope_of(actor), &f, &page).await?.items
            }
        };
        let mut c = self.read().await?;
        let mut out = Vec::new();
        for k in list {
            if let Some(p) = store::get_problem(&mut c, &k.problem_id).await?
                && may_read_known_error(actor, &k, &problem_state(&p, Some(&k))?)
                && KnownError::of(&problem_state(&p, Some(&k))?).and_then(|x| x.for_portal()).is_some()
            {
                out.push(article_of(&k, lang));
            }
        }
        Ok(out)
    }

    /// One portal article; `NotFound` unless it is published for the actor's organisation.
    pub async fn portal_article(&self, actor: &Principal, id: &str, lang: Locale) -> Result<PortalArticle> {
        let mut c = self.read().await?;
        let (k, state) = load_known_error(&mut c, actor, id).await?;
        if KnownError::of(&state).and_then(|x| x.for_portal()).is_none() {
            return Err(AppError::NotFound);
        }
        Ok(article_of(&k, lang))
    }

    // ---- trends ----

    /// Incident counts by category, service or CI per week or month, to find candidate problems.
    pub async fn incident_trend(&self, actor: &Principal, q: &TrendQuery) -> Result<Trend> {
        staff_only(actor)?;
        let periods = q.periods.clamp(1, 104);
        let now = time(self.now());
        let buckets = bucket_starts(q.bucket, now, periods);
        let from = buckets.first().copied().unwrap_or_default();
        let to = ms(now) + 1;
        let mut c = self.read().await?;
        let points = store::trend_points(&mut c, &scope_of(actor), q.dimension, from, to, q.project_id.as_deref()).await?;
        let mut rows: BTreeMap<Option<String>, TrendRow> = BTreeMap::new();
        for p in points {
            let Some(i) = buckets.iter().rposition(|b| *b <= p.created_at) else { continue };
            let row = rows.entry(p.key.clone()).or_insert_with(|| TrendRow {
                key: p.key.clone(),
                label: p.label.clone(),
                counts: vec![0; buckets.len()],
                total: 0,
                incident_ids: vec![],
            });
            row.counts[i] += 1;
            row.total += 1;
            if row.incident_ids.len() < TREND_INCIDENTS_MAX && !row.incident_ids.contains(&p.ticket_id) {
                row.incident_ids.push(p.ticket_id);
            }
        }
        let mut rows: Vec<TrendRow> = rows.into_values().collect();
        rows.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.label.cmp(&b.label)));
        Ok(Trend { buckets, rows })
    }
}

/// The start instants (UTC) of the last `n` week or month buckets, the current one last.
pub fn bucket_starts(bucket: TrendBucket, now: DateTime<Utc>, n: u32) -> Vec<i64> {
    let today = now.date_naive();
    let mut starts = Vec::new();
    match bucket {
        TrendBucket::Week => {
            let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
            for k in (0..n).rev() {
                let d = monday - Duration::weeks(i64::from(k));
                starts.push(ms(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())));
            }
        }
        TrendBucket::Month => {
            let months = today.year() * 12 + today.month0() as i32;
            for k in (0..n).rev() {
                let m = months - k as i32;
                if let Some(d) = chrono::NaiveDate::from_ymd_opt(m.div_euclid(12), m.rem_euclid(12) as u32 + 1, 1) {
                    starts.push(ms(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())));
                }
            }
        }
    }
    starts
}

/// Links a ticket to a problem or known error, audited on the ticket.
async fn link(w: &mut Writer, ticket_id: &str, target_type: &str, target_id: &str, actor_id: &str) -> Result<()> {
    let l = tickets::LinkRecord {
        id: keel_store::new_id(),
        ticket_id: ticket_id.to_string(),
        target_type: target_type.to_string(),
        target_id: target_id.to_string(),
        created_by: actor_id.to_string(),
        created_at: w.now,
    };
    tickets::insert_link(&mut w.tx, &l).await?;
    w.record("ticket_link", &l.id, AuditAction::Create, None, Some(&snapshot(&l))).await?;
    Ok(())
}

/// Writes the outcome of `apply` onto the problem (version checked), appends the status log and
/// records the change, naming the action (and its reason) in the audit entry.
async fn persist(
    w: &mut Writer,
    before: &ProblemRecord,
    applied: prb::Applied,
    expected_version: i64,
    actor_id: &str,
    reason: Option<String>,
) -> Result<ProblemRecord> {
    let mut after = before.clone();
    write_state(&mut after, &applied.state);
    after.updated_at = w.now;
    store::update_problem(&mut w.tx, &after, expected_version).await?;
    if let Some(entry) = applied.status_log_entry() {
        log_status(w, &after.id, entry, actor_id).await?;
    }
    let mut a = audit_of(&after);
    if let Some(Some(action)) = applied.events.iter().find_map(|e| match e {
        prb::Event::StatusChanged(s) => Some(s.action),
        _ => None,
    }) {
        a["transition"] = serde_json::json!(action.as_str());
    }
    if let Some(r) = reason.filter(|r| !r.is_empty()) {
        a["reason"] = serde_json::json!(r);
    }
    w.record("problem", &after.id, AuditAction::Update, Some(&audit_of(before)), Some(&a)).await?;
    after.version = expected_version + 1;
    Ok(after)
}

/// What resolving a problem does to its linked incidents (`linked::follow_ups_on_resolution`):
/// open ones are resolved by the system with a public note, unassigned ones get an internal
/// note for the desk, resolved ones a public note for their reporter; each one's assignee is
/// announced `problem.resolved`.
async fn follow_up_incidents(w: &mut Writer, problem: &ProblemRecord, number: ProblemNumber, resolution: &ProblemResolution) -> Result<()> {
    let linked = store::linked_tickets(&mut w.tx, "problem", &problem.id).await?;
    let list: Vec<LinkedIncident> = linked
        .iter()
        .filter_map(|t| {
            Some(LinkedIncident { id: t.id.clone(), number: TicketNumber::parse(&t.number)?, status: inc::Status::parse(&t.status)? })
        })
        .collect();
    let policy = policy_in(&mut w.tx).await?;
    for f in prb::follow_ups_on_resolution(number, resolution, &list) {
        let (incident_id, visibility, body, follow_up) = match f {
            IncidentFollowUp::Apply { incident_id, command } => {
                let t = tickets::get_ticket(&mut w.tx, &incident_id).await?.ok_or(AppError::NotFound)?;
                let state = state_of(&t)?;
                match inc::apply(&state, &command, &inc::Context::new(time(w.now), &Actor::System, &policy)) {
                    Ok(applied) => {
                        persist_applied(w, &t, applied, t.version, "system", Some("resolve"), Some(format!("{number}"))).await?;
                        let body = format!(
                            "{number}: problem resolved, so this incident is resolved / 问题已解决，本事件随之解决。\n{}",
                            resolution.notes
                        );
                        (incident_id, "public", body, "resolved")
                    }
                    Err(_) => {
                        let body =
                            format!("{number}: problem resolved; resolve this incident / 问题已解决，请解决本事件。\n{}", resolution.notes);
                        (incident_id, "internal", body, "triage")
                    }
                }
            }
            IncidentFollowUp::Triage { incident_id } => {
                let body =
                    format!("{number}: problem resolved; this incident awaits triage / 问题已解决，本事件待分派。\n{}", resolution.notes);
                (incident_id, "internal", body, "triage")
            }
            IncidentFollowUp::NotifyReporter { incident_id } => {
                let body = format!("{number}: the underlying cause has been removed / 根本原因已消除。");
                (incident_id, "public", body, "notify_reporter")
            }
        };
        let c = CommentRecord {
            id: keel_store::new_id(),
            ticket_id: incident_id.clone(),
            visibility: visibility.into(),
            body: body.chars().take(inc::comment::BODY_MAX).collect(),
            author_id: "system".into(),
            author_kind: "system".into(),
            created_at: w.now,
            author_name: None,
        };
        tickets::insert_comment(&mut w.tx, &c).await?;
        w.record("ticket_comment", &c.id, AuditAction::Create, None, Some(&snapshot(&c))).await?;
        tickets::touch_ticket(&mut w.tx, &incident_id, w.now, false).await?;
        let mut audience = vec![Audience::Assignee];
        if follow_up == "notify_reporter" {
            audience.push(Audience::Reporter);
        }
        let ticket_number = linked.iter().find(|t| t.id == incident_id).map(|t| t.number.clone()).unwrap_or_default();
        w.announce(&Announcement {
            kind: "problem.resolved".into(),
            entity_type: "ticket".into(),
            entity_id: incident_id.clone(),
            audience,
            vars: serde_json::json!({
                "problem_id": problem.id,
                "problem_number": number.to_string(),
                "problem_title": problem.title,
                "number": ticket_number,
                "follow_up": follow_up,
                "visibility": visibility,
            }),
        })
        .await?;
    }
    Ok(())
}

/// The problems and known errors linked to a visible ticket that the actor may see (staff only).
pub(crate) async fn problem_links_in(
    c: &mut sqlx::AnyConnection,
    actor: &Principal,
    ticket_id: &str,
) -> Result<(Vec<ProblemRecord>, Vec<KnownErrorRecord>)> {
    if !actor.is_staff() {
        return Ok((vec![], vec![]));
    }
    let problems = store::problems_of_ticket(c, ticket_id).await?;
    let kes = store::known_errors_of_ticket(c, ticket_id).await?;
    Ok((
        problems.into_iter().filter(|p| actor.can_see_project(&p.project_id, Some(&p.organization_id))).collect(),
        kes.into_iter().filter(|k| actor.can_see_project(&k.problem.project_id, Some(&k.problem.organization_id))).collect(),
    ))
}

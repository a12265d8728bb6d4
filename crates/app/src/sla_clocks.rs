//! Service level management (§6.1): the live SLA clock of every ticket, escalation when a
//! threshold is crossed, SLA review reminders and expiry, and SLA attainment reports.
//!
//! Which SLA measures a ticket: among the *active* SLAs of the ticket's service project, one
//! that includes the ticket's service when it names one; otherwise one that names no service
//! (it covers the whole project), otherwise any of them. Ties go to the most recently activated
//! (then the greatest id). A ticket no active SLA covers has no clocks.
//!
//! Clocks are stored per ticket and target (`ticket_sla_clocks`) and recomputed with the
//! domain's `compute_clocks` from the status and priority logs, the first response and the
//! public updates: in the transaction of every incident write that can move them, and through
//! the `sla_recompute` job, in batches, when a calendar or an SLA changes. The `sla_escalate`
//! job (every 30 s) fires each escalation rule once per ticket, rule and threshold instant: the
//! firing row's unique index decides, inside the transaction that acts, so concurrent runs and
//! instances fire once. A firing more than [`LATE_AFTER_MS`] after its threshold says it is late.

use crate::directory::scope_of;
use crate::incidents::{persist_applied, policy_in, state_of};
use crate::writer::snapshot;
use crate::{App, AppError, Principal, Result, Writer};
use chrono::{DateTime, Utc};
use keel_domain::audit::AuditAction;
use keel_domain::error::{Errors, FieldError};
use keel_domain::identity::{AccountKind, Role};
use keel_domain::incident::{self as inc, Action, Actor, Assignment, Command, Context, Ref};
use keel_domain::notification::{Announcement, Audience};
use keel_domain::sla::agreement::{SlaAction, SlaStatus};
use keel_domain::sla::target::TargetsSpec;
use keel_domain::sla::{
    BusinessCalendar, ClockContext, ClockPhase, ClockPolicy, ClockState, Priority, SlaTargets, TargetClock, TargetKind, TicketHistory,
    compute_clocks,
};
use keel_store::incidents::TicketRecord;
use keel_store::jobs::{self, NewJob};
use keel_store::service_level as sl_store;
use keel_store::sla_clocks::{self as store, ActiveSla, AttainmentRow, ClockRow, FiringRecord, RuleRecord, TicketClockInput};
use keel_store::{AnyConnection, kernel};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Setting: how far ahead (minutes) "breaching soon" looks for due clocks.
pub const BREACHING_SOON_SETTING: &str = "sla.breaching_soon_minutes";
pub const DEFAULT_BREACHING_SOON_MINUTES: i64 = 60;
/// An escalation fired later than this after its threshold instant is reported as late.
pub const LATE_AFTER_MS: i64 = 120_000;
/// Days before an SLA's review date its review reminder is announced.
pub const REVIEW_NOTICE_DAYS: i64 = 14;
/// Tickets recomputed per transaction.
pub const RECOMPUTE_BATCH: i64 = 1000;
pub const RECOMPUTE_JOB: &str = "sla_recompute";
pub const ESCALATE_JOB: &str = "sla_escalate";
/// Tickets escalated per transaction.
pub const ESCALATE_BATCH: i64 = 50;
/// One-off `sla_escalate` jobs a run with more than a batch to do wakes on PostgreSQL, so
/// other instances share the work (unique keys `sla_escalate.helper.<n>`).
pub const ESCALATE_HELPERS: usize = 3;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

/// Picks the SLA that measures a ticket (the rule is in the module documentation).
pub fn choose_sla<'a>(slas: impl IntoIterator<Item = &'a ActiveSla>, project_id: &str, service_id: Option<&str>) -> Option<&'a ActiveSla> {
    let of_project: Vec<&ActiveSla> = slas.into_iter().filter(|s| s.project_id == project_id).collect();
    let latest = |list: Vec<&'a ActiveSla>| list.into_iter().max_by(|a, b| (a.activated_at, &a.id).cmp(&(b.activated_at, &b.id)));
    if let Some(service) = service_id
        && let Some(s) = latest(of_project.iter().copied().filter(|s| s.service_ids.iter().any(|x| x == service)).collect())
    {
        return Some(s);
    }
    latest(of_project.iter().copied().filter(|s| s.service_ids.is_empty()).collect()).or_else(|| latest(of_project))
}

/// What one SLA measures with, parsed once per run.
struct Measure {
    sla: ActiveSla,
    targets: SlaTargets,
    policy: ClockPolicy,
}

/// Calendars, SLAs and rules loaded once for a batch or a job run.
#[derive(Default)]
pub struct SlaCache {
    calendars: HashMap<String, BusinessCalendar>,
    projects: HashMap<String, Vec<String>>,
    measures: HashMap<String, Measure>,
    rules: HashMap<String, Vec<RuleRecord>>,
}

impl SlaCache {
    /// The SLAs in force for one project and their calendars.
    pub(crate) async fn of_project(conn: &mut AnyConnection, project_id: &str) -> Result<SlaCache> {
        let mut c = SlaCache::default();
        c.load_projects(conn, &[project_id.to_string()]).await?;
        Ok(c)
    }

    async fn load_projects(&mut self, conn: &mut AnyConnection, projects: &[String]) -> Result<()> {
        let missing: Vec<String> = projects.iter().filter(|p| !self.projects.contains_key(*p)).cloned().collect();
        if missing.is_empty() {
            return Ok(());
        }
        let slas = store::active_slas(conn, &missing).await?;
        for p in missing {
            self.projects.insert(p, vec![]);
        }
        for s in slas {
            let spec: TargetsSpec = serde_json::from_str(&s.targets).map_err(internal)?;
            let targets = SlaTargets::from_spec(&spec)?;
            let policy = ClockPolicy::from_spec(&serde_json::from_str(&s.clock_policy).map_err(internal)?)?;
            if !self.calendars.contains_key(&s.calendar_id) {
                let rec = sl_store::get_calendar(conn, &s.calendar_id).await?.ok_or_else(|| internal("SLA calendar missing"))?;
                self.calendars.insert(s.calendar_id.clone(), crate::service_level::business_calendar(&rec)?);
            }
            self.projects.entry(s.project_id.clone()).or_default().push(s.id.clone());
            self.measures.insert(s.id.clone(), Measure { sla: s, targets, policy });
        }
        Ok(())
    }

    fn sla_for(&self, t: &TicketClockInput) -> Option<&Measure> {
        let ids = self.projects.get(&t.project_id)?;
        let slas = ids.iter().filter_map(|id| self.measures.get(id)).map(|m| &m.sla);
        let chosen = choose_sla(slas, &t.project_id, t.service_id.as_deref())?;
        self.measures.get(&chosen.id)
    }

    async fn rules_of(&mut self, conn: &mut AnyConnection, sla_id: &str) -> Result<&[RuleRecord]> {
        if !self.rules.contains_key(sla_id) {
            let r = store::list_rules(conn, sla_id).await?;
            self.rules.insert(sla_id.to_string(), r);
        }
        Ok(self.rules.get(sla_id).map(Vec::as_slice).unwrap_or(&[]))
    }
}

fn state_str(s: ClockState) -> &'static str {
    match s {
        ClockState::Running => "running",
        ClockState::Warning => "warning",
        ClockState::Paused => "paused",
        ClockState::Breached | ClockState::BreachedStopped => "breached",
        ClockState::Met => "met",
    }
}

fn phase_str(p: ClockPhase) -> &'static str {
    match p {
        ClockPhase::Running => "running",
        ClockPhase::Paused => "paused",
        ClockPhase::Stopped => "stopped",
    }
}

fn row_of(ticket_id: &str, m: &Measure, cal: &BusinessCalendar, c: &TargetClock, now: i64) -> ClockRow {
    let warn = m.targets.thresholds().percents().iter().copied().filter(|p| *p < 100).min();
    let warning_at = warn.and_then(|p| match c.thresholds.iter().find(|x| x.percent == p) {
        Some(x) => Some(ms(x.crossed_at)),
        None if c.phase == ClockPhase::Running && c.breached_at.is_none() => {
            let needed = (i64::from(p) * c.target_ms + 99) / 100;
            Some(ms(cal.add_business_millis(time(now), (needed - c.elapsed_ms).max(0))))
        }
        None => None,
    });
    ClockRow {
        ticket_id: ticket_id.to_string(),
        kind: c.kind.as_str().to_string(),
        sla_id: m.sla.id.clone(),
        sla_version: m.sla.version,
        priority: c.priority.as_str().to_ascii_lowercase(),
        target_ms: c.target_ms,
        started_at: ms(c.started_at),
        due_at: c.due_at.map(ms),
        warning_at,
        state: state_str(c.state).to_string(),
        phase: phase_str(c.phase).to_string(),
        elapsed_ms: c.elapsed_ms,
        paused_ms: c.paused_ms,
        met_at: (c.state == ClockState::Met).then_some(c.stopped_at.map(ms)).flatten(),
        breached_at: c.breached_at.map(ms),
        stopped_at: c.stopped_at.map(ms),
        next_threshold_at: c.next_threshold_at.map(ms),
        thresholds: c.thresholds.iter().map(|x| (i64::from(x.percent), ms(x.crossed_at))).collect(),
        needs_check: false,
        computed_at: now,
    }
}

/// The clocks of one ticket as of `now`; `None` when its history cannot be read.
fn compute_rows(t: &TicketClockInput, m: &Measure, cal: &BusinessCalendar, now: i64) -> Option<Vec<ClockRow>> {
    let statuses: Vec<(DateTime<Utc>, String)> = t.status_log.iter().map(|(at, s)| (time(*at), s.clone())).collect();
    let priorities: Vec<(DateTime<Utc>, Priority)> =
        t.priority_log.iter().map(|(at, p)| Priority::parse("priority", p).map(|p| (time(*at), p))).collect::<Result<_, _>>().ok()?;
    let updates: Vec<DateTime<Utc>> = t.public_updates.iter().copied().map(time).collect();
    let history = TicketHistory {
        statuses: &statuses,
        priorities: &priorities,
        first_response_at: t.first_response_at.map(time),
        public_updates: &updates,
    };
    let ctx = ClockContext { calendar: cal, targets: &m.targets, policy: &m.policy };
    match compute_clocks(&history, &ctx, time(now)) {
        Ok(report) => Some(report.clocks().map(|c| row_of(&t.id, m, cal, c, now)).collect()),
        Err(e) => {
            tracing::warn!(ticket = %t.id, error = %e, "SLA clock not computed");
            None
        }
    }
}

/// Recomputes and stores the clocks of the given tickets as of `now`, in the caller's
/// transaction. Crossings not stored before are marked for the escalation job.
pub async fn recompute(conn: &mut AnyConnection, ids: &[String], now: i64, cache: &mut SlaCache) -> Result<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    store::lock_tickets(conn, ids).await?;
    let inputs = store::clock_inputs(conn, ids).await?;
    let mut projects: Vec<String> = inputs.iter().map(|t| t.project_id.clone()).collect();
    projects.sort();
    projects.dedup();
    cache.load_projects(conn, &projects).await?;
    let mut old: HashMap<(String, String), ClockRow> =
        store::clocks_of(conn, ids).await?.into_iter().map(|c| ((c.ticket_id.clone(), c.kind.clone()), c)).collect();
    let changed = changed_clocks(&inputs, &mut old, cache, now);
    // what is left of the old clocks no longer applies (no SLA measures the ticket any more)
    let gone: Vec<(String, String)> = old.into_keys().collect();
    store::delete_clocks(conn, &gone).await?;
    store::upsert_clocks(conn, &changed).await?;
    Ok(inputs.len())
}

/// The clocks of the given tickets as of `now` that differ from their stored clocks, taken out
/// of `old` as they are met; crossings `old` does not hold are marked for the escalation job.
fn changed_clocks(inputs: &[TicketClockInput], old: &mut HashMap<(String, String), ClockRow>, cache: &SlaCache, now: i64) -> Vec<ClockRow> {
    let mut changed = Vec::with_capacity(inputs.len() * 2);
    for t in inputs {
        let Some(m) = cache.sla_for(t) else { continue };
        let Some(cal) = cache.calendars.get(&m.sla.calendar_id) else { continue };
        for mut r in compute_rows(t, m, cal, now).unwrap_or_default() {
            let before = old.remove(&(r.ticket_id.clone(), r.kind.clone()));
            let before = before.as_ref();
            let known = |x: &(i64, i64)| before.is_some_and(|b| b.thresholds.contains(x) || b.breached_at == Some(x.1) && x.0 == 100);
            let breach_new = r.breached_at.is_some() && before.is_none_or(|b| b.breached_at != r.breached_at);
            r.needs_check = before.is_some_and(|b| b.needs_check) || r.thresholds.iter().any(|x| !known(x)) || breach_new;
            if before.is_none_or(|b| !store::same_clock(b, &r)) {
                changed.push(r);
            }
        }
    }
    changed
}

/// Starts the clocks of a ticket created in this transaction from what the write knows (its
/// logs so far), without reading them back; `cache` holds the SLAs of its project.
pub(crate) async fn start_clocks(w: &mut Writer, ticket: &TicketClockInput, cache: &SlaCache) -> Result<()> {
    let rows = changed_clocks(std::slice::from_ref(ticket), &mut HashMap::new(), cache, w.now);
    store::upsert_clocks(w.conn(), &rows).await?;
    Ok(())
}

/// Refreshes one ticket's clocks inside an incident write.
pub(crate) async fn refresh(w: &mut Writer, ticket_id: &str) -> Result<()> {
    let now = w.now;
    recompute(w.conn(), &[ticket_id.to_string()], now, &mut SlaCache::default()).await?;
    Ok(())
}

/// Queues a recompute of the open tickets a calendar or SLA change affects.
pub(crate) async fn enqueue_recompute(conn: &mut AnyConnection, payload: serde_json::Value, now: i64) -> Result<()> {
    let payload = payload.to_string();
    jobs::enqueue(
        conn,
        &NewJob { kind: RECOMPUTE_JOB, unique_key: None, payload: &payload, schedule: None, run_at: now, max_attempts: 5 },
        now,
    )
    .await?;
    Ok(())
}

/// One escalation rule as a form or the API delivers it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RuleInput {
    /// `first_response`, `resolution` or `update`.
    pub target_kind: String,
    /// A threshold of the SLA (e.g. 75) or 100 (the breach).
    pub percent: i64,
    /// `notify`, `reassign` or `raise_priority`.
    pub action: String,
    #[serde(default)]
    pub audience: Vec<Audience>,
    pub team_id: Option<String>,
    pub agent_id: Option<String>,
}

pub const RULE_ACTIONS: [&str; 3] = ["notify", "reassign", "raise_priority"];

/// A clock as the ticket API and page show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TicketSla {
    pub clocks: Vec<ClockRow>,
    pub firings: Vec<FiringRecord>,
}

/// A visible ticket's clocks, and for staff the escalations fired on it.
pub(crate) async fn ticket_sla_in(c: &mut AnyConnection, actor: &Principal, ticket_id: &str) -> Result<TicketSla> {
    let clocks = store::clocks_of(c, &[ticket_id.to_string()]).await?;
    let firings = if actor.is_staff() { store::firings_of(c, ticket_id).await? } else { vec![] };
    Ok(TicketSla { clocks, firings })
}

/// One line of an attainment table.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct AttainmentGroup {
    pub key: String,
    pub label: String,
    pub met: i64,
    pub breached: i64,
    /// Met as a percentage of met + breached.
    pub percent_met: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Breach {
    pub ticket_id: String,
    pub number: String,
    pub target: String,
    pub due_at: Option<i64>,
    pub breached_at: Option<i64>,
    pub late_by_ms: i64,
    /// The status and priority history, e.g. `new → assigned → pending_customer; p3 → p1`.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttainmentReport {
    pub from: i64,
    pub to: i64,
    pub total: AttainmentGroup,
    pub by_organization: Vec<AttainmentGroup>,
    pub by_project: Vec<AttainmentGroup>,
    pub by_service: Vec<AttainmentGroup>,
    pub by_priority: Vec<AttainmentGroup>,
    pub breaches: Vec<Breach>,
}

fn group(rows: &[AttainmentRow], key: impl Fn(&AttainmentRow) -> (String, String)) -> Vec<AttainmentGroup> {
    let mut map: BTreeMap<String, AttainmentGroup> = BTreeMap::new();
    for r in rows {
        let (k, label) = key(r);
        let g = map.entry(k.clone()).or_insert_with(|| AttainmentGroup { key: k, label, ..Default::default() });
        if r.state == "met" {
            g.met += 1;
        } else {
            g.breached += 1;
        }
    }
    map.into_values().map(finish).collect()
}

fn finish(mut g: AttainmentGroup) -> AttainmentGroup {
    let n = g.met + g.breached;
    g.percent_met = if n == 0 { 100.0 } else { (g.met as f64 * 1000.0 / n as f64).round() / 10.0 };
    g
}

fn csv_field(s: &str) -> String {
    // A leading formula character is neutralised so a spreadsheet shows text, not a formula.
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// An instant as notices show it: minutes, in UTC, said so.
fn notice_time(ms: Option<i64>) -> String {
    ms.and_then(DateTime::from_timestamp_millis).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
}

fn iso(ms: Option<i64>) -> String {
    ms.and_then(DateTime::from_timestamp_millis).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default()
}

impl AttainmentReport {
    /// The report as CSV: the attainment tables, then the breach list.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("section,key,label,met,breached,percent_met\n");
        let tables = [
            ("total", std::slice::from_ref(&self.total)),
            ("organization", self.by_organization.as_slice()),
            ("project", self.by_project.as_slice()),
            ("service", self.by_service.as_slice()),
            ("priority", self.by_priority.as_slice()),
        ];
        for (name, groups) in tables {
            for g in groups {
                out.push_str(&format!(
                    "{name},{},{},{},{},{:.1}\n",
                    csv_field(&g.key),
                    csv_field(&g.label),
                    g.met,
                    g.breached,
                    g.percent_met
                ));
            }
        }
        out.push_str("\nnumber,target,due_at,breached_at,late_by_minutes,reason\n");
        for b in &self.breaches {
            out.push_str(&format!(
                "{},{},{},{},{},{}\n",
                csv_field(&b.number),
                b.target,
                iso(b.due_at),
                iso(b.breached_at),
                b.late_by_ms / 60_000,
                csv_field(&b.reason)
            ));
        }
        out
    }
}

fn history_summary(t: &TicketClockInput) -> String {
    let mut statuses: Vec<&str> = Vec::new();
    for (_, s) in &t.status_log {
        if statuses.last() != Some(&s.as_str()) {
            statuses.push(s);
        }
    }
    let mut priorities: Vec<&str> = Vec::new();
    for (_, p) in &t.priority_log {
        if priorities.last() != Some(&p.as_str()) {
            priorities.push(p);
        }
    }
    format!("{}; {}", statuses.join(" → "), priorities.join(" → "))
}

/// Who may read SLA attainment: service and project managers, management, auditors,
/// administrators (their scope), and customer contacts (their organisation).
pub fn may_report(actor: &Principal) -> bool {
    actor.kind == AccountKind::Contact
        || [Role::Administrator, Role::ServiceManager, Role::ProjectManager, Role::ManagementRepresentative, Role::Auditor]
            .iter()
            .any(|r| actor.has(*r))
}

fn raise(p: &str) -> Option<&'static str> {
    match p {
        "p2" => Some("p1"),
        "p3" => Some("p2"),
        "p4" => Some("p3"),
        _ => None,
    }
}

impl App {
    /// The instant up to which "breaching soon" looks for due clocks.
    pub async fn breaching_soon_before(&self) -> Result<i64> {
        let mut c = self.read().await?;
        self.breaching_soon_in(&mut c).await
    }

    pub(crate) async fn breaching_soon_in(&self, c: &mut AnyConnection) -> Result<i64> {
        let minutes = match kernel::get_setting(c, BREACHING_SOON_SETTING).await? {
            Some(s) => s.trim().parse::<i64>().map_err(|e| internal(format!("{BREACHING_SOON_SETTING}: {e}")))?,
            None => DEFAULT_BREACHING_SOON_MINUTES,
        };
        Ok(self.now() + minutes * 60_000)
    }

    /// A ticket's SLA clocks and the escalations fired on it.
    pub async fn ticket_sla(&self, actor: &Principal, id: &str) -> Result<TicketSla> {
        let t = self.get_ticket(actor, id).await?;
        let mut c = self.read().await?;
        ticket_sla_in(&mut c, actor, &t.id).await
    }

    /// The most urgent open clock of each listed ticket, for the time-left column.
    pub async fn most_urgent_clocks(&self, ids: &[String]) -> Result<HashMap<String, ClockRow>> {
        let mut c = self.read().await?;
        Ok(store::most_urgent(&mut c, ids).await?)
    }

    // ---- escalation rules ----

    pub async fn list_escalation_rules(&self, actor: &Principal, sla_id: &str) -> Result<Vec<RuleRecord>> {
        let sla = self.get_sla(actor, sla_id).await?;
        if !actor.is_staff() {
            return Err(AppError::NotFound);
        }
        let mut c = self.read().await?;
        Ok(store::list_rules(&mut c, &sla.id).await?)
    }

    pub async fn create_escalation_rule(&self, actor: &Principal, sla_id: &str, input: RuleInput) -> Result<RuleRecord> {
        let sla = self.get_sla(actor, sla_id).await?;
        if !crate::service_level::may_manage(actor) {
            return Err(AppError::Forbidden);
        }
        let mut errs = Errors::new();
        if !TargetKind::ALL.iter().any(|k| k.as_str() == input.target_kind) {
            errs.push(FieldError::new("target_kind", "invalid_choice", "target_kind is first_response, resolution or update"));
        }
        let thresholds = SlaTargets::from_spec(&sla.targets).map(|t| t.thresholds().percents().to_vec()).unwrap_or_default();
        if input.percent != 100 && !thresholds.iter().any(|p| i64::from(*p) == input.percent) {
            errs.push(FieldError::new("percent", "not_a_threshold", format!("choose 100 or one of the SLA's thresholds: {thresholds:?}")));
        }
        let blank = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let (team_id, agent_id) = (blank(&input.team_id), blank(&input.agent_id));
        let mut w = self.write(actor).await?;
        match input.action.as_str() {
            "notify" if input.audience.is_empty() => {
                errs.push(FieldError::new("audience", "required", "say who is notified"));
            }
            "notify" | "raise_priority" => {}
            "reassign" => {
                if team_id.is_none() && agent_id.is_none() {
                    errs.push(FieldError::new("team_id", "required", "choose the team or agent that takes the ticket over"));
                }
                if let Some(t) = &team_id
                    && keel_store::directory::get_team(&mut w.tx, t).await?.is_none()
                {
                    errs.push(FieldError::new("team_id", "unknown_reference", "no such team"));
                }
                if let Some(a) = &agent_id
                    && keel_store::accounts::get_user(&mut w.tx, a).await?.is_none_or(|u| u.kind != "staff")
                {
                    errs.push(FieldError::new("agent_id", "unknown_reference", "no such agent"));
                }
            }
            _ => errs.push(FieldError::new("action", "invalid_choice", "action is notify, reassign or raise_priority")),
        }
        errs.finish()?;
        let rec = RuleRecord {
            id: keel_store::new_id(),
            sla_id: sla.id.clone(),
            target_kind: input.target_kind.clone(),
            percent: input.percent,
            action: input.action.clone(),
            audience: serde_json::to_value(&input.audience).map_err(internal)?,
            team_id: if input.action == "reassign" { team_id } else { None },
            agent_id: if input.action == "reassign" { agent_id } else { None },
            created_at: w.now,
            updated_at: w.now,
            version: 1,
        };
        store::insert_rule(&mut w.tx, &rec).await?;
        w.record("sla_escalation_rule", &rec.id, AuditAction::Create, None, Some(&snapshot(&rec))).await?;
        w.commit().await?;
        Ok(rec)
    }

    pub async fn delete_escalation_rule(&self, actor: &Principal, sla_id: &str, rule_id: &str) -> Result<()> {
        let sla = self.get_sla(actor, sla_id).await?;
        if !crate::service_level::may_manage(actor) {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let rule = store::get_rule(&mut w.tx, rule_id).await?.filter(|r| r.sla_id == sla.id).ok_or(AppError::NotFound)?;
        store::delete_rule(&mut w.tx, rule_id).await?;
        w.record("sla_escalation_rule", rule_id, AuditAction::Delete, Some(&snapshot(&rule)), None).await?;
        w.commit().await?;
        Ok(())
    }

    // ---- jobs ----

    /// Recomputes the open tickets of the projects a job names (`project_ids`, or those whose
    /// SLAs use `calendar_id`; every open ticket when it names neither), one batch per
    /// transaction. Returns how many tickets were recomputed.
    pub async fn run_sla_recompute(&self, payload: &str) -> Result<usize> {
        let p: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
        let mut projects: Option<Vec<String>> = p.get("project_ids").and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok());
        if let Some(cal) = p.get("calendar_id").and_then(|v| v.as_str()) {
            let mut c = self.read().await?;
            projects = Some(store::projects_using_calendar(&mut c, cal).await?);
        }
        let mut cache = SlaCache::default();
        let passes: Vec<Option<String>> = match projects {
            Some(p) => p.into_iter().map(Some).collect(),
            None => vec![None],
        };
        let mut n = 0;
        for project in passes {
            let mut after = String::new();
            loop {
                let mut tx = self.db.begin().await?;
                let ids = store::open_ticket_ids(&mut tx, project.as_deref(), &after, RECOMPUTE_BATCH).await?;
                let Some(last) = ids.last().cloned() else { break };
                n += recompute(&mut tx, &ids, self.now(), &mut cache).await?;
                tx.commit().await.map_err(keel_store::StoreError::from)?;
                after = last;
            }
        }
        Ok(n)
    }

    /// Fires the escalation rules of every ticket whose clocks crossed a threshold, a batch of
    /// tickets per transaction. Returns how many escalations fired.
    ///
    /// Each batch claims its tickets with their row locks (on PostgreSQL skipping those another
    /// transaction holds), so several runs share the work; on PostgreSQL a run that finds a full
    /// batch wakes [`ESCALATE_HELPERS`] helper jobs, which other instances pick up. The firing
    /// row's unique index still decides what fires.
    pub async fn run_sla_escalations(&self) -> Result<usize> {
        let mut fired = 0;
        let mut cache = SlaCache::default();
        let mut after = String::new();
        let mut woke = false;
        loop {
            let mut w = self.write(&Principal::system()).await?;
            let ids = store::claim_due_for_escalation(&mut w.tx, w.now, &after, ESCALATE_BATCH).await?;
            let Some(last) = ids.last().cloned() else { break };
            if !woke && ids.len() as i64 == ESCALATE_BATCH && self.db.backend() == keel_store::Backend::Postgres {
                // Woken in a transaction of their own: waking locks the helpers' job rows (this
                // run's own among them when it is a helper), and the lease heartbeat of a
                // running helper must not wait for this batch to commit.
                let mut t = self.db.begin().await?;
                for i in 1..=ESCALATE_HELPERS {
                    let key = format!("{ESCALATE_JOB}.helper.{i}");
                    let job = NewJob {
                        kind: ESCALATE_JOB,
                        unique_key: Some(&key),
                        payload: "{}",
                        schedule: None,
                        run_at: w.now,
                        max_attempts: 3,
                    };
                    jobs::wake(&mut t, &job, w.now).await?;
                }
                t.commit().await.map_err(keel_store::StoreError::from)?;
                woke = true;
            }
            fired += self.escalate_batch(&mut w, &ids, &mut cache).await?;
            w.commit().await?;
            after = last;
        }
        Ok(fired)
    }

    /// Recomputes the claimed tickets' clocks and fires the rules of every crossing not fired
    /// yet, in the caller's transaction.
    async fn escalate_batch(&self, w: &mut Writer, ids: &[String], cache: &mut SlaCache) -> Result<usize> {
        let now = w.now;
        recompute(&mut w.tx, ids, now, cache).await?;
        let clocks = store::clocks_of(&mut w.tx, ids).await?;
        let mut candidates = Vec::new();
        for c in &clocks {
            let mut crossings = c.thresholds.clone();
            if let Some(b) = c.breached_at
                && !crossings.iter().any(|x| x.0 == 100)
            {
                crossings.push((100, b));
            }
            let rules = cache.rules_of(&mut w.tx, &c.sla_id).await?;
            for (percent, at) in crossings {
                for rule in rules.iter().filter(|r| r.target_kind == c.kind && r.percent == percent) {
                    let late_by = (now - at).max(0);
                    let firing = FiringRecord {
                        id: keel_store::new_id(),
                        rule_id: rule.id.clone(),
                        ticket_id: c.ticket_id.clone(),
                        threshold_at: at,
                        target_kind: c.kind.clone(),
                        percent,
                        fired_at: now,
                        late: late_by > LATE_AFTER_MS,
                        late_by_ms: late_by,
                        outcome: String::new(),
                    };
                    candidates.push((firing, rule.clone(), c.due_at));
                }
            }
        }
        let inserted = store::insert_firings(&mut w.tx, &candidates.iter().map(|(f, _, _)| f.clone()).collect::<Vec<_>>()).await?;
        candidates.retain(|(f, _, _)| inserted.contains(&f.id));
        let mut with_firings: Vec<String> = candidates.iter().map(|(f, _, _)| f.ticket_id.clone()).collect();
        with_firings.dedup();
        let mut tickets: HashMap<String, TicketRecord> =
            keel_store::incidents::tickets_by_ids(&mut w.tx, &with_firings).await?.into_iter().map(|t| (t.id.clone(), t)).collect();
        let mut outcomes = Vec::with_capacity(candidates.len());
        for (firing, rule, due_at) in &candidates {
            let t = tickets.get(&firing.ticket_id).ok_or(AppError::NotFound)?;
            let outcome = self.act(w, rule, firing, *due_at, t).await?;
            if matches!(outcome, "reassigned" | "priority_raised") {
                let fresh = keel_store::incidents::get_ticket(&mut w.tx, &firing.ticket_id).await?.ok_or(AppError::NotFound)?;
                tickets.insert(fresh.id.clone(), fresh);
            }
            outcomes.push((firing.id.clone(), outcome));
        }
        store::set_firing_outcomes(&mut w.tx, &outcomes).await?;
        store::clear_needs_check(&mut w.tx, ids).await?;
        Ok(outcomes.len())
    }

    /// Carries out one escalation inside the firing's transaction and announces it.
    async fn act(
        &self,
        w: &mut Writer,
        rule: &RuleRecord,
        f: &FiringRecord,
        due_at: Option<i64>,
        t: &TicketRecord,
    ) -> Result<&'static str> {
        let outcome = match rule.action.as_str() {
            "reassign" => {
                let state = state_of(t)?;
                let assignment = Assignment::new(rule.team_id.as_deref(), rule.agent_id.as_deref(), &|_: Ref, _: &str| true)?;
                let action = if inc::transition(state.status, Action::Reassign).is_some() { Action::Reassign } else { Action::Assign };
                if inc::transition(state.status, action).is_none() {
                    "not_applicable"
                } else {
                    let cmd = if action == Action::Reassign { Command::Reassign { assignment } } else { Command::Assign { assignment } };
                    let policy = policy_in(&mut w.tx).await?;
                    match inc::apply(&state, &cmd, &Context::new(time(w.now), &Actor::System, &policy)) {
                        Ok(applied) => {
                            persist_applied(w, t, applied, t.version, "system", Some(action.as_str()), Some("SLA escalation".into()))
                                .await?;
                            "reassigned"
                        }
                        Err(_) => "not_applicable",
                    }
                }
            }
            "raise_priority" => match raise(&t.priority) {
                None => "not_applicable",
                Some(p) => {
                    let mut after = t.clone();
                    after.priority = p.to_string();
                    after.updated_at = w.now;
                    keel_store::incidents::update_ticket(&mut w.tx, &after, t.version).await?;
                    keel_store::incidents::append_priority_log(&mut w.tx, &t.id, w.now, p, "system").await?;
                    let before = serde_json::json!({ "priority": t.priority });
                    w.record("ticket", &t.id, AuditAction::Update, Some(&before), Some(&serde_json::json!({ "priority": p }))).await?;
                    recompute(&mut w.tx, std::slice::from_ref(&t.id), w.now, &mut SlaCache::default()).await?;
                    "priority_raised"
                }
            },
            _ => "notified",
        };
        let priority = if outcome == "priority_raised" { raise(&t.priority).unwrap_or_default() } else { t.priority.as_str() };
        let vars = serde_json::json!({
            "number": t.number,
            "title": t.title,
            "priority": priority,
            "target": f.target_kind,
            "percent": f.percent,
            "threshold": f.percent,
            "due": notice_time(due_at),
            "threshold_at": notice_time(Some(f.threshold_at)),
            "late": f.late,
            "late_by_ms": f.late_by_ms,
            "action": rule.action,
            "outcome": outcome,
        });
        let entry = serde_json::json!({ "sla_escalation": vars.clone() });
        w.record("ticket", &t.id, AuditAction::Update, Some(&serde_json::json!({ "sla_escalation": null })), Some(&entry)).await?;
        let (kind, audience) = match rule.action.as_str() {
            "notify" => {
                let audience: Vec<Audience> = serde_json::from_value(rule.audience.clone()).unwrap_or_default();
                (if f.percent >= 100 { "sla.breached" } else { "sla.warning" }, audience)
            }
            _ => ("sla.escalated", vec![Audience::Assignee, Audience::AssignmentTeam]),
        };
        w.announce(&Announcement { kind: kind.into(), entity_type: "ticket".into(), entity_id: t.id.clone(), audience, vars }).await?;
        Ok(outcome)
    }

    /// Announces `sla.review_due` once per SLA version when its review date is within
    /// [`REVIEW_NOTICE_DAYS`], and expires SLAs whose validity ended. Returns (reminders, expired).
    pub async fn run_sla_reviews(&self) -> Result<(usize, usize)> {
        let now = self.now();
        let today = time(now).date_naive();
        let horizon = (today + chrono::Duration::days(REVIEW_NOTICE_DAYS)).format("%Y-%m-%d").to_string();
        let mut w = self.write(&Principal::system()).await?;
        let mut reminders = 0;
        for (id, version, name, review_on) in store::slas_for_review(&mut w.tx, &horizon).await? {
            if store::insert_notice(&mut w.tx, &id, version, "review_due", now).await? {
                let vars = serde_json::json!({ "name": name, "sla": name, "review_on": review_on, "due": review_on, "version": version });
                w.announce(&Announcement {
                    kind: "sla.review_due".into(),
                    entity_type: "sla".into(),
                    entity_id: id,
                    audience: vec![Audience::ProjectManager],
                    vars,
                })
                .await?;
                reminders += 1;
            }
        }
        let mut expired = 0;
        for id in store::slas_past_end(&mut w.tx, &today.format("%Y-%m-%d").to_string()).await? {
            let Some(before) = sl_store::get_sla(&mut w.tx, &id).await? else { continue };
            let to = SlaStatus::parse(&before.status).unwrap_or(SlaStatus::Draft).apply(SlaAction::Expire)?;
            let after = sl_store::SlaRecord { status: to.as_str().into(), updated_at: now, ..before.clone() };
            sl_store::update_sla(&mut w.tx, &after, before.version).await?;
            let mut a = snapshot(&after);
            a["lifecycle_action"] = serde_json::json!("expire");
            a["reason"] = serde_json::json!("validity ended");
            w.record("sla", &id, AuditAction::Update, Some(&snapshot(&before)), Some(&a)).await?;
            w.announce(&Announcement {
                kind: "sla.expired".into(),
                entity_type: "sla".into(),
                entity_id: id.clone(),
                audience: vec![Audience::ProjectManager],
                vars: serde_json::json!({ "name": before.name, "sla": before.name, "valid_to": before.valid_to, "due": before.valid_to }),
            })
            .await?;
            enqueue_recompute(&mut w.tx, serde_json::json!({ "project_ids": [before.project_id] }), now).await?;
            expired += 1;
        }
        w.commit().await?;
        Ok((reminders, expired))
    }

    // ---- reports ----

    /// SLA attainment of the tickets created in `[from, to)`: met and breached clocks per
    /// customer organisation, project, service and priority, and the breaches.
    pub async fn sla_attainment(&self, actor: &Principal, from: i64, to: i64) -> Result<AttainmentReport> {
        if !may_report(actor) {
            return Err(AppError::Forbidden);
        }
        if to <= from {
            return Err(AppError::field("to", "before_start", "the period must end after it starts"));
        }
        let mut c = self.read().await?;
        let rows = store::attainment_rows(&mut c, &scope_of(actor), from, to).await?;
        let breached: Vec<&AttainmentRow> = rows.iter().filter(|r| r.state == "breached").collect();
        let mut ids: Vec<String> = breached.iter().map(|r| r.ticket_id.clone()).collect();
        ids.dedup();
        let mut histories = HashMap::new();
        for chunk in ids.chunks(500) {
            for t in store::clock_inputs(&mut c, chunk).await? {
                histories.insert(t.id.clone(), history_summary(&t));
            }
        }
        let now = self.now();
        let breaches = breached
            .iter()
            .map(|r| Breach {
                ticket_id: r.ticket_id.clone(),
                number: r.number.clone(),
                target: r.kind.clone(),
                due_at: r.due_at,
                breached_at: r.breached_at,
                late_by_ms: (r.stopped_at.unwrap_or(now) - r.due_at.or(r.breached_at).unwrap_or(now)).max(0),
                reason: histories.get(&r.ticket_id).cloned().unwrap_or_default(),
            })
            .collect();
        let total = group(&rows, |_| ("all".into(), "all".into()))
            .into_iter()
            .next()
            .unwrap_or_else(|| finish(AttainmentGroup { key: "all".into(), label: "all".into(), ..Default::default() }));
        Ok(AttainmentReport {
            from,
            to,
            total,
            by_organization: group(&rows, |r| (r.organization_id.clone(), r.organization_name.clone())),
            by_project: group(&rows, |r| (r.project_id.clone(), r.project_name.clone())),
            by_service: group(&rows, |r| (r.service_id.clone().unwrap_or_default(), r.service_name.clone().unwrap_or_default())),
            by_priority: group(&rows, |r| (r.priority.clone(), r.priority.to_ascii_uppercase())),
            breaches,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sla(id: &str, project: &str, activated: i64, services: &[&str]) -> ActiveSla {
        ActiveSla {
            id: id.into(),
            version: 1,
            project_id: project.into(),
            calendar_id: "cal".into(),
            targets: String::new(),
            clock_policy: String::new(),
            activated_at: Some(activated),
            service_ids: services.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_sla_of_the_service_wins_then_the_project_wide_one_then_the_latest() {
        let slas = [sla("a", "p", 1, &["mail"]), sla("b", "p", 2, &[]), sla("c", "p", 3, &["erp"]), sla("d", "q", 9, &[])];
        let pick = |service: Option<&str>| choose_sla(&slas, "p", service).map(|s| s.id.as_str());
        assert_eq!(pick(Some("mail")), Some("a"));
        assert_eq!(pick(Some("erp")), Some("c"));
        assert_eq!(pick(Some("hr")), Some("b"), "no SLA names the service: the project-wide one");
        assert_eq!(pick(None), Some("b"));
        let only_named = [sla("a", "p", 1, &["mail"]), sla("c", "p", 3, &["erp"])];
        assert_eq!(choose_sla(&only_named, "p", None).map(|s| s.id.as_str()), Some("c"), "otherwise the latest activated");
        assert!(choose_sla(&slas, "none", None).is_none());
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_field("Acme, Inc"), "\"Acme, Inc\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("new → assigned; p3 → p1"), "new → assigned; p3 → p1");
    }
}

//! The SLA clock for service level management (§6.1): how much business time a ticket has used
//! of each target, when it is due, and which thresholds it has crossed and when.
//!
//! A pure function of the ticket's history, the calendar, the targets, the policy and `now`
//! ([`compute_clocks`]), and the same engine fed one event at a time ([`SlaClock`]), whose
//! results are identical. The rules:
//!
//! - Clocks start when the ticket is created (its first status entry) and count only the
//!   calendar's business time, and only while running.
//! - While the status is a pause status (e.g. `pending_customer`) every clock is paused: the
//!   business time paused is reported and shifts the due time by exactly that amount.
//! - First response stops for good at `first_response_at`, or on entering one of its stop
//!   statuses. Resolution stops on entering one of its stop statuses (resolved, closed) and
//!   resumes on reopen with the time counted before; time spent resolved does not count.
//! - The update clock starts at the first response (or first public update), restarts at every
//!   public update and on reopen, and stops with resolution. Breaches of finished cycles are kept.
//! - Re-prioritising re-targets every clock that has not stopped *from its start*: the time
//!   elapsed since creation counts against the new priority's target. A stopped clock keeps the
//!   target it stopped with.
//! - A threshold of p% is crossed while elapsed ≥ p% of the target. Its `crossed_at` is the
//!   instant from which it has held without a break: when the elapsed time reached it, or the
//!   re-prioritisation that made it true. A clock is breached at 100%; its due time is the
//!   instant the target is used up. Escalations keyed on (kind, percent, `crossed_at`) fire
//!   once, even when computed late.
//! - Everything is computed as of `now`; events after `now` are ignored.
//!
//! Instants are `DateTime<Utc>` taken to the millisecond; durations are business milliseconds.

use crate::error::{DomainError, FieldError};
use crate::sla::calendar::{BusinessCalendar, from_ms, to_ms};
use crate::sla::target::{Priority, SlaTargets, TargetKind, describe};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Which statuses pause the clocks and which stop them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicySpec", into = "PolicySpec")]
pub struct ClockPolicy {
    pause: BTreeSet<String>,
    first_response_stop: BTreeSet<String>,
    resolution_stop: BTreeSet<String>,
}

/// The serialised form of a [`ClockPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySpec {
    pub pause_statuses: Vec<String>,
    pub first_response_stop_statuses: Vec<String>,
    pub resolution_stop_statuses: Vec<String>,
}

impl ClockPolicy {
    /// A status may not both pause and stop a clock (`pause_and_stop`).
    pub fn new(pause: &[&str], first_response_stop: &[&str], resolution_stop: &[&str]) -> Result<Self, DomainError> {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        Self::from_spec(&PolicySpec {
            pause_statuses: owned(pause),
            first_response_stop_statuses: owned(first_response_stop),
            resolution_stop_statuses: owned(resolution_stop),
        })
    }

    pub fn from_spec(spec: &PolicySpec) -> Result<Self, DomainError> {
        let mut errors = Vec::new();
        let mut set = |field: &str, list: &[String]| -> BTreeSet<String> {
            let mut out = BTreeSet::new();
            for (i, s) in list.iter().enumerate() {
                match s.trim() {
                    "" => errors.push(FieldError::new(format!("{field}[{i}]"), "required", "a status name is required")),
                    s => {
                        out.insert(s.to_string());
                    }
                }
            }
            out
        };
        let pause = set("pause_statuses", &spec.pause_statuses);
        let first_response_stop = set("first_response_stop_statuses", &spec.first_response_stop_statuses);
        let resolution_stop = set("resolution_stop_statuses", &spec.resolution_stop_statuses);
        for s in pause.iter().filter(|s| first_response_stop.contains(*s) || resolution_stop.contains(*s)) {
            errors.push(FieldError::new("pause_statuses", "pause_and_stop", format!("status {s} cannot both pause and stop a clock")));
        }
        if !errors.is_empty() {
            return Err(DomainError::Invalid(errors));
        }
        Ok(ClockPolicy { pause, first_response_stop, resolution_stop })
    }

    pub fn to_spec(&self) -> PolicySpec {
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect();
        PolicySpec {
            pause_statuses: list(&self.pause),
            first_response_stop_statuses: list(&self.first_response_stop),
            resolution_stop_statuses: list(&self.resolution_stop),
        }
    }

    pub fn pause_statuses(&self) -> &BTreeSet<String> {
        &self.pause
    }

    /// The statuses that stop a clock of this kind; the update clock stops with resolution.
    pub fn stop_statuses(&self, kind: TargetKind) -> &BTreeSet<String> {
        match kind {
            TargetKind::FirstResponse => &self.first_response_stop,
            TargetKind::Resolution | TargetKind::Update => &self.resolution_stop,
        }
    }

    fn phase_for(&self, kind: TargetKind, status: &str) -> Phase {
        if self.stop_statuses(kind).contains(status) {
            Phase::Stopped
        } else if self.pause.contains(status) {
            Phase::Paused
        } else {
            Phase::Running
        }
    }
}

impl Default for ClockPolicy {
    /// Pauses in `pending_customer` and `pending_supplier`; stops in `resolved` and `closed`.
    fn default() -> Self {
        let set = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        ClockPolicy {
            pause: set(&["pending_customer", "pending_supplier"]),
            first_response_stop: set(&["resolved", "closed"]),
            resolution_stop: set(&["resolved", "closed"]),
        }
    }
}

impl TryFrom<PolicySpec> for ClockPolicy {
    type Error = String;
    fn try_from(spec: PolicySpec) -> Result<Self, String> {
        ClockPolicy::from_spec(&spec).map_err(|e| describe(&e))
    }
}

impl From<ClockPolicy> for PolicySpec {
    fn from(p: ClockPolicy) -> PolicySpec {
        p.to_spec()
    }
}

/// Everything a clock is measured against. Pass the same context to every call on one ticket.
#[derive(Debug, Clone, Copy)]
pub struct ClockContext<'a> {
    pub calendar: &'a BusinessCalendar,
    pub targets: &'a SlaTargets,
    pub policy: &'a ClockPolicy,
}

/// A ticket's history as the clock reads it. Each list is in time order; the first status entry
/// is the ticket's creation, and the first priority entry applies from creation.
#[derive(Debug, Clone, Copy)]
pub struct TicketHistory<'a> {
    pub statuses: &'a [(DateTime<Utc>, String)],
    pub priorities: &'a [(DateTime<Utc>, Priority)],
    pub first_response_at: Option<DateTime<Utc>>,
    pub public_updates: &'a [DateTime<Utc>],
}

/// One change fed to an [`SlaClock`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClockEvent {
    Status { status: String },
    Priority { priority: Priority },
    FirstResponse,
    PublicUpdate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockPhase {
    Running,
    Paused,
    Stopped,
}

/// Where a clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    /// Counting, no threshold crossed.
    Running,
    /// Counting, a warning threshold crossed, not yet due.
    Warning,
    /// Paused and not yet due (the thresholds show whether a warning was crossed).
    Paused,
    /// Due time passed and the clock has not stopped (running or paused).
    Breached,
    /// Stopped before its due time.
    Met,
    /// Stopped at or after its due time.
    BreachedStopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdCrossing {
    pub percent: u16,
    pub crossed_at: DateTime<Utc>,
}

/// One target's clock as of the report's instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetClock {
    pub kind: TargetKind,
    /// The priority whose target applies (a stopped clock keeps the one it stopped with).
    pub priority: Priority,
    pub target_ms: i64,
    /// Creation, or for the update clock the start of the current cycle.
    pub started_at: DateTime<Utc>,
    pub elapsed_ms: i64,
    pub paused_ms: i64,
    /// Negative once breached.
    pub remaining_ms: i64,
    pub percent_used: f64,
    pub phase: ClockPhase,
    pub state: ClockState,
    /// When the target is (or was) used up; `None` while paused before being due. For a clock
    /// that stopped in time, when it would have been due.
    pub due_at: Option<DateTime<Utc>>,
    pub breached_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// The configured thresholds crossed, ascending, each with the instant it was crossed.
    pub thresholds: Vec<ThresholdCrossing>,
    /// While running, when the next threshold (or the breach) will be crossed: the instant to
    /// evaluate the ticket again.
    pub next_threshold_at: Option<DateTime<Utc>>,
    /// Update clock only: breach instants of earlier cycles.
    pub earlier_breaches: Vec<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaReport {
    pub as_of: DateTime<Utc>,
    pub status: String,
    pub priority: Priority,
    pub first_response: TargetClock,
    pub resolution: TargetClock,
    /// Present once the update clock has started and the priority has an update interval.
    pub update: Option<TargetClock>,
}

impl SlaReport {
    pub fn get(&self, kind: TargetKind) -> Option<&TargetClock> {
        match kind {
            TargetKind::FirstResponse => Some(&self.first_response),
            TargetKind::Resolution => Some(&self.resolution),
            TargetKind::Update => self.update.as_ref(),
        }
    }

    pub fn clocks(&self) -> impl Iterator<Item = &TargetClock> {
        [Some(&self.first_response), Some(&self.resolution), self.update.as_ref()].into_iter().flatten()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    NotStarted,
    Running,
    Paused,
    Stopped,
}

/// The accumulated state of one target's clock as of [`SlaClock::as_of`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KindClock {
    phase: Phase,
    priority: Priority,
    started_at: i64,
    elapsed_ms: i64,
    paused_ms: i64,
    stopped_at: Option<i64>,
    /// For a clock stopped in time, when it would have been due.
    due_when_stopped: Option<i64>,
    crossed: Vec<(u16, i64)>,
    breached_at: Option<i64>,
    earlier_breaches: Vec<i64>,
}

/// Business time needed to reach `percent` of `target` (rounded up to the millisecond).
fn needed(percent: u16, target: i64) -> i64 {
    (i64::from(percent) * target + 99) / 100
}

/// A crossing that falls within a stretch of business time: the business time from the
/// stretch's start, the clock, and the threshold (`None` for the breach).
type Reach = (i64, usize, Option<u16>);

/// The instants `needs` (ascending) of business time after `from`, in one calendar walk.
fn instants_after(ctx: &ClockContext<'_>, from: i64, needs: &[i64]) -> Vec<i64> {
    let immediate = needs.partition_point(|n| *n <= 0);
    let mut out = vec![from; needs.len()];
    ctx.calendar.add_each(from, &needs[immediate..], &mut out[immediate..]);
    out
}

impl KindClock {
    fn new(ctx: &ClockContext<'_>, kind: TargetKind, phase: Phase, priority: Priority, at: i64) -> Self {
        let mut k = KindClock {
            phase: Phase::NotStarted,
            priority,
            started_at: at,
            elapsed_ms: 0,
            paused_ms: 0,
            stopped_at: None,
            due_when_stopped: None,
            crossed: Vec::new(),
            breached_at: None,
            earlier_breaches: Vec::new(),
        };
        k.enter(ctx, kind, phase, at);
        k
    }

    fn is_crossed(&self, percent: u16) -> bool {
        self.crossed.iter().any(|&(p, _)| p == percent)
    }

    fn target(&self, ctx: &ClockContext<'_>, kind: TargetKind) -> Option<i64> {
        ctx.targets.target(self.priority, kind)
    }

    /// The crossings a running clock reaches within `business` more business time.
    fn reaches(&self, ctx: &ClockContext<'_>, kind: TargetKind, index: usize, business: i64, out: &mut Vec<Reach>) {
        let Some(target) = self.target(ctx, kind) else {
            return;
        };
        for &p in ctx.targets.thresholds().percents() {
            let need = needed(p, target) - self.elapsed_ms;
            if !self.is_crossed(p) && need <= business {
                out.push((need, index, Some(p)));
            }
        }
        let need = target - self.elapsed_ms;
        if self.breached_at.is_none() && need <= business {
            out.push((need, index, None));
        }
    }

    /// Business time still to run until the due time and until the next threshold or breach.
    fn ahead(&self, ctx: &ClockContext<'_>, target: i64) -> (Option<i64>, Option<i64>) {
        let due = self.breached_at.is_none().then_some(target - self.elapsed_ms);
        let pending = ctx.targets.thresholds().percents().iter().filter(|p| !self.is_crossed(**p)).map(|&p| needed(p, target));
        let next = pending.chain(self.breached_at.is_none().then_some(target)).min().map(|n| n - self.elapsed_ms);
        (due, next)
    }

    /// Measures the elapsed time against `priority`'s target from `at` on.
    fn retarget(&mut self, ctx: &ClockContext<'_>, kind: TargetKind, priority: Priority, at: i64) {
        self.priority = priority;
        let Some(target) = self.target(ctx, kind) else {
            self.crossed.clear();
            self.breached_at = None;
            return;
        };
        let percents = ctx.targets.thresholds().percents();
        self.crossed.retain(|&(p, _)| percents.contains(&p) && self.elapsed_ms >= needed(p, target));
        for &p in percents {
            if self.elapsed_ms >= needed(p, target) && !self.is_crossed(p) {
                self.crossed.push((p, at));
            }
        }
        self.crossed.sort_by_key(|&(p, _)| p);
        self.breached_at = match (self.elapsed_ms >= target, self.breached_at) {
            (true, None) => Some(at),
            (true, kept) => kept,
            (false, _) => None,
        };
    }

    fn enter(&mut self, ctx: &ClockContext<'_>, kind: TargetKind, phase: Phase, at: i64) {
        if phase == Phase::Stopped && self.phase != Phase::Stopped {
            self.stopped_at = Some(at);
            self.due_when_stopped = match (self.breached_at, self.target(ctx, kind)) {
                (None, Some(target)) => Some(ctx.calendar.add_ms(at, target - self.elapsed_ms)),
                _ => None,
            };
        }
        self.phase = phase;
    }

    fn reopen(&mut self, ctx: &ClockContext<'_>, kind: TargetKind, phase: Phase, priority: Priority, at: i64) {
        self.stopped_at = None;
        self.due_when_stopped = None;
        self.phase = phase;
        self.retarget(ctx, kind, priority, at);
    }

    fn new_cycle(&mut self, ctx: &ClockContext<'_>, status: &str, priority: Priority, at: i64) {
        let mut earlier = std::mem::take(&mut self.earlier_breaches);
        earlier.extend(self.breached_at);
        let phase = ctx.policy.phase_for(TargetKind::Update, status);
        *self = KindClock::new(ctx, TargetKind::Update, phase, priority, at);
        self.earlier_breaches = earlier;
    }

    /// The clock as of `now`; `due` and `next` are the walked instants of [`Self::ahead`].
    fn view(&self, kind: TargetKind, target: i64, due: Option<i64>, next: Option<i64>) -> TargetClock {
        let phase = match self.phase {
            Phase::Paused => ClockPhase::Paused,
            Phase::Stopped => ClockPhase::Stopped,
            Phase::Running | Phase::NotStarted => ClockPhase::Running,
        };
        let state = match (phase, self.breached_at) {
            (ClockPhase::Stopped, Some(_)) => ClockState::BreachedStopped,
            (ClockPhase::Stopped, None) => ClockState::Met,
            (_, Some(_)) => ClockState::Breached,
            (ClockPhase::Paused, None) => ClockState::Paused,
            (ClockPhase::Running, None) if !self.crossed.is_empty() => ClockState::Warning,
            (ClockPhase::Running, None) => ClockState::Running,
        };
        let due = match (self.breached_at, phase) {
            (Some(b), _) => Some(b),
            (None, ClockPhase::Running) => due,
            (None, ClockPhase::Stopped) => self.due_when_stopped,
            (None, ClockPhase::Paused) => None,
        };
        TargetClock {
            kind,
            priority: self.priority,
            target_ms: target,
            started_at: from_ms(self.started_at),
            elapsed_ms: self.elapsed_ms,
            paused_ms: self.paused_ms,
            remaining_ms: target - self.elapsed_ms,
            percent_used: self.elapsed_ms as f64 * 100.0 / target as f64,
            phase,
            state,
            due_at: due.map(from_ms),
            breached_at: self.breached_at.map(from_ms),
            stopped_at: self.stopped_at.map(from_ms),
            thresholds: self.crossed.iter().map(|&(percent, at)| ThresholdCrossing { percent, crossed_at: from_ms(at) }).collect(),
            next_threshold_at: if phase == ClockPhase::Running { next.map(from_ms) } else { None },
            earlier_breaches: self.earlier_breaches.iter().copied().map(from_ms).collect(),
        }
    }
}

/// An event borrowed from a history or a [`ClockEvent`].
#[derive(Debug, Clone, Copy)]
enum Change<'a> {
    Priority(Priority),
    Status(&'a str),
    FirstResponse,
    PublicUpdate,
}

const FR: usize = 0;
const RES: usize = 1;
const UPD: usize = 2;

/// The clocks of one ticket, fed one event at a time. It can be stored (it serialises) and fed
/// further later; [`SlaClock::report`] gives exactly what [`compute_clocks`] gives for the same
/// events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClock {
    created_at: i64,
    at: i64,
    status: String,
    priority: Priority,
    clocks: [KindClock; 3],
}

impl SlaClock {
    /// The clocks of a ticket created at `created_at` with this status and priority.
    pub fn start(ctx: &ClockContext<'_>, created_at: DateTime<Utc>, status: &str, priority: Priority) -> Self {
        let at = to_ms(created_at);
        let clock = |kind| KindClock::new(ctx, kind, ctx.policy.phase_for(kind, status), priority, at);
        SlaClock {
            created_at: at,
            at,
            status: status.to_string(),
            priority,
            clocks: [
                clock(TargetKind::FirstResponse),
                clock(TargetKind::Resolution),
                KindClock::new(ctx, TargetKind::Update, Phase::NotStarted, priority, at),
            ],
        }
    }

    /// Applies one event; events must come in time order (`not_chronological` otherwise).
    pub fn apply(&mut self, ctx: &ClockContext<'_>, at: DateTime<Utc>, event: &ClockEvent) -> Result<(), DomainError> {
        let at = to_ms(at);
        if at < self.at {
            return Err(DomainError::field("at", "not_chronological", "clock events must be applied in time order"));
        }
        let change = match event {
            ClockEvent::Status { status } => Change::Status(status),
            ClockEvent::Priority { priority } => Change::Priority(*priority),
            ClockEvent::FirstResponse => Change::FirstResponse,
            ClockEvent::PublicUpdate => Change::PublicUpdate,
        };
        self.apply_change(ctx, at, change);
        Ok(())
    }

    /// The clocks as of `now` (not earlier than the last event applied).
    pub fn report(&self, ctx: &ClockContext<'_>, now: DateTime<Utc>) -> SlaReport {
        let now = to_ms(now).max(self.at);
        let mut c = self.clone();
        c.advance(ctx, now);
        let for_clock = |i: usize| ctx.targets.for_priority(c.clocks[i].priority);
        let targets = [
            Some(for_clock(FR).first_response_ms),
            Some(for_clock(RES).resolution_ms),
            for_clock(UPD).update_interval_ms.filter(|_| c.clocks[UPD].phase != Phase::NotStarted),
        ];
        let mut needs: Vec<(i64, usize)> = Vec::with_capacity(6);
        for (i, k) in c.clocks.iter().enumerate() {
            if let (Some(target), Phase::Running) = (targets[i], k.phase) {
                let (due, next) = k.ahead(ctx, target);
                needs.extend(due.map(|n| (n, 2 * i)));
                needs.extend(next.map(|n| (n, 2 * i + 1)));
            }
        }
        needs.sort_unstable();
        let needed: Vec<i64> = needs.iter().map(|n| n.0).collect();
        let mut walked = [None; 6];
        for ((_, slot), at) in needs.iter().zip(instants_after(ctx, now, &needed)) {
            walked[*slot] = Some(at);
        }
        let view = |i: usize, target: i64| c.clocks[i].view(TargetKind::ALL[i], target, walked[2 * i], walked[2 * i + 1]);
        SlaReport {
            as_of: from_ms(now),
            status: c.status.clone(),
            priority: c.priority,
            first_response: view(FR, for_clock(FR).first_response_ms),
            resolution: view(RES, for_clock(RES).resolution_ms),
            update: targets[UPD].map(|t| view(UPD, t)),
        }
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.created_at)
    }

    /// The instant of the last event applied.
    pub fn as_of(&self) -> DateTime<Utc> {
        from_ms(self.at)
    }

    pub fn status(&self) -> &str {
        &self.status
    }

    pub fn priority(&self) -> Priority {
        self.priority
    }

    fn advance(&mut self, ctx: &ClockContext<'_>, to: i64) {
        let from = self.at;
        self.at = self.at.max(to);
        if to <= from || !self.clocks.iter().any(|k| matches!(k.phase, Phase::Running | Phase::Paused)) {
            return;
        }
        let business = ctx.calendar.between_ms(from, to);
        if business == 0 {
            return;
        }
        let mut reached: Vec<Reach> = Vec::new();
        for (i, (k, kind)) in self.clocks.iter().zip(TargetKind::ALL).enumerate() {
            if k.phase == Phase::Running {
                k.reaches(ctx, kind, i, business, &mut reached);
            }
        }
        if !reached.is_empty() {
            reached.sort_unstable();
            let needs: Vec<i64> = reached.iter().map(|r| r.0).collect();
            for (&(_, i, percent), at) in reached.iter().zip(instants_after(ctx, from, &needs)) {
                match percent {
                    Some(p) => self.clocks[i].crossed.push((p, at)),
                    None => self.clocks[i].breached_at = Some(at),
                }
            }
            for k in &mut self.clocks {
                k.crossed.sort_by_key(|&(p, _)| p);
            }
        }
        for k in &mut self.clocks {
            match k.phase {
                Phase::Running => k.elapsed_ms += business,
                Phase::Paused => k.paused_ms += business,
                Phase::NotStarted | Phase::Stopped => {}
            }
        }
    }

    fn apply_change(&mut self, ctx: &ClockContext<'_>, at: i64, change: Change<'_>) {
        self.advance(ctx, at);
        let policy = ctx.policy;
        match change {
            Change::Status(status) => {
                self.status.clear();
                self.status.push_str(status);
                let fr = &mut self.clocks[FR];
                if fr.phase != Phase::Stopped {
                    fr.enter(ctx, TargetKind::FirstResponse, policy.phase_for(TargetKind::FirstResponse, status), at);
                }
                let res = &mut self.clocks[RES];
                let next = policy.phase_for(TargetKind::Resolution, status);
                if res.phase == Phase::Stopped && next != Phase::Stopped {
                    res.reopen(ctx, TargetKind::Resolution, next, self.priority, at);
                } else {
                    res.enter(ctx, TargetKind::Resolution, next, at);
                }
                let upd = &mut self.clocks[UPD];
                let next = policy.phase_for(TargetKind::Update, status);
                match upd.phase {
                    Phase::NotStarted => {}
                    Phase::Stopped if next != Phase::Stopped => upd.new_cycle(ctx, status, self.priority, at),
                    _ => upd.enter(ctx, TargetKind::Update, next, at),
                }
            }
            Change::Priority(priority) => {
                self.priority = priority;
                for (k, kind) in self.clocks.iter_mut().zip(TargetKind::ALL) {
                    match k.phase {
                        Phase::Running | Phase::Paused => k.retarget(ctx, kind, priority, at),
                        Phase::NotStarted => k.priority = priority,
                        Phase::Stopped => {}
                    }
                }
            }
            Change::FirstResponse => {
                self.clocks[FR].enter(ctx, TargetKind::FirstResponse, Phase::Stopped, at);
                self.restart_update_clock(ctx, at);
            }
            Change::PublicUpdate => self.restart_update_clock(ctx, at),
        }
    }

    fn restart_update_clock(&mut self, ctx: &ClockContext<'_>, at: i64) {
        let upd = &mut self.clocks[UPD];
        if upd.phase != Phase::Stopped {
            upd.new_cycle(ctx, &self.status, self.priority, at);
        }
    }
}

fn check_order<T>(field: &str, list: &[T], at: impl Fn(&T) -> DateTime<Utc>, errors: &mut Vec<FieldError>) {
    if list.windows(2).any(|w| at(&w[0]) > at(&w[1])) {
        errors.push(FieldError::new(field, "not_chronological", format!("{field} must be in time order")));
    }
}

/// Replays a ticket's history up to and including `until` into an [`SlaClock`], which can then
/// be stored and fed further events. Events at the same instant apply priority changes first,
/// then status changes, then the first response, then public updates.
pub fn replay(history: &TicketHistory<'_>, ctx: &ClockContext<'_>, until: DateTime<Utc>) -> Result<SlaClock, DomainError> {
    let mut errors = Vec::new();
    if history.statuses.is_empty() {
        errors.push(FieldError::new("statuses", "required", "the status log must hold the ticket's creation"));
    }
    if history.priorities.is_empty() {
        errors.push(FieldError::new("priorities", "required", "the priority log must hold the initial priority"));
    }
    check_order("statuses", history.statuses, |e| e.0, &mut errors);
    check_order("priorities", history.priorities, |e| e.0, &mut errors);
    check_order("public_updates", history.public_updates, |t| *t, &mut errors);
    let (Some((created, first_status)), Some((_, first_priority)), true) =
        (history.statuses.first(), history.priorities.first(), errors.is_empty())
    else {
        return Err(DomainError::Invalid(errors));
    };
    let mut clock = SlaClock::start(ctx, *created, first_status, *first_priority);
    let created = clock.created_at;
    let until = to_ms(until);
    let mut changes: Vec<(i64, u8, Change<'_>)> =
        Vec::with_capacity(history.statuses.len() + history.priorities.len() + history.public_updates.len() + 1);
    changes.extend(history.priorities[1..].iter().map(|(t, p)| (to_ms(*t), 0, Change::Priority(*p))));
    changes.extend(history.statuses[1..].iter().map(|(t, s)| (to_ms(*t), 1, Change::Status(s.as_str()))));
    changes.extend(history.first_response_at.map(|t| (to_ms(t), 2, Change::FirstResponse)));
    changes.extend(history.public_updates.iter().map(|t| (to_ms(*t), 3, Change::PublicUpdate)));
    changes.retain(|c| c.0 <= until);
    changes.sort_by_key(|c| (c.0.max(created), c.1));
    for (at, _, change) in changes {
        clock.apply_change(ctx, at.max(created), change);
    }
    Ok(clock)
}

/// The clocks of a ticket as of `now`, computed from scratch from its history.
pub fn compute_clocks(history: &TicketHistory<'_>, ctx: &ClockContext<'_>, now: DateTime<Utc>) -> Result<SlaReport, DomainError> {
    Ok(replay(history, ctx, now)?.report(ctx, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::calendar::tests::{any_calendar, calendar, hours, utc};
    use crate::sla::calendar::{DAY_MS, HOUR_MS, MINUTE_MS, WeekHours};
    use crate::sla::target::{PriorityTargets, Thresholds};
    use proptest::prelude::*;

    fn pt(fr: i64, res: i64, upd: Option<i64>) -> PriorityTargets {
        PriorityTargets { first_response_ms: fr, resolution_ms: res, update_interval_ms: upd }
    }

    /// P1 1h/4h/update 1h, P2 2h/8h/update 2h, P3 4h/16h, P4 8h/40h; thresholds 75, 100, 150.
    fn targets() -> SlaTargets {
        let h = HOUR_MS;
        SlaTargets::new(
            [pt(h, 4 * h, Some(h)), pt(2 * h, 8 * h, Some(2 * h)), pt(4 * h, 16 * h, None), pt(8 * h, 40 * h, None)],
            Thresholds::new("t", vec![75, 100, 150]).unwrap(),
        )
        .unwrap()
    }

    struct Setup {
        calendar: BusinessCalendar,
        targets: SlaTargets,
        policy: ClockPolicy,
    }

    impl Setup {
        /// UTC, Monday to Friday 09:00-17:00. 2025-06-02 is a Monday.
        fn office() -> Self {
            Setup {
                calendar: calendar("UTC", WeekHours::weekdays(hours("09:00-17:00"))),
                targets: targets(),
                policy: ClockPolicy::default(),
            }
        }

        fn ctx(&self) -> ClockContext<'_> {
            ClockContext { calendar: &self.calendar, targets: &self.targets, policy: &self.policy }
        }
    }

    #[derive(Default)]
    struct Story {
        statuses: Vec<(DateTime<Utc>, String)>,
        priorities: Vec<(DateTime<Utc>, Priority)>,
        first_response_at: Option<DateTime<Utc>>,
        public_updates: Vec<DateTime<Utc>>,
    }

    impl Story {
        fn new(at: &str, priority: Priority) -> Self {
            Story { statuses: vec![(utc(at), "new".into())], priorities: vec![(utc(at), priority)], ..Story::default() }
        }
        fn status(mut self, at: &str, s: &str) -> Self {
            self.statuses.push((utc(at), s.into()));
            self
        }
        fn priority(mut self, at: &str, p: Priority) -> Self {
            self.priorities.push((utc(at), p));
            self
        }
        fn responded(mut self, at: &str) -> Self {
            self.first_response_at = Some(utc(at));
            self
        }
        fn update(mut self, at: &str) -> Self {
            self.public_updates.push(utc(at));
            self
        }
        fn history(&self) -> TicketHistory<'_> {
            TicketHistory {
                statuses: &self.statuses,
                priorities: &self.priorities,
                first_response_at: self.first_response_at,
                public_updates: &self.public_updates,
            }
        }
        fn at(&self, s: &Setup, now: &str) -> SlaReport {
            compute_clocks(&self.history(), &s.ctx(), utc(now)).unwrap()
        }
    }

    fn crossings(c: &TargetClock) -> Vec<(u16, DateTime<Utc>)> {
        c.thresholds.iter().map(|t| (t.percent, t.crossed_at)).collect()
    }

    #[test]
    fn a_running_clock_warns_and_is_met() {
        let s = Setup::office();
        let story = Story::new("2025-06-02T09:00:00Z", Priority::P2);
        let r = story.at(&s, "2025-06-02T10:00:00Z");
        let fr = &r.first_response;
        assert_eq!((fr.elapsed_ms, fr.remaining_ms, fr.percent_used), (HOUR_MS, HOUR_MS, 50.0));
        assert_eq!((fr.state, fr.phase), (ClockState::Running, ClockPhase::Running));
        assert_eq!(fr.due_at, Some(utc("2025-06-02T11:00:00Z")));
        assert_eq!(fr.next_threshold_at, Some(utc("2025-06-02T10:30:00Z")));
        assert_eq!(r.resolution.due_at, Some(utc("2025-06-02T17:00:00Z")));
        assert!(r.update.is_none());

        let r = story.at(&s, "2025-06-02T10:30:00Z");
        assert_eq!(r.first_response.state, ClockState::Warning);
        assert_eq!(crossings(&r.first_response), [(75, utc("2025-06-02T10:30:00Z"))]);
        assert_eq!(r.first_response.next_threshold_at, Some(utc("2025-06-02T11:00:00Z")));

        let story = story.responded("2025-06-02T10:45:00Z");
        let r = story.at(&s, "2025-06-03T10:00:00Z");
        let fr = &r.first_response;
        assert_eq!((fr.state, fr.phase), (ClockState::Met, ClockPhase::Stopped));
        assert_eq!(fr.elapsed_ms, 105 * MINUTE_MS);
        assert_eq!(fr.stopped_at, Some(utc("2025-06-02T10:45:00Z")));
        assert_eq!(fr.due_at, Some(utc("2025-06-02T11:00:00Z")));
        assert_eq!(fr.next_threshold_at, None);
        let upd = r.update.as_ref().unwrap();
        assert_eq!(upd.started_at, utc("2025-06-02T10:45:00Z"));
        assert_eq!(upd.breached_at, Some(utc("2025-06-02T12:45:00Z")));
    }

    #[test]
    fn a_late_computation_finds_every_crossing_instant() {
        let s = Setup::office();
        let r = Story::new("2025-06-02T09:00:00Z", Priority::P2).at(&s, "2025-06-04T12:00:00Z");
        let fr = &r.first_response;
        assert_eq!(fr.state, ClockState::Breached);
        assert_eq!(fr.elapsed_ms, 19 * HOUR_MS);
        assert_eq!(fr.remaining_ms, -17 * HOUR_MS);
        assert_eq!(fr.breached_at, Some(utc("2025-06-02T11:00:00Z")));
        assert_eq!(fr.due_at, fr.breached_at);
        assert_eq!(
            crossings(fr),
            [(75, utc("2025-06-02T10:30:00Z")), (100, utc("2025-06-02T11:00:00Z")), (150, utc("2025-06-02T12:00:00Z"))]
        );
        assert_eq!(fr.next_threshold_at, None);
        let res = &r.resolution;
        assert_eq!(
            crossings(res),
            [(75, utc("2025-06-02T15:00:00Z")), (100, utc("2025-06-02T17:00:00Z")), (150, utc("2025-06-03T13:00:00Z"))]
        );
    }

    #[test]
    fn pausing_shifts_the_due_time_by_the_business_time_paused() {
        let s = Setup::office();
        let story = Story::new("2025-06-02T09:00:00Z", Priority::P2)
            .status("2025-06-02T11:00:00Z", "pending_customer")
            .status("2025-06-03T10:00:00Z", "in_progress");
        let r = story.at(&s, "2025-06-03T12:00:00Z");
        let res = &r.resolution;
        assert_eq!((res.elapsed_ms, res.paused_ms), (4 * HOUR_MS, 7 * HOUR_MS));
        assert_eq!(res.due_at, Some(utc("2025-06-03T16:00:00Z")), "Monday 17:00 plus 7 business hours");
        // First response used its two hours exactly when the pause began.
        assert_eq!(r.first_response.breached_at, Some(utc("2025-06-02T11:00:00Z")));

        let r = story.at(&s, "2025-06-02T15:00:00Z");
        assert_eq!((r.resolution.state, r.resolution.phase), (ClockState::Paused, ClockPhase::Paused));
        assert_eq!(r.resolution.due_at, None);
        assert_eq!(r.resolution.next_threshold_at, None);
        assert_eq!(r.resolution.paused_ms, 4 * HOUR_MS);
        assert_eq!((r.first_response.state, r.first_response.phase), (ClockState::Breached, ClockPhase::Paused));
    }

    #[test]
    fn re_prioritising_re_targets_from_creation() {
        let s = Setup::office();
        let story = Story::new("2025-06-02T09:00:00Z", Priority::P3).priority("2025-06-02T14:00:00Z", Priority::P1);
        let r = story.at(&s, "2025-06-02T16:00:00Z");
        assert_eq!(r.priority, Priority::P1);
        let res = &r.resolution;
        assert_eq!((res.priority, res.target_ms, res.elapsed_ms), (Priority::P1, 4 * HOUR_MS, 7 * HOUR_MS));
        assert_eq!(res.breached_at, Some(utc("2025-06-02T14:00:00Z")), "breached by the re-prioritisation");
        assert_eq!(
            crossings(res),
            [(75, utc("2025-06-02T14:00:00Z")), (100, utc("2025-06-02T14:00:00Z")), (150, utc("2025-06-02T15:00:00Z"))]
        );
        // Under P3 first response was already past 75% and 100%: those crossings keep their instants.
        assert_eq!(
            crossings(&r.first_response),
            [(75, utc("2025-06-02T12:00:00Z")), (100, utc("2025-06-02T13:00:00Z")), (150, utc("2025-06-02T14:00:00Z"))]
        );

        let lowered = Story::new("2025-06-02T09:00:00Z", Priority::P1).priority("2025-06-02T09:50:00Z", Priority::P3);
        let before = lowered.at(&s, "2025-06-02T09:49:00Z");
        assert_eq!(crossings(&before.first_response), [(75, utc("2025-06-02T09:45:00Z"))]);
        let after = lowered.at(&s, "2025-06-02T10:00:00Z");
        assert_eq!(after.first_response.state, ClockState::Running);
        assert!(after.first_response.thresholds.is_empty());
        assert_eq!(after.first_response.due_at, Some(utc("2025-06-02T13:00:00Z")));
    }

    #[test]
    fn resolution_resumes_on_reopen_and_a_stopped_clock_keeps_its_target() {
        let s = Setup::office();
        let story = Story::new("2025-06-02T09:00:00Z", Priority::P2)
            .status("2025-06-02T12:00:00Z", "resolved")
            .priority("2025-06-02T13:00:00Z", Priority::P1)
            .status("2025-06-03T09:00:00Z", "in_progress");
        let r = story.at(&s, "2025-06-02T15:00:00Z");
        assert_eq!((r.resolution.state, r.resolution.elapsed_ms), (ClockState::Met, 3 * HOUR_MS));
        assert_eq!(r.resolution.target_ms, 8 * HOUR_MS, "stopped before the re-prioritisation");
        assert_eq!(r.resolution.due_at, Some(utc("2025-06-02T17:00:00Z")));
        assert_eq!(r.first_response.state, ClockState::BreachedStopped);
        assert_eq!(r.first_response.stopped_at, Some(utc("2025-06-02T12:00:00Z")));

        // Reopened under P1 (4h) with 3h used: 75% is crossed at the reopen, 100% an hour later.
        let r = story.at(&s, "2025-06-03T09:30:00Z");
        let res = &r.resolution;
        assert_eq!((res.state, res.phase), (ClockState::Warning, ClockPhase::Running));
        assert_eq!((res.priority, res.elapsed_ms), (Priority::P1, 3 * HOUR_MS + 30 * MINUTE_MS));
        assert_eq!(crossings(res), [(75, utc("2025-06-03T09:00:00Z"))]);
        assert_eq!(res.due_at, Some(utc("2025-06-03T10:00:00Z")));
        let r = story.at(&s, "2025-06-03T11:00:00Z");
        assert_eq!((r.resolution.state, r.resolution.breached_at), (ClockState::Breached, Some(utc("2025-06-03T10:00:00Z"))));
    }

    #[test]
    fn update_clock_cycles() {
        let s = Setup::office();
        let story = Story::new("2025-06-02T09:00:00Z", Priority::P1)
            .responded("2025-06-02T09:30:00Z")
            .update("2025-06-02T10:00:00Z")
            .update("2025-06-02T11:40:00Z")
            .status("2025-06-02T12:10:00Z", "resolved")
            .status("2025-06-02T13:00:00Z", "in_progress");
        let r = story.at(&s, "2025-06-02T11:30:00Z");
        let upd = r.update.as_ref().unwrap();
        assert_eq!((upd.started_at, upd.elapsed_ms), (utc("2025-06-02T10:00:00Z"), 90 * MINUTE_MS));
        assert_eq!(upd.breached_at, Some(utc("2025-06-02T11:00:00Z")));
        assert_eq!(crossings(upd)[0], (75, utc("2025-06-02T10:45:00Z")));

        let upd = story.at(&s, "2025-06-02T12:00:00Z").update.unwrap();
        assert_eq!((upd.state, upd.elapsed_ms), (ClockState::Running, 20 * MINUTE_MS));
        assert_eq!(upd.earlier_breaches, [utc("2025-06-02T11:00:00Z")]);

        let upd = story.at(&s, "2025-06-02T12:30:00Z").update.unwrap();
        assert_eq!((upd.state, upd.elapsed_ms), (ClockState::Met, 30 * MINUTE_MS));

        let upd = story.at(&s, "2025-06-02T13:15:00Z").update.unwrap();
        assert_eq!((upd.started_at, upd.elapsed_ms, upd.state), (utc("2025-06-02T13:00:00Z"), 15 * MINUTE_MS, ClockState::Running));

        let lowered = story.priority("2025-06-02T13:30:00Z", Priority::P3);
        assert!(lowered.at(&s, "2025-06-02T14:00:00Z").update.is_none(), "P3 has no update interval");
    }

    #[test]
    fn events_after_now_are_ignored_and_bad_histories_are_refused() {
        let s = Setup::office();
        let story = Story::new("2025-06-02T09:00:00Z", Priority::P2).status("2025-06-02T12:00:00Z", "resolved");
        let r = story.at(&s, "2025-06-02T11:00:00Z");
        assert_eq!((r.status.as_str(), r.resolution.elapsed_ms), ("new", 2 * HOUR_MS));
        let r = story.at(&s, "2025-06-01T00:00:00Z");
        assert_eq!((r.as_of, r.resolution.elapsed_ms), (utc("2025-06-02T09:00:00Z"), 0));

        let empty = TicketHistory { statuses: &[], priorities: &[], first_response_at: None, public_updates: &[] };
        let Err(DomainError::Invalid(errors)) = compute_clocks(&empty, &s.ctx(), utc("2025-06-02T09:00:00Z")) else { panic!() };
        assert_eq!(
            errors.iter().map(|e| (e.field.as_str(), e.code)).collect::<Vec<_>>(),
            [("statuses", "required"), ("priorities", "required")]
        );

        let unordered = Story::new("2025-06-02T09:00:00Z", Priority::P2)
            .status("2025-06-02T12:00:00Z", "assigned")
            .status("2025-06-02T11:00:00Z", "in_progress");
        let Err(DomainError::Invalid(errors)) = compute_clocks(&unordered.history(), &s.ctx(), utc("2025-06-03T00:00:00Z")) else {
            panic!()
        };
        assert_eq!(errors[0].code, "not_chronological");

        let mut clock = SlaClock::start(&s.ctx(), utc("2025-06-02T09:00:00Z"), "new", Priority::P2);
        clock.apply(&s.ctx(), utc("2025-06-02T10:00:00Z"), &ClockEvent::FirstResponse).unwrap();
        let err = clock.apply(&s.ctx(), utc("2025-06-02T09:30:00Z"), &ClockEvent::PublicUpdate).unwrap_err();
        assert_eq!(err, DomainError::field("at", "not_chronological", "clock events must be applied in time order"));
    }

    #[test]
    fn policies_are_validated_and_serialised() {
        let Err(DomainError::Invalid(errors)) = ClockPolicy::new(&["pending_customer", "resolved", " "], &["resolved"], &["closed"]) else {
            panic!()
        };
        let codes: Vec<_> = errors.iter().map(|e| e.code).collect();
        assert_eq!(codes, ["required", "pause_and_stop"]);
        let p = ClockPolicy::default();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["pause_statuses"], serde_json::json!(["pending_customer", "pending_supplier"]));
        assert_eq!(serde_json::from_value::<ClockPolicy>(json).unwrap(), p);
        assert_eq!(
            serde_json::to_value(ClockEvent::Priority { priority: Priority::P1 }).unwrap(),
            serde_json::json!({"type": "priority", "priority": "P1"})
        );
    }

    // ---- property tests ----

    const STATUSES: [&str; 7] = ["new", "assigned", "in_progress", "pending_customer", "pending_supplier", "resolved", "closed"];

    #[derive(Debug, Clone)]
    struct Generated {
        statuses: Vec<(DateTime<Utc>, String)>,
        priorities: Vec<(DateTime<Utc>, Priority)>,
        first_response_at: Option<DateTime<Utc>>,
        public_updates: Vec<DateTime<Utc>>,
        end: i64,
    }

    impl Generated {
        fn history(&self) -> TicketHistory<'_> {
            TicketHistory {
                statuses: &self.statuses,
                priorities: &self.priorities,
                first_response_at: self.first_response_at,
                public_updates: &self.public_updates,
            }
        }

        /// The events after creation in the order [`replay`] applies them.
        fn events(&self) -> Vec<(DateTime<Utc>, ClockEvent)> {
            let mut all: Vec<(DateTime<Utc>, u8, ClockEvent)> = Vec::new();
            all.extend(self.priorities[1..].iter().map(|(t, p)| (*t, 0, ClockEvent::Priority { priority: *p })));
            all.extend(self.statuses[1..].iter().map(|(t, s)| (*t, 1, ClockEvent::Status { status: s.clone() })));
            all.extend(self.first_response_at.map(|t| (t, 2, ClockEvent::FirstResponse)));
            all.extend(self.public_updates.iter().map(|t| (*t, 3, ClockEvent::PublicUpdate)));
            all.sort_by_key(|e| (e.0, e.1));
            all.into_iter().map(|(t, _, e)| (t, e)).collect()
        }
    }

    /// A ticket's life in whole minutes starting within ten days of `base`.
    fn generated(base: DateTime<Utc>, max_gap_minutes: i64) -> impl Strategy<Value = Generated> {
        (0i64..(10 * 1440), 0usize..4, prop::collection::vec((0i64..max_gap_minutes, 0u8..6, 0usize..7), 0..10), 0i64..(2 * 1440)).prop_map(
            move |(start, p0, steps, tail)| {
                let created = base + chrono::TimeDelta::minutes(start);
                let mut g = Generated {
                    statuses: vec![(created, "new".into())],
                    priorities: vec![(created, Priority::ALL[p0])],
                    first_response_at: None,
                    public_updates: Vec::new(),
                    end: 0,
                };
                let mut t = created;
                for (gap, what, arg) in steps {
                    t += chrono::TimeDelta::minutes(gap);
                    match what {
                        0..=2 => g.statuses.push((t, STATUSES[arg].into())),
                        3 => g.priorities.push((t, Priority::ALL[arg % 4])),
                        4 if g.first_response_at.is_none() => g.first_response_at = Some(t),
                        _ => g.public_updates.push(t),
                    }
                }
                g.end = (t + chrono::TimeDelta::minutes(tail)).timestamp_millis();
                g
            },
        )
    }

    /// Targets in multiples of 20 minutes, so every threshold below is a whole number of minutes.
    fn any_targets() -> impl Strategy<Value = SlaTargets> {
        (1i64..=18, 0i64..=24, prop::option::of(1i64..=9), prop::sample::subsequence(vec![50u16, 75, 90, 100, 150, 200], 0..=6)).prop_map(
            |(fr, extra, upd, thresholds)| {
                let unit = 20 * MINUTE_MS;
                let level = |k: i64| pt(fr * unit * k, (fr + extra) * unit * k, upd.map(|u| u * unit * k));
                SlaTargets::new([level(1), level(2), level(3), level(4)], Thresholds::new("t", thresholds).unwrap()).unwrap()
            },
        )
    }

    fn scenario(max_gap_minutes: i64) -> impl Strategy<Value = (BusinessCalendar, SlaTargets, Generated)> {
        (any_calendar(), any_targets())
            .prop_flat_map(move |((calendar, base), targets)| (Just(calendar), Just(targets), generated(base, max_gap_minutes)))
    }

    /// A simulation of the documented rules a minute at a time, sharing nothing with the engine
    /// but the calendar's `is_working_at`.
    #[derive(Debug, Clone, PartialEq)]
    struct ModelClock {
        started: bool,
        phase: Phase,
        priority: Priority,
        elapsed: i64,
        paused: i64,
        crossed: Vec<(u16, i64)>,
        breached: Option<i64>,
    }

    fn model(g: &Generated, ctx: &ClockContext<'_>, now: i64) -> [ModelClock; 3] {
        let kinds = TargetKind::ALL;
        let created = g.statuses[0].0.timestamp_millis();
        let p0 = g.priorities[0].1;
        let phase = |kind, status: &str| ctx.policy.phase_for(kind, status);
        let fresh = |started: bool, phase: Phase| ModelClock {
            started,
            phase,
            priority: p0,
            elapsed: 0,
            paused: 0,
            crossed: vec![],
            breached: None,
        };
        let mut m = [fresh(true, phase(kinds[0], "new")), fresh(true, phase(kinds[1], "new")), fresh(false, Phase::NotStarted)];
        let mut status = "new".to_string();
        let mut priority = p0;
        let check = |c: &mut ModelClock, kind: TargetKind, at: i64, drop: bool| {
            let Some(target) = ctx.targets.target(c.priority, kind) else {
                c.crossed.clear();
                c.breached = None;
                return;
            };
            for &p in ctx.targets.thresholds().percents() {
                let on = c.elapsed * 100 >= i64::from(p) * target;
                let known = c.crossed.iter().any(|x| x.0 == p);
                if on && !known {
                    c.crossed.push((p, at));
                } else if !on && known && drop {
                    c.crossed.retain(|x| x.0 != p);
                }
            }
            c.crossed.sort_by_key(|x| x.0);
            match (c.elapsed >= target, c.breached) {
                (true, None) => c.breached = Some(at),
                (false, Some(_)) if drop => c.breached = None,
                _ => {}
            }
        };
        let events: Vec<(i64, ClockEvent)> =
            g.events().into_iter().map(|(t, e)| (t.timestamp_millis(), e)).filter(|(t, _)| *t <= now).collect();
        let mut next = 0;
        let mut t = created;
        loop {
            while next < events.len() && events[next].0 == t {
                match &events[next].1 {
                    ClockEvent::Status { status: s } => {
                        status = s.clone();
                        if m[0].phase != Phase::Stopped {
                            m[0].phase = phase(kinds[0], s);
                        }
                        let was = m[1].phase;
                        m[1].phase = phase(kinds[1], s);
                        if was == Phase::Stopped && m[1].phase != Phase::Stopped {
                            m[1].priority = priority;
                            check(&mut m[1], kinds[1], t, true);
                        }
                        if m[2].started {
                            let was = m[2].phase;
                            m[2].phase = phase(kinds[2], s);
                            if was == Phase::Stopped && m[2].phase != Phase::Stopped {
                                m[2] = fresh(true, m[2].phase);
                                m[2].priority = priority;
                            }
                        }
                    }
                    ClockEvent::Priority { priority: p } => {
                        priority = *p;
                        for (c, kind) in m.iter_mut().zip(kinds) {
                            if !c.started {
                                c.priority = *p;
                            } else if c.phase != Phase::Stopped {
                                c.priority = *p;
                                check(c, kind, t, true);
                            }
                        }
                    }
                    ClockEvent::FirstResponse | ClockEvent::PublicUpdate => {
                        if matches!(events[next].1, ClockEvent::FirstResponse) {
                            m[0].phase = Phase::Stopped;
                        }
                        if m[2].phase != Phase::Stopped {
                            m[2] = fresh(true, phase(kinds[2], &status));
                            m[2].priority = priority;
                        }
                    }
                }
                next += 1;
            }
            if t >= now {
                return m;
            }
            if ctx.calendar.is_working_at(from_ms(t)) {
                for (c, kind) in m.iter_mut().zip(kinds) {
                    match c.phase {
                        Phase::Running if c.started => {
                            c.elapsed += MINUTE_MS;
                            check(c, kind, t + MINUTE_MS, false);
                        }
                        Phase::Paused if c.started => c.paused += MINUTE_MS,
                        _ => {}
                    }
                }
            }
            t += MINUTE_MS;
        }
    }

    fn same_as_model(r: &SlaReport, m: &[ModelClock; 3]) -> Result<(), TestCaseError> {
        for (kind, mc) in TargetKind::ALL.into_iter().zip(m) {
            let Some(c) = r.get(kind) else {
                prop_assert!(kind == TargetKind::Update, "{kind:?} missing");
                continue;
            };
            prop_assert!(mc.started, "{:?} started only in the engine", kind);
            prop_assert_eq!((c.elapsed_ms, c.paused_ms, c.priority), (mc.elapsed, mc.paused, mc.priority), "{:?}", kind);
            let crossed: Vec<(u16, i64)> = c.thresholds.iter().map(|x| (x.percent, x.crossed_at.timestamp_millis())).collect();
            prop_assert_eq!(&crossed, &mc.crossed, "{:?}", kind);
            prop_assert_eq!(c.breached_at.map(|b| b.timestamp_millis()), mc.breached, "{:?}", kind);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(crate::sla::calendar::tests::config(40))]

        #[test]
        fn the_engine_matches_a_minute_by_minute_simulation((calendar, targets, g) in scenario(12 * 60)) {
            let policy = ClockPolicy::default();
            let ctx = ClockContext { calendar: &calendar, targets: &targets, policy: &policy };
            let report = compute_clocks(&g.history(), &ctx, from_ms(g.end)).unwrap();
            same_as_model(&report, &model(&g, &ctx, g.end))?;
        }
    }

    proptest! {
        #![proptest_config(crate::sla::calendar::tests::config(64))]

        #[test]
        fn incremental_equals_from_scratch(
            (calendar, targets, g) in scenario(3 * 1440),
            store_at in prop::collection::vec(any::<bool>(), 10),
        ) {
            let policy = ClockPolicy::default();
            let ctx = ClockContext { calendar: &calendar, targets: &targets, policy: &policy };
            let h = g.history();
            let mut clock = SlaClock::start(&ctx, g.statuses[0].0, &g.statuses[0].1, g.priorities[0].1);
            let events = g.events();
            for (i, (at, event)) in events.iter().enumerate() {
                let _ = clock.report(&ctx, *at + chrono::TimeDelta::hours(5));
                if store_at[i % store_at.len()] {
                    clock = serde_json::from_str(&serde_json::to_string(&clock).unwrap()).unwrap();
                }
                clock.apply(&ctx, *at, event).unwrap();
                if events.get(i + 1).is_none_or(|(next, _)| next > at) {
                    prop_assert_eq!(clock.report(&ctx, *at), compute_clocks(&h, &ctx, *at).unwrap());
                    prop_assert_eq!(&clock, &replay(&h, &ctx, *at).unwrap());
                }
            }
            let end = from_ms(g.end);
            prop_assert_eq!(clock.report(&ctx, end), compute_clocks(&h, &ctx, end).unwrap());
        }

        #[test]
        fn elapsed_never_decreases_and_crossings_keep_their_instants(
            (calendar, targets, g) in scenario(3 * 1440),
            a in 0.0f64..1.0,
            b in 0.0f64..1.0,
        ) {
            let policy = ClockPolicy::default();
            let ctx = ClockContext { calendar: &calendar, targets: &targets, policy: &policy };
            let created = g.statuses[0].0.timestamp_millis();
            let span = (g.end - created) as f64;
            let (t1, t2) = (created + (span * a.min(b)) as i64, created + (span * a.max(b)) as i64);
            let (r1, r2) = (compute_clocks(&g.history(), &ctx, from_ms(t1)).unwrap(), compute_clocks(&g.history(), &ctx, from_ms(t2)).unwrap());
            let quiet = calendar.between_ms(t1, t2) == 0;
            let reprioritised = g.priorities.iter().any(|(t, _)| (t1..=t2).contains(&t.timestamp_millis()));
            for (c1, c2) in [(&r1.first_response, &r2.first_response), (&r1.resolution, &r2.resolution)] {
                // A clock that stopped keeps its target until reopened, so a priority changed
                // meanwhile re-targets it at the reopen.
                let retargeted = reprioritised || c1.priority != c2.priority;
                prop_assert!(c2.elapsed_ms >= c1.elapsed_ms);
                prop_assert!(c2.paused_ms >= c1.paused_ms);
                if quiet {
                    prop_assert_eq!((c1.elapsed_ms, c1.paused_ms), (c2.elapsed_ms, c2.paused_ms), "time outside working hours counted");
                }
                if !retargeted {
                    for crossing in &c1.thresholds {
                        prop_assert!(c2.thresholds.contains(crossing), "{:?} lost", crossing);
                    }
                    if c1.breached_at.is_some() {
                        prop_assert_eq!(c1.breached_at, c2.breached_at);
                    }
                }
            }
        }

        #[test]
        fn pausing_shifts_the_due_time_exactly(
            ((calendar, base), targets) in (any_calendar(), any_targets()),
            p0 in 0usize..4,
            start in 0i64..(5 * DAY_MS),
            pause_at in 0i64..(8 * DAY_MS),
            pause_for in 0i64..(6 * DAY_MS),
            after in 0i64..DAY_MS,
            status in prop::sample::select(vec!["pending_customer", "pending_supplier"]),
        ) {
            let policy = ClockPolicy::default();
            let ctx = ClockContext { calendar: &calendar, targets: &targets, policy: &policy };
            let created = from_ms(base.timestamp_millis() + start);
            let (p1, p2) = (created + chrono::TimeDelta::milliseconds(pause_at), created + chrono::TimeDelta::milliseconds(pause_at + pause_for));
            let now = p2 + chrono::TimeDelta::milliseconds(after);
            let priorities = [(created, Priority::ALL[p0])];
            let plain = [(created, "new".to_string())];
            let paused = [(created, "new".to_string()), (p1, status.to_string()), (p2, "in_progress".to_string())];
            let history = |statuses| TicketHistory { statuses, priorities: &priorities, first_response_at: None, public_updates: &[] };
            let without = compute_clocks(&history(&plain), &ctx, created).unwrap();
            let with = compute_clocks(&history(&paused), &ctx, now).unwrap();
            let pause = calendar.business_millis_between(p1, p2);
            for kind in [TargetKind::FirstResponse, TargetKind::Resolution] {
                let (w0, w1) = (without.get(kind).unwrap(), with.get(kind).unwrap());
                let due = w0.due_at.unwrap();
                let expected = if p1 < due { calendar.add_business_millis(due, pause) } else { due };
                prop_assert_eq!(w1.due_at, Some(expected), "{:?}", kind);
                let paused_before_due = if p1 < due { pause } else { 0 };
                prop_assert!(w1.paused_ms == pause, "{:?}: paused {} of {} ({})", kind, w1.paused_ms, pause, paused_before_due);
            }
        }
    }

    #[test]
    #[ignore = "timing: cargo test -p keel-domain --release clocks_for_100k -- --ignored --nocapture"]
    fn clocks_for_100k_tickets() {
        let calendar = BusinessCalendar::china_mainland([2025, 2026]).unwrap();
        let (targets, policy) = (targets(), ClockPolicy::default());
        let ctx = ClockContext { calendar: &calendar, targets: &targets, policy: &policy };
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: i64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as i64
        };
        let base = utc("2025-01-01T00:00:00Z");
        let stories: Vec<(Story, DateTime<Utc>)> = (0..100_000)
            .map(|_| {
                let mut t = base + chrono::TimeDelta::minutes(next(700 * 1440));
                let mut story =
                    Story { statuses: vec![(t, "new".into())], priorities: vec![(t, Priority::ALL[next(4) as usize])], ..Story::default() };
                for status in ["assigned", "in_progress", "pending_customer", "in_progress", "resolved"] {
                    t += chrono::TimeDelta::minutes(next(2 * 1440));
                    story.statuses.push((t, status.into()));
                    if status == "in_progress" && story.first_response_at.is_none() {
                        story.first_response_at = Some(t);
                    }
                    if next(4) == 0 {
                        story.priorities.push((t, Priority::ALL[next(4) as usize]));
                    }
                }
                let now = t - chrono::TimeDelta::minutes(next(3 * 1440));
                (story, now)
            })
            .collect();
        let mut breached = 0;
        let took = (0..3)
            .map(|_| {
                let started = std::time::Instant::now();
                breached = 0;
                for (story, now) in &stories {
                    let r = compute_clocks(&story.history(), &ctx, *now).unwrap();
                    breached += usize::from(r.resolution.breached_at.is_some());
                }
                started.elapsed()
            })
            .min()
            .unwrap();
        println!("100,000 tickets in {took:?} ({breached} resolution breaches)");
        if !cfg!(debug_assertions) {
            assert!(took < std::time::Duration::from_secs(1), "{took:?}");
        }
    }
}

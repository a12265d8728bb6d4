//! The background job runner shared by every process: claims due jobs under a lease, runs
//! them, and reschedules recurring ones; safe with any number of instances on one database.

use crate::{App, AppError, Result};
use keel_domain::FieldError;
use keel_domain::audit::AuditAction;
use keel_store::jobs::{self, Job, NewJob};
use keel_store::{AnyConnection, kernel};
use std::time::Duration;

/// How a process runs jobs (`job_tick_ms` and `job_lease_ms` in `keel.toml` / `KEEL_*`).
#[derive(Debug, Clone, Copy)]
pub struct JobConfig {
    /// How long the runner sleeps when no job is due.
    pub tick: Duration,
    /// How long a claimed job is leased; a job whose worker died is taken up again after it.
    pub lease_ms: i64,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig { tick: Duration::from_secs(2), lease_ms: 5 * 60_000 }
    }
}

/// The setting that overrides a built-in job's schedule: `job.schedule.<kind>`.
pub fn schedule_setting(kind: &str) -> String {
    format!("job.schedule.{kind}")
}

/// A built-in job's schedule as administrators see it.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct JobSchedule {
    pub kind: String,
    /// The shipped schedule.
    pub default: String,
    /// The administrator's override (`job.schedule.<kind>`), if any.
    #[serde(rename = "override")]
    pub override_: Option<String>,
    /// The schedule in force.
    pub schedule: String,
}

/// Checks a cron schedule (five fields, or six with seconds first).
pub fn check_schedule(schedule: &str) -> std::result::Result<(), FieldError> {
    let parser = croner::parser::CronParser::builder().seconds(croner::parser::Seconds::Optional).build();
    if schedule.split_whitespace().count() < 5 || parser.parse(schedule).is_err() {
        return Err(FieldError::new(
            "schedule",
            "invalid_schedule",
            "a cron schedule of five fields (minute hour day month weekday), or six with seconds first, is required",
        ));
    }
    Ok(())
}

/// The schedule in force for a built-in job: the override when it is valid, else the shipped one.
async fn effective_schedule(conn: &mut AnyConnection, kind: &str, default: &str) -> Result<(String, Option<String>)> {
    let o = kernel::get_setting(conn, &schedule_setting(kind)).await?.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    match &o {
        Some(v) if check_schedule(v).is_ok() => Ok((v.clone(), o)),
        _ => Ok((default.to_string(), o)),
    }
}

/// Recurring platform jobs, seeded on start (one row each, whatever the number of instances).
/// Schedules have five fields, or six with seconds first.
pub const BUILTIN: &[(&str, &str)] = &[
    ("audit_checkpoint", "* * * * *"),
    ("session_sweep", "17 * * * *"),
    ("sla_escalate", "*/30 * * * * *"),
    ("sla_review", "23 * * * *"),
    ("notification_dispatch", "*/5 * * * * *"),
    ("notification_delivery", "*/5 * * * * *"),
    ("ticket_auto_close", "7,37 * * * *"),
    ("mail_poll", "* * * * *"),
    ("outbox_prune", "41 3 * * *"),
];

/// Builtin jobs that also run right after start, not only at their next scheduled time.
const RUN_AT_START: &[&str] = &["sla_escalate", "notification_dispatch", "notification_delivery"];

fn next_run(schedule: &str, after_ms: i64) -> Option<i64> {
    let parser = croner::parser::CronParser::builder().seconds(croner::parser::Seconds::Optional).build();
    let cron = parser.parse(schedule).ok()?;
    let after = chrono::DateTime::from_timestamp_millis(after_ms)?;
    cron.find_next_occurrence(&after, false).ok().map(|t| t.timestamp_millis())
}

impl App {
    /// Seeds the recurring platform jobs if they are not there yet.
    pub async fn seed_jobs(&self) -> Result<()> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        for (kind, default) in BUILTIN {
            let (schedule, _) = effective_schedule(&mut tx, kind, default).await?;
            let at = if RUN_AT_START.contains(kind) { now } else { next_run(&schedule, now).unwrap_or(now) };
            let new = NewJob { kind, unique_key: Some(kind), payload: "{}", schedule: Some(&schedule), run_at: at, max_attempts: 3 };
            if !jobs::enqueue(&mut tx, &new, now).await? {
                jobs::reschedule(&mut tx, kind, &schedule, at).await?;
                if RUN_AT_START.contains(kind) {
                    jobs::run_now(&mut tx, kind, now).await?;
                }
            }
        }
        tx.commit().await.map_err(keel_store::StoreError::from)?;
        Ok(())
    }

    async fn run_job(&self, job: &Job) -> Result<()> {
        match job.kind.as_str() {
            "audit_checkpoint" => {
                self.audit_checkpoint().await?;
            }
            "session_sweep" => {
                let mut tx = self.db.begin().await?;
                keel_store::accounts::sweep_sessions(&mut tx, self.now()).await?;
                tx.commit().await.map_err(keel_store::StoreError::from)?;
            }
            "sla_escalate" => {
                self.run_sla_escalations().await?;
            }
            "sla_review" => {
                self.run_sla_reviews().await?;
            }
            crate::sla_clocks::RECOMPUTE_JOB => {
                self.run_sla_recompute(&job.payload).await?;
            }
            "notification_dispatch" => {
                self.dispatch_announcements().await?;
            }
            "notification_delivery" => {
                for _ in 0..20 {
                    if self.deliver_due(10).await? < 10 {
                        break;
                    }
                }
            }
            "ticket_auto_close" => {
                self.auto_close_resolved().await?;
            }
            "mail_poll" => {
                self.poll_mailboxes().await?;
            }
            "outbox_prune" => {
                self.prune_outbox().await?;
            }
            other => return Err(AppError::Internal(format!("unknown job kind {other}"))),
        }
        Ok(())
    }

    /// Claims and runs the jobs due now; returns how many ran.
    pub async fn run_due_jobs(&self, limit: i64) -> Result<usize> {
        let owner = self.instance_id.clone();
        let now = self.now();
        let claimed = jobs::claim(&self.db, &owner, now, self.jobs.lease_ms, limit).await?;
        for job in &claimed {
            let outcome = self.run_leased(job).await;
            let now = self.now();
            let mut tx = self.db.begin().await?;
            match outcome {
                Ok(()) => {
                    let builtin = BUILTIN.iter().find(|(k, _)| job.unique_key.as_deref() == Some(*k));
                    let schedule = match builtin {
                        Some((kind, default)) => Some(effective_schedule(&mut tx, kind, default).await?.0),
                        None => job.schedule.clone(),
                    };
                    let next = schedule.as_deref().and_then(|s| next_run(s, now));
                    if !jobs::complete(&mut tx, &job.id, &owner, next, now).await? {
                        tracing::warn!(job = %job.id, "job lease was lost before completion");
                    }
                }
                Err(e) => {
                    tracing::warn!(job = %job.id, kind = %job.kind, error = %e, "job failed");
                    jobs::fail(&mut tx, job, &owner, &e.to_string(), now).await?;
                }
            }
            tx.commit().await.map_err(keel_store::StoreError::from)?;
        }
        Ok(claimed.len())
    }

    /// Runs a claimed job, renewing its lease every third of the lease while it runs; a job
    /// whose process died is taken over one lease after its last renewal.
    async fn run_leased(&self, job: &Job) -> Result<()> {
        let beat = Duration::from_millis(u64::try_from(self.jobs.lease_ms / 3).unwrap_or(0).max(100));
        let run = self.run_job(job);
        tokio::pin!(run);
        loop {
            tokio::select! {
                r = &mut run => return r,
                _ = tokio::time::sleep(beat) => {
                    match jobs::extend_lease(&self.db, &job.id, &self.instance_id, self.now() + self.jobs.lease_ms).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(job = %job.id, kind = %job.kind, "job lease was lost while running"),
                        Err(e) => tracing::warn!(job = %job.id, error = %e, "job lease not renewed"),
                    }
                }
            }
        }
    }

    /// Runs jobs until `shutdown` resolves. One job is claimed at a time, so the due jobs
    /// spread over the instances instead of waiting behind a long one in a single process.
    pub async fn job_loop(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.run_due_jobs(1).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "job runner"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.jobs.tick) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    pub async fn list_jobs(&self, actor: &crate::Principal, status: Option<&str>) -> Result<Vec<Job>> {
        if !actor.is_admin() && !actor.has(keel_domain::identity::Role::Auditor) {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        Ok(jobs::list(&mut c, status, 200).await?)
    }

    pub async fn retry_job(&self, actor: &crate::Principal, id: &str) -> Result<()> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        let mut tx = self.db.begin().await?;
        if !jobs::retry(&mut tx, id, self.now()).await? {
            return Err(AppError::NotFound);
        }
        tx.commit().await.map_err(keel_store::StoreError::from)?;
        Ok(())
    }

    /// Every built-in job with its shipped schedule and the override in force.
    pub async fn job_schedules(&self, actor: &crate::Principal) -> Result<Vec<JobSchedule>> {
        if !actor.is_admin() && !actor.has(keel_domain::identity::Role::Auditor) {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        let mut out = Vec::new();
        for (kind, default) in BUILTIN {
            let (schedule, override_) = effective_schedule(&mut c, kind, default).await?;
            out.push(JobSchedule { kind: kind.to_string(), default: default.to_string(), override_, schedule });
        }
        Ok(out)
    }

    /// Overrides a built-in job's schedule (`None` or blank goes back to the shipped one);
    /// the job's next run moves at once, in every instance.
    pub async fn set_job_schedule(&self, actor: &crate::Principal, kind: &str, schedule: Option<&str>) -> Result<JobSchedule> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        let Some((_, default)) = BUILTIN.iter().find(|(k, _)| *k == kind) else { return Err(AppError::NotFound) };
        let schedule = schedule.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|s| !s.is_empty());
        if let Some(s) = &schedule {
            check_schedule(s).map_err(|e| AppError::Validation(vec![e]))?;
        }
        let mut w = self.write(actor).await?;
        let key = schedule_setting(kind);
        let (_, before) = effective_schedule(&mut w.tx, kind, default).await?;
        kernel::set_setting(&mut w.tx, &key, schedule.as_deref().unwrap_or(""), w.now).await?;
        let in_force = schedule.clone().unwrap_or_else(|| default.to_string());
        let at = next_run(&in_force, w.now).unwrap_or(w.now);
        jobs::reschedule(&mut w.tx, kind, &in_force, at).await?;
        let snap = |v: &Option<String>| serde_json::json!({ "schedule": v });
        w.record("setting", &key, AuditAction::Update, Some(&snap(&before)), Some(&snap(&schedule))).await?;
        w.commit().await?;
        Ok(JobSchedule { kind: kind.to_string(), default: default.to_string(), override_: schedule, schedule: in_force })
    }
}

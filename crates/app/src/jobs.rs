//! The background job runner shared by every process: claims due jobs under a lease, runs
//! them, and reschedules recurring ones; safe with any number of instances on one database.

use crate::{App, AppError, Result};
use keel_store::jobs::{self, Job, NewJob};
use std::time::Duration;

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
        for (kind, schedule) in BUILTIN {
            let at = if RUN_AT_START.contains(kind) { now } else { next_run(schedule, now).unwrap_or(now) };
            let new = NewJob { kind, unique_key: Some(kind), payload: "{}", schedule: Some(schedule), run_at: at, max_attempts: 3 };
            if !jobs::enqueue(&mut tx, &new, now).await? && RUN_AT_START.contains(kind) {
                jobs::run_now(&mut tx, kind, now).await?;
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
        let claimed = jobs::claim(&self.db, &owner, now, 5 * 60_000, limit).await?;
        for job in &claimed {
            let outcome = self.run_job(job).await;
            let now = self.now();
            let mut tx = self.db.begin().await?;
            match outcome {
                Ok(()) => {
                    let next = job.schedule.as_deref().and_then(|s| next_run(s, now));
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

    /// Runs jobs until `shutdown` resolves.
    pub async fn job_loop(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.run_due_jobs(20).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "job runner"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
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
}

//! The background job queue every process schedules work on: rows with leases, so any number
//! of `keel serve` instances on one PostgreSQL run each job once, and a job whose worker died is
//! taken up again when its lease runs out.

use crate::rows::RowExt;
use crate::{AnyConnection, Backend, Db, Result};
use sqlx::any::AnyRow;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub unique_key: Option<String>,
    pub payload: String,
    pub schedule: Option<String>,
    pub status: String,
    pub run_at: i64,
    pub attempts: i64,
    pub max_attempts: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

const COLS: &str =
    "id, kind, unique_key, payload, schedule, status, run_at, attempts, max_attempts, lease_owner, lease_until, last_error, updated_at";

fn job(r: &AnyRow) -> Result<Job> {
    Ok(Job {
        id: r.text("id")?,
        kind: r.text("kind")?,
        unique_key: r.opt_text("unique_key")?,
        payload: r.text("payload")?,
        schedule: r.opt_text("schedule")?,
        status: r.text("status")?,
        run_at: r.int("run_at")?,
        attempts: r.int("attempts")?,
        max_attempts: r.int("max_attempts")?,
        lease_owner: r.opt_text("lease_owner")?,
        lease_until: r.opt_int("lease_until")?,
        last_error: r.opt_text("last_error")?,
        updated_at: r.int("updated_at")?,
    })
}

pub struct NewJob<'a> {
    pub kind: &'a str,
    /// At most one job per key exists; enqueueing an existing key does nothing.
    pub unique_key: Option<&'a str>,
    pub payload: &'a str,
    /// A cron expression for recurring jobs, evaluated by the runner after each run.
    pub schedule: Option<&'a str>,
    pub run_at: i64,
    pub max_attempts: i64,
}

/// Inserts a job; `on_conflict` says what an existing row with its unique key gets.
async fn insert(conn: &mut AnyConnection, j: &NewJob<'_>, now: i64, on_conflict: &str) -> Result<u64> {
    let sql = format!(
        "INSERT INTO jobs (id, kind, unique_key, payload, schedule, status, run_at, attempts, max_attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, 0, $7, $8, $8) ON CONFLICT (unique_key) {on_conflict}"
    );
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(crate::new_id())
        .bind(j.kind)
        .bind(j.unique_key)
        .bind(j.payload)
        .bind(j.schedule)
        .bind(j.run_at)
        .bind(j.max_attempts)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

/// Enqueues a job inside the caller's transaction. Returns false when its unique key exists.
pub async fn enqueue(conn: &mut AnyConnection, j: &NewJob<'_>, now: i64) -> Result<bool> {
    Ok(insert(conn, j, now, "DO NOTHING").await? == 1)
}

/// Queues a one-off job under its unique key to run at `run_at`: inserted when missing, put
/// back to `pending` when it is done or failed, left as it is while it waits or runs.
pub async fn wake(conn: &mut AnyConnection, j: &NewJob<'_>, now: i64) -> Result<()> {
    insert(
        conn,
        j,
        now,
        "DO UPDATE SET status = 'pending', run_at = excluded.run_at, attempts = 0, payload = excluded.payload, last_error = NULL, \
         updated_at = excluded.updated_at WHERE jobs.status IN ('done', 'failed')",
    )
    .await?;
    Ok(())
}

/// Leases up to `limit` due jobs to `owner` until `now + lease_ms`.
pub async fn claim(db: &Db, owner: &str, now: i64, lease_ms: i64, limit: i64) -> Result<Vec<Job>> {
    let sql: &'static str = match db.backend() {
        Backend::Postgres => {
            "UPDATE jobs SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, status = 'running', updated_at = $3 \
             WHERE id IN (SELECT id FROM jobs WHERE (status = 'pending' OR (status = 'running' AND lease_until < $3)) AND run_at <= $3 \
             ORDER BY run_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING id, kind, unique_key, payload, schedule, status, run_at, attempts, max_attempts, lease_owner, lease_until, last_error, updated_at"
        }
        Backend::Sqlite => {
            "UPDATE jobs SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, status = 'running', updated_at = $3 \
             WHERE id IN (SELECT id FROM jobs WHERE (status = 'pending' OR (status = 'running' AND lease_until < $3)) AND run_at <= $3 \
             ORDER BY run_at LIMIT $4) \
             RETURNING id, kind, unique_key, payload, schedule, status, run_at, attempts, max_attempts, lease_owner, lease_until, last_error, updated_at"
        }
    };
    let mut tx = db.begin().await?;
    let rows = sqlx::query(sql).bind(owner).bind(now + lease_ms).bind(now).bind(limit).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    rows.iter().map(job).collect()
}

/// Marks a leased job done; a recurring job is put back for its next run instead.
/// Returns false when the lease was lost (another worker took the job over).
pub async fn complete(conn: &mut AnyConnection, id: &str, owner: &str, next_run: Option<i64>, now: i64) -> Result<bool> {
    let r = match next_run {
        Some(at) => {
            sqlx::query("UPDATE jobs SET status = 'pending', run_at = $1, attempts = 0, lease_owner = NULL, lease_until = NULL, last_error = NULL, updated_at = $2 WHERE id = $3 AND lease_owner = $4")
                .bind(at)
                .bind(now)
                .bind(id)
                .bind(owner)
                .execute(&mut *conn)
                .await?
        }
        None => {
            sqlx::query("UPDATE jobs SET status = 'done', lease_owner = NULL, lease_until = NULL, updated_at = $1 WHERE id = $2 AND lease_owner = $3")
                .bind(now)
                .bind(id)
                .bind(owner)
                .execute(&mut *conn)
                .await?
        }
    };
    Ok(r.rows_affected() == 1)
}

/// Records a failure: retried with exponential backoff, or moved to `failed` (the dead-letter
/// list administrators see) after its last attempt.
pub async fn fail(conn: &mut AnyConnection, j: &Job, owner: &str, error: &str, now: i64) -> Result<()> {
    let dead = j.attempts >= j.max_attempts && j.schedule.is_none();
    let backoff = 1000i64 * 2i64.pow(j.attempts.clamp(0, 12) as u32);
    sqlx::query("UPDATE jobs SET status = $1, run_at = $2, lease_owner = NULL, lease_until = NULL, last_error = $3, updated_at = $4 WHERE id = $5 AND lease_owner = $6")
        .bind(if dead { "failed" } else { "pending" })
        .bind(now + backoff)
        .bind(error)
        .bind(now)
        .bind(&j.id)
        .bind(owner)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn list(conn: &mut AnyConnection, status: Option<&str>, limit: i64) -> Result<Vec<Job>> {
    let mut q = crate::sql::Sql::new(format!("SELECT {COLS} FROM jobs"));
    if let Some(s) = status {
        q.push(" WHERE status = ").push_bind(s.to_string());
    }
    q.push(" ORDER BY updated_at DESC, id DESC LIMIT ").push_bind(limit);
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter().map(job).collect()
}

/// Puts a failed job back in the queue (an administrator's retry).
pub async fn retry(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool> {
    let r =
        sqlx::query("UPDATE jobs SET status = 'pending', run_at = $1, attempts = 0, updated_at = $1 WHERE id = $2 AND status = 'failed'")
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    Ok(r.rows_affected() == 1)
}

/// Brings a waiting recurring job forward to `now` (used on start for jobs that must not wait).
pub async fn run_now(conn: &mut AnyConnection, unique_key: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE jobs SET run_at = $1, updated_at = $1 WHERE unique_key = $2 AND status = 'pending' AND run_at > $1")
        .bind(now)
        .bind(unique_key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Gives a recurring job a new schedule; a waiting job moves to `run_at`, a running one keeps
/// its lease and takes the new schedule when it completes. Nothing changes when the schedule
/// is already the same.
pub async fn reschedule(conn: &mut AnyConnection, unique_key: &str, schedule: &str, run_at: i64) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET schedule = $1, run_at = CASE WHEN status = 'pending' THEN $2 ELSE run_at END \
         WHERE unique_key = $3 AND (schedule IS NULL OR schedule <> $1)",
    )
    .bind(schedule)
    .bind(run_at)
    .bind(unique_key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Extends the lease of a job its owner is still running (a heartbeat), so a long run is not
/// taken over by another instance. Returns false when the lease was lost.
pub async fn extend_lease(db: &Db, id: &str, owner: &str, until: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let r = sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'running'")
        .bind(until)
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(r.rows_affected() == 1)
}

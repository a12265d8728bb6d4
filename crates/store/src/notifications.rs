//! Communication with customers and staff (ISO/IEC 20000-1 §8.3.2): storage of notification
//! deliveries (leased like jobs, so any number of instances send each one once), template
//! overrides, chat webhooks and the recipients an audience resolves to.

use crate::rows::RowExt;
use crate::{AnyConnection, Backend, Db, Result};
use sqlx::any::AnyRow;

/// An announcement waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxAnnouncement {
    pub id: String,
    pub entity_type: String,
    pub entity_id: String,
    pub payload: String,
    pub created_at: i64,
}

/// Announcements created at or after `since` that were not dispatched yet, oldest first.
pub async fn undispatched(conn: &mut AnyConnection, topic: &str, since: i64, limit: i64) -> Result<Vec<OutboxAnnouncement>> {
    let rows = sqlx::query(
        "SELECT o.id, o.entity_type, o.entity_id, o.payload, o.created_at FROM outbox o \
         LEFT JOIN notification_dispatched d ON d.announcement_id = o.id \
         WHERE o.topic = $1 AND o.created_at >= $2 AND d.announcement_id IS NULL ORDER BY o.created_at, o.id LIMIT $3",
    )
    .bind(topic)
    .bind(since)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxAnnouncement {
                id: r.text("id")?,
                entity_type: r.text("entity_type")?,
                entity_id: r.text("entity_id")?,
                payload: r.text("payload")?,
                created_at: r.int("created_at")?,
            })
        })
        .collect()
}

pub async fn mark_dispatched(conn: &mut AnyConnection, announcement_id: &str, deliveries: i64, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO notification_dispatched (announcement_id, deliveries, dispatched_at) VALUES ($1, $2, $3) ON CONFLICT (announcement_id) DO NOTHING",
    )
    .bind(announcement_id)
    .bind(deliveries)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, Default)]
pub struct Delivery {
    pub id: String,
    pub announcement_id: String,
    pub event_kind: String,
    pub entity_type: String,
    pub entity_id: String,
    /// `email` or `webhook`.
    pub channel: String,
    /// An email address, or the webhook's id.
    pub recipient: String,
    pub recipient_user_id: Option<String>,
    pub language: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    /// The record the message belongs to, for mail threading (e.g. the ticket id).
    pub thread_key: Option<String>,
    pub from_address: Option<String>,
    /// `pending`, `sending`, `sent` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub next_attempt_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const DELIVERY_COLS: &str = "id, announcement_id, event_kind, entity_type, entity_id, channel, recipient, recipient_user_id, language, subject, \
     body_text, body_html, thread_key, from_address, status, attempts, max_attempts, next_attempt_at, lease_owner, lease_until, last_error, \
     sent_at, created_at, updated_at";

fn delivery(r: &AnyRow) -> Result<Delivery> {
    Ok(Delivery {
        id: r.text("id")?,
        announcement_id: r.text("announcement_id")?,
        event_kind: r.text("event_kind")?,
        entity_type: r.text("entity_type")?,
        entity_id: r.text("entity_id")?,
        channel: r.text("channel")?,
        recipient: r.text("recipient")?,
        recipient_user_id: r.opt_text("recipient_user_id")?,
        language: r.text("language")?,
        subject: r.text("subject")?,
        body_text: r.text("body_text")?,
        body_html: r.text("body_html")?,
        thread_key: r.opt_text("thread_key")?,
        from_address: r.opt_text("from_address")?,
        status: r.text("status")?,
        attempts: r.int("attempts")?,
        max_attempts: r.int("max_attempts")?,
        next_attempt_at: r.int("next_attempt_at")?,
        lease_owner: r.opt_text("lease_owner")?,
        lease_until: r.opt_int("lease_until")?,
        last_error: r.opt_text("last_error")?,
        sent_at: r.opt_int("sent_at")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

/// Inserts a pending delivery; returns false when the same announcement, channel and recipient
/// already has one (another dispatcher got there first).
pub async fn insert_delivery(conn: &mut AnyConnection, d: &Delivery) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO notification_deliveries (id, announcement_id, event_kind, entity_type, entity_id, channel, recipient, recipient_user_id, \
         language, subject, body_text, body_html, thread_key, from_address, status, attempts, max_attempts, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending', 0, $15, $16, $17, $17) \
         ON CONFLICT (announcement_id, channel, recipient) DO NOTHING",
    )
    .bind(&d.id)
    .bind(&d.announcement_id)
    .bind(&d.event_kind)
    .bind(&d.entity_type)
    .bind(&d.entity_id)
    .bind(&d.channel)
    .bind(&d.recipient)
    .bind(&d.recipient_user_id)
    .bind(&d.language)
    .bind(&d.subject)
    .bind(&d.body_text)
    .bind(&d.body_html)
    .bind(&d.thread_key)
    .bind(&d.from_address)
    .bind(d.max_attempts)
    .bind(d.next_attempt_at)
    .bind(d.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Leases up to `limit` due deliveries to `owner` until `now + lease_ms`; a delivery whose
/// sender died is taken up again when its lease runs out.
pub async fn claim_deliveries(db: &Db, owner: &str, now: i64, lease_ms: i64, limit: i64) -> Result<Vec<Delivery>> {
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE notification_deliveries SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, status = 'sending', updated_at = $3 \
         WHERE id IN (SELECT id FROM notification_deliveries WHERE ((status = 'pending' AND next_attempt_at <= $3) \
         OR (status = 'sending' AND lease_until < $3)) ORDER BY next_attempt_at, id LIMIT $4{lock}) RETURNING {DELIVERY_COLS}"
    );
    let mut tx = db.begin().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owner).bind(now + lease_ms).bind(now).bind(limit).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    rows.iter().map(delivery).collect()
}

/// Marks a leased delivery sent. Returns false when the lease was lost.
pub async fn delivery_sent(conn: &mut AnyConnection, id: &str, owner: &str, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE notification_deliveries SET status = 'sent', sent_at = $1, lease_owner = NULL, lease_until = NULL, last_error = NULL, updated_at = $1 \
         WHERE id = $2 AND lease_owner = $3 AND status = 'sending'",
    )
    .bind(now)
    .bind(id)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records a failed attempt: tried again at `retry_at`, or dead (kept with its last error for
/// administrators) after its last attempt.
pub async fn delivery_failed(conn: &mut AnyConnection, d: &Delivery, owner: &str, error: &str, retry_at: i64, now: i64) -> Result<()> {
    let dead = d.attempts >= d.max_attempts;
    sqlx::query(
        "UPDATE notification_deliveries SET status = $1, next_attempt_at = $2, lease_owner = NULL, lease_until = NULL, last_error = $3, updated_at = $4 \
         WHERE id = $5 AND lease_owner = $6",
    )
    .bind(if dead { "dead" } else { "pending" })
    .bind(retry_at)
    .bind(error)
    .bind(now)
    .bind(&d.id)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_delivery(conn: &mut AnyConnection, id: &str) -> Result<Option<Delivery>> {
    let sql = format!("SELECT {DELIVERY_COLS} FROM notification_deliveries WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(delivery).transpose()
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<String>,
    pub entity_id: Option<String>,
    pub event_kind: Option<String>,
}

/// Deliveries, newest change first.
pub async fn list_deliveries(conn: &mut AnyConnection, f: &DeliveryFilter, limit: i64) -> Result<Vec<Delivery>> {
    let mut q = crate::sql::Sql::new(format!("SELECT {DELIVERY_COLS} FROM notification_deliveries WHERE 1 = 1"));
    if let Some(s) = &f.status {
        q.push(" AND status = ").push_bind(s.clone());
    }
    if let Some(e) = &f.entity_id {
        q.push(" AND entity_id = ").push_bind(e.clone());
    }
    if let Some(k) = &f.event_kind {
        q.push(" AND event_kind = ").push_bind(k.clone());
    }
    q.push(" ORDER BY updated_at DESC, id DESC LIMIT ").push_bind(limit);
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter().map(delivery).collect()
}

pub async fn count_deliveries(conn: &mut AnyConnection, status: &str) -> Result<i64> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM notification_deliveries WHERE status = $1")
        .bind(status)
        .fetch_one(&mut *conn)
        .await?
        .int("n")?)
}

/// Puts a dead delivery back in the queue with fresh attempts (an administrator's retry).
pub async fn retry_delivery(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE notification_deliveries SET status = 'pending', next_attempt_at = $1, attempts = 0, updated_at = $1 WHERE id = $2 AND status = 'dead'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// An administrator's template, overriding the shipped default for one event kind and language.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TemplateRecord {
    pub event_kind: String,
    pub language: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub updated_by: String,
    pub updated_at: i64,
    pub version: i64,
}

fn template(r: &AnyRow) -> Result<TemplateRecord> {
    Ok(TemplateRecord {
        event_kind: r.text("event_kind")?,
        language: r.text("language")?,
        subject: r.text("subject")?,
        body_text: r.text("body_text")?,
        body_html: r.text("body_html")?,
        updated_by: r.text("updated_by")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

pub async fn get_template(conn: &mut AnyConnection, event_kind: &str, language: &str) -> Result<Option<TemplateRecord>> {
    let row = sqlx::query("SELECT * FROM notification_templates WHERE event_kind = $1 AND language = $2")
        .bind(event_kind)
        .bind(language)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(template).transpose()
}

pub async fn list_templates(conn: &mut AnyConnection) -> Result<Vec<TemplateRecord>> {
    let rows = sqlx::query("SELECT * FROM notification_templates ORDER BY event_kind, language").fetch_all(&mut *conn).await?;
    rows.iter().map(template).collect()
}

pub async fn upsert_template(conn: &mut AnyConnection, t: &TemplateRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO notification_templates (event_kind, language, subject, body_text, body_html, updated_by, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1) ON CONFLICT (event_kind, language) DO UPDATE SET subject = excluded.subject, \
         body_text = excluded.body_text, body_html = excluded.body_html, updated_by = excluded.updated_by, updated_at = excluded.updated_at, \
         version = notification_templates.version + 1",
    )
    .bind(&t.event_kind)
    .bind(&t.language)
    .bind(&t.subject)
    .bind(&t.body_text)
    .bind(&t.body_html)
    .bind(&t.updated_by)
    .bind(t.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete_template(conn: &mut AnyConnection, event_kind: &str, language: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM notification_templates WHERE event_kind = $1 AND language = $2")
        .bind(event_kind)
        .bind(language)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// A chat webhook administrators configured.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Default)]
pub struct WebhookRecord {
    pub id: String,
    pub name: String,
    /// `dingtalk`, `wecom`, `feishu`, `slack` or `generic`.
    pub kind: String,
    pub url: String,
    #[serde(skip)]
    pub secret: Option<String>,
    /// Event kinds it carries; empty means every kind.
    pub event_kinds: Vec<String>,
    pub project_id: Option<String>,
    pub team_id: Option<String>,
    pub language: String,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

fn webhook(r: &AnyRow) -> Result<WebhookRecord> {
    Ok(WebhookRecord {
        id: r.text("id")?,
        name: r.text("name")?,
        kind: r.text("kind")?,
        url: r.text("url")?,
        secret: r.opt_text("secret")?,
        event_kinds: serde_json::from_str(&r.text("event_kinds")?).unwrap_or_default(),
        project_id: r.opt_text("project_id")?,
        team_id: r.opt_text("team_id")?,
        language: r.text("language")?,
        active: r.flag("active")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

pub async fn insert_webhook(conn: &mut AnyConnection, h: &WebhookRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO notification_webhooks (id, name, kind, url, secret, event_kinds, project_id, team_id, language, active, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)",
    )
    .bind(&h.id)
    .bind(&h.name)
    .bind(&h.kind)
    .bind(&h.url)
    .bind(&h.secret)
    .bind(serde_json::to_string(&h.event_kinds).unwrap_or_else(|_| "[]".into()))
    .bind(&h.project_id)
    .bind(&h.team_id)
    .bind(&h.language)
    .bind(h.active as i64)
    .bind(h.created_at)
    .bind(h.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn update_webhook(conn: &mut AnyConnection, h: &WebhookRecord, expected_version: i64) -> Result<()> {
    let r = sqlx::query(
        "UPDATE notification_webhooks SET name = $1, kind = $2, url = $3, secret = $4, event_kinds = $5, project_id = $6, team_id = $7, \
         language = $8, active = $9, updated_at = $10, version = version + 1 WHERE id = $11 AND version = $12",
    )
    .bind(&h.name)
    .bind(&h.kind)
    .bind(&h.url)
    .bind(&h.secret)
    .bind(serde_json::to_string(&h.event_kinds).unwrap_or_else(|_| "[]".into()))
    .bind(&h.project_id)
    .bind(&h.team_id)
    .bind(&h.language)
    .bind(h.active as i64)
    .bind(h.updated_at)
    .bind(&h.id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Err(crate::StoreError::Stale);
    }
    Ok(())
}

pub async fn delete_webhook(conn: &mut AnyConnection, id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM notification_webhooks WHERE id = $1").bind(id).execute(&mut *conn).await?;
    Ok(r.rows_affected() == 1)
}

pub async fn get_webhook(conn: &mut AnyConnection, id: &str) -> Result<Option<WebhookRecord>> {
    let row = sqlx::query("SELECT * FROM notification_webhooks WHERE id = $1").bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(webhook).transpose()
}

pub async fn list_webhooks(conn: &mut AnyConnection) -> Result<Vec<WebhookRecord>> {
    let rows = sqlx::query("SELECT * FROM notification_webhooks ORDER BY name, id").fetch_all(&mut *conn).await?;
    rows.iter().map(webhook).collect()
}

/// A person an audience resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub locale: String,
    pub kind: String,
}

fn person(r: &AnyRow) -> Result<Person> {
    Ok(Person {
        user_id: r.text("id")?,
        email: r.text("email")?,
        display_name: r.text("display_name")?,
        locale: r.text("locale")?,
        kind: r.text("kind")?,
    })
}

const PERSON_COLS: &str = "u.id, u.email, u.display_name, u.locale, u.kind";

/// Active accounts with the given ids.
pub async fn people(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<Person>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut q = crate::sql::Sql::new(format!("SELECT {PERSON_COLS} FROM users u WHERE u.active = 1 AND u.id IN ("));
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push_bind(id.clone());
    }
    q.push(") ORDER BY u.id");
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter().map(person).collect()
}

/// Active members of a team.
pub async fn team_members(conn: &mut AnyConnection, team_id: &str) -> Result<Vec<Person>> {
    let sql = format!(
        "SELECT {PERSON_COLS} FROM users u JOIN team_members m ON m.user_id = u.id WHERE m.team_id = $1 AND u.active = 1 ORDER BY u.id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(team_id).fetch_all(&mut *conn).await?;
    rows.iter().map(person).collect()
}

/// Active contacts (customer accounts) of an organisation.
pub async fn organization_contacts(conn: &mut AnyConnection, organization_id: &str) -> Result<Vec<Person>> {
    let sql =
        format!("SELECT {PERSON_COLS} FROM users u WHERE u.organization_id = $1 AND u.kind = 'contact' AND u.active = 1 ORDER BY u.id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(organization_id).fetch_all(&mut *conn).await?;
    rows.iter().map(person).collect()
}

/// The event kinds a person opted out of, sorted.
pub async fn opt_outs(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT event_kind FROM notification_opt_outs WHERE user_id = $1 ORDER BY event_kind")
        .bind(user_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.text("event_kind").map_err(Into::into)).collect()
}

/// Replaces a person's opt-outs with `kinds`.
pub async fn set_opt_outs(conn: &mut AnyConnection, user_id: &str, kinds: &[String], now: i64) -> Result<()> {
    sqlx::query("DELETE FROM notification_opt_outs WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
    for k in kinds {
        sqlx::query("INSERT INTO notification_opt_outs (user_id, event_kind, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(k)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Which of `user_ids` opted out of `event_kind`.
pub async fn opted_out(conn: &mut AnyConnection, event_kind: &str, user_ids: &[&str]) -> Result<std::collections::HashSet<String>> {
    if user_ids.is_empty() {
        return Ok(Default::default());
    }
    let mut q = crate::sql::Sql::new("SELECT user_id FROM notification_opt_outs WHERE event_kind = ");
    q.push_bind(event_kind.to_string()).push(" AND user_id IN (");
    for (i, id) in user_ids.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push_bind(id.to_string());
    }
    q.push(")");
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter().map(|r| r.text("user_id").map_err(Into::into)).collect()
}

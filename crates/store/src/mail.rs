//! Service desk (REQUIREMENTS §4), email channel: the mailboxes of projects and the record of
//! every message received, which makes receiving idempotent on the Message-ID.

use crate::rows::RowExt;
use crate::{AnyConnection, Result};
use serde::Serialize;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct MailboxRecord {
    pub id: String,
    pub project_id: String,
    pub address: String,
    /// `create_contact` or `hold`.
    pub unknown_sender: String,
    pub imap_host: Option<String>,
    pub imap_port: Option<i64>,
    /// `tls`, `starttls` or `plain`.
    pub imap_tls: Option<String>,
    pub imap_user: Option<String>,
    #[serde(skip)]
    pub imap_secret: Option<String>,
    pub imap_folder: Option<String>,
    pub imap_done_folder: Option<String>,
    /// PEM certificate(s) of a private CA trusted for this mailbox's server.
    pub imap_ca_pem: Option<String>,
    /// The resolver group whose queue receives the tickets this mailbox's mail creates.
    pub team_id: Option<String>,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

const MAILBOX_COLS: &str = "id, project_id, address, unknown_sender, imap_host, imap_port, imap_tls, imap_user, imap_secret, imap_folder, \
    imap_done_folder, imap_ca_pem, team_id, active, created_at, updated_at, version";

fn mailbox(r: &AnyRow) -> Result<MailboxRecord> {
    Ok(MailboxRecord {
        id: r.text("id")?,
        project_id: r.text("project_id")?,
        address: r.text("address")?,
        unknown_sender: r.text("unknown_sender")?,
        imap_host: r.opt_text("imap_host")?,
        imap_port: r.opt_int("imap_port")?,
        imap_tls: r.opt_text("imap_tls")?,
        imap_user: r.opt_text("imap_user")?,
        imap_secret: r.opt_text("imap_secret")?,
        imap_folder: r.opt_text("imap_folder")?,
        imap_done_folder: r.opt_text("imap_done_folder")?,
        imap_ca_pem: r.opt_text("imap_ca_pem")?,
        team_id: r.opt_text("team_id")?,
        active: r.flag("active")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

pub async fn insert_mailbox(conn: &mut AnyConnection, m: &MailboxRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO mailboxes (id, project_id, address, unknown_sender, imap_host, imap_port, imap_tls, imap_user, imap_secret, imap_folder, \
         imap_done_folder, imap_ca_pem, team_id, active, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, 1)",
    )
    .bind(&m.id)
    .bind(&m.project_id)
    .bind(&m.address)
    .bind(&m.unknown_sender)
    .bind(&m.imap_host)
    .bind(m.imap_port)
    .bind(&m.imap_tls)
    .bind(&m.imap_user)
    .bind(&m.imap_secret)
    .bind(&m.imap_folder)
    .bind(&m.imap_done_folder)
    .bind(&m.imap_ca_pem)
    .bind(&m.team_id)
    .bind(m.active as i64)
    .bind(m.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn update_mailbox(conn: &mut AnyConnection, m: &MailboxRecord) -> Result<()> {
    sqlx::query(
        "UPDATE mailboxes SET address = $2, unknown_sender = $3, imap_host = $4, imap_port = $5, imap_tls = $6, imap_user = $7, \
         imap_secret = $8, imap_folder = $9, imap_done_folder = $10, imap_ca_pem = $11, active = $12, updated_at = $13, version = $14, team_id = $15 \
         WHERE id = $1",
    )
    .bind(&m.id)
    .bind(&m.address)
    .bind(&m.unknown_sender)
    .bind(&m.imap_host)
    .bind(m.imap_port)
    .bind(&m.imap_tls)
    .bind(&m.imap_user)
    .bind(&m.imap_secret)
    .bind(&m.imap_folder)
    .bind(&m.imap_done_folder)
    .bind(&m.imap_ca_pem)
    .bind(m.active as i64)
    .bind(m.updated_at)
    .bind(m.version)
    .bind(&m.team_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_mailbox(conn: &mut AnyConnection, id: &str) -> Result<Option<MailboxRecord>> {
    let sql = format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE id = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    r.as_ref().map(mailbox).transpose()
}

/// The mailboxes of a project, by address.
pub async fn project_mailboxes(conn: &mut AnyConnection, project_id: &str) -> Result<Vec<MailboxRecord>> {
    let sql = format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE project_id = $1 ORDER BY address");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(project_id).fetch_all(&mut *conn).await?;
    rows.iter().map(mailbox).collect()
}

/// Active mailboxes with an IMAP server to poll.
pub async fn imap_mailboxes(conn: &mut AnyConnection) -> Result<Vec<MailboxRecord>> {
    let sql = format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE active = 1 AND imap_host IS NOT NULL ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
    rows.iter().map(mailbox).collect()
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct MailMessageRecord {
    pub id: String,
    pub message_id: String,
    pub project_id: String,
    pub mailbox_id: Option<String>,
    pub sender: String,
    pub subject: String,
    /// `ticket`, `reply`, `ignored`, `held`, `refused` or `discarded` (held, then discarded).
    pub outcome: String,
    pub reason: Option<String>,
    pub ticket_id: Option<String>,
    pub comment_id: Option<String>,
    #[serde(skip)]
    pub safe_html: Option<String>,
    pub raw_sha256: Option<String>,
    pub received_at: i64,
}

const MESSAGE_COLS: &str =
    "id, message_id, project_id, mailbox_id, sender, subject, outcome, reason, ticket_id, comment_id, safe_html, raw_sha256, received_at";

fn message(r: &AnyRow) -> Result<MailMessageRecord> {
    Ok(MailMessageRecord {
        id: r.text("id")?,
        message_id: r.text("message_id")?,
        project_id: r.text("project_id")?,
        mailbox_id: r.opt_text("mailbox_id")?,
        sender: r.text("sender")?,
        subject: r.text("subject")?,
        outcome: r.text("outcome")?,
        reason: r.opt_text("reason")?,
        ticket_id: r.opt_text("ticket_id")?,
        comment_id: r.opt_text("comment_id")?,
        safe_html: r.opt_text("safe_html")?,
        raw_sha256: r.opt_text("raw_sha256")?,
        received_at: r.int("received_at")?,
    })
}

pub async fn insert_message(conn: &mut AnyConnection, m: &MailMessageRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO mail_messages (id, message_id, project_id, mailbox_id, sender, subject, outcome, reason, ticket_id, comment_id, \
         safe_html, raw_sha256, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&m.id)
    .bind(&m.message_id)
    .bind(&m.project_id)
    .bind(&m.mailbox_id)
    .bind(&m.sender)
    .bind(&m.subject)
    .bind(&m.outcome)
    .bind(&m.reason)
    .bind(&m.ticket_id)
    .bind(&m.comment_id)
    .bind(&m.safe_html)
    .bind(&m.raw_sha256)
    .bind(m.received_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_message(conn: &mut AnyConnection, id: &str) -> Result<Option<MailMessageRecord>> {
    let sql = format!("SELECT {MESSAGE_COLS} FROM mail_messages WHERE id = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    r.as_ref().map(message).transpose()
}

/// What became of a message after review (a held message released or discarded).
pub async fn update_message_outcome(conn: &mut AnyConnection, m: &MailMessageRecord) -> Result<()> {
    sqlx::query("UPDATE mail_messages SET outcome = $2, reason = $3, ticket_id = $4, comment_id = $5 WHERE id = $1")
        .bind(&m.id)
        .bind(&m.outcome)
        .bind(&m.reason)
        .bind(&m.ticket_id)
        .bind(&m.comment_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn get_message_by_message_id(conn: &mut AnyConnection, message_id: &str) -> Result<Option<MailMessageRecord>> {
    let sql = format!("SELECT {MESSAGE_COLS} FROM mail_messages WHERE message_id = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(message_id).fetch_optional(&mut *conn).await?;
    r.as_ref().map(message).transpose()
}

/// The messages received for a project, newest first.
pub async fn list_messages(conn: &mut AnyConnection, project_id: &str, limit: i64) -> Result<Vec<MailMessageRecord>> {
    let sql = format!("SELECT {MESSAGE_COLS} FROM mail_messages WHERE project_id = $1 ORDER BY received_at DESC, id DESC LIMIT $2");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(project_id).bind(limit).fetch_all(&mut *conn).await?;
    rows.iter().map(message).collect()
}

/// How many messages a sender sent since `since` (for the storm limit).
pub async fn count_from_sender(conn: &mut AnyConnection, sender: &str, since: i64) -> Result<i64> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM mail_messages WHERE sender = $1 AND received_at >= $2")
        .bind(sender)
        .bind(since)
        .fetch_one(&mut *conn)
        .await?;
    Ok(r.int("n")?)
}

/// The id of a project by its id or its code.
pub async fn project_id_by_id_or_code(conn: &mut AnyConnection, key: &str) -> Result<Option<String>> {
    let r =
        sqlx::query("SELECT id FROM projects WHERE id = $1 OR code = $1 ORDER BY id LIMIT 1").bind(key).fetch_optional(&mut *conn).await?;
    r.map(|r| r.text("id").map_err(Into::into)).transpose()
}

/// A team works on a project when it is active and a member belongs to the project or manages
/// it (the people who see the project's queue); `$1` is the project.
const SERVES_PROJECT: &str = "t.active = 1 AND EXISTS (SELECT 1 FROM team_members tm WHERE tm.team_id = t.id \
    AND (tm.user_id IN (SELECT user_id FROM project_members WHERE project_id = $1) \
    OR tm.user_id IN (SELECT manager_user_id FROM projects WHERE id = $1)))";

/// Whether a team works on a project (it may be a mailbox's default team).
pub async fn team_serves_project(conn: &mut AnyConnection, team_id: &str, project_id: &str) -> Result<bool> {
    let sql = format!("SELECT COUNT(*) AS n FROM teams t WHERE t.id = $2 AND {SERVES_PROJECT}");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(project_id).bind(team_id).fetch_one(&mut *conn).await?;
    Ok(r.int("n")? > 0)
}

/// The teams working on a project, by name, as (id, name); `also` is listed whatever its state
/// (a mailbox's current team).
pub async fn teams_serving_project(conn: &mut AnyConnection, project_id: &str, also: &str) -> Result<Vec<(String, String)>> {
    let sql = format!("SELECT t.id, t.name FROM teams t WHERE t.id = $2 OR ({SERVES_PROJECT}) ORDER BY t.name, t.id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(project_id).bind(also).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((r.text("id")?, r.text("name")?))).collect()
}

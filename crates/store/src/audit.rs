//! Storage of the audit trail (审计日志): per-record hash chains and the checkpoints that seal
//! them, for ISO/IEC 20000 record keeping.

use crate::rows::RowExt;
use crate::{AnyConnection, Result};
use keel_domain::audit::{self, AuditFault, GENESIS, SealedFields, StoredEntry};
use sqlx::any::AnyRow;

pub struct NewEntry<'a> {
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub action: &'a str,
    pub actor_id: &'a str,
    pub actor_label: &'a str,
    pub at_ms: i64,
    pub changes_json: &'a str,
}

/// Appends an entry to its record's chain. Runs inside the writer's transaction; the unique
/// (entity_type, entity_id, seq) index turns a concurrent fork of one chain into an error.
pub async fn append(conn: &mut AnyConnection, e: &NewEntry<'_>) -> Result<String> {
    let head = sqlx::query("SELECT seq, hash FROM audit_log WHERE entity_type = $1 AND entity_id = $2 ORDER BY seq DESC LIMIT 1")
        .bind(e.entity_type)
        .bind(e.entity_id)
        .fetch_optional(&mut *conn)
        .await?;
    let (seq, prev_hash) = match head {
        Some(r) => (r.int("seq")? + 1, r.text("hash")?),
        None => (1, GENESIS.to_string()),
    };
    insert(conn, e, seq, &prev_hash).await
}

/// The first entry of a record created in this transaction (its id is new, so it has no
/// entries yet): saves looking for the chain's head.
pub async fn append_first(conn: &mut AnyConnection, e: &NewEntry<'_>) -> Result<String> {
    insert(conn, e, 1, GENESIS).await
}

async fn insert(conn: &mut AnyConnection, e: &NewEntry<'_>, seq: i64, prev_hash: &str) -> Result<String> {
    let id = crate::new_id();
    let hash = audit::entry_hash(&SealedFields {
        id: &id,
        entity_type: e.entity_type,
        entity_id: e.entity_id,
        seq,
        action: e.action,
        actor_id: e.actor_id,
        at_ms: e.at_ms,
        changes: e.changes_json,
        prev_hash,
    });
    sqlx::query(
        "INSERT INTO audit_log (id, entity_type, entity_id, seq, action, actor_id, actor_label, at, changes, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(e.entity_type)
    .bind(e.entity_id)
    .bind(seq)
    .bind(e.action)
    .bind(e.actor_id)
    .bind(e.actor_label)
    .bind(e.at_ms)
    .bind(e.changes_json)
    .bind(prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// An entry as shown in a record's history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryEntry {
    pub id: String,
    pub entity_type: String,
    pub entity_id: String,
    pub seq: i64,
    pub action: String,
    pub actor_id: String,
    pub actor_label: String,
    pub at: i64,
    pub changes: serde_json::Value,
}

fn history_row(r: &AnyRow) -> Result<HistoryEntry> {
    Ok(HistoryEntry {
        id: r.text("id")?,
        entity_type: r.text("entity_type")?,
        entity_id: r.text("entity_id")?,
        seq: r.int("seq")?,
        action: r.text("action")?,
        actor_id: r.text("actor_id")?,
        actor_label: r.text("actor_label")?,
        at: r.int("at")?,
        changes: serde_json::from_str(&r.text("changes")?).unwrap_or(serde_json::Value::Null),
    })
}

pub async fn history(conn: &mut AnyConnection, entity_type: &str, entity_id: &str) -> Result<Vec<HistoryEntry>> {
    let rows = sqlx::query(
        "SELECT id, entity_type, entity_id, seq, action, actor_id, actor_label, at, changes FROM audit_log WHERE entity_type = $1 AND entity_id = $2 ORDER BY seq",
    )
    .bind(entity_type)
    .bind(entity_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(history_row).collect()
}

/// The kinds of record an audit entry's fields refer to by id (or key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefKind {
    User,
    Team,
    Category,
    Project,
    Organization,
    Service,
    CatalogueItem,
    Ci,
    CiClass,
    Ticket,
    Problem,
    Change,
    Release,
    Sla,
    Calendar,
    ChangeTemplate,
    Mailbox,
}

/// A record referred to by an audit entry: its name (a number for tickets, problems, changes and
/// releases), the Chinese name where the record has one, and what decides who may see it.
#[derive(Debug, Clone, PartialEq)]
pub struct RefRow {
    pub id: String,
    pub name: String,
    pub name_zh: Option<String>,
    pub code: Option<String>,
    pub project_id: Option<String>,
    pub organization_id: Option<String>,
    /// For users: `staff` or `contact`.
    pub account_kind: Option<String>,
}

impl RefKind {
    /// The statement reading `id, name, name_zh, code, project_id, organization_id, account_kind`
    /// of this kind's records, to be followed by ` WHERE <key> IN (…)`.
    fn select(self) -> (&'static str, &'static str) {
        macro_rules! sel {
            ($cols:literal, $from:literal) => {
                concat!("SELECT ", $cols, " FROM ", $from)
            };
        }
        match self {
            RefKind::User => (
                sel!(
                    "id, display_name AS name, CAST(NULL AS TEXT) AS name_zh, CAST(NULL AS TEXT) AS code, CAST(NULL AS TEXT) AS project_id, organization_id, kind AS account_kind",
                    "users"
                ),
                "id",
            ),
            RefKind::Team => (
                sel!(
                    "id, name, CAST(NULL AS TEXT) AS name_zh, CAST(NULL AS TEXT) AS code, CAST(NULL AS TEXT) AS project_id, CAST(NULL AS TEXT) AS organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "teams"
                ),
                "id",
            ),
            RefKind::Category => (
                sel!(
                    "id, name, CAST(NULL AS TEXT) AS name_zh, code, CAST(NULL AS TEXT) AS project_id, CAST(NULL AS TEXT) AS organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "ticket_categories"
                ),
                "id",
            ),
            RefKind::Project => (
                sel!(
                    "id, name, CAST(NULL AS TEXT) AS name_zh, code, id AS project_id, organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "projects"
                ),
                "id",
            ),
            RefKind::Organization => (
                sel!(
                    "id, name, CAST(NULL AS TEXT) AS name_zh, code, CAST(NULL AS TEXT) AS project_id, id AS organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "organizations"
                ),
                "id",
            ),
            RefKind::Service => (
                sel!(
                    "id, name, CAST(NULL AS TEXT) AS name_zh, code, CAST(NULL AS TEXT) AS project_id, CAST(NULL AS TEXT) AS organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "services"
                ),
                "id",
            ),
            RefKind::CatalogueItem => (
                sel!(
                    "id, name, CAST(NULL AS TEXT) AS name_zh, code, CAST(NULL AS TEXT) AS project_id, CAST(NULL AS TEXT) AS organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "catalogue_items"
                ),
                "id",
            ),
            RefKind::Ci => (
                sel!(
                    "id, name, CAST(NULL AS TEXT) AS name_zh, CAST(NULL AS TEXT) AS code, project_id, CAST(NULL AS TEXT) AS organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "configuration_items"
                ),
                "id",
            ),
            RefKind::CiClass => (
                sel!(
                    "class_key AS id, name_en AS name, name_zh, CAST(NULL AS TEXT) AS code, CAST(NULL AS TEXT) AS project_id, CAST(NULL AS TEXT) AS organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "ci_classes"
                ),
                "class_key",
            ),
            RefKind::Ticket => (
                sel!(
                    "id, number AS name, CAST(NULL AS TEXT) AS name_zh, CAST(NULL AS TEXT) AS code, project_id, organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "tickets"
                ),
                "id",
            ),
            RefKind::Problem => (
                sel!(
                    "id, number AS name, CAST(NULL AS TEXT) AS name_zh, CAST(NULL AS TEXT) AS code, project_id, organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "problems"
                ),
                "id",
            ),
            RefKind::Change => (
                sel!(
                    "id, number AS name, CAST(NULL AS TEXT) AS name_zh, CAST(NULL AS TEXT) AS code, project_id, organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "changes"
                ),
                "id",
            ),
            RefKind::Release => (
                sel!(
                    "id, number AS name, CAST(NULL AS TEXT) AS name_zh, CAST(NULL AS TEXT) AS code, project_id, organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "releases"
                ),
                "id",
            ),
            RefKind::Sla => (
                sel!(
                    "id, name, CAST(NULL AS TEXT) AS name_zh, CAST(NULL AS TEXT) AS code, project_id, organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "slas"
                ),
                "id",
            ),
            RefKind::Calendar => (
                sel!(
                    "id, name, CAST(NULL AS TEXT) AS name_zh, CAST(NULL AS TEXT) AS code, CAST(NULL AS TEXT) AS project_id, CAST(NULL AS TEXT) AS organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "business_calendars"
                ),
                "id",
            ),
            RefKind::ChangeTemplate => (
                sel!(
                    "id, name, CAST(NULL AS TEXT) AS name_zh, CAST(NULL AS TEXT) AS code, CAST(NULL AS TEXT) AS project_id, CAST(NULL AS TEXT) AS organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "change_templates"
                ),
                "id",
            ),
            RefKind::Mailbox => (
                sel!(
                    "id, address AS name, CAST(NULL AS TEXT) AS name_zh, CAST(NULL AS TEXT) AS code, project_id, CAST(NULL AS TEXT) AS organization_id, CAST(NULL AS TEXT) AS account_kind",
                    "mailboxes"
                ),
                "id",
            ),
        }
    }
}

/// The records of one kind with the given ids (or keys) that still exist: one statement per
/// 500 ids.
pub async fn referenced(conn: &mut AnyConnection, kind: RefKind, ids: &[String]) -> Result<Vec<RefRow>> {
    let (select, key) = kind.select();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut q = crate::sql::Sql::new(select);
        q.push(" WHERE ").push(key).push(" IN ").push_list(chunk);
        for r in q.fetch_all(&mut *conn).await? {
            out.push(RefRow {
                id: r.text("id")?,
                name: r.text("name")?,
                name_zh: r.opt_text("name_zh")?,
                code: r.opt_text("code")?,
                project_id: r.opt_text("project_id")?,
                organization_id: r.opt_text("organization_id")?,
                account_kind: r.opt_text("account_kind")?,
            });
        }
    }
    Ok(out)
}

/// Filter for the trail across records.
#[derive(Debug, Default, Clone)]
pub struct TrailFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor_id: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Cursor: entries strictly older than (at, id).
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

pub async fn trail(conn: &mut AnyConnection, f: &TrailFilter) -> Result<Vec<HistoryEntry>> {
    let mut q = crate::sql::Sql::new(
        "SELECT id, entity_type, entity_id, seq, action, actor_id, actor_label, at, changes FROM audit_log WHERE 1 = 1",
    );
    if let Some(v) = &f.entity_type {
        q.push(" AND entity_type = ").push_bind(v.clone());
    }
    if let Some(v) = &f.entity_id {
        q.push(" AND entity_id = ").push_bind(v.clone());
    }
    if let Some(v) = &f.actor_id {
        q.push(" AND actor_id = ").push_bind(v.clone());
    }
    if let Some(v) = f.from_ms {
        q.push(" AND at >= ").push_bind(v);
    }
    if let Some(v) = f.to_ms {
        q.push(" AND at < ").push_bind(v);
    }
    if let Some((at, id)) = &f.before {
        q.push(" AND (at < ").push_bind(*at).push(" OR (at = ").push_bind(*at).push(" AND id < ").push_bind(id.clone()).push("))");
    }
    q.push(" ORDER BY at DESC, id DESC LIMIT ").push_bind(f.limit);
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter().map(history_row).collect()
}

fn stored(r: &AnyRow) -> Result<StoredEntry> {
    Ok(StoredEntry {
        id: r.text("id")?,
        entity_type: r.text("entity_type")?,
        entity_id: r.text("entity_id")?,
        seq: r.int("seq")?,
        action: r.text("action")?,
        actor_id: r.text("actor_id")?,
        at_ms: r.int("at")?,
        changes: r.text("changes")?,
        prev_hash: r.text("prev_hash")?,
        hash: r.text("hash")?,
    })
}

const STORED_COLS: &str =
    "SELECT id, entity_type, entity_id, seq, action, actor_id, at, changes, prev_hash, hash, checkpoint_id FROM audit_log";

/// Seals every entry not yet covered by a checkpoint. Only one checkpoint is written at a
/// time (the `seq` unique index makes a concurrent second attempt fail and retry later).
pub async fn write_checkpoint(conn: &mut AnyConnection, at_ms: i64) -> Result<Option<(String, i64)>> {
    let last = sqlx::query("SELECT seq, digest FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *conn).await?;
    let (seq, prev_digest) = match last {
        Some(r) => (r.int("seq")? + 1, r.text("digest")?),
        None => (1, GENESIS.to_string()),
    };
    let rows = sqlx::query("SELECT id, hash FROM audit_log WHERE checkpoint_id IS NULL ORDER BY entity_type, entity_id, seq")
        .fetch_all(&mut *conn)
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let ids: Vec<String> = rows.iter().map(|r| r.text("id")).collect::<Result<_, _>>()?;
    let hashes: Vec<String> = rows.iter().map(|r| r.text("hash")).collect::<Result<_, _>>()?;
    let (digest, count) = audit::checkpoint_digest(&prev_digest, hashes.iter().map(String::as_str));
    let id = crate::new_id();
    sqlx::query("INSERT INTO audit_checkpoints (id, seq, at, entry_count, prev_digest, digest) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&id)
        .bind(seq)
        .bind(at_ms)
        .bind(count)
        .bind(&prev_digest)
        .bind(&digest)
        .execute(&mut *conn)
        .await?;
    for chunk in ids.chunks(500) {
        let mut q = crate::sql::Sql::new("UPDATE audit_log SET checkpoint_id = ");
        q.push_bind(id.clone()).push(" WHERE id IN ").push_list(chunk);
        q.execute(&mut *conn).await?;
    }
    Ok(Some((id, count)))
}

/// Verifies every chain and every checkpoint; returns the faults found and the entry count.
pub async fn verify(conn: &mut AnyConnection) -> Result<(Vec<AuditFault>, i64)> {
    let mut faults = Vec::new();
    let rows =
        sqlx::query(sqlx::AssertSqlSafe(format!("{STORED_COLS} ORDER BY entity_type, entity_id, seq"))).fetch_all(&mut *conn).await?;
    let mut total = 0i64;
    let mut chain: Vec<StoredEntry> = Vec::new();
    let mut by_checkpoint: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for r in &rows {
        let e = stored(r)?;
        total += 1;
        if let Some(cp) = r.opt_text("checkpoint_id")? {
            by_checkpoint.entry(cp).or_default().push(e.hash.clone());
        }
        if chain.last().is_some_and(|l| l.entity_type != e.entity_type || l.entity_id != e.entity_id) {
            faults.extend(audit::verify_chain(&chain));
            chain.clear();
        }
        chain.push(e);
    }
    faults.extend(audit::verify_chain(&chain));
    let cps =
        sqlx::query("SELECT id, seq, entry_count, prev_digest, digest FROM audit_checkpoints ORDER BY seq").fetch_all(&mut *conn).await?;
    let mut prev = GENESIS.to_string();
    for c in cps {
        let id = c.text("id")?;
        let expected = c.int("entry_count")?;
        if c.text("prev_digest")? != prev {
            faults.push(AuditFault::CheckpointBrokenLink { checkpoint_id: id.clone() });
        }
        let hashes = by_checkpoint.remove(&id).unwrap_or_default();
        let (digest, found) = audit::checkpoint_digest(&c.text("prev_digest")?, hashes.iter().map(String::as_str));
        if digest != c.text("digest")? {
            faults.push(AuditFault::CheckpointMismatch { checkpoint_id: id, expected_count: expected, found_count: found });
        }
        prev = c.text("digest")?;
    }
    Ok((faults, total))
}

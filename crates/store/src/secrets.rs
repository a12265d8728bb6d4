//! Information security management (ISO/IEC 20000-1 §8.7.3): the columns that hold the
//! secrets Keel must use — a chat webhook's signing secret, a mailbox's IMAP password — read
//! and replaced the same way whatever their table, for the start-up encryption pass, `keel
//! check` and key rotation.

use crate::rows::RowExt;
use crate::{AnyConnection, Result};

/// A kind of stored secret: the record that holds it and its table and columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoredSecret {
    /// `notification_webhooks.secret`, named by the webhook's name.
    WebhookSecret,
    /// `mailboxes.imap_secret`, named by the mailbox's address.
    ImapPassword,
}

impl StoredSecret {
    pub const ALL: [StoredSecret; 2] = [StoredSecret::WebhookSecret, StoredSecret::ImapPassword];

    /// The kind of record holding it, as messages and the audit trail name it.
    pub fn record(self) -> &'static str {
        match self {
            StoredSecret::WebhookSecret => "webhook",
            StoredSecret::ImapPassword => "mailbox",
        }
    }

    /// Table, naming column, secret column.
    fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            StoredSecret::WebhookSecret => ("notification_webhooks", "name", "secret"),
            StoredSecret::ImapPassword => ("mailboxes", "address", "imap_secret"),
        }
    }
}

/// One stored secret in the form it is stored in (encrypted, or a legacy plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRow {
    pub kind: StoredSecret,
    /// The webhook's or mailbox's id.
    pub id: String,
    /// The webhook's name or the mailbox's address.
    pub label: String,
    pub stored: String,
}

/// Every stored secret of one kind, by record id; records without one are left out.
pub async fn list(conn: &mut AnyConnection, kind: StoredSecret) -> Result<Vec<SecretRow>> {
    let (table, label, secret) = kind.columns();
    let sql = format!("SELECT id, {label} AS label, {secret} AS stored FROM {table} WHERE {secret} IS NOT NULL ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok(SecretRow { kind, id: r.text("id")?, label: r.text("label")?, stored: r.text("stored")? })).collect()
}

/// Replaces a stored secret if it is still `old` (the same secret in another form: neither
/// the version nor the time of the record changes).
pub async fn replace(conn: &mut AnyConnection, kind: StoredSecret, id: &str, old: &str, new: &str) -> Result<bool> {
    let (table, _, secret) = kind.columns();
    let sql = format!("UPDATE {table} SET {secret} = $1 WHERE id = $2 AND {secret} = $3");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(new).bind(id).bind(old).execute(&mut *conn).await?;
    Ok(r.rows_affected() == 1)
}

/// Every stored secret of every kind.
pub async fn list_all(conn: &mut AnyConnection) -> Result<Vec<SecretRow>> {
    let mut all = Vec::new();
    for kind in StoredSecret::ALL {
        all.extend(list(conn, kind).await?);
    }
    Ok(all)
}

//! The audit trail (审计日志): every create, change and delete of every record, kept
//! append-only and tamper-evident.
//!
//! Each record has its own hash chain (entry `seq` n links to entry n-1 of the same record), so
//! writes to unrelated records never wait on one global chain head. Periodic checkpoints then
//! seal every entry written since the previous checkpoint into one digest chained to the last,
//! which catches a deleted chain tail or a whole deleted chain once a checkpoint covers it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Create,
    Update,
    Delete,
    /// The key of the stored secrets was replaced and every secret encrypted again with the
    /// new one (`keel secret-key rotate`); the entry holds counts only.
    SecretKeyRotated,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::Update => "update",
            AuditAction::Delete => "delete",
            AuditAction::SecretKeyRotated => "secret_key_rotated",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "create" => Some(AuditAction::Create),
            "update" => Some(AuditAction::Update),
            "delete" => Some(AuditAction::Delete),
            "secret_key_rotated" => Some(AuditAction::SecretKeyRotated),
            _ => None,
        }
    }
}

/// One field's change: old → new (absent on create / delete respectively).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<serde_json::Value>,
}

/// Field-by-field difference of two JSON objects (a record before and after a write).
/// Fields named in `redact` (secrets such as password hashes) are reported as changed without values.
pub fn diff(old: Option<&serde_json::Value>, new: Option<&serde_json::Value>, redact: &[&str]) -> Vec<FieldChange> {
    use serde_json::Value;
    let empty = serde_json::Map::new();
    let o = old.and_then(Value::as_object).unwrap_or(&empty);
    let n = new.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let (a, b) = (o.get(k).filter(|v| !v.is_null()), n.get(k).filter(|v| !v.is_null()));
        if a == b {
            continue;
        }
        if redact.contains(&k.as_str()) {
            let mark = |v: Option<&Value>| v.map(|_| Value::String("[redacted]".into()));
            out.push(FieldChange { field: k.clone(), old: mark(a), new: mark(b) });
        } else {
            out.push(FieldChange { field: k.clone(), old: a.cloned(), new: b.cloned() });
        }
    }
    out
}

/// The parts of an entry that its hash seals. `changes` is the stored JSON text itself, so
/// verification hashes exactly the bytes that are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedFields<'a> {
    pub id: &'a str,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub seq: i64,
    pub action: &'a str,
    pub actor_id: &'a str,
    pub at_ms: i64,
    pub changes: &'a str,
    pub prev_hash: &'a str,
}

pub fn entry_hash(f: &SealedFields<'_>) -> String {
    let mut h = Sha256::new();
    for part in [f.prev_hash, f.id, f.entity_type, f.entity_id, &f.seq.to_string(), f.action, f.actor_id, &f.at_ms.to_string(), f.changes] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// An entry as read back for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub id: String,
    pub entity_type: String,
    pub entity_id: String,
    pub seq: i64,
    pub action: String,
    pub actor_id: String,
    pub at_ms: i64,
    pub changes: String,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredEntry {
    fn sealed(&self) -> SealedFields<'_> {
        SealedFields {
            id: &self.id,
            entity_type: &self.entity_type,
            entity_id: &self.entity_id,
            seq: self.seq,
            action: &self.action,
            actor_id: &self.actor_id,
            at_ms: self.at_ms,
            changes: &self.changes,
            prev_hash: &self.prev_hash,
        }
    }
}

/// A problem found in the trail, naming the entry or checkpoint at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditFault {
    /// The entry's content no longer matches its hash: it was edited.
    Edited { entry_id: String, entity_type: String, entity_id: String, seq: i64 },
    /// The entry does not link to its predecessor: entries were reordered or one replaced.
    BrokenLink { entry_id: String, entity_type: String, entity_id: String, seq: i64 },
    /// A sequence number is missing from a record's chain: an entry was deleted.
    Missing { entity_type: String, entity_id: String, seq: i64 },
    /// A checkpoint's digest or count no longer matches the entries it sealed.
    CheckpointMismatch { checkpoint_id: String, expected_count: i64, found_count: i64 },
    /// A checkpoint does not link to the previous one.
    CheckpointBrokenLink { checkpoint_id: String },
}

/// Verifies one record's chain, given its entries ordered by `seq`.
pub fn verify_chain(entries: &[StoredEntry]) -> Vec<AuditFault> {
    let mut faults = Vec::new();
    let mut expected_seq = 1;
    let mut prev: Option<&StoredEntry> = None;
    for e in entries {
        while e.seq > expected_seq {
            faults.push(AuditFault::Missing { entity_type: e.entity_type.clone(), entity_id: e.entity_id.clone(), seq: expected_seq });
            expected_seq += 1;
        }
        if entry_hash(&e.sealed()) != e.hash {
            faults.push(AuditFault::Edited {
                entry_id: e.id.clone(),
                entity_type: e.entity_type.clone(),
                entity_id: e.entity_id.clone(),
                seq: e.seq,
            });
        }
        let want_prev = match prev {
            Some(p) if p.seq + 1 == e.seq => p.hash.as_str(),
            Some(_) => e.prev_hash.as_str(), // gap already reported as Missing
            None if e.seq == 1 => GENESIS,
            None => e.prev_hash.as_str(),
        };
        if e.prev_hash != want_prev || (e.seq <= prev.map_or(0, |p| p.seq)) {
            faults.push(AuditFault::BrokenLink {
                entry_id: e.id.clone(),
                entity_type: e.entity_type.clone(),
                entity_id: e.entity_id.clone(),
                seq: e.seq,
            });
        }
        expected_seq = e.seq + 1;
        prev = Some(e);
    }
    faults
}

/// The digest sealing a checkpoint: the previous checkpoint's digest, the number of entries
/// covered and their hashes in (entity_type, entity_id, seq) order.
pub fn checkpoint_digest<'a>(prev_digest: &str, entry_hashes: impl IntoIterator<Item = &'a str>) -> (String, i64) {
    let mut h = Sha256::new();
    h.update(prev_digest.as_bytes());
    let mut n = 0i64;
    for eh in entry_hashes {
        h.update(eh.as_bytes());
        n += 1;
    }
    h.update(n.to_be_bytes());
    (hex::encode(h.finalize()), n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: i64) -> Vec<StoredEntry> {
        let mut out: Vec<StoredEntry> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map(|e| e.hash.clone()).unwrap_or_else(|| GENESIS.to_string());
            let mut e = StoredEntry {
                id: format!("e{seq}"),
                entity_type: "organization".into(),
                entity_id: "o1".into(),
                seq,
                action: if seq == 1 { "create" } else { "update" }.into(),
                actor_id: "u1".into(),
                at_ms: 1_000 * seq,
                changes: format!("[{{\"field\":\"name\",\"new\":\"v{seq}\"}}]"),
                prev_hash: prev,
                hash: String::new(),
            };
            e.hash = entry_hash(&e.sealed());
            out.push(e);
        }
        out
    }

    #[test]
    fn intact_chain_verifies() {
        assert!(verify_chain(&chain(5)).is_empty());
    }

    #[test]
    fn edit_is_named() {
        let mut c = chain(4);
        c[2].changes = c[2].changes.replace("v3", "v9");
        assert_eq!(
            verify_chain(&c),
            vec![AuditFault::Edited { entry_id: "e3".into(), entity_type: "organization".into(), entity_id: "o1".into(), seq: 3 }]
        );
    }

    #[test]
    fn deletion_in_the_middle_is_named() {
        let mut c = chain(4);
        c.remove(1);
        let f = verify_chain(&c);
        assert!(f.contains(&AuditFault::Missing { entity_type: "organization".into(), entity_id: "o1".into(), seq: 2 }), "{f:?}");
    }

    #[test]
    fn reorder_is_detected() {
        let mut c = chain(4);
        // swap content of 2 and 3 while keeping seq numbers: links break
        let (a, b) = (c[1].clone(), c[2].clone());
        c[1] = StoredEntry { seq: 2, ..b };
        c[2] = StoredEntry { seq: 3, ..a };
        assert!(!verify_chain(&c).is_empty());
    }

    #[test]
    fn rehashing_an_edit_breaks_the_next_link() {
        let mut c = chain(3);
        c[1].changes = "[]".into();
        c[1].hash = entry_hash(&c[1].sealed());
        let f = verify_chain(&c);
        assert_eq!(f.len(), 1);
        assert!(matches!(&f[0], AuditFault::BrokenLink { seq: 3, .. }));
    }

    #[test]
    fn checkpoint_digest_depends_on_every_entry_and_count() {
        let (d1, n1) = checkpoint_digest(GENESIS, ["a", "b"]);
        let (d2, _) = checkpoint_digest(GENESIS, ["a"]);
        let (d3, _) = checkpoint_digest(GENESIS, ["b", "a"]);
        assert_eq!(n1, 2);
        assert_ne!(d1, d2);
        assert_ne!(d1, d3);
    }

    #[test]
    fn diff_reports_changes_and_redacts_secrets() {
        let a = json!({"name": "A", "password_hash": "x", "same": 1});
        let b = json!({"name": "B", "password_hash": "y", "same": 1, "new": true});
        let d = diff(Some(&a), Some(&b), &["password_hash"]);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].field, "name");
        assert_eq!(d[2].field, "password_hash");
        assert_eq!(d[2].new, Some(json!("[redacted]")));
        assert_eq!(diff(None, Some(&a), &[]).len(), 3);
    }
}

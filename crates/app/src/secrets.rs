//! Information security management (ISO/IEC 20000-1 §8.7.3): the secrets Keel must use, not
//! only verify — chat webhook signing secrets and mailbox IMAP passwords — encrypted at rest
//! with ChaCha20-Poly1305 (`ring::aead`).
//!
//! A stored value is `enc:v1:` + base64 of a random 12-byte nonce followed by the ciphertext
//! and its tag. The additional data binds it to its record (`keel:webhook:<id>`,
//! `keel:mailbox:<id>`), so a value copied into another row is refused like a tampered one.
//! A value without the prefix is a plaintext written before encryption existed: it is read
//! as it is, sealed when `keel serve` starts (`seal_stored_secrets`) and whenever it is
//! written again.
//!
//! The 32-byte key comes from `KEEL_SECRET_KEY` (hex or base64) — required when several
//! instances share one PostgreSQL database, which must all have the same key — or else from
//! `secret.key` in the data directory, created on first start with mode 0600.
//!
//! `keel check` names every stored secret the current key cannot open and why
//! (`App::check_stored_secrets`); `keel secret-key rotate` encrypts them all again with a new
//! key in one transaction (`App::rotate_secret_key`) and then installs the new key file
//! (`PendingKeyFile`).

use crate::{App, AppError, Principal, Result};
use base64::Engine;
use keel_domain::audit::AuditAction;
pub use keel_store::secrets::{SecretRow, StoredSecret};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::{Path, PathBuf};

/// The prefix of every encrypted value; the version names the algorithm and layout.
pub const PREFIX_V1: &str = "enc:v1:";
const KEY_LEN: usize = 32;
/// The key file's name in the data directory.
pub const KEY_FILE: &str = "secret.key";
/// A rotation's new key, beside the key file until the database holds the secrets encrypted
/// with it; left behind only by a rotation interrupted at that point.
pub const NEW_KEY_FILE: &str = "secret.key.new";
/// The key before the last rotation: backups taken before it need it.
pub const OLD_KEY_FILE: &str = "secret.key.old";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("no secret key is configured (KEEL_SECRET_KEY or the data directory's secret.key)")]
    NoKey,
    #[error("the secret key {0}")]
    BadKey(String),
    #[error(
        "it cannot be decrypted with the configured secret key ({0}): the key differs from the one it was stored with, or the value was altered"
    )]
    Undecryptable(String),
    #[error("it is not a valid encrypted value")]
    Malformed,
    #[error("it is encrypted in an unknown format ({0}); this Keel is older than the one that wrote it")]
    UnknownVersion(String),
    #[error("the secret key file {0}")]
    KeyFile(String),
    #[error("the system's random number generator failed")]
    NoRandomness,
}

/// Where the key of a `SecretBox` came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `KEEL_SECRET_KEY` or `secret_key` in keel.toml.
    Configured,
    /// The data directory's key file, and whether it was created just now.
    File {
        path: PathBuf,
        created: bool,
    },
    /// Given by the caller (tests, tools).
    Given,
    None,
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Configured => f.write_str("KEEL_SECRET_KEY"),
            KeySource::File { path, .. } => write!(f, "{}", path.display()),
            KeySource::Given => f.write_str("the key given to this process"),
            KeySource::None => f.write_str("no key"),
        }
    }
}

/// Seals and opens stored secrets with this instance's key.
pub struct SecretBox {
    key: Option<LessSafeKey>,
    source: KeySource,
    rng: SystemRandom,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox").field("key", &self.key.as_ref().map(|_| "***")).field("source", &self.source).finish()
    }
}

impl Default for SecretBox {
    fn default() -> Self {
        SecretBox::unconfigured()
    }
}

/// The additional data of a webhook's signing secret.
pub fn webhook_context(id: &str) -> String {
    format!("keel:webhook:{id}")
}

/// The additional data of a mailbox's IMAP password.
pub fn mailbox_context(id: &str) -> String {
    format!("keel:mailbox:{id}")
}

/// The additional data of a stored secret of `kind` on the record `id`.
pub fn context(kind: StoredSecret, id: &str) -> String {
    match kind {
        StoredSecret::WebhookSecret => webhook_context(id),
        StoredSecret::ImapPassword => mailbox_context(id),
    }
}

/// What the audit trail records of a secret: whether one is stored, never the value.
pub fn audit_state(stored: Option<&str>) -> &'static str {
    if stored.is_some_and(|s| !s.is_empty()) { "set" } else { "not_set" }
}

/// Whether a stored value is encrypted in the current format.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX_V1)
}

/// The format of an encrypted value (`enc:<version>:…`), whatever its version; `None` for a
/// legacy plaintext.
fn encrypted_format(stored: &str) -> Option<&str> {
    let (version, _) = stored.strip_prefix("enc:")?.split_once(':')?;
    (!version.is_empty() && version.len() <= 8 && version.chars().all(|c| c.is_ascii_alphanumeric())).then_some(version)
}

impl SecretBox {
    /// No key: legacy plaintext values are read, nothing can be sealed or opened.
    pub fn unconfigured() -> Self {
        SecretBox { key: None, source: KeySource::None, rng: SystemRandom::new() }
    }

    pub fn new(key: [u8; KEY_LEN], source: KeySource) -> Self {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key).expect("ChaCha20-Poly1305 takes a 32-byte key");
        SecretBox { key: Some(LessSafeKey::new(unbound)), source, rng: SystemRandom::new() }
    }

    /// The configured key (`KEEL_SECRET_KEY`) when there is one, else the data directory's
    /// key file, created with a fresh random key when it does not exist.
    pub fn from_config(configured: Option<&str>, data_dir: &Path) -> Result<Self, SecretError> {
        match configured.map(str::trim).filter(|k| !k.is_empty()) {
            Some(text) => Ok(SecretBox::new(parse_key(text)?, KeySource::Configured)),
            None => {
                let path = data_dir.join(KEY_FILE);
                let (key, created) = load_or_create_key_file(&path)?;
                Ok(SecretBox::new(key, KeySource::File { path, created }))
            }
        }
    }

    /// The configured key when there is one, else the data directory's key file when it
    /// exists, else no key: creates nothing, for commands that only check or replace the key.
    pub fn existing(configured: Option<&str>, data_dir: &Path) -> Result<Self, SecretError> {
        match configured.map(str::trim).filter(|k| !k.is_empty()) {
            Some(text) => Ok(SecretBox::new(parse_key(text)?, KeySource::Configured)),
            None if data_dir.join(KEY_FILE).exists() => SecretBox::from_key_file(&data_dir.join(KEY_FILE)),
            None => Ok(SecretBox::unconfigured()),
        }
    }

    /// The key a key file holds (`secret.key`, or one a rotation left beside it).
    pub fn from_key_file(path: &Path) -> Result<Self, SecretError> {
        Ok(SecretBox::new(read_key_file(path)?, KeySource::File { path: path.to_path_buf(), created: false }))
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// Whether `other` holds the same key (a value sealed by one opens with the other).
    pub fn same_key(&self, other: &SecretBox) -> bool {
        let probe = "keel:key-probe";
        other.seal(probe, probe).is_ok_and(|sealed| self.open(probe, &sealed).is_ok())
    }

    /// Encrypts `plaintext` for the record `context` names.
    pub fn seal(&self, context: &str, plaintext: &str) -> Result<String, SecretError> {
        let key = self.key.as_ref().ok_or(SecretError::NoKey)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SecretError::NoRandomness)?;
        let mut in_out = plaintext.as_bytes().to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| SecretError::Malformed)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + in_out.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&in_out);
        Ok(format!("{PREFIX_V1}{}", base64::engine::general_purpose::STANDARD.encode(blob)))
    }

    /// The plaintext of a stored value of the record `context` names; a value without the
    /// `enc:` prefix is a legacy plaintext and is returned as it is.
    pub fn open(&self, context: &str, stored: &str) -> Result<String, SecretError> {
        let Some(encoded) = stored.strip_prefix(PREFIX_V1) else {
            return match encrypted_format(stored) {
                Some(version) => Err(SecretError::UnknownVersion(format!("enc:{version}"))),
                None => Ok(stored.to_string()),
            };
        };
        let key = self.key.as_ref().ok_or(SecretError::NoKey)?;
        let blob = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| SecretError::Malformed)?;
        if blob.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(SecretError::Malformed);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Malformed)?;
        let mut in_out = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| SecretError::Undecryptable(self.source.to_string()))?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Malformed)
    }

    /// A stored value as it should be stored: legacy plaintext sealed, anything else as it is.
    pub fn reseal(&self, context: &str, stored: &str) -> Result<String, SecretError> {
        if encrypted_format(stored).is_some() { Ok(stored.to_string()) } else { self.seal(context, stored) }
    }

    /// Why the stored value of the record `context` names cannot be used as it is stored, if
    /// it cannot. A value this key does not open is tried with `others` (key files a rotation
    /// left behind) to name the key it was stored with; AEAD cannot tell another key from an
    /// altered value otherwise.
    pub fn diagnose(&self, context: &str, stored: &str, others: &[SecretBox]) -> Option<SecretProblem> {
        let current = self.source.to_string();
        match self.open(context, stored) {
            Ok(_) if is_sealed(stored) => None,
            Ok(_) => Some(SecretProblem::PlainText),
            Err(e @ (SecretError::Undecryptable(_) | SecretError::NoKey)) => {
                match others.iter().find(|o| o.open(context, stored).is_ok()) {
                    Some(o) => Some(SecretProblem::OtherKey { current, opens_with: o.source.to_string() }),
                    None if e == SecretError::NoKey => Some(SecretProblem::NoKey),
                    None => Some(SecretProblem::WrongKeyOrAltered { current }),
                }
            }
            Err(SecretError::UnknownVersion(format)) => Some(SecretProblem::NewerFormat(format)),
            Err(_) => Some(SecretProblem::Corrupt),
        }
    }
}

/// Why a stored secret cannot be used as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretProblem {
    /// Still the plaintext a Keel without encryption wrote.
    PlainText,
    /// Encrypted, and no key is configured.
    NoKey,
    /// The current key does not open it; the key named does: it was stored with that one.
    OtherKey { current: String, opens_with: String },
    /// The current key does not open it: stored with another key, or altered.
    WrongKeyOrAltered { current: String },
    /// Not a valid encrypted value.
    Corrupt,
    /// Encrypted in a format this Keel does not know.
    NewerFormat(String),
}

impl std::fmt::Display for SecretProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretProblem::PlainText => f.write_str("stored in plain text, not encrypted yet (keel serve encrypts it when it starts)"),
            SecretProblem::NoKey => f.write_str("encrypted, but no key is configured (KEEL_SECRET_KEY or the data directory's secret.key)"),
            SecretProblem::OtherKey { current, opens_with } => {
                write!(f, "wrong key: the current key ({current}) does not decrypt it, {opens_with} does (the key it was stored with)")
            }
            SecretProblem::WrongKeyOrAltered { current } => {
                write!(f, "cannot be decrypted with the current key ({current}): it was stored with another key, or the value was altered")
            }
            SecretProblem::Corrupt => f.write_str("corrupt: not a valid encrypted value"),
            SecretProblem::NewerFormat(format) => write!(f, "encrypted in an unknown format ({format}), written by a newer Keel"),
        }
    }
}

/// A stored secret that cannot be used as it is stored: the record and why. Never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFault {
    pub kind: StoredSecret,
    pub id: String,
    /// The webhook's name or the mailbox's address.
    pub label: String,
    pub problem: SecretProblem,
}

impl std::fmt::Display for SecretFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            StoredSecret::WebhookSecret => write!(f, "signing secret of webhook \"{}\" ({}): {}", self.label, self.id, self.problem),
            StoredSecret::ImapPassword => write!(f, "IMAP password of mailbox {} ({}): {}", self.label, self.id, self.problem),
        }
    }
}

/// What `keel check` found among the stored secrets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SecretCheck {
    pub checked: usize,
    pub faults: Vec<SecretFault>,
}

/// What a key rotation encrypted again with the new key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyRotation {
    pub webhook_secrets: usize,
    pub imap_passwords: usize,
    /// Of those, the ones stored in plain text until now.
    pub were_plain_text: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationOutcome {
    Rotated(KeyRotation),
    /// Nothing was changed: these secrets do not open with the current key.
    Refused(Vec<SecretFault>),
}

/// A 32-byte key written as 64 hex digits or as base64 (standard or URL-safe, padded or not).
pub fn parse_key(text: &str) -> Result<[u8; KEY_LEN], SecretError> {
    let text = text.trim();
    let bytes = if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|_| SecretError::BadKey("is not valid hex".into()))?
    } else {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|e| e.decode(text).ok())
            .ok_or_else(|| SecretError::BadKey("is neither 64 hex digits nor base64".into()))?
    };
    bytes.try_into().map_err(|b: Vec<u8>| SecretError::BadKey(format!("must be 32 bytes, not {}", b.len())))
}

/// A new random key, as 64 hex digits (what `secret.key` holds and `KEEL_SECRET_KEY` takes).
pub fn generate_key_hex() -> Result<String, SecretError> {
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new().fill(&mut key).map_err(|_| SecretError::NoRandomness)?;
    Ok(hex::encode(key))
}

/// Reads the key file, or creates it (mode 0600) with a new random key when it does not
/// exist; returns the key and whether it was created.
fn load_or_create_key_file(path: &Path) -> Result<([u8; KEY_LEN], bool), SecretError> {
    let shown = path.display().to_string();
    let fail = |what: &str, e: std::io::Error| SecretError::KeyFile(format!("{shown}: {what}: {e}"));
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| fail("cannot create its directory", e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut f) => {
            use std::io::Write;
            let text = generate_key_hex()?;
            f.write_all(format!("{text}\n").as_bytes()).map_err(|e| fail("cannot be written", e))?;
            f.sync_all().map_err(|e| fail("cannot be written", e))?;
            Ok((parse_key(&text)?, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((read_key_file(path)?, false)),
        Err(e) => Err(fail("cannot be created", e)),
    }
}

/// Reads a key file, warning when other users may read it.
fn read_key_file(path: &Path) -> Result<[u8; KEY_LEN], SecretError> {
    let shown = path.display().to_string();
    // Another process may have created it a moment ago and still be writing it.
    let mut last = String::new();
    for _ in 0..20 {
        last = std::fs::read_to_string(path).map_err(|e| SecretError::KeyFile(format!("{shown}: cannot be read: {e}")))?;
        if !last.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let key = parse_key(&last).map_err(|e| SecretError::KeyFile(format!("{shown}: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(file = %shown, "the secret key file is readable by other users; chmod 600 it");
        }
    }
    Ok(key)
}

/// Writes a key file readable by its owner only (mode 0600) and syncs it; a file already at
/// `path` is replaced.
fn write_private_file(path: &Path, text: &str) -> Result<(), SecretError> {
    let fail = |what: &str, e: std::io::Error| SecretError::KeyFile(format!("{}: {what}: {e}", path.display()));
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(fail("cannot be replaced", e));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(|e| fail("cannot be created", e))?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| fail("cannot be written", e))?;
    f.sync_all().map_err(|e| fail("cannot be written", e))
}

/// Makes the renames and new files of a directory durable.
fn sync_dir(dir: &Path) -> Result<(), SecretError> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SecretError::KeyFile(format!("{}: cannot be synced: {e}", dir.display())))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// A rotation's key files: the new key is written beside the current key file before the
/// database changes and renamed over it once the database has committed; the current key is
/// copied to `secret.key.old` first. A crash before the commit leaves `secret.key` opening
/// every secret; one after it leaves the key that does in `secret.key.new` (`keel check` says
/// so).
#[derive(Debug)]
pub struct PendingKeyFile {
    current: PathBuf,
    new: PathBuf,
    old: PathBuf,
}

impl PendingKeyFile {
    /// Writes `secret.key.new` (the new key, as hex or base64 text) and `secret.key.old` (a
    /// copy of the current key), both 0600 and synced. An existing `secret.key.new` is
    /// replaced, so call this only once every stored secret opens with the current key; an
    /// existing `secret.key.old` holding another key is refused, since backups taken before
    /// the last rotation need it.
    pub fn prepare(current: &Path, new_key: &str) -> Result<PendingKeyFile, SecretError> {
        let beside = |name: &str| current.with_file_name(name);
        let (new, old) = (beside(NEW_KEY_FILE), beside(OLD_KEY_FILE));
        let current_key = read_key_file(current)?;
        if old.exists() && read_key_file(&old).ok() != Some(current_key) {
            return Err(SecretError::KeyFile(format!(
                "{} exists and does not hold the current key: it is the key before an earlier rotation, which backups \
                 taken before it need; move it to where those backups are kept, then rotate again",
                old.display()
            )));
        }
        let new_key = parse_key(new_key)?;
        write_private_file(&new, &format!("{}\n", hex::encode(new_key)))?;
        write_private_file(&old, &format!("{}\n", hex::encode(current_key)))?;
        sync_dir(current.parent().unwrap_or(Path::new(".")))?;
        Ok(PendingKeyFile { current: current.to_path_buf(), new, old })
    }

    /// Puts the new key in place of the current one with one rename, once the database holds
    /// the secrets encrypted with it; the previous key stays in `secret.key.old`, returned.
    pub fn install(self) -> Result<PathBuf, SecretError> {
        std::fs::rename(&self.new, &self.current).map_err(|e| {
            SecretError::KeyFile(format!(
                "{} cannot be renamed to {}: {e}; the stored secrets are encrypted with the key in {0}: rename it yourself before \
                 starting Keel",
                self.new.display(),
                self.current.display()
            ))
        })?;
        sync_dir(self.current.parent().unwrap_or(Path::new(".")))?;
        Ok(self.old)
    }

    /// Removes the files `prepare` wrote, when the database was not changed.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.new);
        let _ = std::fs::remove_file(&self.old);
    }
}

/// What the start-up pass over the stored secrets found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SealReport {
    /// Legacy plaintext values encrypted now.
    pub sealed: usize,
    /// Encrypted values that open with this instance's key.
    pub readable: usize,
    /// Records whose value cannot be opened, each with what to do.
    pub unreadable: Vec<String>,
}

/// The message of a webhook secret this instance cannot open: names the record and what to do.
pub fn webhook_error(name: &str, id: &str, e: &SecretError) -> String {
    format!(
        "the signing secret of webhook \"{name}\" ({id}) cannot be used: {e}. Configure the same KEEL_SECRET_KEY on every \
         instance (or restore the data directory's secret.key), or enter the webhook's secret again; nothing is sent unsigned"
    )
}

/// The message of a mailbox password this instance cannot open: names the record and what to do.
pub fn mailbox_error(address: &str, id: &str, e: &SecretError) -> String {
    format!(
        "the IMAP password of mailbox {address} ({id}) cannot be used: {e}. Configure the same KEEL_SECRET_KEY on every \
         instance (or restore the data directory's secret.key), or enter the mailbox's IMAP password again"
    )
}

impl App {
    /// Encrypts the secrets still stored as plaintext (written before encryption existed, or
    /// by an older instance) and checks that every encrypted one opens with this instance's
    /// key. Run once by `keel serve` at start; safe to run in several instances at once (each
    /// value is replaced only if it is still the plaintext read).
    pub async fn seal_stored_secrets(&self) -> Result<SealReport> {
        let mut report = SealReport::default();
        let rows = keel_store::secrets::list_all(&mut *self.read().await?).await?;
        let mut tx = self.db.begin().await?;
        for row in rows {
            let ctx = context(row.kind, &row.id);
            match self.secrets.open(&ctx, &row.stored) {
                Ok(_) if is_sealed(&row.stored) => report.readable += 1,
                Ok(plain) => {
                    let sealed = self.seal_secret(&ctx, &plain)?;
                    if keel_store::secrets::replace(&mut tx, row.kind, &row.id, &row.stored, &sealed).await? {
                        report.sealed += 1;
                    }
                }
                Err(e) => report.unreadable.push(match row.kind {
                    StoredSecret::WebhookSecret => webhook_error(&row.label, &row.id, &e),
                    StoredSecret::ImapPassword => mailbox_error(&row.label, &row.id, &e),
                }),
            }
        }
        tx.commit().await.map_err(keel_store::StoreError::from)?;
        Ok(report)
    }

    /// Every stored secret this instance's key cannot use as it is stored, and why: what
    /// `keel check` reports. `others` are key files a rotation left behind, tried to name the
    /// key a secret was stored with.
    pub async fn check_stored_secrets(&self, others: &[SecretBox]) -> Result<SecretCheck> {
        let rows = keel_store::secrets::list_all(&mut *self.read().await?).await?;
        let faults = rows.iter().filter_map(|row| self.secret_fault(row, others)).collect();
        Ok(SecretCheck { checked: rows.len(), faults })
    }

    fn secret_fault(&self, row: &SecretRow, others: &[SecretBox]) -> Option<SecretFault> {
        let problem = self.secrets.diagnose(&context(row.kind, &row.id), &row.stored, others)?;
        Some(SecretFault { kind: row.kind, id: row.id.clone(), label: row.label.clone(), problem })
    }

    /// Encrypts every stored secret again with `new_key`, in one transaction with its audit
    /// entry: all of them or none. Refused, changing nothing, when a secret does not open with
    /// the current key (plain text is read as it is and encrypted with the new key). The caller
    /// installs the new key once this returns `Rotated`; instances still running with the old
    /// key must be stopped first, or what they write meanwhile fails the rotation (`Stale`).
    pub async fn rotate_secret_key(&self, actor: &Principal, new_key: &SecretBox) -> Result<RotationOutcome> {
        if !actor.is_admin() {
            return Err(AppError::Forbidden);
        }
        let mut w = self.write(actor).await?;
        let rows = keel_store::secrets::list_all(w.conn()).await?;
        let mut rotation = KeyRotation::default();
        let mut faults = Vec::new();
        let mut written = Vec::with_capacity(rows.len());
        for row in &rows {
            let ctx = context(row.kind, &row.id);
            match self.secrets.open(&ctx, &row.stored) {
                Ok(plain) => {
                    rotation.were_plain_text += usize::from(!is_sealed(&row.stored));
                    let sealed = new_key.seal(&ctx, &plain).map_err(|e| AppError::Internal(format!("cannot encrypt the secret: {e}")))?;
                    written.push(sealed);
                }
                Err(_) => faults.extend(self.secret_fault(row, &[])),
            }
        }
        if !faults.is_empty() {
            return Ok(RotationOutcome::Refused(faults));
        }
        for (row, sealed) in rows.iter().zip(&written) {
            if !keel_store::secrets::replace(w.conn(), row.kind, &row.id, &row.stored, sealed).await? {
                return Err(AppError::Stale);
            }
            match row.kind {
                StoredSecret::WebhookSecret => rotation.webhook_secrets += 1,
                StoredSecret::ImapPassword => rotation.imap_passwords += 1,
            }
        }
        // A secret another instance added meanwhile would be left with the old key.
        let after = keel_store::secrets::list_all(w.conn()).await?;
        let all_new = after.len() == rows.len()
            && after
                .iter()
                .zip(rows.iter().zip(&written))
                .all(|(a, (row, sealed))| a.kind == row.kind && a.id == row.id && a.stored == *sealed);
        if !all_new {
            return Err(AppError::Stale);
        }
        let counts = serde_json::json!({
            "webhook_secrets": rotation.webhook_secrets,
            "imap_passwords": rotation.imap_passwords,
            "were_plain_text": rotation.were_plain_text,
        });
        w.record("secret_key", "stored_secrets", AuditAction::SecretKeyRotated, None, Some(&counts)).await?;
        w.commit().await?;
        Ok(RotationOutcome::Rotated(rotation))
    }

    /// Seals a secret an administrator entered for the record `context` names.
    pub(crate) fn seal_secret(&self, context: &str, plaintext: &str) -> Result<String> {
        self.secrets.seal(context, plaintext).map_err(|e| crate::AppError::Internal(format!("cannot encrypt the secret: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb(byte: u8) -> SecretBox {
        SecretBox::new([byte; 32], KeySource::Given)
    }

    #[test]
    fn a_sealed_value_opens_for_its_record_and_is_not_the_plaintext() {
        let b = sb(1);
        let ctx = webhook_context("h1");
        let stored = b.seal(&ctx, "g-secret 密钥").unwrap();
        assert!(stored.starts_with(PREFIX_V1) && !stored.contains("g-secret"), "{stored}");
        assert_eq!(b.open(&ctx, &stored).unwrap(), "g-secret 密钥");
        assert_ne!(b.seal(&ctx, "g-secret 密钥").unwrap(), stored, "a fresh nonce per value");
        assert_eq!(b.open(&ctx, &b.seal(&ctx, "").unwrap()).unwrap(), "");
    }

    #[test]
    fn a_tampered_value_is_refused() {
        let b = sb(1);
        let ctx = mailbox_context("m1");
        let stored = b.seal(&ctx, "imap password").unwrap();
        let mut blob = base64::engine::general_purpose::STANDARD.decode(&stored[PREFIX_V1.len()..]).unwrap();
        for i in [0, NONCE_LEN, blob.len() - 1] {
            blob[i] ^= 1;
            let altered = format!("{PREFIX_V1}{}", base64::engine::general_purpose::STANDARD.encode(&blob));
            assert!(matches!(b.open(&ctx, &altered), Err(SecretError::Undecryptable(_))), "byte {i}");
            blob[i] ^= 1;
        }
        assert_eq!(
            b.open(&ctx, &format!("{PREFIX_V1}{}", base64::engine::general_purpose::STANDARD.encode(&blob[..20]))),
            Err(SecretError::Malformed)
        );
        assert_eq!(b.open(&ctx, "enc:v1:not base64!"), Err(SecretError::Malformed));
        // moved to another record: refused like a tampered value
        assert!(matches!(b.open(&mailbox_context("m2"), &stored), Err(SecretError::Undecryptable(_))));
        assert!(matches!(b.open(&webhook_context("m1"), &stored), Err(SecretError::Undecryptable(_))));
    }

    #[test]
    fn a_wrong_key_is_refused_with_a_message_naming_the_key_source() {
        let ctx = webhook_context("h1");
        let stored = sb(1).seal(&ctx, "s").unwrap();
        let e = sb(2).open(&ctx, &stored).unwrap_err();
        assert!(matches!(e, SecretError::Undecryptable(_)));
        let msg = webhook_error("Ops", "h1", &e);
        assert!(msg.contains("webhook \"Ops\" (h1)") && msg.contains("KEEL_SECRET_KEY"), "{msg}");
        assert_eq!(SecretBox::unconfigured().open(&ctx, &stored), Err(SecretError::NoKey));
        assert_eq!(SecretBox::unconfigured().seal(&ctx, "s"), Err(SecretError::NoKey));
    }

    #[test]
    fn a_legacy_plaintext_value_is_read_as_it_is_and_sealed_on_reseal() {
        let b = sb(1);
        let ctx = webhook_context("h1");
        assert_eq!(b.open(&ctx, "SECd").unwrap(), "SECd");
        assert_eq!(SecretBox::unconfigured().open(&ctx, "SECd").unwrap(), "SECd");
        let sealed = b.reseal(&ctx, "SECd").unwrap();
        assert!(is_sealed(&sealed));
        assert_eq!(b.reseal(&ctx, &sealed).unwrap(), sealed, "an encrypted value stays as it is");
        assert_eq!(b.open(&ctx, "enc:v9:abc"), Err(SecretError::UnknownVersion("enc:v9".into())));
        assert_eq!(b.open(&ctx, "enc:plain").unwrap(), "enc:plain", "no version: a plaintext");
    }

    #[test]
    fn keys_are_read_as_hex_or_base64_of_32_bytes() {
        let hex_key = "00".repeat(31) + "ff";
        assert_eq!(parse_key(&hex_key).unwrap()[31], 0xff);
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(parse_key(&format!(" {b64}\n")).unwrap(), [7u8; 32]);
        assert_eq!(parse_key(b64.trim_end_matches('=')).unwrap(), [7u8; 32]);
        assert!(matches!(parse_key("abcd"), Err(SecretError::BadKey(_))));
        assert!(matches!(parse_key(&base64::engine::general_purpose::STANDARD.encode([7u8; 16])), Err(SecretError::BadKey(_))));
        assert!(parse_key(&generate_key_hex().unwrap()).is_ok());
    }

    #[test]
    fn the_key_file_is_created_once_private_and_then_reused() {
        let dir = std::env::temp_dir().join(format!("keel-secrets-{}", uuid::Uuid::new_v4()));
        let a = SecretBox::from_config(None, &dir).unwrap();
        let path = dir.join(KEY_FILE);
        assert_eq!(a.source(), &KeySource::File { path: path.clone(), created: true });
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let b = SecretBox::from_config(Some("  "), &dir).unwrap();
        assert_eq!(b.source(), &KeySource::File { path: path.clone(), created: false });
        let ctx = mailbox_context("m1");
        assert_eq!(b.open(&ctx, &a.seal(&ctx, "pw").unwrap()).unwrap(), "pw");
        // a configured key wins over the file
        let c = SecretBox::from_config(Some(&"11".repeat(32)), &dir).unwrap();
        assert_eq!(c.source(), &KeySource::Configured);
        assert!(c.open(&ctx, &a.seal(&ctx, "pw").unwrap()).is_err());
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(SecretBox::from_config(None, &dir), Err(SecretError::KeyFile(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_value_that_cannot_be_used_is_diagnosed() {
        let (a, b) = (sb(1), sb(2));
        let ctx = webhook_context("h1");
        let sealed = a.seal(&ctx, "s").unwrap();
        assert_eq!(a.diagnose(&ctx, &sealed, &[]), None);
        assert_eq!(a.diagnose(&ctx, "plain", &[]), Some(SecretProblem::PlainText));
        let current = KeySource::Given.to_string();
        assert_eq!(b.diagnose(&ctx, &sealed, &[]), Some(SecretProblem::WrongKeyOrAltered { current: current.clone() }));
        assert_eq!(
            b.diagnose(&ctx, &sealed, &[sb(3), sb(1)]),
            Some(SecretProblem::OtherKey { current, opens_with: KeySource::Given.to_string() })
        );
        assert_eq!(SecretBox::unconfigured().diagnose(&ctx, &sealed, &[]), Some(SecretProblem::NoKey));
        assert_eq!(a.diagnose(&ctx, "enc:v1:not base64!", &[]), Some(SecretProblem::Corrupt));
        assert_eq!(a.diagnose(&ctx, "enc:v9:abc", &[]), Some(SecretProblem::NewerFormat("enc:v9".into())));
        assert!(a.same_key(&sb(1)) && !a.same_key(&b) && !a.same_key(&SecretBox::unconfigured()));
    }

    #[test]
    fn a_rotation_writes_its_key_files_private_and_keeps_the_previous_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("keel-rotate-{}", uuid::Uuid::new_v4()));
        assert_eq!(SecretBox::existing(None, &dir).unwrap().source(), &KeySource::None);
        assert!(!dir.exists(), "checking creates nothing");
        let current = SecretBox::from_config(None, &dir).unwrap();
        let path = dir.join(KEY_FILE);
        let (new, old) = (dir.join(NEW_KEY_FILE), dir.join(OLD_KEY_FILE));
        let next = generate_key_hex().unwrap();
        let next_box = SecretBox::new(parse_key(&next).unwrap(), KeySource::Given);

        let pending = PendingKeyFile::prepare(&path, &next).unwrap();
        for f in [&new, &old] {
            assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600, "{}", f.display());
        }
        assert!(SecretBox::existing(None, &dir).unwrap().same_key(&current), "not installed before the commit");
        assert!(SecretBox::from_key_file(&new).unwrap().same_key(&next_box));
        pending.abandon();
        assert!(!new.exists() && !old.exists());

        let kept = PendingKeyFile::prepare(&path, &next).unwrap().install().unwrap();
        assert_eq!(kept, old);
        assert!(SecretBox::existing(None, &dir).unwrap().same_key(&next_box));
        assert!(SecretBox::from_key_file(&old).unwrap().same_key(&current));
        assert!(!new.exists());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // the key before this rotation is never overwritten by the next one
        let e = PendingKeyFile::prepare(&path, &generate_key_hex().unwrap()).unwrap_err();
        assert!(matches!(&e, SecretError::KeyFile(m) if m.contains(OLD_KEY_FILE)), "{e}");
        assert!(!new.exists());
        // a copy of the current key, as an interrupted attempt leaves it, is replaced
        std::fs::copy(&path, &old).unwrap();
        PendingKeyFile::prepare(&path, &generate_key_hex().unwrap()).unwrap().abandon();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

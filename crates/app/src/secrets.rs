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

use crate::{App, Result};
use base64::Engine;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::{Path, PathBuf};

/// The prefix of every encrypted value; the version names the algorithm and layout.
pub const PREFIX_V1: &str = "enc:v1:";
const KEY_LEN: usize = 32;
/// The key file's name in the data directory.
pub const KEY_FILE: &str = "secret.key";

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

    pub fn source(&self) -> &KeySource {
        &self.source
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
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another process may have created it a moment ago and still be writing it.
            let mut last = String::new();
            for _ in 0..20 {
                last = std::fs::read_to_string(path).map_err(|e| fail("cannot be read", e))?;
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
            Ok((key, false))
        }
        Err(e) => Err(fail("cannot be created", e)),
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
        let (hooks, boxes) = {
            let mut c = self.read().await?;
            (keel_store::notifications::webhook_secrets(&mut c).await?, keel_store::mail::mailbox_secrets(&mut c).await?)
        };
        let mut tx = self.db.begin().await?;
        for (id, name, stored) in hooks {
            let ctx = webhook_context(&id);
            match self.secrets.open(&ctx, &stored) {
                Ok(_) if is_sealed(&stored) => report.readable += 1,
                Ok(plain) => {
                    let sealed = self.secrets.seal(&ctx, &plain).map_err(|e| crate::AppError::Internal(e.to_string()))?;
                    if keel_store::notifications::replace_webhook_secret(&mut tx, &id, &stored, &sealed).await? {
                        report.sealed += 1;
                    }
                }
                Err(e) => report.unreadable.push(webhook_error(&name, &id, &e)),
            }
        }
        for (id, address, stored) in boxes {
            let ctx = mailbox_context(&id);
            match self.secrets.open(&ctx, &stored) {
                Ok(_) if is_sealed(&stored) => report.readable += 1,
                Ok(plain) => {
                    let sealed = self.secrets.seal(&ctx, &plain).map_err(|e| crate::AppError::Internal(e.to_string()))?;
                    if keel_store::mail::replace_mailbox_secret(&mut tx, &id, &stored, &sealed).await? {
                        report.sealed += 1;
                    }
                }
                Err(e) => report.unreadable.push(mailbox_error(&address, &id, &e)),
            }
        }
        tx.commit().await.map_err(keel_store::StoreError::from)?;
        Ok(report)
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
}

//! Instance configuration: defaults, then `keel.toml`, then `KEEL_*` variables, then flags.

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub bind: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// Mark cookies Secure (set when Keel is reached over HTTPS).
    pub secure_cookies: bool,
    /// Time zone for people who have not chosen one.
    pub default_time_zone: String,
    pub max_body_bytes: usize,
    /// Largest attachment accepted (bytes); files are kept under `data_dir/attachments`.
    pub max_attachment_bytes: u64,
    pub session_idle_minutes: i64,
    pub session_max_days: i64,
    pub max_failed_logins: i64,
    pub lockout_minutes: i64,
    /// Outgoing mail (`[smtp]` / `KEEL_SMTP_HOST`, `_PORT`, `_TLS`, `_USER`, `_PASSWORD`, `_FROM`);
    /// without it no email notifications are prepared.
    #[serde(default)]
    pub smtp: Option<keel_app::notifications::channels::SmtpConfig>,
    /// How often (ms) the background job runner looks for due jobs when it is idle.
    pub job_tick_ms: u64,
    /// How long (ms) a job is leased to the process that claimed it; a job whose process died
    /// is taken up by another after it. Also bounds the margin of notification delivery leases
    /// (at most a minute beyond the worst sending time).
    pub job_lease_ms: i64,
    /// How long (ms) one email or webhook delivery may take before it counts as failed.
    pub notification_timeout_ms: u64,
    /// The 32-byte key (64 hex digits or base64) that encrypts webhook secrets and IMAP
    /// passwords in the database (`KEEL_SECRET_KEY`). Without it the key is kept in
    /// `data_dir/secret.key`, created on first start; instances sharing one PostgreSQL
    /// database must all be given the same key.
    #[serde(default)]
    pub secret_key: Option<SecretKey>,
}

/// A configured key: never printed.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct SecretKey(pub String);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("keel-data"),
            database_url: None,
            secure_cookies: false,
            default_time_zone: "Asia/Shanghai".into(),
            max_body_bytes: 2 * 1024 * 1024,
            max_attachment_bytes: 10 * 1024 * 1024,
            session_idle_minutes: 8 * 60,
            session_max_days: 30,
            max_failed_logins: 5,
            lockout_minutes: 15,
            smtp: None,
            job_tick_ms: 2000,
            job_lease_ms: 5 * 60_000,
            notification_timeout_ms: 15_000,
            secret_key: None,
        }
    }
}

impl Config {
    pub fn load(
        file: Option<&Path>,
        bind: Option<String>,
        data_dir: Option<PathBuf>,
        database_url: Option<String>,
    ) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => {
                if !f.exists() {
                    anyhow::bail!("configuration file {} does not exist", f.display());
                }
                fig = fig.merge(Toml::file(f));
            }
            None => fig = fig.merge(Toml::file("keel.toml")),
        }
        // Only settings are read from KEEL_*; other KEEL_ variables (KEEL_LOG, KEEL_PASSWORD,
        // KEEL_TEST_DATABASE_URL, a test's KEEL_BIN, …) belong to other tools.
        fig = fig.merge(Env::prefixed("KEEL_").only(&[
            "secure_cookies",
            "default_time_zone",
            "max_body_bytes",
            "max_attachment_bytes",
            "session_idle_minutes",
            "session_max_days",
            "max_failed_logins",
            "lockout_minutes",
            "job_tick_ms",
            "job_lease_ms",
            "notification_timeout_ms",
            "secret_key",
        ]));
        fig = fig.merge(
            Env::prefixed("KEEL_SMTP_").only(&["host", "port", "tls", "user", "password", "from"]).map(|k| format!("smtp.{k}").into()),
        );
        let mut cfg: Config = fig.extract().context("invalid configuration")?;
        if let Some(b) = bind {
            cfg.bind = b;
        }
        if let Some(d) = data_dir {
            cfg.data_dir = d;
        }
        if let Some(u) = database_url.filter(|u| !u.is_empty()) {
            cfg.database_url = Some(u);
        }
        if cfg.job_tick_ms < 10 || cfg.job_lease_ms < 1000 || cfg.notification_timeout_ms < 100 {
            anyhow::bail!("job_tick_ms must be at least 10, job_lease_ms at least 1000 and notification_timeout_ms at least 100");
        }
        cfg.default_time_zone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| anyhow::anyhow!("default_time_zone {} is not a known time zone", cfg.default_time_zone))?;
        Ok(cfg)
    }

    pub fn database_url(&self) -> anyhow::Result<String> {
        match &self.database_url {
            Some(u) => Ok(u.clone()),
            None => {
                std::fs::create_dir_all(&self.data_dir).with_context(|| format!("cannot create {}", self.data_dir.display()))?;
                Ok(keel_store::sqlite_url_for_dir(&std::path::absolute(&self.data_dir)?))
            }
        }
    }

    /// Holds an exclusive lock on the data directory while a server or a restore runs.
    pub fn lock_data_dir(&self) -> anyhow::Result<std::fs::File> {
        std::fs::create_dir_all(&self.data_dir)?;
        let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(self.data_dir.join("keel.lock"))?;
        f.try_lock().map_err(|_| anyhow::anyhow!("another keel process is using {}", self.data_dir.display()))?;
        Ok(f)
    }

    /// The largest email message the gateway accepts: room for a few attachments of the
    /// largest size in base64.
    pub fn max_mail_bytes(&self) -> u64 {
        self.max_attachment_bytes.saturating_mul(4).saturating_add(1024 * 1024)
    }

    pub fn security(&self) -> keel_app::SecurityConfig {
        keel_app::SecurityConfig {
            session_idle_ms: self.session_idle_minutes * 60_000,
            session_max_ms: self.session_max_days * 86_400_000,
            max_failed_logins: self.max_failed_logins,
            lockout_ms: self.lockout_minutes * 60_000,
            ..Default::default()
        }
    }

    pub fn notify(&self) -> keel_app::notifications::NotifyConfig {
        keel_app::notifications::NotifyConfig {
            smtp: self.smtp.clone(),
            timeout: std::time::Duration::from_millis(self.notification_timeout_ms),
            lease_margin_ms: self.job_lease_ms.min(60_000),
            ..Default::default()
        }
    }

    /// The box that encrypts stored secrets: the configured key, else the data directory's
    /// key file (created now when missing).
    pub fn secrets(&self) -> anyhow::Result<keel_app::secrets::SecretBox> {
        keel_app::secrets::SecretBox::from_config(self.secret_key.as_ref().map(|k| k.0.as_str()), &self.data_dir)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("cannot set up the key that encrypts stored secrets (KEEL_SECRET_KEY)")
    }

    /// The key of the stored secrets as `secrets` finds it, but without creating a key file:
    /// for `keel check` and key rotation.
    pub fn existing_secrets(&self) -> anyhow::Result<keel_app::secrets::SecretBox> {
        keel_app::secrets::SecretBox::existing(self.secret_key.as_ref().map(|k| k.0.as_str()), &self.data_dir)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("cannot read the key that encrypts stored secrets")
    }

    /// Where the operator set a configured key: the variable wins over keel.toml.
    pub fn secret_key_origin(&self) -> &'static str {
        if std::env::var("KEEL_SECRET_KEY").is_ok_and(|k| !k.trim().is_empty()) { "KEEL_SECRET_KEY" } else { "secret_key in keel.toml" }
    }

    pub fn jobs(&self) -> keel_app::jobs::JobConfig {
        keel_app::jobs::JobConfig { tick: std::time::Duration::from_millis(self.job_tick_ms), lease_ms: self.job_lease_ms }
    }

    pub fn web(&self) -> keel_web::WebConfig {
        keel_web::WebConfig {
            secure_cookies: self.secure_cookies,
            max_body_bytes: self.max_body_bytes,
            default_time_zone: self.default_time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_settings_come_from_keel_toml() {
        let dir = std::env::temp_dir().join(format!("keel-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keel.toml");
        std::fs::write(&file, "[smtp]\nhost = \"mail.example.com\"\ntls = \"tls\"\nport = 465\nfrom = \"Desk <desk@example.com>\"\n")
            .unwrap();
        let cfg = Config::load(Some(&file), None, None, None).unwrap();
        let smtp = cfg.notify().smtp.unwrap();
        assert_eq!((smtp.host.as_str(), smtp.port, smtp.tls), ("mail.example.com", 465, keel_app::notifications::channels::SmtpTls::Tls));
        std::fs::write(&file, "bind = \"127.0.0.1:9\"\n").unwrap();
        assert!(Config::load(Some(&file), None, None, None).unwrap().smtp.is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_secret_key_comes_from_keel_toml_and_is_never_printed() {
        let dir = std::env::temp_dir().join(format!("keel-config-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keel.toml");
        let key = "ab".repeat(32);
        std::fs::write(&file, format!("secret_key = \"{key}\"\n")).unwrap();
        let cfg = Config::load(Some(&file), None, Some(dir.join("data")), None).unwrap();
        assert!(!format!("{cfg:?}").contains(&key));
        assert_eq!(cfg.secrets().unwrap().source(), &keel_app::secrets::KeySource::Configured);
        assert!(!dir.join("data").join("secret.key").exists(), "no key file when a key is configured");
        std::fs::write(&file, "secret_key = \"too short\"\n").unwrap();
        let err = format!("{:#}", Config::load(Some(&file), None, None, None).unwrap().secrets().unwrap_err());
        assert!(err.contains("KEEL_SECRET_KEY") && !err.contains("too short"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! The `keel` binary: serves every process (web, API and background jobs in one process) and
//! carries the operator's commands: migrate, user, backup, restore, check, reindex, secret-key, and the mail gateway.

mod config;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use config::Config;
use keel_app::{App, Principal};
use keel_store::{Backend, ConnectOptions, Db};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(name = "keel", version, about = "Keel: ISO/IEC 20000 IT service management", long_about = None)]
struct Cli {
    /// Configuration file (default: ./keel.toml when present).
    #[arg(long, global = true, env = "KEEL_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, global = true, env = "KEEL_BIND")]
    bind: Option<String>,
    /// Directory for the SQLite database and attachments.
    #[arg(long, global = true, env = "KEEL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…`; default: SQLite in the data directory.
    #[arg(long, global = true, env = "KEEL_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the web interface, the API and the background jobs (the default).
    Serve {
        /// On an empty data directory, load the demo first (see `keel demo`).
        #[arg(long)]
        demo: bool,
    },
    /// Import records from another tool's CSV export.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Load a bilingual demo desk into an empty data directory and print its accounts.
    Demo {
        /// Number of incidents over all demo projects.
        #[arg(long, default_value_t = 3000)]
        tickets: usize,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts from the shell.
    #[command(subcommand)]
    User(UserCommand),
    /// Write a consistent snapshot of the running SQLite database to FILE.
    Backup { file: PathBuf },
    /// Replace the SQLite database with a backup (the server must be stopped).
    Restore { file: PathBuf },
    /// Check the schema, the audit trail's hash chains, the database's integrity and that every
    /// stored secret opens with the current key.
    Check,
    /// Print the OpenAPI document.
    Openapi,
    /// Receive one email message on standard input for a project (an MTA pipe): exits 0 when
    /// it was stored or deliberately ignored, 65 when refused, 67 for an unknown project and
    /// 75 (EX_TEMPFAIL) when the MTA should try again later.
    Mailgate {
        /// The project's id or code.
        #[arg(long)]
        project: String,
    },
    /// Rebuild the search index from the database beside the current one and swap it in; a
    /// running `keel serve` with the same data directory keeps serving and switches over.
    Reindex,
    /// Manage the key that encrypts stored secrets (webhook secrets, IMAP passwords).
    #[command(subcommand)]
    SecretKey(SecretKeyCommand),
}

#[derive(Subcommand, Debug)]
enum SecretKeyCommand {
    /// Encrypt every stored secret again with a new key, all or nothing, then install the key:
    /// a new secret.key (the previous one kept as secret.key.old) or, when the key is
    /// configured, the one --new-key-env names. Stop every keel serve first.
    Rotate {
        /// Environment variable holding the new key (64 hex digits or base64): required when
        /// the key comes from KEEL_SECRET_KEY or keel.toml; with a key file, a random key by default.
        #[arg(long, value_name = "NAME")]
        new_key_env: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ImportCommand {
    /// Import incidents: check every row (`--dry-run` stops there), then write all or nothing.
    Incidents {
        file: PathBuf,
        /// TOML mapping of columns to fields (examples in docs/import/).
        #[arg(long)]
        mapping: PathBuf,
        /// Service project code or id.
        #[arg(long)]
        project: String,
        /// E-mail of the staff account the import is done as (reporter unless the mapping names one).
        #[arg(long = "as")]
        as_user: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// Import configuration items and relations from CSV with a TOML mapping, all or nothing.
    Cis {
        file: PathBuf,
        /// TOML mapping of columns to CI fields, attributes and relations (docs/import/cis.toml).
        #[arg(long)]
        mapping: PathBuf,
        /// E-mail of the staff account the import is done as.
        #[arg(long = "as")]
        as_user: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// Import CIs and their links from iTop XML data files (several files are one import).
    Itop {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// E-mail of the staff account the import is done as.
        #[arg(long = "as")]
        as_user: String,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a staff account; the password is read from KEEL_PASSWORD or standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Give the account the administrator role.
        #[arg(long)]
        admin: bool,
        /// Further roles (service_manager, project_manager, service_desk_agent, technician, cab_member, finance, sales, management_representative, auditor).
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long, default_value = "Asia/Shanghai")]
        time_zone: String,
        #[arg(long, default_value = "en")]
        locale: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEEL_LOG").unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let cfg = Config::load(cli.config.as_deref(), cli.bind.clone(), cli.data_dir.clone(), cli.database_url.clone())?;
    match cli.command.unwrap_or(Command::Serve { demo: false }) {
        Command::Serve { demo } => serve(cfg, demo).await,
        Command::Import(ImportCommand::Incidents { file, mapping, project, as_user, dry_run }) => {
            import_incidents(&cfg, &file, &mapping, &project, &as_user, dry_run).await
        }
        Command::Import(ImportCommand::Cis { file, mapping, as_user, dry_run }) => {
            let text = std::fs::read_to_string(&mapping).with_context(|| format!("cannot read {}", mapping.display()))?;
            let mapping = match keel_app::cmdb_import::CiMapping::from_toml(&text) {
                Ok(m) => m,
                Err(keel_app::AppError::Validation(errors)) => bail!("{}: {}", errors[0].field, errors[0].message),
                Err(e) => return Err(e.into()),
            };
            let csv = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            import_cis(&cfg, &as_user, dry_run, |app, actor| async move { app.import_cis_csv(&actor, &csv, &mapping, dry_run).await }).await
        }
        Command::Import(ImportCommand::Itop { files, as_user, dry_run }) => {
            let mut texts = Vec::new();
            for f in &files {
                texts.push((f.display().to_string(), std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?));
            }
            import_cis(&cfg, &as_user, dry_run, |app, actor| async move { app.import_itop(&actor, &texts, dry_run).await }).await
        }
        Command::Demo { tickets } => {
            let _lock = if cfg.database_url.is_none() { Some(cfg.lock_data_dir().context("stop keel serve first")?) } else { None };
            let db = open(&cfg).await?;
            keel_store::migrate::run(&db).await?;
            let app = App::new(db.clone(), cfg.security());
            app.seed_jobs().await?;
            load_demo(&app, tickets).await?;
            db.close().await;
            Ok(())
        }
        Command::Migrate => {
            let db = open(&cfg).await?;
            let applied = keel_store::migrate::run(&db).await?;
            println!("{} migration(s) applied; schema at version {}", applied.len(), keel_store::migrate::latest_version());
            Ok(())
        }
        Command::User(UserCommand::Create { email, name, admin, roles, time_zone, locale }) => {
            let db = open(&cfg).await?;
            keel_store::migrate::run(&db).await?;
            let app = App::new(db, cfg.security());
            let password = match std::env::var("KEEL_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    eprintln!("Password (at least 10 characters), then Enter:");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let mut parsed = Vec::new();
            for r in &roles {
                parsed.push(keel_domain::identity::Role::parse(r).with_context(|| format!("unknown role {r}"))?);
            }
            if admin {
                parsed.push(keel_domain::identity::Role::Administrator);
            }
            let input = keel_app::users::NewUser {
                email: email.clone(),
                display_name: name.unwrap_or_else(|| email.split('@').next().unwrap_or("admin").to_string()),
                password: Some(password),
                locale: Some(locale),
                time_zone: Some(time_zone),
                roles: parsed,
                ..Default::default()
            };
            match app.create_user(&keel_domain::identity::Principal::system(), input).await {
                Ok(u) => {
                    println!("created {} ({})", u.email, u.id);
                    Ok(())
                }
                Err(keel_app::AppError::Validation(errors)) => {
                    for e in errors {
                        eprintln!("{}: {}", e.field, e.message);
                    }
                    bail!("the account was not created")
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Backup { file } => backup(&cfg, &file).await,
        Command::Restore { file } => restore(&cfg, &file).await,
        Command::Check => {
            let db = open(&cfg).await?;
            let (secrets, key_problem) = match cfg.existing_secrets() {
                Ok(s) => (s, None),
                Err(e) => (keel_app::secrets::SecretBox::unconfigured(), Some(e)),
            };
            let app = App::new(db, cfg.security()).with_secrets(secrets);
            let report = app.integrity_check().await?;
            println!("schema version {} (expected {})", report.schema_version, report.expected_schema_version);
            println!("audit entries checked: {}", report.audit_entries);
            for f in &report.audit_faults {
                println!("AUDIT FAULT: {}", serde_json::to_string(f)?);
            }
            for m in &report.database_messages {
                println!("DATABASE: {m}");
            }
            if let Some(e) = &key_problem {
                println!("SECRET KEY: {e:#}");
            }
            let secrets = app.check_stored_secrets(&rotation_key_files(&cfg)).await?;
            println!("stored secrets checked: {}", secrets.checked);
            for f in &secrets.faults {
                println!("SECRET: {f}");
            }
            if secrets.faults.iter().any(|f| opens_with_new_key_file(&f.problem)) {
                println!(
                    "SECRET KEY: a key rotation was interrupted after the database changed: rename {} to {} before starting keel",
                    keel_app::secrets::NEW_KEY_FILE,
                    keel_app::secrets::KEY_FILE
                );
            }
            if report.ok() && key_problem.is_none() && secrets.faults.is_empty() {
                println!("ok");
                Ok(())
            } else {
                bail!("check failed")
            }
        }
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&keel_web::openapi())?);
            Ok(())
        }
        Command::Mailgate { project } => std::process::exit(mailgate(&cfg, &project).await),
        Command::Reindex => reindex(&cfg).await,
        Command::SecretKey(SecretKeyCommand::Rotate { new_key_env }) => rotate_secret_key(&cfg, new_key_env.as_deref()).await,
    }
}

/// Key files a key rotation left in the data directory, tried to name the key a secret that
/// does not open with the current one was stored with.
fn rotation_key_files(cfg: &Config) -> Vec<keel_app::secrets::SecretBox> {
    [keel_app::secrets::NEW_KEY_FILE, keel_app::secrets::OLD_KEY_FILE]
        .iter()
        .map(|name| cfg.data_dir.join(name))
        .filter(|path| path.exists())
        .filter_map(|path| keel_app::secrets::SecretBox::from_key_file(&path).ok())
        .collect()
}

fn opens_with_new_key_file(p: &keel_app::secrets::SecretProblem) -> bool {
    matches!(p, keel_app::secrets::SecretProblem::OtherKey { opens_with, .. } if opens_with.ends_with(keel_app::secrets::NEW_KEY_FILE))
}

/// `keel secret-key rotate`: every stored secret encrypted again with a new key in one
/// transaction, then the key installed — the key file replaced, or the operator told to
/// configure the new key. Refused, changing nothing, when a secret cannot be decrypted.
async fn rotate_secret_key(cfg: &Config, new_key_env: Option<&str>) -> anyhow::Result<()> {
    use keel_app::secrets::{KeySource, PendingKeyFile, RotationOutcome, SecretBox, SecretFault, SecretProblem};
    let _lock = if cfg.database_url.is_none() { Some(cfg.lock_data_dir().context("stop keel serve first")?) } else { None };
    let current = cfg.existing_secrets()?;
    let given = match new_key_env {
        Some(name) => Some(
            std::env::var(name)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .with_context(|| format!("the environment variable {name} (--new-key-env) is not set"))?,
        ),
        None => None,
    };
    let (new_text, key_file) = match current.source() {
        KeySource::File { path, .. } => {
            let text = match given {
                Some(k) => k,
                None => keel_app::secrets::generate_key_hex().map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            (text, Some(path.clone()))
        }
        KeySource::Configured => {
            let text = given.with_context(|| {
                format!(
                    "the key comes from {}: put a new one (e.g. from `openssl rand -hex 32`) in an environment variable and \
                     name it with --new-key-env",
                    cfg.secret_key_origin()
                )
            })?;
            (text, None)
        }
        KeySource::Given | KeySource::None => bail!(
            "there is no key to rotate: set KEEL_SECRET_KEY, or start keel serve once to create {} in the data directory",
            keel_app::secrets::KEY_FILE
        ),
    };
    let new_key = keel_app::secrets::parse_key(&new_text)
        .map(|k| SecretBox::new(k, KeySource::Given))
        .map_err(|e| anyhow::anyhow!("the new key: {e}"))?;
    if current.same_key(&new_key) {
        bail!("the new key is the current key: nothing was changed");
    }
    let refuse = |faults: &[SecretFault]| {
        for f in faults {
            eprintln!("cannot rotate: {f}");
        }
        anyhow::anyhow!("{} stored secret(s) cannot be decrypted with the current key; nothing was changed (see keel check)", faults.len())
    };
    let db = open(cfg).await?;
    keel_store::migrate::run(&db).await?;
    let app = App::new(db.clone(), cfg.security()).with_secrets(current);
    // Checked before any key file is written; the rotation's transaction checks again.
    let check = app.check_stored_secrets(&rotation_key_files(cfg)).await?;
    let unreadable: Vec<SecretFault> = check.faults.into_iter().filter(|f| f.problem != SecretProblem::PlainText).collect();
    if !unreadable.is_empty() {
        db.close().await;
        return Err(refuse(&unreadable));
    }
    let pending = match &key_file {
        Some(path) => Some(PendingKeyFile::prepare(path, &new_text).map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    let outcome = app.rotate_secret_key(&Principal::system(), &new_key).await;
    db.close().await;
    let rotation = match outcome {
        Ok(RotationOutcome::Rotated(r)) => r,
        Ok(RotationOutcome::Refused(faults)) => {
            if let Some(p) = pending {
                p.abandon();
            }
            return Err(refuse(&faults));
        }
        Err(e) => {
            if let Some(p) = pending {
                p.abandon();
            }
            return Err(match e {
                keel_app::AppError::Stale => anyhow::anyhow!(
                    "a stored secret changed during the rotation: stop every keel serve using this database and run it again; \
                     nothing was changed"
                ),
                e => e.into(),
            });
        }
    };
    println!(
        "{} webhook secret(s) and {} IMAP password(s) encrypted with the new key{}",
        rotation.webhook_secrets,
        rotation.imap_passwords,
        if rotation.were_plain_text > 0 {
            format!(" ({} of them stored in plain text until now)", rotation.were_plain_text)
        } else {
            String::new()
        }
    );
    match (pending, key_file) {
        (Some(p), Some(path)) => {
            let old = p.install().map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("the new key is in {}: back it up with the database", path.display());
            println!(
                "the previous key is kept in {}: database backups taken before now need it; store it with them, then delete it here",
                old.display()
            );
        }
        _ => println!(
            "now set {} to the new key (the value of {}) on every instance before starting it: with the old key they cannot \
             use the stored secrets",
            cfg.secret_key_origin(),
            new_key_env.unwrap_or_default()
        ),
    }
    Ok(())
}

/// sysexits(3) codes an MTA understands.
const EX_DATAERR: i32 = 65;
const EX_NOUSER: i32 = 67;
const EX_TEMPFAIL: i32 = 75;

async fn mailgate(cfg: &Config, project: &str) -> i32 {
    use std::io::Read;
    let limit = cfg.max_mail_bytes();
    let mut raw = Vec::new();
    if let Err(e) = std::io::stdin().lock().take(limit + 1).read_to_end(&mut raw) {
        eprintln!("keel mailgate: cannot read the message: {e}");
        return EX_TEMPFAIL;
    }
    if raw.len() as u64 > limit {
        eprintln!("keel mailgate: message refused: larger than {limit} bytes");
        return EX_DATAERR;
    }
    let app = match async {
        let db = open(cfg).await?;
        keel_store::migrate::run(&db).await?;
        let files = keel_app::desk::FileStore::new(std::path::absolute(cfg.data_dir.join("attachments"))?, cfg.max_attachment_bytes);
        anyhow::Ok(App::new(db, cfg.security()).with_files(files))
    }
    .await
    {
        Ok(app) => app,
        Err(e) => {
            eprintln!("keel mailgate: temporary failure: {e:#}");
            return EX_TEMPFAIL;
        }
    };
    let code = match app.receive_mail(&keel_domain::identity::Principal::system(), project, &raw).await {
        Ok(r) if r.accepted() => {
            let m = &r.message;
            let what = if r.duplicate { "already received" } else { m.outcome.as_str() };
            println!("{what}: <{}>{}", m.message_id, m.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default());
            0
        }
        Ok(r) => {
            eprintln!("keel mailgate: message refused: {}", r.message.reason.as_deref().unwrap_or("refused"));
            EX_DATAERR
        }
        Err(keel_app::AppError::NotFound) => {
            eprintln!("keel mailgate: no such project: {project}");
            EX_NOUSER
        }
        Err(keel_app::AppError::Validation(errors)) => {
            let text: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
            eprintln!("keel mailgate: message refused: {}", text.join("; "));
            EX_DATAERR
        }
        Err(e) => {
            eprintln!("keel mailgate: temporary failure: {e}");
            EX_TEMPFAIL
        }
    };
    app.db.close().await;
    code
}

/// Loads the Chinese dictionary now, so the first search or indexed record does not wait.
fn keel_search_warm() {
    let t = std::time::Instant::now();
    keel_app::search::warm();
    tracing::info!(ms = t.elapsed().as_millis() as u64, "search dictionary loaded");
}

async fn reindex(cfg: &Config) -> anyhow::Result<()> {
    let db = open(cfg).await?;
    let app = App::new(db.clone(), cfg.security()).with_search(keel_app::search::Search::at(&cfg.data_dir.join("search")));
    keel_search_warm();
    let start = std::time::Instant::now();
    let mut last = std::time::Instant::now();
    let n = app
        .rebuild_search_index(|done, total| {
            if done == total || last.elapsed().as_millis() >= 250 {
                last = std::time::Instant::now();
                let pct = (done * 100).checked_div(total).unwrap_or(100);
                let bar = "#".repeat((pct / 4) as usize);
                eprint!("\rreindex [{bar:<25}] {pct:>3}% {done}/{total} records");
            }
        })
        .await?;
    eprintln!();
    println!("search index rebuilt: {n} records in {:.1} s", start.elapsed().as_secs_f64());
    db.close().await;
    Ok(())
}

async fn open(cfg: &Config) -> anyhow::Result<Db> {
    let url = cfg.database_url()?;
    Db::connect(&url, &ConnectOptions::default()).await.with_context(|| format!("cannot open the database {}", redact(&url)))
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

async fn serve(cfg: Config, demo: bool) -> anyhow::Result<()> {
    let _lock = if cfg.database_url.is_none() { Some(cfg.lock_data_dir()?) } else { None };
    let db = open(&cfg).await?;
    keel_store::migrate::run(&db).await?;
    let files = keel_app::desk::FileStore::new(std::path::absolute(cfg.data_dir.join("attachments"))?, cfg.max_attachment_bytes);
    let secrets = cfg.secrets()?;
    announce_key(&secrets, db.backend());
    let app = App::new(db.clone(), cfg.security())
        .with_files(files)
        .with_notify(cfg.notify())
        .with_jobs(cfg.jobs())
        .with_search(keel_app::search::Search::at(&cfg.data_dir.join("search")))
        .with_secrets(secrets);
    let sealed = app.seal_stored_secrets().await?;
    if sealed.sealed > 0 {
        tracing::info!(count = sealed.sealed, "stored secrets kept in plain text were encrypted");
    }
    for problem in &sealed.unreadable {
        tracing::warn!("{problem}");
    }
    keel_search_warm();
    app.seed_jobs().await?;
    app.seed_cmdb_classes().await?;
    if demo {
        if app.is_empty_instance().await? {
            load_demo(&app, 3000).await?;
        } else {
            println!("--demo: the data directory is not empty; serving it as it is");
        }
    }
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().ok();
    let state = keel_web::AppState { app: app.clone(), cfg: Arc::new(cfg.web()), metrics };
    let router = keel_web::router(state);
    let listener = tokio::net::TcpListener::bind(&cfg.bind).await.with_context(|| format!("cannot listen on {}", cfg.bind))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = db.backend().as_str(), instance = %app.instance_id, "Keel is serving");
    println!("Keel is serving on http://{addr} ({} database, instance {})", db.backend().as_str(), app.instance_id);
    if let Some(token) = app.issue_setup_token_if_needed().await? {
        println!(
            "\nNo administrator exists yet. Open this one-time link to create one:\n\n    http://{addr}/setup?token={token}\n\nor run: keel user create --admin --email you@example.com\n"
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let follower = {
        let app = app.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move { app.search_follower(stop).await })
    };
    let jobs = {
        let app = app.clone();
        tokio::spawn(async move { app.job_loop(stop_rx).await })
    };
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    let _ = stop_tx.send(true);
    let _ = jobs.await;
    let _ = follower.await;
    db.close().await;
    Ok(())
}

/// Says where the key of stored secrets comes from, and warns when instances sharing a
/// PostgreSQL database would each make their own.
fn announce_key(secrets: &keel_app::secrets::SecretBox, backend: Backend) {
    use keel_app::secrets::KeySource;
    match secrets.source() {
        KeySource::File { path, created } => {
            if *created {
                tracing::info!(file = %path.display(), "created the key that encrypts stored secrets; back it up with the database");
            }
            if backend == Backend::Postgres {
                tracing::warn!(
                    file = %path.display(),
                    "stored secrets are encrypted with this data directory's key file; every instance sharing this \
                     PostgreSQL database must use the same key: set KEEL_SECRET_KEY to the file's content on all of them"
                );
            }
        }
        source => tracing::info!(%source, "stored secrets are encrypted with the configured key"),
    }
}

/// A progress bar on standard error (no dependency: one line redrawn with `\r`).
fn progress_bar(p: keel_app::import::Progress) {
    use keel_app::import::Progress;
    use std::io::Write;
    let (label, done, total) = match p {
        Progress::Reading(n) => ("reading ", n, 0),
        Progress::Checking(n, t) => ("checking", n, t),
        Progress::Writing(n, t) => ("writing ", n, t),
    };
    let mut err = std::io::stderr().lock();
    let width = 30u64;
    if let Some(share) = (done * width).checked_div(total) {
        let filled = share.min(width) as usize;
        let _ = write!(err, "\r{label} [{}{}] {done}/{total}", "#".repeat(filled), "-".repeat(width as usize - filled));
        if done == total {
            let _ = writeln!(err);
        }
    } else {
        let _ = write!(err, "\r{label} {done} rows{:30}", "");
    }
    let _ = err.flush();
}

async fn import_incidents(
    cfg: &Config,
    file: &std::path::Path,
    mapping: &std::path::Path,
    project: &str,
    as_user: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(mapping).with_context(|| format!("cannot read {}", mapping.display()))?;
    let mapping = match keel_app::import::Mapping::from_toml(&text) {
        Ok(m) => m,
        Err(keel_app::AppError::Validation(errors)) => bail!("{}: {}", errors[0].field, errors[0].message),
        Err(e) => return Err(e.into()),
    };
    let csv = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let db = open(cfg).await?;
    keel_store::migrate::run(&db).await?;
    let app = App::new(db.clone(), cfg.security());
    let actor = {
        let mut c = app.read().await?;
        let u = keel_store::accounts::get_user_by_email(&mut c, as_user).await?.with_context(|| format!("no account {as_user}"))?;
        keel_app::auth::principal_of(&mut c, &u).await?
    };
    let report = match app.import_incidents(&actor, project, &csv, &mapping, dry_run, &progress_bar).await {
        Ok(r) => r,
        Err(keel_app::AppError::NotFound) => bail!("no service project {project} that {as_user} may log tickets on"),
        Err(keel_app::AppError::Forbidden) => bail!("{as_user} may not import tickets"),
        Err(e) => return Err(e.into()),
    };
    db.close().await;
    println!("{} rows, {} tickets", report.rows, report.tickets);
    if !report.new_categories.is_empty() {
        println!("new categories: {}", report.new_categories.join(", "));
    }
    for b in &report.bad_rows {
        println!("line {}: {}{}: {}", b.line, b.external_ref.as_deref().map(|x| format!("{x}: ")).unwrap_or_default(), b.field, b.reason);
    }
    if !report.ok() {
        bail!("{} bad row(s); nothing was imported", report.bad_rows.len());
    }
    if dry_run {
        println!("dry run: every row is good; nothing was written");
    } else {
        println!("imported {} tickets", report.imported);
    }
    Ok(())
}

/// Runs a CI import as `as_user` and prints its report.
async fn import_cis<F, Fut>(cfg: &Config, as_user: &str, dry_run: bool, run: F) -> anyhow::Result<()>
where
    F: FnOnce(App, Principal) -> Fut,
    Fut: std::future::Future<Output = keel_app::Result<keel_app::cmdb_import::CiImportReport>>,
{
    let db = open(cfg).await?;
    keel_store::migrate::run(&db).await?;
    let app = App::new(db.clone(), cfg.security());
    app.seed_cmdb_classes().await?;
    let actor = {
        let mut c = app.read().await?;
        let u = keel_store::accounts::get_user_by_email(&mut c, as_user).await?.with_context(|| format!("no account {as_user}"))?;
        keel_app::auth::principal_of(&mut c, &u).await?
    };
    let report = match run(app, actor).await {
        Ok(r) => r,
        Err(keel_app::AppError::Forbidden) => bail!("{as_user} may not import configuration items"),
        Err(e) => return Err(e.into()),
    };
    db.close().await;
    println!("{} CIs, {} relations", report.cis, report.relations);
    for (class, n) in &report.skipped {
        println!("skipped: {n} {class} (no Keel class)");
    }
    for b in &report.bad_rows {
        println!("line {}: {}{}: {}", b.line, b.external_ref.as_deref().map(|x| format!("{x}: ")).unwrap_or_default(), b.field, b.reason);
    }
    if !report.ok() {
        bail!("{} bad row(s); nothing was imported", report.bad_rows.len());
    }
    if dry_run {
        println!("dry run: every row is good; nothing was written");
    } else {
        println!("imported {} CIs and {} relations", report.imported_cis, report.imported_relations);
    }
    Ok(())
}

async fn load_demo(app: &App, tickets: usize) -> anyhow::Result<()> {
    let report = match app.load_demo(tickets, &progress_bar).await {
        Ok(r) => r,
        Err(keel_app::AppError::Conflict { message, .. }) => bail!("{message}"),
        Err(e) => return Err(e.into()),
    };
    println!("Demo loaded: {} customers, {} incidents.", report.organizations, report.tickets);
    println!("Accounts (the passwords are shown only now):\n");
    for a in &report.accounts {
        println!("    {:<34} {:<20} {:<24} {}", a.email, a.password, a.role, a.name);
    }
    println!();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn backup(cfg: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let db = open(cfg).await?;
    if db.backend() != Backend::Sqlite {
        bail!("keel backup snapshots the SQLite database; for PostgreSQL use pg_dump (see README)");
    }
    if file.exists() {
        bail!("{} already exists; choose a new file", file.display());
    }
    let path = std::path::absolute(file)?;
    keel_store::kernel::sqlite_snapshot(&db, &path.to_string_lossy()).await?;
    println!("backup written to {}", path.display());
    Ok(())
}

async fn restore(cfg: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    if cfg.database_url.as_deref().is_some_and(|u| !u.starts_with("sqlite:")) {
        bail!("keel restore replaces the SQLite database; for PostgreSQL use pg_restore (see README)");
    }
    let _lock = cfg.lock_data_dir().context("stop keel serve before restoring")?;
    // The backup is checked on a private copy, so a bad file never replaces a good database.
    std::fs::create_dir_all(&cfg.data_dir)?;
    let staging = std::path::absolute(cfg.data_dir.join("keel.db.restoring"))?;
    std::fs::copy(file, &staging).with_context(|| format!("cannot read {}", file.display()))?;
    let probe = Db::connect(&format!("sqlite://{}?mode=rw", staging.display()), &ConnectOptions::default()).await;
    let versions = match probe {
        Ok(p) => {
            let v = keel_store::migrate::applied(&p).await.unwrap_or_default();
            p.close().await;
            v
        }
        Err(_) => vec![],
    };
    if versions.is_empty() {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", staging.display()));
        }
        bail!("{} is not a Keel backup (not a SQLite database with Keel's schema)", file.display());
    }
    let target = cfg.data_dir.join("keel.db");
    if target.exists() {
        let aside = cfg.data_dir.join(format!("keel.db.before-restore-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S")));
        std::fs::rename(&target, &aside)?;
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::rename(cfg.data_dir.join(format!("keel.db{ext}")), format!("{}{ext}", aside.display()));
        }
        println!("previous database kept as {}", aside.display());
    }
    for ext in ["keel.db.restoring-wal", "keel.db.restoring-shm"] {
        let _ = std::fs::remove_file(cfg.data_dir.join(ext));
    }
    std::fs::rename(&staging, &target)?;
    let db = open(cfg).await?;
    keel_store::migrate::run(&db).await?;
    let app = App::new(db, cfg.security());
    let report = app.integrity_check().await?;
    if !report.ok() {
        bail!("restored, but keel check reports problems: {}", serde_json::to_string(&report)?);
    }
    println!("restored {} (schema version {})", file.display(), report.schema_version);
    Ok(())
}

//! Tests of the `keel` binary as an operator runs it: help, accounts from the shell, backup
//! and restore, `keel check`, and durability of answered writes across a SIGKILL.

use keel_app::{App, SecurityConfig};
use keel_domain::identity::Principal;
use keel_store::testing::TestDb;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const KEEL: &str = env!("CARGO_BIN_EXE_keel");

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("keel-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn keel(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(KEEL);
    c.args(args).env_remove("KEEL_DATABASE_URL").env_remove("KEEL_DATA_DIR").env_remove("KEEL_BIND").env_remove("KEEL_SECRET_KEY");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "keel failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn help_documents_every_subcommand() {
    let out = ok(&keel(&["--help"], &[]));
    for sub in ["serve", "migrate", "user", "backup", "restore", "check", "openapi", "mailgate", "reindex", "import", "demo", "secret-key"]
    {
        assert!(out.contains(sub), "{sub} missing from --help");
    }
    let bad = keel(&["--data-dir", "/nonexistent/x", "frobnicate"], &[]);
    assert!(!bad.status.success());
}

#[test]
fn accounts_backup_restore_and_check_from_the_shell() {
    let dir = temp_dir();
    let d = dir.join("data");
    let ds = d.to_str().unwrap();
    let weak = keel(&["--data-dir", ds, "user", "create", "--admin", "--email", "ops@keel.test"], &[("KEEL_PASSWORD", "short")]);
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password"));
    ok(&keel(
        &["--data-dir", ds, "user", "create", "--admin", "--email", "ops@keel.test", "--name", "Ops"],
        &[("KEEL_PASSWORD", "a long enough password")],
    ));
    assert!(ok(&keel(&["--data-dir", ds, "check"], &[])).contains("ok"));
    let backup = dir.join("snap.db");
    ok(&keel(&["--data-dir", ds, "backup", backup.to_str().unwrap()], &[]));
    assert!(!keel(&["--data-dir", ds, "backup", backup.to_str().unwrap()], &[]).status.success(), "refuses to overwrite");
    ok(&keel(&["--data-dir", ds, "user", "create", "--email", "late@keel.test"], &[("KEEL_PASSWORD", "another long password")]));
    let restored = dir.join("restored");
    ok(&keel(&["--data-dir", restored.to_str().unwrap(), "restore", backup.to_str().unwrap()], &[]));
    assert!(ok(&keel(&["--data-dir", restored.to_str().unwrap(), "check"], &[])).contains("ok"));
    // restoring over the live directory keeps the old database aside
    ok(&keel(&["--data-dir", ds, "restore", backup.to_str().unwrap()], &[]));
    assert!(std::fs::read_dir(&d).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("keel.db.before-restore-")));
    let not_a_backup = dir.join("junk.db");
    std::fs::write(&not_a_backup, b"not sqlite").unwrap();
    assert!(!keel(&["--data-dir", restored.to_str().unwrap(), "restore", not_a_backup.to_str().unwrap()], &[]).status.success());
    let _ = std::fs::remove_dir_all(dir);
}

/// Minimal HTTP/1.1 POST over loopback; returns the status code (0 when the connection broke).
async fn post_json(addr: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { return (0, String::new()) };
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    if s.read_to_end(&mut buf).await.is_err() {
        return (0, String::new());
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

async fn start_server(args: Vec<String>) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(KEEL)
        .args(&args)
        .args(["--bind", "127.0.0.1:0", "serve"])
        .env_remove("KEEL_DATABASE_URL")
        .env_remove("KEEL_SECRET_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if let Some(rest) = l.strip_prefix("Keel is serving on http://") {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
        panic!("server exited before serving")
    })
    .await
    .expect("server start");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

async fn kill_during_writes(db_args: Vec<String>, open: impl AsyncFn() -> keel_store::Db) {
    // prepare an administrator and a token directly on the database
    let db = open().await;
    keel_store::migrate::run(&db).await.unwrap();
    let app = App::new(db.clone(), SecurityConfig::default());
    let admin = app
        .create_user(
            &Principal::system(),
            keel_app::users::NewUser {
                email: "admin@keel.test".into(),
                display_name: "Admin".into(),
                roles: vec![keel_domain::identity::Role::Administrator],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut c = app.read().await.unwrap();
    let u = keel_store::accounts::get_user(&mut c, &admin.id).await.unwrap().unwrap();
    let p = keel_app::auth::principal_of(&mut c, &u).await.unwrap();
    drop(c);
    let token = app.create_api_token(&p, "load", None).await.unwrap().0;
    db.close().await;

    let (mut child, addr) = start_server(db_args.clone()).await;
    let mut writers = Vec::new();
    for w in 0..4 {
        let (addr, token) = (addr.clone(), token.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..10_000 {
                let body = format!("{{\"name\": \"Durable {w}-{i}\", \"code\": \"D{w}X{i}\"}}");
                let (code, resp) = post_json(&addr, "/api/v1/organizations", &token, &body).await;
                match code {
                    201 => acknowledged.push(serde_json::from_str::<serde_json::Value>(&resp).unwrap()["id"].as_str().unwrap().to_string()),
                    0 => break,
                    other => panic!("unexpected {other}: {resp}"),
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    assert!(acknowledged.len() > 10, "too few writes before the kill to prove anything: {}", acknowledged.len());

    let check = Command::new(KEEL).args(&db_args).arg("check").env_remove("KEEL_DATABASE_URL").output().unwrap();
    assert!(check.status.success(), "keel check after SIGKILL: {}", String::from_utf8_lossy(&check.stdout));
    let db = open().await;
    let mut c = db.reader().acquire().await.unwrap();
    for id in &acknowledged {
        assert!(keel_store::directory::get_organization(&mut c, id).await.unwrap().is_some(), "acknowledged write {id} lost");
    }
    drop(c);
    db.close().await;
}

#[tokio::test]
async fn answered_writes_survive_sigkill_on_sqlite() {
    let dir = temp_dir();
    let d = dir.join("data");
    std::fs::create_dir_all(&d).unwrap();
    let url = keel_store::sqlite_url_for_dir(&d);
    let open = || async { keel_store::Db::connect(&url, &Default::default()).await.unwrap() };
    kill_during_writes(vec!["--data-dir".into(), d.to_str().unwrap().into()], open).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn answered_writes_survive_sigkill_on_postgres() {
    let Some(admin_url) = keel_store::testing::postgres_url() else { return };
    let t = TestDb::postgres(&admin_url).await;
    let url = t.url.clone();
    let open = || async { keel_store::Db::connect(&url, &Default::default()).await.unwrap() };
    kill_during_writes(vec!["--database-url".into(), t.url.clone()], open).await;
    drop(t);
}

/// The customer Acme and its service project `code`, made by the system.
async fn acme_project(app: &App, code: &str) {
    let sys = Principal::system();
    let org = app
        .create_organization(
            &sys,
            keel_app::directory::OrganizationInput { name: "Acme".into(), code: "acme".into(), ..Default::default() },
        )
        .await
        .unwrap();
    let project =
        keel_app::directory::ProjectInput { code: code.into(), name: "Acme ops".into(), organization_id: org.id, ..Default::default() };
    app.create_project(&sys, project).await.unwrap();
}

/// `keel serve` without `KEEL_SECRET_KEY` creates `secret.key` (0600) in the data directory
/// on first start and encrypts the webhook secret and IMAP password a Keel without encryption
/// stored in plain text; a second start keeps the key.
async fn serve_encrypts_plaintext_secrets(db_args: Vec<String>, data_dir: &std::path::Path, open: impl AsyncFn() -> keel_store::Db) {
    use keel_app::secrets::{SecretBox, is_sealed, mailbox_context, webhook_context};
    let db = open().await;
    keel_store::migrate::run(&db).await.unwrap();
    let app = App::new(db.clone(), SecurityConfig::default());
    let sys = Principal::system();
    acme_project(&app, "OPS").await;
    let mailbox = app
        .create_mailbox(&sys, "OPS", keel_app::mail_in::MailboxInput { address: "desk@ops.keel.test".into(), ..Default::default() })
        .await
        .unwrap();
    // as a Keel without encryption left them
    let hook = keel_store::notifications::WebhookRecord {
        id: keel_store::new_id(),
        name: "Ops".into(),
        kind: "generic".into(),
        url: "https://hooks.example/keel".into(),
        secret: Some("plain-webhook-secret".into()),
        language: "en".into(),
        active: true,
        ..Default::default()
    };
    let mut tx = db.begin().await.unwrap();
    keel_store::notifications::insert_webhook(&mut tx, &hook).await.unwrap();
    let legacy_box = keel_store::mail::MailboxRecord {
        imap_host: Some("127.0.0.1".into()),
        imap_port: Some(143),
        imap_tls: Some("plain".into()),
        imap_user: Some("desk".into()),
        imap_secret: Some("plain-imap-password".into()),
        // not polled while the server runs
        active: false,
        version: 2,
        ..mailbox.clone()
    };
    keel_store::mail::update_mailbox(&mut tx, &legacy_box).await.unwrap();
    tx.commit().await.unwrap();
    db.close().await;

    let key_file = data_dir.join("secret.key");
    assert!(!key_file.exists());
    for _ in 0..2 {
        let (mut child, _addr) = start_server(db_args.clone()).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let key = SecretBox::from_config(None, data_dir).unwrap();
    let db = open().await;
    let mut c = db.reader().acquire().await.unwrap();
    let stored = keel_store::notifications::get_webhook(&mut c, &hook.id).await.unwrap().unwrap().secret.unwrap();
    assert!(is_sealed(&stored) && !stored.contains("plain-webhook-secret"), "{stored}");
    assert_eq!(key.open(&webhook_context(&hook.id), &stored).unwrap(), "plain-webhook-secret");
    let stored = keel_store::mail::get_mailbox(&mut c, &mailbox.id).await.unwrap().unwrap().imap_secret.unwrap();
    assert!(is_sealed(&stored) && !stored.contains("plain-imap-password"), "{stored}");
    assert_eq!(key.open(&mailbox_context(&mailbox.id), &stored).unwrap(), "plain-imap-password");
    drop(c);
    db.close().await;
}

#[tokio::test]
async fn serve_encrypts_plaintext_secrets_on_sqlite() {
    let dir = temp_dir();
    let d = dir.join("data");
    std::fs::create_dir_all(&d).unwrap();
    let url = keel_store::sqlite_url_for_dir(&d);
    let open = || async { keel_store::Db::connect(&url, &Default::default()).await.unwrap() };
    serve_encrypts_plaintext_secrets(vec!["--data-dir".into(), d.to_str().unwrap().into()], &d, open).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn serve_encrypts_plaintext_secrets_on_postgres() {
    let Some(admin_url) = keel_store::testing::postgres_url() else { return };
    let t = TestDb::postgres(&admin_url).await;
    let dir = temp_dir();
    let url = t.url.clone();
    let open = || async { keel_store::Db::connect(&url, &Default::default()).await.unwrap() };
    let args = vec!["--database-url".into(), t.url.clone(), "--data-dir".into(), dir.to_str().unwrap().into()];
    serve_encrypts_plaintext_secrets(args, &dir, open).await;
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}

fn mailgate(args: &[&str], message: &[u8]) -> std::process::Output {
    let mut c = Command::new(KEEL);
    c.args(args).env_remove("KEEL_DATABASE_URL").env_remove("KEEL_DATA_DIR").env_remove("KEEL_BIND");
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), message).unwrap();
    child.wait_with_output().unwrap()
}

/// `keel mailgate` as an MTA pipe runs it: 0 when stored or deliberately ignored, so the MTA
/// is done; non-zero with a reason on stderr when refused, 75 when it should retry.
#[tokio::test]
async fn mailgate_exit_codes_tell_the_mta_what_to_do() {
    let dir = temp_dir();
    let d = dir.join("data");
    let ds = d.to_str().unwrap();
    ok(&keel(&["--data-dir", ds, "migrate"], &[]));
    let url = keel_store::sqlite_url_for_dir(&d);
    let db = keel_store::Db::connect(&url, &Default::default()).await.unwrap();
    let app = App::new(db.clone(), SecurityConfig::default());
    let sys = Principal::system();
    acme_project(&app, "ACME-OPS").await;
    let mailbox = keel_app::mail_in::MailboxInput {
        address: "desk@acme-ops.keel.test".into(),
        unknown_sender: Some("create_contact".into()),
        ..Default::default()
    };
    app.create_mailbox(&sys, "ACME-OPS", mailbox).await.unwrap();
    db.close().await;

    let mail = b"From: Wang Fang <wang.fang@acme.test>\r\nTo: desk@acme-ops.keel.test\r\nSubject: =?UTF-8?B?5omT5Y2w5py65Z2P5LqG?=\r\nMessage-ID: <cli-1@acme.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPaper jam on floor 3.\r\n";
    let stored = mailgate(&["--data-dir", ds, "mailgate", "--project", "ACME-OPS"], mail);
    assert_eq!(stored.status.code(), Some(0), "{}", String::from_utf8_lossy(&stored.stderr));
    assert!(String::from_utf8_lossy(&stored.stdout).starts_with("ticket: <cli-1@acme.test>"));
    let again = mailgate(&["--data-dir", ds, "mailgate", "--project", "ACME-OPS"], mail);
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("already received"));

    let auto = b"From: wang.fang@acme.test\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <cli-2@acme.test>\r\n\r\naway\r\n";
    let ignored = mailgate(&["--data-dir", ds, "mailgate", "--project", "ACME-OPS"], auto);
    assert_eq!(ignored.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ignored.stdout).contains("ignored: <cli-2@acme.test> (auto_reply)"));

    let junk = mailgate(&["--data-dir", ds, "mailgate", "--project", "ACME-OPS"], b"no headers at all\r\n");
    assert_eq!(junk.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&junk.stderr).contains("refused"));
    let nowhere = mailgate(&["--data-dir", ds, "mailgate", "--project", "NOPE"], mail);
    assert_eq!(nowhere.status.code(), Some(67));
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("no such project"));
    let down = mailgate(&["--database-url", "postgres://nobody@127.0.0.1:1/none", "mailgate", "--project", "ACME-OPS"], mail);
    assert_eq!(down.status.code(), Some(75), "{}", String::from_utf8_lossy(&down.stderr));
    assert!(String::from_utf8_lossy(&down.stderr).contains("temporary failure"));

    let db = keel_store::Db::connect(&url, &Default::default()).await.unwrap();
    let app = App::new(db.clone(), SecurityConfig::default());
    let log = app.list_received_mail(&sys, "ACME-OPS").await.unwrap();
    db.close().await;
    let outcomes: Vec<&str> = log.iter().map(|m| m.outcome.as_str()).collect();
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.contains(&"ticket") && outcomes.contains(&"ignored"));
    let _ = std::fs::remove_dir_all(&dir);
}

async fn get_json(addr: &str, path: &str, token: &str) -> (u16, String) {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { return (0, String::new()) };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

/// How long until `q` finds `count` records through the running server.
async fn until_found(addr: &str, token: &str, q: &str, count: u64) -> Duration {
    let start = std::time::Instant::now();
    loop {
        let (code, body) = get_json(addr, &format!("/api/v1/search?q={q}"), token).await;
        if code == 200 && serde_json::from_str::<serde_json::Value>(&body).unwrap()["total"].as_u64() == Some(count) {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{q} not found: {code} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn served_changes_are_searchable_at_once_and_reindex_swaps_while_serving() {
    let dir = temp_dir();
    let d = dir.join("data");
    std::fs::create_dir_all(&d).unwrap();
    let db = keel_store::Db::connect(&keel_store::sqlite_url_for_dir(&d), &Default::default()).await.unwrap();
    keel_store::migrate::run(&db).await.unwrap();
    let app = App::new(db.clone(), SecurityConfig::default());
    let admin = app
        .create_user(
            &Principal::system(),
            keel_app::users::NewUser {
                email: "admin@keel.test".into(),
                display_name: "Admin".into(),
                roles: vec![keel_domain::identity::Role::Administrator],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut c = app.read().await.unwrap();
    let u = keel_store::accounts::get_user(&mut c, &admin.id).await.unwrap().unwrap();
    let p = keel_app::auth::principal_of(&mut c, &u).await.unwrap();
    drop(c);
    let token = app.create_api_token(&p, "search", None).await.unwrap().0;
    db.close().await;

    let ds = d.to_str().unwrap().to_string();
    let (mut child, addr) = start_server(vec!["--data-dir".into(), ds.clone()]).await;
    let mut waits = Vec::new();
    for (i, host) in ["mail01.corp.local", "mail02.corp.local", "mail03.corp.local"].into_iter().enumerate() {
        let body = format!(r#"{{"class_key": "server", "name": "邮件服务器 {i}", "attributes": {{"hostname": "{host}"}}}}"#);
        let (code, resp) = post_json(&addr, "/api/v1/cis", &token, &body).await;
        assert_eq!(code, 201, "{resp}");
        waits.push(until_found(&addr, &token, host, 1).await);
    }
    println!("committed change to searchable: {waits:?}");
    assert!(waits.iter().skip(1).all(|w| *w < Duration::from_secs(2)), "{waits:?}");

    let out = Command::new(KEEL).args(["--data-dir", &ds, "reindex"]).env_remove("KEEL_DATABASE_URL").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("search index rebuilt: 3 records"), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("100%"));
    // the server switches to the new index and keeps following the outbox
    until_found(&addr, &token, "%E9%82%AE%E4%BB%B6%E6%9C%8D%E5%8A%A1%E5%99%A8", 3).await;
    let (code, _) = post_json(
        &addr,
        "/api/v1/cis",
        &token,
        r#"{"class_key": "server", "name": "late", "attributes": {"hostname": "mail04.corp.local"}}"#,
    )
    .await;
    assert_eq!(code, 201);
    until_found(&addr, &token, "mail04.corp.local", 1).await;
    let dirs: Vec<_> =
        std::fs::read_dir(d.join("search")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
    assert_eq!(dirs.iter().filter(|n| n.starts_with("index-")).count(), 1, "the old index is removed: {dirs:?}");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_then_import_from_the_shell() {
    let dir = temp_dir();
    let d = dir.join("data");
    let ds = d.to_str().unwrap();
    let out = ok(&keel(&["--data-dir", ds, "demo", "--tickets", "60"], &[]));
    assert!(out.contains("60 incidents"), "{out}");
    let admin_line = out.lines().find(|l| l.contains("admin@demo.keel.test")).unwrap();
    assert!(admin_line.split_whitespace().nth(1).unwrap().starts_with("demo-"), "{admin_line}");
    let again = keel(&["--data-dir", ds, "demo"], &[]);
    assert!(!again.status.success(), "the demo refuses a used data directory");
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty"));

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mapping = format!("{root}/docs/import/endava-helpdesk-tickets.toml");
    let csv = format!("{root}/crates/app/tests/data/endava_tickets_excerpt.csv");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "--data-dir",
            ds,
            "import",
            "incidents",
            &csv,
            "--mapping",
            &mapping,
            "--project",
            "ECM-OPS",
            "--as",
            "wang.fang@demo.keel.test",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| keel(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let dry = ok(&run(args(&["--dry-run"])));
    assert!(dry.contains("150 rows, 150 tickets") && dry.contains("nothing was written"), "{dry}");
    let done = ok(&run(args(&[])));
    assert!(done.contains("imported 150 tickets"), "{done}");
    let twice = run(args(&[]));
    assert!(!twice.status.success());
    let listed = String::from_utf8_lossy(&twice.stdout);
    assert!(listed.contains("line 2: 2: external_ref: already imported as"), "{listed}");
    assert!(ok(&keel(&["--data-dir", ds, "check"], &[])).contains("ok"));
    let _ = std::fs::remove_dir_all(dir);
}

#[path = "cli/mail.rs"]
mod mail;

#[path = "cli/sla_instances.rs"]
mod sla_instances;

#[path = "cli/secret_key.rs"]
mod secret_key;

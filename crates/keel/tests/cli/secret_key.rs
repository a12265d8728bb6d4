//! Information security management (ISO/IEC 20000-1 §8.7.3) from the shell: `keel check`
//! names every stored secret the current key cannot decrypt, and `keel secret-key rotate`
//! encrypts them all again with a new key — from the data directory's key file or from
//! `KEEL_SECRET_KEY` — or, when one cannot be decrypted, changes nothing and names it; on
//! SQLite and PostgreSQL.

use super::*;
use keel_app::secrets::{KEY_FILE, NEW_KEY_FILE, OLD_KEY_FILE, SecretBox, StoredSecret, context, generate_key_hex};
use keel_store::secrets::SecretRow;

struct Setup {
    args: Vec<String>,
    data_dir: PathBuf,
    url: String,
}

impl Setup {
    fn run(&self, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let args: Vec<&str> = self.args.iter().map(String::as_str).chain(extra.iter().copied()).collect();
        keel(&args, env)
    }

    async fn stored(&self) -> Vec<SecretRow> {
        let db = keel_store::Db::connect(&self.url, &Default::default()).await.unwrap();
        let rows = keel_store::secrets::list_all(&mut db.reader().acquire().await.unwrap()).await.unwrap();
        db.close().await;
        rows
    }

    async fn store_raw(&self, table: &str, column: &str, id: &str, value: &str) {
        let db = keel_store::Db::connect(&self.url, &Default::default()).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE {table} SET {column} = $1 WHERE id = $2")))
            .bind(value)
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        db.close().await;
    }

    async fn rotations(&self) -> usize {
        let db = keel_store::Db::connect(&self.url, &Default::default()).await.unwrap();
        let mut c = db.reader().acquire().await.unwrap();
        let n = keel_store::audit::history(&mut c, "secret_key", "stored_secrets").await.unwrap().len();
        drop(c);
        db.close().await;
        n
    }

    fn key_file(&self, name: &str) -> PathBuf {
        self.data_dir.join(name)
    }
}

fn out(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Every row opens with `key` and none with `not`, and holds the secret it held.
fn opens(rows: &[SecretRow], key: &SecretBox, not: &SecretBox) {
    for r in rows {
        let ctx = context(r.kind, &r.id);
        let plain = key.open(&ctx, &r.stored).unwrap_or_else(|e| panic!("{}: {e}", r.label));
        assert_eq!(plain, if r.kind == StoredSecret::WebhookSecret { "hook-secret" } else { "imap-password" });
        assert!(not.open(&ctx, &r.stored).is_err(), "{}: the old key still opens it", r.label);
    }
}

async fn rotate_and_check(s: Setup) {
    // a webhook and a mailbox whose secrets are encrypted with the key file `keel serve` made
    let db = keel_store::Db::connect(&s.url, &Default::default()).await.unwrap();
    keel_store::migrate::run(&db).await.unwrap();
    let first = SecretBox::from_config(None, &s.data_dir).unwrap();
    let app = App::new(db.clone(), SecurityConfig::default()).with_secrets(first);
    let sys = Principal::system();
    acme_project(&app, "OPS").await;
    let hook = keel_app::notifications::WebhookInput {
        name: "Ops chat".into(),
        kind: "generic".into(),
        url: "https://hooks.example/ops".into(),
        secret: Some("hook-secret".into()),
        ..Default::default()
    };
    app.create_webhook(&sys, hook).await.unwrap();
    let mailbox = keel_app::mail_in::MailboxInput {
        address: "desk@ops.keel.test".into(),
        imap_host: Some("127.0.0.1".into()),
        imap_port: Some(143),
        imap_tls: Some("plain".into()),
        imap_user: Some("desk".into()),
        imap_secret: Some("imap-password".into()),
        ..Default::default()
    };
    let mailbox = app.create_mailbox(&sys, "OPS", mailbox).await.unwrap();
    db.close().await;
    let check = ok(&s.run(&["check"], &[]));
    assert!(check.contains("stored secrets checked: 2") && check.ends_with("ok\n"), "{check}");

    // from the key file: a new secret.key, the previous one kept as secret.key.old
    let before = s.stored().await;
    let rotated = ok(&s.run(&["secret-key", "rotate"], &[]));
    assert!(rotated.contains("1 webhook secret(s) and 1 IMAP password(s) encrypted with the new key"), "{rotated}");
    assert!(rotated.contains(OLD_KEY_FILE), "{rotated}");
    let (new, old) =
        (SecretBox::from_key_file(&s.key_file(KEY_FILE)).unwrap(), SecretBox::from_key_file(&s.key_file(OLD_KEY_FILE)).unwrap());
    use std::os::unix::fs::PermissionsExt;
    for name in [KEY_FILE, OLD_KEY_FILE] {
        assert_eq!(std::fs::metadata(s.key_file(name)).unwrap().permissions().mode() & 0o777, 0o600, "{name}");
    }
    assert!(!s.key_file(NEW_KEY_FILE).exists());
    let after = s.stored().await;
    opens(&after, &new, &old);
    opens(&before, &old, &new);
    assert_eq!(s.rotations().await, 1);
    assert!(ok(&s.run(&["check"], &[])).contains("stored secrets checked: 2"));
    // the key before this rotation is never overwritten: the operator moves it first
    let refused = s.run(&["secret-key", "rotate"], &[]);
    assert!(!refused.status.success() && out(&refused).contains(OLD_KEY_FILE), "{}", out(&refused));
    assert_eq!(s.stored().await, after, "nothing changed");
    std::fs::rename(s.key_file(OLD_KEY_FILE), s.data_dir.join("previous.key")).unwrap();

    // one damaged secret: check names it and fails; rotation changes nothing and names it
    let sealed = after.iter().find(|r| r.kind == StoredSecret::ImapPassword).unwrap().stored.clone();
    let moved = new.seal(&context(StoredSecret::ImapPassword, "another-mailbox"), "imap-password").unwrap();
    s.store_raw("mailboxes", "imap_secret", &mailbox.id, &moved).await;
    let damaged = s.stored().await;
    let check = s.run(&["check"], &[]);
    let text = out(&check);
    assert!(!check.status.success(), "{text}");
    let line = text.lines().find(|l| l.starts_with("SECRET: ")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&format!("IMAP password of mailbox desk@ops.keel.test ({})", mailbox.id)), "{line}");
    assert!(line.contains("cannot be decrypted with the current key"), "{line}");
    assert!(!text.contains("imap-password") && !text.contains("enc:v1"), "{text}");
    let key_before = std::fs::read_to_string(s.key_file(KEY_FILE)).unwrap();
    let refused = s.run(&["secret-key", "rotate"], &[]);
    let text = out(&refused);
    assert!(!refused.status.success(), "{text}");
    assert!(text.contains(&format!("mailbox desk@ops.keel.test ({})", mailbox.id)) && text.contains("nothing was changed"), "{text}");
    assert_eq!(s.stored().await, damaged, "nothing changed");
    assert_eq!(std::fs::read_to_string(s.key_file(KEY_FILE)).unwrap(), key_before);
    assert!(!s.key_file(NEW_KEY_FILE).exists() && !s.key_file(OLD_KEY_FILE).exists());
    assert_eq!(s.rotations().await, 1);
    s.store_raw("mailboxes", "imap_secret", &mailbox.id, &sealed).await;

    // a rotation interrupted after the commit: check says which key file opens the secrets
    std::fs::copy(s.key_file(KEY_FILE), s.key_file(NEW_KEY_FILE)).unwrap();
    std::fs::write(s.key_file(KEY_FILE), format!("{}\n", generate_key_hex().unwrap())).unwrap();
    let check = s.run(&["check"], &[]);
    let text = out(&check);
    assert!(!check.status.success() && text.contains(&format!("{} does", s.key_file(NEW_KEY_FILE).display())), "{text}");
    assert!(text.contains(&format!("rename {NEW_KEY_FILE} to {KEY_FILE}")), "{text}");
    std::fs::rename(s.key_file(NEW_KEY_FILE), s.key_file(KEY_FILE)).unwrap();
    assert!(ok(&s.run(&["check"], &[])).ends_with("ok\n"));

    // from KEEL_SECRET_KEY: the new key comes from the variable --new-key-env names
    let configured = std::fs::read_to_string(s.key_file(KEY_FILE)).unwrap().trim().to_string();
    let env = [("KEEL_SECRET_KEY", configured.as_str())];
    let refused = s.run(&["secret-key", "rotate"], &env);
    assert!(!refused.status.success() && out(&refused).contains("--new-key-env"), "{}", out(&refused));
    let next = generate_key_hex().unwrap();
    let rotated = ok(&s.run(&["secret-key", "rotate", "--new-key-env", "KEEL_NEXT_KEY"], &[env[0], ("KEEL_NEXT_KEY", next.as_str())]));
    assert!(rotated.contains("now set KEEL_SECRET_KEY to the new key (the value of KEEL_NEXT_KEY)"), "{rotated}");
    assert!(!rotated.contains(&next) && !rotated.contains(&configured), "never prints a key: {rotated}");
    assert_eq!(std::fs::read_to_string(s.key_file(KEY_FILE)).unwrap().trim(), configured, "the key file is not the key here");
    let next_box = SecretBox::new(keel_app::secrets::parse_key(&next).unwrap(), keel_app::secrets::KeySource::Given);
    opens(&s.stored().await, &next_box, &new);
    assert_eq!(s.rotations().await, 2);
    assert!(ok(&s.run(&["check"], &[("KEEL_SECRET_KEY", next.as_str())])).ends_with("ok\n"));
    let stale = s.run(&["check"], &env);
    assert_eq!(out(&stale).matches("SECRET: ").count(), 2, "{}", out(&stale));
    assert!(!stale.status.success());
}

#[tokio::test]
async fn secret_key_rotation_and_check_on_sqlite() {
    let dir = temp_dir();
    let d = dir.join("data");
    std::fs::create_dir_all(&d).unwrap();
    let url = keel_store::sqlite_url_for_dir(&d);
    rotate_and_check(Setup { args: vec!["--data-dir".into(), d.to_str().unwrap().into()], data_dir: d, url }).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn secret_key_rotation_and_check_on_postgres() {
    let Some(admin_url) = keel_store::testing::postgres_url() else { return };
    let t = TestDb::postgres(&admin_url).await;
    let dir = temp_dir();
    let args = vec!["--database-url".into(), t.url.clone(), "--data-dir".into(), dir.to_str().unwrap().into()];
    rotate_and_check(Setup { args, data_dir: dir.clone(), url: t.url.clone() }).await;
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Information security management (ISO/IEC 20000-1 §8.7.3): rotating the key of the stored
//! secrets encrypts every webhook secret and IMAP password again with the new key, all or
//! nothing, and webhooks still sign and mailboxes still log in with it.

use super::mail_in::{corpus, dovecot, imap_session, loopback_imap, mail_app};
use super::notifications::{Receiver, desk, hmac, run, ticket};
use super::*;
use keel_app::notifications::WebhookInput;
use keel_app::secrets::{KeyRotation, RotationOutcome, SecretProblem, StoredSecret, context, is_sealed};
use keel_store::secrets::{SecretRow, list_all};

async fn stored(app: &App) -> Vec<SecretRow> {
    list_all(&mut app.read().await.unwrap()).await.unwrap()
}

/// Writes a stored value directly, as an older Keel or a damaged database left it (the values
/// here hold no quotes).
async fn store_raw(t: &TestDb, table: &str, column: &str, id: &str, value: &str) {
    raw(t, format!("UPDATE {table} SET {column} = '{value}' WHERE id = '{id}'")).await;
}

fn signed_hook(name: &str, url: String, secret: &str) -> WebhookInput {
    WebhookInput {
        name: name.into(),
        kind: "generic".into(),
        url,
        secret: Some(secret.into()),
        event_kinds: vec!["incident.created".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_key_rotation_encrypts_every_secret_again_and_webhooks_still_sign_and_mailboxes_still_log_in() {
    let dbs = TestDb::migrated_all().await;
    let users: Vec<String> = (0..dbs.len()).map(|i| format!("rotate{i}")).collect();
    let server = dovecot(&users.iter().map(String::as_str).collect::<Vec<_>>()).await;
    for (t, user) in dbs.iter().zip(&users) {
        let rx = Receiver::start().await;
        let (app, _clock) = mail_app(t);
        let w = world(&app).await;
        let d = desk(&app, &w).await;
        app.create_webhook(&w.admin, signed_hook("Signed", format!("{}/signed", rx.base), "g-secret")).await.unwrap();
        let legacy = app.create_webhook(&w.admin, signed_hook("Legacy", format!("{}/legacy", rx.base), "x")).await.unwrap();
        store_raw(t, "notification_webhooks", "secret", &legacy.id, "legacy-secret").await;
        let input = loopback_imap(user, server.as_ref().map_or(143, |s| s.port));
        let mailbox = app.create_mailbox(&w.admin, &w.project_a, input).await.unwrap();
        let before = stored(&app).await;
        assert_eq!(before.len(), 3, "{}", t.label);

        let new_key = secret_box(0x43);
        let rotation = match app.rotate_secret_key(&Principal::system(), &new_key).await.unwrap() {
            RotationOutcome::Rotated(r) => r,
            RotationOutcome::Refused(f) => panic!("{}: refused {f:?}", t.label),
        };
        assert_eq!(rotation, KeyRotation { webhook_secrets: 2, imap_passwords: 1, were_plain_text: 1 }, "{}", t.label);
        let after = stored(&app).await;
        assert_eq!(after.len(), before.len());
        for (b, a) in before.iter().zip(&after) {
            let ctx = context(a.kind, &a.id);
            assert!(is_sealed(&a.stored) && a.stored != b.stored, "{}: {} {}", t.label, a.label, a.stored);
            assert!(secret_box(0x42).open(&ctx, &a.stored).is_err(), "{}: the old key no longer opens {}", t.label, a.label);
            assert_eq!(new_key.open(&ctx, &a.stored).unwrap(), secret_box(0x42).open(&ctx, &b.stored).unwrap(), "the same secret");
        }
        assert_eq!(app.get_mailbox(&w.admin, &mailbox.id).await.unwrap().version, mailbox.version, "not an edit");
        // the trail records the rotation, by the system, with counts only
        let trail = app.history("secret_key", "stored_secrets").await.unwrap();
        assert_eq!(trail.len(), 1, "{}", t.label);
        assert_eq!((trail[0].action.as_str(), trail[0].actor_id.as_str()), ("secret_key_rotated", "system"));
        let changes = trail[0].changes.to_string();
        assert!(changes.contains("\"webhook_secrets\"") && changes.contains("\"imap_passwords\""), "{changes}");
        assert!(!["enc:", "g-secret", "legacy-secret", "imap-secret"].iter().any(|s| changes.contains(s)), "{changes}");
        assert!(app.integrity_check().await.unwrap().ok(), "{}", t.label);
        // an instance still on the old key names every secret; the new key opens them all
        let stale = app.check_stored_secrets(&[]).await.unwrap();
        assert_eq!(stale.checked, 3);
        assert!(stale.faults.iter().all(|f| matches!(f.problem, SecretProblem::WrongKeyOrAltered { .. })), "{:?}", stale.faults);
        let named = app.check_stored_secrets(&[secret_box(0x43)]).await.unwrap();
        assert!(named.faults.iter().all(|f| matches!(f.problem, SecretProblem::OtherKey { .. })), "{:?}", named.faults);

        // with the new key: webhooks are signed with the same secrets
        let (rotated, _) = mail_app(t);
        let rotated = rotated.with_secrets(secret_box(0x43));
        assert!(rotated.check_stored_secrets(&[]).await.unwrap().faults.is_empty(), "{}", t.label);
        app.create_ticket(&w.agent_a, ticket(&w, &d.team, "After the rotation")).await.unwrap();
        assert_eq!(run(&rotated).await, (2, 2), "{}", t.label);
        for (path, secret) in [("/signed", "g-secret"), ("/legacy", "legacy-secret")] {
            let hit = &rx.hits(path)[0];
            let signature = format!("sha256={}", hex::encode(hmac(secret.as_bytes(), hit.body.as_bytes())));
            assert_eq!(hit.headers["x-keel-signature"], signature, "{}: {path}", t.label);
        }
        // and the mailbox logs in
        if let Some(server) = &server {
            let mut s = imap_session(server.port, user).await;
            s.append("INBOX", None, None, corpus("outlook_new.eml")).await.unwrap();
            s.logout().await.unwrap();
            let current = rotated.get_mailbox(&w.admin, &mailbox.id).await.unwrap();
            assert_eq!(rotated.poll_mailbox(&current).await.unwrap().fetched, 1, "{}", t.label);
            assert!(app.poll_mailbox(&current).await.is_err(), "{}: the old key cannot log in", t.label);
        }
    }
}

#[tokio::test]
async fn a_rotation_with_one_damaged_secret_changes_nothing_and_names_it() {
    for t in TestDb::migrated_all().await {
        let (app, _clock) = mail_app(&t);
        let w = world(&app).await;
        let hook = app.create_webhook(&w.admin, signed_hook("Ops", "https://hooks.example/ops".into(), "ops-secret")).await.unwrap();
        let legacy = app.create_webhook(&w.admin, signed_hook("Legacy", "https://hooks.example/legacy".into(), "x")).await.unwrap();
        store_raw(&t, "notification_webhooks", "secret", &legacy.id, "legacy-secret").await;
        let mailbox = app.create_mailbox(&w.admin, &w.project_a, loopback_imap("desk", 143)).await.unwrap();
        // one byte of the mailbox's encrypted password altered
        let sealed = mailbox.imap_secret.clone().unwrap();
        let at = sealed.len() - 3;
        let flipped = if &sealed[at..at + 1] == "A" { "B" } else { "A" };
        let damaged = format!("{}{flipped}{}", &sealed[..at], &sealed[at + 1..]);
        store_raw(&t, "mailboxes", "imap_secret", &mailbox.id, &damaged).await;
        // and the webhook's moved from another record: refused like a tampered one
        let moved = app.secrets.seal(&context(StoredSecret::WebhookSecret, &legacy.id), "ops-secret").unwrap();
        store_raw(&t, "notification_webhooks", "secret", &hook.id, &moved).await;
        let before = stored(&app).await;

        let faults = match app.rotate_secret_key(&Principal::system(), &secret_box(0x43)).await.unwrap() {
            RotationOutcome::Refused(f) => f,
            RotationOutcome::Rotated(r) => panic!("{}: rotated {r:?}", t.label),
        };
        let mut named: Vec<(StoredSecret, &str, &str)> = faults.iter().map(|f| (f.kind, f.id.as_str(), f.label.as_str())).collect();
        named.sort_by_key(|(kind, ..)| kind.record());
        assert_eq!(
            named,
            [
                (StoredSecret::ImapPassword, mailbox.id.as_str(), "desk@acme-ops.keel.test"),
                (StoredSecret::WebhookSecret, hook.id.as_str(), "Ops")
            ],
            "{}",
            t.label
        );
        for f in &faults {
            assert!(matches!(f.problem, SecretProblem::WrongKeyOrAltered { .. }), "{f}");
            let shown = f.to_string();
            assert!(shown.contains(&f.id) && !shown.contains("enc:v1") && !shown.contains("ops-secret"), "{shown}");
        }
        assert_eq!(stored(&app).await, before, "{}: nothing changed, the plain text one neither", t.label);
        assert!(app.history("secret_key", "stored_secrets").await.unwrap().is_empty(), "no audit entry");
        // keel check's view: the two, and the plain text one still unsealed
        let check = app.check_stored_secrets(&[]).await.unwrap();
        assert_eq!(check.checked, 3);
        let problems: Vec<(&str, &SecretProblem)> = check.faults.iter().map(|f| (f.label.as_str(), &f.problem)).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.contains(&("Legacy", &SecretProblem::PlainText)), "{problems:?}");
        // a value that is not an encrypted value at all is corrupt
        store_raw(&t, "mailboxes", "imap_secret", &mailbox.id, "enc:v1:not base64!").await;
        let check = app.check_stored_secrets(&[]).await.unwrap();
        let fault = check.faults.iter().find(|f| f.id == mailbox.id).unwrap();
        assert_eq!(fault.problem, SecretProblem::Corrupt);
        assert!(fault.to_string().starts_with("IMAP password of mailbox desk@acme-ops.keel.test ("), "{fault}");
        // only an administrator rotates
        assert!(matches!(app.rotate_secret_key(&w.agent_a, &secret_box(0x43)).await, Err(AppError::Forbidden)));
    }
}

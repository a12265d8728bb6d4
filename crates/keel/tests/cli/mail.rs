//! Service desk, email channel end to end ("Done when" of issue 6): a customer's mail piped
//! through `keel mailgate` becomes a ticket, the agent's public reply goes out over SMTP
//! threaded and from the project's address, the customer's answer to that mail lands on the
//! same ticket, and an auto-reply to it is recorded as ignored — in English and in Chinese
//! (a Foxmail message with a GBK body), on SQLite and PostgreSQL.

use super::*;
use keel_app::testing::{Mail, SmtpSink};

const PROJECT: &str = "ACME-OPS";
const DESK: &str = "desk@acme-ops.keel.test";

struct Case {
    locale: &'static str,
    contact: &'static str,
    /// The customer's first message.
    first: Vec<u8>,
    title: &'static str,
    agent_reply: &'static str,
    /// The subject of the reply notification, after the ticket number.
    reply_subject: &'static str,
    /// The customer's answer: its body as sent (charset, bytes) and as Keel should read it.
    answer: (&'static str, &'static [u8]),
    answer_text: &'static str,
}

fn english() -> Case {
    Case {
        locale: "en",
        contact: "wang.fang@acme.test",
        first: b"From: Wang Fang <wang.fang@acme.test>\r\nTo: desk@acme-ops.keel.test\r\nSubject: Printer on floor 3 jams\r\n\
Message-ID: <e2e-first@acme.test>\r\nDate: Thu, 26 Nov 2026 09:00:00 +0800\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
The printer on floor 3 jams on every page.\r\n"
            .to_vec(),
        title: "Printer on floor 3 jams",
        agent_reply: "Please try the tray 2 paper, we are ordering a new roller.",
        reply_subject: "New reply: Printer on floor 3 jams",
        answer: ("utf-8", b"Tray 2 works, thank you!"),
        answer_text: "Tray 2 works, thank you!",
    }
}

fn chinese() -> Case {
    let first = std::fs::read(format!("{}/../app/tests/data/mail/foxmail_gbk.eml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    Case {
        locale: "zh-CN",
        contact: "li.lei@acme.test",
        first,
        title: "财务室打印机无法打印",
        agent_reply: "请重启打印机后再试一次。",
        reply_subject: "新回复：财务室打印机无法打印",
        // 打印机已经可以用了，谢谢！ in GBK, as Foxmail sends it.
        answer: ("GBK", b"\xb4\xf2\xd3\xa1\xbb\xfa\xd2\xd1\xbe\xad\xbf\xc9\xd2\xd4\xd3\xc3\xc1\xcb\xa3\xac\xd0\xbb\xd0\xbb\xa3\xa1"),
        answer_text: "打印机已经可以用了，谢谢！",
    }
}

/// The customer's mail client answering Keel's mail: threaded on it, its text quoted.
fn answer_to(keel_mail: &Mail, c: &Case, id: &str, auto: bool) -> Vec<u8> {
    let h = keel_mail.headers();
    let refs = format!("{} {}", h["references"], h["message-id"]);
    let extra = if auto { "Auto-Submitted: auto-replied\r\nX-Autoreply: yes\r\n" } else { "" };
    let (charset, body) = if auto { ("utf-8", &b"I am out of the office until Monday."[..]) } else { c.answer };
    let mut m = format!(
        "From: {contact}\r\nTo: {DESK}\r\nSubject: {subject}\r\nMessage-ID: <{id}@acme.test>\r\nIn-Reply-To: {irt}\r\n\
         References: {refs}\r\n{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n",
        contact = c.contact,
        subject = h["subject"].replace("[INC", "Re: [INC"),
        irt = h["message-id"],
    )
    .into_bytes();
    m.extend_from_slice(body);
    m.extend_from_slice(b"\r\n\r\n> ");
    m.extend_from_slice(c.agent_reply.as_bytes());
    m.extend_from_slice(b"\r\n");
    m
}

async fn open(url: &str) -> (keel_store::Db, App) {
    let db = keel_store::Db::connect(url, &Default::default()).await.unwrap();
    (db.clone(), App::new(db, SecurityConfig::default()))
}

async fn principal(app: &App, id: &str) -> Principal {
    let mut c = app.read().await.unwrap();
    let u = keel_store::accounts::get_user(&mut c, id).await.unwrap().unwrap();
    keel_app::auth::principal_of(&mut c, &u).await.unwrap()
}

/// One conversation on a fresh database, `db_args` choosing it for the `keel` binary.
async fn conversation(c: Case, url: &str, db_args: &[&str]) {
    let gate = |message: &[u8]| {
        let out = mailgate(&[db_args, &["mailgate", "--project", PROJECT]].concat(), message);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&keel(&[db_args, &["migrate"]].concat(), &[]));
    let sink = SmtpSink::start().await;
    let (db, app) = open(url).await;
    let sys = Principal::system();
    let org = app
        .create_organization(
            &sys,
            keel_app::directory::OrganizationInput { name: "Acme".into(), code: "acme".into(), ..Default::default() },
        )
        .await
        .unwrap();
    let agent = app
        .create_user(
            &sys,
            keel_app::users::NewUser {
                email: "agent@keel.test".into(),
                display_name: "Agent".into(),
                roles: vec![keel_domain::identity::Role::ServiceDeskAgent],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let project = app
        .create_project(
            &sys,
            keel_app::directory::ProjectInput {
                code: PROJECT.into(),
                name: "Acme ops".into(),
                organization_id: org.id.clone(),
                member_ids: vec![agent.id.clone()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let contact = app
        .create_user(
            &sys,
            keel_app::users::NewUser {
                kind: keel_domain::identity::AccountKind::Contact,
                email: c.contact.into(),
                display_name: "Customer".into(),
                organization_id: Some(org.id.clone()),
                locale: Some(c.locale.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mailbox = keel_app::mail_in::MailboxInput { address: DESK.into(), unknown_sender: Some("hold".into()), ..Default::default() };
    app.create_mailbox(&sys, PROJECT, mailbox).await.unwrap();
    app.set_project_sender(&sys, &project.id, Some("Acme Desk <desk@acme-ops.keel.test>")).await.unwrap();
    db.close().await;

    // The customer writes: a ticket.
    assert!(gate(&c.first).starts_with("ticket: <"), "{}", c.locale);
    let (db, app) = open(url).await;
    let app = app.with_notify(sink.config());
    let agent = principal(&app, &agent.id).await;
    let customer = principal(&app, &contact.id).await;
    let log = app.list_received_mail(&agent, PROJECT).await.unwrap();
    let ticket = app.get_ticket(&agent, log[0].ticket_id.as_deref().unwrap()).await.unwrap();
    assert_eq!((ticket.title.as_str(), ticket.channel.as_str(), ticket.reporter_id.as_str()), (c.title, "email", contact.id.as_str()));

    // The agent replies in public: the customer gets it by mail, threaded, from the project.
    app.add_comment(&agent, &ticket.id, "public", c.agent_reply).await.unwrap();
    app.dispatch_announcements().await.unwrap();
    app.deliver_due(100).await.unwrap();
    let to_customer = sink.to(c.contact);
    assert_eq!(to_customer.len(), 1, "{}: only the reply is mailed to the customer", c.locale);
    let mail = &to_customer[0];
    let h = mail.headers();
    assert_eq!(mail.subject(), format!("[{}] {}", ticket.number, c.reply_subject));
    assert!(h["from"].contains("<desk@acme-ops.keel.test>"), "{}", h["from"]);
    let thread = format!("<ticket-{}@", ticket.id);
    assert!(h["in-reply-to"].starts_with(&thread) && h["references"].starts_with(&thread), "{h:?}");
    assert!(h["message-id"].starts_with('<') && h["message-id"] != h["in-reply-to"]);
    assert!(!h.contains_key("auto-submitted"), "the agent's reply is a person's words, not auto-generated (RFC 3834)");
    db.close().await;

    // The customer answers that mail: a public comment on the same ticket, quote cut off.
    let answered = gate(&answer_to(mail, &c, &format!("e2e-answer-{}", c.locale), false));
    assert!(answered.starts_with("reply: <"), "{}: {answered}", c.locale);
    // Their out-of-office answering it again: recorded as ignored, nothing on the ticket.
    let auto = gate(&answer_to(mail, &c, &format!("e2e-auto-{}", c.locale), true));
    assert!(auto.starts_with("ignored: <") && auto.contains("(auto_reply)"), "{}: {auto}", c.locale);

    let (db, app) = open(url).await;
    let app = app.with_notify(sink.config());
    let comments = app.list_comments(&customer, &ticket.id).await.unwrap();
    let bodies: Vec<(&str, &str)> = comments.iter().map(|m| (m.author_id.as_str(), m.body.as_str())).collect();
    assert_eq!(bodies, [(agent.user_id.as_str(), c.agent_reply), (contact.id.as_str(), c.answer_text)], "{}", c.locale);
    let log = app.list_received_mail(&agent, PROJECT).await.unwrap();
    let ignored: Vec<_> = log.iter().filter(|m| m.outcome == "ignored").collect();
    assert_eq!(ignored.len(), 1);
    assert_eq!((ignored[0].reason.as_deref(), ignored[0].ticket_id.as_deref()), (Some("auto_reply"), None));
    // No loop: the customer's answer is announced to the agent, nothing more to the customer.
    app.dispatch_announcements().await.unwrap();
    app.deliver_due(100).await.unwrap();
    assert_eq!(sink.to(c.contact).len(), 1, "{}", c.locale);
    db.close().await;
}

#[tokio::test]
async fn a_customers_mail_conversation_threads_both_ways_on_sqlite() {
    for c in [english(), chinese()] {
        let dir = temp_dir();
        let d = dir.join("data");
        let url = keel_store::sqlite_url_for_dir(&d);
        conversation(c, &url, &["--data-dir", d.to_str().unwrap()]).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[tokio::test]
async fn a_customers_mail_conversation_threads_both_ways_on_postgres() {
    let Some(admin_url) = keel_store::testing::postgres_url() else { return };
    for c in [english(), chinese()] {
        let t = TestDb::postgres(&admin_url).await;
        let dir = temp_dir();
        let d = dir.join("data");
        conversation(c, &t.url.clone(), &["--database-url", &t.url, "--data-dir", d.to_str().unwrap()]).await;
        let _ = std::fs::remove_dir_all(&dir);
        drop(t);
    }
}

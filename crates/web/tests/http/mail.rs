//! The email channel's HTTP surface: a message posted as `message/rfc822` with an API token
//! becomes a ticket once, noise is recorded, and only staff of the project may feed it;
//! mailboxes are configured per project and never show their IMAP secret.

use super::*;

const MAIL: &[u8] = b"From: =?UTF-8?B?5p2O6Zu3?= <li.lei@acme.test>\r\nTo: desk@a1.keel.test\r\nSubject: =?UTF-8?B?5omT5Y2w5py65Z2P5LqG?=\r\nMessage-ID: <http-1@acme.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPaper jam on floor 3.\r\n";

#[tokio::test]
async fn mail_posted_over_http_becomes_a_ticket_once() {
    for s in sites().await {
        let path = "/api/v1/mail/inbound?project=A1";
        let boxes = json!({ "address": "desk@a1.keel.test", "unknown_sender": "create_contact", "imap_host": "127.0.0.1", "imap_port": 1143, "imap_tls": "plain", "imap_user": "desk", "imap_secret": "s3cret" });
        let r = s.api(Method::POST, "/api/v1/projects/A1/mailboxes", Some(&s.agent_token), Some(boxes.clone()), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        let r = s.api(Method::POST, "/api/v1/projects/A1/mailboxes", Some(&s.admin_token), Some(boxes), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert!(!r.text().contains("s3cret"));
        let r = s.api(Method::GET, "/api/v1/projects/A1/mailboxes", Some(&s.agent_token), None, &[]).await;
        assert_eq!(r.json()[0]["imap_folder"], "INBOX");
        assert!(!r.text().contains("s3cret"));

        let r = s.raw(Method::POST, path, &s.agent_token, Some("text/plain"), MAIL.to_vec()).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let r = s.raw(Method::POST, path, &s.contact_a_token, Some("message/rfc822"), MAIL.to_vec()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "a contact does not feed the gateway");
        let r = s.raw(Method::POST, path, "not-a-token", Some("message/rfc822"), MAIL.to_vec()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        let r = s.raw(Method::POST, path, &s.agent_token, Some("message/rfc822"), MAIL.to_vec()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let receipt = r.json();
        assert_eq!((receipt["outcome"].as_str(), receipt["duplicate"].as_bool()), (Some("ticket"), Some(false)));
        let ticket = receipt["ticket_id"].as_str().unwrap().to_string();
        let t = s.api(Method::GET, &format!("/api/v1/incidents/{ticket}"), Some(&s.agent_token), None, &[]).await.json();
        assert_eq!((t["title"].as_str(), t["channel"].as_str()), (Some("打印机坏了"), Some("email")));

        let r = s.raw(Method::POST, path, &s.agent_token, Some("message/rfc822"), MAIL.to_vec()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!((r.json()["duplicate"].as_bool(), r.json()["ticket_id"].as_str()), (Some(true), Some(ticket.as_str())));

        let auto =
            b"From: li.lei@acme.test\r\nSubject: Out of office\r\nPrecedence: auto_reply\r\nMessage-ID: <http-2@acme.test>\r\n\r\naway\r\n";
        let r = s.raw(Method::POST, path, &s.agent_token, Some("message/rfc822"), auto.to_vec()).await;
        assert_eq!(
            (r.status, r.json()["outcome"].as_str(), r.json()["reason"].as_str()),
            (StatusCode::CREATED, Some("ignored"), Some("auto_reply"))
        );

        let r = s.raw(Method::POST, path, &s.agent_token, Some("message/rfc822"), b"garbage without a sender".to_vec()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let r = s.raw(Method::POST, "/api/v1/mail/inbound?project=B1", &s.agent_token, Some("message/rfc822"), MAIL.to_vec()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "not the agent's project");
    }
}

#[tokio::test]
async fn mailboxes_are_configured_from_the_project_pages() {
    for s in sites().await {
        let (cookie, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let r = s.page(&cookie, "/projects/B1/mailboxes/new").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.text().contains("name=\"imap_secret\""));
        let bad = format!("_csrf={csrf}&address=not-an-address&unknown_sender=hold&imap_host=&imap_port=&imap_tls=tls");
        let r = s.post_form(&cookie, "/projects/B1/mailboxes", &bad).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("not-an-address"), "typed values are kept");
        let good = format!("_csrf={csrf}&address=desk%40b1.keel.test&unknown_sender=create_contact&imap_host=&imap_port=&imap_tls=tls");
        let r = s.post_form(&cookie, "/projects/B1/mailboxes", &good).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = s.page(&cookie, "/projects/B1/mailboxes").await;
        assert!(r.text().contains("desk@b1.keel.test"));
        let r = s.page(&cookie, "/projects/B1/mail").await;
        assert_eq!(r.status, StatusCode::OK);
        let r = s.post_form(&cookie, "/projects/B1/mailboxes", "address=x%40y.z").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
    }
}

#[tokio::test]
async fn held_mail_mailbox_edits_and_the_sender_from_the_pages_and_the_api() {
    for s in sites().await {
        let boxes = json!({ "address": "desk@a1.keel.test", "unknown_sender": "hold" });
        let r = s.api(Method::POST, "/api/v1/projects/A1/mailboxes", Some(&s.admin_token), Some(boxes), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let mailbox = r.json()["id"].as_str().unwrap().to_string();
        let stranger = |n: u32| {
            format!("From: Stranger <stranger{n}@elsewhere.test>\r\nTo: desk@a1.keel.test\r\nSubject: Help {n}\r\nMessage-ID: <held-{n}@elsewhere.test>\r\n\r\nPlease help.\r\n")
                .into_bytes()
        };
        for n in [1, 2] {
            let r = s.raw(Method::POST, "/api/v1/mail/inbound?project=A1", &s.agent_token, Some("message/rfc822"), stranger(n)).await;
            assert_eq!(r.json()["outcome"], "held", "{}", r.text());
        }

        // API: listed for staff of the project, not for a contact; released and discarded once.
        let r = s.api(Method::GET, "/api/v1/projects/A1/held-mail", Some(&s.agent_token), None, &[]).await;
        let held = r.json();
        assert_eq!(held.as_array().unwrap().len(), 2, "{}", r.text());
        let r = s.api(Method::GET, "/api/v1/projects/A1/held-mail", Some(&s.contact_a_token), None, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let first = held.as_array().unwrap().iter().find(|m| m["subject"] == "Help 1").unwrap()["id"].as_str().unwrap().to_string();
        let second = held.as_array().unwrap().iter().find(|m| m["subject"] == "Help 2").unwrap()["id"].as_str().unwrap().to_string();
        let r = s.api(Method::POST, &format!("/api/v1/held-mail/{first}/release"), Some(&s.contact_a_token), None, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = s.api(Method::POST, &format!("/api/v1/held-mail/{first}/release"), Some(&s.agent_token), None, &[]).await;
        assert_eq!((r.status, r.json()["outcome"].as_str()), (StatusCode::OK, Some("ticket")), "{}", r.text());
        let r = s.api(Method::POST, &format!("/api/v1/held-mail/{first}/discard"), Some(&s.agent_token), None, &[]).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")));

        // Pages: the held message is discarded with a CSRF-checked form.
        let (cookie, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let r = s.page(&cookie, "/projects/A1/held-mail").await;
        assert!(r.text().contains("Help 2") && !r.text().contains("Help 1"), "{}", r.text());
        let r = s.page(&cookie, &format!("/held-mail/{second}")).await;
        assert!(r.text().contains("stranger2@elsewhere.test"));
        let r = s.post_form(&cookie, &format!("/held-mail/{second}"), "decision=discard").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
        let r = s.post_form(&cookie, &format!("/held-mail/{second}"), &format!("_csrf={csrf}&decision=discard")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = s.api(Method::GET, "/api/v1/projects/A1/held-mail", Some(&s.agent_token), None, &[]).await;
        assert_eq!(r.json().as_array().unwrap().len(), 0);

        // A mailbox edited and deactivated from its page; an agent may only read it.
        let r = s.page(&cookie, &format!("/mailboxes/{mailbox}")).await;
        assert!(r.text().contains("desk@a1.keel.test") && r.text().contains("name=\"active\""));
        let form = format!("_csrf={csrf}&address=desk%40a1.keel.test&unknown_sender=create_contact&imap_tls=tls&active=false");
        let r = s.post_form(&cookie, &format!("/mailboxes/{mailbox}"), &form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = s.api(Method::GET, &format!("/api/v1/mailboxes/{mailbox}"), Some(&s.agent_token), None, &[]).await;
        assert_eq!((r.json()["unknown_sender"].as_str(), r.json()["active"].as_bool()), (Some("create_contact"), Some(false)));
        let body = json!({ "address": "desk@a1.keel.test", "unknown_sender": "hold", "active": true });
        let r = s.api(Method::PUT, &format!("/api/v1/mailboxes/{mailbox}"), Some(&s.agent_token), Some(body.clone()), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = s.api(Method::PUT, &format!("/api/v1/mailboxes/{mailbox}"), Some(&s.admin_token), Some(body), &[]).await;
        assert_eq!((r.status, r.json()["active"].as_bool()), (StatusCode::OK, Some(true)), "{}", r.text());

        // The project's From address from its page.
        let r = s.post_form(&cookie, "/projects/A1/sender", &format!("_csrf={csrf}&from=not%20a%20mailbox")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = s.post_form(&cookie, "/projects/A1/sender", &format!("_csrf={csrf}&from=Acme%20Desk%20%3Cdesk%40a1.keel.test%3E")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = s.page(&cookie, "/projects/A1/sender").await;
        assert!(
            r.text().contains("Acme Desk &lt;desk@a1.keel.test&gt;") || r.text().contains("Acme Desk &#60;desk@a1.keel.test&#62;"),
            "{}",
            r.text()
        );
    }
}

/// An HTML-only message from a stranger with a script, a tracking image, an event handler,
/// markup typed as text, an attachment and an inline image.
const HOSTILE: &str = "From: Stranger <stranger@elsewhere.test>\r\nTo: desk@a1.keel.test\r\nSubject: Printer <b>fire</b>\r\nMessage-ID: <held-body@elsewhere.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>p{color:red}</style><script>alert('owned')</script></head><body><p onclick=\"steal()\">The printer on floor 3 is on fire.</p><p>Type &lt;b&gt;bold&lt;/b&gt; to test.</p><img src=\"https://tracker.example.net/pixel.gif\"><iframe src=\"https://evil.example.net/\"></iframe></body></html>\r\n--b1\r\nContent-Type: text/plain; name=\"error-log.txt\"\r\nContent-Disposition: attachment; filename=\"error-log.txt\"\r\n\r\nE42 fuser\r\n--b1\r\nContent-Type: image/png; name=\"screen.png\"\r\nContent-Disposition: inline; filename=\"screen.png\"\r\nContent-ID: <screen@elsewhere.test>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b1--\r\n";

#[tokio::test]
async fn the_held_message_page_shows_the_message_text_escaped_and_its_files_to_staff_only() {
    for s in sites().await {
        for project in ["A1", "B1"] {
            let boxes = json!({ "address": format!("desk@{}.keel.test", project.to_lowercase()), "unknown_sender": "hold" });
            let r = s.api(Method::POST, &format!("/api/v1/projects/{project}/mailboxes"), Some(&s.admin_token), Some(boxes), &[]).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        }
        let path = "/api/v1/mail/inbound?project=A1";
        let r = s.raw(Method::POST, path, &s.agent_token, Some("message/rfc822"), HOSTILE.as_bytes().to_vec()).await;
        assert_eq!(r.json()["outcome"], "held", "{}", r.text());
        let other = HOSTILE.replace("held-body@", "held-b1@");
        let r = s.raw(Method::POST, "/api/v1/mail/inbound?project=B1", &s.admin_token, Some("message/rfc822"), other.into_bytes()).await;
        assert_eq!(r.json()["outcome"], "held", "{}", r.text());
        let mut ids = Vec::new();
        for project in ["A1", "B1"] {
            let r = s.api(Method::GET, &format!("/api/v1/projects/{project}/held-mail"), Some(&s.admin_token), None, &[]).await;
            ids.push(r.json()[0]["id"].as_str().unwrap().to_string());
        }
        let (held, held_b1) = (&ids[0], &ids[1]);

        let (cookie, _) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let r = s.page(&cookie, &format!("/held-mail/{held}")).await;
        assert_eq!(r.status, StatusCode::OK);
        let page = r.text();
        let body = page.split("data-testid=\"mail-body\">").nth(1).and_then(|b| b.split("</pre>").next()).expect("the message body");
        assert!(body.contains("The printer on floor 3 is on fire."), "{body}");
        assert!(body.contains("bold") && !body.contains("<b>"), "markup in the text is shown escaped: {body}");
        for bad in ["alert(", "owned", "tracker.example.net", "evil.example.net", "onclick", "steal()", "color:red"] {
            assert!(!page.contains(bad), "{bad} reached the page");
        }
        let content = page.split("<h1>").nth(1).and_then(|c| c.split("</form>").next()).unwrap();
        for tag in ["<script", "<style", "<iframe", "<img", "<b>"] {
            assert!(!content.contains(tag), "{tag} in the page's content: {content}");
        }
        assert!(!page.contains("Printer <b>fire"), "the subject is escaped");
        let files = page.split("data-testid=\"mail-files\"").nth(1).unwrap_or_default();
        assert!(files.contains("error-log.txt") && files.contains("screen.png") && files.contains("image/png"), "{files}");
        assert!(page.contains("stranger@elsewhere.test") && page.contains("name=\"decision\""));

        // Another project's held mail, a contact, nobody signed in: not shown.
        let r = s.page(&cookie, &format!("/held-mail/{held_b1}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "not the agent's project");
        let (contact, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        let r = s.page(&contact, &format!("/held-mail/{held}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(!r.text().contains("on fire"));
        let r = s.page("", &format!("/held-mail/{held}")).await;
        assert!(!r.text().contains("on fire") && r.status != StatusCode::OK, "{}", r.status);
    }
}

#[tokio::test]
async fn a_mailbox_names_its_team_in_the_api_and_the_form_and_its_mail_lands_in_that_queue() {
    for s in sites().await {
        let agent = s.api(Method::GET, "/api/v1/me", Some(&s.agent_token), None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let admin = Some(s.admin_token.as_str());
        let team = |name: &str, members: Vec<String>| json!({ "name": name, "member_ids": members });
        let r = s.api(Method::POST, "/api/v1/teams", admin, Some(team("Desk L1", vec![agent.clone()])), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let l1 = r.json()["id"].as_str().unwrap().to_string();
        let admin_id = s.admin.user_id.clone();
        let r = s.api(Method::POST, "/api/v1/teams", admin, Some(team("Nobody of A1", vec![admin_id])), &[]).await;
        let other = r.json()["id"].as_str().unwrap().to_string();

        // a team nobody of the project is in: refused with its field and code, nothing stored
        let body = |team: &str| json!({ "address": "desk@a1.keel.test", "unknown_sender": "create_contact", "team_id": team });
        let r = s.api(Method::POST, "/api/v1/projects/A1/mailboxes", admin, Some(body(&other)), &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert_eq!(
            (r.json()["details"][0]["field"].as_str(), r.json()["details"][0]["code"].as_str()),
            (Some("team_id"), Some("team_not_in_project"))
        );
        let r = s.api(Method::GET, "/api/v1/projects/A1/mailboxes", admin, None, &[]).await;
        assert_eq!(r.json().as_array().unwrap().len(), 0);

        let r = s.api(Method::POST, "/api/v1/projects/A1/mailboxes", admin, Some(body(&l1)), &[]).await;
        assert_eq!((r.status, r.json()["team_id"].as_str()), (StatusCode::CREATED, Some(l1.as_str())), "{}", r.text());
        let mailbox = r.json()["id"].as_str().unwrap().to_string();

        let r = s.raw(Method::POST, "/api/v1/mail/inbound?project=A1", &s.agent_token, Some("message/rfc822"), MAIL.to_vec()).await;
        let ticket = r.json()["ticket_id"].as_str().unwrap().to_string();
        let t = s.api(Method::GET, &format!("/api/v1/incidents/{ticket}"), Some(&s.agent_token), None, &[]).await.json();
        assert_eq!((t["status"].as_str(), t["team_id"].as_str()), (Some("assigned"), Some(l1.as_str())));

        // the form offers the project's teams, in both languages, and saves the choice
        let (cookie, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let list = s.page(&cookie, "/projects/A1/mailboxes").await.text();
        assert!(list.contains("Resolver group") && list.contains("<td>Desk L1</td>"), "the list names each mailbox's team: {list}");
        let page = s.page(&cookie, &format!("/mailboxes/{mailbox}")).await.text();
        assert!(page.contains(&format!("<option value=\"{l1}\" selected>Desk L1</option>")), "{page}");
        assert!(!page.contains("Nobody of A1"), "only teams working on the project");
        let zh = s.page(&format!("{cookie}; keel_lang=zh-CN"), "/projects/A1/mailboxes/new").await.text();
        assert!(zh.contains("职能小组") && zh.contains("无（工单保持未分派）"));
        let form = format!("_csrf={csrf}&address=desk%40a1.keel.test&unknown_sender=create_contact&team_id={other}&active=true");
        let r = s.post_form(&cookie, &format!("/mailboxes/{mailbox}"), &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("No member of this resolver group works on the service project."));
        let form = format!("_csrf={csrf}&address=desk%40a1.keel.test&unknown_sender=create_contact&team_id=&active=true");
        assert_eq!(s.post_form(&cookie, &format!("/mailboxes/{mailbox}"), &form).await.status, StatusCode::SEE_OTHER);
        let r = s.api(Method::GET, &format!("/api/v1/mailboxes/{mailbox}"), admin, None, &[]).await;
        assert_eq!(r.json()["team_id"], Value::Null);
    }
}

/// A mailbox's IMAP password is kept encrypted (the raw row is not the password), kept when
/// an edit leaves it empty, and never shown by the API, the pages or the audit trail.
#[tokio::test]
async fn imap_passwords_are_encrypted_at_rest_and_shown_only_as_set() {
    use keel_app::secrets::{is_sealed, mailbox_context};
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let plain = "imap-plain-password-42";
        let body = json!({ "address": "desk@a1.keel.test", "imap_host": "127.0.0.1", "imap_port": 1143, "imap_tls": "plain", "imap_user": "desk", "imap_secret": plain });
        let r = s.api(Method::POST, "/api/v1/projects/A1/mailboxes", admin, Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.json()["has_imap_secret"], true);
        let id = r.json()["id"].as_str().unwrap().to_string();
        async fn raw(app: &App, id: &str) -> String {
            let mut c = app.read().await.unwrap();
            keel_store::mail::get_mailbox(&mut c, id).await.unwrap().unwrap().imap_secret.unwrap()
        }
        let stored = || raw(&s.app, &id);
        let first = stored().await;
        assert!(is_sealed(&first) && !first.contains(plain), "the raw row is encrypted: {first}");
        assert_eq!(s.app.secrets.open(&mailbox_context(&id), &first).unwrap(), plain);

        let edit = json!({ "address": "desk@a1.keel.test", "imap_host": "127.0.0.1", "imap_port": 1143, "imap_tls": "plain", "imap_user": "desk2", "active": true });
        let r = s.api(Method::PUT, &format!("/api/v1/mailboxes/{id}"), admin, Some(edit), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(stored().await, first, "an absent password keeps the stored one");

        let shown = |text: &str| text.contains(plain) || text.contains("enc:v1");
        let r = s.api(Method::GET, &format!("/api/v1/mailboxes/{id}"), admin, None, &[]).await;
        assert!(!shown(&r.text()) && r.json()["has_imap_secret"] == true, "{}", r.text());
        assert!(!shown(&s.api(Method::GET, "/api/v1/projects/A1/mailboxes", admin, None, &[]).await.text()));
        let history = s.app.history("mailbox", &id).await.unwrap();
        let trail = serde_json::to_string(&history).unwrap();
        assert!(!shown(&trail), "{trail}");
        let created = history.iter().find(|h| h.action == "create").unwrap();
        assert!(created.changes.as_array().unwrap().iter().any(|c| c["field"] == "imap_secret" && c["new"] == "set"), "{trail}");
        let (cookie, _) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let page = s.page(&cookie, &format!("/mailboxes/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!shown(&page.text()), "{}", page.text());
    }
}

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

//! Service desk tenancy through the HTTP surface: a customer contact sees their organisation's
//! tickets and public replies only — never another organisation's ticket or an internal note,
//! whether through the API, the ticket page or the queue.

use super::*;

#[tokio::test]
async fn contacts_never_see_internal_notes_or_other_customers_tickets() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let contact_a = Some(s.contact_a_token.as_str());
        let me = s.api(Method::GET, "/api/v1/me", contact_a, None, &[]).await.json();
        let contact_a_id = me["id"].as_str().unwrap().to_string();
        let projects = s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json();
        let project_a = projects["items"][0]["id"].as_str().unwrap().to_string();

        let r = s
            .api(
                Method::POST,
                "/api/v1/incidents",
                admin,
                Some(json!({"project_id": project_a, "reporter_id": contact_a_id, "title": "打印机无法打印", "description": "Printer on floor 3"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let ticket = r.json();
        let id = ticket["id"].as_str().unwrap().to_string();
        assert!(ticket["number"].as_str().unwrap().starts_with("INC-"));
        let comments = format!("/api/v1/incidents/{id}/comments");
        let r = s
            .api(Method::POST, &comments, admin, Some(json!({"visibility": "internal", "body": "SECRET root password is hunter2"})), &[])
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let r = s.api(Method::POST, &comments, admin, Some(json!({"visibility": "public", "body": "We are on it"})), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

        // the reporter's organisation: the ticket and the public reply, no internal note
        assert_eq!(s.api(Method::GET, &format!("/api/v1/incidents/{id}"), contact_a, None, &[]).await.status, StatusCode::OK);
        let seen = s.api(Method::GET, &comments, contact_a, None, &[]).await.text();
        assert!(seen.contains("We are on it") && !seen.contains("SECRET"), "{}: {seen}", s._db.label);
        let r = s.api(Method::POST, &comments, contact_a, Some(json!({"visibility": "internal", "body": "sneaky"})), &[]).await;
        assert!(r.status.is_client_error() && r.status != StatusCode::NOT_FOUND, "a contact cannot write internal notes: {}", r.status);
        let (cookie, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        let page = s.page(&cookie, &format!("/incidents/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.text().contains("We are on it") && !page.text().contains("SECRET"),
            "{}: internal note on the portal page",
            s._db.label
        );

        // another organisation's contact: nothing, and no hint that it exists
        let b = s
            .app
            .create_user(
                &s.admin,
                NewUser {
                    kind: AccountKind::Contact,
                    email: "contact@beta.test".into(),
                    display_name: "Beta contact".into(),
                    organization_id: Some(s.org_b.clone()),
                    password: Some("correct horse battery".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let b_principal = principal(&s.app, &b.id).await;
        let b_token = s.app.create_api_token(&b_principal, "t", None).await.unwrap().0;
        let contact_b = Some(b_token.as_str());
        for path in
            [format!("/api/v1/incidents/{id}"), comments.clone(), format!("/api/v1/incidents/{}", ticket["number"].as_str().unwrap())]
        {
            let r = s.api(Method::GET, &path, contact_b, None, &[]).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        }
        let r = s.api(Method::POST, &comments, contact_b, Some(json!({"body": "hello?"})), &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let list = s.api(Method::GET, "/api/v1/incidents", contact_b, None, &[]).await.text();
        assert!(!list.contains(&id) && !list.contains("打印机"), "{list}");
        let (cookie_b, _) = s.browser_login("contact@beta.test", "correct horse battery").await;
        assert_eq!(s.page(&cookie_b, &format!("/incidents/{id}")).await.status, StatusCode::NOT_FOUND);
        assert!(!s.page(&cookie_b, "/incidents").await.text().contains("打印机"));
        // staff: a member of the project sees it, someone outside it does not
        let agent_view = s.api(Method::GET, &format!("/api/v1/incidents/{id}"), Some(&s.agent_token), None, &[]).await;
        assert_eq!(agent_view.status, StatusCode::OK, "the agent is a member of project A");
        let outsider = s
            .app
            .create_user(
                &s.admin,
                NewUser {
                    email: "outsider@keel.test".into(),
                    display_name: "Outsider".into(),
                    roles: vec![Role::ServiceDeskAgent],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let outsider = principal(&s.app, &outsider.id).await;
        let outsider_token = s.app.create_api_token(&outsider, "t", None).await.unwrap().0;
        let r = s.api(Method::GET, &format!("/api/v1/incidents/{id}"), Some(&outsider_token), None, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}

//! Major incident communications over HTTP: the API logs and lists them, a contact reads only
//! the communications to customers, another organisation nothing, and the ticket page keeps
//! what the manager typed when a communication is refused.

use super::*;

#[tokio::test]
async fn the_communication_log_over_api_and_page() {
    for s in sites().await {
        let agent = Some(s.agent_token.as_str());
        let contact_a = Some(s.contact_a_token.as_str());
        let contact_a_id = s.api(Method::GET, "/api/v1/me", contact_a, None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let agent_id = s.api(Method::GET, "/api/v1/me", agent, None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let project_a = s.api(Method::GET, "/api/v1/projects?q=A1", Some(s.admin_token.as_str()), None, &[]).await.json()["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = s
            .api(
                Method::POST,
                "/api/v1/incidents",
                agent,
                Some(json!({"project_id": project_a, "reporter_id": contact_a_id, "title": "全站宕机"})),
                &[],
            )
            .await;
        let id = r.json()["id"].as_str().unwrap().to_string();
        let log = format!("/api/v1/incidents/{id}/communications");

        let r = s.api(Method::POST, &log, agent, Some(json!({"audience": "customers", "medium": "email", "summary": "x"})), &[]).await;
        assert_eq!(
            (r.status, r.json()["details"][0]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("not_major")),
            "{}",
            r.text()
        );
        let r = s
            .api(
                Method::POST,
                &format!("/api/v1/incidents/{id}/major"),
                agent,
                Some(json!({"manager_id": agent_id, "reason": "site down"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());

        let r = s
            .api(
                Method::POST,
                &log,
                agent,
                Some(json!({"audience": "customers", "medium": "portal", "summary": "Power is back on one feed"})),
                &[],
            )
            .await;
        assert_eq!((r.status, r.json()["seq"].as_i64()), (StatusCode::CREATED, Some(1)), "{}", r.text());
        let r = s
            .api(
                Method::POST,
                &log,
                agent,
                Some(json!({"audience": "management", "medium": "phone", "summary": "SECRET briefing for the board"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let r = s.api(Method::POST, &log, agent, Some(json!({"audience": "everyone", "medium": "portal", "summary": "x"})), &[]).await;
        assert_eq!((r.status, r.json()["details"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("audience")));

        let staff = s.api(Method::GET, &log, agent, None, &[]).await.json();
        assert_eq!(staff["items"].as_array().unwrap().len(), 2);
        let theirs = s.api(Method::GET, &log, contact_a, None, &[]).await;
        assert_eq!(theirs.json()["items"].as_array().unwrap().len(), 1, "{}", theirs.text());
        assert!(!theirs.text().contains("SECRET"));
        let r =
            s.api(Method::POST, &log, contact_a, Some(json!({"audience": "customers", "medium": "portal", "summary": "hi"})), &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

        // another organisation's contact: the ticket does not exist for them
        let beta = s
            .app
            .create_user(
                &s.admin,
                NewUser {
                    kind: AccountKind::Contact,
                    organization_id: Some(s.org_b.clone()),
                    email: "x@beta.test".into(),
                    display_name: "x".into(),
                    password: Some("correct horse battery".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let beta = principal(&s.app, &beta.id).await;
        let beta_token = s.app.create_api_token(&beta, "t", None).await.unwrap().0;
        assert_eq!(s.api(Method::GET, &log, Some(beta_token.as_str()), None, &[]).await.status, StatusCode::NOT_FOUND);

        // the page: the contact sees the customer communication, not the briefing
        let (cookie, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        let page = s.page(&cookie, &format!("/incidents/{id}")).await.text();
        assert!(page.contains("Power is back on one feed") && !page.contains("SECRET"), "{page}");
        assert!(!page.contains("data-testid=\"communication\""), "contacts get no form");

        // the agent's form: a refused post keeps the typed summary and names the field
        let (cookie, csrf) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let form = format!("_csrf={csrf}&audience=customers&medium=&summary={}&next_update_minutes=30", urlenc("<b>下一次</b> update"));
        let r = s.post_form(&cookie, &format!("/incidents/{id}/communications"), &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let html = r.text();
        assert!(html.contains("data-field=\"medium\"") && html.contains("&#60;b&#62;下一次&#60;/b&#62; update"), "{html}");
        let form = format!("_csrf={csrf}&audience=customers&medium=email&summary=Restored&next_update_minutes=30");
        let r = s.post_form(&cookie, &format!("/incidents/{id}/communications"), &form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let last = s.api(Method::GET, &log, agent, None, &[]).await.json()["items"][2].clone();
        assert_eq!(last["summary"], "Restored");
        assert!(last["next_update_due"].as_i64().unwrap() > last["sent_at"].as_i64().unwrap());
        let r = s.post_form(&cookie, &format!("/incidents/{id}/communications"), "audience=customers&medium=email&summary=x").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token, no write");
    }
}

//! Change management over HTTP: a normal change raised, assessed and approved through the API
//! with its error codes (invalid transition, non-approver, locked content, missing If-Match),
//! and a customer contact or another project's staff reading nothing of it.

use super::*;

#[tokio::test]
async fn a_change_moves_through_the_api_with_stable_error_codes() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let agent = Some(s.agent_token.as_str());
        let contact = Some(s.contact_a_token.as_str());
        let project_a =
            s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json()["items"][0]["id"].as_str().unwrap().to_string();
        let me = s.api(Method::GET, "/api/v1/me", admin, None, &[]).await.json()["id"].as_str().unwrap().to_string();

        // bad input: every field named
        let r = s
            .api(
                Method::POST,
                "/api/v1/changes",
                agent,
                Some(json!({"project_id": project_a, "change_type": "urgent", "title": " ", "planned_start": 10, "planned_end": 5})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let fields: Vec<String> =
            r.json()["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap().to_string()).collect();
        for f in ["change_type", "title", "planned_end"] {
            assert!(fields.contains(&f.to_string()), "{f} in {fields:?}");
        }

        let body = json!({
            "project_id": project_a, "change_type": "normal", "title": "Upgrade the firewall / 防火墙升级",
            "implementation_plan": "upgrade", "back_out_plan": "downgrade",
            "approval_steps": [{"name": "CAB", "approvers": [{"kind": "user", "id": me}], "quorum": "any"}]
        });
        let r = s.api(Method::POST, "/api/v1/changes", agent, Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let c = r.json();
        let id = c["id"].as_str().unwrap().to_string();
        assert_eq!((c["number"].as_str(), c["status"].as_str()), (Some("CHG-000001"), Some("draft")));
        assert!(c["next_statuses"].as_array().unwrap().contains(&json!("submitted")), "{c}");

        let tr = format!("/api/v1/changes/{id}/transitions");
        let r = s.api(Method::POST, &tr, agent, Some(json!({"to": "implementing"})), &[]).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_transition")));
        let r = s.api(Method::POST, &tr, agent, Some(json!({"to": "submitted"})), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let q = s.api(Method::GET, "/api/v1/change-risk-questionnaire", agent, None, &[]).await.json();
        let answers: serde_json::Map<String, Value> = q["questions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| (q["key"].as_str().unwrap().to_string(), q["answers"][0]["key"].clone()))
            .collect();
        let r = s.api(Method::PUT, &format!("/api/v1/changes/{id}/risk"), agent, Some(json!({"answers": answers})), &[]).await;
        assert_eq!((r.status, r.json()["risk_level"].as_str()), (StatusCode::OK, Some("low")), "{}", r.text());
        let r = s.api(Method::POST, &tr, agent, Some(json!({"to": "assessed"})), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());

        // only the approver decides
        let dec = format!("/api/v1/changes/{id}/decisions");
        let r = s.api(Method::POST, &dec, agent, Some(json!({"verdict": "approve"})), &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert_eq!(r.json()["details"][0]["code"], "not_an_approver");
        let r = s.api(Method::POST, &dec, admin, Some(json!({"verdict": "approve", "reason": "ok"})), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["evaluation"]["outcome"], "approved");
        let r = s.api(Method::POST, &dec, admin, Some(json!({"verdict": "approve"})), &[]).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::CONFLICT, Some("approval_not_open")));

        // approved content is locked; updates need If-Match
        let path = format!("/api/v1/changes/{id}");
        let r = s.api(Method::PATCH, &path, agent, Some(json!({"title": "x"})), &[]).await;
        assert_eq!(r.status, StatusCode::PRECONDITION_REQUIRED);
        let etag = s.api(Method::GET, &path, agent, None, &[]).await.header(header::ETAG);
        let r = s.api(Method::PATCH, &path, agent, Some(json!({"title": "x"})), &[("if-match", &etag)]).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::CONFLICT, Some("change_locked")));
        let r = s
            .api(
                Method::PATCH,
                &path,
                agent,
                Some(json!({"planned_start": 2_000_000_000_000i64, "planned_end": 2_000_003_600_000i64})),
                &[("if-match", &etag)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = s.api(Method::POST, &tr, agent, Some(json!({"to": "scheduled"})), &[]).await;
        assert_eq!(r.json()["status"], "scheduled", "{}", r.text());
        let sched = s.api(Method::GET, "/api/v1/change-schedule?from=1999999000000&to=2000100000000", agent, None, &[]).await;
        assert_eq!(sched.json()["changes"][0]["number"], "CHG-000001", "{}", sched.text());
        let r = s.api(Method::GET, "/api/v1/change-schedule?from=1&to=2000100000000", agent, None, &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());

        // tasks for a team
        let r = s.api(Method::POST, &format!("/api/v1/changes/{id}/tasks"), agent, Some(json!({"title": "Back up the config"})), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

        // the contact and the other project see nothing; the contact cannot create one
        for p in [
            path.clone(),
            "/api/v1/changes/CHG-000001".into(),
            format!("/api/v1/changes/{id}/approval"),
            format!("/api/v1/changes/{id}/tasks"),
            "/api/v1/changes".into(),
        ] {
            let r = s.api(Method::GET, &p, contact, None, &[]).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{p}: {}", r.text());
        }
        let r = s.api(Method::POST, &dec, contact, Some(json!({"verdict": "approve"})), &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = s
            .api(
                Method::POST,
                "/api/v1/changes",
                agent,
                Some(json!({"project_id": s.project_b, "change_type": "normal", "title": "x"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["details"][0]["field"], "project_id");
        let r = s.api(Method::POST, "/api/v1/change-freezes", agent, Some(json!({"name": "x", "starts_at": 1, "ends_at": 2})), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = s
            .api(Method::POST, "/api/v1/change-freezes", admin, Some(json!({"name": "春节封网", "starts_at": 1, "ends_at": 2})), &[])
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
}

#[tokio::test]
async fn change_pages_keep_typed_values_and_hide_from_contacts() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let project_a =
            s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json()["items"][0]["id"].as_str().unwrap().to_string();
        let (cookie, csrf) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let list = s.page(&cookie, "/changes").await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text());
        assert_eq!(s.page(&cookie, "/changes/new").await.status, StatusCode::OK);
        // a refused form keeps what was typed, escaped
        let form = format!(
            "_csrf={csrf}&project_id={project_a}&change_type=normal&title=&description={}&planned_start=2026-13-01T10:00",
            urlenc("<b>x</b> 升级")
        );
        let r = s.post_form(&cookie, "/changes", &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let html = r.text();
        assert!(
            (html.contains("&lt;b&gt;x&lt;/b&gt; 升级") || html.contains("&#60;b&#62;x&#60;/b&#62; 升级")) && !html.contains("<b>x</b>"),
            "typed value kept and escaped"
        );
        assert!(html.contains("data-field=\"planned_start\""), "the bad date is named");
        let form = format!(
            "_csrf={csrf}&project_id={project_a}&change_type=normal&title={}&implementation_plan=a&back_out_plan=b&planned_start=2030-01-07T10:00&planned_end=2030-01-07T12:00",
            urlenc("数据库升级")
        );
        let r = s.post_form(&cookie, "/changes", &form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let loc = r.header(header::LOCATION);
        let page = s.page(&cookie, loc.split('?').next().unwrap()).await;
        assert_eq!(page.status, StatusCode::OK);
        let html = page.text();
        assert!(html.contains("CHG-000001") && html.contains("data-action=\"submitted\""), "{html}");
        let sched = s.page(&cookie, "/changes/schedule?view=week&date=2030-01-07").await;
        assert_eq!(sched.status, StatusCode::OK);
        assert!(sched.text().contains("2030-01-07"), "the week is shown");
        // the contact sees none of it
        let (contact, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        for p in ["/changes", "/changes/new", "/changes/schedule", "/changes/CHG-000001"] {
            assert_eq!(s.page(&contact, p).await.status, StatusCode::NOT_FOUND, "{p}");
        }
    }
}

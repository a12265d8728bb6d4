//! Release management pages: a stage planned, its actual result recorded, the release rolled
//! back and reviewed through the forms of the release page; refused input comes back in place
//! with what was typed; contacts, staff outside the project and auditors change nothing.

use super::*;

/// Creates a staff member of no project and signs them in: id, cookie, CSRF token.
pub(crate) async fn staff_member(s: &Site, email: &str, roles: Vec<Role>) -> (String, String, String) {
    let u = s
        .app
        .create_user(
            &s.admin,
            NewUser {
                email: email.into(),
                display_name: email.split('@').next().unwrap().into(),
                password: Some("correct horse battery".into()),
                roles,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (cookie, csrf) = s.browser_login(email, "correct horse battery").await;
    (u.id, cookie, csrf)
}

pub(crate) async fn my_id(s: &Site, token: &str) -> String {
    s.api(Method::GET, "/api/v1/me", Some(token), None, &[]).await.json()["id"].as_str().unwrap().to_string()
}

pub(crate) async fn project_a(s: &Site) -> String {
    let admin = Some(s.admin_token.as_str());
    s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json()["items"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn release_stages_are_planned_recorded_rolled_back_and_reviewed_from_the_page() {
    for s in sites().await {
        let agent = Some(s.agent_token.as_str());
        let agent_id = my_id(&s, &s.agent_token).await;
        let project = project_a(&s).await;
        let change = json!({"project_id": project, "change_type": "normal", "title": "ERP 3 cut-over"});
        assert_eq!(s.api(Method::POST, "/api/v1/changes", agent, Some(change), &[]).await.status, StatusCode::CREATED);
        let body = json!({"project_id": project, "title": "ERP 3 上线", "version": "3.0", "change_ids": ["CHG-000001"], "rollback_plan": "Restore"});
        let r = s.api(Method::POST, "/api/v1/releases", agent, Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let api = format!("/api/v1/releases/{id}");
        let page = format!("/releases/{id}");
        let (cookie, csrf) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let html = s.page(&cookie, &page).await.text();
        assert!(html.contains("data-testid=\"form-plan-build\"") && html.contains("data-testid=\"form-review\""), "{html}");

        // a bad date: the plan comes back with the error in place and what was typed
        let plan = |start: &str, expected: &str| {
            format!(
                "_csrf={csrf}&planned_start={start}&planned_end=2030-01-07T12:00&checklist={}&expected={}&signer_ids={agent_id}",
                urlenc("Build archived\n构建归档"),
                urlenc(expected)
            )
        };
        let r = s.post_form(&cookie, &format!("{page}/stages/build/plan"), &plan("2030-13-01T10:00", "ok | green | met")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let html = r.text();
        assert!(html.contains("data-field=\"planned_start\"") && html.contains("构建归档"), "{html}");
        assert!(html.contains("data-testid=\"form-plan-build\"") && html.contains("<details class=\"action\" open>"), "the form is open");
        let r = s.post_form(&cookie, &format!("{page}/stages/build/plan"), &plan("2030-01-07T10:00", "only | two")).await;
        assert!(r.text().contains("data-field=\"expected\""), "{}", r.text());
        let r = s.post_form(&cookie, &format!("{page}/stages/build/plan"), &plan("2030-01-07T10:00", "ok | green build | met")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let rel = s.api(Method::GET, &api, agent, None, &[]).await.json();
        let build = &rel["stages"][0];
        assert_eq!((build["checklist"][1]["text"].as_str(), build["expected"][0]["key"].as_str()), (Some("构建归档"), Some("ok")), "{rel}");
        assert_eq!(build["signers"][0]["user_id"], json!(agent_id));

        let r = s.api(Method::POST, &format!("{api}/transitions"), agent, Some(json!({"status": "in_progress"})), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = s.post_form(&cookie, &format!("{page}/stages/build/results"), &format!("_csrf={csrf}&key=ok&result=&met=false")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let r = s
            .post_form(&cookie, &format!("{page}/stages/build/results"), &format!("_csrf={csrf}&key=ok&result=green&met=false&met=true"))
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let rel = s.api(Method::GET, &api, agent, None, &[]).await.json();
        assert_eq!(
            (rel["stages"][0]["actual"][0]["result"].as_str(), rel["stages"][0]["actual"][0]["met"].as_bool()),
            (Some("green"), Some(true))
        );

        // rollback: the reason is required and kept
        let r = s.post_form(&cookie, &format!("{page}/rollback"), &format!("_csrf={csrf}&outcome=restored&notes=")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(r.text().contains("data-field=\"notes\""), "{}", r.text());
        let r = s
            .post_form(&cookie, &format!("{page}/rollback"), &format!("_csrf={csrf}&outcome=restored&notes={}", urlenc("快照已恢复")))
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = s.post_form(&cookie, &format!("{page}/transition"), &format!("_csrf={csrf}&status=rolled_back")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = s
            .post_form(
                &cookie,
                &format!("{page}/review"),
                &format!("_csrf={csrf}&summary={}", urlenc("Rolled back: the build missed its window")),
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let rel = s.api(Method::GET, &api, agent, None, &[]).await.json();
        assert_eq!((rel["rollback_outcome"].as_str(), rel["status"].as_str()), (Some("restored"), Some("rolled_back")), "{rel}");
        let html = s.page(&cookie, &page).await.text();
        assert!(
            html.contains("快照已恢复") && html.contains("Rolled back: the build missed its window") && html.contains("Deviations"),
            "{html}"
        );
        let zh = s.page(&format!("{cookie}; keel_lang=zh-CN"), &page).await.text();
        assert!(zh.contains("规划阶段") && zh.contains("发布评审"), "{zh}");

        // contacts and staff outside the project see nothing; auditors change nothing
        let (contact, ccsrf) = s.browser_login("contact@acme.test", "correct horse battery").await;
        assert_eq!(s.page(&contact, &page).await.status, StatusCode::NOT_FOUND);
        let r = s.post_form(&contact, &format!("{page}/review"), &format!("_csrf={ccsrf}&summary=x")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let (_, outsider, ocsrf) = staff_member(&s, "outsider@keel.test", vec![Role::ServiceDeskAgent]).await;
        let r = s.post_form(&outsider, &format!("{page}/stages/test/plan"), &format!("_csrf={ocsrf}&checklist=x")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
        let (_, auditor, acsrf) = staff_member(&s, "auditor@keel.test", vec![Role::Auditor]).await;
        let html = s.page(&auditor, &page).await.text();
        assert!(!html.contains("form-plan-build"), "no forms for auditors");
        let r = s.post_form(&auditor, &format!("{page}/stages/test/plan"), &format!("_csrf={acsrf}&checklist=x")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert!(r.text().contains("role=\"alert\""), "the refusal is shown: {}", r.text());
        assert!(s.api(Method::GET, &api, agent, None, &[]).await.json()["stages"][1]["checklist"].as_array().unwrap().is_empty());
    }
}

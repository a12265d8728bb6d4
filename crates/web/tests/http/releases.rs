//! Release management over HTTP: the API plans, signs off (named signers only) and moves a
//! release; a customer contact reads none of it.

use super::*;

#[tokio::test]
async fn releases_are_signed_off_by_named_signers_and_hidden_from_contacts() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let agent = Some(s.agent_token.as_str());
        let contact_a = Some(s.contact_a_token.as_str());
        let admin_id = s.api(Method::GET, "/api/v1/me", admin, None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let project_a =
            s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json()["items"][0]["id"].as_str().unwrap().to_string();
        for title in ["ERP 2.4 配置变更", "Mail 3.0 cut-over", "Mail 3.0 DNS"] {
            let r = s
                .api(
                    Method::POST,
                    "/api/v1/changes",
                    agent,
                    Some(json!({"project_id": project_a, "change_type": "normal", "title": title})),
                    &[],
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        }
        let r = s
            .api(
                Method::POST,
                "/api/v1/releases",
                agent,
                Some(json!({"project_id": project_a, "title": "x", "version": "1", "change_ids": ["CHG-000404"]})),
                &[],
            )
            .await;
        assert_eq!(r.json()["details"][0]["code"], "unknown_change", "{}", r.text());
        let body = json!({"project_id": project_a, "title": "ERP 2.4 上线", "version": "2.4.0", "change_ids": ["chg-000001"],
                          "rollback_plan": "Restore the snapshot"});
        let r = s.api(Method::POST, "/api/v1/releases", agent, Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let rel = r.json();
        assert_eq!(rel["number"], "REL-000001");
        let base = format!("/api/v1/releases/{}", rel["id"].as_str().unwrap());
        let r =
            s.api(Method::POST, "/api/v1/releases", agent, Some(json!({"project_id": project_a, "title": "", "version": "1"})), &[]).await;
        assert_eq!((r.status, r.json()["details"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("title")));

        let plan = json!({"checklist": ["Build archived"], "expected": [{"key": "ok", "description": "green", "target": "met"}],
                          "signer_ids": [admin_id]});
        let r = s.api(Method::PUT, &format!("{base}/stages/build"), agent, Some(plan), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["stages"][0]["signers"][0]["user_id"], json!(admin_id));
        let r = s.api(Method::PUT, &format!("{base}/stages/nope"), agent, Some(json!({})), &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = s.api(Method::POST, &format!("{base}/transitions"), agent, Some(json!({"status": "in_progress"})), &[]).await;
        assert_eq!(r.json()["status"], "in_progress", "{}", r.text());
        let r = s.api(Method::PUT, &format!("{base}/stages/build/checklist/0"), agent, Some(json!({"done": true})), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = s
            .api(
                Method::POST,
                &format!("{base}/stages/build/results"),
                agent,
                Some(json!({"key": "ok", "result": "green", "met": true})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = s.api(Method::POST, &format!("{base}/stages/build/sign-off"), agent, Some(json!({})), &[]).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::CONFLICT, Some("not_a_signer")), "{}", r.text());
        let r = s.api(Method::POST, &format!("{base}/stages/test/sign-off"), admin, Some(json!({})), &[]).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "no signers named for test: {}", r.text());
        let r = s.api(Method::POST, &format!("{base}/stages/build/sign-off"), admin, Some(json!({"note": "ok"})), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["stages"][0]["signed_off_by"], json!(admin_id));
        let review = s.api(Method::GET, &format!("{base}/review"), agent, None, &[]).await.json();
        assert_eq!((review["verdict"].as_str(), review["met"].as_i64()), (Some("incomplete"), Some(1)), "{review}");
        let r = s.api(Method::POST, &format!("{base}/transitions"), agent, Some(json!({"status": "deployed"})), &[]).await;
        assert_eq!(r.json()["details"][0]["code"], "stages_not_signed_off", "{}", r.text());

        let r = s.api(Method::GET, &format!("{base}/notes?lang=zh-CN&tz=Asia/Shanghai"), agent, None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(r.header(header::CONTENT_TYPE).starts_with("text/markdown"));
        assert!(r.text().starts_with("# 发布说明：ERP 2.4 上线（2.4.0）"), "{}", r.text());
        let r = s.api(Method::GET, &format!("{base}/notes?lang=zh-CN&format=pdf"), agent, None, &[]).await;
        assert_eq!(r.header(header::CONTENT_TYPE), "application/pdf");
        let file = std::env::temp_dir().join(format!("keel-notes-{}.pdf", keel_store::new_id()));
        std::fs::write(&file, &r.body).unwrap();
        let out = std::process::Command::new("pdftotext")
            .arg("-raw")
            .arg(&file)
            .arg("-")
            .output()
            .expect("pdftotext (poppler-utils) is installed");
        let _ = std::fs::remove_file(&file);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("发布说明：ERP 2.4 上线（2.4.0）") && text.contains("REL-000001"), "{text}");
        let r = s.api(Method::GET, &format!("{base}/notes?tz=Mars/Base"), agent, None, &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        for path in [
            base.clone(),
            format!("{base}/notes"),
            "/api/v1/releases/REL-000001".into(),
            format!("{base}/review"),
            "/api/v1/releases".into(),
        ] {
            let r = s.api(Method::GET, &path, contact_a, None, &[]).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text());
        }
        let r =
            s.api(Method::POST, &format!("{base}/transitions"), contact_a, Some(json!({"status": "cancelled", "reason": "x"})), &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let (cookie, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        assert_eq!(s.page(&cookie, "/releases").await.status, StatusCode::NOT_FOUND);
        let (staff_cookie, csrf) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let form = format!("_csrf={csrf}&project_id={project_a}&title=&version=3.0&rollback_plan=typed+plan");
        let r = s.post_form(&staff_cookie, "/releases", &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(r.text().contains("typed plan") && r.text().contains("data-field=\"title\""), "{}", r.text());
        let zh = s.post_form(&format!("{staff_cookie}; keel_lang=zh-CN"), "/releases", &form).await.text();
        assert!(zh.contains("新建发布") && zh.contains("回退计划"), "{zh}");
        let form = format!("_csrf={csrf}&project_id={project_a}&title=Mail+3.0&version=3.0&change_ids=CHG-000002%0ACHG-000003");
        let r = s.post_form(&staff_cookie, "/releases", &form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let created = s.api(Method::GET, "/api/v1/releases/REL-000002", agent, None, &[]).await.json();
        let mut numbers = Vec::new();
        for id in created["change_ids"].as_array().unwrap() {
            let c = s.api(Method::GET, &format!("/api/v1/changes/{}", id.as_str().unwrap()), agent, None, &[]).await.json();
            numbers.push(c["number"].as_str().unwrap().to_string());
        }
        assert_eq!(numbers, ["CHG-000002", "CHG-000003"], "{created}");
        let page = s.page(&staff_cookie, "/releases").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.text().contains("REL-000001") && page.text().contains("ERP 2.4 上线") && page.text().contains("In progress"),
            "{}",
            page.text()
        );
        assert!(page.text().contains("href=\"/releases\""), "nav entry");
        let record = s.page(&staff_cookie, &format!("/releases/{}", rel["id"].as_str().unwrap())).await;
        assert_eq!(record.status, StatusCode::OK, "{}", record.text());
        assert!(record.text().contains("Build archived") && record.text().contains("format=pdf"), "{}", record.text());
        assert_eq!(s.page(&cookie, &format!("/releases/{}", rel["id"].as_str().unwrap())).await.status, StatusCode::NOT_FOUND);
        let r = s
            .post_form(&staff_cookie, &format!("/releases/{}/stages/test/sign-off", rel["id"].as_str().unwrap()), &format!("_csrf={csrf}"))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
        assert!(r.text().contains("You are not a named signer of this stage"), "{}", r.text());
        let r = s.post_form(&staff_cookie, &format!("/releases/{}/stages/test/sign-off", rel["id"].as_str().unwrap()), "note=x").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "CSRF is checked");
        let list = s.api(Method::GET, "/api/v1/releases?q=erp", agent, None, &[]).await.json();
        assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");

        let doc = serde_json::to_value(keel_web::openapi()).unwrap();
        for p in ["/api/v1/releases", "/api/v1/releases/{id}/stages/{stage}/sign-off", "/api/v1/releases/{id}/review"] {
            assert!(doc["paths"][p].is_object(), "{p} is documented");
        }
        let form = format!("_csrf={csrf}&status=cancelled&reason=postponed");
        let r = s.post_form(&staff_cookie, &format!("/releases/{}/transition", rel["id"].as_str().unwrap()), &form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert_eq!(s.api(Method::GET, &base, agent, None, &[]).await.json()["status"], "cancelled");
    }
}

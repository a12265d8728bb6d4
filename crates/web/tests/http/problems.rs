//! Problem management over HTTP: the API raises and moves problems, and a customer contact can
//! read neither a problem nor an unpublished known error — by API or by page — while a
//! published one reaches their portal in their language, without its root cause.

use super::*;

#[tokio::test]
async fn contacts_read_no_problem_and_only_published_known_errors() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let agent = Some(s.agent_token.as_str());
        let contact_a = Some(s.contact_a_token.as_str());
        let contact_a_id = s.api(Method::GET, "/api/v1/me", contact_a, None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let project_a =
            s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json()["items"][0]["id"].as_str().unwrap().to_string();
        let mut incidents = Vec::new();
        for title in ["VPN drops", "VPN drops again"] {
            let body = json!({"project_id": project_a, "reporter_id": contact_a_id, "title": title});
            let r = s.api(Method::POST, "/api/v1/incidents", agent, Some(body), &[]).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
            incidents.push(r.json()["number"].as_str().unwrap().to_string());
        }
        let me = s.api(Method::GET, "/api/v1/me", agent, None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let body =
            json!({"project_id": project_a, "title": "VPN drops hourly", "incident_ids": incidents, "agent_id": me, "priority": "p2"});
        let r = s.api(Method::POST, "/api/v1/problems", agent, Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let p = r.json();
        let id = p["id"].as_str().unwrap().to_string();
        assert_eq!(
            (p["number"].as_str(), p["status"].as_str(), p["source"].as_str()),
            (Some("PRB-000001"), Some("under_investigation"), Some("incident_trend"))
        );
        assert!(p["available_actions"].as_array().unwrap().contains(&json!("record_rca")));
        let linked = s.api(Method::GET, &format!("/api/v1/problems/{id}/incidents"), agent, None, &[]).await.json();
        assert_eq!(linked.as_array().unwrap().len(), 2);

        // the analysis and the known error, through the transitions endpoint
        let tr = format!("/api/v1/problems/{id}/transitions");
        for step in [
            json!({"action": "record_rca", "rca_method": "ishikawa", "findings": "fishbone", "root_cause": "SECRET firewall table too small"}),
            json!({"action": "record_workaround", "workaround": "Reconnect the client"}),
            json!({"action": "declare_known_error", "title": "VPN disconnects hourly", "symptoms": "The VPN disconnects every hour",
                   "translation_title": "VPN 每小时断开", "translation_symptoms": "VPN 每小时断开一次", "translation_workaround": "重新连接客户端"}),
        ] {
            let r = s.api(Method::POST, &tr, agent, Some(step), &[]).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        }
        let r = s.api(Method::POST, &tr, agent, Some(json!({"action": "cancel", "reason": "x"})), &[]).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_transition")));
        let r = s.api(Method::PATCH, &format!("/api/v1/problems/{id}"), agent, Some(json!({"title": "no etag"})), &[]).await;
        assert_eq!(r.status, StatusCode::PRECONDITION_REQUIRED);
        let ke = s.api(Method::GET, "/api/v1/known-errors?q=vpn%20disconnects", agent, None, &[]).await.json();
        assert_eq!(ke["items"][0]["number"], "KE-000001", "{ke}");
        let ke_id = ke["items"][0]["id"].as_str().unwrap().to_string();
        let sug = s.api(Method::GET, "/api/v1/known-errors/suggestions?title=VPN%20disconnects%20again", agent, None, &[]).await;
        assert_eq!(sug.json()[0]["number"], "KE-000001", "{}", sug.text());
        let r = s
            .api(
                Method::POST,
                &format!("/api/v1/incidents/{}/known-errors", incidents[0]),
                agent,
                Some(json!({"known_error_id": "KE-000001"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());

        // the contact: nothing of the problem, nothing of the unpublished known error
        let (cookie, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        let hidden = [
            format!("/api/v1/problems/{id}"),
            "/api/v1/problems/PRB-000001".to_string(),
            "/api/v1/problems".to_string(),
            format!("/api/v1/problems/{id}/incidents"),
            "/api/v1/problems/trend".to_string(),
            "/api/v1/known-errors".to_string(),
            format!("/api/v1/known-errors/{ke_id}"),
            "/api/v1/known-errors/suggestions?title=vpn".to_string(),
            format!("/api/v1/portal/articles/{ke_id}"),
        ];
        for path in &hidden {
            let r = s.api(Method::GET, path, contact_a, None, &[]).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text());
        }
        let r = s.api(Method::POST, &tr, contact_a, Some(json!({"action": "resolve", "resolution_notes": "x"})), &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(s.api(Method::GET, "/api/v1/portal/articles", contact_a, None, &[]).await.json(), json!([]));
        for page in [
            format!("/problems/{id}"),
            "/problems".into(),
            "/problems/trend".into(),
            format!("/known-errors/{ke_id}"),
            "/known-errors".into(),
            format!("/portal/articles/{ke_id}"),
        ] {
            let r = s.page(&cookie, &page).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{page}");
            assert!(!r.text().contains("SECRET") && !r.text().contains("VPN disconnects"), "{page}");
        }
        let ticket = s.page(&cookie, &format!("/incidents/{}", incidents[0])).await;
        assert_eq!(ticket.status, StatusCode::OK);
        assert!(!ticket.text().contains("PRB-000001") && !ticket.text().contains("KE-000001"), "links are staff-only");

        // published: the article in the contact's language, never the root cause
        let r = s.api(Method::POST, &tr, agent, Some(json!({"action": "set_publication", "publish_to_portal": true})), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let list = s.api(Method::GET, "/api/v1/portal/articles?lang=zh-CN", contact_a, None, &[]).await;
        assert_eq!(list.json()[0]["title"], "VPN 每小时断开", "{}", list.text());
        let art = s.api(Method::GET, &format!("/api/v1/portal/articles/{ke_id}?lang=en"), contact_a, None, &[]).await;
        assert_eq!((art.status, art.json()["workaround"].as_str()), (StatusCode::OK, Some("Reconnect the client")));
        assert!(!art.text().contains("SECRET") && !list.text().contains("SECRET"));
        let page = s.page(&cookie, &format!("/portal/articles/{ke_id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text().contains("Reconnect the client") && !page.text().contains("SECRET"), "{}", s._db.label);
        let index = s.page(&cookie, "/portal/articles").await;
        assert!(index.text().contains("VPN disconnects hourly"));
        // still no problem and no known error record for the contact
        for path in [format!("/api/v1/problems/{id}"), format!("/api/v1/known-errors/{ke_id}")] {
            assert_eq!(s.api(Method::GET, &path, contact_a, None, &[]).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        assert_eq!(s.page(&cookie, &format!("/known-errors/{ke_id}")).await.status, StatusCode::NOT_FOUND);

        // staff pages
        let (staff_cookie, _) = s.browser_login("agent@keel.test", "correct horse battery").await;
        for page in [
            format!("/problems/{id}"),
            "/problems".into(),
            "/problems/trend".into(),
            format!("/known-errors/{ke_id}"),
            "/known-errors".into(),
        ] {
            let r = s.page(&staff_cookie, &page).await;
            assert_eq!(r.status, StatusCode::OK, "{page}: {}", r.text());
        }
        let p = s.page(&staff_cookie, &format!("/problems/{id}")).await.text();
        assert!(p.contains("SECRET firewall") && p.contains(&incidents[0]) && p.contains("KE-000001"));
        let t = s.page(&staff_cookie, &format!("/incidents/{}", incidents[0])).await.text();
        assert!(t.contains("PRB-000001") && t.contains("KE-000001"), "the incident page names its problem and known error");
        let sug = s.page(&staff_cookie, "/known-errors/suggest?title=VPN+disconnects").await;
        assert!(sug.text().contains("KE-000001"), "{}", sug.text());
        let _ = (&s.org_a, &s.project_b);
    }
}

#[tokio::test]
async fn the_problem_pages_keep_typed_values_and_show_errors_in_place_in_both_languages() {
    for s in sites().await {
        let agent = Some(s.agent_token.as_str());
        let project_a = s.api(Method::GET, "/api/v1/projects?q=A1", Some(&s.admin_token), None, &[]).await.json()["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let me = s.api(Method::GET, "/api/v1/me", agent, None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let mut numbers = Vec::new();
        for title in ["Mail slow", "Mail slow again"] {
            let r = s
                .api(
                    Method::POST,
                    "/api/v1/incidents",
                    agent,
                    Some(json!({"project_id": project_a, "reporter_id": me, "title": title})),
                    &[],
                )
                .await;
            numbers.push(r.json()["number"].as_str().unwrap().to_string());
        }
        let (cookie, csrf) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let form = format!("_csrf={csrf}&project_id={project_a}&title=&description=typed+text&incident_ids={}", numbers.join("%2C"));
        let r = s.post_form(&cookie, "/problems", &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(r.text().contains("typed text") && r.text().contains("data-field=\"title\""), "{}", s._db.label);
        let form = format!("_csrf={csrf}&project_id={project_a}&title=Mail+slow&incident_ids={}", numbers.join("%2C"));
        let r = s.post_form(&cookie, "/problems", &form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let href = r.header(header::LOCATION);
        let id = href.trim_start_matches("/problems/").split('?').next().unwrap().to_string();
        let zh = s.page(&format!("{cookie}; keel_lang=zh-CN"), &format!("/problems/{id}")).await.text();
        assert!(zh.contains("事件趋势") && zh.contains("开始调查") && zh.contains(&numbers[1]), "{zh}");
        let tr = format!("/problems/{id}/transition");
        let r = s.post_form(&cookie, &tr, &format!("_csrf={csrf}&action=investigate&agent_id={me}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = s.post_form(&cookie, &tr, &format!("_csrf={csrf}&action=record_rca&rca_method=ishikawa&root_cause=typed+cause")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("data-field=\"findings\"") && r.text().contains("typed cause"), "{}", r.text());
        let r = s.post_form(&cookie, &format!("/problems/{id}/incidents"), &format!("_csrf={csrf}&incident_ids=INC-999999")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("data-field=\"incident_ids\""));
        let r = s
            .post_form(&cookie, &format!("/problems/{id}"), &format!("_csrf={csrf}&title=Mail+slow+everywhere&priority=p1&description="))
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let p = s.api(Method::GET, &format!("/api/v1/problems/{id}"), agent, None, &[]).await.json();
        assert_eq!((p["title"].as_str(), p["priority"].as_str()), (Some("Mail slow everywhere"), Some("p1")));
        let r =
            s.post_form(&cookie, &format!("/problems/{id}"), &format!("_csrf={csrf}&title=Mail&priority=p1&ci_ids=nope&ci_ids=gone")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "unknown CIs are refused");
        let r = s.post_form(&cookie, &format!("/problems/{id}"), &format!("_csrf={csrf}&title=&priority=p9")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("data-field=\"title\"") && r.text().contains("data-field=\"priority\""), "{}", r.text());
        // the ticket page links a further incident to the problem by its number
        let third = s
            .api(
                Method::POST,
                "/api/v1/incidents",
                agent,
                Some(json!({"project_id": project_a, "reporter_id": me, "title": "Mail slow thrice"})),
                &[],
            )
            .await
            .json();
        let third_id = third["id"].as_str().unwrap();
        let r = s.post_form(&cookie, &format!("/incidents/{third_id}/problems"), &format!("_csrf={csrf}&problem_id=PRB-000001")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let linked = s.api(Method::GET, &format!("/api/v1/problems/{id}/incidents"), agent, None, &[]).await.json();
        assert_eq!(linked.as_array().unwrap().len(), 3, "{linked}");
        let r = s.post_form(&cookie, &format!("/incidents/{third_id}/problems"), &format!("_csrf={csrf}&problem_id=PRB-999999")).await;
        assert!(r.header(header::LOCATION).contains("flash=problem-not-found"));
        // the trend view offers to raise a problem once a project is chosen
        let t = s.page(&cookie, &format!("/problems/trend?dimension=category&bucket=month&periods=3&project_id={project_a}")).await;
        assert_eq!(t.status, StatusCode::OK);
        assert!(t.text().contains("Raise a problem from these incidents"), "{}", t.text());
        let t = s.page(&cookie, "/problems/trend?periods=0").await;
        assert!(t.text().contains("data-field=\"periods\""));
        // the incident form asks the known error database while the agent types
        let f = s.page(&cookie, "/incidents/new").await.text();
        assert!(f.contains("hx-get=\"/known-errors/suggest\""));
    }
}

//! The new-incident form and API name affected configuration items — only those the caller
//! may see — and the "does this match a known error?" panel ranks a known error of the same CI
//! above a text match and says why, in both languages; a contact is only ever offered the
//! known errors published on the portal for their organisation.

use super::*;

async fn created(s: &Site, token: Option<&str>, path: &str, body: Value) -> String {
    let r = s.api(Method::POST, path, token, Some(body), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

/// A proactive problem with a workaround and its known error, optionally published.
async fn known_error(s: &Site, token: Option<&str>, project: &str, title: &str, cis: &[&str], publish: bool) {
    let me = s.api(Method::GET, "/api/v1/me", token, None, &[]).await.json()["id"].as_str().unwrap().to_string();
    let body = json!({"project_id": project, "title": title, "ci_ids": cis, "agent_id": me, "source": "proactive"});
    let id = created(s, token, "/api/v1/problems", body).await;
    let tr = format!("/api/v1/problems/{id}/transitions");
    let mut steps = vec![
        json!({"action": "record_workaround", "workaround": "Restart the service"}),
        json!({"action": "declare_known_error", "title": title, "symptoms": format!("{title}, every morning")}),
    ];
    if publish {
        steps.push(json!({"action": "set_publication", "publish_to_portal": true}));
    }
    for step in steps {
        let r = s.api(Method::POST, &tr, token, Some(step), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
}

#[tokio::test]
async fn the_incident_form_names_visible_cis_and_the_suggestions_say_why_they_match() {
    for s in sites().await {
        s.app.seed_cmdb_classes().await.unwrap();
        let admin = Some(s.admin_token.as_str());
        let agent = Some(s.agent_token.as_str());
        let contact = Some(s.contact_a_token.as_str());
        let label = s._db.label;
        let project_a =
            s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json()["items"][0]["id"].as_str().unwrap().to_string();
        let contact_id = s.api(Method::GET, "/api/v1/me", contact, None, &[]).await.json()["id"].as_str().unwrap().to_string();
        let server = |name: &str, project: &str| json!({"class_key": "server", "name": name, "project_id": project, "attributes": {"hostname": name}});
        let srv = created(&s, admin, "/api/v1/cis", server("srv-mail-01", &project_a)).await;
        let foreign = created(&s, admin, "/api/v1/cis", server("beta-db-01", &s.project_b)).await;

        // the API: a CI of another organisation's project is refused by its position
        let incident = |cis: Vec<&str>| json!({"project_id": project_a, "reporter_id": contact_id, "title": "Mail down", "ci_ids": cis});
        let r = s.api(Method::POST, "/api/v1/incidents", agent, Some(incident(vec![&srv, &foreign])), &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{label}: {}", r.text());
        assert_eq!(
            (r.json()["details"][0]["field"].as_str(), r.json()["details"][0]["code"].as_str()),
            (Some("ci_ids[1]"), Some("unknown_ci"))
        );
        let id = created(&s, agent, "/api/v1/incidents", incident(vec![&srv])).await;
        let links = s.api(Method::GET, &format!("/api/v1/incidents/{id}/links"), agent, None, &[]).await.json();
        assert_eq!((links[0]["target_type"].as_str(), links[0]["target_id"].as_str()), (Some("ci"), Some(srv.as_str())), "{links}");
        let r = s
            .api(Method::POST, "/api/v1/incidents", contact, Some(json!({"project_id": project_a, "title": "x", "ci_ids": [srv]})), &[])
            .await;
        assert_eq!((r.status, r.json()["details"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_ci")), "{label}");

        // the form: the CIs come from a type-ahead that keeps those chosen; a foreign one is
        // refused on the field, what was chosen stays chosen
        let (cookie, csrf) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let form = s.page(&cookie, "/incidents/new").await.text();
        assert!(
            form.contains("hx-get=\"/typeahead/cis\"")
                && form.contains("hx-include=\"#f-title, #f-description, #f-ci_ids, #f-category_id\"")
        );
        let found = s.page(&cookie, &format!("/typeahead/cis?ci_ids_find=beta&ci_ids={srv}")).await.text();
        assert!(found.contains(&format!("<option value=\"{srv}\" selected>srv-mail-01 (server)")), "{label}: {found}");
        assert!(!found.contains("beta-db-01"), "{label}: the agent does not see project B's CIs: {found}");
        let post = format!("_csrf={csrf}&project_id={project_a}&kind=incident&reporter_id={contact_id}&channel=phone&title=Mail+down");
        let r = s.post_form(&cookie, "/incidents", &format!("{post}&ci_ids={srv}&ci_ids={foreign}")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{label}");
        let page = r.text();
        assert!(page.contains("data-field=\"ci_ids\"") && page.contains("No such configuration item."), "{page}");
        assert!(page.contains(&format!("<option value=\"{srv}\" selected>srv-mail-01 (server)")), "{page}");
        let r = s.post_form(&cookie, "/incidents", &format!("{post}&ci_ids={srv}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());

        // a known error of the CI outranks a text match, each saying why
        known_error(&s, agent, &project_a, "Mail is slow", &[], true).await;
        known_error(&s, agent, &project_a, "Kernel panics after patching", &[&srv], false).await;
        let sug = s.api(Method::GET, &format!("/api/v1/known-errors/suggestions?title=mail%20slow&ci_ids={srv}"), agent, None, &[]).await;
        let got: Vec<(String, Value)> =
            sug.json().as_array().unwrap().iter().map(|k| (k["number"].as_str().unwrap().to_string(), k["matched_by"].clone())).collect();
        assert_eq!(got, [("KE-000002".to_string(), json!(["same_ci"])), ("KE-000001".to_string(), json!(["text"]))], "{label}");
        let panel = s.page(&cookie, &format!("/known-errors/suggest?title=mail+slow&ci_ids={srv}")).await.text();
        let (ci_at, text_at) = (panel.find("KE-000002").unwrap(), panel.find("KE-000001").unwrap());
        assert!(ci_at < text_at && panel.contains("Matched by: same CI") && panel.contains("Matched by: text"), "{panel}");
        let zh = s.page(&format!("{cookie}; keel_lang=zh-CN"), &format!("/known-errors/suggest?title=mail+slow&ci_ids={srv}")).await.text();
        assert!(zh.contains("匹配依据：相同配置项") && zh.contains("匹配依据：文本"), "{zh}");
        // without the CI, only the text matches
        let panel = s.page(&cookie, "/known-errors/suggest?title=mail+slow").await.text();
        assert!(panel.contains("KE-000001") && !panel.contains("KE-000002"), "{panel}");

        // the contact: the published article only, never the CI's unpublished known error
        let (contact_cookie, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        let portal = s.page(&contact_cookie, "/incidents/new").await.text();
        assert!(portal.contains("hx-get=\"/known-errors/suggest\"") && !portal.contains("f-ci_ids-find"), "{portal}");
        let panel = s.page(&contact_cookie, &format!("/known-errors/suggest?title=mail+slow+kernel+panics&ci_ids={srv}")).await.text();
        assert!(panel.contains("href=\"/portal/articles/") && panel.contains("KE-000001"), "{label}: {panel}");
        assert!(!panel.contains("KE-000002") && !panel.contains("Kernel") && !panel.contains("same CI"), "{label}: {panel}");
        assert!(!panel.contains("<form"), "a contact links nothing");
        assert_eq!(s.page(&contact_cookie, &format!("/typeahead/cis?ci_ids_find=srv&ci_ids={srv}")).await.status, StatusCode::NOT_FOUND);
        let r = s.api(Method::GET, &format!("/api/v1/known-errors/suggestions?title=kernel&ci_ids={srv}"), contact, None, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}

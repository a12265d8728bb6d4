//! Change administration pages: freezes declared and ended, standard change templates
//! created, edited and retired, approvals delegated, the change-control setting, and the
//! "awaiting my approval" list with approve/reject from the change page. Refused input comes
//! back in place; contacts and agents without the right are refused.

use super::release_forms::{my_id, project_a};
use super::*;

fn local(t: chrono::DateTime<chrono::Utc>) -> String {
    urlenc(&t.format("%Y-%m-%dT%H:%M").to_string())
}

#[tokio::test]
async fn freezes_templates_and_change_control_are_administered_in_place() {
    for s in sites().await {
        let (admin, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let (agent, acsrf) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let (contact, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        for p in ["/changes/freezes", "/changes/templates", "/admin/change-control"] {
            assert_eq!(s.page(&agent, p).await.status, StatusCode::FORBIDDEN, "{p}");
            assert_eq!(s.page(&contact, p).await.status, StatusCode::NOT_FOUND, "{p}");
            assert_eq!(s.page(&admin, p).await.status, StatusCode::OK, "{p}");
        }
        let r = s
            .post_form(&agent, "/changes/freezes", &format!("_csrf={acsrf}&name=x&starts_at=2030-01-01T00:00&ends_at=2030-01-02T00:00"))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

        // freezes: a bad date is named, the typed name kept
        let name = urlenc("春节封网");
        let r = s.post_form(&admin, "/changes/freezes", &format!("_csrf={csrf}&name={name}&starts_at=2030-02-30T00:00&ends_at=")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let html = r.text();
        assert!(
            html.contains("data-field=\"starts_at\"") && html.contains("data-field=\"ends_at\"") && html.contains("春节封网"),
            "{html}"
        );
        let now = chrono::Utc::now();
        let (from, to) = (local(now - chrono::Duration::hours(2)), local(now + chrono::Duration::days(3)));
        let r = s.post_form(&admin, "/changes/freezes", &format!("_csrf={csrf}&name={name}&starts_at={from}&ends_at={to}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let html = s.page(&admin, "/changes/freezes").await.text();
        assert!(html.contains("春节封网") && html.contains("/end\""), "{html}");
        let freeze = html.split("/changes/freezes/").nth(1).unwrap().split('/').next().unwrap().to_string();
        let r = s.post_form(&agent, &format!("/changes/freezes/{freeze}/end"), &format!("_csrf={acsrf}")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = s.post_form(&admin, &format!("/changes/freezes/{freeze}/end"), &format!("_csrf={csrf}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert!(!s.page(&admin, "/changes/freezes").await.text().contains("/end\""), "ended");

        // templates: created, edited, retired
        let form = |name: &str| {
            format!(
                "_csrf={csrf}&name={}&implementation_plan={}&back_out_plan=restore&risk_level=low",
                urlenc(name),
                urlenc("Rotate the certificate / 轮换证书")
            )
        };
        let r = s.post_form(&admin, "/changes/templates", &form("")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(r.text().contains("data-field=\"name\"") && r.text().contains("轮换证书"), "{}", r.text());
        let r = s.post_form(&admin, "/changes/templates", &form("Certificate rotation")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let list = s.api(Method::GET, "/api/v1/change-templates", Some(&s.admin_token), None, &[]).await.json();
        let t = list.as_array().map(|a| a[0].clone()).unwrap_or_else(|| list["items"][0].clone());
        let tid = t["id"].as_str().unwrap().to_string();
        let edit = s.page(&admin, &format!("/changes/templates/{tid}")).await;
        assert!(edit.status == StatusCode::OK && edit.text().contains("Certificate rotation"), "{}", edit.text());
        let r = s.post_form(&admin, &format!("/changes/templates/{tid}"), &format!("{}&_version=1", form("Certificate rotation v2"))).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = s.post_form(&admin, &format!("/changes/templates/{tid}"), &format!("{}&_version=1", form("stale"))).await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "a stale edit is refused: {}", r.text());
        let r = s.post_form(&admin, &format!("/changes/templates/{tid}/retire"), &format!("_csrf={csrf}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let html = s.page(&admin, "/changes/templates").await.text();
        assert!(html.contains("Certificate rotation v2") && html.contains(&format!("/changes/templates/{tid}/restore")), "{html}");
        let r = s.post_form(&agent, &format!("/changes/templates/{tid}"), &format!("_csrf={acsrf}&name=x")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        // the change-control setting
        let r = s.post_form(&admin, "/admin/change-control", &format!("_csrf={csrf}&mode=sometimes")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(r.text().contains("data-field=\"mode\""), "{}", r.text());
        let r = s.post_form(&admin, "/admin/change-control", &format!("_csrf={csrf}&mode=warn")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert!(s.page(&admin, "/admin/change-control").await.text().contains("<option value=\"warn\" selected>"));
        assert_eq!(s.app.change_control_mode().await.unwrap().as_str(), "warn");
        let r = s.post_form(&agent, "/admin/change-control", &format!("_csrf={acsrf}&mode=off")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let zh = s.page(&format!("{admin}; keel_lang=zh-CN"), "/changes/freezes").await.text();
        assert!(zh.contains("变更冻结期") && zh.contains("宣布冻结期"), "{zh}");
    }
}

#[tokio::test]
async fn approvals_await_the_approver_and_their_delegate() {
    for s in sites().await {
        let agent = Some(s.agent_token.as_str());
        let admin_id = my_id(&s, &s.admin_token).await;
        let agent_id = my_id(&s, &s.agent_token).await;
        let project = project_a(&s).await;
        let body = json!({
            "project_id": project, "change_type": "normal", "title": "防火墙升级",
            "implementation_plan": "upgrade", "back_out_plan": "downgrade",
            "approval_steps": [{"name": "CAB", "approvers": [{"kind": "user", "id": admin_id}], "quorum": "any"}]
        });
        let r = s.api(Method::POST, "/api/v1/changes", agent, Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let tr = format!("/api/v1/changes/{id}/transitions");
        assert_eq!(s.api(Method::POST, &tr, agent, Some(json!({"to": "submitted"})), &[]).await.status, StatusCode::OK);
        let q = s.api(Method::GET, "/api/v1/change-risk-questionnaire", agent, None, &[]).await.json();
        let answers: serde_json::Map<String, Value> = q["questions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| (q["key"].as_str().unwrap().to_string(), q["answers"][0]["key"].clone()))
            .collect();
        let r = s.api(Method::PUT, &format!("/api/v1/changes/{id}/risk"), agent, Some(json!({"answers": answers})), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(s.api(Method::POST, &tr, agent, Some(json!({"to": "assessed"})), &[]).await.status, StatusCode::OK);

        let (admin, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let (agent_c, acsrf) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let (contact, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        let html = s.page(&admin, "/changes/awaiting").await.text();
        assert!(html.contains("CHG-000001") && html.contains("防火墙升级") && html.contains("href=\"/changes/awaiting\""), "{html}");
        assert!(!s.page(&agent_c, "/changes/awaiting").await.text().contains("CHG-000001"), "not the agent's vote");
        let c = s.page(&contact, "/changes/awaiting").await;
        assert!(c.status == StatusCode::OK && !c.text().contains("CHG-000001"));
        // the home page counts what waits for the approver, in both languages, and links the list
        let home = s.page(&admin, "/").await.text();
        let count = |html: &str| {
            let at = html.find("data-testid=\"awaiting-approval\"")?;
            let rest = &html[at..html[at..].find("</p>").map_or(html.len(), |e| at + e)];
            Some((rest.contains("href=\"/changes/awaiting\""), rest.chars().filter(char::is_ascii_digit).collect::<String>()))
        };
        assert_eq!(count(&home), Some((true, "1".to_string())), "{home}");
        assert!(home.contains("Changes awaiting your approval"), "{home}");
        let zh = s.page(&format!("{admin}; keel_lang=zh-CN"), "/").await.text();
        assert!(zh.contains("待您审批的变更") && count(&zh) == Some((true, "1".to_string())), "{zh}");
        assert_eq!(count(&s.page(&agent_c, "/").await.text()), None, "nothing waits for the agent");

        // delegations: the agent may not delegate for someone else; the admin delegates to the agent
        assert_eq!(s.page(&contact, "/changes/delegations").await.status, StatusCode::NOT_FOUND);
        let now = chrono::Utc::now();
        let (from, to) = (local(now - chrono::Duration::hours(1)), local(now + chrono::Duration::days(2)));
        let r = s
            .post_form(
                &agent_c,
                "/changes/delegations",
                &format!("_csrf={acsrf}&delegator_id={admin_id}&delegate_id={agent_id}&starts_at={from}&ends_at={to}"),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        let r = s
            .post_form(&admin, "/changes/delegations", &format!("_csrf={csrf}&delegate_id={agent_id}&starts_at={to}&ends_at={from}"))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(r.text().contains("data-field=\"ends_at\""), "{}", r.text());
        let r = s
            .post_form(&admin, "/changes/delegations", &format!("_csrf={csrf}&delegate_id={agent_id}&starts_at={from}&ends_at={to}"))
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert!(s.page(&agent_c, "/changes/delegations").await.text().contains("admin"), "the delegate sees it");
        assert!(s.page(&agent_c, "/changes/awaiting").await.text().contains("CHG-000001"), "the delegate is awaited too");

        // reject needs a reason, shown next to the field with the page; approve from the page
        let r = s.post_form(&admin, &format!("/changes/{id}/decide"), &format!("_csrf={csrf}&verdict=reject&reason=")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(r.text().contains("data-field=\"reason\""), "{}", r.text());
        let r = s.post_form(&admin, &format!("/changes/{id}/decide"), &format!("_csrf={csrf}&verdict=approve&reason=ok")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert!(!s.page(&admin, "/changes/awaiting").await.text().contains("CHG-000001"), "decided");
        assert_eq!(count(&s.page(&admin, "/").await.text()), None, "decided: no count on the home page");
        assert!(!s.page(&agent_c, "/changes/awaiting").await.text().contains("CHG-000001"), "decided");
        let c = s.api(Method::GET, &format!("/api/v1/changes/{id}"), agent, None, &[]).await.json();
        assert_eq!(c["status"], "approved", "{c}");
    }
}

//! Service level management (§6.1) on tickets through the HTTP surface: the ticket's `sla`
//! sub-resource, escalation rules, the breaching-soon filter, the SLA panel of the ticket page
//! and the attainment report as JSON, CSV (with Content-Disposition) and page.

use super::*;

#[tokio::test]
async fn ticket_sla_rules_and_the_attainment_csv() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let sm_u = s
            .app
            .create_user(
                &s.admin,
                NewUser {
                    email: "sm@keel.test".into(),
                    display_name: "Service manager".into(),
                    password: Some("correct horse battery".into()),
                    roles: vec![Role::ServiceManager],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let sm_p = principal(&s.app, &sm_u.id).await;
        let sm_token = s.app.create_api_token(&sm_p, "t", None).await.unwrap().0;
        let sm = Some(sm_token.as_str());
        let projects = s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json();
        let project_a = projects["items"][0]["id"].as_str().unwrap().to_string();
        let calendar = s.app.create_china_calendar(&sm_p, "中国大陆").await.unwrap().id;
        let sla = s
            .app
            .create_sla(
                &sm_p,
                keel_app::service_level::SlaInput {
                    name: "A1 SLA".into(),
                    project_id: project_a.clone(),
                    calendar_id: calendar,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id;
        for a in [keel_domain::sla::agreement::SlaAction::Approve, keel_domain::sla::agreement::SlaAction::Activate] {
            s.app.sla_action(&sm_p, &sla, a, None).await.unwrap();
        }
        // escalation rules through the API
        let rules = format!("/api/v1/slas/{sla}/escalation-rules");
        let body = json!({"target_kind": "resolution", "percent": 75, "action": "notify", "audience": [{"to": "assignee"}]});
        let r = s.api(Method::POST, &rules, sm, Some(body.clone()), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let rule_id = r.json()["id"].as_str().unwrap().to_string();
        assert_eq!(s.api(Method::POST, &rules, Some(&s.agent_token), Some(body), &[]).await.status, StatusCode::FORBIDDEN);
        let r = s.api(Method::POST, &rules, sm, Some(json!({"target_kind": "resolution", "percent": 42, "action": "notify"})), &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(s.api(Method::GET, &rules, sm, None, &[]).await.json().as_array().unwrap().len(), 1);

        // a ticket gets its clocks in the same transaction as its creation
        let me = s.api(Method::GET, "/api/v1/me", Some(&s.contact_a_token), None, &[]).await.json();
        let r = s
            .api(
                Method::POST,
                "/api/v1/incidents",
                admin,
                Some(json!({"project_id": project_a, "reporter_id": me["id"], "title": "VPN 断开", "impact": "high", "urgency": "high"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let r = s.api(Method::GET, &format!("/api/v1/incidents/{id}/sla"), admin, None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let body = r.json();
        let kinds: Vec<&str> = body["sla"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, vec!["first_response", "resolution"], "{}", s._db.label);
        assert_eq!(body["sla"][0]["sla_id"], sla.as_str());
        assert_eq!(body["sla"][1]["priority"], "p1");
        assert!(body["sla"][1]["due_at"].is_i64());
        // the contact reads their ticket's clocks; another organisation's caller would get 404
        assert_eq!(
            s.api(Method::GET, &format!("/api/v1/incidents/{id}/sla"), Some(&s.contact_a_token), None, &[]).await.status,
            StatusCode::OK
        );
        // a public reply meets the first response
        let r = s
            .api(
                Method::POST,
                &format!("/api/v1/incidents/{id}/comments"),
                admin,
                Some(json!({"visibility": "public", "body": "在处理"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let body = s.api(Method::GET, &format!("/api/v1/incidents/{id}/sla"), admin, None, &[]).await.json();
        assert_eq!(body["sla"][0]["state"], "met", "{}", s._db.label);
        // breaching soon: a list filter that answers
        let r = s.api(Method::GET, "/api/v1/incidents?breaching_soon=true", admin, None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());

        // the attainment report: JSON, CSV with its file name, refused to agents
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        let q = format!("from={today}&to={today}");
        let r = s.api(Method::GET, &format!("/api/v1/reports/sla-attainment?{q}"), admin, None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["report"]["total"]["met"], 1, "{}", s._db.label);
        let r = s.api(Method::GET, &format!("/api/v1/reports/sla-attainment.csv?{q}"), admin, None, &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.header(header::CONTENT_TYPE).starts_with("text/csv"));
        assert_eq!(r.header(header::CONTENT_DISPOSITION), format!("attachment; filename=\"sla-attainment-{today}-{today}.csv\""));
        let csv = r.text();
        assert!(csv.starts_with("section,key,label,met,breached,percent_met\n"), "{csv}");
        assert!(csv.contains("total,all,all,1,0,100.0") && csv.contains("priority,p1,P1,1,0,100.0"), "{csv}");
        assert_eq!(
            s.api(Method::GET, &format!("/api/v1/reports/sla-attainment.csv?{q}"), Some(&s.agent_token), None, &[]).await.status,
            StatusCode::FORBIDDEN
        );
        let contact = s.api(Method::GET, &format!("/api/v1/reports/sla-attainment?{q}"), Some(&s.contact_a_token), None, &[]).await;
        assert_eq!(contact.json()["report"]["total"]["met"], 1);
        let r = s.api(Method::GET, "/api/v1/reports/sla-attainment?from=2026-13-01&to=x", admin, None, &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

        // pages: the ticket's SLA panel, the queue's time-left column, the rules and the report
        let (cookie, _) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let page = s.page(&cookie, &format!("/incidents/{id}")).await.text();
        assert!(page.contains("data-testid=\"sla\"") && page.contains("data-state=\"met\""), "{page}");
        let queue = s.page(&cookie, "/incidents?view=open&breaching=1").await;
        assert_eq!(queue.status, StatusCode::OK);
        assert_eq!(s.page(&cookie, &format!("/slas/{sla}/escalations")).await.status, StatusCode::OK);
        let report = s.page(&cookie, &format!("/reports/sla-attainment?{q}")).await;
        assert_eq!(report.status, StatusCode::OK);
        assert!(report.text().contains("/api/v1/reports/sla-attainment.csv?"));
        let r = s.api(Method::DELETE, &format!("{rules}/{rule_id}"), sm, None, &[]).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
}

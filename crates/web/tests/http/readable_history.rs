//! A record's history shows what a reader can read: a change's planned window as dates in the
//! reader's format and zone, its approval steps as sentences, its statuses translated — in
//! both languages, never the stored JSON or Unix milliseconds.

use super::*;

/// 2027-03-01 02:00 and 06:30 UTC, then 2027-03-02 02:00 UTC (the test readers' zone is UTC).
const START: i64 = 1_803_866_400_000;
const END: i64 = 1_803_882_600_000;
const LATER: i64 = 1_803_952_800_000;

#[tokio::test]
async fn the_change_history_shows_dates_approval_steps_and_statuses_readably() {
    for s in sites().await {
        let admin = Some(s.admin_token.as_str());
        let agent = Some(s.agent_token.as_str());
        let label = s._db.label;
        let project_a =
            s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json()["items"][0]["id"].as_str().unwrap().to_string();
        let mut approvers = vec![];
        for token in [admin, agent] {
            approvers.push(s.api(Method::GET, "/api/v1/me", token, None, &[]).await.json()["id"].as_str().unwrap().to_string());
        }
        let third = s
            .app
            .create_user(
                &s.admin,
                NewUser { email: "cab@keel.test".into(), display_name: "cab".into(), roles: vec![Role::CabMember], ..Default::default() },
            )
            .await
            .unwrap();
        approvers.push(third.id);
        let body = json!({
            "project_id": project_a, "change_type": "normal", "title": "Move the mail server",
            "implementation_plan": "move", "back_out_plan": "move back", "planned_start": START, "planned_end": END,
            "approval_steps": [{"name": "CAB", "quorum": "at_least", "quorum_n": 2,
                "approvers": approvers.iter().map(|a| json!({"kind": "user", "id": a})).collect::<Vec<_>>()}]
        });
        let r = s.api(Method::POST, "/api/v1/changes", agent, Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/changes/{id}");
        let etag = s.api(Method::GET, &path, agent, None, &[]).await.header(header::ETAG);
        let r =
            s.api(Method::PATCH, &path, agent, Some(json!({"planned_start": START, "planned_end": LATER})), &[("if-match", &etag)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = s.api(Method::POST, &format!("{path}/transitions"), agent, Some(json!({"to": "submitted"})), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());

        let (cookie, _) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let page = s.page(&cookie, &format!("/changes/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        let html = page.text();
        let history = &html[html.find("class=\"grid history\"").expect("a history table")..];
        for shown in
            ["1 Mar 2027 02:00", "1 Mar 2027 06:30", "2 Mar 2027 02:00", "Step 1: CAB — 2 of 3", "Draft → Submitted", "Approval steps"]
        {
            assert!(history.contains(shown), "{label}: {shown} in {history}");
        }
        for raw in [START.to_string(), END.to_string(), LATER.to_string(), "quorum_rule".into(), "draft_to_submitted".into()] {
            assert!(!history.contains(&raw), "{label}: {raw} in {history}");
        }
        let zh = s.page(&format!("{cookie}; keel_lang=zh-CN"), &format!("/changes/{id}")).await.text();
        let history = &zh[zh.find("class=\"grid history\"").unwrap()..];
        for shown in ["2027年3月1日 02:00", "2027年3月2日 02:00", "第 1 步：CAB — 3 人中 2 人", "审批步骤"] {
            assert!(history.contains(shown), "{label}: {shown} in {history}");
        }
    }
}

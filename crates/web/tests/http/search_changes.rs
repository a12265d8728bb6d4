//! Search over changes and releases through the HTTP surface: the API's `type` filter and
//! facets, the results page in Chinese linking to the records, and a customer contact who
//! finds none of them.

use super::*;
use crate::search::with_search;

#[tokio::test]
async fn changes_and_releases_are_searchable_by_staff_and_never_by_contacts() {
    for s in sites().await {
        let (s, dir) = with_search(s).await;
        let (admin, agent) = (Some(s.admin_token.as_str()), Some(s.agent_token.as_str()));
        let contact_a = Some(s.contact_a_token.as_str());
        let project_a =
            s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json()["items"][0]["id"].as_str().unwrap().to_string();
        let body = json!({"project_id": project_a, "change_type": "normal", "title": "防火墙策略变更 firewall",
                          "reason": "开放 VPN 端口 zanzibar"});
        let r = s.api(Method::POST, "/api/v1/changes", agent, Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let change = r.json();
        let body = json!({"project_id": project_a, "title": "防火墙发布 firewall", "version": "7.1",
                          "change_ids": [change["id"]], "known_issues": ["zanzibar rules reload slowly"]});
        let r = s.api(Method::POST, "/api/v1/releases", agent, Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let release = r.json();
        s.app.follow_outbox().await.unwrap();

        let v = s.api(Method::GET, "/api/v1/search?q=zanzibar", agent, None, &[]).await.json();
        let mut by_type: Vec<(String, u64)> =
            v["by_type"].as_array().unwrap().iter().map(|f| (f["value"].as_str().unwrap().into(), f["count"].as_u64().unwrap())).collect();
        by_type.sort();
        assert_eq!((v["total"].as_u64(), by_type), (Some(2), vec![("change".into(), 1), ("release".into(), 1)]), "{v}");
        let v = s.api(Method::GET, "/api/v1/search?q=firewall&type=change", agent, None, &[]).await.json();
        assert_eq!((v["total"].as_u64(), v["items"][0]["number"].as_str()), (Some(1), Some("CHG-000001")), "{v}");
        assert_eq!(v["items"][0]["href"], json!(format!("/changes/{}", change["id"].as_str().unwrap())), "{v}");
        assert_eq!(v["by_status"], json!([{"value": "draft", "count": 1}]), "{v}");
        let v = s.api(Method::GET, "/api/v1/search?q=firewall%20type%3Arelease", agent, None, &[]).await.json();
        assert_eq!((v["total"].as_u64(), v["items"][0]["number"].as_str()), (Some(1), Some("REL-000001")), "{v}");
        assert_eq!(v["items"][0]["href"], json!(format!("/releases/{}", release["id"].as_str().unwrap())), "{v}");

        // the results page in Chinese names the types and statuses and links to the records
        let page = s.api(Method::GET, "/search?q=zanzibar", agent, None, &[("cookie", "keel_lang=zh-CN")]).await.text();
        assert!(page.contains("找到 2 条") && page.contains("变更") && page.contains("发布") && page.contains("草稿"), "{page}");
        assert!(page.contains("/changes/") && page.contains("/releases/") && page.contains("<b>zanzibar</b>"), "{page}");

        // a customer contact of the same organisation: nothing, not even counted
        for q in ["zanzibar", "firewall", "CHG-000001", "REL-000001", "type%3Achange", "type%3Arelease"] {
            let v = s.api(Method::GET, &format!("/api/v1/search?q={q}"), contact_a, None, &[]).await.json();
            assert_eq!((v["total"].as_u64(), v["by_type"].as_array().map(Vec::len)), (Some(0), Some(0)), "{q}: {v}");
        }
        let page = s.api(Method::GET, "/search?q=zanzibar", contact_a, None, &[]).await.text();
        // (the nav links every reader to /changes/awaiting: contacts may be approvers)
        let change_href = format!("/changes/{}", change["id"].as_str().unwrap());
        assert!(!page.contains("zanzibar</b>") && !page.contains(&change_href) && !page.contains("防火墙"), "{page}");
        let frag = s.api(Method::GET, "/search/suggest?q=firew", contact_a, None, &[]).await.text();
        assert!(!frag.contains("防火墙"), "{frag}");
        let frag = s.api(Method::GET, "/search/suggest?q=firew", agent, None, &[]).await.text();
        assert!(frag.contains("CHG-000001") && frag.contains("REL-000001"), "{frag}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Full-text search through the HTTP surface: the API with facets and paging, the results
//! page and the type-ahead fragment, and a contact who finds neither another organisation's
//! tickets nor internal notes.

use super::*;

/// The site with a search index of its own (built empty), in the returned directory.
pub(crate) async fn with_search(s: Site) -> (Site, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("keel-http-search-{}", uuid::Uuid::new_v4().simple()));
    let app = s.app.clone().with_search(keel_app::search::Search::at(&dir));
    app.rebuild_search_index(|_, _| {}).await.unwrap();
    let state = AppState { app: app.clone(), cfg: Arc::new(WebConfig::default()), metrics: None };
    (Site { router: keel_web::router(state), app, ..s }, dir)
}

#[tokio::test]
async fn search_api_page_and_type_ahead_show_only_what_the_caller_may_see() {
    for s in sites().await {
        let (s, dir) = with_search(s).await;
        let admin = Some(s.admin_token.as_str());
        let contact_a = Some(s.contact_a_token.as_str());
        let me = s.api(Method::GET, "/api/v1/me", contact_a, None, &[]).await.json();
        let projects = s.api(Method::GET, "/api/v1/projects?q=A1", admin, None, &[]).await.json();
        let project_a = projects["items"][0]["id"].as_str().unwrap().to_string();
        let contact_b = s
            .app
            .create_user(
                &s.admin,
                NewUser {
                    kind: AccountKind::Contact,
                    email: "contact@beta.test".into(),
                    display_name: "B".into(),
                    organization_id: Some(s.org_b.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id;
        let mut ids = Vec::new();
        for (project, reporter, title) in [
            (project_a.as_str(), me["id"].as_str().unwrap(), "打印机无法打印"),
            (s.project_b.as_str(), contact_b.as_str(), "打印机卡纸 Beta"),
        ] {
            let body = json!({"project_id": project, "reporter_id": reporter, "title": title, "description": "printer broken"});
            let r = s.api(Method::POST, "/api/v1/incidents", admin, Some(body), &[]).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
            ids.push(r.json()["id"].as_str().unwrap().to_string());
        }
        let r = s
            .api(
                Method::POST,
                &format!("/api/v1/incidents/{}/comments", ids[0]),
                admin,
                Some(json!({"visibility": "internal", "body": "SECRET hunter2"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        s.app.follow_outbox().await.unwrap();

        let r = s.api(Method::GET, "/api/v1/search?q=%E6%89%93%E5%8D%B0&limit=1", admin, None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v = r.json();
        assert_eq!((v["total"].as_u64(), v["items"].as_array().unwrap().len()), (Some(2), 1), "{v}");
        assert_eq!(v["by_type"][0], json!({"value": "incident", "count": 2}));
        let next = v["next_cursor"].as_str().unwrap().to_string();
        let r = s.api(Method::GET, &format!("/api/v1/search?q=printers&cursor={next}&limit=1"), admin, None, &[]).await.json();
        assert_eq!(r["items"].as_array().unwrap().len(), 1, "{r}");
        assert!(r["items"][0]["href"].as_str().unwrap().starts_with("/incidents/"));
        let v = s.api(Method::GET, "/api/v1/search?q=hunter2", admin, None, &[]).await.json();
        assert_eq!(v["total"], 1, "{v}");

        // the contact: their organisation's ticket only, never the internal note
        let v = s.api(Method::GET, "/api/v1/search?q=printer", contact_a, None, &[]).await.json();
        assert_eq!((v["total"].as_u64(), v["items"][0]["id"].as_str()), (Some(1), Some(ids[0].as_str())), "{v}");
        let v = s.api(Method::GET, "/api/v1/search?q=hunter2", contact_a, None, &[]).await.json();
        assert_eq!((v["total"].as_u64(), v["by_type"].as_array().map(Vec::len)), (Some(0), Some(0)), "{v}");
        let page = s.api(Method::GET, "/search?q=printer", contact_a, None, &[]).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.text().contains("打印机无法打印") && !page.text().contains("Beta") && !page.text().contains("hunter2"),
            "{}",
            page.text()
        );
        let page = s.api(Method::GET, "/search?q=hunter2", contact_a, None, &[]).await.text();
        assert!(!page.contains("hunter2</b>") && !page.contains(&ids[0]), "{page}");

        // the results page in Chinese with facets, and the type-ahead fragment
        let page =
            s.api(Method::GET, "/search?q=%E6%89%93%E5%8D%B0%E6%9C%BA+printer", admin, None, &[("cookie", "keel_lang=zh-CN")]).await.text();
        assert!(page.contains("找到 2 条") && page.contains("事件") && page.contains("<b>printer</b>"), "{page}");
        assert!(page.contains("<b>打印机</b>无法打印"), "titles are highlighted: {page}");
        let v = s.api(Method::GET, "/api/v1/search?q=%E6%89%93%E5%8D%B0%E6%9C%BA", admin, None, &[]).await.json();
        assert!(v["items"][0]["title_html"].as_str().unwrap().starts_with("<b>打印机</b>"), "{v}");
        let frag = s.api(Method::GET, "/search/suggest?q=INC-00000", admin, None, &[]).await;
        assert_eq!(frag.status, StatusCode::OK);
        assert!(
            frag.text().contains("INC-000001") && frag.text().contains("/incidents/") && !frag.text().contains("<html"),
            "{}",
            frag.text()
        );

        // errors: unknown type, over-long query, bad limit; no token
        for bad in ["/api/v1/search?q=x&type=nothing", "/api/v1/search?q=x&limit=0", "/api/v1/search?q=x&cursor=abc"] {
            let r = s.api(Method::GET, bad, admin, None, &[]).await;
            assert_eq!(
                (r.status, r.json()["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
                "{bad}: {}",
                r.text()
            );
        }
        assert_eq!(s.api(Method::GET, "/api/v1/search?q=x", None, None, &[]).await.status, StatusCode::UNAUTHORIZED);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[tokio::test]
async fn public_attachment_names_are_searchable_and_internal_ones_never() {
    for s in sites().await {
        let (s, dir) = with_search(s).await;
        let (admin, contact_a) = (s.admin_token.as_str(), Some(s.contact_a_token.as_str()));
        let id = s.ticket_a("Scanner jams").await;
        let r = s.upload(admin, &id, &[], Some(("扫描仪日志 quokka.txt", "text/plain", b"log"))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let internal = [("visibility", "internal"), ("body", "vendor dump")];
        let r = s.upload(admin, &id, &internal, Some(("wombat-dump.txt", "text/plain", b"dump"))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        s.app.follow_outbox().await.unwrap();
        for who in [Some(admin), contact_a] {
            let v = s.api(Method::GET, "/api/v1/search?q=quokka", who, None, &[]).await.json();
            assert_eq!((v["total"].as_u64(), v["items"][0]["id"].as_str()), (Some(1), Some(id.as_str())), "{v}");
            let v = s.api(Method::GET, "/api/v1/search?q=%E6%89%AB%E6%8F%8F%E4%BB%AA", who, None, &[]).await.json();
            assert_eq!(v["total"].as_u64(), Some(1), "扫描仪: {v}");
        }
        let v = s.api(Method::GET, "/api/v1/search?q=wombat", contact_a, None, &[]).await.json();
        assert_eq!((v["total"].as_u64(), v["by_type"].as_array().map(Vec::len)), (Some(0), Some(0)), "{v}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Configuration management: `POST /api/v1/cis/import` — CSV with a mapping and iTop XML files,
//! the report with bad rows by line, all or nothing; contacts may not import. The CI page's
//! graph and its vendored ECharts.

use super::*;

const MAPPING: &str = r#"
[source]
name = "legacy"

[fields]
external_ref = "Asset"
class = "Type"
name = "Name"

[attributes]
hostname = "Host"

[relations]
runs_on = "Runs on"
"#;

fn itop(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/itop-sample-data").join(file);
    let path = if path.exists() { path } else { std::path::Path::new("/work/shared/datasets/itop-sample-data").join(file) };
    json!({ "name": file, "content": std::fs::read_to_string(path).unwrap() })
}

#[tokio::test]
async fn cis_import_through_the_api_with_a_report() {
    for s in sites().await {
        s.app.seed_cmdb_classes().await.unwrap();
        let agent = Some(s.agent_token.as_str());
        let csv = "Asset,Type,Name,Host,Runs on\nA1,server,web-01,web-01,\nA2,server,web-02,,\nA3,application,shop,,A1;A7\n";
        let body = json!({ "format": "csv", "files": [{ "name": "cis.csv", "content": csv }], "mapping": MAPPING });
        let r = s.api(Method::POST, "/api/v1/cis/import", Some(s.contact_a_token.as_str()), Some(body.clone()), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        let r = s.api(Method::POST, "/api/v1/cis/import", agent, Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v = r.json();
        let bad: Vec<(u64, String)> = v["bad_rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["line"].as_u64().unwrap(), b["field"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(bad, [(3, "attributes.hostname".to_string()), (4, "relation".to_string())], "{v}");
        assert_eq!(v["imported_cis"], 0);
        let list = s.api(Method::GET, "/api/v1/cis", agent, None, &[]).await.json();
        assert_eq!(list["items"].as_array().unwrap().len(), 0, "nothing was written");

        let r = s
            .api(Method::POST, "/api/v1/cis/import", agent, Some(json!({ "format": "csv", "files": [], "mapping": "[source]" })), &[])
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());

        let files = [itop("itop-structure/data.sample.locations.xml"), itop("itop-datacenter-mgmt/data.sample.racks.xml")];
        let r = s.api(Method::POST, "/api/v1/cis/import", agent, Some(json!({ "format": "itop", "files": files })), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v = r.json();
        assert_eq!((v["imported_cis"].as_u64(), v["imported_relations"].as_u64()), (Some(4), Some(1)), "{v}");
        let list = s.api(Method::GET, "/api/v1/cis?q=Rack1", agent, None, &[]).await.json();
        assert_eq!(list["items"][0]["class_key"], "location", "{list}");
    }
}

#[tokio::test]
async fn the_ci_page_carries_the_graph_and_echarts_is_served_from_the_binary() {
    for s in sites().await {
        s.app.seed_cmdb_classes().await.unwrap();
        let agent = Some(s.agent_token.as_str());
        let r = s.api(Method::POST, "/api/v1/cis", agent, Some(json!({ "class_key": "application", "name": "erp <b>" })), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let (cookie, _) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let page = s.page(&cookie, &format!("/cmdb/{id}")).await.text();
        assert!(page.contains(&format!("data-ci=\"{id}\"")) && page.contains("data-name=\"erp &#60;b&#62;\""), "{page}");
        assert!(page.contains("/static/vendor/echarts-5.6.0.min.js") && page.contains("/static/cmdb-graph.js"));
        for js in ["/static/vendor/echarts-5.6.0.min.js", "/static/cmdb-graph.js"] {
            let r = s.page(&cookie, js).await;
            assert_eq!(r.status, StatusCode::OK, "{js}");
            assert!(r.header(header::CONTENT_TYPE).starts_with("text/javascript"));
        }
        // the graph's data: the impact API as the page calls it, with the session cookie
        let r = s.page(&cookie, &format!("/api/v1/cis/{id}/impact?direction=upstream&max_depth=1")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
}

//! Configuration management: `POST /api/v1/cis/import` — CSV with a mapping and iTop XML files,
//! the report with bad rows by line, all or nothing; contacts may not import.

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

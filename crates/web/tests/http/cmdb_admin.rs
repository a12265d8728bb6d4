//! CMDB pages: importing CIs from CSV with a mapping (dry run with line-numbered bad rows,
//! then the import) and iTop XML, and CI classes created and edited with typed attributes.
//! Refused input comes back in place; contacts, auditors and agents without the right are
//! refused.

use super::release_forms::staff_member;
use super::*;

const MAPPING: &str = "[source]\nname = \"legacy\"\n\n[fields]\nexternal_ref = \"id\"\nclass = \"type\"\nname = \"name\"\n\n[relations]\nruns_on = \"host\"\n";

#[tokio::test]
async fn cis_are_imported_from_csv_after_a_dry_run() {
    for s in sites().await {
        s.app.seed_cmdb_classes().await.unwrap();
        let (agent, csrf) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let (contact, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        let (_, auditor, acsrf) = staff_member(&s, "auditor@keel.test", vec![Role::Auditor]).await;
        assert_eq!(s.page(&contact, "/cmdb/import").await.status, StatusCode::NOT_FOUND);
        assert_eq!(s.page(&auditor, "/cmdb/import").await.status, StatusCode::FORBIDDEN);
        let r = s
            .post_form(&auditor, "/cmdb/import", &format!("_csrf={acsrf}&format=csv&mapping={}&content=x&mode=import", urlenc(MAPPING)))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let page = s.page(&agent, "/cmdb/import").await;
        assert!(
            page.status == StatusCode::OK && page.text().contains("external_ref") && page.text().contains("itop-form"),
            "{}",
            page.text()
        );
        assert!(s.page(&agent, "/cmdb").await.text().contains("href=\"/cmdb/import\""), "linked from the CMDB list");

        // the dry run names the bad line and keeps what was posted
        let bad = "id,type,name,host\nS1,application,billing,\nA1,spaceship,ERP 应用,S1\n";
        let post =
            |csv: &str, mode: &str| format!("_csrf={csrf}&format=csv&mapping={}&content={}&mode={mode}", urlenc(MAPPING), urlenc(csv));
        let r = s.post_form(&agent, "/cmdb/import", &post(bad, "check")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let html = r.text();
        assert!(
            html.contains("data-testid=\"bad-rows\"") && html.contains("<td class=\"mono\">3</td>") && html.contains("ERP 应用"),
            "{html}"
        );
        let r = s
            .post_form(&agent, "/cmdb/import", &format!("_csrf={csrf}&format=csv&mapping={}&content=x&mode=check", urlenc("[fields]")))
            .await;
        assert!(r.text().contains("data-testid=\"import-error\""), "a broken mapping is reported: {}", r.text());
        assert!(s.api(Method::GET, "/api/v1/cis", Some(&s.agent_token), None, &[]).await.json()["items"].as_array().unwrap().is_empty());

        let good = "id,type,name,host\nS1,application,billing,\nA1,application,ERP 应用,S1\n";
        let r = s.post_form(&agent, "/cmdb/import", &post(good, "check")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(r.text().contains("import-report"), "{}", r.text());
        let r = s.post_form(&agent, "/cmdb/import", &post(good, "import")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let cis = s.api(Method::GET, "/api/v1/cis", Some(&s.agent_token), None, &[]).await.json();
        let names: Vec<&str> = cis["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"ERP 应用") && names.contains(&"billing"), "{cis}");

        // iTop XML: a broken file is reported, nothing written
        let r = s
            .post_form(&agent, "/cmdb/import", &format!("_csrf={csrf}&format=itop&xml={}&mode=check", urlenc("<Set><Server id=\"1\">")))
            .await;
        assert_ne!(r.status, StatusCode::OK, "{}", r.text());
        assert!(r.text().contains("&lt;Set&gt;") || r.text().contains("&#60;Set&#62;"), "the typed XML is kept, escaped");
        // the iTop sample locations, checked then imported
        let path_fallback = std::path::Path::new("/work/shared/datasets/itop-sample-data/itop-structure/data.sample.locations.xml");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/datasets/itop-sample-data/itop-structure/data.sample.locations.xml");
        let path = if path.exists() { path } else { path_fallback.to_path_buf() };
        let xml = std::fs::read_to_string(path).unwrap();
        let itop = |mode: &str| format!("_csrf={csrf}&format=itop&xml={}&mode={mode}", urlenc(&xml));
        let r = s.post_form(&agent, "/cmdb/import", &itop("check")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(r.text().contains("<dt>CIs imported</dt><dd>0</dd>"), "a dry run writes nothing: {}", r.text());
        let r = s.post_form(&agent, "/cmdb/import", &itop("import")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let list = s.api(Method::GET, "/api/v1/cis?class=location", Some(&s.agent_token), None, &[]).await.json();
        assert!(!list["items"].as_array().unwrap().is_empty(), "{list}");
    }
}

#[tokio::test]
async fn ci_classes_are_defined_with_typed_attributes() {
    for s in sites().await {
        s.app.seed_cmdb_classes().await.unwrap();
        let (admin, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let (agent, acsrf) = s.browser_login("agent@keel.test", "correct horse battery").await;
        let (contact, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        assert_eq!(s.page(&contact, "/cmdb/classes").await.status, StatusCode::NOT_FOUND);
        let list = s.page(&agent, "/cmdb/classes").await;
        assert!(list.status == StatusCode::OK && list.text().contains("network_device") && !list.text().contains("/cmdb/classes/new"));
        assert_eq!(s.page(&agent, "/cmdb/classes/new").await.status, StatusCode::FORBIDDEN);
        let r = s.post_form(&agent, "/cmdb/classes", &format!("_csrf={acsrf}&key=x&name_en=X&name_zh=X")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(s.page(&admin, "/cmdb/classes/new").await.status, StatusCode::OK);

        let row = |key: &str, en: &str, zh: &str, kind: &str, values: &str, class: &str| {
            format!(
                "&attr_key={key}&attr_label_en={}&attr_label_zh={}&attr_type={kind}&attr_values={}&attr_class={class}",
                urlenc(en),
                urlenc(zh),
                urlenc(values)
            )
        };
        // a bad key and an enumeration without values, each named; what was typed is kept
        let bad = format!(
            "_csrf={csrf}&key=SAN+Switch&name_en=SAN+switch&name_zh={}&parent=network_device{}{}",
            urlenc("SAN 交换机"),
            row("tier", "Tier", "等级", "enum", "", ""),
            row("uplink_ports", "Uplink ports", "上行端口数", "number", "", "")
        );
        let r = s.post_form(&admin, "/cmdb/classes", &bad).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let html = r.text();
        assert!(html.contains("data-field=\"key\"") && html.contains("data-field=\"attributes[0]\""), "{html}");
        assert!(html.contains("SAN 交换机") && html.contains("上行端口数"), "typed values kept: {html}");

        let good = format!(
            "_csrf={csrf}&key=san_switch&name_en=SAN+switch&name_zh={}&parent=network_device{}{}{}{}&attr_required=1&attr_unique=2",
            urlenc("SAN 交换机"),
            row("tier", "Tier", "等级", "enum", "gold, silver", ""),
            row("uplink_ports", "Uplink ports", "上行端口数", "number", "", ""),
            row("mgmt_address", "Management address", "管理地址", "ip_address", "", ""),
            row("site", "Site", "站点", "reference", "", "location")
        );
        let r = s.post_form(&admin, "/cmdb/classes", &good).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let classes = s.api(Method::GET, "/api/v1/ci-classes", Some(&s.admin_token), None, &[]).await.json();
        let all = classes.as_array().cloned().unwrap_or_else(|| classes["items"].as_array().cloned().unwrap());
        let c = all.iter().find(|c| c["key"] == "san_switch").unwrap_or_else(|| panic!("{classes}"));
        let text = c.to_string();
        assert!(text.contains("\"gold\"") && text.contains("ip_address") && text.contains("\"location\""), "{text}");
        let r = s.post_form(&admin, "/cmdb/classes", &good).await;
        assert!(r.text().contains("data-field=\"key\""), "a second class with the key is refused in place");

        // edited: renamed, and an attribute its parent defines is refused
        let page = s.page(&admin, "/cmdb/classes/san_switch?flash=created").await.text();
        assert!(page.contains("Management address") && page.contains("name=\"_version\"") && page.contains("role=\"status\""), "{page}");
        let edit = format!(
            "_csrf={csrf}&_version=1&name_en=Storage+switch&name_zh={}&parent=network_device{}",
            urlenc("存储交换机"),
            row("tier", "Tier", "等级", "enum", "gold", "")
        );
        let r = s.post_form(&admin, "/cmdb/classes/san_switch", &edit).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert!(s.page(&admin, "/cmdb/classes").await.text().contains("Storage switch"));
        let r = s.post_form(&agent, "/cmdb/classes/san_switch", &format!("_csrf={acsrf}&name_en=x")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let zh = s.page(&format!("{admin}; keel_lang=zh-CN"), "/cmdb/classes/new").await.text();
        assert!(zh.contains("新建配置项类别") && zh.contains("IP 地址"), "{zh}");
    }
}

#[tokio::test]
async fn editing_a_class_checks_its_existing_cis() {
    for s in sites().await {
        s.app.seed_cmdb_classes().await.unwrap();
        let (admin, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let row = |key: &str, kind: &str, values: &str, fill: &str| {
            format!(
                "&attr_key={key}&attr_label_en={key}&attr_label_zh={key}&attr_type={kind}&attr_values={}&attr_class=&attr_fill={fill}",
                urlenc(values)
            )
        };
        let base = format!(
            "_csrf={csrf}&key=pdu&name_en=PDU&name_zh=PDU{}{}{}",
            row("outlets", "number", "", ""),
            row("phase", "enum", "single, three", ""),
            row("label", "text", "", "")
        );
        let r = s.post_form(&admin, "/cmdb/classes", &base).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let mut ids = vec![];
        for (name, outlets, phase) in [("PDU-1", 8, "three"), ("PDU-2", 24, "single")] {
            let body = json!({"class_key": "pdu", "name": name, "attributes": {"outlets": outlets, "phase": phase, "label": "A"}});
            let r = s.api(Method::POST, "/api/v1/cis", Some(&s.admin_token), Some(body), &[]).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
            ids.push(r.json()["id"].as_str().unwrap().to_string());
        }
        let ci = |i: usize| {
            let id = ids[i].clone();
            let s = &s;
            async move { s.api(Method::GET, &format!("/api/v1/cis/{id}"), Some(&s.admin_token), None, &[]).await.json() }
        };
        let edit =
            |version: i64, rows: String, extra: &str| format!("_csrf={csrf}&_version={version}&name_en=PDU&name_zh=PDU{rows}{extra}");
        let same =
            format!("{}{}{}", row("outlets", "number", "", ""), row("phase", "enum", "single, three", ""), row("label", "text", "", ""));

        // a new required attribute: refused, naming the row and the two CIs without a value
        let circuit = format!("{same}{}", row("circuit", "text", "", ""));
        let r = s.post_form(&admin, "/cmdb/classes/pdu", &edit(1, circuit.clone(), "&attr_required=3")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let html = r.text();
        assert!(
            html.contains("data-field=\"attributes[3]\"") && html.contains("2 existing CIs have no value for this attribute"),
            "{html}"
        );
        let zh = s.post_form(&format!("{admin}; keel_lang=zh-CN"), "/cmdb/classes/pdu", &edit(1, circuit, "&attr_required=3")).await.text();
        assert!(zh.contains("有 2 个现有配置项缺少此属性的值"), "{zh}");
        assert!(ci(0).await["attributes"].get("circuit").is_none(), "nothing written");

        // the same with a value for existing CIs: both get it, each with a history entry
        let filled = format!("{same}{}", row("circuit", "text", "", "C-01"));
        let r = s.post_form(&admin, "/cmdb/classes/pdu", &edit(1, filled, "&attr_required=3")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        for i in 0..2 {
            let c = ci(i).await;
            assert_eq!(c["attributes"]["circuit"], "C-01", "{c}");
            assert_eq!(c["version"], 2, "{c}");
        }
        let history = s.page(&admin, &format!("/cmdb/{}", ids[0])).await.text();
        assert!(history.contains("C-01"), "{history}");
        let with_circuit = format!("{same}{}", row("circuit", "text", "", ""));

        // allowed values that one CI's value is not among: refused, naming the row and one CI
        let narrower = format!(
            "{}{}{}{}",
            row("outlets", "number", "", ""),
            row("phase", "enum", "three", ""),
            row("label", "text", "", ""),
            row("circuit", "text", "", "")
        );
        let r = s.post_form(&admin, "/cmdb/classes/pdu", &edit(2, narrower, "&attr_required=3")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(
            r.text().contains("data-field=\"attributes[1]\"")
                && r.text().contains("One existing CI has a value that this definition refuses: correct it first"),
            "{}",
            r.text()
        );

        // a type that the values do not fit (text to number) is refused; number to text is taken
        let label_number = format!(
            "{}{}{}{}",
            row("outlets", "number", "", ""),
            row("phase", "enum", "single, three", ""),
            row("label", "number", "", ""),
            row("circuit", "text", "", "")
        );
        let r = s.post_form(&admin, "/cmdb/classes/pdu", &edit(2, label_number, "&attr_required=3")).await;
        assert!(r.status == StatusCode::UNPROCESSABLE_ENTITY && r.text().contains("data-field=\"attributes[2]\""), "{}", r.text());
        let outlets_text = format!(
            "{}{}{}{}",
            row("outlets", "text", "", ""),
            row("phase", "enum", "single, three", ""),
            row("label", "text", "", ""),
            row("circuit", "text", "", "")
        );
        let r = s.post_form(&admin, "/cmdb/classes/pdu", &edit(2, outlets_text, "&attr_required=3")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert_eq!(ci(1).await["attributes"]["outlets"], "24");

        // unique while two CIs share a value: refused with both counted
        let r = s.post_form(&admin, "/cmdb/classes/pdu", &edit(3, with_circuit, "&attr_required=3&attr_unique=2")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert!(r.text().contains("2 existing CIs share a value of this attribute"), "{}", r.text());
    }
}

//! Configuration management: impact analysis on the cached CI graph across instances and
//! tailoring.

use super::cmdb::{ci, relate, setup};
use super::*;
use keel_domain::cmdb::{Direction, RelationType};
use serde_json::json;

fn names(r: &keel_app::cmdb::ImpactResult) -> Vec<&str> {
    r.reached.iter().map(|e| e.ci.name.as_str()).collect()
}

#[tokio::test]
async fn a_write_on_one_instance_is_seen_by_the_next_impact_analysis_on_another() {
    for t in TestDb::migrated_all().await {
        let (one, w) = setup(&t).await;
        let other = App::new(t.db.clone(), SecurityConfig::default());
        let host = ci(&one, &w.agent_a, "server", "host", None, json!({ "hostname": "host" })).await;
        let app = ci(&one, &w.agent_a, "application", "erp", Some(&w.project_a), json!({})).await;
        assert!(one.impact(&w.agent_a, &host.id, Direction::Downstream, None).await.unwrap().reached.is_empty());
        assert!(other.impact(&w.agent_a, &host.id, Direction::Downstream, None).await.unwrap().reached.is_empty());

        // written through the second instance: the first one's copy is stale and reloaded
        let rel = relate(&other, &w.agent_a, &app.id, RelationType::RunsOn, &host.id).await;
        assert_eq!(names(&one.impact(&w.agent_a, &host.id, Direction::Downstream, None).await.unwrap()), ["erp"], "{}", t.label);
        let renamed = one
            .update_ci(
                &w.agent_a,
                &app.id,
                keel_app::cmdb::CiInput {
                    class_key: "application".into(),
                    name: "erp 2".into(),
                    project_id: Some(w.project_a.clone()),
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!(renamed.name, "erp 2");
        assert_eq!(names(&other.impact(&w.agent_a, &host.id, Direction::Downstream, None).await.unwrap()), ["erp 2"], "{}", t.label);
        let r = other.impact(&w.agent_a, &host.id, Direction::Downstream, None).await.unwrap();
        assert_eq!(r.customers.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [w.org_a.as_str()]);

        // the same copy answers readers of different scopes exactly
        let outsider = staff(&one, "outsider@keel.test", vec![Role::ServiceDeskAgent]).await;
        let r = one.impact(&outsider, &host.id, Direction::Downstream, None).await.unwrap();
        assert!(r.reached.is_empty() && r.customers.is_empty() && r.projects.is_empty(), "{}: another project's CI leaked", t.label);

        // tailoring configuration management out hides the project's CIs without a CI write
        let sm = staff(&one, "sm@keel.test", vec![Role::ServiceManager]).await;
        one.tailor_project(&sm, &w.project_a, "configuration", false, "customer keeps its own CMDB").await.unwrap();
        let r = other.impact(&w.admin, &host.id, Direction::Downstream, None).await.unwrap();
        assert!(r.reached.is_empty(), "{}: a tailored-out project's CI was traversed", t.label);
        one.tailor_project(&sm, &w.project_a, "configuration", true, "back").await.unwrap();

        other.remove_relation(&w.agent_a, &rel.id).await.unwrap();
        assert!(one.impact(&w.admin, &host.id, Direction::Downstream, None).await.unwrap().reached.is_empty(), "{}", t.label);
    }
}

fn itop_files() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/itop-sample-data");
    let root = if root.exists() { root } else { std::path::PathBuf::from("/work/shared/datasets/itop-sample-data") };
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "xml") {
                files.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[tokio::test]
async fn the_itop_sample_data_imports_with_its_links_all_or_nothing() {
    let files = itop_files();
    assert!(files.len() > 30, "the iTop sample data set is missing");
    for t in TestDb::migrated_all().await {
        let (app, w) = setup(&t).await;
        let dry = app.import_itop(&w.agent_a, &files, true).await.unwrap();
        assert!(dry.ok(), "{}: {:?}", t.label, dry.bad_rows);
        assert_eq!(dry.imported_cis, 0);
        assert!(dry.skipped.get("Person").copied().unwrap_or(0) >= 30, "{:?}", dry.skipped);
        let all = |app: &App| {
            let app = app.clone();
            let admin = w.admin.clone();
            async move { app.list_cis(&admin, &keel_app::cmdb::CiQuery::default(), &page(super::cmdb::CI_SORT)).await.unwrap().items }
        };
        assert!(all(&app).await.is_empty(), "{}: a dry run wrote CIs", t.label);

        let r = app.import_itop(&w.agent_a, &files, false).await.unwrap();
        assert!(r.ok(), "{:?}", r.bad_rows);
        assert_eq!(r.imported_cis, dry.cis);
        assert!(
            r.imported_cis >= 35 && r.imported_relations >= 25,
            "{}: {} CIs, {} relations",
            t.label,
            r.imported_cis,
            r.imported_relations
        );
        let cis = all(&app).await;
        let by_name = |n: &str| cis.iter().find(|c| c.name == n).unwrap_or_else(|| panic!("{n} not imported"));
        assert_eq!(by_name("Server4").attributes.get("serial_number"), Some(&json!("US3215687014")));
        assert_eq!(by_name("Router1").attributes.get("device_type"), Some(&json!("router")));
        assert_eq!(by_name("VM1").class_key, "virtual_machine");
        assert_eq!(by_name("Grenoble").class_key, "location");

        // the links became relations impact analysis follows: the cluster carries the VMs,
        // VM2 the MySQL server and its schema, which belongs to the itop solution
        let r = app.impact(&w.agent_a, &by_name("Cluster1").id, Direction::Downstream, None).await.unwrap();
        let reached = names(&r);
        for n in ["VM1", "VM2", "VM3", "MySQL", "itop-demo", "itop"] {
            assert!(reached.contains(&n), "{}: {n} not downstream of Cluster1: {reached:?}", t.label);
        }
        let r = app.impact(&w.agent_a, &by_name("Rack1").id, Direction::Upstream, None).await.unwrap();
        assert_eq!(names(&r), ["Grenoble"], "{}", t.label);

        // a second import of the same files is refused as a whole
        let again = app.import_itop(&w.agent_a, &files, false).await.unwrap();
        assert!(!again.ok() && again.imported_cis == 0);
        let other: Vec<_> =
            again.bad_rows.iter().filter(|b| !b.reason.contains("already imported") && !b.reason.contains("already exists")).collect();
        assert!(other.is_empty(), "{other:?}");
        assert_eq!(all(&app).await.len(), cis.len());
        // an auditor may not import
        assert!(matches!(app.import_itop(&w.auditor, &files, true).await, Err(AppError::Forbidden)));
    }
}

const MAPPING: &str = r#"
[source]
name = "legacy"
missing = ["?"]

[fields]
external_ref = "Asset"
class = "Type"
name = "Name"
status = "State"
project = "Project"

[attributes]
hostname = "Host"
ip_address = "IP"

[values.class]
"Linux server" = "server"
"App" = "application"

[values.status]
"In use" = "live"
"*" = "planned"

[relations]
runs_on = "Runs on"
"#;

#[tokio::test]
async fn a_csv_file_imports_cis_and_relations_through_a_mapping_all_or_nothing() {
    for t in TestDb::migrated_all().await {
        let (app, w) = setup(&t).await;
        let m = keel_app::cmdb_import::CiMapping::from_toml(MAPPING).unwrap();
        let bad_file = "Asset,Type,Name,State,Project,Host,IP,Runs on\n\
            A1,Linux server,web-01,In use,,web-01,10.0.0.1,\n\
            A2,Linux server,web-02,In use,,,10.0.0.300,\n\
            A3,Toaster,t,In use,,,,\n\
            A4,App,shop,In use,BETA-DC,,,A1;A9\n\
            A1,App,dup,In use,,,,\n";
        let r = app.import_cis_csv(&w.agent_a, bad_file.as_bytes(), &m, false).await.unwrap();
        let got: Vec<(u64, &str)> = r.bad_rows.iter().map(|b| (b.line, b.field.as_str())).collect();
        assert_eq!(
            got,
            [
                (3, "attributes.hostname"),
                (3, "attributes.ip_address"),
                (4, "class"),
                (5, "project_id"),
                (5, "relation"),
                (6, "external_ref")
            ],
            "{}: {:?}",
            t.label,
            r.bad_rows
        );
        assert_eq!(r.imported_cis, 0);
        assert!(app.list_cis(&w.admin, &keel_app::cmdb::CiQuery::default(), &page(super::cmdb::CI_SORT)).await.unwrap().items.is_empty());

        let good = "Asset,Type,Name,State,Project,Host,IP,Runs on\n\
            A1,Linux server,web-01,In use,,web-01,10.0.0.1,\n\
            A4,App,shop,?,ACME-OPS,,,A1\n";
        let dry = app.import_cis_csv(&w.agent_a, good.as_bytes(), &m, true).await.unwrap();
        assert!(dry.ok() && dry.imported_cis == 0, "{:?}", dry.bad_rows);
        let r = app.import_cis_csv(&w.agent_a, good.as_bytes(), &m, false).await.unwrap();
        assert_eq!((r.imported_cis, r.imported_relations), (2, 1), "{}: {:?}", t.label, r.bad_rows);
        let items = app.list_cis(&w.agent_a, &keel_app::cmdb::CiQuery::default(), &page(super::cmdb::CI_SORT)).await.unwrap().items;
        let shop = items.iter().find(|c| c.name == "shop").unwrap();
        assert_eq!((shop.status.as_str(), shop.project_id.as_deref()), ("planned", Some(w.project_a.as_str())));
        let web = items.iter().find(|c| c.name == "web-01").unwrap();
        assert_eq!(names(&app.impact(&w.agent_a, &web.id, Direction::Downstream, None).await.unwrap()), ["shop"]);

        // a later file names CIs of the earlier one by their reference
        let later = "Asset,Type,Name,State,Project,Host,IP,Runs on\nA5,App,crm,In use,,,,A1\n";
        let r = app.import_cis_csv(&w.agent_a, later.as_bytes(), &m, false).await.unwrap();
        assert_eq!((r.imported_cis, r.imported_relations), (1, 1), "{:?}", r.bad_rows);
        let mut reached = names(&app.impact(&w.agent_a, &web.id, Direction::Downstream, None).await.unwrap())
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        reached.sort();
        assert_eq!(reached, ["crm", "shop"], "{}", t.label);
        let e = keel_app::cmdb_import::CiMapping::from_toml(
            "[source]\nname='x'\n[fields]\nexternal_ref='a'\nname='b'\nclass='c'\ncolour='d'\n",
        )
        .unwrap_err();
        assert!(matches!(e, AppError::Validation(_)));
    }
}

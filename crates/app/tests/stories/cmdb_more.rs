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

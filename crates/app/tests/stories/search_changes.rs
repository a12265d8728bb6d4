//! Search over change and release management: requests for change and releases are found by
//! the staff of their project as soon as the follower has run, never by customer contacts;
//! `type:` filters and facets count them; renaming what their documents show reindexes them.
//! Several processes on one database each follow the outbox into an index of their own.

use super::*;
use crate::search::{find, index_dir, searching, titles};
use keel_app::changes::{ChangePatch, NewChange};
use keel_app::cmdb::CiInput;
use keel_app::incidents::NewTicket;
use keel_app::releases::NewRelease;
use keel_app::search::SearchInput;
use serde_json::json;

async fn ci(app: &App, w: &World, name: &str) -> keel_store::cmdb::CiRecord {
    let input = CiInput {
        class_key: "server".into(),
        name: name.into(),
        project_id: Some(w.project_a.clone()),
        attributes: json!({ "hostname": "erp-db01" }),
        ..Default::default()
    };
    app.create_ci(&w.agent_a, input).await.unwrap()
}

/// A normal change of project A, still a draft.
fn normal(w: &World, title: &str) -> NewChange {
    NewChange { project_id: w.project_a.clone(), change_type: "normal".into(), title: title.into(), ..Default::default() }
}

fn kinds(p: &keel_app::search::SearchPage) -> Vec<String> {
    p.hits.iter().map(|h| h.kind.clone()).collect()
}

#[tokio::test]
async fn changes_and_releases_are_found_by_project_staff_only() {
    for t in TestDb::migrated_all().await {
        let dir = index_dir();
        let (app, w) = searching(&t, &dir).await;
        let db = ci(&app, &w, "ERP 数据库服务器").await;
        let change = app
            .create_change(
                &w.agent_a,
                NewChange {
                    description: Some("Apply the quarterly patchset".into()),
                    reason: Some("修复 ORA-600 内部错误".into()),
                    implementation_plan: Some("drain the listener, apply opatch, restart".into()),
                    back_out_plan: Some("rollback with opatch rollback".into()),
                    test_plan: Some("smoke test the payroll run".into()),
                    ci_ids: vec![db.id.clone()],
                    ..normal(&w, "升级 ERP 数据库补丁")
                },
            )
            .await
            .unwrap();
        assert!(find(&app, &w.admin, "opatch").await.hits.is_empty(), "{}: not before the follower ran", t.label);
        // committed, then searchable as soon as the follower has run
        assert!(app.follow_outbox().await.unwrap() > 0, "{}", t.label);
        for q in ["补丁", "ORA-600", "opatch", "payroll", "quarterly", "数据库服务器 type:change", change.number.as_str()] {
            let p = find(&app, &w.agent_a, q).await;
            assert_eq!(p.hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>(), vec![change.id.clone()], "{}: {q}", t.label);
        }
        let hit = &find(&app, &w.agent_a, &change.number).await.hits[0];
        assert_eq!((hit.kind.as_str(), hit.number.as_deref(), hit.status.as_str()), ("change", Some("CHG-000001"), "draft"));

        let release = app
            .create_release(
                &w.agent_a,
                NewRelease {
                    project_id: w.project_a.clone(),
                    title: "ERP 季度发布".into(),
                    version: "2026.4".into(),
                    description: Some("Quarterly ERP maintenance window".into()),
                    change_ids: vec![change.id.clone()],
                    known_issues: vec!["报表导出较慢 slow exports".into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        // an incident with the same word, so the facets have several types
        app.create_ticket(
            &w.admin,
            NewTicket {
                project_id: w.project_a.clone(),
                reporter_id: Some(w.contact_a.user_id.clone()),
                title: "ERP 登录很慢".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        app.follow_outbox().await.unwrap();
        for q in ["季度发布", "exports", "2026.4", "REL-000001"] {
            let p = find(&app, &w.agent_a, q).await;
            assert_eq!(p.hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>(), vec![release.id.clone()], "{}: {q}", t.label);
        }
        // the release notes list its changes: the change's title finds the release too
        assert_eq!(titles(&find(&app, &w.agent_a, "补丁").await), vec!["ERP 季度发布", "升级 ERP 数据库补丁"], "{}", t.label);

        // type filters and facets
        let all = find(&app, &w.agent_a, "ERP").await;
        let mut by_kind = all.by_kind.clone();
        by_kind.sort();
        assert_eq!(
            by_kind,
            vec![("change".to_string(), 1), ("ci".to_string(), 1), ("incident".to_string(), 1), ("release".to_string(), 1)],
            "{}",
            t.label
        );
        assert_eq!(kinds(&find(&app, &w.agent_a, "ERP type:change").await), vec!["change"], "{}", t.label);
        assert_eq!(kinds(&find(&app, &w.agent_a, "ERP type:release").await), vec!["release"], "{}", t.label);
        let p = app
            .search_records(&w.agent_a, &SearchInput { q: "ERP".into(), kind: Some("change".into()), limit: 20, ..Default::default() })
            .await
            .unwrap();
        assert_eq!((kinds(&p), p.by_status.clone()), (vec!["change".to_string()], vec![("draft".to_string(), 1)]), "{}", t.label);
        assert_eq!(find(&app, &w.agent_a, "type:change status:draft").await.total, 1, "{}", t.label);

        // a customer contact of the same organisation never finds them, nor counts them
        for q in ["补丁", "opatch", "季度发布", "exports", "CHG-000001", "REL-000001", "type:change", "type:release"] {
            let p = find(&app, &w.contact_a, q).await;
            assert!(p.hits.is_empty() && p.total == 0 && p.by_kind.is_empty() && p.by_status.is_empty(), "{}: {q}: {p:?}", t.label);
        }
        let p = find(&app, &w.contact_a, "ERP").await;
        assert_eq!(p.by_kind, vec![("incident".to_string(), 1)], "{}: only the incident", t.label);
        // staff outside the project do not find them either; the administrator does
        let outsider = staff(&app, "tech@keel.test", vec![Role::Technician]).await;
        assert_eq!(find(&app, &outsider, "补丁").await.total, 0, "{}", t.label);
        assert_eq!(find(&app, &w.admin, "补丁").await.total, 2, "{}", t.label);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[tokio::test]
async fn edits_and_renames_reindex_changes_and_releases() {
    for t in TestDb::migrated_all().await {
        let dir = index_dir();
        let (app, w) = searching(&t, &dir).await;
        let sw = ci(&app, &w, "核心交换机").await;
        let new = NewChange { ci_ids: vec![sw.id.clone()], ..normal(&w, "更换交换机电源") };
        let change = app.create_change(&w.agent_a, new).await.unwrap();
        let release = app
            .create_release(
                &w.agent_a,
                NewRelease {
                    project_id: w.project_a.clone(),
                    title: "网络维护".into(),
                    version: "1.0".into(),
                    change_ids: vec![change.id.clone()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        app.follow_outbox().await.unwrap();
        assert_eq!(find(&app, &w.agent_a, "project:ACME-OPS type:change").await.total, 1, "{}", t.label);
        // an edit of the change: the old words leave, the new ones are found
        let patch = ChangePatch { title: Some("Replace the core switch PSU".into()), ..Default::default() };
        app.update_change(&w.agent_a, &change.id, patch, None).await.unwrap();
        app.follow_outbox().await.unwrap();
        assert_eq!(find(&app, &w.agent_a, "电源 type:change").await.total, 0, "{}", t.label);
        assert_eq!(find(&app, &w.agent_a, "PSU").await.total, 2, "{}: the change and the release listing it", t.label);
        // renaming an affected CI reindexes the change
        let renamed = CiInput {
            class_key: "server".into(),
            name: "汇聚交换机 nexus".into(),
            project_id: Some(w.project_a.clone()),
            attributes: json!({ "hostname": "erp-db01" }),
            ..Default::default()
        };
        app.update_ci(&w.agent_a, &sw.id, renamed, None).await.unwrap();
        app.follow_outbox().await.unwrap();
        assert_eq!(find(&app, &w.agent_a, "核心交换机 type:change").await.total, 0, "{}", t.label);
        assert_eq!(kinds(&find(&app, &w.agent_a, "nexus type:change").await), vec!["change"], "{}", t.label);
        // renaming the project's code reindexes both
        let project = app.get_project(&w.admin, &w.project_a).await.unwrap();
        let input = keel_app::directory::ProjectInput {
            code: "ACME-NET".into(),
            name: project.name.clone(),
            organization_id: w.org_a.clone(),
            member_ids: project.member_ids.clone(),
            ..Default::default()
        };
        app.update_project(&w.admin, &w.project_a, input, None).await.unwrap();
        app.follow_outbox().await.unwrap();
        for kind in ["change", "release"] {
            assert_eq!(find(&app, &w.agent_a, &format!("project:ACME-OPS type:{kind}")).await.total, 0, "{}: {kind}", t.label);
            assert_eq!(find(&app, &w.agent_a, &format!("project:ACME-NET type:{kind}")).await.total, 1, "{}: {kind}", t.label);
        }
        // a rebuild from the database holds the same records
        app.rebuild_search_index(|_, _| {}).await.unwrap();
        let p = find(&app, &w.agent_a, "PSU").await;
        let mut ids: Vec<String> = p.hits.iter().map(|h| h.id.clone()).collect();
        ids.sort();
        let mut want = vec![change.id.clone(), release.id.clone()];
        want.sort();
        assert_eq!(ids, want, "{}", t.label);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Waits (up to 10 s) until `q` finds `n` records for `who` in `app`'s index.
async fn until_found(app: &App, who: &Principal, q: &str, n: usize) -> std::time::Duration {
    let start = std::time::Instant::now();
    loop {
        if find(app, who, q).await.total == n {
            return start.elapsed();
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "{q}: {} found", find(app, who, q).await.total);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_process_follows_the_outbox_into_its_own_index_and_a_new_one_catches_up() {
    for t in TestDb::migrated_all().await {
        let (dir1, dir2, dir3) = (index_dir(), index_dir(), index_dir());
        let (one, w) = searching(&t, &dir1).await;
        let two = app_on(&t).0.with_search(keel_app::search::Search::at(&dir2));
        let (stop, watch) = tokio::sync::watch::channel(false);
        let followers: Vec<_> = [one.clone(), two.clone()]
            .into_iter()
            .map(|app| {
                let watch = watch.clone();
                tokio::spawn(async move { app.search_follower(watch).await })
            })
            .collect();
        // a change written through the first process is found in both indexes
        let new = |title: &str| normal(&w, title);
        one.create_change(&w.agent_a, new("迁移邮件网关 mailgw")).await.unwrap();
        until_found(&one, &w.agent_a, "mailgw", 1).await;
        until_found(&two, &w.agent_a, "mailgw", 1).await;
        // and one written through the second process too
        two.create_change(&w.agent_a, new("Retire the old mailgw relay")).await.unwrap();
        until_found(&one, &w.agent_a, "mailgw", 2).await;
        until_found(&two, &w.agent_a, "mailgw", 2).await;
        // a process started later builds its index from the database and then follows
        let three = app_on(&t).0.with_search(keel_app::search::Search::at(&dir3));
        let late = {
            let (three, watch) = (three.clone(), watch.clone());
            tokio::spawn(async move { three.search_follower(watch).await })
        };
        until_found(&three, &w.agent_a, "mailgw", 2).await;
        one.create_change(&w.agent_a, new("mailgw TLS certificates")).await.unwrap();
        for app in [&one, &two, &three] {
            until_found(app, &w.agent_a, "mailgw", 3).await;
            assert_eq!(find(app, &w.contact_a, "mailgw").await.total, 0, "{}", t.label);
        }
        stop.send(true).unwrap();
        for f in followers.into_iter().chain([late]) {
            f.await.unwrap();
        }
        for d in [dir1, dir2, dir3] {
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}

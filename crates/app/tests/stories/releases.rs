//! Release management: stages planned with checklists, expected results and named signers,
//! signed off in order, the lifecycle, rollback and the release review; tenancy.

use super::*;
use keel_app::changes::{NewChange, TemplateInput};
use keel_app::releases::{NewRelease, StagePlanInput};
use keel_domain::release::{ExpectedResult, ReviewVerdict, StageKind};
use keel_store::releases::ReleaseFilter;

const REL_SORT: SortKey = SortKey { name: "number", column: "r.number", kind: SortKind::Text };

fn code<T: std::fmt::Debug>(r: Result<T, AppError>) -> Vec<String> {
    match r {
        Err(AppError::Validation(v)) => v.iter().map(|e| e.code.to_string()).collect(),
        Err(e) => vec![e.code().to_string()],
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

fn plan(signers: &[&str]) -> StagePlanInput {
    StagePlanInput {
        planned_start: Some(T0),
        planned_end: Some(T0 + 3_600_000),
        checklist: vec!["Artefacts archived 制品已归档".into()],
        expected: vec![ExpectedResult { key: "ok".into(), description: "Stage goal".into(), target: "met".into() }],
        signer_ids: signers.iter().map(|s| s.to_string()).collect(),
    }
}

/// A standard change of the project from a pre-approved template, still a draft.
async fn standard_change(app: &App, w: &World, project: &str, title: &str) -> String {
    let manager = staff(app, &format!("sm-{}@keel.test", keel_store::new_id()), vec![Role::ServiceManager]).await;
    let tpl = TemplateInput {
        name: format!("{title} template"),
        implementation_plan: "deploy; verify".into(),
        back_out_plan: "redeploy the previous version".into(),
        risk_level: "low".into(),
        ..Default::default()
    };
    let tpl = app.create_change_template(&manager, tpl).await.unwrap();
    let change = NewChange {
        project_id: project.into(),
        change_type: "standard".into(),
        template_id: Some(tpl.id),
        title: title.into(),
        ..Default::default()
    };
    app.create_change(&w.admin, change).await.unwrap().id
}

#[tokio::test]
async fn a_release_is_planned_signed_off_in_order_deployed_and_reviewed() {
    for t in TestDb::migrated_all().await {
        let (app, clock) = app_on(&t);
        let w = world(&app).await;
        let carol = staff(&app, "carol@keel.test", vec![Role::Technician]).await;
        let agent = w.agent_a.clone();
        let change = standard_change(&app, &w, &w.project_a, "ERP 2.4 配置变更").await;
        let e = app
            .create_release(
                &agent,
                NewRelease {
                    project_id: w.project_a.clone(),
                    title: "x".into(),
                    version: "1".into(),
                    change_ids: vec!["CHG-999999".into()],
                    ..Default::default()
                },
            )
            .await;
        assert_eq!(fields(e.unwrap_err()), vec![("change_ids[0]".to_string(), "unknown_change")], "{}", t.label);
        let rel = app
            .create_release(
                &agent,
                NewRelease {
                    project_id: w.project_a.clone(),
                    title: "ERP 2.4 上线".into(),
                    version: "2.4.0".into(),
                    change_ids: vec!["chg-000001".into()],
                    known_issues: vec!["Export to PDF is slow".into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(rel.number, "REL-000001", "{}", t.label);
        assert_eq!(rel.status, "planned");
        assert_eq!(rel.stages.iter().map(|s| s.stage.as_str()).collect::<Vec<_>>(), ["build", "test", "acceptance", "deployment"]);
        assert_eq!(
            code(app.create_release(&agent, NewRelease { project_id: w.project_a.clone(), ..Default::default() }).await),
            ["required", "required"]
        );

        // starting needs a rollback plan
        assert_eq!(code(app.transition_release(&agent, &rel.id, "in_progress", None, None).await), ["rollback_plan_required"]);
        app.set_release_rollback_plan(&agent, &rel.id, "Restore the 02:00 snapshot").await.unwrap();

        // signers must be staff of the project
        let bad = app.plan_release_stage(&agent, &rel.id, "build", plan(&[&w.contact_a.user_id]), None).await;
        assert_eq!(code(bad), ["unknown_signer"]);
        for k in StageKind::ALL {
            let signers: &[&str] = if k == StageKind::Acceptance { &[&w.admin.user_id] } else { &[&agent.user_id, &w.admin.user_id] };
            app.plan_release_stage(&agent, &rel.id, k.as_str(), plan(signers), None).await.unwrap();
        }
        let r = app.transition_release(&agent, "REL-000001", "in_progress", None, None).await.unwrap();
        assert_eq!(r.status, "in_progress");

        // build: tick, record, and sign by the named signers in order
        assert_eq!(code(app.sign_off_release_stage(&agent, &rel.id, "build", None).await), ["checklist_incomplete", "results_missing"]);
        app.tick_release_item(&agent, &rel.id, "build", 0, true).await.unwrap();
        assert_eq!(code(app.tick_release_item(&agent, &rel.id, "build", 3, true).await), ["unknown_item"]);
        app.record_release_result(&agent, &rel.id, "build", "ok", "green", true).await.unwrap();
        assert_eq!(code(app.sign_off_release_stage(&agent, &rel.id, "acceptance", None).await), ["not_a_signer"]);
        assert_eq!(code(app.sign_off_release_stage(&carol, &rel.id, "build", None).await), ["not_found"], "staff of other projects");
        assert_eq!(code(app.sign_off_release_stage(&w.admin, &rel.id, "build", None).await), ["signer_out_of_order"]);
        // a stage after one not signed off is refused even to its first signer
        app.tick_release_item(&agent, &rel.id, "test", 0, true).await.unwrap();
        app.record_release_result(&agent, &rel.id, "test", "ok", "all pass", true).await.unwrap();
        assert_eq!(code(app.sign_off_release_stage(&agent, &rel.id, "test", None).await), ["stage_out_of_order"]);

        let r = app.sign_off_release_stage(&agent, &rel.id, "build", Some("built")).await.unwrap();
        assert!(r.stages[0].signed_off_at.is_none(), "one of two signers is not a sign-off");
        assert_eq!(code(app.sign_off_release_stage(&agent, &rel.id, "build", None).await), ["already_signed"]);
        clock.advance(60_000);
        let r = app.sign_off_release_stage(&w.admin, &rel.id, "build", None).await.unwrap();
        assert_eq!(r.stages[0].signed_off_by.as_deref(), Some(w.admin.user_id.as_str()));
        assert_eq!(r.stages[0].signers.iter().filter(|s| s.signed_at.is_some()).count(), 2);
        assert_eq!(code(app.tick_release_item(&agent, &rel.id, "build", 0, false).await), ["stage_signed_off"]);

        assert_eq!(code(app.transition_release(&agent, &rel.id, "deployed", None, None).await), ["stages_not_signed_off"]);
        for k in ["test", "acceptance", "deployment"] {
            app.tick_release_item(&agent, &rel.id, k, 0, true).await.unwrap();
            let met = k != "acceptance";
            app.record_release_result(&agent, &rel.id, k, "ok", if met { "as planned" } else { "two defects left" }, met).await.unwrap();
            clock.advance(60_000);
            if k != "acceptance" {
                app.sign_off_release_stage(&agent, &rel.id, k, None).await.unwrap();
            }
            app.sign_off_release_stage(&w.admin, &rel.id, k, None).await.unwrap();
        }
        assert_eq!(rel.change_ids, vec![change.clone()], "{}: the number names the change", t.label);
        // the change is still a draft: nothing unauthorised is deployed
        assert_eq!(code(app.transition_release(&agent, &rel.id, "deployed", None, None).await), ["changes_not_approved"]);
        app.transition_change(&agent, &change, "submitted", None, None).await.unwrap();
        let r = app.transition_release(&agent, &rel.id, "deployed", None, None).await.unwrap();
        assert_eq!(r.status, "deployed");
        let notes =
            app.release_notes_markdown(&agent, &rel.id, keel_domain::validate::Locale::ZhCn, chrono_tz::Asia::Shanghai).await.unwrap();
        assert!(notes.contains("CHG-000001") && notes.contains("ERP 2.4 配置变更"), "{notes}");
        assert!(r.deployed_at.is_some());

        let review = app.release_review(&agent, &rel.id).await.unwrap();
        assert_eq!(review.verdict, ReviewVerdict::Deviations);
        assert_eq!((review.met, review.not_met, review.missing), (3, 1, 0));
        assert_eq!(code(app.transition_release(&agent, &rel.id, "reviewed", None, None).await), ["review_required"]);
        app.record_release_review(&agent, &rel.id, "Two acceptance defects carried over.").await.unwrap();
        app.transition_release(&agent, &rel.id, "reviewed", None, None).await.unwrap();
        let r = app.transition_release(&agent, &rel.id, "closed", None, Some(r.version + 2)).await.unwrap();
        assert_eq!(r.status, "closed");
        assert_eq!(code(app.transition_release(&agent, &rel.id, "planned", None, None).await), ["invalid_transition"]);

        let log = app.release_status_log(&agent, &rel.id).await.unwrap();
        let to: Vec<&str> = log.iter().map(|l| l.to_status.as_str()).collect();
        assert_eq!(to, ["planned", "in_progress", "deployed", "reviewed", "closed"]);
        let history = app.release_history(&agent, &rel.id).await.unwrap();
        assert!(history.len() > 10, "every step is audited: {}", history.len());
    }
}

#[tokio::test]
async fn a_rolled_back_release_and_who_sees_releases() {
    for t in TestDb::migrated_all().await {
        let (app, _clock) = app_on(&t);
        let w = world(&app).await;
        let change_a = standard_change(&app, &w, &w.project_a, "Patch 7.1 A").await;
        let change_b = standard_change(&app, &w, &w.project_b, "Patch 7.1 B").await;
        let input = |project: &str| NewRelease {
            project_id: project.into(),
            title: "Core banking patch".into(),
            version: "7.1".into(),
            change_ids: vec![if project == w.project_a { change_a.clone() } else { change_b.clone() }],
            rollback_plan: Some("Reinstall 7.0".into()),
            ..Default::default()
        };
        // agent_a is staff of project A only
        assert_eq!(code(app.create_release(&w.agent_a, input(&w.project_b)).await), ["unknown_project"], "{}", t.label);
        let b = app.create_release(&w.admin, input(&w.project_b)).await.unwrap();
        let a = app.create_release(&w.agent_a, input(&w.project_a)).await.unwrap();
        for who in [&w.agent_a, &w.contact_a] {
            assert!(matches!(app.get_release(who, &b.id).await, Err(AppError::NotFound)));
            assert!(matches!(app.get_release(who, &b.number).await, Err(AppError::NotFound)));
            assert!(matches!(app.release_review(who, &b.id).await, Err(AppError::NotFound)));
            assert!(matches!(app.transition_release(who, &b.id, "cancelled", Some("x"), None).await, Err(AppError::NotFound)));
        }
        assert!(matches!(app.get_release(&w.contact_a, &a.id).await, Err(AppError::NotFound)), "contacts see no releases");
        assert!(app.list_releases(&w.contact_a, &ReleaseFilter::default(), &page(REL_SORT)).await.is_err());
        let seen = app.list_releases(&w.agent_a, &ReleaseFilter::default(), &page(REL_SORT)).await.unwrap();
        assert_eq!(seen.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [a.id.as_str()]);
        let all =
            app.list_releases(&w.auditor, &ReleaseFilter { q: Some("7.1".into()), ..Default::default() }, &page(REL_SORT)).await.unwrap();
        assert_eq!(all.items.len(), 2);
        assert!(matches!(app.transition_release(&w.auditor, &a.id, "in_progress", None, None).await, Err(AppError::Forbidden)));

        // rollback
        app.transition_release(&w.agent_a, &a.id, "in_progress", None, None).await.unwrap();
        assert_eq!(code(app.transition_release(&w.agent_a, &a.id, "rolled_back", None, None).await), ["rollback_not_recorded"]);
        assert_eq!(code(app.record_release_rollback(&w.agent_a, &a.id, "undone", "x").await), ["invalid_outcome"]);
        app.record_release_rollback(&w.agent_a, &a.id, "partially_restored", "Config restored by hand").await.unwrap();
        let r = app.transition_release(&w.agent_a, &a.id, "rolled_back", None, None).await.unwrap();
        assert_eq!((r.status.as_str(), r.rollback_outcome.as_deref()), ("rolled_back", Some("partially_restored")));
        assert_eq!(app.release_review(&w.agent_a, &a.id).await.unwrap().verdict, ReviewVerdict::Deviations);

        // cancelling needs a reason
        assert_eq!(code(app.transition_release(&w.admin, &b.id, "cancelled", Some(" "), None).await), ["reason_required"]);
        let c = app.transition_release(&w.admin, &b.id, "cancelled", Some("customer postponed"), None).await.unwrap();
        assert_eq!(c.cancellation_reason.as_deref(), Some("customer postponed"));
        let log = app.release_status_log(&w.admin, &b.id).await.unwrap();
        assert_eq!(log.last().unwrap().reason.as_deref(), Some("customer postponed"));
        assert!(matches!(app.transition_release(&w.admin, &b.id, "closed", None, Some(1)).await, Err(AppError::InvalidTransition(_))));
    }
}

//! Change management: requests for change through the lifecycle, risk, CAB approval with
//! quorum and delegation, the forward schedule with conflicts and freezes, the review, and
//! tenancy.

use super::*;
use keel_app::changes::{
    ApproverInput, ChangePatch, DecisionInput, DelegationInput, FreezeInput, NewChange, ReviewInput, StepInput, TemplateInput,
};
use keel_app::cmdb::{CiInput, RelationInput};
use keel_app::incidents::NewTicket;
use keel_app::problems::{NewProblem, ProblemStep};
use keel_store::changes::ChangeFilter;
use serde_json::json;
use std::collections::BTreeMap;

const HOUR: i64 = 3_600_000;
const CHANGE_SORT: SortKey = SortKey { name: "number", column: "c.number", kind: SortKind::Text };

struct Cab {
    a: Principal,
    b: Principal,
    c: Principal,
}

async fn cab(app: &App, w: &World) -> Cab {
    let mut v = Vec::new();
    for name in ["cab1", "cab2", "cab3"] {
        let p = staff(app, &format!("{name}@keel.test"), vec![Role::CabMember]).await;
        v.push(p);
    }
    let _ = w;
    let c = v.pop().unwrap();
    let b = v.pop().unwrap();
    let a = v.pop().unwrap();
    Cab { a, b, c }
}

fn user(p: &Principal) -> ApproverInput {
    ApproverInput { kind: "user".into(), id: p.user_id.clone() }
}

fn two_of_three(cab: &Cab) -> Vec<StepInput> {
    vec![StepInput {
        name: "CAB".into(),
        approvers: vec![user(&cab.a), user(&cab.b), user(&cab.c)],
        quorum: "at_least".into(),
        quorum_n: Some(2),
    }]
}

async fn server(app: &App, w: &World, name: &str) -> String {
    app.create_ci(
        &w.agent_a,
        CiInput {
            class_key: "server".into(),
            name: name.into(),
            project_id: Some(w.project_a.clone()),
            attributes: json!({ "hostname": name }),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .id
}

fn normal(w: &World, title: &str, cis: Vec<String>, steps: Vec<StepInput>) -> NewChange {
    NewChange {
        project_id: w.project_a.clone(),
        change_type: "normal".into(),
        title: title.into(),
        implementation_plan: Some("1. drain 2. patch 3. restore".into()),
        back_out_plan: Some("restore the snapshot".into()),
        ci_ids: cis,
        approval_steps: steps,
        ..Default::default()
    }
}

fn low_risk() -> BTreeMap<String, String> {
    [
        ("service_criticality", "low"),
        ("scope", "team"),
        ("outage", "none"),
        ("complexity", "simple"),
        ("experience", "routine"),
        ("testing", "full"),
        ("back_out", "tested"),
        ("security", "no"),
        ("timing", "outside_hours"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn vote(verdict: &str, reason: Option<&str>) -> DecisionInput {
    DecisionInput { verdict: verdict.into(), reason: reason.map(str::to_string), on_behalf_of: None }
}

#[tokio::test]
async fn a_normal_change_is_assessed_approved_by_two_of_three_implemented_and_reviewed() {
    for t in TestDb::migrated_all().await {
        let (app, clock) = app_on(&t);
        let w = world(&app).await;
        app.seed_cmdb_classes().await.unwrap();
        let cab = cab(&app, &w).await;
        let db = server(&app, &w, "db-01").await;
        let app_srv = server(&app, &w, "app-01").await;
        app.add_relation(&w.agent_a, RelationInput { kind: "depends_on".into(), source_id: app_srv.clone(), target_id: db.clone() })
            .await
            .unwrap();

        let ch = app
            .create_change(&w.agent_a, normal(&w, "Patch the database / 数据库打补丁", vec![db.clone()], two_of_three(&cab)))
            .await
            .unwrap();
        assert_eq!((ch.number.as_str(), ch.status.as_str()), ("CHG-000001", "draft"), "{}", t.label);
        assert_eq!(ch.ci_ids, vec![db.clone()]);

        // impact from the CMDB: the app that depends on the database is affected
        let impact = app.change_impact(&w.agent_a, &ch.id).await.unwrap();
        let ids: Vec<&str> = impact.cis.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, vec![db.as_str(), app_srv.as_str()], "{}", t.label);
        assert_eq!(impact.customers.len(), 1, "{}: the project's customer", t.label);

        // an invalid transition is refused and changes nothing
        let e = app.transition_change(&w.agent_a, &ch.id, "implementing", None, None).await.unwrap_err();
        assert_eq!(e.code(), "invalid_transition", "{}", t.label);
        app.transition_change(&w.agent_a, &ch.number, "submitted", None, None).await.unwrap();
        let e = app.transition_change(&w.agent_a, &ch.id, "assessed", None, None).await.unwrap_err();
        assert_eq!(fields(e), vec![("risk_assessment".to_string(), "risk_assessment_required")], "{}", t.label);
        // bad answers are named per question
        let mut bad = low_risk();
        bad.insert("outage".into(), "sometimes".into());
        bad.remove("timing");
        let e = app.assess_change_risk(&w.agent_a, &ch.id, bad, None).await.unwrap_err();
        let f = fields(e);
        assert!(f.contains(&("outage".into(), "invalid_answer")) && f.contains(&("timing".into(), "required")), "{}: {f:?}", t.label);
        let (assessed, risk) = app.assess_change_risk(&w.agent_a, &ch.id, low_risk(), None).await.unwrap();
        assert_eq!((risk.score, assessed.risk_level.as_deref()), (1, Some("low")), "{}", t.label);
        app.transition_change(&w.agent_a, &ch.id, "assessed", None, None).await.unwrap();

        // approval: a non-approver is refused, a reject needs a reason, two of three approve
        let e = app.decide_change(&w.agent_a, &ch.id, vote("approve", None)).await.unwrap_err();
        assert_eq!(fields(e), vec![("actor".to_string(), "not_an_approver")], "{}", t.label);
        let e = app.decide_change(&cab.c, &ch.id, vote("reject", Some(" "))).await.unwrap_err();
        assert_eq!(fields(e), vec![("reason".to_string(), "required")], "{}", t.label);
        // a CAB member who is not a project member sees the change because they are an approver
        assert_eq!(app.get_change(&cab.a, &ch.id).await.unwrap().id, ch.id);
        let v = app.decide_change(&cab.a, &ch.id, vote("approve", Some("looks safe"))).await.unwrap();
        assert_eq!(v.evaluation.as_ref().unwrap().steps[0].approvals, 1);
        let e = app.decide_change(&cab.a, &ch.id, vote("approve", None)).await.unwrap_err();
        assert_eq!(fields(e), vec![("actor".to_string(), "already_decided")], "{}", t.label);
        assert_eq!(app.get_change(&w.agent_a, &ch.id).await.unwrap().status, "assessed", "{}: one of two is not enough", t.label);
        app.decide_change(&cab.c, &ch.id, vote("reject", Some("during month end?"))).await.unwrap();
        let v = app.decide_change(&cab.b, &ch.id, vote("approve", None)).await.unwrap();
        assert_eq!(v.evaluation.as_ref().unwrap().outcome, keel_domain::change::Outcome::Approved);
        let approved = app.get_change(&w.agent_a, &ch.id).await.unwrap();
        assert_eq!(approved.status, "approved", "{}: the quorum approves the change", t.label);
        let e = app.decide_change(&cab.c, &ch.id, vote("approve", None)).await.unwrap_err();
        assert_eq!(e.code(), "approval_not_open", "{}", t.label);
        // the content is now fixed; the window may still move
        let e = app
            .update_change(&w.agent_a, &ch.id, ChangePatch { title: Some("other".into()), ..Default::default() }, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "change_locked", "{}", t.label);
        let start = clock.now_ms() + 24 * HOUR;
        app.update_change(
            &w.agent_a,
            &ch.id,
            ChangePatch { planned_start: Some(start), planned_end: Some(start + 2 * HOUR), ..Default::default() },
            None,
        )
        .await
        .unwrap();
        for to in ["scheduled", "implementing", "implemented"] {
            app.transition_change(&w.agent_a, &ch.id, to, None, None).await.unwrap_or_else(|e| panic!("{}: {to}: {e:?}", t.label));
        }
        // an incident caused by the change is linked back
        let inc = app
            .create_ticket(
                &w.agent_a,
                NewTicket {
                    project_id: w.project_a.clone(),
                    reporter_id: Some(w.contact_a.user_id.clone()),
                    title: "DB slow after patch".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let e =
            app.review_change(&w.agent_a, &ch.id, ReviewInput { outcome: "great".into(), ..Default::default() }, None).await.unwrap_err();
        assert_eq!(fields(e), vec![("outcome".to_string(), "invalid_choice")], "{}", t.label);
        let reviewed = app
            .review_change(
                &w.agent_a,
                &ch.id,
                ReviewInput {
                    outcome: "partially_successful".into(),
                    notes: Some("slow queries for an hour".into()),
                    caused_incident_ids: vec![inc.number.clone()],
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!((reviewed.status.as_str(), reviewed.review_outcome.as_deref()), ("reviewed", Some("partially_successful")));
        let linked = app.change_incidents(&w.agent_a, &ch.id).await.unwrap();
        assert_eq!(linked.iter().map(|l| l.number.as_str()).collect::<Vec<_>>(), vec![inc.number.as_str()], "{}", t.label);
        app.transition_change(&w.agent_a, &ch.id, "closed", None, None).await.unwrap();
        let log: Vec<String> = app.change_status_log(&w.agent_a, &ch.id).await.unwrap().into_iter().map(|r| r.to_status).collect();
        assert_eq!(
            log,
            ["draft", "submitted", "assessed", "approved", "scheduled", "implementing", "implemented", "reviewed", "closed"],
            "{}",
            t.label
        );
        // a problem names the change that fixed it
        let p = app
            .create_problem(&w.agent_a, NewProblem { project_id: w.project_a.clone(), title: "Slow DB".into(), ..Default::default() })
            .await
            .unwrap();
        let step = |action: &str| ProblemStep { action: action.into(), ..Default::default() };
        app.transition_problem(&w.agent_a, &p.id, ProblemStep { agent_id: Some(w.agent_a.user_id.clone()), ..step("investigate") }, None)
            .await
            .unwrap();
        let rca = ProblemStep {
            rca_method: Some("five_whys".into()),
            findings: Some("missing index".into()),
            root_cause: Some("missing index".into()),
            ..step("record_rca")
        };
        app.transition_problem(&w.agent_a, &p.id, rca, None).await.unwrap();
        let e = app
            .transition_problem(
                &w.agent_a,
                &p.id,
                ProblemStep { resolution_notes: Some("patched".into()), fixing_change_id: Some("CHG-999999".into()), ..step("resolve") },
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(fields(e), vec![("fixing_change_id".to_string(), "not_found")], "{}", t.label);
        let resolved = app
            .transition_problem(
                &w.agent_a,
                &p.id,
                ProblemStep { resolution_notes: Some("patched".into()), fixing_change_id: Some(ch.number.clone()), ..step("resolve") },
                None,
            )
            .await
            .unwrap();
        assert_eq!(resolved.fixing_change_id.as_deref(), Some(ch.id.as_str()), "{}", t.label);
        assert!(app.change_history(&w.agent_a, &ch.id).await.unwrap().len() >= 9, "{}: every step is audited", t.label);
    }
}

#[tokio::test]
async fn standard_changes_come_from_active_templates_and_skip_the_cab() {
    for t in TestDb::migrated_all().await {
        let (app, clock) = app_on(&t);
        let w = world(&app).await;
        let manager = staff(&app, "sm@keel.test", vec![Role::ServiceManager]).await;
        let tpl_input = TemplateInput {
            name: "Add a user to a group".into(),
            implementation_plan: "add; verify".into(),
            back_out_plan: "remove".into(),
            risk_level: "low".into(),
            ..Default::default()
        };
        assert_eq!(app.create_change_template(&w.agent_a, tpl_input.clone()).await.unwrap_err().code(), "forbidden");
        let e = app.create_change_template(&manager, TemplateInput { risk_level: "high".into(), ..tpl_input.clone() }).await.unwrap_err();
        assert_eq!(fields(e), vec![("risk_level".to_string(), "risk_too_high")], "{}", t.label);
        let tpl = app.create_change_template(&manager, tpl_input).await.unwrap();
        let new = |template: Option<String>| NewChange {
            project_id: w.project_a.clone(),
            change_type: "standard".into(),
            template_id: template,
            title: "Add 王芳 to finance".into(),
            ..Default::default()
        };
        let e = app.create_change(&w.agent_a, new(None)).await.unwrap_err();
        assert_eq!(fields(e), vec![("template_id".to_string(), "active_template_required")], "{}", t.label);
        let ch = app.create_change(&w.agent_a, new(Some(tpl.id.clone()))).await.unwrap();
        assert_eq!((ch.implementation_plan.as_deref(), ch.risk_level.as_deref()), (Some("add; verify"), Some("low")), "{}", t.label);
        let e = app.transition_change(&w.agent_a, &ch.id, "assessed", None, None).await.unwrap_err();
        assert_eq!(e.code(), "invalid_transition", "{}: no assessment or CAB for standard changes", t.label);
        app.transition_change(&w.agent_a, &ch.id, "submitted", None, None).await.unwrap();
        let e = app.transition_change(&w.agent_a, &ch.id, "scheduled", None, None).await.unwrap_err();
        assert_eq!(fields(e), vec![("window".to_string(), "window_required")], "{}", t.label);
        let s = clock.now_ms() + HOUR;
        app.update_change(
            &w.agent_a,
            &ch.id,
            ChangePatch { planned_start: Some(s), planned_end: Some(s + HOUR), ..Default::default() },
            None,
        )
        .await
        .unwrap();
        assert_eq!(app.transition_change(&w.agent_a, &ch.id, "scheduled", None, None).await.unwrap().status, "scheduled");
        // a withdrawn template raises no new changes
        app.set_change_template_active(&manager, &tpl.id, false).await.unwrap();
        let e = app.create_change(&w.agent_a, new(Some(tpl.id.clone()))).await.unwrap_err();
        assert_eq!(fields(e), vec![("template_id".to_string(), "active_template_required")], "{}", t.label);
    }
}

#[tokio::test]
async fn the_schedule_shows_conflicts_on_shared_and_dependent_cis_and_freezes() {
    for t in TestDb::migrated_all().await {
        let (app, clock) = app_on(&t);
        let w = world(&app).await;
        app.seed_cmdb_classes().await.unwrap();
        let cab = cab(&app, &w).await;
        let manager = staff(&app, "sm@keel.test", vec![Role::ServiceManager]).await;
        let db = server(&app, &w, "db-01").await;
        let web = server(&app, &w, "web-01").await;
        let other = server(&app, &w, "mail-01").await;
        app.add_relation(&w.agent_a, RelationInput { kind: "depends_on".into(), source_id: web.clone(), target_id: db.clone() })
            .await
            .unwrap();
        let start = clock.now_ms() + 48 * HOUR;
        let any = vec![StepInput { name: "CAB".into(), approvers: vec![user(&cab.a)], quorum: "any".into(), quorum_n: None }];
        let mut ids = Vec::new();
        for (title, ci) in [("patch db", &db), ("patch web", &web), ("patch mail", &other)] {
            let ch = app
                .create_change(
                    &w.agent_a,
                    NewChange {
                        planned_start: Some(start),
                        planned_end: Some(start + 2 * HOUR),
                        ..normal(&w, title, vec![ci.clone()], any.clone())
                    },
                )
                .await
                .unwrap();
            ids.push(ch.id);
        }
        // the first is approved and scheduled
        app.transition_change(&w.agent_a, &ids[0], "submitted", None, None).await.unwrap();
        app.assess_change_risk(&w.agent_a, &ids[0], low_risk(), None).await.unwrap();
        app.transition_change(&w.agent_a, &ids[0], "assessed", None, None).await.unwrap();
        app.decide_change(&cab.a, &ids[0], vote("approve", None)).await.unwrap();
        app.transition_change(&w.agent_a, &ids[0], "scheduled", None, None).await.unwrap();
        // the web change depends on the database: a dependent-CI conflict, shown before approval
        let c = app.change_conflicts(&w.agent_a, &ids[1]).await.unwrap();
        assert_eq!(c.len(), 1, "{}: {c:?}", t.label);
        assert!(matches!(&c[0].conflict, keel_domain::change::Conflict::DependentCi { change_id, .. } if change_id == &ids[0]));
        assert_eq!(c[0].change_number.as_deref(), Some("CHG-000001"));
        assert!(app.change_conflicts(&w.agent_a, &ids[2]).await.unwrap().is_empty(), "{}: unrelated CI", t.label);
        // a freeze covering the mail server
        let e = app
            .create_change_freeze(&manager, FreezeInput { name: "x".into(), starts_at: start, ends_at: start - 1, ci_ids: vec![] })
            .await
            .unwrap_err();
        assert_eq!(fields(e), vec![("planned_end".to_string(), "end_not_after_start")], "{}", t.label);
        assert_eq!(
            app.create_change_freeze(&w.agent_a, FreezeInput { name: "x".into(), starts_at: start, ends_at: start + 1, ci_ids: vec![] })
                .await
                .unwrap_err()
                .code(),
            "forbidden"
        );
        app.create_change_freeze(
            &manager,
            FreezeInput {
                name: "年终封网 year-end freeze".into(),
                starts_at: start - HOUR,
                ends_at: start + 5 * HOUR,
                ci_ids: vec![other.clone()],
            },
        )
        .await
        .unwrap();
        let c = app.change_conflicts(&w.agent_a, &ids[2]).await.unwrap();
        assert!(
            matches!(&c[..], [v] if matches!(&v.conflict, keel_domain::change::Conflict::Freeze { overlap: keel_domain::change::FreezeOverlap::Inside, .. })),
            "{}: {c:?}",
            t.label
        );
        // the calendar: only the scheduled change (drafts are not on it) and the freeze
        let s = app.change_schedule(&w.agent_a, start - 24 * HOUR, start + 24 * HOUR).await.unwrap();
        assert_eq!(s.changes.iter().map(|c| c.number.as_str()).collect::<Vec<_>>(), vec!["CHG-000001"], "{}", t.label);
        assert_eq!(s.freezes.len(), 1);
        // the contact sees no change management
        assert!(matches!(app.change_schedule(&w.contact_a, start, start + HOUR).await, Err(AppError::NotFound)));

        // a dependency through a CI of another customer's project counts only for those who see it
        let hidden = app
            .create_ci(
                &w.admin,
                CiInput {
                    class_key: "application".into(),
                    name: "beta middleware".into(),
                    project_id: Some(w.project_b.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id;
        let edge = server(&app, &w, "edge-01").await;
        for (s, t) in [(&edge, &hidden), (&hidden, &db)] {
            app.add_relation(&w.admin, RelationInput { kind: "depends_on".into(), source_id: s.clone(), target_id: t.clone() })
                .await
                .unwrap();
        }
        let ch = app
            .create_change(
                &w.agent_a,
                NewChange {
                    planned_start: Some(start),
                    planned_end: Some(start + HOUR),
                    ..normal(&w, "patch edge", vec![edge], any.clone())
                },
            )
            .await
            .unwrap();
        assert!(app.change_conflicts(&w.agent_a, &ch.id).await.unwrap().is_empty(), "{}: traversed a CI the agent cannot see", t.label);
        let c = app.change_conflicts(&w.admin, &ch.id).await.unwrap();
        assert!(
            matches!(&c[..], [v] if matches!(&v.conflict, keel_domain::change::Conflict::DependentCi { change_id, .. } if change_id == &ids[0])),
            "{}: {c:?}",
            t.label
        );
    }
}

#[tokio::test]
async fn delegates_and_customers_approve_and_other_tenants_see_nothing() {
    for t in TestDb::migrated_all().await {
        let (app, clock) = app_on(&t);
        let w = world(&app).await;
        let cab = cab(&app, &w).await;
        // the customer's SLA asks for their approval of changes
        let sla_id = insert_sla(&app, &w).await;
        app.set_sla_change_approval(&w.admin, &sla_id, true).await.unwrap();
        assert_eq!(app.set_sla_change_approval(&w.agent_a, &sla_id, true).await.unwrap_err().code(), "forbidden");

        let steps =
            vec![StepInput { name: "CAB".into(), approvers: vec![user(&cab.a), user(&cab.b)], quorum: "all".into(), quorum_n: None }];
        let ch = app
            .create_change(&w.agent_a, NewChange { change_type: "emergency".into(), ..normal(&w, "Hotfix", vec![], steps) })
            .await
            .unwrap();
        let v = app.change_approval(&w.agent_a, &ch.id).await.unwrap();
        assert_eq!(v.steps.iter().map(|s| s.source.as_str()).collect::<Vec<_>>(), vec!["cab", "customer"], "{}", t.label);

        // cab.b delegates to cab.c for the week
        let now = clock.now_ms();
        let e = app
            .create_change_delegation(
                &cab.b,
                DelegationInput { delegate_id: cab.b.user_id.clone(), starts_at: now, ends_at: now + HOUR, ..Default::default() },
            )
            .await
            .unwrap_err();
        assert_eq!(fields(e), vec![("delegate".to_string(), "self_delegation")], "{}", t.label);
        assert_eq!(
            app.create_change_delegation(
                &w.agent_a,
                DelegationInput {
                    delegator_id: Some(cab.b.user_id.clone()),
                    delegate_id: w.agent_a.user_id.clone(),
                    starts_at: now,
                    ends_at: now + HOUR
                }
            )
            .await
            .unwrap_err()
            .code(),
            "forbidden"
        );
        app.create_change_delegation(
            &cab.b,
            DelegationInput { delegate_id: cab.c.user_id.clone(), starts_at: now, ends_at: now + 168 * HOUR, ..Default::default() },
        )
        .await
        .unwrap();

        // emergency changes are decided from submission; the customer's contact is not asked yet
        app.transition_change(&w.agent_a, &ch.id, "submitted", None, None).await.unwrap();
        app.decide_change(&cab.a, &ch.id, vote("approve", None)).await.unwrap();
        let e = app.decide_change(&w.contact_a, &ch.id, vote("approve", None)).await.unwrap_err();
        assert_eq!(fields(e), vec![("actor".to_string(), "not_an_approver")], "{}: the customer's step comes second", t.label);
        let v = app.decide_change(&cab.c, &ch.id, vote("approve", None)).await.unwrap();
        let d = v.votes.iter().find(|d| d.actor_id == cab.c.user_id).unwrap();
        assert_eq!(d.approver_id, cab.b.user_id, "{}: cab.c voted for cab.b", t.label);
        assert_eq!(app.get_change(&w.agent_a, &ch.id).await.unwrap().status, "submitted");
        // the contact of the other customer sees nothing; the customer's contact approves
        let other = principal(&app, &contact_of(&app, &w.org_b).await).await;
        assert!(matches!(app.get_change(&other, &ch.id).await, Err(AppError::NotFound)), "{}", t.label);
        assert!(matches!(app.decide_change(&other, &ch.id, vote("approve", None)).await, Err(AppError::NotFound)), "{}", t.label);
        assert!(matches!(app.list_changes(&w.contact_a, &ChangeFilter::default(), &page(CHANGE_SORT)).await, Err(AppError::NotFound)));
        app.decide_change(&w.contact_a, &ch.id, vote("approve", Some("同意"))).await.unwrap();
        assert_eq!(app.get_change(&w.agent_a, &ch.id).await.unwrap().status, "approved", "{}", t.label);
        // the contact may not work on the change
        assert_eq!(app.transition_change(&w.contact_a, &ch.id, "implementing", None, None).await.unwrap_err().code(), "forbidden");
        // staff of another project see nothing of it
        let outsider = staff(&app, "outsider@keel.test", vec![Role::ServiceDeskAgent]).await;
        assert!(matches!(app.get_change(&outsider, &ch.id).await, Err(AppError::NotFound)));
        let listed = app.list_changes(&outsider, &ChangeFilter::default(), &page(CHANGE_SORT)).await.unwrap();
        assert!(listed.items.is_empty(), "{}", t.label);
        let e = app.create_change(&outsider, normal(&w, "sneaky", vec![], vec![])).await.unwrap_err();
        assert_eq!(fields(e), vec![("project_id".to_string(), "unknown_reference")], "{}", t.label);
        // the auditor reads but does not write
        assert_eq!(app.get_change(&w.auditor, &ch.id).await.unwrap().id, ch.id);
        assert!(app.transition_change(&w.auditor, &ch.id, "implementing", None, None).await.is_err());
    }
}

async fn contact_of(app: &App, org: &str) -> String {
    let mut c = app.read().await.unwrap();
    let r: (String,) =
        sqlx::query_as("SELECT id FROM users WHERE organization_id = $1 AND kind = 'contact'").bind(org).fetch_one(&mut *c).await.unwrap();
    r.0
}

/// An active SLA of project A, written directly: the SLA's own lifecycle is not under test.
async fn insert_sla(app: &App, w: &World) -> String {
    let cal = app
        .create_calendar(
            &w.admin,
            keel_app::service_level::CalendarInput {
                name: "Beijing".into(),
                time_zone: "Asia/Shanghai".into(),
                hours: keel_domain::sla::calendar::WeekSpec { mon: vec!["09:00-18:00".into()], ..Default::default() },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = keel_store::new_id();
    let mut c = app.read().await.unwrap();
    sqlx::query(
        "INSERT INTO slas (id, name, project_id, organization_id, calendar_id, status, targets, clock_policy, terms, created_at, updated_at) \
         VALUES ($1, 'Gold', $2, $3, $4, 'active', '[]', '{}', '{}', 1, 1)",
    )
    .bind(&id)
    .bind(&w.project_a)
    .bind(&w.org_a)
    .bind(&cal.id)
    .execute(&mut *c)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn live_cis_change_only_under_a_change_in_implementation_when_enforced() {
    for t in TestDb::migrated_all().await {
        let (app, clock) = app_on(&t);
        let w = world(&app).await;
        app.seed_cmdb_classes().await.unwrap();
        let cab = cab(&app, &w).await;
        let ci = server(&app, &w, "core-sw").await;
        for to in ["in_build", "live"] {
            app.transition_ci(&w.agent_a, &ci, to, None).await.unwrap();
        }
        let edit = |change: Option<&str>| CiInput {
            class_key: "server".into(),
            name: "core-sw".into(),
            project_id: Some(w.project_a.clone()),
            description: Some("new firmware".into()),
            attributes: json!({ "hostname": "core-sw" }),
            change_id: change.map(str::to_string),
            ..Default::default()
        };
        // off (the default): anything goes
        app.update_ci(&w.agent_a, &ci, edit(None), None).await.unwrap();
        assert_eq!(app.set_change_control_mode(&w.agent_a, "enforce").await.unwrap_err().code(), "forbidden");
        assert_eq!(
            fields(app.set_change_control_mode(&w.admin, "strict").await.unwrap_err()),
            vec![("mode".to_string(), "invalid_choice")]
        );
        app.set_change_control_mode(&w.admin, "warn").await.unwrap();
        app.update_ci(&w.agent_a, &ci, edit(None), None).await.unwrap();
        let h = app.history(keel_app::cmdb::CI_ENTITY, &ci).await.unwrap();
        assert!(format!("{:?}", h.last().unwrap()).contains("change_required"), "{}: the warning is in the trail", t.label);
        app.set_change_control_mode(&w.admin, "enforce").await.unwrap();
        let e = app.update_ci(&w.agent_a, &ci, edit(None), None).await.unwrap_err();
        assert_eq!(fields(e), vec![("change_id".to_string(), "change_required")], "{}", t.label);
        let e = app.update_ci(&w.agent_a, &ci, edit(Some("CHG-000404")), None).await.unwrap_err();
        assert_eq!(fields(e), vec![("change_id".to_string(), "unknown_reference")], "{}", t.label);
        // an emergency change approved and in implementation authorises it
        let steps = vec![StepInput { name: "ECAB".into(), approvers: vec![user(&cab.a)], quorum: "any".into(), quorum_n: None }];
        let ch = app
            .create_change(&w.agent_a, NewChange { change_type: "emergency".into(), ..normal(&w, "Firmware", vec![ci.clone()], steps) })
            .await
            .unwrap();
        let e = app.update_ci(&w.agent_a, &ci, edit(Some(&ch.number)), None).await.unwrap_err();
        assert_eq!(fields(e), vec![("change_id".to_string(), "change_not_authorising")], "{}: a draft authorises nothing", t.label);
        app.transition_change(&w.agent_a, &ch.id, "submitted", None, None).await.unwrap();
        app.decide_change(&cab.a, &ch.id, vote("approve", None)).await.unwrap();
        app.transition_change(&w.agent_a, &ch.id, "implementing", None, None).await.unwrap();
        let updated = app.update_ci(&w.agent_a, &ci, edit(Some(&ch.number)), None).await.unwrap();
        assert_eq!(updated.description.as_deref(), Some("new firmware"));
        let _ = clock;
    }
}

#[tokio::test]
async fn approvers_are_asked_step_by_step_and_the_requester_hears_the_outcome() {
    use keel_app::testing::SmtpSink;
    use keel_store::notifications::DeliveryFilter;
    for t in TestDb::migrated_all().await {
        let sink = SmtpSink::start().await;
        let (app, clock) = app_on(&t);
        let app = app.with_notify(sink.config());
        let w = world(&app).await;
        app.seed_cmdb_classes().await.unwrap();
        let cab = cab(&app, &w).await;
        let manager = staff(&app, "sm@keel.test", vec![Role::ServiceManager]).await;
        let deputy = app
            .create_user(
                &w.admin,
                NewUser {
                    email: "deputy@keel.test".into(),
                    display_name: "王副手".into(),
                    locale: Some("zh-CN".into()),
                    roles: vec![Role::CabMember],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let deputy = principal(&app, &deputy.id).await;
        // the third CAB member is away: the deputy acts for them
        let now = clock.now_ms();
        app.create_change_delegation(
            &cab.c,
            DelegationInput { delegator_id: None, delegate_id: deputy.user_id.clone(), starts_at: now - HOUR, ends_at: now + 100 * HOUR },
        )
        .await
        .unwrap();
        let mut steps = two_of_three(&cab);
        steps.push(StepInput { name: "Change manager".into(), approvers: vec![user(&manager)], quorum: "any".into(), quorum_n: None });
        let db = server(&app, &w, "db-01").await;
        let ch = app.create_change(&w.agent_a, normal(&w, "Patch the database", vec![db], steps)).await.unwrap();
        app.transition_change(&w.agent_a, &ch.id, "submitted", None, None).await.unwrap();
        app.assess_change_risk(&w.agent_a, &ch.id, low_risk(), None).await.unwrap();
        assert!(announcements(&app, "change.approval_requested").await.is_empty(), "{}: not before approval opens", t.label);
        app.transition_change(&w.agent_a, &ch.id, "assessed", None, None).await.unwrap();
        let people = |a: &serde_json::Value| {
            let mut v: Vec<String> = a["audience"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
            v.sort();
            v
        };
        let sorted = |ids: &[&Principal]| {
            let mut v: Vec<String> = ids.iter().map(|p| p.user_id.clone()).collect();
            v.sort();
            v
        };
        let asked = announcements(&app, "change.approval_requested").await;
        assert_eq!(asked.len(), 1, "{}", t.label);
        assert_eq!(people(&asked[0]), sorted(&[&cab.a, &cab.b, &cab.c, &deputy]), "{}: the step's approvers and the deputy", t.label);
        assert_eq!((asked[0]["entity_type"].as_str(), asked[0]["vars"]["step"].as_str()), (Some("change"), Some("CAB")));
        assert_eq!(asked[0]["vars"]["number"], "CHG-000001");

        // one vote does not decide the step: nobody else is asked yet
        app.decide_change(&cab.a, &ch.id, vote("approve", None)).await.unwrap();
        assert_eq!(announcements(&app, "change.approval_requested").await.len(), 1, "{}", t.label);
        // the deputy's vote for the absent member makes two of three: the change manager is asked
        let for_c = DecisionInput { verdict: "approve".into(), reason: None, on_behalf_of: Some(user(&cab.c)) };
        app.decide_change(&deputy, &ch.id, for_c).await.unwrap();
        let asked = announcements(&app, "change.approval_requested").await;
        assert_eq!(asked.len(), 2, "{}", t.label);
        assert_eq!(people(&asked[1]), sorted(&[&manager]), "{}", t.label);
        assert_eq!(asked[1]["vars"]["step"], "Change manager");
        assert!(announcements(&app, "change.approved").await.is_empty());
        app.decide_change(&manager, &ch.id, vote("approve", None)).await.unwrap();
        let approved = announcements(&app, "change.approved").await;
        assert_eq!(approved.len(), 1, "{}", t.label);
        assert_eq!(people(&approved[0]), sorted(&[&w.agent_a]), "{}: the requester", t.label);

        // a rejection tells the requester where and why
        let one = vec![StepInput { name: "CAB".into(), approvers: vec![user(&cab.a)], quorum: "any".into(), quorum_n: None }];
        let ch2 = app.create_change(&w.agent_a, normal(&w, "Move the data centre", vec![], one)).await.unwrap();
        app.transition_change(&w.agent_a, &ch2.id, "submitted", None, None).await.unwrap();
        app.assess_change_risk(&w.agent_a, &ch2.id, low_risk(), None).await.unwrap();
        app.transition_change(&w.agent_a, &ch2.id, "assessed", None, None).await.unwrap();
        app.decide_change(&cab.a, &ch2.id, vote("reject", Some("the back-out plan is untested"))).await.unwrap();
        let rejected = announcements(&app, "change.rejected").await;
        assert_eq!(rejected.len(), 1, "{}", t.label);
        assert_eq!(
            (rejected[0]["vars"]["step"].as_str(), rejected[0]["vars"]["reason"].as_str()),
            (Some("CAB"), Some("the back-out plan is untested"))
        );

        // through the dispatcher: each mailed in their language, the actor of each step excepted
        app.dispatch_announcements().await.unwrap();
        app.deliver_due(100).await.unwrap();
        let subjects = |to: &str| sink.to(to).iter().map(|m| m.subject()).collect::<Vec<_>>();
        for member in ["cab1@keel.test", "cab2@keel.test", "cab3@keel.test"] {
            assert!(subjects(member).contains(&"[CHG-000001] Approval requested: Patch the database".to_string()), "{}: {member}", t.label);
        }
        assert_eq!(subjects("deputy@keel.test"), ["[CHG-000001] 请审批变更：Patch the database"], "{}", t.label);
        assert_eq!(subjects("sm@keel.test"), ["[CHG-000001] Approval requested: Patch the database"], "{}", t.label);
        let mut to_requester = subjects("agent@keel.test");
        to_requester.sort();
        assert_eq!(
            to_requester,
            ["[CHG-000001] Change approved: Patch the database", "[CHG-000002] Change rejected: Move the data centre"],
            "{}",
            t.label
        );
        let d = app
            .list_deliveries(&w.admin, &DeliveryFilter { event_kind: Some("change.rejected".into()), ..Default::default() })
            .await
            .unwrap();
        assert!(d[0].body_text.contains("Reason: the back-out plan is untested"), "{}", d[0].body_text);
        let d = app
            .list_deliveries(&w.admin, &DeliveryFilter { event_kind: Some("change.approval_requested".into()), ..Default::default() })
            .await
            .unwrap();
        let zh = d.iter().find(|d| d.recipient == "deputy@keel.test").unwrap();
        assert!(zh.body_text.contains("3 名批准人中 2 名同意即可") && zh.body_text.contains("常规变更"), "{}", zh.body_text);
    }
}

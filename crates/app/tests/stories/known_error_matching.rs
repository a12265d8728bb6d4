//! Problem management: the known errors suggested for a ticket being logged are ranked by the
//! ticket's configuration items (the same CI, or one it runs on), its category and its text,
//! each with why it matched; a ticket names only CIs its author may see; a contact is only
//! ever offered known errors published for their organisation.

use super::cmdb::{ci, relate, setup};
use super::*;
use keel_app::incidents::{CategoryInput, NewTicket};
use keel_app::problems::{KnownErrorSuggestion, NewProblem, ProblemStep, SuggestInput, SuggestionReason};
use keel_domain::cmdb::RelationType;
use keel_store::incidents::TicketRecord;
use serde_json::json;

fn step(action: &str) -> ProblemStep {
    ProblemStep { action: action.into(), ..Default::default() }
}

/// A problem with a workaround and its known error (published or not).
async fn known_error(app: &App, w: &World, team: &str, title: &str, cis: Vec<String>, incidents: Vec<String>, publish: bool) -> String {
    let p = app
        .create_problem(
            &w.agent_a,
            NewProblem {
                project_id: w.project_a.clone(),
                title: title.into(),
                ci_ids: cis,
                incident_ids: incidents,
                source: Some("proactive".into()),
                team_id: Some(team.to_string()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let wa = ProblemStep { workaround: Some("Restart it".into()), ..step("record_workaround") };
    app.transition_problem(&w.agent_a, &p.id, wa, None).await.unwrap();
    let ke = ProblemStep {
        language: Some("en".into()),
        title: Some(title.into()),
        symptoms: Some(format!("{title} (symptoms)")),
        publish_to_portal: Some(publish),
        ..step("declare_known_error")
    };
    app.transition_problem(&w.agent_a, &p.id, ke, None).await.unwrap();
    app.get_problem(&w.agent_a, &p.id).await.unwrap().names.known_error_number.unwrap()
}

/// An incident the agent logs for the contact.
async fn incident(app: &App, w: &World, title: &str, category: Option<&str>, cis: Vec<String>) -> keel_app::Result<TicketRecord> {
    let t = NewTicket {
        project_id: w.project_a.clone(),
        reporter_id: Some(w.contact_a.user_id.clone()),
        title: title.into(),
        category_id: category.map(str::to_string),
        ci_ids: cis,
        ..Default::default()
    };
    app.create_ticket(&w.agent_a, t).await
}

fn ranked(v: &[KnownErrorSuggestion]) -> Vec<(String, Vec<SuggestionReason>)> {
    v.iter().map(|s| (s.known_error.number.clone(), s.reasons.clone())).collect()
}

#[tokio::test]
async fn suggestions_rank_the_same_ci_and_category_above_text_and_keep_to_what_the_reader_may_see() {
    use SuggestionReason::*;
    for t in TestDb::migrated_all().await {
        let (app, w) = setup(&t).await;
        let team = app
            .create_team(&w.admin, TeamInput { name: "Ops".into(), member_ids: vec![w.agent_a.user_id.clone()], ..Default::default() })
            .await
            .unwrap()
            .id;
        let network = app
            .create_category(&w.admin, CategoryInput { code: "net".into(), name: "Network".into(), ..Default::default() })
            .await
            .unwrap()
            .id;
        let server = ci(&app, &w.admin, "server", "srv-mail-01", Some(&w.project_a), json!({ "hostname": "srv-mail-01" })).await;
        let mail = ci(&app, &w.admin, "application", "Mail", Some(&w.project_a), json!({})).await;
        relate(&app, &w.admin, &mail.id, RelationType::RunsOn, &server.id).await;
        let foreign = ci(&app, &w.admin, "server", "beta-db", Some(&w.project_b), json!({ "hostname": "beta-db" })).await;

        let text_only = known_error(&app, &w, &team, "Mail is slow in the morning", vec![], vec![], true).await;
        let on_server = known_error(&app, &w, &team, "Kernel panics after patching", vec![server.id.clone()], vec![], false).await;
        let switch = incident(&app, &w, "Switch port flaps", Some(&network), vec![]).await.unwrap();
        let by_category = known_error(&app, &w, &team, "Switch ports flap", vec![], vec![switch.number.clone()], false).await;

        // the CI itself outranks the text; a CI it runs on comes next; category and text tie,
        // the text match first
        let typed = SuggestInput {
            title: "mail slow".into(),
            ci_ids: vec![server.id.clone()],
            category_id: Some(network.clone()),
            ..Default::default()
        };
        let s = app.suggest_known_errors(&w.agent_a, &typed).await.unwrap();
        assert_eq!(
            ranked(&s),
            [(on_server.clone(), vec![SameCi]), (text_only.clone(), vec![Text]), (by_category.clone(), vec![SameCategory])],
            "{}",
            t.label
        );
        let s = app.suggest_known_errors(&w.agent_a, &SuggestInput { ci_ids: vec![mail.id.clone()], ..typed.clone() }).await.unwrap();
        assert_eq!(ranked(&s)[0], (on_server.clone(), vec![RelatedCi]), "{}: the mail application runs on the server", t.label);
        // an incident naming the CI makes its problem's known error match it too
        let on_mail = incident(&app, &w, "Mail bounces", None, vec![mail.id.clone()]).await.unwrap();
        let links = app.list_links(&w.agent_a, &on_mail.id).await.unwrap();
        assert_eq!(links.iter().map(|l| (l.target_type.as_str(), l.target_id.as_str())).collect::<Vec<_>>(), [("ci", mail.id.as_str())]);
        let bounces = known_error(&app, &w, &team, "Mail bounces", vec![], vec![on_mail.number.clone()], false).await;
        let s = app.suggest_known_errors(&w.agent_a, &SuggestInput { ci_ids: vec![mail.id.clone()], ..Default::default() }).await.unwrap();
        assert_eq!(ranked(&s), [(bounces, vec![SameCi]), (on_server.clone(), vec![RelatedCi])], "{}", t.label);

        // a CI the agent may not see is no reason, and cannot be named on a ticket
        let s =
            app.suggest_known_errors(&w.agent_a, &SuggestInput { ci_ids: vec![foreign.id.clone()], ..Default::default() }).await.unwrap();
        assert!(s.is_empty(), "{}: {:?}", t.label, ranked(&s));
        let refused =
            incident(&app, &w, "Beta database down", None, vec![server.id.clone(), foreign.id.clone(), "no-such-ci".into()]).await;
        match refused {
            Err(AppError::Validation(list)) => assert_eq!(
                list.iter().map(|e| (e.field.as_str(), e.code)).collect::<Vec<_>>(),
                [("ci_ids[1]", "unknown_ci"), ("ci_ids[2]", "unknown_ci")]
            ),
            other => panic!("{}: expected a refusal, got {other:?}", t.label),
        }
        // repeated ids count once: 51 copies of one visible CI and another visible CI are two CIs
        let mut repeated = vec![server.id.clone(); 51];
        repeated.push(mail.id.clone());
        let twice = incident(&app, &w, "Server and mail down", None, repeated).await.unwrap();
        assert_eq!(app.list_links(&w.agent_a, &twice.id).await.unwrap().len(), 2, "{}", t.label);
        // nor can a CI the agent may not see be linked to an existing ticket
        let linked = app.link_record(&w.agent_a, &twice.id, "ci", &foreign.id).await;
        assert!(
            matches!(linked, Err(AppError::Validation(ref l)) if l[0].field == "target_id" && l[0].code == "unknown_reference"),
            "{}: {linked:?}",
            t.label
        );

        // a contact: no CI at all, and only the published known error
        let contact_ticket = NewTicket { project_id: w.project_a.clone(), title: "Mail slow".into(), ..Default::default() };
        let refused = app.create_ticket(&w.contact_a, NewTicket { ci_ids: vec![mail.id.clone()], ..contact_ticket.clone() }).await;
        assert!(matches!(refused, Err(AppError::Validation(ref l)) if l[0].code == "unknown_ci"), "{}: {refused:?}", t.label);
        app.create_ticket(&w.contact_a, contact_ticket).await.unwrap();
        let s = app.suggest_known_errors(&w.contact_a, &typed).await.unwrap();
        assert_eq!(ranked(&s), [(text_only.clone(), vec![Text])], "{}", t.label);
        let s =
            app.suggest_known_errors(&w.contact_a, &SuggestInput { title: "kernel panics switch ports".into(), ..typed }).await.unwrap();
        assert!(s.is_empty(), "{}: {:?}", t.label, ranked(&s));
    }
}

#[tokio::test]
async fn a_problem_whose_cis_are_edited_stops_and_starts_matching_them() {
    use SuggestionReason::*;
    use keel_app::problems::ProblemPatch;
    for t in TestDb::migrated_all().await {
        let (app, w) = setup(&t).await;
        let team = app
            .create_team(&w.admin, TeamInput { name: "Ops".into(), member_ids: vec![w.agent_a.user_id.clone()], ..Default::default() })
            .await
            .unwrap()
            .id;
        let a = ci(&app, &w.admin, "server", "srv-a", Some(&w.project_a), json!({ "hostname": "srv-a" })).await;
        let b = ci(&app, &w.admin, "server", "srv-b", Some(&w.project_a), json!({ "hostname": "srv-b" })).await;
        let number = known_error(&app, &w, &team, "Disk fills up", vec![a.id.clone()], vec![], false).await;
        let problem = app.get_known_error(&w.agent_a, &number).await.unwrap().problem_id;
        let matching = async |ci: &str| {
            let input = SuggestInput { ci_ids: vec![ci.to_string()], ..Default::default() };
            ranked(&app.suggest_known_errors(&w.agent_a, &input).await.unwrap())
        };
        let same_ci = vec![(number.clone(), vec![SameCi])];
        assert_eq!((matching(&a.id).await, matching(&b.id).await), (same_ci.clone(), vec![]), "{}", t.label);
        let edit = async |cis: Vec<String>| {
            app.update_problem(&w.agent_a, &problem, ProblemPatch { ci_ids: Some(cis), ..Default::default() }, None).await.unwrap()
        };
        // moved from one CI to the other
        edit(vec![b.id.clone()]).await;
        assert_eq!((matching(&a.id).await, matching(&b.id).await), (vec![], same_ci.clone()), "{}", t.label);
        // both, then none
        edit(vec![a.id.clone(), b.id.clone()]).await;
        assert_eq!((matching(&a.id).await, matching(&b.id).await), (same_ci.clone(), same_ci.clone()), "{}", t.label);
        edit(vec![]).await;
        assert_eq!((matching(&a.id).await, matching(&b.id).await), (vec![], vec![]), "{}", t.label);
        // an edit that leaves the CIs alone keeps them
        edit(vec![a.id.clone()]).await;
        app.update_problem(&w.agent_a, &problem, ProblemPatch { title: Some("Disk fills up at night".into()), ..Default::default() }, None)
            .await
            .unwrap();
        assert_eq!(matching(&a.id).await, same_ci, "{}", t.label);
        // the migration's backfill from the JSON lists finds the same rows on either database
        let sql = keel_store::migrate::MIGRATIONS.iter().find(|m| m.version == 31).unwrap().sql;
        let backfill = &sql[sql.find("INSERT INTO problem_cis").unwrap()..];
        let mut c = t.db.begin().await.unwrap();
        sqlx::query("DELETE FROM problem_cis").execute(&mut *c).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(backfill)).execute(&mut *c).await.unwrap();
        c.commit().await.unwrap();
        assert_eq!((matching(&a.id).await, matching(&b.id).await), (same_ci.clone(), vec![]), "{}: backfilled", t.label);
    }
}

//! Service desk agent workspace: maintained queue counters and saved, shared views.

use super::*;
use keel_app::directory::{TeamInput, scope_of};
use keel_app::incidents::{NewTicket, Queue, TransitionInput};
use keel_domain::incident::{PendingReason, ResolutionCode};
use keel_store::incidents::{QueueCounts, TicketFilter, count_by_scan};
use rand::{RngExt, SeedableRng};

/// The queue tabs counted from the tickets themselves.
async fn scanned_counts(app: &App, p: &Principal) -> QueueCounts {
    let mut c = app.read().await.unwrap();
    let scope = scope_of(p);
    let mut n = [0i64; 6];
    for (i, q) in Queue::ALL.into_iter().enumerate() {
        let mut f = TicketFilter::default();
        q.apply(&mut f, &p.user_id);
        n[i] = count_by_scan(&mut c, &scope, &f).await.unwrap();
    }
    QueueCounts { mine: n[0], team: n[1], unassigned: n[2], pending: n[3], open: n[4], all: n[5] }
}

#[tokio::test]
async fn queue_counters_equal_a_fresh_count_after_random_creates_assigns_and_transitions() {
    for t in TestDb::migrated_all().await {
        let (app, _clock) = app_on(&t);
        let w = world(&app).await;
        let team = app
            .create_team(&w.admin, TeamInput { name: "一线 L1".into(), member_ids: vec![w.agent_a.user_id.clone()], ..Default::default() })
            .await
            .unwrap();
        let agent = principal(&app, &w.agent_a.user_id).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let mut tickets: Vec<String> = Vec::new();
        let mut changed = 0;
        for step in 0..240 {
            if tickets.is_empty() || rng.random_range(0..4) == 0 {
                let (project, reporter) = if rng.random_bool(0.7) {
                    (w.project_a.clone(), w.contact_a.user_id.clone())
                } else {
                    let mut c = app.read().await.unwrap();
                    let han = keel_store::accounts::get_user_by_email(&mut c, "han@beta.test").await.unwrap().unwrap();
                    (w.project_b.clone(), han.id)
                };
                let tk = app
                    .create_ticket(
                        &w.admin,
                        NewTicket { project_id: project, reporter_id: Some(reporter), title: format!("step {step}"), ..Default::default() },
                    )
                    .await
                    .unwrap();
                tickets.push(tk.id);
                continue;
            }
            let id = tickets[rng.random_range(0..tickets.len())].clone();
            let tk = app.get_ticket(&w.admin, &id).await.unwrap();
            let actions = app.ticket_actions(&w.admin, &tk).await.unwrap();
            if actions.is_empty() {
                continue;
            }
            let a = actions[rng.random_range(0..actions.len())];
            let input = TransitionInput {
                action: a.as_str().into(),
                team_id: rng.random_bool(0.7).then(|| team.id.clone()),
                agent_id: rng.random_bool(0.5).then(|| w.agent_a.user_id.clone()),
                pending_reason: Some(PendingReason::ALL[0].as_str().into()),
                note: Some("note".into()),
                resolution_code: Some(ResolutionCode::ALL[0].as_str().into()),
                resolution_notes: Some("done".into()),
                reason: Some("reason".into()),
                duplicate_of: Some(tickets[0].clone()),
            };
            // refused steps (e.g. an agent outside the project) must leave the counters alone too
            if app.transition_ticket(&w.admin, &id, input, None).await.is_ok() {
                changed += 1;
            }
        }
        assert!(changed > 30, "{}: only {changed} transitions went through", t.label);
        for p in [&w.admin, &agent, &w.contact_a] {
            let counted = app.queue_counts(p).await.unwrap();
            assert_eq!(counted, scanned_counts(&app, p).await, "{}: {}", t.label, p.user_id);
            let by_team = TicketFilter { team_id: Some(team.id.clone()), statuses: vec!["assigned".into()], ..Default::default() };
            let mut c = app.read().await.unwrap();
            let scanned = count_by_scan(&mut c, &scope_of(p), &by_team).await.unwrap();
            drop(c);
            assert_eq!(app.count_tickets(p, &by_team).await.unwrap(), scanned, "{}", t.label);
        }
        let admin_counts = app.queue_counts(&w.admin).await.unwrap();
        assert!(admin_counts.all as usize == tickets.len() && admin_counts.open > 0 && admin_counts.open < admin_counts.all, "{}", t.label);
        assert!(
            app.queue_counts(&w.contact_a).await.unwrap().all < admin_counts.all,
            "{}: a contact counts only their organisation",
            t.label
        );

        // a rebuild (what bulk loaders call) gives the same numbers
        {
            let mut tx = app.db.begin().await.unwrap();
            sqlx::query("UPDATE ticket_queue_counters SET n = n + 7").execute(&mut *tx).await.unwrap();
            keel_store::incidents::rebuild_queue_counters(&mut tx).await.unwrap();
            tx.commit().await.unwrap();
        }
        assert_eq!(app.queue_counts(&w.admin).await.unwrap(), admin_counts, "{}", t.label);
    }
}

#[tokio::test]
async fn saved_views_are_shared_with_their_audience_only_and_edited_by_owner_or_admin() {
    use keel_app::incident_views::{ViewFilters, ViewInput};
    for t in TestDb::migrated_all().await {
        let (app, _clock) = app_on(&t);
        let w = world(&app).await;
        let team = app
            .create_team(&w.admin, TeamInput { name: "二线 L2".into(), member_ids: vec![w.agent_a.user_id.clone()], ..Default::default() })
            .await
            .unwrap();
        let agent = principal(&app, &w.agent_a.user_id).await;
        let other = staff(&app, "other@keel.test", vec![Role::ServiceDeskAgent]).await;
        for (i, urgency) in ["high", "low", "low"].into_iter().enumerate() {
            app.create_ticket(
                &w.admin,
                NewTicket {
                    project_id: w.project_a.clone(),
                    reporter_id: Some(w.contact_a.user_id.clone()),
                    title: format!("printer {i}"),
                    impact: Some("high".into()),
                    urgency: Some(urgency.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        }
        let input = |name: &str, audience: &str| ViewInput {
            name: name.into(),
            audience: audience.into(),
            team_id: Some(team.id.clone()),
            filters: ViewFilters { queue: Some("open".into()), q: Some("printer".into()), ..Default::default() },
            sort: "-updated_at".into(),
            columns: vec!["number".into(), "title".into(), "team".into()],
        };

        // bad input names every field
        let e = app
            .create_view(
                &agent,
                ViewInput {
                    name: " ".into(),
                    audience: "world".into(),
                    sort: "password".into(),
                    columns: vec!["secret".into()],
                    filters: ViewFilters { statuses: vec!["lost".into()], ..Default::default() },
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        let named = fields(e);
        for f in ["name", "audience", "sort", "columns", "filters.statuses"] {
            assert!(named.iter().any(|(n, _)| n == f), "{}: {f} not in {named:?}", t.label);
        }

        let mine = app.create_view(&agent, input("Mine only", "private")).await.unwrap();
        let teams = app.create_view(&agent, input("L2 printers", "team")).await.unwrap();
        let all = app.create_view(&agent, input("Everyone's printers", "everyone")).await.unwrap();
        assert_eq!(mine.columns, vec!["number", "title", "team"]);
        assert_eq!(app.count_view(&agent, &all).await.unwrap(), 3, "{}", t.label);

        // the audience decides who sees a view
        let names = |v: Vec<keel_app::incident_views::IncidentView>| v.into_iter().map(|v| v.record.name).collect::<Vec<_>>();
        assert_eq!(names(app.list_views(&agent).await.unwrap()), vec!["Everyone's printers", "L2 printers", "Mine only"]);
        assert_eq!(names(app.list_views(&other).await.unwrap()), vec!["Everyone's printers"], "{}", t.label);
        assert!(names(app.list_views(&w.contact_a).await.unwrap()).is_empty(), "{}: contacts see no staff views", t.label);
        for id in [&mine.record.id, &teams.record.id] {
            assert!(matches!(app.get_view(&other, id).await, Err(AppError::NotFound)), "{}", t.label);
        }
        assert!(matches!(app.get_view(&w.contact_a, &all.record.id).await, Err(AppError::NotFound)), "{}", t.label);
        // another agent outside the team cannot share with it
        let e = app.create_view(&other, input("theirs", "team")).await.unwrap_err();
        assert!(fields(e).contains(&("team_id".into(), "unknown_reference")), "{}", t.label);

        // only the owner or an administrator edits; others who see it are refused
        assert!(matches!(app.update_view(&other, &all.record.id, input("hijacked", "everyone"), None).await, Err(AppError::Forbidden)));
        assert!(matches!(app.delete_view(&other, &all.record.id).await, Err(AppError::Forbidden)));
        assert!(matches!(app.delete_view(&other, &mine.record.id).await, Err(AppError::NotFound)));
        assert!(!app.get_view(&other, &all.record.id).await.unwrap().editable);
        let renamed = app.update_view(&w.admin, &all.record.id, input("Printers (all)", "everyone"), Some(1)).await.unwrap();
        assert_eq!((renamed.record.name.as_str(), renamed.record.owner_id.as_str()), ("Printers (all)", agent.user_id.as_str()));
        assert!(matches!(app.update_view(&agent, &all.record.id, input("stale", "everyone"), Some(1)).await, Err(AppError::Stale)));
        app.delete_view(&agent, &mine.record.id).await.unwrap();
        assert!(matches!(app.get_view(&agent, &mine.record.id).await, Err(AppError::NotFound)));

        // a contact's own view never reaches beyond their organisation, and they cannot share
        let e = app.create_view(&w.contact_a, input("share", "everyone")).await.unwrap_err();
        assert!(fields(e).contains(&("audience".into(), "invalid_choice")), "{}", t.label);
        let snoop = app
            .create_view(
                &w.contact_a,
                ViewInput {
                    name: "Beta's".into(),
                    filters: ViewFilters { organization_id: Some(w.org_b.clone()), ..Default::default() },
                    columns: vec!["number".into(), "agent".into(), "title".into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(snoop.columns, vec!["number", "title"], "{}: staff columns are dropped for contacts", t.label);
        assert_eq!(app.count_view(&w.contact_a, &snoop).await.unwrap(), 0, "{}", t.label);
        let own = app.create_view(&w.contact_a, ViewInput { name: "Ours".into(), ..Default::default() }).await.unwrap();
        assert_eq!(app.count_view(&w.contact_a, &own).await.unwrap(), 3, "{}", t.label);
    }
}

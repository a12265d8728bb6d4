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

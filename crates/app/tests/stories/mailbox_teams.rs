//! Service desk email channel, mailboxes per queue: a mailbox's default team receives the
//! tickets its mail creates, assigned by the system in the same transaction.

use super::*;
use keel_app::directory::TeamInput;
use keel_app::incidents::{Queue, TransitionInput};
use keel_app::mail_in::MailboxInput;
use keel_store::incidents::TicketFilter;

fn mail(to: &str, id: &str, subject: &str) -> Vec<u8> {
    format!("From: Li Lei <li.lei@acme.test>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}@acme.test>\r\n\r\nPlease help.\r\n")
        .into_bytes()
}

fn refusal(e: AppError) -> Vec<(String, &'static str)> {
    match e {
        AppError::Validation(list) => list.into_iter().map(|f| (f.field, f.code)).collect(),
        other => panic!("not a validation error: {other:?}"),
    }
}

async fn team(app: &App, w: &World, name: &str, members: Vec<String>) -> String {
    app.create_team(&w.admin, TeamInput { name: name.into(), member_ids: members, ..Default::default() }).await.unwrap().id
}

async fn team_queue(app: &App, p: &Principal) -> Vec<String> {
    let mut f = TicketFilter::default();
    Queue::Team.apply(&mut f, &p.user_id);
    let created = SortKey { name: "created_at", column: "t.created_at", kind: SortKind::Int };
    let page = PageRequest { sort: created, desc: false, after: None, limit: 100 };
    app.list_tickets(p, &f, &page).await.unwrap().items.into_iter().map(|t| t.id).collect()
}

#[tokio::test]
async fn mail_to_a_mailbox_with_a_team_lands_in_that_teams_queue_and_replies_do_not_reassign() {
    for t in TestDb::migrated_all().await {
        let (app, _clock) = app_on(&t);
        let files = std::env::temp_dir().join(format!("keel-mail-files-{}", keel_store::new_id()));
        let app = app.with_files(keel_app::desk::FileStore::new(files, 64 * 1024));
        let w = world(&app).await;
        let sys = Principal::system();
        let l1 = team(&app, &w, "一线 L1", vec![w.agent_a.user_id.clone()]).await;
        let l2 = team(&app, &w, "Network L2", vec![w.agent_a.user_id.clone()]).await;
        let outsider = staff(&app, "beta-ops@keel.test", vec![Role::ServiceDeskAgent]).await;
        let beta_team = team(&app, &w, "Beta DC", vec![outsider.user_id.clone()]).await;
        let agent = principal(&app, &w.agent_a.user_id).await;

        // A team nobody of the project is in, or no team at all, is refused with its field.
        let boxed = |team: &str| MailboxInput {
            address: "desk@acme-ops.keel.test".into(),
            unknown_sender: Some("hold".into()),
            team_id: Some(team.into()),
            ..Default::default()
        };
        let e = app.create_mailbox(&w.admin, &w.project_a, boxed(&beta_team)).await.unwrap_err();
        assert_eq!(refusal(e), vec![("team_id".to_string(), "team_not_in_project")], "{}", t.label);
        let e = app.create_mailbox(&w.admin, &w.project_a, boxed("no-such-team")).await.unwrap_err();
        assert_eq!(refusal(e), vec![("team_id".to_string(), "unknown_reference")]);
        assert!(app.list_mailboxes(&w.admin, &w.project_a).await.unwrap().is_empty(), "nothing half-written");

        let desk = app.create_mailbox(&w.admin, &w.project_a, boxed(&l1)).await.unwrap();
        assert_eq!(desk.team_id.as_deref(), Some(l1.as_str()));
        assert_eq!(app.get_mailbox(&w.agent_a, &desk.id).await.unwrap().team_id.as_deref(), Some(l1.as_str()));
        let plain = MailboxInput { address: "plain@acme-ops.keel.test".into(), ..Default::default() };
        let plain = app.create_mailbox(&w.admin, &w.project_a, plain).await.unwrap();
        assert_eq!(plain.team_id, None);
        let mut teams: Vec<String> = app.mailbox_teams(&w.admin, &w.project_a, None).await.unwrap().into_iter().map(|t| t.0).collect();
        teams.sort();
        let mut serving = vec![l1.clone(), l2.clone()];
        serving.sort();
        assert_eq!(teams, serving, "the Beta team works on another project");

        // Mail to the mailbox with a team: the ticket is in the team's queue, assigned by the
        // system, in the status log and the audit like any assignment.
        let r = app.receive_mail(&sys, &w.project_a, &mail("desk@acme-ops.keel.test", "q-1", "Printer jam")).await.unwrap();
        assert_eq!((r.message.outcome.as_str(), r.message.reason.as_deref()), ("ticket", None), "{}", t.label);
        let ticket = app.get_ticket(&w.agent_a, r.message.ticket_id.as_deref().unwrap()).await.unwrap();
        assert_eq!((ticket.status.as_str(), ticket.team_id.as_deref(), ticket.agent_id.as_deref()), ("assigned", Some(l1.as_str()), None));
        assert_eq!((ticket.reporter_id.as_str(), ticket.channel.as_str()), (w.contact_a.user_id.as_str(), "email"));
        assert_eq!(team_queue(&app, &agent).await, vec![ticket.id.clone()], "{}", t.label);
        assert_eq!(app.queue_counts(&agent).await.unwrap().team, 1);
        let log = app.status_log(&w.agent_a, &ticket.id).await.unwrap();
        let last = log.last().unwrap();
        assert_eq!((last.action.as_deref(), last.to_status.as_str(), last.actor_id.as_str()), (Some("assign"), "assigned", "system"));
        let h = app.ticket_history(&w.agent_a, &ticket.id).await.unwrap();
        let assign = h.iter().find(|e| e.changes.to_string().contains("\"assign\"")).expect("the assignment is audited");
        assert_eq!(assign.actor_id, "system");

        // A reply threaded onto the ticket does not reassign it, even once the desk moved it.
        let moved = TransitionInput { action: "reassign".into(), team_id: Some(l2.clone()), ..Default::default() };
        app.transition_ticket(&w.agent_a, &ticket.id, moved, None).await.unwrap();
        let steps = app.status_log(&w.agent_a, &ticket.id).await.unwrap().len();
        let audited = app.ticket_history(&w.agent_a, &ticket.id).await.unwrap().len();
        let reply = mail("desk@acme-ops.keel.test", "q-2", &format!("Re: [{}] Printer jam", ticket.number));
        let r = app.receive_mail(&sys, &w.project_a, &reply).await.unwrap();
        assert_eq!((r.message.outcome.as_str(), r.message.ticket_id.as_deref()), ("reply", Some(ticket.id.as_str())));
        let after = app.get_ticket(&w.agent_a, &ticket.id).await.unwrap();
        assert_eq!(after.team_id.as_deref(), Some(l2.as_str()), "{}", t.label);
        assert_eq!(app.status_log(&w.agent_a, &ticket.id).await.unwrap().len(), steps);
        let h = app.ticket_history(&w.agent_a, &ticket.id).await.unwrap();
        assert!(!h[audited..].iter().any(|e| e.changes.to_string().contains("\"assign")), "the reply assigns nothing");

        // Mail to the mailbox without a team stays unassigned.
        let r = app.receive_mail(&sys, &w.project_a, &mail("plain@acme-ops.keel.test", "q-3", "Monitor flickers")).await.unwrap();
        let unassigned = app.get_ticket(&w.agent_a, r.message.ticket_id.as_deref().unwrap()).await.unwrap();
        assert_eq!((unassigned.status.as_str(), unassigned.team_id.as_deref()), ("new", None), "{}", t.label);
        assert_eq!(r.message.mailbox_id.as_deref(), Some(plain.id.as_str()));

        // The team deactivated: intake goes on, the ticket unassigned and the message says why;
        // saving the mailbox with that team is refused until the team is changed or cleared.
        let l1_rec = app.get_team(&w.admin, &l1).await.unwrap();
        let off = TeamInput { name: l1_rec.name.clone(), member_ids: l1_rec.member_ids.clone(), active: Some(false), ..Default::default() };
        app.update_team(&w.admin, &l1, off, None).await.unwrap();
        let r = app.receive_mail(&sys, &w.project_a, &mail("desk@acme-ops.keel.test", "q-4", "Scanner offline")).await.unwrap();
        assert_eq!(r.message.outcome, "ticket", "{}", t.label);
        assert!(r.message.reason.as_deref().unwrap().contains("team_inactive"), "{:?}", r.message.reason);
        let orphan = app.get_ticket(&w.agent_a, r.message.ticket_id.as_deref().unwrap()).await.unwrap();
        assert_eq!((orphan.status.as_str(), orphan.team_id.as_deref()), ("new", None));
        let e = app.update_mailbox(&w.admin, &desk.id, boxed(&l1), true).await.unwrap_err();
        assert_eq!(refusal(e), vec![("team_id".to_string(), "team_inactive")]);
        let cleared = app.update_mailbox(&w.admin, &desk.id, MailboxInput { team_id: None, ..boxed("") }, true).await.unwrap();
        assert_eq!(cleared.team_id, None);
        let moved = app.update_mailbox(&w.admin, &desk.id, boxed(&l2), true).await.unwrap();
        assert_eq!(moved.team_id.as_deref(), Some(l2.as_str()));
        assert!(app.integrity_check().await.unwrap().ok());
    }
}

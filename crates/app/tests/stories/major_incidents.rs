//! Incident management: the communication log of a major incident.

use super::*;
use keel_app::incidents::NewTicket;
use keel_app::major_incidents::CommunicationPost;

fn post(audience: &str, medium: &str, summary: &str) -> CommunicationPost {
    CommunicationPost { audience: audience.into(), medium: medium.into(), summary: summary.into(), ..Default::default() }
}

#[tokio::test]
async fn a_major_incident_keeps_a_communication_log_customers_read_their_part_of() {
    for t in TestDb::migrated_all().await {
        let (app, clock) = app_on(&t);
        let w = world(&app).await;
        let ticket = app
            .create_ticket(
                &w.agent_a,
                NewTicket {
                    project_id: w.project_a.clone(),
                    reporter_id: Some(w.contact_a.user_id.clone()),
                    title: "数据中心断电 / data centre power loss".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();

        // not a major incident yet: nothing may be logged
        let e = app.record_major_communication(&w.agent_a, &ticket.id, post("customers", "email", "We are on it")).await.unwrap_err();
        assert!(fields(e).contains(&("major_incident".into(), "not_major")), "{}", t.label);

        app.declare_major_incident(&w.agent_a, &ticket.id, &w.agent_a.user_id, "whole site down", None).await.unwrap();
        let due = clock.now_ms() + 30 * 60_000;
        let to_customers = app
            .record_major_communication(
                &w.agent_a,
                &ticket.number,
                CommunicationPost {
                    next_update_due: Some(due), ..post("customers", "email", "供电已恢复一半，预计 30 分钟内全部恢复")
                },
            )
            .await
            .unwrap();
        assert_eq!((to_customers.seq, to_customers.next_update_due), (1, Some(due)), "{}", t.label);
        let internal =
            app.record_major_communication(&w.agent_a, &ticket.id, post("management", "phone", "Briefed the CIO by phone")).await.unwrap();
        assert_eq!(internal.seq, 2);

        // bad input: named fields, nothing written
        let e = app
            .record_major_communication(
                &w.agent_a,
                &ticket.id,
                CommunicationPost { next_update_due: Some(clock.now_ms() - 1), ..post("press", "pigeon", " ") },
            )
            .await
            .unwrap_err();
        let c = fields(e);
        for field in ["audience", "medium", "summary", "next_update_due"] {
            assert!(c.iter().any(|(f, _)| f == field), "{}: {field} not named in {c:?}", t.label);
        }
        assert_eq!(app.major_communications(&w.agent_a, &ticket.id).await.unwrap().entries.len(), 2);

        // the e-mail to customers went to the notification outbox; the phone call did not
        let sent = announcements(&app, "incident.major_update").await;
        assert_eq!(sent.len(), 1, "{}", t.label);
        assert!(sent[0]["vars"]["summary"].as_str().unwrap().contains("供电"));
        assert!(sent[0]["audience"].as_array().unwrap().iter().any(|a| a["to"] == "customer_contacts"));

        // the customer reads the communications to customers only; another organisation nothing
        let theirs = app.major_communications(&w.contact_a, &ticket.id).await.unwrap();
        assert_eq!(theirs.entries.iter().map(|e| e.summary.as_str()).collect::<Vec<_>>(), vec![to_customers.summary.as_str()]);
        assert!(!theirs.next_update_overdue);
        let contact_b = {
            let mut c = app.read().await.unwrap();
            let u = keel_store::accounts::get_user_by_email(&mut c, "han@beta.test").await.unwrap().unwrap();
            drop(c);
            principal(&app, &u.id).await
        };
        assert!(matches!(app.major_communications(&contact_b, &ticket.id).await, Err(AppError::NotFound)), "{}", t.label);
        let e = app.record_major_communication(&w.contact_a, &ticket.id, post("customers", "portal", "hello")).await.unwrap_err();
        assert!(fields(e).contains(&("actor".into(), "not_staff")));

        // the promise of the latest communication: overdue once its time has passed
        assert!(!app.major_communications(&w.agent_a, &ticket.id).await.unwrap().next_update_overdue);
        let promised = app
            .record_major_communication(
                &w.agent_a,
                &ticket.id,
                CommunicationPost { next_update_due: Some(clock.now_ms() + 15 * 60_000), ..post("customers", "portal", "Still restoring") },
            )
            .await
            .unwrap();
        clock.advance(16 * 60_000);
        assert!(app.major_communications(&w.agent_a, &ticket.id).await.unwrap().next_update_overdue, "{}", t.label);
        assert!(!app.major_communications(&w.contact_a, &ticket.id).await.unwrap().next_update_overdue);

        // every communication is in the audit trail
        let trail = app
            .audit_trail(
                &w.admin,
                &keel_store::audit::TrailFilter {
                    entity_type: Some("major_incident_communication".into()),
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(trail.len(), 3, "{}", t.label);
        assert!(trail.iter().any(|e| e.entity_id == promised.id));
    }
}

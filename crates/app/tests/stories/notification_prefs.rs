//! Communication with customers and staff (§8.3.2) and the job runner: the dispatcher leaves
//! out people who opted out of an event kind, never for a mandatory kind; an administrator's
//! `job.schedule.<kind>` override moves a built-in job's runs at once and after each run.

use super::*;
use keel_app::testing::SmtpSink;
use keel_domain::notification::{Announcement, Audience};

async fn announce(app: &App, kind: &str, to: &[&Principal]) {
    let mut w = app.write(&Principal::system()).await.unwrap();
    let audience = to.iter().map(|p| Audience::Person { id: p.user_id.clone() }).collect();
    let vars = serde_json::json!({"number": "INC-000007", "title": "ERP 无法登录", "due": "2026-11-26 10:00", "percent": 75});
    let a = Announcement { kind: kind.into(), entity_type: "ticket".into(), entity_id: keel_store::new_id(), audience, vars };
    w.announce(&a).await.unwrap();
    w.commit().await.unwrap();
}

#[tokio::test]
async fn people_who_opted_out_are_not_emailed_except_for_mandatory_notices() {
    for t in TestDb::migrated_all().await {
        let sink = SmtpSink::start().await;
        let (app, _) = app_on(&t);
        let app = app.with_notify(sink.config());
        let w = world(&app).await;
        let Err(e) = app.set_notification_opt_outs(&w.contact_a, &["sla.breached".into(), "sla.warning".into()]).await else {
            panic!("a mandatory kind is refused")
        };
        assert_eq!(fields(e), [("opt_outs".to_string(), "mandatory_notification")], "{}", t.label);
        let prefs = app.set_notification_opt_outs(&w.contact_a, &["sla.warning".into(), "sla.warning".into()]).await.unwrap();
        assert_eq!(prefs.iter().filter(|p| !p.subscribed).map(|p| p.event_kind.as_str()).collect::<Vec<_>>(), ["sla.warning"]);
        announce(&app, "sla.warning", &[&w.agent_a, &w.contact_a]).await;
        announce(&app, "sla.breached", &[&w.agent_a, &w.contact_a]).await;
        app.dispatch_announcements().await.unwrap();
        app.deliver_due(100).await.unwrap();
        let subjects = |to: &str| {
            let mut s: Vec<String> = sink.to(to).iter().map(|m| m.subject()).collect();
            s.sort();
            s
        };
        assert_eq!(sink.to("agent@keel.test").len(), 2, "{}: the agent hears of both", t.label);
        let contact = subjects("li.lei@acme.test");
        assert_eq!(contact.len(), 1, "{}: the contact only of the breach: {contact:?}", t.label);
        assert_eq!(contact, subjects("agent@keel.test").into_iter().filter(|s| contact.contains(s)).collect::<Vec<_>>());

        // opting in again takes effect for the next notice; each change is audited
        app.set_notification_opt_outs(&w.contact_a, &[]).await.unwrap();
        announce(&app, "sla.warning", &[&w.contact_a]).await;
        app.dispatch_announcements().await.unwrap();
        app.deliver_due(100).await.unwrap();
        assert_eq!(sink.to("li.lei@acme.test").len(), 2, "{}", t.label);
        let history = app.history("user", &w.contact_a.user_id).await.unwrap();
        let changes = history.iter().filter(|h| h.changes.to_string().contains("notification_opt_outs")).count();
        assert_eq!(changes, 2, "{}", t.label);
        assert!(app.notification_preferences(&w.agent_a).await.unwrap().iter().all(|p| p.subscribed));
    }
}

#[tokio::test]
async fn a_schedule_override_moves_a_builtin_jobs_runs_and_can_be_undone() {
    for t in TestDb::migrated_all().await {
        let (app, clock) = app_on(&t);
        let w = world(&app).await;
        app.seed_jobs().await.unwrap();
        let job = |kind: &'static str| {
            let app = app.clone();
            let admin = w.admin.clone();
            async move { app.list_jobs(&admin, None).await.unwrap().into_iter().find(|j| j.kind == kind).unwrap() }
        };
        assert_eq!(job("sla_review").await.schedule.as_deref(), Some("23 * * * *"));
        assert!(matches!(app.set_job_schedule(&w.auditor, "sla_review", Some("* * * * *")).await, Err(AppError::Forbidden)));
        assert_eq!(app.job_schedules(&w.auditor).await.unwrap().len(), keel_app::jobs::BUILTIN.len());
        let Err(e) = app.set_job_schedule(&w.admin, "sla_review", Some("*/10 * * *")).await else { panic!("four fields") };
        assert_eq!(fields(e), [("schedule".to_string(), "invalid_schedule")]);
        assert!(matches!(app.set_job_schedule(&w.admin, "nope", Some("* * * * *")).await, Err(AppError::NotFound)));

        let s = app.set_job_schedule(&w.admin, "sla_review", Some("*/10 * * * * *")).await.unwrap();
        assert_eq!((s.schedule.as_str(), s.default.as_str()), ("*/10 * * * * *", "23 * * * *"));
        let j = job("sla_review").await;
        assert_eq!((j.schedule.as_deref(), j.run_at), (Some("*/10 * * * * *"), T0 + 10_000), "{}: moved at once", t.label);
        clock.advance(10_000);
        assert!(app.run_due_jobs(20).await.unwrap() >= 1);
        assert_eq!(job("sla_review").await.run_at, T0 + 20_000, "{}: the override decides the next run too", t.label);
        // a restart keeps the override
        app.seed_jobs().await.unwrap();
        assert_eq!(job("sla_review").await.schedule.as_deref(), Some("*/10 * * * * *"));

        let s = app.set_job_schedule(&w.admin, "sla_review", None).await.unwrap();
        assert_eq!((s.schedule.as_str(), s.override_), ("23 * * * *", None));
        let j = job("sla_review").await;
        let next = chrono::DateTime::from_timestamp_millis(j.run_at).unwrap();
        assert_eq!((j.schedule.as_deref(), chrono::Timelike::minute(&next)), (Some("23 * * * *"), 23), "{}", t.label);
        assert_eq!(app.history("setting", "job.schedule.sla_review").await.unwrap().len(), 2);
    }
}

//! Benchmark for service level management (§6.1): after a business calendar changes, the SLA
//! clocks of 100,000 open tickets are recomputed end to end in a SQLite database (read the logs,
//! compute, write the clock rows) by the `sla_recompute` job. Run with
//! `cargo bench -p keel-app --bench sla_recompute` (`KEEL_BENCH_TICKETS` changes the number).

use keel_app::service_level::{CalendarInput, SlaInput};
use keel_app::users::NewUser;
use keel_app::{App, SecurityConfig};
use keel_domain::identity::{Principal, Role};
use keel_domain::sla::agreement::SlaAction;
use keel_domain::sla::calendar::WeekSpec;
use keel_store::sql::Sql;
use keel_store::testing::TestDb;
use std::time::Instant;

const DAY: i64 = 86_400_000;

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("KEEL_BENCH_TICKETS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let t = TestDb::sqlite().await;
    keel_store::migrate::run(&t.db).await.expect("migrations");
    let app = App::new(t.db.clone(), SecurityConfig::default());
    let sys = Principal::system();
    let mk = |email: &str, roles: Vec<Role>| NewUser {
        email: email.into(),
        display_name: email.into(),
        password: Some("correct horse battery".into()),
        roles,
        ..Default::default()
    };
    let sm_u = app.create_user(&sys, mk("sm@keel.test", vec![Role::ServiceManager])).await.expect("user");
    let sm = {
        let mut c = app.read().await.expect("read");
        let u = keel_store::accounts::get_user(&mut c, &sm_u.id).await.expect("get").expect("user");
        keel_app::auth::principal_of(&mut c, &u).await.expect("principal")
    };
    let org = app
        .create_organization(
            &sys,
            keel_app::directory::OrganizationInput { name: "Acme".into(), code: "ACME".into(), ..Default::default() },
        )
        .await
        .expect("org")
        .id;
    let project = app
        .create_project(
            &sys,
            keel_app::directory::ProjectInput {
                code: "OPS".into(),
                name: "Ops".into(),
                organization_id: org.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("project")
        .id;
    let calendar = app.create_china_calendar(&sm, "中国大陆").await.expect("calendar");
    let sla = app
        .create_sla(
            &sm,
            SlaInput { name: "SLA".into(), project_id: project.clone(), calendar_id: calendar.id.clone(), ..Default::default() },
        )
        .await
        .expect("sla")
        .id;
    app.sla_action(&sm, &sla, SlaAction::Approve, None).await.expect("approve");
    app.sla_action(&sm, &sla, SlaAction::Activate, None).await.expect("activate");

    let started = Instant::now();
    let now = app.now();
    let mut tx = t.db.begin().await.expect("tx");
    for chunk in (0..n).collect::<Vec<_>>().chunks(400) {
        let mut tickets = Sql::new(
            "INSERT INTO tickets (id, number, kind, project_id, organization_id, reporter_id, created_by, title, channel, impact, urgency, \
             priority, status, status_changed_at, created_at, updated_at) VALUES ",
        );
        let mut statuses = Sql::new("INSERT INTO ticket_status_log (id, ticket_id, seq, at, to_status, sla_status, actor_id) VALUES ");
        let mut priorities = Sql::new("INSERT INTO ticket_priority_log (id, ticket_id, seq, at, priority, actor_id) VALUES ");
        let mut first_status = true;
        for (j, &i) in chunk.iter().enumerate() {
            let id = format!("{:012}", i);
            let created = now - (i as i64 % 30) * DAY - (i as i64 % 480) * 60_000;
            let priority = ["p1", "p2", "p3", "p4"][i % 4];
            let pending = i % 5 == 0;
            if j > 0 {
                tickets.push(", ");
                priorities.push(", ");
            }
            tickets
                .push("(")
                .push_bind(id.clone())
                .push(", ")
                .push_bind(format!("INC-{i:07}"))
                .push(", 'incident', ")
                .push_bind(project.clone())
                .push(", ")
                .push_bind(org.clone())
                .push(", ")
                .push_bind(sm_u.id.clone())
                .push(", 'bench', 'bench ticket', 'phone', 'medium', 'medium', ")
                .push_bind(priority)
                .push(", ")
                .push_bind(if pending { "pending" } else { "in_progress" })
                .push(", ")
                .push_bind(created + 60_000)
                .push(", ")
                .push_bind(created)
                .push(", ")
                .push_bind(created)
                .push(")");
            priorities
                .push("(")
                .push_bind(format!("p{id}"))
                .push(", ")
                .push_bind(id.clone())
                .push(", 1, ")
                .push_bind(created)
                .push(", ")
                .push_bind(priority)
                .push(", 'bench')");
            let mut log = vec![(created, "new"), (created + 60_000, "in_progress")];
            if pending {
                log.push((created + 120_000, "pending_customer"));
            }
            for (seq, (at, s)) in log.into_iter().enumerate() {
                if !first_status {
                    statuses.push(", ");
                }
                first_status = false;
                statuses
                    .push("(")
                    .push_bind(format!("s{id}-{seq}"))
                    .push(", ")
                    .push_bind(id.clone())
                    .push(", ")
                    .push_bind(seq as i64 + 1)
                    .push(", ")
                    .push_bind(at)
                    .push(", ")
                    .push_bind(s)
                    .push(", ")
                    .push_bind(s)
                    .push(", 'bench')");
            }
        }
        tickets.execute(&mut tx).await.expect("tickets");
        statuses.execute(&mut tx).await.expect("status log");
        priorities.execute(&mut tx).await.expect("priority log");
    }
    tx.commit().await.expect("commit");
    println!("inserted {n} open tickets in {:.1} s", started.elapsed().as_secs_f64());

    let started = Instant::now();
    // the SLA's approval and activation queued recomputes of the project: the first fill
    let jobs = app.run_due_jobs(10).await.expect("first fill");
    println!("first computation of the clocks ({jobs} queued job(s)): {:.1} s", started.elapsed().as_secs_f64());

    // the calendar change: a longer working day; the change enqueues the recompute job
    let day = || vec!["08:30-12:00".to_string(), "13:00-18:00".to_string()];
    let input = CalendarInput {
        name: calendar.name.clone(),
        description: calendar.description.clone(),
        time_zone: calendar.time_zone.clone(),
        hours: WeekSpec { mon: day(), tue: day(), wed: day(), thu: day(), fri: day(), ..Default::default() },
        make_up_hours: Some(calendar.make_up_hours.clone()),
    };
    let started = Instant::now();
    app.update_calendar(&sm, &calendar.id, input, None).await.expect("calendar change");
    let ran = app.run_due_jobs(10).await.expect("jobs");
    let secs = started.elapsed().as_secs_f64();
    let rows: i64 = {
        let mut c = app.read().await.expect("read");
        sqlx::query_scalar("SELECT COUNT(*) FROM ticket_sla_clocks").fetch_one(&mut *c).await.expect("count")
    };
    println!(
        "calendar change -> recompute of {n} tickets ({rows} clock rows) by {ran} job(s): {secs:.1} s ({:.0} tickets/s)",
        n as f64 / secs
    );
}

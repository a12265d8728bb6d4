//! Story tests of the platform use cases, run on SQLite always and on PostgreSQL when
//! `KEEL_TEST_DATABASE_URL` is set, each on a fresh database.

use keel_app::directory::{OrganizationInput, ProjectInput, TeamInput};
use keel_app::users::{NewUser, UserPatch};
use keel_app::{App, AppError, Clock, SecurityConfig};
use keel_domain::audit::AuditFault;
use keel_domain::identity::{AccountKind, Principal, Role};
use keel_store::page::{PageRequest, SortKey, SortKind};
use keel_store::testing::TestDb;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug)]
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

const T0: i64 = 1_780_000_000_000;

fn app_on(t: &TestDb) -> (App, Arc<TestClock>) {
    let clock = Arc::new(TestClock(AtomicI64::new(T0)));
    (App::new(t.db.clone(), SecurityConfig::default()).with_clock(clock.clone()), clock)
}

const NAME_SORT: SortKey = SortKey { name: "name", column: "name", kind: SortKind::Text };
const CODE_SORT: SortKey = SortKey { name: "code", column: "code", kind: SortKind::Text };
const USER_SORT: SortKey = SortKey { name: "display_name", column: "display_name", kind: SortKind::Text };

fn page(sort: SortKey) -> PageRequest {
    PageRequest { sort, desc: false, after: None, limit: 100 }
}

async fn principal(app: &App, id: &str) -> Principal {
    let mut c = app.read().await.unwrap();
    let u = keel_store::accounts::get_user(&mut c, id).await.unwrap().unwrap();
    keel_app::auth::principal_of(&mut c, &u).await.unwrap()
}

async fn staff(app: &App, email: &str, roles: Vec<Role>) -> Principal {
    let u = app
        .create_user(
            &Principal::system(),
            NewUser {
                email: email.into(),
                display_name: email.split('@').next().unwrap().into(),
                password: Some("correct horse battery".into()),
                roles,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    principal(app, &u.id).await
}

/// A small world: two customers, each with a project, a contact, and an agent on one project.
struct World {
    admin: Principal,
    org_a: String,
    org_b: String,
    project_a: String,
    project_b: String,
    agent_a: Principal,
    contact_a: Principal,
    auditor: Principal,
}

async fn world(app: &App) -> World {
    let admin = staff(app, "admin@keel.test", vec![Role::Administrator]).await;
    let org_a = app
        .create_organization(&admin, OrganizationInput { name: "Acme 制造".into(), code: "acme".into(), ..Default::default() })
        .await
        .unwrap()
        .id;
    let org_b = app
        .create_organization(&admin, OrganizationInput { name: "Beta Bank".into(), code: "beta".into(), ..Default::default() })
        .await
        .unwrap()
        .id;
    let agent = staff(app, "agent@keel.test", vec![Role::ServiceDeskAgent]).await;
    let project_a = app
        .create_project(
            &admin,
            ProjectInput {
                code: "ACME-OPS".into(),
                name: "Acme operations".into(),
                organization_id: org_a.clone(),
                member_ids: vec![agent.user_id.clone()],
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let project_b = app
        .create_project(
            &admin,
            ProjectInput { code: "BETA-DC".into(), name: "Beta data centre".into(), organization_id: org_b.clone(), ..Default::default() },
        )
        .await
        .unwrap()
        .id;
    let c = app
        .create_user(
            &admin,
            NewUser {
                kind: AccountKind::Contact,
                email: "li.lei@acme.test".into(),
                display_name: "李雷".into(),
                organization_id: Some(org_a.clone()),
                password: Some("portal password 1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    app.create_user(
        &admin,
        NewUser {
            kind: AccountKind::Contact,
            email: "han@beta.test".into(),
            display_name: "Han Meimei".into(),
            organization_id: Some(org_b.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let auditor = staff(app, "auditor@keel.test", vec![Role::Auditor]).await;
    World {
        agent_a: principal(app, &agent.user_id).await,
        contact_a: principal(app, &c.id).await,
        admin,
        org_a,
        org_b,
        project_a,
        project_b,
        auditor,
    }
}

#[tokio::test]
async fn both_databases_end_with_the_same_schema() {
    let dbs = TestDb::migrated_all().await;
    let sqlite = keel_store::migrate::describe_schema(&dbs[0].db).await.unwrap();
    assert!(sqlite.0.iter().any(|(t, c, _, _)| t == "audit_log" && c == "prev_hash"));
    let Some(pg) = dbs.get(1) else { return };
    let pg = keel_store::migrate::describe_schema(&pg.db).await.unwrap();
    let norm = |cols: &Vec<(String, String, String, bool)>| {
        cols.iter().map(|(t, c, ty, n)| (t.clone(), c.clone(), ty.replace("character varying", "text"), *n)).collect::<Vec<_>>()
    };
    assert_eq!(norm(&sqlite.0), norm(&pg.0), "columns differ between SQLite and PostgreSQL");
    assert_eq!(sqlite.1, pg.1, "indexes differ between SQLite and PostgreSQL");
}

#[tokio::test]
async fn migrations_are_idempotent_and_checksummed() {
    for t in TestDb::all().await {
        let all: Vec<i64> = keel_store::migrate::MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(keel_store::migrate::run(&t.db).await.unwrap(), all, "{}", t.label);
        assert!(keel_store::migrate::run(&t.db).await.unwrap().is_empty(), "{}", t.label);
        let mut tx = t.db.begin().await.unwrap();
        sqlx::query("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        assert!(matches!(keel_store::migrate::run(&t.db).await, Err(keel_store::StoreError::MigrationChanged(_))), "{}", t.label);
    }
}

#[tokio::test]
async fn customers_and_staff_see_only_their_scope() {
    for t in TestDb::migrated_all().await {
        let (app, _) = app_on(&t);
        let w = world(&app).await;
        // contact: own organisation only, other tenant answers NotFound
        assert!(app.get_organization(&w.contact_a, &w.org_a).await.is_ok(), "{}", t.label);
        assert!(matches!(app.get_organization(&w.contact_a, &w.org_b).await, Err(AppError::NotFound)), "{}", t.label);
        assert!(matches!(app.get_project(&w.contact_a, &w.project_b).await, Err(AppError::NotFound)));
        let orgs = app.list_organizations(&w.contact_a, &Default::default(), &page(NAME_SORT)).await.unwrap();
        assert_eq!(orgs.items.iter().map(|o| o.id.clone()).collect::<Vec<_>>(), vec![w.org_a.clone()]);
        assert!(matches!(app.list_users(&w.contact_a, Default::default(), &page(USER_SORT)).await, Err(AppError::Forbidden)));
        // staff member of project A only
        assert!(app.get_project(&w.agent_a, &w.project_a).await.is_ok());
        assert!(matches!(app.get_project(&w.agent_a, &w.project_b).await, Err(AppError::NotFound)));
        let projects = app.list_projects(&w.agent_a, &Default::default(), &page(CODE_SORT)).await.unwrap();
        assert_eq!(projects.items.len(), 1);
        let contacts = app
            .list_users(
                &w.agent_a,
                keel_store::accounts::UserFilter { kind: Some("contact".into()), ..Default::default() },
                &page(USER_SORT),
            )
            .await
            .unwrap();
        assert_eq!(contacts.items.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(), vec!["li.lei@acme.test"], "{}", t.label);
        // auditors read everything and write nothing
        assert_eq!(app.list_projects(&w.auditor, &Default::default(), &page(CODE_SORT)).await.unwrap().items.len(), 2);
        assert!(matches!(
            app.create_organization(&w.auditor, OrganizationInput { name: "X".into(), code: "x".into(), ..Default::default() }).await,
            Err(AppError::Forbidden)
        ));
        assert!(matches!(
            app.create_organization(&w.agent_a, OrganizationInput { name: "X".into(), code: "x".into(), ..Default::default() }).await,
            Err(AppError::Forbidden)
        ));
        // a contact never gains staff rights, whatever roles are asked for
        let c = app.get_user(&w.admin, &w.contact_a.user_id).await.unwrap();
        assert!(c.roles.is_empty());
    }
}

#[tokio::test]
async fn invalid_input_is_reported_per_field_and_nothing_is_written() {
    for t in TestDb::migrated_all().await {
        let (app, _) = app_on(&t);
        let w = world(&app).await;
        let before = app.audit_trail(&w.admin, &keel_store::audit::TrailFilter { limit: 1000, ..Default::default() }).await.unwrap().len();
        let e = app
            .create_project(
                &w.admin,
                ProjectInput {
                    code: "bad code!".into(),
                    name: " ".into(),
                    organization_id: "nope".into(),
                    starts_on: Some("2026-13-01".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        let AppError::Validation(fields) = e else { panic!("expected validation") };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        for f in ["code", "name", "organization_id", "starts_on"] {
            assert!(names.contains(&f), "{f} missing in {names:?}");
        }
        let dup = app
            .create_organization(&w.admin, OrganizationInput { name: "Again".into(), code: "ACME".into(), ..Default::default() })
            .await
            .unwrap_err();
        match dup {
            AppError::Validation(f) => assert_eq!((f[0].field.as_str(), f[0].code), ("code", "already_taken"), "{}", t.label),
            other => panic!("{other:?}"),
        }
        let dup_user = app
            .create_user(&w.admin, NewUser { email: "AGENT@keel.test".into(), display_name: "x".into(), ..Default::default() })
            .await
            .unwrap_err();
        assert!(matches!(dup_user, AppError::Validation(ref f) if f[0].field == "email"), "{}: {dup_user:?}", t.label);
        let after = app.audit_trail(&w.admin, &keel_store::audit::TrailFilter { limit: 1000, ..Default::default() }).await.unwrap().len();
        assert_eq!(before, after, "a refused write left audit entries");
    }
}

#[tokio::test]
async fn a_stale_update_is_refused_and_changes_nothing() {
    for t in TestDb::migrated_all().await {
        let (app, _) = app_on(&t);
        let w = world(&app).await;
        let o = app.get_organization(&w.admin, &w.org_a).await.unwrap();
        let first = app
            .update_organization(
                &w.admin,
                &w.org_a,
                OrganizationInput { name: "Acme Group".into(), code: o.code.clone(), ..Default::default() },
                Some(o.version),
            )
            .await
            .unwrap();
        assert_eq!(first.version, o.version + 1);
        let second = app
            .update_organization(
                &w.admin,
                &w.org_a,
                OrganizationInput { name: "Lost update".into(), code: o.code.clone(), ..Default::default() },
                Some(o.version),
            )
            .await;
        assert!(matches!(second, Err(AppError::Stale)), "{}", t.label);
        assert_eq!(app.get_organization(&w.admin, &w.org_a).await.unwrap().name, "Acme Group");
    }
}

#[tokio::test]
async fn tailoring_records_who_when_why_and_refuses_mandatory_processes() {
    for t in TestDb::migrated_all().await {
        let (app, _) = app_on(&t);
        let w = world(&app).await;
        let sm = staff(&app, "sm@keel.test", vec![Role::ServiceManager]).await;
        assert!(matches!(app.tailor_project(&sm, &w.project_a, "incident", false, "no").await, Err(AppError::Validation(_))));
        assert!(matches!(app.tailor_project(&sm, &w.project_a, "problem", false, "  ").await, Err(AppError::Validation(_))));
        assert!(matches!(app.tailor_project(&w.agent_a, &w.project_a, "problem", false, "why").await, Err(AppError::Forbidden)));
        let p = app.tailor_project(&sm, &w.project_a, "problem", false, "customer runs its own problem management").await.unwrap();
        assert_eq!(p.disabled_processes, vec!["problem"]);
        assert!(matches!(
            app.require_process(&w.project_a, keel_domain::process::Process::Problem).await,
            Err(AppError::ProcessDisabled(_))
        ));
        assert!(app.require_process(&w.project_a, keel_domain::process::Process::Incident).await.is_ok());
        assert!(app.require_process(&w.project_b, keel_domain::process::Process::Problem).await.is_ok());
        let d = app.project_tailoring(&w.admin, &w.project_a).await.unwrap();
        let problem = d.iter().find(|d| d.process == "problem").unwrap();
        assert_eq!(
            (problem.enabled, problem.changed_by.as_str(), problem.reason.as_str()),
            (false, sm.user_id.as_str(), "customer runs its own problem management")
        );
        let h = app.history("project", &w.project_a).await.unwrap();
        assert!(h.last().unwrap().changes.to_string().contains("customer runs its own"), "{}", t.label);
    }
}

#[tokio::test]
async fn every_write_is_audited_and_tampering_is_named() {
    for t in TestDb::migrated_all().await {
        let (app, clock) = app_on(&t);
        let w = world(&app).await;
        for i in 0..3 {
            clock.advance(1000);
            let o = app.get_organization(&w.admin, &w.org_a).await.unwrap();
            app.update_organization(
                &w.admin,
                &w.org_a,
                OrganizationInput { name: format!("Acme v{i}"), code: o.code, ..Default::default() },
                Some(o.version),
            )
            .await
            .unwrap();
        }
        let h = app.history("organization", &w.org_a).await.unwrap();
        assert_eq!(h.len(), 4, "{}", t.label);
        assert_eq!(h[0].action, "create");
        assert!(h[3].changes.to_string().contains("Acme v2"));
        assert_eq!(h[3].actor_id, w.admin.user_id);
        let report = app.integrity_check().await.unwrap();
        assert!(report.ok(), "{}: {report:?}", t.label);
        app.audit_checkpoint().await.unwrap();
        assert!(app.integrity_check().await.unwrap().ok());

        // edit an entry's content
        let mut tx = t.db.begin().await.unwrap();
        sqlx::query("UPDATE audit_log SET changes = '[]' WHERE entity_id = $1 AND seq = 2").bind(&w.org_a).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let faults = app.integrity_check().await.unwrap().audit_faults;
        assert!(
            faults.iter().any(|f| matches!(f, AuditFault::Edited { seq: 2, entity_id, .. } if *entity_id == w.org_a)),
            "{}: {faults:?}",
            t.label
        );
        assert!(faults.iter().any(|f| matches!(f, AuditFault::CheckpointMismatch { .. })) || !faults.is_empty());
    }
}

#[tokio::test]
async fn deleting_the_tail_of_a_chain_is_caught_by_the_checkpoint() {
    for t in TestDb::migrated_all().await {
        let (app, _) = app_on(&t);
        let w = world(&app).await;
        app.audit_checkpoint().await.unwrap();
        let mut tx = t.db.begin().await.unwrap();
        sqlx::query("DELETE FROM audit_log WHERE entity_type = 'organization' AND entity_id = $1")
            .bind(&w.org_b)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let faults = app.integrity_check().await.unwrap().audit_faults;
        assert!(
            faults
                .iter()
                .any(|f| matches!(f, AuditFault::CheckpointMismatch { expected_count, found_count, .. } if expected_count > found_count)),
            "{}: {faults:?}",
            t.label
        );
    }
}

#[tokio::test]
async fn login_locks_out_after_repeated_failures_and_sessions_survive_restart() {
    for t in TestDb::migrated_all().await {
        let (app, clock) = app_on(&t);
        let w = world(&app).await;
        assert!(matches!(app.login("nobody@keel.test", "x", "10.0.0.1", None).await, Err(AppError::BadCredentials)));
        for _ in 0..5 {
            assert!(matches!(app.login("agent@keel.test", "wrong password", "10.0.0.2", None).await, Err(AppError::BadCredentials)));
        }
        assert!(
            matches!(app.login("agent@keel.test", "correct horse battery", "10.0.0.2", None).await, Err(AppError::RateLimited { .. })),
            "{}: locked",
            t.label
        );
        clock.advance(16 * 60_000);
        let s = app.login("Agent@Keel.test", "correct horse battery", "10.0.0.2", None).await.unwrap();
        assert_eq!(s.principal.user_id, w.agent_a.user_id);
        // a second process on the same database sees the session
        let (other, _) = app_on(&t);
        let (p, _, sess) = other.session(&s.token).await.unwrap().expect("session visible to another instance");
        assert_eq!(p.project_ids, vec![w.project_a.clone()]);
        assert_eq!(sess.csrf_token, s.csrf_token);
        // logout everywhere ends it; a deactivated user loses sessions
        app.logout_everywhere(&p, None).await.unwrap();
        assert!(app.session(&s.token).await.unwrap().is_none(), "{}", t.label);
        let s2 = app.login("agent@keel.test", "correct horse battery", "10.0.0.2", None).await.unwrap();
        let u = app.get_user(&w.admin, &w.agent_a.user_id).await.unwrap();
        app.update_user(&w.admin, &u.id, UserPatch { active: Some(false), ..Default::default() }, Some(u.version)).await.unwrap();
        assert!(app.session(&s2.token).await.unwrap().is_none());
        assert!(matches!(app.login("agent@keel.test", "correct horse battery", "10.0.0.2", None).await, Err(AppError::BadCredentials)));
    }
}

#[tokio::test]
async fn many_failures_from_one_address_are_throttled() {
    let t = TestDb::sqlite().await;
    keel_store::migrate::run(&t.db).await.unwrap();
    let (app, _) = app_on(&t);
    world(&app).await;
    for i in 0..30 {
        let _ = app.login(&format!("guess{i}@keel.test"), "x", "192.0.2.9", None).await;
    }
    assert!(matches!(app.login("admin@keel.test", "correct horse battery", "192.0.2.9", None).await, Err(AppError::RateLimited { .. })));
    assert!(app.login("admin@keel.test", "correct horse battery", "192.0.2.10", None).await.is_ok());
}

#[tokio::test]
async fn api_tokens_are_stored_as_digests_scoped_and_revocable() {
    for t in TestDb::migrated_all().await {
        let (app, clock) = app_on(&t);
        let w = world(&app).await;
        let (secret, rec) = app.create_api_token(&w.agent_a, "ci", Some(1)).await.unwrap();
        assert!(secret.starts_with("keel_") && secret.len() > 40);
        let mut c = app.read().await.unwrap();
        let stored = keel_store::accounts::get_token(&mut c, &rec.id).await.unwrap().unwrap();
        drop(c);
        assert_ne!(stored.token_hash, secret);
        assert!(!stored.token_hash.contains(&secret[5..]));
        let p = app.api_principal(&secret).await.unwrap().unwrap();
        assert_eq!(p.project_ids, w.agent_a.project_ids, "token acts with its creator's rights");
        assert!(app.api_principal("keel_wrong").await.unwrap().is_none());
        // another user cannot revoke it (and learns nothing)
        assert!(matches!(app.revoke_api_token(&w.contact_a, &rec.id).await, Err(AppError::NotFound)));
        clock.advance(2 * 86_400_000);
        assert!(app.api_principal(&secret).await.unwrap().is_none(), "{}: expired", t.label);
        let (s2, r2) = app.create_api_token(&w.agent_a, "ci2", None).await.unwrap();
        app.revoke_api_token(&w.agent_a, &r2.id).await.unwrap();
        assert!(app.api_principal(&s2).await.unwrap().is_none(), "{}: revoked", t.label);
    }
}

#[tokio::test]
async fn setup_token_creates_the_first_administrator_once() {
    for t in TestDb::migrated_all().await {
        let (app, _) = app_on(&t);
        let token = app.issue_setup_token_if_needed().await.unwrap().expect("token when no staff");
        assert!(app.setup_token_valid(&token).await.unwrap());
        let input = || NewUser {
            email: "first@keel.test".into(),
            display_name: "First".into(),
            password: Some("first admin password".into()),
            ..Default::default()
        };
        let u = app.complete_setup(&token, input()).await.unwrap();
        assert_eq!(u.roles, vec!["administrator"]);
        assert!(
            matches!(app.complete_setup(&token, input()).await, Err(AppError::Conflict { code: "setup_token_invalid", .. })),
            "{}",
            t.label
        );
        assert!(app.issue_setup_token_if_needed().await.unwrap().is_none());
    }
}

#[tokio::test]
async fn teams_validate_members() {
    for t in TestDb::migrated_all().await {
        let (app, _) = app_on(&t);
        let w = world(&app).await;
        let e = app
            .create_team(&w.admin, TeamInput { name: "网络组".into(), member_ids: vec![w.contact_a.user_id.clone()], ..Default::default() })
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::Validation(ref f) if f[0].field == "member_ids"), "{}: contacts are not team members", t.label);
        let team = app
            .create_team(
                &w.admin,
                TeamInput {
                    name: "网络组".into(),
                    member_ids: vec![w.agent_a.user_id.clone()],
                    lead_user_id: Some(w.agent_a.user_id.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(team.member_ids, vec![w.agent_a.user_id.clone()]);
        // the lead may edit the team, others may not
        let agent = principal(&app, &w.agent_a.user_id).await;
        assert!(
            app.update_team(
                &agent,
                &team.id,
                TeamInput {
                    name: "网络组".into(),
                    description: Some("L2".into()),
                    member_ids: team.member_ids.clone(),
                    lead_user_id: team.lead_user_id.clone(),
                    ..Default::default()
                },
                Some(1)
            )
            .await
            .is_ok()
        );
        assert!(matches!(app.get_team(&w.contact_a, &team.id).await, Err(AppError::NotFound)));
    }
}

#[tokio::test]
async fn a_job_runs_once_across_instances_and_is_retaken_after_its_lease() {
    for t in TestDb::migrated_all().await {
        let (a, clock) = app_on(&t);
        let b = App::new(t.db.clone(), SecurityConfig::default()).with_clock(clock.clone());
        a.seed_jobs().await.unwrap();
        b.seed_jobs().await.unwrap();
        let mut c = a.read().await.unwrap();
        let jobs = keel_store::jobs::list(&mut c, None, 100).await.unwrap();
        drop(c);
        assert_eq!(jobs.len(), keel_app::jobs::BUILTIN.len(), "{}: seeding twice must not duplicate", t.label);
        clock.advance(3_600_000);
        let (ra, rb) = tokio::join!(
            keel_store::jobs::claim(&t.db, "a", clock.now_ms(), 60_000, 10),
            keel_store::jobs::claim(&t.db, "b", clock.now_ms(), 60_000, 10)
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.len() + rb.len(), jobs.len(), "{}: every due job claimed exactly once", t.label);
        for j in &ra {
            assert!(!rb.iter().any(|k| k.id == j.id));
        }
        // the holder "dies"; after its lease another instance takes the job over
        assert!(keel_store::jobs::claim(&t.db, "c", clock.now_ms(), 60_000, 10).await.unwrap().is_empty());
        clock.advance(61_000);
        let retaken = keel_store::jobs::claim(&t.db, "c", clock.now_ms(), 60_000, 10).await.unwrap();
        assert_eq!(retaken.len(), jobs.len(), "{}", t.label);
        let mut tx = t.db.begin().await.unwrap();
        assert!(
            !keel_store::jobs::complete(&mut tx, &retaken[0].id, "a", None, clock.now_ms()).await.unwrap(),
            "a lost lease cannot complete"
        );
        assert!(keel_store::jobs::complete(&mut tx, &retaken[0].id, "c", Some(clock.now_ms() + 60_000), clock.now_ms()).await.unwrap());
        tx.commit().await.unwrap();
        // the runner completes recurring jobs and reschedules them
        clock.advance(3_600_000);
        let ran = a.run_due_jobs(10).await.unwrap();
        assert!(ran >= 1, "{}", t.label);
    }
}

#[tokio::test]
async fn concurrent_writers_keep_every_chain_intact() {
    for t in TestDb::migrated_all().await {
        let (app, _) = app_on(&t);
        let w = world(&app).await;
        let mut handles = Vec::new();
        for i in 0..20 {
            let app = app.clone();
            let admin = w.admin.clone();
            handles.push(tokio::spawn(async move {
                app.create_organization(
                    &admin,
                    OrganizationInput { name: format!("Org {i}"), code: format!("ORG{i}"), ..Default::default() },
                )
                .await
            }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let r = app.integrity_check().await.unwrap();
        assert!(r.ok(), "{}: {r:?}", t.label);
    }
}

// =====================================================================================
// Configuration management (CMDB): CIs, relationships, impact analysis, baselines.
// =====================================================================================
mod cmdb {
    use super::*;
    use keel_app::cmdb::{BaselineInput, CiInput, CiQuery, RelationInput};
    use keel_domain::cmdb::{Direction, RelationType};
    use keel_store::cmdb::CiRecord;
    use serde_json::json;

    const CI_SORT: SortKey = SortKey { name: "name", column: "name", kind: SortKind::Text };

    async fn setup(t: &TestDb) -> (App, World) {
        let (app, _) = app_on(t);
        let w = world(&app).await;
        assert!(app.seed_cmdb_classes().await.unwrap() >= 10, "{}: shipped classes seeded", t.label);
        assert_eq!(app.seed_cmdb_classes().await.unwrap(), 0, "{}: seeding is idempotent", t.label);
        (app, w)
    }

    async fn ci(app: &App, who: &Principal, class: &str, name: &str, project: Option<&str>, attributes: serde_json::Value) -> CiRecord {
        app.create_ci(
            who,
            CiInput {
                class_key: class.into(),
                name: name.into(),
                project_id: project.map(str::to_string),
                attributes,
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e:?}"))
    }

    async fn relate(app: &App, who: &Principal, source: &str, kind: RelationType, target: &str) -> keel_store::cmdb::RelationRecord {
        app.add_relation(who, RelationInput { kind: kind.as_str().into(), source_id: source.into(), target_id: target.into() })
            .await
            .unwrap_or_else(|e| panic!("relate {source} {kind:?} {target}: {e:?}"))
    }

    fn fields(e: AppError) -> Vec<(String, &'static str)> {
        match e {
            AppError::Validation(f) => {
                let mut v: Vec<(String, &'static str)> = f.into_iter().map(|f| (f.field, f.code)).collect();
                v.sort();
                v
            }
            other => panic!("expected validation, got {other:?}"),
        }
    }

    async fn audit_len(app: &App, w: &World) -> usize {
        app.audit_trail(&w.admin, &keel_store::audit::TrailFilter { limit: 10_000, ..Default::default() }).await.unwrap().len()
    }

    #[tokio::test]
    async fn attribute_errors_are_reported_per_field_and_nothing_is_written() {
        for t in TestDb::migrated_all().await {
            let (app, w) = setup(&t).await;
            let before = audit_len(&app, &w).await;
            let e = app
                .create_ci(
                    &w.agent_a,
                    CiInput {
                        class_key: "server".into(),
                        name: " ".into(),
                        project_id: Some(w.project_a.clone()),
                        attributes: json!({ "ip_address": "300.1.1.1", "cpu_cores": 2.5, "environment": "prod", "colour": "red" }),
                        ..Default::default()
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(
                fields(e),
                vec![
                    ("attributes.colour".to_string(), "unknown_attribute"),
                    ("attributes.cpu_cores".to_string(), "expected_integer"),
                    ("attributes.environment".to_string(), "invalid_choice"),
                    ("attributes.hostname".to_string(), "required"),
                    ("attributes.ip_address".to_string(), "invalid_ip_address"),
                    ("name".to_string(), "required"),
                ],
                "{}",
                t.label
            );
            let e = app.create_ci(&w.agent_a, CiInput { class_key: "spaceship".into(), name: "x".into(), ..Default::default() }).await;
            assert_eq!(fields(e.unwrap_err()), vec![("class_key".to_string(), "unknown_class")]);
            assert_eq!(audit_len(&app, &w).await, before, "{}: a refused write left audit entries", t.label);
            let list = app.list_cis(&w.admin, &CiQuery::default(), &page(CI_SORT)).await.unwrap();
            assert!(list.items.is_empty(), "{}", t.label);

            // values are normalised; unique values span subclasses; references are typed
            let srv = ci(
                &app,
                &w.agent_a,
                "server",
                "web-01",
                Some(&w.project_a),
                json!({ "hostname": " web-01 ", "cpu_cores": "8", "serial_number": "SN-1", "ip_address": "10.0.0.1" }),
            )
            .await;
            assert_eq!(srv.attributes["hostname"], json!("web-01"));
            assert_eq!(srv.attributes["cpu_cores"], json!(8));
            let e = app
                .create_ci(
                    &w.agent_a,
                    CiInput {
                        class_key: "virtual_machine".into(),
                        name: "vm-01".into(),
                        attributes: json!({ "hostname": "vm-01", "serial_number": "SN-1", "location": srv.id, "host": "no-such-ci" }),
                        ..Default::default()
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(
                fields(e),
                vec![
                    ("attributes.host".to_string(), "unknown_ci"),
                    ("attributes.location".to_string(), "wrong_class"),
                    ("attributes.serial_number".to_string(), "not_unique"),
                ],
                "{}",
                t.label
            );
            // an update keeping its own unique value is fine
            let upd = app
                .update_ci(
                    &w.agent_a,
                    &srv.id,
                    CiInput {
                        class_key: "server".into(),
                        name: "web-01".into(),
                        project_id: Some(w.project_a.clone()),
                        attributes: json!({ "hostname": "web-01", "serial_number": "SN-1", "memory_gb": 64 }),
                        ..Default::default()
                    },
                    Some(srv.version),
                )
                .await
                .unwrap();
            assert_eq!(upd.version, 2);
            let stale = app
                .update_ci(
                    &w.agent_a,
                    &srv.id,
                    CiInput {
                        class_key: "server".into(),
                        name: "lost".into(),
                        attributes: json!({ "hostname": "x" }),
                        ..Default::default()
                    },
                    Some(1),
                )
                .await;
            assert!(matches!(stale, Err(AppError::Stale)), "{}", t.label);
            // a relation to a missing CI is a field error, and nothing is written
            let before = audit_len(&app, &w).await;
            let e = app
                .add_relation(&w.agent_a, RelationInput { kind: "runs_on".into(), source_id: srv.id.clone(), target_id: "missing".into() })
                .await
                .unwrap_err();
            assert_eq!(fields(e), vec![("target_id".to_string(), "unknown_ci")]);
            let e = app
                .add_relation(&w.agent_a, RelationInput { kind: "likes".into(), source_id: srv.id.clone(), target_id: srv.id.clone() })
                .await
                .unwrap_err();
            assert_eq!(fields(e), vec![("kind".to_string(), "invalid_choice")]);
            assert_eq!(audit_len(&app, &w).await, before);
            // lifecycle
            assert!(matches!(app.transition_ci(&w.agent_a, &srv.id, "live", None).await, Err(AppError::InvalidTransition(_))));
            let s = app.transition_ci(&w.agent_a, &srv.id, "in_build", None).await.unwrap();
            assert_eq!(s.status, "in_build");
            let s = app.verify_ci(&w.agent_a, &srv.id, Some(s.version)).await.unwrap();
            assert!(s.last_verified_at.is_some());
            let h = app.history("configuration_item", &srv.id).await.unwrap();
            assert_eq!(h.len(), 4, "{}: create, update, transition, verification", t.label);
            assert!(h[1].changes.to_string().contains("attributes.memory_gb"));
            let csv = app.export_cis_csv(&w.admin, &CiQuery::default()).await.unwrap();
            assert!(csv.contains("web-01") && csv.lines().count() == 2, "{csv}");
        }
    }

    #[tokio::test]
    async fn part_of_cycles_and_duplicates_are_refused() {
        for t in TestDb::migrated_all().await {
            let (app, w) = setup(&t).await;
            let disk = ci(&app, &w.admin, "storage", "disk", None, json!({ "storage_type": "san" })).await;
            let array = ci(&app, &w.admin, "storage", "array", None, json!({ "storage_type": "san" })).await;
            let rack = ci(&app, &w.admin, "location", "rack 14", None, json!({})).await;
            relate(&app, &w.admin, &disk.id, RelationType::PartOf, &array.id).await;
            relate(&app, &w.admin, &array.id, RelationType::PartOf, &rack.id).await;
            let before = audit_len(&app, &w).await;
            let e = app
                .add_relation(&w.admin, RelationInput { kind: "part_of".into(), source_id: rack.id.clone(), target_id: disk.id.clone() })
                .await
                .unwrap_err();
            assert_eq!(fields(e), vec![("target_id".to_string(), "part_of_cycle")], "{}", t.label);
            let e = app
                .add_relation(&w.admin, RelationInput { kind: "part_of".into(), source_id: disk.id.clone(), target_id: array.id.clone() })
                .await
                .unwrap_err();
            assert_eq!(fields(e), vec![("target_id".to_string(), "duplicate_relation")]);
            relate(&app, &w.admin, &disk.id, RelationType::ConnectedTo, &rack.id).await;
            let e = app
                .add_relation(
                    &w.admin,
                    RelationInput { kind: "connected_to".into(), source_id: rack.id.clone(), target_id: disk.id.clone() },
                )
                .await
                .unwrap_err();
            assert_eq!(fields(e), vec![("target_id".to_string(), "duplicate_relation")], "{}: symmetric duplicate", t.label);
            assert_eq!(audit_len(&app, &w).await, before + 3, "{}: only the accepted relation was recorded", t.label);
            // other cycles are allowed
            relate(&app, &w.admin, &rack.id, RelationType::DependsOn, &disk.id).await;
            assert_eq!(app.ci_relations(&w.admin, &disk.id).await.unwrap().len(), 3);
        }
    }

    #[tokio::test]
    async fn impact_crosses_a_depends_on_cycle_and_names_projects_and_customers() {
        for t in TestDb::migrated_all().await {
            let (app, w) = setup(&t).await;
            let a = ci(&app, &w.agent_a, "application", "app-a", None, json!({})).await;
            let b = ci(&app, &w.agent_a, "application", "app-b", None, json!({})).await;
            let c = ci(&app, &w.agent_a, "application", "app-c", None, json!({})).await;
            let mail =
                ci(&app, &w.agent_a, "service", "Mail", Some(&w.project_a), json!({ "service_code": "MAIL", "criticality": "high" })).await;
            relate(&app, &w.agent_a, &a.id, RelationType::DependsOn, &b.id).await;
            relate(&app, &w.agent_a, &b.id, RelationType::DependsOn, &c.id).await;
            relate(&app, &w.agent_a, &c.id, RelationType::DependsOn, &a.id).await;
            relate(&app, &w.agent_a, &a.id, RelationType::Provides, &mail.id).await;

            let r = app.impact(&w.agent_a, &c.id, Direction::Downstream, None).await.unwrap();
            let depths: Vec<(&str, u32)> = r.reached.iter().map(|e| (e.ci.name.as_str(), e.depth)).collect();
            assert_eq!(depths, vec![("app-b", 1), ("app-a", 2), ("Mail", 3)], "{}", t.label);
            let path: Vec<(String, RelationType, String)> =
                r.reached[2].path.iter().map(|s| (s.source_id.clone(), s.kind, s.target_id.clone())).collect();
            assert_eq!(
                path,
                vec![
                    (b.id.clone(), RelationType::DependsOn, c.id.clone()),
                    (a.id.clone(), RelationType::DependsOn, b.id.clone()),
                    (a.id.clone(), RelationType::Provides, mail.id.clone()),
                ]
            );
            assert_eq!(r.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), vec!["Mail"]);
            assert_eq!(r.projects.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), vec![w.project_a.as_str()]);
            assert_eq!(r.customers.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), vec![w.org_a.as_str()], "{}", t.label);

            let r = app.impact(&w.agent_a, &c.id, Direction::Downstream, Some(2)).await.unwrap();
            assert!(r.services.is_empty() && r.customers.is_empty(), "{}: depth limit", t.label);
            let r = app.impact(&w.agent_a, &mail.id, Direction::Upstream, None).await.unwrap();
            let depths: Vec<(&str, u32)> = r.reached.iter().map(|e| (e.ci.name.as_str(), e.depth)).collect();
            assert_eq!(depths, vec![("app-a", 1), ("app-b", 2), ("app-c", 3)]);

            // a retired CI takes no part
            let b2 = app.transition_ci(&w.agent_a, &b.id, "retired", None).await.unwrap();
            assert_eq!(b2.status, "retired");
            let r = app.impact(&w.agent_a, &c.id, Direction::Downstream, None).await.unwrap();
            assert!(r.reached.is_empty(), "{}", t.label);
        }
    }

    #[tokio::test]
    async fn staff_outside_a_project_and_contacts_do_not_see_its_cis() {
        for t in TestDb::migrated_all().await {
            let (app, w) = setup(&t).await;
            let secret = ci(&app, &w.admin, "server", "beta-db", Some(&w.project_b), json!({ "hostname": "beta-db" })).await;
            let shared =
                ci(&app, &w.admin, "network_device", "core switch", None, json!({ "hostname": "core-sw", "device_type": "switch" })).await;
            let own = ci(&app, &w.agent_a, "application", "acme erp", Some(&w.project_a), json!({})).await;
            relate(&app, &w.admin, &own.id, RelationType::DependsOn, &shared.id).await;
            relate(&app, &w.admin, &secret.id, RelationType::ConnectedTo, &shared.id).await;

            assert!(matches!(app.get_ci(&w.agent_a, &secret.id).await, Err(AppError::NotFound)), "{}", t.label);
            assert!(app.get_ci(&w.agent_a, &shared.id).await.is_ok());
            assert!(matches!(app.get_ci(&w.contact_a, &own.id).await, Err(AppError::NotFound)));
            assert!(matches!(app.list_cis(&w.contact_a, &CiQuery::default(), &page(CI_SORT)).await, Err(AppError::Forbidden)));
            let names: Vec<String> =
                app.list_cis(&w.agent_a, &CiQuery::default(), &page(CI_SORT)).await.unwrap().items.into_iter().map(|c| c.name).collect();
            assert_eq!(names, vec!["acme erp", "core switch"], "{}", t.label);
            let e = app
                .update_ci(&w.agent_a, &secret.id, CiInput { class_key: "server".into(), name: "x".into(), ..Default::default() }, None)
                .await;
            assert!(matches!(e, Err(AppError::NotFound)));
            // the hidden CI is neither a relation end nor in an impact analysis
            let rel = app.ci_relations(&w.agent_a, &shared.id).await.unwrap();
            assert_eq!(rel.iter().map(|r| r.other.name.as_str()).collect::<Vec<_>>(), vec!["acme erp"]);
            let e = app
                .add_relation(&w.agent_a, RelationInput { kind: "runs_on".into(), source_id: own.id.clone(), target_id: secret.id.clone() })
                .await
                .unwrap_err();
            assert_eq!(fields(e), vec![("target_id".to_string(), "unknown_ci")]);
            let r = app.impact(&w.agent_a, &shared.id, Direction::Downstream, None).await.unwrap();
            assert_eq!(r.reached.iter().map(|e| e.ci.name.as_str()).collect::<Vec<_>>(), vec!["acme erp"], "{}", t.label);
            let r = app.impact(&w.admin, &shared.id, Direction::Downstream, None).await.unwrap();
            assert_eq!(r.reached.len(), 2);
            assert_eq!(r.customers.len(), 2, "{}: the administrator sees both customers", t.label);
            // a CI in another project cannot be created by an outsider
            let e = app
                .create_ci(
                    &w.agent_a,
                    CiInput {
                        class_key: "application".into(),
                        name: "x".into(),
                        project_id: Some(w.project_b.clone()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(fields(e), vec![("project_id".to_string(), "unknown_reference")]);
            assert!(matches!(
                app.create_ci(&w.auditor, CiInput { class_key: "application".into(), name: "x".into(), ..Default::default() }).await,
                Err(AppError::Forbidden)
            ));
        }
    }

    #[tokio::test]
    async fn a_tailored_out_configuration_process_refuses_cis() {
        for t in TestDb::migrated_all().await {
            let (app, w) = setup(&t).await;
            let existing = ci(&app, &w.agent_a, "application", "erp", Some(&w.project_a), json!({})).await;
            let sm = staff(&app, "sm@keel.test", vec![Role::ServiceManager]).await;
            app.tailor_project(&sm, &w.project_a, "configuration", false, "customer keeps its own CMDB").await.unwrap();
            let e = app
                .create_ci(
                    &w.agent_a,
                    CiInput {
                        class_key: "application".into(),
                        name: "crm".into(),
                        project_id: Some(w.project_a.clone()),
                        ..Default::default()
                    },
                )
                .await;
            assert!(matches!(e, Err(AppError::ProcessDisabled(ref p)) if p == "configuration"), "{}: {e:?}", t.label);
            assert!(matches!(app.get_ci(&w.agent_a, &existing.id).await, Err(AppError::ProcessDisabled(_))));
            assert!(app.list_cis(&w.admin, &CiQuery::default(), &page(CI_SORT)).await.unwrap().items.is_empty(), "{}", t.label);
            let e = app
                .capture_baseline(
                    &w.agent_a,
                    BaselineInput { name: "x".into(), project_id: Some(w.project_a.clone()), ..Default::default() },
                )
                .await;
            assert!(matches!(e, Err(AppError::ProcessDisabled(_))));
            // other projects are unaffected
            ci(&app, &w.admin, "application", "beta app", Some(&w.project_b), json!({})).await;
        }
    }

    #[tokio::test]
    async fn a_baseline_diff_shows_changed_attributes_and_removed_relations() {
        for t in TestDb::migrated_all().await {
            let (app, w) = setup(&t).await;
            let db = ci(&app, &w.agent_a, "database", "erp-db", Some(&w.project_a), json!({ "engine": "postgresql", "port": 5432 })).await;
            let erp = ci(&app, &w.agent_a, "application", "erp", Some(&w.project_a), json!({ "version": "1.0" })).await;
            let rel = relate(&app, &w.agent_a, &erp.id, RelationType::DependsOn, &db.id).await;
            let b = app
                .capture_baseline(
                    &w.agent_a,
                    BaselineInput { name: " Go-live 2026 ".into(), project_id: Some(w.project_a.clone()), ..Default::default() },
                )
                .await
                .unwrap();
            assert_eq!((b.name.as_str(), b.ci_count), ("Go-live 2026", 2));
            assert!(app.baseline_diff(&w.agent_a, &b.id).await.unwrap().diff.is_empty(), "{}", t.label);

            app.update_ci(
                &w.agent_a,
                &erp.id,
                CiInput {
                    class_key: "application".into(),
                    name: "erp".into(),
                    project_id: Some(w.project_a.clone()),
                    attributes: json!({ "version": "2.0" }),
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
            app.remove_relation(&w.agent_a, &rel.id).await.unwrap();
            let added = ci(&app, &w.agent_a, "application", "crm", Some(&w.project_a), json!({})).await;

            let d = app.baseline_diff(&w.agent_a, &b.id).await.unwrap().diff;
            assert_eq!(d.added_cis, vec![added.id.clone()], "{}", t.label);
            assert_eq!(d.changed_cis.len(), 1);
            assert_eq!(d.changed_cis[0].id, erp.id);
            let ch = &d.changed_cis[0].attributes;
            assert_eq!(
                (ch[0].attribute.as_str(), ch[0].old.clone(), ch[0].new.clone()),
                ("version", Some(json!("1.0")), Some(json!("2.0")))
            );
            assert_eq!(d.removed_relations.len(), 1);
            assert_eq!((d.removed_relations[0].source.as_str(), d.removed_relations[0].kind), (erp.id.as_str(), RelationType::DependsOn));
            // the relation's removal is in both CIs' history
            let h = app.history("configuration_item", &db.id).await.unwrap();
            assert!(h.last().unwrap().changes.to_string().contains("relation_removed"), "{}", t.label);
            // scope: outsiders do not see the baseline
            let outsider = staff(&app, "tech@keel.test", vec![Role::Technician]).await;
            assert!(matches!(app.baseline_diff(&outsider, &b.id).await, Err(AppError::NotFound)));
            assert!(app.list_baselines(&outsider).await.unwrap().is_empty());
            assert_eq!(app.list_baselines(&w.agent_a).await.unwrap().len(), 1);
            let e = app.capture_baseline(&w.agent_a, BaselineInput { name: "all".into(), ..Default::default() }).await.unwrap_err();
            assert_eq!(fields(e), vec![("project_id".to_string(), "required")]);
        }
    }
}

// =====================================================================================
// Service desk and incident management (REQUIREMENTS §4)
// =====================================================================================
mod incidents {
    use super::*;
    use keel_app::incidents::{NewTicket, Queue, TransitionInput};
    use keel_domain::incident::TicketPatch;
    use keel_store::incidents::TicketFilter;

    const CREATED: SortKey = SortKey { name: "created_at", column: "t.created_at", kind: SortKind::Int };

    fn by_created(limit: i64) -> PageRequest {
        PageRequest { sort: CREATED, desc: false, after: None, limit }
    }

    fn incident_for(w: &World, title: &str) -> NewTicket {
        NewTicket {
            project_id: w.project_a.clone(),
            reporter_id: Some(w.contact_a.user_id.clone()),
            title: title.into(),
            description: Some("打印机卡纸".into()),
            impact: Some("high".into()),
            urgency: Some("medium".into()),
            ..Default::default()
        }
    }

    fn step(action: &str) -> TransitionInput {
        TransitionInput { action: action.into(), ..Default::default() }
    }

    async fn contact_b(app: &App) -> Principal {
        let mut c = app.read().await.unwrap();
        let u = keel_store::accounts::get_user_by_email(&mut c, "han@beta.test").await.unwrap().unwrap();
        drop(c);
        principal(app, &u.id).await
    }

    async fn audit_len(app: &App, w: &World) -> usize {
        app.audit_trail(&w.admin, &keel_store::audit::TrailFilter { limit: 10_000, ..Default::default() }).await.unwrap().len()
    }

    fn fields(e: AppError) -> Vec<(String, &'static str)> {
        match e {
            AppError::Validation(f) => f.into_iter().map(|f| (f.field, f.code)).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn tickets_are_numbered_in_sequence_and_their_status_log_feeds_the_sla() {
        for t in TestDb::migrated_all().await {
            let (app, clock) = app_on(&t);
            let w = world(&app).await;
            let team = app
                .create_team(&w.admin, TeamInput { name: "一线".into(), member_ids: vec![w.agent_a.user_id.clone()], ..Default::default() })
                .await
                .unwrap();
            let mut numbers = Vec::new();
            for i in 0..3 {
                numbers.push(app.create_ticket(&w.agent_a, incident_for(&w, &format!("Printer {i}"))).await.unwrap().number);
            }
            assert_eq!(numbers, ["INC-000001", "INC-000002", "INC-000003"], "{}", t.label);
            let first = app.get_ticket(&w.agent_a, "INC-000001").await.unwrap();
            assert_eq!((first.status.as_str(), first.priority.as_str(), first.channel.as_str()), ("new", "p2", "phone"));
            assert_eq!(first.organization_id, w.org_a);
            let log = app.status_log(&w.agent_a, &first.id).await.unwrap();
            assert_eq!(log.len(), 1);
            assert_eq!((log[0].from_status.as_deref(), log[0].to_status.as_str(), log[0].action.as_deref()), (None, "new", None));

            clock.advance(60_000);
            let assigned = app
                .transition_ticket(
                    &w.agent_a,
                    &first.id,
                    TransitionInput { team_id: Some(team.id.clone()), ..step("assign") },
                    Some(first.version),
                )
                .await
                .unwrap();
            assert_eq!((assigned.status.as_str(), assigned.version), ("assigned", first.version + 1));
            assert_eq!(assigned.assigned_at, Some(T0 + 60_000));
            clock.advance(60_000);
            let started = app.transition_ticket(&w.agent_a, &first.id, step("start"), None).await.unwrap();
            assert_eq!(started.agent_id.as_deref(), Some(w.agent_a.user_id.as_str()), "starting takes the ticket");
            clock.advance(60_000);
            app.transition_ticket(
                &w.agent_a,
                &first.id,
                TransitionInput { pending_reason: Some("waiting_for_customer".into()), ..step("pend") },
                None,
            )
            .await
            .unwrap();
            // the customer's reply resumes the ticket, recorded as done by the system
            clock.advance(60_000);
            app.add_comment(&w.contact_a, &first.id, "public", "这是截图").await.unwrap();
            let resumed = app.get_ticket(&w.agent_a, &first.id).await.unwrap();
            assert_eq!((resumed.status.as_str(), resumed.pending_reason.as_deref()), ("in_progress", None), "{}", t.label);
            let log = app.status_log(&w.agent_a, &first.id).await.unwrap();
            let sla: Vec<&str> = log.iter().map(|e| e.sla_status.as_str()).collect();
            assert_eq!(sla, ["new", "assigned", "in_progress", "pending_customer", "in_progress"], "{}", t.label);
            assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
            assert_eq!((log[4].action.as_deref(), log[4].actor_id.as_str()), (Some("resume"), "system"));
            assert!(log.windows(2).all(|p| p[0].at <= p[1].at));
            // the queues see it
            let counts = app.queue_counts(&w.agent_a).await.unwrap();
            assert_eq!((counts.mine, counts.team, counts.unassigned, counts.open, counts.all), (1, 1, 2, 3, 3), "{}", t.label);
            // staff's first public reply is the first response
            app.add_comment(&w.agent_a, &first.id, "public", "已收到").await.unwrap();
            assert_eq!(app.get_ticket(&w.agent_a, &first.id).await.unwrap().first_response_at, Some(T0 + 240_000));
            let h = app.ticket_history(&w.agent_a, &first.id).await.unwrap();
            assert_eq!(h[0].action, "create");
            assert!(h.iter().any(|e| e.changes.to_string().contains("\"resume\"")), "{}", t.label);
            assert!(app.integrity_check().await.unwrap().ok());
        }
    }

    #[tokio::test]
    async fn lifecycle_guards_refuse_and_write_nothing() {
        for t in TestDb::migrated_all().await {
            let (app, clock) = app_on(&t);
            let w = world(&app).await;
            let tk = app.create_ticket(&w.agent_a, incident_for(&w, "VPN down")).await.unwrap();
            // not yet assigned: resolving is not a step from new
            assert!(matches!(app.transition_ticket(&w.agent_a, &tk.id, step("resolve"), None).await, Err(AppError::InvalidTransition(_))));
            let tk = app
                .transition_ticket(
                    &w.agent_a,
                    &tk.id,
                    TransitionInput { agent_id: Some(w.agent_a.user_id.clone()), ..step("assign") },
                    None,
                )
                .await
                .unwrap();
            let audits = audit_len(&app, &w).await;
            let e = app
                .transition_ticket(
                    &w.agent_a,
                    &tk.id,
                    TransitionInput { resolution_notes: Some("rebooted".into()), ..step("resolve") },
                    None,
                )
                .await
                .unwrap_err();
            assert_eq!(fields(e), [("resolution_code".to_string(), "required")], "{}", t.label);
            let e = app.transition_ticket(&w.agent_a, &tk.id, step("resolve"), None).await.unwrap_err();
            assert_eq!(fields(e).len(), 2, "code and notes are both reported");
            let e = app
                .transition_ticket(
                    &w.agent_a,
                    &tk.id,
                    TransitionInput { resolution_code: Some("fulfilled".into()), resolution_notes: Some("x".into()), ..step("resolve") },
                    None,
                )
                .await
                .unwrap_err();
            assert_eq!(fields(e), [("resolution_code".to_string(), "not_applicable")]);
            let e = app.transition_ticket(&w.agent_a, &tk.id, step("pend"), None).await.unwrap_err();
            assert_eq!(fields(e), [("pending_reason".to_string(), "required")]);
            assert!(matches!(app.transition_ticket(&w.agent_a, &tk.id, step("fly"), None).await, Err(AppError::Validation(_))));
            // customers do not resolve
            assert!(matches!(
                app.transition_ticket(
                    &w.contact_a,
                    &tk.id,
                    TransitionInput { resolution_code: Some("solved".into()), resolution_notes: Some("x".into()), ..step("resolve") },
                    None
                )
                .await,
                Err(AppError::Validation(ref f)) if f[0].code == "not_staff"
            ));
            let same = app.get_ticket(&w.agent_a, &tk.id).await.unwrap();
            assert_eq!((same.status.as_str(), same.version), ("assigned", tk.version), "{}", t.label);
            assert_eq!(app.status_log(&w.agent_a, &tk.id).await.unwrap().len(), 2);
            assert_eq!(audit_len(&app, &w).await, audits, "{}: a refused step left audit entries", t.label);

            // a proper resolution, the reporter's confirmation and rating
            clock.advance(3_600_000);
            let resolved = app
                .transition_ticket(
                    &w.agent_a,
                    &tk.id,
                    TransitionInput {
                        resolution_code: Some("solved".into()),
                        resolution_notes: Some("重启了VPN网关".into()),
                        ..step("resolve")
                    },
                    None,
                )
                .await
                .unwrap();
            assert_eq!((resolved.status.as_str(), resolved.resolved_at), ("resolved", Some(T0 + 3_600_000)));
            let actions: Vec<&str> = app.ticket_actions(&w.contact_a, &resolved).await.unwrap().iter().map(|a| a.as_str()).collect();
            assert_eq!(actions, ["confirm", "reject"]);
            assert!(
                matches!(app.rate_ticket(&w.agent_a, &tk.id, 5, None).await, Err(AppError::Validation(ref f)) if f[0].code == "not_reporter")
            );
            assert!(matches!(app.rate_ticket(&w.contact_a, &tk.id, 6, None).await, Err(AppError::Validation(_))));
            app.rate_ticket(&w.contact_a, &tk.id, 4, Some("快")).await.unwrap();
            let closed = app.transition_ticket(&w.contact_a, &tk.id, step("confirm"), None).await.unwrap();
            assert_eq!((closed.status.as_str(), closed.closure_kind.as_deref()), ("closed", Some("confirmed_by_reporter")));
            assert_eq!(app.get_rating(&w.contact_a, &tk.id).await.unwrap().unwrap().score, 4);
            assert!(matches!(app.rate_ticket(&w.contact_a, &tk.id, 2, None).await, Err(AppError::Validation(_))), "final once closed");
            // closed tickets take no comments or work, but can be reopened within the window
            assert!(matches!(app.add_comment(&w.agent_a, &tk.id, "internal", "x").await, Err(AppError::Validation(_))));
            assert!(matches!(app.add_work_log(&w.agent_a, &tk.id, 10, None, None).await, Err(AppError::Validation(_))));
            let reopened = app
                .transition_ticket(&w.contact_a, &tk.id, TransitionInput { reason: Some("又坏了".into()), ..step("reopen") }, None)
                .await
                .unwrap();
            assert_eq!((reopened.status.as_str(), reopened.reopen_count, reopened.resolution_code.as_deref()), ("assigned", 1, None));
        }
    }

    #[tokio::test]
    async fn customers_see_only_their_organisation_and_never_internal_notes() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let w = world(&app).await;
            let b = contact_b(&app).await;
            let outsider = staff(&app, "tech@keel.test", vec![Role::Technician]).await;
            // a contact logs a ticket from the portal, for their own organisation only
            let mine = app
                .create_ticket(
                    &w.contact_a,
                    NewTicket {
                        project_id: w.project_a.clone(),
                        title: "邮箱无法登录".into(),
                        urgency: Some("high".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!((mine.reporter_id.as_str(), mine.channel.as_str()), (w.contact_a.user_id.as_str(), "portal"));
            let e = app
                .create_ticket(&b, NewTicket { project_id: w.project_a.clone(), title: "x".into(), ..Default::default() })
                .await
                .unwrap_err();
            assert!(fields(e).contains(&("project_id".to_string(), "not_found")), "{}", t.label);
            let e = app
                .create_ticket(
                    &w.contact_a,
                    NewTicket { project_id: w.project_a.clone(), title: "x".into(), impact: Some("high".into()), ..Default::default() },
                )
                .await
                .unwrap_err();
            assert_eq!(fields(e), [("impact".to_string(), "not_allowed")]);
            let e = app
                .create_ticket(
                    &w.contact_a,
                    NewTicket { project_id: w.project_a.clone(), title: "x".into(), team_id: Some("t".into()), ..Default::default() },
                )
                .await
                .unwrap_err();
            assert!(fields(e).contains(&("team_id".to_string(), "not_allowed")));
            // the desk adds an internal note and a public reply
            app.add_comment(&w.agent_a, &mine.id, "internal", "客户密码过期，内部处理").await.unwrap();
            app.add_comment(&w.agent_a, &mine.id, "public", "请重置密码").await.unwrap();
            let seen = app.list_comments(&w.contact_a, &mine.id).await.unwrap();
            assert_eq!(seen.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(), ["请重置密码"], "{}", t.label);
            assert_eq!(app.list_comments(&w.agent_a, &mine.id).await.unwrap().len(), 2);
            let e = app.add_comment(&w.contact_a, &mine.id, "internal", "let me in").await.unwrap_err();
            assert_eq!(fields(e), [("visibility".to_string(), "not_allowed")]);
            assert!(matches!(app.list_work_log(&w.contact_a, &mine.id).await, Err(AppError::Forbidden)));
            assert!(matches!(app.ticket_history(&w.contact_a, &mine.id).await, Err(AppError::Forbidden)));
            // another organisation's contact and staff outside the project learn nothing
            for stranger in [&b, &outsider] {
                assert!(matches!(app.get_ticket(stranger, &mine.id).await, Err(AppError::NotFound)), "{}", t.label);
                assert!(matches!(app.get_ticket(stranger, &mine.number).await, Err(AppError::NotFound)));
                assert!(matches!(app.list_comments(stranger, &mine.id).await, Err(AppError::NotFound)));
                assert!(matches!(app.add_comment(stranger, &mine.id, "public", "hi").await, Err(AppError::NotFound)));
                assert!(matches!(app.transition_ticket(stranger, &mine.id, step("cancel"), None).await, Err(AppError::NotFound)));
                assert!(matches!(app.rate_ticket(stranger, &mine.id, 1, None).await, Err(AppError::NotFound)));
                let list = app.list_tickets(stranger, &TicketFilter::default(), &by_created(50)).await.unwrap();
                assert!(list.items.is_empty(), "{}", t.label);
                assert_eq!(app.queue_counts(stranger).await.unwrap().all, 0);
            }
            let list = app.list_tickets(&w.contact_a, &TicketFilter::default(), &by_created(50)).await.unwrap();
            assert_eq!(list.items.len(), 1);
            // auditors read, and write nothing
            assert!(app.get_ticket(&w.auditor, &mine.id).await.is_ok());
            assert!(matches!(app.add_comment(&w.auditor, &mine.id, "internal", "x").await, Err(AppError::Forbidden)));
            assert!(app.ticket_actions(&w.auditor, &mine).await.unwrap().is_empty());
            // staff cannot assign to someone outside the project
            let e = app
                .transition_ticket(
                    &w.agent_a,
                    &mine.id,
                    TransitionInput { agent_id: Some(outsider.user_id.clone()), ..step("assign") },
                    None,
                )
                .await
                .unwrap_err();
            assert!(fields(e).iter().any(|(f, _)| f == "agent_id"), "{}", t.label);
        }
    }

    #[tokio::test]
    async fn stale_updates_are_refused_and_priority_follows_the_matrix() {
        for t in TestDb::migrated_all().await {
            let (app, clock) = app_on(&t);
            let w = world(&app).await;
            let tk = app.create_ticket(&w.agent_a, incident_for(&w, "Slow ERP")).await.unwrap();
            clock.advance(1000);
            let v = tk.version;
            let up = app
                .update_ticket(
                    &w.agent_a,
                    &tk.id,
                    TicketPatch { urgency: Some("high".into()), title: Some("ERP very slow".into()), ..Default::default() },
                    Some(v),
                )
                .await
                .unwrap();
            assert_eq!((up.priority.as_str(), up.version, up.title.as_str()), ("p1", v + 1, "ERP very slow"), "{}", t.label);
            let lost =
                app.update_ticket(&w.agent_a, &tk.id, TicketPatch { title: Some("lost".into()), ..Default::default() }, Some(v)).await;
            assert!(matches!(lost, Err(AppError::Stale)), "{}", t.label);
            assert!(matches!(app.transition_ticket(&w.agent_a, &tk.id, step("cancel"), Some(v)).await, Err(AppError::Stale)));
            assert_eq!(app.get_ticket(&w.agent_a, &tk.id).await.unwrap().title, "ERP very slow");
            let mut c = app.read().await.unwrap();
            let prio = keel_store::incidents::priority_log(&mut c, &tk.id).await.unwrap();
            drop(c);
            assert_eq!(prio.iter().map(|p| p.priority.as_str()).collect::<Vec<_>>(), ["p2", "p1"]);
            // a customer may not change the desk's classification
            let e = app.update_ticket(&w.contact_a, &tk.id, TicketPatch { impact: Some("low".into()), ..Default::default() }, None).await;
            assert!(matches!(e, Err(AppError::Validation(_))));
            // a changed matrix applies to the next classification
            let mut cells = keel_domain::incident::PriorityMatrix::default().cells();
            for c in cells.iter_mut() {
                c.priority = keel_domain::incident::Priority::P1;
            }
            assert!(matches!(app.set_priority_matrix(&w.agent_a, cells.clone()).await, Err(AppError::Forbidden)));
            app.set_priority_matrix(&w.admin, cells).await.unwrap();
            let low = app
                .create_ticket(&w.agent_a, NewTicket { impact: Some("low".into()), urgency: Some("low".into()), ..incident_for(&w, "Low") })
                .await
                .unwrap();
            assert_eq!(low.priority, "p1", "{}", t.label);
        }
    }

    #[tokio::test]
    async fn incident_management_cannot_be_tailored_out() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let w = world(&app).await;
            assert!(matches!(app.tailor_project(&w.admin, &w.project_a, "incident", false, "no").await, Err(AppError::Validation(_))));
            assert!(matches!(app.tailor_project(&w.admin, &w.project_a, "service_desk", false, "no").await, Err(AppError::Validation(_))));
            app.tailor_project(&w.admin, &w.project_a, "problem", false, "customer does its own").await.unwrap();
            app.tailor_project(&w.admin, &w.project_a, "change", false, "customer does its own").await.unwrap();
            let tk = app.create_ticket(&w.agent_a, incident_for(&w, "Still served")).await.unwrap();
            assert_eq!(tk.number, "INC-000001", "{}", t.label);
        }
    }

    #[tokio::test]
    async fn queues_filter_count_and_page() {
        for t in TestDb::migrated_all().await {
            let (app, clock) = app_on(&t);
            let w = world(&app).await;
            let team = app
                .create_team(&w.admin, TeamInput { name: "二线".into(), member_ids: vec![w.agent_a.user_id.clone()], ..Default::default() })
                .await
                .unwrap();
            let mut ids = Vec::new();
            for i in 0..7 {
                clock.advance(1000);
                ids.push(app.create_ticket(&w.agent_a, incident_for(&w, &format!("Disk full {i}"))).await.unwrap().id);
            }
            app.transition_ticket(
                &w.agent_a,
                &ids[0],
                TransitionInput { agent_id: Some(w.agent_a.user_id.clone()), ..step("assign") },
                None,
            )
            .await
            .unwrap();
            app.transition_ticket(&w.agent_a, &ids[1], TransitionInput { team_id: Some(team.id.clone()), ..step("assign") }, None)
                .await
                .unwrap();
            app.transition_ticket(
                &w.agent_a,
                &ids[1],
                TransitionInput { pending_reason: Some("waiting_for_supplier".into()), ..step("pend") },
                None,
            )
            .await
            .unwrap();
            app.transition_ticket(&w.agent_a, &ids[2], TransitionInput { reason: Some("logged twice".into()), ..step("cancel") }, None)
                .await
                .unwrap();
            let counts = app.queue_counts(&w.agent_a).await.unwrap();
            assert_eq!((counts.mine, counts.team, counts.unassigned, counts.pending, counts.open, counts.all), (1, 1, 4, 1, 6, 7));
            for q in Queue::ALL {
                let mut f = TicketFilter::default();
                q.apply(&mut f, &w.agent_a.user_id);
                assert_eq!(app.count_tickets(&w.agent_a, &f).await.unwrap(), q.count(&counts), "{}: {:?}", t.label, q);
            }
            // keyset pages of 3 walk every ticket exactly once
            let mut seen = Vec::new();
            let mut page = by_created(3);
            loop {
                let p = app.list_tickets(&w.agent_a, &TicketFilter::default(), &page).await.unwrap();
                seen.extend(p.items.iter().map(|t| t.id.clone()));
                match p.next_cursor {
                    Some(c) => page.after = keel_store::page::decode_cursor(&CREATED, &c),
                    None => break,
                }
            }
            assert_eq!(seen, ids, "{}", t.label);
            let f = TicketFilter { q: Some("full 3".into()), ..Default::default() };
            assert_eq!(app.list_tickets(&w.agent_a, &f, &by_created(50)).await.unwrap().items.len(), 1);
            let f = TicketFilter { q: Some("inc-000005".into()), ..Default::default() };
            assert_eq!(app.list_tickets(&w.agent_a, &f, &by_created(50)).await.unwrap().items[0].id, ids[4]);
            let f = TicketFilter { statuses: vec!["closed".into()], priorities: vec!["p2".into()], ..Default::default() };
            assert_eq!(app.count_tickets(&w.agent_a, &f).await.unwrap(), 1);
            // work log and major incident
            app.add_work_log(&w.agent_a, &ids[0], 45, None, Some("replaced disk")).await.unwrap();
            assert_eq!(app.list_work_log(&w.agent_a, &ids[0]).await.unwrap()[0].minutes, 45);
            let major = app.declare_major_incident(&w.agent_a, &ids[3], &w.agent_a.user_id, "whole site down", None).await.unwrap();
            assert!(major.major && major.major_manager_id.as_deref() == Some(w.agent_a.user_id.as_str()));
            let f = TicketFilter { major: Some(true), ..Default::default() };
            assert_eq!(app.count_tickets(&w.agent_a, &f).await.unwrap(), 1, "{}", t.label);
            let down = app.stand_down_major_incident(&w.agent_a, &ids[3], "one rack only", None).await.unwrap();
            assert!(!down.major);
        }
    }
}

// ====================================================================================
// Service level management (§6.1): calendars, catalogue, SLAs, OLAs/UCs, clock preview.
// ====================================================================================
mod service_level {
    use super::*;
    use chrono::{DateTime, NaiveDate, Utc};
    use keel_app::service_level::{CalendarFormat, CalendarInput, ClockPreviewInput, ServiceInput, SlaInput, SupportInput};
    use keel_domain::sla::agreement::{SlaAction, SupportKind};
    use keel_domain::sla::calendar::WeekSpec;
    use keel_domain::sla::{ClockState, Priority};

    const CAL_SORT: SortKey = SortKey { name: "name", column: "name", kind: SortKind::Text };

    fn office_hours() -> WeekSpec {
        let day = || vec!["09:00-12:00".to_string(), "13:30-18:00".to_string()];
        WeekSpec { mon: day(), tue: day(), wed: day(), thu: day(), fri: day(), ..Default::default() }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The world plus a service department manager, a China 2025/2026 calendar and a live service.
    struct Sl {
        w: World,
        sm: Principal,
        calendar: String,
        service: String,
    }

    async fn setup(app: &App) -> Sl {
        let w = world(app).await;
        let sm = staff(app, "sm@keel.test", vec![Role::ServiceManager]).await;
        let calendar = app.create_china_calendar(&sm, "中国大陆工作日历").await.unwrap().id;
        let service = app
            .create_service(
                &sm,
                ServiceInput {
                    code: "DESK".into(),
                    name: "Service desk 服务台".into(),
                    service_line: "operations_maintenance".into(),
                    calendar_id: Some(calendar.clone()),
                    availability_target: Some("99.9".into()),
                    status: Some("live".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id;
        Sl { w, sm, calendar, service }
    }

    fn sla_input(sl: &Sl, project: &str, name: &str) -> SlaInput {
        SlaInput {
            name: name.into(),
            project_id: project.into(),
            calendar_id: sl.calendar.clone(),
            service_ids: vec![sl.service.clone()],
            valid_from: Some("2026-01-01".into()),
            valid_to: Some("2026-12-31".into()),
            review_on: Some("2026-06-30".into()),
            workload_min: Some(10),
            workload_max: Some(500),
            workload_unit: Some("incidents per month".into()),
            max_outage_minutes: Some(240),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_malformed_calendar_line_is_reported_and_nothing_is_written() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let sl = setup(&app).await;
            let before = app.get_calendar(&sl.sm, &sl.calendar).await.unwrap();
            let trail_before = app.history("business_calendar", &sl.calendar).await.unwrap().len();
            let csv = "date,kind,name\n2027-01-01,holiday,元旦\n2027-13-40,holiday,Bad\n2027-02-06,workday,春节调休上班\n";
            let e = app.import_calendar_year(&sl.sm, &sl.calendar, 2027, CalendarFormat::Csv, csv, None).await.unwrap_err();
            let AppError::Validation(fields) = e else { panic!("{}: expected validation, got {e:?}", t.label) };
            assert!(fields.iter().any(|f| f.field == "line 3"), "{}: {fields:?}", t.label);
            let after = app.get_calendar(&sl.sm, &sl.calendar).await.unwrap();
            assert_eq!(after.days, before.days, "{}: a refused import wrote days", t.label);
            assert_eq!(after.version, before.version);
            assert_eq!(app.history("business_calendar", &sl.calendar).await.unwrap().len(), trail_before);
            // a clean file replaces the year, and exports back
            let ok = "date,kind,name\n2027-01-01,holiday,元旦\n2027-02-06,workday,春节调休上班\n";
            let cal = app.import_calendar_year(&sl.sm, &sl.calendar, 2027, CalendarFormat::Csv, ok, Some(after.version)).await.unwrap();
            assert_eq!(cal.days.iter().filter(|d| d.date.starts_with("2027")).count(), 2, "{}", t.label);
            assert!(cal.days.iter().any(|d| d.date == "2026-02-16"), "other years are kept");
            let out = app.export_calendar_year(&sl.sm, &sl.calendar, 2027, CalendarFormat::Csv).await.unwrap();
            assert!(out.contains("2027-02-06,workday"), "{out}");
            let ics = app.export_calendar_year(&sl.sm, &sl.calendar, 2027, CalendarFormat::Ics).await.unwrap();
            assert!(ics.contains("BEGIN:VCALENDAR") && ics.contains("20270101"), "{ics}");
            // a stale import is refused
            let r = app.import_calendar_year(&sl.sm, &sl.calendar, 2027, CalendarFormat::Csv, ok, Some(after.version)).await;
            assert!(matches!(r, Err(AppError::Stale)), "{}", t.label);
            // an agent may read but not import
            let r = app.import_calendar_year(&sl.w.agent_a, &sl.calendar, 2027, CalendarFormat::Csv, ok, None).await;
            assert!(matches!(r, Err(AppError::Forbidden)), "{}", t.label);
            assert!(matches!(app.get_calendar(&sl.w.contact_a, &sl.calendar).await, Err(AppError::NotFound)));
            // a calendar in use cannot be deleted; an unused one can
            let r = app.delete_calendar(&sl.sm, &sl.calendar, None).await;
            assert!(matches!(r, Err(AppError::Conflict { code: "calendar_in_use", .. })), "{}: {r:?}", t.label);
            let spare = app.create_china_calendar(&sl.sm, "spare").await.unwrap();
            app.delete_calendar(&sl.sm, &spare.id, Some(spare.version)).await.unwrap();
            assert!(matches!(app.get_calendar(&sl.sm, &spare.id).await, Err(AppError::NotFound)), "{}", t.label);
            assert_eq!(app.history("business_calendar", &spare.id).await.unwrap().last().unwrap().action, "delete");
        }
    }

    #[tokio::test]
    async fn china_2026_is_loaded_with_its_make_up_days() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let w = world(&app).await;
            let sm = staff(&app, "sm@keel.test", vec![Role::ServiceManager]).await;
            let cal = app
                .create_calendar(
                    &sm,
                    CalendarInput {
                        name: "Shanghai office".into(),
                        time_zone: "Asia/Shanghai".into(),
                        hours: office_hours(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert!(cal.days.is_empty());
            let cal = app.load_china_year(&sm, &cal.id, 2026, Some(cal.version)).await.unwrap();
            let b = keel_app::service_level::business_calendar(&cal).unwrap();
            let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
            assert!(b.is_working_day(d("2026-02-14")), "{}: Saturday 2026-02-14 is a make-up working day", t.label);
            assert!(!b.is_working_day(d("2026-02-16")), "{}: 2026-02-16 is a Spring Festival holiday", t.label);
            assert!(b.is_working_day(d("2026-02-13")));
            assert!(matches!(app.load_china_year(&sm, &cal.id, 2031, None).await, Err(AppError::Validation(_))));
            let listed = app.list_calendars(&w.agent_a, None, &page(CAL_SORT)).await.unwrap();
            assert_eq!(listed.items.len(), 1, "{}", t.label);
            assert!(matches!(app.list_calendars(&w.contact_a, None, &page(CAL_SORT)).await, Err(AppError::Forbidden)));
            // bad hours are reported per field
            let mut bad = office_hours();
            bad.mon = vec!["18:00-09:00".into()];
            let e = app
                .create_calendar(&sm, CalendarInput { name: "x".into(), time_zone: "Mars/Base".into(), hours: bad, ..Default::default() })
                .await;
            let Err(AppError::Validation(f)) = e else { panic!("{e:?}") };
            let names: Vec<&str> = f.iter().map(|f| f.field.as_str()).collect();
            assert!(names.contains(&"time_zone") && names.iter().any(|n| n.starts_with("hours.mon")), "{names:?}");
        }
    }

    #[tokio::test]
    async fn sla_approval_rules() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let sl = setup(&app).await;
            assert!(matches!(app.create_sla(&sl.w.agent_a, sla_input(&sl, &sl.w.project_a, "Acme SLA")).await, Err(AppError::Forbidden)));
            let sla = app.create_sla(&sl.sm, sla_input(&sl, &sl.w.project_a, "Acme SLA")).await.unwrap();
            assert_eq!(sla.status, "draft");
            assert_eq!(sla.organization_id, sl.w.org_a);
            // the agent on the project reads it but cannot approve
            assert!(app.get_sla(&sl.w.agent_a, &sla.id).await.is_ok());
            assert!(
                matches!(app.sla_action(&sl.w.agent_a, &sla.id, SlaAction::Approve, None).await, Err(AppError::Forbidden)),
                "{}",
                t.label
            );
            // an administrator without the service manager role cannot approve either
            assert!(matches!(app.sla_action(&sl.w.admin, &sla.id, SlaAction::Approve, None).await, Err(AppError::Forbidden)));
            // activation before approval is refused
            let r = app.sla_action(&sl.sm, &sla.id, SlaAction::Activate, None).await;
            assert!(matches!(r, Err(AppError::InvalidTransition(_))), "{}: {r:?}", t.label);
            let approved = app.sla_action(&sl.sm, &sla.id, SlaAction::Approve, Some(sla.version)).await.unwrap();
            assert_eq!((approved.status.as_str(), approved.approved_by.as_deref()), ("approved", Some(sl.sm.user_id.as_str())));
            // an approved SLA is not edited in place
            let r = app.update_sla(&sl.sm, &sla.id, sla_input(&sl, &sl.w.project_a, "Acme SLA v2"), None).await;
            assert!(matches!(r, Err(AppError::Conflict { code: "sla_not_editable", .. })), "{}: {r:?}", t.label);
            let active = app.sla_action(&sl.sm, &sla.id, SlaAction::Activate, Some(approved.version)).await.unwrap();
            assert_eq!(active.status, "active");
            let expired = app.sla_action(&sl.sm, &sla.id, SlaAction::Expire, None).await.unwrap();
            assert_eq!(expired.status, "expired");
            assert!(matches!(app.sla_action(&sl.sm, &sla.id, SlaAction::Activate, None).await, Err(AppError::InvalidTransition(_))));
            let h = app.history("sla", &sla.id).await.unwrap();
            assert_eq!(h.len(), 4, "{}", t.label);
            assert!(h[1].changes.to_string().contains("approve"));
            // invalid targets are reported per field
            let mut bad = sla_input(&sl, &sl.w.project_a, "Bad");
            let targets: keel_domain::sla::target::TargetsSpec = serde_json::from_value(serde_json::json!({
                "P1": {"first_response_ms": 3600000, "resolution_ms": 60000},
                "P2": {"first_response_ms": 3600000, "resolution_ms": 28800000},
                "P3": {"first_response_ms": 3600000, "resolution_ms": 28800000},
                "P4": {"first_response_ms": 3600000, "resolution_ms": 28800000}
            }))
            .unwrap();
            bad.targets = Some(targets);
            bad.workload_min = Some(100);
            bad.workload_max = Some(5);
            let Err(AppError::Validation(f)) = app.create_sla(&sl.sm, bad).await else { panic!() };
            let names: Vec<&str> = f.iter().map(|f| f.field.as_str()).collect();
            assert!(names.contains(&"targets.P1.resolution_ms") && names.contains(&"workload_max"), "{names:?}");
        }
    }

    #[tokio::test]
    async fn a_contact_sees_only_their_organisations_slas_and_services() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let sl = setup(&app).await;
            let a = app.create_sla(&sl.sm, sla_input(&sl, &sl.w.project_a, "Acme SLA")).await.unwrap();
            let hidden = app
                .create_service(
                    &sl.sm,
                    ServiceInput {
                        code: "DC".into(),
                        name: "Data centre".into(),
                        service_line: "infrastructure".into(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let mut bi = sla_input(&sl, &sl.w.project_b, "Beta SLA");
            bi.service_ids = vec![hidden.id.clone()];
            let b = app.create_sla(&sl.sm, bi).await.unwrap();
            let c = &sl.w.contact_a;
            assert!(app.get_sla(c, &a.id).await.is_ok(), "{}", t.label);
            assert!(matches!(app.get_sla(c, &b.id).await, Err(AppError::NotFound)), "{}", t.label);
            let ids: Vec<String> =
                app.list_slas(c, &Default::default(), &page(NAME_SORT)).await.unwrap().items.into_iter().map(|s| s.id).collect();
            assert_eq!(ids, vec![a.id.clone()], "{}", t.label);
            // the agent of project A sees A only; the service manager sees both
            assert!(matches!(app.get_sla(&sl.w.agent_a, &b.id).await, Err(AppError::NotFound)));
            assert_eq!(app.list_slas(&sl.sm, &Default::default(), &page(NAME_SORT)).await.unwrap().items.len(), 2);
            // the catalogue: the contact sees the services their SLAs include
            let services = app.list_services(c, &Default::default(), &page(NAME_SORT)).await.unwrap();
            assert_eq!(services.items.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), vec![sl.service.clone()], "{}", t.label);
            assert!(matches!(app.get_service(c, &hidden.id).await, Err(AppError::NotFound)));
            assert!(matches!(app.sla_action(c, &a.id, SlaAction::Approve, None).await, Err(AppError::Forbidden)));
            // supporting agreements are internal
            assert!(matches!(app.list_support(c, SupportKind::Ola, &Default::default(), &page(NAME_SORT)).await, Err(AppError::Forbidden)));
        }
    }

    #[tokio::test]
    async fn tailored_out_service_level_management_refuses_slas() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let sl = setup(&app).await;
            app.tailor_project(&sl.sm, &sl.w.project_b, "service_level", false, "customer keeps no SLA").await.unwrap();
            let r = app.create_sla(&sl.sm, sla_input(&sl, &sl.w.project_b, "Beta SLA")).await;
            assert!(matches!(r, Err(AppError::ProcessDisabled(ref p)) if p == "service_level"), "{}: {r:?}", t.label);
            assert!(app.create_sla(&sl.sm, sla_input(&sl, &sl.w.project_a, "Acme SLA")).await.is_ok());
        }
    }

    #[tokio::test]
    async fn the_clock_preview_gives_the_hand_checked_due_times() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let sl = setup(&app).await;
            // default targets: P1 first response 1 h, resolution 4 h; pauses in pending_customer
            let sla = app.create_sla(&sl.sm, sla_input(&sl, &sl.w.project_a, "Acme SLA")).await.unwrap();
            // Friday 2026-02-13 17:00 Shanghai. Working time: Fri 17:00-18:00, then the make-up
            // working day Saturday 2026-02-14 from 09:00 (Monday's hours).
            let input = |changes: Vec<(DateTime<Utc>, String)>| ClockPreviewInput {
                priority: Priority::P1,
                created_at: utc("2026-02-13T09:00:00Z"),
                initial_status: None,
                status_changes: changes,
                priority_changes: vec![],
                first_response_at: None,
                public_updates: vec![],
                now: Some(utc("2026-02-13T09:30:00Z")),
            };
            let r = app.sla_clock_preview(&sl.w.agent_a, &sla.id, &input(vec![])).await.unwrap();
            // first response: 1 h -> Fri 18:00 = 10:00Z; resolution: 1 h Fri + 3 h Sat -> Sat 12:00 = 04:00Z
            assert_eq!(r.first_response.due_at, Some(utc("2026-02-13T10:00:00Z")), "{}", t.label);
            assert_eq!(r.resolution.due_at, Some(utc("2026-02-14T04:00:00Z")), "{}", t.label);
            assert_eq!(r.resolution.state, ClockState::Running);
            // waiting for the customer Fri 17:30 -> Sat 09:30 pauses 1 business hour:
            // resolution 0.5 h before, 3.5 h from Sat 09:30 -> 12:00 (2.5 h) + 13:30-14:30 -> 06:30Z
            let mut i =
                input(vec![(utc("2026-02-13T09:30:00Z"), "pending_customer".into()), (utc("2026-02-14T01:30:00Z"), "in_progress".into())]);
            i.now = Some(utc("2026-02-14T02:00:00Z"));
            let r = app.sla_clock_preview(&sl.w.agent_a, &sla.id, &i).await.unwrap();
            assert_eq!(r.resolution.paused_ms, 3_600_000, "{}", t.label);
            assert_eq!(r.resolution.due_at, Some(utc("2026-02-14T06:30:00Z")), "{}", t.label);
            assert_eq!(r.first_response.due_at, Some(utc("2026-02-14T02:00:00Z")), "{}", t.label);
            // others' SLAs stay hidden
            let b = app.create_sla(&sl.sm, sla_input(&sl, &sl.w.project_b, "Beta SLA")).await.unwrap();
            assert!(matches!(app.sla_clock_preview(&sl.w.contact_a, &b.id, &i).await, Err(AppError::NotFound)));
        }
    }

    #[tokio::test]
    async fn catalogue_changes_are_versioned_and_supporting_agreements_checked() {
        for t in TestDb::migrated_all().await {
            let (app, clock) = app_on(&t);
            let sl = setup(&app).await;
            let s = app.get_service(&sl.sm, &sl.service).await.unwrap();
            clock.advance(1000);
            let input = ServiceInput {
                code: s.code.clone(),
                name: s.name.clone(),
                service_line: s.service_line.clone(),
                calendar_id: s.calendar_id.clone(),
                security: Some("等保三级".into()),
                status: Some("live".into()),
                ..Default::default()
            };
            let v2 = app.update_service(&sl.sm, &s.id, input.clone(), Some(s.version)).await.unwrap();
            assert_eq!(v2.version, 2);
            let versions = app.service_versions(&sl.sm, &s.id).await.unwrap();
            assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2], "{}", t.label);
            assert_eq!(versions[1].snapshot["security"], "等保三级");
            let h = app.history("service", &s.id).await.unwrap();
            assert!(h[1].changes.to_string().contains("catalogue_version"), "{}", t.label);
            // retired is final; a service cannot depend on itself
            let retired =
                app.update_service(&sl.sm, &s.id, ServiceInput { status: Some("retired".into()), ..input.clone() }, None).await.unwrap();
            let r = app
                .update_service(&sl.sm, &s.id, ServiceInput { status: Some("live".into()), ..input.clone() }, Some(retired.version))
                .await;
            assert!(matches!(r, Err(AppError::Validation(ref f)) if f[0].code == "invalid_transition"), "{}: {r:?}", t.label);
            let r = app
                .update_service(
                    &sl.sm,
                    &s.id,
                    ServiceInput { depends_on: vec![s.id.clone()], status: Some("retired".into()), ..input },
                    None,
                )
                .await;
            assert!(matches!(r, Err(AppError::Validation(ref f)) if f[0].code == "dependency_cycle"), "{}: {r:?}", t.label);
            // an OLA may not promise less than the SLA it supports
            let sla = app.create_sla(&sl.sm, sla_input(&sl, &sl.w.project_b, "Beta SLA")).await;
            let sla = match sla {
                Ok(s) => s,
                Err(AppError::Validation(f)) if f[0].code == "service_retired" => {
                    let mut i = sla_input(&sl, &sl.w.project_b, "Beta SLA");
                    i.service_ids.clear();
                    app.create_sla(&sl.sm, i).await.unwrap()
                }
                Err(e) => panic!("{e:?}"),
            };
            let team = app.create_team(&sl.w.admin, TeamInput { name: "二线网络组".into(), ..Default::default() }).await.unwrap();
            let mut loose = sla.targets.clone();
            loose.p1.resolution_ms *= 2;
            let r = app
                .create_support(
                    &sl.sm,
                    SupportKind::Ola,
                    SupportInput {
                        name: "Network OLA".into(),
                        provider_team_id: Some(team.id.clone()),
                        targets: Some(loose),
                        sla_ids: vec![sla.id.clone()],
                        ..Default::default()
                    },
                )
                .await;
            assert!(matches!(r, Err(AppError::Validation(ref f)) if f.iter().any(|f| f.code == "looser_than_sla")), "{}: {r:?}", t.label);
            let mut tight = sla.targets.clone();
            tight.p1.resolution_ms /= 2;
            let ola = app
                .create_support(
                    &sl.sm,
                    SupportKind::Ola,
                    SupportInput {
                        name: "Network OLA".into(),
                        provider_team_id: Some(team.id),
                        targets: Some(tight),
                        sla_ids: vec![sla.id.clone()],
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(ola.sla_ids, vec![sla.id.clone()]);
            let r = app.create_support(&sl.sm, SupportKind::Contract, SupportInput { name: "Line".into(), ..Default::default() }).await;
            assert!(matches!(r, Err(AppError::Validation(ref f)) if f[0].field == "supplier_name"), "{}", t.label);
            let uc = app
                .create_support(
                    &sl.sm,
                    SupportKind::Contract,
                    SupportInput {
                        name: "Carrier line".into(),
                        supplier_name: Some("China Telecom".into()),
                        sla_ids: vec![sla.id.clone()],
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert!(matches!(app.get_support(&sl.sm, SupportKind::Ola, &uc.id).await, Err(AppError::NotFound)), "kinds do not mix");
            let filtered = app
                .list_support(
                    &sl.w.agent_a,
                    SupportKind::Contract,
                    &keel_store::service_level::SupportFilter { sla_id: Some(sla.id.clone()), ..Default::default() },
                    &page(NAME_SORT),
                )
                .await
                .unwrap();
            assert_eq!(filtered.items.len(), 1, "{}", t.label);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Service desk: importing incidents from other tools' CSV exports
// ---------------------------------------------------------------------------------------------

mod import {
    use super::*;
    use keel_app::import::{ImportReport, Mapping};

    const MAPPING: &str = r#"
        [source]
        name = "legacy"
        missing = ["?"]
        date_formats = ["%d/%m/%Y %H:%M"]
        time_zone = "Asia/Shanghai"
        group_by = "id"

        [fields]
        external_ref = "id"
        title = "subject"
        status = "state"
        team = "group"
        resolution_code = "code"
        opened_at = "opened"
        resolved_at = "resolved"

        [values.status]
        "Open" = "new"
        "Working" = "in_progress"
        "Done" = "resolved"
    "#;

    fn mapping(text: &str) -> Mapping {
        Mapping::from_toml(text).unwrap()
    }

    fn docs_mapping(name: &str) -> Mapping {
        let path = format!("{}/../../docs/import/{name}", env!("CARGO_MANIFEST_DIR"));
        mapping(&std::fs::read_to_string(path).unwrap())
    }

    fn data(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    async fn counts(app: &App, w: &World) -> (i64, usize) {
        let tickets = app.count_tickets(&w.admin, &Default::default()).await.unwrap();
        let audit =
            app.audit_trail(&w.admin, &keel_store::audit::TrailFilter { limit: 100_000, ..Default::default() }).await.unwrap().len();
        (tickets, audit)
    }

    async fn desk_team(app: &App, w: &World, name: &str) {
        app.create_team(&w.admin, TeamInput { name: name.into(), member_ids: vec![w.agent_a.user_id.clone()], ..Default::default() })
            .await
            .unwrap();
    }

    async fn run(app: &App, w: &World, csv: &[u8], m: &Mapping, dry_run: bool) -> ImportReport {
        app.import_incidents(&w.agent_a, &w.project_a, csv, m, dry_run, &|_| {}).await.unwrap()
    }

    const GOOD_AND_BAD: &str = "id,subject,state,group,code,opened,resolved
A-1,Printer jammed 打印机卡纸,Open,?,?,3/2/2026 09:15,?
A-2,VPN down,Working,Desk,?,3/2/2026 10:00,?
A-3,Mail slow,Sleeping,Desk,?,3/2/2026 10:00,?
A-4,Disk full,Done,Desk,solved,31/2/2026 10:00,4/2/2026 10:00
A-5,Laptop,Done,Desk,?,3/2/2026 10:00,4/2/2026 10:00
A-6,Phone,Working,Nobody,?,3/2/2026 10:00,?
A-7,Wifi,Done,Desk,solved,3/2/2026 10:00,1/2/2026 10:00
A-1,Printer again,Open,?,?,3/2/2026 09:15,?
";

    #[tokio::test]
    async fn a_dry_run_lists_each_bad_row_with_its_line_and_reason_and_writes_nothing() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let w = world(&app).await;
            desk_team(&app, &w, "Desk").await;
            let before = counts(&app, &w).await;
            let r = run(&app, &w, GOOD_AND_BAD.as_bytes(), &mapping(MAPPING), true).await;
            assert_eq!((r.rows, r.tickets, r.imported), (8, 7, 0), "{}", t.label);
            let found: Vec<(u64, &str, &str)> =
                r.bad_rows.iter().map(|b| (b.line, b.external_ref.as_deref().unwrap_or(""), b.field.as_str())).collect();
            assert_eq!(
                found,
                [
                    (4, "A-3", "status"),
                    (5, "A-4", "opened_at"),
                    (6, "A-5", "resolution_code"),
                    (7, "A-6", "team"),
                    (8, "A-7", "resolved_at")
                ],
                "{}: {:#?}",
                t.label,
                r.bad_rows
            );
            assert!(r.bad_rows[0].reason.contains("'Sleeping'"), "{}", r.bad_rows[0].reason);
            assert!(r.bad_rows[1].reason.contains("31/2/2026"), "{}", r.bad_rows[1].reason);
            assert!(r.bad_rows[3].reason.contains("'Nobody'"), "{}", r.bad_rows[3].reason);
            assert_eq!(counts(&app, &w).await, before, "{}: a dry run writes nothing", t.label);
        }
    }

    #[tokio::test]
    async fn an_import_is_all_or_nothing() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let w = world(&app).await;
            desk_team(&app, &w, "Desk").await;
            let before = counts(&app, &w).await;
            let m = mapping(MAPPING);
            let r = run(&app, &w, GOOD_AND_BAD.as_bytes(), &m, false).await;
            assert_eq!((r.imported, r.bad_rows.len()), (0, 5), "{}", t.label);
            assert_eq!(counts(&app, &w).await, before, "{}: one bad row, nothing written", t.label);
            // file-level faults: a missing column, broken quoting, text that is not UTF-8 (GBK)
            let r = run(&app, &w, b"id,subject,state\nA-1,x,Open\n", &m, false).await;
            assert_eq!((r.bad_rows[0].line, r.bad_rows[0].field.as_str()), (1, "file"));
            assert!(r.bad_rows[0].reason.contains("group") && r.bad_rows[0].reason.contains("opened"), "{}", r.bad_rows[0].reason);
            let broken =
                "id,subject,state,group,code,opened,resolved\nA-1,\"unclosed,Open,?,?,3/2/2026 09:15,?\nA-2,ok,Open,?,?,3/2/2026 09:15,?\n";
            let r = run(&app, &w, broken.as_bytes(), &m, false).await;
            assert!(!r.ok() && r.imported == 0, "{}: {:?}", t.label, r.bad_rows);
            let mut gbk = b"id,subject,state,group,code,opened,resolved\nA-1,".to_vec();
            gbk.extend([0xB4, 0xF2, 0xD3, 0xA1, 0xBB, 0xFA]); // 打印机 in GBK
            gbk.extend(b",Open,?,?,3/2/2026 09:15,?\n");
            let r = run(&app, &w, &gbk, &m, false).await;
            assert_eq!(r.bad_rows.len(), 1);
            assert!(r.bad_rows[0].line == 2 && r.bad_rows[0].reason.contains("UTF-8"), "{:?}", r.bad_rows);
            let no_grouping = mapping(&MAPPING.replace("group_by = \"id\"", ""));
            let twice = "id,subject,state,group,code,opened,resolved\nA-9,x,Open,?,?,3/2/2026 09:15,?\nA-9,y,Open,?,?,3/2/2026 09:15,?\n";
            let r = run(&app, &w, twice.as_bytes(), &no_grouping, false).await;
            assert_eq!(r.bad_rows.len(), 1, "{:?}", r.bad_rows);
            assert!(r.bad_rows[0].line == 3 && r.bad_rows[0].reason.contains("first on line 2"), "{:?}", r.bad_rows);
            assert_eq!(counts(&app, &w).await, before, "{}", t.label);

            // the good rows alone import, with audit and outbox, numbered in Keel's sequence
            let good: String =
                GOOD_AND_BAD.lines().enumerate().filter(|(i, _)| [0, 1, 2].contains(i)).map(|(_, l)| format!("{l}\n")).collect();
            let r = run(&app, &w, good.as_bytes(), &m, false).await;
            assert!(r.ok(), "{:?}", r.bad_rows);
            assert_eq!(r.numbers, [("A-1".to_string(), "INC-000001".to_string()), ("A-2".into(), "INC-000002".into())]);
            let a1 = app.get_ticket(&w.agent_a, "INC-000001").await.unwrap();
            assert_eq!(a1.title, "Printer jammed 打印机卡纸");
            // 09:15 in Shanghai is 01:15 UTC
            let opened = chrono::DateTime::from_timestamp_millis(a1.created_at).unwrap();
            assert_eq!(opened.to_rfc3339(), "2026-02-03T01:15:00+00:00", "{}", t.label);
            let a2 = app.get_ticket(&w.agent_a, "INC-000002").await.unwrap();
            assert_eq!((a2.status.as_str(), a2.team_id.is_some()), ("in_progress", true));
            let h = app.ticket_history(&w.agent_a, &a2.id).await.unwrap();
            assert!(h[0].changes.to_string().contains("legacy"), "{}: the audit entry names the source", t.label);
            assert!(app.integrity_check().await.unwrap().ok(), "{}", t.label);
            // importing again refuses what is already there
            let r = run(&app, &w, good.as_bytes(), &m, true).await;
            assert_eq!(
                r.bad_rows.iter().map(|b| b.reason.as_str()).collect::<Vec<_>>(),
                ["already imported as INC-000001", "already imported as INC-000002"]
            );
            // a contact cannot import
            let denied = app.import_incidents(&w.contact_a, &w.project_a, good.as_bytes(), &m, true, &|_| {}).await;
            assert!(matches!(denied, Err(AppError::Forbidden)), "{}", t.label);
        }
    }

    #[tokio::test]
    async fn the_uci_servicenow_excerpt_imports_with_its_dates_and_statuses() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let w = world(&app).await;
            desk_team(&app, &w, "Service desk").await;
            let m = docs_mapping("uci-servicenow-event-log.toml");
            let csv = data("uci_event_log_excerpt.csv");
            let dry = run(&app, &w, &csv, &m, true).await;
            assert!(dry.ok(), "{}: {:?}", t.label, dry.bad_rows);
            assert_eq!((dry.rows, dry.tickets, dry.imported), (300, 49, 0), "{}", t.label);
            let r = run(&app, &w, &csv, &m, false).await;
            assert_eq!(r.imported, 49, "{}", t.label);
            let number = &r.numbers.iter().find(|(x, _)| x == "INC0000045").unwrap().1;
            let tk = app.get_ticket(&w.agent_a, number).await.unwrap();
            let at = |ms: Option<i64>| chrono::DateTime::from_timestamp_millis(ms.unwrap()).unwrap().format("%Y-%m-%d %H:%M").to_string();
            assert_eq!(tk.status, "closed", "{}: the last snapshot (sys_mod_count 4) wins", t.label);
            assert_eq!(at(Some(tk.created_at)), "2016-02-29 01:16");
            assert_eq!(at(tk.resolved_at), "2016-02-29 11:29");
            assert_eq!(at(tk.closed_at), "2016-03-05 12:00");
            assert_eq!(
                (tk.impact.as_str(), tk.urgency.as_str(), tk.priority.as_str(), tk.channel.as_str()),
                ("medium", "medium", "p3", "phone")
            );
            assert!(tk.title.starts_with("Category 55 / Subcategory 170"), "{}", tk.title);
            let log = app.status_log(&w.agent_a, &tk.id).await.unwrap();
            let steps: Vec<&str> = log.iter().map(|e| e.to_status.as_str()).collect();
            assert_eq!(steps, ["new", "resolved", "closed"], "{}", t.label);
            let cats = app.list_categories(&w.admin).await.unwrap();
            assert!(cats.iter().any(|c| c.code == "CATEGORY-55"), "{}", t.label);
            let open = r.numbers.iter().find(|(x, _)| x == "INC0000125").unwrap();
            assert_eq!(app.get_ticket(&w.agent_a, &open.1).await.unwrap().status, "new", "{}", t.label);
            assert!(app.integrity_check().await.unwrap().ok(), "{}", t.label);
        }
    }

    #[tokio::test]
    async fn the_endava_excerpt_imports_with_line_numbers_as_references() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let w = world(&app).await;
            let m = docs_mapping("endava-helpdesk-tickets.toml");
            let r = run(&app, &w, &data("endava_tickets_excerpt.csv"), &m, false).await;
            assert!(r.ok(), "{}: {:?}", t.label, r.bad_rows);
            assert_eq!(r.imported, 150, "{}", t.label);
            assert_eq!(r.numbers[0].0, "2", "{}: the first data row is on line 2: {:?}", t.label, &r.numbers[..3]);
            let first = app.get_ticket(&w.agent_a, &r.numbers[0].1).await.unwrap();
            assert!(first.title.starts_with("hi since recruiter"), "{}: an empty title falls back to the body", first.title);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// First look: the bilingual demo
// ---------------------------------------------------------------------------------------------

mod demo {
    use super::*;

    #[tokio::test]
    async fn the_demo_loads_a_living_bilingual_desk_once() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let r = app.load_demo(300, &|_| {}).await.unwrap_or_else(|e| panic!("{}: {e:?}", t.label));
            assert_eq!((r.organizations, r.tickets), (3, 300), "{}", t.label);
            assert!(r.accounts.iter().all(|a| a.password.len() >= 10));
            let admin = {
                let mut c = app.read().await.unwrap();
                let u = keel_store::accounts::get_user_by_email(&mut c, "admin@demo.keel.test").await.unwrap().unwrap();
                keel_app::auth::principal_of(&mut c, &u).await.unwrap()
            };
            let all = app.count_tickets(&admin, &Default::default()).await.unwrap();
            assert_eq!(all, 300, "{}", t.label);
            let chinese = keel_store::incidents::TicketFilter { q: Some("打印".into()), ..Default::default() };
            assert!(app.count_tickets(&admin, &chinese).await.unwrap() > 0, "{}: Chinese tickets", t.label);
            let agent = {
                let mut c = app.read().await.unwrap();
                let u = keel_store::accounts::get_user_by_email(&mut c, "li.na@demo.keel.test").await.unwrap().unwrap();
                keel_app::auth::principal_of(&mut c, &u).await.unwrap()
            };
            let counts = app.queue_counts(&agent).await.unwrap();
            assert!(counts.mine > 0 && counts.open > 0 && counts.unassigned > 0, "{}: {counts:?}", t.label);
            // a contact sees only their organisation's tickets
            let contact = {
                let mut c = app.read().await.unwrap();
                let u = keel_store::accounts::get_user_by_email(&mut c, "chen.jing@ecm.example").await.unwrap().unwrap();
                keel_app::auth::principal_of(&mut c, &u).await.unwrap()
            };
            let theirs = app.count_tickets(&contact, &Default::default()).await.unwrap();
            assert!(theirs > 0 && theirs < all, "{}", t.label);
            assert!(app.integrity_check().await.unwrap().ok(), "{}", t.label);
            let again = app.load_demo(10, &|_| {}).await;
            assert!(matches!(again, Err(AppError::Conflict { code: "not_empty", .. })), "{}: the demo refuses a used instance", t.label);
        }
    }
}

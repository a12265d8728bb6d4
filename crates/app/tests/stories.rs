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

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
    (App::new(t.db.clone(), SecurityConfig::default()).with_clock(clock.clone()).with_secrets(secret_box(0x42)), clock)
}

/// The box that encrypts stored secrets; the stories' apps use key byte 0x42 throughout.
fn secret_box(key_byte: u8) -> keel_app::secrets::SecretBox {
    keel_app::secrets::SecretBox::new([key_byte; 32], keel_app::secrets::KeySource::Given)
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
/// The fields and codes of a validation error, in the order given.
fn fields(e: AppError) -> Vec<(String, &'static str)> {
    match e {
        AppError::Validation(f) => f.into_iter().map(|f| (f.field, f.code)).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// The announcements of one kind written to the outbox so far, oldest first.
async fn announcements(app: &App, kind: &str) -> Vec<serde_json::Value> {
    let mut c = app.read().await.unwrap();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT payload FROM outbox WHERE topic = 'announcement' ORDER BY id").fetch_all(&mut *c).await.unwrap();
    rows.into_iter().map(|r| serde_json::from_str::<serde_json::Value>(&r.0).unwrap()).filter(|v| v["kind"] == kind).collect()
}

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
        // a day later every builtin job is due, the daily ones too
        clock.advance(25 * 3_600_000);
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

    pub(crate) const CI_SORT: SortKey = SortKey { name: "name", column: "name", kind: SortKind::Text };

    pub(crate) async fn setup(t: &TestDb) -> (App, World) {
        let (app, _) = app_on(t);
        let w = world(&app).await;
        assert!(app.seed_cmdb_classes().await.unwrap() >= 10, "{}: shipped classes seeded", t.label);
        assert_eq!(app.seed_cmdb_classes().await.unwrap(), 0, "{}: seeding is idempotent", t.label);
        (app, w)
    }

    pub(crate) async fn ci(
        app: &App,
        who: &Principal,
        class: &str,
        name: &str,
        project: Option<&str>,
        attributes: serde_json::Value,
    ) -> CiRecord {
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

    pub(crate) async fn relate(
        app: &App,
        who: &Principal,
        source: &str,
        kind: RelationType,
        target: &str,
    ) -> keel_store::cmdb::RelationRecord {
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

    #[tokio::test]
    async fn tickets_logged_at_once_share_a_commit_and_a_refused_one_leaves_the_rest_whole() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let w = world(&app).await;
            let before = audit_len(&app, &w).await;
            let mut handles = Vec::new();
            for i in 0..24 {
                let (app, agent) = (app.clone(), w.agent_a.clone());
                let mut input = incident_for(&w, &format!("Burst {i}"));
                if i % 4 == 3 {
                    input.impact = Some("enormous".into());
                }
                handles.push(tokio::spawn(async move { app.create_ticket(&agent, input).await }));
            }
            let mut numbers = Vec::new();
            for (i, h) in handles.into_iter().enumerate() {
                match h.await.unwrap() {
                    Ok(tk) => {
                        assert_ne!(i % 4, 3, "{}: a refused ticket was written", t.label);
                        assert_eq!(app.get_ticket(&w.agent_a, &tk.id).await.unwrap().title, format!("Burst {i}"));
                        numbers.push(tk.number);
                    }
                    Err(e) => {
                        assert_eq!(i % 4, 3, "{}: ticket {i} failed: {e:?}", t.label);
                        assert_eq!(fields(e), vec![("impact".to_string(), "invalid_choice")], "{}", t.label);
                    }
                }
            }
            numbers.sort();
            let expected: Vec<String> = (1..=18).map(|n| format!("INC-{n:06}")).collect();
            assert_eq!(numbers, expected, "{}: numbers skip or repeat", t.label);
            let listed = app.list_tickets(&w.admin, &TicketFilter::default(), &by_created(100)).await.unwrap();
            assert_eq!(listed.items.len(), 18, "{}", t.label);
            assert_eq!(announcements(&app, "incident.created").await.len(), 18, "{}", t.label);
            assert!(audit_len(&app, &w).await >= before + 18, "{}", t.label);
            let r = app.integrity_check().await.unwrap();
            assert!(r.ok(), "{}: {r:?}", t.label);
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

mod sla_clocks {
    use super::*;
    use chrono::{DateTime, Utc};
    use keel_app::incidents::{NewTicket, TransitionInput};
    use keel_app::service_level::SlaInput;
    use keel_app::sla_clocks::RuleInput;
    use keel_domain::incident::TicketPatch;
    use keel_domain::notification::Audience;
    use keel_domain::sla::agreement::SlaAction;
    use keel_store::sla_clocks::ClockRow;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc).timestamp_millis()
    }

    /// The world, a service department manager, a mainland China calendar and an active SLA on
    /// project A with the default targets (P1 1 h / 4 h, P3 4 h / 24 h; thresholds 75, 100).
    struct Sc {
        w: World,
        sm: Principal,
        calendar: String,
        sla: String,
    }

    async fn setup(app: &App) -> Sc {
        let w = world(app).await;
        let sm = staff(app, "sm@keel.test", vec![Role::ServiceManager]).await;
        let calendar = app.create_china_calendar(&sm, "中国大陆工作日历").await.unwrap().id;
        let sla = app
            .create_sla(
                &sm,
                SlaInput { name: "Acme SLA".into(), project_id: w.project_a.clone(), calendar_id: calendar.clone(), ..Default::default() },
            )
            .await
            .unwrap()
            .id;
        app.sla_action(&sm, &sla, SlaAction::Approve, None).await.unwrap();
        app.sla_action(&sm, &sla, SlaAction::Activate, None).await.unwrap();
        Sc { w, sm, calendar, sla }
    }

    fn ticket(sc: &Sc, impact: &str, urgency: &str) -> NewTicket {
        NewTicket {
            project_id: sc.w.project_a.clone(),
            reporter_id: Some(sc.w.contact_a.user_id.clone()),
            title: "ERP 无法登录".into(),
            impact: Some(impact.into()),
            urgency: Some(urgency.into()),
            agent_id: Some(sc.w.agent_a.user_id.clone()),
            ..Default::default()
        }
    }

    async fn clock(app: &App, who: &Principal, id: &str, kind: &str) -> ClockRow {
        let s = app.ticket_sla(who, id).await.unwrap();
        s.clocks.into_iter().find(|c| c.kind == kind).unwrap_or_else(|| panic!("no {kind} clock"))
    }

    #[tokio::test]
    async fn breaching_soon_lists_open_clocks_in_warning_or_due_before_and_not_breached_or_stopped() {
        const CREATED: SortKey = SortKey { name: "created_at", column: "t.created_at", kind: SortKind::Int };
        for t in TestDb::migrated_all().await {
            let (app, clock_) = app_on(&t);
            let sc = setup(&app).await;
            clock_.0.store(ms("2026-03-04T02:00:00Z"), Ordering::SeqCst);
            let p1 = app.create_ticket(&sc.w.agent_a, ticket(&sc, "high", "high")).await.unwrap();
            let p3 = app.create_ticket(&sc.w.agent_a, ticket(&sc, "medium", "medium")).await.unwrap();
            assert_eq!(p3.priority, "p3");
            let soon = |before: i64| {
                let (app, who) = (app.clone(), sc.sm.clone());
                async move {
                    let f = keel_store::incidents::TicketFilter { open_only: true, breaching_before: Some(before), ..Default::default() };
                    let page = PageRequest { sort: CREATED, desc: false, after: None, limit: 50 };
                    let listed: Vec<String> =
                        app.list_tickets(&who, &f, &page).await.unwrap().items.into_iter().map(|t| t.number).collect();
                    assert_eq!(app.count_tickets(&who, &f).await.unwrap(), listed.len() as i64);
                    listed
                }
            };
            let d1 = clock(&app, &sc.w.agent_a, &p1.id, "first_response").await.due_at.unwrap();
            let d3 = clock(&app, &sc.w.agent_a, &p3.id, "first_response").await.due_at.unwrap();
            assert!(d3 > d1, "{}", t.label);
            assert_eq!(soon(d1 - 1).await, Vec::<String>::new(), "{}", t.label);
            assert_eq!(soon(d1).await, vec![p1.number.clone()], "{}", t.label);
            assert_eq!(soon(d3).await, vec![p1.number.clone(), p3.number.clone()], "{}", t.label);
            // a first response stops the P1's response clock; its resolution is due later
            app.add_comment(&sc.w.agent_a, &p1.id, "public", "正在处理").await.unwrap();
            assert_eq!(soon(d1).await, Vec::<String>::new(), "{}", t.label);
            // a resolution clock past its warning threshold is listed whatever its due time
            let res = clock(&app, &sc.w.agent_a, &p1.id, "resolution").await;
            let warn_at = res.warning_at.unwrap();
            clock_.0.store(warn_at + 60_000, Ordering::SeqCst);
            app.run_sla_escalations().await.unwrap();
            assert_eq!(clock(&app, &sc.w.agent_a, &p1.id, "resolution").await.state, "warning", "{}", t.label);
            assert!(res.due_at.unwrap() > warn_at + 60_000);
            // the P3's response clock crossed its own 75 % threshold at the same business time
            assert_eq!(clock(&app, &sc.w.agent_a, &p3.id, "first_response").await.state, "warning", "{}", t.label);
            assert!(d3 > warn_at);
            assert_eq!(soon(warn_at).await, vec![p1.number.clone(), p3.number.clone()], "{}", t.label);
            // past its due time the P3's response clock is breached: no longer "soon"
            clock_.0.store(d3 + 60_000, Ordering::SeqCst);
            app.run_sla_escalations().await.unwrap();
            assert_eq!(clock(&app, &sc.w.agent_a, &p3.id, "first_response").await.state, "breached", "{}", t.label);
            assert!(!soon(d3).await.contains(&p3.number), "{}", t.label);
        }
    }

    #[tokio::test]
    async fn a_p1_ticket_is_due_in_china_business_time_and_pauses_waiting_for_the_customer() {
        for t in TestDb::migrated_all().await {
            let (app, clock_) = app_on(&t);
            let sc = setup(&app).await;
            // Friday 2026-02-13 17:00 Shanghai; the make-up working day Saturday 02-14 follows.
            clock_.0.store(ms("2026-02-13T09:00:00Z"), Ordering::SeqCst);
            let tk = app.create_ticket(&sc.w.agent_a, ticket(&sc, "high", "high")).await.unwrap();
            assert_eq!(tk.priority, "p1");
            let fr = clock(&app, &sc.w.agent_a, &tk.id, "first_response").await;
            let res = clock(&app, &sc.w.agent_a, &tk.id, "resolution").await;
            assert_eq!((fr.sla_id.as_str(), fr.state.as_str()), (sc.sla.as_str(), "running"), "{}", t.label);
            assert_eq!(fr.due_at, Some(ms("2026-02-13T10:00:00Z")), "{}", t.label);
            assert_eq!(res.due_at, Some(ms("2026-02-14T04:00:00Z")), "{}", t.label);
            // 75% of 4 h = 3 h: Fri 17:00-18:00 + Sat 09:00-11:00 = 03:00Z
            assert_eq!(res.warning_at, Some(ms("2026-02-14T03:00:00Z")), "{}", t.label);
            assert_eq!(res.next_threshold_at, Some(ms("2026-02-14T03:00:00Z")));
            // waiting for the customer Fri 17:30 -> Sat 09:30 pauses one business hour
            clock_.0.store(ms("2026-02-13T09:30:00Z"), Ordering::SeqCst);
            let step = TransitionInput { action: "pend".into(), pending_reason: Some("waiting_for_customer".into()), ..Default::default() };
            app.transition_ticket(&sc.w.agent_a, &tk.id, step, None).await.unwrap();
            let res = clock(&app, &sc.w.agent_a, &tk.id, "resolution").await;
            assert_eq!((res.state.as_str(), res.due_at, res.next_threshold_at), ("paused", None, None), "{}", t.label);
            clock_.0.store(ms("2026-02-14T01:30:00Z"), Ordering::SeqCst);
            app.transition_ticket(&sc.w.agent_a, &tk.id, TransitionInput { action: "resume".into(), ..Default::default() }, None)
                .await
                .unwrap();
            let res = clock(&app, &sc.w.agent_a, &tk.id, "resolution").await;
            assert_eq!(res.paused_ms, 3_600_000, "{}", t.label);
            assert_eq!(res.due_at, Some(ms("2026-02-14T06:30:00Z")), "{}", t.label);
            // the first response was due Fri 18:00 less the pause: Sat 10:00 = 02:00Z; a public
            // reply at 01:45Z meets it
            clock_.0.store(ms("2026-02-14T01:45:00Z"), Ordering::SeqCst);
            app.add_comment(&sc.w.agent_a, &tk.id, "public", "我们正在处理").await.unwrap();
            let fr = clock(&app, &sc.w.agent_a, &tk.id, "first_response").await;
            assert_eq!((fr.state.as_str(), fr.met_at), ("met", Some(ms("2026-02-14T01:45:00Z"))), "{}", t.label);
            // the contact sees their ticket's clocks, not the escalations
            assert_eq!(app.ticket_sla(&sc.w.contact_a, &tk.id).await.unwrap().clocks.len(), 2);
            // past the due time the clock is breached
            clock_.0.store(ms("2026-02-14T07:00:00Z"), Ordering::SeqCst);
            app.run_sla_escalations().await.unwrap();
            let res = clock(&app, &sc.w.agent_a, &tk.id, "resolution").await;
            assert_eq!((res.state.as_str(), res.breached_at), ("breached", Some(ms("2026-02-14T06:30:00Z"))), "{}", t.label);
        }
    }

    #[tokio::test]
    async fn a_changed_sla_or_priority_matrix_applies_to_the_next_ticket_on_every_instance() {
        for t in TestDb::migrated_all().await {
            let (app, clock_) = app_on(&t);
            // a second instance on the same database, with its own copy of the reference data
            let two = App::new(t.db.clone(), SecurityConfig::default()).with_clock(clock_.clone());
            let sc = setup(&app).await;
            clock_.0.store(ms("2026-02-13T09:00:00Z"), Ordering::SeqCst);
            let clocks = |a: &App, id: String| {
                let (a, who) = (a.clone(), sc.w.agent_a.clone());
                async move { a.ticket_sla(&who, &id).await.unwrap().clocks.into_iter().map(|c| c.sla_id).collect::<Vec<_>>() }
            };
            // both instances log a ticket, so both hold the matrix and the project's SLAs
            let one = app.create_ticket(&sc.w.agent_a, ticket(&sc, "low", "low")).await.unwrap();
            let other = two.create_ticket(&sc.w.agent_a, ticket(&sc, "low", "low")).await.unwrap();
            assert_eq!((one.priority.as_str(), other.priority.as_str()), ("p4", "p4"), "{}", t.label);
            assert_eq!(clocks(&two, other.id.clone()).await, [sc.sla.clone(), sc.sla.clone()], "{}", t.label);
            // the first instance changes the matrix and expires the SLA ...
            let mut cells = keel_domain::incident::PriorityMatrix::default().cells();
            for c in cells.iter_mut() {
                c.priority = keel_domain::incident::Priority::P1;
            }
            app.set_priority_matrix(&sc.w.admin, cells).await.unwrap();
            app.sla_action(&sc.sm, &sc.sla, SlaAction::Expire, None).await.unwrap();
            // ... and the second one's next ticket follows both
            let next = two.create_ticket(&sc.w.agent_a, ticket(&sc, "low", "low")).await.unwrap();
            assert_eq!(next.priority, "p1", "{}", t.label);
            assert!(clocks(&two, next.id.clone()).await.is_empty(), "{}: measured by an expired SLA", t.label);
            // a new SLA activated on the second instance measures the first one's next ticket
            let input = SlaInput {
                name: "Acme SLA 2".into(),
                project_id: sc.w.project_a.clone(),
                calendar_id: sc.calendar.clone(),
                ..Default::default()
            };
            let sla = two.create_sla(&sc.sm, input).await.unwrap().id;
            two.sla_action(&sc.sm, &sla, SlaAction::Approve, None).await.unwrap();
            two.sla_action(&sc.sm, &sla, SlaAction::Activate, None).await.unwrap();
            let last = app.create_ticket(&sc.w.agent_a, ticket(&sc, "low", "low")).await.unwrap();
            assert_eq!(clocks(&app, last.id.clone()).await, [sla.clone(), sla.clone()], "{}", t.label);
        }
    }

    #[tokio::test]
    async fn raising_the_priority_re_targets_from_creation_and_a_calendar_change_recomputes() {
        for t in TestDb::migrated_all().await {
            let (app, clock_) = app_on(&t);
            let sc = setup(&app).await;
            // Monday 2026-03-02 10:00 Shanghai
            clock_.0.store(ms("2026-03-02T02:00:00Z"), Ordering::SeqCst);
            let tk = app.create_ticket(&sc.w.agent_a, ticket(&sc, "medium", "medium")).await.unwrap();
            assert_eq!(tk.priority, "p3");
            // P3: 24 business hours (7.5 h a day) from Mon 10:00 -> Thu 2026-03-05 11:30 = 03:30Z
            assert_eq!(clock(&app, &sc.w.agent_a, &tk.id, "resolution").await.due_at, Some(ms("2026-03-05T03:30:00Z")), "{}", t.label);
            clock_.0.store(ms("2026-03-02T03:00:00Z"), Ordering::SeqCst);
            let patch = TicketPatch { impact: Some("high".into()), urgency: Some("high".into()), ..Default::default() };
            let tk = app.update_ticket(&sc.w.agent_a, &tk.id, patch, None).await.unwrap();
            assert_eq!(tk.priority, "p1");
            // P1 4 h counted from creation: Mon 10:00-12:00 + 13:30-15:30 = 07:30Z
            let res = clock(&app, &sc.w.agent_a, &tk.id, "resolution").await;
            assert_eq!((res.priority.as_str(), res.due_at), ("p1", Some(ms("2026-03-02T07:30:00Z"))), "{}", t.label);
            // the calendar now works 08:00-18:00 without a break on weekdays: a recompute job runs
            let mut cal = app.get_calendar(&sc.sm, &sc.calendar).await.unwrap();
            let day = || vec!["08:00-18:00".to_string()];
            cal.hours =
                keel_domain::sla::calendar::WeekSpec { mon: day(), tue: day(), wed: day(), thu: day(), fri: day(), ..Default::default() };
            let input = keel_app::service_level::CalendarInput {
                name: cal.name.clone(),
                description: cal.description.clone(),
                time_zone: cal.time_zone.clone(),
                hours: cal.hours.clone(),
                make_up_hours: Some(cal.make_up_hours.clone()),
            };
            app.update_calendar(&sc.sm, &sc.calendar, input, None).await.unwrap();
            // not yet recomputed: the job does it
            assert_eq!(clock(&app, &sc.w.agent_a, &tk.id, "resolution").await.due_at, Some(ms("2026-03-02T07:30:00Z")));
            assert!(app.run_due_jobs(10).await.unwrap() >= 1);
            // Mon 10:00 + 4 h = 14:00 = 06:00Z
            assert_eq!(clock(&app, &sc.w.agent_a, &tk.id, "resolution").await.due_at, Some(ms("2026-03-02T06:00:00Z")), "{}", t.label);
        }
    }

    /// The shipped template of an event kind rendered with an announcement's variables.
    fn text(kind: &str, lang: &str, vars: &serde_json::Value) -> String {
        let t = keel_app::notifications::templates::default_template(kind, lang).unwrap();
        keel_app::notifications::templates::render(&t, vars).unwrap().body_text
    }

    /// Notify `audience` when a resolution clock reaches 75 %.
    fn warning_rule(audience: Vec<Audience>) -> RuleInput {
        RuleInput { target_kind: "resolution".into(), percent: 75, action: "notify".into(), audience, ..Default::default() }
    }

    #[tokio::test]
    async fn an_escalation_fires_once_under_concurrent_runs_and_says_when_it_is_late() {
        for t in TestDb::migrated_all().await {
            let (app, clock_) = app_on(&t);
            let sc = setup(&app).await;
            app.create_escalation_rule(&sc.sm, &sc.sla, warning_rule(vec![Audience::Assignee, Audience::ProjectManager])).await.unwrap();
            let raise = RuleInput { target_kind: "resolution".into(), percent: 100, action: "raise_priority".into(), ..Default::default() };
            app.create_escalation_rule(&sc.sm, &sc.sla, raise).await.unwrap();
            let bad = RuleInput { target_kind: "resolution".into(), percent: 80, action: "notify".into(), ..Default::default() };
            let Err(AppError::Validation(f)) = app.create_escalation_rule(&sc.sm, &sc.sla, bad).await else { panic!() };
            assert!(f.iter().any(|f| f.field == "percent") && f.iter().any(|f| f.field == "audience"));
            assert!(matches!(app.create_escalation_rule(&sc.w.agent_a, &sc.sla, RuleInput::default()).await, Err(AppError::Forbidden)));
            // three P2 tickets (8 h) logged Monday 2026-03-02 09:00 Shanghai
            clock_.0.store(ms("2026-03-02T01:00:00Z"), Ordering::SeqCst);
            let mut ids = vec![];
            for _ in 0..3 {
                ids.push(app.create_ticket(&sc.w.agent_a, ticket(&sc, "high", "medium")).await.unwrap().id);
            }
            assert_eq!(app.run_sla_escalations().await.unwrap(), 0);
            // 75% of 8 h = 6 h: Mon 09:00-12:00 + 13:30-16:30 = 08:30Z; the job runs 30 s later
            clock_.0.store(ms("2026-03-02T08:30:30Z"), Ordering::SeqCst);
            let (a, b) = tokio::join!(app.run_sla_escalations(), app.run_sla_escalations());
            assert_eq!(a.unwrap() + b.unwrap(), 3, "{}: one warning per ticket", t.label);
            assert_eq!(app.run_sla_escalations().await.unwrap(), 0);
            let warnings = announcements(&app, "sla.warning").await;
            assert_eq!(warnings.len(), 3, "{}", t.label);
            assert_eq!(warnings[0]["vars"]["late"], false);
            assert_eq!(warnings[0]["vars"]["percent"], 75);
            let body = text("sla.warning", "en", &warnings[0]["vars"]);
            assert!(body.contains("used 75% of its resolution target (due 2026-03-03 01:30 UTC)"), "{body}");
            assert!(!body.contains("late"), "{body}");
            let body = text("sla.warning", "zh-CN", &warnings[0]["vars"]);
            assert!(body.contains("已用去 75%（到期 2026-03-03 01:30 UTC）"), "{body}");
            // down over the breach (Mon 18:00 + Tue 09:00-09:30 = Tue 01:30Z); back Tue 03:00Z
            clock_.0.store(ms("2026-03-03T03:00:00Z"), Ordering::SeqCst);
            let (a, b) = tokio::join!(app.run_sla_escalations(), app.run_sla_escalations());
            assert_eq!(a.unwrap() + b.unwrap(), 3, "{}", t.label);
            let escalated = announcements(&app, "sla.escalated").await;
            assert_eq!(escalated.len(), 3, "{}", t.label);
            assert_eq!(escalated[0]["vars"]["late"], true, "{}", t.label);
            assert_eq!(escalated[0]["vars"]["late_by_ms"], 90 * 60_000, "{}", t.label);
            let body = text("sla.escalated", "en", &escalated[0]["vars"]);
            assert!(body.contains("reached 100% of its resolution target (due 2026-03-03 01:30 UTC)"), "{body}");
            assert!(body.contains("priority raised to p1"), "{body}");
            let late = serde_json::json!({ "number": "INC-1", "target": "resolution", "threshold": 100, "due": "d", "late": true, "threshold_at": "t0" });
            assert!(text("sla.breached", "en", &late).contains("This notice is late: the breach happened at t0"));
            let tk = app.get_ticket(&sc.w.agent_a, &ids[0]).await.unwrap();
            assert_eq!(tk.priority, "p1", "{}", t.label);
            let s = app.ticket_sla(&sc.w.agent_a, &ids[0]).await.unwrap();
            assert_eq!(s.firings.len(), 2);
            assert!(s.firings[1].late && s.firings[1].outcome == "priority_raised", "{:?}", s.firings);
            let h = app.ticket_history(&sc.w.agent_a, &ids[0]).await.unwrap();
            assert!(h.iter().any(|e| e.changes.to_string().contains("sla_escalation") && e.changes.to_string().contains("true")));
            // the report counts the breaches
            let r = app.sla_attainment(&sc.sm, ms("2026-03-01T00:00:00Z"), ms("2026-04-01T00:00:00Z")).await.unwrap();
            // first response (2 h) and resolution of each ticket
            assert_eq!((r.total.met, r.total.breached), (0, 6), "{}", t.label);
            assert_eq!(r.breaches.len(), 6);
            assert_eq!(r.by_priority.iter().map(|g| g.key.as_str()).collect::<Vec<_>>(), vec!["p1"]);
            assert!(r.breaches[0].reason.contains("p2 → p1"), "{}", r.breaches[0].reason);
            assert!(matches!(
                app.sla_attainment(&sc.w.agent_a, ms("2026-03-01T00:00:00Z"), ms("2026-04-01T00:00:00Z")).await,
                Err(AppError::Forbidden)
            ));
        }
    }

    #[tokio::test]
    async fn escalations_run_in_batches_skip_tickets_held_elsewhere_and_wake_helpers_on_postgres() {
        for t in TestDb::migrated_all().await {
            let (app, clock_) = app_on(&t);
            let sc = setup(&app).await;
            app.create_escalation_rule(&sc.sm, &sc.sla, warning_rule(vec![Audience::Assignee])).await.unwrap();
            clock_.0.store(ms("2026-03-02T01:00:00Z"), Ordering::SeqCst);
            let n = keel_app::sla_clocks::ESCALATE_BATCH as usize + 10;
            let mut ids = vec![];
            for _ in 0..n {
                ids.push(app.create_ticket(&sc.w.agent_a, ticket(&sc, "high", "medium")).await.unwrap().id);
            }
            ids.sort();
            clock_.0.store(ms("2026-03-02T08:30:30Z"), Ordering::SeqCst);
            let pg = t.db.backend() == keel_store::Backend::Postgres;
            let mut expected = n;
            if pg {
                // another instance holds the first ticket: this run skips it instead of waiting
                let mut other = t.db.begin().await.unwrap();
                sqlx::query("SELECT id FROM tickets WHERE id = $1 FOR UPDATE").bind(&ids[0]).fetch_all(&mut *other).await.unwrap();
                assert_eq!(app.run_sla_escalations().await.unwrap(), n - 1, "{}", t.label);
                other.rollback().await.unwrap();
                expected = 1;
                let helpers = "SELECT COUNT(*) FROM jobs WHERE kind = 'sla_escalate' AND unique_key LIKE 'sla_escalate.helper.%' AND status = 'pending'";
                let mut c = app.read().await.unwrap();
                let woken: i64 = sqlx::query_scalar(helpers).fetch_one(&mut *c).await.unwrap();
                assert_eq!(woken, keel_app::sla_clocks::ESCALATE_HELPERS as i64, "a full batch wakes the helpers");
            }
            assert_eq!(app.run_sla_escalations().await.unwrap(), expected, "{}", t.label);
            // the helpers (and the recurring job) find nothing left to fire
            app.run_due_jobs(20).await.unwrap();
            assert_eq!(app.run_sla_escalations().await.unwrap(), 0, "{}", t.label);
            assert_eq!(announcements(&app, "sla.warning").await.len(), n, "{}: one warning per ticket", t.label);
            let mut c = app.read().await.unwrap();
            let open: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE unique_key LIKE 'sla_escalate.helper.%' AND status <> 'done'")
                    .fetch_one(&mut *c)
                    .await
                    .unwrap();
            assert_eq!(open, 0, "{}: the helpers ran and are done", t.label);
        }
    }

    #[tokio::test]
    async fn review_reminders_are_announced_once_per_version_and_ended_slas_expire() {
        for t in TestDb::migrated_all().await {
            let (app, clock_) = app_on(&t);
            let sc = setup(&app).await;
            let sla = app.get_sla(&sc.sm, &sc.sla).await.unwrap();
            let mut c = app.db.begin().await.unwrap();
            sqlx::query("UPDATE slas SET review_on = '2026-03-10', valid_to = '2026-03-31' WHERE id = $1")
                .bind(&sla.id)
                .execute(&mut *c)
                .await
                .unwrap();
            c.commit().await.unwrap();
            clock_.0.store(ms("2026-03-01T00:00:00Z"), Ordering::SeqCst);
            assert_eq!(app.run_sla_reviews().await.unwrap(), (1, 0), "{}", t.label);
            assert_eq!(app.run_sla_reviews().await.unwrap(), (0, 0), "{}", t.label);
            clock_.0.store(ms("2026-04-01T01:00:00Z"), Ordering::SeqCst);
            assert_eq!(app.run_sla_reviews().await.unwrap().1, 1, "{}", t.label);
            assert_eq!(app.get_sla(&sc.sm, &sc.sla).await.unwrap().status, "expired");
            let due = announcements(&app, "sla.review_due").await;
            assert_eq!(due.len(), 1);
            let body = text("sla.review_due", "zh-CN", &due[0]["vars"]);
            assert!(body.contains(&format!("服务级别协议 {} 应于 2026-03-10 评审", sla.name)), "{body}");
            let expired = announcements(&app, "sla.expired").await;
            let body = text("sla.expired", "en", &expired[0]["vars"]);
            assert!(body.contains(&format!("{} expired on 2026-03-31", sla.name)), "{body}");
        }
    }
}

mod notifications {
    use super::*;
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    use keel_app::incidents::{NewTicket, TransitionInput};
    use keel_app::notifications::templates::MessageTemplate;
    use keel_app::notifications::{NotifyConfig, WebhookInput};
    use keel_app::testing::{Mail, SmtpSink};
    use keel_store::notifications::DeliveryFilter;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU16;

    /// One request a webhook receiver got.
    #[derive(Debug, Clone)]
    pub(super) struct Hit {
        path: String,
        query: String,
        pub(super) headers: HashMap<String, String>,
        pub(super) body: String,
    }

    /// A real HTTP receiver on loopback (axum) answering with the status tests set.
    pub(super) struct Receiver {
        pub(super) base: String,
        hits: Arc<Mutex<Vec<Hit>>>,
        status: Arc<AtomicU16>,
    }

    impl Receiver {
        pub(super) async fn start() -> Receiver {
            let hits = Arc::new(Mutex::new(Vec::new()));
            let status = Arc::new(AtomicU16::new(200));
            let (h, s) = (hits.clone(), status.clone());
            let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
                let (h, s) = (h.clone(), s.clone());
                async move {
                    let headers = headers.iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())).collect();
                    h.lock().unwrap().push(Hit { path: uri.path().into(), query: uri.query().unwrap_or("").into(), headers, body });
                    let code = axum::http::StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap();
                    (code, "{\"errcode\":0}")
                }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            Receiver { base, hits, status }
        }

        pub(super) fn hits(&self, path: &str) -> Vec<Hit> {
            self.hits.lock().unwrap().iter().filter(|h| h.path == path).cloned().collect()
        }
    }

    pub(super) fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        m.update(msg);
        m.finalize().into_bytes().to_vec()
    }

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    pub(super) struct Desk {
        pub(super) team: String,
        agent2: Principal,
    }

    /// A team of two agents (the second reads Chinese) on project A.
    pub(super) async fn desk(app: &App, w: &World) -> Desk {
        let agent2 = app
            .create_user(
                &w.admin,
                NewUser {
                    email: "wang.fang@keel.test".into(),
                    display_name: "王芳".into(),
                    locale: Some("zh-CN".into()),
                    roles: vec![Role::ServiceDeskAgent],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let project = app.get_project(&w.admin, &w.project_a).await.unwrap();
        let mut members = project.member_ids.clone();
        members.push(agent2.id.clone());
        app.update_project(
            &w.admin,
            &w.project_a,
            ProjectInput {
                code: project.code.clone(),
                name: project.name.clone(),
                organization_id: w.org_a.clone(),
                member_ids: members,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
        let team = app
            .create_team(
                &w.admin,
                TeamInput { name: "一线".into(), member_ids: vec![w.agent_a.user_id.clone(), agent2.id.clone()], ..Default::default() },
            )
            .await
            .unwrap();
        Desk { team: team.id, agent2: principal(app, &agent2.id).await }
    }

    pub(super) fn ticket(w: &World, team: &str, title: &str) -> NewTicket {
        NewTicket {
            project_id: w.project_a.clone(),
            reporter_id: Some(w.contact_a.user_id.clone()),
            title: title.into(),
            team_id: Some(team.into()),
            ..Default::default()
        }
    }

    pub(super) async fn run(app: &App) -> (usize, usize) {
        let d = app.dispatch_announcements().await.unwrap();
        let s = app.deliver_due(100).await.unwrap();
        (d, s)
    }

    #[tokio::test]
    async fn incident_events_are_mailed_threaded_numbered_and_in_the_recipients_language() {
        for t in TestDb::migrated_all().await {
            let sink = SmtpSink::start().await;
            let (app, clock) = app_on(&t);
            let app = app.with_notify(sink.config());
            let w = world(&app).await;
            let d = desk(&app, &w).await;
            let tk = app.create_ticket(&w.agent_a, ticket(&w, &d.team, "Printer jams")).await.unwrap();
            assert_eq!(run(&app).await, (1, 1), "{}: the team hears of it, except the agent who logged it", t.label);
            let created = sink.to("wang.fang@keel.test");
            assert_eq!(created.len(), 1, "{}", t.label);
            let h = created[0].headers();
            assert_eq!(created[0].subject(), format!("[{}] 新事件：Printer jams", tk.number), "{}", t.label);
            let first_id = h["message-id"].clone();
            assert!(first_id.starts_with('<') && first_id.ends_with("@keel.test>"), "{first_id}");
            let thread = format!("<ticket-{}@keel.test>", tk.id);
            assert_eq!((h["in-reply-to"].as_str(), h["references"].as_str()), (thread.as_str(), thread.as_str()));
            assert_eq!(h["auto-submitted"], "auto-generated");
            assert!(h["content-type"].starts_with("multipart/alternative"), "{}", h["content-type"]);
            assert!(created[0].data.contains("text/plain") && created[0].data.contains("text/html"));

            // assignment to the agent, a staff reply to the reporter, the customer's answer to the assignee
            clock.advance(1000);
            app.transition_ticket(
                &d.agent2,
                &tk.id,
                TransitionInput { agent_id: Some(w.agent_a.user_id.clone()), team_id: Some(d.team.clone()), ..Default::default() }
                    .with("reassign"),
                None,
            )
            .await
            .unwrap();
            app.add_comment(&w.agent_a, &tk.id, "internal", "not for the customer").await.unwrap();
            app.add_comment(&w.agent_a, &tk.id, "public", "We are on it <b>now</b>").await.unwrap();
            app.add_comment(&w.contact_a, &tk.id, "public", "Thanks").await.unwrap();
            app.transition_ticket(
                &w.agent_a,
                &tk.id,
                TransitionInput {
                    resolution_code: Some("solved".into()),
                    resolution_notes: Some("new fuser".into()),
                    ..Default::default()
                }
                .with("resolve"),
                None,
            )
            .await
            .unwrap();
            run(&app).await;
            let mut to_agent: Vec<String> = sink.to("agent@keel.test").iter().map(Mail::subject).collect();
            to_agent.sort();
            assert_eq!(
                to_agent,
                [format!("[{}] Assigned to you: Printer jams", tk.number), format!("[{}] New reply: Printer jams", tk.number)]
            );
            let to_contact = sink.to("li.lei@acme.test");
            let mut subjects: Vec<String> = to_contact.iter().map(Mail::subject).collect();
            subjects.sort();
            assert_eq!(
                subjects,
                [format!("[{}] New reply: Printer jams", tk.number), format!("[{}] Resolved: Printer jams", tk.number)],
                "{}",
                t.label
            );
            assert!(to_contact.iter().all(|m| m.headers()["in-reply-to"] == thread), "one thread per ticket");
            assert!(to_contact.iter().all(|m| m.headers()["message-id"] != first_id), "each message has its own id");
            assert!(!sink.mails().iter().any(|m| m.data.contains("not for the customer")), "internal notes are never announced");
            let reply = app
                .list_deliveries(&w.admin, &DeliveryFilter { event_kind: Some("incident.public_reply".into()), ..Default::default() })
                .await
                .unwrap();
            let html = &reply.iter().find(|d| d.recipient == "li.lei@acme.test").unwrap().body_html;
            assert!(html.contains("We are on it &lt;b&gt;now&lt;&#x2f;b&gt;"), "HTML escapes the reply: {html}");
            assert_eq!(
                app.list_deliveries(&w.admin, &DeliveryFilter { status: Some("sent".into()), ..Default::default() }).await.unwrap().len(),
                5
            );
            assert!(matches!(app.list_deliveries(&w.agent_a, &DeliveryFilter::default()).await, Err(AppError::Forbidden)));
        }
    }

    trait With {
        fn with(self, action: &str) -> Self;
    }

    impl With for TransitionInput {
        fn with(mut self, action: &str) -> Self {
            self.action = action.into();
            self
        }
    }

    #[tokio::test]
    async fn webhooks_are_signed_per_vendor_and_a_failing_receiver_ends_in_the_dead_letters() {
        for t in TestDb::migrated_all().await {
            let rx = Receiver::start().await;
            let (app, clock) = app_on(&t);
            let app = app.with_notify(NotifyConfig { max_attempts: 3, backoff_ms: 10_000, ..Default::default() });
            let w = world(&app).await;
            let d = desk(&app, &w).await;
            let hook = |kind: &str, secret: Option<&str>| WebhookInput {
                name: format!("{kind} desk"),
                kind: kind.into(),
                url: format!("{}/{kind}?access_token=abc", rx.base),
                secret: secret.map(str::to_string),
                event_kinds: vec!["incident.created".into()],
                project_id: Some(w.project_a.clone()),
                language: Some("zh-CN".into()),
                ..Default::default()
            };
            for (kind, secret) in
                [("generic", Some("g-secret")), ("dingtalk", Some("SECd")), ("feishu", Some("f-secret")), ("wecom", None), ("slack", None)]
            {
                app.create_webhook(&w.admin, hook(kind, secret)).await.unwrap();
            }
            // stored encrypted: the raw rows are not the secrets
            let mut c = app.read().await.unwrap();
            let stored = keel_store::secrets::list(&mut c, keel_store::secrets::StoredSecret::WebhookSecret).await.unwrap();
            drop(c);
            assert_eq!(stored.len(), 3, "{}", t.label);
            for row in &stored {
                let (name, value) = (&row.label, &row.stored);
                assert!(keel_app::secrets::is_sealed(value), "{name}: {value}");
                assert!(!["g-secret", "SECd", "f-secret"].iter().any(|p| value.contains(p)), "{name}: {value}");
            }
            let mut other = hook("generic", None);
            other.project_id = Some(w.project_b.clone());
            other.name = "Beta only".into();
            app.create_webhook(&w.admin, other).await.unwrap();
            let e = app
                .create_webhook(&w.admin, WebhookInput { kind: "fax".into(), url: "ftp://x".into(), ..Default::default() })
                .await
                .unwrap_err();
            match e {
                AppError::Validation(f) => assert_eq!(f.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["name", "kind", "url"]),
                other => panic!("{other:?}"),
            }

            let tk = app.create_ticket(&w.agent_a, ticket(&w, &d.team, "VPN down")).await.unwrap();
            assert_eq!(run(&app).await, (5, 5), "{}: five hooks of project A carry incident.created", t.label);
            let g = &rx.hits("/generic")[0];
            let sig = format!("sha256={}", hex::encode(hmac(b"g-secret", g.body.as_bytes())));
            assert_eq!(g.headers["x-keel-signature"], sig);
            let body: serde_json::Value = serde_json::from_str(&g.body).unwrap();
            assert_eq!((body["event"].as_str(), body["entity_id"].as_str()), (Some("incident.created"), Some(tk.id.as_str())));
            assert_eq!(body["timestamp"].to_string(), g.headers["x-keel-timestamp"]);
            assert!(body["subject"].as_str().unwrap().starts_with("新事件"), "the hook's language");

            let ding = &rx.hits("/dingtalk")[0];
            let q: HashMap<&str, &str> = ding.query.split('&').filter_map(|p| p.split_once('=')).collect();
            assert_eq!(q["access_token"], "abc");
            let expected = b64(&hmac(b"SECd", format!("{}\nSECd", q["timestamp"]).as_bytes()));
            let decoded = q["sign"].replace("%2B", "+").replace("%2F", "/").replace("%3D", "=");
            assert_eq!(decoded, expected, "DingTalk signature");
            let dbody: serde_json::Value = serde_json::from_str(&ding.body).unwrap();
            assert_eq!(dbody["msgtype"], "markdown");

            let fs: serde_json::Value = serde_json::from_str(&rx.hits("/feishu")[0].body).unwrap();
            let ts = fs["timestamp"].as_str().unwrap();
            assert_eq!(fs["sign"].as_str().unwrap(), b64(&hmac(format!("{ts}\nf-secret").as_bytes(), b"")), "Feishu signature");
            assert_eq!(fs["msg_type"], "text");
            let wc: serde_json::Value = serde_json::from_str(&rx.hits("/wecom")[0].body).unwrap();
            assert!(wc["markdown"]["content"].as_str().unwrap().contains(&tk.number));
            let sl: serde_json::Value = serde_json::from_str(&rx.hits("/slack")[0].body).unwrap();
            assert!(sl["text"].is_string() && sl["blocks"].is_array());

            // the receiver fails: retried with growing delays, then a dead letter with the last error
            rx.status.store(500, Ordering::SeqCst);
            app.create_ticket(&w.agent_a, ticket(&w, &d.team, "Mail down")).await.unwrap();
            assert_eq!(run(&app).await, (5, 5));
            assert_eq!(app.deliver_due(100).await.unwrap(), 0, "not before the back-off");
            clock.advance(10_000);
            assert_eq!(app.deliver_due(100).await.unwrap(), 5);
            clock.advance(10_000);
            assert_eq!(app.deliver_due(100).await.unwrap(), 0, "the second delay is twice the first");
            clock.advance(10_000);
            assert_eq!(app.deliver_due(100).await.unwrap(), 5);
            clock.advance(3_600_000);
            assert_eq!(app.deliver_due(100).await.unwrap(), 0, "dead letters are not tried again");
            let dead = app.list_deliveries(&w.admin, &DeliveryFilter { status: Some("dead".into()), ..Default::default() }).await.unwrap();
            assert_eq!(dead.len(), 5, "{}", t.label);
            assert!(dead.iter().all(|d| d.attempts == 3 && d.last_error.as_deref().unwrap().starts_with("HTTP 500")), "{dead:?}");
            assert_eq!(rx.hits("/generic").len(), 4);
            // an administrator retries one once the receiver is back
            rx.status.store(200, Ordering::SeqCst);
            let generic = rx_hook_id(&app, &w, "generic desk").await;
            let one = dead.iter().find(|d| d.recipient == generic).unwrap();
            assert!(matches!(app.retry_delivery(&w.agent_a, &one.id).await, Err(AppError::Forbidden)));
            assert_eq!(app.retry_delivery(&w.admin, &one.id).await.unwrap().status, "pending");
            assert!(matches!(app.retry_delivery(&w.admin, &one.id).await, Err(AppError::Conflict { .. })));
            assert_eq!(app.deliver_due(100).await.unwrap(), 1);
            assert_eq!(app.get_delivery(&w.admin, &one.id).await.unwrap().status, "sent");
        }
    }

    /// A secret stored in plain text before encryption existed still signs, and is encrypted
    /// at start; an instance with another key (or none) fails the delivery with a message
    /// naming the webhook and what to do — it never sends it unsigned.
    #[tokio::test]
    async fn a_legacy_plaintext_secret_still_signs_and_a_wrong_key_never_sends_unsigned() {
        for t in TestDb::migrated_all().await {
            let rx = Receiver::start().await;
            let (app, clock) = app_on(&t);
            let w = world(&app).await;
            let d = desk(&app, &w).await;
            let input = WebhookInput {
                name: "Legacy hook".into(),
                kind: "generic".into(),
                url: format!("{}/generic", rx.base),
                secret: Some("new-secret".into()),
                event_kinds: vec!["incident.created".into()],
                ..Default::default()
            };
            let hook = app.create_webhook(&w.admin, input).await.unwrap();
            // as a Keel without encryption left it
            let mut tx = t.db.begin().await.unwrap();
            sqlx::query("UPDATE notification_webhooks SET secret = $1 WHERE id = $2")
                .bind("legacy-secret")
                .bind(&hook.id)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            app.create_ticket(&w.agent_a, ticket(&w, &d.team, "Legacy")).await.unwrap();
            assert_eq!(run(&app).await, (1, 1), "{}", t.label);
            let g = &rx.hits("/generic")[0];
            assert_eq!(g.headers["x-keel-signature"], format!("sha256={}", hex::encode(hmac(b"legacy-secret", g.body.as_bytes()))));

            // encrypted once at start, and still the same secret
            let report = app.seal_stored_secrets().await.unwrap();
            assert_eq!((report.sealed, report.readable, report.unreadable.len()), (1, 0, 0), "{}", t.label);
            let stored = app.get_webhook(&w.admin, &hook.id).await.unwrap().secret.unwrap();
            assert!(keel_app::secrets::is_sealed(&stored) && !stored.contains("legacy-secret"), "{stored}");
            assert_eq!(app.seal_stored_secrets().await.unwrap().readable, 1, "nothing left to encrypt");
            assert_eq!(app.get_webhook(&w.admin, &hook.id).await.unwrap().version, hook.version, "not an edit");
            app.create_ticket(&w.agent_a, ticket(&w, &d.team, "Sealed")).await.unwrap();
            assert_eq!(run(&app).await, (1, 1));
            let g = &rx.hits("/generic")[1];
            assert_eq!(g.headers["x-keel-signature"], format!("sha256={}", hex::encode(hmac(b"legacy-secret", g.body.as_bytes()))));

            // another key, or none: the delivery fails, naming the webhook; nothing is sent
            for (label, other) in [("another key", secret_box(0x07)), ("no key", keel_app::secrets::SecretBox::unconfigured())] {
                let other = App::new(t.db.clone(), SecurityConfig::default()).with_clock(clock.clone()).with_secrets(other);
                let report = other.seal_stored_secrets().await.unwrap();
                assert_eq!(report.unreadable.len(), 1, "{label}");
                assert!(report.unreadable[0].contains("webhook \"Legacy hook\""), "{}", report.unreadable[0]);
                let sent = rx.hits("/generic").len();
                let tk = app.create_ticket(&w.agent_a, ticket(&w, &d.team, label)).await.unwrap();
                assert_eq!(run(&other).await, (1, 1), "{label}: claimed and tried");
                let tried = other.list_deliveries(&w.admin, &DeliveryFilter::default()).await.unwrap();
                let failed = tried.iter().find(|d| d.entity_id == tk.id).unwrap();
                let error = failed.last_error.as_deref().unwrap();
                assert_eq!(failed.status, "pending", "{label}: retried later");
                assert!(error.contains(&format!("webhook \"Legacy hook\" ({})", hook.id)), "{error}");
                assert!(error.contains("KEEL_SECRET_KEY") && error.contains("enter the webhook's secret again"), "{error}");
                assert!(!error.contains("legacy-secret") && !error.contains("enc:v1"), "{error}");
                assert_eq!(rx.hits("/generic").len(), sent, "{label}: never sent unsigned");
                // the instance with the right key delivers it on the retry
                clock.advance(3_600_000);
                assert_eq!(app.deliver_due(100).await.unwrap(), 1);
                let hits = rx.hits("/generic");
                assert_eq!(hits.len(), sent + 1);
                let g = &hits[sent];
                assert_eq!(g.headers["x-keel-signature"], format!("sha256={}", hex::encode(hmac(b"legacy-secret", g.body.as_bytes()))));
            }
        }
    }

    async fn rx_hook_id(app: &App, w: &World, name: &str) -> String {
        app.list_webhooks(&w.admin).await.unwrap().into_iter().find(|h| h.name == name).unwrap().id
    }

    #[tokio::test]
    async fn two_instances_dispatch_and_send_each_delivery_once_and_late_commits_are_not_missed() {
        for t in TestDb::migrated_all().await {
            let sink = SmtpSink::start().await;
            let (one, clock) = app_on(&t);
            let one = one.with_notify(sink.config());
            let two = App::new(t.db.clone(), SecurityConfig::default()).with_clock(clock.clone()).with_notify(sink.config());
            assert_ne!(one.instance_id, two.instance_id);
            let w = world(&one).await;
            let d = desk(&one, &w).await;
            for i in 0..12 {
                one.create_ticket(&w.agent_a, ticket(&w, &d.team, &format!("Disk {i}"))).await.unwrap();
            }
            let (a, b) = tokio::join!(one.dispatch_announcements(), two.dispatch_announcements());
            let created = a.unwrap() + b.unwrap();
            let mut c = one.read().await.unwrap();
            let rows = keel_store::notifications::list_deliveries(&mut c, &DeliveryFilter::default(), 1000).await.unwrap();
            drop(c);
            assert_eq!((created, rows.len()), (12, 12), "{}: one delivery per announcement and recipient", t.label);
            let (a, b) = tokio::join!(one.deliver_due(5), two.deliver_due(5));
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!(a + b <= 10);
            while one.deliver_due(5).await.unwrap() + two.deliver_due(5).await.unwrap() > 0 {}
            let mails = sink.to("wang.fang@keel.test");
            let mut ids: Vec<String> = mails.iter().map(|m| m.headers()["message-id"].clone()).collect();
            ids.sort();
            ids.dedup();
            assert_eq!((mails.len(), ids.len()), (12, 12), "{}: each sent once", t.label);

            // an announcement committed late, stamped before the cursor but inside the window
            let tk = one.create_ticket(&w.agent_a, ticket(&w, &d.team, "Late")).await.unwrap();
            let mut tx = t.db.begin().await.unwrap();
            sqlx::query("UPDATE outbox SET created_at = $1 WHERE topic = 'announcement' AND entity_id = $2")
                .bind(T0 - 60_000)
                .bind(&tk.id)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            clock.advance(1000);
            assert_eq!(two.dispatch_announcements().await.unwrap(), 1, "{}", t.label);
            assert_eq!(one.dispatch_announcements().await.unwrap(), 0, "nothing twice");
        }
    }

    #[tokio::test]
    async fn the_job_runner_dispatches_and_delivers_right_after_start_and_every_few_seconds() {
        for t in TestDb::migrated_all().await {
            let sink = SmtpSink::start().await;
            let (app, clock) = app_on(&t);
            let app = app.with_notify(sink.config());
            let w = world(&app).await;
            let d = desk(&app, &w).await;
            app.create_ticket(&w.agent_a, ticket(&w, &d.team, "Screen flickers")).await.unwrap();
            app.seed_jobs().await.unwrap();
            assert!(app.run_due_jobs(10).await.unwrap() >= 2, "{}: both notification jobs are due at start", t.label);
            clock.advance(5_000);
            app.run_due_jobs(10).await.unwrap();
            assert_eq!(sink.to("wang.fang@keel.test").len(), 1, "{}", t.label);
            let jobs = app.list_jobs(&w.admin, None).await.unwrap();
            let dispatch = jobs.iter().find(|j| j.kind == "notification_dispatch").unwrap();
            assert_eq!((dispatch.status.as_str(), dispatch.run_at), ("pending", T0 + 10_000), "{}: every five seconds", t.label);
        }
    }

    #[tokio::test]
    async fn administrators_override_templates_with_preview_and_broken_ones_are_never_saved() {
        for t in TestDb::migrated_all().await {
            let sink = SmtpSink::start().await;
            let (app, _clock) = app_on(&t);
            let app = app.with_notify(sink.config());
            let w = world(&app).await;
            let d = desk(&app, &w).await;
            let broken = MessageTemplate {
                subject: "新 {{ number }}".into(),
                body_text: "ok\n{% if %}".into(),
                body_html: "<p>{{ title }</p>".into(),
            };
            let e = app.save_template(&w.admin, "incident.created", "zh-CN", broken.clone(), None).await.unwrap_err();
            match e {
                AppError::Validation(f) => {
                    assert_eq!(f.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["body_text", "body_html"]);
                    assert!(f[0].message.starts_with("line 2:"), "{}", f[0].message);
                    assert!(f[1].message.starts_with("line 1:"), "{}", f[1].message);
                }
                other => panic!("{other:?}"),
            }
            assert!(matches!(app.preview_template(&w.admin, &broken), Err(AppError::Validation(_))));
            assert!(!app.notification_template(&w.admin, "incident.created", "zh-CN").await.unwrap().overridden, "nothing saved");
            let good = MessageTemplate {
                subject: "有新工单 {{ title }}".into(),
                body_text: "{{ recipient }}：{{ number }}".into(),
                body_html: "<p>{{ recipient }}</p>".into(),
            };
            let preview = app.preview_template(&w.admin, &good).unwrap();
            assert_eq!(preview.body_text, "Li Lei：INC-000042");
            assert!(matches!(
                app.save_template(&w.agent_a, "incident.created", "zh-CN", good.clone(), None).await,
                Err(AppError::Forbidden)
            ));
            let saved = app.save_template(&w.admin, "incident.created", "zh-CN", good, None).await.unwrap();
            assert_eq!((saved.overridden, saved.version), (true, 1));
            assert_eq!(
                app.notification_templates(&w.admin).await.unwrap().len(),
                keel_app::notifications::templates::EVENT_KINDS.len() * keel_app::notifications::templates::LANGUAGES.len()
            );
            assert!(matches!(app.set_project_sender(&w.admin, &w.project_a, Some("not an address")).await, Err(AppError::Validation(_))));
            app.set_project_sender(&w.admin, &w.project_a, Some("Acme 服务台 <acme@desk.example>")).await.unwrap();
            let tk = app.create_ticket(&w.agent_a, ticket(&w, &d.team, "Fan noise")).await.unwrap();
            run(&app).await;
            let m = &sink.to("wang.fang@keel.test")[0];
            assert_eq!(m.subject(), format!("[{}] 有新工单 Fan noise", tk.number), "{}", t.label);
            let h = m.headers();
            assert!(h["from"].ends_with("<acme@desk.example>"), "the project's From: {}", h["from"]);
            assert!(h["message-id"].ends_with("@desk.example>") && h["in-reply-to"] == format!("<ticket-{}@desk.example>", tk.id));
            let _ = d.agent2;
            let back = app.reset_template(&w.admin, "incident.created", "zh-CN").await.unwrap();
            assert!(!back.overridden && back.template.subject.starts_with("新事件"));
        }
    }

    #[tokio::test]
    async fn mail_the_smtp_server_does_not_take_is_retried_with_back_off_then_a_dead_letter_administrators_see() {
        for t in TestDb::migrated_all().await {
            let mut cfg = SmtpSink::start().await.config();
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            if let Some(smtp) = cfg.smtp.as_mut() {
                smtp.port = closed; // nothing listens there any more
            }
            cfg.timeout = std::time::Duration::from_secs(2);
            let (app, clock) = app_on(&t);
            let app = app.with_notify(cfg);
            let w = world(&app).await;
            let d = desk(&app, &w).await;
            app.create_ticket(&w.agent_a, ticket(&w, &d.team, "Mail server down")).await.unwrap();
            assert_eq!(run(&app).await, (1, 1), "{}", t.label);
            assert_eq!(app.deliver_due(100).await.unwrap(), 0, "not before the back-off");
            clock.advance(10_000);
            assert_eq!(app.deliver_due(100).await.unwrap(), 1);
            clock.advance(10_000);
            assert_eq!(app.deliver_due(100).await.unwrap(), 0, "the second delay is twice the first");
            clock.advance(10_000);
            assert_eq!(app.deliver_due(100).await.unwrap(), 1);
            clock.advance(3_600_000);
            assert_eq!(app.deliver_due(100).await.unwrap(), 0, "dead letters are not tried again");
            let dead = app.list_deliveries(&w.admin, &DeliveryFilter { status: Some("dead".into()), ..Default::default() }).await.unwrap();
            assert_eq!(dead.len(), 1, "{}", t.label);
            let e = dead[0].last_error.as_deref().unwrap_or_default();
            assert!((dead[0].channel.as_str(), dead[0].attempts) == ("email", 3) && e.starts_with("SMTP"), "{dead:?}");
            assert!(matches!(app.list_deliveries(&w.agent_a, &DeliveryFilter::default()).await, Err(AppError::Forbidden)));
        }
    }

    /// The decoded plain-text and HTML bodies of a captured message.
    fn bodies(m: &Mail) -> (String, String) {
        let msg = mail_parser::MessageParser::default().parse(m.data.as_bytes()).unwrap();
        (msg.body_text(0).unwrap().into_owned(), msg.body_html(0).unwrap().into_owned())
    }

    #[tokio::test]
    async fn a_public_reply_reaches_the_customer_from_the_templates_in_their_language_with_the_agents_text() {
        for t in TestDb::migrated_all().await {
            let sink = SmtpSink::start().await;
            let (app, _clock) = app_on(&t);
            let app = app.with_notify(sink.config());
            let w = world(&app).await;
            let d = desk(&app, &w).await;
            let zh = app
                .create_user(
                    &w.admin,
                    NewUser {
                        kind: AccountKind::Contact,
                        email: "zhang.wei@acme.test".into(),
                        display_name: "张伟".into(),
                        organization_id: Some(w.org_a.clone()),
                        locale: Some("zh-CN".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let en_ticket = app.create_ticket(&w.agent_a, ticket(&w, &d.team, "VPN drops")).await.unwrap();
            let zh_ticket = app
                .create_ticket(&w.agent_a, NewTicket { reporter_id: Some(zh.id.clone()), ..ticket(&w, &d.team, "打印机卡纸") })
                .await
                .unwrap();
            run(&app).await;
            let before = sink.mails().len();
            // An administrator's English wording; the Chinese one stays the shipped template.
            let ours = MessageTemplate {
                subject: "Update on your request: {{ title }}".into(),
                body_text: "Dear {{ recipient }},\n\n{{ reply }}\n\n-- {{ author }}, {{ number }}\n".into(),
                body_html: "<p>Dear {{ recipient }},</p><blockquote>{{ reply }}</blockquote><p>{{ author }}, {{ number }}</p>".into(),
            };
            app.save_template(&w.admin, "incident.public_reply", "en", ours, None).await.unwrap();
            let reply = "Restart the <b>spooler</b> & try again.\n重启打印服务后再试。";
            app.add_comment(&w.agent_a, &en_ticket.id, "public", reply).await.unwrap();
            app.add_comment(&w.agent_a, &zh_ticket.id, "public", reply).await.unwrap();
            run(&app).await;
            assert_eq!(sink.mails().len() - before, 2, "{}: one mail per customer, none to the replying agent", t.label);

            let en = &sink.to("li.lei@acme.test")[0];
            assert_eq!(en.subject(), format!("[{}] Update on your request: VPN drops", en_ticket.number), "{}", t.label);
            let (text, html) = bodies(en);
            assert_eq!(text.replace("\r\n", "\n").trim_end(), format!("Dear 李雷,\n\n{reply}\n\n-- agent, {}", en_ticket.number));
            assert!(html.contains("<blockquote>Restart the &lt;b&gt;spooler&lt;&#x2f;b&gt; &amp; try again."), "{html}");
            assert!(!html.contains("<b>spooler"), "the agent's text is escaped in HTML");

            let zh_mail = &sink.to("zhang.wei@acme.test")[0];
            assert_eq!(zh_mail.subject(), format!("[{}] 新回复：打印机卡纸", zh_ticket.number), "{}", t.label);
            let (text, html) = bodies(zh_mail);
            let text = text.replace("\r\n", "\n");
            assert!(text.starts_with("张伟，您好："), "{text}");
            assert!(text.contains(&format!("在 {} 上回复：", zh_ticket.number)) && text.contains(reply), "{text}");
            assert!(html.contains("重启打印服务后再试。") && html.contains("&lt;b&gt;spooler") && !html.contains("<b>spooler"), "{html}");

            for (m, tk) in [(en, &en_ticket), (zh_mail, &zh_ticket)] {
                let h = m.headers();
                let thread = format!("<ticket-{}@keel.test>", tk.id);
                assert_eq!((h["in-reply-to"].as_str(), h["references"].as_str()), (thread.as_str(), thread.as_str()));
                assert!(h["message-id"].starts_with('<') && h["message-id"].ends_with("@keel.test>") && h["message-id"] != thread);
                assert!(h["content-type"].starts_with("multipart/alternative"), "{}", h["content-type"]);
                assert_eq!(h["x-keel"], "notification", "Keel knows its own mail when it comes back");
                assert!(!h.contains_key("auto-submitted"), "{}: a person's reply is not auto-generated (RFC 3834)", t.label);
            }
            // Notifications Keel writes itself still are.
            let created = sink.to("wang.fang@keel.test");
            assert!(!created.is_empty() && created.iter().all(|m| m.headers()["auto-submitted"] == "auto-generated"));
        }
    }
}

mod problems {
    use super::*;
    use keel_app::incidents::{NewTicket, TransitionInput};
    use keel_app::problems::{KnownErrorPatch, NewProblem, ProblemStep, TrendBucket, TrendQuery};
    use keel_domain::validate::Locale;
    use keel_store::problems::{KnownErrorFilter, ProblemFilter, TrendDimension};

    const NUMBER: SortKey = SortKey { name: "number", column: "p.number", kind: SortKind::Text };

    struct Desk {
        w: World,
        team: String,
        contact_b: Principal,
    }

    async fn desk(app: &App) -> Desk {
        let w = world(app).await;
        let team = app
            .create_team(&w.admin, TeamInput { name: "二线".into(), member_ids: vec![w.agent_a.user_id.clone()], ..Default::default() })
            .await
            .unwrap()
            .id;
        let mut c = app.read().await.unwrap();
        let u = keel_store::accounts::get_user_by_email(&mut c, "han@beta.test").await.unwrap().unwrap();
        drop(c);
        let contact_b = principal(app, &u.id).await;
        Desk { w, team, contact_b }
    }

    async fn incident(app: &App, d: &Desk, title: &str, assigned: bool) -> keel_store::incidents::TicketRecord {
        app.create_ticket(
            &d.w.agent_a,
            NewTicket {
                project_id: d.w.project_a.clone(),
                reporter_id: Some(d.w.contact_a.user_id.clone()),
                title: title.into(),
                team_id: assigned.then(|| d.team.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
    }

    fn step(action: &str) -> ProblemStep {
        ProblemStep { action: action.into(), ..Default::default() }
    }

    async fn audit_len(app: &App, w: &World) -> usize {
        app.audit_trail(&w.admin, &keel_store::audit::TrailFilter { limit: 10_000, ..Default::default() }).await.unwrap().len()
    }

    /// A problem investigated by the team with its root cause and workaround recorded.
    async fn analysed(app: &App, d: &Desk, incidents: Vec<String>) -> keel_store::problems::ProblemRecord {
        let p = app
            .create_problem(
                &d.w.agent_a,
                NewProblem {
                    project_id: d.w.project_a.clone(),
                    title: "VPN drops every hour".into(),
                    incident_ids: incidents,
                    team_id: Some(d.team.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let rca = ProblemStep {
            rca_method: Some("five_whys".into()),
            findings: Some("why 1 … why 5".into()),
            root_cause: Some("firewall session table sized too small on fw-core-01".into()),
            ..step("record_rca")
        };
        app.transition_problem(&d.w.agent_a, &p.id, rca, None).await.unwrap();
        let wa =
            ProblemStep { workaround: Some("Reconnect the VPN client; sessions survive for an hour".into()), ..step("record_workaround") };
        app.transition_problem(&d.w.agent_a, &p.id, wa, None).await.unwrap()
    }

    fn declare(publish: bool) -> ProblemStep {
        ProblemStep {
            language: Some("en".into()),
            title: Some("VPN disconnects hourly".into()),
            symptoms: Some("The VPN client disconnects about every hour and reconnects".into()),
            translation_title: Some("VPN 每小时断开".into()),
            translation_symptoms: Some("VPN 客户端大约每小时断开一次".into()),
            translation_workaround: Some("重新连接 VPN 客户端".into()),
            publish_to_portal: Some(publish),
            ..step("declare_known_error")
        }
    }

    #[tokio::test]
    async fn a_problem_is_raised_from_two_incidents_and_numbered() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let d = desk(&app).await;
            let a = incident(&app, &d, "VPN dropped", true).await;
            let b = incident(&app, &d, "VPN dropped again", false).await;
            let p = app
                .create_problem(
                    &d.w.agent_a,
                    NewProblem {
                        project_id: d.w.project_a.clone(),
                        title: "VPN drops every hour".into(),
                        priority: Some("P2".into()),
                        incident_ids: vec![a.number.clone(), b.id.clone()],
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(
                (p.number.as_str(), p.source.as_str(), p.status.as_str(), p.priority.as_str()),
                ("PRB-000001", "incident_trend", "new", "p2")
            );
            let linked = app.problem_incidents(&d.w.agent_a, "PRB-000001").await.unwrap();
            assert_eq!(linked.iter().map(|l| l.number.as_str()).collect::<Vec<_>>(), [a.number.as_str(), b.number.as_str()], "{}", t.label);
            let (problems, _) = app.ticket_problem_links(&d.w.agent_a, &a.id).await.unwrap();
            assert_eq!(problems.len(), 1);
            // a trend needs two incidents; incidents come from the problem's own project
            let e = app
                .create_problem(
                    &d.w.agent_a,
                    NewProblem {
                        project_id: d.w.project_a.clone(),
                        title: "x".into(),
                        source: Some("incident_trend".into()),
                        incident_ids: vec![a.id.clone()],
                        ..Default::default()
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(fields(e), [("incident_ids".to_string(), "too_few")]);
            let elsewhere = app
                .create_ticket(
                    &d.w.admin,
                    NewTicket {
                        project_id: d.w.project_b.clone(),
                        reporter_id: Some(d.contact_b.user_id.clone()),
                        title: "VPN at Beta".into(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let e = app.link_incidents(&d.w.admin, &p.id, std::slice::from_ref(&elsewhere.number)).await.unwrap_err();
            assert_eq!(fields(e), [("incident_ids[0]".to_string(), "other_project")]);
            let e = app.link_incidents(&d.w.agent_a, &p.id, std::slice::from_ref(&elsewhere.number)).await.unwrap_err();
            assert_eq!(fields(e), [("incident_ids[0]".to_string(), "not_found")], "invisible incidents are not named");
            // a third incident joins later, once
            let c = incident(&app, &d, "VPN dropped thrice", false).await;
            assert_eq!(app.link_incidents(&d.w.agent_a, &p.id, &[c.number.clone(), a.id.clone()]).await.unwrap().len(), 3);
            // proactive problems need no incident; given a team they start investigated
            let pro = app
                .create_problem(
                    &d.w.agent_a,
                    NewProblem {
                        project_id: d.w.project_a.clone(),
                        title: "Disk firmware advisory".into(),
                        team_id: Some(d.team.clone()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!((pro.number.as_str(), pro.source.as_str(), pro.status.as_str()), ("PRB-000002", "proactive", "under_investigation"));
            let log = app.problem_status_log(&d.w.agent_a, &pro.id).await.unwrap();
            assert_eq!(log.iter().map(|e| e.to_status.as_str()).collect::<Vec<_>>(), ["new", "under_investigation"]);
            let h = app.problem_history(&d.w.agent_a, &p.id).await.unwrap();
            assert_eq!(h[0].action, "create");
            // contacts and staff outside the project see no problem at all
            let outsider = staff(&app, "tech@keel.test", vec![Role::Technician]).await;
            for stranger in [&d.w.contact_a, &d.contact_b, &outsider] {
                assert!(matches!(app.get_problem(stranger, &p.id).await, Err(AppError::NotFound)), "{}", t.label);
                assert!(matches!(app.get_problem(stranger, "PRB-000001").await, Err(AppError::NotFound)));
                assert!(matches!(app.transition_problem(stranger, &p.id, step("cancel"), None).await, Err(AppError::NotFound)));
            }
            assert!(matches!(app.list_problems(&d.w.contact_a, &ProblemFilter::default(), &page(NUMBER)).await, Err(AppError::NotFound)));
            assert!(app.list_problems(&outsider, &ProblemFilter::default(), &page(NUMBER)).await.unwrap().items.is_empty());
            assert_eq!(app.list_problems(&d.w.agent_a, &ProblemFilter::default(), &page(NUMBER)).await.unwrap().items.len(), 2);
            assert!(matches!(
                app.create_problem(
                    &d.w.contact_a,
                    NewProblem { project_id: d.w.project_a.clone(), title: "x".into(), ..Default::default() }
                )
                .await,
                Err(AppError::NotFound)
            ));
            assert!(app.integrity_check().await.unwrap().ok());
        }
    }

    #[tokio::test]
    async fn lifecycle_guards_refuse_and_write_nothing() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let d = desk(&app).await;
            let p = app
                .create_problem(
                    &d.w.agent_a,
                    NewProblem { project_id: d.w.project_a.clone(), title: "Slow ERP".into(), ..Default::default() },
                )
                .await
                .unwrap();
            let before = audit_len(&app, &d.w).await;
            let e = app.transition_problem(&d.w.agent_a, &p.id, declare(false), None).await.unwrap_err();
            assert!(matches!(e, AppError::InvalidTransition(_)), "investigate first: {e:?}");
            let e = app.transition_problem(&d.w.agent_a, &p.id, step("investigate"), None).await.unwrap_err();
            assert!(fields(e).iter().any(|(f, _)| f == "assignment" || f == "team_id"), "{}", t.label);
            let inv = app
                .transition_problem(&d.w.agent_a, &p.id, ProblemStep { team_id: Some(d.team.clone()), ..step("investigate") }, None)
                .await
                .unwrap();
            let after_investigate = audit_len(&app, &d.w).await;
            let e = app.transition_problem(&d.w.agent_a, &p.id, declare(false), None).await.unwrap_err();
            assert_eq!(fields(e), [("root_cause".to_string(), "root_cause_or_workaround")]);
            let e = app
                .transition_problem(&d.w.agent_a, &p.id, ProblemStep { resolution_notes: Some("fixed".into()), ..step("resolve") }, None)
                .await
                .unwrap_err();
            assert_eq!(fields(e), [("root_cause".to_string(), "required")]);
            let e = app
                .transition_problem(&d.w.agent_a, &p.id, ProblemStep { rca_method: Some("guessing".into()), ..step("record_rca") }, None)
                .await
                .unwrap_err();
            assert_eq!(fields(e), [("rca_method".to_string(), "invalid_choice")]);
            let wa = ProblemStep { workaround: Some("restart the ERP cache".into()), ..step("record_workaround") };
            app.transition_problem(&d.w.agent_a, &p.id, wa, None).await.unwrap();
            let e = app.transition_problem(&d.w.agent_a, &p.id, step("cancel"), Some(inv.version)).await.unwrap_err();
            assert!(matches!(e, AppError::Stale));
            let e = app.transition_problem(&d.w.agent_a, &p.id, step("cancel"), None).await.unwrap_err();
            assert_eq!(fields(e), [("reason".to_string(), "required")]);
            let e = app
                .transition_problem(&d.w.agent_a, &p.id, ProblemStep { fixing_change_id: Some("chg-1".into()), ..step("resolve") }, None)
                .await
                .unwrap_err();
            assert_eq!(fields(e), [("fixing_change_id".to_string(), "not_found")]);
            assert_eq!(audit_len(&app, &d.w).await, after_investigate + 1, "{}: only the workaround was written", t.label);
            assert!(after_investigate > before);
            // a workaround is enough for a known error; KE numbers come from their own counter
            app.transition_problem(&d.w.agent_a, &p.id, declare(false), None).await.unwrap();
            let ke = app.problem_known_error(&d.w.agent_a, &p.id).await.unwrap().unwrap();
            assert_eq!(ke.number, "KE-000001");
            let e = app.transition_problem(&d.w.agent_a, &p.id, step("cancel"), None).await.unwrap_err();
            assert!(matches!(e, AppError::InvalidTransition(_)), "known errors are resolved, not cancelled");
            let actions = app.problem_actions(&d.w.agent_a, &app.get_problem(&d.w.agent_a, &p.id).await.unwrap()).await.unwrap();
            assert!(!actions.iter().any(|a| a.as_str() == "resolve"), "no root cause yet: {actions:?}");
            assert!(app.problem_actions(&d.w.auditor, &app.get_problem(&d.w.auditor, &p.id).await.unwrap()).await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn resolving_a_problem_follows_up_its_incidents_and_announces_to_their_assignees() {
        for t in TestDb::migrated_all().await {
            let (app, clock) = app_on(&t);
            let d = desk(&app).await;
            let open = incident(&app, &d, "VPN dropped", true).await;
            let untriaged = incident(&app, &d, "VPN dropped again", false).await;
            let done = incident(&app, &d, "VPN dropped once", true).await;
            app.transition_ticket(
                &d.w.agent_a,
                &done.id,
                TransitionInput {
                    action: "resolve".into(),
                    resolution_code: Some("workaround".into()),
                    resolution_notes: Some("reconnected".into()),
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
            let p = analysed(&app, &d, vec![open.id.clone(), untriaged.id.clone(), done.id.clone()]).await;
            clock.advance(60_000);
            let resolved = app
                .transition_problem(
                    &d.w.agent_a,
                    &p.id,
                    ProblemStep { resolution_notes: Some("Session table doubled".into()), ..step("resolve") },
                    None,
                )
                .await
                .unwrap();
            assert_eq!((resolved.status.as_str(), resolved.resolved_at), ("resolved", Some(T0 + 60_000)));
            let open_now = app.get_ticket(&d.w.agent_a, &open.id).await.unwrap();
            assert_eq!(
                (open_now.status.as_str(), open_now.resolution_code.as_deref()),
                ("resolved", Some("resolved_by_problem")),
                "{}",
                t.label
            );
            assert!(open_now.resolution_notes.unwrap().starts_with("PRB-000001: Session table doubled"));
            assert_eq!(app.get_ticket(&d.w.agent_a, &untriaged.id).await.unwrap().status, "new");
            let notes = |id: String, who: Principal| {
                let app = app.clone();
                async move { app.list_comments(&who, &id).await.unwrap().into_iter().map(|c| (c.visibility, c.author_kind)).collect::<Vec<_>>() }
            };
            let pubn = ("public".to_string(), "system".to_string());
            let intn = ("internal".to_string(), "system".to_string());
            assert_eq!(notes(open.id.clone(), d.w.agent_a.clone()).await, std::slice::from_ref(&pubn));
            assert_eq!(notes(untriaged.id.clone(), d.w.agent_a.clone()).await, [intn]);
            assert!(notes(untriaged.id.clone(), d.w.contact_a.clone()).await.is_empty(), "the triage note is internal");
            assert_eq!(notes(done.id.clone(), d.w.contact_a.clone()).await, [pubn]);
            // one announcement per incident, to its assignee
            let mut c = app.read().await.unwrap();
            let rows = sqlx::query("SELECT entity_id, payload FROM outbox WHERE topic = 'announcement'").fetch_all(&mut *c).await.unwrap();
            drop(c);
            let mut seen: Vec<(String, serde_json::Value)> = rows
                .iter()
                .map(|r| {
                    use sqlx::Row;
                    (r.get::<String, _>("entity_id"), serde_json::from_str(&r.get::<String, _>("payload")).unwrap())
                })
                .filter(|(_, v): &(String, serde_json::Value)| v["kind"] == "problem.resolved")
                .collect();
            seen.sort_by(|a, b| a.0.cmp(&b.0));
            let mut want = vec![open.id.clone(), untriaged.id.clone(), done.id.clone()];
            want.sort();
            assert_eq!(seen.iter().map(|s| s.0.clone()).collect::<Vec<_>>(), want, "{}", t.label);
            for (_, v) in &seen {
                assert_eq!(v["entity_type"], "ticket");
                assert!(v["audience"].as_array().unwrap().contains(&serde_json::json!({"to": "assignee"})), "{v}");
                assert_eq!(v["vars"]["problem_number"], "PRB-000001");
            }
            // closing is final
            app.transition_problem(&d.w.agent_a, &p.id, step("close"), None).await.unwrap();
            assert!(matches!(app.transition_problem(&d.w.agent_a, &p.id, step("reopen"), None).await, Err(AppError::InvalidTransition(_))));
            assert!(app.integrity_check().await.unwrap().ok());
        }
    }

    #[tokio::test]
    async fn the_known_error_database_is_searched_in_both_languages_and_suggested() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let d = desk(&app).await;
            let p = analysed(&app, &d, vec![]).await;
            app.transition_problem(&d.w.agent_a, &p.id, declare(false), None).await.unwrap();
            let other = app
                .create_problem(
                    &d.w.agent_a,
                    NewProblem {
                        project_id: d.w.project_a.clone(),
                        title: "Printer jams".into(),
                        team_id: Some(d.team.clone()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let wa = ProblemStep { workaround: Some("Use tray 2".into()), ..step("record_workaround") };
            app.transition_problem(&d.w.agent_a, &other.id, wa, None).await.unwrap();
            let ke2 = ProblemStep {
                title: Some("打印机卡纸".into()),
                symptoms: Some("三楼打印机经常卡纸".into()),
                language: Some("zh-CN".into()),
                ..step("declare_known_error")
            };
            app.transition_problem(&d.w.agent_a, &other.id, ke2, None).await.unwrap();

            let numbers = |v: Vec<keel_store::problems::KnownErrorRecord>| v.into_iter().map(|k| k.number).collect::<Vec<_>>();
            assert_eq!(numbers(app.search_known_errors(&d.w.agent_a, "vpn disconnects", 10).await.unwrap()), ["KE-000001"], "{}", t.label);
            assert_eq!(numbers(app.search_known_errors(&d.w.agent_a, "VPN 断开", 10).await.unwrap()), ["KE-000001"]);
            assert_eq!(numbers(app.search_known_errors(&d.w.agent_a, "打印机", 10).await.unwrap()), ["KE-000002"]);
            assert!(app.search_known_errors(&d.w.agent_a, "payroll export", 10).await.unwrap().is_empty());
            // the workaround is searchable too, and its revision is found
            let wa = ProblemStep { workaround: Some("Pin the tunnel to gateway gw-bj-02".into()), ..step("record_workaround") };
            app.transition_problem(&d.w.agent_a, &p.id, wa, None).await.unwrap();
            assert_eq!(numbers(app.search_known_errors(&d.w.agent_a, "gateway gw", 10).await.unwrap()), ["KE-000001"]);
            // the suggestion panel of the incident form
            let typed = |title: &str, description: &str| keel_app::problems::SuggestInput {
                title: title.into(),
                description: description.into(),
                ..Default::default()
            };
            let suggested =
                |v: Vec<keel_app::problems::KnownErrorSuggestion>| v.into_iter().map(|s| s.known_error.number).collect::<Vec<_>>();
            let s = app
                .suggest_known_errors(&d.w.agent_a, &typed("VPN keeps disconnecting", "the client disconnects every hour"))
                .await
                .unwrap();
            assert_eq!(suggested(s), ["KE-000001"]);
            let s = app.suggest_known_errors(&d.w.agent_a, &typed("三楼打印机卡纸了", "")).await.unwrap();
            assert_eq!(suggested(s), ["KE-000002"]);
            // contacts find nothing unpublished; staff of another project nothing at all
            assert!(app.search_known_errors(&d.w.contact_a, "vpn disconnects", 10).await.unwrap().is_empty());
            assert!(matches!(app.get_known_error(&d.w.contact_a, "KE-000001").await, Err(AppError::NotFound)));
            let outsider = staff(&app, "tech@keel.test", vec![Role::Technician]).await;
            assert!(app.search_known_errors(&outsider, "vpn disconnects", 10).await.unwrap().is_empty());
            // edits in the other language are searchable and audited
            let k = app.get_known_error(&d.w.agent_a, "KE-000002").await.unwrap();
            app.update_known_error(
                &d.w.agent_a,
                &k.id,
                KnownErrorPatch { translation_title: Some("Printer on floor 3 jams".into()), ..Default::default() },
                Some(k.version),
            )
            .await
            .unwrap();
            assert_eq!(numbers(app.search_known_errors(&d.w.agent_a, "printer jams floor", 10).await.unwrap()), ["KE-000002"]);
            let e = app
                .update_known_error(&d.w.agent_a, &k.id, KnownErrorPatch { title: Some(" ".into()), ..Default::default() }, None)
                .await
                .unwrap_err();
            assert_eq!(fields(e), [("title".to_string(), "required")]);
            // the desk links the known error to an incident
            let inc = incident(&app, &d, "VPN disconnects", true).await;
            app.link_known_error(&d.w.agent_a, &inc.number, "KE-000001").await.unwrap();
            app.link_known_error(&d.w.agent_a, &inc.number, "KE-000001").await.unwrap();
            let (_, kes) = app.ticket_problem_links(&d.w.agent_a, &inc.id).await.unwrap();
            assert_eq!(numbers(kes), ["KE-000001"], "{}", t.label);
            assert!(matches!(app.link_known_error(&d.w.contact_a, &inc.id, "KE-000001").await, Err(AppError::NotFound)));
            let list = app
                .list_known_errors(
                    &d.w.agent_a,
                    &KnownErrorFilter::default(),
                    &page(SortKey { name: "number", column: "k.number", kind: SortKind::Text }),
                )
                .await
                .unwrap();
            assert_eq!(list.items.len(), 2);
        }
    }

    #[tokio::test]
    async fn published_known_errors_reach_their_customers_portal_in_their_language_without_root_cause() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let d = desk(&app).await;
            let p = analysed(&app, &d, vec![]).await;
            app.transition_problem(&d.w.agent_a, &p.id, declare(false), None).await.unwrap();
            let ke = app.problem_known_error(&d.w.agent_a, &p.id).await.unwrap().unwrap();
            assert!(app.portal_articles(&d.w.contact_a, Locale::En, None).await.unwrap().is_empty(), "{}: not published", t.label);
            assert!(matches!(app.portal_article(&d.w.contact_a, &ke.id, Locale::En).await, Err(AppError::NotFound)));
            let publish = ProblemStep { publish_to_portal: Some(true), ..step("set_publication") };
            app.transition_problem(&d.w.agent_a, &p.id, publish, None).await.unwrap();
            let en = app.portal_articles(&d.w.contact_a, Locale::En, None).await.unwrap();
            assert_eq!(
                en.iter().map(|a| (a.number.as_str(), a.title.as_str())).collect::<Vec<_>>(),
                [("KE-000001", "VPN disconnects hourly")]
            );
            assert!(en[0].workaround.starts_with("Reconnect"));
            let zh = app.portal_article(&d.w.contact_a, &ke.number, Locale::ZhCn).await.unwrap();
            assert_eq!(
                (zh.title.as_str(), zh.workaround.as_str(), zh.language.as_str()),
                ("VPN 每小时断开", "重新连接 VPN 客户端", "zh-CN")
            );
            let json = serde_json::to_string(&zh).unwrap() + &serde_json::to_string(&en).unwrap();
            assert!(!json.contains("firewall") && !json.contains("fw-core"), "root cause on the portal: {json}");
            assert_eq!(app.portal_articles(&d.w.contact_a, Locale::ZhCn, Some("VPN 断开")).await.unwrap().len(), 1);
            // another customer's contact never sees it
            assert!(app.portal_articles(&d.contact_b, Locale::En, None).await.unwrap().is_empty());
            assert!(matches!(app.portal_article(&d.contact_b, &ke.id, Locale::En).await, Err(AppError::NotFound)));
            assert!(app.search_known_errors(&d.contact_b, "vpn disconnects", 10).await.unwrap().is_empty());
            // the contact still cannot read the known error record or its problem
            assert!(matches!(app.get_known_error(&d.w.contact_a, &ke.id).await, Err(AppError::NotFound)));
            assert!(matches!(app.get_problem(&d.w.contact_a, &p.id).await, Err(AppError::NotFound)));
            // withdrawn, it is gone again; resolved, it leaves the portal
            let withdraw = ProblemStep { publish_to_portal: Some(false), ..step("set_publication") };
            app.transition_problem(&d.w.agent_a, &p.id, withdraw, None).await.unwrap();
            assert!(app.portal_articles(&d.w.contact_a, Locale::En, None).await.unwrap().is_empty());
            let publish = ProblemStep { publish_to_portal: Some(true), ..step("set_publication") };
            app.transition_problem(&d.w.agent_a, &p.id, publish, None).await.unwrap();
            assert_eq!(app.portal_articles(&d.w.contact_a, Locale::En, None).await.unwrap().len(), 1);
            app.transition_problem(&d.w.agent_a, &p.id, ProblemStep { resolution_notes: Some("resized".into()), ..step("resolve") }, None)
                .await
                .unwrap();
            assert!(app.portal_articles(&d.w.contact_a, Locale::En, None).await.unwrap().is_empty(), "{}", t.label);
            let h = app.problem_history(&d.w.agent_a, &p.id).await.unwrap();
            assert!(h.iter().any(|e| e.entity_type == "known_error" && e.changes.to_string().contains("publish_to_portal")));
        }
    }

    #[tokio::test]
    async fn affected_services_and_cis_are_checked_and_edits_audited_with_a_valid_status_log() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let d = desk(&app).await;
            let service = app
                .create_service(
                    &d.w.admin,
                    keel_app::service_level::ServiceInput {
                        code: "MAIL".into(),
                        name: "E-mail 邮件".into(),
                        service_line: "operations_maintenance".into(),
                        status: Some("live".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .id;
            app.seed_cmdb_classes().await.unwrap();
            let rack = app
                .create_ci(
                    &d.w.admin,
                    keel_app::cmdb::CiInput { class_key: "location".into(), name: "rack 14".into(), ..Default::default() },
                )
                .await
                .unwrap()
                .id;
            let bad = NewProblem {
                project_id: d.w.project_a.clone(),
                title: "Mail outage".into(),
                service_id: Some("nope".into()),
                ci_ids: vec![rack.clone(), "gone".into()],
                ..Default::default()
            };
            let e = app.create_problem(&d.w.agent_a, bad.clone()).await.unwrap_err();
            assert_eq!(fields(e), [("service_id".to_string(), "not_found"), ("ci_ids[1]".to_string(), "not_found")], "{}", t.label);
            let p = app
                .create_problem(&d.w.agent_a, NewProblem { service_id: Some(service.clone()), ci_ids: vec![rack.clone()], ..bad })
                .await
                .unwrap();
            assert_eq!(
                (p.service_id.as_deref(), p.ci_ids.clone(), p.names.service_name.as_deref()),
                (Some(service.as_str()), vec![rack.clone()], Some("E-mail 邮件"))
            );
            let patch = keel_app::problems::ProblemPatch { priority: Some("P1".into()), ci_ids: Some(vec![]), ..Default::default() };
            let edited = app.update_problem(&d.w.agent_a, &p.id, patch.clone(), Some(p.version)).await.unwrap();
            assert_eq!((edited.priority.as_str(), edited.ci_ids.len(), edited.version), ("p1", 0, p.version + 1));
            assert!(matches!(app.update_problem(&d.w.agent_a, &p.id, patch, Some(p.version)).await, Err(AppError::Stale)));
            let h = app.problem_history(&d.w.agent_a, &p.id).await.unwrap();
            assert!(h.last().unwrap().changes.to_string().contains("\"priority\""), "{}", t.label);
            for (action, extra) in [
                ("investigate", ProblemStep { team_id: Some(d.team.clone()), ..Default::default() }),
                (
                    "record_rca",
                    ProblemStep {
                        rca_method: Some("fault_tree".into()),
                        findings: Some("tree".into()),
                        root_cause: Some("bad disk".into()),
                        ..Default::default()
                    },
                ),
                ("resolve", ProblemStep { resolution_notes: Some("disk replaced".into()), ..Default::default() }),
                ("reopen", ProblemStep { reason: Some("came back".into()), ..Default::default() }),
                ("resolve", ProblemStep { resolution_notes: Some("controller replaced".into()), ..Default::default() }),
                ("close", ProblemStep::default()),
            ] {
                app.transition_problem(&d.w.agent_a, &p.id, ProblemStep { action: action.into(), ..extra }, None).await.unwrap();
            }
            let log = app.problem_status_log(&d.w.agent_a, &p.id).await.unwrap();
            let entries: Vec<keel_domain::problem::StatusLogEntry> = log
                .iter()
                .map(|r| keel_domain::problem::StatusLogEntry {
                    at: chrono::DateTime::from_timestamp_millis(r.at).unwrap(),
                    from: r.from_status.as_deref().and_then(keel_domain::problem::Status::parse),
                    to: keel_domain::problem::Status::parse(&r.to_status).unwrap(),
                    action: r.action.as_deref().and_then(keel_domain::problem::Action::parse),
                })
                .collect();
            assert_eq!(keel_domain::problem::check_status_log(&entries).unwrap().as_str(), "closed", "{}", t.label);
            let closed = app.get_problem(&d.w.agent_a, &p.id).await.unwrap();
            assert_eq!((closed.reopen_count, closed.closure_kind.as_deref()), (1, Some("resolved")));
            let e = app.update_problem(&d.w.agent_a, &p.id, Default::default(), None).await.unwrap_err();
            assert!(matches!(e, AppError::Conflict { code: "problem_closed", .. }));
        }
    }

    #[tokio::test]
    async fn the_trend_counts_incidents_per_category_and_week() {
        for t in TestDb::migrated_all().await {
            let (app, clock) = app_on(&t);
            let d = desk(&app).await;
            let vpn = app
                .create_category(
                    &d.w.admin,
                    keel_app::incidents::CategoryInput { code: "vpn".into(), name: "VPN".into(), ..Default::default() },
                )
                .await
                .unwrap();
            for week in 0..3 {
                for _ in 0..=week {
                    app.create_ticket(
                        &d.w.agent_a,
                        NewTicket {
                            project_id: d.w.project_a.clone(),
                            reporter_id: Some(d.w.contact_a.user_id.clone()),
                            title: "VPN dropped".into(),
                            category_id: Some(vpn.id.clone()),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                }
                incident(&app, &d, "no category", false).await;
                clock.advance(7 * 24 * 3600 * 1000);
            }
            clock.advance(-7 * 24 * 3600 * 1000);
            let q = TrendQuery { dimension: TrendDimension::Category, bucket: TrendBucket::Week, periods: 4, project_id: None };
            let trend = app.incident_trend(&d.w.agent_a, &q).await.unwrap();
            assert_eq!(trend.buckets.len(), 4);
            let top = &trend.rows[0];
            assert_eq!((top.label.as_deref(), top.total, top.incident_ids.len()), (Some("VPN"), 6, 6), "{}", t.label);
            assert_eq!(top.counts.iter().sum::<i64>(), 6);
            assert_eq!(top.counts[3], 3, "the current week is last: {:?}", top.counts);
            assert_eq!((trend.rows[1].key.as_deref(), trend.rows[1].total), (None, 3));
            // raise a problem from the row's incidents
            let p = app
                .create_problem(
                    &d.w.agent_a,
                    NewProblem {
                        project_id: d.w.project_a.clone(),
                        title: "VPN".into(),
                        incident_ids: top.incident_ids.clone(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(app.problem_incidents(&d.w.agent_a, &p.id).await.unwrap().len(), 6);
            let months =
                app.incident_trend(&d.w.agent_a, &TrendQuery { bucket: TrendBucket::Month, periods: 2, ..q.clone() }).await.unwrap();
            assert_eq!(months.rows.iter().map(|r| r.total).sum::<i64>(), 9);
            assert!(matches!(app.incident_trend(&d.w.contact_a, &q).await, Err(AppError::NotFound)));
        }
    }
}

mod desk {
    use super::*;
    use keel_app::incidents::{NewTicket, TransitionInput};

    const DAY: i64 = 24 * 3600 * 1000;

    fn step(action: &str) -> TransitionInput {
        TransitionInput { action: action.into(), ..Default::default() }
    }

    async fn resolved_ticket(app: &App, w: &World, title: &str) -> String {
        let t = app
            .create_ticket(
                &w.agent_a,
                NewTicket {
                    project_id: w.project_a.clone(),
                    reporter_id: Some(w.contact_a.user_id.clone()),
                    title: title.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let assign = TransitionInput { agent_id: Some(w.agent_a.user_id.clone()), ..step("assign") };
        app.transition_ticket(&w.agent_a, &t.id, assign, None).await.unwrap();
        let resolve =
            TransitionInput { resolution_code: Some("solved".into()), resolution_notes: Some("restarted".into()), ..step("resolve") };
        app.transition_ticket(&w.agent_a, &t.id, resolve, None).await.unwrap();
        t.id
    }

    #[tokio::test]
    async fn the_ticket_page_reads_children_and_duplicates_and_keeps_staff_parts_from_contacts() {
        for t in TestDb::migrated_all().await {
            let (app, _) = app_on(&t);
            let w = world(&app).await;
            let new = |title: &str| NewTicket {
                project_id: w.project_a.clone(),
                reporter_id: Some(w.contact_a.user_id.clone()),
                title: title.into(),
                ..Default::default()
            };
            let main = app.create_ticket(&w.agent_a, new("ERP down")).await.unwrap();
            let child = app.create_ticket(&w.agent_a, new("ERP down in Suzhou")).await.unwrap();
            let dup = app.create_ticket(&w.agent_a, new("ERP 无法登录")).await.unwrap();
            app.set_parent(&w.agent_a, &child.id, Some(&main.id)).await.unwrap();
            app.merge_ticket(&w.agent_a, &dup.id, &main.number).await.unwrap();
            app.add_comment(&w.agent_a, &main.id, "internal", "database host rebooting").await.unwrap();
            app.add_comment(&w.agent_a, &main.id, "public", "we are on it").await.unwrap();
            app.link_record(&w.agent_a, &main.id, "change", "CHG-000001").await.unwrap();
            let ids = |l: &[keel_store::incidents::TicketRecord]| l.iter().map(|x| x.id.clone()).collect::<Vec<_>>();
            let staff = app.ticket_page_data(&w.agent_a, &main.number).await.unwrap();
            assert_eq!(staff.ticket.id, main.id, "{}", t.label);
            assert_eq!((ids(&staff.children), ids(&staff.duplicates)), (vec![child.id.clone()], vec![dup.id.clone()]), "{}", t.label);
            assert_eq!((staff.comments.len(), staff.links.len()), (2, 1), "{}", t.label);
            assert!(!staff.history.is_empty() && staff.watchers.iter().any(|x| x.user_id == w.contact_a.user_id));
            // the reporter sees the public reply only, and none of the staff's parts
            let contact = app.ticket_page_data(&w.contact_a, &main.id).await.unwrap();
            assert_eq!(contact.comments.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(), ["we are on it"], "{}", t.label);
            assert!(contact.links.is_empty() && contact.history.is_empty() && contact.work_log.is_empty(), "{}", t.label);
            assert_eq!(ids(&contact.children), std::slice::from_ref(&child.id), "{}", t.label);
            // another organisation's contact gets nothing
            let mut c = app.read().await.unwrap();
            let b = keel_store::accounts::get_user_by_email(&mut c, "han@beta.test").await.unwrap().unwrap();
            drop(c);
            let b = principal(&app, &b.id).await;
            assert!(matches!(app.ticket_page_data(&b, &main.id).await, Err(AppError::NotFound)), "{}", t.label);
            // the history names what it refers to, as far as the reader may see it
            use keel_app::history_names::{RefKind, RefName};
            assert!(contact.history_names.is_empty(), "{}", t.label);
            let logged_by = staff.history_names.get(RefKind::User, &w.agent_a.user_id);
            assert_eq!(logged_by, RefName::Name { en: w.agent_a.display_name.as_str(), zh: None }, "{}", t.label);
            let history = app.ticket_history(&w.agent_a, &child.id).await.unwrap();
            let names = app.history_names(&w.agent_a, &history).await.unwrap();
            assert_eq!(
                names.get(RefKind::Ticket, &main.id),
                RefName::Name { en: main.number.as_str(), zh: None },
                "{}: the parent by its number",
                t.label
            );
            assert_eq!(names.get(RefKind::Organization, &w.org_a), RefName::Name { en: "Acme 制造", zh: None }, "{}", t.label);
            let names = app.history_names(&b, &history).await.unwrap();
            for (kind, id) in [(RefKind::Ticket, &main.id), (RefKind::User, &w.agent_a.user_id), (RefKind::Project, &w.project_a)] {
                assert_eq!(names.get(kind, id), RefName::Unavailable, "{}: {kind:?} for another organisation's contact", t.label);
            }
        }
    }

    /// T0 is a Thursday evening (UTC): two business days later is the next Monday evening.
    #[tokio::test]
    async fn resolved_tickets_close_after_business_days_by_the_system() {
        for t in TestDb::migrated_all().await {
            let (app, clock) = app_on(&t);
            let w = world(&app).await;
            assert!(matches!(app.set_auto_close_days(&w.agent_a, Some(2)).await, Err(AppError::Forbidden)));
            app.set_auto_close_days(&w.admin, Some(2)).await.unwrap();
            let id = resolved_ticket(&app, &w, "Printer jam").await;
            let confirmed = resolved_ticket(&app, &w, "Answered").await;
            app.transition_ticket(&w.contact_a, &confirmed, step("confirm"), None).await.unwrap();

            clock.advance(2 * DAY); // Saturday: two calendar days, not two business days
            assert_eq!(app.auto_close_resolved().await.unwrap(), 0, "{}", t.label);
            assert_eq!(app.get_ticket(&w.agent_a, &id).await.unwrap().status, "resolved");

            clock.advance(2 * DAY); // Monday evening: due
            app.seed_jobs().await.unwrap();
            clock.advance(DAY); // the job runs on the leased runner
            assert!(app.run_due_jobs(20).await.unwrap() >= 1);
            let closed = app.get_ticket(&w.agent_a, &id).await.unwrap();
            assert_eq!(
                (closed.status.as_str(), closed.closure_kind.as_deref(), closed.closed_by.as_deref()),
                ("closed", Some("auto_closed"), Some("system")),
                "{}",
                t.label
            );
            let log = app.status_log(&w.agent_a, &id).await.unwrap();
            let last = log.last().unwrap();
            assert_eq!((last.to_status.as_str(), last.action.as_deref(), last.actor_id.as_str()), ("closed", Some("auto_close"), "system"));
            let other = app.get_ticket(&w.agent_a, &confirmed).await.unwrap();
            assert_eq!(other.closure_kind.as_deref(), Some("confirmed_by_reporter"), "a confirmed ticket keeps its closure");
            assert_eq!(app.auto_close_resolved().await.unwrap(), 0, "nothing left to close");

            app.set_auto_close_days(&w.admin, None).await.unwrap();
            let later = resolved_ticket(&app, &w, "Never closes").await;
            clock.advance(30 * DAY);
            assert_eq!(app.auto_close_resolved().await.unwrap(), 0, "switched off");
            assert_eq!(app.get_ticket(&w.agent_a, &later).await.unwrap().status, "resolved");
        }
    }
}

mod mail_in {
    use super::*;
    use keel_app::mail_in::rules::STORM_PER_HOUR;
    use keel_app::mail_in::{MailboxInput, Receipt};

    pub(super) fn corpus(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/data/mail/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn with_id(raw: &[u8], from: &str, to: &str) -> Vec<u8> {
        String::from_utf8_lossy(raw).replace(from, to).into_bytes()
    }

    pub(super) fn mail_app(t: &TestDb) -> (App, Arc<TestClock>) {
        let (app, clock) = app_on(t);
        let files = std::env::temp_dir().join(format!("keel-mail-files-{}", keel_store::new_id()));
        (app.with_files(keel_app::desk::FileStore::new(files, 64 * 1024)), clock)
    }

    async fn mailbox(app: &App, w: &World, project: &str, address: &str, policy: &str) {
        let input = MailboxInput { address: address.into(), unknown_sender: Some(policy.into()), ..Default::default() };
        app.create_mailbox(&w.admin, project, input).await.unwrap();
    }

    fn outcome(r: &Receipt) -> (&str, Option<&str>) {
        (r.message.outcome.as_str(), r.message.reason.as_deref())
    }

    #[tokio::test]
    async fn mail_becomes_tickets_and_replies_once_and_noise_is_recorded() {
        for t in TestDb::migrated_all().await {
            let (app, clock) = mail_app(&t);
            let w = world(&app).await;
            let sys = Principal::system();
            mailbox(&app, &w, &w.project_a, "desk@acme-ops.keel.test", "create_contact").await;
            mailbox(&app, &w, &w.project_b, "desk@beta-dc.keel.test", "hold").await;

            // A new message from a known contact: a ticket of their organisation, by email.
            let r = app.receive_mail(&sys, &w.project_a, &corpus("outlook_new.eml")).await.unwrap();
            assert_eq!(outcome(&r), ("ticket", None), "{}", t.label);
            let ticket = app.get_ticket(&w.agent_a, r.message.ticket_id.as_deref().unwrap()).await.unwrap();
            assert_eq!(
                (ticket.number.as_str(), ticket.channel.as_str(), ticket.reporter_id.as_str(), ticket.title.as_str()),
                ("INC-000001", "email", w.contact_a.user_id.as_str(), "VPN cannot connect from the Shanghai office")
            );
            assert_eq!(ticket.organization_id, w.org_a);
            let files = app.list_attachments(&w.contact_a, &ticket.id).await.unwrap();
            assert_eq!(files.iter().map(|f| f.file_name.as_str()).collect::<Vec<_>>(), vec!["vpn-error-log.pdf"]);

            // The same message again (an MTA retry): nothing stored twice.
            let again = app.receive_mail(&sys, &w.project_a, &corpus("outlook_new.eml")).await.unwrap();
            assert!(again.duplicate && again.message.ticket_id == r.message.ticket_id);
            assert_eq!(app.list_attachments(&w.agent_a, &ticket.id).await.unwrap().len(), 1);

            // A reply threaded by Keel's thread id in References.
            let raw = with_id(&corpus("gmail_reply_in_reply_to.eml"), "{TICKET_ID}", &ticket.id);
            let raw = with_id(&raw, "[INC-000001]", "");
            let r = app.receive_mail(&sys, &w.project_a, &raw).await.unwrap();
            assert_eq!((outcome(&r).0, r.message.ticket_id.as_deref()), ("reply", Some(ticket.id.as_str())), "{}", t.label);
            let comments = app.list_comments(&w.contact_a, &ticket.id).await.unwrap();
            assert_eq!(comments.len(), 1);
            assert_eq!(
                (comments[0].body.as_str(), comments[0].visibility.as_str(), comments[0].author_id.as_str()),
                ("It works again after the certificate update, thank you!", "public", w.contact_a.user_id.as_str())
            );

            // A reply found by the number in its subject, Outlook's quoted history cut off.
            let r = app.receive_mail(&sys, &w.project_a, &corpus("reply_by_subject.eml")).await.unwrap();
            assert_eq!(outcome(&r).0, "reply");
            let comments = app.list_comments(&w.agent_a, &ticket.id).await.unwrap();
            assert_eq!(comments.last().unwrap().body, "The Beijing office has the same problem now.");

            // Noise is recorded with its reason and touches no ticket.
            for (file, reason) in [("auto_reply.eml", "auto_reply"), ("dsn_bounce.eml", "bounce"), ("own_mail.eml", "own_mail")] {
                let r = app.receive_mail(&sys, &w.project_a, &corpus(file)).await.unwrap();
                assert_eq!(outcome(&r), ("ignored", Some(reason)), "{file} {}", t.label);
                assert!(r.accepted() && r.message.ticket_id.is_none());
            }
            assert_eq!(app.list_comments(&w.agent_a, &ticket.id).await.unwrap().len(), 2);

            // A contact of another organisation quoting Acme's ticket number: never a comment
            // on it. Sent to Beta's desk it is a new Beta ticket; to Acme's desk it is held.
            let stranger = corpus("stranger_quotes_ticket.eml");
            let r = app.receive_mail(&sys, &w.project_b, &stranger).await.unwrap();
            assert_eq!(outcome(&r).0, "ticket", "{}", t.label);
            assert!(outcome(&r).1.unwrap().contains("may not see"));
            let beta = app.get_ticket(&w.admin, r.message.ticket_id.as_deref().unwrap()).await.unwrap();
            assert_eq!((beta.project_id.as_str(), beta.organization_id.as_str()), (w.project_b.as_str(), w.org_b.as_str()));
            assert_eq!(beta.title, "VPN cannot connect from the Shanghai office");
            let to_acme = with_id(&stranger, "5b6c7d8e", "5b6c7d8f");
            let r = app.receive_mail(&sys, &w.project_a, &to_acme).await.unwrap();
            assert_eq!(outcome(&r).0, "held");
            assert!(outcome(&r).1.unwrap().starts_with("sender_of_another_organization"));
            assert_eq!(app.list_comments(&w.agent_a, &ticket.id).await.unwrap().len(), 2);

            // Unknown senders: Acme's mailbox creates the contact in Acme, Beta's holds.
            let r = app.receive_mail(&sys, &w.project_a, &corpus("big5_stranger.eml")).await.unwrap();
            assert_eq!(outcome(&r), ("ticket", Some("contact created")), "{}", t.label);
            let big5 = app.get_ticket(&w.admin, r.message.ticket_id.as_deref().unwrap()).await.unwrap();
            assert_eq!(big5.title, "電子郵件無法寄出");
            assert!(big5.description.as_deref().unwrap().contains("台北分公司"));
            let mut c = app.read().await.unwrap();
            let chen = keel_store::accounts::get_user_by_email(&mut c, "chen@newbranch.example.tw").await.unwrap().unwrap();
            drop(c);
            assert_eq!(
                (chen.kind.as_str(), chen.organization_id.as_deref(), chen.display_name.as_str()),
                ("contact", Some(w.org_a.as_str()), "陳小姐")
            );
            let unknown_to_beta = with_id(&corpus("big5_stranger.eml"), "000a01d9b2c3", "000a01d9b2c4");
            let r = app.receive_mail(&sys, &w.project_b, &with_id(&unknown_to_beta, "chen@", "lin@")).await.unwrap();
            assert_eq!(outcome(&r), ("held", Some("unknown_sender")));

            // Chinese and HTML-only mail become readable, safe tickets.
            let r = app.receive_mail(&sys, &w.project_a, &corpus("foxmail_gbk.eml")).await.unwrap();
            let fox = app.get_ticket(&w.admin, r.message.ticket_id.as_deref().unwrap()).await.unwrap();
            assert_eq!(fox.title, "财务室打印机无法打印");
            let r = app.receive_mail(&sys, &w.project_a, &corpus("html_only.eml")).await.unwrap();
            let html = app.get_ticket(&w.admin, r.message.ticket_id.as_deref().unwrap()).await.unwrap();
            let d = html.description.unwrap();
            assert!(d.contains("signup form") && !d.contains("script") && !d.contains("tracker"), "{d}");
            let r = app.receive_mail(&sys, &w.project_a, &corpus("apple_mail_inline_image.eml")).await.unwrap();
            let files = app.list_attachments(&w.agent_a, r.message.ticket_id.as_deref().unwrap()).await.unwrap();
            assert_eq!((files[0].file_name.as_str(), files[0].content_type.as_str()), ("display.png", "image/png"));

            // Only staff of the project (or the system) feed the gateway.
            assert!(matches!(app.receive_mail(&w.contact_a, &w.project_a, &corpus("foxmail_gbk.eml")).await, Err(AppError::NotFound)));
            assert!(matches!(app.receive_mail(&w.auditor, &w.project_a, &corpus("foxmail_gbk.eml")).await, Err(AppError::Forbidden)));
            let log = app.list_received_mail(&w.agent_a, &w.project_a).await.unwrap();
            assert!(log.iter().any(|m| m.outcome == "ignored" && m.reason.as_deref() == Some("bounce")));
            assert!(log.iter().any(|m| m.safe_html.is_some()));

            // A storm from one sender: after the hourly limit further mail is ignored.
            clock.advance(2 * 3_600_000);
            let mut last = None;
            for i in 0..=STORM_PER_HOUR {
                let raw = format!("From: li.lei@acme.test\r\nSubject: storm {i}\r\nMessage-ID: <storm-{i}@acme.test>\r\n\r\nagain\r\n");
                last = Some(app.receive_mail(&sys, &w.project_a, raw.as_bytes()).await.unwrap());
            }
            assert_eq!(outcome(&last.unwrap()), ("ignored", Some("storm")), "{}", t.label);
        }
    }

    /// A real IMAP server on loopback: Debian's dovecot with a temporary configuration and a
    /// passwd-file user per database run (`scripts/setup-test-tools` installs it).
    pub(super) struct Dovecot {
        dir: std::path::PathBuf,
        /// IMAP (with STARTTLS when the server has a certificate).
        pub(super) port: u16,
        /// IMAP over TLS, when the server has a certificate.
        tls_port: u16,
        /// The private CA that issued the server's certificate.
        ca_pem: String,
        child: tokio::process::Child,
    }

    impl Drop for Dovecot {
        fn drop(&mut self) {
            let _ = self.child.start_kill();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn id(flag: &str) -> String {
        String::from_utf8(std::process::Command::new("id").arg(flag).output().unwrap().stdout).unwrap().trim().to_string()
    }

    fn openssl(dir: &std::path::Path, args: &[&str]) {
        let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("openssl (scripts/setup-test-tools)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A private CA and a certificate for 127.0.0.1 and localhost issued by it, made with the
    /// openssl CLI as an administrator would.
    fn private_ca(dir: &std::path::Path) -> String {
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let ca = [&ec[..], &["-x509", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Keel test CA"]].concat();
        openssl(
            dir,
            &[&["req"][..], &ca, &["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]]
                .concat(),
        );
        openssl(dir, &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat());
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let sign = ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"];
        openssl(dir, &[&sign[..], &["-extfile", "server.ext", "-out", "server.pem"]].concat());
        std::fs::read_to_string(dir.join("ca.pem")).unwrap()
    }

    pub(super) async fn dovecot(users: &[&str]) -> Option<Dovecot> {
        dovecot_with(users, false).await
    }

    async fn dovecot_with(users: &[&str], tls: bool) -> Option<Dovecot> {
        let bin = std::path::Path::new("/usr/sbin/dovecot");
        if !bin.exists() {
            eprintln!("dovecot is not installed (scripts/setup-test-tools installs it): IMAP test skipped");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("keel-dovecot-{}", keel_store::new_id()));
        std::fs::create_dir_all(dir.join("mail")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for d in [dir.clone(), dir.join("mail")] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let passwd: String = users.iter().map(|u| format!("{u}:{{PLAIN}}imap-secret-{u}\n")).collect();
        std::fs::write(dir.join("passwd"), passwd).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let tls_port = if tls { std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port() } else { 0 };
        let ca_pem = if tls { private_ca(&dir) } else { String::new() };
        let ssl = if tls {
            format!("ssl = yes\nssl_cert = <{0}/server.pem\nssl_key = <{0}/server.key\n", dir.display())
        } else {
            "ssl = no\n".into()
        };
        let root = id("-u") == "0";
        let (uid, gid) = if root { ("65534".to_string(), "65534".to_string()) } else { (id("-u"), id("-g")) };
        let own = if root {
            String::new()
        } else {
            let (u, g) = (id("-un"), id("-gn"));
            format!(
                "default_internal_user = {u}\ndefault_login_user = {u}\ndefault_internal_group = {g}\nservice imap-login {{\n  chroot =\n}}\n"
            )
        };
        let d = dir.display();
        let conf = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\nprotocols = imap\nlisten = 127.0.0.1\n{ssl}\
             disable_plaintext_auth = no\nauth_mechanisms = plain login\nmail_location = maildir:{d}/mail/%u\nfirst_valid_uid = 1\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/mail/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n  }}\n}}\n\
             service stats {{\n  unix_listener stats-reader {{\n    mode = 0666\n  }}\n  unix_listener stats-writer {{\n    mode = 0666\n  }}\n}}\n{own}"
        );
        std::fs::write(dir.join("dovecot.conf"), conf).unwrap();
        let child = tokio::process::Command::new(bin).arg("-F").arg("-c").arg(dir.join("dovecot.conf")).kill_on_drop(true).spawn().unwrap();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(Dovecot { dir, port, tls_port, ca_pem, child });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("dovecot did not start: {}", std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default());
    }

    /// A mailbox of project A polled over plain IMAP on loopback as `user`, with the password
    /// the test server gives it.
    pub(super) fn loopback_imap(user: &str, port: u16) -> MailboxInput {
        MailboxInput {
            address: "desk@acme-ops.keel.test".into(),
            unknown_sender: Some("create_contact".into()),
            imap_host: Some("127.0.0.1".into()),
            imap_port: Some(i64::from(port)),
            imap_tls: Some("plain".into()),
            imap_user: Some(user.into()),
            imap_secret: Some(format!("imap-secret-{user}")),
            ..Default::default()
        }
    }

    pub(super) async fn imap_session(port: u16, user: &str) -> async_imap::Session<tokio::net::TcpStream> {
        let mut client = async_imap::Client::new(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        client.read_response().await.unwrap().unwrap();
        client.login(user, format!("imap-secret-{user}")).await.map_err(|(e, _)| e).unwrap()
    }

    #[tokio::test]
    async fn attachments_over_the_size_limit_are_left_out_and_named() {
        for t in TestDb::migrated_all().await {
            let (app, _clock) = mail_app(&t);
            let w = world(&app).await;
            mailbox(&app, &w, &w.project_a, "desk@acme-ops.keel.test", "create_contact").await;
            let big = "QUFB".repeat(70 * 1024 / 3); // 70 KiB of "AAA…" in Base64; the limit is 64 KiB
            let raw = format!(
                "From: li.lei@acme.test\r\nSubject: Logs\r\nMessage-ID: <size-1@acme.test>\r\nContent-Type: multipart/mixed; boundary=\"s\"\r\n\r\n\
                 --s\r\nContent-Type: text/plain\r\n\r\nBoth logs attached.\r\n\
                 --s\r\nContent-Type: text/plain; name=\"small.txt\"\r\nContent-Disposition: attachment; filename=\"small.txt\"\r\n\r\nok\r\n\
                 --s\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{big}\r\n--s--\r\n"
            );
            let r = app.receive_mail(&Principal::system(), &w.project_a, raw.as_bytes()).await.unwrap();
            assert_eq!(outcome(&r), ("ticket", Some("attachments over the size limit left out: big.bin")), "{}", t.label);
            let files = app.list_attachments(&w.agent_a, r.message.ticket_id.as_deref().unwrap()).await.unwrap();
            assert_eq!(files.iter().map(|f| f.file_name.as_str()).collect::<Vec<_>>(), ["small.txt"], "{}", t.label);
        }
    }

    #[tokio::test]
    async fn an_imap_mailbox_is_polled_once_per_message_even_after_a_crash() {
        let dbs = TestDb::migrated_all().await;
        let users: Vec<String> = (0..dbs.len()).map(|i| format!("desk{i}")).collect();
        let Some(server) = dovecot(&users.iter().map(String::as_str).collect::<Vec<_>>()).await else { return };
        for (t, user) in dbs.iter().zip(&users) {
            let (app, clock) = mail_app(t);
            let w = world(&app).await;
            let mailbox = app.create_mailbox(&w.admin, &w.project_a, loopback_imap(user, server.port)).await.unwrap();
            let stored = mailbox.imap_secret.clone().unwrap();
            assert!(keel_app::secrets::is_sealed(&stored) && !stored.contains("imap-secret"), "stored encrypted: {stored}");

            let mut s = imap_session(server.port, user).await;
            for f in ["outlook_new.eml", "auto_reply.eml", "foxmail_gbk.eml"] {
                s.append("INBOX", None, None, corpus(f)).await.unwrap();
            }
            // Stored by an earlier poll that crashed before it could flag the message.
            app.receive_mail(&Principal::system(), &w.project_a, &corpus("foxmail_gbk.eml")).await.unwrap();

            let report = app.poll_mailbox(&mailbox).await.unwrap();
            assert_eq!((report.fetched, report.received, report.duplicates), (3, 2, 1), "{}", t.label);
            let log = app.list_received_mail(&w.agent_a, &w.project_a).await.unwrap();
            assert_eq!(log.iter().filter(|m| m.outcome == "ticket").count(), 2, "the crashed message is not stored twice");
            assert!(log.iter().any(|m| m.outcome == "ignored" && m.reason.as_deref() == Some("auto_reply")));
            s.select("INBOX").await.unwrap();
            assert!(s.uid_search("UNSEEN").await.unwrap().is_empty(), "every message is flagged once received");
            assert_eq!(app.poll_mailbox(&mailbox).await.unwrap(), Default::default(), "nothing new");

            // The same through the leased job runner.
            s.append("INBOX", None, None, corpus("html_only.eml")).await.unwrap();
            app.seed_jobs().await.unwrap();
            clock.advance(61_000);
            app.run_due_jobs(20).await.unwrap();
            let log = app.list_received_mail(&w.agent_a, &w.project_a).await.unwrap();
            assert!(log.iter().any(|m| m.subject == "Newsletter signup form broken" && m.outcome == "ticket"), "{}", t.label);

            // Another key: the password is not tried, and the error names the mailbox.
            let other = App::new(t.db.clone(), SecurityConfig::default()).with_secrets(secret_box(0x07));
            s.append("INBOX", None, None, corpus("outlook_new.eml")).await.unwrap();
            let err = match other.poll_mailbox(&mailbox).await.unwrap_err() {
                AppError::Internal(m) => m,
                e => panic!("{e:?}"),
            };
            assert!(err.contains(&format!("mailbox desk@acme-ops.keel.test ({})", mailbox.id)) && err.contains("KEEL_SECRET_KEY"), "{err}");
            assert!(!err.contains("imap-secret"), "{err}");
            assert!(other.poll_mailboxes().await.is_err());
            // A password stored in plain text before encryption existed still logs in, and is
            // encrypted at start.
            let mut tx = t.db.begin().await.unwrap();
            sqlx::query("UPDATE mailboxes SET imap_secret = $1 WHERE id = $2")
                .bind(format!("imap-secret-{user}"))
                .bind(&mailbox.id)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let legacy = app.get_mailbox(&w.admin, &mailbox.id).await.unwrap();
            assert_eq!(app.poll_mailbox(&legacy).await.unwrap().fetched, 1, "{}", t.label);
            assert_eq!(app.seal_stored_secrets().await.unwrap().sealed, 1);
            let sealed = app.get_mailbox(&w.admin, &mailbox.id).await.unwrap();
            assert!(keel_app::secrets::is_sealed(sealed.imap_secret.as_deref().unwrap()));
            s.append("INBOX", None, None, corpus("auto_reply.eml")).await.unwrap();
            assert_eq!(app.poll_mailbox(&sealed).await.unwrap().fetched, 1, "{}", t.label);
            s.logout().await.unwrap();
        }
        drop(server);
    }

    #[tokio::test]
    async fn held_mail_is_released_or_discarded_and_mailboxes_are_edited() {
        for t in TestDb::migrated_all().await {
            let (app, _) = mail_app(&t);
            let w = world(&app).await;
            let sys = Principal::system();
            let input =
                MailboxInput { address: "desk@acme-ops.keel.test".into(), unknown_sender: Some("hold".into()), ..Default::default() };
            let mb = app.create_mailbox(&w.admin, &w.project_a, input.clone()).await.unwrap();
            let held = app.receive_mail(&sys, &w.project_a, &corpus("big5_stranger.eml")).await.unwrap().message;
            let other = with_id(&with_id(&corpus("big5_stranger.eml"), "000a01d9b2c3", "000a01d9b2c5"), "chen@", "lin@");
            let other = app.receive_mail(&sys, &w.project_a, &other).await.unwrap().message;
            assert_eq!((held.outcome.as_str(), other.outcome.as_str()), ("held", "held"));
            let list = app.list_held_mail(&w.agent_a, &w.project_a).await.unwrap();
            assert_eq!(list.len(), 2, "{}", t.label);

            // Tenancy: staff of another project, contacts and auditors cannot act on it.
            assert!(matches!(app.list_held_mail(&w.contact_a, &w.project_a).await, Err(AppError::NotFound)));
            assert!(matches!(app.release_held_mail(&w.contact_a, &held.id).await, Err(AppError::NotFound)));
            let beta_agent = staff(&app, "beta.agent@keel.test", vec![Role::ServiceDeskAgent]).await;
            assert!(matches!(app.discard_held_mail(&beta_agent, &held.id).await, Err(AppError::NotFound)));
            assert!(matches!(app.release_held_mail(&w.auditor, &held.id).await, Err(AppError::Forbidden)));

            // Released: the contact is created in the project's organisation, the ticket made.
            let released = app.release_held_mail(&w.agent_a, &held.id).await.unwrap();
            assert_eq!(released.outcome, "ticket", "{}", t.label);
            assert!(released.reason.as_deref().unwrap().starts_with("released by"));
            let ticket = app.get_ticket(&w.agent_a, released.ticket_id.as_deref().unwrap()).await.unwrap();
            assert_eq!(
                (ticket.title.as_str(), ticket.organization_id.as_str(), ticket.channel.as_str()),
                ("電子郵件無法寄出", w.org_a.as_str(), "email")
            );
            assert!(matches!(app.release_held_mail(&w.agent_a, &held.id).await, Err(AppError::Conflict { .. })), "released once");
            let discarded = app.discard_held_mail(&w.agent_a, &other.id).await.unwrap();
            assert_eq!(discarded.outcome, "discarded");
            assert!(discarded.ticket_id.is_none());
            assert!(app.list_held_mail(&w.agent_a, &w.project_a).await.unwrap().is_empty());
            let mut c = app.read().await.unwrap();
            assert!(keel_store::accounts::get_user_by_email(&mut c, "lin@newbranch.example.tw").await.unwrap().is_none());
            drop(c);

            // Edited and deactivated: only managers; a deactivated mailbox is not polled.
            let edit = MailboxInput { unknown_sender: Some("create_contact".into()), ..input };
            assert!(matches!(app.update_mailbox(&w.agent_a, &mb.id, edit.clone(), true).await, Err(AppError::Forbidden)));
            let changed = app.update_mailbox(&w.admin, &mb.id, edit, false).await.unwrap();
            assert_eq!((changed.unknown_sender.as_str(), changed.active, changed.version), ("create_contact", false, 2));
            assert_eq!(app.get_mailbox(&w.agent_a, &mb.id).await.unwrap(), changed);
            assert!(matches!(app.get_mailbox(&beta_agent, &mb.id).await, Err(AppError::NotFound)));
        }
    }

    #[tokio::test]
    async fn an_imap_mailbox_is_polled_over_tls_and_starttls_with_a_private_ca() {
        let dbs = TestDb::migrated_all().await;
        let users: Vec<String> = (0..dbs.len()).map(|i| format!("secure{i}")).collect();
        let Some(server) = dovecot_with(&users.iter().map(String::as_str).collect::<Vec<_>>(), true).await else { return };
        for (t, user) in dbs.iter().zip(&users) {
            let (app, _) = mail_app(t);
            let w = world(&app).await;
            let input = |address: &str, mode: &str, port: u16, ca: Option<&str>| MailboxInput {
                address: address.into(),
                unknown_sender: Some("create_contact".into()),
                imap_host: Some("127.0.0.1".into()),
                imap_port: Some(i64::from(port)),
                imap_tls: Some(mode.into()),
                imap_user: Some(user.clone()),
                imap_secret: Some(format!("imap-secret-{user}")),
                imap_ca_pem: ca.map(str::to_string),
                ..Default::default()
            };
            let ca = Some(server.ca_pem.as_str());
            let tls =
                app.create_mailbox(&w.admin, &w.project_a, input("tls@acme-ops.keel.test", "tls", server.tls_port, ca)).await.unwrap();
            let starttls = app
                .create_mailbox(&w.admin, &w.project_a, input("starttls@acme-ops.keel.test", "starttls", server.port, ca))
                .await
                .unwrap();
            let untrusted = app
                .create_mailbox(&w.admin, &w.project_a, input("untrusted@acme-ops.keel.test", "tls", server.tls_port, None))
                .await
                .unwrap();
            assert_eq!(tls.imap_ca_pem.as_deref(), ca.map(str::trim));

            // The certificate of a CA nobody trusts is refused before the password is sent.
            let err = format!("{:?}", app.poll_mailbox(&untrusted).await.unwrap_err());
            assert!(err.contains("TLS") && err.contains("UnknownIssuer"), "{err}");

            let mut s = imap_session(server.port, user).await;
            s.append("INBOX", None, None, corpus("outlook_new.eml")).await.unwrap();
            let report = app.poll_mailbox(&tls).await.unwrap();
            assert_eq!((report.fetched, report.received), (1, 1), "{}", t.label);
            s.append("INBOX", None, None, corpus("foxmail_gbk.eml")).await.unwrap();
            let report = app.poll_mailbox(&starttls).await.unwrap();
            assert_eq!((report.fetched, report.received), (1, 1), "{}", t.label);
            let log = app.list_received_mail(&w.agent_a, &w.project_a).await.unwrap();
            assert!(log.iter().any(|m| m.subject == "财务室打印机无法打印" && m.outcome == "ticket"), "{}", t.label);
            s.logout().await.unwrap();

            // Clear text only on loopback; a broken CA text is named.
            let err = app.create_mailbox(
                &w.admin,
                &w.project_a,
                MailboxInput { imap_host: Some("imap.acme.test".into()), ..input("plain@acme-ops.keel.test", "plain", 143, None) },
            );
            assert!(matches!(err.await, Err(AppError::Validation(e)) if e.iter().any(|f| f.field == "imap_tls")));
            let err = app.create_mailbox(&w.admin, &w.project_a, input("badca@acme-ops.keel.test", "tls", 993, Some("not a certificate")));
            assert!(matches!(err.await, Err(AppError::Validation(e)) if e.iter().any(|f| f.field == "imap_ca_pem")));
        }
        drop(server);
    }
}

mod search {
    use super::*;
    use keel_app::cmdb::CiInput;
    use keel_app::incidents::NewTicket;
    use keel_app::search::{Search, SearchInput, SearchPage};
    use keel_app::service_level::ServiceInput;
    use serde_json::json;

    pub(crate) fn index_dir() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("keel-search-{}", uuid::Uuid::new_v4().simple()))
    }

    /// An application with its own index, built (empty) and followed like `keel serve` does.
    pub(crate) async fn searching(t: &TestDb, dir: &std::path::Path) -> (App, World) {
        let (app, _) = app_on(t);
        let app = app.with_search(Search::at(dir));
        let w = world(&app).await;
        app.seed_cmdb_classes().await.unwrap();
        app.rebuild_search_index(|_, _| {}).await.unwrap();
        (app, w)
    }

    pub(crate) async fn find(app: &App, who: &Principal, q: &str) -> SearchPage {
        app.search_records(who, &SearchInput { q: q.into(), limit: 20, ..Default::default() }).await.unwrap()
    }

    pub(crate) fn titles(p: &SearchPage) -> Vec<String> {
        let mut v: Vec<_> = p.hits.iter().map(|h| h.title.clone()).collect();
        v.sort();
        v
    }

    async fn ticket(app: &App, who: &Principal, project: &str, reporter: &str, title: &str, description: &str) -> String {
        app.create_ticket(
            who,
            NewTicket {
                project_id: project.into(),
                reporter_id: Some(reporter.into()),
                title: title.into(),
                description: Some(description.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id
    }

    async fn contact_b(app: &App) -> Principal {
        let mut c = app.read().await.unwrap();
        let u = keel_store::accounts::get_user_by_email(&mut c, "han@beta.test").await.unwrap().unwrap();
        drop(c);
        principal(app, &u.id).await
    }

    #[tokio::test]
    async fn committed_changes_are_searchable_and_deletions_disappear() {
        for t in TestDb::migrated_all().await {
            let dir = index_dir();
            let (app, w) = searching(&t, &dir).await;
            let id = ticket(&app, &w.admin, &w.project_a, &w.contact_a.user_id, "打印机无法打印", "The printers on floor 3 jam").await;
            assert!(find(&app, &w.admin, "打印").await.hits.is_empty(), "{}: not before the follower ran", t.label);
            assert!(app.follow_outbox().await.unwrap() > 0);
            for q in ["打印机", "打印", "printer", "INC-000001"] {
                assert_eq!(titles(&find(&app, &w.admin, q).await), vec!["打印机无法打印"], "{}: {q}", t.label);
            }
            // a reply reindexes its ticket
            app.add_comment(&w.admin, &id, "public", "请重启 spooler 服务").await.unwrap();
            app.follow_outbox().await.unwrap();
            assert_eq!(find(&app, &w.admin, "spooler").await.hits[0].id, id, "{}", t.label);
            // configuration items by attribute values, catalogue services by name
            app.create_ci(
                &w.admin,
                CiInput {
                    class_key: "server".into(),
                    name: "数据库服务器".into(),
                    attributes: json!({ "hostname": "srv-db01.corp.local", "ip_address": "10.0.12.7" }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            let sm = staff(&app, "sm@keel.test", vec![Role::ServiceManager]).await;
            app.create_service(
                &sm,
                ServiceInput {
                    code: "PRINT".into(),
                    name: "打印服务 Printing".into(),
                    service_line: "operations_maintenance".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            app.follow_outbox().await.unwrap();
            assert_eq!(titles(&find(&app, &w.admin, "10.0.12.7").await), vec!["数据库服务器"], "{}", t.label);
            assert_eq!(titles(&find(&app, &w.admin, "srv-db01.corp.local").await), vec!["数据库服务器"], "{}", t.label);
            let p = find(&app, &w.admin, "打印").await;
            assert_eq!((p.total, p.by_kind.len()), (2, 2), "{}: {:?}", t.label, p.by_kind);
            let p = app
                .search_records(&w.admin, &SearchInput { q: "打印".into(), kind: Some("service".into()), limit: 5, ..Default::default() })
                .await
                .unwrap();
            assert_eq!(titles(&p), vec!["打印服务 Printing"], "{}", t.label);
            // a record gone from the database leaves the index at the next step
            let mut w_ = app.write(&w.admin).await.unwrap();
            sqlx::query("DELETE FROM tickets WHERE id = $1").bind(&id).execute(w_.conn()).await.unwrap();
            w_.record("ticket", &id, keel_domain::audit::AuditAction::Delete, Some(&json!({ "id": id })), None).await.unwrap();
            w_.commit().await.unwrap();
            app.follow_outbox().await.unwrap();
            assert!(find(&app, &w.admin, "打印机").await.hits.is_empty(), "{}", t.label);
            assert_eq!(app.follow_outbox().await.unwrap(), 0, "{}: nothing applied twice", t.label);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[tokio::test]
    async fn after_a_crash_index_and_position_agree_and_late_commits_are_applied() {
        for t in TestDb::migrated_all().await {
            let dir = index_dir();
            let (app, w) = searching(&t, &dir).await;
            ticket(&app, &w.admin, &w.project_a, &w.contact_a.user_id, "VPN 连接失败", "").await;
            app.follow_outbox().await.unwrap();
            let ix = app.search.index().unwrap().unwrap();
            let committed = ix.position().unwrap();
            // a change written into the index but never committed, then the process dies
            ix.add(&[keel_search::Document {
                source: "ticket".into(),
                id: "ghost".into(),
                kind: "incident".into(),
                title: "幽灵工单".into(),
                ..Default::default()
            }])
            .unwrap();
            drop(ix);
            let second = ticket(&app, &w.admin, &w.project_a, &w.contact_a.user_id, "邮件无法发送", "").await;
            drop(app);
            let (app, _) = app_on(&t);
            let app = app.with_search(Search::at(&dir));
            let ix = app.search.index().unwrap().unwrap();
            assert_eq!(ix.position().unwrap(), committed, "{}: the position is the one committed with the index", t.label);
            assert!(find(&app, &w.admin, "幽灵").await.hits.is_empty(), "{}", t.label);
            assert!(find(&app, &w.admin, "邮件").await.hits.is_empty(), "{}", t.label);
            assert_eq!(app.follow_outbox().await.unwrap(), 1, "{}: only the change after the position", t.label);
            assert_eq!(find(&app, &w.admin, "邮件").await.hits[0].id, second, "{}", t.label);
            assert_eq!(ix.num_docs(), 2, "{}", t.label);
            // an outbox row committed late with an earlier time inside the window is still applied
            let late = ticket(&app, &w.admin, &w.project_a, &w.contact_a.user_id, "磁盘空间不足", "").await;
            let mut tx = t.db.begin().await.unwrap();
            sqlx::query("UPDATE outbox SET created_at = created_at - 20000 WHERE entity_id = $1")
                .bind(&late)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let mut pos: keel_app::search::Position = serde_json::from_str(&ix.position().unwrap().unwrap()).unwrap();
            pos.at = T0 + 1;
            ix.commit(&serde_json::to_string(&pos).unwrap()).unwrap();
            assert_eq!(app.follow_outbox().await.unwrap(), 1, "{}", t.label);
            assert_eq!(find(&app, &w.admin, "磁盘").await.hits[0].id, late, "{}", t.label);
            assert_eq!(app.follow_outbox().await.unwrap(), 0, "{}", t.label);
            // a full rebuild beside the running index swaps in with the same content
            app.rebuild_search_index(|_, _| {}).await.unwrap();
            let rebuilt = app.search.index().unwrap().unwrap();
            assert!(!Arc::ptr_eq(&ix, &rebuilt), "{}", t.label);
            assert_eq!(rebuilt.num_docs(), 3, "{}", t.label);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[tokio::test]
    async fn contacts_never_see_other_organisations_or_internal_notes_through_search() {
        for t in TestDb::migrated_all().await {
            let dir = index_dir();
            let (app, w) = searching(&t, &dir).await;
            let b = contact_b(&app).await;
            let outsider = staff(&app, "tech@keel.test", vec![Role::Technician]).await;
            let mine = ticket(&app, &w.admin, &w.project_a, &w.contact_a.user_id, "打印机卡纸", "纸盒卡住").await;
            app.add_comment(&w.admin, &mine, "internal", "机密备注 secretword 客户设备过保").await.unwrap();
            app.add_comment(&w.admin, &mine, "public", "已派工程师 printer fixed").await.unwrap();
            ticket(&app, &w.admin, &w.project_b, &b.user_id, "打印机无法连接", "Beta 的打印机 secretword").await;
            app.follow_outbox().await.unwrap();

            let staff_view = find(&app, &w.admin, "打印机").await;
            assert_eq!(staff_view.total, 2, "{}", t.label);
            let p = find(&app, &w.contact_a, "打印机").await;
            assert_eq!((p.total, titles(&p)), (1, vec!["打印机卡纸".to_string()]), "{}", t.label);
            assert_eq!(p.by_kind, vec![("incident".to_string(), 1)], "{}: facets count only visible hits", t.label);
            assert_eq!(p.by_status.iter().map(|s| s.1).sum::<usize>(), 1, "{}", t.label);
            // the internal note neither matches nor shows for the contact; the other
            // organisation's ticket with the same word is not counted
            let p = find(&app, &w.contact_a, "secretword").await;
            assert_eq!((p.total, p.hits.len(), p.by_kind.len(), p.by_status.len()), (0, 0, 0, 0), "{}", t.label);
            let p = find(&app, &w.contact_a, "printer").await;
            assert_eq!(p.hits.len(), 1, "{}", t.label);
            assert!(!p.hits[0].snippet.contains("机密") && !p.hits[0].snippet.contains("secretword"), "{}: {}", t.label, p.hits[0].snippet);
            let p = find(&app, &w.contact_a, "type:incident").await;
            assert_eq!(p.total, 1, "{}", t.label);
            // staff see internal notes; staff outside both projects see neither ticket
            let p = find(&app, &w.agent_a, "secretword").await;
            assert_eq!(p.total, 1, "{}: the agent's project only", t.label);
            assert!(p.hits[0].snippet.contains("<b>secretword</b>"), "{}: {}", t.label, p.hits[0].snippet);
            assert_eq!(find(&app, &w.admin, "secretword").await.total, 2, "{}", t.label);
            assert_eq!(find(&app, &outsider, "打印机").await.total, 0, "{}", t.label);
            assert_eq!(find(&app, &b, "打印机").await.total, 1, "{}", t.label);
            // paging by cursor
            let all = app.search_records(&w.admin, &SearchInput { q: "打印机".into(), limit: 1, ..Default::default() }).await.unwrap();
            let next = app
                .search_records(
                    &w.admin,
                    &SearchInput { q: "打印机".into(), limit: 1, cursor: all.next_cursor.clone(), ..Default::default() },
                )
                .await
                .unwrap();
            assert_eq!((all.hits.len(), next.hits.len(), next.next_cursor.clone()), (1, 1, None), "{}", t.label);
            assert_ne!(all.hits[0].id, next.hits[0].id, "{}", t.label);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[tokio::test]
    async fn problems_and_known_errors_are_found_by_staff_and_never_by_contacts() {
        for t in TestDb::migrated_all().await {
            let dir = index_dir();
            let (app, w) = searching(&t, &dir).await;
            let p = app
                .create_problem(
                    &w.agent_a,
                    keel_app::problems::NewProblem {
                        project_id: w.project_a.clone(),
                        title: "VPN 每小时断线".into(),
                        description: Some("firewall session table too small on fw-core-01".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            app.follow_outbox().await.unwrap();
            for q in ["fw-core-01", "断线", p.number.as_str()] {
                let ids: Vec<String> = find(&app, &w.agent_a, q).await.hits.iter().map(|h| h.id.clone()).collect();
                assert_eq!(ids, vec![p.id.clone()], "{}: {q}", t.label);
            }
            // investigated, with a workaround, declared a known error in both languages
            let team = app
                .create_team(&w.admin, TeamInput { name: "二线".into(), member_ids: vec![w.agent_a.user_id.clone()], ..Default::default() })
                .await
                .unwrap()
                .id;
            let step = |action: &str| keel_app::problems::ProblemStep { action: action.into(), ..Default::default() };
            let investigate = keel_app::problems::ProblemStep { team_id: Some(team), ..step("investigate") };
            app.transition_problem(&w.agent_a, &p.id, investigate, None).await.unwrap();
            let wa = keel_app::problems::ProblemStep { workaround: Some("Reconnect the VPN client".into()), ..step("record_workaround") };
            app.transition_problem(&w.agent_a, &p.id, wa, None).await.unwrap();
            let declare = keel_app::problems::ProblemStep {
                language: Some("en".into()),
                title: Some("VPN disconnects hourly".into()),
                symptoms: Some("The tunnel drops about every hour".into()),
                translation_title: Some("VPN 每小时断开".into()),
                translation_symptoms: Some("隧道大约每小时掉线一次".into()),
                ..step("declare_known_error")
            };
            app.transition_problem(&w.agent_a, &p.id, declare, None).await.unwrap();
            app.follow_outbox().await.unwrap();
            let ke = find(&app, &w.agent_a, "隧道").await;
            assert_eq!(ke.hits.iter().map(|h| h.kind.as_str()).collect::<Vec<_>>(), vec!["known_error"], "{}", t.label);
            assert_eq!(ke.hits[0].number.as_deref(), Some("KE-000001"), "{}", t.label);
            for q in ["fw-core-01", "隧道", "Reconnect", "KE-000001"] {
                let c = find(&app, &w.contact_a, q).await;
                assert!(c.hits.is_empty() && c.total == 0 && c.by_kind.is_empty(), "{}: {q}: {:?}", t.label, c.by_kind);
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[tokio::test]
    async fn renaming_a_team_reindexes_its_tickets() {
        for t in TestDb::migrated_all().await {
            let dir = index_dir();
            let (app, w) = searching(&t, &dir).await;
            let team =
                app.create_team(&w.admin, keel_app::directory::TeamInput { name: "网络组".into(), ..Default::default() }).await.unwrap();
            for title in ["交换机端口故障", "Core switch flapping"] {
                app.create_ticket(
                    &w.admin,
                    NewTicket {
                        project_id: w.project_a.clone(),
                        reporter_id: Some(w.contact_a.user_id.clone()),
                        title: title.into(),
                        team_id: Some(team.id.clone()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            }
            app.follow_outbox().await.unwrap();
            assert_eq!(find(&app, &w.admin, "team:网络组").await.total, 2, "{}", t.label);
            let renamed = keel_app::directory::TeamInput { name: "网络运维组".into(), ..Default::default() };
            app.update_team(&w.admin, &team.id, renamed, Some(team.version)).await.unwrap();
            app.follow_outbox().await.unwrap();
            assert_eq!(find(&app, &w.admin, "team:网络组").await.total, 0, "{}: the old name is gone", t.label);
            let p = find(&app, &w.admin, "team:网络运维组").await;
            assert_eq!(titles(&p), vec!["Core switch flapping", "交换机端口故障"], "{}", t.label);
            let ix = app.search.index().unwrap().unwrap();
            let before = ix.position().unwrap();
            // a change that documents do not show moves the position and keeps the tickets found
            let described = keel_app::directory::TeamInput {
                name: "网络运维组".into(),
                description: Some("负责园区网络".into()),
                ..Default::default()
            };
            app.update_team(&w.admin, &team.id, described, None).await.unwrap();
            assert_eq!(app.follow_outbox().await.unwrap(), 1, "{}", t.label);
            assert_ne!(ix.position().unwrap(), before);
            assert_eq!(find(&app, &w.admin, "team:网络运维组").await.total, 2, "{}", t.label);
            let _ = std::fs::remove_dir_all(&dir);
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
            // change management: every type, in different states, a conflict and a release
            let sort = SortKey { name: "number", column: "c.number", kind: SortKind::Text };
            let changes = app.list_changes(&admin, &Default::default(), &page(sort)).await.unwrap().items;
            let mut kinds: Vec<(&str, &str)> = changes.iter().map(|c| (c.change_type.as_str(), c.status.as_str())).collect();
            kinds.sort();
            assert_eq!(
                kinds,
                [
                    ("emergency", "reviewed"),
                    ("normal", "approved"),
                    ("normal", "assessed"),
                    ("normal", "draft"),
                    ("normal", "rejected"),
                    ("normal", "scheduled"),
                    ("standard", "scheduled"),
                ],
                "{}",
                t.label
            );
            let roll_out = changes.iter().find(|c| c.status == "approved").unwrap();
            assert!(!app.change_conflicts(&admin, &roll_out.id).await.unwrap().is_empty(), "{}: the calendar shows a conflict", t.label);
            assert_eq!(app.change_impact(&admin, &roll_out.id).await.unwrap().services.len(), 1, "{}", t.label);
            let sort = SortKey { name: "number", column: "r.number", kind: SortKind::Text };
            let releases = app.list_releases(&admin, &Default::default(), &page(sort)).await.unwrap().items;
            assert_eq!(releases.len(), 1, "{}", t.label);
            assert_eq!(app.get_release(&admin, &releases[0].id).await.unwrap().change_ids.len(), 2, "{}", t.label);
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

#[path = "stories/changes.rs"]
mod changes;
#[path = "stories/major_incidents.rs"]
mod major_incidents;

#[path = "stories/cmdb_graph.rs"]
mod cmdb_graph;
#[path = "stories/cmdb_more.rs"]
mod cmdb_more;
#[path = "stories/desk_views.rs"]
mod desk_views;
#[path = "stories/known_error_matching.rs"]
mod known_error_matching;
#[path = "stories/mailbox_teams.rs"]
mod mailbox_teams;
#[path = "stories/notification_prefs.rs"]
mod notification_prefs;
#[path = "stories/outbox.rs"]
mod outbox;
#[path = "stories/releases.rs"]
mod releases;
#[path = "stories/search_changes.rs"]
mod search_changes;
#[path = "stories/secret_rotation.rs"]
mod secret_rotation;

#[tokio::test]
async fn the_desk_option_lists_follow_changes_made_on_another_instance_and_stay_in_scope() {
    for t in TestDb::migrated_all().await {
        let (app, clock) = app_on(&t);
        let w = world(&app).await;
        // a second instance on the same database, with its own copy of the lists
        let two = App::new(t.db.clone(), SecurityConfig::default()).with_clock(clock.clone());
        let team_names = |c: &keel_app::reference::Choices| c.teams().iter().map(|(_, n)| n.clone()).collect::<Vec<_>>();
        let team = app.create_team(&w.admin, TeamInput { name: "Night shift".into(), ..Default::default() }).await.unwrap();
        let c = two.choices(&w.agent_a).await.unwrap();
        assert!(team_names(&c).contains(&"Night shift".to_string()), "{}", t.label);
        assert!(!c.staff().iter().any(|(_, n)| n.contains("zed@keel.test")), "{}", t.label);
        // the first instance renames the team and adds an agent; the second one's next read has both
        let input = TeamInput { name: "Late shift".into(), ..Default::default() };
        let team = app.update_team(&w.admin, &team.id, input, None).await.unwrap();
        let zed = staff(&app, "zed@keel.test", vec![Role::ServiceDeskAgent]).await;
        let c = two.choices(&w.agent_a).await.unwrap();
        assert!(team_names(&c).contains(&"Late shift".to_string()) && !team_names(&c).contains(&"Night shift".to_string()), "{}", t.label);
        assert!(c.staff().iter().any(|(id, n)| *id == zed.user_id && n.contains("zed@keel.test")), "{}", t.label);
        // a deactivated team or agent leaves the lists
        let input = TeamInput { name: "Late shift".into(), active: Some(false), ..Default::default() };
        app.update_team(&w.admin, &team.id, input, None).await.unwrap();
        app.update_user(&w.admin, &zed.user_id, UserPatch { active: Some(false), ..Default::default() }, None).await.unwrap();
        let c = two.choices(&w.agent_a).await.unwrap();
        assert!(!team_names(&c).contains(&"Late shift".to_string()), "{}", t.label);
        assert!(!c.staff().iter().any(|(id, _)| *id == zed.user_id), "{}", t.label);
        // a catalogue service added on the second instance is offered by the first
        let sm = staff(&app, "sm@keel.test", vec![Role::ServiceManager]).await;
        let input = keel_app::service_level::ServiceInput {
            code: "MAIL".into(),
            name: "Mail 邮件".into(),
            service_line: "operations_maintenance".into(),
            ..Default::default()
        };
        two.create_service(&sm, input).await.unwrap();
        let services = app.choices(&w.agent_a).await.unwrap().services().unwrap().to_vec();
        assert!(services.iter().any(|(_, l)| l == "MAIL · Mail 邮件"), "{}: {services:?}", t.label);
        // a write outside every store function (a script, a path yet to be written) is seen as
        // well: the database itself moves the counter
        raw(&t, "UPDATE services SET name = 'Mail 电子邮件' WHERE code = 'MAIL'".into()).await;
        let services = app.choices(&w.agent_a).await.unwrap().services().unwrap().to_vec();
        assert!(services.iter().any(|(_, l)| l == "MAIL · Mail 电子邮件"), "{}: {services:?}", t.label);
        // the lists are the same for everyone; what each reader gets is their own
        let projects = |c: keel_app::reference::Choices| c.projects().map(|p| p.id.clone()).collect::<Vec<_>>();
        assert_eq!(projects(two.choices(&w.agent_a).await.unwrap()), std::slice::from_ref(&w.project_a), "{}", t.label);
        let mut all = projects(two.choices(&w.admin).await.unwrap());
        all.sort();
        let mut both = vec![w.project_a.clone(), w.project_b.clone()];
        both.sort();
        assert_eq!(all, both, "{}", t.label);
        let c = two.choices(&w.contact_a).await.unwrap();
        assert!(c.teams().is_empty() && c.staff().is_empty() && c.services().is_none(), "{}", t.label);
        assert_eq!(projects(c), std::slice::from_ref(&w.project_a), "{}", t.label);
    }
}

/// One statement in its own transaction, past every store function.
async fn raw(t: &TestDb, sql: String) {
    let mut tx = t.db.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

async fn desk_reference(app: &App) -> i64 {
    let mut c = app.read().await.unwrap();
    keel_store::kernel::counter_value(&mut c, keel_store::kernel::DESK_REFERENCE_COUNTER).await.unwrap()
}

#[tokio::test]
async fn every_write_to_the_reference_data_moves_the_counter_whoever_writes_it() {
    for t in TestDb::migrated_all().await {
        let (app, _) = app_on(&t);
        let w = world(&app).await;
        let sm = staff(&app, "sm@keel.test", vec![Role::ServiceManager]).await;
        let team = app.create_team(&w.admin, TeamInput { name: "Night shift".into(), ..Default::default() }).await.unwrap();
        let input = keel_app::service_level::ServiceInput {
            code: "MAIL".into(),
            name: "Mail 邮件".into(),
            service_line: "operations_maintenance".into(),
            ..Default::default()
        };
        let service = app.create_service(&sm, input).await.unwrap();
        let calendar = app.create_china_calendar(&sm, "中国大陆工作日历").await.unwrap();
        let input = keel_app::service_level::SlaInput {
            name: "Acme SLA".into(),
            project_id: w.project_a.clone(),
            calendar_id: calendar.id.clone(),
            service_ids: vec![service.id.clone()],
            ..Default::default()
        };
        let sla = app.create_sla(&sm, input).await.unwrap();
        let matrix = serde_json::to_string(&app.priority_matrix().await.unwrap()).unwrap().replace('\'', "''");
        // both backends watch the same tables: those the copy is read from
        let sql = match t.db.backend() {
            keel_store::Backend::Sqlite => "SELECT DISTINCT tbl_name AS t FROM sqlite_master WHERE type = 'trigger'",
            keel_store::Backend::Postgres => "SELECT DISTINCT event_object_table::text AS t FROM information_schema.triggers",
        };
        let mut watched: Vec<String> = sqlx::query_scalar(sql).fetch_all(t.db.reader()).await.unwrap();
        watched.sort();
        let copy = ["business_calendars", "calendar_days", "projects", "services", "settings", "sla_services", "slas", "teams", "users"];
        assert_eq!(watched, copy, "{}", t.label);
        // every table behind the copy, written past the store functions
        let bumps = [
            format!("UPDATE teams SET description = 'raw' WHERE id = '{}'", team.id),
            format!("UPDATE projects SET description = 'raw' WHERE id = '{}'", w.project_a),
            format!("UPDATE services SET description = 'raw' WHERE id = '{}'", service.id),
            format!("UPDATE slas SET change_approval_by_customer = 1 WHERE id = '{}'", sla.id),
            format!("DELETE FROM sla_services WHERE sla_id = '{}'", sla.id),
            format!("UPDATE business_calendars SET description = 'raw' WHERE id = '{}'", calendar.id),
            format!(
                "INSERT INTO calendar_days (calendar_id, on_date, year, kind, name) VALUES ('{}', '2031-01-02', 2031, 'holiday', 'raw')",
                calendar.id
            ),
            format!("UPDATE users SET display_name = 'Raw' WHERE id = '{}'", w.agent_a.user_id),
            format!("UPDATE users SET active = 0 WHERE id = '{}'", w.auditor.user_id),
            format!(
                "INSERT INTO settings (name, value, updated_at) VALUES ('incident.priority_matrix', '{matrix}', 0) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value"
            ),
            format!(
                "INSERT INTO settings (name, value, updated_at) VALUES ('incident.priority_matrix', '{matrix}', 1) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value"
            ),
        ];
        for sql in bumps {
            let before = desk_reference(&app).await;
            raw(&t, sql.clone()).await;
            assert!(desk_reference(&app).await > before, "{}: {sql}", t.label);
        }
        // the use cases that wrote that data without bumping before the triggers: the customer's
        // approval of changes on an SLA, an unused calendar deleted
        let before = desk_reference(&app).await;
        app.set_sla_change_approval(&w.admin, &sla.id, true).await.unwrap();
        assert!(desk_reference(&app).await > before, "{}", t.label);
        let spare = app.create_china_calendar(&sm, "备用日历").await.unwrap();
        let before = desk_reference(&app).await;
        app.delete_calendar(&sm, &spare.id, None).await.unwrap();
        assert!(desk_reference(&app).await > before, "{}", t.label);
        // what the copy does not hold leaves every instance's copy alone: login bookkeeping, a
        // contact, roles, another setting, a contact created by the desk
        let quiet = [
            format!("UPDATE users SET failed_logins = failed_logins + 1, locked_until = 5 WHERE id = '{}'", w.agent_a.user_id),
            format!("UPDATE users SET password_hash = 'x', version = version + 1 WHERE id = '{}'", w.agent_a.user_id),
            format!("UPDATE users SET display_name = 'Raw' WHERE id = '{}'", w.contact_a.user_id),
            format!("DELETE FROM user_roles WHERE user_id = '{}'", w.auditor.user_id),
            "INSERT INTO settings (name, value, updated_at) VALUES ('raw.setting', 'x', 0)".to_string(),
        ];
        for sql in quiet {
            let before = desk_reference(&app).await;
            raw(&t, sql.clone()).await;
            assert_eq!(desk_reference(&app).await, before, "{}: {sql}", t.label);
        }
        let before = desk_reference(&app).await;
        let contact = NewUser {
            kind: AccountKind::Contact,
            email: "new@acme.test".into(),
            display_name: "New".into(),
            organization_id: Some(w.org_a.clone()),
            ..Default::default()
        };
        app.create_user(&w.admin, contact).await.unwrap();
        assert_eq!(desk_reference(&app).await, before, "{}", t.label);
    }
}

#[tokio::test]
async fn lists_read_each_records_details_for_the_whole_page_at_once() {
    for t in TestDb::migrated_all().await {
        let (app, _) = app_on(&t);
        let w = world(&app).await;
        let sm = staff(&app, "sm@keel.test", vec![Role::ServiceManager]).await;
        let zed = staff(&app, "zed@keel.test", vec![Role::Technician, Role::CabMember]).await;
        // a team with no members is listed with none; one with members has them by user id
        let empty = app.create_team(&w.admin, TeamInput { name: "Empty".into(), ..Default::default() }).await.unwrap();
        let members = vec![zed.user_id.clone(), w.agent_a.user_id.clone()];
        let full =
            app.create_team(&w.admin, TeamInput { name: "Full".into(), member_ids: members.clone(), ..Default::default() }).await.unwrap();
        let teams = app.list_teams(&w.admin, None, &page(NAME_SORT)).await.unwrap().items;
        let of = |id: &str| teams.iter().find(|t| t.id == id).map(|t| t.member_ids.clone());
        let mut sorted = members.clone();
        sorted.sort();
        assert_eq!((of(&empty.id), of(&full.id)), (Some(vec![]), Some(sorted)), "{}", t.label);
        assert_eq!(teams.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["Empty", "Full"], "{}", t.label);
        // each user's roles by name; a contact has none and is listed all the same
        let users = app.list_users(&w.admin, Default::default(), &page(USER_SORT)).await.unwrap().items;
        let roles = |id: &str| users.iter().find(|u| u.id == id).map(|u| u.roles.clone());
        assert_eq!(roles(&zed.user_id), Some(vec!["cab_member".to_string(), "technician".to_string()]), "{}", t.label);
        assert_eq!(roles(&w.contact_a.user_id), Some(vec![]), "{}", t.label);
        assert_eq!(roles(&w.admin.user_id), Some(vec!["administrator".to_string()]), "{}", t.label);
        for u in &users {
            assert_eq!(u, &app.get_user(&w.admin, &u.id).await.unwrap(), "{}: list and record agree", t.label);
        }
        // a project's members and switched-off processes; the other project has neither
        app.tailor_project(&sm, &w.project_b, "problem", false, "the customer runs its own").await.unwrap();
        let projects = app.list_projects(&w.admin, &Default::default(), &page(CODE_SORT)).await.unwrap().items;
        let p = |id: &str| projects.iter().find(|p| p.id == *id).map(|p| (p.member_ids.clone(), p.disabled_processes.clone()));
        assert_eq!(p(&w.project_a), Some((vec![w.agent_a.user_id.clone()], vec![])), "{}", t.label);
        assert_eq!(p(&w.project_b), Some((vec![], vec!["problem".to_string()])), "{}", t.label);
        // services: what each depends on
        let service = |code: &str, depends_on: Vec<String>| keel_app::service_level::ServiceInput {
            code: code.into(),
            name: code.into(),
            service_line: "operations_maintenance".into(),
            depends_on,
            ..Default::default()
        };
        let net = app.create_service(&sm, service("NET", vec![])).await.unwrap();
        let mail = app.create_service(&sm, service("MAIL", vec![net.id.clone()])).await.unwrap();
        let services = app.list_services(&sm, &Default::default(), &page(CODE_SORT)).await.unwrap().items;
        let deps = services.iter().map(|s| (s.id.clone(), s.depends_on.clone())).collect::<Vec<_>>();
        assert_eq!(deps, [(mail.id.clone(), vec![net.id.clone()]), (net.id.clone(), vec![])], "{}", t.label);
        // more keys than one statement takes: the details of the keys past the first statement
        // still come back
        let mut keys: Vec<String> = (0..1200).map(|i| format!("no-such-user-{i:04}")).collect();
        keys.push(zed.user_id.clone());
        let mut c = app.read().await.unwrap();
        let got =
            keel_store::sql::grouped(&mut c, "SELECT user_id AS k, role AS v FROM user_roles WHERE user_id IN ", &keys).await.unwrap();
        assert_eq!(got.len(), 1, "{}", t.label);
        assert_eq!(got[&zed.user_id], ["cab_member", "technician"], "{}", t.label);
    }
}

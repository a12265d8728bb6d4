//! HTTP tests of service level management (§6.1) through the real router: the calendar, catalogue,
//! SLA and supporting-agreement API with its OpenAPI paths, and the pages of the "Service
//! delivery" group, on SQLite and (with `KEEL_TEST_DATABASE_URL`) PostgreSQL.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use keel_app::directory::{OrganizationInput, ProjectInput};
use keel_app::users::NewUser;
use keel_app::{App, SecurityConfig};
use keel_domain::identity::{AccountKind, Principal, Role};
use keel_store::testing::TestDb;
use keel_web::{AppState, WebConfig};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

struct Site {
    router: axum::Router,
    sm: String,
    agent: String,
    contact: String,
    project_a: String,
    project_b: String,
    _db: TestDb,
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn header(&self, h: header::HeaderName) -> String {
        self.headers.get(h).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }
}

async fn site_on(db: TestDb) -> Site {
    keel_store::migrate::run(&db.db).await.unwrap();
    let app = App::new(db.db.clone(), SecurityConfig::default());
    let sys = Principal::system();
    let mk = |email: &str, roles: Vec<Role>| NewUser {
        email: email.into(),
        display_name: email.split('@').next().unwrap().into(),
        password: Some("correct horse battery".into()),
        roles,
        ..Default::default()
    };
    let admin = app.create_user(&sys, mk("admin@keel.test", vec![Role::Administrator])).await.unwrap();
    let admin = principal(&app, &admin.id).await;
    let sm = app.create_user(&sys, mk("sm@keel.test", vec![Role::ServiceManager])).await.unwrap();
    let agent = app.create_user(&sys, mk("agent@keel.test", vec![Role::ServiceDeskAgent])).await.unwrap();
    let org_a = app
        .create_organization(&admin, OrganizationInput { name: "Acme".into(), code: "ACME".into(), ..Default::default() })
        .await
        .unwrap()
        .id;
    let org_b = app
        .create_organization(&admin, OrganizationInput { name: "Beta".into(), code: "BETA".into(), ..Default::default() })
        .await
        .unwrap()
        .id;
    let project_a = app
        .create_project(
            &admin,
            ProjectInput {
                code: "A1".into(),
                name: "A one".into(),
                organization_id: org_a.clone(),
                member_ids: vec![agent.id.clone()],
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let project_b = app
        .create_project(&admin, ProjectInput { code: "B1".into(), name: "B one".into(), organization_id: org_b, ..Default::default() })
        .await
        .unwrap()
        .id;
    let contact = app
        .create_user(&admin, NewUser { kind: AccountKind::Contact, organization_id: Some(org_a), ..mk("contact@acme.test", vec![]) })
        .await
        .unwrap();
    let token = |id: String| {
        let app = app.clone();
        async move {
            let p = principal(&app, &id).await;
            app.create_api_token(&p, "t", None).await.unwrap().0
        }
    };
    let (sm, agent, contact) = (token(sm.id).await, token(agent.id).await, token(contact.id).await);
    let state = AppState { app: app.clone(), cfg: Arc::new(WebConfig::default()), metrics: None };
    Site { router: keel_web::router(state), sm, agent, contact, project_a, project_b, _db: db }
}

async fn principal(app: &App, id: &str) -> Principal {
    let mut c = app.read().await.unwrap();
    let u = keel_store::accounts::get_user(&mut c, id).await.unwrap().unwrap();
    keel_app::auth::principal_of(&mut c, &u).await.unwrap()
}

impl Site {
    async fn send(&self, mut req: Request<Body>) -> Resp {
        req.extensions_mut().insert(ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 40000))));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Resp { status, headers, body }
    }

    async fn api(&self, method: Method, path: &str, token: &str, body: Option<Value>, extra: &[(&str, &str)]) -> Resp {
        let mut b = Request::builder().method(method).uri(path).header(header::AUTHORIZATION, format!("Bearer {token}"));
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some(v) => b.header(header::CONTENT_TYPE, "application/json").body(Body::from(v.to_string())).unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    async fn login(&self, email: &str) -> String {
        let r = self.send(Request::get("/login").body(Body::empty()).unwrap()).await;
        let pre = r.header(header::SET_COOKIE).split(';').next().unwrap().to_string();
        let csrf = field_value(&r.text(), "_csrf");
        let form = format!("_csrf={csrf}&email={}&password=correct%20horse%20battery&next=/", email.replace('@', "%40"));
        let r = self
            .send(
                Request::post("/login")
                    .header(header::COOKIE, &pre)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(form))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "login failed: {}", r.text());
        r.header(header::SET_COOKIE).split(';').next().unwrap().to_string()
    }

    async fn page(&self, cookie: &str, path: &str) -> Resp {
        self.send(Request::get(path).header(header::COOKIE, cookie).body(Body::empty()).unwrap()).await
    }

    async fn post_form(&self, cookie: &str, path: &str, form: &str) -> Resp {
        let csrf = field_value(&self.page(cookie, "/").await.text(), "_csrf");
        self.send(
            Request::post(path)
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("_csrf={csrf}&{form}")))
                .unwrap(),
        )
        .await
    }
}

fn field_value(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let i = html.find(&needle).unwrap_or_else(|| panic!("no {name} in page")) + needle.len();
    html[i..i + html[i..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn the_service_level_api_works_end_to_end() {
    for db in TestDb::all().await {
        let s = site_on(db).await;
        // a mainland China calendar in one call
        let r = s.api(Method::POST, "/api/v1/calendars/china-mainland", &s.sm, Some(json!({"name": "中国大陆"})), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let cal = r.json();
        let cal_id = cal["id"].as_str().unwrap().to_string();
        assert!(cal["days"].as_array().unwrap().iter().any(|d| d["date"] == "2026-02-14" && d["kind"] == "workday"));
        assert_eq!(
            s.api(Method::POST, "/api/v1/calendars/china-mainland", &s.agent, Some(json!({"name": "x"})), &[]).await.status,
            StatusCode::FORBIDDEN
        );
        // a malformed line is named; nothing changes
        let path = format!("/api/v1/calendars/{cal_id}/years/2027");
        let etag = format!("\"{}\"", cal["version"]);
        let bad = json!({"format": "csv", "content": "2027-01-01,holiday,元旦\n2027-01-02,someday\n"});
        let r = s.api(Method::PUT, &path, &s.sm, Some(bad), &[("if-match", &etag)]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        assert_eq!(r.json()["details"][0]["field"], "line 2");
        let good = json!({"format": "csv", "content": "2027-01-01,holiday,元旦\n"});
        assert_eq!(s.api(Method::PUT, &path, &s.sm, Some(good.clone()), &[]).await.status, StatusCode::PRECONDITION_REQUIRED);
        let r = s.api(Method::PUT, &path, &s.sm, Some(good), &[("if-match", &etag)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = s.api(Method::GET, &format!("{path}?format=ics"), &s.agent, None, &[]).await;
        assert!(r.header(header::CONTENT_TYPE).starts_with("text/calendar") && r.text().contains("20270101"), "{}", r.text());
        // catalogue and SLA
        let r = s
            .api(Method::POST, "/api/v1/services", &s.sm, Some(json!({"code": "desk", "name": "Service desk", "service_line": "operations_maintenance", "calendar_id": cal_id, "status": "live"})), &[])
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let service = r.json()["id"].as_str().unwrap().to_string();
        let body = |project: &str, name: &str| {
            json!({"name": name, "project_id": project, "calendar_id": cal_id, "service_ids": [service],
                "terms": {"glossary": "SLA = 服务级别协议"}, "workload_min": 1, "workload_max": 100})
        };
        let r = s.api(Method::POST, "/api/v1/slas", &s.sm, Some(body(&s.project_a, "Acme SLA")), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let sla = r.json();
        let sla_id = sla["id"].as_str().unwrap().to_string();
        assert_eq!(sla["actions"], json!(["approve"]));
        let b = s.api(Method::POST, "/api/v1/slas", &s.sm, Some(body(&s.project_b, "Beta SLA")), &[]).await.json();
        let lifecycle = format!("/api/v1/slas/{sla_id}/lifecycle");
        let r = s.api(Method::POST, &lifecycle, &s.agent, Some(json!({"action": "approve"})), &[("if-match", "\"1\"")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = s.api(Method::POST, &lifecycle, &s.sm, Some(json!({"action": "activate"})), &[("if-match", "\"1\"")]).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_transition")));
        let r = s.api(Method::POST, &lifecycle, &s.sm, Some(json!({"action": "approve"})), &[("if-match", "\"1\"")]).await;
        assert_eq!(r.json()["status"], "approved", "{}", r.text());
        // clock preview: P1 created Fri 2026-02-13 17:00 Shanghai, resolution due on the make-up Saturday 12:00
        let r = s
            .api(
                Method::POST,
                &format!("/api/v1/slas/{sla_id}/clock-preview"),
                &s.contact,
                Some(json!({"priority": "P1", "created_at": "2026-02-13T09:00:00Z", "now": "2026-02-13T09:00:00Z"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["resolution"]["due_at"], "2026-02-14T04:00:00Z");
        // tenancy
        assert_eq!(
            s.api(Method::GET, &format!("/api/v1/slas/{}", b["id"].as_str().unwrap()), &s.contact, None, &[]).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(s.api(Method::GET, "/api/v1/slas", &s.contact, None, &[]).await.json()["items"].as_array().unwrap().len(), 1);
        assert_eq!(s.api(Method::GET, "/api/v1/services", &s.contact, None, &[]).await.json()["items"].as_array().unwrap().len(), 1);
        assert_eq!(s.api(Method::GET, "/api/v1/olas", &s.contact, None, &[]).await.status, StatusCode::FORBIDDEN);
        // underpinning contract linked to the SLA
        let r = s
            .api(
                Method::POST,
                "/api/v1/underpinning-contracts",
                &s.sm,
                Some(json!({"name": "Carrier", "supplier_name": "China Telecom", "sla_ids": [sla_id]})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let h = s.api(Method::GET, &format!("/api/v1/history/sla/{sla_id}"), &s.agent, None, &[]).await;
        assert_eq!(h.json().as_array().unwrap().len(), 2, "{}", h.text());
        // documented
        let doc = s.send(Request::get("/api/openapi.json").body(Body::empty()).unwrap()).await.json();
        for p in [
            "/api/v1/calendars",
            "/api/v1/calendars/{id}/years/{year}",
            "/api/v1/services",
            "/api/v1/services/{id}/versions",
            "/api/v1/slas",
            "/api/v1/slas/{id}/lifecycle",
            "/api/v1/slas/{id}/clock-preview",
            "/api/v1/olas",
            "/api/v1/underpinning-contracts",
        ] {
            assert!(doc["paths"][p].is_object(), "{p} not documented");
        }
    }
}

#[tokio::test]
async fn the_service_delivery_pages_render_and_keep_typed_values() {
    let s = site_on(TestDb::sqlite().await).await;
    for p in ["/calendars", "/calendars/help", "/catalogue", "/slas", "/slas/new", "/olas", "/contracts"] {
        let r = s.send(Request::get(p).body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{p}");
        assert!(r.header(header::LOCATION).starts_with("/login"), "{p}");
    }
    let sm = s.login("sm@keel.test").await;
    let r = s.post_form(&sm, "/calendars", "preset=china_mainland&name=%E4%B8%AD%E5%9B%BD").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let cal = r.header(header::LOCATION).split('?').next().unwrap().to_string();
    let cal_id = cal.trim_start_matches("/calendars/").to_string();
    let r = s.post_form(&sm, "/catalogue", "code=DESK&name=Desk&service_line=training&status=live").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let svc = r.header(header::LOCATION).split('?').next().unwrap().to_string();
    // an SLA form with a bad target keeps what was typed and says where the problem is
    let form = format!("name=Acme+SLA&project_id={}&calendar_id={cal_id}&p1_fr=abc&glossary=%E6%9C%AF%E8%AF%AD", s.project_a);
    let r = s.post_form(&sm, "/slas", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("data-field=\"p1_fr\"") && r.text().contains("术语"), "{}", r.text());
    let form = format!(
        "name=Acme+SLA&project_id={}&calendar_id={cal_id}&service_ids={}&glossary=x",
        s.project_a,
        svc.trim_start_matches("/catalogue/")
    );
    let r = s.post_form(&sm, "/slas", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let sla = r.header(header::LOCATION).split('?').next().unwrap().to_string();
    for p in [
        "/calendars".to_string(),
        "/calendars/new".into(),
        "/calendars/help".into(),
        cal.clone(),
        format!("{cal}/import"),
        format!("{cal}/china/2026"),
        format!("{cal}/export?year=2026&format=csv"),
        "/catalogue".into(),
        "/catalogue/new".into(),
        svc.clone(),
        "/slas".into(),
        "/slas/new".into(),
        sla.clone(),
        format!("{sla}/lifecycle/approve"),
        "/olas".into(),
        "/olas/new".into(),
        "/contracts".into(),
        "/contracts/new".into(),
    ] {
        let r = s.page(&sm, &p).await;
        assert_eq!(r.status, StatusCode::OK, "{p}: {}", r.text());
    }
    let r = s.post_form(&sm, &format!("{sla}/lifecycle/approve"), "_version=1").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(s.page(&sm, &sla).await.text().contains("Approved"));
    // a malformed import line is shown with its number, the typed file kept
    let r = s.post_form(&sm, &format!("{cal}/import"), "year=2027&format=csv&content=2027-01-01%2Choliday%0A2027-99-01%2Choliday").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("Line 2") && r.text().contains("2027-99-01"), "{}", r.text());
    // Chinese terms
    let zh = s.page(&format!("{sm}; keel_lang=zh-CN"), &sla).await.text();
    for term in ["服务交付", "服务级别协议", "服务目录", "工作日历", "首次响应时间", "解决时间", "预警"] {
        assert!(zh.contains(term), "{term} missing");
    }
    // the customer's read-only catalogue
    let contact = s.login("contact@acme.test").await;
    let r = s.page(&contact, "/catalogue").await;
    assert!(r.text().contains("Desk"), "{}", r.text());
    let r = s.page(&contact, &svc).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.text().contains("data-testid=\"save\""), "a contact cannot edit the catalogue");
    assert_eq!(s.page(&contact, "/calendars").await.status, StatusCode::FORBIDDEN);
    let _ = &s.project_b;
}

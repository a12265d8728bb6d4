//! HTTP tests of the platform through the real router (in process, `oneshot`), on SQLite and,
//! when `KEEL_TEST_DATABASE_URL` is set, on PostgreSQL.

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
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

fn metrics_handle() -> metrics_exporter_prometheus::PrometheusHandle {
    static H: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    H.get_or_init(|| metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().expect("recorder")).clone()
}

struct Site {
    app: App,
    router: axum::Router,
    admin_token: String,
    admin: Principal,
    org_a: String,
    org_b: String,
    project_b: String,
    agent_token: String,
    contact_a_token: String,
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

async fn principal(app: &App, id: &str) -> Principal {
    let mut c = app.read().await.unwrap();
    let u = keel_store::accounts::get_user(&mut c, id).await.unwrap().unwrap();
    keel_app::auth::principal_of(&mut c, &u).await.unwrap()
}

/// The key stored secrets are encrypted with in these tests.
const TEST_SECRET_KEY: [u8; 32] = [0x5e; 32];

async fn site_on(db: TestDb) -> Site {
    keel_store::migrate::run(&db.db).await.unwrap();
    let files = std::env::temp_dir().join(format!("keel-http-files-{}", keel_store::new_id()));
    let app = App::new(db.db.clone(), SecurityConfig::default())
        .with_files(keel_app::desk::FileStore::new(files, 16 * 1024))
        .with_secrets(keel_app::secrets::SecretBox::new(TEST_SECRET_KEY, keel_app::secrets::KeySource::Given));
    let sys = Principal::system();
    let mk = |email: &str, roles: Vec<Role>| NewUser {
        email: email.into(),
        display_name: email.split('@').next().unwrap().into(),
        password: Some("correct horse battery".into()),
        roles,
        ..Default::default()
    };
    let admin_u = app.create_user(&sys, mk("admin@keel.test", vec![Role::Administrator])).await.unwrap();
    let admin = principal(&app, &admin_u.id).await;
    let agent_u = app.create_user(&sys, mk("agent@keel.test", vec![Role::ServiceDeskAgent])).await.unwrap();
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
    app.create_project(
        &admin,
        ProjectInput {
            code: "A1".into(),
            name: "A one".into(),
            organization_id: org_a.clone(),
            member_ids: vec![agent_u.id.clone()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let project_b = app
        .create_project(
            &admin,
            ProjectInput { code: "B1".into(), name: "B one".into(), organization_id: org_b.clone(), ..Default::default() },
        )
        .await
        .unwrap()
        .id;
    let contact = app
        .create_user(
            &admin,
            NewUser { kind: AccountKind::Contact, organization_id: Some(org_a.clone()), ..mk("contact@acme.test", vec![]) },
        )
        .await
        .unwrap();
    let agent = principal(&app, &agent_u.id).await;
    let contact = principal(&app, &contact.id).await;
    let admin_token = app.create_api_token(&admin, "t", None).await.unwrap().0;
    let agent_token = app.create_api_token(&agent, "t", None).await.unwrap().0;
    let contact_a_token = app.create_api_token(&contact, "t", None).await.unwrap().0;
    let state = AppState {
        app: app.clone(),
        cfg: Arc::new(WebConfig { max_body_bytes: 64 * 1024, ..Default::default() }),
        metrics: Some(metrics_handle()),
    };
    Site { router: keel_web::router(state), app, admin_token, admin, org_a, org_b, project_b, agent_token, contact_a_token, _db: db }
}

async fn sites() -> Vec<Site> {
    let mut v = Vec::new();
    for db in TestDb::all().await {
        v.push(site_on(db).await);
    }
    v
}

impl Site {
    async fn send(&self, req: Request<Body>) -> Resp {
        let mut req = req;
        req.extensions_mut().insert(ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 40000))));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Resp { status, headers, body }
    }

    async fn api(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>, extra: &[(&str, &str)]) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some(v) => b.header(header::CONTENT_TYPE, "application/json").body(Body::from(v.to_string())).unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    async fn raw(&self, method: Method, path: &str, token: &str, content_type: Option<&str>, body: Vec<u8>) -> Resp {
        let mut b = Request::builder().method(method).uri(path).header(header::AUTHORIZATION, format!("Bearer {token}"));
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        self.send(b.body(Body::from(body)).unwrap()).await
    }

    /// Signs in through the login form; returns the cookie header value and the CSRF token.
    async fn browser_login(&self, email: &str, password: &str) -> (String, String) {
        let r = self.send(Request::get("/login").body(Body::empty()).unwrap()).await;
        let pre = r.header(header::SET_COOKIE);
        let pre = pre.split(';').next().unwrap().to_string();
        let csrf = field_value(&r.text(), "_csrf");
        let form = format!("_csrf={}&email={}&password={}&next=/", csrf, urlenc(email), urlenc(password));
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
        let set = r.header(header::SET_COOKIE);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"), "{set}");
        let cookie = set.split(';').next().unwrap().to_string();
        let home = self.send(Request::get("/").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
        (cookie, field_value(&home.text(), "_csrf"))
    }

    async fn page(&self, cookie: &str, path: &str) -> Resp {
        self.send(Request::get(path).header(header::COOKIE, cookie).body(Body::empty()).unwrap()).await
    }

    async fn post_form(&self, cookie: &str, path: &str, form: &str) -> Resp {
        self.send(
            Request::post(path)
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form.to_string()))
                .unwrap(),
        )
        .await
    }
}

fn urlenc(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

fn field_value(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let i = html.find(&needle).unwrap_or_else(|| panic!("no {name} in page")) + needle.len();
    html[i..i + html[i..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn api_requires_authentication_with_stable_codes() {
    for s in sites().await {
        let r = s.api(Method::GET, "/api/v1/organizations", None, None, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.json()["code"], "unauthenticated");
        let r = s.api(Method::GET, "/api/v1/organizations", Some("keel_forged"), None, &[]).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")));
        let r = s.api(Method::GET, "/api/v1/nothing-here", Some(&s.admin_token), None, &[]).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    }
}

#[tokio::test]
async fn updates_need_the_current_etag_and_stale_ones_change_nothing() {
    for s in sites().await {
        let t = Some(s.admin_token.as_str());
        let r = s.api(Method::POST, "/api/v1/organizations", t, Some(json!({"name": "Gamma 伽马", "code": "gamma"})), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        assert_eq!(r.json()["code"], "GAMMA");
        assert_eq!(r.header(header::LOCATION), format!("/api/v1/organizations/{id}"));
        let path = format!("/api/v1/organizations/{id}");
        let r = s.api(Method::GET, &path, t, None, &[]).await;
        let etag = r.header(header::ETAG);
        assert_eq!(etag, "\"1\"");
        let r = s.api(Method::PATCH, &path, t, Some(json!({"name": "no etag"})), &[]).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::PRECONDITION_REQUIRED, Some("precondition_required")));
        let r = s.api(Method::PATCH, &path, t, Some(json!({"name": "Gamma Ltd"})), &[("if-match", &etag)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.header(header::ETAG), "\"2\"");
        let r = s.api(Method::PATCH, &path, t, Some(json!({"name": "lost update"})), &[("if-match", &etag)]).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::PRECONDITION_FAILED, Some("stale_version")));
        assert_eq!(s.api(Method::GET, &path, t, None, &[]).await.json()["name"], "Gamma Ltd", "{}", s._db.label);
        let h = s.api(Method::GET, &format!("/api/v1/history/organization/{id}"), t, None, &[]).await.json();
        assert_eq!(h.as_array().unwrap().len(), 2);
        assert_eq!(h[1]["changes"][0]["field"], "name");
        assert_eq!(h[1]["changes"][0]["old"], "Gamma 伽马");
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_stores_nothing() {
    for s in sites().await {
        let t = s.admin_token.as_str();
        let count = || async {
            s.api(Method::GET, "/api/v1/organizations?limit=200", Some(t), None, &[]).await.json()["items"].as_array().unwrap().len()
        };
        let before = count().await;
        let p = "/api/v1/organizations";
        let r = s.raw(Method::POST, p, t, Some("application/json"), b"{\"name\": ".to_vec()).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::BAD_REQUEST, Some("malformed_json")));
        let r = s.raw(Method::POST, p, t, Some("application/json"), b"{\"name\": 5, \"code\": \"x\"}".to_vec()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["details"][0]["field"], "name");
        let r = s.raw(Method::POST, p, t, Some("application/json"), b"{\"name\": \"n\", \"code\": \"c\", \"bogus\": 1}".to_vec()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["details"][0]["field"], "bogus");
        let r = s.raw(Method::POST, p, t, Some("text/plain"), b"name=x".to_vec()).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")));
        let r = s.raw(Method::POST, p, t, Some("application/json"), vec![b'{', 0xff, 0xfe, b'}']).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let big = format!("{{\"name\": \"{}\", \"code\": \"BIG\"}}", "x".repeat(100 * 1024));
        let r = s.raw(Method::POST, p, t, Some("application/json"), big.into_bytes()).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        let r = s.api(Method::POST, p, Some(t), Some(json!({"name": "", "code": "bad code!"})), &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<String> =
            r.json()["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap().to_string()).collect();
        assert_eq!(fields, vec!["name", "code"]);
        let r = s.api(Method::POST, p, Some(t), Some(json!({"name": "Dup", "code": "acme"})), &[]).await;
        assert_eq!((r.status, r.json()["details"][0]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("already_taken")));
        for q in ["limit=0", "limit=abc", "sort=password", "cursor=%%%"] {
            let r = s.api(Method::GET, &format!("{p}?{q}"), Some(t), None, &[]).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {}", r.text());
        }
        let r = s.api(Method::POST, p, Some(t), Some(json!({"name": "x'; DROP TABLE organizations; --", "code": "SQLI"})), &[]).await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(count().await, before + 1, "{}: only the valid (odd-looking) record was stored", s._db.label);
    }
}

#[tokio::test]
async fn cursor_pagination_walks_every_record_once() {
    for s in sites().await {
        let t = Some(s.admin_token.as_str());
        for i in 0..7 {
            s.api(Method::POST, "/api/v1/organizations", t, Some(json!({"name": format!("Page {i}"), "code": format!("P{i}")})), &[]).await;
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("/api/v1/organizations?limit=3&sort=-name&cursor={c}"),
                None => "/api/v1/organizations?limit=3&sort=-name".to_string(),
            };
            let r = s.api(Method::GET, &q, t, None, &[]).await.json();
            for it in r["items"].as_array().unwrap() {
                seen.push(it["name"].as_str().unwrap().to_string());
            }
            match r["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted);
        assert_eq!(seen.len(), 9);
    }
}

#[tokio::test]
async fn no_customer_sees_another_customers_records() {
    for s in sites().await {
        let c = Some(s.contact_a_token.as_str());
        assert_eq!(s.api(Method::GET, &format!("/api/v1/organizations/{}", s.org_a), c, None, &[]).await.status, StatusCode::OK);
        let r = s.api(Method::GET, &format!("/api/v1/organizations/{}", s.org_b), c, None, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "another tenant's record answers 404");
        assert_eq!(s.api(Method::GET, &format!("/api/v1/projects/{}", s.project_b), c, None, &[]).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            s.api(Method::GET, &format!("/api/v1/history/organization/{}", s.org_b), c, None, &[]).await.status,
            StatusCode::NOT_FOUND
        );
        let list = s.api(Method::GET, "/api/v1/organizations", c, None, &[]).await.json();
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        assert_eq!(s.api(Method::GET, "/api/v1/contacts", c, None, &[]).await.status, StatusCode::FORBIDDEN);
        assert_eq!(s.api(Method::GET, "/api/v1/audit", c, None, &[]).await.status, StatusCode::FORBIDDEN);
        // staff outside a project
        let a = Some(s.agent_token.as_str());
        assert_eq!(s.api(Method::GET, &format!("/api/v1/projects/{}", s.project_b), a, None, &[]).await.status, StatusCode::NOT_FOUND);
        let r = s
            .api(Method::PATCH, &format!("/api/v1/organizations/{}", s.org_b), a, Some(json!({"name": "x"})), &[("if-match", "\"1\"")])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = s.api(Method::POST, "/api/v1/users", a, Some(json!({"email": "x@y.z", "display_name": "x"})), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // the UI answers the same way
        let (cookie, _) = s.browser_login("contact@acme.test", "correct horse battery").await;
        assert_eq!(s.page(&cookie, &format!("/organizations/{}", s.org_b)).await.status, StatusCode::NOT_FOUND);
        let own = s.page(&cookie, &format!("/organizations/{}", s.org_a)).await;
        assert_eq!(own.status, StatusCode::OK);
        assert!(!own.text().contains("Beta"));
    }
}

#[tokio::test]
async fn state_changing_requests_need_csrf_tokens() {
    for s in sites().await {
        let (cookie, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
        let r = s.post_form(&cookie, "/organizations", "name=NoToken&code=NT").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = s.post_form(&cookie, "/organizations", "_csrf=forged&name=Forged&code=FG").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = s.post_form(&cookie, "/organizations", &format!("_csrf={csrf}&name=Real&code=RL")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        // cookie-authenticated API writes need the header
        let body = Body::from(json!({"name": "Api", "code": "API"}).to_string());
        let req = Request::post("/api/v1/organizations").header(header::COOKIE, &cookie).header(header::CONTENT_TYPE, "application/json");
        let r = s.send(req.body(body).unwrap()).await;
        assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::FORBIDDEN, Some("csrf_failed")));
        let req = Request::post("/api/v1/organizations")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-csrf-token", &csrf);
        let r = s.send(req.body(Body::from(json!({"name": "Api", "code": "API"}).to_string())).unwrap()).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let orgs = s.api(Method::GET, "/api/v1/organizations?q=forged", Some(&s.admin_token), None, &[]).await.json();
        assert!(orgs["items"].as_array().unwrap().is_empty());
        // logout ends the session server-side
        let r = s.post_form(&cookie, "/logout", &format!("_csrf={csrf}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(s.page(&cookie, "/").await.status, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn pages_escape_what_users_typed_and_keep_it_on_errors() {
    let s = site_on(TestDb::sqlite().await).await;
    let t = Some(s.admin_token.as_str());
    let r = s.api(Method::POST, "/api/v1/organizations", t, Some(json!({"name": "<script>alert(1)</script>", "code": "XSS"})), &[]).await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    let (cookie, csrf) = s.browser_login("admin@keel.test", "correct horse battery").await;
    let page = s.page(&cookie, &format!("/organizations/{id}")).await;
    assert!(
        page.text().contains("&#60;script&#62;alert(1)&#60;/script&#62;") || page.text().contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        page.text()
    );
    assert!(!page.text().contains("<script>alert(1)"));
    assert!(page.header(header::CONTENT_SECURITY_POLICY).contains("script-src 'self'"));
    assert_eq!(page.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    let list = s.page(&cookie, "/organizations").await;
    assert!(!list.text().contains("<script>alert(1)"));
    // a form with errors comes back with the typed values and the message next to the field
    let r =
        s.post_form(&cookie, "/projects", &format!("_csrf={csrf}&code=bad%20code&name=Kept%20%E5%90%8D%E7%A7%B0&organization_id=")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text();
    assert!(html.contains("value=\"Kept 名称\""), "typed name lost");
    assert!(html.contains("data-field=\"code\""));
    assert!(html.contains("data-field=\"organization_id\""));
}

#[tokio::test]
async fn every_page_asks_for_sign_in() {
    let s = site_on(TestDb::sqlite().await).await;
    for p in [
        "/",
        "/organizations",
        "/organizations/new",
        "/contacts",
        "/users",
        "/teams",
        "/projects",
        "/projects/new",
        "/profile",
        "/tokens",
        "/audit",
        "/admin/jobs",
    ] {
        let r = s.send(Request::get(p).body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{p}");
        assert!(r.header(header::LOCATION).starts_with("/login"), "{p}");
    }
    let r = s
        .send(
            Request::post("/organizations")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("name=x"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn pages_follow_the_readers_language() {
    let s = site_on(TestDb::sqlite().await).await;
    let r = s.send(Request::get("/login").header(header::ACCEPT_LANGUAGE, "zh-CN,zh;q=0.9,en;q=0.5").body(Body::empty()).unwrap()).await;
    assert!(r.text().contains("lang=\"zh-CN\"") && r.text().contains("登录 Keel"));
    let r = s
        .send(
            Request::get("/login")
                .header(header::COOKIE, "keel_lang=en")
                .header(header::ACCEPT_LANGUAGE, "zh-CN")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(r.text().contains("Sign in to Keel"));
    let (cookie, _) = s.browser_login("admin@keel.test", "correct horse battery").await;
    let zh = s.page(&format!("{cookie}; keel_lang=zh-CN"), &format!("/projects/{}", s.project_b)).await.text();
    for term in ["流程裁剪", "必选流程", "可裁剪流程", "问题管理", "服务项目"] {
        assert!(zh.contains(term), "{term} missing from the Chinese project page");
    }
    // a tailored-out process disappears from the project's working pages
    assert!(zh.contains(&format!("/cmdb?project_id={}", s.project_b)));
    s.app.tailor_project(&s.admin, &s.project_b, "configuration", false, "customer keeps its own CMDB").await.unwrap();
    let zh = s.page(&format!("{cookie}; keel_lang=zh-CN"), &format!("/projects/{}", s.project_b)).await.text();
    assert!(!zh.contains(&format!("/cmdb?project_id={}", s.project_b)), "tailored-out process still offered");
    assert!(zh.contains(&format!("/incidents?project_id={}", s.project_b)), "mandatory process missing");
    let r = s
        .send(Request::get("/lang/zh-CN").header(header::REFERER, "http://127.0.0.1:8080/setup?token=abc").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.header(header::LOCATION), "/setup?token=abc");
    // switching language on a result page keeps the query the links were rendered for
    let r = s
        .send(
            Request::get("/lang/zh-CN?back=%2Fsearch")
                .header(header::REFERER, "http://127.0.0.1:8080/search?q=printer+%E6%89%93%E5%8D%B0")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.header(header::LOCATION), "/search?q=printer+%E6%89%93%E5%8D%B0");
    // a referer from another page does not redirect there
    let r = s
        .send(
            Request::get("/lang/en?back=%2Fsearch")
                .header(header::REFERER, "http://127.0.0.1:8080/admin/users")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.header(header::LOCATION), "/search");
}

fn ftl_keys(locale: &str) -> std::collections::BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("locales").join(locale);
    let mut keys = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for line in text.lines() {
            if let Some((k, _)) = line.split_once(" = ")
                && k.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && !k.contains(' ')
            {
                assert!(keys.insert(k.to_string()), "{locale}: {k} is defined twice (fluent refuses to load the bundle)");
            }
        }
    }
    keys
}

#[test]
fn both_languages_have_every_key_and_every_used_key_exists() {
    let en = ftl_keys("en");
    let zh = ftl_keys("zh-CN");
    assert_eq!(en.difference(&zh).collect::<Vec<_>>(), Vec::<&String>::new(), "keys missing in zh-CN");
    assert_eq!(zh.difference(&en).collect::<Vec<_>>(), Vec::<&String>::new(), "keys missing in en");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut used = std::collections::BTreeSet::new();
    let mut stack = vec![root.join("src"), root.join("templates")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for marker in [".t(\"", ".t1(\""] {
                for (i, _) in text.match_indices(marker) {
                    let rest = &text[i + marker.len()..];
                    let key = &rest[..rest.find('"').unwrap()];
                    if key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') && key.contains('-') {
                        used.insert(key.to_string());
                    }
                }
            }
        }
    }
    let missing: Vec<_> = used.iter().filter(|k| !en.contains(*k)).collect();
    assert!(missing.is_empty(), "keys used but not translated: {missing:?}");
    for r in Role::ALL {
        assert!(en.contains(&format!("role-{}", r.as_str().replace('_', "-"))));
    }
    for p in keel_domain::process::Process::ALL {
        assert!(en.contains(&format!("process-{}", p.as_str().replace('_', "-"))));
    }
}

#[tokio::test]
async fn openapi_health_and_metrics_are_served() {
    let s = site_on(TestDb::sqlite().await).await;
    let doc = s.send(Request::get("/api/openapi.json").body(Body::empty()).unwrap()).await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for p in [
        "/api/v1/organizations",
        "/api/v1/organizations/{id}",
        "/api/v1/users",
        "/api/v1/contacts",
        "/api/v1/teams",
        "/api/v1/projects",
        "/api/v1/tokens",
        "/api/v1/audit",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} not documented");
    }
    assert_eq!(s.send(Request::get("/api/docs/").body(Body::empty()).unwrap()).await.status, StatusCode::OK);
    assert_eq!(s.send(Request::get("/healthz").body(Body::empty()).unwrap()).await.status, StatusCode::OK);
    assert_eq!(s.send(Request::get("/readyz").body(Body::empty()).unwrap()).await.status, StatusCode::OK);
    s.api(Method::GET, "/api/v1/me", Some(&s.admin_token), None, &[]).await;
    let m = s.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(m.text().contains("keel_http_requests_total"), "{}", m.text());
    let css = s.send(Request::get("/static/keel.css").body(Body::empty()).unwrap()).await;
    assert_eq!(css.header(header::CONTENT_TYPE), "text/css; charset=utf-8");
}

#[tokio::test]
async fn tokens_act_for_their_creator_and_die_when_revoked() {
    let s = site_on(TestDb::sqlite().await).await;
    let r = s.api(Method::POST, "/api/v1/tokens", Some(&s.agent_token), Some(json!({"name": "script", "expires_in_days": 30})), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    let id = r.json()["id"].as_str().unwrap().to_string();
    let me = s.api(Method::GET, "/api/v1/me", Some(&secret), None, &[]).await.json();
    assert_eq!(me["email"], "agent@keel.test");
    let listed = s.api(Method::GET, "/api/v1/tokens", Some(&secret), None, &[]).await.text();
    assert!(!listed.contains(&secret[5..]), "a token list never shows secrets");
    assert_eq!(
        s.api(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(&s.contact_a_token), None, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.api(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(&secret), None, &[]).await.status, StatusCode::NO_CONTENT);
    assert_eq!(s.api(Method::GET, "/api/v1/me", Some(&secret), None, &[]).await.status, StatusCode::UNAUTHORIZED);
    let _ = (&s.app, &s.admin);
}

/// Service level management pages and API (one test binary per crate).
#[path = "http/service_level.rs"]
mod service_level;

/// Service desk tenancy over HTTP.
#[path = "http/incidents.rs"]
mod incidents;

/// SLA clocks on tickets, escalation rules and the attainment report over HTTP.
#[path = "http/sla_clocks.rs"]
mod sla_clocks;

/// Notification templates, webhooks and the delivery log over HTTP.
#[path = "http/notifications.rs"]
mod notifications;

/// Problem management and the known error database over HTTP: staff only, except published articles.
#[path = "http/problems.rs"]
mod problems;

#[path = "http/desk.rs"]
mod desk;

#[path = "http/mail.rs"]
mod mail;

/// Full-text search over HTTP: API, results page, type-ahead.
#[path = "http/search.rs"]
mod search;

/// Incident import pages.
#[path = "http/import.rs"]
mod import;

#[path = "http/major_incidents.rs"]
mod major_incidents;

#[path = "http/change_admin.rs"]
mod change_admin;
#[path = "http/changes.rs"]
mod changes;
#[path = "http/cmdb_admin.rs"]
mod cmdb_admin;
#[path = "http/cmdb_import.rs"]
mod cmdb_import;
#[path = "http/incident_views.rs"]
mod incident_views;
#[path = "http/known_error_suggestions.rs"]
mod known_error_suggestions;
#[path = "http/notification_admin.rs"]
mod notification_admin;
#[path = "http/readable_history.rs"]
mod readable_history;
#[path = "http/release_forms.rs"]
mod release_forms;
#[path = "http/releases.rs"]
mod releases;
#[path = "http/search_changes.rs"]
mod search_changes;

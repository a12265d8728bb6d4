//! Keel's HTTP face for every process: the JSON API with its OpenAPI document, the bilingual
//! server-rendered pages, static assets embedded in the binary, and health and metrics.

pub mod api;
pub mod auth;
pub mod error;
pub mod i18n;
pub mod pdf;
pub mod ui;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use keel_app::App;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi;

#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Mark cookies `Secure` (when Keel is served over TLS, directly or behind a proxy).
    pub secure_cookies: bool,
    pub max_body_bytes: usize,
    pub default_time_zone: chrono_tz::Tz,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig { secure_cookies: false, max_body_bytes: 2 * 1024 * 1024, default_time_zone: chrono_tz::Asia::Shanghai }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub cfg: Arc<WebConfig>,
    pub metrics: Option<PrometheusHandle>,
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(rust_embed::Embed)]
#[folder = "$CARGO_MANIFEST_DIR/static"]
struct Static;

async fn static_file(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    match Static::get(&path) {
        Some(f) => {
            let mime = match path.rsplit('.').next() {
                Some("js") => "text/javascript; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                Some("svg") => "image/svg+xml",
                Some("png") => "image/png",
                _ => "application/octet-stream",
            };
            let etag = format!("\"{}\"", hex::encode(&f.metadata.sha256_hash()[..8]));
            ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "public, max-age=3600"), (header::ETAG, etag.as_str())], f.data)
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(s): State<AppState>) -> Response {
    let applied = keel_store::migrate::applied(&s.app.db).await.ok().and_then(|v| v.last().copied()).unwrap_or(0);
    match s.app.db.ping().await {
        Ok(()) if applied == keel_store::migrate::latest_version() => (StatusCode::OK, "ready").into_response(),
        Ok(()) => (StatusCode::SERVICE_UNAVAILABLE, "migrations pending").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response(),
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    match &s.metrics {
        Some(h) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], h.render()).into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

/// Counts requests and their latency by route for `/metrics`.
async fn track(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = req.extensions().get::<axum::extract::MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = std::time::Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("keel_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("keel_http_request_duration_seconds", "method" => method, "route" => route).record(start.elapsed().as_secs_f64());
    res
}

/// The OpenAPI document and the API router, built together from the annotated handlers.
pub fn api_router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    utoipa_axum::router::OpenApiRouter::with_openapi(api::ApiDoc::openapi())
        .merge(api::accounts::router())
        .merge(api::directory::router())
        .merge(api::incidents::router())
        .merge(api::major_incidents::router())
        .merge(api::service_level::router())
        .merge(api::trail::router())
        .merge(api::cmdb::router())
        .merge(api::sla_clocks::router())
        .merge(api::notifications::router())
        .merge(api::problems::router())
        .merge(api::releases::router())
        .merge(api::desk::router())
        .merge(api::mail::router())
        .merge(api::search::router())
        .merge(api::changes::router())
        .merge(api::incident_views::router())
        .merge(api::jobs::router())
        .split_for_parts()
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().1
}

fn ui_router() -> Router<AppState> {
    use ui::{account, admin, cmdb, desk, incidents, notifications, problems, service_level as sl, session, trail};
    Router::new()
        .route("/", get(session::home))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/setup", get(session::setup_form).post(session::setup))
        .route("/lang/{code}", get(session::switch_language))
        .route("/organizations", get(admin::organizations).post(admin::organization_create))
        .route("/organizations/new", get(admin::organization_new))
        .route("/organizations/{id}", get(admin::organization_show).post(admin::organization_update))
        .route("/contacts", get(admin::contacts).post(admin::contact_create))
        .route("/contacts/new", get(admin::contact_new))
        .route("/contacts/{id}", get(admin::user_show).post(admin::user_update))
        .route("/users", get(admin::users).post(admin::user_create))
        .route("/users/new", get(admin::user_new))
        .route("/users/{id}", get(admin::user_show).post(admin::user_update))
        .route("/users/{id}/password", get(admin::user_reset_form).post(admin::user_reset))
        .route("/teams", get(admin::teams).post(admin::team_create))
        .route("/teams/new", get(admin::team_new))
        .route("/teams/{id}", get(admin::team_show).post(admin::team_update))
        .route("/projects", get(admin::projects).post(admin::project_create))
        .route("/projects/new", get(admin::project_new))
        .route("/projects/{id}", get(admin::project_show).post(admin::project_update))
        .route("/projects/{id}/tailoring", post(admin::project_tailor))
        .route("/projects/{id}/mailboxes", get(ui::mail::mailboxes).post(ui::mail::mailbox_create))
        .route("/projects/{id}/mailboxes/new", get(ui::mail::mailbox_new))
        .route("/projects/{id}/mail", get(ui::mail::received))
        .route("/incidents", get(incidents::queue).post(incidents::create))
        .route("/incidents/new", get(incidents::new_form))
        .route("/incidents/import", get(ui::import::form).post(ui::import::post))
        .route("/incidents/import/jobs/{id}", get(ui::import::job))
        .route("/incidents/import/jobs/{id}/progress", get(ui::import::job_progress))
        .route("/incidents/{id}", get(incidents::show))
        .route("/incidents/{id}/transition", post(incidents::transition))
        .route("/incidents/{id}/comments", post(incidents::comment))
        .route("/incidents/{id}/worklog", post(incidents::worklog))
        .route("/incidents/{id}/rating", post(incidents::rating))
        .route("/incidents/{id}/communications", post(ui::major_incidents::record))
        .route("/incidents/{id}/major", post(incidents::major))
        .route("/incidents/{id}/attachments", post(desk::upload))
        .route("/attachments/{id}", get(desk::download))
        .route("/requests", get(desk::requests))
        .route("/typeahead/{kind}", get(desk::typeahead))
        .route("/admin/categories", get(desk::categories).post(desk::category_create))
        .route("/admin/categories/new", get(desk::category_new))
        .route("/admin/categories/{id}", get(desk::category_show).post(desk::category_update))
        .route("/admin/priority-matrix", get(desk::priority_matrix).post(desk::priority_matrix_update))
        .route("/requests/{id}", get(desk::request_form).post(desk::request_create))
        .route("/calendars", get(sl::calendars).post(sl::calendar_create))
        .route("/calendars/new", get(sl::calendar_new))
        .route("/calendars/help", get(sl::calendar_help))
        .route("/calendars/{id}", get(sl::calendar_show).post(sl::calendar_update))
        .route("/calendars/{id}/import", get(sl::calendar_import_form).post(sl::calendar_import))
        .route("/calendars/{id}/china/{year}", get(sl::calendar_china_form).post(sl::calendar_china))
        .route("/calendars/{id}/export", get(sl::calendar_export))
        .route("/catalogue", get(sl::catalogue).post(sl::service_create))
        .route("/catalogue/new", get(sl::service_new))
        .route("/catalogue/{id}", get(sl::service_show).post(sl::service_update))
        .route("/slas", get(sl::slas).post(sl::sla_create))
        .route("/slas/new", get(sl::sla_new))
        .route("/slas/{id}", get(sl::sla_show).post(sl::sla_update))
        .route("/slas/{id}/lifecycle/{action}", get(sl::sla_lifecycle_form).post(sl::sla_lifecycle))
        .route("/slas/{id}/escalations", get(ui::sla_clocks::escalations).post(ui::sla_clocks::escalation_create))
        .route("/slas/{id}/escalations/{rule}/delete", post(ui::sla_clocks::escalation_delete))
        .route("/reports/sla-attainment", get(ui::sla_clocks::attainment))
        .route("/olas", get(sl::olas).post(sl::ola_create))
        .route("/olas/new", get(sl::ola_new))
        .route("/olas/{id}", get(sl::ola_show).post(sl::ola_update))
        .route("/contracts", get(sl::contracts).post(sl::contract_create))
        .route("/contracts/new", get(sl::contract_new))
        .route("/contracts/{id}", get(sl::contract_show).post(sl::contract_update))
        .route("/profile", get(account::profile).post(account::profile_update))
        .route("/profile/password", get(account::password_form).post(account::password_change))
        .route("/profile/sessions", get(account::sessions_form).post(account::logout_everywhere))
        .route("/tokens", get(account::tokens).post(account::token_create))
        .route("/tokens/{id}/revoke", get(account::token_revoke_form).post(account::token_revoke))
        .route("/cmdb", get(cmdb::list).post(cmdb::create))
        .route("/cmdb/new", get(cmdb::new_form))
        .route("/cmdb/baselines", get(cmdb::baselines).post(cmdb::baseline_capture))
        .route("/cmdb/baselines/{id}", get(cmdb::baseline_show))
        .route("/cmdb/verification", get(cmdb::verification))
        .route("/cmdb/relations/{id}/delete", post(cmdb::relation_remove))
        .route("/cmdb/{id}", get(cmdb::show).post(cmdb::update))
        .route("/cmdb/{id}/transition", post(cmdb::transition))
        .route("/cmdb/{id}/verify", post(cmdb::verify))
        .route("/cmdb/{id}/relations", post(cmdb::relation_add))
        .route("/problems", get(problems::list).post(problems::create))
        .route("/problems/new", get(problems::new_form))
        .route("/problems/trend", get(problems::trend))
        .route("/problems/{id}", get(problems::show).post(problems::update))
        .route("/problems/{id}/transition", post(problems::transition))
        .route("/problems/{id}/incidents", post(problems::link_incidents))
        .route("/known-errors", get(problems::known_errors))
        .route("/known-errors/suggest", get(problems::suggest))
        .route("/known-errors/{id}", get(problems::known_error_show).post(problems::known_error_update))
        .route("/incidents/{id}/known-errors", post(problems::link_known_error))
        .route("/incidents/{id}/problems", post(problems::link_to_problem))
        .route("/portal/articles", get(problems::articles))
        .route("/portal/articles/{id}", get(problems::article))
        .route("/changes", get(ui::changes::list).post(ui::changes::create))
        .route("/changes/new", get(ui::changes::new_form))
        .route("/changes/schedule", get(ui::changes::schedule))
        .route("/changes/{id}", get(ui::changes::show))
        .route("/changes/{id}/transition", post(ui::changes::transition))
        .route("/changes/{id}/decide", post(ui::changes::decide))
        .route("/changes/{id}/risk", post(ui::changes::risk))
        .route("/changes/{id}/review", post(ui::changes::review))
        .route("/changes/{id}/tasks", post(ui::changes::add_task))
        .route("/changes/{id}/tasks/{task}/complete", post(ui::changes::complete_task))
        .route("/releases", get(ui::releases::list).post(ui::releases::create))
        .route("/releases/new", get(ui::releases::new_form))
        .route("/releases/{id}", get(ui::releases::show))
        .route("/releases/{id}/transition", post(ui::releases::transition))
        .route("/releases/{id}/stages/{stage}/sign-off", post(ui::releases::sign_off))
        .route("/releases/{id}/stages/{stage}/tick/{index}", post(ui::releases::tick))
        .route("/search", get(ui::search::page))
        .route("/search/suggest", get(ui::search::suggest))
        .route("/audit", get(trail::audit))
        .route("/audit/verify", get(trail::verify))
        .route("/admin/jobs", get(trail::jobs))
        .route("/admin/jobs/{id}/retry", get(trail::job_retry_form).post(trail::job_retry))
        .route("/admin/notifications", get(notifications::deliveries))
        .route("/admin/notifications/{id}/retry", get(notifications::retry_form).post(notifications::retry))
        .route("/admin/notifications/webhooks", get(notifications::webhooks).post(notifications::webhook_create))
        .route("/admin/notifications/webhooks/new", get(notifications::webhook_new))
        .route("/admin/notifications/webhooks/{id}", get(notifications::webhook_show).post(notifications::webhook_update))
        .route("/admin/notifications/templates", get(notifications::templates))
        .route("/admin/notifications/templates/{kind}/{lang}", get(notifications::template_show).post(notifications::template_save))
        .route("/mailboxes/{id}", get(ui::mail::mailbox_show).post(ui::mail::mailbox_update))
        .route("/projects/{id}/held-mail", get(ui::mail::held))
        .route("/held-mail/{id}", get(ui::mail::held_show).post(ui::mail::held_decide))
        .route("/projects/{id}/sender", get(ui::mail::sender_show).post(ui::mail::sender_update))
        .route("/incidents/views", post(ui::incident_views::create))
        .route("/incidents/views/{id}", post(ui::incident_views::update))
        .route("/incidents/views/{id}/delete", post(ui::incident_views::delete))
        .route("/incidents/bulk", post(incidents::bulk))
        .route("/incidents/{id}/watchers", post(ui::ticket_desk::add_watcher))
        .route("/incidents/{id}/watchers/remove", post(ui::ticket_desk::remove_watcher))
        .route("/incidents/{id}/parent", post(ui::ticket_desk::set_parent))
        .route("/incidents/{id}/merge", post(ui::ticket_desk::merge))
        .route("/incidents/{id}/links", post(ui::ticket_desk::link))
        .route("/incidents/{id}/links/{link_id}/delete", post(ui::ticket_desk::unlink))
        .route("/incidents/{id}/service", post(ui::ticket_desk::set_service))
        .route("/admin/catalogue-items", get(ui::catalogue_items::list).post(ui::catalogue_items::create))
        .route("/admin/catalogue-items/new", get(ui::catalogue_items::new))
        .route("/admin/catalogue-items/{id}", get(ui::catalogue_items::show).post(ui::catalogue_items::update))
        .route("/releases/{id}/stages/{stage}/plan", post(ui::releases::plan))
        .route("/releases/{id}/stages/{stage}/results", post(ui::releases::result))
        .route("/releases/{id}/rollback-plan", post(ui::releases::rollback_plan))
        .route("/releases/{id}/rollback", post(ui::releases::rollback))
        .route("/releases/{id}/review", post(ui::releases::review))
        .route("/changes/awaiting", get(ui::change_admin::awaiting))
        .route("/changes/freezes", get(ui::change_admin::freezes).post(ui::change_admin::freeze_create))
        .route("/changes/freezes/{id}/end", post(ui::change_admin::freeze_end))
        .route("/changes/templates", get(ui::change_admin::templates).post(ui::change_admin::template_create))
        .route("/changes/templates/{id}", get(ui::change_admin::template_show).post(ui::change_admin::template_update))
        .route("/changes/templates/{id}/{what}", post(ui::change_admin::template_active))
        .route("/changes/delegations", get(ui::change_admin::delegations).post(ui::change_admin::delegation_create))
        .route("/admin/change-control", get(ui::change_admin::control).post(ui::change_admin::control_set))
        .route("/cmdb/import", get(ui::cmdb_admin::import_form).post(ui::cmdb_admin::import_post))
        .route("/cmdb/classes", get(ui::cmdb_admin::classes).post(ui::cmdb_admin::class_create))
        .route("/cmdb/classes/new", get(ui::cmdb_admin::class_new))
        .route("/cmdb/classes/{key}", get(ui::cmdb_admin::class_show).post(ui::cmdb_admin::class_update))
        .route("/admin/jobs/schedules", get(trail::job_schedules))
        .route("/admin/jobs/schedules/{kind}", get(trail::job_schedule_show).post(trail::job_schedule_save))
        .route("/profile/notifications", get(notifications::preferences).post(notifications::preferences_save))
        .route("/admin/notifications/webhooks/{id}/delete", get(notifications::webhook_delete_form).post(notifications::webhook_delete))
        .route(
            "/admin/notifications/templates/{kind}/{lang}/reset",
            get(notifications::template_reset_form).post(notifications::template_reset),
        )
}

async fn not_found(tr: i18n::Tr, uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        api::not_found().await.into_response()
    } else {
        ui::error_page(&tr, StatusCode::NOT_FOUND, "err-not-found")
    }
}

/// The request body limit: the configured one, or the attachment limit plus room for the
/// multipart envelope on the paths that receive files.
async fn body_limit(State(s): State<AppState>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tower::{Layer, ServiceExt};
    let upload = req.method() == axum::http::Method::POST && req.uri().path().ends_with("/attachments");
    let mail = req.method() == axum::http::Method::POST && req.uri().path() == "/api/v1/mail/inbound";
    let limit = if mail {
        // A message carries several attachments, base64-encoded.
        usize::try_from(s.app.files.max_bytes).unwrap_or(usize::MAX).saturating_mul(4).saturating_add(1024 * 1024).max(s.cfg.max_body_bytes)
    } else if upload {
        usize::try_from(s.app.files.max_bytes).unwrap_or(usize::MAX).saturating_add(64 * 1024).max(s.cfg.max_body_bytes)
    } else {
        s.cfg.max_body_bytes
    };
    let inner = tower::util::MapRequest::new(next, boxed_body);
    match RequestBodyLimitLayer::new(limit).layer(inner).oneshot(req).await {
        Ok(res) => res.map(axum::body::Body::new),
        Err(never) => match never {},
    }
}

fn boxed_body<B>(r: axum::http::Request<B>) -> axum::extract::Request
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    r.map(axum::body::Body::new)
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    // Load the translations now: a broken bundle must stop the start, not the first request.
    let _ = i18n::Tr::new(i18n::Lang::Zh, chrono_tz::UTC).t("app-tagline");
    let (api, openapi) = api_router();
    let docs: Router<AppState> = Router::from(utoipa_swagger_ui::SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi));
    let pages = ui_router()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
        ));
    Router::new()
        .merge(api)
        .merge(docs)
        .merge(pages)
        .route("/static/{*path}", get(static_file))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::identify))
        .layer(axum::middleware::from_fn(track))
        .layer(axum::middleware::from_fn_with_state(state.clone(), body_limit))
        .layer(axum::middleware::from_fn(api::json_errors))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .with_state(state)
}

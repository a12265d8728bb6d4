//! Server-rendered pages for every process: one layout with navigation by process, generic
//! forms and lists, and the history panel every record page shows.

pub mod account;
pub mod admin;
pub mod catalogue_items;
pub mod change_admin;
pub mod changes;
pub mod cmdb;
pub mod cmdb_admin;
pub mod desk;
pub mod history;
pub mod import;
pub mod incident_views;
pub mod incidents;
pub mod mail;
pub mod major_incidents;
pub mod notifications;
pub mod problems;
pub mod releases;
pub mod search;
pub mod service_level;
pub mod session;
pub mod sla_clocks;
pub mod ticket_desk;
pub mod trail;

use crate::auth::{Identity, urlencode};
use crate::i18n::Tr;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use keel_app::AppError;
use keel_domain::identity::{Action, AdminArea};

pub struct NavItem {
    pub href: String,
    pub label: String,
    pub active: bool,
}

pub struct NavGroup {
    pub title: String,
    pub items: Vec<NavItem>,
}

/// What the layout needs on every page.
pub struct Ctx {
    pub tr: Tr,
    pub csrf: String,
    pub user_name: Option<String>,
    pub nav: Vec<NavGroup>,
    pub path_encoded: String,
    pub flash: Option<String>,
}

/// Flash messages travel as a whitelisted key in the query string after a redirect.
const FLASHES: &[&str] = &[
    "saved",
    "created",
    "password-changed",
    "signed-out-elsewhere",
    "token-revoked",
    "tailored",
    "setup-done",
    "job-retried",
    "problem-not-found",
];

impl Ctx {
    pub fn new(tr: &Tr, who: Option<&Identity>, path: &str, flash: Option<&str>) -> Ctx {
        let nav = who.map(|i| nav_for(tr, i, path)).unwrap_or_default();
        Ctx {
            tr: tr.clone(),
            csrf: who.map(|i| i.csrf().to_string()).unwrap_or_default(),
            user_name: who.map(|i| i.user.display_name.clone()),
            nav,
            path_encoded: urlencode(path),
            flash: flash.filter(|f| FLASHES.contains(f)).map(|f| tr.t(&format!("flash-{f}"))),
        }
    }
    pub fn anonymous(tr: &Tr, csrf: String, path: &str) -> Ctx {
        Ctx { tr: tr.clone(), csrf, user_name: None, nav: vec![], path_encoded: urlencode(path), flash: None }
    }
}

fn nav_for(tr: &Tr, who: &Identity, path: &str) -> Vec<NavGroup> {
    let p = &who.principal;
    let item = |href: &str, key: &str| NavItem {
        href: href.to_string(),
        label: tr.t(key),
        active: path == href || (href != "/" && path.starts_with(&format!("{href}/"))),
    };
    let mut groups = vec![NavGroup {
        title: tr.t("nav-group-workspace"),
        items: vec![item("/", "nav-home"), item("/changes/awaiting", "nav-change-awaiting")],
    }];
    let (queue_key, new_key) = if p.is_staff() { ("nav-incidents", "nav-incident-new") } else { ("nav-my-tickets", "nav-ticket-new") };
    let mut resolution = vec![item("/incidents", queue_key)];
    if !p.is_read_only() {
        resolution.push(NavItem { active: path == "/incidents/new", ..item("/incidents/new", new_key) });
        resolution.push(item("/requests", "nav-requests"));
    }
    if p.is_staff() && !p.is_read_only() {
        resolution.push(item("/incidents/import", "nav-incident-import"));
    }
    if let Some(queue) = resolution.first_mut() {
        queue.active =
            path == "/incidents" || (path.starts_with("/incidents/") && path != "/incidents/new" && !path.starts_with("/incidents/import"));
    }
    if p.is_staff() {
        resolution.extend([
            item("/problems", "nav-problems"),
            item("/known-errors", "nav-known-errors"),
            item("/problems/trend", "nav-trends"),
            item("/releases", "nav-releases"),
        ]);
        if let Some(problems) = resolution.iter_mut().find(|i| i.href == "/problems") {
            problems.active = path == "/problems" || (path.starts_with("/problems/") && path != "/problems/trend");
        }
    } else {
        resolution.push(item("/portal/articles", "nav-articles"));
    }
    groups.push(NavGroup { title: tr.t("nav-group-resolution"), items: resolution });
    if p.is_staff() {
        groups.push(NavGroup {
            title: tr.t("nav-group-relationship"),
            items: vec![item("/organizations", "nav-organizations"), item("/contacts", "nav-contacts")],
        });
        groups.push(NavGroup {
            title: tr.t("nav-group-delivery"),
            items: vec![
                item("/projects", "nav-projects"),
                item("/teams", "nav-teams"),
                item("/catalogue", "nav-catalogue"),
                item("/slas", "nav-slas"),
                item("/olas", "nav-olas"),
                item("/contracts", "nav-contracts"),
                item("/calendars", "nav-calendars"),
                item("/reports/sla-attainment", "nav-sla-attainment"),
            ],
        });
        let mut control =
            vec![item("/cmdb", "nav-cmdb"), item("/changes", "nav-changes"), item("/changes/schedule", "nav-change-schedule")];
        control.push(item("/cmdb/classes", "nav-ci-classes"));
        if !p.is_read_only() {
            control.push(item("/cmdb/import", "nav-cmdb-import"));
            control.push(item("/changes/delegations", "nav-change-delegations"));
        }
        if keel_app::changes::may_administer_changes(p) {
            control.push(item("/changes/freezes", "nav-change-freezes"));
            control.push(item("/changes/templates", "nav-change-templates"));
        }
        if let Some(changes) = control.iter_mut().find(|i| i.href == "/changes") {
            let own = ["/changes/schedule", "/changes/awaiting", "/changes/delegations", "/changes/freezes", "/changes/templates"];
            changes.active = path == "/changes" || (path.starts_with("/changes/") && !own.iter().any(|o| path.starts_with(o)));
        }
        if let Some(cmdb) = control.iter_mut().find(|i| i.href == "/cmdb") {
            cmdb.active =
                path == "/cmdb" || (path.starts_with("/cmdb/") && !path.starts_with("/cmdb/classes") && !path.starts_with("/cmdb/import"));
        }
        groups.push(NavGroup { title: tr.t("nav-group-control"), items: control });
        if p.is_admin() || p.has(keel_domain::identity::Role::ServiceManager) {
            groups.push(NavGroup {
                title: tr.t("nav-group-desk-setup"),
                items: vec![
                    item("/admin/categories", "nav-categories"),
                    item("/admin/priority-matrix", "nav-priority-matrix"),
                    item("/admin/catalogue-items", "nav-catalogue-items"),
                ],
            });
        }
        let mut system = Vec::new();
        if p.may_admin(AdminArea::Users, Action::Read) {
            system.push(item("/users", "nav-users"));
        }
        if p.may_admin(AdminArea::AuditTrail, Action::Read) {
            system.push(item("/audit", "nav-audit"));
        }
        if p.is_admin() || p.has(keel_domain::identity::Role::Auditor) {
            system.push(item("/admin/jobs", "nav-jobs"));
        }
        if p.is_admin() || p.has(keel_domain::identity::Role::Auditor) {
            system.push(item("/admin/notifications", "nav-notifications"));
        }
        if p.is_admin() {
            system.push(item("/admin/notifications/templates", "nav-notification-templates"));
        }
        if !p.is_read_only() && (p.is_admin() || p.has(keel_domain::identity::Role::ServiceManager)) {
            system.push(item("/admin/change-control", "nav-change-control"));
        }
        if !system.is_empty() {
            groups.push(NavGroup { title: tr.t("nav-group-management-system"), items: system });
        }
    }
    if !p.is_staff() {
        groups.push(NavGroup {
            title: tr.t("nav-group-delivery"),
            items: vec![
                item("/catalogue", "nav-catalogue"),
                item("/slas", "nav-slas"),
                item("/reports/sla-attainment", "nav-sla-attainment"),
            ],
        });
    }
    groups.push(NavGroup { title: tr.t("nav-group-account"), items: vec![item("/profile", "nav-profile"), item("/tokens", "nav-tokens")] });
    groups
}

pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One input of a generic form.
pub struct Field {
    pub name: &'static str,
    pub label: String,
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<Opt>,
    pub required: bool,
    pub help: String,
    pub autocomplete: &'static str,
    pub error: Option<String>,
    /// A select narrowed by typing: the `/typeahead/{kind}` source, what was typed, the hint.
    pub typeahead: Option<(&'static str, String, String)>,
    /// A CSS selector of other inputs the type-ahead request carries (e.g. an organisation).
    pub typeahead_include: &'static str,
}

impl Field {
    pub fn new(tr: &Tr, name: &'static str, kind: &'static str, value: impl Into<String>) -> Field {
        Field {
            name,
            label: tr.t(&format!("field-{}", name.replace('_', "-"))),
            kind,
            value: value.into(),
            options: vec![],
            required: false,
            help: String::new(),
            autocomplete: "",
            error: None,
            typeahead: None,
            typeahead_include: "",
        }
    }
    /// Puts a search box before a select that replaces its options with `/typeahead/{kind}`
    /// answers; `typed` is what the search box held (kept when the form comes back).
    pub fn typeahead(mut self, tr: &Tr, kind: &'static str, typed: String) -> Self {
        self.typeahead = Some((kind, typed, tr.t("typeahead-placeholder")));
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn help(mut self, text: String) -> Self {
        self.help = text;
        self
    }
    pub fn autocomplete(mut self, a: &'static str) -> Self {
        self.autocomplete = a;
        self
    }
    pub fn options(mut self, opts: impl IntoIterator<Item = (String, String)>, selected: &[String]) -> Self {
        self.options = opts.into_iter().map(|(value, label)| Opt { selected: selected.contains(&value), value, label }).collect();
        self
    }
}

/// Puts validation messages next to their fields; returns messages no field claimed.
pub fn attach_errors(tr: &Tr, fields: &mut [Field], err: &AppError) -> Vec<String> {
    let mut loose = Vec::new();
    match err {
        AppError::Validation(list) => {
            for fe in list {
                let msg = translate_field_error(tr, fe.code, &fe.message);
                match fields.iter_mut().find(|f| f.name == fe.field) {
                    Some(f) if f.error.is_none() => f.error = Some(msg),
                    Some(_) => {}
                    None => loose.push(msg),
                }
            }
        }
        other => loose.push(error_message(tr, other)),
    }
    loose
}

/// A field error in the reader's language, by its stable code.
pub fn translate_field_error(tr: &Tr, code: &str, fallback: &str) -> String {
    let key = format!("err-{}", code.replace('_', "-"));
    if tr.has(&key) { tr.t(&key) } else { fallback.to_string() }
}

pub fn error_message(tr: &Tr, e: &AppError) -> String {
    let key = format!("err-{}", e.code().replace('_', "-"));
    if tr.has(&key) { tr.t(&key) } else { tr.t("err-internal") }
}

pub struct Row {
    pub href: String,
    pub cells: Vec<String>,
}

/// A table shown under a record's form (e.g. an organisation's contacts).
pub struct Panel {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    pub action: Option<(String, String)>,
}

pub struct ChangeView {
    pub field: String,
    pub old: String,
    pub new: String,
}

pub struct HistoryView {
    pub when: String,
    pub who: String,
    pub action: String,
    pub changes: Vec<ChangeView>,
}

pub use history::{history_views, readable_history};

#[derive(Template)]
#[template(path = "list.html")]
pub struct ListPage {
    pub ctx: Ctx,
    pub title: String,
    pub base_href: String,
    pub q: String,
    pub new_href: Option<String>,
    pub new_label: String,
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    pub next_href: Option<String>,
}

pub struct TailoringRow {
    pub process: String,
    pub label: String,
    pub mandatory: bool,
    pub enabled: bool,
    pub decision: String,
}

#[derive(Template)]
#[template(path = "form.html")]
pub struct FormPage {
    pub ctx: Ctx,
    pub title: String,
    pub action: String,
    pub version: Option<i64>,
    pub fields: Vec<Field>,
    pub errors: Vec<String>,
    pub submit: String,
    pub editable: bool,
    pub back_href: String,
    pub panels: Vec<Panel>,
    pub tailoring: Option<Vec<TailoringRow>>,
    pub editable_tailoring: bool,
    pub show_history: bool,
    pub history: Vec<HistoryView>,
    /// Where the form's title and description are sent for matching known errors (htmx).
    pub suggest_href: Option<String>,
}

impl FormPage {
    pub fn new(ctx: Ctx, title: String, action: String, fields: Vec<Field>, back_href: &str) -> FormPage {
        let submit = ctx.tr.t("action-save");
        FormPage {
            ctx,
            title,
            action,
            version: None,
            fields,
            errors: vec![],
            submit,
            editable: true,
            back_href: back_href.to_string(),
            panels: vec![],
            tailoring: None,
            editable_tailoring: false,
            show_history: false,
            history: vec![],
            suggest_href: None,
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub ctx: Ctx,
    pub title: String,
    pub kind: &'static str,
    pub message: String,
    pub secret: Option<String>,
    pub back_href: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    tr: &'a Tr,
    title: String,
    message: String,
}

pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(s) => Html(s).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

pub fn render_status(status: StatusCode, t: &impl Template) -> Response {
    let mut r = render(t);
    if r.status() == StatusCode::OK {
        *r.status_mut() = status;
    }
    r
}

pub fn error_page(tr: &Tr, status: StatusCode, key: &str) -> Response {
    let title = tr.t(&format!("status-{}", status.as_u16()));
    render_status(status, &ErrorPage { tr, title, message: tr.t(key) })
}

/// An error from a use case shown as a page (404 for records the reader may not see).
pub fn app_error_page(tr: &Tr, e: &AppError) -> Response {
    let status = crate::error::status_of(e);
    let title = tr.t(&format!("status-{}", status.as_u16()));
    if matches!(e, AppError::Internal(d) if { tracing::error!(error = %d, "internal error"); true }) {
        return render_status(status, &ErrorPage { tr, title, message: tr.t("err-internal") });
    }
    render_status(status, &ErrorPage { tr, title, message: error_message(tr, e) })
}

/// Pages answer errors as pages.
pub struct UiError(pub Tr, pub AppError);

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        app_error_page(&self.0, &self.1)
    }
}

pub type UiResult = Result<Response, UiError>;

pub trait OrPage<T> {
    fn or_page(self, tr: &Tr) -> Result<T, UiError>;
}

impl<T> OrPage<T> for Result<T, AppError> {
    fn or_page(self, tr: &Tr) -> Result<T, UiError> {
        self.map_err(|e| UiError(tr.clone(), e))
    }
}

/// Redirect after a successful post, carrying a flash key.
pub fn see_other(href: &str, flash: &str) -> Response {
    let (path, fragment) = href.split_once('#').map(|(p, f)| (p, format!("#{f}"))).unwrap_or((href, String::new()));
    let sep = if path.contains('?') { '&' } else { '?' };
    axum::response::Redirect::to(&format!("{path}{sep}flash={flash}{fragment}")).into_response()
}

/// Common query parameters of list pages (`status` filters record lists with a lifecycle).
#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub status: String,
    pub cursor: Option<String>,
    pub flash: Option<String>,
}

pub fn next_href(base: &str, q: &str, cursor: Option<String>) -> Option<String> {
    cursor.map(|c| format!("{base}?q={}&cursor={}", urlencode(q), urlencode(&c)))
}

/// A list page with search, an optional "new" button and a next-page link.
pub fn list_page(
    ctx: Ctx,
    title: String,
    base: &str,
    q: &ListQuery,
    new: Option<(String, String)>,
    (columns, rows): (Vec<String>, Vec<Row>),
    cursor: Option<String>,
) -> Response {
    let (new_href, new_label) = new.map(|(h, l)| (Some(h), l)).unwrap_or((None, String::new()));
    render(&ListPage {
        ctx,
        title,
        base_href: base.into(),
        q: q.q.clone(),
        new_href,
        new_label,
        columns,
        rows,
        // the next page keeps the status filter as well as the search
        next_href: next_href(base, &q.q, cursor)
            .map(|h| if q.status.is_empty() { h } else { format!("{h}&status={}", urlencode(&q.status)) }),
    })
}

/// The version a form was based on (its hidden `_version` field).
pub fn expected_version(v: &Option<String>) -> Option<i64> {
    v.as_deref().and_then(|s| s.parse().ok())
}

/// The status of a page re-rendered after a failed submit (200 when there was no error).
pub fn status_for(e: &Option<AppError>) -> StatusCode {
    e.as_ref().map(crate::error::status_of).unwrap_or(StatusCode::OK)
}

/// Contacts never see staff pages (404); staff without the right are refused (403).
pub fn allow(tr: &Tr, who: &Identity, allowed: bool) -> Result<(), UiError> {
    match (who.principal.is_staff(), allowed) {
        (false, _) => Err(UiError(tr.clone(), AppError::NotFound)),
        (true, false) => Err(UiError(tr.clone(), AppError::Forbidden)),
        (true, true) => Ok(()),
    }
}

/// A posted form as name → value; a name posted more than once (a multiselect) is joined with
/// commas.
pub type Form = std::collections::HashMap<String, String>;

pub fn form_of(pairs: Vec<(String, String)>) -> Form {
    let mut f = Form::new();
    for (k, v) in pairs {
        match f.get_mut(&k) {
            Some(prev) if !prev.is_empty() => {
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                f.insert(k, v);
            }
        }
    }
    f
}

/// Field errors on one entry of a list (`ci_ids[2]`) belong to the form's one field for it.
pub fn fold_indexed_fields(e: AppError) -> AppError {
    match e {
        AppError::Validation(list) => AppError::Validation(
            list.into_iter()
                .map(|mut fe| {
                    if let Some(i) = fe.field.find('[') {
                        fe.field.truncate(i);
                    }
                    fe
                })
                .collect(),
        ),
        other => other,
    }
}

/// A form on a page with several that was refused: which one, what was typed, and why.
pub struct Failed {
    pub form: String,
    pub values: Form,
    pub error: AppError,
}

impl Failed {
    pub fn new(form: &str, values: Form, error: AppError) -> Option<Failed> {
        Some(Failed { form: form.to_string(), values, error })
    }
}

/// One form of a page with several (collapsed unless it was just refused).
pub struct SectionForm {
    pub key: String,
    pub title: String,
    pub action: String,
    pub fields: Vec<Field>,
    pub submit: String,
    pub open: bool,
    /// Messages no field claimed.
    pub errors: Vec<String>,
    /// Hidden inputs (e.g. `_version`).
    pub hidden: Vec<(&'static str, String)>,
}

impl SectionForm {
    /// Builds the form from what was typed when it was refused (else from `Form::new()`), with
    /// the refusal's messages next to their fields. Field names like `signer_ids[1]` or
    /// `attributes.ip` are matched on their first part.
    pub fn build(
        tr: &Tr,
        failed: &Option<Failed>,
        key: &str,
        (title, action, submit): (String, String, String),
        fields: impl FnOnce(&Form) -> Vec<Field>,
    ) -> SectionForm {
        let empty = Form::new();
        let mine = failed.as_ref().filter(|f| f.form == key);
        let mut fields = fields(mine.map(|f| &f.values).unwrap_or(&empty));
        let errors = match mine.map(|f| &f.error) {
            Some(AppError::Validation(list)) => {
                let e = AppError::Validation(
                    list.iter()
                        .map(|fe| {
                            let mut fe = fe.clone();
                            fe.field = fe.field.split(['[', '.']).next().unwrap_or_default().to_string();
                            fe
                        })
                        .collect(),
                );
                attach_errors(tr, &mut fields, &e)
            }
            Some(AppError::Conflict { code, field: Some(field), message }) if fields.iter().any(|x| x.name == field.as_str()) => {
                let e = AppError::Validation(vec![keel_domain::FieldError::new(field.clone(), code, message.clone())]);
                attach_errors(tr, &mut fields, &e)
            }
            Some(other) => vec![error_message(tr, other)],
            None => vec![],
        };
        SectionForm { key: key.to_string(), title, action, fields, submit, open: mine.is_some(), errors, hidden: vec![] }
    }
}

/// A button that posts to `href` from a table row (with a reason box when `reason`).
pub struct RowAction {
    pub href: String,
    pub label: String,
    pub reason: bool,
}

pub struct ActionRow {
    pub href: String,
    pub cells: Vec<String>,
    pub actions: Vec<RowAction>,
}

/// An administration page: a table whose rows may carry buttons, then forms.
#[derive(Template)]
#[template(path = "sections.html")]
pub struct SectionsPage {
    pub ctx: Ctx,
    pub title: String,
    pub intro: String,
    pub links: Vec<(String, String)>,
    pub errors: Vec<String>,
    pub columns: Vec<String>,
    pub rows: Vec<ActionRow>,
    pub forms: Vec<SectionForm>,
}

impl SectionsPage {
    pub fn new(ctx: Ctx, title: String) -> SectionsPage {
        SectionsPage { ctx, title, intro: String::new(), links: vec![], errors: vec![], columns: vec![], rows: vec![], forms: vec![] }
    }
    /// Renders with the status of a refusal (200 when none), its loose messages on top.
    pub fn show(mut self, failed: &Option<Failed>) -> Response {
        for f in &mut self.forms {
            self.errors.append(&mut f.errors);
        }
        if let Some(f) = failed.as_ref().filter(|f| !self.forms.iter().any(|s| s.key == f.form)) {
            self.errors.push(error_message(&self.ctx.tr, &f.error));
        }
        render_status(failed.as_ref().map(|f| crate::error::status_of(&f.error)).unwrap_or(StatusCode::OK), &self)
    }
}

/// The answer to a post on a page of several forms: back to `href` when it worked, else the
/// page again with the refused form open, its typed values and its errors.
pub async fn after_post<T, F, Fut>(tr: &Tr, href: &str, form: &str, values: Form, r: Result<T, AppError>, page: F) -> UiResult
where
    F: FnOnce(Option<Failed>) -> Fut,
    Fut: std::future::Future<Output = UiResult>,
{
    match r {
        Ok(_) => Ok(see_other(href, "saved")),
        Err(AppError::NotFound) => Err(UiError(tr.clone(), AppError::NotFound)),
        Err(e) => page(Failed::new(form, values, e)).await,
    }
}

/// `YYYY-MM-DDTHH:MM` (or with a space) in the reader's time zone → Unix ms; an error naming
/// `field` otherwise. Blank is `None`.
pub fn parse_local(tr: &Tr, field: &str, s: &str) -> Result<Option<i64>, keel_domain::FieldError> {
    use chrono::TimeZone;
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .or_else(|_| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| d.and_time(chrono::NaiveTime::MIN)));
    match naive.ok().and_then(|n| tr.tz.from_local_datetime(&n).earliest()) {
        Some(t) => Ok(Some(t.timestamp_millis())),
        None => Err(keel_domain::FieldError::new(field, "invalid_date", "use YYYY-MM-DD HH:MM")),
    }
}

/// Unix ms → the `datetime-local` value in the reader's time zone.
pub fn local_input(tr: &Tr, ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.with_timezone(&tr.tz).format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

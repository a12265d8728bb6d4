//! Problem management pages (REQUIREMENTS §4): the problem list and record page with its
//! analysis, actions, linked incidents and history; the known error database with search and
//! the desk's suggestion panel; the incident trend view; and the known errors published as
//! articles on the customer portal. Staff only, except the portal articles.

use super::{Ctx, Field, FormPage, HistoryView, OrPage, Panel, Row, UiResult, attach_errors, render, render_status, see_other};
use crate::AppState;
use crate::api::problems::{KNOWN_ERROR_SORTS, PROBLEM_SORTS, TrendParams, trend_query};
use crate::auth::{CsrfForm, Identity, UiUser, urlencode};
use crate::i18n::{Lang, Tr};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use keel_app::problems::{KnownErrorPatch, NewProblem, ProblemStep, SuggestInput};
use keel_app::{AppError, Principal};
use keel_domain::incident::Priority;
use keel_domain::problem::{Action, ProblemSource, RcaMethod, Status};
use keel_domain::validate::Locale;
use keel_store::incidents::TicketRecord;
use keel_store::page::{PageRequest, SortKey, SortKind, decode_cursor};
use keel_store::problems::{KnownErrorFilter, KnownErrorRecord, ProblemFilter, ProblemRecord};
use std::collections::HashMap;

type Form = HashMap<String, String>;

pub(super) fn val(f: &Form, k: &str) -> String {
    f.get(k).cloned().unwrap_or_default()
}

pub(super) fn opt(f: &Form, k: &str) -> Option<String> {
    f.get(k).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

pub(super) fn label(tr: &Tr, prefix: &str, v: &str) -> String {
    let key = format!("{prefix}-{}", v.replace('_', "-"));
    if tr.has(&key) { tr.t(&key) } else { v.to_string() }
}

fn choices<T: Copy>(tr: &Tr, prefix: &str, all: &[T], as_str: fn(T) -> &'static str) -> Vec<(String, String)> {
    all.iter().map(|v| (as_str(*v).to_string(), label(tr, prefix, as_str(*v)))).collect()
}

pub(super) fn locale_of(tr: &Tr) -> Locale {
    match tr.lang {
        Lang::Zh => Locale::ZhCn,
        Lang::En => Locale::En,
    }
}

fn languages(tr: &Tr) -> Vec<(String, String)> {
    vec![("en".into(), tr.t("problem-language-en")), ("zh-CN".into(), tr.t("problem-language-zh-CN"))]
}

fn yes_no(tr: &Tr) -> Vec<(String, String)> {
    vec![("true".into(), tr.t("problem-yes")), ("false".into(), tr.t("problem-no"))]
}

pub(super) fn split_ids(s: &str) -> Vec<String> {
    s.split([',', ' ', '\n', '\r', '\t']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Problem management pages answer contacts as if they did not exist.
pub(super) fn staff(tr: &Tr, who: &Identity) -> Result<(), super::UiError> {
    if who.principal.is_staff() { Ok(()) } else { Err(super::UiError(tr.clone(), AppError::NotFound)) }
}

const ALL_SORT: SortKey = SortKey { name: "name", column: "name", kind: SortKind::Text };
const CODE_SORT: SortKey = SortKey { name: "code", column: "code", kind: SortKind::Text };
const USER_SORT: SortKey = SortKey { name: "display_name", column: "display_name", kind: SortKind::Text };

fn all(sort: SortKey) -> PageRequest {
    PageRequest { sort, desc: false, after: None, limit: 1000 }
}

async fn team_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    let teams = state.app.list_teams(who, None, &all(ALL_SORT)).await?;
    Ok(teams.items.into_iter().filter(|t| t.active).map(|t| (t.id, t.name)).collect())
}

async fn agent_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    let f = keel_store::accounts::UserFilter { kind: Some("staff".into()), active: Some(true), ..Default::default() };
    let users = state.app.list_users(who, f, &all(USER_SORT)).await?;
    Ok(users.items.into_iter().map(|u| (u.id, format!("{} <{}>", u.display_name, u.email))).collect())
}

async fn project_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    let f = keel_store::directory::ProjectFilter { status: Some("active".into()), ..Default::default() };
    let projects = state.app.list_projects(who, &f, &all(CODE_SORT)).await?;
    Ok(projects.items.into_iter().map(|p| (p.id, format!("{} · {}", p.code, p.name))).collect())
}

pub(super) async fn service_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    if let Some(all) = state.app.choices(who).await?.services() {
        return Ok(all.to_vec());
    }
    let services = state.app.list_services(who, &Default::default(), &all(CODE_SORT)).await?;
    Ok(services.items.into_iter().map(|s| (s.id, format!("{} · {}", s.code, s.name))).collect())
}

async fn ci_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    let page = PageRequest { sort: ALL_SORT, desc: false, after: None, limit: 500 };
    let list = state.app.list_cis(who, &Default::default(), &page).await?;
    Ok(list.items.into_iter().map(|c| (c.id, c.name)).collect())
}

/// A posted form whose `ci_ids` may repeat (a multiselect): the other fields keep their last
/// value, the CI ids are joined with commas.
fn form_of(pairs: Vec<(String, String)>) -> Form {
    let mut f = Form::new();
    for (k, v) in pairs {
        if k == "ci_ids" {
            let joined = match f.get("ci_ids") {
                Some(prev) if !prev.is_empty() => format!("{prev},{v}"),
                _ => v,
            };
            f.insert(k, joined);
        } else {
            f.insert(k, v);
        }
    }
    f
}

fn status_class(s: &str) -> String {
    format!("status-{}", s.replace('_', "-"))
}

// ---------------------------------------------------------------- list

pub async fn list(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<super::ListQuery>) -> UiResult {
    staff(&tr, &who)?;
    let p = &who.principal;
    let sort = PROBLEM_SORTS[0];
    let page = PageRequest { sort, desc: true, after: q.cursor.as_deref().and_then(|c| decode_cursor(&sort, c)), limit: 50 };
    let f = ProblemFilter {
        q: Some(q.q.clone()).filter(|s| !s.trim().is_empty()),
        statuses: Some(q.status.clone()).filter(|s| !s.is_empty()).into_iter().collect(),
        ..Default::default()
    };
    let list = state.app.list_problems(p, &f, &page).await.or_page(&tr)?;
    let columns =
        ["field-number", "field-title", "field-status", "field-priority", "problem-assignee", "problem-known-error", "field-updated-at"]
            .iter()
            .map(|k| tr.t(k))
            .collect();
    let rows = list
        .items
        .iter()
        .map(|r| Row {
            href: format!("/problems/{}", r.id),
            cells: vec![
                r.number.clone(),
                r.title.clone(),
                label(&tr, "problem-status", &r.status),
                label(&tr, "incident-priority", &r.priority),
                [r.names.team_name.clone(), r.names.agent_name.clone()].into_iter().flatten().collect::<Vec<_>>().join(" · "),
                r.names.known_error_number.clone().unwrap_or_default(),
                tr.datetime(&r.updated_at),
            ],
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/problems", q.flash.as_deref());
    let new = (!p.is_read_only()).then(|| ("/problems/new".to_string(), tr.t("problem-new-title")));
    Ok(super::list_page(ctx, tr.t("problem-list-title"), "/problems", &q, new, (columns, rows), list.next_cursor))
}

// ---------------------------------------------------------------- raising a problem

async fn new_fields(state: &AppState, tr: &Tr, who: &Principal, f: &Form) -> Result<Vec<Field>, AppError> {
    Ok(vec![
        Field::new(tr, "project_id", "select", "").required().options(project_options(state, who).await?, &[val(f, "project_id")]),
        Field::new(tr, "title", "text", val(f, "title")).required(),
        Field::new(tr, "description", "textarea", val(f, "description")),
        Field::new(tr, "source", "select", "")
            .options(choices(tr, "problem-source", ProblemSource::ALL, ProblemSource::as_str), &[val(f, "source")]),
        Field::new(tr, "priority", "select", "")
            .options(choices(tr, "incident-priority", Priority::ALL, Priority::as_str), &[val(f, "priority")]),
        Field::new(tr, "incident_ids", "text", val(f, "incident_ids")).help(tr.t("problem-help-incidents")),
        Field::new(tr, "service_id", "select", "").options(service_options(state, who).await?, &[val(f, "service_id")]),
        Field::new(tr, "ci_ids", "multiselect", "").options(ci_options(state, who).await?, &split_ids(&val(f, "ci_ids"))),
        Field::new(tr, "team_id", "select", "").options(team_options(state, who).await?, &[val(f, "team_id")]),
        Field::new(tr, "agent_id", "select", "").options(agent_options(state, who).await?, &[val(f, "agent_id")]),
    ])
}

async fn new_page(state: &AppState, tr: &Tr, who: &Identity, f: &Form, err: Option<AppError>) -> UiResult {
    let mut fields = new_fields(state, tr, &who.principal, f).await.or_page(tr)?;
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let mut page =
        FormPage::new(Ctx::new(tr, Some(who), "/problems/new", None), tr.t("problem-new-title"), "/problems".into(), fields, "/problems");
    page.errors = errors;
    page.submit = tr.t("problem-action-raise");
    Ok(render_status(super::status_for(&err), &page))
}

pub async fn new_form(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(f): Query<Form>) -> UiResult {
    staff(&tr, &who)?;
    let mut f = f;
    f.retain(|k, _| ["project_id", "incident_ids", "title", "source"].contains(&k.as_str()));
    new_page(&state, &tr, &who, &f, None).await
}

pub async fn create(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    staff(&tr, &who)?;
    let f = form_of(pairs);
    let input = NewProblem {
        project_id: val(&f, "project_id"),
        title: val(&f, "title"),
        description: opt(&f, "description"),
        source: opt(&f, "source"),
        priority: opt(&f, "priority"),
        service_id: opt(&f, "service_id"),
        ci_ids: split_ids(&val(&f, "ci_ids")),
        incident_ids: split_ids(&val(&f, "incident_ids")),
        team_id: opt(&f, "team_id"),
        agent_id: opt(&f, "agent_id"),
    };
    match state.app.create_problem(&who.principal, input).await {
        Ok(p) => Ok(see_other(&format!("/problems/{}", p.id), "created")),
        Err(e) => {
            // errors on incident_ids[i] belong to the one incident field
            let e = match e {
                AppError::Validation(list) => AppError::Validation(
                    list.into_iter()
                        .map(|mut fe| {
                            if fe.field.starts_with("incident_ids[") {
                                fe.field = "incident_ids".into();
                            }
                            fe
                        })
                        .collect(),
                ),
                other => other,
            };
            new_page(&state, &tr, &who, &f, Some(e)).await
        }
    }
}

// ---------------------------------------------------------------- the problem page

pub struct Detail {
    pub label: String,
    pub value: String,
}

pub struct ActionForm {
    pub action: String,
    pub label: String,
    pub fields: Vec<Field>,
    pub open: bool,
    pub danger: bool,
}

pub struct LinkedView {
    pub href: String,
    pub number: String,
    pub title: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "problems/problem.html")]
pub struct ProblemPage {
    pub ctx: Ctx,
    pub title: String,
    pub number: String,
    pub heading: String,
    pub id: String,
    pub version: i64,
    pub status: String,
    pub status_class: String,
    pub priority: String,
    pub description: String,
    pub details: Vec<Detail>,
    pub analysis: Vec<Detail>,
    pub known_error: Option<(String, String, String)>,
    pub errors: Vec<String>,
    pub actions: Vec<ActionForm>,
    pub incidents: Vec<LinkedView>,
    pub link_form: Option<Vec<Field>>,
    pub edit_form: Option<(bool, Vec<Field>)>,
    pub history: Vec<HistoryView>,
}

struct Failed {
    form: String,
    values: Form,
    error: AppError,
}

fn action_fields(tr: &Tr, a: Action, f: &Form, p: &ProblemRecord, teams: &[(String, String)], agents: &[(String, String)]) -> Vec<Field> {
    let or = |k: &str, current: &Option<String>| if f.contains_key(k) { val(f, k) } else { current.clone().unwrap_or_default() };
    match a {
        Action::Investigate | Action::Reassign => vec![
            Field::new(tr, "team_id", "select", "").options(teams.to_vec(), &[or("team_id", &p.team_id)]),
            Field::new(tr, "agent_id", "select", "").options(agents.to_vec(), &[or("agent_id", &p.agent_id)]),
        ],
        Action::RecordRca => vec![
            Field::new(tr, "rca_method", "select", "")
                .required()
                .options(choices(tr, "problem-rca", RcaMethod::ALL, RcaMethod::as_str), &[or("rca_method", &p.rca_method)]),
            Field::new(tr, "findings", "textarea", or("findings", &p.rca_findings)).required(),
            Field::new(tr, "root_cause", "textarea", or("root_cause", &p.root_cause)).help(tr.t("problem-help-root-cause")),
        ],
        Action::RecordWorkaround => vec![Field::new(tr, "workaround", "textarea", or("workaround", &p.workaround)).required()],
        Action::DeclareKnownError => {
            let lang = if f.contains_key("language") { val(f, "language") } else { locale_of(tr).as_str().to_string() };
            vec![
                Field::new(tr, "language", "select", "").required().options(languages(tr), &[lang]),
                Field::new(tr, "title", "text", if f.contains_key("title") { val(f, "title") } else { p.title.clone() }).required(),
                Field::new(tr, "symptoms", "textarea", val(f, "symptoms")).required(),
                Field::new(tr, "translation_title", "text", val(f, "translation_title")).help(tr.t("problem-help-translation")),
                Field::new(tr, "translation_symptoms", "textarea", val(f, "translation_symptoms")),
                Field::new(tr, "translation_workaround", "textarea", val(f, "translation_workaround")),
                Field::new(tr, "publish_to_portal", "select", "")
                    .required()
                    .options(yes_no(tr), &[opt(f, "publish_to_portal").unwrap_or("false".into())]),
            ]
        }
        Action::SetPublication => {
            vec![
                Field::new(tr, "publish_to_portal", "select", "")
                    .required()
                    .options(yes_no(tr), &[opt(f, "publish_to_portal").unwrap_or("true".into())]),
            ]
        }
        Action::Resolve => vec![Field::new(tr, "resolution_notes", "textarea", val(f, "resolution_notes")).required()],
        Action::Reopen | Action::Cancel => vec![Field::new(tr, "reason", "text", val(f, "reason")).required()],
        Action::Close => vec![],
    }
}

async fn problem_page(state: &AppState, tr: &Tr, who: &Identity, id: &str, failed: Option<Failed>, flash: Option<&str>) -> UiResult {
    staff(tr, who)?;
    let pr = &who.principal;
    let p = state.app.get_problem(pr, id).await.or_page(tr)?;
    let empty = Form::new();
    let typed = |name: &str| failed.as_ref().filter(|fl| fl.form == name).map(|fl| &fl.values).unwrap_or(&empty);
    let mut errors = Vec::new();
    let mut details = vec![
        Detail { label: tr.t("field-project-id"), value: p.names.project_code.clone() },
        Detail { label: tr.t("field-organization-id"), value: p.names.organization_name.clone() },
        Detail { label: tr.t("field-source"), value: label(tr, "problem-source", &p.source) },
        Detail { label: tr.t("field-service-id"), value: p.names.service_name.clone().unwrap_or_default() },
        Detail { label: tr.t("field-team-id"), value: p.names.team_name.clone().unwrap_or_default() },
        Detail { label: tr.t("field-agent-id"), value: p.names.agent_name.clone().unwrap_or_default() },
        Detail { label: tr.t("field-created-at"), value: tr.datetime(&p.created_at) },
        Detail { label: tr.t("field-updated-at"), value: tr.datetime(&p.updated_at) },
    ];
    let cis = ci_options(state, pr).await.or_page(tr)?;
    if !p.ci_ids.is_empty() {
        let names: Vec<String> =
            p.ci_ids.iter().map(|id| cis.iter().find(|(c, _)| c == id).map_or_else(|| id.clone(), |(_, n)| n.clone())).collect();
        details.push(Detail { label: tr.t("field-ci-ids"), value: names.join(", ") });
    }
    if let Some(k) = &p.closure_kind {
        let reason = p.closure_reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default();
        details.push(Detail { label: tr.t("field-closure-kind"), value: format!("{}{reason}", label(tr, "problem-closure", k)) });
    }
    let mut analysis = Vec::new();
    if let Some(m) = &p.rca_method {
        analysis.push(Detail { label: tr.t("field-rca-method"), value: label(tr, "problem-rca", m) });
        analysis.push(Detail { label: tr.t("field-findings"), value: p.rca_findings.clone().unwrap_or_default() });
    }
    analysis.push(Detail { label: tr.t("field-root-cause"), value: p.root_cause.clone().unwrap_or_else(|| tr.t("problem-unknown")) });
    analysis.push(Detail { label: tr.t("field-workaround"), value: p.workaround.clone().unwrap_or_else(|| tr.t("problem-none")) });
    if let Some(n) = &p.resolution_notes {
        analysis.push(Detail { label: tr.t("field-resolution-notes"), value: n.clone() });
    }
    let ke = state.app.problem_known_error(pr, &p.id).await.or_page(tr)?;
    let known_error = ke.map(|k| {
        let published = tr.t(if k.publish_to_portal { "problem-published" } else { "problem-not-published" });
        (format!("/known-errors/{}", k.id), format!("{} {}", k.number, k.title), published)
    });
    let (teams, agents) = (team_options(state, pr).await.or_page(tr)?, agent_options(state, pr).await.or_page(tr)?);
    let mut actions = Vec::new();
    for a in state.app.problem_actions(pr, &p).await.or_page(tr)? {
        let name = a.as_str().to_string();
        let mut fields = action_fields(tr, a, typed(&name), &p, &teams, &agents);
        let open = matches!(&failed, Some(fl) if fl.form == name);
        if open && let Some(fl) = &failed {
            errors.extend(attach_errors(tr, &mut fields, &fl.error));
        }
        actions.push(ActionForm {
            label: tr.t(&format!("problem-action-{}", name.replace('_', "-"))),
            danger: a == Action::Cancel,
            action: name,
            fields,
            open,
        });
    }
    let incidents = state
        .app
        .problem_incidents(pr, &p.id)
        .await
        .or_page(tr)?
        .into_iter()
        .map(|t| LinkedView {
            href: format!("/incidents/{}", t.id),
            number: t.number,
            title: t.title,
            status: label(tr, "incident-status", &t.status),
        })
        .collect();
    let link_form = (p.status != Status::Closed.as_str() && !pr.is_read_only()).then(|| {
        let mut fields = vec![
            Field::new(tr, "incident_ids", "text", val(typed("link"), "incident_ids")).required().help(tr.t("problem-help-incidents")),
        ];
        if let Some(fl) = failed.as_ref().filter(|fl| fl.form == "link") {
            let e = match &fl.error {
                AppError::Validation(list) => AppError::Validation(
                    list.iter().map(|fe| keel_domain::FieldError::new("incident_ids", fe.code, fe.message.clone())).collect(),
                ),
                _ => AppError::NotFound,
            };
            if matches!(fl.error, AppError::Validation(_)) {
                errors.extend(attach_errors(tr, &mut fields, &e));
            } else {
                errors.push(super::error_message(tr, &fl.error));
            }
        }
        fields
    });
    let open_problem = Status::parse(&p.status).is_some_and(Status::is_open) && !pr.is_read_only();
    let edit_form = if open_problem {
        let f = typed("edit");
        let or = |k: &str, current: String| if f.contains_key(k) { val(f, k) } else { current };
        let mut fields = vec![
            Field::new(tr, "title", "text", or("title", p.title.clone())).required(),
            Field::new(tr, "description", "textarea", or("description", p.description.clone().unwrap_or_default())),
            Field::new(tr, "priority", "select", "")
                .required()
                .options(choices(tr, "incident-priority", Priority::ALL, Priority::as_str), &[or("priority", p.priority.clone())]),
            Field::new(tr, "service_id", "select", "")
                .options(service_options(state, pr).await.or_page(tr)?, &[or("service_id", p.service_id.clone().unwrap_or_default())]),
            Field::new(tr, "ci_ids", "multiselect", "").options(cis.clone(), &split_ids(&or("ci_ids", p.ci_ids.join(",")))),
        ];
        let open = matches!(&failed, Some(fl) if fl.form == "edit");
        if open && let Some(fl) = &failed {
            errors.extend(attach_errors(tr, &mut fields, &fl.error));
        }
        Some((open, fields))
    } else {
        None
    };
    if let Some(fl) = &failed
        && errors.is_empty()
    {
        errors.push(super::error_message(tr, &fl.error));
    }
    let history = super::readable_history(&state.app, tr, &who.principal, &state.app.problem_history(pr, &p.id).await.or_page(tr)?).await?;
    let status = failed.as_ref().map(|f| crate::error::status_of(&f.error)).unwrap_or(StatusCode::OK);
    let page = ProblemPage {
        ctx: Ctx::new(tr, Some(who), "/problems", flash),
        title: format!("{} {}", p.number, p.title),
        number: p.number.clone(),
        heading: p.title.clone(),
        id: p.id.clone(),
        version: p.version,
        status: label(tr, "problem-status", &p.status),
        status_class: status_class(&p.status),
        priority: label(tr, "incident-priority", &p.priority),
        description: p.description.clone().unwrap_or_default(),
        details,
        analysis,
        known_error,
        errors,
        actions,
        incidents,
        link_form,
        edit_form,
        history,
    };
    Ok(render_status(status, &page))
}

#[derive(serde::Deserialize, Default)]
pub struct FlashQuery {
    flash: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<FlashQuery>,
) -> UiResult {
    problem_page(&state, &tr, &who, &id, None, q.flash.as_deref()).await
}

async fn after_post(state: &AppState, tr: &Tr, who: &Identity, id: &str, form: &str, f: Form, r: Result<(), AppError>) -> UiResult {
    match r {
        Ok(()) => Ok(see_other(&format!("/problems/{id}"), "saved")),
        Err(AppError::NotFound) => Err(super::UiError(tr.clone(), AppError::NotFound)),
        Err(error) => problem_page(state, tr, who, id, Some(Failed { form: form.to_string(), values: f, error }), None).await,
    }
}

pub async fn transition(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    staff(&tr, &who)?;
    let step = ProblemStep {
        action: val(&f, "action"),
        team_id: opt(&f, "team_id"),
        agent_id: opt(&f, "agent_id"),
        rca_method: opt(&f, "rca_method"),
        findings: opt(&f, "findings"),
        root_cause: opt(&f, "root_cause"),
        workaround: opt(&f, "workaround"),
        language: opt(&f, "language"),
        title: opt(&f, "title"),
        symptoms: opt(&f, "symptoms"),
        translation_title: opt(&f, "translation_title"),
        translation_symptoms: opt(&f, "translation_symptoms"),
        translation_workaround: opt(&f, "translation_workaround"),
        publish_to_portal: opt(&f, "publish_to_portal").map(|v| v == "true"),
        resolution_notes: opt(&f, "resolution_notes"),
        fixing_change_id: None,
        reason: opt(&f, "reason"),
    };
    let version = f.get("_version").and_then(|v| v.parse().ok());
    let r = state.app.transition_problem(&who.principal, &id, step, version).await.map(|_| ());
    let form = val(&f, "action");
    after_post(&state, &tr, &who, &id, &form, f, r).await
}

pub async fn update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    staff(&tr, &who)?;
    let f = form_of(pairs);
    let patch = keel_app::problems::ProblemPatch {
        title: Some(val(&f, "title")),
        description: Some(val(&f, "description")),
        priority: Some(val(&f, "priority")),
        service_id: Some(val(&f, "service_id")),
        ci_ids: Some(split_ids(&val(&f, "ci_ids"))),
    };
    let version = f.get("_version").and_then(|v| v.parse().ok());
    let r = state.app.update_problem(&who.principal, &id, patch, version).await.map(|_| ());
    after_post(&state, &tr, &who, &id, "edit", f, r).await
}

pub async fn link_incidents(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    staff(&tr, &who)?;
    let r = state.app.link_incidents(&who.principal, &id, &split_ids(&val(&f, "incident_ids"))).await.map(|_| ());
    after_post(&state, &tr, &who, &id, "link", f, r).await
}

// ---------------------------------------------------------------- trend

pub struct TrendRowView {
    pub label: String,
    /// The title offered for a problem raised from the row.
    pub title: String,
    pub counts: Vec<i64>,
    pub total: i64,
    pub incident_ids: String,
}

#[derive(Template)]
#[template(path = "problems/trend.html")]
pub struct TrendPage {
    pub ctx: Ctx,
    pub title: String,
    pub filters: Vec<Field>,
    pub errors: Vec<String>,
    pub buckets: Vec<String>,
    pub rows: Vec<TrendRowView>,
    pub project_id: String,
}

#[derive(serde::Deserialize, Default)]
pub struct TrendForm {
    #[serde(default)]
    dimension: String,
    #[serde(default)]
    bucket: String,
    #[serde(default)]
    periods: String,
    #[serde(default)]
    project_id: String,
}

pub async fn trend(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<TrendForm>) -> UiResult {
    staff(&tr, &who)?;
    let p = &who.principal;
    let dims = ["category", "service", "ci"].iter().map(|d| (d.to_string(), tr.t(&format!("problem-trend-by-{d}")))).collect::<Vec<_>>();
    let buckets = ["week", "month"].iter().map(|b| (b.to_string(), tr.t(&format!("problem-trend-{b}")))).collect::<Vec<_>>();
    let mut filters = vec![
        Field::new(&tr, "dimension", "select", "")
            .required()
            .options(dims, &[if q.dimension.is_empty() { "category".into() } else { q.dimension.clone() }]),
        Field::new(&tr, "bucket", "select", "")
            .required()
            .options(buckets, &[if q.bucket.is_empty() { "week".into() } else { q.bucket.clone() }]),
        Field::new(&tr, "periods", "number", if q.periods.is_empty() { "12".to_string() } else { q.periods.clone() }),
        Field::new(&tr, "project_id", "select", "")
            .options(project_options(&state, p).await.or_page(&tr)?, std::slice::from_ref(&q.project_id)),
    ];
    let params = TrendParams {
        dimension: Some(q.dimension.clone()).filter(|s| !s.is_empty()),
        bucket: Some(q.bucket.clone()).filter(|s| !s.is_empty()),
        periods: if q.periods.trim().is_empty() { None } else { Some(q.periods.trim().parse().unwrap_or(0)) },
        project_id: Some(q.project_id.clone()),
    };
    let mut errors = Vec::new();
    let (buckets, rows) = match trend_query(params) {
        Err(e) => {
            let field = e.details[0]["field"].as_str().unwrap_or("periods").to_string();
            errors = attach_errors(&tr, &mut filters, &AppError::field(&field, "invalid_choice", e.message.clone()));
            (vec![], vec![])
        }
        Ok(query) => {
            let t = state.app.incident_trend(p, &query).await.or_page(&tr)?;
            let month = matches!(query.bucket, keel_app::problems::TrendBucket::Month);
            let heads = t
                .buckets
                .iter()
                .map(|b| {
                    let d = chrono::DateTime::from_timestamp_millis(*b).unwrap_or_default();
                    if month { d.format("%Y-%m").to_string() } else { d.format("%m-%d").to_string() }
                })
                .collect();
            let rows = t
                .rows
                .into_iter()
                .map(|r| TrendRowView {
                    title: r.label.clone().unwrap_or_default(),
                    label: r.label.unwrap_or_else(|| tr.t("problem-trend-none")),
                    counts: r.counts,
                    total: r.total,
                    incident_ids: r.incident_ids.join(","),
                })
                .collect();
            (heads, rows)
        }
    };
    let page = TrendPage {
        ctx: Ctx::new(&tr, Some(&who), "/problems/trend", None),
        title: tr.t("problem-trend-title"),
        filters,
        errors,
        buckets,
        rows,
        project_id: q.project_id.clone(),
    };
    Ok(render(&page))
}

// ---------------------------------------------------------------- known error database

pub async fn known_errors(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<super::ListQuery>) -> UiResult {
    staff(&tr, &who)?;
    let p = &who.principal;
    let (items, cursor) = if q.q.trim().is_empty() {
        let sort = KNOWN_ERROR_SORTS[0];
        let page = PageRequest { sort, desc: true, after: q.cursor.as_deref().and_then(|c| decode_cursor(&sort, c)), limit: 50 };
        let r = state.app.list_known_errors(p, &KnownErrorFilter::default(), &page).await.or_page(&tr)?;
        (r.items, r.next_cursor)
    } else {
        (state.app.search_known_errors(p, &q.q, 50).await.or_page(&tr)?, None)
    };
    let columns =
        ["field-number", "field-title", "problem-problem", "field-status", "field-publish-to-portal"].iter().map(|k| tr.t(k)).collect();
    let rows = items
        .iter()
        .map(|k| Row {
            href: format!("/known-errors/{}", k.id),
            cells: vec![
                k.number.clone(),
                ke_title(k, locale_of(&tr)),
                k.problem.number.clone(),
                label(&tr, "problem-status", &k.problem.status),
                tr.t(if k.publish_to_portal { "problem-yes" } else { "problem-no" }),
            ],
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/known-errors", q.flash.as_deref());
    Ok(super::list_page(ctx, tr.t("problem-kedb-title"), "/known-errors", &q, None, (columns, rows), cursor))
}

/// The title in the reader's language where translated.
fn ke_title(k: &KnownErrorRecord, lang: Locale) -> String {
    keel_app::problems::article_of(k, lang).title
}

async fn known_error_page(
    state: &AppState,
    tr: &Tr,
    who: &Identity,
    id: &str,
    f: Option<&Form>,
    err: Option<AppError>,
    flash: Option<&str>,
) -> UiResult {
    staff(tr, who)?;
    let p = &who.principal;
    let k = state.app.get_known_error(p, id).await.or_page(tr)?;
    let pick = |name: &str, current: &Option<String>| match f {
        Some(f) => val(f, name),
        None => current.clone().unwrap_or_default(),
    };
    let mut fields = vec![
        Field::new(tr, "title", "text", pick("title", &Some(k.title.clone()))).required(),
        Field::new(tr, "symptoms", "textarea", pick("symptoms", &Some(k.symptoms.clone()))).required(),
        Field::new(tr, "translation_title", "text", pick("translation_title", &k.translation_title)).help(tr.t("problem-help-translation")),
        Field::new(tr, "translation_symptoms", "textarea", pick("translation_symptoms", &k.translation_symptoms)),
        Field::new(tr, "translation_workaround", "textarea", pick("translation_workaround", &k.translation_workaround)),
    ];
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let cells = |a: &str, b: String| Row { href: String::new(), cells: vec![tr.t(a), b] };
    let panel = Panel {
        title: tr.t("problem-known-error"),
        columns: vec![String::new(), String::new()],
        rows: vec![
            Row {
                href: format!("/problems/{}", k.problem_id),
                cells: vec![k.problem.number.clone(), label(tr, "problem-status", &k.problem.status)],
            },
            cells("field-language", label(tr, "problem-language", &k.language)),
            cells("field-root-cause", k.problem.root_cause.clone().unwrap_or_else(|| tr.t("problem-unknown"))),
            cells("field-workaround", k.problem.workaround.clone().unwrap_or_else(|| tr.t("problem-none"))),
            cells("field-publish-to-portal", tr.t(if k.publish_to_portal { "problem-published" } else { "problem-not-published" })),
        ],
        action: None,
    };
    let history = state.app.history("known_error", &k.id).await.or_page(tr)?;
    let mut page = FormPage::new(
        Ctx::new(tr, Some(who), "/known-errors", flash),
        format!("{} {}", k.number, k.title),
        format!("/known-errors/{}", k.id),
        fields,
        "/known-errors",
    );
    page.version = Some(k.version);
    page.errors = errors;
    page.editable = Status::parse(&k.problem.status).is_some_and(Status::is_open) && !p.is_read_only();
    page.panels = vec![panel];
    page.show_history = true;
    page.history = super::readable_history(&state.app, tr, &who.principal, &history).await?;
    Ok(render_status(super::status_for(&err), &page))
}

pub async fn known_error_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<FlashQuery>,
) -> UiResult {
    known_error_page(&state, &tr, &who, &id, None, None, q.flash.as_deref()).await
}

pub async fn known_error_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    staff(&tr, &who)?;
    let patch = KnownErrorPatch {
        title: Some(val(&f, "title")),
        symptoms: Some(val(&f, "symptoms")),
        translation_title: Some(val(&f, "translation_title")),
        translation_symptoms: Some(val(&f, "translation_symptoms")),
        translation_workaround: Some(val(&f, "translation_workaround")),
    };
    let version = f.get("_version").and_then(|v| v.parse().ok());
    match state.app.update_known_error(&who.principal, &id, patch, version).await {
        Ok(k) => Ok(see_other(&format!("/known-errors/{}", k.id), "saved")),
        Err(AppError::NotFound) => Err(super::UiError(tr, AppError::NotFound)),
        Err(e) => known_error_page(&state, &tr, &who, &id, Some(&f), Some(e), None).await,
    }
}

pub struct Suggestion {
    pub href: String,
    pub number: String,
    pub title: String,
    pub workaround: String,
    pub id: String,
    /// Why it matched, in the reader's language.
    pub reasons: Vec<String>,
}

#[derive(Template)]
#[template(path = "problems/suggestions.html")]
pub struct SuggestionsFragment {
    pub tr: Tr,
    pub items: Vec<Suggestion>,
    /// On a ticket page: the ticket to link a suggestion to, and the form's CSRF token.
    pub ticket_id: Option<String>,
    pub csrf: String,
    pub asked: bool,
}

/// The "does this match a known error?" panel: an htmx fragment for the ticket being typed
/// (`title`, `description`, `category_id` and any number of `ci_ids`). Staff get the open
/// known errors of their projects; a contact on the portal only the published articles of
/// their organisation.
pub async fn suggest(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(pairs): Query<Vec<(String, String)>>) -> UiResult {
    let p = &who.principal;
    let q = super::form_of(pairs);
    let input = SuggestInput {
        title: val(&q, "title"),
        description: val(&q, "description"),
        ci_ids: split_ids(&val(&q, "ci_ids")),
        category_id: opt(&q, "category_id"),
    };
    let found = state.app.suggest_known_errors(p, &input).await.or_page(&tr)?;
    let lang = locale_of(&tr);
    let items = found
        .iter()
        .map(|s| {
            let k = &s.known_error;
            let a = keel_app::problems::article_of(k, lang);
            let href = if p.is_staff() { format!("/known-errors/{}", k.id) } else { format!("/portal/articles/{}", k.id) };
            let reasons = s.reasons.iter().map(|r| tr.t(&format!("problem-suggest-reason-{}", r.as_str().replace('_', "-")))).collect();
            Suggestion { href, number: k.number.clone(), title: a.title, workaround: a.workaround, id: k.id.clone(), reasons }
        })
        .collect();
    let asked =
        !(input.title.trim().is_empty() && input.description.trim().is_empty() && input.ci_ids.is_empty() && input.category_id.is_none());
    let ticket_id = opt(&q, "ticket_id").filter(|_| p.is_staff() && !p.is_read_only());
    Ok(render(&SuggestionsFragment { tr: tr.clone(), items, ticket_id, csrf: who.csrf().to_string(), asked }))
}

/// Links a known error to a ticket from the ticket page's panel.
pub async fn link_known_error(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    staff(&tr, &who)?;
    match state.app.link_known_error(&who.principal, &id, &val(&f, "known_error_id")).await {
        Ok(_) => Ok(see_other(&format!("/incidents/{id}"), "saved")),
        Err(e) => Err(super::UiError(tr, e)),
    }
}

/// Links the ticket to an existing problem (by number or id) from the ticket page's panel.
pub async fn link_to_problem(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    staff(&tr, &who)?;
    let t = state.app.get_ticket(&who.principal, &id).await.or_page(&tr)?;
    match state.app.link_incidents(&who.principal, &val(&f, "problem_id"), std::slice::from_ref(&t.id)).await {
        Ok(_) => Ok(see_other(&format!("/incidents/{}", t.id), "saved")),
        Err(AppError::NotFound) => Ok(see_other(&format!("/incidents/{}", t.id), "problem-not-found")),
        Err(e) => Err(super::UiError(tr, e)),
    }
}

/// What the ticket page shows of problem management (staff only).
pub struct ProblemPanel {
    pub problems: Vec<(String, String)>,
    pub known_errors: Vec<(String, String)>,
    pub raise_href: Option<String>,
    /// Where to post `problem_id` to link the ticket to an existing problem.
    pub link_action: Option<String>,
    pub suggest_href: String,
    pub ticket_id: String,
}

pub fn ticket_panel(
    who: &Principal,
    t: &TicketRecord,
    (problems, kes): (Vec<keel_store::problems::ProblemRecord>, Vec<keel_store::problems::KnownErrorRecord>),
) -> Option<ProblemPanel> {
    if !who.is_staff() {
        return None;
    }
    let raise = (t.kind == "incident" && !who.is_read_only()).then(|| {
        format!("/problems/new?project_id={}&incident_ids={}&title={}", urlencode(&t.project_id), urlencode(&t.number), urlencode(&t.title))
    });
    Some(ProblemPanel {
        problems: problems.into_iter().map(|p| (format!("/problems/{}", p.id), format!("{} {}", p.number, p.title))).collect(),
        known_errors: kes.into_iter().map(|k| (format!("/known-errors/{}", k.id), format!("{} {}", k.number, k.title))).collect(),
        link_action: (t.kind == "incident" && !who.is_read_only()).then(|| format!("/incidents/{}/problems", t.id)),
        raise_href: raise,
        suggest_href: format!(
            "/known-errors/suggest?ticket_id={}&title={}&description={}&category_id={}",
            urlencode(&t.id),
            urlencode(&t.title),
            urlencode(&t.description.clone().unwrap_or_default().chars().take(500).collect::<String>()),
            urlencode(t.category_id.as_deref().unwrap_or_default())
        ),
        ticket_id: t.id.clone(),
    })
}

// ---------------------------------------------------------------- the portal's articles

pub struct ArticleRow {
    pub href: String,
    pub number: String,
    pub title: String,
    pub symptoms: String,
}

#[derive(Template)]
#[template(path = "problems/articles.html")]
pub struct ArticlesPage {
    pub ctx: Ctx,
    pub title: String,
    pub q: String,
    pub rows: Vec<ArticleRow>,
}

pub async fn articles(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<super::ListQuery>) -> UiResult {
    let list = state.app.portal_articles(&who.principal, locale_of(&tr), Some(q.q.as_str())).await.or_page(&tr)?;
    let rows = list
        .into_iter()
        .map(|a| ArticleRow {
            href: format!("/portal/articles/{}", a.id),
            number: a.number,
            title: a.title,
            symptoms: a.symptoms.chars().take(200).collect(),
        })
        .collect();
    Ok(render(&ArticlesPage {
        ctx: Ctx::new(&tr, Some(&who), "/portal/articles", None),
        title: tr.t("problem-articles-title"),
        q: q.q.clone(),
        rows,
    }))
}

#[derive(Template)]
#[template(path = "problems/article.html")]
pub struct ArticlePage {
    pub ctx: Ctx,
    pub number: String,
    pub title: String,
    pub symptoms: String,
    pub workaround: String,
    pub updated: String,
}

pub async fn article(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    let a = state.app.portal_article(&who.principal, &id, locale_of(&tr)).await.or_page(&tr)?;
    Ok(render(&ArticlePage {
        ctx: Ctx::new(&tr, Some(&who), "/portal/articles", None),
        number: a.number,
        title: a.title,
        symptoms: a.symptoms,
        workaround: a.workaround,
        updated: tr.datetime(&a.updated_at),
    }))
}

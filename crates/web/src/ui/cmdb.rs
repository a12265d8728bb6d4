//! Pages of configuration management (配置管理): the CI list with filters, the CI page with its
//! class-driven attribute form, lifecycle, relationships, impact analysis and history, the
//! new-CI form, baselines with their differences, and the verification audit list.

use super::{
    Ctx, Field, HistoryView, Opt, OrPage, Panel, Row, UiError, UiResult, attach_errors, error_message, render_status, see_other,
    translate_field_error,
};
use crate::AppState;
use crate::auth::{CsrfForm, Identity, UiUser, urlencode};
use crate::i18n::{Lang, Tr};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use keel_app::cmdb::{BaselineInput, CiInput, CiQuery, RelationInput};
use keel_app::{AppError, Principal};
use keel_domain::cmdb::{AttributeType, CiStatus, ClassRegistry, Direction, RelationType};
use keel_domain::validate::Locale;
use keel_store::cmdb::CiRecord;
use keel_store::page::{PageRequest, SortKey, SortKind, decode_cursor};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

const CI_SORT: SortKey = SortKey { name: "name", column: "name", kind: SortKind::Text };
const OPTION_LIMIT: i64 = 500;

type FormMap = HashMap<String, String>;

/// Form field names of attributes (`attributes.<key>`) live as long as the process: one copy per
/// distinct key, a set bounded by the class definitions.
pub(crate) fn intern(s: String) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = NAMES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(x) = set.get(s.as_str()) {
        return x;
    }
    let leaked: &'static str = Box::leak(s.into_boxed_str());
    set.insert(leaked);
    leaked
}

fn locale(tr: &Tr) -> Locale {
    match tr.lang {
        Lang::En => Locale::En,
        Lang::Zh => Locale::ZhCn,
    }
}

fn status_label(tr: &Tr, s: &str) -> String {
    let key = format!("ci-status-{}", s.replace('_', "-"));
    if tr.has(&key) { tr.t(&key) } else { s.to_string() }
}

fn relation_label(tr: &Tr, kind: &str, inverse: bool) -> String {
    let key = format!("relation-{}{}", if inverse { "inverse-" } else { "" }, kind.replace('_', "-"));
    if tr.has(&key) { tr.t(&key) } else { kind.to_string() }
}

fn class_name(registry: &ClassRegistry, tr: &Tr, key: &str) -> String {
    registry.get(key).map(|c| c.name(locale(tr)).to_string()).unwrap_or_else(|| key.to_string())
}

fn opts(items: impl IntoIterator<Item = (String, String)>, selected: &str) -> Vec<Opt> {
    items.into_iter().map(|(value, label)| Opt { selected: value == selected, value, label }).collect()
}

fn field(name: &'static str, label: String, kind: &'static str, value: String) -> Field {
    Field {
        name,
        label,
        kind,
        value,
        options: vec![],
        required: false,
        help: String::new(),
        autocomplete: "",
        error: None,
        typeahead: None,
        typeahead_include: "",
    }
}

async fn project_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    let all = PageRequest { sort: super::admin::PROJECT_SORT, desc: false, after: None, limit: 1000 };
    let list = state.app.list_projects(who, &Default::default(), &all).await?;
    Ok(list.items.into_iter().map(|p| (p.id, format!("{} — {}", p.code, p.name))).collect())
}

async fn ci_options(
    state: &AppState,
    who: &Principal,
    class: Option<&str>,
    except: Option<&str>,
) -> Result<Vec<(String, String)>, AppError> {
    let page = PageRequest { sort: CI_SORT, desc: false, after: None, limit: OPTION_LIMIT };
    let list = state.app.list_cis(who, &CiQuery { class: class.map(str::to_string), ..Default::default() }, &page).await?;
    Ok(list.items.into_iter().filter(|c| Some(c.id.as_str()) != except).map(|c| (c.id, c.name)).collect())
}

// ---------------------------------------------------------------- list

#[derive(serde::Deserialize, Default)]
pub struct CiListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    class: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    project_id: String,
    cursor: Option<String>,
    flash: Option<String>,
}

#[derive(Template)]
#[template(path = "cmdb_list.html")]
pub struct CiListPage {
    pub ctx: Ctx,
    pub title: String,
    pub q: String,
    pub classes: Vec<Opt>,
    pub statuses: Vec<Opt>,
    pub projects: Vec<Opt>,
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    pub next_href: Option<String>,
    pub export_href: String,
    pub can_create: bool,
}

fn filter_query(q: &CiListQuery) -> String {
    format!("q={}&class={}&status={}&project_id={}", urlencode(&q.q), urlencode(&q.class), urlencode(&q.status), urlencode(&q.project_id))
}

pub async fn list(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<CiListQuery>) -> UiResult {
    let p = &who.principal;
    let registry = state.app.class_registry().await.or_page(&tr)?;
    let query = CiQuery {
        class: Some(q.class.clone()).filter(|s| !s.is_empty()),
        status: Some(q.status.clone()).filter(|s| !s.is_empty()),
        project_id: Some(q.project_id.clone()).filter(|s| !s.is_empty()),
        q: Some(q.q.clone()),
    };
    let page = PageRequest { sort: CI_SORT, desc: false, after: q.cursor.as_deref().and_then(|c| decode_cursor(&CI_SORT, c)), limit: 50 };
    let list = state.app.list_cis(p, &query, &page).await.or_page(&tr)?;
    let projects = project_options(&state, p).await.or_page(&tr)?;
    let project_names: HashMap<String, String> = projects.iter().cloned().collect();
    let rows = list
        .items
        .iter()
        .map(|c| Row {
            href: format!("/cmdb/{}", c.id),
            cells: vec![
                c.name.clone(),
                class_name(&registry, &tr, &c.class_key),
                status_label(&tr, &c.status),
                c.project_id
                    .as_ref()
                    .map(|id| project_names.get(id).cloned().unwrap_or_else(|| id.clone()))
                    .unwrap_or_else(|| tr.t("cmdb-shared")),
                c.location.clone().unwrap_or_default(),
                tr.datetime(&c.updated_at),
            ],
        })
        .collect();
    let mut project_opts = vec![("none".to_string(), tr.t("cmdb-shared"))];
    project_opts.extend(projects);
    let ctx = Ctx::new(&tr, Some(&who), "/cmdb", q.flash.as_deref());
    let page = CiListPage {
        title: tr.t("cmdb-title"),
        q: q.q.clone(),
        classes: opts(registry.classes().iter().map(|c| (c.key.clone(), c.name(locale(&tr)).to_string())), &q.class),
        statuses: opts(CiStatus::ALL.iter().map(|s| (s.as_str().to_string(), status_label(&tr, s.as_str()))), &q.status),
        projects: opts(project_opts, &q.project_id),
        columns: vec![
            tr.t("field-name"),
            tr.t("cmdb-class"),
            tr.t("field-status"),
            tr.t("field-project-id"),
            tr.t("field-location"),
            tr.t("history-when"),
        ],
        rows,
        next_href: list.next_cursor.map(|c| format!("/cmdb?{}&cursor={}", filter_query(&q), urlencode(&c))),
        export_href: format!("/api/v1/cis/export.csv?{}", filter_query(&q)),
        can_create: p.is_staff() && !p.is_read_only(),
        ctx,
    };
    Ok(super::render(&page))
}

// ---------------------------------------------------------------- CI form and page

pub struct TransitionView {
    pub value: String,
    pub label: String,
}

pub struct RelationRowView {
    pub id: String,
    pub label: String,
    pub other_id: String,
    pub other_name: String,
    pub other_class: String,
    pub other_status: String,
}

pub struct ImpactRowView {
    pub id: String,
    pub name: String,
    pub class: String,
    pub depth: u32,
    pub path: String,
}

pub struct CiDetail {
    pub id: String,
    pub version: i64,
    pub status_label: String,
    pub last_verified: String,
    pub verifiable: bool,
    pub transitions: Vec<TransitionView>,
    pub relations: Vec<RelationRowView>,
    pub kind_options: Vec<Opt>,
    pub other_options: Vec<Opt>,
    pub relation_error: Option<String>,
    pub direction_options: Vec<Opt>,
    pub depth: String,
    pub impact: Vec<ImpactRowView>,
    pub affected_services: String,
    pub affected_projects: String,
    pub affected_customers: String,
}

#[derive(Template)]
#[template(path = "ci.html")]
pub struct CiPage {
    pub ctx: Ctx,
    pub title: String,
    pub subtitle: String,
    pub errors: Vec<String>,
    pub class_options: Vec<Opt>,
    pub action: String,
    pub version: Option<i64>,
    pub class_key: String,
    pub fields: Vec<Field>,
    pub editable: bool,
    pub detail: Option<CiDetail>,
    pub history: Vec<HistoryView>,
}

fn form_of(c: &CiRecord) -> FormMap {
    let mut f = FormMap::new();
    f.insert("name".into(), c.name.clone());
    f.insert("project_id".into(), c.project_id.clone().unwrap_or_default());
    f.insert("owner_user_id".into(), c.owner_user_id.clone().unwrap_or_default());
    f.insert("team_id".into(), c.team_id.clone().unwrap_or_default());
    f.insert("location".into(), c.location.clone().unwrap_or_default());
    f.insert("description".into(), c.description.clone().unwrap_or_default());
    for (k, v) in &c.attributes {
        let s = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        f.insert(format!("attributes.{k}"), s);
    }
    f
}

fn get(f: &FormMap, k: &str) -> String {
    f.get(k).cloned().unwrap_or_default()
}

/// The core fields and one field per attribute of the class, filled from `f`. `self_id` is the
/// CI being edited (`None` on creation, which also offers the initial status).
async fn ci_fields(
    state: &AppState,
    tr: &Tr,
    who: &Principal,
    registry: &ClassRegistry,
    class: &str,
    f: &FormMap,
    self_id: Option<&str>,
) -> Result<Vec<Field>, AppError> {
    let with_status = self_id.is_none();
    let mut v = vec![Field::new(tr, "name", "text", get(f, "name")).required()];
    if with_status {
        let statuses = CiStatus::ALL.iter().map(|s| (s.as_str().to_string(), status_label(tr, s.as_str())));
        let current = Some(get(f, "status")).filter(|s| !s.is_empty()).unwrap_or_else(|| "planned".into());
        v.push(Field::new(tr, "status", "select", "").required().options(statuses, &[current]));
    }
    let mut projects = vec![(String::new(), tr.t("cmdb-shared"))];
    projects.extend(project_options(state, who).await?);
    let mut project = Field::new(tr, "project_id", "select", "").required().options(projects, &[get(f, "project_id")]);
    project.required = true;
    v.push(project);
    let staff = state
        .app
        .list_users(
            who,
            keel_store::accounts::UserFilter { kind: Some("staff".into()), active: Some(true), ..Default::default() },
            &PageRequest { sort: super::admin::USER_SORT, desc: false, after: None, limit: 1000 },
        )
        .await
        .map(|l| l.items.into_iter().map(|u| (u.id, u.display_name)).collect::<Vec<_>>())
        .unwrap_or_default();
    v.push(Field::new(tr, "owner_user_id", "select", "").options(staff, &[get(f, "owner_user_id")]));
    let teams = state
        .app
        .list_teams(who, None, &PageRequest { sort: super::admin::TEAM_SORT, desc: false, after: None, limit: 1000 })
        .await?
        .items
        .into_iter()
        .map(|t| (t.id, t.name));
    v.push(Field::new(tr, "team_id", "select", "").options(teams, &[get(f, "team_id")]));
    v.push(Field::new(tr, "location", "text", get(f, "location")));
    v.push(Field::new(tr, "description", "textarea", get(f, "description")));
    if !with_status {
        v.push(Field::new(tr, "change_id", "text", get(f, "change_id")));
    }
    for (_, def) in registry.attributes(class) {
        let name = intern(format!("attributes.{}", def.key));
        let value = get(f, name);
        let label = def.label(locale(tr)).to_string();
        let mut fld = match &def.kind {
            AttributeType::Text => field(name, label, "text", value),
            AttributeType::Number { .. } => field(name, label, "number", value),
            AttributeType::Date => field(name, label, "date", value),
            AttributeType::Url => field(name, label, "url", value),
            AttributeType::IpAddress => field(name, label, "text", value),
            AttributeType::Enum { values } => {
                field(name, label, "select", String::new()).options(values.iter().map(|x| (x.clone(), x.clone())), &[value])
            }
            AttributeType::Boolean => field(name, label, "select", String::new())
                .options([("true".to_string(), tr.t("value-yes")), ("false".to_string(), tr.t("value-no"))], &[value]),
            AttributeType::Reference { class } => {
                let mut cis = ci_options(state, who, class.as_deref(), self_id).await?;
                // the current value stays chosen even when it is not among the options offered
                if !value.is_empty() && !cis.iter().any(|(id, _)| *id == value) {
                    let shown = state.app.get_ci(who, &value).await.map(|c| c.name).unwrap_or_else(|_| tr.t("history-not-available"));
                    cis.push((value.clone(), shown));
                }
                field(name, label, "select", String::new()).options(cis, &[value])
            }
        };
        fld.required = def.required;
        v.push(fld);
    }
    Ok(v)
}

fn input_of(f: &FormMap, registry: &ClassRegistry, class: &str, with_status: bool) -> CiInput {
    let mut attributes = Map::new();
    for (_, def) in registry.attributes(class) {
        if let Some(v) = f.get(&format!("attributes.{}", def.key)) {
            attributes.insert(def.key.clone(), Value::String(v.clone()));
        }
    }
    CiInput {
        class_key: class.to_string(),
        name: get(f, "name"),
        status: if with_status { Some(get(f, "status")) } else { None },
        owner_user_id: Some(get(f, "owner_user_id")),
        team_id: Some(get(f, "team_id")),
        project_id: Some(get(f, "project_id")),
        location: Some(get(f, "location")),
        description: Some(get(f, "description")),
        attributes: Value::Object(attributes),
        change_id: f.get("change_id").cloned(),
    }
}

#[derive(serde::Deserialize, Default)]
pub struct NewQuery {
    #[serde(default)]
    class: String,
}

async fn new_page(state: &AppState, tr: &Tr, who: &Identity, class: &str, f: &FormMap, err: Option<AppError>) -> UiResult {
    let registry = state.app.class_registry().await.or_page(tr)?;
    let ctx = Ctx::new(tr, Some(who), "/cmdb/new", None);
    let known = registry.get(class).is_some();
    let mut fields = if known { ci_fields(state, tr, &who.principal, &registry, class, f, None).await.or_page(tr)? } else { vec![] };
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let page = CiPage {
        title: tr.t("cmdb-new-ci"),
        subtitle: if known { class_name(&registry, tr, class) } else { String::new() },
        errors,
        class_options: if known {
            vec![]
        } else {
            opts(registry.classes().iter().map(|c| (c.key.clone(), c.name(locale(tr)).to_string())), class)
        },
        action: "/cmdb".into(),
        version: None,
        class_key: class.to_string(),
        fields,
        editable: true,
        detail: None,
        history: vec![],
        ctx,
    };
    Ok(render_status(super::status_for(&err), &page))
}

pub async fn new_form(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<NewQuery>) -> UiResult {
    new_page(&state, &tr, &who, &q.class, &FormMap::new(), None).await
}

pub async fn create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<FormMap>) -> UiResult {
    let class = get(&f, "class_key");
    let registry = state.app.class_registry().await.or_page(&tr)?;
    match state.app.create_ci(&who.principal, input_of(&f, &registry, &class, true)).await {
        Ok(c) => Ok(see_other(&format!("/cmdb/{}", c.id), "created")),
        Err(e @ (AppError::Validation(_) | AppError::ProcessDisabled(_))) => new_page(&state, &tr, &who, &class, &f, Some(e)).await,
        Err(e) => Err(UiError(tr, e)),
    }
}

#[derive(serde::Deserialize, Default)]
pub struct CiShowQuery {
    flash: Option<String>,
    direction: Option<String>,
    depth: Option<String>,
}

struct PageState {
    form: Option<(FormMap, AppError)>,
    relation_error: Option<String>,
}

async fn ci_page(state: &AppState, tr: &Tr, who: &Identity, id: &str, q: &CiShowQuery, ps: PageState) -> UiResult {
    let p = &who.principal;
    let ci = state.app.get_ci(p, id).await.or_page(tr)?;
    let registry = state.app.class_registry().await.or_page(tr)?;
    let (f, err) = match ps.form {
        Some((f, e)) => (f, Some(e)),
        None => (form_of(&ci), None),
    };
    let mut fields = ci_fields(state, tr, p, &registry, &ci.class_key, &f, Some(id)).await.or_page(tr)?;
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let status = CiStatus::parse(&ci.status).unwrap_or(CiStatus::Retired);

    let relations = state.app.ci_relations(p, id).await.or_page(tr)?;
    let relation_rows = relations
        .iter()
        .map(|r| RelationRowView {
            id: r.relation.id.clone(),
            label: relation_label(tr, &r.relation.kind, r.direction == "incoming"),
            other_id: r.other.id.clone(),
            other_name: r.other.name.clone(),
            other_class: class_name(&registry, tr, &r.other.class_key),
            other_status: status_label(tr, &r.other.status),
        })
        .collect();
    let mut kinds = Vec::new();
    for k in RelationType::ALL {
        kinds.push((format!("out:{}", k.as_str()), relation_label(tr, k.as_str(), false)));
        if !k.is_symmetric() {
            kinds.push((format!("in:{}", k.as_str()), relation_label(tr, k.as_str(), true)));
        }
    }
    let others = ci_options(state, p, None, Some(id)).await.or_page(tr)?;

    let direction = if q.direction.as_deref() == Some("upstream") { Direction::Upstream } else { Direction::Downstream };
    let depth = q.depth.as_deref().and_then(|d| d.trim().parse::<u32>().ok());
    let impact = state.app.impact(p, id, direction, depth).await.or_page(tr)?;
    let names: HashMap<&str, &str> = impact
        .reached
        .iter()
        .map(|e| (e.ci.id.as_str(), e.ci.name.as_str()))
        .chain([(impact.origin.id.as_str(), impact.origin.name.as_str())])
        .collect();
    let name_of = |i: &str| names.get(i).copied().unwrap_or(i).to_string();
    let impact_rows = impact
        .reached
        .iter()
        .map(|e| ImpactRowView {
            id: e.ci.id.clone(),
            name: e.ci.name.clone(),
            class: class_name(&registry, tr, &e.ci.class_key),
            depth: e.depth,
            path: e
                .path
                .iter()
                .map(|s| format!("{} {} {}", name_of(&s.source_id), relation_label(tr, s.kind.as_str(), false), name_of(&s.target_id)))
                .collect::<Vec<_>>()
                .join(" → "),
        })
        .collect();
    let list_or_none = |v: Vec<String>| if v.is_empty() { tr.t("cmdb-none") } else { v.join(", ") };

    let history =
        super::readable_history(&state.app, tr, &who.principal, &state.app.history(keel_app::cmdb::CI_ENTITY, id).await.or_page(tr)?)
            .await?;
    let editable = p.is_staff() && !p.is_read_only();
    let ctx = Ctx::new(tr, Some(who), &format!("/cmdb/{id}"), q.flash.as_deref());
    let detail = CiDetail {
        id: ci.id.clone(),
        version: ci.version,
        status_label: status_label(tr, &ci.status),
        last_verified: ci.last_verified_at.map(|t| tr.datetime(&t)).unwrap_or_else(|| tr.t("cmdb-never-verified")),
        verifiable: status.is_verifiable(),
        transitions: status
            .next()
            .map(|s| TransitionView { value: s.as_str().into(), label: tr.t1("cmdb-move-to", "status", status_label(tr, s.as_str())) })
            .collect(),
        relations: relation_rows,
        kind_options: opts(kinds, ""),
        other_options: opts(others, ""),
        relation_error: ps.relation_error,
        direction_options: opts(
            [("downstream".to_string(), tr.t("cmdb-downstream")), ("upstream".to_string(), tr.t("cmdb-upstream"))],
            if direction == Direction::Upstream { "upstream" } else { "downstream" },
        ),
        depth: depth.map(|d| d.to_string()).unwrap_or_default(),
        impact: impact_rows,
        affected_services: list_or_none(impact.services.iter().map(|s| s.name.clone()).collect()),
        affected_projects: list_or_none(impact.projects.iter().map(|p| format!("{} — {}", p.code, p.name)).collect()),
        affected_customers: list_or_none(impact.customers.iter().map(|c| c.name.clone()).collect()),
    };
    let page = CiPage {
        title: ci.name.clone(),
        subtitle: class_name(&registry, tr, &ci.class_key),
        errors,
        class_options: vec![],
        action: format!("/cmdb/{id}"),
        version: Some(ci.version),
        class_key: ci.class_key.clone(),
        fields,
        editable,
        detail: Some(detail),
        history,
        ctx,
    };
    let status = super::status_for(&err);
    Ok(render_status(status, &page))
}

pub async fn show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<CiShowQuery>,
) -> UiResult {
    ci_page(&state, &tr, &who, &id, &q, PageState { form: None, relation_error: None }).await
}

fn expected(f: &FormMap) -> Option<i64> {
    f.get("_version").and_then(|s| s.parse().ok())
}

pub async fn update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<FormMap>,
) -> UiResult {
    let registry = state.app.class_registry().await.or_page(&tr)?;
    let class = get(&f, "class_key");
    match state.app.update_ci(&who.principal, &id, input_of(&f, &registry, &class, false), expected(&f)).await {
        Ok(_) => Ok(see_other(&format!("/cmdb/{id}"), "saved")),
        Err(e @ (AppError::Validation(_) | AppError::Stale | AppError::ProcessDisabled(_))) => {
            ci_page(&state, &tr, &who, &id, &CiShowQuery::default(), PageState { form: Some((f, e)), relation_error: None }).await
        }
        Err(e) => Err(UiError(tr, e)),
    }
}

pub async fn transition(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<FormMap>,
) -> UiResult {
    state.app.transition_ci(&who.principal, &id, &get(&f, "status"), expected(&f)).await.or_page(&tr)?;
    Ok(see_other(&format!("/cmdb/{id}"), "saved"))
}

pub async fn verify(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<FormMap>,
) -> UiResult {
    state.app.verify_ci(&who.principal, &id, expected(&f)).await.or_page(&tr)?;
    Ok(see_other(&format!("/cmdb/{id}"), "saved"))
}

pub async fn relation_add(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<FormMap>,
) -> UiResult {
    let kind = get(&f, "kind");
    let other = get(&f, "other_id");
    let (dir, kind) = kind.split_once(':').unwrap_or(("out", kind.as_str()));
    let input = if dir == "in" {
        RelationInput { kind: kind.into(), source_id: other, target_id: id.clone() }
    } else {
        RelationInput { kind: kind.into(), source_id: id.clone(), target_id: other }
    };
    match state.app.add_relation(&who.principal, input).await {
        Ok(_) => Ok(see_other(&format!("/cmdb/{id}#relations"), "saved")),
        Err(e @ AppError::Validation(_)) => {
            let msg = match &e {
                AppError::Validation(list) => {
                    list.iter().map(|fe| translate_field_error(&tr, fe.code, &fe.message)).collect::<Vec<_>>().join("; ")
                }
                other => error_message(&tr, other),
            };
            let mut r =
                ci_page(&state, &tr, &who, &id, &CiShowQuery::default(), PageState { form: None, relation_error: Some(msg) }).await?;
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
        Err(e) => Err(UiError(tr, e)),
    }
}

pub async fn relation_remove(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(rid): Path<String>,
    CsrfForm(f): CsrfForm<FormMap>,
) -> UiResult {
    state.app.remove_relation(&who.principal, &rid).await.or_page(&tr)?;
    let ci = get(&f, "ci");
    let back = if ci.is_empty() || ci.contains(['/', '?', '#']) { "/cmdb".to_string() } else { format!("/cmdb/{ci}#relations") };
    Ok(see_other(&back, "saved"))
}

// ---------------------------------------------------------------- baselines

#[derive(Template)]
#[template(path = "cmdb_baselines.html")]
pub struct BaselinesPage {
    pub ctx: Ctx,
    pub title: String,
    pub errors: Vec<String>,
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    pub editable: bool,
    pub fields: Vec<Field>,
}

async fn baselines_page(state: &AppState, tr: &Tr, who: &Identity, f: &FormMap, err: Option<AppError>, flash: Option<&str>) -> UiResult {
    let p = &who.principal;
    let list = state.app.list_baselines(p).await.or_page(tr)?;
    let projects = project_options(state, p).await.or_page(tr)?;
    let names: HashMap<String, String> = projects.iter().cloned().collect();
    let rows = list
        .iter()
        .map(|b| Row {
            href: format!("/cmdb/baselines/{}", b.id),
            cells: vec![
                b.name.clone(),
                b.project_id
                    .as_ref()
                    .map(|i| names.get(i).cloned().unwrap_or_else(|| i.clone()))
                    .unwrap_or_else(|| tr.t("cmdb-baseline-whole")),
                b.ci_count.to_string(),
                tr.datetime(&b.created_at),
            ],
        })
        .collect();
    let mut scope = Vec::new();
    if p.sees_all_projects() {
        scope.push((String::new(), tr.t("cmdb-baseline-whole")));
    }
    scope.extend(projects);
    let mut fields = vec![
        Field::new(tr, "name", "text", get(f, "name")).required(),
        Field::new(tr, "project_id", "select", "").required().options(scope, &[get(f, "project_id")]),
        Field::new(tr, "description", "textarea", get(f, "description")),
    ];
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let page = BaselinesPage {
        title: tr.t("cmdb-baselines"),
        errors,
        columns: vec![tr.t("field-name"), tr.t("field-project-id"), tr.t("cmdb-baseline-count"), tr.t("cmdb-baseline-taken")],
        rows,
        editable: p.is_staff() && !p.is_read_only(),
        fields,
        ctx: Ctx::new(tr, Some(who), "/cmdb/baselines", flash),
    };
    Ok(render_status(super::status_for(&err), &page))
}

#[derive(serde::Deserialize, Default)]
pub struct FlashQuery {
    flash: Option<String>,
    max_age_days: Option<String>,
}

pub async fn baselines(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<FlashQuery>) -> UiResult {
    baselines_page(&state, &tr, &who, &FormMap::new(), None, q.flash.as_deref()).await
}

pub async fn baseline_capture(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<FormMap>) -> UiResult {
    let input = BaselineInput {
        name: get(&f, "name"),
        description: Some(get(&f, "description")),
        project_id: Some(get(&f, "project_id")),
        ci_ids: None,
    };
    match state.app.capture_baseline(&who.principal, input).await {
        Ok(b) => Ok(see_other(&format!("/cmdb/baselines/{}", b.id), "created")),
        Err(e @ (AppError::Validation(_) | AppError::ProcessDisabled(_))) => baselines_page(&state, &tr, &who, &f, Some(e), None).await,
        Err(e) => Err(UiError(tr, e)),
    }
}

#[derive(Template)]
#[template(path = "cmdb_tables.html")]
pub struct TablesPage {
    pub ctx: Ctx,
    pub title: String,
    pub intro: String,
    pub filter: Option<(String, String, String, String)>,
    pub empty: String,
    pub panels: Vec<Panel>,
    pub back_href: String,
}

fn show_json(v: &Option<Value>) -> String {
    match v {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub async fn baseline_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<FlashQuery>,
) -> UiResult {
    let p = &who.principal;
    let d = state.app.baseline_diff(p, &id).await.or_page(&tr)?;
    let registry = state.app.class_registry().await.or_page(&tr)?;
    // Names of CIs that still exist; removed ones show their name from the baseline.
    let then: keel_domain::cmdb::Snapshot = serde_json::from_str(&d.baseline.snapshot).unwrap_or_default();
    let mut ids: Vec<String> = d.diff.added_cis.clone();
    ids.extend(d.diff.changed_cis.iter().map(|c| c.id.clone()));
    for r in d.diff.added_relations.iter().chain(&d.diff.removed_relations) {
        ids.push(r.source.clone());
        ids.push(r.target.clone());
    }
    let mut names: HashMap<String, String> =
        then.cis.iter().map(|c| (c.id.clone(), c.attributes.get("@name").and_then(Value::as_str).unwrap_or(&c.id).to_string())).collect();
    ids.sort();
    ids.dedup();
    for i in &ids {
        if let Ok(c) = state.app.get_ci(p, i).await {
            names.insert(c.id.clone(), c.name.clone());
        }
    }
    let name = |i: &str| names.get(i).cloned().unwrap_or_else(|| i.to_string());
    let ci_row = |i: &String| Row { href: format!("/cmdb/{i}"), cells: vec![name(i)] };
    let rel_row = |r: &keel_domain::cmdb::Relation| Row {
        href: String::new(),
        cells: vec![name(&r.source), relation_label(&tr, r.kind.as_str(), false), name(&r.target)],
    };
    let mut changed = Vec::new();
    for c in &d.diff.changed_cis {
        let labels: HashMap<String, String> = registry
            .attributes(&then.ci(&c.id).map(|s| s.class.clone()).unwrap_or_default())
            .into_iter()
            .map(|(_, a)| (a.key.clone(), a.label(locale(&tr)).to_string()))
            .collect();
        if let Some((a, b)) = &c.status {
            changed.push(Row {
                href: format!("/cmdb/{}", c.id),
                cells: vec![name(&c.id), tr.t("field-status"), status_label(&tr, a.as_str()), status_label(&tr, b.as_str())],
            });
        }
        if let Some((a, b)) = &c.class {
            changed.push(Row { href: format!("/cmdb/{}", c.id), cells: vec![name(&c.id), tr.t("cmdb-class"), a.clone(), b.clone()] });
        }
        for a in &c.attributes {
            let what = match a.attribute.strip_prefix('@') {
                Some(core) => tr.t(&format!("field-{}", core.replace('_', "-"))),
                None => labels.get(&a.attribute).cloned().unwrap_or_else(|| a.attribute.clone()),
            };
            changed.push(Row { href: format!("/cmdb/{}", c.id), cells: vec![name(&c.id), what, show_json(&a.old), show_json(&a.new)] });
        }
    }
    let one = vec![tr.t("cmdb-other-ci")];
    let rel_cols = vec![tr.t("cmdb-other-ci"), tr.t("cmdb-relation"), tr.t("cmdb-other-ci")];
    let panels = if d.diff.is_empty() {
        vec![]
    } else {
        vec![
            Panel {
                title: tr.t("cmdb-added-cis"),
                columns: one.clone(),
                rows: d.diff.added_cis.iter().map(ci_row).collect(),
                action: None,
            },
            Panel {
                title: tr.t("cmdb-removed-cis"),
                columns: one,
                rows: d.diff.removed_cis.iter().map(|i| Row { href: String::new(), cells: vec![name(i)] }).collect(),
                action: None,
            },
            Panel {
                title: tr.t("cmdb-changed-cis"),
                columns: vec![tr.t("cmdb-other-ci"), tr.t("cmdb-change-what"), tr.t("cmdb-change-old"), tr.t("cmdb-change-new")],
                rows: changed,
                action: None,
            },
            Panel {
                title: tr.t("cmdb-added-relations"),
                columns: rel_cols.clone(),
                rows: d.diff.added_relations.iter().map(rel_row).collect(),
                action: None,
            },
            Panel {
                title: tr.t("cmdb-removed-relations"),
                columns: rel_cols,
                rows: d.diff.removed_relations.iter().map(rel_row).collect(),
                action: None,
            },
        ]
    };
    let page = TablesPage {
        title: format!("{} · {}", tr.t("cmdb-baseline-diff"), d.baseline.name),
        intro: format!("{}: {}", tr.t("cmdb-baseline-taken"), tr.datetime(&d.baseline.created_at)),
        filter: None,
        empty: tr.t("cmdb-baseline-unchanged"),
        panels,
        back_href: "/cmdb/baselines".into(),
        ctx: Ctx::new(&tr, Some(&who), "/cmdb/baselines", q.flash.as_deref()),
    };
    Ok(super::render(&page))
}

// ---------------------------------------------------------------- verification audit

pub async fn verification(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<FlashQuery>) -> UiResult {
    let days = q.max_age_days.as_deref().and_then(|d| d.trim().parse::<u32>().ok()).unwrap_or(90);
    let due = state.app.verification_due(&who.principal, days).await.or_page(&tr)?;
    let registry = state.app.class_registry().await.or_page(&tr)?;
    let rows: Vec<Row> = due
        .iter()
        .map(|d| Row {
            href: format!("/cmdb/{}", d.ci.id),
            cells: vec![
                d.ci.name.clone(),
                class_name(&registry, &tr, &d.ci.class_key),
                status_label(&tr, &d.ci.status),
                d.last_verified_at.map(|t| tr.datetime(&t)).unwrap_or_else(|| tr.t("cmdb-never-verified")),
                d.days_since.map(|n| n.to_string()).unwrap_or_default(),
            ],
        })
        .collect();
    let panels = if rows.is_empty() {
        vec![]
    } else {
        vec![Panel {
            title: tr.t("cmdb-verification"),
            columns: vec![
                tr.t("field-name"),
                tr.t("cmdb-class"),
                tr.t("field-status"),
                tr.t("cmdb-last-verified"),
                tr.t("cmdb-days-since"),
            ],
            rows,
            action: None,
        }]
    };
    let page = TablesPage {
        title: tr.t("cmdb-verification"),
        intro: tr.t1("cmdb-verification-help", "days", days),
        filter: Some(("/cmdb/verification".into(), tr.t("cmdb-max-age-days"), "max_age_days".into(), days.to_string())),
        empty: tr.t("list-empty"),
        panels,
        back_href: "/cmdb".into(),
        ctx: Ctx::new(&tr, Some(&who), "/cmdb/verification", q.flash.as_deref()),
    };
    Ok(super::render(&page))
}

//! Release management pages (REQUIREMENTS §5, manual §5.1.4): the release list and the
//! record page with its stage panels and release notes. Staff only.

use super::{Ctx, Field, FormPage, OrPage, Row, UiResult, attach_errors, render_status, see_other};
use crate::AppState;
use crate::api::releases::RELEASE_SORTS;
use crate::auth::{CsrfForm, Identity, UiUser};
use crate::i18n::Tr;
use axum::extract::{Path, Query, State};
use keel_app::AppError;
use keel_app::releases::NewRelease;
use keel_store::page::{PageRequest, SortKey, SortKind, decode_cursor};

const CODE_SORT: SortKey = SortKey { name: "code", column: "code", kind: SortKind::Text };
use keel_store::releases::ReleaseFilter;

pub async fn list(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<super::ListQuery>) -> UiResult {
    if !who.principal.is_staff() {
        return Err(super::UiError(tr.clone(), AppError::NotFound));
    }
    let sort = RELEASE_SORTS[0];
    let page = PageRequest { sort, desc: true, after: q.cursor.as_deref().and_then(|c| decode_cursor(&sort, c)), limit: 50 };
    let f = ReleaseFilter {
        q: Some(q.q.clone()).filter(|s| !s.trim().is_empty()),
        statuses: Some(q.status.clone()).filter(|s| !s.is_empty()).into_iter().collect(),
        ..Default::default()
    };
    let list = state.app.list_releases(&who.principal, &f, &page).await.or_page(&tr)?;
    let columns = ["field-number", "field-title", "release-version", "field-status", "field-updated-at"].iter().map(|k| tr.t(k)).collect();
    let rows = list
        .items
        .iter()
        .map(|r| {
            let key = format!("release-status-{}", r.status.replace('_', "-"));
            Row {
                href: format!("/releases/{}", r.id),
                cells: vec![
                    r.number.clone(),
                    r.title.clone(),
                    r.release_version.clone(),
                    if tr.has(&key) { tr.t(&key) } else { r.status.clone() },
                    tr.datetime(&r.updated_at),
                ],
            }
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/releases", q.flash.as_deref());
    let new = (!who.principal.is_read_only()).then(|| ("/releases/new".to_string(), tr.t("release-new-title")));
    Ok(super::list_page(ctx, tr.t("release-list-title"), "/releases", &q, new, (columns, rows), list.next_cursor))
}

pub struct StageView {
    pub kind: String,
    pub title: String,
    /// Item text and whether it is done.
    pub checklist: Vec<(String, bool)>,
    /// Key, and expected target → actual result.
    pub results: Vec<(String, String)>,
    pub signers: String,
    pub signed_off: String,
}

#[derive(askama::Template)]
#[template(path = "releases/release.html")]
pub struct ReleasePage {
    pub ctx: Ctx,
    pub title: String,
    pub id: String,
    pub number: String,
    pub heading: String,
    pub status: String,
    pub version_label: String,
    pub description: String,
    pub lang: String,
    pub stages: Vec<StageView>,
    /// Statuses the release may move to: value and label.
    pub next: Vec<(String, String)>,
    pub errors: Vec<String>,
    pub editable: bool,
}

/// The release record page: its stages with checklist, expected and actual results, signers
/// and sign-off, and the release notes to download.
pub async fn show(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    release_page(&state, &tr, &who, &id, None).await
}

async fn release_page(state: &AppState, tr: &Tr, who: &Identity, id: &str, err: Option<AppError>) -> UiResult {
    let tr = tr.clone();
    let r = state.app.get_release(&who.principal, id).await.or_page(&tr)?;
    let next = state
        .app
        .release_next_statuses(&who.principal, &r)
        .into_iter()
        .map(|s| (s.as_str().to_string(), tr.t(&format!("release-status-{}", s.as_str().replace('_', "-")))))
        .collect();
    let errors = match &err {
        Some(AppError::Validation(list)) => list.iter().map(|fe| super::translate_field_error(&tr, fe.code, &fe.message)).collect(),
        Some(e) => vec![super::error_message(&tr, e)],
        None => vec![],
    };
    let key = format!("release-status-{}", r.status.replace('_', "-"));
    let stages = r
        .stages
        .iter()
        .map(|s| StageView {
            kind: s.stage.clone(),
            title: tr.t(&format!("release-stage-{}", s.stage)),
            checklist: s.checklist.iter().map(|c| (c.text.clone(), c.done_at.is_some())).collect(),
            results: s
                .expected
                .iter()
                .map(|e| {
                    let actual = s.actual.iter().find(|a| a.key == e.key).map(|a| a.result.clone()).unwrap_or_else(|| "—".into());
                    (e.description.clone(), format!("{} → {}", e.target, actual))
                })
                .collect(),
            signers: s
                .signers
                .iter()
                .map(|g| if g.signed_at.is_some() { format!("{} ✓", g.display_name) } else { g.display_name.clone() })
                .collect::<Vec<_>>()
                .join(" → "),
            signed_off: s.signed_off_at.map(|t| tr.datetime(&t)).unwrap_or_else(|| "—".into()),
        })
        .collect();
    let page = ReleasePage {
        title: format!("{} {}", r.number, r.title),
        id: r.id.clone(),
        number: r.number.clone(),
        heading: r.title.clone(),
        status: if tr.has(&key) { tr.t(&key) } else { r.status.clone() },
        version_label: r.release_version.clone(),
        description: r.description.clone().unwrap_or_default(),
        lang: match tr.lang {
            crate::i18n::Lang::Zh => "zh-CN".into(),
            crate::i18n::Lang::En => "en".into(),
        },
        stages,
        next,
        errors,
        editable: !who.principal.is_read_only(),
        ctx: Ctx::new(&tr, Some(who), "/releases", None),
    };
    Ok(render_status(super::status_for(&err), &page))
}

// ---------------------------------------------------------------- creating a release

type Form = std::collections::HashMap<String, String>;

fn val(f: &Form, k: &str) -> String {
    f.get(k).cloned().unwrap_or_default()
}

fn opt(f: &Form, k: &str) -> Option<String> {
    f.get(k).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

async fn new_page(state: &AppState, tr: &Tr, who: &Identity, f: &Form, err: Option<AppError>) -> UiResult {
    let pf = keel_store::directory::ProjectFilter { status: Some("active".into()), ..Default::default() };
    let all = PageRequest { sort: CODE_SORT, desc: false, after: None, limit: 1000 };
    let projects = state.app.list_projects(&who.principal, &pf, &all).await.or_page(tr)?;
    let options: Vec<(String, String)> = projects.items.into_iter().map(|p| (p.id, format!("{} · {}", p.code, p.name))).collect();
    let mut fields = vec![
        Field::new(tr, "project_id", "select", "").required().options(options, &[val(f, "project_id")]),
        Field::new(tr, "title", "text", val(f, "title")).required(),
        Field::new(tr, "version", "text", val(f, "version")).required(),
        Field::new(tr, "description", "textarea", val(f, "description")),
        Field::new(tr, "change_ids", "textarea", val(f, "change_ids")).help(tr.t("release-help-lines")),
        Field::new(tr, "rollback_plan", "textarea", val(f, "rollback_plan")),
        Field::new(tr, "known_issues", "textarea", val(f, "known_issues")).help(tr.t("release-help-lines")),
    ];
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let mut page =
        FormPage::new(Ctx::new(tr, Some(who), "/releases/new", None), tr.t("release-new-title"), "/releases".into(), fields, "/releases");
    page.errors = errors;
    page.submit = tr.t("release-action-create");
    Ok(render_status(super::status_for(&err), &page))
}

pub async fn new_form(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    if !who.principal.is_staff() {
        return Err(super::UiError(tr.clone(), AppError::NotFound));
    }
    new_page(&state, &tr, &who, &Form::new(), None).await
}

pub async fn create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<Form>) -> UiResult {
    if !who.principal.is_staff() {
        return Err(super::UiError(tr.clone(), AppError::NotFound));
    }
    let input = NewRelease {
        project_id: val(&f, "project_id"),
        title: val(&f, "title"),
        version: val(&f, "version"),
        description: opt(&f, "description"),
        change_ids: lines(&val(&f, "change_ids")),
        rollback_plan: opt(&f, "rollback_plan"),
        known_issues: lines(&val(&f, "known_issues")),
    };
    match state.app.create_release(&who.principal, input).await {
        Ok(r) => Ok(see_other(&format!("/releases/{}", r.id), "created")),
        Err(e) => new_page(&state, &tr, &who, &f, Some(e)).await,
    }
}

// ---------------------------------------------------------------- actions on the record page

async fn after(state: &AppState, tr: &Tr, who: &Identity, id: &str, r: Result<keel_store::releases::ReleaseRecord, AppError>) -> UiResult {
    match r {
        Ok(_) => Ok(see_other(&format!("/releases/{id}"), "saved")),
        Err(e) => release_page(state, tr, who, id, Some(e)).await,
    }
}

pub async fn transition(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.transition_release(&who.principal, &id, &val(&f, "status"), opt(&f, "reason").as_deref(), None).await;
    after(&state, &tr, &who, &id, r).await
}

pub async fn sign_off(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, stage)): Path<(String, String)>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.sign_off_release_stage(&who.principal, &id, &stage, opt(&f, "note").as_deref()).await;
    after(&state, &tr, &who, &id, r).await
}

pub async fn tick(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, stage, index)): Path<(String, String, usize)>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.tick_release_item(&who.principal, &id, &stage, index, val(&f, "done") == "true").await;
    after(&state, &tr, &who, &id, r).await
}

//! Release management pages (REQUIREMENTS §5, manual §5.1.4): the release list and the
//! record page with its stage panels and release notes. Staff only.

use super::{Ctx, Failed, Field, Form, FormPage, OrPage, Row, SectionForm, UiResult, attach_errors, form_of, render_status, see_other};
use crate::AppState;
use crate::api::releases::RELEASE_SORTS;
use crate::auth::{CsrfForm, Identity, UiUser};
use crate::i18n::Tr;
use axum::extract::{Path, Query, State};
use keel_app::AppError;
use keel_app::releases::{NewRelease, StagePlanInput};
use keel_domain::release::ExpectedResult;
use keel_store::page::{PageRequest, SortKey, SortKind, decode_cursor};

const CODE_SORT: SortKey = SortKey { name: "code", column: "code", kind: SortKind::Text };
use keel_store::releases::{ReleaseFilter, StageRecord};

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
    pub window: String,
    /// Planning and recording an actual result.
    pub forms: Vec<SectionForm>,
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
    /// Rollback plan and outcome, review comparison and summary, as label and value.
    pub outcome: Vec<(String, String)>,
    /// Rollback plan, rollback and review forms.
    pub forms: Vec<SectionForm>,
    pub history: Vec<super::HistoryView>,
}

/// The release record page: its stages with checklist, expected and actual results, signers
/// and sign-off, and the release notes to download.
pub async fn show(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Path(id): Path<String>) -> UiResult {
    release_page(&state, &tr, &who, &id, None).await
}

/// The forms of one stage: its plan (dates, checklist, expected results, signers) and an
/// actual result.
fn stage_forms(tr: &Tr, id: &str, s: &StageRecord, staff: &[(String, String)], failed: &Option<Failed>) -> Vec<SectionForm> {
    let base = format!("/releases/{id}/stages/{}", s.stage);
    let plan = SectionForm::build(
        tr,
        failed,
        &format!("plan-{}", s.stage),
        (tr.t("release-plan-stage"), format!("{base}/plan"), tr.t("action-save")),
        |f| {
            let or = |k: &str, current: String| f.get(k).cloned().unwrap_or(current);
            let expected = s.expected.iter().map(|e| format!("{} | {} | {}", e.key, e.description, e.target)).collect::<Vec<_>>();
            let signers: Vec<String> = match f.get("signer_ids") {
                Some(v) => v.split(',').map(str::to_string).collect(),
                None => s.signers.iter().map(|g| g.user_id.clone()).collect(),
            };
            vec![
                Field::new(tr, "planned_start", "datetime-local", or("planned_start", super::local_input(tr, s.planned_start))),
                Field::new(tr, "planned_end", "datetime-local", or("planned_end", super::local_input(tr, s.planned_end))),
                Field::new(
                    tr,
                    "checklist",
                    "textarea",
                    or("checklist", s.checklist.iter().map(|c| c.text.clone()).collect::<Vec<_>>().join("\n")),
                )
                .help(tr.t("release-help-lines")),
                Field::new(tr, "expected", "textarea", or("expected", expected.join("\n"))).help(tr.t("release-help-expected")),
                Field::new(tr, "signer_ids", "multiselect", "").options(staff.to_vec(), &signers).help(tr.t("release-help-signers")),
            ]
        },
    );
    let result = SectionForm::build(
        tr,
        failed,
        &format!("result-{}", s.stage),
        (tr.t("release-record-result"), format!("{base}/results"), tr.t("release-action-record")),
        |f| {
            let keys = s.expected.iter().map(|e| (e.key.clone(), format!("{} ({})", e.description, e.target)));
            vec![
                Field::new(tr, "key", "select", "").required().options(keys, &[val(f, "key")]),
                Field::new(tr, "result", "text", val(f, "result")).required(),
                Field::new(tr, "met", "checkbox", val(f, "met")),
            ]
        },
    );
    vec![plan, result]
}

async fn release_page(state: &AppState, tr: &Tr, who: &Identity, id: &str, failed: Option<Failed>) -> UiResult {
    let tr = tr.clone();
    let r = state.app.get_release(&who.principal, id).await.or_page(&tr)?;
    let editable = !who.principal.is_read_only() && who.principal.is_staff();
    let next = state
        .app
        .release_next_statuses(&who.principal, &r)
        .into_iter()
        .map(|s| (s.as_str().to_string(), tr.t(&format!("release-status-{}", s.as_str().replace('_', "-")))))
        .collect();
    let staff = if editable { super::change_admin::staff_options(state, &who.principal).await.or_page(&tr)? } else { vec![] };
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
            window: format!("{} – {}", tr.opt_datetime(&s.planned_start), tr.opt_datetime(&s.planned_end)),
            forms: if editable { stage_forms(&tr, &r.id, s, &staff, &failed) } else { vec![] },
        })
        .collect();
    let review = state.app.release_review(&who.principal, &r.id).await.or_page(&tr)?;
    let verdict = serde_json::to_value(review.verdict).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let mut outcome = vec![
        (tr.t("field-rollback-plan"), r.rollback_plan.clone().unwrap_or_else(|| "—".into())),
        (tr.t("release-comparison"), tr.t(&format!("release-verdict-{}", verdict.replace('_', "-")))),
        (tr.t("release-results-met"), review.met.to_string()),
        (tr.t("release-results-not-met"), (review.not_met + review.missing).to_string()),
    ];
    if let Some(o) = &r.rollback_outcome {
        let notes = r.rollback_notes.clone().unwrap_or_default();
        outcome.push((tr.t("release-rollback"), format!("{} · {notes}", tr.t(&format!("release-rollback-{}", o.replace('_', "-"))))));
    }
    if let Some(sum) = &r.review_summary {
        outcome.push((tr.t("release-review"), sum.clone()));
    }
    let mut forms = vec![];
    if editable {
        let outcomes: Vec<(String, String)> = ["restored", "partially_restored", "failed"]
            .iter()
            .map(|o| (o.to_string(), tr.t(&format!("release-rollback-{}", o.replace('_', "-")))))
            .collect();
        let specs: [(&str, &str, &[&'static str]); 3] = [
            ("rollback-plan", "release-set-rollback-plan", &["rollback_plan"]),
            ("rollback", "release-record-rollback", &["outcome", "notes"]),
            ("review", "release-record-review", &["summary"]),
        ];
        for (key, title, names) in specs {
            let labels = (tr.t(title), format!("/releases/{}/{key}", r.id), tr.t("action-save"));
            forms.push(SectionForm::build(&tr, &failed, key, labels, |f| {
                names
                    .iter()
                    .map(|&name| {
                        let current = if name == "rollback_plan" { r.rollback_plan.clone().unwrap_or_default() } else { String::new() };
                        let v = f.get(name).cloned().unwrap_or(current);
                        match name {
                            "outcome" => Field::new(&tr, name, "select", "").required().options(outcomes.clone(), &[v]),
                            _ => Field::new(&tr, name, "textarea", v).required(),
                        }
                    })
                    .collect()
            }));
        }
    }
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
        errors: vec![],
        editable,
        outcome,
        forms,
        history: super::readable_history(
            &state.app,
            &tr,
            &who.principal,
            &state.app.release_history(&who.principal, &r.id).await.or_page(&tr)?,
        )
        .await?,
        ctx: Ctx::new(&tr, Some(who), "/releases", None),
    };
    let mut page = page;
    // messages of a refused form that no field claimed go on top, as do those of the forms
    // without fields (transition, checklist, sign-off)
    let mut claimed = false;
    for s in page.stages.iter_mut().flat_map(|s| s.forms.iter_mut()).chain(page.forms.iter_mut()) {
        claimed |= failed.as_ref().is_some_and(|f| f.form == s.key);
        page.errors.append(&mut s.errors);
    }
    match failed.as_ref().map(|f| &f.error) {
        Some(AppError::Validation(list)) if !claimed => {
            page.errors.extend(list.iter().map(|fe| super::translate_field_error(&tr, fe.code, &fe.message)))
        }
        Some(e) if !claimed => page.errors.push(super::error_message(&tr, e)),
        _ => {}
    }
    Ok(render_status(super::status_for(&failed.map(|f| f.error)), &page))
}

// ---------------------------------------------------------------- creating a release

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

/// Back to the release page after a post; a refusal shows the page with that form open.
async fn after<T>(state: &AppState, tr: &Tr, who: &Identity, id: &str, form: &str, f: Form, r: Result<T, AppError>) -> UiResult {
    super::after_post(tr, &format!("/releases/{id}"), form, f, r, |failed| release_page(state, tr, who, id, failed)).await
}

pub async fn transition(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.transition_release(&who.principal, &id, &val(&f, "status"), opt(&f, "reason").as_deref(), None).await;
    after(&state, &tr, &who, &id, "transition", f, r).await
}

pub async fn sign_off(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, stage)): Path<(String, String)>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.sign_off_release_stage(&who.principal, &id, &stage, opt(&f, "note").as_deref()).await;
    after(&state, &tr, &who, &id, "sign-off", f, r).await
}

pub async fn tick(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, stage, index)): Path<(String, String, usize)>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.tick_release_item(&who.principal, &id, &stage, index, val(&f, "done") == "true").await;
    after(&state, &tr, &who, &id, "checklist", f, r).await
}

/// `key | description | target`, one per line; a line without two bars names `expected`.
fn expected_of(s: &str) -> Result<Vec<ExpectedResult>, AppError> {
    lines(s)
        .iter()
        .map(|l| match l.split('|').map(str::trim).collect::<Vec<_>>()[..] {
            [key, description, target] => Ok(ExpectedResult { key: key.into(), description: description.into(), target: target.into() }),
            _ => Err(AppError::field("expected", "invalid_expected", "write each result as key | description | target")),
        })
        .collect()
}

pub async fn plan(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, stage)): Path<(String, String)>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    let f = form_of(pairs);
    let when = |k: &str| super::parse_local(&tr, k, &val(&f, k)).map_err(|e| AppError::Validation(vec![e]));
    let input = (|| {
        Ok(StagePlanInput {
            planned_start: when("planned_start")?,
            planned_end: when("planned_end")?,
            checklist: lines(&val(&f, "checklist")),
            expected: expected_of(&val(&f, "expected"))?,
            signer_ids: val(&f, "signer_ids")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "false")
                .map(str::to_string)
                .collect(),
        })
    })();
    let r = match input {
        Ok(p) => state.app.plan_release_stage(&who.principal, &id, &stage, p, None).await,
        Err(e) => Err(e),
    };
    after(&state, &tr, &who, &id, &format!("plan-{stage}"), f, r).await
}

pub async fn result(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, stage)): Path<(String, String)>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    let f = form_of(pairs);
    let met = val(&f, "met").contains("true");
    let r = state.app.record_release_result(&who.principal, &id, &stage, &val(&f, "key"), &val(&f, "result"), met).await;
    after(&state, &tr, &who, &id, &format!("result-{stage}"), f, r).await
}

pub async fn rollback_plan(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.set_release_rollback_plan(&who.principal, &id, &val(&f, "rollback_plan")).await;
    after(&state, &tr, &who, &id, "rollback-plan", f, r).await
}

pub async fn rollback(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.record_release_rollback(&who.principal, &id, &val(&f, "outcome"), &val(&f, "notes")).await;
    after(&state, &tr, &who, &id, "rollback", f, r).await
}

pub async fn review(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.record_release_review(&who.principal, &id, &val(&f, "summary")).await;
    after(&state, &tr, &who, &id, "review", f, r).await
}

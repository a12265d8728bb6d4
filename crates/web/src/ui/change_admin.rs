//! Change management pages (REQUIREMENTS §5): what awaits the reader's approval, and the
//! administration of change — freeze (blackout) windows, pre-approved standard change
//! templates, approval delegations and how strictly live CIs need a change.

use super::problems::{label, opt, val};
use super::{ActionRow, Ctx, Failed, Field, Form, ListQuery, OrPage, RowAction, SectionForm, SectionsPage, UiError, UiResult, form_of};
use crate::AppState;
use crate::auth::{CsrfForm, Identity, UiUser};
use crate::i18n::Tr;
use axum::extract::{Path, Query, State};
use keel_app::changes::{DelegationInput, FreezeInput, TemplateInput, may_administer_changes};
use keel_app::{AppError, Principal};
use keel_domain::FieldError;
use keel_domain::identity::Role;
use keel_store::page::{PageRequest, SortKey, SortKind};

type Pairs = CsrfForm<Vec<(String, String)>>;

const DAY_MS: i64 = 86_400_000;
const NAME_SORT: SortKey = SortKey { name: "name", column: "name", kind: SortKind::Text };
const USER_SORT: SortKey = SortKey { name: "display_name", column: "display_name", kind: SortKind::Text };

/// Staff with the right who may write.
fn require(tr: &Tr, who: &Identity, allowed: bool) -> Result<(), UiError> {
    super::allow(tr, who, allowed && !who.principal.is_read_only())
}

fn page(tr: &Tr, who: &Identity, path: &str, flash: Option<&str>, title: &str) -> SectionsPage {
    SectionsPage::new(Ctx::new(tr, Some(who), path, flash), tr.t(title))
}

fn columns(tr: &Tr, keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| tr.t(k)).collect()
}

pub(super) async fn staff_options(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, AppError> {
    let f = keel_store::accounts::UserFilter { kind: Some("staff".into()), active: Some(true), ..Default::default() };
    let all = PageRequest { sort: USER_SORT, desc: false, after: None, limit: 1000 };
    Ok(state.app.list_users(who, f, &all).await?.items.into_iter().map(|u| (u.id, u.display_name)).collect())
}

fn name_of(list: &[(String, String)], id: &str) -> String {
    list.iter().find(|(i, _)| i == id).map_or_else(|| id.to_string(), |(_, n)| n.clone())
}

/// A required date and time of a form, in the reader's time zone.
fn when(tr: &Tr, f: &Form, k: &str) -> Result<i64, FieldError> {
    super::parse_local(tr, k, &val(f, k))?.ok_or_else(|| FieldError::new(k, "required", "required"))
}

/// The `starts_at`–`ends_at` window of a form; every bad end is named.
fn window(tr: &Tr, f: &Form) -> Result<(i64, i64), AppError> {
    match (when(tr, f, "starts_at"), when(tr, f, "ends_at")) {
        (Ok(s), Ok(e)) => Ok((s, e)),
        (s, e) => Err(AppError::Validation(s.err().into_iter().chain(e.err()).collect())),
    }
}

fn window_fields(tr: &Tr, f: &Form) -> Vec<Field> {
    vec![
        Field::new(tr, "starts_at", "datetime-local", val(f, "starts_at")).required(),
        Field::new(tr, "ends_at", "datetime-local", val(f, "ends_at")).required(),
    ]
}

fn selected(f: &Form, k: &str) -> Vec<String> {
    val(f, k).split(',').map(str::to_string).collect()
}

// ---------------------------------------------------------------- awaiting my approval

/// The changes whose open approval step waits for the reader, as approver or delegate
/// (customers' contacts included: their organisation may approve).
pub async fn awaiting(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    let list = state.app.changes_awaiting_me(&who.principal).await.or_page(&tr)?;
    let mut p = page(&tr, &who, "/changes/awaiting", q.flash.as_deref(), "change-awaiting-title");
    p.intro = tr.t("change-awaiting-intro");
    p.columns = columns(&tr, &["field-number", "field-title", "change-step", "change-window", "field-status"]);
    p.rows = list
        .into_iter()
        .map(|a| ActionRow {
            href: format!("/changes/{}", a.change.id),
            cells: vec![
                a.change.number.clone(),
                a.change.title.clone(),
                a.step,
                format!("{} – {}", tr.opt_datetime(&a.change.planned_start), tr.opt_datetime(&a.change.planned_end)),
                label(&tr, "change-status", &a.change.status),
            ],
            actions: vec![],
        })
        .collect();
    Ok(p.show(&None))
}

// ---------------------------------------------------------------- freezes

async fn freezes_page(state: &AppState, tr: &Tr, who: &Identity, failed: Option<Failed>, flash: Option<&str>) -> UiResult {
    let pr = &who.principal;
    require(tr, who, may_administer_changes(pr))?;
    let now = chrono::Utc::now().timestamp_millis();
    let list = state.app.list_change_freezes(pr, now - 30 * DAY_MS, now + 3660 * DAY_MS).await.or_page(tr)?;
    let all = PageRequest { sort: NAME_SORT, desc: false, after: None, limit: 500 };
    let cis: Vec<(String, String)> =
        state.app.list_cis(pr, &Default::default(), &all).await.or_page(tr)?.items.into_iter().map(|c| (c.id, c.name)).collect();
    let mut p = page(tr, who, "/changes/freezes", flash, "change-freezes-title");
    p.intro = tr.t("change-freezes-intro");
    p.links = vec![("/changes/schedule".into(), tr.t("nav-change-schedule"))];
    p.columns = columns(tr, &["field-name", "field-starts-at", "field-ends-at", "field-ci-ids"]);
    p.rows = list
        .iter()
        .map(|f| ActionRow {
            href: String::new(),
            cells: vec![
                f.name.clone(),
                tr.datetime(&f.starts_at),
                tr.datetime(&f.ends_at),
                if f.ci_ids.is_empty() {
                    tr.t("change-freeze-all-cis")
                } else {
                    f.ci_ids.iter().map(|i| name_of(&cis, i)).collect::<Vec<_>>().join(", ")
                },
            ],
            actions: (f.ends_at > now)
                .then(|| RowAction {
                    href: format!("/changes/freezes/{}/end", f.id),
                    label: tr.t("change-action-end-freeze"),
                    reason: false,
                })
                .into_iter()
                .collect(),
        })
        .collect();
    let title = (tr.t("change-freeze-new"), "/changes/freezes".to_string(), tr.t("change-action-declare-freeze"));
    p.forms.push(SectionForm::build(tr, &failed, "freeze", title, |f| {
        let mut v = vec![Field::new(tr, "name", "text", val(f, "name")).required()];
        v.extend(window_fields(tr, f));
        v.push(
            Field::new(tr, "ci_ids", "multiselect", "").options(cis.clone(), &selected(f, "ci_ids")).help(tr.t("change-freeze-cis-help")),
        );
        v
    }));
    Ok(p.show(&failed))
}

pub async fn freezes(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    freezes_page(&state, &tr, &who, None, q.flash.as_deref()).await
}

pub async fn freeze_create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(pairs): Pairs) -> UiResult {
    let f = form_of(pairs);
    let r = match window(&tr, &f) {
        Ok((starts_at, ends_at)) => {
            let ci_ids = selected(&f, "ci_ids").into_iter().filter(|s| !s.is_empty()).collect();
            state.app.create_change_freeze(&who.principal, FreezeInput { name: val(&f, "name"), starts_at, ends_at, ci_ids }).await
        }
        Err(e) => Err(e),
    };
    super::after_post(&tr, "/changes/freezes", "freeze", f, r, |failed| freezes_page(&state, &tr, &who, failed, None)).await
}

pub async fn freeze_end(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.end_change_freeze(&who.principal, &id).await;
    super::after_post(&tr, "/changes/freezes", "end", f, r, |failed| freezes_page(&state, &tr, &who, failed, None)).await
}

// ---------------------------------------------------------------- standard change templates

fn template_fields(tr: &Tr, f: &Form) -> Vec<Field> {
    let levels = ["low", "medium"].map(|l| (l.to_string(), label(tr, "change-risk", l)));
    vec![
        Field::new(tr, "name", "text", val(f, "name")).required(),
        Field::new(tr, "description", "textarea", val(f, "description")),
        Field::new(tr, "implementation_plan", "textarea", val(f, "implementation_plan")).required(),
        Field::new(tr, "back_out_plan", "textarea", val(f, "back_out_plan")).required(),
        Field::new(tr, "risk_level", "select", "").required().options(levels, &[val(f, "risk_level")]),
    ]
}

fn template_input(f: &Form) -> TemplateInput {
    TemplateInput {
        name: val(f, "name"),
        description: opt(f, "description"),
        implementation_plan: val(f, "implementation_plan"),
        back_out_plan: val(f, "back_out_plan"),
        risk_level: val(f, "risk_level"),
    }
}

async fn templates_page(state: &AppState, tr: &Tr, who: &Identity, failed: Option<Failed>, flash: Option<&str>) -> UiResult {
    require(tr, who, may_administer_changes(&who.principal))?;
    let list = state.app.list_change_templates(&who.principal, false).await.or_page(tr)?;
    let mut p = page(tr, who, "/changes/templates", flash, "change-templates-title");
    p.intro = tr.t("change-templates-intro");
    p.columns = columns(tr, &["field-name", "field-risk-level", "field-active", "field-updated-at"]);
    p.rows = list
        .into_iter()
        .map(|t| {
            let (what, key) = if t.active { ("retire", "change-action-retire") } else { ("restore", "change-action-restore") };
            ActionRow {
                href: format!("/changes/templates/{}", t.id),
                cells: vec![
                    t.name,
                    label(tr, "change-risk", &t.risk_level),
                    tr.t(if t.active { "value-yes" } else { "value-no" }),
                    tr.datetime(&t.updated_at),
                ],
                actions: vec![RowAction { href: format!("/changes/templates/{}/{what}", t.id), label: tr.t(key), reason: false }],
            }
        })
        .collect();
    let title = (tr.t("change-template-new"), "/changes/templates".to_string(), tr.t("action-create"));
    p.forms.push(SectionForm::build(tr, &failed, "template", title, |f| template_fields(tr, f)));
    Ok(p.show(&failed))
}

pub async fn templates(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    templates_page(&state, &tr, &who, None, q.flash.as_deref()).await
}

pub async fn template_create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<Form>) -> UiResult {
    let r = state.app.create_change_template(&who.principal, template_input(&f)).await;
    super::after_post(&tr, "/changes/templates", "template", f, r, |failed| templates_page(&state, &tr, &who, failed, None)).await
}

pub async fn template_active(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, what)): Path<(String, String)>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.set_change_template_active(&who.principal, &id, what == "restore").await;
    super::after_post(&tr, "/changes/templates", what.as_str(), f, r, |failed| templates_page(&state, &tr, &who, failed, None)).await
}

async fn template_page(state: &AppState, tr: &Tr, who: &Identity, id: &str, failed: Option<Failed>, flash: Option<&str>) -> UiResult {
    require(tr, who, may_administer_changes(&who.principal))?;
    let list = state.app.list_change_templates(&who.principal, false).await.or_page(tr)?;
    let t = list.into_iter().find(|t| t.id == id).ok_or_else(|| UiError(tr.clone(), AppError::NotFound))?;
    let mut p = page(tr, who, "/changes/templates", flash, "change-template-edit");
    p.links = vec![("/changes/templates".into(), tr.t("action-back"))];
    p.intro = tr.t1("change-template-approved", "when", tr.datetime(&t.approved_at));
    let current: Form = [
        ("name", t.name.clone()),
        ("description", t.description.clone().unwrap_or_default()),
        ("implementation_plan", t.implementation_plan.clone()),
        ("back_out_plan", t.back_out_plan.clone()),
        ("risk_level", t.risk_level.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let title = (t.name.clone(), format!("/changes/templates/{}", t.id), tr.t("action-save"));
    let mut form = SectionForm::build(tr, &failed, "template", title, |f| template_fields(tr, if f.is_empty() { &current } else { f }));
    form.open = true;
    form.hidden.push(("_version", t.version.to_string()));
    p.forms.push(form);
    Ok(p.show(&failed))
}

pub async fn template_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    template_page(&state, &tr, &who, &id, None, q.flash.as_deref()).await
}

pub async fn template_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state
        .app
        .update_change_template(&who.principal, &id, template_input(&f), super::expected_version(&f.get("_version").cloned()))
        .await;
    let href = format!("/changes/templates/{id}");
    super::after_post(&tr, &href, "template", f, r, |failed| template_page(&state, &tr, &who, &id, failed, None)).await
}

// ---------------------------------------------------------------- delegations

async fn delegations_page(state: &AppState, tr: &Tr, who: &Identity, failed: Option<Failed>, flash: Option<&str>) -> UiResult {
    let pr = &who.principal;
    require(tr, who, true)?;
    let staff = staff_options(state, pr).await.or_page(tr)?;
    let list = state.app.my_change_delegations(pr).await.or_page(tr)?;
    let mut p = page(tr, who, "/changes/delegations", flash, "change-delegations-title");
    p.intro = tr.t("change-delegations-intro");
    p.columns = columns(tr, &["field-delegator-id", "field-delegate-id", "field-starts-at", "field-ends-at"]);
    p.rows = list
        .iter()
        .map(|d| ActionRow {
            href: String::new(),
            cells: vec![
                name_of(&staff, &d.delegator_id),
                name_of(&staff, &d.delegate_id),
                tr.datetime(&d.starts_at),
                tr.datetime(&d.ends_at),
            ],
            actions: vec![],
        })
        .collect();
    let title = (tr.t("change-delegation-new"), "/changes/delegations".to_string(), tr.t("change-action-delegate"));
    p.forms.push(SectionForm::build(tr, &failed, "delegation", title, |f| {
        let mut v = vec![];
        if may_administer_changes(pr) {
            v.push(
                Field::new(tr, "delegator_id", "select", "")
                    .options(staff.clone(), &[val(f, "delegator_id")])
                    .help(tr.t("change-delegator-help")),
            );
        }
        v.push(Field::new(tr, "delegate_id", "select", "").required().options(staff.clone(), &[val(f, "delegate_id")]));
        v.extend(window_fields(tr, f));
        v
    }));
    Ok(p.show(&failed))
}

pub async fn delegations(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    delegations_page(&state, &tr, &who, None, q.flash.as_deref()).await
}

pub async fn delegation_create(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<Form>) -> UiResult {
    require(&tr, &who, true)?;
    let r = match window(&tr, &f) {
        Ok((starts_at, ends_at)) => {
            let input = DelegationInput { delegator_id: opt(&f, "delegator_id"), delegate_id: val(&f, "delegate_id"), starts_at, ends_at };
            state.app.create_change_delegation(&who.principal, input).await
        }
        Err(e) => Err(e),
    };
    super::after_post(&tr, "/changes/delegations", "delegation", f, r, |failed| delegations_page(&state, &tr, &who, failed, None)).await
}

// ---------------------------------------------------------------- change control of live CIs

fn may_set_control(p: &Principal) -> bool {
    p.is_admin() || p.has(Role::ServiceManager)
}

async fn control_page(state: &AppState, tr: &Tr, who: &Identity, failed: Option<Failed>, flash: Option<&str>) -> UiResult {
    require(tr, who, may_set_control(&who.principal))?;
    let mode = state.app.change_control_mode().await.or_page(tr)?;
    let mut p = page(tr, who, "/admin/change-control", flash, "change-control-title");
    p.intro = tr.t("change-control-intro");
    let title = (tr.t("change-control-title"), "/admin/change-control".to_string(), tr.t("action-save"));
    let mut form = SectionForm::build(tr, &failed, "control", title, |f| {
        let chosen = f.get("mode").cloned().unwrap_or_else(|| mode.as_str().to_string());
        let modes = ["off", "warn", "enforce"].map(|m| (m.to_string(), tr.t(&format!("change-control-{m}"))));
        vec![Field::new(tr, "mode", "select", "").required().options(modes, &[chosen])]
    });
    form.open = true;
    p.forms.push(form);
    Ok(p.show(&failed))
}

pub async fn control(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ListQuery>) -> UiResult {
    control_page(&state, &tr, &who, None, q.flash.as_deref()).await
}

pub async fn control_set(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<Form>) -> UiResult {
    let r = state.app.set_change_control_mode(&who.principal, &val(&f, "mode")).await;
    super::after_post(&tr, "/admin/change-control", "control", f, r, |failed| control_page(&state, &tr, &who, failed, None)).await
}

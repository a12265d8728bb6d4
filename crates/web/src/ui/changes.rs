//! Change management pages (REQUIREMENTS §5): the change list, raising a request for change,
//! the record page with its risk, impact, conflicts, approval, tasks, review, caused incidents
//! and lifecycle actions, and the forward schedule of change (month or week) with freezes.
//! Staff only; approvers from outside the project open the record page to vote.

use super::{Ctx, Field, FormPage, HistoryView, OrPage, Row, UiResult, attach_errors, render_status, see_other};
use crate::AppState;
use crate::api::changes::CHANGE_SORTS;
use crate::auth::{CsrfForm, Identity, UiUser};
use crate::i18n::Tr;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use keel_app::changes::{ApproverInput, DecisionInput, NewChange, ReviewInput, StepInput};
use keel_app::{AppError, Principal};
use keel_domain::change::{ChangeStatus, ChangeType, Conflict, ReviewOutcome};
use keel_store::changes::ChangeFilter;
use keel_store::page::{PageRequest, SortKey, SortKind, decode_cursor};
use std::collections::BTreeMap;

use super::{Form, form_of};

use super::problems::{label, locale_of, opt, split_ids, staff, val};

const NAME_SORT: SortKey = SortKey { name: "name", column: "name", kind: SortKind::Text };
const CODE_SORT: SortKey = SortKey { name: "code", column: "code", kind: SortKind::Text };
const USER_SORT: SortKey = SortKey { name: "display_name", column: "display_name", kind: SortKind::Text };

fn all(sort: SortKey) -> PageRequest {
    PageRequest { sort, desc: false, after: None, limit: 1000 }
}

async fn options(state: &AppState, who: &Principal) -> Result<Options, AppError> {
    let projects = state
        .app
        .list_projects(who, &keel_store::directory::ProjectFilter { status: Some("active".into()), ..Default::default() }, &all(CODE_SORT))
        .await?
        .items
        .into_iter()
        .map(|p| (p.id, format!("{} · {}", p.code, p.name)))
        .collect();
    let teams =
        state.app.list_teams(who, None, &all(NAME_SORT)).await?.items.into_iter().filter(|t| t.active).map(|t| (t.id, t.name)).collect();
    let f = keel_store::accounts::UserFilter { kind: Some("staff".into()), active: Some(true), ..Default::default() };
    let users = state.app.list_users(who, f, &all(USER_SORT)).await?.items.into_iter().map(|u| (u.id, u.display_name)).collect();
    let cis = state
        .app
        .list_cis(who, &Default::default(), &PageRequest { sort: NAME_SORT, desc: false, after: None, limit: 500 })
        .await?
        .items
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let templates =
        state.app.list_change_templates(who, true).await?.into_iter().map(|t| (t.id, format!("{} ({})", t.name, t.risk_level))).collect();
    Ok(Options { projects, teams, users, cis, templates })
}

struct Options {
    projects: Vec<(String, String)>,
    teams: Vec<(String, String)>,
    users: Vec<(String, String)>,
    cis: Vec<(String, String)>,
    templates: Vec<(String, String)>,
}

fn status_class(s: &str) -> String {
    format!("status-{}", s.replace('_', "-"))
}

use super::parse_local;

// ---------------------------------------------------------------- list

pub async fn list(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<super::ListQuery>) -> UiResult {
    staff(&tr, &who)?;
    let p = &who.principal;
    let sort = CHANGE_SORTS[0];
    let page = PageRequest { sort, desc: true, after: q.cursor.as_deref().and_then(|c| decode_cursor(&sort, c)), limit: 50 };
    let f = ChangeFilter {
        q: Some(q.q.clone()).filter(|s| !s.trim().is_empty()),
        statuses: Some(q.status.clone()).filter(|s| !s.is_empty()).into_iter().collect(),
        ..Default::default()
    };
    let list = state.app.list_changes(p, &f, &page).await.or_page(&tr)?;
    let columns =
        ["field-number", "field-title", "field-change-type", "field-status", "field-risk-level", "change-window", "field-updated-at"]
            .iter()
            .map(|k| tr.t(k))
            .collect();
    let rows = list
        .items
        .iter()
        .map(|c| Row {
            href: format!("/changes/{}", c.id),
            cells: vec![
                c.number.clone(),
                c.title.clone(),
                label(&tr, "change-type", &c.change_type),
                label(&tr, "change-status", &c.status),
                c.risk_level.as_deref().map(|r| label(&tr, "change-risk", r)).unwrap_or_default(),
                c.planned_start.map(|s| tr.datetime(&s)).unwrap_or_default(),
                tr.datetime(&c.updated_at),
            ],
        })
        .collect();
    let ctx = Ctx::new(&tr, Some(&who), "/changes", q.flash.as_deref());
    let new = (!p.is_read_only()).then(|| ("/changes/new".to_string(), tr.t("change-new-title")));
    Ok(super::list_page(ctx, tr.t("change-list-title"), "/changes", &q, new, (columns, rows), list.next_cursor))
}

// ---------------------------------------------------------------- raising a change

fn new_fields(tr: &Tr, o: &Options, f: &Form) -> Vec<Field> {
    let types = ChangeType::ALL.iter().map(|t| (t.as_str().to_string(), t.label(locale_of(tr)).to_string()));
    let quorums = ["all", "any", "at_least"].iter().map(|q| (q.to_string(), label(tr, "change-quorum", q)));
    vec![
        Field::new(tr, "project_id", "select", "").required().options(o.projects.clone(), &[val(f, "project_id")]),
        Field::new(tr, "change_type", "select", "").required().options(types, &[val(f, "change_type")]),
        Field::new(tr, "template_id", "select", "")
            .options(o.templates.clone(), &[val(f, "template_id")])
            .help(tr.t("change-help-template")),
        Field::new(tr, "title", "text", val(f, "title")).required(),
        Field::new(tr, "description", "textarea", val(f, "description")),
        Field::new(tr, "category", "text", val(f, "category")),
        Field::new(tr, "reason", "textarea", val(f, "reason")),
        Field::new(tr, "implementation_plan", "textarea", val(f, "implementation_plan")),
        Field::new(tr, "back_out_plan", "textarea", val(f, "back_out_plan")),
        Field::new(tr, "test_plan", "textarea", val(f, "test_plan")),
        Field::new(tr, "cost_estimate", "text", val(f, "cost_estimate")),
        Field::new(tr, "planned_start", "datetime-local", val(f, "planned_start")),
        Field::new(tr, "planned_end", "datetime-local", val(f, "planned_end")),
        Field::new(tr, "ci_ids", "multiselect", "").options(o.cis.clone(), &split_ids(&val(f, "ci_ids"))),
        Field::new(tr, "team_id", "select", "").options(o.teams.clone(), &[val(f, "team_id")]),
        Field::new(tr, "approvers", "multiselect", "")
            .options(o.users.clone(), &split_ids(&val(f, "approvers")))
            .help(tr.t("change-help-approvers")),
        Field::new(tr, "quorum", "select", "").options(quorums, &[val(f, "quorum")]),
        Field::new(tr, "quorum_n", "number", val(f, "quorum_n")),
    ]
}

async fn new_page(state: &AppState, tr: &Tr, who: &Identity, f: &Form, err: Option<AppError>) -> UiResult {
    let o = options(state, &who.principal).await.or_page(tr)?;
    let mut fields = new_fields(tr, &o, f);
    let errors = err.as_ref().map(|e| attach_errors(tr, &mut fields, e)).unwrap_or_default();
    let mut page =
        FormPage::new(Ctx::new(tr, Some(who), "/changes/new", None), tr.t("change-new-title"), "/changes".into(), fields, "/changes");
    page.errors = errors;
    page.submit = tr.t("change-action-raise");
    Ok(render_status(super::status_for(&err), &page))
}

pub async fn new_form(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    staff(&tr, &who)?;
    new_page(&state, &tr, &who, &Form::new(), None).await
}

/// Field errors with an index (`ci_ids[2]`, `approval_steps[0].approvers`) belong to the form's one field.
fn flatten_fields(e: AppError) -> AppError {
    match e {
        AppError::Validation(list) => AppError::Validation(
            list.into_iter()
                .map(|mut fe| {
                    if let Some(i) = fe.field.find('[') {
                        let base = fe.field[..i].to_string();
                        let rest = fe.field.rsplit('.').next().unwrap_or("").to_string();
                        fe.field = match base.as_str() {
                            "approval_steps" if rest == "quorum" => "quorum".into(),
                            "approval_steps" => "approvers".into(),
                            _ => base,
                        };
                    }
                    fe
                })
                .collect(),
        ),
        other => other,
    }
}

pub async fn create(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    staff(&tr, &who)?;
    let f = form_of(pairs);
    let mut errs = Vec::new();
    let mut time = |field: &str| match parse_local(&tr, field, &val(&f, field)) {
        Ok(v) => v,
        Err(e) => {
            errs.push(e);
            None
        }
    };
    let (planned_start, planned_end) = (time("planned_start"), time("planned_end"));
    let approvers = split_ids(&val(&f, "approvers"));
    let approval_steps = if approvers.is_empty() {
        vec![]
    } else {
        vec![StepInput {
            name: "CAB".into(),
            approvers: approvers.into_iter().map(|id| ApproverInput { kind: "user".into(), id }).collect(),
            quorum: val(&f, "quorum"),
            quorum_n: val(&f, "quorum_n").trim().parse().ok(),
        }]
    };
    let input = NewChange {
        project_id: val(&f, "project_id"),
        change_type: val(&f, "change_type"),
        template_id: opt(&f, "template_id"),
        title: val(&f, "title"),
        description: opt(&f, "description"),
        category: opt(&f, "category"),
        reason: opt(&f, "reason"),
        cost_estimate: opt(&f, "cost_estimate"),
        implementation_plan: opt(&f, "implementation_plan"),
        back_out_plan: opt(&f, "back_out_plan"),
        test_plan: opt(&f, "test_plan"),
        planned_start,
        planned_end,
        ci_ids: split_ids(&val(&f, "ci_ids")),
        team_id: opt(&f, "team_id"),
        approval_steps,
    };
    if !errs.is_empty() {
        return new_page(&state, &tr, &who, &f, Some(AppError::Validation(errs))).await;
    }
    match state.app.create_change(&who.principal, input).await {
        Ok(c) => Ok(see_other(&format!("/changes/{}", c.id), "created")),
        Err(e) => new_page(&state, &tr, &who, &f, Some(flatten_fields(e))).await,
    }
}

// ---------------------------------------------------------------- the record page

pub struct Detail {
    pub label: String,
    pub value: String,
}

pub struct ActionForm {
    pub to: String,
    pub label: String,
    pub needs_reason: bool,
}

pub struct StepView {
    pub name: String,
    pub quorum: String,
    pub approvers: String,
    pub outcome: String,
}

pub struct VoteView {
    pub who: String,
    pub verdict: String,
    pub reason: String,
    pub at: String,
}

pub struct LinkView {
    pub href: String,
    pub number: String,
    pub title: String,
    pub status: String,
}

pub struct TaskView {
    pub id: String,
    pub title: String,
    pub team: String,
    pub done: bool,
}

#[derive(Template)]
#[template(path = "changes/change.html")]
pub struct ChangePage {
    pub ctx: Ctx,
    pub title: String,
    pub number: String,
    pub heading: String,
    pub id: String,
    pub version: i64,
    pub status: String,
    pub status_class: String,
    pub change_type: String,
    pub risk: String,
    pub description: String,
    pub details: Vec<Detail>,
    pub plans: Vec<Detail>,
    pub errors: Vec<String>,
    pub actions: Vec<ActionForm>,
    pub impact: Vec<Detail>,
    pub conflicts: Vec<String>,
    pub steps: Vec<StepView>,
    pub votes: Vec<VoteView>,
    pub may_decide: bool,
    /// The reason typed into a refused decision, and why it was refused.
    pub decide_reason: String,
    pub decide_error: Option<String>,
    pub risk_form: Option<Vec<Field>>,
    pub review_form: Option<Vec<Field>>,
    pub tasks: Vec<TaskView>,
    pub task_form: Option<Vec<Field>>,
    pub incidents: Vec<LinkView>,
    pub may_work: bool,
    pub history: Vec<HistoryView>,
}

struct Failed {
    form: String,
    values: Form,
    error: AppError,
}

async fn change_page(state: &AppState, tr: &Tr, who: &Identity, id: &str, failed: Option<Failed>, flash: Option<&str>) -> UiResult {
    let pr = &who.principal;
    let c = state.app.get_change(pr, id).await.or_page(tr)?;
    let empty = Form::new();
    let typed = |name: &str| failed.as_ref().filter(|fl| fl.form == name).map(|fl| &fl.values).unwrap_or(&empty);
    let mut errors = Vec::new();
    let may_work = pr.is_staff() && !pr.is_read_only() && pr.can_see_project(&c.project_id, Some(&c.organization_id));
    // A customer's contact opens the page only to approve: no directory lists for them.
    let o = if pr.is_staff() {
        options(state, pr).await.or_page(tr)?
    } else {
        Options { projects: vec![], teams: vec![], users: vec![], cis: vec![], templates: vec![] }
    };
    let name_of =
        |list: &[(String, String)], id: &str| list.iter().find(|(i, _)| i == id).map_or_else(|| id.to_string(), |(_, n)| n.clone());
    let mut details = vec![
        Detail { label: tr.t("field-project-id"), value: c.names.project_code.clone() },
        Detail { label: tr.t("field-organization-id"), value: c.names.organization_name.clone() },
        Detail { label: tr.t("field-category"), value: c.category.clone().unwrap_or_default() },
        Detail { label: tr.t("field-team-id"), value: c.names.team_name.clone().unwrap_or_default() },
        Detail {
            label: tr.t("change-window"),
            value: match (c.planned_start, c.planned_end) {
                (Some(s), Some(e)) => format!("{} – {}", tr.datetime(&s), tr.datetime(&e)),
                _ => tr.t("change-no-window"),
            },
        },
        Detail { label: tr.t("field-cost-estimate"), value: c.cost_estimate.clone().unwrap_or_default() },
        Detail { label: tr.t("field-created-at"), value: tr.datetime(&c.created_at) },
        Detail { label: tr.t("field-updated-at"), value: tr.datetime(&c.updated_at) },
    ];
    if let Some(t) = &c.names.template_name {
        details.push(Detail { label: tr.t("field-template-id"), value: t.clone() });
    }
    if !c.ci_ids.is_empty() {
        details.push(Detail {
            label: tr.t("field-ci-ids"),
            value: c.ci_ids.iter().map(|i| name_of(&o.cis, i)).collect::<Vec<_>>().join(", "),
        });
    }
    if let Some(r) = &c.status_reason {
        details.push(Detail { label: tr.t("field-reason"), value: r.clone() });
    }
    let mut plans = vec![];
    for (k, v) in [
        ("field-reason", &c.reason),
        ("field-implementation-plan", &c.implementation_plan),
        ("field-back-out-plan", &c.back_out_plan),
        ("field-test-plan", &c.test_plan),
    ] {
        if let Some(v) = v {
            plans.push(Detail { label: tr.t(k), value: v.clone() });
        }
    }
    if let Some(outcome) = &c.review_outcome {
        plans.push(Detail { label: tr.t("field-outcome"), value: label(tr, "change-outcome", outcome) });
        plans.push(Detail { label: tr.t("field-notes"), value: c.review_notes.clone().unwrap_or_default() });
    }
    let actions = if may_work {
        state
            .app
            .change_next_statuses(pr, &c)
            .await
            .or_page(tr)?
            .into_iter()
            .map(|to| ActionForm {
                label: tr.t(&format!("change-to-{}", to.as_str().replace('_', "-"))),
                needs_reason: matches!(to, ChangeStatus::Draft | ChangeStatus::Cancelled | ChangeStatus::Failed | ChangeStatus::BackedOut),
                to: to.as_str().to_string(),
            })
            .collect()
    } else {
        vec![]
    };
    let mut impact = vec![];
    let mut conflicts = vec![];
    if pr.is_staff() {
        let i = state.app.change_impact(pr, &c.id).await.or_page(tr)?;
        let join = |v: Vec<String>| if v.is_empty() { tr.t("problem-none") } else { v.join(", ") };
        impact.push(Detail { label: tr.t("change-impact-cis"), value: join(i.cis.iter().map(|c| c.name.clone()).collect()) });
        impact.push(Detail { label: tr.t("change-impact-services"), value: join(i.services.iter().map(|c| c.name.clone()).collect()) });
        impact.push(Detail { label: tr.t("change-impact-customers"), value: join(i.customers.iter().map(|c| c.name.clone()).collect()) });
        for k in state.app.change_conflicts(pr, &c.id).await.or_page(tr)? {
            let what = match &k.conflict {
                Conflict::SameCi { ci_ids, .. } => {
                    tr.t1("change-conflict-same-ci", "cis", ci_ids.iter().map(|i| name_of(&o.cis, i)).collect::<Vec<_>>().join(", "))
                }
                Conflict::DependentCi { pairs, .. } => tr.t1(
                    "change-conflict-dependent-ci",
                    "cis",
                    pairs
                        .iter()
                        .map(|p| format!("{} ↔ {}", name_of(&o.cis, &p.ours), name_of(&o.cis, &p.theirs)))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                Conflict::Freeze { .. } => tr.t("change-conflict-freeze"),
            };
            let other = k.change_number.clone().or(k.freeze_name.clone()).unwrap_or_default();
            conflicts.push(format!("{other}: {what}"));
        }
    }
    let approval = state.app.change_approval(pr, &c.id).await.or_page(tr)?;
    let steps = approval
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| StepView {
            name: s.name.clone(),
            quorum: match s.quorum_n {
                Some(n) => format!("{} {n}/{}", label(tr, "change-quorum", &s.quorum_rule), s.approvers.len()),
                None => label(tr, "change-quorum", &s.quorum_rule),
            },
            approvers: s
                .approvers
                .iter()
                .map(|(k, id)| {
                    if k == "user" {
                        name_of(&o.users, id)
                    } else if id.starts_with("organization:") {
                        c.names.organization_name.clone()
                    } else {
                        name_of(&o.teams, id)
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
            outcome: approval
                .evaluation
                .as_ref()
                .and_then(|e| e.steps.get(i))
                .map(|e| {
                    format!("{} · {}/{}", label(tr, "change-outcome", &format!("{:?}", e.outcome).to_lowercase()), e.approvals, e.required)
                })
                .unwrap_or_default(),
        })
        .collect();
    let votes = approval
        .votes
        .iter()
        .map(|v| VoteView {
            who: v.actor_name.clone().unwrap_or_else(|| v.actor_id.clone()),
            verdict: label(tr, "change-verdict", &v.verdict),
            reason: v.reason.clone().unwrap_or_default(),
            at: tr.datetime(&v.at),
        })
        .collect();
    let status = ChangeStatus::parse(&c.status).unwrap_or(ChangeStatus::Closed);
    let ty = ChangeType::parse(&c.change_type).unwrap_or(ChangeType::Normal);
    let risk_form = if may_work
        && ty != ChangeType::Standard
        && matches!(status, ChangeStatus::Draft | ChangeStatus::Submitted | ChangeStatus::Assessed)
    {
        let q = state.app.risk_questionnaire().await.or_page(tr)?;
        let current: BTreeMap<String, String> = c.risk_answers.as_deref().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_default();
        let f = typed("risk");
        Some(
            q.questions
                .iter()
                .map(|qn| {
                    let name = super::cmdb::intern(format!("risk.{}", qn.key));
                    let chosen = f.get(name).cloned().or_else(|| current.get(&qn.key).cloned()).unwrap_or_default();
                    let mut fld = Field::new(tr, "risk", "select", "")
                        .required()
                        .options(qn.answers.iter().map(|a| (a.key.clone(), a.text(locale_of(tr)).to_string())), &[chosen]);
                    fld.name = name;
                    fld.label = qn.text(locale_of(tr)).to_string();
                    fld
                })
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };
    let review_form =
        (may_work && matches!(status, ChangeStatus::Implemented | ChangeStatus::Failed | ChangeStatus::BackedOut)).then(|| {
            let f = typed("review");
            let outcomes = ReviewOutcome::ALL.iter().map(|o| (o.as_str().to_string(), o.label(locale_of(tr)).to_string()));
            vec![
                Field::new(tr, "outcome", "select", "").required().options(outcomes, &[val(f, "outcome")]),
                Field::new(tr, "notes", "textarea", val(f, "notes")),
                Field::new(tr, "follow_up", "textarea", val(f, "follow_up")),
                Field::new(tr, "caused_incident_ids", "text", val(f, "caused_incident_ids")).help(tr.t("problem-help-incidents")),
            ]
        });
    let tasks = state
        .app
        .change_tasks(pr, &c.id)
        .await
        .or_page(tr)?
        .into_iter()
        .map(|t| TaskView { id: t.id, title: t.title, team: t.team_name.unwrap_or_default(), done: t.status == "done" })
        .collect();
    let task_form = (may_work && !status.is_terminal()).then(|| {
        let f = typed("task");
        vec![
            Field::new(tr, "title", "text", val(f, "title")).required(),
            Field::new(tr, "team_id", "select", "").options(o.teams.clone(), &[val(f, "team_id")]),
        ]
    });
    let incidents = state
        .app
        .change_incidents(pr, &c.id)
        .await
        .or_page(tr)?
        .into_iter()
        .map(|t| LinkView {
            href: format!("/incidents/{}", t.id),
            number: t.number,
            title: t.title,
            status: label(tr, "incident-status", &t.status),
        })
        .collect();
    let (mut risk_form, mut review_form, mut task_form) = (risk_form, review_form, task_form);
    if let Some(fl) = &failed {
        let target = match fl.form.as_str() {
            "risk" => risk_form.as_mut(),
            "review" => review_form.as_mut(),
            "task" => task_form.as_mut(),
            _ => None,
        };
        let e = match (&fl.error, fl.form.as_str()) {
            (AppError::Validation(list), "risk") => AppError::Validation(
                list.iter().map(|fe| keel_domain::FieldError::new(format!("risk.{}", fe.field), fe.code, fe.message.clone())).collect(),
            ),
            (AppError::Validation(list), _) => AppError::Validation(
                list.iter()
                    .map(|fe| {
                        let field = fe.field.split('[').next().unwrap_or("").to_string();
                        keel_domain::FieldError::new(field, fe.code, fe.message.clone())
                    })
                    .collect(),
            ),
            _ => AppError::NotFound,
        };
        match target {
            Some(fields) if matches!(fl.error, AppError::Validation(_)) => errors.extend(attach_errors(tr, fields, &e)),
            _ => errors.extend(match &fl.error {
                AppError::Validation(list) => {
                    list.iter().map(|fe| super::translate_field_error(tr, fe.code, &fe.message)).collect::<Vec<_>>()
                }
                other => vec![super::error_message(tr, other)],
            }),
        }
    }
    let history = if pr.is_staff() {
        super::readable_history(&state.app, tr, &who.principal, &state.app.change_history(pr, &c.id).await.or_page(tr)?).await?
    } else {
        vec![]
    };
    let status_code = failed.as_ref().map(|f| crate::error::status_of(&f.error)).unwrap_or(StatusCode::OK);
    let page = ChangePage {
        ctx: Ctx::new(tr, Some(who), "/changes", flash),
        title: format!("{} {}", c.number, c.title),
        number: c.number.clone(),
        heading: c.title.clone(),
        id: c.id.clone(),
        version: c.version,
        status: label(tr, "change-status", &c.status),
        status_class: status_class(&c.status),
        change_type: label(tr, "change-type", &c.change_type),
        risk: c.risk_level.as_deref().map(|r| label(tr, "change-risk", r)).unwrap_or_else(|| tr.t("change-risk-unassessed")),
        description: c.description.clone().unwrap_or_default(),
        details,
        plans,
        errors,
        actions,
        impact,
        conflicts,
        steps,
        votes,
        may_decide: approval.may_decide,
        decide_reason: val(typed("decide"), "reason"),
        decide_error: match failed.as_ref().filter(|f| f.form == "decide").map(|f| &f.error) {
            Some(AppError::Validation(list)) => {
                list.iter().find(|fe| fe.field == "reason").map(|fe| super::translate_field_error(tr, fe.code, &fe.message))
            }
            _ => None,
        },
        risk_form,
        review_form,
        tasks,
        task_form,
        incidents,
        may_work,
        history,
    };
    Ok(render_status(status_code, &page))
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
    change_page(&state, &tr, &who, &id, None, q.flash.as_deref()).await
}

async fn after_post(state: &AppState, tr: &Tr, who: &Identity, id: &str, form: &str, f: Form, r: Result<(), AppError>) -> UiResult {
    match r {
        Ok(()) => Ok(see_other(&format!("/changes/{id}"), "saved")),
        Err(AppError::NotFound) => Err(super::UiError(tr.clone(), AppError::NotFound)),
        Err(error) => change_page(state, tr, who, id, Some(Failed { form: form.to_string(), values: f, error }), None).await,
    }
}

fn version_of(f: &Form) -> Option<i64> {
    f.get("_version").and_then(|v| v.parse().ok())
}

pub async fn transition(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.transition_change(&who.principal, &id, &val(&f, "to"), opt(&f, "reason"), version_of(&f)).await.map(|_| ());
    after_post(&state, &tr, &who, &id, "transition", f, r).await
}

pub async fn decide(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let input = DecisionInput { verdict: val(&f, "verdict"), reason: opt(&f, "reason"), on_behalf_of: None };
    let r = state.app.decide_change(&who.principal, &id, input).await.map(|_| ());
    after_post(&state, &tr, &who, &id, "decide", f, r).await
}

pub async fn risk(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let answers = f
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("risk.")?.to_string(), v.trim().to_string())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let r = state.app.assess_change_risk(&who.principal, &id, answers, version_of(&f)).await.map(|_| ());
    after_post(&state, &tr, &who, &id, "risk", f, r).await
}

pub async fn review(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let input = ReviewInput {
        outcome: val(&f, "outcome"),
        notes: opt(&f, "notes"),
        follow_up: opt(&f, "follow_up"),
        caused_incident_ids: split_ids(&val(&f, "caused_incident_ids")),
    };
    let r = state.app.review_change(&who.principal, &id, input, version_of(&f)).await.map(|_| ());
    after_post(&state, &tr, &who, &id, "review", f, r).await
}

pub async fn add_task(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.add_change_task(&who.principal, &id, &val(&f, "title"), opt(&f, "team_id")).await.map(|_| ());
    after_post(&state, &tr, &who, &id, "task", f, r).await
}

pub async fn complete_task(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path((id, task)): Path<(String, String)>,
    CsrfForm(f): CsrfForm<Form>,
) -> UiResult {
    let r = state.app.complete_change_task(&who.principal, &id, &task).await.map(|_| ());
    after_post(&state, &tr, &who, &id, "task_done", f, r).await
}

// ---------------------------------------------------------------- the forward schedule

pub struct DayView {
    pub date: String,
    pub weekday: String,
    pub entries: Vec<EntryView>,
    pub frozen: Vec<String>,
}

pub struct EntryView {
    pub href: String,
    pub number: String,
    pub title: String,
    pub time: String,
    pub status: String,
    pub conflict: bool,
}

#[derive(Template)]
#[template(path = "changes/schedule.html")]
pub struct SchedulePage {
    pub ctx: Ctx,
    pub title: String,
    pub view: String,
    pub period: String,
    pub prev: String,
    pub next: String,
    pub other_view: String,
    pub days: Vec<DayView>,
}

#[derive(serde::Deserialize, Default)]
pub struct ScheduleQuery {
    /// `month` (default) or `week`.
    view: Option<String>,
    /// Any day of the period, `YYYY-MM-DD`.
    date: Option<String>,
}

pub async fn schedule(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<ScheduleQuery>) -> UiResult {
    staff(&tr, &who)?;
    let today = chrono::Utc::now().with_timezone(&tr.tz).date_naive();
    let day = q.date.as_deref().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).unwrap_or(today);
    let week = q.view.as_deref() == Some("week");
    let (first, days, prev, next) = if week {
        let first = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
        (first, 7, first - Duration::days(7), first + Duration::days(7))
    } else {
        let first = day.with_day(1).unwrap_or(day);
        let next = if first.month() == 12 {
            NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
        }
        .unwrap_or(first);
        let prev = if first.month() == 1 {
            NaiveDate::from_ymd_opt(first.year() - 1, 12, 1)
        } else {
            NaiveDate::from_ymd_opt(first.year(), first.month() - 1, 1)
        }
        .unwrap_or(first);
        (first, (next - first).num_days(), prev, next)
    };
    let at = |d: NaiveDate| {
        tr.tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default()).earliest().map(|t| t.timestamp_millis()).unwrap_or(0)
    };
    let (from, to) = (at(first), at(first + Duration::days(days)));
    let s = state.app.change_schedule(&who.principal, from, to).await.or_page(&tr)?;
    let mut views = Vec::new();
    for i in 0..days {
        let d = first + Duration::days(i);
        let (start, end) = (at(d), at(d + Duration::days(1)));
        let entries = s
            .changes
            .iter()
            .filter(|c| c.planned_start < end && c.planned_end > start)
            .map(|c| EntryView {
                href: format!("/changes/{}", c.id),
                number: c.number.clone(),
                title: c.title.clone(),
                time: format!("{} – {}", tr.datetime(&c.planned_start), tr.datetime(&c.planned_end)),
                status: label(&tr, "change-status", &c.status),
                conflict: !c.conflicts.is_empty(),
            })
            .collect();
        let frozen = s.freezes.iter().filter(|f| f.starts_at < end && f.ends_at > start).map(|f| f.name.clone()).collect();
        views.push(DayView {
            date: d.format("%Y-%m-%d").to_string(),
            weekday: tr.t(&format!("change-weekday-{}", d.weekday().num_days_from_monday())),
            entries,
            frozen,
        });
    }
    let view = if week { "week" } else { "month" };
    let page = SchedulePage {
        ctx: Ctx::new(&tr, Some(&who), "/changes/schedule", None),
        title: tr.t("change-schedule-title"),
        view: view.into(),
        period: if week { format!("{} – {}", first, first + Duration::days(6)) } else { first.format("%Y-%m").to_string() },
        prev: format!("/changes/schedule?view={view}&date={prev}"),
        next: format!("/changes/schedule?view={view}&date={next}"),
        other_view: format!("/changes/schedule?view={}&date={first}", if week { "month" } else { "week" }),
        days: views,
    };
    Ok(render_status(StatusCode::OK, &page))
}

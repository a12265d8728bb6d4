//! Release management (REQUIREMENTS §5, manual §5.1.4): creating releases that group changes,
//! planning the build, test, acceptance and deployment stages with checklists, expected
//! results and named signers, ticking checklists, recording actual results, signing stages off
//! in order (each stage by its signers, one after the other), the lifecycle through the
//! domain's `transition`, the rollback plan and outcome, and the release review comparing
//! planned with actual results.
//!
//! Release management is staff work: a customer contact reads nothing of it.

use crate::directory::scope_of;
use crate::incidents::time;
use crate::writer::{Writer, snapshot};
use crate::{App, AppError, Principal, Result};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use keel_domain::audit::AuditAction;
use keel_domain::change::{ChangeNumber, ChangeStatus, ChangeType};
use keel_domain::error::{Errors, FieldError};
use keel_domain::identity::AccountKind;
use keel_domain::process::Process;
use keel_domain::release::{
    ActualResult, ChecklistItem, Done, ExpectedResult, NewRelease as DomainNewRelease, Release, ReleaseNumber, ReleaseReview,
    ReleaseStatus, ReviewRecord, RollbackOutcome, RollbackRecord, SignOff, Stage, StageKind, StagePlan, compare, release_transitions_from,
};
use keel_domain::release::{NoteChange, release_notes};
use keel_domain::validate::Locale;
use keel_store::page::{Page, PageRequest};
use keel_store::releases::{
    self as store, ActualRow, ChecklistRow, ExpectedRow, ReleaseFilter, ReleaseRecord, ReleaseStatusRow, SignerRow, StageRecord,
};
use keel_store::{accounts, directory, kernel};

/// A new release as a form or the API delivers it.
#[derive(Debug, Clone, Default)]
pub struct NewRelease {
    pub project_id: String,
    pub title: String,
    pub version: String,
    pub description: Option<String>,
    pub change_ids: Vec<String>,
    pub rollback_plan: Option<String>,
    pub known_issues: Vec<String>,
}

/// The plan of one stage: dates (Unix ms), checklist, expected results and the staff who
/// sign the stage off, in the order they sign. Replacing a plan clears ticks and signatures.
#[derive(Debug, Clone, Default)]
pub struct StagePlanInput {
    pub planned_start: Option<i64>,
    pub planned_end: Option<i64>,
    pub checklist: Vec<String>,
    pub expected: Vec<ExpectedResult>,
    pub signer_ids: Vec<String>,
}

fn internal(what: &str) -> AppError {
    AppError::Internal(format!("stored release has an invalid {what}"))
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn conflict(code: &'static str, field: &str, message: impl Into<String>) -> AppError {
    AppError::Conflict { code, field: Some(field.to_string()), message: message.into() }
}

/// Parses a stage name; a field error naming `stage` otherwise.
pub fn stage_kind(s: &str) -> Result<StageKind> {
    StageKind::parse(s.trim())
        .ok_or_else(|| AppError::Validation(vec![FieldError::new("stage", "invalid_stage", "build, test, acceptance or deployment")]))
}

fn outcome_of(s: &str) -> Option<RollbackOutcome> {
    [RollbackOutcome::Restored, RollbackOutcome::PartiallyRestored, RollbackOutcome::Failed].into_iter().find(|o| o.as_str() == s)
}

/// The domain release of a stored one.
pub fn release_of(r: &ReleaseRecord) -> Result<Release> {
    let stages = StageKind::ALL
        .into_iter()
        .map(|kind| {
            let s = r.stages.iter().find(|s| s.stage == kind.as_str());
            Stage {
                kind,
                planned_start: s.and_then(|s| s.planned_start).map(time),
                planned_end: s.and_then(|s| s.planned_end).map(time),
                checklist: s
                    .map(|s| &s.checklist[..])
                    .unwrap_or_default()
                    .iter()
                    .map(|c| ChecklistItem {
                        text: c.text.clone(),
                        done: c.done_by.clone().map(|by| Done { by, at: time(c.done_at.unwrap_or_default()) }),
                    })
                    .collect(),
                expected: s
                    .map(|s| &s.expected[..])
                    .unwrap_or_default()
                    .iter()
                    .map(|e| ExpectedResult { key: e.key.clone(), description: e.description.clone(), target: e.target.clone() })
                    .collect(),
                actual: s
                    .map(|s| &s.actual[..])
                    .unwrap_or_default()
                    .iter()
                    .map(|a| ActualResult {
                        key: a.key.clone(),
                        result: a.result.clone(),
                        met: a.met,
                        recorded_by: a.recorded_by.clone(),
                        recorded_at: time(a.recorded_at),
                    })
                    .collect(),
                sign_off: s.and_then(|s| {
                    s.signed_off_by.clone().map(|by| SignOff {
                        by,
                        at: time(s.signed_off_at.unwrap_or_default()),
                        note: s.sign_off_note.clone(),
                    })
                }),
            }
        })
        .collect();
    let rollback = match (&r.rollback_outcome, &r.rollback_notes) {
        (Some(o), Some(n)) => Some(RollbackRecord {
            outcome: outcome_of(o).ok_or_else(|| internal("rollback outcome"))?,
            notes: n.clone(),
            performed_by: r.rollback_by.clone().unwrap_or_default(),
            performed_at: time(r.rollback_at.unwrap_or_default()),
        }),
        _ => None,
    };
    Ok(Release {
        id: r.id.clone(),
        number: ReleaseNumber::parse(&r.number).ok_or_else(|| internal("number"))?,
        title: r.title.clone(),
        version: r.release_version.clone(),
        description: r.description.clone(),
        status: ReleaseStatus::parse(&r.status).ok_or_else(|| internal("status"))?,
        change_ids: r.change_ids.clone(),
        stages,
        rollback_plan: r.rollback_plan.clone(),
        rollback,
        known_issues: r.known_issues.clone(),
        review: r.review_summary.clone().map(|summary| ReviewRecord {
            summary,
            reviewed_by: r.reviewed_by.clone().unwrap_or_default(),
            reviewed_at: time(r.reviewed_at.unwrap_or_default()),
        }),
        cancellation_reason: r.cancellation_reason.clone(),
    })
}

/// Copies a domain release onto its row, keeping each stage's named signers.
fn write_release(r: &mut ReleaseRecord, d: &Release) {
    r.title = d.title.clone();
    r.release_version = d.version.clone();
    r.description = d.description.clone();
    r.status = d.status.as_str().into();
    r.change_ids = d.change_ids.clone();
    r.rollback_plan = d.rollback_plan.clone();
    r.known_issues = d.known_issues.clone();
    r.rollback_outcome = d.rollback.as_ref().map(|x| x.outcome.as_str().into());
    r.rollback_notes = d.rollback.as_ref().map(|x| x.notes.clone());
    r.rollback_by = d.rollback.as_ref().map(|x| x.performed_by.clone());
    r.rollback_at = d.rollback.as_ref().map(|x| ms(x.performed_at));
    r.review_summary = d.review.as_ref().map(|x| x.summary.clone());
    r.reviewed_by = d.review.as_ref().map(|x| x.reviewed_by.clone());
    r.reviewed_at = d.review.as_ref().map(|x| ms(x.reviewed_at));
    r.cancellation_reason = d.cancellation_reason.clone();
    let old = std::mem::take(&mut r.stages);
    r.stages = d
        .stages
        .iter()
        .map(|s| StageRecord {
            stage: s.kind.as_str().into(),
            planned_start: s.planned_start.map(ms),
            planned_end: s.planned_end.map(ms),
            checklist: s
                .checklist
                .iter()
                .map(|c| ChecklistRow {
                    text: c.text.clone(),
                    done_by: c.done.as_ref().map(|d| d.by.clone()),
                    done_at: c.done.as_ref().map(|d| ms(d.at)),
                })
                .collect(),
            expected: s
                .expected
                .iter()
                .map(|e| ExpectedRow { key: e.key.clone(), description: e.description.clone(), target: e.target.clone() })
                .collect(),
            actual: s
                .actual
                .iter()
                .map(|a| ActualRow {
                    key: a.key.clone(),
                    result: a.result.clone(),
                    met: a.met,
                    recorded_by: a.recorded_by.clone(),
                    recorded_at: ms(a.recorded_at),
                })
                .collect(),
            signers: old.iter().find(|o| o.stage == s.kind.as_str()).map(|o| o.signers.clone()).unwrap_or_default(),
            signed_off_by: s.sign_off.as_ref().map(|o| o.by.clone()),
            signed_off_at: s.sign_off.as_ref().map(|o| ms(o.at)),
            sign_off_note: s.sign_off.as_ref().and_then(|o| o.note.clone()),
        })
        .collect();
}

fn audit_of(r: &ReleaseRecord) -> serde_json::Value {
    let mut v = snapshot(r);
    if let Some(o) = v.as_object_mut() {
        o.remove("status_changed_at");
    }
    v
}

/// Release management is staff work; a contact is answered as if nothing existed.
fn staff_only(actor: &Principal) -> Result<()> {
    if actor.is_staff() { Ok(()) } else { Err(AppError::NotFound) }
}

/// Loads a release by id or number (REL-000001) the actor may see; `NotFound` otherwise.
async fn load_release(conn: &mut sqlx::AnyConnection, actor: &Principal, id: &str) -> Result<ReleaseRecord> {
    staff_only(actor)?;
    let id = id.trim();
    let r = match store::get_release(conn, id).await? {
        Some(r) => Some(r),
        None => match ReleaseNumber::parse(id) {
            Some(n) => store::get_release_by_number(conn, &n.to_string()).await?,
            None => None,
        },
    };
    let r = r.ok_or(AppError::NotFound)?;
    if !actor.can_see_project(&r.project_id, Some(&r.organization_id)) {
        return Err(AppError::NotFound);
    }
    Ok(r)
}

/// A release being edited inside one transaction.
struct Edit {
    w: Writer,
    before: ReleaseRecord,
    release: Release,
}

/// The changes a release groups, given by id or number: each must be a change of the
/// release's project; returns their ids in the given order, pushing an error per bad one.
async fn linked_changes(conn: &mut sqlx::AnyConnection, project_id: &str, refs: &[String], errs: &mut Errors) -> Result<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for (i, r) in refs.iter().map(|r| r.trim()).enumerate() {
        match keel_store::changes::get_change(conn, r).await?.filter(|c| c.project_id == project_id) {
            Some(c) if !ids.contains(&c.id) => ids.push(c.id),
            Some(_) => {}
            None => errs.push(FieldError::new(format!("change_ids[{i}]"), "unknown_change", format!("no change {r} in this project"))),
        }
    }
    Ok(ids)
}

impl App {
    // ---- reading ----

    pub async fn get_release(&self, actor: &Principal, id: &str) -> Result<ReleaseRecord> {
        let mut c = self.read().await?;
        load_release(&mut c, actor, id).await
    }

    pub async fn list_releases(&self, actor: &Principal, f: &ReleaseFilter, page: &PageRequest) -> Result<Page<ReleaseRecord>> {
        staff_only(actor)?;
        let mut c = self.read().await?;
        Ok(store::list_releases(&mut c, &scope_of(actor), f, page).await?)
    }

    pub async fn release_status_log(&self, actor: &Principal, id: &str) -> Result<Vec<ReleaseStatusRow>> {
        let mut c = self.read().await?;
        let r = load_release(&mut c, actor, id).await?;
        Ok(store::status_log(&mut c, &r.id).await?)
    }

    /// The audit trail of a release, oldest first.
    pub async fn release_history(&self, actor: &Principal, id: &str) -> Result<Vec<keel_store::audit::HistoryEntry>> {
        let r = self.get_release(actor, id).await?;
        self.history("release", &r.id).await
    }

    /// The statuses the release may move to now (requirements are checked on the move).
    pub fn release_next_statuses(&self, actor: &Principal, r: &ReleaseRecord) -> Vec<ReleaseStatus> {
        if actor.is_read_only() || !actor.is_staff() {
            return vec![];
        }
        ReleaseStatus::parse(&r.status).map(|s| release_transitions_from(s).map(|t| t.to).collect()).unwrap_or_default()
    }

    /// The release review (发布评审): each stage's actual results and dates against the plan.
    pub async fn release_review(&self, actor: &Principal, id: &str) -> Result<ReleaseReview> {
        let r = self.get_release(actor, id).await?;
        Ok(compare(&release_of(&r)?))
    }

    /// Release notes for customers as Markdown, in `locale`, times in `tz`, listing the changes
    /// the release groups by number and title.
    pub async fn release_notes_markdown(&self, actor: &Principal, id: &str, locale: Locale, tz: Tz) -> Result<String> {
        let r = self.get_release(actor, id).await?;
        let mut c = self.read().await?;
        let changes: Vec<NoteChange> = keel_store::changes::changes_by_ids(&mut c, &r.change_ids)
            .await?
            .into_iter()
            .filter_map(|c| Some(NoteChange { number: ChangeNumber::parse(&c.number)?, title: c.title }))
            .collect();
        Ok(release_notes(&release_of(&r)?, &changes, locale, tz))
    }

    // ---- writing ----

    pub async fn create_release(&self, actor: &Principal, input: NewRelease) -> Result<ReleaseRecord> {
        staff_only(actor)?;
        let mut w = self.write(actor).await?;
        let project = directory::get_project(&mut w.tx, input.project_id.trim()).await?;
        let project = project.filter(|p| actor.can_see_project(&p.id, Some(&p.organization_id)));
        let mut errs = Errors::new();
        match &project {
            Some(p) => {
                if p.status != "active" {
                    errs.push(FieldError::new("project_id", "project_closed", "the service project is closed"));
                }
                self.require_process(&p.id, Process::Release).await?;
            }
            None => errs.push(FieldError::new("project_id", "unknown_project", "no such service project")),
        }
        let change_ids = match &project {
            Some(p) => linked_changes(&mut w.tx, &p.id, &input.change_ids, &mut errs).await?,
            None => vec![],
        };
        let form = DomainNewRelease {
            title: &input.title,
            version: &input.version,
            description: input.description.as_deref(),
            change_ids,
            rollback_plan: input.rollback_plan.as_deref(),
            known_issues: input.known_issues.clone(),
        };
        let probe = ReleaseNumber::new(1).ok_or_else(|| internal("counter"))?;
        match (Release::new("probe", probe, form.clone()), errs.finish()) {
            (Ok(_), Ok(())) => {}
            (Ok(_), Err(e)) => return Err(e.into()),
            (Err(keel_domain::DomainError::Invalid(mut a)), Err(keel_domain::DomainError::Invalid(b))) => {
                b.into_iter().rev().for_each(|e| a.insert(0, e));
                return Err(AppError::Validation(a));
            }
            (Err(e), _) => return Err(e.into()),
        }
        let project = project.ok_or(AppError::NotFound)?;
        let seq = kernel::next_counter(&mut w.tx, ReleaseNumber::PREFIX).await?;
        let number = ReleaseNumber::new(u64::try_from(seq).unwrap_or(1)).ok_or_else(|| internal("counter"))?;
        let id = keel_store::new_id();
        let release = Release::new(&id, number, form)?;
        let mut rec = ReleaseRecord {
            id: id.clone(),
            number: number.to_string(),
            project_id: project.id.clone(),
            organization_id: project.organization_id.clone(),
            status_changed_at: w.now,
            created_by: actor.user_id.clone(),
            created_at: w.now,
            updated_at: w.now,
            version: 1,
            ..Default::default()
        };
        write_release(&mut rec, &release);
        store::insert_release(&mut w.tx, &rec).await?;
        let row = ReleaseStatusRow {
            seq: 0,
            at: w.now,
            from_status: None,
            to_status: rec.status.clone(),
            reason: None,
            actor_id: actor.user_id.clone(),
        };
        store::append_status_log(&mut w.tx, &id, &row).await?;
        w.record("release", &id, AuditAction::Create, None, Some(&audit_of(&rec))).await?;
        let fresh = store::get_release(&mut w.tx, &id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    async fn edit_release(&self, actor: &Principal, id: &str) -> Result<Edit> {
        let mut w = self.write(actor).await?;
        let before = load_release(&mut w.tx, actor, id).await?;
        let release = release_of(&before)?;
        Ok(Edit { w, before, release })
    }

    /// Saves an edited release (version checked when given), logging a status change and
    /// writing the audit entry.
    async fn save_release(&self, e: Edit, after: Option<ReleaseRecord>, expected_version: Option<i64>) -> Result<ReleaseRecord> {
        let Edit { mut w, before, release } = e;
        let mut rec = after.unwrap_or_else(|| before.clone());
        write_release(&mut rec, &release);
        if rec.status != before.status {
            rec.status_changed_at = w.now;
            if release.status == ReleaseStatus::Deployed {
                rec.deployed_at = Some(w.now);
                let unapproved: Vec<String> = keel_store::changes::changes_by_ids(&mut w.tx, &rec.change_ids)
                    .await?
                    .into_iter()
                    .filter(|c| {
                        let kind = ChangeType::parse(&c.change_type).unwrap_or(ChangeType::Normal);
                        !ChangeStatus::parse(&c.status).is_some_and(|s| s.is_authorised(kind))
                    })
                    .map(|c| format!("{} ({})", c.number, c.status))
                    .collect();
                if !unapproved.is_empty() {
                    return Err(AppError::Validation(vec![FieldError::new(
                        "change_ids",
                        "changes_not_approved",
                        format!("a release deploys approved changes only: {}", unapproved.join(", ")),
                    )]));
                }
            }
            let row = ReleaseStatusRow {
                seq: 0,
                at: w.now,
                from_status: Some(before.status.clone()),
                to_status: rec.status.clone(),
                reason: release.cancellation_reason.clone().filter(|_| release.status == ReleaseStatus::Cancelled),
                actor_id: w.actor.user_id.clone(),
            };
            store::append_status_log(&mut w.tx, &rec.id, &row).await?;
        }
        rec.updated_at = w.now;
        store::update_release(&mut w.tx, &rec, expected_version.unwrap_or(before.version)).await?;
        w.record("release", &rec.id, AuditAction::Update, Some(&audit_of(&before)), Some(&audit_of(&rec))).await?;
        let fresh = store::get_release(&mut w.tx, &rec.id).await?.ok_or(AppError::NotFound)?;
        w.commit().await?;
        Ok(fresh)
    }

    /// Plans a stage: dates, checklist, expected results and its signers (staff of the
    /// release's project who may write), in the order they sign.
    pub async fn plan_release_stage(
        &self,
        actor: &Principal,
        id: &str,
        stage: &str,
        plan: StagePlanInput,
        expected_version: Option<i64>,
    ) -> Result<ReleaseRecord> {
        let kind = stage_kind(stage)?;
        let mut e = self.edit_release(actor, id).await?;
        let mut errs = Errors::new();
        let mut signers: Vec<SignerRow> = Vec::new();
        for (i, uid) in plan.signer_ids.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).enumerate() {
            let field = format!("signer_ids[{i}]");
            let ok = match accounts::get_user(&mut e.w.tx, uid).await? {
                Some(u) if u.kind == AccountKind::Staff.as_str() && u.active => {
                    let who = crate::auth::principal_of(&mut e.w.tx, &u).await?;
                    who.can_see_project(&e.before.project_id, Some(&e.before.organization_id)) && !who.is_read_only()
                }
                _ => false,
            };
            if !ok {
                errs.push(FieldError::new(field, "unknown_signer", "no active staff member of the project with that id"));
            } else if signers.iter().any(|s| s.user_id == uid) {
                errs.push(FieldError::new(field, "duplicate_signer", "named twice"));
            } else {
                signers.push(SignerRow { user_id: uid.to_string(), ..Default::default() });
            }
        }
        let domain_plan = StagePlan {
            planned_start: plan.planned_start.map(time),
            planned_end: plan.planned_end.map(time),
            checklist: plan.checklist,
            expected: plan.expected,
        };
        let planned = e.release.plan_stage(kind, domain_plan);
        match (planned, errs.finish()) {
            (Ok(()), Ok(())) => {}
            (Ok(()), Err(x)) => return Err(x.into()),
            (Err(keel_domain::DomainError::Invalid(mut a)), Err(keel_domain::DomainError::Invalid(b))) => {
                a.extend(b);
                return Err(AppError::Validation(a));
            }
            (Err(x), _) => return Err(x.into()),
        }
        let mut after = e.before.clone();
        if let Some(s) = after.stages.iter_mut().find(|s| s.stage == kind.as_str()) {
            s.signers = signers;
        }
        self.save_release(e, Some(after), expected_version).await
    }

    /// Ticks (or unticks) checklist item `index` (from 0) of a stage.
    pub async fn tick_release_item(&self, actor: &Principal, id: &str, stage: &str, index: usize, done: bool) -> Result<ReleaseRecord> {
        let kind = stage_kind(stage)?;
        let mut e = self.edit_release(actor, id).await?;
        e.release.tick(kind, index, done, &actor.user_id, time(e.w.now))?;
        self.save_release(e, None, None).await
    }

    /// Records the actual result `key` of a stage (a key the plan lacks is kept as unplanned).
    pub async fn record_release_result(
        &self,
        actor: &Principal,
        id: &str,
        stage: &str,
        key: &str,
        result: &str,
        met: bool,
    ) -> Result<ReleaseRecord> {
        let kind = stage_kind(stage)?;
        let mut e = self.edit_release(actor, id).await?;
        e.release.record_result(kind, key, result, met, &actor.user_id, time(e.w.now))?;
        self.save_release(e, None, None).await
    }

    /// Signs a stage as one of its named signers, after the signers before them; the last
    /// signature signs the stage off, which the domain allows only in stage order, with the
    /// checklist done and every expected result recorded.
    pub async fn sign_off_release_stage(&self, actor: &Principal, id: &str, stage: &str, note: Option<&str>) -> Result<ReleaseRecord> {
        let kind = stage_kind(stage)?;
        let mut e = self.edit_release(actor, id).await?;
        let now = e.w.now;
        let mut after = e.before.clone();
        let st = after.stages.iter_mut().find(|s| s.stage == kind.as_str()).ok_or_else(|| internal("stage"))?;
        let pos = st
            .signers
            .iter()
            .position(|s| s.user_id == actor.user_id)
            .ok_or_else(|| conflict("not_a_signer", "stage", format!("you are not a named signer of the {} stage", kind.as_str())))?;
        if st.signers[pos].signed_at.is_some() {
            return Err(conflict("already_signed", "stage", "you have already signed this stage"));
        }
        if let Some(first) = st.signers[..pos].iter().find(|s| s.signed_at.is_none()) {
            return Err(conflict("signer_out_of_order", "stage", format!("{} signs before you", first.display_name)));
        }
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        // Every signature is checked against the domain's sign-off rules; only the last one keeps it.
        let mut trial = e.release.clone();
        trial.sign_off(kind, &actor.user_id, time(now), note)?;
        st.signers[pos].signed_at = Some(now);
        st.signers[pos].note = note.map(str::to_string);
        if pos + 1 == st.signers.len() {
            e.release = trial;
        }
        self.save_release(e, Some(after), None).await
    }

    pub async fn set_release_rollback_plan(&self, actor: &Principal, id: &str, plan: &str) -> Result<ReleaseRecord> {
        let mut e = self.edit_release(actor, id).await?;
        e.release.set_rollback_plan(plan)?;
        self.save_release(e, None, None).await
    }

    /// Records that the release was rolled back (`restored`, `partially_restored`, `failed`).
    pub async fn record_release_rollback(&self, actor: &Principal, id: &str, outcome: &str, notes: &str) -> Result<ReleaseRecord> {
        let outcome = outcome_of(outcome.trim()).ok_or_else(|| {
            AppError::Validation(vec![FieldError::new("outcome", "invalid_outcome", "restored, partially_restored or failed")])
        })?;
        let mut e = self.edit_release(actor, id).await?;
        e.release.record_rollback(outcome, notes, &actor.user_id, time(e.w.now))?;
        self.save_release(e, None, None).await
    }

    /// Records the release review's summary (the comparison itself is computed).
    pub async fn record_release_review(&self, actor: &Principal, id: &str, summary: &str) -> Result<ReleaseRecord> {
        let mut e = self.edit_release(actor, id).await?;
        e.release.record_review(summary, &actor.user_id, time(e.w.now))?;
        self.save_release(e, None, None).await
    }

    /// Moves a release through its lifecycle; `reason` is needed to cancel.
    pub async fn transition_release(
        &self,
        actor: &Principal,
        id: &str,
        to: &str,
        reason: Option<&str>,
        expected_version: Option<i64>,
    ) -> Result<ReleaseRecord> {
        let to = ReleaseStatus::parse(to.trim())
            .ok_or_else(|| AppError::Validation(vec![FieldError::new("status", "invalid_status", "no such release status")]))?;
        let mut e = self.edit_release(actor, id).await?;
        e.release.transition(to, reason)?;
        self.save_release(e, None, expected_version).await
    }
}

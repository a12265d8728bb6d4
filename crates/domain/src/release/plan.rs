//! Release management (发布管理, manual §5.1.4): the release record, grouping changes and
//! carrying each stage's checklist, expected and actual results and sign-off, the rollback
//! plan and its outcome.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::lifecycle::{ReleaseRequirement, ReleaseStatus, StageKind, find_release_transition};
use super::number::ReleaseNumber;
use crate::error::{DomainError, Errors, FieldError};
use crate::validate::{Locale, optional_text, required_text};

const MAX_TEXT_CHARS: usize = 20_000;
const MAX_LINE_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItem {
    pub text: String,
    pub done: Option<Done>,
}

/// A result the stage is planned to achieve ("all regression tests pass").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedResult {
    pub key: String,
    pub description: String,
    pub target: String,
}

/// What actually happened for an expected result (or for something unplanned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActualResult {
    pub key: String,
    pub result: String,
    pub met: bool,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOff {
    pub by: String,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub kind: StageKind,
    pub planned_start: Option<DateTime<Utc>>,
    pub planned_end: Option<DateTime<Utc>>,
    pub checklist: Vec<ChecklistItem>,
    pub expected: Vec<ExpectedResult>,
    pub actual: Vec<ActualResult>,
    pub sign_off: Option<SignOff>,
}

impl Stage {
    fn empty(kind: StageKind) -> Self {
        Stage { kind, planned_start: None, planned_end: None, checklist: vec![], expected: vec![], actual: vec![], sign_off: None }
    }
    pub fn is_signed_off(&self) -> bool {
        self.sign_off.is_some()
    }
}

/// The plan of one stage, as a form submits it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StagePlan {
    pub planned_start: Option<DateTime<Utc>>,
    pub planned_end: Option<DateTime<Utc>>,
    pub checklist: Vec<String>,
    pub expected: Vec<ExpectedResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackOutcome {
    /// The previous state was fully restored.
    Restored,
    PartiallyRestored,
    Failed,
}

impl RollbackOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackOutcome::Restored => "restored",
            RollbackOutcome::PartiallyRestored => "partially_restored",
            RollbackOutcome::Failed => "failed",
        }
    }
    pub fn label(self, locale: Locale) -> &'static str {
        match (self, locale) {
            (RollbackOutcome::Restored, Locale::En) => "previous state restored",
            (RollbackOutcome::PartiallyRestored, Locale::En) => "previous state partially restored",
            (RollbackOutcome::Failed, Locale::En) => "rollback failed",
            (RollbackOutcome::Restored, Locale::ZhCn) => "已恢复到原状态",
            (RollbackOutcome::PartiallyRestored, Locale::ZhCn) => "已部分恢复到原状态",
            (RollbackOutcome::Failed, Locale::ZhCn) => "回退失败",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRecord {
    pub outcome: RollbackOutcome,
    pub notes: String,
    pub performed_by: String,
    pub performed_at: DateTime<Utc>,
}

/// The release review (发布评审) as recorded by people; the comparison itself is computed by
/// [`super::review::compare`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub summary: String,
    pub reviewed_by: String,
    pub reviewed_at: DateTime<Utc>,
}

/// A new release, as a form submits it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRelease<'a> {
    pub title: &'a str,
    pub version: &'a str,
    pub description: Option<&'a str>,
    pub change_ids: Vec<String>,
    pub rollback_plan: Option<&'a str>,
    pub known_issues: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: String,
    pub number: ReleaseNumber,
    pub title: String,
    pub version: String,
    pub description: Option<String>,
    pub status: ReleaseStatus,
    pub change_ids: Vec<String>,
    /// Build, test, acceptance and deployment, in that order.
    pub stages: Vec<Stage>,
    pub rollback_plan: Option<String>,
    pub rollback: Option<RollbackRecord>,
    pub known_issues: Vec<String>,
    pub review: Option<ReviewRecord>,
    pub cancellation_reason: Option<String>,
}

fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::field(field, code, message)
}

fn one(r: Result<String, FieldError>) -> Result<String, DomainError> {
    r.map_err(|e| DomainError::Invalid(vec![e]))
}

impl Release {
    pub fn new(id: &str, number: ReleaseNumber, input: NewRelease) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        let id = errors.check(required_text("id", id, 200));
        let title = errors.check(required_text("title", input.title, 200));
        let version = errors.check(required_text("version", input.version, 50));
        let description = errors.check(optional_text("description", input.description, MAX_TEXT_CHARS)).flatten();
        let rollback_plan = errors.check(optional_text("rollback_plan", input.rollback_plan, MAX_TEXT_CHARS)).flatten();
        let mut known_issues = Vec::new();
        for (i, issue) in input.known_issues.iter().enumerate() {
            if let Some(Some(v)) = errors.check(optional_text(&format!("known_issues[{i}]"), Some(issue), MAX_LINE_CHARS)) {
                known_issues.push(v);
            }
        }
        let mut change_ids: Vec<String> = Vec::new();
        for c in input.change_ids.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
            if !change_ids.iter().any(|k| k == c) {
                change_ids.push(c.to_string());
            }
        }
        errors.finish()?;
        Ok(Release {
            id: id.unwrap_or_default(),
            number,
            title: title.unwrap_or_default(),
            version: version.unwrap_or_default(),
            description,
            status: ReleaseStatus::Planned,
            change_ids,
            stages: StageKind::ALL.into_iter().map(Stage::empty).collect(),
            rollback_plan,
            rollback: None,
            known_issues,
            review: None,
            cancellation_reason: None,
        })
    }

    pub fn stage(&self, kind: StageKind) -> &Stage {
        &self.stages[kind.index()]
    }

    fn editable(&self) -> Result<(), DomainError> {
        if self.status.is_editable() {
            Ok(())
        } else {
            Err(invalid("status", "release_locked", format!("a release that is {} can no longer be edited", self.status.as_str())))
        }
    }

    fn open_stage(&mut self, kind: StageKind) -> Result<&mut Stage, DomainError> {
        self.editable()?;
        let stage = &mut self.stages[kind.index()];
        if stage.is_signed_off() {
            return Err(invalid("stage", "stage_signed_off", format!("the {} stage is signed off", kind.as_str())));
        }
        Ok(stage)
    }

    pub fn add_change(&mut self, change_id: &str) -> Result<(), DomainError> {
        self.editable()?;
        let id = one(required_text("change_id", change_id, 200))?;
        if self.change_ids.contains(&id) {
            return Err(invalid("change_id", "duplicate_change", "the change is already in this release"));
        }
        self.change_ids.push(id);
        Ok(())
    }

    pub fn remove_change(&mut self, change_id: &str) -> Result<(), DomainError> {
        self.editable()?;
        let before = self.change_ids.len();
        self.change_ids.retain(|c| c != change_id.trim());
        if self.change_ids.len() == before {
            return Err(invalid("change_id", "unknown_change", "the change is not in this release"));
        }
        Ok(())
    }

    pub fn set_rollback_plan(&mut self, plan: &str) -> Result<(), DomainError> {
        self.editable()?;
        self.rollback_plan = Some(one(required_text("rollback_plan", plan, MAX_TEXT_CHARS))?);
        Ok(())
    }

    /// Replaces a stage's plan: dates, checklist (all items unticked) and expected results.
    pub fn plan_stage(&mut self, kind: StageKind, plan: StagePlan) -> Result<(), DomainError> {
        let mut errors = Errors::new();
        if let (Some(s), Some(e)) = (plan.planned_start, plan.planned_end)
            && e <= s
        {
            errors.push(FieldError::new("planned_end", "end_not_after_start", "the stage must end after it starts"));
        }
        let mut checklist = Vec::new();
        for (i, item) in plan.checklist.iter().enumerate() {
            if let Some(text) = errors.check(required_text(&format!("checklist[{i}]"), item, MAX_LINE_CHARS)) {
                checklist.push(ChecklistItem { text, done: None });
            }
        }
        let mut expected = Vec::new();
        for (i, r) in plan.expected.iter().enumerate() {
            let key = errors.check(required_text(&format!("expected[{i}].key"), &r.key, 100));
            let description = errors.check(required_text(&format!("expected[{i}].description"), &r.description, MAX_LINE_CHARS));
            let target = errors.check(required_text(&format!("expected[{i}].target"), &r.target, MAX_LINE_CHARS));
            if let (Some(key), Some(description), Some(target)) = (key, description, target) {
                if expected.iter().any(|e: &ExpectedResult| e.key == key) {
                    errors.push(FieldError::new(format!("expected[{i}].key"), "duplicate_key", format!("{key} is listed twice")));
                } else {
                    expected.push(ExpectedResult { key, description, target });
                }
            }
        }
        errors.finish()?;
        let stage = self.open_stage(kind)?;
        stage.planned_start = plan.planned_start;
        stage.planned_end = plan.planned_end;
        stage.checklist = checklist;
        stage.actual.retain(|a| expected.iter().any(|e| e.key == a.key));
        stage.expected = expected;
        Ok(())
    }

    /// Ticks (or unticks) checklist item `index` of a stage.
    pub fn tick(&mut self, kind: StageKind, index: usize, done: bool, by: &str, at: DateTime<Utc>) -> Result<(), DomainError> {
        let by = one(required_text("by", by, 200))?;
        let stage = self.open_stage(kind)?;
        let item = stage.checklist.get_mut(index).ok_or_else(|| invalid("index", "unknown_item", "there is no such checklist item"))?;
        item.done = done.then_some(Done { by, at });
        Ok(())
    }

    /// Records what happened for result `key` of a stage, replacing an earlier record of it.
    /// A key the plan does not list is kept as an unplanned result.
    pub fn record_result(
        &mut self,
        kind: StageKind,
        key: &str,
        result: &str,
        met: bool,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let mut errors = Errors::new();
        let key = errors.check(required_text("key", key, 100));
        let result = errors.check(required_text("result", result, MAX_LINE_CHARS));
        let by = errors.check(required_text("recorded_by", by, 200));
        errors.finish()?;
        let (key, result, by) = (key.unwrap_or_default(), result.unwrap_or_default(), by.unwrap_or_default());
        let stage = self.open_stage(kind)?;
        stage.actual.retain(|a| a.key != key);
        stage.actual.push(ActualResult { key, result, met, recorded_by: by, recorded_at: at });
        Ok(())
    }

    /// Signs a stage off. Stages are signed off in order (build, test, acceptance, deployment),
    /// each no earlier than the one before, with every checklist item ticked and every
    /// expected result recorded; an unmet result does not block sign-off, the review shows it.
    pub fn sign_off(&mut self, kind: StageKind, by: &str, at: DateTime<Utc>, note: Option<&str>) -> Result<(), DomainError> {
        if self.status != ReleaseStatus::InProgress {
            return Err(invalid("status", "release_not_in_progress", "stages are signed off while the release is in progress"));
        }
        let by = one(required_text("by", by, 200))?;
        let note = optional_text("note", note, MAX_TEXT_CHARS).map_err(|e| DomainError::Invalid(vec![e]))?;
        if let Some(prev) = kind.previous() {
            match &self.stage(prev).sign_off {
                None => {
                    return Err(invalid(
                        "stage",
                        "stage_out_of_order",
                        format!("the {} stage must be signed off before {}", prev.as_str(), kind.as_str()),
                    ));
                }
                Some(s) if at < s.at => {
                    return Err(invalid(
                        "at",
                        "sign_off_before_previous",
                        format!("the {} stage was signed off later than this", prev.as_str()),
                    ));
                }
                Some(_) => {}
            }
        }
        let stage = self.open_stage(kind)?;
        let mut errors = Errors::new();
        let open = stage.checklist.iter().filter(|i| i.done.is_none()).count();
        if open > 0 {
            errors.push(FieldError::new("checklist", "checklist_incomplete", format!("{open} checklist item(s) are not done")));
        }
        let missing: Vec<&str> =
            stage.expected.iter().filter(|e| !stage.actual.iter().any(|a| a.key == e.key)).map(|e| e.key.as_str()).collect();
        if !missing.is_empty() {
            errors.push(FieldError::new("actual", "results_missing", format!("no result recorded for: {}", missing.join(", "))));
        }
        errors.finish()?;
        stage.sign_off = Some(SignOff { by, at, note });
        Ok(())
    }

    /// Records that the release was rolled back and how that went.
    pub fn record_rollback(&mut self, outcome: RollbackOutcome, notes: &str, by: &str, at: DateTime<Utc>) -> Result<(), DomainError> {
        if !matches!(self.status, ReleaseStatus::InProgress | ReleaseStatus::Deployed) {
            return Err(invalid("status", "not_rollbackable", "only a release in progress or deployed can be rolled back"));
        }
        let mut errors = Errors::new();
        let notes = errors.check(required_text("notes", notes, MAX_TEXT_CHARS));
        let by = errors.check(required_text("performed_by", by, 200));
        errors.finish()?;
        self.rollback =
            Some(RollbackRecord { outcome, notes: notes.unwrap_or_default(), performed_by: by.unwrap_or_default(), performed_at: at });
        Ok(())
    }

    pub fn record_review(&mut self, summary: &str, by: &str, at: DateTime<Utc>) -> Result<(), DomainError> {
        if !matches!(self.status, ReleaseStatus::Deployed | ReleaseStatus::RolledBack) {
            return Err(invalid("status", "not_reviewable", "a release is reviewed once deployed or rolled back"));
        }
        let mut errors = Errors::new();
        let summary = errors.check(required_text("summary", summary, MAX_TEXT_CHARS));
        let by = errors.check(required_text("reviewed_by", by, 200));
        errors.finish()?;
        self.review = Some(ReviewRecord { summary: summary.unwrap_or_default(), reviewed_by: by.unwrap_or_default(), reviewed_at: at });
        Ok(())
    }

    fn meets(&self, r: ReleaseRequirement, reason: Option<&str>) -> bool {
        match r {
            ReleaseRequirement::HasChanges => !self.change_ids.is_empty(),
            ReleaseRequirement::RollbackPlan => self.rollback_plan.is_some(),
            ReleaseRequirement::AllStagesSignedOff => self.stages.iter().all(Stage::is_signed_off),
            ReleaseRequirement::RollbackRecorded => self.rollback.is_some(),
            ReleaseRequirement::ReviewRecorded => self.review.is_some(),
            ReleaseRequirement::Reason => reason.is_some_and(|r| !r.trim().is_empty()),
        }
    }

    /// Moves the release to `to` if the lifecycle table allows it and its requirements hold.
    /// `reason` is needed to cancel.
    pub fn transition(&mut self, to: ReleaseStatus, reason: Option<&str>) -> Result<(), DomainError> {
        let row = find_release_transition(self.status, to)
            .ok_or_else(|| DomainError::InvalidTransition { from: self.status.as_str().into(), to: to.as_str().into() })?;
        let mut errors = Errors::new();
        for r in row.requires.iter().filter(|r| !self.meets(**r, reason)) {
            let (field, code, message) = match r {
                ReleaseRequirement::HasChanges => ("change_ids", "changes_required", "a release groups at least one change"),
                ReleaseRequirement::RollbackPlan => ("rollback_plan", "rollback_plan_required", "a rollback plan is required"),
                ReleaseRequirement::AllStagesSignedOff => ("stages", "stages_not_signed_off", "every stage must be signed off"),
                ReleaseRequirement::RollbackRecorded => ("rollback", "rollback_not_recorded", "record the rollback outcome first"),
                ReleaseRequirement::ReviewRecorded => ("review", "review_required", "record the release review first"),
                ReleaseRequirement::Reason => ("reason", "reason_required", "a reason is required"),
            };
            errors.push(FieldError::new(field, code, message));
        }
        errors.finish()?;
        if to == ReleaseStatus::Cancelled {
            self.cancellation_reason = reason.map(|r| r.trim().to_string());
        }
        self.status = to;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::Duration;

    pub(crate) fn at(h: i64) -> DateTime<Utc> {
        "2026-10-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::hours(h)
    }

    fn code(r: Result<(), DomainError>) -> Vec<&'static str> {
        match r {
            Err(DomainError::Invalid(v)) => v.iter().map(|e| e.code).collect(),
            Err(DomainError::InvalidTransition { .. }) => vec!["invalid_transition"],
            other => panic!("{other:?}"),
        }
    }

    pub(crate) fn planned() -> Release {
        let mut r = Release::new(
            "r1",
            ReleaseNumber::new(1).unwrap(),
            NewRelease {
                title: "Billing 2.4",
                version: "2.4.0",
                description: Some("Faster invoices."),
                change_ids: vec!["c1".into(), " c2 ".into(), "".into(), "c1".into()],
                rollback_plan: Some("Redeploy 2.3.9 from the artefact store."),
                known_issues: vec!["Export to PDF is slow".into(), " ".into()],
            },
        )
        .unwrap();
        for (i, kind) in StageKind::ALL.into_iter().enumerate() {
            let h = i as i64 * 24;
            r.plan_stage(
                kind,
                StagePlan {
                    planned_start: Some(at(h)),
                    planned_end: Some(at(h + 8)),
                    checklist: vec![format!("{} done", kind.as_str())],
                    expected: vec![ExpectedResult { key: "ok".into(), description: "Stage goal".into(), target: "met".into() }],
                },
            )
            .unwrap();
        }
        r
    }

    /// Completes a stage: ticks its checklist, records its result and signs it off at hour `h`.
    pub(crate) fn complete(r: &mut Release, kind: StageKind, h: i64, met: bool) {
        r.tick(kind, 0, true, "ann", at(h)).unwrap();
        r.record_result(kind, "ok", if met { "as planned" } else { "two defects left" }, met, "ann", at(h)).unwrap();
        r.sign_off(kind, "ann", at(h), None).unwrap();
    }

    #[test]
    fn creation_normalises_and_validates() {
        let r = planned();
        assert_eq!(r.change_ids, vec!["c1", "c2"]);
        assert_eq!(r.known_issues, vec!["Export to PDF is slow"]);
        assert_eq!(r.stages.iter().map(|s| s.kind).collect::<Vec<_>>(), StageKind::ALL.to_vec());
        let bad =
            Release::new("r", ReleaseNumber::new(2).unwrap(), NewRelease { title: " ", version: "", ..Default::default() }).unwrap_err();
        let DomainError::Invalid(v) = bad else { panic!() };
        assert_eq!(v.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), vec!["title", "version"]);
    }

    #[test]
    fn the_full_lifecycle() {
        let mut r = planned();
        r.transition(ReleaseStatus::InProgress, None).unwrap();
        complete(&mut r, StageKind::Build, 8, true);
        complete(&mut r, StageKind::Test, 32, true);
        assert_eq!(code(r.transition(ReleaseStatus::Deployed, None)), vec!["stages_not_signed_off"]);
        complete(&mut r, StageKind::Acceptance, 56, true);
        complete(&mut r, StageKind::Deployment, 80, true);
        r.transition(ReleaseStatus::Deployed, None).unwrap();
        assert_eq!(code(r.add_change("c3")), vec!["release_locked"]);
        assert_eq!(code(r.transition(ReleaseStatus::Reviewed, None)), vec!["review_required"]);
        r.record_review("Delivered as planned.", "sam", at(100)).unwrap();
        r.transition(ReleaseStatus::Reviewed, None).unwrap();
        r.transition(ReleaseStatus::Closed, None).unwrap();
        assert_eq!(code(r.transition(ReleaseStatus::Planned, None)), vec!["invalid_transition"]);
    }

    #[test]
    fn stages_are_signed_off_in_order() {
        let mut r = planned();
        assert_eq!(code(r.sign_off(StageKind::Build, "ann", at(1), None)), vec!["release_not_in_progress"]);
        r.transition(ReleaseStatus::InProgress, None).unwrap();
        r.tick(StageKind::Deployment, 0, true, "ann", at(1)).unwrap();
        r.record_result(StageKind::Deployment, "ok", "fine", true, "ann", at(1)).unwrap();
        assert_eq!(code(r.sign_off(StageKind::Deployment, "ann", at(1), None)), vec!["stage_out_of_order"]);
        complete(&mut r, StageKind::Build, 8, true);
        complete(&mut r, StageKind::Test, 30, true);
        r.tick(StageKind::Acceptance, 0, true, "ann", at(40)).unwrap();
        r.record_result(StageKind::Acceptance, "ok", "fine", true, "ann", at(40)).unwrap();
        assert_eq!(code(r.sign_off(StageKind::Acceptance, "ann", at(29), None)), vec!["sign_off_before_previous"]);
        assert_eq!(
            code(r.sign_off(StageKind::Deployment, "ann", at(41), None)),
            vec!["stage_out_of_order"],
            "cannot sign off deployment before acceptance"
        );
        r.sign_off(StageKind::Acceptance, "ann", at(40), Some("customer accepted")).unwrap();
        assert_eq!(code(r.sign_off(StageKind::Acceptance, "ann", at(41), None)), vec!["stage_signed_off"]);
        assert_eq!(code(r.tick(StageKind::Acceptance, 0, false, "ann", at(41))), vec!["stage_signed_off"]);
        r.sign_off(StageKind::Deployment, "ann", at(41), None).unwrap();
    }

    #[test]
    fn sign_off_needs_checklist_and_results() {
        let mut r = planned();
        r.transition(ReleaseStatus::InProgress, None).unwrap();
        assert_eq!(code(r.sign_off(StageKind::Build, "ann", at(1), None)), vec!["checklist_incomplete", "results_missing"]);
        r.tick(StageKind::Build, 0, true, "ann", at(1)).unwrap();
        r.tick(StageKind::Build, 0, false, "ann", at(1)).unwrap();
        assert_eq!(code(r.tick(StageKind::Build, 5, true, "ann", at(1))), vec!["unknown_item"]);
        r.record_result(StageKind::Build, "extra", "unplanned finding", false, "ann", at(1)).unwrap();
        assert_eq!(code(r.sign_off(StageKind::Build, "ann", at(1), None)), vec!["checklist_incomplete", "results_missing"]);
        assert_eq!(code(r.sign_off(StageKind::Build, " ", at(1), None)), vec!["required"]);
    }

    #[test]
    fn rollback_and_cancellation() {
        let mut r = planned();
        assert_eq!(code(r.record_rollback(RollbackOutcome::Restored, "x", "ann", at(1))), vec!["not_rollbackable"]);
        assert_eq!(code(r.transition(ReleaseStatus::Cancelled, Some(" "))), vec!["reason_required"]);
        r.transition(ReleaseStatus::InProgress, None).unwrap();
        assert_eq!(code(r.transition(ReleaseStatus::RolledBack, None)), vec!["rollback_not_recorded"]);
        r.record_rollback(RollbackOutcome::Restored, "Database restored from the 02:00 snapshot", "ann", at(3)).unwrap();
        r.transition(ReleaseStatus::RolledBack, None).unwrap();
        r.record_review("Migration script untested on full data.", "sam", at(5)).unwrap();
        r.transition(ReleaseStatus::Reviewed, None).unwrap();

        let mut c = planned();
        c.transition(ReleaseStatus::Cancelled, Some("customer postponed")).unwrap();
        assert_eq!(c.cancellation_reason.as_deref(), Some("customer postponed"));
        assert_eq!(code(c.add_change("c9")), vec!["release_locked"]);
    }

    #[test]
    fn starting_needs_changes_and_a_rollback_plan() {
        let mut r =
            Release::new("r", ReleaseNumber::new(3).unwrap(), NewRelease { title: "T", version: "1", ..Default::default() }).unwrap();
        assert_eq!(code(r.transition(ReleaseStatus::InProgress, None)), vec!["changes_required", "rollback_plan_required"]);
        r.add_change("c1").unwrap();
        assert_eq!(code(r.add_change("c1")), vec!["duplicate_change"]);
        r.set_rollback_plan("restore").unwrap();
        r.transition(ReleaseStatus::InProgress, None).unwrap();
        r.remove_change("c1").unwrap();
        assert_eq!(code(r.remove_change("c1")), vec!["unknown_change"]);
    }

    #[test]
    fn stage_plans_are_validated_and_keep_matching_results() {
        let mut r = planned();
        r.record_result(StageKind::Test, "ok", "fine", true, "ann", at(1)).unwrap();
        r.record_result(StageKind::Test, "gone", "x", true, "ann", at(1)).unwrap();
        let bad = StagePlan {
            planned_start: Some(at(5)),
            planned_end: Some(at(5)),
            checklist: vec![" ".into()],
            expected: vec![
                ExpectedResult { key: "a".into(), description: "d".into(), target: "t".into() },
                ExpectedResult { key: "a".into(), description: "d".into(), target: "t".into() },
            ],
        };
        assert_eq!(code(r.plan_stage(StageKind::Test, bad)), vec!["end_not_after_start", "required", "duplicate_key"]);
        let expected = r.stage(StageKind::Test).expected.clone();
        r.plan_stage(StageKind::Test, StagePlan { checklist: vec!["run suite".into()], expected, ..Default::default() }).unwrap();
        let keys: Vec<&str> = r.stage(StageKind::Test).actual.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, vec!["ok"]);
    }
}

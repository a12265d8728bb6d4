//! Release management: the release review (发布评审, manual §5.1.4), comparing each stage's
//! actual results and dates with what was planned.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::lifecycle::StageKind;
use super::plan::{Release, RollbackOutcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Met,
    NotMet,
    /// Planned, but nothing was recorded.
    Missing,
    /// Recorded, but not planned.
    Unplanned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultComparison {
    pub key: String,
    pub description: Option<String>,
    pub expected: Option<String>,
    pub actual: Option<String>,
    pub status: ResultStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageComparison {
    pub stage: StageKind,
    pub planned_end: Option<DateTime<Utc>>,
    pub signed_off_at: Option<DateTime<Utc>>,
    /// Minutes the sign-off came after the planned end (negative: early); `None` without both.
    pub delay_minutes: Option<i64>,
    pub results: Vec<ResultComparison>,
}

impl StageComparison {
    pub fn is_late(&self) -> bool {
        self.delay_minutes.is_some_and(|m| m > 0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewVerdict {
    /// Every stage signed off on time with every expected result met, and no rollback.
    AsExpected,
    /// Rolled back, or complete but with unmet results, late stages or unplanned results.
    Deviations,
    /// Not rolled back, and a stage is not signed off or a planned result was never recorded.
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseReview {
    pub stages: Vec<StageComparison>,
    pub met: usize,
    pub not_met: usize,
    pub missing: usize,
    pub unplanned: usize,
    pub late_stages: usize,
    pub rollback: Option<RollbackOutcome>,
    pub verdict: ReviewVerdict,
}

/// Compares actual with expected results and dates, stage by stage.
pub fn compare(release: &Release) -> ReleaseReview {
    let stages: Vec<StageComparison> = release
        .stages
        .iter()
        .map(|s| {
            let mut results: Vec<ResultComparison> = s
                .expected
                .iter()
                .map(|e| {
                    let actual = s.actual.iter().find(|a| a.key == e.key);
                    ResultComparison {
                        key: e.key.clone(),
                        description: Some(e.description.clone()),
                        expected: Some(e.target.clone()),
                        actual: actual.map(|a| a.result.clone()),
                        status: match actual {
                            None => ResultStatus::Missing,
                            Some(a) if a.met => ResultStatus::Met,
                            Some(_) => ResultStatus::NotMet,
                        },
                    }
                })
                .collect();
            results.extend(s.actual.iter().filter(|a| !s.expected.iter().any(|e| e.key == a.key)).map(|a| ResultComparison {
                key: a.key.clone(),
                description: None,
                expected: None,
                actual: Some(a.result.clone()),
                status: ResultStatus::Unplanned,
            }));
            let signed_off_at = s.sign_off.as_ref().map(|o| o.at);
            let delay_minutes = s.planned_end.zip(signed_off_at).map(|(plan, done)| (done - plan).num_minutes());
            StageComparison { stage: s.kind, planned_end: s.planned_end, signed_off_at, delay_minutes, results }
        })
        .collect();
    let count = |st: ResultStatus| stages.iter().flat_map(|s| &s.results).filter(|r| r.status == st).count();
    let (met, not_met, missing, unplanned) =
        (count(ResultStatus::Met), count(ResultStatus::NotMet), count(ResultStatus::Missing), count(ResultStatus::Unplanned));
    let late_stages = stages.iter().filter(|s| s.is_late()).count();
    let rollback = release.rollback.as_ref().map(|r| r.outcome);
    let all_signed = stages.iter().all(|s| s.signed_off_at.is_some());
    let verdict = if rollback.is_some() {
        ReviewVerdict::Deviations
    } else if !all_signed || missing > 0 {
        ReviewVerdict::Incomplete
    } else if not_met > 0 || late_stages > 0 || unplanned > 0 {
        ReviewVerdict::Deviations
    } else {
        ReviewVerdict::AsExpected
    };
    ReleaseReview { stages, met, not_met, missing, unplanned, late_stages, rollback, verdict }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::lifecycle::ReleaseStatus;
    use crate::release::plan::tests::{at, complete, planned};

    #[test]
    fn a_release_that_went_to_plan() {
        let mut r = planned();
        r.transition(ReleaseStatus::InProgress, None).unwrap();
        for (i, k) in StageKind::ALL.into_iter().enumerate() {
            complete(&mut r, k, i as i64 * 24 + 8, true);
        }
        let review = compare(&r);
        assert_eq!(review.verdict, ReviewVerdict::AsExpected);
        assert_eq!((review.met, review.not_met, review.missing, review.late_stages), (4, 0, 0, 0));
        assert!(review.stages.iter().all(|s| s.delay_minutes == Some(0)));
    }

    #[test]
    fn deviations_are_counted() {
        let mut r = planned();
        r.transition(ReleaseStatus::InProgress, None).unwrap();
        complete(&mut r, StageKind::Build, 8, true);
        r.record_result(StageKind::Test, "perf", "p95 went up 20%", false, "ann", at(30)).unwrap();
        complete(&mut r, StageKind::Test, 34, false);
        complete(&mut r, StageKind::Acceptance, 56, true);
        complete(&mut r, StageKind::Deployment, 70, true);
        let review = compare(&r);
        assert_eq!(review.verdict, ReviewVerdict::Deviations);
        assert_eq!((review.met, review.not_met, review.unplanned, review.late_stages), (3, 1, 1, 1));
        let test = &review.stages[1];
        assert_eq!(test.delay_minutes, Some(120));
        assert_eq!(test.results[0].status, ResultStatus::NotMet);
        assert_eq!(test.results[1].key, "perf");
        assert_eq!(review.stages[3].delay_minutes, Some(-10 * 60), "early is not late");
    }

    #[test]
    fn incomplete_and_rolled_back_releases() {
        let mut r = planned();
        assert_eq!(compare(&r).verdict, ReviewVerdict::Incomplete);
        assert_eq!(compare(&r).missing, 4);
        r.transition(ReleaseStatus::InProgress, None).unwrap();
        complete(&mut r, StageKind::Build, 8, true);
        r.record_result(StageKind::Test, "ok", "crashed", false, "ann", at(30)).unwrap();
        r.record_rollback(RollbackOutcome::Restored, "back to 2.3.9", "ann", at(31)).unwrap();
        let review = compare(&r);
        assert_eq!(review.verdict, ReviewVerdict::Deviations, "a rollback ends the stages early without making the review incomplete");
        assert_eq!(review.rollback, Some(RollbackOutcome::Restored));
        assert_eq!((review.not_met, review.missing), (1, 2));
    }
}

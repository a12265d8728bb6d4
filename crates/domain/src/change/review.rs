//! Change management: the post-implementation review (实施后评审) of a change.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::lifecycle::ChangeStatus;
use crate::error::{DomainError, Errors, FieldError};
use crate::validate::{Locale, optional_text, required_text};

const MAX_NOTES_CHARS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewOutcome {
    Successful,
    PartiallySuccessful,
    Failed,
}

impl ReviewOutcome {
    pub const ALL: [ReviewOutcome; 3] = [ReviewOutcome::Successful, ReviewOutcome::PartiallySuccessful, ReviewOutcome::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewOutcome::Successful => "successful",
            ReviewOutcome::PartiallySuccessful => "partially_successful",
            ReviewOutcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    pub fn label(self, locale: Locale) -> &'static str {
        match (self, locale) {
            (ReviewOutcome::Successful, Locale::En) => "Successful",
            (ReviewOutcome::PartiallySuccessful, Locale::En) => "Partially successful",
            (ReviewOutcome::Failed, Locale::En) => "Failed",
            (ReviewOutcome::Successful, Locale::ZhCn) => "成功",
            (ReviewOutcome::PartiallySuccessful, Locale::ZhCn) => "部分成功",
            (ReviewOutcome::Failed, Locale::ZhCn) => "失败",
        }
    }
}

/// The review record. Objectives met or not, what happened, and what follows from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostImplementationReview {
    pub outcome: ReviewOutcome,
    pub notes: Option<String>,
    /// Incidents the change caused, by id.
    #[serde(default)]
    pub caused_incident_ids: Vec<String>,
    pub follow_up: Option<String>,
    pub reviewed_by: String,
    pub reviewed_at: DateTime<Utc>,
}

impl PostImplementationReview {
    /// Records the review of a change that ended in `status` (implemented, failed or backed
    /// out). A change that failed or was backed out cannot be reviewed as successful, and any
    /// outcome short of success must be explained in the notes.
    pub fn new(
        status: ChangeStatus,
        outcome: ReviewOutcome,
        notes: Option<&str>,
        caused_incident_ids: Vec<String>,
        follow_up: Option<&str>,
        reviewed_by: &str,
        reviewed_at: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        if !matches!(status, ChangeStatus::Implemented | ChangeStatus::Failed | ChangeStatus::BackedOut) {
            errors.push(FieldError::new("status", "not_reviewable", "only implemented, failed or backed-out changes are reviewed"));
        }
        if outcome == ReviewOutcome::Successful && matches!(status, ChangeStatus::Failed | ChangeStatus::BackedOut) {
            errors.push(FieldError::new("outcome", "inconsistent_outcome", "a failed or backed-out change was not successful"));
        }
        let notes = errors.check(optional_text("notes", notes, MAX_NOTES_CHARS)).flatten();
        if outcome != ReviewOutcome::Successful && notes.is_none() {
            errors.push(FieldError::new("notes", "required", "explain what did not go as planned"));
        }
        let follow_up = errors.check(optional_text("follow_up", follow_up, MAX_NOTES_CHARS)).flatten();
        let reviewed_by = errors.check(required_text("reviewed_by", reviewed_by, 200));
        let mut incidents: Vec<String> = caused_incident_ids.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        incidents.sort();
        incidents.dedup();
        errors.finish()?;
        Ok(PostImplementationReview {
            outcome,
            notes,
            caused_incident_ids: incidents,
            follow_up,
            reviewed_by: reviewed_by.unwrap_or_default(),
            reviewed_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-07-01T10:00:00Z".parse().unwrap()
    }

    fn codes(r: Result<PostImplementationReview, DomainError>) -> Vec<&'static str> {
        match r {
            Err(DomainError::Invalid(v)) => v.iter().map(|e| e.code).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn successful_review_needs_no_notes() {
        let r = PostImplementationReview::new(ChangeStatus::Implemented, ReviewOutcome::Successful, Some(" "), vec![], None, "ann", at())
            .unwrap();
        assert_eq!(r.notes, None);
        for o in ReviewOutcome::ALL {
            assert_eq!(ReviewOutcome::parse(o.as_str()), Some(o));
        }
    }

    #[test]
    fn shortfalls_must_be_explained_and_consistent() {
        let partial =
            PostImplementationReview::new(ChangeStatus::Implemented, ReviewOutcome::PartiallySuccessful, None, vec![], None, "ann", at());
        assert_eq!(codes(partial), vec!["required"]);
        let wrong = PostImplementationReview::new(ChangeStatus::BackedOut, ReviewOutcome::Successful, None, vec![], None, "", at());
        assert_eq!(codes(wrong), vec!["inconsistent_outcome", "required"]);
        let early = PostImplementationReview::new(ChangeStatus::Scheduled, ReviewOutcome::Failed, Some("x"), vec![], None, "ann", at());
        assert_eq!(codes(early), vec!["not_reviewable"]);
        let ok = PostImplementationReview::new(
            ChangeStatus::Failed,
            ReviewOutcome::Failed,
            Some("disk firmware refused the update"),
            vec!["inc-2".into(), " inc-1 ".into(), "inc-2".into(), "".into()],
            Some("vendor case opened"),
            "ann",
            at(),
        )
        .unwrap();
        assert_eq!(ok.caused_incident_ids, vec!["inc-1", "inc-2"]);
    }
}

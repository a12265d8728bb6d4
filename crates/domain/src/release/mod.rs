//! Release management (发布管理, REQUIREMENTS §5, manual §5.1.4): releases grouping changes,
//! build/test/acceptance/deployment stages with checklists and sign-offs, the release review
//! comparing actual with expected results, rollback, and release notes.

pub mod lifecycle;
pub mod notes;
pub mod number;
pub mod plan;
pub mod review;

pub use lifecycle::{
    RELEASE_TRANSITIONS, ReleaseRequirement, ReleaseStatus, ReleaseTransition, StageKind, find_release_transition, release_transitions_from,
};
pub use notes::{NoteChange, release_notes};
pub use number::ReleaseNumber;
pub use plan::{
    ActualResult, ChecklistItem, Done, ExpectedResult, NewRelease, Release, ReviewRecord, RollbackOutcome, RollbackRecord, SignOff, Stage,
    StagePlan,
};
pub use review::{ReleaseReview, ResultComparison, ResultStatus, ReviewVerdict, StageComparison, compare};

//! Change management (变更管理, REQUIREMENTS §5): change types and lifecycle, standard change
//! templates, risk assessment, CAB approval, the forward schedule of change with conflict
//! detection, and the post-implementation review.

pub mod approval;
pub mod lifecycle;
pub mod number;
pub mod review;
pub mod risk;
pub mod schedule;
pub mod template;

pub use approval::{
    ApprovalStep, ApprovalWorkflow, Approver, Decision, DecisionRequest, Delegation, Evaluation, Outcome, Quorum, StepEvaluation, Verdict,
    decide, evaluate,
};
pub use lifecycle::{
    CHANGE_TRANSITIONS, ChangeFacts, ChangeStatus, ChangeTransition, ChangeType, Requirement, check_transition, find_transition,
    transitions_from,
};
pub use number::ChangeNumber;
pub use review::{PostImplementationReview, ReviewOutcome};
pub use risk::{AnswerOption, Question, Questionnaire, RiskAssessment, RiskLevel, RiskThresholds};
pub use schedule::{CiDependencies, CiPair, Conflict, FreezeOverlap, FreezeWindow, PlannedChange, Window, conflicts, forward_schedule};
pub use template::StandardChangeTemplate;

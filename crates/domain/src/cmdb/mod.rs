//! Configuration management (配置管理, REQUIREMENTS §5): CI classes and their attributes, the
//! CI lifecycle, relationships, impact analysis, baselines and verification audits.

pub mod baseline;
pub mod class;
pub mod impact;
pub mod lifecycle;
pub mod relation;
pub mod verification;

pub use baseline::{AttributeChange, Baseline, CiChange, CiSnapshot, Snapshot, SnapshotDiff, attribute_changes};
pub use class::{AttributeDef, AttributeType, CiClass, CiLookup, ClassRegistry, shipped_classes};
pub use impact::{
    Affected, Direction, GraphBuilder, GraphContent, GraphNode, ImpactGraph, ImpactReport, NodeIndex, PathStep, ReachedCi, ReachedEntry,
    Traversal,
};
pub use lifecycle::{CI_TRANSITIONS, CiStatus};
pub use relation::{Propagation, Relation, RelationType, check_new_relation, would_create_part_of_cycle};
pub use verification::{OverdueCi, VerificationState, overdue_verifications};

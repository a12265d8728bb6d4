//! Keel's pure domain: the records, lifecycles and rules of the ISO/IEC 20000 processes.
//!
//! Nothing here reads a clock, a database or the network: time and configuration come in
//! as arguments, so every rule can be tested and recomputed exactly.

pub mod audit;
pub mod change;
pub mod cmdb;
pub mod error;
pub mod identity;
pub mod incident;
pub mod notification;
pub mod problem;
pub mod process;
pub mod release;
pub mod sla;
pub mod validate;

pub use error::{DomainError, FieldError};

//! Problem management (REQUIREMENTS §4): problems raised from incident trends, major incidents
//! or proactive review; root-cause analysis; workarounds; the known error database searchable
//! by the desk; and what resolving a problem means for the incidents linked to it.
//!
//! Pure like the rest of the domain: instants, actors and the existence of referenced records
//! come in as arguments.

pub mod fields;
pub mod known_error;
pub mod lifecycle;
pub mod linked;
pub mod number;
pub mod record;
pub mod search;

#[cfg(test)]
mod proptests;

pub use fields::{ProblemFields, ProblemForm, ProblemSource, validate_new_problem};
pub use known_error::{KnownError, KnownErrorEntry, PortalKnownError};
pub use lifecycle::{Action, Guard, Status, TRANSITIONS, Transition};
pub use linked::{IncidentFollowUp, LinkedIncident, follow_ups_on_resolution};
pub use number::{KnownErrorNumber, ProblemNumber};
pub use record::{
    Applied, Command, Context, Event, ProblemClosure, ProblemClosureKind, ProblemResolution, ProblemState, Rca, RcaMethod, StatusLogEntry,
    Workaround, apply, available_actions, check_status_log,
};
pub use search::{min_hits, search_terms};

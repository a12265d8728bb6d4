//! Service desk and incident management (REQUIREMENTS §4): incidents and service requests,
//! their classification and priority, the status lifecycle as data, resolution and closure,
//! satisfaction, major incidents, links, work logs and comments.
//!
//! Everything here is pure: the current instant, the actor, the priority matrix, the calendar
//! and the existence of referenced records all come in as arguments.

/// Declares a fieldless enum whose variants have stable strings, shared by `as_str`, `parse`,
/// `Display` and serde, so the database, the API, the UI and the docs cannot drift apart.
macro_rules! stable_str_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident => $s:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $s)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($s => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// Parses form input, reporting an unknown value as a field error that lists the choices.
            pub fn parse_field(field: &str, s: &str) -> Result<Self, $crate::error::FieldError> {
                Self::parse(s.trim()).ok_or_else(|| {
                    let choices: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    $crate::error::FieldError::new(
                        field,
                        "invalid_choice",
                        format!("{field} must be one of: {}", choices.join(", ")),
                    )
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use stable_str_enum;

pub mod attachment;
pub mod closure;
pub mod comment;
pub mod fields;
pub mod lifecycle;
pub mod links;
pub mod major;
pub mod number;
pub mod priority;
pub mod refs;
pub mod request_form;
pub mod satisfaction;
pub mod ticket;
pub mod worklog;

#[cfg(test)]
mod proptests;

pub use closure::{auto_close_at, auto_close_due};
pub use comment::{NewComment, Visibility, may_see_comment, new_comment, resume_on_reply};
pub use fields::{Channel, TicketFields, TicketForm, TicketPatch, validate_new_ticket, validate_ticket_update};
pub use lifecycle::{
    Action, Guard, GuardKind, PendingReason, SLA_PAUSING_STATUSES, SLA_STATUSES, Status, TRANSITIONS, Transition, pauses_sla,
    reachable_from, sla_status, transition,
};
pub use links::{DuplicateTarget, LinkSubject, RelatedRecord, check_merge, check_parent, link_related};
pub use major::{
    Audience, CommunicationEntry, CommunicationInput, CommunicationMedium, MajorIncident, StandDown, change_major_incident_manager,
    communication_overdue, declare_major_incident, record_communication, stand_down_major_incident,
};
pub use number::{TicketKind, TicketNumber};
pub use priority::{Impact, MatrixCell, Priority, PriorityMatrix, Urgency};
pub use refs::{Ref, References};
pub use satisfaction::{Satisfaction, Score, rate};
pub use ticket::{
    Actor, Applied, Assignment, Closure, ClosureKind, Command, Context, Event, LifecyclePolicy, Pending, Resolution, ResolutionCode,
    StatusLogEntry, TicketState, apply, available_actions, check_status_log,
};
pub use worklog::{MAX_MINUTES_PER_ENTRY, WorkLogEntry, new_work_log};

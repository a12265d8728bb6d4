//! Communication with customers and staff (ISO/IEC 20000-1 §8.3, §8.6): the events a process
//! announces and who must hear of them. Delivery (templates, channels, retries) lives in the
//! application; a process only says what happened and to whom.

use serde::{Deserialize, Serialize};

/// Who must hear of an event, resolved against the record when the notification is prepared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Audience {
    /// The staff member the record is assigned to.
    Assignee,
    /// Every member of the assignment team.
    AssignmentTeam,
    /// The lead of the assignment team.
    TeamLead,
    /// The manager of the record's service project.
    ProjectManager,
    /// Whoever reported the ticket (contact or staff).
    Reporter,
    /// The customer organisation's contacts for the record's project.
    CustomerContacts,
    /// Users and contacts watching the record.
    Watchers,
    /// One named user or contact.
    Person { id: String },
    /// A literal address (e.g. an external supplier desk).
    Email { address: String },
}

/// An event a process announces for notification, written to the outbox (topic
/// [`Announcement::TOPIC`]) in the same transaction as the change it reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    /// Dotted event name, e.g. `incident.assigned`, `sla.warning`, `sla.breached`.
    pub kind: String,
    pub entity_type: String,
    pub entity_id: String,
    pub audience: Vec<Audience>,
    /// Values the templates may use, e.g. `{"number": "INC-000042", "late": true}`.
    #[serde(default)]
    pub vars: serde_json::Value,
}

impl Announcement {
    pub const TOPIC: &'static str = "announcement";
}

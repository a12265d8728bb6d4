//! Problem management: what resolving a problem does to the incidents linked to it.
//!
//! The requirement is that linked incidents are closed on problem resolution. Closing requires
//! a resolution in the incident lifecycle, and the customer keeps the right to confirm or reject
//! it, so open incidents are *resolved* with code `resolved_by_problem` and then close through
//! confirmation or auto-close like any other.

use super::number::ProblemNumber;
use super::record::ProblemResolution;
use crate::incident::lifecycle::Status as IncidentStatus;
use crate::incident::number::{TicketKind, TicketNumber};
use crate::incident::ticket::{Command as IncidentCommand, RESOLUTION_NOTES_MAX, ResolutionCode};
use serde::Serialize;

/// What the rule needs to know about a linked incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedIncident {
    pub id: String,
    pub number: TicketNumber,
    pub status: IncidentStatus,
}

/// One thing to do to a linked incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IncidentFollowUp {
    /// Apply this command to the incident, as the system.
    Apply { incident_id: String, command: IncidentCommand },
    /// The incident was never assigned, so it cannot be resolved yet: put it in front of the
    /// service desk, pointing at the problem's resolution.
    Triage { incident_id: String },
    /// Already resolved and awaiting confirmation: tell its reporter the underlying cause has
    /// now been removed.
    NotifyReporter { incident_id: String },
}

/// The follow-ups for the incidents linked to `problem` once it is resolved, in the order
/// given, each incident once. Closed incidents are left alone: their records are final.
/// Service requests are skipped, as they are never caused by problems.
pub fn follow_ups_on_resolution(
    problem: ProblemNumber,
    resolution: &ProblemResolution,
    linked: &[LinkedIncident],
) -> Vec<IncidentFollowUp> {
    let notes: String = format!("{problem}: {}", resolution.notes).chars().take(RESOLUTION_NOTES_MAX).collect();
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for incident in linked {
        if incident.number.kind() != TicketKind::Incident || seen.contains(&incident.id.as_str()) {
            continue;
        }
        seen.push(&incident.id);
        let incident_id = incident.id.clone();
        match incident.status {
            IncidentStatus::New => out.push(IncidentFollowUp::Triage { incident_id }),
            IncidentStatus::Assigned | IncidentStatus::InProgress | IncidentStatus::Pending => {
                let command = IncidentCommand::Resolve { code: ResolutionCode::ResolvedByProblem, notes: notes.clone() };
                out.push(IncidentFollowUp::Apply { incident_id, command });
            }
            IncidentStatus::Resolved => out.push(IncidentFollowUp::NotifyReporter { incident_id }),
            IncidentStatus::Closed => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::ticket::{Actor, Assignment, Context, LifecyclePolicy, TicketState, apply};
    use chrono::{TimeZone, Utc};

    fn linked(id: &str, kind: TicketKind, status: IncidentStatus) -> LinkedIncident {
        LinkedIncident { id: id.into(), number: TicketNumber::new(kind, 1).unwrap(), status }
    }
    fn resolution(notes: &str) -> ProblemResolution {
        ProblemResolution {
            notes: notes.into(),
            fixing_change_id: None,
            resolved_at: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
            resolved_by: Actor::System,
        }
    }

    #[test]
    fn each_linked_incident_gets_what_its_status_calls_for() {
        let inc = TicketKind::Incident;
        let list = [
            linked("a", inc, IncidentStatus::New),
            linked("b", inc, IncidentStatus::InProgress),
            linked("c", inc, IncidentStatus::Pending),
            linked("d", inc, IncidentStatus::Resolved),
            linked("e", inc, IncidentStatus::Closed),
            linked("f", TicketKind::ServiceRequest, IncidentStatus::InProgress),
            linked("b", inc, IncidentStatus::InProgress),
            linked("g", inc, IncidentStatus::Assigned),
        ];
        let prb = ProblemNumber::new(12).unwrap();
        let out = follow_ups_on_resolution(prb, &resolution("patched the firmware"), &list);
        let resolve = |id: &str| IncidentFollowUp::Apply {
            incident_id: id.into(),
            command: IncidentCommand::Resolve { code: ResolutionCode::ResolvedByProblem, notes: "PRB-000012: patched the firmware".into() },
        };
        assert_eq!(
            out,
            [
                IncidentFollowUp::Triage { incident_id: "a".into() },
                resolve("b"),
                resolve("c"),
                IncidentFollowUp::NotifyReporter { incident_id: "d".into() },
                resolve("g"),
            ]
        );
    }

    #[test]
    fn the_resolve_commands_are_accepted_by_the_incident_lifecycle() {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let (mut ticket, _) = TicketState::open("b", TicketNumber::new(TicketKind::Incident, 1).unwrap(), "c", at);
        ticket.status = IncidentStatus::Pending;
        ticket.assignment = Assignment { team_id: Some("t".into()), agent_id: None };
        ticket.pending =
            Some(crate::incident::ticket::Pending { reason: crate::incident::lifecycle::PendingReason::WaitingForChange, note: None });
        let long = "x".repeat(RESOLUTION_NOTES_MAX);
        let out = follow_ups_on_resolution(
            ProblemNumber::new(1).unwrap(),
            &resolution(&long),
            &[linked("b", TicketKind::Incident, ticket.status)],
        );
        let [IncidentFollowUp::Apply { command, .. }] = &out[..] else { panic!("{out:?}") };
        let policy = LifecyclePolicy::default();
        let applied = apply(&ticket, command, &Context::new(at, &Actor::System, &policy)).unwrap();
        assert_eq!(applied.state.status, IncidentStatus::Resolved);
        assert_eq!(applied.state.resolution.unwrap().notes.chars().count(), RESOLUTION_NOTES_MAX);
    }
}

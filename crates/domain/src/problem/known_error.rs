//! Problem management: the known error database (已知错误数据库): known error records the
//! service desk searches to match incidents, and the subset published on the customer portal.

use super::lifecycle::Status;
use super::number::{KnownErrorNumber, ProblemNumber};
use super::record::ProblemState;
use crate::validate::Locale;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const TITLE_MAX: usize = 200;
pub const SYMPTOMS_MAX: usize = 10_000;

/// What declaring a known error adds to a problem. The root cause and workaround are the
/// problem's own, so the record never disagrees with the investigation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownErrorEntry {
    pub number: KnownErrorNumber,
    pub title: String,
    /// How it shows itself, in the words the desk will hear.
    pub symptoms: String,
    pub publish_to_portal: bool,
    /// The language the record is written in.
    pub language: Locale,
    pub recorded_at: DateTime<Utc>,
}

/// A known error record as the known error database holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownError {
    pub number: KnownErrorNumber,
    pub problem_id: String,
    pub problem_number: ProblemNumber,
    pub problem_status: Status,
    pub title: String,
    pub symptoms: String,
    pub root_cause: Option<String>,
    pub workaround: Option<String>,
    pub publish_to_portal: bool,
    pub language: Locale,
}

/// What a customer contact sees of a known error on the portal: no root cause, which may
/// describe the provider's internals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalKnownError {
    pub number: KnownErrorNumber,
    pub title: String,
    pub symptoms: String,
    pub workaround: String,
    pub language: Locale,
}

impl KnownError {
    /// The known error record of `problem`, if one was declared.
    pub fn of(problem: &ProblemState) -> Option<KnownError> {
        let k = problem.known_error.as_ref()?;
        Some(KnownError {
            number: k.number,
            problem_id: problem.id.clone(),
            problem_number: problem.number,
            problem_status: problem.status,
            title: k.title.clone(),
            symptoms: k.symptoms.clone(),
            root_cause: problem.root_cause().map(String::from),
            workaround: problem.workaround.as_ref().map(|w| w.text.clone()),
            publish_to_portal: k.publish_to_portal,
            language: k.language,
        })
    }

    /// Still a live known error: its problem is not yet resolved. Resolved ones stay in the
    /// database as history, for the desk only.
    pub fn is_active(&self) -> bool {
        self.problem_status.is_open()
    }

    /// The portal's view, if the record is published, active and has a workaround to offer.
    pub fn for_portal(&self) -> Option<PortalKnownError> {
        let workaround = self.workaround.clone().filter(|_| self.publish_to_portal && self.is_active())?;
        Some(PortalKnownError {
            number: self.number,
            title: self.title.clone(),
            symptoms: self.symptoms.clone(),
            workaround,
            language: self.language,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::ticket::{Actor, Assignment};
    use crate::problem::record::{Rca, RcaMethod, Workaround};
    use chrono::TimeZone;

    fn problem(status: Status, publish: bool, workaround: bool) -> ProblemState {
        let at = Utc.with_ymd_and_hms(2026, 2, 2, 9, 0, 0).unwrap();
        let (mut p, _) = ProblemState::open("p-1", ProblemNumber::new(3).unwrap(), at);
        p.status = status;
        p.assignment = Assignment { team_id: Some("t".into()), agent_id: None };
        p.rca = Some(Rca {
            method: RcaMethod::FaultTree,
            findings: "f".into(),
            root_cause: Some("internal hostname misconfigured".into()),
            recorded_at: at,
            recorded_by: Actor::System,
        });
        p.workaround = workaround.then(|| Workaround { text: "use the backup URL".into(), recorded_at: at, recorded_by: Actor::System });
        p.known_error = Some(KnownErrorEntry {
            number: KnownErrorNumber::new(9).unwrap(),
            title: "Portal unreachable".into(),
            symptoms: "HTTP 502".into(),
            publish_to_portal: publish,
            language: Locale::En,
            recorded_at: at,
        });
        p
    }

    #[test]
    fn the_record_combines_problem_and_entry() {
        let k = KnownError::of(&problem(Status::KnownError, false, true)).unwrap();
        assert_eq!(k.number.to_string(), "KE-000009");
        assert_eq!(k.problem_number.to_string(), "PRB-000003");
        assert_eq!(k.root_cause.as_deref(), Some("internal hostname misconfigured"));
        assert!(k.is_active());
        let (none, _) = ProblemState::open("p", ProblemNumber::new(1).unwrap(), Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(KnownError::of(&none), None);
    }

    #[test]
    fn the_portal_sees_published_active_workarounds_without_root_cause() {
        let shown = KnownError::of(&problem(Status::KnownError, true, true)).unwrap().for_portal().unwrap();
        assert_eq!(shown.workaround, "use the backup URL");
        let json = serde_json::to_string(&shown).unwrap();
        assert!(!json.contains("hostname"), "{json}");
        assert!(KnownError::of(&problem(Status::KnownError, false, true)).unwrap().for_portal().is_none());
        assert!(KnownError::of(&problem(Status::KnownError, true, false)).unwrap().for_portal().is_none());
        assert!(KnownError::of(&problem(Status::Resolved, true, true)).unwrap().for_portal().is_none());
        assert!(KnownError::of(&problem(Status::UnderInvestigation, true, true)).unwrap().for_portal().is_some(), "reopened");
    }
}

//! Problem management: raising a problem, from an incident trend, a major incident, proactive
//! review or a supplier's notice, with its fields validated together.

use crate::error::{DomainError, Errors, FieldError};
use crate::incident::priority::Priority;
use crate::incident::refs::{Ref, References, optional_ref, required_ref};
use crate::incident::stable_str_enum;
use crate::validate::{optional_text, required_text};
use serde::{Deserialize, Serialize};

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 100_000;
/// Most incidents or configuration items named when raising a problem.
pub const MAX_LINKS: usize = 500;

stable_str_enum! {
    /// Why a problem was raised.
    pub enum ProblemSource {
        /// Recurring incidents with a common cause: at least two incidents.
        IncidentTrend => "incident_trend",
        /// The review after a major incident: the major incident itself.
        MajorIncident => "major_incident",
        /// Found before it caused incidents (proactive problem management).
        Proactive => "proactive",
        /// A supplier reported a fault in what they deliver.
        Supplier => "supplier",
    }
}

impl ProblemSource {
    /// How many linked incidents a problem from this source needs at least.
    pub fn min_incidents(self) -> usize {
        match self {
            ProblemSource::IncidentTrend => 2,
            ProblemSource::MajorIncident => 1,
            ProblemSource::Proactive | ProblemSource::Supplier => 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ProblemForm {
    pub project_id: String,
    pub title: String,
    pub description: Option<String>,
    pub source: String,
    /// Blank means P3.
    pub priority: Option<String>,
    pub service_id: Option<String>,
    #[serde(default)]
    pub ci_ids: Vec<String>,
    #[serde(default)]
    pub incident_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemFields {
    pub project_id: String,
    pub title: String,
    pub description: Option<String>,
    pub source: ProblemSource,
    pub priority: Priority,
    pub service_id: Option<String>,
    pub ci_ids: Vec<String>,
    pub incident_ids: Vec<String>,
}

fn id_list(e: &mut Errors, refs: &impl References, kind: Ref, field: &str, ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if id.trim().is_empty() || out.iter().any(|o| o == id.trim()) {
            continue;
        }
        if let Some(id) = e.check(required_ref(refs, kind, &format!("{field}[{i}]"), id)) {
            out.push(id);
        }
    }
    if out.len() > MAX_LINKS {
        e.push(FieldError::new(field, "too_many", format!("at most {MAX_LINKS} can be linked at once")));
    }
    out
}

/// Validates a new problem.
pub fn validate_new_problem(form: &ProblemForm, refs: &impl References) -> Result<ProblemFields, DomainError> {
    let mut e = Errors::new();
    let project_id = e.check(required_ref(refs, Ref::Project, "project_id", &form.project_id));
    let title = e.check(required_text("title", &form.title, TITLE_MAX));
    let description = e.check(optional_text("description", form.description.as_deref(), DESCRIPTION_MAX)).flatten();
    let source = e.check(ProblemSource::parse_field("source", &form.source));
    let priority = match form.priority.as_deref().map(str::trim) {
        None | Some("") => Some(Priority::P3),
        Some(p) => e.check(Priority::from_input("priority", p)),
    };
    let service_id = e.check(optional_ref(refs, Ref::Service, "service_id", form.service_id.as_deref())).flatten();
    let ci_ids = id_list(&mut e, refs, Ref::ConfigurationItem, "ci_ids", &form.ci_ids);
    let incident_ids = id_list(&mut e, refs, Ref::Incident, "incident_ids", &form.incident_ids);
    if let Some(source) = source
        && incident_ids.len() < source.min_incidents()
    {
        e.push(FieldError::new(
            "incident_ids",
            "too_few",
            format!("a problem from {source} links at least {} incident(s)", source.min_incidents()),
        ));
    }
    e.finish()?;
    match (project_id, title, source, priority) {
        (Some(project_id), Some(title), Some(source), Some(priority)) => {
            Ok(ProblemFields { project_id, title, description, source, priority, service_id, ci_ids, incident_ids })
        }
        _ => unreachable!("each missing value recorded an error above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(kind: Ref, id: &str) -> bool {
        match kind {
            Ref::Project => id == "proj",
            Ref::Incident => id.starts_with("inc-"),
            Ref::ConfigurationItem => id.starts_with("ci-"),
            Ref::Service => id == "email",
            _ => false,
        }
    }
    fn form() -> ProblemForm {
        ProblemForm {
            project_id: "proj".into(),
            title: " Mailbox sync failures ".into(),
            description: None,
            source: "incident_trend".into(),
            priority: None,
            service_id: Some("email".into()),
            ci_ids: vec!["ci-mx1".into()],
            incident_ids: vec!["inc-1".into(), "inc-2".into(), "inc-1".into()],
        }
    }
    fn fields_of(e: DomainError) -> Vec<(String, &'static str)> {
        match e {
            DomainError::Invalid(v) => v.into_iter().map(|f| (f.field, f.code)).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_trend_problem() {
        let p = validate_new_problem(&form(), &refs).unwrap();
        assert_eq!((p.title.as_str(), p.priority, p.source), ("Mailbox sync failures", Priority::P3, ProblemSource::IncidentTrend));
        assert_eq!(p.incident_ids, ["inc-1", "inc-2"]);
    }

    #[test]
    fn sources_need_their_incidents() {
        let one = ProblemForm { incident_ids: vec!["inc-1".into(), "inc-1".into()], ..form() };
        assert_eq!(fields_of(validate_new_problem(&one, &refs).unwrap_err()), [("incident_ids".to_string(), "too_few")]);
        let major = ProblemForm { source: "major_incident".into(), ..one.clone() };
        assert!(validate_new_problem(&major, &refs).is_ok());
        let proactive = ProblemForm { source: "proactive".into(), incident_ids: vec![], priority: Some("P2".into()), ..form() };
        assert_eq!(validate_new_problem(&proactive, &refs).unwrap().priority, Priority::P2);
    }

    #[test]
    fn every_problem_is_reported() {
        let bad = ProblemForm {
            project_id: "other".into(),
            title: "".into(),
            description: Some("d".repeat(DESCRIPTION_MAX + 1)),
            source: "rumour".into(),
            priority: Some("urgent".into()),
            service_id: Some("nope".into()),
            ci_ids: vec!["server".into()],
            incident_ids: vec!["x".into()],
        };
        let got = fields_of(validate_new_problem(&bad, &refs).unwrap_err());
        let want = [
            ("project_id", "not_found"),
            ("title", "required"),
            ("description", "too_long"),
            ("source", "invalid_choice"),
            ("priority", "invalid_choice"),
            ("service_id", "not_found"),
            ("ci_ids[0]", "not_found"),
            ("incident_ids[0]", "not_found"),
        ];
        assert_eq!(got, want.map(|(f, c)| (f.to_string(), c)));
    }
}

//! Service desk: logging and classifying a ticket: the fields of the create and update forms,
//! validated together so the form reports every problem at once.

use super::lifecycle::Status;
use super::number::TicketKind;
use super::priority::{Impact, Priority, PriorityMatrix, Urgency};
use super::refs::{Ref, References, optional_ref, required_ref};
use super::ticket::Actor;
use crate::error::{DomainError, Errors, FieldError};
use crate::validate::{optional_text, required_text};
use serde::{Deserialize, Serialize};

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 100_000;
/// Most configuration items one ticket can name.
pub const MAX_CIS: usize = 50;

stable_str_enum! {
    /// How a ticket reached the service desk.
    pub enum Channel {
        Portal => "portal",
        Email => "email",
        /// Phone calls and anything else an agent enters by hand.
        Phone => "phone",
        Api => "api",
        /// Alerts from monitoring systems.
        Monitoring => "monitoring",
    }
}

/// The create form, as text, the way a web form or an API body delivers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TicketForm {
    pub kind: String,
    pub project_id: String,
    pub reporter_id: String,
    pub channel: String,
    pub title: String,
    pub description: Option<String>,
    /// Blank means medium.
    pub impact: Option<String>,
    /// Blank means medium.
    pub urgency: Option<String>,
    pub category_id: Option<String>,
    pub service_id: Option<String>,
    /// Required for service requests, which are ordered from the service catalogue.
    pub catalogue_item_id: Option<String>,
    #[serde(default)]
    pub ci_ids: Vec<String>,
}

/// A ticket's descriptive and classification fields, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketFields {
    pub kind: TicketKind,
    pub project_id: String,
    pub reporter_id: String,
    pub channel: Channel,
    pub title: String,
    pub description: Option<String>,
    pub impact: Impact,
    pub urgency: Urgency,
    pub priority: Priority,
    pub category_id: Option<String>,
    pub service_id: Option<String>,
    pub catalogue_item_id: Option<String>,
    pub ci_ids: Vec<String>,
}

fn impact_or_medium(errors: &mut Errors, s: Option<&str>) -> Option<Impact> {
    match s.map(str::trim) {
        None | Some("") => Some(Impact::Medium),
        Some(s) => errors.check(Impact::from_input("impact", s)),
    }
}

fn urgency_or_medium(errors: &mut Errors, s: Option<&str>) -> Option<Urgency> {
    match s.map(str::trim) {
        None | Some("") => Some(Urgency::Medium),
        Some(s) => errors.check(Urgency::from_input("urgency", s)),
    }
}

/// Checks each configuration item, dropping blanks and repeats.
fn ci_list(errors: &mut Errors, refs: &impl References, ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if id.trim().is_empty() || out.iter().any(|o| o == id.trim()) {
            continue;
        }
        if let Some(id) = errors.check(required_ref(refs, Ref::ConfigurationItem, &format!("ci_ids[{i}]"), id)) {
            out.push(id);
        }
    }
    if out.len() > MAX_CIS {
        errors.push(FieldError::new("ci_ids", "too_many", format!("a ticket can name at most {MAX_CIS} configuration items")));
    }
    out
}

/// Validates a new ticket logged by `creator`. Priority comes from the matrix. A customer
/// contact logs tickets for themselves and states urgency only: impact is the service desk's
/// assessment.
pub fn validate_new_ticket(
    form: &TicketForm,
    creator: &Actor,
    matrix: &PriorityMatrix,
    refs: &impl References,
) -> Result<TicketFields, DomainError> {
    let mut e = Errors::new();
    let kind = e.check(TicketKind::parse_field("kind", &form.kind));
    let project_id = e.check(required_ref(refs, Ref::Project, "project_id", &form.project_id));
    let reporter_id = e.check(required_ref(refs, Ref::Person, "reporter_id", &form.reporter_id));
    if let (Actor::Contact(me), Some(reporter)) = (creator, &reporter_id)
        && me != reporter
    {
        e.push(FieldError::new("reporter_id", "not_allowed", "customers log tickets for themselves"));
    }
    if matches!(creator, Actor::Contact(_)) && form.impact.as_deref().is_some_and(|s| !s.trim().is_empty()) {
        e.push(FieldError::new("impact", "not_allowed", "impact is assessed by the service desk"));
    }
    let channel = e.check(Channel::parse_field("channel", &form.channel));
    let title = e.check(required_text("title", &form.title, TITLE_MAX));
    let description = e.check(optional_text("description", form.description.as_deref(), DESCRIPTION_MAX)).flatten();
    let impact = impact_or_medium(&mut e, form.impact.as_deref());
    let urgency = urgency_or_medium(&mut e, form.urgency.as_deref());
    let category_id = e.check(optional_ref(refs, Ref::Category, "category_id", form.category_id.as_deref())).flatten();
    let service_id = e.check(optional_ref(refs, Ref::Service, "service_id", form.service_id.as_deref())).flatten();
    let catalogue_item_id = match kind {
        Some(TicketKind::ServiceRequest) => {
            e.check(required_ref(refs, Ref::CatalogueItem, "catalogue_item_id", form.catalogue_item_id.as_deref().unwrap_or("")))
        }
        _ => {
            if form.catalogue_item_id.as_deref().is_some_and(|s| !s.trim().is_empty()) {
                e.push(FieldError::new("catalogue_item_id", "not_allowed", "only service requests come from the catalogue"));
            }
            None
        }
    };
    let ci_ids = ci_list(&mut e, refs, &form.ci_ids);
    e.finish()?;
    match (kind, project_id, reporter_id, channel, title, impact, urgency) {
        (Some(kind), Some(project_id), Some(reporter_id), Some(channel), Some(title), Some(impact), Some(urgency)) => Ok(TicketFields {
            kind,
            project_id,
            reporter_id,
            channel,
            title,
            description,
            impact,
            urgency,
            priority: matrix.priority(impact, urgency),
            category_id,
            service_id,
            catalogue_item_id,
            ci_ids,
        }),
        _ => unreachable!("each missing value recorded an error above"),
    }
}

/// Changes to a ticket's fields. `None` leaves a field as it is; for optional fields an empty
/// string clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TicketPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub impact: Option<String>,
    pub urgency: Option<String>,
    pub category_id: Option<String>,
    pub service_id: Option<String>,
    pub ci_ids: Option<Vec<String>>,
}

/// Validates an update of `current` (a ticket in `status`) by `editor`. Closed tickets are
/// final. Customers may correct the title and description of their ticket until the desk has
/// taken it on; staff may change any field while the ticket is not closed. Priority is
/// recomputed only when impact or urgency change, so a later change of the matrix does not
/// silently re-prioritise tickets edited for other reasons.
pub fn validate_ticket_update(
    current: &TicketFields,
    status: Status,
    patch: &TicketPatch,
    editor: &Actor,
    matrix: &PriorityMatrix,
    refs: &impl References,
) -> Result<TicketFields, DomainError> {
    let mut e = Errors::new();
    if status == Status::Closed {
        e.push(FieldError::new("status", "closed", "a closed ticket cannot be changed"));
    }
    if let Actor::Contact(_) = editor {
        if editor.user_id().is_none_or(|id| id != current.reporter_id) {
            e.push(FieldError::new("actor", "not_reporter", "customers edit only their own tickets"));
        }
        if status != Status::New && (patch.title.is_some() || patch.description.is_some()) {
            e.push(FieldError::new("status", "already_taken_on", "the service desk has taken the ticket on; add a reply instead"));
        }
        let staff_fields = [
            ("impact", patch.impact.is_some()),
            ("urgency", patch.urgency.is_some()),
            ("category_id", patch.category_id.is_some()),
            ("service_id", patch.service_id.is_some()),
            ("ci_ids", patch.ci_ids.is_some()),
        ];
        for (field, given) in staff_fields {
            if given {
                e.push(FieldError::new(field, "not_allowed", "only the service desk changes this"));
            }
        }
    }
    let mut next = current.clone();
    if let Some(t) = &patch.title
        && let Some(t) = e.check(required_text("title", t, TITLE_MAX))
    {
        next.title = t;
    }
    if let Some(d) = &patch.description
        && let Some(d) = e.check(optional_text("description", Some(d), DESCRIPTION_MAX))
    {
        next.description = d;
    }
    if let Some(i) = &patch.impact
        && let Some(i) = impact_or_medium(&mut e, Some(i))
    {
        next.impact = i;
    }
    if let Some(u) = &patch.urgency
        && let Some(u) = urgency_or_medium(&mut e, Some(u))
    {
        next.urgency = u;
    }
    if patch.impact.is_some() || patch.urgency.is_some() {
        next.priority = matrix.priority(next.impact, next.urgency);
    }
    if let Some(c) = &patch.category_id
        && let Some(c) = e.check(optional_ref(refs, Ref::Category, "category_id", Some(c)))
    {
        next.category_id = c;
    }
    if let Some(s) = &patch.service_id
        && let Some(s) = e.check(optional_ref(refs, Ref::Service, "service_id", Some(s)))
    {
        next.service_id = s;
    }
    if let Some(cis) = &patch.ci_ids {
        next.ci_ids = ci_list(&mut e, refs, cis);
    }
    e.finish()?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(kind: Ref, id: &str) -> bool {
        match kind {
            Ref::Project => id == "proj",
            Ref::Person => id.starts_with("contact") || id == "agent",
            Ref::Category => id == "printing",
            Ref::Service => id == "office",
            Ref::CatalogueItem => id == "laptop",
            Ref::ConfigurationItem => id.starts_with("ci-"),
            _ => false,
        }
    }
    fn form() -> TicketForm {
        TicketForm {
            kind: "incident".into(),
            project_id: "proj".into(),
            reporter_id: "contact-1".into(),
            channel: "phone".into(),
            title: "  Printer on 3F jams ".into(),
            description: Some("Every second page.".into()),
            impact: Some("low".into()),
            urgency: Some("1".into()),
            category_id: Some("printing".into()),
            service_id: Some("".into()),
            catalogue_item_id: None,
            ci_ids: vec!["ci-1".into(), " ci-1 ".into(), "".into(), "ci-2".into()],
        }
    }
    fn agent() -> Actor {
        Actor::Staff("agent".into())
    }
    fn fields_of(e: DomainError) -> Vec<(String, &'static str)> {
        match e {
            DomainError::Invalid(v) => v.into_iter().map(|f| (f.field, f.code)).collect(),
            other => panic!("{other:?}"),
        }
    }
    fn pairs(v: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
        v.iter().map(|(f, c)| (f.to_string(), *c)).collect()
    }

    #[test]
    fn a_valid_incident() {
        let t = validate_new_ticket(&form(), &agent(), &PriorityMatrix::default(), &refs).unwrap();
        assert_eq!(t.title, "Printer on 3F jams");
        assert_eq!((t.impact, t.urgency, t.priority), (Impact::Low, Urgency::High, Priority::P3));
        assert_eq!((t.channel, t.kind), (Channel::Phone, TicketKind::Incident));
        assert_eq!(t.service_id, None);
        assert_eq!(t.ci_ids, ["ci-1", "ci-2"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let bad = TicketForm {
            kind: "task".into(),
            project_id: "".into(),
            reporter_id: "ghost".into(),
            channel: "fax".into(),
            title: "x".repeat(TITLE_MAX + 1),
            description: Some("y".repeat(DESCRIPTION_MAX + 1)),
            impact: Some("huge".into()),
            urgency: Some("9".into()),
            category_id: Some("nope".into()),
            service_id: Some("nope".into()),
            catalogue_item_id: None,
            ci_ids: vec!["pc".into()],
        };
        assert_eq!(
            fields_of(validate_new_ticket(&bad, &agent(), &PriorityMatrix::default(), &refs).unwrap_err()),
            pairs(&[
                ("kind", "invalid_choice"),
                ("project_id", "required"),
                ("reporter_id", "not_found"),
                ("channel", "invalid_choice"),
                ("title", "too_long"),
                ("description", "too_long"),
                ("impact", "invalid_choice"),
                ("urgency", "invalid_choice"),
                ("category_id", "not_found"),
                ("service_id", "not_found"),
                ("ci_ids[0]", "not_found"),
            ])
        );
        let blank_title = TicketForm { title: " \t ".into(), ..form() };
        assert_eq!(
            fields_of(validate_new_ticket(&blank_title, &agent(), &PriorityMatrix::default(), &refs).unwrap_err()),
            pairs(&[("title", "required")])
        );
        let many = TicketForm { ci_ids: (0..=MAX_CIS).map(|i| format!("ci-{i}")).collect(), ..form() };
        assert_eq!(
            fields_of(validate_new_ticket(&many, &agent(), &PriorityMatrix::default(), &refs).unwrap_err()),
            pairs(&[("ci_ids", "too_many")])
        );
    }

    #[test]
    fn service_requests_come_from_the_catalogue() {
        let req = TicketForm { kind: "service_request".into(), ..form() };
        assert_eq!(
            fields_of(validate_new_ticket(&req, &agent(), &PriorityMatrix::default(), &refs).unwrap_err()),
            pairs(&[("catalogue_item_id", "required")])
        );
        let req = TicketForm { catalogue_item_id: Some("laptop".into()), ..req };
        assert_eq!(
            validate_new_ticket(&req, &agent(), &PriorityMatrix::default(), &refs).unwrap().catalogue_item_id.as_deref(),
            Some("laptop")
        );
        let inc = TicketForm { catalogue_item_id: Some("laptop".into()), ..form() };
        assert_eq!(
            fields_of(validate_new_ticket(&inc, &agent(), &PriorityMatrix::default(), &refs).unwrap_err()),
            pairs(&[("catalogue_item_id", "not_allowed")])
        );
    }

    #[test]
    fn customers_log_for_themselves_and_state_urgency_only() {
        let me = Actor::Contact("contact-1".into());
        let portal = TicketForm { channel: "portal".into(), impact: None, urgency: None, ..form() };
        let t = validate_new_ticket(&portal, &me, &PriorityMatrix::default(), &refs).unwrap();
        assert_eq!((t.impact, t.urgency, t.priority), (Impact::Medium, Urgency::Medium, Priority::P3));
        let for_someone = TicketForm { reporter_id: "contact-2".into(), impact: Some("high".into()), ..portal };
        assert_eq!(
            fields_of(validate_new_ticket(&for_someone, &me, &PriorityMatrix::default(), &refs).unwrap_err()),
            pairs(&[("reporter_id", "not_allowed"), ("impact", "not_allowed")])
        );
    }

    #[test]
    fn staff_updates_recompute_priority_only_when_asked() {
        let current = validate_new_ticket(&form(), &agent(), &PriorityMatrix::default(), &refs).unwrap();
        let m = PriorityMatrix::default();
        let patch = TicketPatch { impact: Some("high".into()), category_id: Some("".into()), ci_ids: Some(vec![]), ..Default::default() };
        let next = validate_ticket_update(&current, Status::InProgress, &patch, &agent(), &m, &refs).unwrap();
        assert_eq!((next.impact, next.priority, next.category_id.clone(), next.ci_ids.len()), (Impact::High, Priority::P1, None, 0));
        let mut stale = current.clone();
        stale.priority = Priority::P4;
        let retitled = TicketPatch { title: Some("Printer on 3F jams badly".into()), ..Default::default() };
        assert_eq!(validate_ticket_update(&stale, Status::InProgress, &retitled, &agent(), &m, &refs).unwrap().priority, Priority::P4);
        assert_eq!(
            fields_of(validate_ticket_update(&current, Status::Closed, &retitled, &agent(), &m, &refs).unwrap_err()),
            pairs(&[("status", "closed")])
        );
        let bad = TicketPatch { title: Some("".into()), urgency: Some("x".into()), service_id: Some("nope".into()), ..Default::default() };
        assert_eq!(
            fields_of(validate_ticket_update(&current, Status::New, &bad, &agent(), &m, &refs).unwrap_err()),
            pairs(&[("title", "required"), ("urgency", "invalid_choice"), ("service_id", "not_found")])
        );
    }

    #[test]
    fn customer_updates_are_limited() {
        let current = validate_new_ticket(&form(), &agent(), &PriorityMatrix::default(), &refs).unwrap();
        let m = PriorityMatrix::default();
        let me = Actor::Contact("contact-1".into());
        let fix = TicketPatch { description: Some("Every page, actually.".into()), ..Default::default() };
        assert_eq!(
            validate_ticket_update(&current, Status::New, &fix, &me, &m, &refs).unwrap().description.as_deref(),
            Some("Every page, actually.")
        );
        assert_eq!(
            fields_of(validate_ticket_update(&current, Status::Assigned, &fix, &me, &m, &refs).unwrap_err()),
            pairs(&[("status", "already_taken_on")])
        );
        let other = Actor::Contact("contact-2".into());
        let escalate = TicketPatch { urgency: Some("high".into()), ..Default::default() };
        assert_eq!(
            fields_of(validate_ticket_update(&current, Status::New, &escalate, &other, &m, &refs).unwrap_err()),
            pairs(&[("actor", "not_reporter"), ("urgency", "not_allowed")])
        );
    }
}

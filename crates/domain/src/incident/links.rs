//! Incident management: links between tickets (parent/child, duplicate-of) and to the problems
//! and changes related to them.

use super::lifecycle::Status;
use super::number::{TicketKind, TicketNumber};
use super::refs::{Ref, References, required_ref};
use crate::error::{DomainError, Errors, FieldError};
use serde::{Deserialize, Serialize};

/// How far a chain of parents or duplicates is followed before it is taken for corrupt data.
pub const MAX_CHAIN: usize = 64;

/// What the link rules need to know about a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSubject<'a> {
    pub id: &'a str,
    pub number: TicketNumber,
    pub project_id: &'a str,
    pub status: Status,
}

/// Proof that merging one ticket into another was checked by [`check_merge`]; the only way to
/// build `Command::MarkDuplicate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicateTarget {
    duplicate_id: String,
    target_id: String,
    target_number: TicketNumber,
}

impl DuplicateTarget {
    pub fn duplicate_id(&self) -> &str {
        &self.duplicate_id
    }
    pub fn target_id(&self) -> &str {
        &self.target_id
    }
    pub fn target_number(&self) -> TicketNumber {
        self.target_number
    }
}

enum Walk {
    Reaches,
    Clear,
    TooLong,
}

/// Follows `next` from `start` and says whether it reaches `goal`.
fn walk(start: &str, goal: &str, next: impl Fn(&str) -> Option<String>) -> Walk {
    let mut current = start.to_string();
    for _ in 0..MAX_CHAIN {
        if current == goal {
            return Walk::Reaches;
        }
        match next(&current) {
            Some(n) => current = n,
            None => return Walk::Clear,
        }
    }
    Walk::TooLong
}

fn check_chain(errors: &mut Errors, field: &str, walked: Walk, what: &str) {
    match walked {
        Walk::Reaches => errors.push(FieldError::new(field, "cycle", format!("this would make the {what} links go round in a circle"))),
        Walk::TooLong => errors.push(FieldError::new(field, "chain_too_long", format!("the chain of {what} links is too long"))),
        Walk::Clear => {}
    }
}

/// Checks merging `duplicate` into `target`. The duplicate must still be open; the target must
/// be another open or resolved ticket of the same kind and the same service project (a pointer
/// to another customer's ticket would show it to the wrong people: link such tickets to a
/// common parent instead), and the merge must not close a circle of duplicates. `duplicate_of`
/// gives the ticket a ticket was merged into, if any.
pub fn check_merge(
    duplicate: &LinkSubject<'_>,
    target: &LinkSubject<'_>,
    duplicate_of: impl Fn(&str) -> Option<String>,
) -> Result<DuplicateTarget, DomainError> {
    let mut errors = Errors::new();
    let field = "duplicate_of";
    if duplicate.id == target.id {
        errors.push(FieldError::new(field, "self_merge", "a ticket cannot be a duplicate of itself"));
    } else {
        check_chain(&mut errors, field, walk(target.id, duplicate.id, duplicate_of), "duplicate");
    }
    if !duplicate.status.is_open() {
        errors.push(FieldError::new("status", "not_open", "only open tickets can be merged"));
    }
    if target.status == Status::Closed {
        errors.push(FieldError::new(field, "closed_target", "a ticket cannot be merged into a closed ticket"));
    }
    if duplicate.number.kind() != target.number.kind() {
        errors.push(FieldError::new(field, "kind_mismatch", "incidents and service requests are not merged into each other"));
    }
    if duplicate.project_id != target.project_id {
        errors.push(FieldError::new(field, "project_mismatch", "tickets of different service projects are not merged"));
    }
    errors.finish()?;
    Ok(DuplicateTarget { duplicate_id: duplicate.id.into(), target_id: target.id.into(), target_number: target.number })
}

/// Checks making `parent` the parent of `child` (e.g. a master incident for a widespread
/// outage). Parents may be in other service projects, as one outage hits many customers; the
/// portal must then not show a contact a parent outside their organisation. `parent_of` gives a
/// ticket's current parent, if any.
pub fn check_parent(
    child: &LinkSubject<'_>,
    parent: &LinkSubject<'_>,
    parent_of: impl Fn(&str) -> Option<String>,
) -> Result<(), DomainError> {
    let mut errors = Errors::new();
    let field = "parent_id";
    if child.id == parent.id {
        errors.push(FieldError::new(field, "self_parent", "a ticket cannot be its own parent"));
    } else {
        check_chain(&mut errors, field, walk(parent.id, child.id, parent_of), "parent");
    }
    if child.status == Status::Closed {
        errors.push(FieldError::new("status", "closed", "a closed ticket cannot be changed"));
    }
    if parent.status == Status::Closed {
        errors.push(FieldError::new(field, "closed_parent", "a closed ticket cannot become a parent"));
    }
    if child.number.kind() != parent.number.kind() {
        errors.push(FieldError::new(field, "kind_mismatch", "incidents and service requests are not nested in each other"));
    }
    errors.finish()
}

/// A problem or change a ticket is related to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum RelatedRecord {
    Problem(String),
    Change(String),
}

/// Validates linking a ticket to a problem or change. Returns `None` when the link already
/// exists, so linking twice is harmless. Only incidents link to problems, as problems are the
/// causes of incidents; any ticket may link to a change.
pub fn link_related(
    kind: TicketKind,
    status: Status,
    existing: &[RelatedRecord],
    record: &RelatedRecord,
    refs: &impl References,
) -> Result<Option<RelatedRecord>, DomainError> {
    let mut errors = Errors::new();
    if status == Status::Closed {
        errors.push(FieldError::new("status", "closed", "a closed ticket cannot be changed"));
    }
    let checked = match record {
        RelatedRecord::Problem(id) => {
            if kind != TicketKind::Incident {
                errors.push(FieldError::new("problem_id", "not_incident", "only incidents are linked to problems"));
            }
            errors.check(required_ref(refs, Ref::Problem, "problem_id", id)).map(RelatedRecord::Problem)
        }
        RelatedRecord::Change(id) => errors.check(required_ref(refs, Ref::Change, "change_id", id)).map(RelatedRecord::Change),
    };
    errors.finish()?;
    Ok(checked.filter(|r| !existing.contains(r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn subject(id: &'static str, status: Status) -> LinkSubject<'static> {
        LinkSubject { id, number: TicketNumber::new(TicketKind::Incident, 1).unwrap(), project_id: "p1", status }
    }
    fn none(_: &str) -> Option<String> {
        None
    }
    fn codes<T: std::fmt::Debug>(r: Result<T, DomainError>) -> Vec<&'static str> {
        match r {
            Err(DomainError::Invalid(v)) => v.into_iter().map(|f| f.code).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn merge_rules() {
        let a = subject("a", Status::InProgress);
        let b = subject("b", Status::Resolved);
        let t = check_merge(&a, &b, none).unwrap();
        assert_eq!((t.duplicate_id(), t.target_id()), ("a", "b"));
        assert_eq!(codes(check_merge(&a, &a, none)), ["self_merge"]);
        assert_eq!(codes(check_merge(&a, &subject("c", Status::Closed), none)), ["closed_target"]);
        assert_eq!(codes(check_merge(&subject("c", Status::Resolved), &a, none)), ["not_open"]);
        let req = LinkSubject { number: TicketNumber::new(TicketKind::ServiceRequest, 1).unwrap(), ..b };
        assert_eq!(codes(check_merge(&a, &req, none)), ["kind_mismatch"]);
        let elsewhere = LinkSubject { project_id: "p2", ..b };
        assert_eq!(codes(check_merge(&a, &elsewhere, none)), ["project_mismatch"]);
    }

    #[test]
    fn merges_cannot_close_a_circle() {
        let merged: HashMap<&str, &str> = HashMap::from([("b", "c"), ("c", "a")]);
        let lookup = |id: &str| merged.get(id).map(|s| s.to_string());
        assert_eq!(codes(check_merge(&subject("a", Status::New), &subject("b", Status::New), lookup)), ["cycle"]);
        let looped: HashMap<&str, &str> = HashMap::from([("x", "y"), ("y", "x")]);
        let lookup = |id: &str| looped.get(id).map(|s| s.to_string());
        assert_eq!(codes(check_merge(&subject("a", Status::New), &subject("x", Status::New), lookup)), ["chain_too_long"]);
    }

    #[test]
    fn parent_rules() {
        let parents: HashMap<&str, &str> = HashMap::from([("p", "gp")]);
        let parent_of = |id: &str| parents.get(id).map(|s| s.to_string());
        assert!(check_parent(&subject("c", Status::New), &subject("p", Status::InProgress), parent_of).is_ok());
        assert_eq!(codes(check_parent(&subject("gp", Status::New), &subject("p", Status::New), parent_of)), ["cycle"]);
        assert_eq!(codes(check_parent(&subject("c", Status::New), &subject("c", Status::New), none)), ["self_parent"]);
        assert_eq!(codes(check_parent(&subject("c", Status::Closed), &subject("p", Status::Closed), none)), ["closed", "closed_parent"]);
        let other_project = LinkSubject { project_id: "p9", ..subject("p", Status::New) };
        assert!(check_parent(&subject("c", Status::New), &other_project, none).is_ok());
    }

    #[test]
    fn related_records() {
        let refs = |k: Ref, id: &str| matches!((k, id), (Ref::Problem, "prb-1") | (Ref::Change, "chg-1"));
        let prb = RelatedRecord::Problem("prb-1".into());
        let chg = RelatedRecord::Change(" chg-1 ".into());
        assert_eq!(link_related(TicketKind::Incident, Status::New, &[], &prb, &refs).unwrap(), Some(prb.clone()));
        assert_eq!(link_related(TicketKind::Incident, Status::New, std::slice::from_ref(&prb), &prb, &refs).unwrap(), None);
        assert_eq!(
            link_related(TicketKind::ServiceRequest, Status::New, &[], &chg, &refs).unwrap(),
            Some(RelatedRecord::Change("chg-1".into()))
        );
        assert_eq!(codes(link_related(TicketKind::ServiceRequest, Status::Closed, &[], &prb, &refs)), ["closed", "not_incident"]);
        assert_eq!(codes(link_related(TicketKind::Incident, Status::New, &[], &RelatedRecord::Change("x".into()), &refs)), ["not_found"]);
    }
}

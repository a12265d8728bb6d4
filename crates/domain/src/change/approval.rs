//! Change management: the approval workflow of the change advisory board (变更顾问委员会) and
//! the emergency CAB. Sequential steps, each with approvers, a quorum rule and delegation.
//!
//! An approver is a user or a group. A group counts as one approver: any one of its members
//! decides for it. Each approver of a step decides at most once; a step is approved when the
//! quorum of approvals is reached, and rejected as soon as the quorum can no longer be reached.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Errors, FieldError};
use crate::validate::{optional_text, required_text};

const MAX_REASON_CHARS: usize = 4000;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Approver {
    User(String),
    Group(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Quorum {
    /// Every approver must approve; one rejection rejects the step.
    All,
    /// One approval suffices; the step is rejected only when every approver rejected.
    Any,
    /// `n` of the step's approvers must approve.
    AtLeast { n: u32 },
}

impl Quorum {
    /// Approvals needed out of `approvers`.
    pub fn required(self, approvers: usize) -> usize {
        match self {
            Quorum::All => approvers,
            Quorum::Any => approvers.min(1),
            Quorum::AtLeast { n } => n as usize,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalStep {
    pub name: String,
    pub approvers: Vec<Approver>,
    pub quorum: Quorum,
}

impl ApprovalStep {
    pub fn new(name: &str, approvers: Vec<Approver>, quorum: Quorum) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        let name = errors.check(required_text("name", name, 200));
        check_approvers(&approvers, quorum, "", &mut errors);
        errors.finish()?;
        Ok(ApprovalStep { name: name.unwrap_or_default(), approvers, quorum })
    }

    /// Approvals needed for this step.
    pub fn required(&self) -> usize {
        self.quorum.required(self.approvers.len())
    }
}

fn check_approvers(approvers: &[Approver], quorum: Quorum, prefix: &str, errors: &mut Errors) {
    if approvers.is_empty() {
        errors.push(FieldError::new(format!("{prefix}approvers"), "required", "a step needs at least one approver"));
    }
    let mut seen = HashSet::new();
    for a in approvers {
        let (Approver::User(id) | Approver::Group(id)) = a;
        if id.trim().is_empty() {
            errors.push(FieldError::new(format!("{prefix}approvers"), "required", "an approver needs an id"));
        } else if !seen.insert(a) {
            errors.push(FieldError::new(format!("{prefix}approvers"), "duplicate_approver", format!("{id} is listed twice")));
        }
    }
    if let Quorum::AtLeast { n } = quorum
        && (n == 0 || n as usize > approvers.len())
    {
        errors.push(FieldError::new(
            format!("{prefix}quorum"),
            "invalid_quorum",
            format!("the quorum must be between 1 and {} approvers", approvers.len()),
        ));
    }
}

/// The ordered steps of an approval. Step `i + 1` opens once step `i` is approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalWorkflow {
    pub steps: Vec<ApprovalStep>,
}

impl ApprovalWorkflow {
    pub fn new(steps: Vec<ApprovalStep>) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        if steps.is_empty() {
            errors.push(FieldError::new("steps", "required", "an approval needs at least one step"));
        }
        for (i, s) in steps.iter().enumerate() {
            if let Err(e) = required_text(&format!("steps[{i}].name"), &s.name, 200) {
                errors.push(e);
            }
            check_approvers(&s.approvers, s.quorum, &format!("steps[{i}]."), &mut errors);
        }
        errors.finish()?;
        Ok(ApprovalWorkflow { steps })
    }
}

/// An approver lets another user decide on their behalf, for a period `[starts_at, ends_at)`.
/// Delegations do not chain: a delegate cannot pass the authority on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub delegator: String,
    pub delegate: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl Delegation {
    pub fn new(delegator: &str, delegate: &str, starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        let delegator = errors.check(required_text("delegator", delegator, 200));
        let delegate = errors.check(required_text("delegate", delegate, 200));
        if delegator.is_some() && delegator == delegate {
            errors.push(FieldError::new("delegate", "self_delegation", "one cannot delegate to oneself"));
        }
        if ends_at <= starts_at {
            errors.push(FieldError::new("ends_at", "end_not_after_start", "the delegation must end after it starts"));
        }
        errors.finish()?;
        Ok(Delegation { delegator: delegator.unwrap_or_default(), delegate: delegate.unwrap_or_default(), starts_at, ends_at })
    }

    pub fn is_active(&self, at: DateTime<Utc>) -> bool {
        self.starts_at <= at && at < self.ends_at
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Reject,
}

/// One approver's decision on one step. `actor` is who acted: the approver, a member of the
/// approver group, or a delegate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub step: usize,
    pub approver: Approver,
    pub actor: String,
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pending,
    Approved,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepEvaluation {
    pub outcome: Outcome,
    pub approvals: usize,
    pub rejections: usize,
    pub required: usize,
    /// Approvers who have not decided, in the step's order.
    pub undecided: Vec<Approver>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    pub steps: Vec<StepEvaluation>,
    pub outcome: Outcome,
    /// The step now open for decisions, if the approval is still pending.
    pub current_step: Option<usize>,
}

/// Evaluates decisions against a workflow. Only the first decision per approver and step
/// counts; decisions by anyone not listed on the step are ignored. The approval is rejected
/// when any step is rejected, approved when every step is approved, and pending otherwise.
pub fn evaluate(workflow: &ApprovalWorkflow, decisions: &[Decision]) -> Evaluation {
    let steps: Vec<StepEvaluation> = workflow
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let mut decided = HashSet::new();
            let (mut approvals, mut rejections) = (0, 0);
            for d in decisions.iter().filter(|d| d.step == i && step.approvers.contains(&d.approver)) {
                if decided.insert(&d.approver) {
                    match d.verdict {
                        Verdict::Approve => approvals += 1,
                        Verdict::Reject => rejections += 1,
                    }
                }
            }
            let required = step.required();
            let possible = step.approvers.len() - rejections;
            let outcome = if approvals >= required {
                Outcome::Approved
            } else if possible < required {
                Outcome::Rejected
            } else {
                Outcome::Pending
            };
            let undecided = step.approvers.iter().filter(|a| !decided.contains(a)).cloned().collect();
            StepEvaluation { outcome, approvals, rejections, required, undecided }
        })
        .collect();
    let outcome = if steps.iter().any(|s| s.outcome == Outcome::Rejected) {
        Outcome::Rejected
    } else if steps.iter().all(|s| s.outcome == Outcome::Approved) {
        Outcome::Approved
    } else {
        Outcome::Pending
    };
    let current_step = (outcome == Outcome::Pending).then(|| steps.iter().position(|s| s.outcome == Outcome::Pending)).flatten();
    Evaluation { steps, outcome, current_step }
}

/// A decision someone wants to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionRequest<'a> {
    pub actor: &'a str,
    pub verdict: Verdict,
    pub reason: Option<&'a str>,
    pub at: DateTime<Utc>,
    /// The approver to decide for; when absent, the first undecided approver of the open step
    /// the actor may act for (their own entry first, then their groups, then delegations).
    pub on_behalf_of: Option<&'a Approver>,
}

/// Checks a decision and returns it, to be appended to the decisions. Refused when the
/// approval is no longer pending (`approval_closed`), when the actor may not decide for any
/// undecided approver of the open step (`not_an_approver`, `already_decided`), or when a
/// rejection gives no reason. `is_member(user, group)` answers group membership.
pub fn decide(
    workflow: &ApprovalWorkflow,
    decisions: &[Decision],
    request: DecisionRequest,
    delegations: &[Delegation],
    is_member: &dyn Fn(&str, &str) -> bool,
) -> Result<Decision, DomainError> {
    let evaluation = evaluate(workflow, decisions);
    let Some(step_index) = evaluation.current_step else {
        return Err(DomainError::field("approval", "approval_closed", "this approval has already been decided"));
    };
    let step = &workflow.steps[step_index];
    let undecided = &evaluation.steps[step_index].undecided;
    let actor = request.actor.trim();
    let delegators: Vec<&str> =
        delegations.iter().filter(|d| d.delegate == actor && d.is_active(request.at)).map(|d| d.delegator.as_str()).collect();
    // 0: the actor's own entry, 1: a group of theirs, 2: by delegation; `None`: may not act.
    let authority = |a: &Approver| match a {
        Approver::User(u) if u == actor => Some(0),
        Approver::Group(g) if is_member(actor, g) => Some(1),
        Approver::User(u) if delegators.contains(&u.as_str()) => Some(2),
        Approver::Group(g) if delegators.iter().any(|d| is_member(d, g)) => Some(2),
        _ => None,
    };
    let not_an_approver =
        || DomainError::field("actor", "not_an_approver", format!("{actor} is not an approver of step \"{}\"", step.name));
    let already = || DomainError::field("actor", "already_decided", "this approver has already decided on this step");
    let approver = match request.on_behalf_of {
        Some(a) => {
            if !step.approvers.contains(a) || authority(a).is_none() {
                return Err(not_an_approver());
            }
            if !undecided.contains(a) {
                return Err(already());
            }
            a.clone()
        }
        None => match undecided.iter().filter_map(|a| authority(a).map(|rank| (rank, a))).min_by_key(|(rank, _)| *rank) {
            Some((_, a)) => a.clone(),
            None if step.approvers.iter().any(|a| authority(a).is_some()) => return Err(already()),
            None => return Err(not_an_approver()),
        },
    };
    let reason = match request.verdict {
        Verdict::Reject => {
            Some(required_text("reason", request.reason.unwrap_or_default(), MAX_REASON_CHARS).map_err(|e| DomainError::Invalid(vec![e]))?)
        }
        Verdict::Approve => optional_text("reason", request.reason, MAX_REASON_CHARS).map_err(|e| DomainError::Invalid(vec![e]))?,
    };
    Ok(Decision { step: step_index, approver, actor: actor.to_string(), verdict: request.verdict, reason, at: request.at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(id: &str) -> Approver {
        Approver::User(id.into())
    }
    fn group(id: &str) -> Approver {
        Approver::Group(id.into())
    }
    fn at(h: u32) -> DateTime<Utc> {
        format!("2026-05-04T{h:02}:00:00Z").parse().unwrap()
    }
    fn cab(quorum: Quorum) -> ApprovalWorkflow {
        ApprovalWorkflow::new(vec![
            ApprovalStep::new("Technical review", vec![user("tom")], Quorum::All).unwrap(),
            ApprovalStep::new("CAB", vec![user("ann"), user("bob"), group("dba")], quorum).unwrap(),
        ])
        .unwrap()
    }
    fn members(user: &str, group: &str) -> bool {
        matches!((user, group), ("dora", "dba") | ("dave", "dba"))
    }
    fn req<'a>(actor: &'a str, verdict: Verdict, reason: Option<&'a str>) -> DecisionRequest<'a> {
        DecisionRequest { actor, verdict, reason, at: at(10), on_behalf_of: None }
    }
    fn code(r: Result<Decision, DomainError>) -> &'static str {
        match r {
            Err(DomainError::Invalid(v)) => v[0].code,
            other => panic!("{other:?}"),
        }
    }
    /// Records a sequence of requests, each of which must be accepted.
    fn run(w: &ApprovalWorkflow, reqs: &[DecisionRequest], delegations: &[Delegation]) -> Vec<Decision> {
        let mut ds = Vec::new();
        for r in reqs {
            let d = decide(w, &ds, *r, delegations, &members).unwrap();
            ds.push(d);
        }
        ds
    }

    #[test]
    fn steps_open_in_order_and_all_quorum_needs_everyone() {
        let w = cab(Quorum::All);
        assert_eq!(code(decide(&w, &[], req("ann", Verdict::Approve, None), &[], &members)), "not_an_approver", "step 2 is not open yet");
        let ds = run(
            &w,
            &[req("tom", Verdict::Approve, None), req("ann", Verdict::Approve, None), req("dora", Verdict::Approve, Some("ok"))],
            &[],
        );
        let e = evaluate(&w, &ds);
        assert_eq!(e.steps[0].outcome, Outcome::Approved);
        assert_eq!(e.steps[1].outcome, Outcome::Pending);
        assert_eq!(e.steps[1].undecided, vec![user("bob")]);
        assert_eq!(e.current_step, Some(1));
        assert_eq!(ds[2].approver, group("dba"), "a member decides for the group");
        assert_eq!(code(decide(&w, &ds, req("dave", Verdict::Approve, None), &[], &members)), "already_decided");
        let mut all = ds.clone();
        all.push(decide(&w, &ds, req("bob", Verdict::Approve, None), &[], &members).unwrap());
        let e = evaluate(&w, &all);
        assert_eq!((e.outcome, e.current_step), (Outcome::Approved, None));
        assert_eq!(code(decide(&w, &all, req("bob", Verdict::Approve, None), &[], &members)), "approval_closed");
    }

    #[test]
    fn one_rejection_rejects_an_all_step_and_needs_a_reason() {
        let w = cab(Quorum::All);
        let ds = run(&w, &[req("tom", Verdict::Approve, None), req("ann", Verdict::Approve, None)], &[]);
        assert_eq!(code(decide(&w, &ds, req("bob", Verdict::Reject, None), &[], &members)), "required");
        assert_eq!(code(decide(&w, &ds, req("bob", Verdict::Reject, Some("   ")), &[], &members)), "required");
        let mut ds = ds;
        ds.push(decide(&w, &ds, req("bob", Verdict::Reject, Some("no back-out plan")), &[], &members).unwrap());
        let e = evaluate(&w, &ds);
        assert_eq!((e.steps[1].outcome, e.outcome), (Outcome::Rejected, Outcome::Rejected));
        assert_eq!(ds[2].reason.as_deref(), Some("no back-out plan"));
    }

    #[test]
    fn any_and_n_of_m_quorums() {
        let any = cab(Quorum::Any);
        let ds = run(
            &any,
            &[req("tom", Verdict::Approve, None), req("ann", Verdict::Reject, Some("x")), req("bob", Verdict::Reject, Some("y"))],
            &[],
        );
        assert_eq!(evaluate(&any, &ds).outcome, Outcome::Pending, "the dba group can still approve");
        let ds2 = [ds.clone(), vec![decide(&any, &ds, req("dave", Verdict::Approve, None), &[], &members).unwrap()]].concat();
        assert_eq!(evaluate(&any, &ds2).outcome, Outcome::Approved);
        let ds3 = [ds.clone(), vec![decide(&any, &ds, req("dave", Verdict::Reject, Some("z")), &[], &members).unwrap()]].concat();
        assert_eq!(evaluate(&any, &ds3).outcome, Outcome::Rejected);

        let two = cab(Quorum::AtLeast { n: 2 });
        let ds = run(&two, &[req("tom", Verdict::Approve, None), req("ann", Verdict::Approve, None)], &[]);
        assert_eq!(evaluate(&two, &ds).outcome, Outcome::Pending);
        let ds = run(
            &two,
            &[req("tom", Verdict::Approve, None), req("ann", Verdict::Reject, Some("r")), req("bob", Verdict::Approve, None)],
            &[],
        );
        assert_eq!(evaluate(&two, &ds).outcome, Outcome::Pending);
        let ds = run(
            &two,
            &[req("tom", Verdict::Approve, None), req("ann", Verdict::Reject, Some("r")), req("bob", Verdict::Reject, Some("r"))],
            &[],
        );
        assert_eq!(evaluate(&two, &ds).outcome, Outcome::Rejected, "2 of 3 is out of reach");
    }

    #[test]
    fn delegation_applies_only_within_its_period() {
        let w = cab(Quorum::All);
        let away = Delegation::new("tom", "tina", at(8), at(12)).unwrap();
        let ok = decide(&w, &[], req("tina", Verdict::Approve, None), std::slice::from_ref(&away), &members).unwrap();
        assert_eq!((ok.approver, ok.actor.as_str()), (user("tom"), "tina"));
        let late = DecisionRequest { at: at(12), ..req("tina", Verdict::Approve, None) };
        assert_eq!(code(decide(&w, &[], late, std::slice::from_ref(&away), &members)), "not_an_approver");
        let chained = Delegation::new("tina", "tim", at(8), at(12)).unwrap();
        assert_eq!(code(decide(&w, &[], req("tim", Verdict::Approve, None), &[away, chained], &members)), "not_an_approver");
        let dba = Delegation::new("dora", "dan", at(8), at(12)).unwrap();
        let ds = run(&w, &[req("tom", Verdict::Approve, None), req("dan", Verdict::Approve, None)], &[dba]);
        assert_eq!(ds[1].approver, group("dba"), "a member's delegate may decide for the group");
        assert!(Delegation::new("a", "a", at(1), at(2)).is_err());
        assert!(Delegation::new("a", "b", at(2), at(2)).is_err());
    }

    #[test]
    fn explicit_on_behalf_of() {
        let w = ApprovalWorkflow::new(vec![ApprovalStep::new("ECAB", vec![user("ann"), group("dba")], Quorum::All).unwrap()]).unwrap();
        let deleg = [Delegation::new("ann", "dora", at(0), at(23)).unwrap()];
        let first = decide(&w, &[], req("dora", Verdict::Approve, None), &deleg, &members).unwrap();
        assert_eq!(first.approver, group("dba"), "own group before delegated authority");
        let for_ann = DecisionRequest { on_behalf_of: Some(&user("ann")), ..req("dora", Verdict::Approve, None) };
        let second = decide(&w, std::slice::from_ref(&first), for_ann, &deleg, &members).unwrap();
        assert_eq!(second.approver, user("ann"));
        let for_dba = DecisionRequest { on_behalf_of: Some(&group("dba")), ..req("dora", Verdict::Approve, None) };
        assert_eq!(code(decide(&w, std::slice::from_ref(&first), for_dba, &deleg, &members)), "already_decided");
        let stranger = DecisionRequest { on_behalf_of: Some(&user("ann")), ..req("zed", Verdict::Approve, None) };
        assert_eq!(code(decide(&w, &[], stranger, &deleg, &members)), "not_an_approver");
        let unlisted = DecisionRequest { on_behalf_of: Some(&user("zed")), ..req("zed", Verdict::Approve, None) };
        assert_eq!(code(decide(&w, &[], unlisted, &deleg, &members)), "not_an_approver");
    }

    #[test]
    fn workflow_definitions_are_checked() {
        assert!(ApprovalStep::new("x", vec![], Quorum::Any).is_err());
        assert!(ApprovalStep::new("x", vec![user("a"), user("a")], Quorum::Any).is_err());
        assert!(ApprovalStep::new("x", vec![user("a")], Quorum::AtLeast { n: 2 }).is_err());
        assert!(ApprovalStep::new("x", vec![user("a")], Quorum::AtLeast { n: 0 }).is_err());
        assert!(ApprovalStep::new(" ", vec![user("a")], Quorum::All).is_err());
        assert!(ApprovalWorkflow::new(vec![]).is_err());
        let raw = ApprovalStep { name: "s".into(), approvers: vec![user("")], quorum: Quorum::All };
        let DomainError::Invalid(v) = ApprovalWorkflow::new(vec![raw]).unwrap_err() else { panic!() };
        assert_eq!(v[0].field, "steps[0].approvers");
        let json = serde_json::to_value(cab(Quorum::AtLeast { n: 2 })).unwrap();
        assert_eq!(json["steps"][1]["quorum"], serde_json::json!({"rule": "at_least", "n": 2}));
        assert_eq!(json["steps"][1]["approvers"][2], serde_json::json!({"kind": "group", "id": "dba"}));
    }

    fn arb_quorum(m: usize) -> impl Strategy<Value = Quorum> {
        prop_oneof![Just(Quorum::All), Just(Quorum::Any), (1..=m as u32).prop_map(|n| Quorum::AtLeast { n })]
    }

    fn arb_workflow() -> impl Strategy<Value = ApprovalWorkflow> {
        prop::collection::vec(
            (1usize..6).prop_flat_map(|m| {
                arb_quorum(m).prop_map(move |q| ApprovalStep {
                    name: "s".into(),
                    approvers: (0..m).map(|i| user(&format!("u{i}"))).collect(),
                    quorum: q,
                })
            }),
            1..4,
        )
        .prop_map(|steps| ApprovalWorkflow { steps })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn adding_an_approval_never_undoes_approval(
            w in arb_workflow(),
            raw in prop::collection::vec((0usize..4, 0usize..6, any::<bool>()), 0..20),
            extra in (0usize..4, 0usize..6),
        ) {
            let decision = |step: usize, who: usize, approve: bool| Decision {
                step,
                approver: user(&format!("u{who}")),
                actor: format!("u{who}"),
                verdict: if approve { Verdict::Approve } else { Verdict::Reject },
                reason: None,
                at: at(9),
            };
            let ds: Vec<Decision> = raw.iter().map(|&(s, u, a)| decision(s % w.steps.len(), u, a)).collect();
            let before = evaluate(&w, &ds);
            let mut more = ds.clone();
            more.push(decision(extra.0 % w.steps.len(), extra.1, true));
            let after = evaluate(&w, &more);
            if before.outcome == Outcome::Approved {
                prop_assert_eq!(after.outcome, Outcome::Approved);
            }
            prop_assert!(!(before.outcome != Outcome::Pending && after.outcome == Outcome::Pending));
            for (b, a) in before.steps.iter().zip(&after.steps) {
                if b.outcome == Outcome::Approved {
                    prop_assert_eq!(a.outcome, Outcome::Approved);
                }
                prop_assert!(a.approvals >= b.approvals);
            }
        }
    }
}

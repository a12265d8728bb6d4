//! Change management (变更管理) communication (ISO/IEC 20000-1 §8.5.1.3, §8.3.2): the
//! approvers of the approval step a change reaches are asked for their decision
//! (`change.approval_requested`), and the requester hears the outcome (`change.approved`,
//! `change.rejected`). Announced in the transaction that opens the step or decides the change.

use crate::Result;
use crate::writer::Writer;
use keel_domain::change::Evaluation;
use keel_domain::notification::{Announcement, Audience};
use keel_store::changes::{self as store, ApprovalStepRow, ChangeRecord};
use keel_store::{accounts, notifications};

fn at(ms: Option<i64>) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms?).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// What every change notice carries for the templates.
async fn vars_of(w: &mut Writer, c: &ChangeRecord) -> Result<serde_json::Value> {
    let requester = accounts::get_user(&mut w.tx, &c.created_by).await?.map(|u| u.display_name).unwrap_or_default();
    let window = match (at(c.planned_start), at(c.planned_end)) {
        (Some(s), Some(e)) => format!("{s} – {e}"),
        _ => String::new(),
    };
    Ok(serde_json::json!({
        "number": c.number,
        "title": c.title,
        "change_type": c.change_type,
        "risk_level": c.risk_level,
        "window": window,
        "requester": requester,
        "project_id": c.project_id,
        "organization_id": c.organization_id,
        "actor_id": w.actor.user_id,
        "author": w.actor.display_name,
    }))
}

/// Who decides at a step: its users and the members of its teams, each with whoever acts for
/// them by a delegation in force now; the customer's contacts for a customer step.
async fn step_audience(w: &mut Writer, step: &ApprovalStepRow) -> Result<Vec<Audience>> {
    let mut users: Vec<String> = Vec::new();
    let mut audience = Vec::new();
    for (kind, id) in &step.approvers {
        match (kind.as_str(), id.strip_prefix("organization:")) {
            ("user", _) => users.push(id.clone()),
            // the customer approval step names the change's own organisation
            ("group", Some(_)) => audience.push(Audience::CustomerContacts),
            _ => users.extend(notifications::team_members(&mut w.tx, id).await?.into_iter().map(|p| p.user_id)),
        }
    }
    for u in users.clone() {
        for d in store::delegations_of(&mut w.tx, &u, w.now).await? {
            if d.delegator_id == u && d.starts_at <= w.now {
                users.push(d.delegate_id);
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    audience.extend(users.into_iter().filter(|u| seen.insert(u.clone())).map(|id| Audience::Person { id }));
    Ok(audience)
}

/// Asks the approvers of the step now open (per `evaluation`) for their decision.
pub(crate) async fn announce_open_step(w: &mut Writer, c: &ChangeRecord, steps: &[ApprovalStepRow], evaluation: &Evaluation) -> Result<()> {
    let Some(step) = evaluation.current_step.and_then(|i| steps.get(i)) else { return Ok(()) };
    let audience = step_audience(w, step).await?;
    let mut vars = vars_of(w, c).await?;
    vars["step"] = step.name.clone().into();
    vars["quorum"] = step.quorum_rule.clone().into();
    vars["quorum_n"] = step.quorum_n.into();
    vars["approver_count"] = step.approvers.len().into();
    w.announce(&Announcement {
        kind: "change.approval_requested".into(),
        entity_type: crate::changes::CHANGE_ENTITY.into(),
        entity_id: c.id.clone(),
        audience,
        vars,
    })
    .await
}

/// Tells the requester the approval's outcome; a rejection carries the step and the reasons.
pub(crate) async fn announce_outcome(w: &mut Writer, c: &ChangeRecord, approved: bool) -> Result<()> {
    let mut vars = vars_of(w, c).await?;
    if !approved {
        let steps = store::approval_steps(&mut w.tx, &c.id).await?;
        let votes = store::votes(&mut w.tx, &c.id).await?;
        let rejections: Vec<_> = votes.iter().filter(|v| v.verdict == "reject").collect();
        let step = rejections.first().and_then(|v| steps.iter().find(|s| s.seq == v.step_seq)).map(|s| s.name.clone());
        vars["step"] = step.unwrap_or_default().into();
        vars["reason"] = rejections.iter().filter_map(|v| v.reason.clone()).collect::<Vec<_>>().join("; ").into();
    }
    let kind = if approved { "change.approved" } else { "change.rejected" };
    let requester = Audience::Person { id: c.created_by.clone() };
    w.announce(&Announcement {
        kind: kind.into(),
        entity_type: crate::changes::CHANGE_ENTITY.into(),
        entity_id: c.id.clone(),
        audience: vec![requester],
        vars,
    })
    .await
}

//! Change management: standard change templates, the pre-approved recipes from which
//! standard changes (标准变更) are raised without assessment or CAB.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::risk::RiskLevel;
use crate::error::{DomainError, Errors, FieldError};
use crate::validate::{optional_text, required_text};

const MAX_PLAN_CHARS: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardChangeTemplate {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub implementation_plan: String,
    pub back_out_plan: String,
    pub risk_level: RiskLevel,
    pub approved_by: String,
    pub approved_at: DateTime<Utc>,
    pub active: bool,
}

impl StandardChangeTemplate {
    /// A template is only pre-approved for low or medium risk work, with both plans written.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: &str,
        name: &str,
        description: Option<&str>,
        implementation_plan: &str,
        back_out_plan: &str,
        risk_level: RiskLevel,
        approved_by: &str,
        approved_at: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        let id = errors.check(required_text("id", id, 200));
        let name = errors.check(required_text("name", name, 200));
        let description = errors.check(optional_text("description", description, MAX_PLAN_CHARS)).flatten();
        let implementation_plan = errors.check(required_text("implementation_plan", implementation_plan, MAX_PLAN_CHARS));
        let back_out_plan = errors.check(required_text("back_out_plan", back_out_plan, MAX_PLAN_CHARS));
        let approved_by = errors.check(required_text("approved_by", approved_by, 200));
        if risk_level > RiskLevel::Medium {
            errors.push(FieldError::new("risk_level", "risk_too_high", "high-risk work cannot be a standard change"));
        }
        errors.finish()?;
        Ok(StandardChangeTemplate {
            id: id.unwrap_or_default(),
            name: name.unwrap_or_default(),
            description,
            implementation_plan: implementation_plan.unwrap_or_default(),
            back_out_plan: back_out_plan.unwrap_or_default(),
            risk_level,
            approved_by: approved_by.unwrap_or_default(),
            approved_at,
            active: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_low_risk_with_plans() {
        let at: DateTime<Utc> = "2026-01-05T09:00:00Z".parse().unwrap();
        let t =
            StandardChangeTemplate::new("t1", "Add a user to a group", None, "1. add 2. verify", "remove again", RiskLevel::Low, "cab", at)
                .unwrap();
        assert!(t.active);
        let e = StandardChangeTemplate::new("t2", "Upgrade core switch", None, "", "", RiskLevel::High, "cab", at).unwrap_err();
        let DomainError::Invalid(v) = e else { panic!() };
        assert_eq!(v.iter().map(|e| e.code).collect::<Vec<_>>(), vec!["required", "required", "risk_too_high"]);
    }
}

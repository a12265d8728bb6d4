//! The records of service level management (§6.1) as rules: service lines and the catalogue
//! status pipeline, the SLA approval lifecycle (draft → approved → active → expired), the prose
//! elements every SLA holds (§6.1.6, §6.1.4), and the check that an OLA or underpinning contract
//! (§6.1.7) is never looser than the SLA targets it supports.

use crate::error::{DomainError, Errors, FieldError};
use crate::sla::target::{Priority, SlaTargets, TargetKind};
use crate::validate;
use serde::{Deserialize, Serialize};

macro_rules! str_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
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
                match s.trim() {
                    $($s => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// Parses input, reporting an unknown value as `invalid_choice` with the choices.
            pub fn parse_field(field: &str, s: &str) -> Result<Self, FieldError> {
                Self::parse(s).ok_or_else(|| {
                    let choices: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    FieldError::new(field, "invalid_choice", format!("{field} must be one of: {}", choices.join(", ")))
                })
            }
        }
    };
}

str_enum! {
    /// Service lines (§3.1.1), with the three legacy ones.
    pub enum ServiceLine {
        Infrastructure => "infrastructure",
        OperationsMaintenance => "operations_maintenance",
        ProfessionalTechnical => "professional_technical",
        ItSecurity => "it_security",
        ConsultingDesignAssessment => "consulting_design_assessment",
        Training => "training",
        OnSiteResident => "on_site_resident",
        PeriodicInspection => "periodic_inspection",
        ConsultingPlanning => "consulting_planning",
    }
}

str_enum! {
    /// Where a catalogue entry stands: planned, offered, or withdrawn.
    pub enum ServiceStatus {
        Pipeline => "pipeline",
        Live => "live",
        Retired => "retired",
    }
}

impl ServiceStatus {
    /// Pipeline → live → retired; a pipeline service may be dropped (retired); retired is final.
    pub fn can_become(self, to: ServiceStatus) -> bool {
        use ServiceStatus::*;
        self == to || matches!((self, to), (Pipeline, Live) | (Pipeline, Retired) | (Live, Retired))
    }

    pub fn check_change(self, to: ServiceStatus) -> Result<(), DomainError> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(DomainError::InvalidTransition { from: self.as_str().into(), to: to.as_str().into() })
        }
    }
}

str_enum! {
    /// The approval lifecycle of an SLA.
    pub enum SlaStatus {
        Draft => "draft",
        Approved => "approved",
        Active => "active",
        Expired => "expired",
    }
}

str_enum! {
    /// What may be done to an SLA.
    pub enum SlaAction {
        /// draft → approved: the service department manager approves it.
        Approve => "approve",
        /// approved → active: it comes into force (only an approved SLA may).
        Activate => "activate",
        /// active or approved → expired: its validity ended or it was replaced.
        Expire => "expire",
        /// approved or active → draft: a revision under change control (§6.1.8), to be approved again.
        Revise => "revise",
    }
}

impl SlaStatus {
    /// Only a draft may have its content changed; every other status changes by an action.
    pub fn is_editable(self) -> bool {
        self == SlaStatus::Draft
    }

    pub fn apply(self, action: SlaAction) -> Result<SlaStatus, DomainError> {
        use SlaAction::*;
        use SlaStatus::*;
        match (self, action) {
            (Draft, Approve) => Ok(Approved),
            (Approved, Activate) => Ok(Active),
            (Approved | Active, Expire) => Ok(Expired),
            (Approved | Active, Revise) => Ok(Draft),
            (from, action) => Err(DomainError::InvalidTransition { from: from.as_str().into(), to: action.as_str().into() }),
        }
    }

    /// The actions open from this status, for buttons and documentation.
    pub fn actions(self) -> Vec<SlaAction> {
        SlaAction::ALL.iter().copied().filter(|a| self.apply(*a).is_ok()).collect()
    }
}

str_enum! {
    /// An agreement that underpins SLAs (§6.1.7).
    pub enum SupportKind {
        /// 运营级别协议 with an internal group.
        Ola => "ola",
        /// 支持合同 with a supplier.
        Contract => "contract",
    }
}

/// The longest prose element accepted, in characters.
pub const MAX_TERM_CHARS: usize = 20_000;

/// The prose elements of an SLA (§6.1.6), each optional while the SLA is a draft.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlaTerms {
    /// 服务的简述
    pub service_description: Option<String>,
    /// 术语表
    pub glossary: Option<String>,
    /// 客户职责
    pub customer_responsibilities: Option<String>,
    /// 服务部门职责和义务
    pub provider_responsibilities: Option<String>,
    /// 服务目标 (prose; the measurable targets per priority are structured)
    pub service_targets: Option<String>,
    /// 支持和相关服务
    pub support_services: Option<String>,
    /// 影响和优先级描述
    pub impact_priority: Option<String>,
    /// 授权细节及授权人员联系信息
    pub authorisations_contacts: Option<String>,
    /// 有效期或SLA变更控制机制（包含升级和通知流程）
    pub change_control: Option<String>,
    /// 服务中断采取的纠正措施
    pub interruption_actions: Option<String>,
    /// 计划和协调中断，包括通知事件及频率
    pub planned_interruptions: Option<String>,
    /// 沟通的简述，包括报告
    pub communication_reporting: Option<String>,
    /// 投诉程序
    pub complaints_procedure: Option<String>,
    /// 在SLA中规定条款的例外情况
    pub exceptions: Option<String>,
}

impl SlaTerms {
    pub const FIELDS: [&'static str; 14] = [
        "service_description",
        "glossary",
        "customer_responsibilities",
        "provider_responsibilities",
        "service_targets",
        "support_services",
        "impact_priority",
        "authorisations_contacts",
        "change_control",
        "interruption_actions",
        "planned_interruptions",
        "communication_reporting",
        "complaints_procedure",
        "exceptions",
    ];

    fn slots(&mut self) -> [&mut Option<String>; 14] {
        [
            &mut self.service_description,
            &mut self.glossary,
            &mut self.customer_responsibilities,
            &mut self.provider_responsibilities,
            &mut self.service_targets,
            &mut self.support_services,
            &mut self.impact_priority,
            &mut self.authorisations_contacts,
            &mut self.change_control,
            &mut self.interruption_actions,
            &mut self.planned_interruptions,
            &mut self.communication_reporting,
            &mut self.complaints_procedure,
            &mut self.exceptions,
        ]
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        let v = match field {
            "service_description" => &self.service_description,
            "glossary" => &self.glossary,
            "customer_responsibilities" => &self.customer_responsibilities,
            "provider_responsibilities" => &self.provider_responsibilities,
            "service_targets" => &self.service_targets,
            "support_services" => &self.support_services,
            "impact_priority" => &self.impact_priority,
            "authorisations_contacts" => &self.authorisations_contacts,
            "change_control" => &self.change_control,
            "interruption_actions" => &self.interruption_actions,
            "planned_interruptions" => &self.planned_interruptions,
            "communication_reporting" => &self.communication_reporting,
            "complaints_procedure" => &self.complaints_procedure,
            "exceptions" => &self.exceptions,
            _ => return None,
        };
        v.as_deref()
    }

    pub fn set(&mut self, field: &str, value: Option<String>) {
        if let Some(i) = Self::FIELDS.iter().position(|f| *f == field) {
            *self.slots()[i] = value;
        }
    }

    /// Trims every element (empty becomes absent) and checks its length.
    pub fn normalise(mut self, errors: &mut Errors) -> SlaTerms {
        for (name, slot) in Self::FIELDS.iter().zip(self.slots()) {
            *slot = errors.check(validate::optional_text(name, slot.as_deref(), MAX_TERM_CHARS)).flatten();
        }
        self
    }

    /// The elements still missing, which an SLA must hold before it is approved.
    pub fn missing(&self) -> Vec<&'static str> {
        Self::FIELDS.iter().copied().filter(|f| self.get(f).is_none()).collect()
    }
}

/// Checks an OLA's or underpinning contract's targets against the SLA they support: for every
/// priority and target that both set, the supporting target must not be longer.
pub fn check_supports(field: &str, sla_name: &str, sla: &SlaTargets, support: &SlaTargets) -> Vec<FieldError> {
    let mut out = Vec::new();
    for p in Priority::ALL {
        for kind in TargetKind::ALL {
            if let (Some(s), Some(u)) = (sla.target(p, kind), support.target(p, kind))
                && u > s
            {
                out.push(FieldError::new(
                    format!("{field}.{p}.{}", kind.as_str()),
                    "looser_than_sla",
                    format!("the {p} {} target is longer than in the SLA {sla_name} it supports", kind.as_str()),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::target::{PriorityTargets, Thresholds};

    const H: i64 = 3_600_000;

    fn targets(scale: i64) -> SlaTargets {
        let pt =
            |fr: i64, res: i64| PriorityTargets { first_response_ms: fr * scale, resolution_ms: res * scale, update_interval_ms: None };
        SlaTargets::new([pt(1, 4), pt(2, 8), pt(4, 24), pt(8, 40)], Thresholds::default()).unwrap()
    }

    #[test]
    fn sla_lifecycle() {
        use SlaAction::*;
        use SlaStatus::*;
        assert_eq!(Draft.apply(Approve).unwrap(), Approved);
        assert!(Draft.apply(Activate).is_err(), "activation needs approval");
        assert_eq!(Approved.apply(Activate).unwrap(), Active);
        assert_eq!(Active.apply(Expire).unwrap(), Expired);
        assert_eq!(Active.apply(Revise).unwrap(), Draft);
        assert!(Expired.apply(Activate).is_err());
        assert_eq!(Draft.actions(), vec![Approve]);
        assert!(Draft.is_editable() && !Active.is_editable());
    }

    #[test]
    fn catalogue_status_pipeline() {
        use ServiceStatus::*;
        assert!(Pipeline.can_become(Live) && Live.can_become(Retired));
        assert!(!Retired.can_become(Live) && !Live.can_become(Pipeline));
        assert_eq!(ServiceLine::parse("it_security"), Some(ServiceLine::ItSecurity));
        assert_eq!(ServiceLine::parse_field("service_line", "x").unwrap_err().code, "invalid_choice");
    }

    #[test]
    fn terms_are_trimmed_and_missing_ones_listed() {
        let mut errors = Errors::new();
        let t = SlaTerms { glossary: Some("  SLA: 服务级别协议 ".into()), exceptions: Some("  ".into()), ..Default::default() }
            .normalise(&mut errors);
        errors.finish().unwrap();
        assert_eq!(t.get("glossary"), Some("SLA: 服务级别协议"));
        assert_eq!(t.exceptions, None);
        assert_eq!(t.missing().len(), 13);
        let mut t2 = t.clone();
        t2.set("exceptions", Some("force majeure".into()));
        assert_eq!(t2.get("exceptions"), Some("force majeure"));
    }

    #[test]
    fn support_must_not_be_looser() {
        let sla = targets(H);
        assert!(check_supports("targets", "A", &sla, &targets(H / 2)).is_empty());
        let e = check_supports("targets", "A", &sla, &targets(2 * H));
        assert_eq!(e.len(), 8);
        assert_eq!(e[0].code, "looser_than_sla");
    }
}

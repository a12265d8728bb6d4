//! The fourteen ISO/IEC 20000 processes and their tailoring per service project (§2.1.4).

use serde::{Deserialize, Serialize};

/// A service management process. Six are mandatory for every service project; eight can be
/// tailored (switched off) per contract by the service department manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Process {
    ServiceDesk,
    Incident,
    BusinessRelationship,
    InformationSecurity,
    Supplier,
    Finance,
    Problem,
    Release,
    Configuration,
    Change,
    Availability,
    Capacity,
    ServiceLevel,
    ServiceReporting,
}

impl Process {
    pub const ALL: [Process; 14] = [
        Process::ServiceDesk,
        Process::Incident,
        Process::BusinessRelationship,
        Process::InformationSecurity,
        Process::Supplier,
        Process::Finance,
        Process::Problem,
        Process::Release,
        Process::Configuration,
        Process::Change,
        Process::Availability,
        Process::Capacity,
        Process::ServiceLevel,
        Process::ServiceReporting,
    ];

    pub fn is_mandatory(self) -> bool {
        matches!(
            self,
            Process::ServiceDesk
                | Process::Incident
                | Process::BusinessRelationship
                | Process::InformationSecurity
                | Process::Supplier
                | Process::Finance
        )
    }

    pub fn tailorable() -> impl Iterator<Item = Process> {
        Self::ALL.into_iter().filter(|p| !p.is_mandatory())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Process::ServiceDesk => "service_desk",
            Process::Incident => "incident",
            Process::BusinessRelationship => "business_relationship",
            Process::InformationSecurity => "information_security",
            Process::Supplier => "supplier",
            Process::Finance => "finance",
            Process::Problem => "problem",
            Process::Release => "release",
            Process::Configuration => "configuration",
            Process::Change => "change",
            Process::Availability => "availability",
            Process::Capacity => "capacity",
            Process::ServiceLevel => "service_level",
            Process::ServiceReporting => "service_reporting",
        }
    }

    pub fn parse(s: &str) -> Option<Process> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Which tailorable processes a project has switched off. Mandatory ones are always on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tailoring {
    disabled: Vec<Process>,
}

impl Tailoring {
    pub fn from_disabled(disabled: impl IntoIterator<Item = Process>) -> Self {
        let mut d: Vec<Process> = disabled.into_iter().filter(|p| !p.is_mandatory()).collect();
        d.sort();
        d.dedup();
        Tailoring { disabled: d }
    }
    pub fn is_enabled(&self, p: Process) -> bool {
        p.is_mandatory() || !self.disabled.contains(&p)
    }
    pub fn disabled(&self) -> &[Process] {
        &self.disabled
    }
    /// Validates a request to switch `process` on or off; mandatory processes cannot be switched off,
    /// and a tailoring decision must give its reason (it is an ISO/IEC 20000 record).
    pub fn set(&mut self, process: Process, enabled: bool, reason: &str) -> Result<bool, crate::DomainError> {
        if process.is_mandatory() && !enabled {
            return Err(crate::DomainError::field("process", "mandatory_process", "mandatory processes cannot be tailored out"));
        }
        if reason.trim().is_empty() {
            return Err(crate::DomainError::field("reason", "required", "a reason is required for tailoring"));
        }
        let was = self.is_enabled(process);
        if enabled {
            self.disabled.retain(|p| *p != process);
        } else if !self.disabled.contains(&process) {
            self.disabled.push(process);
            self.disabled.sort();
        }
        Ok(was != enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_mandatory_eight_tailorable() {
        assert_eq!(Process::ALL.iter().filter(|p| p.is_mandatory()).count(), 6);
        assert_eq!(Process::tailorable().count(), 8);
        for p in Process::ALL {
            assert_eq!(Process::parse(p.as_str()), Some(p));
        }
    }

    #[test]
    fn mandatory_cannot_be_disabled_and_reason_is_required() {
        let mut t = Tailoring::default();
        assert!(t.set(Process::Incident, false, "x").is_err());
        assert!(t.set(Process::Problem, false, " ").is_err());
        assert!(t.set(Process::Problem, false, "customer runs its own").unwrap());
        assert!(!t.is_enabled(Process::Problem));
        assert!(!t.set(Process::Problem, false, "again").unwrap());
        assert!(t.set(Process::Problem, true, "back").unwrap());
        assert!(t.is_enabled(Process::Problem));
        assert!(Tailoring::from_disabled([Process::Incident]).is_enabled(Process::Incident));
    }
}

//! Who acts in Keel and what they may do: roles of REQUIREMENTS §0 and the scope rules that
//! keep each customer to its own records.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Administrator,
    ServiceManager,
    ProjectManager,
    ServiceDeskAgent,
    Technician,
    CabMember,
    Finance,
    Sales,
    ManagementRepresentative,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::Administrator,
        Role::ServiceManager,
        Role::ProjectManager,
        Role::ServiceDeskAgent,
        Role::Technician,
        Role::CabMember,
        Role::Finance,
        Role::Sales,
        Role::ManagementRepresentative,
        Role::Auditor,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::ServiceManager => "service_manager",
            Role::ProjectManager => "project_manager",
            Role::ServiceDeskAgent => "service_desk_agent",
            Role::Technician => "technician",
            Role::CabMember => "cab_member",
            Role::Finance => "finance",
            Role::Sales => "sales",
            Role::ManagementRepresentative => "management_representative",
            Role::Auditor => "auditor",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The kind of account: staff of the provider, or a contact of a customer organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    #[default]
    Staff,
    Contact,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Staff => "staff",
            AccountKind::Contact => "contact",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "staff" => Some(AccountKind::Staff),
            "contact" => Some(AccountKind::Contact),
            _ => None,
        }
    }
}

/// An authenticated person, as every use case sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub display_name: String,
    pub kind: AccountKind,
    pub roles: Vec<Role>,
    /// For contacts: the organisation whose records they may see.
    pub organization_id: Option<String>,
    /// For staff: the service projects they belong to (as manager or member).
    pub project_ids: Vec<String>,
}

/// What a principal wants to do, at the granularity authorisation decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
}

/// The administration areas of the platform itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminArea {
    Users,
    Organizations,
    Teams,
    Projects,
    ProjectTailoring,
    AuditTrail,
}

impl Principal {
    pub fn system() -> Self {
        Principal {
            user_id: "system".into(),
            display_name: "Keel".into(),
            kind: AccountKind::Staff,
            roles: vec![Role::Administrator],
            organization_id: None,
            project_ids: vec![],
        }
    }
    pub fn has(&self, r: Role) -> bool {
        self.kind == AccountKind::Staff && self.roles.contains(&r)
    }
    pub fn is_admin(&self) -> bool {
        self.has(Role::Administrator)
    }
    pub fn is_staff(&self) -> bool {
        self.kind == AccountKind::Staff
    }
    /// Staff who see every project: administrators, auditors (read-only), service department
    /// managers and management representatives (who run reviews across projects).
    pub fn sees_all_projects(&self) -> bool {
        self.has(Role::Administrator)
            || self.has(Role::Auditor)
            || self.has(Role::ServiceManager)
            || self.has(Role::ManagementRepresentative)
    }
    /// Auditors read everything and change nothing, whatever other roles they hold.
    pub fn is_read_only(&self) -> bool {
        self.has(Role::Auditor) && !self.has(Role::Administrator)
    }

    /// Whether this principal may see records of `project_id` owned by `organization_id`.
    pub fn can_see_project(&self, project_id: &str, organization_id: Option<&str>) -> bool {
        match self.kind {
            AccountKind::Contact => organization_id.is_some() && self.organization_id.as_deref() == organization_id,
            AccountKind::Staff => self.sees_all_projects() || self.project_ids.iter().any(|p| p == project_id),
        }
    }

    /// Whether this principal may see records of a customer organisation.
    pub fn can_see_organization(&self, organization_id: &str, organization_project_ids: &[String]) -> bool {
        match self.kind {
            AccountKind::Contact => self.organization_id.as_deref() == Some(organization_id),
            AccountKind::Staff => self.sees_all_projects() || organization_project_ids.iter().any(|p| self.project_ids.contains(p)),
        }
    }

    /// Administration of the platform's own records.
    pub fn may_admin(&self, area: AdminArea, action: Action) -> bool {
        if self.kind != AccountKind::Staff {
            return false;
        }
        if action == Action::Read && self.has(Role::Auditor) {
            return true;
        }
        if self.is_read_only() {
            return false;
        }
        if self.is_admin() {
            return true;
        }
        match (area, action) {
            (AdminArea::AuditTrail, _) => self.has(Role::ManagementRepresentative),
            (AdminArea::ProjectTailoring, Action::Write) => self.has(Role::ServiceManager),
            (AdminArea::Projects | AdminArea::Organizations, Action::Write) => self.has(Role::ServiceManager) || self.has(Role::Sales),
            (AdminArea::Teams | AdminArea::Users, Action::Write) => self.has(Role::ServiceManager),
            (_, Action::Read) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(roles: &[Role], projects: &[&str]) -> Principal {
        Principal {
            user_id: "u".into(),
            display_name: "U".into(),
            kind: AccountKind::Staff,
            roles: roles.to_vec(),
            organization_id: None,
            project_ids: projects.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn contacts_see_only_their_organisation() {
        let c = Principal {
            kind: AccountKind::Contact,
            organization_id: Some("org-a".into()),
            roles: vec![Role::Administrator],
            ..staff(&[], &[])
        };
        assert!(c.can_see_project("p1", Some("org-a")));
        assert!(!c.can_see_project("p1", Some("org-b")));
        assert!(!c.can_see_project("p1", None));
        assert!(!c.is_admin(), "a contact never gains staff roles");
        assert!(!c.may_admin(AdminArea::Organizations, Action::Read));
    }

    #[test]
    fn staff_scope_and_read_only_auditors() {
        let agent = staff(&[Role::ServiceDeskAgent], &["p1"]);
        assert!(agent.can_see_project("p1", Some("x")));
        assert!(!agent.can_see_project("p2", Some("x")));
        assert!(!agent.may_admin(AdminArea::Users, Action::Write));
        let auditor = staff(&[Role::Auditor], &[]);
        assert!(auditor.can_see_project("p2", None));
        assert!(auditor.may_admin(AdminArea::AuditTrail, Action::Read));
        assert!(!auditor.may_admin(AdminArea::AuditTrail, Action::Write));
        assert!(auditor.is_read_only());
        let sm = staff(&[Role::ServiceManager], &[]);
        assert!(sm.may_admin(AdminArea::ProjectTailoring, Action::Write));
        assert!(!staff(&[Role::ProjectManager], &["p1"]).may_admin(AdminArea::ProjectTailoring, Action::Write));
    }
}

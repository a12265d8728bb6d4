//! Incident management and service level management (§8.1, §6.1), and every page of the
//! service desk: this process's copy of the reference data every new ticket is checked and
//! measured against — the priority matrix, and per service project the SLAs in force with their
//! business calendars — so logging a ticket does not read and parse them again; and of the
//! read-mostly lists the desk's forms offer (active teams, active staff, catalogue services,
//! active projects), so a ticket or queue page does not read them again.
//!
//! The copy is labelled with the `desk_reference` counter, which every write to that data bumps
//! in its own transaction (the matrix setting, an SLA, a calendar or its days, a team, a staff
//! account, a service, a project): the database does, by triggers on those tables (migration
//! 32), so no write path can forget to. A use case reads the counter first (one small query); when it
//! moved past the copy's label, the copy is dropped and reloaded, so a change made by any
//! instance is used by the next ticket and shown by the next page. Data is loaded after the
//! counter is read, so a copy is never older than its label. The lists are the same for every
//! reader; what a reader may see of them is applied per request ([`Choices`]).

use crate::incidents::matrix_in;
use crate::sla_clocks::SlaCache;
use crate::{Principal, Result};
use keel_domain::incident::PriorityMatrix;
use keel_store::audit::{RefKind, RefRow};
use keel_store::directory::{ProjectChoice, Scope};
use keel_store::{AnyConnection, accounts, directory, kernel, service_level};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
pub struct ReferenceCache {
    inner: Mutex<Snapshot>,
}

impl std::fmt::Debug for ReferenceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceCache").field("version", &self.lock().version).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Snapshot {
    version: i64,
    matrix: Option<Arc<PriorityMatrix>>,
    slas: HashMap<String, Arc<SlaCache>>,
    lists: Option<Arc<DeskLists>>,
}

/// The option lists of the desk's forms, for every reader alike.
#[derive(Debug, Default)]
pub struct DeskLists {
    /// Active teams by name: id, name.
    teams: Vec<(String, String)>,
    /// Active staff by name: id, "name <email>".
    staff: Vec<(String, String)>,
    /// Catalogue services by code: id, "code · name".
    services: Vec<(String, String)>,
    /// Active projects by code.
    projects: Vec<ProjectChoice>,
    /// The same teams, staff (by display name alone), services and projects as a history names
    /// them.
    refs: HashMap<(RefKind, String), RefRow>,
}

impl DeskLists {
    async fn load(conn: &mut AnyConnection) -> Result<DeskLists> {
        let teams = directory::team_choices(conn).await?;
        let staff = accounts::staff_choices(conn).await?;
        let services = service_level::service_choices(conn).await?;
        let projects = directory::project_choices(conn).await?;
        let row = |id: &str, name: &str| RefRow {
            id: id.to_string(),
            name: name.to_string(),
            name_zh: None,
            code: None,
            project_id: None,
            organization_id: None,
            account_kind: None,
        };
        let mut refs = HashMap::new();
        for (id, name) in &teams {
            refs.insert((RefKind::Team, id.clone()), row(id, name));
        }
        for (id, name, _) in &staff {
            refs.insert((RefKind::User, id.clone()), RefRow { account_kind: Some("staff".into()), ..row(id, name) });
        }
        for (id, code, name) in &services {
            refs.insert((RefKind::Service, id.clone()), RefRow { code: Some(code.clone()), ..row(id, name) });
        }
        for p in &projects {
            refs.insert(
                (RefKind::Project, p.id.clone()),
                RefRow {
                    code: Some(p.code.clone()),
                    project_id: Some(p.id.clone()),
                    organization_id: Some(p.organization_id.clone()),
                    ..row(&p.id, &p.name)
                },
            );
        }
        Ok(DeskLists {
            teams,
            staff: staff.into_iter().map(|(id, name, email)| (id, format!("{name} <{email}>"))).collect(),
            services: services.into_iter().map(|(id, code, name)| (id, format!("{code} · {name}"))).collect(),
            projects,
            refs,
        })
    }

    /// An active team, active staff member, catalogue service or active project as a history
    /// names it.
    pub(crate) fn ref_row(&self, kind: RefKind, id: &str) -> Option<RefRow> {
        self.refs.get(&(kind, id.to_string())).cloned()
    }

    /// Every active project, for every reader alike.
    pub(crate) fn projects(&self) -> &[ProjectChoice] {
        &self.projects
    }
}

/// The desk's option lists as one reader may see them: teams, staff and the whole catalogue for
/// staff only, projects within the reader's scope.
#[derive(Debug, Clone)]
pub struct Choices {
    lists: Arc<DeskLists>,
    staff: bool,
    scope: Scope,
}

impl Choices {
    pub(crate) fn new(lists: Arc<DeskLists>, actor: &Principal) -> Choices {
        Choices { lists, staff: actor.is_staff(), scope: crate::directory::scope_of(actor) }
    }

    /// Active teams (id, name); none for customer contacts.
    pub fn teams(&self) -> &[(String, String)] {
        if self.staff { &self.lists.teams } else { &[] }
    }

    /// Active staff (id, "name <email>"); none for customer contacts.
    pub fn staff(&self) -> &[(String, String)] {
        if self.staff { &self.lists.staff } else { &[] }
    }

    /// The whole catalogue (id, "code · name") for staff; `None` for contacts, who see only
    /// what their organisation's SLAs include.
    pub fn services(&self) -> Option<&[(String, String)]> {
        self.staff.then_some(self.lists.services.as_slice())
    }

    /// The active projects within the reader's scope.
    pub fn projects(&self) -> impl Iterator<Item = &ProjectChoice> {
        self.lists.projects.iter().filter(|p| {
            self.scope.organization_id.as_ref().is_none_or(|o| *o == p.organization_id)
                && self.scope.project_ids.as_ref().is_none_or(|ids| ids.contains(&p.id))
        })
    }
}

/// The reference data as of one value of the counter.
pub(crate) struct Reference<'a> {
    cache: &'a ReferenceCache,
    version: i64,
    pub matrix: Arc<PriorityMatrix>,
}

impl ReferenceCache {
    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What this copy holds for `version`, after dropping a copy older than it.
    fn cached<T>(&self, version: i64, get: impl FnOnce(&Snapshot) -> Option<T>) -> Option<T> {
        let mut c = self.lock();
        if version > c.version {
            *c = Snapshot { version, ..Snapshot::default() };
        }
        if c.version == version { get(&c) } else { None }
    }

    fn keep(&self, version: i64, put: impl FnOnce(&mut Snapshot)) {
        let mut c = self.lock();
        if c.version == version {
            put(&mut c);
        }
    }

    /// Reads the counter and the priority matrix in force.
    pub(crate) async fn current(&self, conn: &mut AnyConnection) -> Result<Reference<'_>> {
        let version = kernel::counter_value(conn, kernel::DESK_REFERENCE_COUNTER).await?;
        let matrix = match self.cached(version, |c| c.matrix.clone()) {
            Some(m) => m,
            None => {
                let m = Arc::new(matrix_in(conn).await?);
                self.keep(version, |c| c.matrix = Some(m.clone()));
                m
            }
        };
        Ok(Reference { cache: self, version, matrix })
    }

    /// Reads the counter and the desk's option lists.
    pub(crate) async fn lists(&self, conn: &mut AnyConnection) -> Result<Arc<DeskLists>> {
        let version = kernel::counter_value(conn, kernel::DESK_REFERENCE_COUNTER).await?;
        if let Some(l) = self.cached(version, |c| c.lists.clone()) {
            return Ok(l);
        }
        let l = Arc::new(DeskLists::load(conn).await?);
        self.keep(version, |c| c.lists = Some(l.clone()));
        Ok(l)
    }
}

impl Reference<'_> {
    /// The SLAs in force for a service project, with their calendars.
    pub(crate) async fn slas_of(&self, conn: &mut AnyConnection, project_id: &str) -> Result<Arc<SlaCache>> {
        if let Some(s) = self.cache.cached(self.version, |c| c.slas.get(project_id).cloned()) {
            return Ok(s);
        }
        let s = Arc::new(SlaCache::of_project(conn, project_id).await?);
        self.cache.keep(self.version, |c| {
            c.slas.insert(project_id.to_string(), s.clone());
        });
        Ok(s)
    }
}

impl crate::App {
    /// The desk's option lists as `actor` may see them.
    pub async fn choices(&self, actor: &Principal) -> Result<Choices> {
        let mut c = self.read().await?;
        Ok(Choices::new(self.reference.lists(&mut c).await?, actor))
    }
}

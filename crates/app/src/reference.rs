//! Incident management and service level management (§8.1, §6.1): this process's copy of the
//! reference data every new ticket is checked and measured against — the priority matrix, and
//! per service project the SLAs in force with their business calendars — so logging a ticket
//! does not read and parse them again.
//!
//! The copy is labelled with the `desk_reference` counter, which every write to that data bumps
//! in its own transaction (the matrix setting, an SLA, a calendar or its days). A use case reads
//! the counter first (one small query); when it moved past the copy's label, the copy is dropped
//! and reloaded, so a change made by any instance is used by the next ticket. Data is loaded
//! after the counter is read, so a copy is never older than its label.

use crate::Result;
use crate::incidents::matrix_in;
use crate::sla_clocks::SlaCache;
use keel_domain::incident::PriorityMatrix;
use keel_store::{AnyConnection, kernel};
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

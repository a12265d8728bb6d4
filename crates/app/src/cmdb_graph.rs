//! Configuration management (配置管理): the per-process copy of the CI relationship graph that
//! impact analysis (影响分析) and change conflict detection traverse.
//!
//! The copy holds every CI that is not retired, whatever its project; each request filters by
//! the reader's scope while traversing, so one copy serves everyone and tenancy stays exact.
//!
//! Keeping it current without reloading it:
//! - every CI or relation write bumps the `cmdb_graph` counter and logs what it changed (the CI
//!   as it now is, or the relation added or removed) under the new counter value, as an outbox
//!   row in its own transaction (`keel_store::cmdb::log_graph_change`);
//! - the process that wrote applies its own changes to its copy right after the commit, when
//!   the copy was current just before them;
//! - a request reads the counter; when it moved past the copy, the changes in between are read
//!   from the log and applied in order. Only when some are missing (the outbox was pruned, a
//!   bulk load bumped the counter without logging) or they are too many is the graph reloaded.
//!
//! A copy may run ahead of the generation it is labelled with (a load reads the counter before
//! the rows), never behind it; applying a change again only sets what it already set, so
//! replaying from the label always ends at the stored graph.

use crate::{App, Result};
use keel_domain::cmdb::{GraphBuilder, ImpactGraph, NodeIndex, RelationType};
use keel_store::cmdb::{self as store, GraphChange, GraphEvent};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;

/// A CI as the graph copy keeps it, indexed like the graph's nodes.
#[derive(Debug, Clone)]
pub struct GraphCi {
    pub id: String,
    pub class_key: String,
    pub name: String,
    pub status: String,
    /// Index into [`CmdbGraph::projects`]; `None` for a shared CI.
    pub project: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct CmdbGraph {
    /// The `cmdb_graph` counter this copy was loaded or brought up to.
    pub generation: i64,
    pub graph: ImpactGraph,
    /// By node index; a removed CI keeps its slot (the graph no longer reaches it).
    pub cis: Vec<GraphCi>,
    pub projects: Vec<String>,
    project_index: HashMap<String, u32>,
}

/// The graph's content in canonical order: CI id → (class, name, status, project), and the
/// relations (source, target, type). Two copies with equal content answer alike.
pub type CmdbGraphContent = (BTreeMap<String, (String, String, String, Option<String>)>, BTreeSet<(String, String, RelationType)>);

/// More changes than this behind (or a tenth of the graph, if larger): reload instead.
const MAX_REPLAY: i64 = 20_000;

impl CmdbGraph {
    pub fn ci(&self, n: NodeIndex) -> &GraphCi {
        &self.cis[n.get()]
    }

    pub fn project_of(&self, ci: &GraphCi) -> Option<&str> {
        ci.project.map(|p| self.projects[p as usize].as_str())
    }

    fn empty(generation: i64) -> CmdbGraph {
        CmdbGraph { generation, graph: GraphBuilder::new().build(), cis: vec![], projects: vec![], project_index: HashMap::new() }
    }

    fn project(&mut self, p: &Option<String>) -> Option<u32> {
        let p = p.as_ref()?;
        Some(*self.project_index.entry(p.clone()).or_insert_with(|| {
            self.projects.push(p.clone());
            (self.projects.len() - 1) as u32
        }))
    }

    async fn load(conn: &mut sqlx::AnyConnection, generation: i64) -> Result<CmdbGraph> {
        let rows = store::graph_cis(conn).await?;
        let triples = store::all_relation_triples(conn).await?;
        let mut g = CmdbGraph::empty(generation);
        let mut b = GraphBuilder::with_capacity(rows.len(), triples.len());
        g.cis.reserve(rows.len());
        for r in rows {
            b.add_node(&r.id, &r.class_key, r.project_id.iter(), std::iter::empty::<&str>())?;
            let project = g.project(&r.project_id);
            g.cis.push(GraphCi { id: r.id, class_key: r.class_key, name: r.name, status: r.status, project });
        }
        for (s, t, k) in &triples {
            if let (Some(si), Some(ti), Some(k)) = (b.index_of(s), b.index_of(t), RelationType::parse(k)) {
                b.add_relation_at(si, ti, k)?;
            }
        }
        g.graph = b.build();
        Ok(g)
    }

    /// Applies one logged change.
    fn apply(&mut self, event: &GraphEvent) -> Result<()> {
        match event {
            GraphEvent::Ci(ci) if ci.status == "retired" => {
                self.graph.remove_node(&ci.id);
            }
            GraphEvent::Ci(ci) => {
                let n = self.graph.upsert_node(&ci.id, &ci.class_key, ci.project_id.iter(), std::iter::empty::<&str>())?.get();
                let project = self.project(&ci.project_id);
                let kept = GraphCi {
                    id: ci.id.clone(),
                    class_key: ci.class_key.clone(),
                    name: ci.name.clone(),
                    status: ci.status.clone(),
                    project,
                };
                if n == self.cis.len() {
                    self.cis.push(kept);
                } else {
                    self.cis[n] = kept;
                }
            }
            GraphEvent::RelationAdded { source_id, target_id, kind } => {
                if let Some(k) = RelationType::parse(kind) {
                    self.graph.insert_relation(source_id, target_id, k);
                }
            }
            GraphEvent::RelationRemoved { source_id, target_id, kind } => {
                if let Some(k) = RelationType::parse(kind) {
                    self.graph.remove_relation(source_id, target_id, k);
                }
            }
        }
        Ok(())
    }

    pub fn content(&self) -> CmdbGraphContent {
        let (nodes, relations) = self.graph.content();
        let nodes = nodes
            .into_keys()
            .filter_map(|id| {
                let ci = self.ci(self.graph.index_of(&id)?);
                Some((id, (ci.class_key.clone(), ci.name.clone(), ci.status.clone(), self.project_of(ci).map(str::to_string))))
            })
            .collect();
        (nodes, relations)
    }
}

/// The process's current copy; one loader at a time, the others wait for its result.
#[derive(Default)]
pub struct GraphCache {
    current: Mutex<Option<Arc<CmdbGraph>>>,
    /// Full loads so far (the first one included).
    reloads: AtomicU64,
    /// Changes applied to the copy without a reload, by this process's writes or from the log.
    applied: AtomicU64,
}

impl std::fmt::Debug for GraphCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GraphCache")
    }
}

impl GraphCache {
    /// How many times the graph was loaded in full, and how many changes were applied to it.
    pub fn stats(&self) -> (u64, u64) {
        (self.reloads.load(Ordering::Relaxed), self.applied.load(Ordering::Relaxed))
    }

    /// Applies `changes` to the copy (cloning it first if a reader still holds it).
    fn apply(&self, slot: &mut Arc<CmdbGraph>, changes: &[GraphChange]) -> Result<()> {
        let g = Arc::make_mut(slot);
        for c in changes {
            g.apply(&c.event)?;
            g.generation = c.generation;
        }
        self.applied.fetch_add(changes.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

impl App {
    /// The CI graph as of now: the cached copy, brought up to the current generation from the
    /// change log, else loaded afresh.
    pub async fn cmdb_graph(&self) -> Result<Arc<CmdbGraph>> {
        let generation = {
            let mut c = self.read().await?;
            store::graph_generation(&mut c).await?
        };
        let cache = &self.cmdb_graph;
        let mut slot = cache.current.lock().await;
        if let Some(g) = slot.as_mut() {
            if g.generation >= generation {
                return Ok(g.clone());
            }
            let behind = generation - g.generation;
            if behind <= MAX_REPLAY.max(g.graph.len() as i64 / 10) {
                let changes = {
                    let mut c = self.read().await?;
                    store::graph_changes_between(&mut c, g.generation, generation).await?
                };
                let complete = changes.len() as i64 == behind && changes.iter().zip(g.generation + 1..).all(|(c, n)| c.generation == n);
                if complete {
                    cache.apply(g, &changes)?;
                    return Ok(g.clone());
                }
            }
        }
        let mut c = self.read().await?;
        let g = Arc::new(CmdbGraph::load(&mut c, generation).await?);
        cache.reloads.fetch_add(1, Ordering::Relaxed);
        *slot = Some(g.clone());
        Ok(g)
    }

    /// After a committed write: applies its changes to this process's copy when the copy was
    /// current just before them (else the next request replays them from the log).
    pub(crate) async fn graph_written(&self, changes: &[GraphChange]) {
        let Some(first) = changes.first() else { return };
        if !changes.iter().zip(first.generation..).all(|(c, n)| c.generation == n) {
            return;
        }
        let cache = &self.cmdb_graph;
        let mut slot = cache.current.lock().await;
        if let Some(g) = slot.as_mut().filter(|g| g.generation == first.generation - 1)
            && let Err(e) = cache.apply(g, changes)
        {
            tracing::warn!(error = %e, "CI graph copy dropped after a failed update");
            *slot = None;
        }
    }

    /// The copy as it is, without catching up: for checks.
    pub async fn cached_cmdb_graph(&self) -> Option<Arc<CmdbGraph>> {
        self.cmdb_graph.current.lock().await.clone()
    }

    /// A fresh load of the graph, leaving the copy alone: for checks against the copy.
    pub async fn load_cmdb_graph(&self) -> Result<CmdbGraph> {
        let mut c = self.read().await?;
        let generation = store::graph_generation(&mut c).await?;
        CmdbGraph::load(&mut c, generation).await
    }
}

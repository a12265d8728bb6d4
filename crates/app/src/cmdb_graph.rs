//! Configuration management (配置管理): the per-process copy of the CI relationship graph that
//! impact analysis (影响分析) traverses.
//!
//! The copy holds every CI that is not retired, whatever its project; each request filters by
//! the reader's scope while traversing, so one copy serves everyone and tenancy stays exact.
//! Every CI or relation write bumps the `cmdb_graph` counter in its own transaction
//! (`keel_store::cmdb`); a request reads the counter and reloads the copy when it moved, so a
//! write by any instance is seen by the next request on every instance.

use crate::{App, Result};
use keel_domain::cmdb::{GraphBuilder, ImpactGraph, NodeIndex, RelationType};
use keel_store::cmdb as store;
use std::collections::HashMap;
use std::sync::Arc;
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

#[derive(Debug)]
pub struct CmdbGraph {
    /// The `cmdb_graph` counter this copy was loaded at (or after).
    pub generation: i64,
    pub graph: ImpactGraph,
    pub cis: Vec<GraphCi>,
    pub projects: Vec<String>,
}

impl CmdbGraph {
    pub fn ci(&self, n: NodeIndex) -> &GraphCi {
        &self.cis[n.get()]
    }

    pub fn project_of(&self, ci: &GraphCi) -> Option<&str> {
        ci.project.map(|p| self.projects[p as usize].as_str())
    }

    async fn load(conn: &mut sqlx::AnyConnection, generation: i64) -> Result<CmdbGraph> {
        let rows = store::graph_cis(conn).await?;
        let triples = store::all_relation_triples(conn).await?;
        let mut b = GraphBuilder::with_capacity(rows.len(), triples.len());
        let mut projects = Vec::new();
        let mut project_index: HashMap<String, u32> = HashMap::new();
        let mut cis = Vec::with_capacity(rows.len());
        for r in rows {
            b.add_node(&r.id, &r.class_key, r.project_id.iter(), std::iter::empty::<&str>())?;
            let project = r.project_id.map(|p| {
                *project_index.entry(p.clone()).or_insert_with(|| {
                    projects.push(p);
                    (projects.len() - 1) as u32
                })
            });
            cis.push(GraphCi { id: r.id, class_key: r.class_key, name: r.name, status: r.status, project });
        }
        for (s, t, k) in &triples {
            if let (Some(si), Some(ti), Some(k)) = (b.index_of(s), b.index_of(t), RelationType::parse(k)) {
                b.add_relation_at(si, ti, k)?;
            }
        }
        Ok(CmdbGraph { generation, graph: b.build(), cis, projects })
    }
}

/// The process's current copy; one loader at a time, the others wait for its result.
#[derive(Default)]
pub struct GraphCache {
    current: Mutex<Option<Arc<CmdbGraph>>>,
}

impl std::fmt::Debug for GraphCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GraphCache")
    }
}

impl App {
    /// The CI graph as of now: the cached copy when no CI or relation was written since it was
    /// loaded, else a fresh one. Reading the counter before the rows means the copy is never
    /// older than the generation it is labelled with (a later write only makes the next
    /// request reload).
    pub async fn cmdb_graph(&self) -> Result<Arc<CmdbGraph>> {
        let generation = {
            let mut c = self.read().await?;
            store::graph_generation(&mut c).await?
        };
        let mut slot = self.cmdb_graph.current.lock().await;
        if let Some(g) = slot.as_ref().filter(|g| g.generation >= generation) {
            return Ok(g.clone());
        }
        let mut c = self.read().await?;
        let g = Arc::new(CmdbGraph::load(&mut c, generation).await?);
        *slot = Some(g.clone());
        Ok(g)
    }
}

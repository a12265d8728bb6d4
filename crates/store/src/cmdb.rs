//! Configuration management (配置管理): CI classes, configuration items with their attribute
//! values, relationships and baselines.

use crate::page::{Page, PageRequest, fetch_page, like_pattern};
use crate::rows::RowExt;
use crate::sql::Sql;
use crate::{AnyConnection, Result, StoreError};
use keel_domain::cmdb::{AttributeDef, CiClass};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Db(sqlx::Error::Decode(Box::new(e)))
}

// ---- classes ----

#[derive(Debug, Clone, PartialEq)]
pub struct ClassRecord {
    pub class: CiClass,
    pub shipped: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

fn class_row(r: &AnyRow) -> Result<ClassRecord> {
    let attributes: Vec<AttributeDef> = serde_json::from_str(&r.text("attributes")?).map_err(json_err)?;
    Ok(ClassRecord {
        class: CiClass {
            key: r.text("class_key")?,
            name_en: r.text("name_en")?,
            name_zh: r.text("name_zh")?,
            parent: r.opt_text("parent_key")?,
            attributes,
        },
        shipped: r.flag("shipped")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

pub async fn list_classes(conn: &mut AnyConnection) -> Result<Vec<ClassRecord>> {
    let rows = sqlx::query(
        "SELECT class_key, name_en, name_zh, parent_key, attributes, shipped, created_at, updated_at, version FROM ci_classes ORDER BY class_key",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(class_row).collect()
}

/// Inserts a class unless one with its key exists; `true` when inserted.
pub async fn insert_class_if_missing(conn: &mut AnyConnection, c: &CiClass, shipped: bool, now: i64) -> Result<bool> {
    let attributes = serde_json::to_string(&c.attributes).map_err(json_err)?;
    let r = sqlx::query(
        "INSERT INTO ci_classes (class_key, name_en, name_zh, parent_key, attributes, shipped, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1) ON CONFLICT (class_key) DO NOTHING",
    )
    .bind(&c.key)
    .bind(&c.name_en)
    .bind(&c.name_zh)
    .bind(&c.parent)
    .bind(attributes)
    .bind(shipped as i64)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Replaces a class's names, parent and attributes (optimistic on `expected_version`).
pub async fn update_class(conn: &mut AnyConnection, c: &CiClass, now: i64, expected_version: i64) -> Result<()> {
    let attributes = serde_json::to_string(&c.attributes).map_err(json_err)?;
    let n = sqlx::query(
        "UPDATE ci_classes SET name_en = $1, name_zh = $2, parent_key = $3, attributes = $4, updated_at = $5, version = version + 1 \
         WHERE class_key = $6 AND version = $7",
    )
    .bind(&c.name_en)
    .bind(&c.name_zh)
    .bind(&c.parent)
    .bind(attributes)
    .bind(now)
    .bind(&c.key)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n == 0 { Err(StoreError::Stale) } else { Ok(()) }
}

// ---- configuration items ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CiRecord {
    pub id: String,
    pub class_key: String,
    pub name: String,
    pub status: String,
    pub owner_user_id: Option<String>,
    pub team_id: Option<String>,
    pub project_id: Option<String>,
    pub location: Option<String>,
    pub description: Option<String>,
    pub attributes: Map<String, Value>,
    pub last_verified_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

const CI_COLS: &str = "id, class_key, name, status, owner_user_id, team_id, project_id, location, description, attributes, last_verified_at, created_at, updated_at, version";

fn ci_row(r: &AnyRow) -> Result<CiRecord> {
    let attributes: Map<String, Value> = serde_json::from_str(&r.text("attributes")?).map_err(json_err)?;
    Ok(CiRecord {
        id: r.text("id")?,
        class_key: r.text("class_key")?,
        name: r.text("name")?,
        status: r.text("status")?,
        owner_user_id: r.opt_text("owner_user_id")?,
        team_id: r.opt_text("team_id")?,
        project_id: r.opt_text("project_id")?,
        location: r.opt_text("location")?,
        description: r.opt_text("description")?,
        attributes,
        last_verified_at: r.opt_int("last_verified_at")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        version: r.int("version")?,
    })
}

/// Inserts a CI; the change to the CI graph is logged with it (see [`log_graph_change`]).
pub async fn insert_ci(conn: &mut AnyConnection, c: &CiRecord) -> Result<GraphChange> {
    let attributes = serde_json::to_string(&c.attributes).map_err(json_err)?;
    sqlx::query(
        "INSERT INTO configuration_items (id, class_key, name, status, owner_user_id, team_id, project_id, location, description, attributes, last_verified_at, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, 1)",
    )
    .bind(&c.id)
    .bind(&c.class_key)
    .bind(&c.name)
    .bind(&c.status)
    .bind(&c.owner_user_id)
    .bind(&c.team_id)
    .bind(&c.project_id)
    .bind(&c.location)
    .bind(&c.description)
    .bind(attributes)
    .bind(c.last_verified_at)
    .bind(c.created_at)
    .execute(&mut *conn)
    .await?;
    log_graph_change(conn, &c.id, GraphEvent::Ci(GraphCi::of(c)), c.created_at).await
}

/// Writes every field of `c` if the stored version is still `expected_version`; the change to
/// the CI graph is logged with it.
pub async fn update_ci(conn: &mut AnyConnection, c: &CiRecord, expected_version: i64) -> Result<GraphChange> {
    let attributes = serde_json::to_string(&c.attributes).map_err(json_err)?;
    let r = sqlx::query(
        "UPDATE configuration_items SET class_key = $1, name = $2, status = $3, owner_user_id = $4, team_id = $5, project_id = $6, location = $7, \
         description = $8, attributes = $9, last_verified_at = $10, updated_at = $11, version = version + 1 WHERE id = $12 AND version = $13",
    )
    .bind(&c.class_key)
    .bind(&c.name)
    .bind(&c.status)
    .bind(&c.owner_user_id)
    .bind(&c.team_id)
    .bind(&c.project_id)
    .bind(&c.location)
    .bind(&c.description)
    .bind(attributes)
    .bind(c.last_verified_at)
    .bind(c.updated_at)
    .bind(&c.id)
    .bind(expected_version)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Err(StoreError::Stale);
    }
    log_graph_change(conn, &c.id, GraphEvent::Ci(GraphCi::of(c)), c.updated_at).await
}

pub async fn get_ci(conn: &mut AnyConnection, id: &str) -> Result<Option<CiRecord>> {
    let q = format!("SELECT {CI_COLS} FROM configuration_items WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await?.map(|r| ci_row(&r)).transpose()
}

/// Several CIs by id, in no particular order; unknown ids are skipped.
pub async fn get_cis(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<CiRecord>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut q = Sql::new(format!("SELECT {CI_COLS} FROM configuration_items WHERE id IN "));
        q.push_list(chunk);
        for r in q.fetch_all(&mut *conn).await? {
            out.push(ci_row(&r)?);
        }
    }
    Ok(out)
}

/// Which CIs a reader may see. `project_ids: None` sees every project; otherwise CIs of the
/// listed projects and shared CIs (no project). CIs of projects that tailored the
/// configuration process out are hidden from everyone.
#[derive(Debug, Clone, Default)]
pub struct CmdbScope {
    pub project_ids: Option<Vec<String>>,
}

fn push_scope(q: &mut Sql, alias: &str, scope: &CmdbScope) {
    if let Some(projects) = &scope.project_ids {
        q.push(format!(" AND ({alias}project_id IS NULL OR {alias}project_id IN "));
        q.push_list(projects);
        q.push(")");
    }
    q.push(format!(
        " AND ({alias}project_id IS NULL OR {alias}project_id NOT IN (SELECT project_id FROM project_processes WHERE process = 'configuration' AND enabled = 0))"
    ));
}

#[derive(Debug, Clone, Default)]
pub struct CiFilter {
    /// Class keys to include (a class and its subclasses, resolved by the caller).
    pub class_keys: Option<Vec<String>>,
    pub status: Option<String>,
    /// A project id, or `"none"` for shared CIs.
    pub project_id: Option<String>,
    /// Text in name, location or attribute values.
    pub q: Option<String>,
}

fn push_filter(q: &mut Sql, f: &CiFilter) {
    if let Some(keys) = &f.class_keys {
        q.push(" AND class_key IN ").push_list(keys);
    }
    if let Some(s) = f.status.as_deref().filter(|s| !s.is_empty()) {
        q.push(" AND status = ").push_bind(s);
    }
    match f.project_id.as_deref().filter(|s| !s.is_empty()) {
        Some("none") => {
            q.push(" AND project_id IS NULL");
        }
        Some(p) => {
            q.push(" AND project_id = ").push_bind(p);
        }
        None => {}
    }
    if let Some(text) = f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pat = like_pattern(text);
        q.push(" AND (LOWER(name) LIKE ")
            .push_bind(pat.clone())
            .push(" ESCAPE '\\' OR LOWER(COALESCE(location, '')) LIKE ")
            .push_bind(pat.clone())
            .push(" ESCAPE '\\' OR LOWER(attributes) LIKE ")
            .push_bind(pat)
            .push(" ESCAPE '\\')");
    }
}

pub async fn list_cis(conn: &mut AnyConnection, scope: &CmdbScope, f: &CiFilter, p: &PageRequest) -> Result<Page<CiRecord>> {
    let mut q = Sql::new(format!("SELECT {CI_COLS} FROM configuration_items WHERE 1 = 1"));
    push_scope(&mut q, "", scope);
    push_filter(&mut q, f);
    fetch_page(conn, q, "id", p, ci_row).await
}

/// Every CI in scope matching the filter, by name (for exports and snapshots).
pub async fn all_cis(conn: &mut AnyConnection, scope: &CmdbScope, f: &CiFilter) -> Result<Vec<CiRecord>> {
    let mut q = Sql::new(format!("SELECT {CI_COLS} FROM configuration_items WHERE 1 = 1"));
    push_scope(&mut q, "", scope);
    push_filter(&mut q, f);
    q.push(" ORDER BY name, id");
    q.fetch_all(conn).await?.iter().map(ci_row).collect()
}

/// Every CI of the given classes, whatever its project (a class edit checks them all).
pub async fn cis_of_classes(conn: &mut AnyConnection, keys: &[String]) -> Result<Vec<CiRecord>> {
    if keys.is_empty() {
        return Ok(vec![]);
    }
    let mut q = Sql::new(format!("SELECT {CI_COLS} FROM configuration_items WHERE class_key IN "));
    q.push_list(keys);
    q.push(" ORDER BY id");
    q.fetch_all(conn).await?.iter().map(ci_row).collect()
}

/// The class of each visible CI among `ids` (for reference attributes).
pub async fn classes_of(conn: &mut AnyConnection, scope: &CmdbScope, ids: &[String]) -> Result<Vec<(String, String)>> {
    let mut q = Sql::new("SELECT id, class_key FROM configuration_items WHERE id IN ");
    q.push_list(ids);
    push_scope(&mut q, "", scope);
    q.fetch_all(conn).await?.iter().map(|r| Ok((r.text("id")?, r.text("class_key")?))).collect()
}

/// (value, ci id) of the stored values of a unique attribute among `values` (JSON texts).
pub async fn unique_taken(conn: &mut AnyConnection, class_key: &str, attribute: &str, values: &[String]) -> Result<Vec<(String, String)>> {
    let mut q = Sql::new("SELECT value, ci_id FROM ci_unique_values WHERE class_key = ");
    q.push_bind(class_key).push(" AND attribute = ").push_bind(attribute).push(" AND value IN ").push_list(values);
    q.fetch_all(conn).await?.iter().map(|r| Ok((r.text("value")?, r.text("ci_id")?))).collect()
}

/// Replaces the unique-attribute index rows of a CI: (declaring class, attribute, JSON value).
pub async fn set_unique_values(conn: &mut AnyConnection, ci_id: &str, values: &[(String, String, String)]) -> Result<()> {
    sqlx::query("DELETE FROM ci_unique_values WHERE ci_id = $1").bind(ci_id).execute(&mut *conn).await?;
    for (class_key, attribute, value) in values {
        sqlx::query("INSERT INTO ci_unique_values (class_key, attribute, value, ci_id) VALUES ($1, $2, $3, $4)")
            .bind(class_key)
            .bind(attribute)
            .bind(value)
            .bind(ci_id)
            .execute(&mut *conn)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Unique { .. } => StoreError::Unique { field: format!("attributes.{attribute}") },
                other => other,
            })?;
    }
    Ok(())
}

// ---- the impact graph ----

const GRAPH_COUNTER: &str = "cmdb_graph";
/// Outbox topic of the graph change log.
pub const GRAPH_TOPIC: &str = "cmdb_graph";

/// Counts writes to CIs and relations. Every such write bumps it in its own transaction, so a
/// process holding a copy of the graph knows, by one read, whether the copy is current —
/// whichever instance wrote. A bump without a logged change (bulk loads) makes every copy
/// reload in full.
pub async fn bump_graph_generation(conn: &mut AnyConnection) -> Result<i64> {
    crate::kernel::next_counter(conn, GRAPH_COUNTER).await
}

/// A change to the CI graph as a write leaves it: what a copy of the graph must do to follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum GraphEvent {
    /// The CI as it is after the write; a retired one leaves the graph.
    Ci(GraphCi),
    RelationAdded {
        source_id: String,
        target_id: String,
        kind: String,
    },
    RelationRemoved {
        source_id: String,
        target_id: String,
        kind: String,
    },
}

/// A logged change and the value of the `cmdb_graph` counter it produced.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphChange {
    pub generation: i64,
    pub event: GraphEvent,
}

/// The outbox id of the change that produced `generation`: fixed width, so ids order like
/// generations and a range of them is one index scan.
fn graph_log_id(generation: i64) -> String {
    format!("cmdbgraph{generation:019}")
}

/// Bumps the counter and logs the change under the new value, in the writer's transaction, as
/// an outbox row of topic [`GRAPH_TOPIC`]. The counter's row lock orders the writers, so every
/// change up to a counter value a reader sees is committed and logged: other processes follow
/// by reading the log past their copy's generation instead of reloading the graph.
pub async fn log_graph_change(conn: &mut AnyConnection, entity_id: &str, event: GraphEvent, at: i64) -> Result<GraphChange> {
    let generation = bump_graph_generation(conn).await?;
    let entity_type = match &event {
        GraphEvent::Ci(_) => "configuration_item",
        _ => "ci_relation",
    };
    let payload = serde_json::to_string(&event).map_err(json_err)?;
    sqlx::query("INSERT INTO outbox (id, topic, entity_type, entity_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(graph_log_id(generation))
        .bind(GRAPH_TOPIC)
        .bind(entity_type)
        .bind(entity_id)
        .bind(payload)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(GraphChange { generation, event })
}

/// The logged changes with generations in `(after, upto]`, oldest first. Fewer than
/// `upto - after` means some are gone (pruned, or a bulk load bumped without logging).
pub async fn graph_changes_between(conn: &mut AnyConnection, after: i64, upto: i64) -> Result<Vec<GraphChange>> {
    let rows = sqlx::query("SELECT id, payload FROM outbox WHERE topic = $1 AND id > $2 AND id <= $3 ORDER BY id")
        .bind(GRAPH_TOPIC)
        .bind(graph_log_id(after))
        .bind(graph_log_id(upto))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            let id = r.text("id")?;
            let generation =
                id.trim_start_matches("cmdbgraph").parse::<i64>().map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))?;
            Ok(GraphChange { generation, event: serde_json::from_str(&r.text("payload")?).map_err(json_err)? })
        })
        .collect()
}

pub async fn graph_generation(conn: &mut AnyConnection) -> Result<i64> {
    crate::kernel::counter_value(conn, GRAPH_COUNTER).await
}

/// A CI as the cached impact graph keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphCi {
    pub id: String,
    pub class_key: String,
    pub name: String,
    pub status: String,
    pub project_id: Option<String>,
}

impl GraphCi {
    pub fn of(c: &CiRecord) -> GraphCi {
        GraphCi {
            id: c.id.clone(),
            class_key: c.class_key.clone(),
            name: c.name.clone(),
            status: c.status.clone(),
            project_id: c.project_id.clone(),
        }
    }
}

/// Every CI that is not retired, whatever its project (readers filter by scope).
pub async fn graph_cis(conn: &mut AnyConnection) -> Result<Vec<GraphCi>> {
    let rows = sqlx::query("SELECT id, class_key, name, status, project_id FROM configuration_items WHERE status <> 'retired'")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(GraphCi {
                id: r.text("id")?,
                class_key: r.text("class_key")?,
                name: r.text("name")?,
                status: r.text("status")?,
                project_id: r.opt_text("project_id")?,
            })
        })
        .collect()
}

/// Projects that tailored configuration management out: their CIs are hidden from everyone.
pub async fn projects_without_configuration(conn: &mut AnyConnection) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT project_id FROM project_processes WHERE process = 'configuration' AND enabled = 0")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.text("project_id")).collect::<std::result::Result<_, _>>().map_err(Into::into)
}

/// (id, code, name, organization id, organization name) of the projects among `ids`.
pub async fn projects_with_customers(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<(String, String, String, String, String)>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let mut q = Sql::new(
            "SELECT p.id, p.code, p.name, o.id AS org_id, o.name AS org_name FROM projects p JOIN organizations o ON o.id = p.organization_id \
             WHERE p.id IN ",
        );
        q.push_list(chunk);
        for r in q.fetch_all(&mut *conn).await? {
            out.push((r.text("id")?, r.text("code")?, r.text("name")?, r.text("org_id")?, r.text("org_name")?));
        }
    }
    Ok(out)
}

/// Verification state of the CIs in scope: (id, status, last_verified_at).
pub async fn verification_states(conn: &mut AnyConnection, scope: &CmdbScope) -> Result<Vec<(String, String, Option<i64>)>> {
    let mut q = Sql::new("SELECT id, status, last_verified_at FROM configuration_items WHERE status <> 'retired'");
    push_scope(&mut q, "", scope);
    q.fetch_all(conn).await?.iter().map(|r| Ok((r.text("id")?, r.text("status")?, r.opt_int("last_verified_at")?))).collect()
}

// ---- relationships ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RelationRecord {
    pub id: String,
    pub kind: String,
    pub source_id: String,
    pub target_id: String,
    pub created_by: String,
    pub created_at: i64,
}

const REL_COLS: &str = "id, kind, source_id, target_id, created_by, created_at";

fn rel_row(r: &AnyRow) -> Result<RelationRecord> {
    Ok(RelationRecord {
        id: r.text("id")?,
        kind: r.text("kind")?,
        source_id: r.text("source_id")?,
        target_id: r.text("target_id")?,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
    })
}

/// Inserts a relation; the change to the CI graph is logged with it.
pub async fn insert_relation(conn: &mut AnyConnection, r: &RelationRecord) -> Result<GraphChange> {
    sqlx::query("INSERT INTO ci_relations (id, kind, source_id, target_id, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&r.id)
        .bind(&r.kind)
        .bind(&r.source_id)
        .bind(&r.target_id)
        .bind(&r.created_by)
        .bind(r.created_at)
        .execute(&mut *conn)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Unique { .. } => StoreError::Unique { field: "target_id".into() },
            other => other,
        })?;
    let event = GraphEvent::RelationAdded { source_id: r.source_id.clone(), target_id: r.target_id.clone(), kind: r.kind.clone() };
    log_graph_change(conn, &r.id, event, r.created_at).await
}

/// Deletes a relation at `at`; the change to the CI graph is logged with it.
pub async fn delete_relation(conn: &mut AnyConnection, id: &str, at: i64) -> Result<GraphChange> {
    let row = sqlx::query("DELETE FROM ci_relations WHERE id = $1 RETURNING source_id, target_id, kind")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    let event =
        GraphEvent::RelationRemoved { source_id: row.text("source_id")?, target_id: row.text("target_id")?, kind: row.text("kind")? };
    log_graph_change(conn, id, event, at).await
}

pub async fn get_relation(conn: &mut AnyConnection, id: &str) -> Result<Option<RelationRecord>> {
    let q = format!("SELECT {REL_COLS} FROM ci_relations WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(&mut *conn).await?.map(|r| rel_row(&r)).transpose()
}

/// Relations with `ci_id` at either end.
pub async fn relations_of(conn: &mut AnyConnection, ci_id: &str) -> Result<Vec<RelationRecord>> {
    let q = format!("SELECT {REL_COLS} FROM ci_relations WHERE source_id = $1 OR target_id = $1 ORDER BY kind, created_at, id");
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(ci_id).fetch_all(&mut *conn).await?.iter().map(rel_row).collect()
}

/// What a new relation between `a` and `b` must be checked against: every `part_of`
/// relation (for the cycle rule) and every relation between the two CIs (for duplicates).
pub async fn relations_to_check(conn: &mut AnyConnection, a: &str, b: &str) -> Result<Vec<RelationRecord>> {
    let q = format!(
        "SELECT {REL_COLS} FROM ci_relations WHERE kind = 'part_of' OR (source_id = $1 AND target_id = $2) OR (source_id = $2 AND target_id = $1)"
    );
    sqlx::query(sqlx::AssertSqlSafe(q)).bind(a).bind(b).fetch_all(&mut *conn).await?.iter().map(rel_row).collect()
}

/// Every relation (source, target, kind); the caller keeps those between CIs it loaded.
pub async fn all_relation_triples(conn: &mut AnyConnection) -> Result<Vec<(String, String, String)>> {
    let rows = sqlx::query("SELECT source_id, target_id, kind FROM ci_relations").fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((r.text("source_id")?, r.text("target_id")?, r.text("kind")?))).collect()
}

/// Relations with at least one end among `ids`.
pub async fn relations_touching(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<RelationRecord>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(400) {
        let mut q = Sql::new(format!("SELECT {REL_COLS} FROM ci_relations WHERE source_id IN "));
        q.push_list(chunk).push(" OR target_id IN ").push_list(chunk);
        for r in q.fetch_all(&mut *conn).await? {
            out.push(rel_row(&r)?);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    Ok(out)
}

// ---- baselines ----

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BaselineRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub project_id: Option<String>,
    pub ci_ids: Option<Vec<String>>,
    pub created_by: String,
    pub created_at: i64,
    pub ci_count: i64,
    /// JSON `keel_domain::cmdb::Snapshot`; empty in lists.
    #[serde(skip)]
    pub snapshot: String,
}

fn baseline_row(r: &AnyRow, with_snapshot: bool) -> Result<BaselineRecord> {
    let ci_ids = match r.opt_text("ci_ids")? {
        Some(s) => Some(serde_json::from_str(&s).map_err(json_err)?),
        None => None,
    };
    Ok(BaselineRecord {
        id: r.text("id")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        project_id: r.opt_text("project_id")?,
        ci_ids,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
        ci_count: r.int("ci_count")?,
        snapshot: if with_snapshot { r.text("snapshot")? } else { String::new() },
    })
}

pub async fn insert_baseline(conn: &mut AnyConnection, b: &BaselineRecord) -> Result<()> {
    let ci_ids = b.ci_ids.as_ref().map(serde_json::to_string).transpose().map_err(json_err)?;
    sqlx::query(
        "INSERT INTO ci_baselines (id, name, description, project_id, ci_ids, created_by, created_at, ci_count, snapshot) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&b.id)
    .bind(&b.name)
    .bind(&b.description)
    .bind(&b.project_id)
    .bind(ci_ids)
    .bind(&b.created_by)
    .bind(b.created_at)
    .bind(b.ci_count)
    .bind(&b.snapshot)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_baseline(conn: &mut AnyConnection, id: &str) -> Result<Option<BaselineRecord>> {
    sqlx::query(
        "SELECT id, name, description, project_id, ci_ids, created_by, created_at, ci_count, snapshot FROM ci_baselines WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| baseline_row(&r, true))
    .transpose()
}

/// Baselines newest first; `project_ids: Some` limits them to those projects (and, with
/// `include_global`, to whole-CMDB baselines).
pub async fn list_baselines(conn: &mut AnyConnection, project_ids: Option<&[String]>, include_global: bool) -> Result<Vec<BaselineRecord>> {
    let mut q =
        Sql::new("SELECT id, name, description, project_id, ci_ids, created_by, created_at, ci_count FROM ci_baselines WHERE 1 = 1");
    if let Some(ps) = project_ids {
        q.push(" AND (project_id IN ").push_list(ps);
        q.push(if include_global { " OR project_id IS NULL)" } else { ")" });
    }
    q.push(" ORDER BY created_at DESC, id DESC LIMIT 500");
    q.fetch_all(conn).await?.iter().map(|r| baseline_row(r, false)).collect()
}

// ---- imports ----

/// The CIs already imported from `source`: external reference → CI id.
pub async fn ci_external_refs(conn: &mut AnyConnection, source: &str) -> Result<std::collections::HashMap<String, String>> {
    let rows = sqlx::query("SELECT external_ref, ci_id FROM ci_external_refs WHERE source = $1").bind(source).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((r.text("external_ref")?, r.text("ci_id")?))).collect()
}

pub async fn insert_ci_external_ref(conn: &mut AnyConnection, ci_id: &str, source: &str, external_ref: &str, at: i64) -> Result<()> {
    sqlx::query("INSERT INTO ci_external_refs (ci_id, source, external_ref, imported_at) VALUES ($1, $2, $3, $4)")
        .bind(ci_id)
        .bind(source)
        .bind(external_ref)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Every `part_of` relation (source, target), for the cycle rule of an import.
pub async fn part_of_pairs(conn: &mut AnyConnection) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT source_id, target_id FROM ci_relations WHERE kind = 'part_of'").fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((r.text("source_id")?, r.text("target_id")?))).collect()
}

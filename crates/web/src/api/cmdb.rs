//! `/api/v1/cis`, `/api/v1/relations`, `/api/v1/ci-classes`, `/api/v1/baselines`,
//! `/api/v1/ci-verifications`: configuration management (配置管理数据库) — configuration items,
//! relationships, impact analysis, baselines and verification audits.

use super::directory::IntoResponseOk;
use super::{
    ApiJson, ApiPath, ApiQuery, ApiResponse, Forbidden, InvalidQuery, JsonBodyErrors, ListOf, NotFound, PageParams, Unauthorized,
    VersionErrors, created, if_match, page_request, with_etag,
};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ErrorBody};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use keel_app::cmdb::{BaselineInput, CiInput, CiQuery, RelationInput};
use keel_domain::cmdb::Direction;
use keel_store::cmdb::{BaselineRecord, CiRecord, RelationRecord};
use keel_store::page::{SortKey, SortKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_cis, create_ci))
        .routes(routes!(export_cis))
        .routes(routes!(get_ci, update_ci))
        .routes(routes!(transition_ci))
        .routes(routes!(verify_ci))
        .routes(routes!(list_relations, add_relation))
        .routes(routes!(remove_relation))
        .routes(routes!(impact))
        .routes(routes!(list_classes))
        .routes(routes!(list_baselines, capture_baseline))
        .routes(routes!(baseline_diff))
        .routes(routes!(verification_due))
        .routes(routes!(import_cis))
}

/// A CI import: a CSV file with its TOML mapping, or iTop XML data files.
#[derive(Deserialize, ToSchema)]
pub struct CiImport {
    /// `csv` or `itop`.
    pub format: String,
    /// The files: one CSV file, or iTop XML files imported together.
    pub files: Vec<ImportFile>,
    /// For `csv`: the TOML mapping (see `docs/import/cis.toml`).
    #[serde(default)]
    pub mapping: Option<String>,
    /// Check every row and write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct ImportFile {
    pub name: String,
    pub content: String,
}

/// A row the import refuses.
#[derive(Serialize, ToSchema)]
pub struct ImportBadRow {
    pub line: u64,
    pub external_ref: Option<String>,
    pub field: String,
    pub reason: String,
}

/// What an import found (dry run) or wrote: nothing is written while any row is bad.
#[derive(Serialize, ToSchema)]
pub struct CiImportResult {
    pub cis: u64,
    pub relations: u64,
    pub bad_rows: Vec<ImportBadRow>,
    pub imported_cis: u64,
    pub imported_relations: u64,
    /// Source classes without a Keel counterpart, with their counts.
    #[schema(value_type = Object)]
    pub skipped: std::collections::BTreeMap<String, u64>,
}

impl From<keel_app::cmdb_import::CiImportReport> for CiImportResult {
    fn from(r: keel_app::cmdb_import::CiImportReport) -> Self {
        CiImportResult {
            cis: r.cis,
            relations: r.relations,
            bad_rows: r
                .bad_rows
                .into_iter()
                .map(|b| ImportBadRow { line: b.line, external_ref: b.external_ref, field: b.field, reason: b.reason })
                .collect(),
            imported_cis: r.imported_cis,
            imported_relations: r.imported_relations,
            skipped: r.skipped,
        }
    }
}

#[utoipa::path(post, path = "/api/v1/cis/import", tag = "cmdb", request_body = CiImport,
    responses((status = 200, body = CiImportResult, description = "the report; nothing was written if bad_rows is not empty"), Unauthorized, JsonBodyErrors, Forbidden))]
async fn import_cis(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<CiImport>) -> ApiResponse {
    let report = match b.format.as_str() {
        "csv" => {
            let mapping = keel_app::cmdb_import::CiMapping::from_toml(b.mapping.as_deref().unwrap_or_default())?;
            let [file] = b.files.as_slice() else {
                return Err(keel_app::AppError::field("files", "one_file", "a CSV import takes one file").into());
            };
            s.app.import_cis_csv(&who.principal, file.content.as_bytes(), &mapping, b.dry_run).await?
        }
        "itop" => {
            let files: Vec<(String, String)> = b.files.into_iter().map(|f| (f.name, f.content)).collect();
            s.app.import_itop(&who.principal, &files, b.dry_run).await?
        }
        _ => return Err(keel_app::AppError::field("format", "invalid_choice", "csv or itop").into()),
    };
    Ok(axum::Json(CiImportResult::from(report)).into_response_ok())
}

pub const CI_SORTS: &[SortKey] = &[
    SortKey { name: "name", column: "name", kind: SortKind::Text },
    SortKey { name: "class_key", column: "class_key", kind: SortKind::Text },
    SortKey { name: "status", column: "status", kind: SortKind::Text },
    SortKey { name: "created_at", column: "created_at", kind: SortKind::Int },
    SortKey { name: "updated_at", column: "updated_at", kind: SortKind::Int },
];

/// A configuration item (配置项).
#[derive(Serialize, ToSchema)]
pub struct Ci {
    pub id: String,
    /// The CI class, e.g. `server`; see `/api/v1/ci-classes`.
    pub class_key: String,
    pub name: String,
    /// `planned`, `in_build`, `live`, `maintenance` or `retired`.
    pub status: String,
    pub owner_user_id: Option<String>,
    pub team_id: Option<String>,
    /// The service project; absent for a shared CI (visible to all staff).
    pub project_id: Option<String>,
    /// Where the CI is, as free text.
    pub location: Option<String>,
    pub description: Option<String>,
    /// Attribute values, typed by the class.
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    /// Last verification audit, Unix milliseconds.
    pub last_verified_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl From<CiRecord> for Ci {
    fn from(c: CiRecord) -> Self {
        Ci {
            id: c.id,
            class_key: c.class_key,
            name: c.name,
            status: c.status,
            owner_user_id: c.owner_user_id,
            team_id: c.team_id,
            project_id: c.project_id,
            location: c.location,
            description: c.description,
            attributes: c.attributes,
            last_verified_at: c.last_verified_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
            version: c.version,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCi {
    pub class_key: String,
    pub name: String,
    /// Initial status (default `planned`).
    pub status: Option<String>,
    pub owner_user_id: Option<String>,
    pub team_id: Option<String>,
    pub project_id: Option<String>,
    pub location: Option<String>,
    pub description: Option<String>,
    /// Attribute values; errors are reported as `attributes.<key>`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

/// Fields left out keep their value; `""` clears an optional field. `attributes` is merged
/// into the current values (`null` removes one).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CiPatch {
    pub class_key: Option<String>,
    pub name: Option<String>,
    pub owner_user_id: Option<String>,
    pub team_id: Option<String>,
    pub project_id: Option<String>,
    pub location: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
    /// The change (id or number, in implementation, listing this CI) that authorises changing
    /// a live CI; required or warned about as the `cmdb.change_control` setting says.
    pub change_id: Option<String>,
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct CiListQuery {
    /// A class key; subclasses are included.
    pub class: Option<String>,
    pub status: Option<String>,
    /// A project id, or `none` for shared CIs.
    pub project_id: Option<String>,
    /// Text in name, location or attribute values.
    pub q: Option<String>,
}

impl From<CiListQuery> for CiQuery {
    fn from(q: CiListQuery) -> Self {
        CiQuery { class: q.class, status: q.status, project_id: q.project_id, q: q.q }
    }
}

#[utoipa::path(get, path = "/api/v1/cis", tag = "cmdb", params(CiListQuery, PageParams),
    responses((status = 200, body = ListOf<Ci>), Unauthorized, InvalidQuery, Forbidden))]
async fn list_cis(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiQuery(q): ApiQuery<CiListQuery>,
    ApiQuery(pp): ApiQuery<PageParams>,
) -> ApiResponse {
    let page = page_request(&pp, CI_SORTS)?;
    let r = s.app.list_cis(&who.principal, &q.into(), &page).await?;
    Ok(axum::Json(ListOf { items: r.items.into_iter().map(Ci::from).collect(), next_cursor: r.next_cursor }).into_response_ok())
}

#[utoipa::path(get, path = "/api/v1/cis/export.csv", tag = "cmdb", params(CiListQuery),
    responses((status = 200, description = "CSV (UTF-8 with BOM), attributes as JSON", content_type = "text/csv"), Unauthorized, Forbidden, InvalidQuery))]
async fn export_cis(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(q): ApiQuery<CiListQuery>) -> ApiResponse {
    let csv = s.app.export_cis_csv(&who.principal, &q.into()).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"configuration-items.csv\""),
        ],
        csv,
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/v1/cis", tag = "cmdb", request_body = NewCi,
    responses((status = 201, body = Ci), (status = 409, body = ErrorBody, description = "configuration management is tailored out of the project"), Unauthorized, JsonBodyErrors, Forbidden))]
async fn create_ci(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewCi>) -> ApiResponse {
    let input = CiInput {
        class_key: b.class_key,
        name: b.name,
        status: b.status,
        owner_user_id: b.owner_user_id,
        team_id: b.team_id,
        project_id: b.project_id,
        location: b.location,
        description: b.description,
        attributes: Value::Object(b.attributes),
        change_id: None,
    };
    let c = s.app.create_ci(&who.principal, input).await?;
    Ok(created(c.version, format!("/api/v1/cis/{}", c.id), Ci::from(c)))
}

#[utoipa::path(get, path = "/api/v1/cis/{id}", tag = "cmdb", params(("id" = String, Path)),
    responses((status = 200, body = Ci, headers(("ETag" = String))), (status = 409, body = ErrorBody), Unauthorized, NotFound))]
async fn get_ci(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let c = s.app.get_ci(&who.principal, &id).await?;
    Ok(with_etag(c.version, Ci::from(c)))
}

#[utoipa::path(patch, path = "/api/v1/cis/{id}", tag = "cmdb", params(("id" = String, Path), ("If-Match" = String, Header, description = "ETag of the version the change is based on")),
    request_body = CiPatch,
    responses((status = 200, body = Ci), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn update_ci(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<CiPatch>,
) -> ApiResponse {
    let cur = s.app.get_ci(&who.principal, &id).await?;
    let version = if_match(&headers)?;
    let mut attributes = cur.attributes;
    for (k, v) in b.attributes.unwrap_or_default() {
        attributes.insert(k, v);
    }
    let input = CiInput {
        class_key: b.class_key.unwrap_or(cur.class_key),
        name: b.name.unwrap_or(cur.name),
        status: None,
        owner_user_id: b.owner_user_id.or(cur.owner_user_id),
        team_id: b.team_id.or(cur.team_id),
        project_id: b.project_id.or(cur.project_id),
        location: b.location.or(cur.location),
        description: b.description.or(cur.description),
        attributes: Value::Object(attributes),
        change_id: b.change_id,
    };
    let c = s.app.update_ci(&who.principal, &id, input, Some(version)).await?;
    Ok(with_etag(c.version, Ci::from(c)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// The new status: planned → in_build → live ⇄ maintenance; any but retired → retired.
    pub status: String,
}

fn optional_if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    if headers.contains_key(header::IF_MATCH) { if_match(headers).map(Some) } else { Ok(None) }
}

#[utoipa::path(post, path = "/api/v1/cis/{id}/transitions", tag = "cmdb", params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body = Transition,
    responses((status = 200, body = Ci), (status = 409, body = ErrorBody, description = "invalid_transition"), Unauthorized, JsonBodyErrors, VersionErrors, Forbidden, NotFound))]
async fn transition_ci(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<Transition>,
) -> ApiResponse {
    let c = s.app.transition_ci(&who.principal, &id, &b.status, optional_if_match(&headers)?).await?;
    Ok(with_etag(c.version, Ci::from(c)))
}

#[utoipa::path(post, path = "/api/v1/cis/{id}/verifications", tag = "cmdb", params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Ci, description = "the CI with last_verified_at set to now"), (status = 409, body = ErrorBody), Unauthorized, VersionErrors, Forbidden, NotFound))]
async fn verify_ci(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>, headers: HeaderMap) -> ApiResponse {
    let c = s.app.verify_ci(&who.principal, &id, optional_if_match(&headers)?).await?;
    Ok(with_etag(c.version, Ci::from(c)))
}

// ---- relationships ----

/// A relationship (关系): `source <kind> target`, e.g. an application `runs_on` a server.
#[derive(Serialize, ToSchema)]
pub struct CiRelation {
    pub id: String,
    /// `runs_on`, `depends_on`, `connected_to`, `part_of`, `provides` or `hosted_in`.
    pub kind: String,
    pub source_id: String,
    pub target_id: String,
    pub created_by: String,
    pub created_at: i64,
}

impl From<RelationRecord> for CiRelation {
    fn from(r: RelationRecord) -> Self {
        CiRelation {
            id: r.id,
            kind: r.kind,
            source_id: r.source_id,
            target_id: r.target_id,
            created_by: r.created_by,
            created_at: r.created_at,
        }
    }
}

/// A few facts about a CI.
#[derive(Serialize, ToSchema)]
pub struct CiRef {
    pub id: String,
    pub name: String,
    pub class_key: String,
    pub status: String,
    pub project_id: Option<String>,
}

impl From<keel_app::cmdb::CiSummary> for CiRef {
    fn from(c: keel_app::cmdb::CiSummary) -> Self {
        CiRef { id: c.id, name: c.name, class_key: c.class_key, status: c.status, project_id: c.project_id }
    }
}

/// A relation seen from one CI.
#[derive(Serialize, ToSchema)]
pub struct RelationOfCi {
    pub relation: CiRelation,
    /// `outgoing` when this CI is the source.
    pub direction: String,
    pub other: CiRef,
}

#[utoipa::path(get, path = "/api/v1/cis/{id}/relations", tag = "cmdb", params(("id" = String, Path)),
    responses((status = 200, body = Vec<RelationOfCi>), Unauthorized, NotFound))]
async fn list_relations(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let v = s.app.ci_relations(&who.principal, &id).await?;
    let out: Vec<RelationOfCi> =
        v.into_iter().map(|r| RelationOfCi { relation: r.relation.into(), direction: r.direction.into(), other: r.other.into() }).collect();
    Ok(axum::Json(out).into_response_ok())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRelation {
    pub kind: String,
    /// The CI at the other end.
    pub other_id: String,
    /// `outgoing` (default): this CI is the source ("this runs_on other"); `incoming`: the other is.
    pub direction: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/cis/{id}/relations", tag = "cmdb", params(("id" = String, Path)), request_body = NewRelation,
    responses((status = 201, body = CiRelation), (status = 422, body = ErrorBody, description = "unknown_ci, duplicate_relation, part_of_cycle, self_relation"), Unauthorized, JsonBodyErrors, Forbidden, NotFound))]
async fn add_relation(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NewRelation>,
) -> ApiResponse {
    s.app.get_ci(&who.principal, &id).await?;
    let input = match b.direction.as_deref().unwrap_or("outgoing") {
        "outgoing" => RelationInput { kind: b.kind, source_id: id, target_id: b.other_id },
        "incoming" => RelationInput { kind: b.kind, source_id: b.other_id, target_id: id },
        _ => return Err(ApiError::field("direction", "invalid_choice", "direction is outgoing or incoming")),
    };
    let r = s.app.add_relation(&who.principal, input).await?;
    let mut resp = axum::Json(CiRelation::from(r)).into_response();
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

#[utoipa::path(delete, path = "/api/v1/relations/{id}", tag = "cmdb", params(("id" = String, Path)),
    responses((status = 204), Unauthorized, Forbidden, NotFound))]
async fn remove_relation(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    s.app.remove_relation(&who.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- impact analysis ----

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ImpactQuery {
    /// `downstream` (default): what a failure of this CI impacts; `upstream`: what it needs.
    pub direction: Option<String>,
    /// Stop after this many relations (default: no limit).
    pub max_depth: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct PathStepView {
    pub source_id: String,
    pub kind: String,
    pub target_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct ImpactedCi {
    pub ci: CiRef,
    pub depth: u32,
    /// The relations from the origin to this CI.
    pub path: Vec<PathStepView>,
}

#[derive(Serialize, ToSchema)]
pub struct NamedRef {
    pub id: String,
    pub code: Option<String>,
    pub name: String,
}

/// Impact analysis (影响分析) through the CIs the caller may see; retired CIs take no part.
#[derive(Serialize, ToSchema)]
pub struct Impact {
    pub origin: CiRef,
    pub direction: String,
    pub max_depth: Option<u32>,
    /// Nearest first.
    pub reached: Vec<ImpactedCi>,
    pub services: Vec<CiRef>,
    pub projects: Vec<NamedRef>,
    pub customers: Vec<NamedRef>,
}

#[utoipa::path(get, path = "/api/v1/cis/{id}/impact", tag = "cmdb", params(("id" = String, Path), ImpactQuery),
    responses((status = 200, body = Impact), Unauthorized, InvalidQuery, NotFound))]
async fn impact(
    State(s): State<AppState>,
    ApiUser(who): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ImpactQuery>,
) -> ApiResponse {
    let direction = match q.direction.as_deref().unwrap_or("downstream") {
        "downstream" => Direction::Downstream,
        "upstream" => Direction::Upstream,
        _ => return Err(ApiError::field("direction", "invalid_choice", "direction is downstream or upstream")),
    };
    let r = s.app.impact(&who.principal, &id, direction, q.max_depth).await?;
    Ok(axum::Json(impact_view(r)).into_response_ok())
}

pub fn impact_view(r: keel_app::cmdb::ImpactResult) -> Impact {
    Impact {
        origin: r.origin.into(),
        direction: match r.direction {
            Direction::Downstream => "downstream".into(),
            Direction::Upstream => "upstream".into(),
        },
        max_depth: r.max_depth,
        reached: r
            .reached
            .into_iter()
            .map(|e| ImpactedCi {
                ci: e.ci.into(),
                depth: e.depth,
                path: e
                    .path
                    .into_iter()
                    .map(|p| PathStepView { source_id: p.source_id, kind: p.kind.as_str().into(), target_id: p.target_id })
                    .collect(),
            })
            .collect(),
        services: r.services.into_iter().map(CiRef::from).collect(),
        projects: r.projects.into_iter().map(|p| NamedRef { id: p.id, code: Some(p.code), name: p.name }).collect(),
        customers: r.customers.into_iter().map(|c| NamedRef { id: c.id, code: None, name: c.name }).collect(),
    }
}

// ---- classes ----

/// A CI class with its own and inherited attribute definitions.
#[derive(Serialize, ToSchema)]
pub struct CiClassView {
    pub key: String,
    pub name_en: String,
    pub name_zh: String,
    pub parent: Option<String>,
    /// Attributes defined by this class: `{key, label_en, label_zh, type, required, unique, …}`.
    #[schema(value_type = Vec<Object>)]
    pub attributes: Value,
    /// Every attribute a CI of this class has, inherited ones first.
    #[schema(value_type = Vec<Object>)]
    pub all_attributes: Value,
    pub shipped: bool,
    pub version: i64,
}

#[utoipa::path(get, path = "/api/v1/ci-classes", tag = "cmdb",
    responses((status = 200, body = Vec<CiClassView>), Unauthorized, Forbidden))]
async fn list_classes(State(s): State<AppState>, ApiUser(who): ApiUser) -> ApiResponse {
    let rows = s.app.list_ci_classes(&who.principal).await?;
    let registry = s.app.class_registry().await?;
    let out: Vec<CiClassView> = rows
        .into_iter()
        .map(|r| {
            let all: Vec<_> = registry.attributes(&r.class.key).into_iter().map(|(_, a)| a.clone()).collect();
            CiClassView {
                attributes: serde_json::to_value(&r.class.attributes).unwrap_or_default(),
                all_attributes: serde_json::to_value(all).unwrap_or_default(),
                key: r.class.key,
                name_en: r.class.name_en,
                name_zh: r.class.name_zh,
                parent: r.class.parent,
                shipped: r.shipped,
                version: r.version,
            }
        })
        .collect();
    Ok(axum::Json(out).into_response_ok())
}

// ---- baselines ----

/// A baseline (基线): the configuration of a project (or of the whole CMDB) at one moment.
#[derive(Serialize, ToSchema)]
pub struct Baseline {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub project_id: Option<String>,
    pub ci_ids: Option<Vec<String>>,
    pub created_by: String,
    pub created_at: i64,
    pub ci_count: i64,
}

impl From<BaselineRecord> for Baseline {
    fn from(b: BaselineRecord) -> Self {
        Baseline {
            id: b.id,
            name: b.name,
            description: b.description,
            project_id: b.project_id,
            ci_ids: b.ci_ids,
            created_by: b.created_by,
            created_at: b.created_at,
            ci_count: b.ci_count,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBaseline {
    pub name: String,
    pub description: Option<String>,
    /// The project to baseline; omit for the whole CMDB (only staff who see every project).
    pub project_id: Option<String>,
    /// Narrow the baseline to these CIs.
    pub ci_ids: Option<Vec<String>>,
}

#[utoipa::path(post, path = "/api/v1/baselines", tag = "cmdb", request_body = NewBaseline,
    responses((status = 201, body = Baseline), (status = 409, body = ErrorBody), Unauthorized, JsonBodyErrors, Forbidden))]
async fn capture_baseline(State(s): State<AppState>, ApiUser(who): ApiUser, ApiJson(b): ApiJson<NewBaseline>) -> ApiResponse {
    let r = s
        .app
        .capture_baseline(
            &who.principal,
            BaselineInput { name: b.name, description: b.description, project_id: b.project_id, ci_ids: b.ci_ids },
        )
        .await?;
    let mut resp = axum::Json(Baseline::from(r)).into_response();
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

#[utoipa::path(get, path = "/api/v1/baselines", tag = "cmdb",
    responses((status = 200, body = Vec<Baseline>), Unauthorized, Forbidden))]
async fn list_baselines(State(s): State<AppState>, ApiUser(who): ApiUser) -> ApiResponse {
    let v = s.app.list_baselines(&who.principal).await?;
    Ok(axum::Json(v.into_iter().map(Baseline::from).collect::<Vec<_>>()).into_response_ok())
}

/// What changed since a baseline. CIs' core fields appear as attributes named `@name`,
/// `@owner_user_id`, `@team_id`, `@project_id`, `@location`.
#[derive(Serialize, ToSchema)]
pub struct BaselineDiffView {
    pub baseline: Baseline,
    pub added_cis: Vec<String>,
    pub removed_cis: Vec<String>,
    /// `[{id, class?: [old, new], status?: [old, new], attributes: [{attribute, old, new}]}]`
    #[schema(value_type = Vec<Object>)]
    pub changed_cis: Value,
    /// `[{source, target, kind}]`
    #[schema(value_type = Vec<Object>)]
    pub added_relations: Value,
    #[schema(value_type = Vec<Object>)]
    pub removed_relations: Value,
}

#[utoipa::path(get, path = "/api/v1/baselines/{id}/diff", tag = "cmdb", params(("id" = String, Path)),
    responses((status = 200, body = BaselineDiffView), Unauthorized, NotFound))]
async fn baseline_diff(State(s): State<AppState>, ApiUser(who): ApiUser, ApiPath(id): ApiPath<String>) -> ApiResponse {
    let d = s.app.baseline_diff(&who.principal, &id).await?;
    Ok(axum::Json(BaselineDiffView {
        baseline: d.baseline.into(),
        added_cis: d.diff.added_cis,
        removed_cis: d.diff.removed_cis,
        changed_cis: serde_json::to_value(d.diff.changed_cis).unwrap_or_default(),
        added_relations: serde_json::to_value(d.diff.added_relations).unwrap_or_default(),
        removed_relations: serde_json::to_value(d.diff.removed_relations).unwrap_or_default(),
    })
    .into_response_ok())
}

// ---- verification audits ----

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct VerificationQuery {
    /// CIs not verified for this many days are due (default 90).
    pub max_age_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct VerificationDueView {
    pub ci: CiRef,
    pub last_verified_at: Option<i64>,
    /// Absent when never verified.
    pub days_since: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/ci-verifications", tag = "cmdb", params(VerificationQuery),
    responses((status = 200, body = Vec<VerificationDueView>, description = "CIs due for a verification audit, never-verified first"), Unauthorized, Forbidden, InvalidQuery))]
async fn verification_due(State(s): State<AppState>, ApiUser(who): ApiUser, ApiQuery(q): ApiQuery<VerificationQuery>) -> ApiResponse {
    let v = s.app.verification_due(&who.principal, q.max_age_days.unwrap_or(90)).await?;
    let out: Vec<VerificationDueView> = v
        .into_iter()
        .map(|d| VerificationDueView { ci: d.ci.into(), last_verified_at: d.last_verified_at, days_since: d.days_since })
        .collect();
    Ok(axum::Json(out).into_response_ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_cmdb_endpoint_is_routed_and_documented() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        for path in [
            "/api/v1/cis",
            "/api/v1/cis/export.csv",
            "/api/v1/cis/{id}",
            "/api/v1/cis/{id}/transitions",
            "/api/v1/cis/{id}/verifications",
            "/api/v1/cis/{id}/relations",
            "/api/v1/relations/{id}",
            "/api/v1/cis/{id}/impact",
            "/api/v1/ci-classes",
            "/api/v1/baselines",
            "/api/v1/baselines/{id}/diff",
            "/api/v1/ci-verifications",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing from the OpenAPI document");
        }
        assert!(doc["paths"]["/api/v1/cis/{id}"]["patch"].is_object());
    }
}

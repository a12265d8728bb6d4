//! Configuration management pages (REQUIREMENTS §5): importing CIs and relations from CSV
//! with a column mapping or from iTop XML (a dry run lists bad rows by line), and the CI
//! classes administrators define with their typed attributes and hierarchy.

use super::import::{BadRowView, bad_views, message};
use super::problems::{locale_of, val};
use super::{ActionRow, Ctx, Field, Form, OrPage, SectionsPage, UiError, UiResult, attach_errors, form_of, render_status};
use crate::AppState;
use crate::auth::{CsrfForm, Identity, UiUser};
use crate::i18n::Tr;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use keel_app::AppError;
use keel_app::cmdb_import::{CiImportReport, CiMapping};
use keel_domain::FieldError;
use keel_domain::cmdb::{AttributeDef, AttributeType, CiClass};
use keel_store::cmdb::ClassRecord;

/// The mapping the CSV form starts with.
const EXAMPLE_MAPPING: &str = include_str!("../../../../docs/import/cis.toml");

use super::allow as staff;

// ---------------------------------------------------------------- import

#[derive(serde::Deserialize, Default, Clone)]
#[serde(default)]
pub struct ImportPost {
    /// `csv` or `itop`.
    format: String,
    mapping: String,
    content: String,
    xml: String,
    /// `check` (dry run) or `import`.
    mode: String,
}

#[derive(Template)]
#[template(path = "cmdb_import.html")]
pub struct ImportPage {
    pub ctx: Ctx,
    pub title: String,
    pub mapping: String,
    /// The key of the mapping's help text.
    pub mapping_help: &'static str,
    pub content: String,
    pub xml: String,
    pub error: Option<String>,
    /// Counts of the report, as label and number.
    pub report: Vec<(String, String)>,
    pub checked: bool,
    pub bad_rows: Vec<BadRowView>,
}

fn import_page(tr: &Tr, who: &Identity, f: &ImportPost) -> Result<ImportPage, UiError> {
    staff(tr, who, !who.principal.is_read_only())?;
    Ok(ImportPage {
        ctx: Ctx::new(tr, Some(who), "/cmdb/import", None),
        title: tr.t("cmdb-import-title"),
        mapping: if f.mapping.trim().is_empty() { EXAMPLE_MAPPING.to_string() } else { f.mapping.clone() },
        content: f.content.clone(),
        mapping_help: "cmdb-import-mapping-help",
        xml: f.xml.clone(),
        error: None,
        report: vec![],
        checked: false,
        bad_rows: vec![],
    })
}

pub async fn import_form(tr: Tr, UiUser(who): UiUser) -> UiResult {
    Ok(super::render(&import_page(&tr, &who, &ImportPost::default())?))
}

fn report_rows(tr: &Tr, r: &CiImportReport) -> Vec<(String, String)> {
    let mut v = vec![
        (tr.t("cmdb-import-cis"), r.cis.to_string()),
        (tr.t("cmdb-import-relations"), r.relations.to_string()),
        (tr.t("cmdb-import-imported-cis"), r.imported_cis.to_string()),
        (tr.t("cmdb-import-imported-relations"), r.imported_relations.to_string()),
    ];
    if !r.skipped.is_empty() {
        v.push((tr.t("cmdb-import-skipped"), r.skipped.iter().map(|(k, n)| format!("{k} ({n})")).collect::<Vec<_>>().join(", ")));
    }
    v
}

/// Checks (dry run) or imports the posted CSV or iTop XML; the page shows the report, and the
/// bad rows by line, with what was posted kept.
pub async fn import_post(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, CsrfForm(f): CsrfForm<ImportPost>) -> UiResult {
    let mut page = import_page(&tr, &who, &f)?;
    let dry_run = f.mode != "import";
    let r = if f.format == "itop" {
        state.app.import_itop(&who.principal, &[("upload.xml".to_string(), f.xml.clone())], dry_run).await
    } else {
        match CiMapping::from_toml(&f.mapping) {
            Ok(m) => state.app.import_cis_csv(&who.principal, f.content.as_bytes(), &m, dry_run).await,
            Err(e) => Err(e),
        }
    };
    let status = match r {
        Ok(rep) => {
            page.report = report_rows(&tr, &rep);
            page.checked = true;
            page.bad_rows = bad_views(&rep.bad_rows);
            if rep.ok() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY }
        }
        Err(e) => {
            page.error = Some(message(&tr, &e));
            crate::error::status_of(&e)
        }
    };
    Ok(render_status(status, &page))
}

// ---------------------------------------------------------------- classes

fn may_edit_classes(who: &Identity) -> bool {
    who.principal.is_admin() && !who.principal.is_read_only()
}

/// The CI classes with their parents and attribute counts.
pub async fn classes(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser, Query(q): Query<super::ListQuery>) -> UiResult {
    staff(&tr, &who, true)?;
    let list = state.app.list_ci_classes(&who.principal).await.or_page(&tr)?;
    let loc = locale_of(&tr);
    let mut p = SectionsPage::new(Ctx::new(&tr, Some(&who), "/cmdb/classes", q.flash.as_deref()), tr.t("cmdb-classes-title"));
    p.intro = tr.t("cmdb-classes-intro");
    if may_edit_classes(&who) {
        p.links.push(("/cmdb/classes/new".into(), tr.t("cmdb-class-new")));
    }
    p.columns =
        ["field-key", "field-name", "field-parent", "cmdb-class-attributes", "cmdb-class-shipped"].iter().map(|k| tr.t(k)).collect();
    p.rows = list
        .iter()
        .map(|c| ActionRow {
            href: format!("/cmdb/classes/{}", c.class.key),
            cells: vec![
                c.class.key.clone(),
                c.class.name(loc).to_string(),
                c.class.parent.clone().unwrap_or_default(),
                c.class.attributes.len().to_string(),
                tr.t(if c.shipped { "value-yes" } else { "value-no" }),
            ],
            actions: vec![],
        })
        .collect();
    Ok(p.show(&None))
}

/// One attribute row of the class form, as typed.
pub struct AttrRow {
    pub key: String,
    pub label_en: String,
    pub label_zh: String,
    pub kind: String,
    pub values: String,
    pub class: String,
    pub required: bool,
    pub unique: bool,
    /// A value for the existing CIs that have none (on edit, e.g. for a new required attribute).
    pub fill: String,
    pub error: Option<String>,
}

impl AttrRow {
    fn blank() -> AttrRow {
        AttrRow {
            key: String::new(),
            label_en: String::new(),
            label_zh: String::new(),
            kind: "text".into(),
            values: String::new(),
            class: String::new(),
            required: false,
            unique: false,
            fill: String::new(),
            error: None,
        }
    }

    fn of(a: &AttributeDef) -> AttrRow {
        let (values, class) = match &a.kind {
            AttributeType::Enum { values } => (values.join(", "), String::new()),
            AttributeType::Reference { class } => (String::new(), class.clone().unwrap_or_default()),
            _ => (String::new(), String::new()),
        };
        AttrRow {
            key: a.key.clone(),
            label_en: a.label_en.clone(),
            label_zh: a.label_zh.clone(),
            kind: a.kind.as_str().to_string(),
            values,
            class,
            required: a.required,
            unique: a.unique,
            fill: String::new(),
            error: None,
        }
    }
}

#[derive(Template)]
#[template(path = "cmdb_class.html")]
pub struct ClassPage {
    pub ctx: Ctx,
    pub title: String,
    pub action: String,
    pub version: Option<i64>,
    pub fields: Vec<Field>,
    pub rows: Vec<AttrRow>,
    /// Type names with their labels.
    pub types: Vec<(String, String)>,
    /// Class keys a reference may point at.
    pub classes: Vec<String>,
    pub inherited: String,
    pub errors: Vec<String>,
    pub editable: bool,
}

/// The posted class: its fields, and its attribute rows (rows left blank are dropped, so row
/// `i` is the class's attribute `i`).
fn posted(pairs: Vec<(String, String)>) -> (Form, Vec<AttrRow>) {
    let column = |name: &str| pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).collect::<Vec<_>>();
    let (keys, en, zh, kinds, values, classes) = (
        column("attr_key"),
        column("attr_label_en"),
        column("attr_label_zh"),
        column("attr_type"),
        column("attr_values"),
        column("attr_class"),
    );
    let fills = column("attr_fill");
    let (required, unique) = (column("attr_required"), column("attr_unique"));
    let at = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
    let rows = (0..keys.len())
        .map(|i| AttrRow {
            key: at(&keys, i),
            label_en: at(&en, i),
            label_zh: at(&zh, i),
            kind: at(&kinds, i),
            values: at(&values, i),
            class: at(&classes, i),
            required: required.contains(&i.to_string()),
            unique: unique.contains(&i.to_string()),
            fill: at(&fills, i),
            error: None,
        })
        .filter(|r| !(r.key.is_empty() && r.label_en.is_empty() && r.label_zh.is_empty()))
        .collect();
    (form_of(pairs.into_iter().filter(|(k, _)| !k.starts_with("attr_")).collect()), rows)
}

/// The class a form describes; an unknown type names its row.
fn class_from(key: &str, f: &Form, rows: &[AttrRow]) -> Result<CiClass, AppError> {
    let mut errors = vec![];
    let mut attributes = vec![];
    for (i, r) in rows.iter().enumerate() {
        let values: Vec<String> = r.values.split(',').map(str::to_string).collect();
        match AttributeType::from_parts(&r.kind, &values, Some(&r.class)) {
            Some(kind) => attributes.push(AttributeDef {
                key: r.key.clone(),
                label_en: r.label_en.clone(),
                label_zh: r.label_zh.clone(),
                kind,
                required: r.required,
                unique: r.unique,
            }),
            None => errors.push(FieldError::new(format!("attributes[{i}].type"), "invalid_choice", "no such attribute type")),
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let parent = val(f, "parent");
    Ok(CiClass {
        key: key.trim().to_string(),
        name_en: val(f, "name_en").trim().to_string(),
        name_zh: val(f, "name_zh").trim().to_string(),
        parent: Some(parent.trim().to_string()).filter(|p| !p.is_empty()),
        attributes,
    })
}

/// An attribute row's error. A refusal because of existing CIs says how many (the count leads
/// the message) and, for an attribute the class inherits (`attributes.<key>`), which one.
fn class_error(tr: &Tr, fe: &FieldError) -> String {
    let count = fe.message.split_whitespace().next().and_then(|n| n.parse::<usize>().ok());
    match count.filter(|_| fe.code.starts_with("existing_cis_")) {
        Some(n) => {
            let text = tr.t1(&format!("err-{}", fe.code.replace('_', "-")), "count", n);
            match fe.field.strip_prefix("attributes.") {
                Some(key) => format!("{key}: {text}"),
                None => text,
            }
        }
        None => super::translate_field_error(tr, fe.code, &fe.message),
    }
}

/// The class form: a new class (`existing` None) or one to edit, as typed after a refusal.
async fn class_page(
    state: &AppState,
    tr: &Tr,
    who: &Identity,
    existing: Option<&ClassRecord>,
    typed: Option<(Form, Vec<AttrRow>)>,
    err: Option<AppError>,
    flash: Option<&str>,
) -> UiResult {
    let all = state.app.list_ci_classes(&who.principal).await.or_page(tr)?;
    let editable = may_edit_classes(who);
    let (f, mut rows) = typed.unwrap_or_else(|| match existing {
        Some(c) => {
            let f: Form = [("key", c.class.key.clone()), ("name_en", c.class.name_en.clone()), ("name_zh", c.class.name_zh.clone())]
                .into_iter()
                .chain(c.class.parent.clone().map(|p| ("parent", p)))
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            (f, c.class.attributes.iter().map(AttrRow::of).collect())
        }
        None => (Form::new(), vec![]),
    });
    if editable {
        rows.extend((0..3).map(|_| AttrRow::blank()));
    }
    let own = existing.map(|c| c.class.key.as_str()).unwrap_or_default();
    let parents = all.iter().filter(|c| c.class.key != own).map(|c| (c.class.key.clone(), c.class.name(locale_of(tr)).to_string()));
    let mut fields = vec![];
    if existing.is_none() {
        fields.push(Field::new(tr, "key", "text", val(&f, "key")).required().help(tr.t("cmdb-class-key-help")));
    }
    fields.extend([
        Field::new(tr, "name_en", "text", val(&f, "name_en")).required(),
        Field::new(tr, "name_zh", "text", val(&f, "name_zh")).required(),
        Field::new(tr, "parent", "select", "").options(parents, &[val(&f, "parent")]),
    ]);
    let mut errors = vec![];
    if let Some(e) = &err {
        let mut loose = AppError::Validation(vec![]);
        if let AppError::Validation(list) = e {
            let mut rest = vec![];
            for fe in list {
                let row = fe.field.strip_prefix("attributes[").and_then(|s| s.split(']').next()).and_then(|i| i.parse::<usize>().ok());
                match row.and_then(|i| rows.get_mut(i)) {
                    Some(r) if r.error.is_none() => r.error = Some(class_error(tr, fe)),
                    Some(_) => {}
                    None if fe.code.starts_with("existing_cis_") => errors.push(class_error(tr, fe)),
                    None => rest.push(fe.clone()),
                }
            }
            loose = AppError::Validation(rest);
        }
        errors.extend(attach_errors(tr, &mut fields, if matches!(e, AppError::Validation(_)) { &loose } else { e }));
    }
    let inherited = match val(&f, "parent").as_str() {
        "" => String::new(),
        p => state.app.class_registry().await.or_page(tr)?.attributes(p).iter().map(|(_, a)| a.key.clone()).collect::<Vec<_>>().join(", "),
    };
    let page = ClassPage {
        ctx: Ctx::new(tr, Some(who), "/cmdb/classes", flash),
        title: existing.map_or_else(|| tr.t("cmdb-class-new"), |c| c.class.name(locale_of(tr)).to_string()),
        action: existing.map_or_else(|| "/cmdb/classes".to_string(), |c| format!("/cmdb/classes/{}", c.class.key)),
        version: existing.map(|c| c.version),
        fields,
        rows,
        types: AttributeType::NAMES.iter().map(|n| (n.to_string(), tr.t(&format!("cmdb-attr-type-{}", n.replace('_', "-"))))).collect(),
        classes: all.iter().map(|c| c.class.key.clone()).collect(),
        inherited,
        errors,
        editable,
    };
    Ok(render_status(super::status_for(&err), &page))
}

pub async fn class_new(State(state): State<AppState>, tr: Tr, UiUser(who): UiUser) -> UiResult {
    staff(&tr, &who, may_edit_classes(&who))?;
    class_page(&state, &tr, &who, None, None, None, None).await
}

async fn find_class(state: &AppState, tr: &Tr, who: &Identity, key: &str) -> Result<ClassRecord, UiError> {
    let all = state.app.list_ci_classes(&who.principal).await.or_page(tr)?;
    all.into_iter().find(|c| c.class.key == key).ok_or_else(|| UiError(tr.clone(), AppError::NotFound))
}

pub async fn class_show(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(key): Path<String>,
    Query(q): Query<super::ListQuery>,
) -> UiResult {
    staff(&tr, &who, true)?;
    let c = find_class(&state, &tr, &who, &key).await?;
    class_page(&state, &tr, &who, Some(&c), None, None, q.flash.as_deref()).await
}

pub async fn class_create(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    staff(&tr, &who, may_edit_classes(&who))?;
    let (f, rows) = posted(pairs);
    let r = match class_from(&val(&f, "key"), &f, &rows) {
        Ok(c) => state.app.create_ci_class(&who.principal, c).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(c) => Ok(super::see_other(&format!("/cmdb/classes/{}", c.class.key), "created")),
        Err(e) => class_page(&state, &tr, &who, None, Some((f, rows)), Some(e), None).await,
    }
}

pub async fn class_update(
    State(state): State<AppState>,
    tr: Tr,
    UiUser(who): UiUser,
    Path(key): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> UiResult {
    staff(&tr, &who, may_edit_classes(&who))?;
    let c = find_class(&state, &tr, &who, &key).await?;
    let (f, rows) = posted(pairs);
    let version = super::expected_version(&f.get("_version").cloned()).unwrap_or(c.version);
    let fill: serde_json::Map<String, serde_json::Value> =
        rows.iter().filter(|r| !r.fill.is_empty()).map(|r| (r.key.clone(), serde_json::Value::String(r.fill.clone()))).collect();
    let r = match class_from(&key, &f, &rows) {
        Ok(class) => state.app.update_ci_class(&who.principal, class, version, &fill).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => Ok(super::see_other(&format!("/cmdb/classes/{key}"), "saved")),
        Err(e) => class_page(&state, &tr, &who, Some(&c), Some((f, rows)), Some(e), None).await,
    }
}

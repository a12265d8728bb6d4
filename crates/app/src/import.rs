//! Service desk and incident management (REQUIREMENTS §4): importing incidents from the CSV
//! exports of other ITSM tools (ServiceNow, iTop, GLPI, Zammad, helpdesk mail exports).
//!
//! A TOML mapping says which column feeds which field, how source values translate
//! (`"Awaiting User Info" = "pending/waiting_for_customer"`), which date formats and missing
//! markers the file uses, and whether rows are snapshots of an event log to be grouped by
//! ticket number (the last snapshot wins). A dry run reports every bad row with its line
//! number and reason and writes nothing; a real import writes every ticket in one
//! transaction, with audit entries and outbox messages, or nothing at all.

use crate::incidents::{actor_str, audit_of, matrix_in, state_of};
use crate::{App, AppError, Principal, Result};
use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use keel_domain::audit::AuditAction;
use keel_domain::identity::AccountKind;
use keel_domain::incident::{
    Actor, Channel, Impact, PendingReason, PriorityMatrix, ResolutionCode, Status, TicketKind, TicketNumber, Urgency,
};
use keel_domain::process::Process;
use keel_store::incidents::{self as store, StatusLogRow, TicketRecord};
use keel_store::{accounts, directory, imports, kernel};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The fields a mapping may fill.
pub const FIELDS: [&str; 18] = [
    "external_ref",
    "title",
    "description",
    "kind",
    "channel",
    "status",
    "pending_reason",
    "impact",
    "urgency",
    "category",
    "team",
    "reporter_email",
    "agent_email",
    "resolution_code",
    "resolution_notes",
    "opened_at",
    "resolved_at",
    "closed_at",
];

/// How a CSV file maps onto tickets; read from TOML (see `docs/import/`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub source: SourceFormat,
    /// Field → column name, or a template such as `"{category} / {subcategory}"`.
    pub fields: BTreeMap<String, String>,
    /// Field → (source value → Keel value); `"*"` catches every other value.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Field → value used when the source has none.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFormat {
    /// Names the source system; external references are unique per source.
    pub name: String,
    #[serde(default = "comma")]
    pub delimiter: String,
    /// Cell values that mean "no value" (e.g. `?`); an empty cell always does.
    #[serde(default)]
    pub missing: Vec<String>,
    /// chrono formats tried in order, e.g. `%d/%m/%Y %H:%M`.
    #[serde(default = "iso_dates")]
    pub date_formats: Vec<String>,
    /// Time zone of the dates in the file (IANA name), default UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// For event logs: the column identifying the ticket; its rows are grouped and the last
    /// snapshot kept.
    #[serde(default)]
    pub group_by: Option<String>,
    /// Orders the snapshots of one ticket (numeric, e.g. `sys_mod_count`); file order otherwise.
    #[serde(default)]
    pub order_by: Option<String>,
    /// Creates categories named in the file that do not exist yet.
    #[serde(default)]
    pub create_categories: bool,
}

fn comma() -> String {
    ",".into()
}

fn iso_dates() -> Vec<String> {
    vec!["%Y-%m-%d %H:%M:%S".into(), "%Y-%m-%dT%H:%M:%S".into(), "%Y-%m-%d %H:%M".into(), "%Y-%m-%d".into()]
}

impl Mapping {
    pub fn from_toml(text: &str) -> Result<Mapping> {
        let m: Mapping = toml::from_str(text).map_err(|e| AppError::field("mapping", "invalid_mapping", e.to_string()))?;
        if let Some(f) = m.fields.keys().chain(m.values.keys()).chain(m.defaults.keys()).find(|f| !FIELDS.contains(&f.as_str())) {
            return Err(AppError::field("mapping", "invalid_mapping", format!("unknown field '{f}' (known: {})", FIELDS.join(", "))));
        }
        for required in ["external_ref", "title"] {
            if !m.fields.contains_key(required) {
                return Err(AppError::field("mapping", "invalid_mapping", format!("[fields] must map '{required}'")));
            }
        }
        if m.source.delimiter.len() != 1 {
            return Err(AppError::field("mapping", "invalid_mapping", "the delimiter must be one ASCII character"));
        }
        if let Some(tz) = &m.source.time_zone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(AppError::field("mapping", "invalid_mapping", format!("unknown time zone '{tz}'")));
        }
        Ok(m)
    }
}

/// One row the import refuses, with the line of the file it starts on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadRow {
    pub line: u64,
    pub external_ref: Option<String>,
    pub field: String,
    pub reason: String,
}

/// What an import found (dry run) or did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Data rows read (event-log snapshots included).
    pub rows: u64,
    /// Tickets the rows make.
    pub tickets: u64,
    pub bad_rows: Vec<BadRow>,
    /// Tickets written: 0 on a dry run or when any row is bad.
    pub imported: u64,
    /// Categories the import creates (or would create, on a dry run).
    pub new_categories: Vec<String>,
    /// `(external reference, Keel number)` of the tickets written.
    pub numbers: Vec<(String, String)>,
}

impl ImportReport {
    pub fn ok(&self) -> bool {
        self.bad_rows.is_empty()
    }
}

/// Progress of an import, reported while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Rows read so far.
    Reading(u64),
    /// Tickets checked, of the total.
    Checking(u64, u64),
    /// Tickets written, of the total.
    Writing(u64, u64),
}

/// A ticket ready to be written: the row, with what only the write decides left empty.
struct Prepared {
    external_ref: String,
    record: TicketRecord,
    new_category: Option<String>,
    log: Vec<(Option<Status>, Status, i64)>,
}

pub(crate) struct Row<'a> {
    pub(crate) line: u64,
    pub(crate) cells: Vec<String>,
    pub(crate) headers: &'a HashMap<String, usize>,
}

impl Row<'_> {
    fn cell(&self, column: &str, missing: &[String]) -> Option<String> {
        if column == LINE_COLUMN {
            return Some(self.line.to_string());
        }
        let v = self.cells.get(*self.headers.get(column)?)?.trim();
        if v.is_empty() || missing.iter().any(|m| m == v) { None } else { Some(v.to_string()) }
    }
}

/// A pseudo-column holding the row's line number, for files without ticket numbers.
pub const LINE_COLUMN: &str = "_line";

/// A category code made of a source value: `Category 55` → `CATEGORY-55`.
pub fn category_code(v: &str) -> String {
    let mut out = String::new();
    for ch in v.trim().chars() {
        if ch.is_ascii_alphanumeric() || ch == '_' {
            out.push(ch.to_ascii_uppercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(32).collect()
}

/// Columns named by a field expression: the column itself, or each `{name}` of a template.
fn columns_of(expr: &str) -> Vec<String> {
    if expr.contains("||") {
        return expr.split("||").flat_map(|e| columns_of(e.trim())).collect();
    }
    if !expr.contains('{') {
        return vec![expr.to_string()];
    }
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else { break };
        out.push(rest[start + 1..start + len].to_string());
        rest = &rest[start + len + 1..];
    }
    out
}

pub(crate) struct Reader<'m> {
    pub(crate) m: &'m Mapping,
    pub(crate) tz: chrono_tz::Tz,
}

impl Reader<'_> {
    /// The raw source value of a field (before value maps and defaults).
    fn raw(&self, row: &Row, field: &str) -> Option<String> {
        let expr = self.m.fields.get(field)?;
        expr.split("||").find_map(|e| self.eval(row, e.trim()))
    }

    /// A column's value, or a template filled in (`None` when every column in it is missing).
    fn eval(&self, row: &Row, expr: &str) -> Option<String> {
        if !expr.contains('{') {
            return row.cell(expr, &self.m.source.missing);
        }
        let mut out = expr.to_string();
        let mut any = false;
        for c in columns_of(expr) {
            let v = row.cell(&c, &self.m.source.missing);
            any |= v.is_some();
            out = out.replace(&format!("{{{c}}}"), v.as_deref().unwrap_or(""));
        }
        let out = out.trim().to_string();
        (any && !out.is_empty()).then_some(out)
    }

    /// The Keel value of a field: the raw value through its value map, else the default.
    pub(crate) fn value(&self, row: &Row, field: &str) -> std::result::Result<Option<String>, String> {
        let raw = self.raw(row, field);
        let mapped = match (raw, self.m.values.get(field)) {
            (Some(r), Some(map)) => match map.get(&r).or_else(|| map.get("*")) {
                Some(v) if v.is_empty() => None,
                Some(v) => Some(v.clone()),
                None => return Err(format!("'{r}' is not in the [values.{field}] map")),
            },
            (r, _) => r,
        };
        Ok(mapped.or_else(|| self.m.defaults.get(field).cloned()))
    }

    fn date(&self, row: &Row, field: &str) -> std::result::Result<Option<i64>, String> {
        let Some(v) = self.value(row, field)? else { return Ok(None) };
        for f in &self.m.source.date_formats {
            let naive = NaiveDateTime::parse_from_str(&v, f)
                .ok()
                .or_else(|| NaiveDate::parse_from_str(&v, f).ok().and_then(|d| d.and_hms_opt(0, 0, 0)));
            if let Some(n) = naive {
                return match self.tz.from_local_datetime(&n).earliest() {
                    Some(t) => Ok(Some(t.timestamp_millis())),
                    None => Err(format!("'{v}' does not exist in {}", self.tz)),
                };
            }
        }
        Err(format!("'{v}' matches none of the date formats {:?}", self.m.source.date_formats))
    }
}

/// Marks a reference seen earlier in the same file (in `Lookups::imported`).
const IN_THIS_FILE: &str = "\u{0}line ";

/// What the checks look up once per import.
struct Lookups {
    categories: HashMap<String, String>,
    teams: HashMap<String, String>,
    imported: HashMap<String, String>,
    matrix: PriorityMatrix,
    default_reporter: String,
    /// When a row gives no opening date.
    now: i64,
    reporters: HashMap<String, Option<String>>,
    agents: HashMap<String, Option<String>>,
}

pub(crate) fn bad(line: u64, external_ref: Option<&str>, field: &str, reason: impl Into<String>) -> BadRow {
    BadRow { line, external_ref: external_ref.map(String::from), field: field.into(), reason: reason.into() }
}

fn parse_enum<T>(
    line: u64,
    xref: &str,
    field: &str,
    v: &str,
    parse: fn(&str) -> Option<T>,
    known: &[&str],
) -> std::result::Result<T, BadRow> {
    parse(v).ok_or_else(|| bad(line, Some(xref), field, format!("'{v}' is not one of {}", known.join(", "))))
}

impl App {
    /// Reads, checks and (unless `dry_run`) imports incidents from a CSV file into a service
    /// project, all or nothing. The actor needs to be staff who may log tickets on the
    /// project; they report the tickets unless the mapping names a reporter.
    pub async fn import_incidents(
        &self,
        actor: &Principal,
        project_id: &str,
        csv: &[u8],
        mapping: &Mapping,
        dry_run: bool,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<ImportReport> {
        if !actor.is_staff() || actor.is_read_only() {
            return Err(AppError::Forbidden);
        }
        let mut c = self.read().await?;
        let project = directory::get_project(&mut c, project_id.trim()).await?;
        let project = match project {
            Some(p) => Some(p),
            None => {
                let code = project_id.trim().to_string();
                let id: Option<String> = sqlx::query_scalar("SELECT id FROM projects WHERE code = $1")
                    .bind(code)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(keel_store::StoreError::from)?;
                match id {
                    Some(id) => directory::get_project(&mut c, &id).await?,
                    None => None,
                }
            }
        };
        let project = project.filter(|p| actor.can_see_project(&p.id, Some(&p.organization_id))).ok_or(AppError::NotFound)?;
        if project.status != "active" {
            return Err(AppError::field("project_id", "project_closed", "the service project is closed"));
        }
        self.require_process(&project.id, Process::Incident).await?;

        let mut report = ImportReport::default();
        let (headers, tickets, mut bad_rows) = read_rows(csv, mapping, &mut report, progress)?;
        let categories = store::list_categories(&mut c).await?.into_iter().filter(|k| k.active).map(|k| (k.code, k.id)).collect();
        let mut lk = Lookups {
            categories,
            teams: imports::active_teams_by_name(&mut c).await?,
            imported: imports::external_refs(&mut c, &mapping.source.name).await?,
            matrix: matrix_in(&mut c).await?,
            default_reporter: actor.user_id.clone(),
            now: self.now(),
            reporters: HashMap::new(),
            agents: HashMap::new(),
        };
        let reader = Reader { m: mapping, tz: mapping.source.time_zone.as_deref().unwrap_or("UTC").parse().unwrap_or(chrono_tz::UTC) };
        let mut prepared = Vec::new();
        let total = tickets.len() as u64;
        report.tickets = total;
        for (i, (cells, line)) in tickets.into_iter().enumerate() {
            let row = Row { line, cells, headers: &headers };
            match prepare(&reader, &row, &project.id, &project.organization_id, &mut lk, &mut c).await? {
                Ok(p) => prepared.push(p),
                Err(b) => bad_rows.push(b),
            }
            if i.is_multiple_of(500) {
                progress(Progress::Checking(i as u64, total));
            }
        }
        progress(Progress::Checking(total, total));
        drop(c);
        bad_rows.sort_by_key(|b| b.line);
        report.bad_rows = bad_rows;
        let mut new_categories: Vec<String> = prepared.iter().filter_map(|p| p.new_category.clone()).collect();
        new_categories.sort();
        new_categories.dedup();
        report.new_categories = new_categories;
        if dry_run || !report.ok() {
            return Ok(report);
        }

        let mut w = self.write(actor).await?;
        let mut category_ids = HashMap::new();
        for code in &report.new_categories {
            let rec = store::CategoryRecord {
                id: keel_store::new_id(),
                parent_id: None,
                code: code.clone(),
                name: code.clone(),
                description: Some(format!("imported from {}", mapping.source.name)),
                active: true,
                sort_order: 0,
                created_at: w.now,
                updated_at: w.now,
                version: 1,
            };
            store::insert_category(&mut w.tx, &rec).await?;
            category_ids.insert(code.clone(), rec.id.clone());
            w.record("ticket_category", &rec.id, AuditAction::Create, None, Some(&crate::writer::snapshot(&rec))).await?;
        }
        for (i, mut p) in prepared.into_iter().enumerate() {
            if let Some(code) = &p.new_category {
                p.record.category_id = category_ids.get(code).cloned();
            }
            let kind = TicketKind::parse(&p.record.kind).unwrap_or(TicketKind::Incident);
            let seq = kernel::next_counter(&mut w.tx, kind.prefix()).await?;
            let number = TicketNumber::new(kind, u64::try_from(seq).unwrap_or(1)).ok_or_else(|| AppError::Internal("counter".into()))?;
            p.record.number = number.to_string();
            p.record.id = keel_store::new_id();
            p.record.created_by = actor.user_id.clone();
            store::insert_ticket(&mut w.tx, &p.record).await?;
            for (from, to, at) in &p.log {
                let pending = if *to == Status::Pending { p.record.pending_reason.as_deref().and_then(PendingReason::parse) } else { None };
                let entry = StatusLogRow {
                    seq: 0,
                    at: *at,
                    from_status: from.map(|s| s.as_str().to_string()),
                    to_status: to.as_str().to_string(),
                    pending_reason: pending.map(|r| r.as_str().to_string()),
                    sla_status: keel_domain::incident::sla_status(*to, pending).to_string(),
                    action: from.map(|_| "import".to_string()),
                    actor_id: actor.user_id.clone(),
                };
                store::append_status_log(&mut w.tx, &p.record.id, &entry).await?;
            }
            store::append_priority_log(&mut w.tx, &p.record.id, p.record.created_at, &p.record.priority, &actor.user_id).await?;
            store::add_watcher(&mut w.tx, &p.record.id, &p.record.reporter_id, w.now).await?;
            imports::insert_external_ref(&mut w.tx, &p.record.id, &mapping.source.name, &p.external_ref, w.now).await?;
            let mut after = audit_of(&p.record);
            if let Some(o) = after.as_object_mut() {
                o.insert("imported_from".into(), serde_json::json!({ "source": mapping.source.name, "external_ref": p.external_ref }));
            }
            w.record("ticket", &p.record.id, AuditAction::Create, None, Some(&after)).await?;
            report.numbers.push((p.external_ref, p.record.number));
            if i.is_multiple_of(200) {
                progress(Progress::Writing(i as u64, total));
            }
        }
        w.commit().await?;
        report.imported = total;
        progress(Progress::Writing(total, total));
        Ok(report)
    }
}

pub(crate) type Headers = HashMap<String, usize>;
/// The cells of one ticket's row and the line it starts on.
pub(crate) type TicketRow = (Vec<String>, u64);

/// Reads the file into one row per ticket (the last snapshot of each, for event logs).
/// File-level faults (broken quoting, wrong encoding, missing columns) are bad rows too.
pub(crate) fn read_rows(
    csv: &[u8],
    m: &Mapping,
    report: &mut ImportReport,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(Headers, Vec<TicketRow>, Vec<BadRow>)> {
    let csv = csv.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(csv);
    let mut rd = csv::ReaderBuilder::new().delimiter(m.source.delimiter.as_bytes()[0]).flexible(true).from_reader(csv);
    let mut bad_rows = Vec::new();
    let headers = match rd.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            bad_rows.push(bad(1, None, "file", format!("cannot read the header: {e}")));
            return Ok((Headers::new(), vec![], bad_rows));
        }
    };
    let headers: Vec<String> = headers.iter().map(|h| String::from_utf8_lossy(h).trim().to_string()).collect();
    let index: Headers = headers.iter().enumerate().map(|(i, h)| (h.clone(), i)).collect();
    let mut needed: Vec<String> = m.fields.values().flat_map(|e| columns_of(e)).collect();
    needed.extend(m.source.group_by.iter().cloned());
    needed.extend(m.source.order_by.iter().cloned());
    let missing: Vec<&String> = needed.iter().filter(|c| !index.contains_key(*c) && *c != LINE_COLUMN).collect();
    if !missing.is_empty() {
        let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        bad_rows.push(bad(1, None, "file", format!("the header lacks the column(s) {}", list.join(", "))));
        return Ok((Headers::new(), vec![], bad_rows));
    }
    let group_col = m.source.group_by.as_ref().and_then(|c| index.get(c).copied());
    let order_col = m.source.order_by.as_ref().and_then(|c| index.get(c).copied());
    let mut order: Vec<String> = Vec::new();
    let mut kept: HashMap<String, (f64, u64, Vec<String>)> = HashMap::new();
    let mut record = csv::ByteRecord::new();
    let mut n = 0u64;
    // Lines are counted from byte offsets: on CRLF files the reader stops before the `\n` and
    // its own count is off by one.
    let (mut seen_byte, mut seen_line) = (0usize, 1u64);
    let mut line_at = |byte: u64| {
        let mut byte = usize::try_from(byte).unwrap_or(usize::MAX).min(csv.len());
        while byte < csv.len() && matches!(csv[byte], b'\r' | b'\n') {
            byte += 1;
        }
        if byte >= seen_byte {
            seen_line += csv[seen_byte..byte].iter().filter(|b| **b == b'\n').count() as u64;
            seen_byte = byte;
        }
        seen_line
    };
    loop {
        let line = line_at(rd.position().byte());
        match rd.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| line_at(p.byte())).unwrap_or(line);
                bad_rows.push(bad(line, None, "file", format!("broken CSV: {e}")));
                break;
            }
        }
        n += 1;
        if record.len() != headers.len() {
            bad_rows.push(bad(
                line,
                None,
                "row",
                format!("{} values where the header has {} columns (check the quoting)", record.len(), headers.len()),
            ));
            continue;
        }
        let mut cells = Vec::with_capacity(record.len());
        let mut utf8 = true;
        for f in record.iter() {
            match std::str::from_utf8(f) {
                Ok(s) => cells.push(s.to_string()),
                Err(_) => {
                    utf8 = false;
                    break;
                }
            }
        }
        if !utf8 {
            bad_rows.push(bad(line, None, "row", "the text is not UTF-8 (GBK or another encoding?): save the file as UTF-8"));
            continue;
        }
        let key = match group_col {
            Some(g) => cells[g].trim().to_string(),
            None => format!("#{n}"),
        };
        let rank = match order_col {
            Some(o) => cells[o].trim().parse::<f64>().unwrap_or(f64::MIN),
            None => n as f64,
        };
        match kept.get_mut(&key) {
            Some(k) => {
                if rank >= k.0 {
                    *k = (rank, line, cells);
                }
            }
            None => {
                order.push(key.clone());
                kept.insert(key, (rank, line, cells));
            }
        }
        if n.is_multiple_of(5000) {
            progress(Progress::Reading(n));
        }
    }
    report.rows = n;
    progress(Progress::Reading(n));
    let out = order.into_iter().filter_map(|k| kept.remove(&k)).map(|(_, line, cells)| (cells, line)).collect::<Vec<_>>();
    Ok((index, out, bad_rows))
}

/// Checks one ticket's row and builds its record; `Err` is the row's first fault.
async fn prepare(
    r: &Reader<'_>,
    row: &Row<'_>,
    project_id: &str,
    organization_id: &str,
    lk: &mut Lookups,
    conn: &mut sqlx::AnyConnection,
) -> Result<std::result::Result<Prepared, BadRow>> {
    let line = row.line;
    let get = |field: &str| r.value(row, field).map_err(|e| bad(line, None, field, e));
    let xref = match get("external_ref") {
        Ok(Some(x)) => x,
        Ok(None) => return Ok(Err(bad(line, None, "external_ref", "no ticket number"))),
        Err(b) => return Ok(Err(b)),
    };
    if let Some(number) = lk.imported.get(&xref) {
        let reason = match number.strip_prefix(IN_THIS_FILE) {
            Some(first) => format!("appears twice in the file (first on line {first})"),
            None => format!("already imported as {number}"),
        };
        return Ok(Err(bad(line, Some(&xref), "external_ref", reason)));
    }
    let out = (|| -> std::result::Result<Prepared, BadRow> {
        let with_ref = |mut b: BadRow| {
            b.external_ref = Some(xref.clone());
            b
        };
        let text = |field: &str| get(field).map_err(with_ref);
        let date = |field: &str| r.date(row, field).map_err(|e| bad(line, Some(&xref), field, e));
        let title = text("title")?.ok_or_else(|| bad(line, Some(&xref), "title", "no title"))?;
        let title: String = title.chars().take(200).collect();
        let description = text("description")?;
        let kind_s = text("kind")?.unwrap_or_else(|| "incident".into());
        let kind = parse_enum(line, &xref, "kind", &kind_s, TicketKind::parse, &["incident", "service_request"])?;
        let channel_s = text("channel")?.unwrap_or_else(|| "api".into());
        let channel = parse_enum(line, &xref, "channel", &channel_s, Channel::parse, &["portal", "email", "phone", "api", "monitoring"])?;
        let impact_s = text("impact")?.unwrap_or_else(|| "medium".into());
        let impact = parse_enum(line, &xref, "impact", &impact_s, Impact::parse, &["high", "medium", "low"])?;
        let urgency_s = text("urgency")?.unwrap_or_else(|| "medium".into());
        let urgency = parse_enum(line, &xref, "urgency", &urgency_s, Urgency::parse, &["high", "medium", "low"])?;
        let status_s = text("status")?.unwrap_or_else(|| "new".into());
        let (status_s, pending_s) = match status_s.split_once('/') {
            Some((s, p)) => (s.to_string(), Some(p.to_string())),
            None => (status_s, None),
        };
        let status = parse_enum(
            line,
            &xref,
            "status",
            &status_s,
            Status::parse,
            &["new", "assigned", "in_progress", "pending/<reason>", "resolved", "closed"],
        )?;
        let pending = match (status, pending_s.or(text("pending_reason")?)) {
            (Status::Pending, p) => Some(parse_enum(
                line,
                &xref,
                "pending_reason",
                p.as_deref().unwrap_or("other"),
                PendingReason::parse,
                &["waiting_for_customer", "waiting_for_supplier", "waiting_for_change", "other"],
            )?),
            _ => None,
        };
        let opened = date("opened_at")?.unwrap_or(lk.now);
        let resolved_at = date("resolved_at")?;
        let closed_at = date("closed_at")?;
        let needs_resolution = matches!(status, Status::Resolved | Status::Closed);
        let resolution = match (needs_resolution, text("resolution_code")?) {
            (true, Some(code)) => Some(parse_enum(
                line,
                &xref,
                "resolution_code",
                &code,
                ResolutionCode::parse,
                &[
                    "solved",
                    "workaround",
                    "fulfilled",
                    "advice_given",
                    "no_fault_found",
                    "resolved_by_change",
                    "resolved_by_supplier",
                    "resolved_by_problem",
                ],
            )?),
            (true, None) => {
                return Err(bad(line, Some(&xref), "resolution_code", format!("a {} ticket needs a resolution code", status.as_str())));
            }
            (false, _) => None,
        };
        if let Some(code) = resolution
            && !code.applies_to(kind)
        {
            return Err(bad(line, Some(&xref), "resolution_code", format!("'{}' does not apply to a {}", code.as_str(), kind.as_str())));
        }
        let resolved = match (needs_resolution, resolved_at, closed_at) {
            (true, Some(r), _) => Some(r),
            (true, None, Some(c)) => Some(c),
            (true, None, None) => return Err(bad(line, Some(&xref), "resolved_at", "a resolved ticket needs its resolution date")),
            _ => None,
        };
        if let Some(rs) = resolved
            && rs < opened
        {
            return Err(bad(line, Some(&xref), "resolved_at", "resolved before it was opened"));
        }
        let closed = match (status, closed_at) {
            (Status::Closed, Some(c)) => Some(c),
            (Status::Closed, None) => return Err(bad(line, Some(&xref), "closed_at", "a closed ticket needs its closing date")),
            _ => None,
        };
        if let (Some(c), Some(rs)) = (closed, resolved)
            && c < rs
        {
            return Err(bad(line, Some(&xref), "closed_at", "closed before it was resolved"));
        }
        let team_id = match text("team")? {
            Some(name) => {
                Some(lk.teams.get(&name).cloned().ok_or_else(|| bad(line, Some(&xref), "team", format!("no active team named '{name}'")))?)
            }
            None => None,
        };
        if (status.requires_assignment() || status == Status::Closed) && team_id.is_none() {
            return Err(bad(line, Some(&xref), "team", format!("a {} ticket needs a team", status.as_str())));
        }
        let (category_id, new_category) = match text("category")? {
            Some(value) => match lk.categories.get(&value).or_else(|| lk.categories.get(&category_code(&value))) {
                Some(id) => (Some(id.clone()), None),
                None if r.m.source.create_categories && !category_code(&value).is_empty() => (None, Some(category_code(&value))),
                None => return Err(bad(line, Some(&xref), "category", format!("no active category with code '{value}'"))),
            },
            None => (None, None),
        };
        let changed_at = closed.or(resolved).unwrap_or(opened);
        let system = actor_str(&Actor::System);
        let mut rec = TicketRecord {
            kind: kind.as_str().into(),
            project_id: project_id.into(),
            organization_id: organization_id.into(),
            title,
            description,
            channel: channel.as_str().into(),
            category_id,
            impact: impact.as_str().into(),
            urgency: urgency.as_str().into(),
            priority: lk.matrix.priority(impact, urgency).as_str().into(),
            status: status.as_str().into(),
            pending_reason: pending.map(|p| p.as_str().into()),
            team_id,
            resolution_code: resolution.map(|c| c.as_str().into()),
            resolution_notes: resolution.map(|_| text("resolution_notes").ok().flatten().unwrap_or_default()),
            resolved_by: resolution.map(|_| system.clone()),
            closure_kind: closed.map(|_| "closed_by_staff".into()),
            closed_by: closed.map(|_| system.clone()),
            status_changed_at: changed_at,
            resolved_at: resolved,
            closed_at: closed,
            created_at: opened,
            updated_at: changed_at,
            version: 1,
            number: TicketNumber::new(kind, 1).map(|n| n.to_string()).unwrap_or_default(),
            ..Default::default()
        };
        let mut log = vec![(None, Status::New, opened)];
        match status {
            Status::New => {}
            Status::Closed => {
                log.push((Some(Status::New), Status::Resolved, resolved.unwrap_or(changed_at)));
                log.push((Some(Status::Resolved), Status::Closed, changed_at));
            }
            s => log.push((Some(Status::New), s, changed_at)),
        }
        match status {
            Status::Assigned => rec.assigned_at = Some(changed_at),
            Status::InProgress => rec.started_at = Some(changed_at),
            Status::Pending => rec.pending_at = Some(changed_at),
            _ => {}
        }
        Ok(Prepared { external_ref: xref.clone(), record: rec, new_category, log })
    })();
    let mut p = match out {
        Ok(p) => p,
        Err(b) => return Ok(Err(b)),
    };
    // The reporter: a person named by the row, else the one importing.
    let reporter = match r.value(row, "reporter_email") {
        Err(e) => return Ok(Err(bad(line, Some(&xref), "reporter_email", e))),
        Ok(None) if lk.default_reporter == Principal::system().user_id => None,
        Ok(None) => Some(lk.default_reporter.clone()),
        Ok(Some(email)) => {
            if !lk.reporters.contains_key(&email) {
                let u = accounts::get_user_by_email(conn, &email).await?;
                let ok = u.filter(|u| {
                    u.active && (u.kind == AccountKind::Staff.as_str() || u.organization_id.as_deref() == Some(organization_id))
                });
                lk.reporters.insert(email.clone(), ok.map(|u| u.id));
            }
            lk.reporters[&email].clone()
        }
    };
    let Some(reporter) = reporter else {
        return Ok(Err(bad(line, Some(&xref), "reporter_email", "no active person of this customer has this e-mail")));
    };
    p.record.reporter_id = reporter;
    match r.value(row, "agent_email") {
        Err(e) => return Ok(Err(bad(line, Some(&xref), "agent_email", e))),
        Ok(None) => {}
        Ok(Some(email)) => {
            if !lk.agents.contains_key(&email) {
                let u = accounts::get_user_by_email(conn, &email).await?;
                let ok = u.filter(|u| u.active && u.kind == AccountKind::Staff.as_str());
                lk.agents.insert(email.clone(), ok.map(|u| u.id));
            }
            match &lk.agents[&email] {
                Some(id) if p.record.status != Status::New.as_str() => p.record.agent_id = Some(id.clone()),
                Some(_) => {}
                None => return Ok(Err(bad(line, Some(&xref), "agent_email", "no active staff member has this e-mail"))),
            }
        }
    }
    if let Err(e) = state_of(&p.record).and_then(|s| s.check_invariants().map_err(AppError::from)) {
        return Ok(Err(bad(line, Some(&xref), "status", e.to_string())));
    }
    lk.imported.insert(xref.clone(), format!("{IN_THIS_FILE}{line}"));
    Ok(Ok(p))
}

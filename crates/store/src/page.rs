//! Keyset pagination, sorting and filtering for list views and `/api/v1` lists of every process.

use crate::Result;
use crate::rows::RowExt;
use crate::sql::Sql;
use base64::Engine;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKind {
    Text,
    Int,
    /// A NOT NULL text column: ordered without `COALESCE`, so an index can serve the order.
    TextNotNull,
    /// A NOT NULL integer column, likewise.
    IntNotNull,
}

impl SortKind {
    fn is_text(self) -> bool {
        matches!(self, SortKind::Text | SortKind::TextNotNull)
    }
}

/// A sortable column, named as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub name: &'static str,
    pub column: &'static str,
    pub kind: SortKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CursorValue {
    Text(Option<String>),
    Int(Option<i64>),
}

#[derive(Debug, Clone)]
pub struct PageRequest {
    pub sort: SortKey,
    pub desc: bool,
    pub after: Option<(CursorValue, String)>,
    pub limit: i64,
}

pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CursorWire {
    s: String,
    v: serde_json::Value,
    id: String,
}

pub fn encode_cursor(sort: &SortKey, v: &CursorValue, id: &str) -> String {
    let v = match v {
        CursorValue::Text(t) => serde_json::json!(t),
        CursorValue::Int(i) => serde_json::json!(i),
    };
    let w = CursorWire { s: sort.name.to_string(), v, id: id.to_string() };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&w).unwrap_or_default())
}

/// Decodes a cursor made for `sort`; `None` when it is malformed or for another sort order.
pub fn decode_cursor(sort: &SortKey, s: &str) -> Option<(CursorValue, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()?;
    let w: CursorWire = serde_json::from_slice(&bytes).ok()?;
    if w.s != sort.name {
        return None;
    }
    let v = if sort.kind.is_text() {
        CursorValue::Text(match w.v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s),
            _ => return None,
        })
    } else {
        CursorValue::Int(match w.v {
            serde_json::Value::Null => None,
            serde_json::Value::Number(n) => Some(n.as_i64()?),
            _ => return None,
        })
    };
    Some((v, w.id))
}

/// Runs `select` (which must end in a WHERE clause the caller extended with `AND …`), adding
/// the keyset condition, the order and the limit; `id_col` breaks ties. NULLs sort as '' / 0.
pub async fn fetch_page<T>(
    conn: &mut AnyConnection,
    mut q: Sql,
    id_col: &'static str,
    p: &PageRequest,
    map: impl Fn(&AnyRow) -> Result<T>,
) -> Result<Page<T>> {
    push_keyset(&mut q, id_col, p);
    push_order(&mut q, id_col, p);
    q.push(" LIMIT ").push_bind(p.limit + 1);
    let rows = q.fetch_all(&mut *conn).await?;
    into_page(&rows, p, map)
}

/// Like [`fetch_page`], but the page's ids are chosen first by `ids` (a `SELECT <id_col> FROM …
/// WHERE …` over the main table alone, filtered by the caller) and only those rows are joined
/// as `joined` names: the sort then runs over index entries instead of joined rows.
pub async fn fetch_page_deferred<T>(
    conn: &mut AnyConnection,
    joined: &Deferred,
    ids: impl FnOnce(&mut Sql),
    p: &PageRequest,
    map: impl Fn(&AnyRow) -> Result<T>,
) -> Result<Page<T>> {
    // The page's ids are a derived table the row is joined to, not `id IN (…)`: PostgreSQL
    // planned the `IN` form as a join of every row to the other tables before filtering.
    let mut select = Sql::new(format!("{} FROM (", joined.columns));
    ids(&mut select);
    push_keyset(&mut select, joined.id_col, p);
    push_order(&mut select, joined.id_col, p);
    select.push(" LIMIT ").push_bind(p.limit + 1);
    select.push(format!(") pick JOIN {} ON {} = pick.id {}", joined.table, joined.id_col, joined.joins));
    push_order(&mut select, joined.id_col, p);
    let rows = select.fetch_all(&mut *conn).await?;
    into_page(&rows, p, map)
}

/// The row a deferred page joins its picked ids to: `SELECT {columns} FROM (ids) pick JOIN
/// {table} ON {id_col} = pick.id {joins}`.
pub struct Deferred {
    pub columns: &'static str,
    pub table: &'static str,
    pub id_col: &'static str,
    pub joins: &'static str,
}

fn sort_expr(p: &PageRequest) -> String {
    match p.sort.kind {
        SortKind::Text => format!("COALESCE({}, '')", p.sort.column),
        SortKind::Int => format!("COALESCE({}, 0)", p.sort.column),
        SortKind::TextNotNull | SortKind::IntNotNull => p.sort.column.to_string(),
    }
}

fn push_keyset(q: &mut Sql, id_col: &str, p: &PageRequest) {
    if let Some((v, id)) = &p.after {
        let col = sort_expr(p);
        let cmp = if p.desc { "<" } else { ">" };
        q.push(format!(" AND ({col} {cmp} "));
        push_value(q, v);
        q.push(format!(" OR ({col} = "));
        push_value(q, v);
        q.push(format!(" AND {id_col} {cmp} ")).push_bind(id.clone()).push("))");
    }
}

fn push_order(q: &mut Sql, id_col: &str, p: &PageRequest) {
    let dir = if p.desc { "DESC" } else { "ASC" };
    q.push(format!(" ORDER BY {} {dir}, {id_col} {dir}", sort_expr(p)));
}

fn into_page<T>(rows: &[AnyRow], p: &PageRequest, map: impl Fn(&AnyRow) -> Result<T>) -> Result<Page<T>> {
    let more = rows.len() as i64 > p.limit;
    let rows = &rows[..rows.len().min(p.limit as usize)];
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => {
            let v = if p.sort.kind.is_text() {
                CursorValue::Text(Some(last.opt_text(p.sort.name)?.unwrap_or_default()))
            } else {
                CursorValue::Int(Some(last.opt_int(p.sort.name)?.unwrap_or_default()))
            };
            Some(encode_cursor(&p.sort, &v, &last.text("id")?))
        }
        _ => None,
    };
    let items = rows.iter().map(map).collect::<Result<Vec<_>>>()?;
    Ok(Page { items, next_cursor })
}

fn push_value(q: &mut Sql, v: &CursorValue) {
    match v {
        CursorValue::Text(t) => q.push_bind(t.clone().unwrap_or_default()),
        CursorValue::Int(i) => q.push_bind(i.unwrap_or_default()),
    };
}

/// Escapes `%`, `_` and `\` for a LIKE pattern used with `ESCAPE '\'`.
pub fn like_pattern(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

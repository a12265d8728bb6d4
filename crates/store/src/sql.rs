//! A small SQL builder for the dynamic filters of every process's lists: text with `$n`
//! placeholders and values bound in order, so one statement runs on SQLite and PostgreSQL
//! (sqlx's own builder numbers placeholders as `?` under the `Any` driver).

use crate::Result;
use sqlx::any::{AnyQueryResult, AnyRow};
use sqlx::{Any, AnyConnection};

#[derive(Debug, Clone)]
enum Value {
    Text(Option<String>),
    Int(Option<i64>),
}

pub trait Bind {
    #[doc(hidden)]
    fn value(self) -> ValueOf;
}

#[doc(hidden)]
pub struct ValueOf(Value);

impl Bind for String {
    fn value(self) -> ValueOf {
        ValueOf(Value::Text(Some(self)))
    }
}
impl Bind for &str {
    fn value(self) -> ValueOf {
        ValueOf(Value::Text(Some(self.to_string())))
    }
}
impl Bind for &String {
    fn value(self) -> ValueOf {
        ValueOf(Value::Text(Some(self.clone())))
    }
}
impl Bind for i64 {
    fn value(self) -> ValueOf {
        ValueOf(Value::Int(Some(self)))
    }
}
impl Bind for Option<i64> {
    fn value(self) -> ValueOf {
        ValueOf(Value::Int(self))
    }
}
impl Bind for Option<String> {
    fn value(self) -> ValueOf {
        ValueOf(Value::Text(self))
    }
}

#[derive(Debug, Clone)]
pub struct Sql {
    text: String,
    values: Vec<Value>,
    /// Byte offset of each placeholder in `text`, in binding order.
    marks: Vec<usize>,
}

impl Sql {
    pub fn new(init: impl Into<String>) -> Sql {
        Sql { text: init.into(), values: Vec::new(), marks: Vec::new() }
    }

    pub fn push(&mut self, s: impl AsRef<str>) -> &mut Sql {
        self.text.push_str(s.as_ref());
        self
    }

    pub fn push_bind(&mut self, v: impl Bind) -> &mut Sql {
        self.values.push(v.value().0);
        self.marks.push(self.text.len());
        self.text.push('$');
        self.text.push_str(&self.values.len().to_string());
        self
    }

    /// `(v1, v2, …)`; an empty list becomes `(NULL)`, which matches nothing.
    pub fn push_list<'a>(&mut self, items: impl IntoIterator<Item = &'a String>) -> &mut Sql {
        self.text.push('(');
        let mut first = true;
        for i in items {
            if !first {
                self.text.push_str(", ");
            }
            first = false;
            self.push_bind(i);
        }
        if first {
            self.text.push_str("NULL");
        }
        self.text.push(')');
        self
    }

    /// The text with anonymous `?` placeholders instead of `$n`, when every `$` in it is one of
    /// ours. SQLite looks a `$n` up by a linear walk over the statement's named parameters, so
    /// binding n of them costs O(n²): most of the time of a multi-row insert of a few thousand
    /// values. Anonymous ones bind in order, which is the order of `$n`.
    fn positional(&self) -> Option<String> {
        if self.marks.is_empty() || self.text.bytes().filter(|b| *b == b'$').count() != self.marks.len() {
            return None;
        }
        let bytes = self.text.as_bytes();
        let mut out = String::with_capacity(self.text.len());
        let mut from = 0;
        for &m in &self.marks {
            out.push_str(&self.text[from..m]);
            out.push('?');
            from = m + 1;
            while from < bytes.len() && bytes[from].is_ascii_digit() {
                from += 1;
            }
        }
        out.push_str(&self.text[from..]);
        Some(out)
    }

    fn query(&self, conn: &AnyConnection) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments> {
        let text = if conn.backend_name() == "SQLite" { self.positional() } else { None };
        let mut q = sqlx::query(sqlx::AssertSqlSafe(text.unwrap_or_else(|| self.text.clone())));
        for v in &self.values {
            q = match v {
                Value::Text(t) => q.bind(t.clone()),
                Value::Int(i) => q.bind(*i),
            };
        }
        q
    }

    pub async fn fetch_all(&self, conn: &mut AnyConnection) -> Result<Vec<AnyRow>> {
        Ok(self.query(conn).fetch_all(conn).await?)
    }

    pub async fn execute(&self, conn: &mut AnyConnection) -> Result<AnyQueryResult> {
        Ok(self.query(conn).execute(conn).await?)
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Keys per statement of [`grouped`]: far below SQLite's and PostgreSQL's bound-parameter
/// limits, and above every list page, so a page costs one statement (a page of a thousand, two).
const KEYS_PER_STATEMENT: usize = 500;

/// The values of a one-to-many detail (a user's roles, a team's members, …) for many records at
/// once, instead of one statement per record. `select` reads a key column `k` and a value
/// column `v` and ends in `… IN `; the keys follow, then ` ORDER BY k, v`, so each key's values
/// come in the order one statement per key would have given. Keys without values are absent.
pub async fn grouped(conn: &mut AnyConnection, select: &str, keys: &[String]) -> Result<std::collections::HashMap<String, Vec<String>>> {
    use crate::rows::RowExt;
    let mut out: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let mut q = Sql::new(select);
        q.push_list(chunk).push(" ORDER BY k, v");
        for r in q.fetch_all(conn).await? {
            out.entry(r.text("k")?).or_default().push(r.text("v")?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut q = Sql::new("SELECT 1 FROM t WHERE a = ");
        q.push_bind("x").push(" AND b IN ").push_list(&["p".to_string(), "q".to_string()]).push(" AND c = ").push_bind(3i64);
        assert_eq!(q.text(), "SELECT 1 FROM t WHERE a = $1 AND b IN ($2, $3) AND c = $4");
        let mut e = Sql::new("x IN ");
        e.push_list(&[]);
        assert_eq!(e.text(), "x IN (NULL)");
        assert_eq!(q.positional().as_deref(), Some("SELECT 1 FROM t WHERE a = ? AND b IN (?, ?) AND c = ?"));
        let mut many = Sql::new("VALUES ");
        for i in 0..12i64 {
            many.push(if i == 0 { "(" } else { ", (" }).push_bind(i).push(")");
        }
        assert_eq!(many.positional().unwrap().matches('?').count(), 12);
        assert!(!many.positional().unwrap().contains('$'));
        // a `$` that is not a placeholder of ours (a JSON path, a hand-written one) keeps `$n`
        let mut json = Sql::new("SELECT json_extract(x, '$.a') FROM t WHERE id = ");
        json.push_bind("x");
        assert_eq!(json.positional(), None);
        assert_eq!(e.positional(), None);
    }
}

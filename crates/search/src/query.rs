//! The query syntax a service desk expects: words, "phrases", -exclusions, field filters
//! (`status:open`, `team:网络组`, `type:change`, `project:`, `priority:`) and date ranges
//! (`created:2026-01-01..2026-02-01`, either end may be left open).

use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// A word, or several words that must appear in this order (a phrase).
    Text {
        text: String,
        phrase: bool,
        exclude: bool,
    },
    Filter {
        field: FilterField,
        value: String,
        exclude: bool,
    },
    Created {
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterField {
    Status,
    Type,
    Team,
    Project,
    Priority,
}

impl FilterField {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_lowercase().as_str() {
            "status" => FilterField::Status,
            "type" => FilterField::Type,
            "team" => FilterField::Team,
            "project" => FilterField::Project,
            "priority" => FilterField::Priority,
            _ => return None,
        })
    }
    pub fn field_name(self) -> &'static str {
        match self {
            FilterField::Status => "status",
            FilterField::Type => "kind",
            FilterField::Team => "team",
            FilterField::Project => "project",
            FilterField::Priority => "priority",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedQuery {
    pub clauses: Vec<Clause>,
}

impl ParsedQuery {
    pub fn has_positive_text(&self) -> bool {
        self.clauses.iter().any(|c| matches!(c, Clause::Text { exclude: false, .. }))
    }
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

/// Splits the query into clauses. Never fails: what is not syntax is searched as text, so
/// `a:b` with an unknown field (`http://x`, `fe80::1`) stays a word.
pub fn parse(input: &str) -> ParsedQuery {
    let mut clauses = Vec::new();
    let mut rest = input.trim();
    while !rest.is_empty() {
        let (exclude, body) = match rest.strip_prefix('-') {
            Some(b) if !b.is_empty() && !b.starts_with(char::is_whitespace) => (true, b),
            _ => (false, rest),
        };
        if let Some(q) = body.strip_prefix('"') {
            let (text, after) = match q.find('"') {
                Some(i) => (&q[..i], &q[i + 1..]),
                None => (q, ""),
            };
            if !text.trim().is_empty() {
                clauses.push(Clause::Text { text: text.trim().to_string(), phrase: true, exclude });
            }
            rest = after.trim_start();
            continue;
        }
        let end = body.find(char::is_whitespace).unwrap_or(body.len());
        let mut word = &body[..end];
        let mut after = &body[end..];
        if let Some((name, value)) = word.split_once(':') {
            if name.eq_ignore_ascii_case("created") && value.contains("..") {
                let (a, b) = value.split_once("..").unwrap_or((value, ""));
                clauses.push(Clause::Created { from: date(a), to: date(b) });
                rest = after.trim_start();
                continue;
            }
            if let Some(field) = FilterField::parse(name) {
                let value = if let Some(v) = value.strip_prefix('"') {
                    let whole = &body[name.len() + 2..];
                    match whole.find('"') {
                        Some(i) => {
                            after = &whole[i + 1..];
                            whole[..i].to_string()
                        }
                        None => {
                            after = "";
                            v.to_string()
                        }
                    }
                } else {
                    value.to_string()
                };
                if !value.is_empty() {
                    clauses.push(Clause::Filter { field, value, exclude });
                }
                rest = after.trim_start();
                continue;
            }
        }
        if word.is_empty() {
            word = body;
            after = "";
        }
        clauses.push(Clause::Text { text: word.to_string(), phrase: false, exclude });
        rest = after.trim_start();
    }
    ParsedQuery { clauses }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str, phrase: bool, exclude: bool) -> Clause {
        Clause::Text { text: t.into(), phrase, exclude }
    }

    #[test]
    fn words_phrases_and_exclusions() {
        let q = parse(r#"printer "paper jam" -toner 打印机"#);
        assert_eq!(
            q.clauses,
            vec![text("printer", false, false), text("paper jam", true, false), text("toner", false, true), text("打印机", false, false)]
        );
        assert_eq!(parse(r#"-"out of order""#).clauses, vec![text("out of order", true, true)]);
        assert_eq!(parse("a - b").clauses, vec![text("a", false, false), text("-", false, false), text("b", false, false)]);
    }

    #[test]
    fn field_filters_and_dates() {
        let q = parse(r#"status:open team:网络组 type:incident project:"Acme desk" -priority:p4 vpn"#);
        assert_eq!(
            q.clauses,
            vec![
                Clause::Filter { field: FilterField::Status, value: "open".into(), exclude: false },
                Clause::Filter { field: FilterField::Team, value: "网络组".into(), exclude: false },
                Clause::Filter { field: FilterField::Type, value: "incident".into(), exclude: false },
                Clause::Filter { field: FilterField::Project, value: "Acme desk".into(), exclude: false },
                Clause::Filter { field: FilterField::Priority, value: "p4".into(), exclude: true },
                text("vpn", false, false),
            ]
        );
        assert_eq!(
            parse("created:2026-01-01..2026-02-01").clauses,
            vec![Clause::Created { from: NaiveDate::from_ymd_opt(2026, 1, 1), to: NaiveDate::from_ymd_opt(2026, 2, 1) }]
        );
        assert_eq!(parse("created:..2026-02-01").clauses, vec![Clause::Created { from: None, to: NaiveDate::from_ymd_opt(2026, 2, 1) }]);
    }

    #[test]
    fn unknown_fields_and_addresses_stay_words() {
        assert_eq!(parse("fe80::1 http://x").clauses, vec![text("fe80::1", false, false), text("http://x", false, false)]);
        assert_eq!(parse("\"unclosed phrase").clauses, vec![text("unclosed phrase", true, false)]);
    }
}

//! Import and export of yearly holiday calendars for service level management (§6.1), as CSV
//! (`date,kind[,name]`) and as iCalendar (RFC 5545 all-day events).
//!
//! CSV: one day per line, `kind` is `holiday` or `workday` (休 / 班 are accepted too), the name
//! is optional and may be quoted; a `date,kind,name` header, blank lines, lines starting with
//! `#`, a UTF-8 byte-order mark and CRLF line ends are accepted.
//!
//! iCalendar: every `VEVENT` with an all-day `DTSTART` (and optionally `DTEND` or `DURATION`)
//! becomes one day per date it covers. Its kind comes from `X-KEEL-KIND`, else `CATEGORIES`,
//! else the summary (补班, 上班, "make-up", "working day" … mean a make-up working day); anything
//! else is a holiday. Recurring events are refused rather than silently expanded.

use crate::error::{DomainError, FieldError};
use crate::sla::calendar::{CalendarDay, DayKind, MAX_DAY_NAME_CHARS, parse_date};
use crate::validate;
use chrono::{DateTime, Days, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Import stops collecting problems after this many, so a wrong file gives a short answer.
const MAX_ERRORS: usize = 50;
/// The longest event an iCalendar import expands, in days.
const MAX_EVENT_DAYS: u64 = 366;
/// Content lines are folded at 75 octets (RFC 5545 §3.1).
const ICS_LINE_OCTETS: usize = 75;

struct Problems(Vec<FieldError>);

impl Problems {
    fn push(&mut self, line: usize, code: &'static str, message: impl Into<String>) {
        self.add(FieldError::new(format!("line {line}"), code, message));
    }

    fn add(&mut self, e: FieldError) {
        if self.0.len() < MAX_ERRORS {
            self.0.push(e);
        } else if self.0.len() == MAX_ERRORS {
            self.0.push(FieldError::new("file", "too_many_errors", "the file has too many problems; fix these first"));
        }
    }

    fn keep<T>(&mut self, r: Result<T, FieldError>) -> Option<T> {
        r.map_err(|e| self.add(e)).ok()
    }
}

/// Rejects a date listed twice, pointing at both lines, and returns the days by date.
fn finish(mut problems: Problems, days: Vec<(usize, CalendarDay)>) -> Result<Vec<CalendarDay>, DomainError> {
    let mut seen: BTreeMap<NaiveDate, (usize, DayKind)> = BTreeMap::new();
    for (line, day) in &days {
        if let Some(&(first, kind)) = seen.get(&day.date) {
            let (code, what) = if kind == day.kind {
                ("duplicate_date", "is listed again")
            } else {
                ("holiday_and_workday", "cannot be both a holiday and a make-up working day")
            };
            problems.push(*line, code, format!("{} {what} (first on line {first})", day.date));
        } else {
            seen.insert(day.date, (*line, day.kind));
        }
    }
    if !problems.0.is_empty() {
        return Err(DomainError::Invalid(problems.0));
    }
    let mut days: Vec<CalendarDay> = days.into_iter().map(|(_, d)| d).collect();
    days.sort_by_key(|d| d.date);
    Ok(days)
}

struct Record {
    line: usize,
    fields: Vec<String>,
}

/// Splits CSV text into records (RFC 4180 quoting; quoted fields may hold commas, quotes and
/// line breaks).
fn csv_records(text: &str) -> Result<Vec<Record>, FieldError> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let (mut line, mut record_line, mut quote_line) = (1, 1, 1);
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.trim().is_empty() => {
                field.clear();
                in_quotes = true;
                quote_line = line;
            }
            ',' => fields.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                fields.push(std::mem::take(&mut field));
                records.push(Record { line: record_line, fields: std::mem::take(&mut fields) });
                line += 1;
                record_line = line;
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(FieldError::new(format!("line {quote_line}"), "unterminated_quote", "a quoted field is never closed"));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push(Record { line: record_line, fields });
    }
    Ok(records)
}

/// Reads a CSV calendar: `date,kind[,name]` per line.
pub fn parse_csv(text: &str) -> Result<Vec<CalendarDay>, DomainError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let records = csv_records(text).map_err(|e| DomainError::Invalid(vec![e]))?;
    let mut problems = Problems(Vec::new());
    let mut days = Vec::new();
    let mut header_allowed = true;
    for Record { line, mut fields } in records {
        if fields.iter().all(|f| f.trim().is_empty()) || fields[0].trim_start().starts_with('#') {
            continue;
        }
        if std::mem::take(&mut header_allowed) && fields[0].trim().eq_ignore_ascii_case("date") {
            continue;
        }
        while fields.len() > 3 && fields.last().is_some_and(|f| f.trim().is_empty()) {
            fields.pop();
        }
        if fields.len() < 2 {
            problems.push(line, "missing_field", "expected date,kind[,name]");
            continue;
        }
        if fields.len() > 3 {
            problems.push(line, "too_many_fields", "expected date,kind[,name]; quote a name that holds a comma");
            continue;
        }
        let field = format!("line {line}");
        let date = problems.keep(parse_date(&field, &fields[0]));
        let kind = problems.keep(DayKind::parse(&field, &fields[1]));
        let name = problems.keep(validate::optional_text(&field, fields.get(2).map(String::as_str), MAX_DAY_NAME_CHARS));
        if let (Some(date), Some(kind), Some(name)) = (date, kind, name) {
            days.push((line, CalendarDay { date, kind, name }));
        }
    }
    finish(problems, days)
}

/// Writes a CSV calendar with a `date,kind,name` header and CRLF line ends.
pub fn to_csv(days: &[CalendarDay]) -> String {
    let mut out = String::from("date,kind,name\r\n");
    for d in days {
        let _ = write!(out, "{},{},", d.date, d.kind.as_str());
        if let Some(name) = &d.name {
            if name.contains([',', '"', '\n', '\r']) || name.trim() != name {
                out.push('"');
                out.push_str(&name.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(name);
            }
        }
        out.push_str("\r\n");
    }
    out
}

/// One iCalendar content line: `NAME;PARAM=V:value`.
struct ContentLine {
    line: usize,
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

impl ContentLine {
    fn parse(line: usize, text: &str) -> Option<ContentLine> {
        let mut in_quotes = false;
        let colon = text.char_indices().find_map(|(i, c)| {
            match c {
                '"' => in_quotes = !in_quotes,
                ':' if !in_quotes => return Some(i),
                _ => {}
            }
            None
        })?;
        let (head, value) = (&text[..colon], &text[colon + 1..]);
        let mut parts = head.split(';');
        let name = parts.next()?.trim().to_ascii_uppercase();
        if name.is_empty() {
            return None;
        }
        let params = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_uppercase(), v.trim().trim_matches('"').to_string()))
            .collect();
        Some(ContentLine { line, name, params, value: value.to_string() })
    }

    fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Joins folded lines (a line starting with a space or tab continues the previous one).
fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some((_, last))) => last.push_str(rest),
            _ if raw.trim().is_empty() => {}
            _ => lines.push((i + 1, raw.to_string())),
        }
    }
    lines
}

fn unescape_text(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push(' '),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn escape_text(v: &str) -> String {
    v.replace('\\', "\\\\").replace(';', "\\;").replace(',', "\\,").replace(['\r', '\n'], "\\n")
}

/// An all-day date value: `20250101`, or a date-time at midnight as some exporters write
/// all-day events.
fn ics_date(prop: &ContentLine) -> Result<NaiveDate, FieldError> {
    let field = format!("line {}", prop.line);
    let v = prop.value.trim();
    let (day, time) = match v.split_once('T') {
        Some((d, t)) => (d, Some(t.trim_end_matches('Z'))),
        None => (v, None),
    };
    if prop.param("VALUE").is_some_and(|p| p.eq_ignore_ascii_case("DATE-TIME")) || time.is_some_and(|t| t != "000000") {
        return Err(FieldError::new(field, "not_all_day", format!("{} is not an all-day date", prop.name)));
    }
    NaiveDate::parse_from_str(day, "%Y%m%d").map_err(|_| FieldError::new(field, "invalid_date", format!("'{v}' is not a date (YYYYMMDD)")))
}

/// `P3D`, `P1W` (time parts must be zero).
fn ics_duration_days(v: &str) -> Option<u64> {
    let v = v.trim().strip_prefix('P')?;
    let (date_part, time_part) = v.split_once('T').unwrap_or((v, ""));
    if time_part.chars().any(|c| c.is_ascii_digit() && c != '0') {
        return None;
    }
    if let Some(w) = date_part.strip_suffix('W') {
        return w.parse::<u64>().ok().map(|w| w * 7);
    }
    date_part.strip_suffix('D')?.parse().ok()
}

/// The kind named by a category or summary, if the text names one.
fn kind_from_text(text: &str) -> Option<DayKind> {
    let t = text.trim().to_lowercase();
    const WORK: [&str; 9] = ["补班", "上班", "(班)", "（班）", "make-up", "makeup", "working day", "workday", "work day"];
    const REST: [&str; 5] = ["holiday", "休", "假", "(休)", "（休）"];
    if WORK.iter().any(|w| t.contains(w)) || t.ends_with('班') {
        Some(DayKind::Workday)
    } else if REST.iter().any(|w| t.contains(w)) {
        Some(DayKind::Holiday)
    } else {
        None
    }
}

#[derive(Default)]
struct EventDraft {
    line: usize,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    duration_days: Option<u64>,
    summary: Option<String>,
    category_kind: Option<DayKind>,
    keel_kind: Option<DayKind>,
}

impl EventDraft {
    fn property(&mut self, p: &ContentLine, problems: &mut Problems) {
        let field = format!("line {}", p.line);
        match p.name.as_str() {
            "DTSTART" => self.start = problems.keep(ics_date(p)),
            "DTEND" => self.end = problems.keep(ics_date(p)),
            "DURATION" => match ics_duration_days(&p.value) {
                Some(d) => self.duration_days = Some(d),
                None => problems.push(p.line, "invalid_duration", "a duration must be whole days, e.g. P3D"),
            },
            "SUMMARY" => self.summary = Some(unescape_text(&p.value)),
            "CATEGORIES" => {
                self.category_kind = self.category_kind.or_else(|| p.value.split(',').find_map(kind_from_text));
            }
            "X-KEEL-KIND" => self.keel_kind = problems.keep(DayKind::parse(&field, &p.value)),
            "RRULE" | "RDATE" => problems.push(p.line, "unsupported_recurrence", "recurring events are not supported; list each date"),
            _ => {}
        }
    }

    fn days(self, problems: &mut Problems) -> Vec<(usize, CalendarDay)> {
        let Some(start) = self.start else {
            problems.push(self.line, "missing_dtstart", "an event needs an all-day DTSTART");
            return Vec::new();
        };
        let count = match (self.end, self.duration_days) {
            (Some(end), _) if end < start => {
                problems.push(self.line, "end_before_start", "DTEND is before DTSTART");
                return Vec::new();
            }
            (Some(end), _) => (end - start).num_days().max(1) as u64,
            (None, Some(d)) => d.max(1),
            (None, None) => 1,
        };
        if count > MAX_EVENT_DAYS {
            problems.push(self.line, "event_too_long", format!("an event may cover at most {MAX_EVENT_DAYS} days"));
            return Vec::new();
        }
        let kind =
            self.keel_kind.or(self.category_kind).or_else(|| self.summary.as_deref().and_then(kind_from_text)).unwrap_or(DayKind::Holiday);
        let field = format!("line {}", self.line);
        let Some(name) = problems.keep(validate::optional_text(&field, self.summary.as_deref(), MAX_DAY_NAME_CHARS)) else {
            return Vec::new();
        };
        (0..count)
            .filter_map(|i| start.checked_add_days(Days::new(i)))
            .map(|date| (self.line, CalendarDay { date, kind, name: name.clone() }))
            .collect()
    }
}

/// Reads an iCalendar file's all-day events as holidays and make-up days.
pub fn parse_ics(text: &str) -> Result<Vec<CalendarDay>, DomainError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut problems = Problems(Vec::new());
    let mut days = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut event: Option<EventDraft> = None;
    let mut saw_calendar = false;
    for (line, text) in unfold(text) {
        let Some(p) = ContentLine::parse(line, &text) else {
            problems.push(line, "malformed_line", "expected NAME:value");
            continue;
        };
        match p.name.as_str() {
            "BEGIN" => {
                let component = p.value.trim().to_ascii_uppercase();
                if component == "VCALENDAR" {
                    saw_calendar = true;
                } else if component == "VEVENT" && stack.last().is_some_and(|c| c == "VCALENDAR") {
                    event = Some(EventDraft { line, ..EventDraft::default() });
                }
                stack.push(component);
            }
            "END" => {
                let component = p.value.trim().to_ascii_uppercase();
                if stack.last() != Some(&component) {
                    problems.push(line, "malformed_calendar", format!("END:{component} does not close the open component"));
                    return Err(DomainError::Invalid(problems.0));
                }
                stack.pop();
                if component == "VEVENT"
                    && let Some(e) = event.take()
                {
                    days.extend(e.days(&mut problems));
                }
            }
            _ => {
                if let (Some(e), Some("VEVENT")) = (event.as_mut(), stack.last().map(String::as_str)) {
                    e.property(&p, &mut problems);
                }
            }
        }
    }
    if !saw_calendar {
        problems.add(FieldError::new("file", "not_a_calendar", "the file is not an iCalendar file (no BEGIN:VCALENDAR)"));
    } else if let Some(open) = stack.last() {
        problems.add(FieldError::new("file", "malformed_calendar", format!("BEGIN:{open} is never closed")));
    }
    finish(problems, days)
}

/// Writes days as an iCalendar file, one all-day event per run of consecutive days with the
/// same kind and name. `stamp` is the `DTSTAMP` (the export time), passed in because the domain
/// does not read the clock.
pub fn to_ics(days: &[CalendarDay], calendar_name: &str, stamp: DateTime<Utc>) -> String {
    let mut sorted: Vec<&CalendarDay> = days.iter().collect();
    sorted.sort_by_key(|d| d.date);
    let mut out = String::new();
    let mut line = |s: &str| fold_into(&mut out, s);
    line("BEGIN:VCALENDAR");
    line("VERSION:2.0");
    line("PRODID:-//Keel//Business calendar//EN");
    line("CALSCALE:GREGORIAN");
    line(&format!("X-WR-CALNAME:{}", escape_text(calendar_name)));
    let stamp = stamp.format("%Y%m%dT%H%M%SZ").to_string();
    let mut i = 0;
    while i < sorted.len() {
        let first = sorted[i];
        let mut j = i + 1;
        while j < sorted.len()
            && sorted[j].kind == first.kind
            && sorted[j].name == first.name
            && sorted[j - 1].date.succ_opt() == Some(sorted[j].date)
        {
            j += 1;
        }
        let end = sorted[j - 1].date.succ_opt().unwrap_or(NaiveDate::MAX);
        let kind = first.kind.as_str();
        line("BEGIN:VEVENT");
        line(&format!("UID:{}-{kind}@keel", first.date.format("%Y%m%d")));
        line(&format!("DTSTAMP:{stamp}"));
        line(&format!("DTSTART;VALUE=DATE:{}", first.date.format("%Y%m%d")));
        line(&format!("DTEND;VALUE=DATE:{}", end.format("%Y%m%d")));
        if let Some(name) = &first.name {
            line(&format!("SUMMARY:{}", escape_text(name)));
        }
        line(&format!("CATEGORIES:{}", kind.to_ascii_uppercase()));
        line(&format!("X-KEEL-KIND:{kind}"));
        line("TRANSP:TRANSPARENT");
        line("END:VEVENT");
        i = j;
    }
    line("END:VCALENDAR");
    out
}

/// Appends one content line, folded at 75 octets without splitting a character.
fn fold_into(out: &mut String, line: &str) {
    let mut rest = line;
    let mut limit = ICS_LINE_OCTETS;
    while rest.len() > limit {
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str("\r\n ");
        rest = &rest[cut..];
        limit = ICS_LINE_OCTETS - 1;
    }
    out.push_str(rest);
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn codes(e: DomainError) -> Vec<(String, &'static str)> {
        match e {
            DomainError::Invalid(list) => list.into_iter().map(|f| (f.field, f.code)).collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn sample() -> Vec<CalendarDay> {
        vec![
            CalendarDay::holiday(d(2025, 1, 1), "New Year's Day / 元旦"),
            CalendarDay::workday(d(2025, 1, 26), "Spring Festival make-up working day / 春节调休上班"),
            CalendarDay::holiday(d(2025, 1, 28), "Spring Festival / 春节"),
            CalendarDay::holiday(d(2025, 1, 29), "Spring Festival / 春节"),
            CalendarDay::holiday(d(2025, 1, 30), "Spring Festival / 春节"),
            CalendarDay { date: d(2025, 5, 1), kind: DayKind::Holiday, name: None },
            CalendarDay::holiday(d(2025, 5, 2), "Labour Day, \"May Day\"; 劳动节\\"),
        ]
    }

    #[test]
    fn csv_round_trips() {
        let days = sample();
        let csv = to_csv(&days);
        assert!(csv.starts_with("date,kind,name\r\n2025-01-01,holiday,New Year's Day / 元旦\r\n"), "{csv}");
        assert!(csv.contains("2025-05-01,holiday,\r\n"), "{csv}");
        assert!(csv.contains("\"Labour Day, \"\"May Day\"\"; 劳动节\\\""), "{csv}");
        assert_eq!(parse_csv(&csv).unwrap(), days);
    }

    #[test]
    fn csv_accepts_what_spreadsheets_and_people_write() {
        let text = "\u{feff}# official calendar\r\nDate,Kind,Name\r\n\r\n2025/1/1, 休 ,元旦\n2025-01-26,班\n\"2025-02-08\",workday,\"multi\nline\",,\n";
        let days = parse_csv(text).unwrap();
        assert_eq!(days.len(), 3);
        assert_eq!(days[0], CalendarDay::holiday(d(2025, 1, 1), "元旦"));
        assert_eq!(days[1], CalendarDay { date: d(2025, 1, 26), kind: DayKind::Workday, name: None });
        assert_eq!(days[2].name.as_deref(), Some("multi\nline"));
    }

    #[test]
    fn malformed_csv_is_reported_by_line() {
        let text = "date,kind,name\n2025-13-01,holiday\n2025-01-02,vacation\n2025-01-03\n2025-01-04,holiday,a,b\n2025-01-05,holiday\n2025-01-05,workday\n2025-01-06,holiday\n2025-01-06,holiday\n";
        let errors = codes(parse_csv(text).unwrap_err());
        let expected = [
            ("line 2", "invalid_date"),
            ("line 3", "invalid_day_kind"),
            ("line 4", "missing_field"),
            ("line 5", "too_many_fields"),
            ("line 7", "holiday_and_workday"),
            ("line 9", "duplicate_date"),
        ];
        assert_eq!(errors, expected.map(|(f, c)| (f.to_string(), c)));
        assert_eq!(codes(parse_csv("2025-01-01,holiday,\"open").unwrap_err()), [("line 1".to_string(), "unterminated_quote")]);
        let many: String = (0..80).map(|i| format!("bad{i},holiday\n")).collect();
        let errors = codes(parse_csv(&many).unwrap_err());
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert_eq!(errors.last().unwrap().1, "too_many_errors");
        assert!(parse_csv("").unwrap().is_empty());
    }

    #[test]
    fn ics_round_trips_and_merges_runs() {
        let days = sample();
        let stamp = "2025-01-01T08:00:00Z".parse().unwrap();
        let ics = to_ics(&days, "China 2025, mainland", stamp);
        assert!(ics.contains("DTSTART;VALUE=DATE:20250128\r\nDTEND;VALUE=DATE:20250131\r\n"), "{ics}");
        assert!(ics.contains("X-WR-CALNAME:China 2025\\, mainland\r\n"));
        assert!(ics.contains("DTSTAMP:20250101T080000Z\r\n"));
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 5);
        assert!(ics.lines().all(|l| l.len() <= ICS_LINE_OCTETS + 1), "{ics}");
        assert_eq!(parse_ics(&ics).unwrap(), days);
    }

    #[test]
    fn long_names_fold_without_splitting_characters() {
        let name = "春节".repeat(40);
        let ics = to_ics(&[CalendarDay::holiday(d(2026, 2, 15), name.clone())], "x", DateTime::UNIX_EPOCH);
        assert!(ics.contains("\r\n "));
        for l in ics.split("\r\n") {
            assert!(l.len() <= ICS_LINE_OCTETS, "{l}");
        }
        assert_eq!(parse_ics(&ics).unwrap()[0].name.as_deref(), Some(name.as_str()));
    }

    #[test]
    fn ics_from_other_producers_is_understood() {
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example//CN Holidays//ZH\r\nBEGIN:VTIMEZONE\r\nTZID:Asia/Shanghai\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:a\r\nDTSTART;VALUE=DATE:20251001\r\nDTEND;VALUE=DATE:20251009\r\nSUMMARY:国庆节、中秋节 \r\n 休\r\nBEGIN:VALARM\r\nTRIGGER:-PT15M\r\nDESCRIPTION:提醒 补班\r\nEND:VALARM\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:b\r\nDTSTART;VALUE=DATE:20250928\r\nSUMMARY:国庆节 补班\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:c\r\nDTSTART:20251011T000000\r\nDURATION:P1D\r\nSUMMARY:Make-up working day\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:d\r\nDTSTART:20250101\r\nDTEND:20250101\r\nSUMMARY:New Year\\, 2025\r\nCATEGORIES:Public,Holiday\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
        let days = parse_ics(text).unwrap();
        assert_eq!(days.len(), 11);
        assert_eq!(days[0], CalendarDay::holiday(d(2025, 1, 1), "New Year, 2025"));
        assert_eq!(days[1], CalendarDay::workday(d(2025, 9, 28), "国庆节 补班"));
        assert_eq!(days[2], CalendarDay::holiday(d(2025, 10, 1), "国庆节、中秋节 休"));
        assert_eq!(days[9].date, d(2025, 10, 8));
        assert_eq!(days[10], CalendarDay::workday(d(2025, 10, 11), "Make-up working day"));
        let lf_only = text.replace("\r\n", "\n");
        assert_eq!(parse_ics(&lf_only).unwrap(), days);
    }

    #[test]
    fn malformed_ics_is_reported() {
        let wrap = |body: &str| format!("BEGIN:VCALENDAR\r\n{body}END:VCALENDAR\r\n");
        let cases = [
            ("BEGIN:VEVENT\r\nDTSTART:20250101T090000\r\nEND:VEVENT\r\n", "not_all_day"),
            ("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20251301\r\nEND:VEVENT\r\n", "invalid_date"),
            ("BEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\n", "missing_dtstart"),
            ("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20250105\r\nDTEND;VALUE=DATE:20250101\r\nEND:VEVENT\r\n", "end_before_start"),
            ("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20250101\r\nRRULE:FREQ=YEARLY\r\nEND:VEVENT\r\n", "unsupported_recurrence"),
            ("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20250101\r\nDURATION:PT5H\r\nEND:VEVENT\r\n", "invalid_duration"),
            ("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20250101\r\nDURATION:P400D\r\nEND:VEVENT\r\n", "event_too_long"),
            ("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20250101\r\nX-KEEL-KIND:maybe\r\nEND:VEVENT\r\n", "invalid_day_kind"),
            ("BEGIN:VEVENT\r\nno colon here\r\nEND:VEVENT\r\n", "malformed_line"),
            ("BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20250101\r\nEND:VTODO\r\n", "malformed_calendar"),
            (
                "BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20250101\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20250101\r\nSUMMARY:补班\r\nEND:VEVENT\r\n",
                "holiday_and_workday",
            ),
        ];
        for (body, code) in cases {
            let errors = codes(parse_ics(&wrap(body)).unwrap_err());
            assert!(errors.iter().any(|(_, c)| *c == code), "{code}: {errors:?}");
        }
        assert_eq!(codes(parse_ics("date,kind\n2025-01-01,holiday\n").unwrap_err())[0].1, "malformed_line");
        assert_eq!(codes(parse_ics("").unwrap_err()), [("file".to_string(), "not_a_calendar")]);
        assert_eq!(codes(parse_ics("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n").unwrap_err()).last().unwrap().1, "malformed_calendar");
    }
}

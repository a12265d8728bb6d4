//! Release management: release notes for customers (发布说明), as Markdown in English or
//! Simplified Chinese.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::lifecycle::StageKind;
use super::plan::Release;
use crate::change::ChangeNumber;
use crate::validate::Locale;

/// A change as the notes list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteChange {
    pub number: ChangeNumber,
    pub title: String,
}

struct Words {
    heading: &'static str,
    release: &'static str,
    version: &'static str,
    status: &'static str,
    deployed: &'static str,
    planned: &'static str,
    changes: &'static str,
    no_changes: &'static str,
    known_issues: &'static str,
    none: &'static str,
    rollback: &'static str,
    colon: &'static str,
    open: &'static str,
    close: &'static str,
}

const EN: Words = Words {
    heading: "Release notes: ",
    release: "Release",
    version: "Version",
    status: "Status",
    deployed: "Deployed",
    planned: "Planned deployment",
    changes: "Changes",
    no_changes: "No changes listed.",
    known_issues: "Known issues",
    none: "None.",
    rollback: "Rollback",
    colon: ":",
    open: " (",
    close: ")",
};

const ZH: Words = Words {
    heading: "发布说明：",
    release: "发布编号",
    version: "版本",
    status: "状态",
    deployed: "部署时间",
    planned: "计划部署时间",
    changes: "变更内容",
    no_changes: "无。",
    known_issues: "已知问题",
    none: "无。",
    rollback: "回退",
    colon: "：",
    open: "（",
    close: "）",
};

/// Renders the release notes: title, facts, description, changes (by number), known issues,
/// and the rollback if there was one. Times are shown in `tz`; every piece of user text is
/// escaped so that it renders as written.
pub fn release_notes(release: &Release, changes: &[NoteChange], locale: Locale, tz: Tz) -> String {
    let w = match locale {
        Locale::En => &EN,
        Locale::ZhCn => &ZH,
    };
    let when = |at: DateTime<Utc>| format!("{}{}{}{}", at.with_timezone(&tz).format("%Y-%m-%d %H:%M"), w.open, tz.name(), w.close);
    let mut out = String::new();
    let _ = writeln!(out, "# {}{}{}{}{}\n", w.heading, inline(&release.title), w.open, inline(&release.version), w.close);
    let _ = writeln!(out, "- **{}{}** {}", w.release, w.colon, release.number);
    let _ = writeln!(out, "- **{}{}** {}", w.version, w.colon, inline(&release.version));
    let _ = writeln!(out, "- **{}{}** {}", w.status, w.colon, release.status.label(locale));
    let deployment = release.stage(StageKind::Deployment);
    if let Some(done) = &deployment.sign_off {
        let _ = writeln!(out, "- **{}{}** {}", w.deployed, w.colon, when(done.at));
    } else if let Some(start) = deployment.planned_start {
        let _ = writeln!(out, "- **{}{}** {}", w.planned, w.colon, when(start));
    }
    if let Some(d) = &release.description {
        let _ = writeln!(out, "\n{}", block(d));
    }
    let _ = writeln!(out, "\n## {}\n", w.changes);
    if changes.is_empty() {
        let _ = writeln!(out, "{}", w.no_changes);
    }
    let mut sorted: Vec<&NoteChange> = changes.iter().collect();
    sorted.sort_by_key(|c| c.number);
    for c in sorted {
        let _ = writeln!(out, "- {} {}", c.number, inline(&c.title));
    }
    let _ = writeln!(out, "\n## {}\n", w.known_issues);
    if release.known_issues.is_empty() {
        let _ = writeln!(out, "{}", w.none);
    }
    for issue in &release.known_issues {
        let _ = writeln!(out, "- {}", item(issue));
    }
    if let Some(r) = &release.rollback {
        let _ = writeln!(out, "\n## {}\n", w.rollback);
        let line = match locale {
            Locale::En => format!("This release was rolled back on {}: {}.", when(r.performed_at), r.outcome.label(locale)),
            Locale::ZhCn => format!("本次发布已于 {}回退：{}。", when(r.performed_at), r.outcome.label(locale)),
        };
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Escapes Markdown's inline syntax.
fn escape_inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '&' | '!') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One line of user text: also neutralises what Markdown reads at the start of a line (list
/// markers, setext underlines, ordered-list numbers, indented code).
fn line(s: &str) -> String {
    let s = escape_inline(s.trim());
    if s.starts_with(['-', '+', '=']) {
        return format!("\\{s}");
    }
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    let rest = &s[digits..];
    if digits > 0 && rest.starts_with(['.', ')']) && rest[1..].chars().next().is_none_or(char::is_whitespace) {
        return format!("{}\\{rest}", &s[..digits]);
    }
    s
}

/// User text shown within a line, after other text.
fn inline(s: &str) -> String {
    escape_inline(&s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// User text that starts a list item.
fn item(s: &str) -> String {
    line(&s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// User text shown as paragraphs, keeping its line breaks.
fn block(s: &str) -> String {
    s.trim().lines().map(line).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::lifecycle::ReleaseStatus;
    use crate::release::plan::RollbackOutcome;
    use crate::release::plan::tests::{at, complete, planned};

    fn changes() -> Vec<NoteChange> {
        vec![
            NoteChange { number: ChangeNumber::new(12).unwrap(), title: "Invoice *PDF* export".into() },
            NoteChange { number: ChangeNumber::new(3).unwrap(), title: "Faster\nsearch".into() },
        ]
    }

    fn deployed() -> crate::release::Release {
        let mut r = planned();
        r.transition(ReleaseStatus::InProgress, None).unwrap();
        for (i, k) in StageKind::ALL.into_iter().enumerate() {
            complete(&mut r, k, i as i64 * 24 + 8, true);
        }
        r.transition(ReleaseStatus::Deployed, None).unwrap();
        r
    }

    #[test]
    fn english_notes() {
        let md = release_notes(&deployed(), &changes(), Locale::En, chrono_tz::Asia::Shanghai);
        let want = "# Release notes: Billing 2.4 (2.4.0)

- **Release:** REL-000001
- **Version:** 2.4.0
- **Status:** Deployed
- **Deployed:** 2026-10-04 16:00 (Asia/Shanghai)

Faster invoices.

## Changes

- CHG-000003 Faster search
- CHG-000012 Invoice \\*PDF\\* export

## Known issues

- Export to PDF is slow
";
        assert_eq!(md, want);
    }

    #[test]
    fn chinese_notes_with_rollback_and_planned_date() {
        let mut r = planned();
        r.transition(ReleaseStatus::InProgress, None).unwrap();
        r.record_rollback(RollbackOutcome::Restored, "x", "ann", at(2)).unwrap();
        r.known_issues.clear();
        let md = release_notes(&r, &[], Locale::ZhCn, chrono_tz::Asia::Shanghai);
        assert!(md.starts_with("# 发布说明：Billing 2.4（2.4.0）\n"), "{md}");
        assert!(md.contains("- **状态：** 进行中\n"));
        assert!(md.contains("- **计划部署时间：** 2026-10-04 08:00（Asia/Shanghai）\n"));
        assert!(md.contains("## 变更内容\n\n无。\n"));
        assert!(md.contains("## 已知问题\n\n无。\n"));
        assert!(md.ends_with("## 回退\n\n本次发布已于 2026-10-01 10:00（Asia/Shanghai）回退：已恢复到原状态。\n"), "{md}");
    }

    #[test]
    fn user_text_cannot_inject_markdown() {
        assert_eq!(inline("# Title"), "\\# Title");
        assert_eq!(item("- item"), "\\- item");
        assert_eq!(item("1. first"), "1\\. first");
        assert_eq!(item("2.4.0 is slow"), "2.4.0 is slow");
        assert_eq!(item("3."), "3\\.");
        assert_eq!(inline("1. not at line start"), "1. not at line start");
        assert_eq!(inline("[click](http://x) <b>&amp;</b>"), "\\[click\\](http://x) \\<b\\>\\&amp;\\</b\\>");
        assert_eq!(block("line one\n    === \n2) two"), "line one\n\\===\n2\\) two");
        assert_eq!(inline("a | b `c`"), "a \\| b \\`c\\`");
    }
}

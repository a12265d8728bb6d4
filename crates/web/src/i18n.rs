//! English and Simplified Chinese for every page of every process: the locale of a request,
//! translated strings, and dates in the reader's time zone.

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid};
use std::borrow::Cow;
use std::collections::HashMap;

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

static EN: LanguageIdentifier = langid!("en");
static ZH: LanguageIdentifier = langid!("zh-CN");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        if s.starts_with("zh") {
            Some(Lang::Zh)
        } else if s.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }
    /// The first supported language in an `Accept-Language` header, by quality.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut tags: Vec<(f32, &str)> = header
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let tag = it.next()?.trim();
                let q = it.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse().ok()).unwrap_or(1.0);
                Some((q, tag))
            })
            .collect();
        tags.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        tags.into_iter().find_map(|(_, t)| Lang::parse(t))
    }
    fn id(self) -> &'static LanguageIdentifier {
        match self {
            Lang::En => &EN,
            Lang::Zh => &ZH,
        }
    }
}

/// A value of a named argument of a message.
pub enum Arg<'a> {
    Text(&'a str),
    Number(i64),
}

/// The translator handed to every template.
#[derive(Debug, Clone)]
pub struct Tr {
    pub lang: Lang,
    pub tz: chrono_tz::Tz,
}

impl Tr {
    pub fn new(lang: Lang, tz: chrono_tz::Tz) -> Self {
        Tr { lang, tz }
    }

    pub fn t(&self, key: &str) -> String {
        LOCALES.lookup(self.lang.id(), key)
    }

    /// Translation with one named argument. A whole number is passed as a number, so that
    /// the message can choose its plural form (`{ $count -> [one] … *[other] … }`).
    pub fn t1(&self, key: &str, name: &str, value: impl std::fmt::Display) -> String {
        let text = value.to_string();
        match text.parse::<i64>() {
            Ok(n) if n.to_string() == text => self.args(key, &[(name, Arg::Number(n))]),
            _ => self.args(key, &[(name, Arg::Text(&text))]),
        }
    }

    /// Translation with named arguments; numbers select plural forms
    /// (`{ $count -> [one] … *[other] … }`).
    pub fn args(&self, key: &str, args: &[(&str, Arg)]) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue> = args
            .iter()
            .map(|(name, v)| {
                let v = match v {
                    Arg::Text(s) => FluentValue::from(s.to_string()),
                    Arg::Number(n) => FluentValue::from(*n),
                };
                (Cow::Owned(name.to_string()), v)
            })
            .collect();
        LOCALES.lookup_with_args(self.lang.id(), key, &args)
    }

    /// Whether a key exists (used by tests that every key is translated).
    pub fn has(&self, key: &str) -> bool {
        LOCALES.try_lookup(self.lang.id(), key).is_some()
    }

    /// A date and time in the reader's zone and language.
    pub fn datetime(&self, ms: &i64) -> String {
        let Some(t) = chrono::DateTime::from_timestamp_millis(*ms) else {
            return String::new();
        };
        let local = t.with_timezone(&self.tz);
        match self.lang {
            Lang::En => local.format("%-d %b %Y %H:%M").to_string(),
            Lang::Zh => local.format("%Y年%-m月%-d日 %H:%M").to_string(),
        }
    }

    pub fn opt_datetime(&self, ms: &Option<i64>) -> String {
        ms.as_ref().map(|m| self.datetime(m)).unwrap_or_default()
    }

    /// A whole number with the locale's grouping.
    pub fn number(&self, n: &i64) -> String {
        let s = n.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if *n < 0 { format!("-{out}") } else { out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_prefers_quality() {
        assert_eq!(Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"), Some(Lang::Zh));
        assert_eq!(Lang::from_accept_language("fr;q=1, en-GB;q=0.5, zh;q=0.4"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("fr"), None);
    }

    #[test]
    fn dates_in_zone_and_language() {
        let en = Tr::new(Lang::En, chrono_tz::Asia::Shanghai);
        let zh = Tr::new(Lang::Zh, chrono_tz::Asia::Shanghai);
        let ms = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        assert_eq!(en.datetime(&ms), "1 Jan 2026 08:00");
        assert_eq!(zh.datetime(&ms), "2026年1月1日 08:00");
        assert_eq!(en.number(&1234567), "1,234,567");
    }
}

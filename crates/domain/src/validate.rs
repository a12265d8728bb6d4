//! Parsed, validated values shared by every process ("parse, don't validate").

use crate::error::FieldError;
use serde::{Deserialize, Serialize};

/// A trimmed, non-empty, bounded piece of text such as a name or title.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> Result<String, FieldError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldError::new(field, "required", format!("{field} is required")));
    }
    if v.chars().count() > max_chars {
        return Err(FieldError::new(field, "too_long", format!("{field} must be at most {max_chars} characters")));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(FieldError::new(field, "invalid_characters", format!("{field} contains control characters")));
    }
    Ok(v.to_string())
}

/// Optional text: empty becomes `None`.
pub fn optional_text(field: &str, value: Option<&str>, max_chars: usize) -> Result<Option<String>, FieldError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => required_text(field, v, max_chars).map(Some),
    }
}

/// A lower-cased e-mail address with one `@`, a dotted or local domain, and no spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let v = value.trim().to_lowercase();
        let bad = || FieldError::new(field, "invalid_email", "not a valid e-mail address");
        if v.is_empty() {
            return Err(FieldError::new(field, "required", format!("{field} is required")));
        }
        if v.len() > 254 || v.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == '"') {
            return Err(bad());
        }
        let (local, domain) = v.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.is_empty()
            || domain.contains('@')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(bad());
        }
        Ok(Email(v))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Email::parse("email", &s).map_err(|e| e.message)
    }
}
impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

/// Password policy: long enough to resist guessing, bounded so hashing stays cheap.
pub fn password(field: &str, value: &str) -> Result<(), FieldError> {
    let n = value.chars().count();
    if n < 10 {
        return Err(FieldError::new(field, "password_too_short", "password must have at least 10 characters"));
    }
    if n > 256 {
        return Err(FieldError::new(field, "too_long", "password must be at most 256 characters"));
    }
    Ok(())
}

/// A short code such as a project code: letters, digits, `-` and `_`.
pub fn code(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let v = required_text(field, value, max)?.to_uppercase();
    if !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(FieldError::new(field, "invalid_code", "use letters, digits, '-' and '_' only"));
    }
    Ok(v)
}

/// IANA time zone name.
pub fn time_zone(field: &str, value: &str) -> Result<chrono_tz::Tz, FieldError> {
    value.trim().parse::<chrono_tz::Tz>().map_err(|_| FieldError::new(field, "invalid_time_zone", "unknown time zone"))
}

/// UI locale: the two Keel ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Locale {
    #[default]
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl Locale {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        match value.trim() {
            "en" | "en-US" | "en-GB" => Ok(Locale::En),
            "zh-CN" | "zh" | "zh-Hans" => Ok(Locale::ZhCn),
            _ => Err(FieldError::new(field, "invalid_locale", "locale must be en or zh-CN")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::ZhCn => "zh-CN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(Email::parse("email", " Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        for bad in ["", "a", "a@", "@b", "a@@b", "a b@c.d", "a@.b", "a@b.", "<a@b.c>"] {
            assert!(Email::parse("email", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn text_rules() {
        assert_eq!(required_text("name", "  x ", 5).unwrap(), "x");
        assert_eq!(required_text("name", "", 5).unwrap_err().code, "required");
        assert_eq!(required_text("name", "打印机打印机", 5).unwrap_err().code, "too_long");
        assert_eq!(required_text("name", "a\u{0}b", 5).unwrap_err().code, "invalid_characters");
        assert_eq!(optional_text("n", Some("  "), 5).unwrap(), None);
    }

    #[test]
    fn codes_and_zones() {
        assert_eq!(code("code", "ab-1", 10).unwrap(), "AB-1");
        assert!(code("code", "a b", 10).is_err());
        assert!(time_zone("tz", "Asia/Shanghai").is_ok());
        assert!(time_zone("tz", "Mars/Base").is_err());
        assert!(password("p", "short").is_err());
        assert!(password("p", "long enough pw").is_ok());
    }
}

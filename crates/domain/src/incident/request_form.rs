//! Service request management: the form of a catalogue item (its fields, kinds and required
//! flags) and the validation of a requester's answers before a REQ ticket is opened.

use crate::error::{DomainError, Errors, FieldError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// At most this many fields on one form.
pub const MAX_FIELDS: usize = 50;
pub const TEXT_MAX: usize = 4000;

super::stable_str_enum! {
    /// What a form field accepts.
    pub enum FieldKind {
        Text => "text",
        Number => "number",
        /// A calendar date, `YYYY-MM-DD`.
        Date => "date",
        /// One of the field's `choices`.
        Choice => "choice",
    }
}

/// One question of a catalogue item's form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormField {
    /// Stable key the answer is stored under: lower-case letters, digits and `_`.
    pub key: String,
    pub label: String,
    pub kind: FieldKind,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

/// Checks a form as an administrator defines it; errors name `fields[i].<part>`.
pub fn check_form(fields: &[FormField]) -> Result<(), DomainError> {
    let mut e = Errors::new();
    if fields.len() > MAX_FIELDS {
        e.push(FieldError::new("fields", "too_many", format!("at most {MAX_FIELDS} fields")));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, f) in fields.iter().enumerate() {
        let key_ok = !f.key.is_empty()
            && f.key.len() <= 40
            && f.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && f.key.starts_with(|c: char| c.is_ascii_lowercase());
        if !key_ok {
            e.push(FieldError::new(format!("fields[{i}].key"), "invalid_key", "start with a letter; use a-z, 0-9 and _ (at most 40)"));
        } else if !seen.insert(f.key.as_str()) {
            e.push(FieldError::new(format!("fields[{i}].key"), "duplicate", "each field needs its own key"));
        }
        e.check(crate::validate::required_text(&format!("fields[{i}].label"), &f.label, 200));
        match f.kind {
            FieldKind::Choice if f.choices.iter().all(|c| c.trim().is_empty()) => {
                e.push(FieldError::new(format!("fields[{i}].choices"), "required", "a choice field needs its choices"));
            }
            FieldKind::Choice => {}
            _ if !f.choices.is_empty() => {
                e.push(FieldError::new(format!("fields[{i}].choices"), "not_allowed", "only choice fields have choices"));
            }
            _ => {}
        }
    }
    e.finish()
}

/// Validates a requester's answers against a form: every required field answered, each answer
/// of its field's kind, no answer to a question the form does not ask. Errors name
/// `answers.<key>`. Returns the answers normalised (numbers as numbers, blanks left out).
pub fn validate_answers(
    fields: &[FormField],
    answers: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, serde_json::Value>, DomainError> {
    let mut e = Errors::new();
    let mut out = BTreeMap::new();
    for key in answers.keys() {
        if !fields.iter().any(|f| &f.key == key) {
            e.push(FieldError::new(format!("answers.{key}"), "unknown_field", "the form has no such question"));
        }
    }
    for f in fields {
        let name = format!("answers.{}", f.key);
        let raw = answers.get(&f.key).map(|s| s.trim()).unwrap_or("");
        if raw.is_empty() {
            if f.required {
                e.push(FieldError::new(name, "required", format!("{} is required", f.label)));
            }
            continue;
        }
        let value = match f.kind {
            FieldKind::Text if raw.chars().count() > TEXT_MAX => {
                e.push(FieldError::new(name, "too_long", format!("at most {TEXT_MAX} characters")));
                continue;
            }
            FieldKind::Text => serde_json::Value::String(raw.to_string()),
            FieldKind::Number => match raw.parse::<f64>().ok().filter(|n| n.is_finite()).and_then(serde_json::Number::from_f64) {
                Some(n) => serde_json::Value::Number(n),
                None => {
                    e.push(FieldError::new(name, "not_a_number", "enter a number"));
                    continue;
                }
            },
            FieldKind::Date => match chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
                Ok(d) => serde_json::Value::String(d.format("%Y-%m-%d").to_string()),
                Err(_) => {
                    e.push(FieldError::new(name, "invalid_date", "enter a date as YYYY-MM-DD"));
                    continue;
                }
            },
            FieldKind::Choice if f.choices.iter().any(|c| c.trim() == raw) => serde_json::Value::String(raw.to_string()),
            FieldKind::Choice => {
                e.push(FieldError::new(name, "invalid_choice", format!("choose one of: {}", f.choices.join(", "))));
                continue;
            }
        };
        out.insert(f.key.clone(), value);
    }
    e.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> Vec<FormField> {
        vec![
            FormField {
                key: "model".into(),
                label: "Model".into(),
                kind: FieldKind::Choice,
                required: true,
                choices: vec!["ThinkPad".into(), "MacBook".into()],
            },
            FormField { key: "quantity".into(), label: "Quantity".into(), kind: FieldKind::Number, required: true, choices: vec![] },
            FormField { key: "needed_by".into(), label: "Needed by".into(), kind: FieldKind::Date, required: false, choices: vec![] },
            FormField { key: "note".into(), label: "Note".into(), kind: FieldKind::Text, required: false, choices: vec![] },
        ]
    }

    fn codes(r: Result<impl std::fmt::Debug, DomainError>) -> Vec<(String, &'static str)> {
        match r {
            Err(DomainError::Invalid(v)) => v.into_iter().map(|f| (f.field, f.code)).collect(),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    fn answers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn good_answers_are_normalised() {
        let a =
            validate_answers(&form(), &answers(&[("model", "MacBook"), ("quantity", " 2 "), ("needed_by", "2026-12-01"), ("note", "")]))
                .unwrap();
        assert_eq!(a["model"], "MacBook");
        assert_eq!(a["quantity"], 2.0);
        assert_eq!(a["needed_by"], "2026-12-01");
        assert!(!a.contains_key("note"), "blank optional answers are left out");
    }

    #[test]
    fn every_bad_answer_is_named() {
        let r = validate_answers(
            &form(),
            &answers(&[("model", "Toaster"), ("quantity", "two"), ("needed_by", "1/12/2026"), ("colour", "red")]),
        );
        assert_eq!(
            codes(r),
            vec![
                ("answers.colour".into(), "unknown_field"),
                ("answers.model".into(), "invalid_choice"),
                ("answers.quantity".into(), "not_a_number"),
                ("answers.needed_by".into(), "invalid_date"),
            ]
        );
        assert_eq!(
            codes(validate_answers(&form(), &answers(&[]))),
            vec![("answers.model".into(), "required"), ("answers.quantity".into(), "required")]
        );
        assert_eq!(
            codes(validate_answers(&form(), &answers(&[("model", "MacBook"), ("quantity", "NaN")]))),
            vec![("answers.quantity".into(), "not_a_number")]
        );
    }

    #[test]
    fn forms_are_checked_when_defined() {
        assert!(check_form(&form()).is_ok());
        let mut bad = form();
        bad[1].key = "model".into();
        bad[2].choices = vec!["x".into()];
        bad[0].choices.clear();
        bad[3].key = "Note!".into();
        assert_eq!(
            codes(check_form(&bad)),
            vec![
                ("fields[0].choices".into(), "required"),
                ("fields[1].key".into(), "duplicate"),
                ("fields[2].choices".into(), "not_allowed"),
                ("fields[3].key".into(), "invalid_key"),
            ]
        );
    }
}

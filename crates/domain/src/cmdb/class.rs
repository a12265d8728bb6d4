//! Configuration management: CI classes (配置项类别) that administrators define, their typed
//! attributes and inheritance, and the validation of a CI's attribute values against its class.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{DomainError, Errors, FieldError};
use crate::validate::{Locale, required_text};

/// Longest text attribute value, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;
/// Longest URL attribute value, in characters.
pub const MAX_URL_CHARS: usize = 2048;
const MAX_KEY_CHARS: usize = 64;
const MAX_LABEL_CHARS: usize = 100;

/// The type of an attribute and the constraints that come with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AttributeType {
    Text,
    Number {
        #[serde(default)]
        integer: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    Enum {
        values: Vec<String>,
    },
    /// The id of another CI; with `class`, only CIs of that class or one of its subclasses.
    Reference {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<String>,
    },
    /// An IPv4 or IPv6 address.
    IpAddress,
    Url,
    Boolean,
}

impl AttributeType {
    pub fn as_str(&self) -> &'static str {
        match self {
            AttributeType::Text => "text",
            AttributeType::Number { .. } => "number",
            AttributeType::Date => "date",
            AttributeType::Enum { .. } => "enum",
            AttributeType::Reference { .. } => "reference",
            AttributeType::IpAddress => "ip_address",
            AttributeType::Url => "url",
            AttributeType::Boolean => "boolean",
        }
    }
    pub fn integer(min: Option<f64>, max: Option<f64>) -> Self {
        AttributeType::Number { integer: true, min, max }
    }
    pub fn number(min: Option<f64>, max: Option<f64>) -> Self {
        AttributeType::Number { integer: false, min, max }
    }
    pub fn choice(values: &[&str]) -> Self {
        AttributeType::Enum { values: values.iter().map(|v| v.to_string()).collect() }
    }
    pub fn reference(class: Option<&str>) -> Self {
        AttributeType::Reference { class: class.map(str::to_string) }
    }
    /// The names [`AttributeType::as_str`] gives, in the order forms offer them.
    pub const NAMES: [&'static str; 8] = ["text", "number", "date", "enum", "reference", "ip_address", "url", "boolean"];

    /// A type from its name as a form or file gives it, with the values of an `enum` and the
    /// class a `reference` points at (blank: any class). `None` for an unknown name.
    pub fn from_parts(name: &str, values: &[String], class: Option<&str>) -> Option<Self> {
        Some(match name.trim() {
            "text" => AttributeType::Text,
            "number" => AttributeType::number(None, None),
            "integer" => AttributeType::integer(None, None),
            "date" => AttributeType::Date,
            "enum" => AttributeType::Enum { values: values.iter().map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect() },
            "reference" => AttributeType::reference(class.map(str::trim).filter(|c| !c.is_empty())),
            "ip_address" => AttributeType::IpAddress,
            "url" => AttributeType::Url,
            "boolean" => AttributeType::Boolean,
            _ => return None,
        })
    }
}

/// One attribute of a CI class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeDef {
    pub key: String,
    pub label_en: String,
    pub label_zh: String,
    #[serde(flatten)]
    pub kind: AttributeType,
    #[serde(default)]
    pub required: bool,
    /// Unique among the CIs of the class that defines the attribute, subclasses included.
    #[serde(default)]
    pub unique: bool,
}

impl AttributeDef {
    pub fn new(key: &str, label_en: &str, label_zh: &str, kind: AttributeType) -> Self {
        AttributeDef { key: key.into(), label_en: label_en.into(), label_zh: label_zh.into(), kind, required: false, unique: false }
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    pub fn label(&self, locale: Locale) -> &str {
        match locale {
            Locale::En => &self.label_en,
            Locale::ZhCn => &self.label_zh,
        }
    }
}

/// A CI class such as `server`. A class inherits every attribute of its ancestors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CiClass {
    pub key: String,
    pub name_en: String,
    pub name_zh: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default)]
    pub attributes: Vec<AttributeDef>,
}

impl CiClass {
    pub fn new(key: &str, name_en: &str, name_zh: &str, parent: Option<&str>, attributes: Vec<AttributeDef>) -> Self {
        CiClass { key: key.into(), name_en: name_en.into(), name_zh: name_zh.into(), parent: parent.map(str::to_string), attributes }
    }
    pub fn name(&self, locale: Locale) -> &str {
        match locale {
            Locale::En => &self.name_en,
            Locale::ZhCn => &self.name_zh,
        }
    }
}

/// What attribute validation needs to know about other CIs; the application answers from the store.
pub trait CiLookup {
    /// The class key of an existing CI, `None` if there is no such CI.
    fn class_of(&self, ci_id: &str) -> Option<String>;
    /// Whether a CI other than `except`, of class `class` or a subclass, already has `value` for
    /// `attribute`. `value` is the normalised value that validation would store.
    fn value_taken(&self, class: &str, attribute: &str, value: &Value, except: Option<&str>) -> bool;
}

/// A consistent set of classes: unique keys, known parents, no inheritance cycle, no attribute
/// defined twice along an inheritance chain, references only to known classes.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassRegistry {
    classes: Vec<CiClass>,
    index: HashMap<String, usize>,
}

impl ClassRegistry {
    /// Checks a whole set of classes; every problem is reported, as `<class key>.<field>`.
    pub fn new(classes: Vec<CiClass>) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        let mut index = HashMap::new();
        for (i, class) in classes.iter().enumerate() {
            for e in check_class_shape(class) {
                errors.push(prefixed(&class.key, e));
            }
            if index.insert(class.key.clone(), i).is_some() {
                errors.push(FieldError::new(
                    format!("{}.key", class.key),
                    "duplicate_class",
                    format!("class {} is defined twice", class.key),
                ));
            }
        }
        let registry = ClassRegistry { classes, index };
        for class in &registry.classes {
            for e in registry.check_in_context(class) {
                errors.push(prefixed(&class.key, e));
            }
        }
        errors.finish()?;
        Ok(registry)
    }

    /// The classes Keel ships with; administrators extend or change them.
    pub fn shipped() -> Self {
        ClassRegistry::new(shipped_classes()).expect("the shipped classes are consistent")
    }

    pub fn classes(&self) -> &[CiClass] {
        &self.classes
    }

    pub fn get(&self, key: &str) -> Option<&CiClass> {
        self.index.get(key).map(|&i| &self.classes[i])
    }

    /// The class itself, then its parent, up to the root.
    pub fn lineage<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a CiClass> + 'a {
        let first = self.get(key);
        std::iter::successors(first, move |c| c.parent.as_deref().and_then(|p| self.get(p))).take(self.classes.len())
    }

    /// Whether `class` is `ancestor` or inherits from it.
    pub fn is_a(&self, class: &str, ancestor: &str) -> bool {
        self.lineage(class).any(|c| c.key == ancestor)
    }

    /// The direct subclasses of `key`.
    pub fn children<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a CiClass> + 'a {
        self.classes.iter().filter(move |c| c.parent.as_deref() == Some(key))
    }

    /// Every attribute of a class, inherited ones first, each with the class that defines it.
    pub fn attributes<'a>(&'a self, key: &str) -> Vec<(&'a CiClass, &'a AttributeDef)> {
        let mut chain: Vec<&CiClass> = self.lineage(key).collect();
        chain.reverse();
        chain.into_iter().flat_map(|c| c.attributes.iter().map(move |a| (c, a))).collect()
    }

    /// A registry with `class` added, or replacing the class with the same key. Problems of the
    /// class are reported by field; problems the change causes in its subclasses (an attribute
    /// now defined twice) as `<subclass key>.<field>`.
    pub fn upsert(&self, class: CiClass) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        for e in check_class_shape(&class) {
            errors.push(e);
        }
        errors.finish()?;
        let mut next = self.clone();
        match next.index.get(&class.key) {
            Some(&i) => next.classes[i] = class.clone(),
            None => {
                next.index.insert(class.key.clone(), next.classes.len());
                next.classes.push(class.clone());
            }
        }
        let own = next.check_in_context(&class);
        if !own.is_empty() {
            return Err(DomainError::Invalid(own));
        }
        let mut errors = Errors::new();
        for other in next.classes.iter().filter(|c| c.key != class.key && next.is_a(&c.key, &class.key)) {
            for e in next.check_in_context(other) {
                errors.push(prefixed(&other.key, e));
            }
        }
        errors.finish()?;
        Ok(next)
    }

    /// A registry without `key`. Refused while subclasses or reference attributes point at it;
    /// whether CIs of the class still exist is the caller's question.
    pub fn remove(&self, key: &str) -> Result<Self, DomainError> {
        if self.get(key).is_none() {
            return Err(DomainError::field("class", "unknown_class", format!("there is no class {key}")));
        }
        if let Some(child) = self.children(key).next() {
            return Err(DomainError::field("class", "class_has_subclasses", format!("class {} inherits from {key}", child.key)));
        }
        for c in &self.classes {
            for a in &c.attributes {
                if matches!(&a.kind, AttributeType::Reference { class: Some(r) } if r == key) {
                    return Err(DomainError::field(
                        "class",
                        "class_referenced",
                        format!("attribute {}.{} refers to class {key}", c.key, a.key),
                    ));
                }
            }
        }
        let classes = self.classes.iter().filter(|c| c.key != key).cloned().collect();
        ClassRegistry::new(classes)
    }

    /// Checks the attribute values of a CI of class `class` (a JSON object) and returns them
    /// normalised: text trimmed, numbers and booleans parsed from strings, IP addresses in
    /// canonical form, blank values dropped. Every problem is reported, each under the
    /// attribute's key. `ci_id` is the CI being updated (`None` on creation).
    pub fn validate_attributes(
        &self,
        class: &str,
        ci_id: Option<&str>,
        values: &Value,
        lookup: &dyn CiLookup,
    ) -> Result<Map<String, Value>, DomainError> {
        if self.get(class).is_none() {
            return Err(DomainError::field("class", "unknown_class", format!("there is no class {class}")));
        }
        let Some(values) = values.as_object() else {
            return Err(DomainError::field("attributes", "not_an_object", "attributes must be a JSON object"));
        };
        let defs = self.attributes(class);
        let mut errors = Errors::new();
        for key in values.keys() {
            if !defs.iter().any(|(_, d)| &d.key == key) {
                errors.push(FieldError::new(key, "unknown_attribute", format!("class {class} has no attribute {key}")));
            }
        }
        let mut out = Map::new();
        for (owner, def) in defs {
            match values.get(&def.key).filter(|v| !is_blank(v)) {
                None if def.required => errors.push(FieldError::new(&def.key, "required", format!("{} is required", def.key))),
                None => {}
                Some(raw) => {
                    let Some(value) = errors.check(self.parse_value(def, raw, ci_id, lookup)) else {
                        continue;
                    };
                    if def.unique && lookup.value_taken(&owner.key, &def.key, &value, ci_id) {
                        errors.push(FieldError::new(&def.key, "not_unique", format!("another {} already has this {}", owner.key, def.key)));
                        continue;
                    }
                    out.insert(def.key.clone(), value);
                }
            }
        }
        errors.finish()?;
        Ok(out)
    }

    fn parse_value(&self, def: &AttributeDef, raw: &Value, ci_id: Option<&str>, lookup: &dyn CiLookup) -> Result<Value, FieldError> {
        let field = def.key.as_str();
        let err = |code: &'static str, message: String| FieldError::new(field, code, message);
        match &def.kind {
            AttributeType::Text => {
                let s = raw.as_str().ok_or_else(|| err("expected_text", format!("{field} must be text")))?;
                required_text(field, s, MAX_TEXT_CHARS).map(Value::String)
            }
            AttributeType::Number { integer, min, max } => {
                let n = match raw {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                }
                .filter(|n| n.is_finite())
                .ok_or_else(|| err("expected_number", format!("{field} must be a number")))?;
                if *integer && (n.fract() != 0.0 || n.abs() > 9_007_199_254_740_992.0) {
                    return Err(err("expected_integer", format!("{field} must be a whole number")));
                }
                if let Some(min) = min.filter(|m| n < *m) {
                    return Err(err("below_minimum", format!("{field} must be at least {min}")));
                }
                if let Some(max) = max.filter(|m| n > *m) {
                    return Err(err("above_maximum", format!("{field} must be at most {max}")));
                }
                Ok(if *integer { Value::from(n as i64) } else { Value::from(n) })
            }
            AttributeType::Date => raw
                .as_str()
                .and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok())
                .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
                .ok_or_else(|| err("invalid_date", format!("{field} must be a date (YYYY-MM-DD)"))),
            AttributeType::Enum { values } => {
                let s = raw.as_str().map(str::trim).unwrap_or_default();
                if values.iter().any(|v| v == s) {
                    Ok(Value::String(s.to_string()))
                } else {
                    Err(err("invalid_choice", format!("{field} must be one of: {}", values.join(", "))))
                }
            }
            AttributeType::Reference { class } => {
                let id = raw.as_str().map(str::trim).filter(|s| !s.is_empty());
                let id = id.ok_or_else(|| err("invalid_reference", format!("{field} must be the id of a CI")))?;
                if Some(id) == ci_id {
                    return Err(err("self_reference", format!("{field} cannot refer to the CI itself")));
                }
                let actual = lookup.class_of(id).ok_or_else(|| err("unknown_ci", format!("there is no CI {id}")))?;
                if let Some(expected) = class
                    && !self.is_a(&actual, expected)
                {
                    return Err(err("wrong_class", format!("{field} must refer to a CI of class {expected}")));
                }
                Ok(Value::String(id.to_string()))
            }
            AttributeType::IpAddress => raw
                .as_str()
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
                .map(|ip| Value::String(ip.to_string()))
                .ok_or_else(|| err("invalid_ip_address", format!("{field} must be an IPv4 or IPv6 address"))),
            AttributeType::Url => raw
                .as_str()
                .and_then(normalise_url)
                .map(Value::String)
                .ok_or_else(|| err("invalid_url", format!("{field} must be a URL such as https://example.com/"))),
            AttributeType::Boolean => match raw {
                Value::Bool(b) => Ok(Value::Bool(*b)),
                Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
                Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
                _ => Err(err("expected_boolean", format!("{field} must be true or false"))),
            },
        }
    }

    /// Checks of one class that need the other classes.
    fn check_in_context(&self, class: &CiClass) -> Vec<FieldError> {
        let mut out = Vec::new();
        if let Some(parent) = &class.parent {
            if self.get(parent).is_none() {
                out.push(FieldError::new("parent", "unknown_class", format!("there is no class {parent}")));
            } else if self.has_cycle_from(&class.key) {
                out.push(FieldError::new("parent", "class_cycle", format!("class {} would inherit from itself", class.key)));
                return out;
            }
        }
        let inherited: HashSet<&str> = self.lineage(&class.key).skip(1).flat_map(|c| c.attributes.iter().map(|a| a.key.as_str())).collect();
        for (i, a) in class.attributes.iter().enumerate() {
            if inherited.contains(a.key.as_str()) {
                out.push(FieldError::new(
                    format!("attributes[{i}].key"),
                    "duplicate_attribute",
                    format!("{} is already inherited from a parent class", a.key),
                ));
            }
            if let AttributeType::Reference { class: Some(target) } = &a.kind
                && self.get(target).is_none()
            {
                out.push(FieldError::new(format!("attributes[{i}].class"), "unknown_class", format!("there is no class {target}")));
            }
        }
        out
    }

    fn has_cycle_from(&self, key: &str) -> bool {
        let mut seen = HashSet::new();
        let mut current = Some(key);
        while let Some(k) = current {
            if !seen.insert(k) {
                return true;
            }
            current = self.get(k).and_then(|c| c.parent.as_deref());
        }
        false
    }

    /// Whether giving `class` the parent `parent` would make the hierarchy cyclic.
    pub fn would_create_cycle(&self, class: &str, parent: &str) -> bool {
        self.is_a(parent, class)
    }
}

fn prefixed(class: &str, e: FieldError) -> FieldError {
    FieldError { field: format!("{class}.{}", e.field), ..e }
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn is_key(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= MAX_KEY_CHARS
}

/// Checks of one class on its own: keys, labels and attribute definitions.
fn check_class_shape(class: &CiClass) -> Vec<FieldError> {
    let mut out = Vec::new();
    if !is_key(&class.key) {
        out.push(FieldError::new("key", "invalid_key", "use lower-case letters, digits and '_', starting with a letter"));
    }
    for (field, v) in [("name_en", &class.name_en), ("name_zh", &class.name_zh)] {
        if let Err(e) = required_text(field, v, MAX_LABEL_CHARS) {
            out.push(e);
        }
    }
    if class.parent.as_deref() == Some(class.key.as_str()) {
        out.push(FieldError::new("parent", "class_cycle", "a class cannot be its own parent"));
    }
    let mut keys = HashSet::new();
    for (i, a) in class.attributes.iter().enumerate() {
        let at = |f: &str| format!("attributes[{i}].{f}");
        if !is_key(&a.key) {
            out.push(FieldError::new(at("key"), "invalid_key", "use lower-case letters, digits and '_', starting with a letter"));
        } else if !keys.insert(a.key.as_str()) {
            out.push(FieldError::new(at("key"), "duplicate_attribute", format!("{} is defined twice", a.key)));
        }
        for (f, v) in [("label_en", &a.label_en), ("label_zh", &a.label_zh)] {
            if let Err(e) = required_text(&at(f), v, MAX_LABEL_CHARS) {
                out.push(e);
            }
        }
        match &a.kind {
            AttributeType::Number { min: Some(min), max: Some(max), .. } if min > max => {
                out.push(FieldError::new(at("min"), "invalid_range", "min must not exceed max"));
            }
            AttributeType::Number { min, max, .. } if min.is_some_and(|v| !v.is_finite()) || max.is_some_and(|v| !v.is_finite()) => {
                out.push(FieldError::new(at("min"), "invalid_range", "min and max must be finite numbers"));
            }
            AttributeType::Enum { values } => {
                let mut seen = HashSet::new();
                if values.is_empty() {
                    out.push(FieldError::new(at("values"), "required", "an enumeration needs at least one value"));
                }
                for v in values {
                    if v.trim().is_empty() || v.trim() != v || v.chars().count() > MAX_LABEL_CHARS {
                        out.push(FieldError::new(at("values"), "invalid_value", format!("invalid allowed value {v:?}")));
                    } else if !seen.insert(v.as_str()) {
                        out.push(FieldError::new(at("values"), "duplicate_value", format!("{v} is listed twice")));
                    }
                }
            }
            _ => {}
        }
        if a.unique && matches!(a.kind, AttributeType::Boolean) {
            out.push(FieldError::new(at("unique"), "invalid_unique", "a boolean attribute cannot be unique"));
        }
    }
    out
}

/// A syntactically sound absolute URL (`scheme://authority/...`), with the scheme lower-cased.
fn normalise_url(s: &str) -> Option<String> {
    let s = s.trim();
    if s.chars().count() > MAX_URL_CHARS || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = s.split_once("://")?;
    let mut sc = scheme.chars();
    if !sc.next()?.is_ascii_alphabetic() || !sc.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok())) {
            return None;
        }
        inside
    } else {
        let (host, port) = host_port.split_once(':').map_or((host_port, None), |(h, p)| (h, Some(p)));
        if port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return None;
        }
        if !host.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_')) {
            return None;
        }
        host
    };
    let scheme = scheme.to_ascii_lowercase();
    if host.is_empty() && scheme != "file" {
        return None;
    }
    Some(format!("{scheme}://{rest}"))
}

const ENVIRONMENTS: &[&str] = &["production", "staging", "test", "development", "disaster_recovery"];
const CRITICALITY: &[&str] = &["low", "medium", "high", "critical"];

/// The classes Keel ships with, as data.
pub fn shipped_classes() -> Vec<CiClass> {
    use AttributeType as T;
    let a = AttributeDef::new;
    let serial = || a("serial_number", "Serial number", "序列号", T::Text).unique();
    let location = || a("location", "Location", "位置", T::reference(Some("location")));
    let vendor = || a("vendor", "Vendor", "厂商", T::Text);
    let environment = || a("environment", "Environment", "环境", T::choice(ENVIRONMENTS));
    vec![
        CiClass::new(
            "service",
            "Service",
            "服务",
            None,
            vec![
                a("service_code", "Service code", "服务编码", T::Text).required().unique(),
                a(
                    "service_line",
                    "Service line",
                    "服务线",
                    T::choice(&[
                        "infrastructure",
                        "operations_maintenance",
                        "professional_technical",
                        "it_security",
                        "consulting_design_assessment",
                        "training",
                    ]),
                ),
                a("criticality", "Criticality", "关键程度", T::choice(CRITICALITY)).required(),
                a("service_hours", "Service hours", "服务时间", T::Text),
                a("availability_target", "Availability target (%)", "可用性目标（%）", T::number(Some(0.0), Some(100.0))),
                a("portal_url", "Portal URL", "门户地址", T::Url),
            ],
        ),
        CiClass::new(
            "application",
            "Application",
            "应用",
            None,
            vec![
                a("version", "Version", "版本", T::Text),
                vendor(),
                environment(),
                a("criticality", "Criticality", "关键程度", T::choice(CRITICALITY)),
                a("url", "URL", "访问地址", T::Url),
                a("licence_count", "Licences", "许可证数量", T::integer(Some(0.0), None)),
            ],
        ),
        CiClass::new(
            "database",
            "Database",
            "数据库",
            Some("application"),
            vec![
                a(
                    "engine",
                    "Engine",
                    "数据库类型",
                    T::choice(&["postgresql", "mysql", "oracle", "sql_server", "sqlite", "mongodb", "redis", "dameng", "other"]),
                )
                .required(),
                a("port", "Port", "端口", T::integer(Some(1.0), Some(65535.0))),
                a("size_gb", "Size (GB)", "容量（GB）", T::number(Some(0.0), None)),
                a("backup_enabled", "Backed up", "已备份", T::Boolean),
            ],
        ),
        CiClass::new(
            "server",
            "Server",
            "服务器",
            None,
            vec![
                a("hostname", "Host name", "主机名", T::Text).required(),
                a("ip_address", "IP address", "IP地址", T::IpAddress),
                a("operating_system", "Operating system", "操作系统", T::Text),
                a("os_version", "OS version", "操作系统版本", T::Text),
                a("cpu_cores", "CPU cores", "CPU核数", T::integer(Some(1.0), None)),
                a("memory_gb", "Memory (GB)", "内存（GB）", T::number(Some(0.0), None)),
                environment(),
                vendor(),
                a("model", "Model", "型号", T::Text),
                serial(),
                location(),
                a("warranty_end", "Warranty end", "保修截止日期", T::Date),
            ],
        ),
        CiClass::new(
            "virtual_machine",
            "Virtual machine",
            "虚拟机",
            Some("server"),
            vec![
                a("host", "Host", "宿主机", T::reference(Some("server"))),
                a("hypervisor", "Hypervisor", "虚拟化平台", T::choice(&["vmware", "kvm", "hyper_v", "xen", "openstack", "cloud", "other"])),
            ],
        ),
        CiClass::new(
            "network_device",
            "Network device",
            "网络设备",
            None,
            vec![
                a("hostname", "Host name", "主机名", T::Text).required(),
                a(
                    "device_type",
                    "Device type",
                    "设备类型",
                    T::choice(&["router", "switch", "firewall", "load_balancer", "wireless_controller", "access_point", "other"]),
                )
                .required(),
                a("management_ip", "Management IP", "管理IP", T::IpAddress),
                vendor(),
                a("model", "Model", "型号", T::Text),
                a("firmware_version", "Firmware version", "固件版本", T::Text),
                a("port_count", "Ports", "端口数", T::integer(Some(0.0), None)),
                serial(),
                location(),
            ],
        ),
        CiClass::new(
            "storage",
            "Storage",
            "存储",
            None,
            vec![
                a("storage_type", "Storage type", "存储类型", T::choice(&["san", "nas", "das", "object", "backup", "other"])).required(),
                a("capacity_tb", "Capacity (TB)", "容量（TB）", T::number(Some(0.0), None)),
                a("management_ip", "Management IP", "管理IP", T::IpAddress),
                vendor(),
                a("model", "Model", "型号", T::Text),
                serial(),
                location(),
            ],
        ),
        CiClass::new(
            "location",
            "Location",
            "位置",
            None,
            vec![
                a("site_code", "Site code", "站点编码", T::Text).unique(),
                a(
                    "location_type",
                    "Location type",
                    "位置类型",
                    T::choice(&["data_center", "office", "room", "rack", "cloud_region", "other"]),
                ),
                a("address", "Address", "地址", T::Text),
                a("city", "City", "城市", T::Text),
                a("country", "Country", "国家", T::Text),
            ],
        ),
        CiClass::new(
            "document",
            "Document",
            "文件",
            None,
            vec![
                a("document_number", "Document number", "文件编号", T::Text).required().unique(),
                a("version", "Version", "版本", T::Text),
                a("tier", "Tier", "文件层级", T::choice(&["a_manual", "b_procedure", "c_work_instruction", "d_record"])),
                a("classification", "Confidentiality level", "密级", T::choice(&["public", "internal", "confidential", "secret"])),
                a("effective_date", "Effective date", "生效日期", T::Date),
                a("url", "Link", "链接", T::Url),
            ],
        ),
        CiClass::new(
            "contract",
            "Contract",
            "合同",
            None,
            vec![
                a("contract_number", "Contract number", "合同编号", T::Text).required().unique(),
                a("counterparty", "Counterparty", "合同相对方", T::Text).required(),
                a(
                    "contract_type",
                    "Contract type",
                    "合同类型",
                    T::choice(&["customer", "underpinning", "licence", "maintenance", "other"]),
                ),
                a("start_date", "Start date", "开始日期", T::Date).required(),
                a("end_date", "End date", "结束日期", T::Date),
                a("value", "Value", "金额", T::number(Some(0.0), None)),
                a("currency", "Currency", "币种", T::Text),
                a("renewal_notice_days", "Renewal notice (days)", "续约提前通知天数", T::integer(Some(0.0), None)),
                a("document", "Contract document", "合同文件", T::reference(Some("document"))),
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    /// CIs by id with their class, and attribute values already taken per (class, attribute).
    #[derive(Default)]
    struct Directory {
        classes: HashMap<String, String>,
        taken: Vec<(String, String, Value, String)>,
    }
    impl CiLookup for Directory {
        fn class_of(&self, id: &str) -> Option<String> {
            self.classes.get(id).cloned()
        }
        fn value_taken(&self, class: &str, attribute: &str, value: &Value, except: Option<&str>) -> bool {
            self.taken.iter().any(|(c, a, v, id)| c == class && a == attribute && v == value && Some(id.as_str()) != except)
        }
    }

    fn dir() -> Directory {
        let mut d = Directory::default();
        d.classes.insert("loc-1".into(), "location".into());
        d.classes.insert("srv-1".into(), "server".into());
        d.classes.insert("vm-1".into(), "virtual_machine".into());
        d.taken.push(("server".into(), "serial_number".into(), json!("SN-1"), "srv-1".into()));
        d
    }

    fn codes(e: DomainError) -> Vec<(String, &'static str)> {
        match e {
            DomainError::Invalid(v) => v.into_iter().map(|f| (f.field, f.code)).collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn shipped_classes_are_consistent_and_inherit() {
        let r = ClassRegistry::shipped();
        for key in [
            "service",
            "application",
            "database",
            "server",
            "virtual_machine",
            "network_device",
            "storage",
            "location",
            "document",
            "contract",
        ] {
            assert!(r.get(key).is_some(), "{key} missing");
        }
        assert!(r.is_a("virtual_machine", "server"));
        assert!(!r.is_a("server", "virtual_machine"));
        let vm: Vec<&str> = r.attributes("virtual_machine").iter().map(|(_, a)| a.key.as_str()).collect();
        assert_eq!(vm.first(), Some(&"hostname"), "inherited attributes come first");
        assert!(vm.contains(&"hypervisor"));
        let (owner, _) = r.attributes("virtual_machine").into_iter().find(|(_, a)| a.key == "serial_number").unwrap();
        assert_eq!(owner.key, "server");
        assert_eq!(r.get("server").unwrap().name(Locale::ZhCn), "服务器");
    }

    #[test]
    fn valid_values_are_normalised() {
        let r = ClassRegistry::shipped();
        let v = json!({
            "hostname": "  web-01 ",
            "ip_address": "2001:0db8:0000:0000:0000:0000:0000:0001",
            "cpu_cores": "8",
            "memory_gb": 15.5,
            "warranty_end": "2027-01-31",
            "location": "loc-1",
            "environment": "production",
            "serial_number": "SN-2",
            "os_version": "",
            "model": null,
        });
        let out = r.validate_attributes("server", None, &v, &dir()).unwrap();
        assert_eq!(out["hostname"], json!("web-01"));
        assert_eq!(out["ip_address"], json!("2001:db8::1"));
        assert_eq!(out["cpu_cores"], json!(8));
        assert_eq!(out["memory_gb"], json!(15.5));
        assert!(!out.contains_key("os_version") && !out.contains_key("model"), "blank values are dropped");
    }

    #[test]
    fn every_error_is_reported_under_the_attribute_name() {
        let r = ClassRegistry::shipped();
        let v = json!({
            "ip_address": "300.1.1.1",
            "cpu_cores": 2.5,
            "memory_gb": -1,
            "warranty_end": "31/01/2027",
            "location": "srv-1",
            "environment": "prod",
            "serial_number": "SN-1",
            "colour": "red",
            "operating_system": 12,
        });
        let mut got = codes(r.validate_attributes("server", None, &v, &dir()).unwrap_err());
        got.sort();
        let mut want = vec![
            ("colour", "unknown_attribute"),
            ("cpu_cores", "expected_integer"),
            ("environment", "invalid_choice"),
            ("hostname", "required"),
            ("ip_address", "invalid_ip_address"),
            ("location", "wrong_class"),
            ("memory_gb", "below_minimum"),
            ("operating_system", "expected_text"),
            ("serial_number", "not_unique"),
            ("warranty_end", "invalid_date"),
        ];
        want.sort();
        assert_eq!(got, want.into_iter().map(|(f, c)| (f.to_string(), c)).collect::<Vec<_>>());
    }

    #[test]
    fn uniqueness_ignores_the_ci_itself_and_spans_subclasses() {
        let r = ClassRegistry::shipped();
        let v = json!({"hostname": "a", "serial_number": "SN-1"});
        assert!(r.validate_attributes("server", Some("srv-1"), &v, &dir()).is_ok());
        let e = r.validate_attributes("virtual_machine", Some("vm-1"), &v, &dir()).unwrap_err();
        assert_eq!(codes(e), vec![("serial_number".to_string(), "not_unique")]);
    }

    #[test]
    fn references_accept_subclasses_and_refuse_unknown_or_self() {
        let r = ClassRegistry::shipped();
        let ok = json!({"hostname": "vm", "host": "vm-1"});
        assert!(r.validate_attributes("virtual_machine", Some("vm-2"), &ok, &dir()).is_ok());
        let own = r.validate_attributes("virtual_machine", Some("vm-1"), &ok, &dir()).unwrap_err();
        assert_eq!(codes(own), vec![("host".to_string(), "self_reference")]);
        let missing = json!({"hostname": "vm", "host": "nope"});
        let e = r.validate_attributes("virtual_machine", None, &missing, &dir()).unwrap_err();
        assert_eq!(codes(e), vec![("host".to_string(), "unknown_ci")]);
    }

    #[test]
    fn other_types() {
        let r = ClassRegistry::shipped();
        let d = dir();
        let ok = json!({"service_code": "S1", "criticality": "high", "portal_url": "HTTPS://portal.example.com:8443/x?y#z", "availability_target": 99.9});
        let out = r.validate_attributes("service", None, &ok, &d).unwrap();
        assert_eq!(out["portal_url"], json!("https://portal.example.com:8443/x?y#z"));
        for bad in ["portal.example.com", "https://", "https://a b", "https://host:99999/", "1http://x", "https://[zz]/"] {
            let v = json!({"service_code": "S1", "criticality": "high", "portal_url": bad});
            assert_eq!(
                codes(r.validate_attributes("service", None, &v, &d).unwrap_err()),
                vec![("portal_url".into(), "invalid_url")],
                "{bad}"
            );
        }
        let v = json!({"service_code": "S1", "criticality": "high", "availability_target": 100.5});
        assert_eq!(
            codes(r.validate_attributes("service", None, &v, &d).unwrap_err()),
            vec![("availability_target".into(), "above_maximum")]
        );
        let db = json!({"engine": "postgresql", "backup_enabled": "TRUE", "port": 5432});
        assert_eq!(r.validate_attributes("database", None, &db, &d).unwrap()["backup_enabled"], json!(true));
        let db = json!({"engine": "postgresql", "backup_enabled": "yes"});
        assert_eq!(
            codes(r.validate_attributes("database", None, &db, &d).unwrap_err()),
            vec![("backup_enabled".into(), "expected_boolean")]
        );
        let ipv4 = json!({"hostname": "h", "ip_address": " 10.0.0.1 "});
        assert_eq!(r.validate_attributes("server", None, &ipv4, &d).unwrap()["ip_address"], json!("10.0.0.1"));
        let e = r.validate_attributes("server", None, &json!([1]), &d).unwrap_err();
        assert_eq!(codes(e), vec![("attributes".into(), "not_an_object")]);
        let e = r.validate_attributes("nope", None, &json!({}), &d).unwrap_err();
        assert_eq!(codes(e), vec![("class".into(), "unknown_class")]);
    }

    #[test]
    fn hierarchy_cycles_and_bad_definitions_are_refused() {
        let r = ClassRegistry::shipped();
        let mut server = r.get("server").unwrap().clone();
        server.parent = Some("virtual_machine".into());
        assert!(r.would_create_cycle("server", "virtual_machine"));
        assert_eq!(codes(r.upsert(server).unwrap_err()), vec![("parent".into(), "class_cycle")]);

        let mut self_parent = r.get("storage").unwrap().clone();
        self_parent.parent = Some("storage".into());
        assert!(r.upsert(self_parent).is_err());

        let cyclic = vec![CiClass::new("a", "A", "甲", Some("b"), vec![]), CiClass::new("b", "B", "乙", Some("a"), vec![])];
        let got = codes(ClassRegistry::new(cyclic).unwrap_err());
        assert!(got.iter().all(|(_, c)| *c == "class_cycle") && got.len() == 2, "{got:?}");

        let shadow = CiClass::new(
            "blade",
            "Blade",
            "刀片服务器",
            Some("server"),
            vec![AttributeDef::new("hostname", "Host", "主机", AttributeType::Text)],
        );
        assert_eq!(codes(r.upsert(shadow).unwrap_err()), vec![("attributes[0].key".into(), "duplicate_attribute")]);

        let bad = CiClass::new(
            "Bad Key",
            "",
            "坏",
            Some("ghost"),
            vec![
                AttributeDef::new("e", "E", "E", AttributeType::choice(&[])),
                AttributeDef::new("n", "N", "N", AttributeType::number(Some(5.0), Some(1.0))),
                AttributeDef::new("r", "R", "R", AttributeType::reference(Some("ghost"))),
                AttributeDef::new("n", "N", "N", AttributeType::Boolean).unique(),
            ],
        );
        let mut got: Vec<&str> = codes(r.upsert(bad).unwrap_err()).into_iter().map(|(_, c)| c).collect();
        got.sort();
        assert_eq!(got, vec!["duplicate_attribute", "invalid_key", "invalid_range", "invalid_unique", "required", "required"]);
        let bad_ref =
            CiClass::new("x", "X", "X", Some("ghost"), vec![AttributeDef::new("r", "R", "R", AttributeType::reference(Some("ghost")))]);
        let mut got: Vec<&str> = codes(r.upsert(bad_ref).unwrap_err()).into_iter().map(|(_, c)| c).collect();
        got.sort();
        assert_eq!(got, vec!["unknown_class", "unknown_class"]);
    }

    #[test]
    fn changing_a_parent_rechecks_its_subclasses() {
        let r = ClassRegistry::shipped();
        let mut server = r.get("server").unwrap().clone();
        server.attributes.push(AttributeDef::new("hypervisor", "Hypervisor", "虚拟化平台", AttributeType::Text));
        let got = codes(r.upsert(server).unwrap_err());
        assert_eq!(got, vec![("virtual_machine.attributes[1].key".into(), "duplicate_attribute")]);
    }

    #[test]
    fn classes_can_be_added_and_removed() {
        let r = ClassRegistry::shipped();
        let blade = CiClass::new(
            "blade",
            "Blade",
            "刀片服务器",
            Some("server"),
            vec![AttributeDef::new("slot", "Slot", "槽位", AttributeType::integer(Some(1.0), Some(16.0))).required()],
        );
        let r = r.upsert(blade).unwrap();
        assert!(r.is_a("blade", "server"));
        assert_eq!(r.attributes("blade").last().unwrap().1.key, "slot");
        assert_eq!(codes(r.remove("server").unwrap_err()), vec![("class".into(), "class_has_subclasses")]);
        assert_eq!(codes(r.remove("location").unwrap_err()), vec![("class".into(), "class_referenced")]);
        let r = r.remove("blade").unwrap();
        assert!(r.get("blade").is_none());
    }

    #[test]
    fn definitions_round_trip_through_json() {
        let r = ClassRegistry::shipped();
        let json = serde_json::to_value(r.classes()).unwrap();
        assert_eq!(json[3]["attributes"][4]["type"], "number");
        assert_eq!(json[3]["attributes"][4]["integer"], true);
        let back: Vec<CiClass> = serde_json::from_value(json).unwrap();
        assert_eq!(back, r.classes());
    }

    #[test]
    fn attribute_types_come_from_their_form_names() {
        let values = vec!["gold".to_string(), " ".to_string(), "silver".to_string()];
        assert_eq!(AttributeType::from_parts("enum", &values, None), Some(AttributeType::choice(&["gold", "silver"])));
        assert_eq!(AttributeType::from_parts("reference", &[], Some("server")), Some(AttributeType::reference(Some("server"))));
        assert_eq!(AttributeType::from_parts("reference", &[], Some(" ")), Some(AttributeType::reference(None)));
        assert_eq!(AttributeType::from_parts("ip_address", &[], None), Some(AttributeType::IpAddress));
        assert_eq!(AttributeType::from_parts("colour", &[], None), None);
        for name in AttributeType::NAMES {
            assert_eq!(AttributeType::from_parts(name, &["a".into()], None).map(|t| t.as_str()), Some(name));
        }
    }
}

//! Change management: the human number of a change (CHG-000001).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A change's human number, issued from a counter starting at 1. Six digits are zero-padded;
/// larger numbers simply grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChangeNumber(u64);

impl ChangeNumber {
    pub const PREFIX: &'static str = "CHG-";

    /// `None` for 0: counters start at 1.
    pub fn new(n: u64) -> Option<Self> {
        (n > 0).then_some(ChangeNumber(n))
    }

    pub fn value(self) -> u64 {
        self.0
    }

    /// Parses `CHG-000042` (the prefix in any case).
    pub fn parse(s: &str) -> Option<Self> {
        parse_human(Self::PREFIX, s).and_then(Self::new)
    }
}

impl fmt::Display for ChangeNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:06}", Self::PREFIX, self.0)
    }
}

/// The number in `PREFIX000042`: the prefix in any case, then at least six digits.
pub(crate) fn parse_human(prefix: &str, s: &str) -> Option<u64> {
    let s = s.trim();
    let head = s.get(..prefix.len())?;
    let digits = &s[prefix.len()..];
    if !head.eq_ignore_ascii_case(prefix) || digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl TryFrom<String> for ChangeNumber {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("{s} is not a change number"))
    }
}

impl From<ChangeNumber> for String {
    fn from(n: ChangeNumber) -> String {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse() {
        let n = ChangeNumber::new(42).unwrap();
        assert_eq!(n.to_string(), "CHG-000042");
        assert_eq!(ChangeNumber::parse("chg-000042"), Some(n));
        assert_eq!(ChangeNumber::new(1_234_567).unwrap().to_string(), "CHG-1234567");
        assert_eq!(ChangeNumber::parse("CHG-1234567").map(ChangeNumber::value), Some(1_234_567));
        for bad in ["CHG-000000", "CHG-42", "REL-000042", "CHG-00004x", "", "CHG-", "CHG-+00042"] {
            assert_eq!(ChangeNumber::parse(bad), None, "{bad}");
        }
        assert_eq!(ChangeNumber::new(0), None);
        assert_eq!(serde_json::to_value(n).unwrap(), "CHG-000042");
        assert_eq!(serde_json::from_value::<ChangeNumber>("CHG-000042".into()).unwrap(), n);
    }
}

//! Release management: the human number of a release (REL-000001).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::change::number::parse_human;

/// A release's human number, issued from a counter starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReleaseNumber(u64);

impl ReleaseNumber {
    pub const PREFIX: &'static str = "REL-";

    /// `None` for 0: counters start at 1.
    pub fn new(n: u64) -> Option<Self> {
        (n > 0).then_some(ReleaseNumber(n))
    }

    pub fn value(self) -> u64 {
        self.0
    }

    /// Parses `REL-000042` (the prefix in any case).
    pub fn parse(s: &str) -> Option<Self> {
        parse_human(Self::PREFIX, s).and_then(Self::new)
    }
}

impl fmt::Display for ReleaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:06}", Self::PREFIX, self.0)
    }
}

impl TryFrom<String> for ReleaseNumber {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("{s} is not a release number"))
    }
}

impl From<ReleaseNumber> for String {
    fn from(n: ReleaseNumber) -> String {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse() {
        let n = ReleaseNumber::new(7).unwrap();
        assert_eq!(n.to_string(), "REL-000007");
        assert_eq!(ReleaseNumber::parse(" rel-000007 "), Some(n));
        assert_eq!(ReleaseNumber::parse("CHG-000007"), None);
        assert_eq!(ReleaseNumber::parse("REL-000000"), None);
        assert_eq!(ReleaseNumber::parse("REL-7"), None);
        assert_eq!(serde_json::to_value(n).unwrap(), "REL-000007");
        assert!(serde_json::from_value::<ReleaseNumber>("REL-x".into()).is_err());
    }
}

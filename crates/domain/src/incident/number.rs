//! Service desk: ticket kinds and the human numbers people quote on the phone (INC-000042).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Digits a human number is padded to. Numbers past 999999 simply grow longer.
pub const NUMBER_WIDTH: usize = 6;
/// Longest digit run accepted when parsing, so parsing never overflows.
const MAX_DIGITS: usize = 12;

/// Formats a per-type counter value as `PREFIX-000042`.
pub fn format_number(prefix: &str, seq: u64) -> String {
    format!("{prefix}-{seq:0width$}", width = NUMBER_WIDTH)
}

/// Parses `PREFIX-000042` back to its counter value. Lenient with what people type (surrounding
/// blanks, lower case, fewer leading zeros: `inc-42`), strict about everything else; zero is
/// never a valid number because counters start at 1.
pub fn parse_number(prefix: &str, s: &str) -> Option<u64> {
    let s = s.trim();
    let (p, digits) = s.split_once('-')?;
    if !p.eq_ignore_ascii_case(prefix) || digits.is_empty() || digits.len() > MAX_DIGITS {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok().filter(|n| *n > 0)
}

stable_str_enum! {
    /// The two kinds of ticket the service desk handles; both follow the same lifecycle.
    pub enum TicketKind {
        Incident => "incident",
        ServiceRequest => "service_request",
    }
}

impl TicketKind {
    pub fn prefix(self) -> &'static str {
        match self {
            TicketKind::Incident => "INC",
            TicketKind::ServiceRequest => "REQ",
        }
    }
}

/// A ticket's human number: its kind and its counter value (from a counter row per kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketNumber {
    kind: TicketKind,
    seq: u64,
}

impl TicketNumber {
    /// `None` for zero: counters start at 1.
    pub fn new(kind: TicketKind, seq: u64) -> Option<Self> {
        (seq > 0).then_some(TicketNumber { kind, seq })
    }
    pub fn kind(self) -> TicketKind {
        self.kind
    }
    pub fn seq(self) -> u64 {
        self.seq
    }
    /// Parses `INC-000042` or `REQ-000042` (see [`parse_number`] for what is tolerated).
    pub fn parse(s: &str) -> Option<Self> {
        [TicketKind::Incident, TicketKind::ServiceRequest]
            .into_iter()
            .find_map(|kind| parse_number(kind.prefix(), s).map(|seq| TicketNumber { kind, seq }))
    }
}

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_number(self.kind.prefix(), self.seq))
    }
}

impl Serialize for TicketNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TicketNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TicketNumber::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not a ticket number: {s}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_and_parses() {
        let n = TicketNumber::new(TicketKind::Incident, 42).unwrap();
        assert_eq!(n.to_string(), "INC-000042");
        assert_eq!(TicketNumber::parse("INC-000042"), Some(n));
        assert_eq!(TicketNumber::parse(" inc-42 "), Some(n));
        let r = TicketNumber::parse("REQ-000007").unwrap();
        assert_eq!((r.kind(), r.seq()), (TicketKind::ServiceRequest, 7));
        assert_eq!(TicketNumber::new(TicketKind::Incident, 1_234_567).unwrap().to_string(), "INC-1234567");
    }

    #[test]
    fn rejects_malformed_numbers() {
        for bad in
            ["", "INC", "INC-", "INC-0", "INC-000000", "PRB-000001", "INC000042", "INC-+42", "INC- 42", "INC-4a", "INC-0000000000042"]
        {
            assert_eq!(TicketNumber::parse(bad), None, "{bad:?} accepted");
        }
        assert_eq!(TicketNumber::new(TicketKind::Incident, 0), None);
    }

    #[test]
    fn serde_uses_the_human_form() {
        let n = TicketNumber::new(TicketKind::ServiceRequest, 3).unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"REQ-000003\"");
        assert_eq!(serde_json::from_str::<TicketNumber>("\"REQ-000003\"").unwrap(), n);
        assert!(serde_json::from_str::<TicketNumber>("\"REQ-0\"").is_err());
        assert_eq!(serde_json::to_string(&TicketKind::ServiceRequest).unwrap(), "\"service_request\"");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn format_then_parse_round_trips(seq in 1u64..10_000_000_000, request in any::<bool>()) {
            let kind = if request { TicketKind::ServiceRequest } else { TicketKind::Incident };
            let n = TicketNumber::new(kind, seq).unwrap();
            prop_assert_eq!(TicketNumber::parse(&n.to_string()), Some(n));
            prop_assert!(n.to_string().len() >= 4 + NUMBER_WIDTH);
        }
    }
}

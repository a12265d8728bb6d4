//! Problem management: the human numbers of problems (PRB-000001) and known errors (KE-000001).

use crate::incident::number::{format_number, parse_number};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! human_number {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u64);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// `None` for zero: counters start at 1.
            pub fn new(seq: u64) -> Option<Self> {
                (seq > 0).then_some($name(seq))
            }
            pub fn seq(self) -> u64 {
                self.0
            }
            pub fn parse(s: &str) -> Option<Self> {
                parse_number(Self::PREFIX, s).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&format_number(Self::PREFIX, self.0))
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not a {} number: {s}", $prefix)))
            }
        }
    };
}

human_number! {
    /// A problem's human number.
    ProblemNumber, "PRB"
}

human_number! {
    /// A known error's human number in the known error database.
    KnownErrorNumber, "KE"
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(ProblemNumber::new(1).unwrap().to_string(), "PRB-000001");
        assert_eq!(KnownErrorNumber::new(42).unwrap().to_string(), "KE-000042");
        assert_eq!(ProblemNumber::parse("prb-7"), ProblemNumber::new(7));
        assert_eq!(KnownErrorNumber::parse("KE-000042"), KnownErrorNumber::new(42));
        for bad in ["KE-000001x", "PRB-000000", "INC-000001", "KE000001", ""] {
            assert_eq!(ProblemNumber::parse(bad), None, "{bad}");
        }
        assert_eq!(KnownErrorNumber::parse("PRB-000001"), None);
        assert_eq!(ProblemNumber::new(0), None);
        assert_eq!(serde_json::to_string(&KnownErrorNumber::new(3).unwrap()).unwrap(), "\"KE-000003\"");
        assert!(serde_json::from_str::<ProblemNumber>("\"KE-000003\"").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn round_trips(seq in 1u64..10_000_000_000) {
            let p = ProblemNumber::new(seq).unwrap();
            prop_assert_eq!(ProblemNumber::parse(&p.to_string()), Some(p));
            let k = KnownErrorNumber::new(seq).unwrap();
            prop_assert_eq!(KnownErrorNumber::parse(&k.to_string()), Some(k));
        }
    }
}

//! Service level targets per priority, for service level management (§6.1): first response,
//! resolution and update interval as business durations, and the warning/escalation thresholds.

use crate::error::{DomainError, Errors, FieldError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest target accepted: ten years of business time, which keeps every percentage
/// computation far inside `i64`.
pub const MAX_TARGET_MS: i64 = 10 * 365 * 24 * 3_600_000;

/// The largest threshold percentage accepted (10× the target).
pub const MAX_THRESHOLD_PERCENT: u16 = 1000;

/// Ticket priority (优先级), P1 the most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];

    /// 1 for P1 … 4 for P4.
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            1..=4 => Some(Self::ALL[usize::from(n - 1)]),
            _ => None,
        }
    }

    /// Accepts `P1`, `p1` or `1`.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let v = value.trim();
        let digits = v.strip_prefix(['P', 'p']).unwrap_or(v);
        digits
            .parse::<u8>()
            .ok()
            .and_then(Self::from_number)
            .ok_or_else(|| FieldError::new(field, "invalid_priority", "priority must be P1, P2, P3 or P4"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a target measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// 首次响应时间: from creation to the first response.
    FirstResponse,
    /// 解决时间: from creation to resolution.
    Resolution,
    /// The longest time between two public updates to the customer.
    Update,
}

impl TargetKind {
    pub const ALL: [TargetKind; 3] = [TargetKind::FirstResponse, TargetKind::Resolution, TargetKind::Update];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::FirstResponse => "first_response",
            TargetKind::Resolution => "resolution",
            TargetKind::Update => "update",
        }
    }
}

/// The targets of one priority, as business durations in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PriorityTargets {
    pub first_response_ms: i64,
    pub resolution_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_interval_ms: Option<i64>,
}

impl PriorityTargets {
    pub fn get(&self, kind: TargetKind) -> Option<i64> {
        match kind {
            TargetKind::FirstResponse => Some(self.first_response_ms),
            TargetKind::Resolution => Some(self.resolution_ms),
            TargetKind::Update => self.update_interval_ms,
        }
    }

    fn check(&self, field: &str, errors: &mut Errors) {
        let durations = [
            ("first_response_ms", Some(self.first_response_ms)),
            ("resolution_ms", Some(self.resolution_ms)),
            ("update_interval_ms", self.update_interval_ms),
        ];
        for (name, value) in durations {
            if let Some(v) = value {
                errors.check(duration(&format!("{field}.{name}"), v));
            }
        }
        if self.resolution_ms < self.first_response_ms {
            errors.push(FieldError::new(
                format!("{field}.resolution_ms"),
                "resolution_before_response",
                "the resolution target must not be shorter than the first response target",
            ));
        }
    }
}

fn duration(field: &str, ms: i64) -> Result<i64, FieldError> {
    if ms <= 0 {
        return Err(FieldError::new(field, "must_be_positive", "a target must be longer than zero"));
    }
    if ms > MAX_TARGET_MS {
        return Err(FieldError::new(field, "too_large", "a target must be at most ten years of business time"));
    }
    Ok(ms)
}

/// Percentages of a target at which a clock raises a warning or an escalation, ascending,
/// e.g. `[75, 100, 150]`. A clock is breached at 100% whether or not 100 is listed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<u16>", into = "Vec<u16>")]
pub struct Thresholds(Vec<u16>);

impl Thresholds {
    pub fn new(field: &str, percents: Vec<u16>) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        for (i, &p) in percents.iter().enumerate() {
            if p == 0 || p > MAX_THRESHOLD_PERCENT {
                errors.push(FieldError::new(
                    format!("{field}[{i}]"),
                    "threshold_out_of_range",
                    format!("a threshold must be between 1% and {MAX_THRESHOLD_PERCENT}%"),
                ));
            }
        }
        if percents.windows(2).any(|w| w[0] >= w[1]) {
            errors.push(FieldError::new(field, "thresholds_not_ascending", "thresholds must be listed in ascending order without repeats"));
        }
        errors.finish()?;
        Ok(Thresholds(percents))
    }

    pub fn percents(&self) -> &[u16] {
        &self.0
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds(vec![75, 100])
    }
}

impl TryFrom<Vec<u16>> for Thresholds {
    type Error = String;
    fn try_from(v: Vec<u16>) -> Result<Self, String> {
        Thresholds::new("thresholds", v).map_err(|e| describe(&e))
    }
}

impl From<Thresholds> for Vec<u16> {
    fn from(t: Thresholds) -> Vec<u16> {
        t.0
    }
}

/// The targets of one SLA for every priority, and its thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "TargetsSpec", into = "TargetsSpec")]
pub struct SlaTargets {
    by_priority: [PriorityTargets; 4],
    thresholds: Thresholds,
}

/// The serialised form of [`SlaTargets`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetsSpec {
    #[serde(rename = "P1")]
    pub p1: PriorityTargets,
    #[serde(rename = "P2")]
    pub p2: PriorityTargets,
    #[serde(rename = "P3")]
    pub p3: PriorityTargets,
    #[serde(rename = "P4")]
    pub p4: PriorityTargets,
    #[serde(default = "default_thresholds")]
    pub thresholds: Vec<u16>,
}

fn default_thresholds() -> Vec<u16> {
    Thresholds::default().0
}

impl SlaTargets {
    /// Checks every target (positive, at most [`MAX_TARGET_MS`], resolution not shorter than
    /// first response) and that a more urgent priority never has a longer target than a less
    /// urgent one, reporting every problem at once.
    pub fn new(by_priority: [PriorityTargets; 4], thresholds: Thresholds) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        for p in Priority::ALL {
            by_priority[p.index()].check(&format!("targets.{p}"), &mut errors);
        }
        for kind in TargetKind::ALL {
            for pair in Priority::ALL.windows(2) {
                let (a, b) = (by_priority[pair[0].index()].get(kind), by_priority[pair[1].index()].get(kind));
                if let (Some(a), Some(b)) = (a, b)
                    && a > b
                {
                    errors.push(FieldError::new(
                        format!("targets.{}.{}", pair[0], kind.as_str()),
                        "priority_targets_out_of_order",
                        format!("{} must not have a longer {} target than {}", pair[0], kind.as_str(), pair[1]),
                    ));
                }
            }
        }
        errors.finish()?;
        Ok(SlaTargets { by_priority, thresholds })
    }

    pub fn for_priority(&self, priority: Priority) -> &PriorityTargets {
        &self.by_priority[priority.index()]
    }

    pub fn target(&self, priority: Priority, kind: TargetKind) -> Option<i64> {
        self.for_priority(priority).get(kind)
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    pub fn from_spec(spec: &TargetsSpec) -> Result<Self, DomainError> {
        let thresholds = Thresholds::new("thresholds", spec.thresholds.clone());
        let targets = SlaTargets::new([spec.p1, spec.p2, spec.p3, spec.p4], Thresholds::default());
        match (thresholds, targets) {
            (Ok(thresholds), Ok(t)) => Ok(SlaTargets { thresholds, ..t }),
            (Err(DomainError::Invalid(mut a)), Err(DomainError::Invalid(b))) => {
                a.extend(b);
                Err(DomainError::Invalid(a))
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }

    pub fn to_spec(&self) -> TargetsSpec {
        let [p1, p2, p3, p4] = self.by_priority;
        TargetsSpec { p1, p2, p3, p4, thresholds: self.thresholds.0.clone() }
    }
}

impl TryFrom<TargetsSpec> for SlaTargets {
    type Error = String;
    fn try_from(spec: TargetsSpec) -> Result<Self, String> {
        SlaTargets::from_spec(&spec).map_err(|e| describe(&e))
    }
}

impl From<SlaTargets> for TargetsSpec {
    fn from(t: SlaTargets) -> TargetsSpec {
        t.to_spec()
    }
}

/// One line per field error, for serde messages.
pub(crate) fn describe(e: &DomainError) -> String {
    match e {
        DomainError::Invalid(list) => {
            list.iter().map(|f| format!("{}: {} ({})", f.field, f.message, f.code)).collect::<Vec<_>>().join("; ")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn pt(fr: i64, res: i64, upd: Option<i64>) -> PriorityTargets {
        PriorityTargets { first_response_ms: fr * H, resolution_ms: res * H, update_interval_ms: upd.map(|u| u * H) }
    }

    fn standard() -> [PriorityTargets; 4] {
        [pt(1, 4, Some(1)), pt(2, 8, Some(4)), pt(4, 24, None), pt(8, 40, None)]
    }

    fn codes(e: DomainError) -> Vec<&'static str> {
        match e {
            DomainError::Invalid(list) => list.into_iter().map(|f| f.code).collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn priorities_parse_and_print() {
        assert_eq!(Priority::parse("p", "P1").unwrap(), Priority::P1);
        assert_eq!(Priority::parse("p", " p3 ").unwrap(), Priority::P3);
        assert_eq!(Priority::parse("p", "4").unwrap(), Priority::P4);
        for bad in ["", "P0", "P5", "high", "P"] {
            assert_eq!(Priority::parse("p", bad).unwrap_err().code, "invalid_priority", "{bad}");
        }
        assert_eq!(Priority::P2.number(), 2);
        assert_eq!(Priority::from_number(3), Some(Priority::P3));
        assert_eq!(Priority::from_number(0), None);
        assert!(Priority::P1 < Priority::P4);
        assert_eq!(serde_json::to_string(&Priority::P2).unwrap(), "\"P2\"");
    }

    #[test]
    fn valid_targets_are_accepted() {
        let t = SlaTargets::new(standard(), Thresholds::new("t", vec![50, 75, 100, 150]).unwrap()).unwrap();
        assert_eq!(t.target(Priority::P1, TargetKind::Resolution), Some(4 * H));
        assert_eq!(t.target(Priority::P3, TargetKind::Update), None);
        assert_eq!(t.thresholds().percents(), &[50, 75, 100, 150]);
    }

    #[test]
    fn invalid_targets_report_every_problem() {
        let mut bad = standard();
        bad[0].first_response_ms = 0;
        bad[1].resolution_ms = H;
        bad[3].update_interval_ms = Some(MAX_TARGET_MS + 1);
        let c = codes(SlaTargets::new(bad, Thresholds::default()).unwrap_err());
        assert!(c.contains(&"must_be_positive"), "{c:?}");
        assert!(c.contains(&"resolution_before_response"), "{c:?}");
        assert!(c.contains(&"too_large"), "{c:?}");
        assert!(c.contains(&"priority_targets_out_of_order"), "{c:?}");
    }

    #[test]
    fn thresholds_are_checked() {
        assert!(Thresholds::new("t", vec![]).is_ok());
        assert_eq!(codes(Thresholds::new("t", vec![0, 100]).unwrap_err()), ["threshold_out_of_range"]);
        assert_eq!(codes(Thresholds::new("t", vec![75, 75]).unwrap_err()), ["thresholds_not_ascending"]);
        assert_eq!(codes(Thresholds::new("t", vec![100, 75]).unwrap_err()), ["thresholds_not_ascending"]);
        assert_eq!(codes(Thresholds::new("t", vec![1001]).unwrap_err()), ["threshold_out_of_range"]);
    }

    #[test]
    fn targets_round_trip_through_json() {
        let t = SlaTargets::new(standard(), Thresholds::default()).unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<SlaTargets>(&json).unwrap(), t);
        let broken = json.replace("\"thresholds\":[75,100]", "\"thresholds\":[100,75]");
        let err = serde_json::from_str::<SlaTargets>(&broken).unwrap_err().to_string();
        assert!(err.contains("thresholds_not_ascending"), "{err}");
    }
}

//! Configuration management: verification audits, which CIs have not been checked against
//! reality recently enough.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::lifecycle::CiStatus;

/// A CI's verification state as the audit needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationState {
    pub ci_id: String,
    pub status: CiStatus,
    pub last_verified: Option<DateTime<Utc>>,
}

/// A CI due for verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueCi {
    pub ci_id: String,
    pub last_verified: Option<DateTime<Utc>>,
    /// Whole days since the last verification; `None` if it was never verified.
    pub days_since: Option<i64>,
}

/// CIs that exist ([`CiStatus::is_verifiable`]) and were not verified within `max_age_days`
/// before `now`, never-verified ones first, then the longest unverified first.
pub fn overdue_verifications<'a>(
    cis: impl IntoIterator<Item = &'a VerificationState>,
    now: DateTime<Utc>,
    max_age_days: u32,
) -> Vec<OverdueCi> {
    // An age beyond the representable range means "every CI is within it".
    let cutoff = Duration::try_days(i64::from(max_age_days)).and_then(|d| now.checked_sub_signed(d)).unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut out: Vec<OverdueCi> = cis
        .into_iter()
        .filter(|c| c.status.is_verifiable())
        .filter(|c| c.last_verified.is_none_or(|at| at < cutoff))
        .map(|c| OverdueCi {
            ci_id: c.ci_id.clone(),
            last_verified: c.last_verified,
            days_since: c.last_verified.map(|at| (now - at).num_days()),
        })
        .collect();
    out.sort_by(|a, b| a.last_verified.cmp(&b.last_verified).then_with(|| a.ci_id.cmp(&b.ci_id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_age_never_overflows() {
        let now = DateTime::<Utc>::from_timestamp_millis(1_780_000_000_000).unwrap();
        assert!(overdue_verifications(std::iter::empty(), now, u32::MAX).is_empty());
    }

    fn state(id: &str, status: CiStatus, verified: Option<&str>) -> VerificationState {
        VerificationState { ci_id: id.into(), status, last_verified: verified.map(|s| s.parse().unwrap()) }
    }

    #[test]
    fn lists_stale_and_never_verified_cis_that_exist() {
        let now: DateTime<Utc> = "2026-06-30T12:00:00Z".parse().unwrap();
        let cis = vec![
            state("fresh", CiStatus::Live, Some("2026-06-01T00:00:00Z")),
            state("exactly_due", CiStatus::Live, Some("2026-04-01T12:00:00Z")),
            state("stale", CiStatus::Maintenance, Some("2026-01-10T00:00:00Z")),
            state("older", CiStatus::InBuild, Some("2025-12-01T00:00:00Z")),
            state("never", CiStatus::Live, None),
            state("planned", CiStatus::Planned, None),
            state("retired", CiStatus::Retired, Some("2020-01-01T00:00:00Z")),
        ];
        let got = overdue_verifications(&cis, now, 90);
        let ids: Vec<&str> = got.iter().map(|o| o.ci_id.as_str()).collect();
        assert_eq!(ids, vec!["never", "older", "stale"]);
        assert_eq!(got[0].days_since, None);
        assert_eq!(got[2].days_since, Some(171));
        assert!(overdue_verifications(&cis, now, 0).iter().any(|o| o.ci_id == "fresh"));
    }
}

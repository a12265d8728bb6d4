//! Mainland China's official calendars of public holidays (法定节假日) and make-up working days
//! (调休上班日), for service level management (§6.1). The State Council's General Office
//! publishes them each year; the data lives in `data/calendars/cn-mainland-<year>.csv`.

use crate::error::{DomainError, FieldError};
use crate::sla::calendar::{BusinessCalendar, CalendarDay, DayHours, WeekHours};
use crate::sla::calendar_io::parse_csv;

const CN_MAINLAND_2025: &str = include_str!("../../data/calendars/cn-mainland-2025.csv");
const CN_MAINLAND_2026: &str = include_str!("../../data/calendars/cn-mainland-2026.csv");

/// The years whose official calendar Keel ships; other years are imported as CSV or ICS.
pub const CHINA_MAINLAND_YEARS: [i32; 2] = [2025, 2026];

/// Office hours used by [`BusinessCalendar::china_mainland`] until the SLA sets its own.
pub const CHINA_OFFICE_HOURS: &str = "09:00-12:00,13:30-18:00";

/// The official holidays and make-up working days of one year, if Keel ships that year.
pub fn china_mainland_days(year: i32) -> Option<Vec<CalendarDay>> {
    let text = match year {
        2025 => CN_MAINLAND_2025,
        2026 => CN_MAINLAND_2026,
        _ => return None,
    };
    parse_csv(text).ok()
}

impl BusinessCalendar {
    /// A mainland China calendar: Asia/Shanghai, Monday to Friday 09:00–12:00 and 13:30–18:00
    /// (change them with [`BusinessCalendar::with_week`]), make-up working days on Monday's hours,
    /// and the official holidays of `years`.
    pub fn china_mainland(years: impl IntoIterator<Item = i32>) -> Result<Self, DomainError> {
        let mut days = Vec::new();
        let mut errors = Vec::new();
        for year in years {
            match china_mainland_days(year) {
                Some(d) => days.extend(d),
                None => errors.push(FieldError::new(
                    "years",
                    "unsupported_year",
                    format!("Keel ships the mainland China calendar for 2025 and 2026, not {year}; import it as CSV or ICS"),
                )),
            }
        }
        if !errors.is_empty() {
            return Err(DomainError::Invalid(errors));
        }
        let hours = DayHours::parse("hours", CHINA_OFFICE_HOURS).map_err(|e| DomainError::Invalid(vec![e]))?;
        BusinessCalendar::new(chrono_tz::Asia::Shanghai, WeekHours::weekdays(hours))?.with_days(days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::calendar::tests::{date, utc};
    use crate::sla::calendar::{DayKind, HOUR_MS, MINUTE_MS};
    use chrono::{Datelike, Weekday};

    #[test]
    fn shipped_data_is_complete_and_named_in_both_languages() {
        for (year, holidays, workdays) in [(2025, 28, 5), (2026, 33, 6)] {
            let days = china_mainland_days(year).expect("valid data");
            assert_eq!(days.iter().filter(|d| d.kind == DayKind::Holiday).count(), holidays, "{year}");
            assert_eq!(days.iter().filter(|d| d.kind == DayKind::Workday).count(), workdays, "{year}");
            for d in &days {
                assert_eq!(d.date.year(), year);
                let name = d.name.as_deref().unwrap();
                let (en, zh) = name.split_once(" / ").unwrap();
                assert!(en.is_ascii() && !en.is_empty(), "{name}");
                assert!(zh.chars().all(|c| !c.is_ascii()), "{name}");
                if d.kind == DayKind::Workday {
                    assert!(matches!(d.date.weekday(), Weekday::Sat | Weekday::Sun), "{} is not a weekend", d.date);
                }
            }
        }
        assert!(china_mainland_days(2024).is_none());
    }

    #[test]
    fn official_dates() {
        let c = BusinessCalendar::china_mainland([2025, 2026]).unwrap();
        let holidays = [
            (2025, 1, 1),
            (2025, 1, 28),
            (2025, 2, 4),
            (2025, 4, 4),
            (2025, 5, 5),
            (2025, 5, 31),
            (2025, 6, 2),
            (2025, 10, 8),
            (2026, 1, 2),
            (2026, 2, 16),
            (2026, 2, 23),
            (2026, 6, 19),
            (2026, 9, 25),
            (2026, 10, 7),
        ];
        for (y, m, d) in holidays {
            assert!(!c.is_working_day(date(y, m, d)), "{y}-{m}-{d}");
        }
        let workdays = [
            (2025, 1, 26),
            (2025, 2, 8),
            (2025, 4, 27),
            (2025, 9, 28),
            (2025, 10, 11),
            (2026, 1, 4),
            (2026, 2, 14),
            (2026, 2, 28),
            (2026, 5, 9),
            (2026, 9, 20),
            (2026, 10, 10),
        ];
        for (y, m, d) in workdays {
            assert!(c.is_working_day(date(y, m, d)), "{y}-{m}-{d}");
        }
        assert!(c.is_working_day(date(2026, 10, 8)));
        assert!(!c.is_working_day(date(2026, 10, 11)), "an ordinary Sunday");
    }

    #[test]
    fn a_working_saturday_and_a_holiday_monday_in_2026() {
        let c = BusinessCalendar::china_mainland([2026]).unwrap();
        assert_eq!(date(2026, 2, 14).weekday(), Weekday::Sat);
        assert_eq!(date(2026, 2, 16).weekday(), Weekday::Mon);
        // Saturday 2026-02-14 10:00 in Shanghai is 02:00 UTC.
        assert!(c.is_working_at(utc("2026-02-14T02:00:00Z")));
        assert!(!c.is_working_at(utc("2026-02-16T02:00:00Z")));
        // From Friday 13 Feb 18:00 to Tuesday 24 Feb 09:00 only the make-up Saturday counts.
        let (a, b) = (utc("2026-02-13T10:00:00Z"), utc("2026-02-24T01:00:00Z"));
        assert_eq!(c.business_millis_between(a, b), 7 * HOUR_MS + 30 * MINUTE_MS);
        // A four-hour target raised on Friday at 17:00: one hour on Friday, three on the Saturday.
        assert_eq!(c.add_business_millis(utc("2026-02-13T09:00:00Z"), 4 * HOUR_MS), utc("2026-02-14T04:00:00Z"));
        // Eight hours: the Saturday's 7.5 and then half an hour on Tuesday 24 Feb.
        assert_eq!(c.add_business_millis(utc("2026-02-13T10:00:00Z"), 8 * HOUR_MS), utc("2026-02-24T01:30:00Z"));
    }

    #[test]
    fn across_the_year_end_into_a_make_up_sunday() {
        let c = BusinessCalendar::china_mainland([2025, 2026]).unwrap();
        // Wednesday 31 Dec 2025 17:00 + 2h: 1-3 Jan are holidays, Sunday 4 Jan is a working day.
        let due = c.add_business_millis(utc("2025-12-31T09:00:00Z"), 2 * HOUR_MS);
        assert_eq!(due, utc("2026-01-04T02:00:00Z"));
        assert_eq!(c.business_millis_between(utc("2025-12-31T09:00:00Z"), due), 2 * HOUR_MS);
        // Auto-close after 3 business days, resolved Tuesday 29 Sep 2026 15:00:
        // 30 Sep, (1-7 Oct holidays), 8 Oct, 9 Oct.
        assert_eq!(c.add_business_days(utc("2026-09-29T07:00:00Z"), 3), utc("2026-10-09T07:00:00Z"));
        assert_eq!(c.add_business_days(utc("2026-10-09T07:00:00Z"), 1), utc("2026-10-10T07:00:00Z"));
    }

    #[test]
    fn other_years_must_be_imported() {
        let err = BusinessCalendar::china_mainland([2024, 2025, 2027]).unwrap_err();
        let DomainError::Invalid(list) = err else { panic!() };
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|e| e.code == "unsupported_year"));
    }
}

//! Business calendars (工作日历) for service level management (§6.1): working hours per weekday
//! in a time zone, public holidays (法定节假日) and make-up working days (调休上班日), and exact
//! business-time arithmetic on UTC instants.
//!
//! Instants are `DateTime<Utc>` taken to the millisecond (anything finer is dropped); business
//! durations are `i64` milliseconds. Instants are clamped to [`EARLIEST_MS`, `LATEST_MS`], and a
//! due time that would fall after `LATEST_MS` is reported as `LATEST_MS` ("never").
//!
//! A working interval such as 09:00–12:00 on a date runs from the moment the local clock first
//! reaches its start to the moment it first reaches its end. So an interval that spans a daylight
//! saving change holds the real elapsed time (in Europe/London 00:00–04:00 is three hours on the
//! day clocks go forward and five on the day they go back), a boundary in a skipped hour is the
//! moment of the jump, and a boundary in a repeated hour is its first occurrence.
//!
//! A holiday has no working hours; a make-up working day (usually a weekend date) has the
//! make-up hours, by default those of Monday. The calendar walks day by day and skips whole
//! weeks that hold no holiday, make-up day or UTC offset change, so long spans stay cheap.

use crate::error::{DomainError, Errors, FieldError};
use crate::sla::target::describe;
use crate::validate;
use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::{GapInfo, Tz};
use serde::{Deserialize, Serialize};
use std::fmt;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;
const WEEK_MS: i64 = 7 * DAY_MS;
const MINUTES_PER_DAY: u16 = 24 * 60;
const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// 1800-01-01T00:00:00Z: the earliest instant the calendar computes with.
pub const EARLIEST_MS: i64 = -5_364_662_400_000;
/// 9999-12-01T00:00:00Z: the latest instant the calendar computes with; a due time here means
/// "never".
pub const LATEST_MS: i64 = 253_399_622_400_000;

/// Longest accepted holiday or make-up day name, in characters.
pub const MAX_DAY_NAME_CHARS: usize = 200;

pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis().clamp(EARLIEST_MS, LATEST_MS)
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms.clamp(EARLIEST_MS, LATEST_MS)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn plus_days(date: NaiveDate, n: u64) -> NaiveDate {
    date.checked_add_days(Days::new(n)).unwrap_or(NaiveDate::MAX)
}

fn next_date(date: NaiveDate) -> NaiveDate {
    date.succ_opt().unwrap_or(NaiveDate::MAX)
}

fn prev_date(date: NaiveDate) -> NaiveDate {
    date.pred_opt().unwrap_or(NaiveDate::MIN)
}

fn minus_days(date: NaiveDate, n: u64) -> NaiveDate {
    date.checked_sub_days(Days::new(n)).unwrap_or(NaiveDate::MIN)
}

/// One span of working time within a local day, from `start` to `end` minutes after local
/// midnight; `end` may be 24:00. Written `09:00-12:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkInterval {
    start: u16,
    end: u16,
}

impl WorkInterval {
    pub fn new(field: &str, start_minute: u16, end_minute: u16) -> Result<Self, FieldError> {
        if end_minute > MINUTES_PER_DAY {
            return Err(FieldError::new(field, "time_out_of_range", "a time of day must be between 00:00 and 24:00"));
        }
        if start_minute >= end_minute {
            return Err(FieldError::new(field, "interval_start_not_before_end", "a working interval must start before it ends"));
        }
        Ok(WorkInterval { start: start_minute, end: end_minute })
    }

    /// `start_h:start_m` to `end_h:end_m`; `(24, 0)` is the end of the day.
    pub fn hm(field: &str, start: (u16, u16), end: (u16, u16)) -> Result<Self, FieldError> {
        let minutes = |(h, m): (u16, u16)| (m < 60 && h <= 24).then(|| h * 60 + m);
        match (minutes(start), minutes(end)) {
            (Some(s), Some(e)) => WorkInterval::new(field, s, e),
            _ => Err(FieldError::new(field, "time_out_of_range", "a time of day must be between 00:00 and 24:00")),
        }
    }

    /// Parses `HH:MM-HH:MM`, e.g. `09:00-12:00` or `13:30-24:00`.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let bad = || FieldError::new(field, "invalid_interval", "write a working interval as HH:MM-HH:MM, e.g. 09:00-12:00");
        let (a, b) = value.trim().split_once(['-', '–', '~']).ok_or_else(bad)?;
        let (start, end) = (parse_hhmm(a).ok_or_else(bad)?, parse_hhmm(b).ok_or_else(bad)?);
        WorkInterval::new(field, start, end)
    }

    pub fn start_minute(self) -> u16 {
        self.start
    }

    pub fn end_minute(self) -> u16 {
        self.end
    }

    pub fn duration_ms(self) -> i64 {
        i64::from(self.end - self.start) * MINUTE_MS
    }
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

impl fmt::Display for WorkInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}-{:02}:{:02}", self.start / 60, self.start % 60, self.end / 60, self.end % 60)
    }
}

impl TryFrom<String> for WorkInterval {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        WorkInterval::parse("interval", &s).map_err(|e| e.message)
    }
}

impl From<WorkInterval> for String {
    fn from(i: WorkInterval) -> String {
        i.to_string()
    }
}

/// The working intervals of one day, sorted and not overlapping (they may touch).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<WorkInterval>", into = "Vec<WorkInterval>")]
pub struct DayHours(Vec<WorkInterval>);

static CLOSED: DayHours = DayHours(Vec::new());

impl DayHours {
    pub fn closed() -> Self {
        DayHours(Vec::new())
    }

    pub fn new(field: &str, mut intervals: Vec<WorkInterval>) -> Result<Self, FieldError> {
        intervals.sort();
        if let Some(w) = intervals.windows(2).find(|w| w[0].end > w[1].start) {
            return Err(FieldError::new(field, "intervals_overlap", format!("working intervals {} and {} overlap", w[0], w[1])));
        }
        Ok(DayHours(intervals))
    }

    /// Parses intervals separated by commas or semicolons, e.g. `09:00-12:00, 13:30-18:00`;
    /// an empty text or `closed` is a day without working hours.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let v = value.trim();
        if v.is_empty() || v.eq_ignore_ascii_case("closed") {
            return Ok(DayHours::closed());
        }
        let intervals = v.split([',', ';']).map(|part| WorkInterval::parse(field, part)).collect::<Result<Vec<_>, _>>()?;
        DayHours::new(field, intervals)
    }

    pub fn intervals(&self) -> &[WorkInterval] {
        &self.0
    }

    pub fn is_closed(&self) -> bool {
        self.0.is_empty()
    }

    pub fn total_ms(&self) -> i64 {
        self.0.iter().map(|i| i.duration_ms()).sum()
    }
}

impl fmt::Display for DayHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, interval) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{interval}")?;
        }
        Ok(())
    }
}

impl TryFrom<Vec<WorkInterval>> for DayHours {
    type Error = String;
    fn try_from(v: Vec<WorkInterval>) -> Result<Self, String> {
        DayHours::new("hours", v).map_err(|e| e.message)
    }
}

impl From<DayHours> for Vec<WorkInterval> {
    fn from(h: DayHours) -> Vec<WorkInterval> {
        h.0
    }
}

/// Working hours for each day of the week.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct WeekHours([DayHours; 7]);

impl WeekHours {
    pub fn closed() -> Self {
        WeekHours::default()
    }

    /// The same hours Monday to Friday, weekends closed.
    pub fn weekdays(hours: DayHours) -> Self {
        let mut week = WeekHours::closed();
        for day in &mut week.0[..5] {
            *day = hours.clone();
        }
        week
    }

    pub fn every_day(hours: DayHours) -> Self {
        WeekHours(std::array::from_fn(|_| hours.clone()))
    }

    pub fn with(mut self, day: Weekday, hours: DayHours) -> Self {
        self.0[day.num_days_from_monday() as usize] = hours;
        self
    }

    pub fn get(&self, day: Weekday) -> &DayHours {
        &self.0[day.num_days_from_monday() as usize]
    }

    pub fn total_ms(&self) -> i64 {
        self.0.iter().map(DayHours::total_ms).sum()
    }
}

const WEEKDAYS: [Weekday; 7] = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];

/// Whether a listed date is a public holiday or a make-up working day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// 法定节假日: no working hours.
    Holiday,
    /// 调休上班日: a working day, usually on a weekend, with the make-up hours.
    Workday,
}

impl DayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::Workday => "workday",
        }
    }

    /// Accepts `holiday` / `workday` and the usual Chinese marks 休 / 班.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "holiday" | "休" | "假" | "节假日" => Ok(DayKind::Holiday),
            "workday" | "make-up" | "makeup" | "班" | "补班" | "上班" | "调休上班" => Ok(DayKind::Workday),
            _ => Err(FieldError::new(field, "invalid_day_kind", "kind must be holiday or workday")),
        }
    }
}

/// A date that departs from the weekly pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CalendarDay {
    pub date: NaiveDate,
    pub kind: DayKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl CalendarDay {
    pub fn holiday(date: NaiveDate, name: impl Into<String>) -> Self {
        CalendarDay { date, kind: DayKind::Holiday, name: Some(name.into()) }
    }

    pub fn workday(date: NaiveDate, name: impl Into<String>) -> Self {
        CalendarDay { date, kind: DayKind::Workday, name: Some(name.into()) }
    }
}

/// The hours worked on a make-up working day.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MakeUpHours {
    /// The hours of that weekday in the weekly pattern.
    SameAs(Weekday),
    Custom(DayHours),
}

impl Default for MakeUpHours {
    fn default() -> Self {
        MakeUpHours::SameAs(Weekday::Mon)
    }
}

/// A validated business calendar. Build it with [`BusinessCalendar::new`] and the `with_*`
/// methods, or from a [`CalendarSpec`] (which is also its serialised form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CalendarSpec", into = "CalendarSpec")]
pub struct BusinessCalendar {
    tz: Tz,
    week: WeekHours,
    make_up: MakeUpHours,
    days: Vec<CalendarDay>,
    week_total_ms: i64,
    working_days_per_week: u32,
}

/// One local day and the UTC instants where it begins and ends.
#[derive(Debug, Clone, Copy)]
struct Day {
    date: NaiveDate,
    start: i64,
    end: i64,
}

impl BusinessCalendar {
    /// A calendar with the given weekly hours and no holidays; the week must have some working
    /// time. Make-up days follow Monday's hours (or the first weekday after it that has hours).
    pub fn new(time_zone: Tz, week: WeekHours) -> Result<Self, DomainError> {
        let first_open = WEEKDAYS.into_iter().find(|d| !week.get(*d).is_closed()).unwrap_or(Weekday::Mon);
        Self::build(time_zone, week, MakeUpHours::SameAs(first_open), Vec::new())
    }

    pub fn with_week(self, week: WeekHours) -> Result<Self, DomainError> {
        Self::build(self.tz, week, self.make_up, self.days)
    }

    pub fn with_make_up_hours(self, hours: MakeUpHours) -> Result<Self, DomainError> {
        Self::build(self.tz, self.week, hours, self.days)
    }

    pub fn with_time_zone(self, time_zone: Tz) -> Result<Self, DomainError> {
        Self::build(time_zone, self.week, self.make_up, self.days)
    }

    /// Adds holidays and make-up days. A date may be listed once: listing it again is
    /// `duplicate_date`, or `holiday_and_workday` when the kinds differ.
    pub fn with_days(self, days: impl IntoIterator<Item = CalendarDay>) -> Result<Self, DomainError> {
        let mut all = self.days;
        all.extend(days);
        Self::build(self.tz, self.week, self.make_up, all)
    }

    /// Replaces the holidays and make-up days of one year, e.g. with a newly imported yearly
    /// calendar. Every date given must lie in that year.
    pub fn replace_year(self, year: i32, days: Vec<CalendarDay>) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        for d in days.iter().filter(|d| d.date.year() != year) {
            errors.push(FieldError::new(format!("days.{}", d.date), "date_outside_year", format!("{} is not in {year}", d.date)));
        }
        errors.finish()?;
        let mut all: Vec<CalendarDay> = self.days.into_iter().filter(|d| d.date.year() != year).collect();
        all.extend(days);
        Self::build(self.tz, self.week, self.make_up, all)
    }

    fn build(tz: Tz, week: WeekHours, make_up: MakeUpHours, mut days: Vec<CalendarDay>) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        if week.total_ms() == 0 {
            errors.push(FieldError::new("hours", "no_working_hours", "the week must have some working hours"));
        }
        let make_up_closed = match &make_up {
            MakeUpHours::SameAs(d) => week.get(*d).is_closed(),
            MakeUpHours::Custom(h) => h.is_closed(),
        };
        if make_up_closed {
            errors.push(FieldError::new("make_up_hours", "no_working_hours", "a make-up working day must have working hours"));
        }
        for d in &mut days {
            let field = format!("days.{}.name", d.date);
            d.name = errors.check(validate::optional_text(&field, d.name.as_deref(), MAX_DAY_NAME_CHARS)).flatten();
        }
        days.sort_by_key(|d| (d.date, d.kind));
        for w in days.windows(2).filter(|w| w[0].date == w[1].date) {
            let date = w[0].date;
            errors.push(if w[0].kind == w[1].kind {
                FieldError::new(format!("days.{date}"), "duplicate_date", format!("{date} is listed more than once"))
            } else {
                FieldError::new(
                    format!("days.{date}"),
                    "holiday_and_workday",
                    format!("{date} cannot be both a holiday and a make-up working day"),
                )
            });
        }
        errors.finish()?;
        let week_total_ms = week.total_ms();
        let working_days_per_week = week.0.iter().filter(|d| !d.is_closed()).count() as u32;
        Ok(BusinessCalendar { tz, week, make_up, days, week_total_ms, working_days_per_week })
    }

    /// Builds a calendar from its serialised form, reporting every problem with its field path
    /// (`time_zone`, `hours.mon[1]`, `make_up_hours`, `days[3].date`, …).
    pub fn from_spec(spec: &CalendarSpec) -> Result<Self, DomainError> {
        let mut errors = Vec::new();
        let tz = keep(&mut errors, validate::time_zone("time_zone", &spec.time_zone));
        let mut week = WeekHours::closed();
        for (i, wd) in WEEKDAYS.into_iter().enumerate() {
            let field = format!("hours.{}", weekday_key(wd));
            if let Some(h) = parse_hours(&field, spec.hours.get(wd), &mut errors) {
                week.0[i] = h;
            }
        }
        let make_up = match &spec.make_up_hours {
            MakeUpSpec::SameAs(d) => keep(
                &mut errors,
                d.trim()
                    .parse::<Weekday>()
                    .map_err(|_| FieldError::new("make_up_hours.same_as", "invalid_weekday", "name a weekday, e.g. mon")),
            )
            .map(MakeUpHours::SameAs),
            MakeUpSpec::Custom(list) => parse_hours("make_up_hours.custom", list, &mut errors).map(MakeUpHours::Custom),
        };
        let mut days = Vec::with_capacity(spec.days.len());
        for (i, d) in spec.days.iter().enumerate() {
            let date = keep(&mut errors, parse_date(&format!("days[{i}].date"), &d.date));
            let kind = keep(&mut errors, DayKind::parse(&format!("days[{i}].kind"), &d.kind));
            if let (Some(date), Some(kind)) = (date, kind) {
                days.push(CalendarDay { date, kind, name: d.name.clone() });
            }
        }
        if let (Some(tz), Some(make_up)) = (tz, make_up) {
            match Self::build(tz, week, make_up, days) {
                Ok(calendar) if errors.is_empty() => return Ok(calendar),
                Ok(_) => {}
                Err(DomainError::Invalid(more)) => errors.extend(more),
                Err(other) => return Err(other),
            }
        }
        Err(DomainError::Invalid(errors))
    }

    pub fn to_spec(&self) -> CalendarSpec {
        let list = |h: &DayHours| h.0.iter().map(ToString::to_string).collect::<Vec<_>>();
        let w = |d: Weekday| list(self.week.get(d));
        CalendarSpec {
            time_zone: self.tz.name().to_string(),
            hours: WeekSpec {
                mon: w(Weekday::Mon),
                tue: w(Weekday::Tue),
                wed: w(Weekday::Wed),
                thu: w(Weekday::Thu),
                fri: w(Weekday::Fri),
                sat: w(Weekday::Sat),
                sun: w(Weekday::Sun),
            },
            make_up_hours: match &self.make_up {
                MakeUpHours::SameAs(d) => MakeUpSpec::SameAs(weekday_key(*d).to_string()),
                MakeUpHours::Custom(h) => MakeUpSpec::Custom(list(h)),
            },
            days: self
                .days
                .iter()
                .map(|d| DaySpec { date: d.date.to_string(), kind: d.kind.as_str().to_string(), name: d.name.clone() })
                .collect(),
        }
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    pub fn week(&self) -> &WeekHours {
        &self.week
    }

    pub fn make_up_hours(&self) -> &MakeUpHours {
        &self.make_up
    }

    /// Every holiday and make-up day, by date.
    pub fn days(&self) -> &[CalendarDay] {
        &self.days
    }

    /// The holidays and make-up days of one year, by date (a yearly calendar to export).
    pub fn days_in_year(&self, year: i32) -> &[CalendarDay] {
        let from = self.days.partition_point(|d| d.date.year() < year);
        let to = self.days.partition_point(|d| d.date.year() <= year);
        &self.days[from..to]
    }

    pub fn day(&self, date: NaiveDate) -> Option<&CalendarDay> {
        self.days.binary_search_by_key(&date, |d| d.date).ok().map(|i| &self.days[i])
    }

    /// The local working hours of a date, after holidays and make-up days.
    pub fn hours_on(&self, date: NaiveDate) -> &DayHours {
        match self.day(date).map(|d| d.kind) {
            Some(DayKind::Holiday) => &CLOSED,
            Some(DayKind::Workday) => match &self.make_up {
                MakeUpHours::SameAs(d) => self.week.get(*d),
                MakeUpHours::Custom(h) => h,
            },
            None => self.week.get(date.weekday()),
        }
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        !self.hours_on(date).is_closed()
    }

    /// The working intervals of a local date as UTC instants.
    pub fn working_intervals(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let day = Day { date, start: self.local_to_utc(date, 0), end: self.local_to_utc(date, DAY_MS) };
        self.spans(day).filter(|(s, e)| e > s).map(|(s, e)| (from_ms(s), from_ms(e))).collect()
    }

    /// Business time from `a` to `b`; negative when `b` is before `a`.
    pub fn business_millis_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
        let (a, b) = (to_ms(a), to_ms(b));
        if a <= b { self.between_ms(a, b) } else { -self.between_ms(b, a) }
    }

    /// The earliest instant at which `d` of business time has passed since `start` (the due time
    /// of a target of `d`). A negative `d` counts back: the latest instant from which `-d` of
    /// business time runs to `start`. `d == 0` gives `start`.
    pub fn add_business_millis(&self, start: DateTime<Utc>, d: i64) -> DateTime<Utc> {
        from_ms(self.add_ms(to_ms(start), d))
    }

    pub fn is_working_at(&self, t: DateTime<Utc>) -> bool {
        let t = to_ms(t);
        self.spans(self.day_of(t)).any(|(s, e)| s <= t && t < e)
    }

    /// `t` if it is working time, otherwise the start of the next working interval.
    pub fn next_working_instant(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        from_ms(self.next_working_ms(to_ms(t)))
    }

    /// The same local time of day on the `n`th working day after the local date of `start`
    /// (before it, for a negative `n`); `n == 0` gives `start`. Used for "auto-close after N
    /// business days". A working day is a date with working hours.
    pub fn add_business_days(&self, start: DateTime<Utc>, n: i32) -> DateTime<Utc> {
        let t = to_ms(start);
        if n == 0 {
            return from_ms(t);
        }
        let local = from_ms(t).with_timezone(&self.tz).naive_local();
        let time = local.time();
        let ms_of_day = i64::from(time.num_seconds_from_midnight()) * 1000 + i64::from(time.nanosecond().min(999_999_999) / 1_000_000);
        let date = self.nth_working_day(local.date(), n);
        from_ms(self.local_to_utc(date, ms_of_day))
    }

    pub(crate) fn between_ms(&self, a: i64, b: i64) -> i64 {
        if b <= a {
            return 0;
        }
        let mut day = self.day_of(a);
        let mut total = 0;
        loop {
            total += self.spans(day).map(|(s, e)| (e.min(b) - s.max(a)).max(0)).sum::<i64>();
            if day.end >= b {
                return total;
            }
            day = self.next_day(day);
            if day.date.weekday() == Weekday::Mon {
                while b - day.start >= WEEK_MS {
                    match self.plain_week_end(day) {
                        Some(end) if end <= b => {
                            total += self.week_total_ms;
                            day = self.day_from(plus_days(day.date, 7), end);
                        }
                        _ => break,
                    }
                }
            }
        }
    }

    pub(crate) fn add_ms(&self, t: i64, d: i64) -> i64 {
        match d.cmp(&0) {
            std::cmp::Ordering::Equal => t,
            std::cmp::Ordering::Greater => self.add_forward(t, d),
            std::cmp::Ordering::Less => self.add_backward(t, d.saturating_neg()),
        }
    }

    fn add_forward(&self, t: i64, d: i64) -> i64 {
        let mut out = [LATEST_MS];
        self.add_each(t, &[d], &mut out);
        out[0]
    }

    /// `add_ms(t, d)` for each of the ascending, positive durations `ds`, in one walk.
    pub(crate) fn add_each(&self, t: i64, ds: &[i64], out: &mut [i64]) {
        debug_assert!(ds.windows(2).all(|w| w[0] <= w[1]) && ds.first().is_none_or(|d| *d > 0));
        let mut i = 0;
        if ds.is_empty() {
            return;
        }
        let mut day = self.day_of(t);
        let mut used = 0;
        loop {
            for (s, e) in self.spans(day) {
                let s = s.max(t);
                if e > s {
                    while i < ds.len() && ds[i] - used <= e - s {
                        out[i] = (s + ds[i] - used).min(LATEST_MS);
                        i += 1;
                    }
                    if i == ds.len() {
                        return;
                    }
                    used += e - s;
                }
            }
            if day.end >= LATEST_MS {
                out[i..].fill(LATEST_MS);
                return;
            }
            day = self.next_day(day);
            if day.date.weekday() == Weekday::Mon {
                while ds[i] - used > self.week_total_ms && day.start < LATEST_MS {
                    let Some(end) = self.plain_week_end(day) else {
                        break;
                    };
                    used += self.week_total_ms;
                    day = self.day_from(plus_days(day.date, 7), end);
                }
            }
        }
    }

    fn add_backward(&self, t: i64, d: i64) -> i64 {
        let mut day = self.day_of(t);
        let mut rem = d;
        loop {
            for (s, e) in self.spans(day).rev() {
                let e = e.min(t);
                if e > s {
                    if rem <= e - s {
                        return (e - rem).max(EARLIEST_MS);
                    }
                    rem -= e - s;
                }
            }
            if day.start <= EARLIEST_MS {
                return EARLIEST_MS;
            }
            day = self.prev_day(day);
            if day.date.weekday() == Weekday::Sun {
                while rem > self.week_total_ms && day.end > EARLIEST_MS {
                    let Some(start) = self.plain_week_start(day) else {
                        break;
                    };
                    rem -= self.week_total_ms;
                    day = self.day_until(minus_days(day.date, 7), start);
                }
            }
        }
    }

    pub(crate) fn next_working_ms(&self, t: i64) -> i64 {
        let mut day = self.day_of(t);
        loop {
            if let Some((s, _)) = self.spans(day).find(|&(s, e)| e > s && e > t) {
                return s.max(t);
            }
            if day.end >= LATEST_MS {
                return LATEST_MS;
            }
            day = self.next_day(day);
        }
    }

    fn nth_working_day(&self, from: NaiveDate, n: i32) -> NaiveDate {
        let per_week = self.working_days_per_week;
        let mut left = n.unsigned_abs();
        let mut date = from;
        let (min, max) = (from_ms(EARLIEST_MS).date_naive(), from_ms(LATEST_MS).date_naive());
        loop {
            if date <= min || date >= max {
                return date.clamp(min, max);
            }
            if n > 0 {
                if left > per_week && date.weekday() == Weekday::Sun && !self.has_days_in(next_date(date), plus_days(date, 8)) {
                    left -= per_week;
                    date = plus_days(date, 7);
                    continue;
                }
                date = next_date(date);
            } else {
                if left > per_week && date.weekday() == Weekday::Mon && !self.has_days_in(minus_days(date, 7), date) {
                    left -= per_week;
                    date = minus_days(date, 7);
                    continue;
                }
                date = prev_date(date);
            }
            if self.is_working_day(date) {
                left -= 1;
                if left == 0 {
                    return date;
                }
            }
        }
    }

    /// Whether a holiday or make-up day lies in `[from, until)`.
    fn has_days_in(&self, from: NaiveDate, until: NaiveDate) -> bool {
        let i = self.days.partition_point(|d| d.date < from);
        self.days.get(i).is_some_and(|d| d.date < until)
    }

    /// The instant the local clock first reaches `ms_of_day` (0 ..= 24:00) on `date`.
    fn local_to_utc(&self, date: NaiveDate, ms_of_day: i64) -> i64 {
        let (date, ms) = if ms_of_day >= DAY_MS { (next_date(date), ms_of_day - DAY_MS) } else { (date, ms_of_day) };
        let time =
            NaiveTime::from_num_seconds_from_midnight_opt((ms / 1000) as u32, (ms % 1000) as u32 * 1_000_000).unwrap_or(NaiveTime::MIN);
        let local = NaiveDateTime::new(date, time);
        let local_ms = (i64::from(date.num_days_from_ce()) - UNIX_EPOCH_DAYS_FROM_CE) * DAY_MS + ms;
        let offset_ms = |o: &<Tz as TimeZone>::Offset| i64::from(o.fix().local_minus_utc()) * 1000;
        match self.tz.offset_from_local_datetime(&local) {
            LocalResult::Single(o) => local_ms - offset_ms(&o),
            LocalResult::Ambiguous(a, b) => local_ms - offset_ms(&a).max(offset_ms(&b)),
            LocalResult::None => self.gap_end(&local),
        }
    }

    fn gap_end(&self, local: &NaiveDateTime) -> i64 {
        if let Some(end) = GapInfo::new(local, &self.tz).and_then(|g| g.end) {
            return end.timestamp_millis();
        }
        // GapInfo only lacks an end past the last transition, where no gap can be; read the
        // local time with the offset in force a day earlier rather than fail.
        let as_utc = local.and_utc();
        let before = self.tz.offset_from_utc_datetime(&(as_utc - TimeDelta::days(1)).naive_utc()).fix();
        as_utc.timestamp_millis() - i64::from(before.local_minus_utc()) * 1000
    }

    fn day_from(&self, date: NaiveDate, start: i64) -> Day {
        Day { date, start, end: self.local_to_utc(date, DAY_MS) }
    }

    fn day_until(&self, date: NaiveDate, end: i64) -> Day {
        Day { date, start: self.local_to_utc(date, 0), end }
    }

    fn next_day(&self, day: Day) -> Day {
        self.day_from(next_date(day.date), day.end)
    }

    fn prev_day(&self, day: Day) -> Day {
        self.day_until(prev_date(day.date), day.start)
    }

    /// The local day holding `t`: its first instant is at or before `t`, the next day's after.
    fn day_of(&self, t: i64) -> Day {
        let offset = self.tz.offset_from_utc_datetime(&from_ms(t).naive_utc()).fix().local_minus_utc();
        let mut date = from_ms(t + i64::from(offset) * 1000).date_naive();
        loop {
            let start = self.local_to_utc(date, 0);
            if t < start {
                date = prev_date(date);
                continue;
            }
            let end = self.local_to_utc(date, DAY_MS);
            if t >= end {
                date = next_date(date);
                continue;
            }
            return Day { date, start, end };
        }
    }

    /// The working spans of a day as UTC instants, in order (possibly empty where a boundary
    /// pair falls in a skipped hour).
    fn spans(&self, day: Day) -> impl DoubleEndedIterator<Item = (i64, i64)> + '_ {
        // tzdb has no zone whose offset changes twice within three days (since 1970 the closest
        // pair is 6.96 days apart), so a day exactly 24 hours long has one offset throughout.
        let fixed = day.end - day.start == DAY_MS;
        self.hours_on(day.date).0.iter().map(move |iv| {
            let (s, e) = (i64::from(iv.start) * MINUTE_MS, i64::from(iv.end) * MINUTE_MS);
            if fixed { (day.start + s, day.start + e) } else { (self.local_to_utc(day.date, s), self.local_to_utc(day.date, e)) }
        })
    }

    /// When the week starting with `monday` has no holiday or make-up day and one UTC offset
    /// throughout, the instant it ends.
    fn plain_week_end(&self, monday: Day) -> Option<i64> {
        let d = monday.date;
        if self.has_days_in(d, plus_days(d, 7)) {
            return None;
        }
        // Each probed stretch is at most three days, so by the tzdb fact in `spans` it holds at
        // most one offset change, which its length would show.
        let wed = self.local_to_utc(plus_days(d, 2), 0);
        if wed - monday.start != 2 * DAY_MS {
            return None;
        }
        let fri = self.local_to_utc(plus_days(d, 4), 0);
        if fri - wed != 2 * DAY_MS {
            return None;
        }
        let end = self.local_to_utc(plus_days(d, 7), 0);
        (end - fri == 3 * DAY_MS).then_some(end)
    }

    /// The mirror of [`Self::plain_week_end`] for the week ending with `sunday`.
    fn plain_week_start(&self, sunday: Day) -> Option<i64> {
        let monday = minus_days(sunday.date, 6);
        if self.has_days_in(monday, next_date(sunday.date)) {
            return None;
        }
        let fri = self.local_to_utc(plus_days(monday, 4), 0);
        if sunday.end - fri != 3 * DAY_MS {
            return None;
        }
        let wed = self.local_to_utc(plus_days(monday, 2), 0);
        if fri - wed != 2 * DAY_MS {
            return None;
        }
        let start = self.local_to_utc(monday, 0);
        (wed - start == 2 * DAY_MS).then_some(start)
    }
}

fn keep<T>(errors: &mut Vec<FieldError>, r: Result<T, FieldError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

fn weekday_key(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

fn parse_hours(field: &str, list: &[String], errors: &mut Vec<FieldError>) -> Option<DayHours> {
    let before = errors.len();
    let intervals: Vec<WorkInterval> =
        list.iter().enumerate().filter_map(|(i, s)| keep(errors, WorkInterval::parse(&format!("{field}[{i}]"), s))).collect();
    if errors.len() > before {
        return None;
    }
    keep(errors, DayHours::new(field, intervals))
}

/// Parses `YYYY-MM-DD` (also `YYYY/M/D`, as spreadsheets write it).
pub(crate) fn parse_date(field: &str, value: &str) -> Result<NaiveDate, FieldError> {
    let v = value.trim();
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(v, "%Y/%m/%d"))
        .map_err(|_| FieldError::new(field, "invalid_date", format!("'{v}' is not a date (YYYY-MM-DD)")))
}

/// The serialised form of a [`BusinessCalendar`], as a configuration form or file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarSpec {
    /// IANA time zone, e.g. `Asia/Shanghai`.
    pub time_zone: String,
    pub hours: WeekSpec,
    #[serde(default)]
    pub make_up_hours: MakeUpSpec,
    #[serde(default)]
    pub days: Vec<DaySpec>,
}

/// Working intervals per weekday as `HH:MM-HH:MM` texts; a missing day is closed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WeekSpec {
    #[serde(default)]
    pub mon: Vec<String>,
    #[serde(default)]
    pub tue: Vec<String>,
    #[serde(default)]
    pub wed: Vec<String>,
    #[serde(default)]
    pub thu: Vec<String>,
    #[serde(default)]
    pub fri: Vec<String>,
    #[serde(default)]
    pub sat: Vec<String>,
    #[serde(default)]
    pub sun: Vec<String>,
}

impl WeekSpec {
    fn get(&self, d: Weekday) -> &[String] {
        match d {
            Weekday::Mon => &self.mon,
            Weekday::Tue => &self.tue,
            Weekday::Wed => &self.wed,
            Weekday::Thu => &self.thu,
            Weekday::Fri => &self.fri,
            Weekday::Sat => &self.sat,
            Weekday::Sun => &self.sun,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MakeUpSpec {
    /// A weekday whose hours a make-up day follows, e.g. `mon`.
    SameAs(String),
    Custom(Vec<String>),
}

impl Default for MakeUpSpec {
    fn default() -> Self {
        MakeUpSpec::SameAs("mon".to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySpec {
    pub date: String,
    /// `holiday` or `workday`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl TryFrom<CalendarSpec> for BusinessCalendar {
    type Error = String;
    fn try_from(spec: CalendarSpec) -> Result<Self, String> {
        BusinessCalendar::from_spec(&spec).map_err(|e| describe(&e))
    }
}

impl From<BusinessCalendar> for CalendarSpec {
    fn from(c: BusinessCalendar) -> CalendarSpec {
        c.to_spec()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Few enough cases to keep `cargo test` quick, and no regression files written into the
    /// source tree.
    pub(crate) fn config(cases: u32) -> ProptestConfig {
        ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
    }

    pub(crate) fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    pub(crate) fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    pub(crate) fn hours(s: &str) -> DayHours {
        DayHours::parse("hours", s).unwrap()
    }

    pub(crate) fn calendar(tz: &str, week: WeekHours) -> BusinessCalendar {
        BusinessCalendar::new(tz.parse().unwrap(), week).unwrap()
    }

    fn office(tz: &str) -> BusinessCalendar {
        calendar(tz, WeekHours::weekdays(hours("09:00-17:00")))
    }

    fn codes(e: DomainError) -> Vec<&'static str> {
        match e {
            DomainError::Invalid(list) => list.into_iter().map(|f| f.code).collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn intervals_parse_and_validate() {
        let i = WorkInterval::parse("i", " 9:00 - 12:30 ").unwrap();
        assert_eq!((i.start_minute(), i.end_minute()), (540, 750));
        assert_eq!(i.to_string(), "09:00-12:30");
        assert_eq!(WorkInterval::parse("i", "13:30-24:00").unwrap().duration_ms(), 630 * MINUTE_MS);
        assert_eq!(WorkInterval::parse("i", "12:00-09:00").unwrap_err().code, "interval_start_not_before_end");
        assert_eq!(WorkInterval::parse("i", "09:00-09:00").unwrap_err().code, "interval_start_not_before_end");
        for bad in ["", "9-12", "09:00", "09:60-10:00", "24:30-25:00", "aa:bb-cc:dd", "09:00-12:00-13:00"] {
            assert_eq!(WorkInterval::parse("i", bad).unwrap_err().code, "invalid_interval", "{bad}");
        }
        assert_eq!(WorkInterval::hm("i", (9, 0), (24, 1)).unwrap_err().code, "time_out_of_range");
        assert_eq!(hours("13:30-18:00, 09:00-12:00").to_string(), "09:00-12:00,13:30-18:00");
        assert!(hours("09:00-12:00;12:00-13:00").total_ms() == 4 * HOUR_MS);
        assert!(hours("closed").is_closed());
        assert_eq!(DayHours::parse("h", "09:00-12:00,11:00-13:00").unwrap_err().code, "intervals_overlap");
    }

    fn spec_json() -> serde_json::Value {
        serde_json::json!({
            "time_zone": "Asia/Shanghai",
            "hours": {"mon": ["09:00-12:00", "13:30-18:00"], "tue": ["09:00-18:00"], "sat": []},
            "make_up_hours": {"custom": ["09:00-17:00"]},
            "days": [
                {"date": "2025-10-01", "kind": "holiday", "name": "National Day 国庆节"},
                {"date": "2025-10-11", "kind": "workday"}
            ]
        })
    }

    #[test]
    fn calendars_round_trip_through_their_spec() {
        let c: BusinessCalendar = serde_json::from_value(spec_json()).unwrap();
        assert_eq!(c.time_zone(), chrono_tz::Asia::Shanghai);
        assert_eq!(c.hours_on(date(2025, 10, 11)), &hours("09:00-17:00"));
        assert!(c.hours_on(date(2025, 10, 1)).is_closed());
        assert_eq!(c.day(date(2025, 10, 1)).unwrap().name.as_deref(), Some("National Day 国庆节"));
        let back: BusinessCalendar = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn invalid_specs_report_every_field() {
        let mut v = spec_json();
        v["time_zone"] = "Mars/Olympus".into();
        v["hours"]["mon"] = serde_json::json!(["09:00-12:00", "11:00-18:00"]);
        v["hours"]["tue"] = serde_json::json!(["18:00-09:00"]);
        v["days"] = serde_json::json!([
            {"date": "2025-10-01", "kind": "holiday"},
            {"date": "2025-02-30", "kind": "holiday"},
            {"date": "2025-10-02", "kind": "vacation"}
        ]);
        let spec: CalendarSpec = serde_json::from_value(v).unwrap();
        let err = BusinessCalendar::from_spec(&spec).unwrap_err();
        let DomainError::Invalid(list) = &err else { panic!() };
        let fields: Vec<(&str, &str)> = list.iter().map(|f| (f.field.as_str(), f.code)).collect();
        assert!(fields.contains(&("time_zone", "invalid_time_zone")), "{fields:?}");
        assert!(fields.contains(&("hours.mon", "intervals_overlap")), "{fields:?}");
        assert!(fields.contains(&("hours.tue[0]", "interval_start_not_before_end")), "{fields:?}");
        assert!(fields.contains(&("days[1].date", "invalid_date")), "{fields:?}");
        assert!(fields.contains(&("days[2].kind", "invalid_day_kind")), "{fields:?}");

        let mut v = spec_json();
        v["days"] = serde_json::json!([
            {"date": "2025-10-01", "kind": "holiday"},
            {"date": "2025-10-01", "kind": "workday"},
            {"date": "2025-10-02", "kind": "holiday"},
            {"date": "2025/10/2", "kind": "holiday"}
        ]);
        v["make_up_hours"] = serde_json::json!({"same_as": "sun"});
        let spec: CalendarSpec = serde_json::from_value(v).unwrap();
        let c = codes(BusinessCalendar::from_spec(&spec).unwrap_err());
        assert!(c.contains(&"holiday_and_workday"), "{c:?}");
        assert!(c.contains(&"duplicate_date"), "{c:?}");
        assert!(c.contains(&"no_working_hours"), "{c:?}");

        let c = codes(BusinessCalendar::new(chrono_tz::UTC, WeekHours::closed()).unwrap_err());
        assert_eq!(c, ["no_working_hours", "no_working_hours"]);
        let sundays = calendar("UTC", WeekHours::closed().with(Weekday::Sun, hours("10:00-12:00")));
        assert_eq!(sundays.make_up_hours(), &MakeUpHours::SameAs(Weekday::Sun));
        let long = "x".repeat(MAX_DAY_NAME_CHARS + 1);
        let c = codes(office("UTC").with_days([CalendarDay::holiday(date(2025, 1, 1), long)]).unwrap_err());
        assert_eq!(c, ["too_long"]);
    }

    #[test]
    fn london_intervals_across_the_clock_changes_hold_the_real_time() {
        let c = calendar("Europe/London", WeekHours::every_day(hours("00:00-24:00")));
        // 2025-03-30: 01:00 GMT becomes 02:00 BST; 2025-10-26: 02:00 BST becomes 01:00 GMT.
        let spring = c.business_millis_between(utc("2025-03-30T00:00:00Z"), utc("2025-03-30T23:00:00Z"));
        assert_eq!(spring, 23 * HOUR_MS);
        let autumn = c.business_millis_between(utc("2025-10-25T23:00:00Z"), utc("2025-10-27T00:00:00Z"));
        assert_eq!(autumn, 25 * HOUR_MS);

        let c = calendar("Europe/London", WeekHours::closed().with(Weekday::Sun, hours("00:30-03:00")));
        let on = |y, m, d| c.working_intervals(date(y, m, d));
        assert_eq!(on(2025, 3, 30), [(utc("2025-03-30T00:30:00Z"), utc("2025-03-30T02:00:00Z"))], "00:30 GMT to 03:00 BST is 1.5 hours");
        assert_eq!(on(2025, 10, 26), [(utc("2025-10-25T23:30:00Z"), utc("2025-10-26T03:00:00Z"))], "00:30 BST to 03:00 GMT is 3.5 hours");
        // A boundary in the skipped hour is the moment of the jump; in the repeated hour, its first pass.
        let c = calendar("Europe/London", WeekHours::closed().with(Weekday::Sun, hours("01:30-01:45")));
        assert_eq!(on_dates(&c, date(2025, 3, 30)), 0);
        assert_eq!(c.working_intervals(date(2025, 10, 26)), [(utc("2025-10-26T00:30:00Z"), utc("2025-10-26T00:45:00Z"))]);

        let c = office("Europe/London");
        let friday = utc("2025-03-28T16:00:00Z");
        let monday = c.add_business_millis(friday, 2 * HOUR_MS);
        assert_eq!(monday, utc("2025-03-31T09:00:00Z"), "Monday 10:00 BST");
        assert_eq!(c.business_millis_between(friday, monday), 2 * HOUR_MS);
        assert_eq!(c.add_business_millis(utc("2025-10-24T15:30:00Z"), 2 * HOUR_MS), utc("2025-10-27T10:30:00Z"));
    }

    fn on_dates(c: &BusinessCalendar, d: NaiveDate) -> i64 {
        c.working_intervals(d).iter().map(|(s, e)| (*e - *s).num_milliseconds()).sum()
    }

    #[test]
    fn new_york_across_the_clock_changes() {
        let c = calendar("America/New_York", WeekHours::every_day(hours("00:00-06:00")));
        assert_eq!(on_dates(&c, date(2025, 3, 9)), 5 * HOUR_MS);
        assert_eq!(on_dates(&c, date(2025, 11, 2)), 7 * HOUR_MS);
        assert_eq!(on_dates(&c, date(2025, 11, 3)), 6 * HOUR_MS);

        let c = office("America/New_York");
        // Friday 16:00 EDT + 2h = Monday 10:00 EST.
        let due = c.add_business_millis(utc("2025-10-31T20:00:00Z"), 2 * HOUR_MS);
        assert_eq!(due, utc("2025-11-03T15:00:00Z"));
        assert_eq!(c.add_business_millis(due, -2 * HOUR_MS), utc("2025-10-31T20:00:00Z"));
        // Friday 16:00 EST + 2h = Monday 10:00 EDT.
        assert_eq!(c.add_business_millis(utc("2025-03-07T21:00:00Z"), 2 * HOUR_MS), utc("2025-03-10T14:00:00Z"));
        assert_eq!(c.business_millis_between(utc("2025-03-03T05:00:00Z"), utc("2025-03-17T04:00:00Z")), 80 * HOUR_MS);
    }

    #[test]
    fn year_end_and_long_spans() {
        let c = office("UTC");
        assert_eq!(c.add_business_millis(utc("2024-12-31T16:00:00Z"), 2 * HOUR_MS), utc("2025-01-01T10:00:00Z"));
        assert_eq!(c.add_business_millis(utc("2025-01-01T10:00:00Z"), -2 * HOUR_MS), utc("2024-12-31T16:00:00Z"));
        let c = c.with_days([CalendarDay::holiday(date(2025, 1, 1), "New Year's Day")]).unwrap();
        assert_eq!(c.add_business_millis(utc("2024-12-31T16:00:00Z"), 2 * HOUR_MS), utc("2025-01-02T10:00:00Z"));

        let (a, b) = (utc("2020-01-06T00:00:00Z"), utc("2030-01-07T00:00:00Z"));
        let weeks = (b - a).num_days() / 7;
        assert_eq!(c.business_millis_between(a, b), weeks * 40 * HOUR_MS - 8 * HOUR_MS);
        assert_eq!(c.business_millis_between(b, a), -(weeks * 40 * HOUR_MS - 8 * HOUR_MS));
        assert_eq!(c.add_business_millis(a, weeks * 40 * HOUR_MS - 8 * HOUR_MS), utc("2030-01-04T17:00:00Z"));
        let london = office("Europe/London");
        let (a, b) = (utc("2020-01-06T00:00:00Z"), utc("2030-01-07T00:00:00Z"));
        assert_eq!(london.business_millis_between(a, b), weeks * 40 * HOUR_MS);
        assert_eq!(london.add_business_millis(b, -weeks * 40 * HOUR_MS), utc("2020-01-06T09:00:00Z"));
    }

    #[test]
    fn extreme_inputs_saturate() {
        let c = office("Asia/Shanghai");
        assert_eq!(c.add_business_millis(utc("2025-01-01T00:00:00Z"), i64::MAX), from_ms(LATEST_MS));
        assert_eq!(c.add_business_millis(utc("2025-01-01T00:00:00Z"), i64::MIN), from_ms(EARLIEST_MS));
        assert_eq!(c.next_working_instant(DateTime::<Utc>::MAX_UTC), from_ms(LATEST_MS));
        assert!(c.business_millis_between(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC) > 0);
        let far = c.add_business_days(utc("2025-01-01T00:00:00Z"), i32::MAX);
        assert!(far <= from_ms(LATEST_MS) && far > utc("9999-01-01T00:00:00Z"), "{far}");
        let early = c.add_business_days(utc("2025-01-01T00:00:00Z"), i32::MIN);
        assert!(early < utc("1801-01-01T00:00:00Z"), "{early}");
    }

    #[test]
    fn a_skipped_calendar_day_is_handled() {
        // Samoa skipped 2011-12-30 when it crossed the date line.
        let c = calendar("Pacific/Apia", WeekHours::every_day(hours("00:00-24:00")));
        let start = c.working_intervals(date(2011, 12, 29))[0].0;
        let end = c.working_intervals(date(2011, 12, 31))[0].0;
        assert_eq!(c.business_millis_between(start, end), 24 * HOUR_MS);
        assert!(c.working_intervals(date(2011, 12, 30)).is_empty());
        assert_eq!(c.add_business_millis(start, 25 * HOUR_MS), end + TimeDelta::hours(1));
    }

    #[test]
    fn working_instants_and_business_days() {
        let c = calendar("Asia/Shanghai", WeekHours::weekdays(hours("09:00-12:00,13:30-18:00")));
        // 2025-06-06 is a Friday; Shanghai is UTC+8.
        assert!(c.is_working_at(utc("2025-06-06T01:00:00Z")));
        assert!(!c.is_working_at(utc("2025-06-06T04:00:00Z")), "lunch");
        assert!(c.is_working_at(utc("2025-06-06T05:30:00Z")), "13:30 starts the afternoon");
        assert!(!c.is_working_at(utc("2025-06-06T10:00:00Z")), "18:00 ends the day");
        assert_eq!(c.next_working_instant(utc("2025-06-06T04:00:00Z")), utc("2025-06-06T05:30:00Z"));
        assert_eq!(c.next_working_instant(utc("2025-06-06T10:00:00Z")), utc("2025-06-09T01:00:00Z"));
        assert_eq!(c.next_working_instant(utc("2025-06-06T02:00:00.123Z")), utc("2025-06-06T02:00:00.123Z"));
        assert_eq!(c.add_business_millis(utc("2025-06-06T04:00:00Z"), 0), utc("2025-06-06T04:00:00Z"));
        assert_eq!(c.add_business_millis(utc("2025-06-06T04:00:00Z"), 1), utc("2025-06-06T05:30:00.001Z"));
        assert_eq!(c.add_business_millis(utc("2025-06-06T03:00:00Z"), 1), utc("2025-06-06T03:00:00.001Z"));

        let friday_3pm = utc("2025-06-06T07:00:00Z");
        assert_eq!(c.add_business_days(friday_3pm, 3), utc("2025-06-11T07:00:00Z"), "Wednesday 15:00");
        assert_eq!(c.add_business_days(friday_3pm, -5), utc("2025-05-30T07:00:00Z"));
        assert_eq!(c.add_business_days(friday_3pm, 0), friday_3pm);
        assert_eq!(c.add_business_days(friday_3pm, 50), utc("2025-08-15T07:00:00Z"));
        assert_eq!(c.add_business_days(friday_3pm, -50), utc("2025-03-28T07:00:00Z"));
        let saturday = utc("2025-06-07T02:00:00Z");
        assert_eq!(c.add_business_days(saturday, 1), utc("2025-06-09T02:00:00Z"));
        let c = c.with_days([CalendarDay::holiday(date(2025, 6, 9), "x"), CalendarDay::workday(date(2025, 6, 8), "y")]).unwrap();
        assert_eq!(c.add_business_days(saturday, 1), utc("2025-06-08T02:00:00Z"));
        assert_eq!(c.add_business_days(saturday, 2), utc("2025-06-10T02:00:00Z"));
        assert_eq!(c.add_business_days(utc("2025-06-20T02:00:00Z"), -10), utc("2025-06-06T02:00:00Z"));
    }

    #[test]
    fn yearly_days_can_be_replaced() {
        let c = office("UTC")
            .with_days([
                CalendarDay::holiday(date(2024, 12, 25), "Christmas"),
                CalendarDay::holiday(date(2025, 1, 1), "New Year"),
                CalendarDay::holiday(date(2025, 12, 25), "Christmas"),
            ])
            .unwrap();
        assert_eq!(c.days_in_year(2025).len(), 2);
        let c = c.replace_year(2025, vec![CalendarDay::holiday(date(2025, 5, 5), "May Day")]).unwrap();
        let dates: Vec<NaiveDate> = c.days().iter().map(|d| d.date).collect();
        assert_eq!(dates, [date(2024, 12, 25), date(2025, 5, 5)]);
        let err = c.replace_year(2026, vec![CalendarDay::holiday(date(2025, 5, 6), "x")]).unwrap_err();
        assert_eq!(codes(err), ["date_outside_year"]);
    }

    const ZONES: [&str; 8] = [
        "UTC",
        "Europe/London",
        "America/New_York",
        "Asia/Shanghai",
        "Australia/Lord_Howe",
        "America/Santiago",
        "Asia/Kolkata",
        "Pacific/Chatham",
    ];

    /// Days shortly before daylight saving changes (London, New York, Santiago, Lord Howe,
    /// Chatham) and a year end.
    const BASES: [(i32, u32, u32); 7] =
        [(2025, 3, 4), (2025, 3, 26), (2025, 4, 2), (2025, 10, 22), (2025, 12, 26), (2026, 9, 1), (2026, 9, 26)];

    fn day_hours() -> impl Strategy<Value = DayHours> {
        prop_oneof![
            1 => Just(DayHours::closed()),
            3 => prop::collection::vec(0u16..=96, 2..=6).prop_map(|mut points| {
                points.sort_unstable();
                points.dedup();
                let intervals = points
                    .chunks_exact(2)
                    .map(|p| WorkInterval::new("i", p[0] * 15, p[1] * 15).unwrap())
                    .collect();
                DayHours::new("h", intervals).unwrap()
            }),
        ]
    }

    prop_compose! {
        pub(crate) fn any_calendar()(
            zone in prop::sample::select(&ZONES[..]),
            days in prop::array::uniform7(day_hours()),
            every_day in prop::option::weighted(0.3, day_hours()),
            custom in prop::option::of(day_hours()),
            base in prop::sample::select(&BASES[..]),
            specials in prop::collection::btree_map(0u64..45, any::<bool>(), 0..8),
        ) -> (BusinessCalendar, DateTime<Utc>) {
            let mut week = match every_day {
                Some(h) => WeekHours::every_day(h),
                None => WeekHours(days),
            };
            if week.total_ms() == 0 {
                week = week.with(Weekday::Mon, hours("09:00-17:00"));
            }
            let make_up = match custom {
                Some(h) if !h.is_closed() => MakeUpHours::Custom(h),
                _ => MakeUpHours::SameAs(WEEKDAYS.into_iter().find(|d| !week.get(*d).is_closed()).unwrap()),
            };
            let base_date = date(base.0, base.1, base.2);
            let days = specials.into_iter().map(|(offset, holiday)| {
                let d = plus_days(base_date, offset);
                if holiday { CalendarDay::holiday(d, "h") } else { CalendarDay::workday(d, "w") }
            });
            let c = calendar(zone, week).with_make_up_hours(make_up).unwrap().with_days(days).unwrap();
            let base = base_date.and_hms_opt(0, 0, 0).unwrap().and_utc();
            (c, base)
        }
    }

    /// An independent model of the interval rule: the local clock's running maximum is inside
    /// a working interval of its date. Works a minute at a time.
    fn model_between(c: &BusinessCalendar, a: i64, b: i64) -> i64 {
        let wall = |t: i64| from_ms(t).with_timezone(&c.tz).naive_local();
        let mut max = (1..=180).map(|m| wall(a - m * MINUTE_MS)).max().unwrap();
        let mut total = 0;
        let mut t = a;
        while t < b {
            max = max.max(wall(t));
            let minute = (max.hour() * 60 + max.minute()) as u16;
            if c.hours_on(max.date()).intervals().iter().any(|i| i.start <= minute && minute < i.end) {
                total += MINUTE_MS;
            }
            t += MINUTE_MS;
        }
        total
    }

    proptest! {
        #![proptest_config(crate::sla::calendar::tests::config(40))]

        #[test]
        fn business_time_matches_a_minute_by_minute_model(
            (c, base) in any_calendar(),
            start in 0i64..(8 * 1440),
            len in 0i64..(12 * 1440),
        ) {
            let a = base.timestamp_millis() + start * MINUTE_MS;
            let b = a + len * MINUTE_MS;
            prop_assert_eq!(c.between_ms(a, b), model_between(&c, a, b));
        }
    }

    proptest! {
        #![proptest_config(crate::sla::calendar::tests::config(200))]

        #[test]
        fn adding_and_measuring_are_inverse(
            (c, base) in any_calendar(),
            start in 0i64..(40 * DAY_MS),
            d in 0i64..(400 * 8 * HOUR_MS),
            later in 0i64..(300 * DAY_MS),
        ) {
            let a = from_ms(base.timestamp_millis() + start);
            let due = c.add_business_millis(a, d);
            prop_assert_eq!(c.business_millis_between(a, due), d);
            if d > 0 {
                prop_assert!(c.business_millis_between(a, due - TimeDelta::milliseconds(1)) < d, "not the earliest");
            }
            let back = c.add_business_millis(a, -d);
            prop_assert_eq!(c.business_millis_between(back, a), d);
            if d > 0 {
                prop_assert!(c.business_millis_between(back + TimeDelta::milliseconds(1), a) < d, "not the latest");
            }
            let b = a + TimeDelta::milliseconds(later);
            let measured = c.business_millis_between(a, b);
            let reached = c.add_business_millis(a, measured);
            prop_assert!(reached <= b);
            prop_assert_eq!(c.business_millis_between(reached, b), 0);
        }

        #[test]
        fn business_time_adds_up_over_consecutive_spans(
            (c, base) in any_calendar(),
            cuts in prop::collection::vec(0i64..(60 * DAY_MS), 3),
        ) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            let t = |i: usize| from_ms(base.timestamp_millis() + cuts[i]);
            let whole = c.business_millis_between(t(0), t(2));
            prop_assert_eq!(whole, c.business_millis_between(t(0), t(1)) + c.business_millis_between(t(1), t(2)));
            prop_assert_eq!(c.business_millis_between(t(2), t(0)), -whole);
        }

        #[test]
        fn time_outside_working_hours_adds_nothing(
            (c, base) in any_calendar(),
            start in 0i64..(40 * DAY_MS),
            frac in 0.0f64..1.0,
        ) {
            let t = from_ms(base.timestamp_millis() + start);
            let next = c.next_working_instant(t);
            prop_assert!(next >= t);
            prop_assert_eq!(c.business_millis_between(t, next), 0);
            prop_assert!(c.is_working_at(next));
            if next > t {
                prop_assert!(!c.is_working_at(t));
                let inside = t + TimeDelta::milliseconds(((next - t).num_milliseconds() as f64 * frac) as i64);
                prop_assert!(!c.is_working_at(inside));
                prop_assert_eq!(c.add_business_millis(t, 1), next + TimeDelta::milliseconds(1));
            }
        }

        #[test]
        fn a_make_up_saturday_counts_and_a_holiday_monday_does_not(
            (c, base) in any_calendar(),
            week in 0u64..5,
        ) {
            let first = base.date_naive();
            let saturday = plus_days(first, u64::from(7 - first.weekday().num_days_from_sunday()) % 7 + week * 7);
            prop_assume!(c.day(saturday).is_none());
            let monday = plus_days(saturday, 2);
            let c2 = c.clone().with_days([
                CalendarDay::workday(saturday, "make-up"),
                CalendarDay::holiday(monday, "holiday"),
            ]);
            prop_assume!(c2.is_ok());
            let c2 = c2.unwrap();
            let whole_day = |cal: &BusinessCalendar, d: NaiveDate| {
                cal.business_millis_between(from_ms(cal.local_to_utc(d, 0)), from_ms(cal.local_to_utc(d, DAY_MS)))
            };
            prop_assert_eq!(whole_day(&c2, monday), 0);
            prop_assert!(!c2.is_working_day(monday));
            prop_assert!(c2.is_working_day(saturday));
            prop_assert_eq!(whole_day(&c2, saturday), on_dates(&c2, saturday));
            prop_assert_eq!(c2.hours_on(saturday), match c.make_up_hours() {
                MakeUpHours::SameAs(d) => c.week().get(*d),
                MakeUpHours::Custom(h) => h,
            });
            let fixed = c2.local_to_utc(plus_days(saturday, 1), 0) - c2.local_to_utc(saturday, 0) == DAY_MS;
            if fixed {
                prop_assert_eq!(whole_day(&c2, saturday), c2.hours_on(saturday).total_ms());
            }
        }
    }
}

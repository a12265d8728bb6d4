//! Service level management (§6.1): business calendars with public holidays and make-up working
//! days, service level targets per priority, and the SLA clock that measures tickets against them.

pub mod agreement;
pub mod calendar;
pub mod calendar_io;
pub mod china;
pub mod clock;
pub mod target;

pub use calendar::{BusinessCalendar, CalendarDay, CalendarSpec, DayHours, DayKind, MakeUpHours, WeekHours, WorkInterval};
pub use clock::{
    ClockContext, ClockEvent, ClockPhase, ClockPolicy, ClockState, SlaClock, SlaReport, TargetClock, ThresholdCrossing, TicketHistory,
    compute_clocks, replay,
};
pub use target::{Priority, PriorityTargets, SlaTargets, TargetKind, Thresholds};

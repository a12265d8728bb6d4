//! Service level management (§6.1): business calendars, targets per priority and the SLA clock.

pub mod calendar;
pub mod calendar_io;
pub mod china;
pub mod target;

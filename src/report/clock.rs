//! Times of day for people: UTC by default, the local time zone with `--local`.

use jiff::tz::TimeZone;

/// The time zone a person reads times in.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// Coordinated Universal Time.
    #[default]
    Utc,
    /// The system's time zone (`TZ`, else `/etc/localtime`).
    Local(TimeZone),
}

impl Clock {
    /// The system's time zone, UTC when it cannot be found.
    pub fn local() -> Self {
        Clock::Local(TimeZone::system())
    }

    /// The zone's name in a column header: `UTC` or `local`.
    pub fn name(&self) -> &'static str {
        match self {
            Clock::Utc => "UTC",
            Clock::Local(_) => "local",
        }
    }

    /// `2026-11-25 14:54:49.096`: seconds since the epoch as a date and time of day in this
    /// zone, to the millisecond.
    pub fn time(&self, ts: f64) -> String {
        self.format(ts, "%Y-%m-%d %H:%M:%S%.3f")
    }

    /// The time followed by its zone: `... UTC`, or the local offset from UTC (`... +01:00`),
    /// which daylight saving time changes.
    pub fn stamp(&self, ts: f64) -> String {
        match self {
            Clock::Utc => format!("{} UTC", self.time(ts)),
            Clock::Local(_) => self.format(ts, "%Y-%m-%d %H:%M:%S%.3f %:z"),
        }
    }

    fn format(&self, ts: f64, pattern: &str) -> String {
        let micros = (ts * 1e6).round() as i64;
        let tz = match self {
            Clock::Utc => TimeZone::UTC,
            Clock::Local(tz) => tz.clone(),
        };
        match jiff::Timestamp::from_microsecond(micros) {
            Ok(t) => t.to_zoned_datetime(tz).strftime(pattern).to_string(),
            Err(_) => format!("{ts:.6}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_and_a_fixed_local_zone() {
        let ts = 1_764_082_489.096_4;
        assert_eq!(Clock::Utc.time(ts), "2025-11-25 14:54:49.096");
        assert_eq!(Clock::Utc.stamp(ts), "2025-11-25 14:54:49.096 UTC");
        let paris = Clock::Local(TimeZone::get("Europe/Paris").unwrap());
        assert_eq!(paris.time(ts), "2025-11-25 15:54:49.096");
        assert_eq!(paris.stamp(ts), "2025-11-25 15:54:49.096 +01:00");
        // Summer time moves the offset.
        assert_eq!(paris.stamp(ts - 150.0 * 86_400.0), "2025-06-28 16:54:49.096 +02:00");
        assert_eq!(paris.name(), "local");
    }

    #[test]
    fn a_time_out_of_range_prints_as_seconds() {
        assert_eq!(Clock::Utc.time(1e15), "1000000000000000.000000");
    }
}

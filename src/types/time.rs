//! Capture time: instants and spans in nanoseconds.

use std::num::NonZeroU64;

/// Nanoseconds since the Unix epoch. Never zero (the epoch itself reads as 1 ns), so that an
/// `Option<Timestamp>` takes 8 bytes in the per-connection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(NonZeroU64);

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp::from_nanos(0)
    }
}

impl Timestamp {
    /// The time `nanos` nanoseconds after the epoch; 0 becomes 1 ns (see [`Timestamp`]).
    pub fn from_nanos(nanos: u64) -> Self {
        Timestamp(NonZeroU64::new(nanos).unwrap_or(NonZeroU64::MIN))
    }

    /// Nanoseconds since the Unix epoch.
    pub fn nanos(self) -> u64 {
        self.0.get()
    }

    /// The time `secs` seconds plus `nanos` nanoseconds after the epoch, as capture records store it;
    /// saturates instead of overflowing.
    pub fn from_secs_nanos(secs: u64, nanos: u32) -> Self {
        Self::from_nanos(secs.saturating_mul(1_000_000_000).saturating_add(nanos as u64))
    }

    /// `self + d`.
    pub fn plus(self, d: Duration) -> Self {
        Self::from_nanos(self.nanos().saturating_add(d.0))
    }

    /// The time `d` after the Unix epoch.
    pub fn from_duration(d: std::time::Duration) -> Self {
        Self::from_secs_nanos(d.as_secs(), d.subsec_nanos())
    }

    /// The f64 nearest this time in seconds. A whole number of microseconds (every time of a
    /// microsecond capture) is converted with one rounding: dividing the nanoseconds, a number
    /// past 2^53 and so already rounded once, could land one f64 away and print as 17 digits
    /// (`1700000000.1607318` for the capture's `1700000000.160732`).
    pub fn as_secs_f64(self) -> f64 {
        let nanos = self.nanos();
        if nanos.is_multiple_of(1000) {
            (nanos / 1000) as f64 / 1e6
        } else {
            nanos as f64 / 1e9
        }
    }

    /// `self - earlier`, zero when time went backwards.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration(self.nanos().saturating_sub(earlier.nanos()))
    }
}

/// A span of capture time in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub u64);

impl Duration {
    /// A span of whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        Duration(s * 1_000_000_000)
    }

    /// A span of `secs` seconds, to the nanosecond; `None` unless finite and 0 or more.
    pub fn from_secs_f64(secs: f64) -> Option<Self> {
        (secs.is_finite() && secs >= 0.0).then(|| Duration((secs * 1e9).round() as u64))
    }

    /// The span in seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `secs.micros` as a capture tool prints it, trailing zeros dropped (one kept).
    fn decimal(secs: u64, micros: u32) -> String {
        let frac = format!("{micros:06}");
        let frac = frac.trim_end_matches('0');
        format!("{secs}.{}", if frac.is_empty() { "0" } else { frac })
    }

    #[test]
    fn a_microsecond_time_prints_as_the_capture_wrote_it() {
        // Its nanoseconds divided by 1e9 gave an f64 one step off, printed `1700000000.1607318`.
        let t = Timestamp::from_secs_nanos(1_700_000_000, 160_732_000);
        assert_eq!(serde_json::to_string(&t.as_secs_f64()).unwrap(), "1700000000.160732");
    }

    proptest! {
        #[test]
        fn every_microsecond_time_prints_as_its_own_digits(secs in 1u64..1 << 32, micros in 0u32..1_000_000) {
            let t = Timestamp::from_secs_nanos(secs, micros * 1000);
            prop_assert_eq!(serde_json::to_string(&t.as_secs_f64()).unwrap(), decimal(secs, micros));
        }
    }
}

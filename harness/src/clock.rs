//! The run's clock: microseconds since the run's epoch (the moment before
//! its first peer starts). Everything a run records is on it, so a record
//! read back from disk is judged on exactly the times the live run was.
//!
//! [`RunTime`] mirrors [`Instant`]'s arithmetic (`duration_since`,
//! `checked_duration_since`, adding a [`Duration`]), so code that judges
//! times reads the same on either.

use std::ops::{Add, Sub};
use std::time::{Duration, Instant};

/// A moment of the run: whole microseconds since its epoch.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct RunTime(u64);

impl RunTime {
    pub const ZERO: RunTime = RunTime(0);

    /// `at` on the clock that started at `epoch` (a moment before the epoch
    /// is the epoch itself).
    pub fn of(at: Instant, epoch: Instant) -> RunTime {
        RunTime::from_micros(at.saturating_duration_since(epoch).as_micros() as u64)
    }

    /// Now, on the clock that started at `epoch`.
    pub fn now(epoch: Instant) -> RunTime {
        RunTime::of(Instant::now(), epoch)
    }

    pub const fn from_micros(us: u64) -> RunTime {
        RunTime(us)
    }

    pub(crate) fn checked_duration_since(self, earlier: RunTime) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_micros)
    }

    pub fn saturating_duration_since(self, earlier: RunTime) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// Like [`Instant::duration_since`]: zero when `earlier` is later.
    pub fn duration_since(self, earlier: RunTime) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl Add<Duration> for RunTime {
    type Output = RunTime;

    fn add(self, rhs: Duration) -> RunTime {
        RunTime(self.0.saturating_add(rhs.as_micros() as u64))
    }
}

impl Sub<Duration> for RunTime {
    type Output = RunTime;

    fn sub(self, rhs: Duration) -> RunTime {
        RunTime(self.0.saturating_sub(rhs.as_micros() as u64))
    }
}

/// A float read back where one was written: JSON has no NaN, so serde
/// writes it as `null`; this reads `null` as NaN again.
pub(crate) fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_time_measures_like_an_instant() {
        let epoch = Instant::now();
        let a = RunTime::of(epoch + Duration::from_micros(1500), epoch);
        let b = a + Duration::from_millis(2);
        assert_eq!(a, RunTime::from_micros(1500));
        assert_eq!(b.duration_since(a), Duration::from_millis(2));
        assert_eq!(a.checked_duration_since(b), None);
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert_eq!(
            RunTime::of(epoch - Duration::from_secs(1), epoch),
            RunTime::ZERO
        );
        assert_eq!(serde_json::to_string(&a).unwrap(), "1500");
    }
}

//! Sender pacing: whether each video frame left in its slot. A sender's
//! ticks are scheduled on the clock; a tick served late means the sender's
//! task waited for a worker, and a slot that passed unserved is a frame
//! never sent (receivers cannot see it: frame numbers stay consecutive).
//! One log per run, shared by every sender, so it is a few atomics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Default)]
pub struct PacingLog {
    frames_due: AtomicU64,
    frames_late: AtomicU64,
    late_total_us: AtomicU64,
    max_late_us: AtomicU64,
}

/// The log's counts at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct PacingSnapshot {
    /// Frame slots that came due.
    pub frames_due: u64,
    /// Slots served more than half a frame interval late, or skipped.
    pub frames_late: u64,
    /// `frames_late / frames_due` (0 with no slots).
    #[serde(deserialize_with = "crate::clock::f64_or_nan")]
    pub late_ratio: f64,
    /// How late the latest-served frame was.
    #[serde(deserialize_with = "crate::clock::f64_or_nan")]
    pub max_late_ms: f64,
    /// Mean lateness over served frames.
    #[serde(deserialize_with = "crate::clock::f64_or_nan")]
    pub mean_late_ms: f64,
}

impl PacingLog {
    /// A tick served `late` after its scheduled time, which was `slots`
    /// frame intervals after the previous one (more than one: slots skipped
    /// while the sender could not keep up).
    pub fn record(&self, slots: u64, late: Duration, interval: Duration) {
        let slots = slots.max(1);
        let late_us = late.as_micros() as u64;
        let this_late = u64::from(late > interval / 2);
        self.frames_due.fetch_add(slots, Ordering::Relaxed);
        self.frames_late
            .fetch_add(slots - 1 + this_late, Ordering::Relaxed);
        self.late_total_us.fetch_add(late_us, Ordering::Relaxed);
        self.max_late_us.fetch_max(late_us, Ordering::Relaxed);
    }

    /// The counts so far.
    pub(crate) fn snapshot(&self) -> PacingSnapshot {
        let due = self.frames_due.load(Ordering::Relaxed);
        let late = self.frames_late.load(Ordering::Relaxed);
        let served = due.saturating_sub(late).max(1);
        PacingSnapshot {
            frames_due: due,
            frames_late: late,
            late_ratio: if due == 0 {
                0.0
            } else {
                late as f64 / due as f64
            },
            max_late_ms: self.max_late_us.load(Ordering::Relaxed) as f64 / 1e3,
            mean_late_ms: self.late_total_us.load(Ordering::Relaxed) as f64 / 1e3 / served as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_micros(33_333);

    #[test]
    fn on_time_frames_are_not_late_and_skipped_slots_are() {
        let log = PacingLog::default();
        for _ in 0..98 {
            log.record(1, Duration::from_millis(1), FRAME);
        }
        // One frame 20 ms late (over half an interval), then a tick that
        // came three slots after the previous one: two slots skipped.
        log.record(1, Duration::from_millis(20), FRAME);
        log.record(3, Duration::from_millis(2), FRAME);
        let s = log.snapshot();
        assert_eq!(s.frames_due, 102);
        assert_eq!(s.frames_late, 3);
        assert!((s.late_ratio - 3.0 / 102.0).abs() < 1e-12);
        assert!((s.max_late_ms - 20.0).abs() < 1e-9);
    }

    #[test]
    fn an_empty_log_is_not_late() {
        let s = PacingLog::default().snapshot();
        assert_eq!((s.frames_due, s.frames_late, s.late_ratio), (0, 0, 0.0));
    }
}

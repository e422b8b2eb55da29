//! Is the harness itself the bottleneck? A load test on one machine can
//! measure its own overload instead of the system under test: frames sent
//! late because the senders' tasks waited for a worker look exactly like a
//! slow server. So the runner watches its own event-loop lag, the senders'
//! pacing and the process's CPU and memory, and a run over its bounds is
//! marked invalid ("harness overloaded") rather than judged.

mod lag;
mod pacing;
mod process;

use std::time::Duration;

pub(crate) use lag::{LagProbe, Watched};
pub(crate) use pacing::{PacingLog, PacingSnapshot};
pub(crate) use process::ProcessSample;

/// When the harness counts as overloaded (scenario `[harness]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LoadBounds {
    /// The event-loop lag's p99 must stay under this.
    pub max_lag: Duration,
    /// Share of video frames (0 to 1) that may leave late or not at all.
    pub max_late_frames: f64,
}

impl Default for LoadBounds {
    fn default() -> Self {
        LoadBounds {
            // Over one and a half frame intervals at 30 fps: media is no
            // longer paced by the clock.
            max_lag: Duration::from_millis(50),
            max_late_frames: 0.01,
        }
    }
}

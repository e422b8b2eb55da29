//! Judging live video that carries no stamp: a browser's camera (Chrome's
//! fake camera draws a rotating arc and a frame counter, so every captured
//! frame differs from the one before).
//!
//! A frame is *verified* when it decodes and differs from the frame before
//! it (a repeated picture is a frozen source). Frame numbers come from
//! the RTP timestamp (90 kHz) divided by the median step between frames.
//! A gap in the numbers is loss when packets went missing before the frame
//! after it; with every packet there, the sender's encoder skipped those
//! frames (browsers drop frames to hold their bitrate, or when busy), which
//! is counted apart and judged by the frame rate, not as loss.

use std::time::Duration;

use super::video::{FrameTime, VideoVerdict, freezes};

/// The RTP video clock.
const RTP_VIDEO_HZ: f64 = 90_000.0;

/// What one decoded live frame looked like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LivePicture {
    /// A hash of the luma plane: equal hashes are a repeated picture.
    pub hash: u32,
    pub width: usize,
    pub height: usize,
}

/// What became of one received live access unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LiveOutcome {
    Decoded(LivePicture),
    Undecodable,
}

/// Follows one received live video track.
#[derive(Clone, Debug, Default)]
pub(crate) struct LiveVerifier {
    last_hash: Option<u32>,
    first_timestamp: Option<u32>,
    /// RTP timestamps (unwrapped, relative to the first) of verified frames.
    timestamps: Vec<u64>,
    /// For each verified frame: packets went missing since the frame before.
    after_loss: Vec<bool>,
    /// Packets have gone missing since the last verified frame.
    loss_pending: bool,
    shown_at: Vec<Duration>,
    verdict: VideoVerdict,
}

impl LiveVerifier {
    pub(crate) fn new() -> Self {
        LiveVerifier::default()
    }

    /// Packets went missing on the way (a gap in sequence numbers).
    pub(crate) fn packets_lost(&mut self) {
        self.loss_pending = true;
    }

    /// Records one access unit with its RTP timestamp; true when it verified.
    pub(crate) fn observe(
        &mut self,
        arrival: Duration,
        rtp_timestamp: u32,
        outcome: LiveOutcome,
    ) -> bool {
        let counts = &mut self.verdict;
        counts.received += 1;
        let picture = match outcome {
            LiveOutcome::Undecodable => {
                counts.undecodable += 1;
                self.loss_pending = true;
                return false;
            }
            LiveOutcome::Decoded(picture) => picture,
        };
        if self.last_hash.replace(picture.hash) == Some(picture.hash) {
            // The same picture again: the sender repeated itself, or froze.
            counts.duplicated += 1;
            return false;
        }
        let first = *self.first_timestamp.get_or_insert(rtp_timestamp);
        let offset = u64::from(rtp_timestamp.wrapping_sub(first));
        // Older than the newest frame: out of order.
        if self.timestamps.last().is_some_and(|&last| offset < last) {
            counts.reordered += 1;
        }
        counts.verified += 1;
        counts.first_frame_at.get_or_insert(arrival);
        self.timestamps.push(offset);
        self.after_loss.push(std::mem::take(&mut self.loss_pending));
        self.shown_at.push(arrival);
        true
    }

    pub(crate) fn verdict(&self) -> VideoVerdict {
        let mut verdict = self.verdict.clone();
        let step = median_step(&self.timestamps);
        let number = |offset: u64| match step {
            Some(step) => (offset as f64 / step).round() as u32,
            None => 0,
        };
        if step.is_some() {
            // Each gap between frames in arrival order, by what came
            // before the frame after it: missing packets, or none.
            let mut newest: Option<u32> = None;
            for (&offset, &after_loss) in self.timestamps.iter().zip(&self.after_loss) {
                let n = number(offset);
                let gap = newest.map_or(0, |newest| n.saturating_sub(newest).saturating_sub(1));
                if after_loss {
                    verdict.lost += u64::from(gap);
                } else {
                    verdict.skipped_by_sender += u64::from(gap);
                }
                newest = Some(newest.map_or(n, |newest| newest.max(n)));
            }
        }
        let (freezes, freeze_ms, fps) = freezes(&self.shown_at);
        verdict.freezes = freezes;
        verdict.freeze_ms = freeze_ms;
        verdict.fps = fps;
        verdict.first_frame_number = (!self.timestamps.is_empty()).then_some(0);
        // No stamp, so no capture time: latency is not measured (NaN keeps
        // it out of every statistic).
        verdict.frames = self
            .shown_at
            .iter()
            .zip(&self.timestamps)
            .map(|(at, &offset)| FrameTime {
                number: number(offset),
                arrival_ms: at.as_secs_f64() * 1e3,
                latency_ms: f64::NAN,
            })
            .collect();
        verdict
    }
}

/// The typical RTP timestamp step between consecutive frames, in ticks.
fn median_step(timestamps: &[u64]) -> Option<f64> {
    let mut sorted = timestamps.to_vec();
    sorted.sort_unstable();
    let mut steps: Vec<u64> = sorted
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .filter(|&step| step > 0)
        .collect();
    if steps.is_empty() {
        return None;
    }
    steps.sort_unstable();
    // Never below 1 ms of RTP clock: a camera does not run at 1000 fps.
    Some((steps[steps.len() / 2] as f64).max(RTP_VIDEO_HZ / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: u32 = 3000; // 30 fps at 90 kHz

    fn picture(hash: u32) -> LiveOutcome {
        LiveOutcome::Decoded(LivePicture {
            hash,
            width: 640,
            height: 480,
        })
    }

    fn feed(verifier: &mut LiveVerifier, frames: impl IntoIterator<Item = u32>, start_ts: u32) {
        for n in frames {
            let at = Duration::from_micros(u64::from(n) * 33_333);
            verifier.observe(at, start_ts.wrapping_add(n * STEP), picture(n + 1));
        }
    }

    #[test]
    fn changing_frames_verify_at_their_rate() {
        let mut verifier = LiveVerifier::new();
        feed(&mut verifier, 0..90, 12345);
        let verdict = verifier.verdict();
        assert_eq!(verdict.verified, 90);
        assert_eq!(verdict.lost, 0);
        assert!((verdict.fps - 30.0).abs() < 0.1, "{}", verdict.fps);
        assert_eq!(verdict.freezes, 0);
        assert!(verdict.frames.iter().all(|f| f.latency_ms.is_nan()));
    }

    #[test]
    fn a_repeated_picture_is_not_verified() {
        let mut verifier = LiveVerifier::new();
        verifier.observe(Duration::ZERO, 0, picture(7));
        verifier.observe(Duration::from_millis(33), STEP, picture(7));
        verifier.observe(Duration::from_millis(66), 2 * STEP, picture(8));
        let verdict = verifier.verdict();
        assert_eq!((verdict.verified, verdict.duplicated), (2, 1));
    }

    #[test]
    fn frames_missing_after_lost_packets_count_as_lost_and_freeze() {
        let mut verifier = LiveVerifier::new();
        let start = u32::MAX - 10 * STEP;
        // Frames 30..45 never arrive, and packets went missing: half a
        // second of nothing, lost on the way.
        feed(&mut verifier, 0..30, start);
        verifier.packets_lost();
        feed(&mut verifier, 45..90, start);
        let verdict = verifier.verdict();
        assert_eq!((verdict.lost, verdict.skipped_by_sender), (15, 0));
        assert_eq!(verdict.freezes, 1);
        assert!(verdict.freeze_ms > 400.0, "{}", verdict.freeze_ms);
    }

    /// Every packet came, but the timestamps jump: the sender's encoder
    /// skipped frames (a browser holding its bitrate). No loss; the picture
    /// still froze, and the freeze is judged as one.
    #[test]
    fn frames_the_sender_skipped_are_not_lost_but_still_freeze() {
        let mut verifier = LiveVerifier::new();
        feed(&mut verifier, (0..30).chain(45..90), 7);
        let verdict = verifier.verdict();
        assert_eq!((verdict.lost, verdict.skipped_by_sender), (0, 15));
        assert_eq!(verdict.freezes, 1);
        // One skipped here and there is neither.
        let mut sparse = LiveVerifier::new();
        feed(&mut sparse, (0..90).filter(|n| n % 10 != 5), 7);
        let verdict = sparse.verdict();
        assert_eq!(
            (verdict.lost, verdict.skipped_by_sender, verdict.freezes),
            (0, 9, 0)
        );
    }

    #[test]
    fn undecodable_frames_are_counted() {
        let mut verifier = LiveVerifier::new();
        verifier.observe(Duration::ZERO, 0, LiveOutcome::Undecodable);
        let verdict = verifier.verdict();
        assert_eq!(
            (verdict.received, verdict.undecodable, verdict.verified),
            (1, 1, 0)
        );
    }
}

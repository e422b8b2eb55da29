//! Judging a received video track frame by frame, from each frame's stamp
//! and arrival time.
//!
//! A frame is *verified* when it decodes, its stamp reads with a good check
//! code, and it comes from the expected sender as a frame number not seen
//! before. Everything else is counted by what went wrong.

use std::collections::HashSet;
use std::time::Duration;

use super::Summary;
use crate::media::stamp::{Stamp, StampError};

/// A freeze is a gap between shown frames longer than this, or three mean
/// frame intervals, whichever is longer (libwebrtc's rule).
const MIN_FREEZE: Duration = Duration::from_millis(150);

/// What became of one received access unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameOutcome {
    /// Decoded; the stamp as read (or why it could not be).
    Decoded(Result<Stamp, StampError>),
    /// The decoder refused it or produced no picture.
    Undecodable,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The counts a receiver reports for one video track.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VideoVerdict {
    /// Access units handed to the decoder.
    pub received: u64,
    pub verified: u64,
    /// Frame numbers in the expected range that never verified.
    pub lost: u64,
    /// Live video: frames the sender's encoder skipped (its timestamps
    /// jump with no packet missing), which are no loss on the way.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_by_sender: u64,
    pub duplicated: u64,
    /// Verified, but after a higher frame number had been shown.
    pub reordered: u64,
    /// Decoded, but the stamp is damaged (check code fails or unreadable).
    pub corrupted: u64,
    pub undecodable: u64,
    /// A good stamp from a sender other than the expected one.
    pub wrong_sender: u64,
    pub freezes: u64,
    #[serde(deserialize_with = "crate::clock::f64_or_nan")]
    pub freeze_ms: f64,
    /// Verified frames per second between the first and last.
    #[serde(deserialize_with = "crate::clock::f64_or_nan")]
    pub fps: f64,
    /// Capture (sender's stamp) to verified (receiver), same clock.
    pub latency: Summary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_frame_at: Option<Duration>,
    /// The lowest frame number verified: frames before it never arrived.
    pub first_frame_number: Option<u32>,
    /// A browser receiver: the frames its decoder says it decoded
    /// (`framesDecoded`), and the grabs taken of what it showed. Its
    /// `verified` counts only the grabs whose stamp verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames_decoded: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grabs: Option<u64>,
    /// Every verified frame: when it arrived and its latency, in arrival
    /// order (for time series and per-frame statistics; too bulky for
    /// reports: see [`VideoVerdict::lean`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<FrameTime>,
}

/// One verified frame's arrival (ms on the run's clock) and latency.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrameTime {
    pub number: u32,
    pub arrival_ms: f64,
    /// NaN for live video (no stamp, no capture time).
    #[serde(deserialize_with = "crate::clock::f64_or_nan")]
    pub latency_ms: f64,
}

impl VideoVerdict {
    /// The verdict as reports show it: the counts, without the per-frame
    /// times the run's record keeps.
    pub(crate) fn lean(&self) -> VideoVerdict {
        VideoVerdict {
            frames: Vec::new(),
            first_frame_at: None,
            ..self.clone()
        }
    }

    /// Verified frames as a share of the frames that should have arrived.
    pub fn verified_ratio(&self) -> f64 {
        let expected = self.verified + self.lost;
        if expected == 0 {
            0.0
        } else {
            self.verified as f64 / expected as f64
        }
    }
}

/// Follows one received video track.
#[derive(Clone, Debug)]
pub(crate) struct VideoVerifier {
    expected_sender: u16,
    seen: HashSet<u32>,
    first_frame: Option<u32>,
    highest_frame: Option<u32>,
    /// Arrival of every verified frame, in arrival order.
    shown_at: Vec<Duration>,
    latencies: Vec<Duration>,
    /// The frame number of each, in the same order.
    numbers: Vec<u32>,
    verdict: VideoVerdict,
}

impl VideoVerifier {
    pub(crate) fn new(expected_sender: u16) -> Self {
        VideoVerifier {
            expected_sender,
            seen: HashSet::new(),
            first_frame: None,
            highest_frame: None,
            shown_at: Vec::new(),
            latencies: Vec::new(),
            numbers: Vec::new(),
            verdict: VideoVerdict::default(),
        }
    }

    /// Records one access unit; returns the stamp when the frame verified.
    /// `arrival` is on the same clock as the stamps' capture times.
    pub(crate) fn observe(&mut self, arrival: Duration, outcome: FrameOutcome) -> Option<Stamp> {
        let counts = &mut self.verdict;
        counts.received += 1;
        let stamp = match outcome {
            FrameOutcome::Undecodable => {
                counts.undecodable += 1;
                return None;
            }
            FrameOutcome::Decoded(Err(_)) => {
                counts.corrupted += 1;
                return None;
            }
            FrameOutcome::Decoded(Ok(stamp)) => stamp,
        };
        if stamp.sender != self.expected_sender {
            counts.wrong_sender += 1;
            return None;
        }
        if !self.seen.insert(stamp.frame) {
            counts.duplicated += 1;
            return None;
        }
        if self
            .highest_frame
            .is_some_and(|highest| stamp.frame < highest)
        {
            counts.reordered += 1;
        }
        counts.verified += 1;
        counts.first_frame_at.get_or_insert(arrival);
        self.first_frame = Some(self.first_frame.map_or(stamp.frame, |f| f.min(stamp.frame)));
        self.highest_frame = Some(
            self.highest_frame
                .map_or(stamp.frame, |h| h.max(stamp.frame)),
        );
        self.shown_at.push(arrival);
        self.numbers.push(stamp.frame);
        self.latencies
            .push(arrival.saturating_sub(Duration::from_micros(stamp.capture_us)));
        Some(stamp)
    }

    /// The verdict so far. `frames_sent`, when the sender's count is known,
    /// extends the expected range to the last frame it sent, so frames lost
    /// at the end count too.
    pub(crate) fn verdict(&self, frames_sent: Option<u32>) -> VideoVerdict {
        let mut verdict = self.verdict.clone();
        if let Some(first) = self.first_frame {
            let last = match frames_sent {
                Some(sent) => sent.saturating_sub(1).max(first),
                None => self.highest_frame.unwrap_or(first),
            };
            let in_range = self
                .seen
                .iter()
                .filter(|&&f| f >= first && f <= last)
                .count() as u64;
            verdict.lost = u64::from(last - first) + 1 - in_range;
        } else if let Some(sent) = frames_sent {
            // Nothing ever verified: everything sent was lost.
            verdict.lost = u64::from(sent);
        }
        let (freezes, freeze_ms, fps) = freezes(&self.shown_at);
        verdict.freezes = freezes;
        verdict.freeze_ms = freeze_ms;
        verdict.fps = fps;
        verdict.latency = Summary::of(&self.latencies);
        verdict.first_frame_number = self.first_frame;
        verdict.frames = self
            .shown_at
            .iter()
            .zip(&self.latencies)
            .zip(&self.numbers)
            .map(|((at, latency), &number)| FrameTime {
                number,
                arrival_ms: at.as_secs_f64() * 1e3,
                latency_ms: latency.as_secs_f64() * 1e3,
            })
            .collect();
        verdict
    }
}

/// Freezes (count, total ms) and frame rate over the arrival times of shown
/// frames.
pub(crate) fn freezes(shown_at: &[Duration]) -> (u64, f64, f64) {
    let (Some(first), Some(last)) = (shown_at.first(), shown_at.last()) else {
        return (0, 0.0, 0.0);
    };
    let span = last.saturating_sub(*first);
    if shown_at.len() < 2 || span.is_zero() {
        return (0, 0.0, 0.0);
    }
    let intervals = (shown_at.len() - 1) as u32;
    let mean = span / intervals;
    let threshold = MIN_FREEZE.max(mean * 3);
    let mut count = 0;
    let mut total = Duration::ZERO;
    for pair in shown_at.windows(2) {
        let gap = pair[1].saturating_sub(pair[0]);
        if gap > threshold {
            count += 1;
            total += gap;
        }
    }
    let fps = f64::from(intervals) / span.as_secs_f64();
    (count, total.as_secs_f64() * 1e3, fps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDER: u16 = 4;
    const INTERVAL: Duration = Duration::from_micros(33_333);
    const TRANSIT: Duration = Duration::from_millis(5);

    fn stamp(frame: u32) -> Stamp {
        Stamp {
            sender: SENDER,
            frame,
            capture_us: (INTERVAL * frame).as_micros() as u64,
        }
    }

    fn arrival(frame: u32) -> Duration {
        INTERVAL * frame + TRANSIT
    }

    /// Feeds frames 0..count, letting `fault` replace any frame's outcome
    /// (or drop it with `None`).
    fn run(
        count: u32,
        fault: impl Fn(u32) -> Option<Option<(Duration, FrameOutcome)>>,
    ) -> VideoVerdict {
        let mut verifier = VideoVerifier::new(SENDER);
        for frame in 0..count {
            match fault(frame) {
                None => {
                    verifier.observe(arrival(frame), FrameOutcome::Decoded(Ok(stamp(frame))));
                }
                Some(None) => {}
                Some(Some((at, outcome))) => {
                    verifier.observe(at, outcome);
                }
            }
        }
        verifier.verdict(Some(count))
    }

    #[test]
    fn every_verified_frame_keeps_its_arrival_and_latency() {
        let verdict = run(90, |f| (f == 7).then_some(None));
        assert_eq!(verdict.frames.len(), 89);
        let eighth = verdict.frames[7];
        assert!((eighth.arrival_ms - arrival(8).as_secs_f64() * 1e3).abs() < 1e-6);
        assert!((eighth.latency_ms - 5.0).abs() < 1e-6, "{eighth:?}");
        assert_eq!(verdict.first_frame_number, Some(0));
    }

    #[test]
    fn a_clean_stream_reports_nothing_wrong() {
        let verdict = run(300, |_| None);
        assert_eq!(verdict.verified, 300);
        assert_eq!(
            (
                verdict.lost,
                verdict.duplicated,
                verdict.reordered,
                verdict.corrupted,
                verdict.wrong_sender,
                verdict.freezes
            ),
            (0, 0, 0, 0, 0, 0),
            "{verdict:?}"
        );
        assert!((verdict.fps - 30.0).abs() < 0.1, "{}", verdict.fps);
        assert!((verdict.latency.p50_ms - 5.0).abs() < 0.01);
        assert_eq!(verdict.first_frame_at, Some(TRANSIT));
        assert_eq!(verdict.verified_ratio(), 1.0);
    }

    #[test]
    fn dropped_frames_are_lost_including_at_the_end() {
        let verdict = run(100, |f| (f == 10 || f == 11 || f >= 98).then_some(None));
        assert_eq!(verdict.lost, 4, "{verdict:?}");
        assert_eq!(verdict.verified, 96);
    }

    #[test]
    fn a_corrupted_frame_is_corrupted_and_its_number_lost() {
        let verdict = run(50, |f| {
            (f == 20).then_some(Some((
                arrival(f),
                FrameOutcome::Decoded(Err(StampError::BadCheck)),
            )))
        });
        assert_eq!((verdict.corrupted, verdict.lost), (1, 1), "{verdict:?}");
    }

    #[test]
    fn an_undecodable_frame_is_counted_apart_from_corruption() {
        let verdict = run(50, |f| {
            (f == 7).then_some(Some((arrival(f), FrameOutcome::Undecodable)))
        });
        assert_eq!(
            (verdict.undecodable, verdict.corrupted, verdict.lost),
            (1, 0, 1)
        );
    }

    #[test]
    fn a_frozen_stream_reports_one_freeze_of_its_length() {
        // Frames 100..130 (a second) never arrive; 130 onwards arrive on time.
        let verdict = run(200, |f| (100..130).contains(&f).then_some(None));
        assert_eq!(verdict.freezes, 1, "{verdict:?}");
        let gap_ms = (arrival(130) - arrival(99)).as_secs_f64() * 1e3;
        assert!((verdict.freeze_ms - gap_ms).abs() < 0.01);
        assert_eq!(verdict.lost, 30);
    }

    #[test]
    fn a_late_burst_is_a_freeze_even_with_nothing_lost() {
        // Frames 50..60 are held back and arrive together with frame 60.
        let verdict = run(100, |f| {
            (50..60)
                .contains(&f)
                .then_some(Some((arrival(60), FrameOutcome::Decoded(Ok(stamp(f))))))
        });
        assert_eq!((verdict.freezes, verdict.lost), (1, 0), "{verdict:?}");
        assert!(verdict.latency.max_ms > 300.0);
    }

    #[test]
    fn swapped_senders_are_wrong_sender_frames_not_verified_ones() {
        let verdict = run(60, |f| {
            (f % 2 == 0).then_some(Some((
                arrival(f),
                FrameOutcome::Decoded(Ok(Stamp {
                    sender: SENDER + 1,
                    ..stamp(f)
                })),
            )))
        });
        assert_eq!(
            (verdict.wrong_sender, verdict.verified),
            (30, 30),
            "{verdict:?}"
        );
        assert_eq!(
            verdict.lost, 29,
            "even frames in 1..=59 never came from the right sender"
        );
    }

    #[test]
    fn duplicates_and_reordering_are_told_apart() {
        let mut verifier = VideoVerifier::new(SENDER);
        for frame in [0, 1, 3, 2, 3, 4] {
            verifier.observe(arrival(frame), FrameOutcome::Decoded(Ok(stamp(frame))));
        }
        let verdict = verifier.verdict(None);
        assert_eq!(
            (
                verdict.verified,
                verdict.duplicated,
                verdict.reordered,
                verdict.lost
            ),
            (5, 1, 1, 0)
        );
    }

    #[test]
    fn a_stream_joined_late_counts_loss_from_its_first_frame() {
        let mut verifier = VideoVerifier::new(SENDER);
        for frame in 40..50 {
            verifier.observe(arrival(frame), FrameOutcome::Decoded(Ok(stamp(frame))));
        }
        assert_eq!(verifier.verdict(Some(50)).lost, 0);
    }

    #[test]
    fn nothing_received_is_an_empty_verdict() {
        let verdict = VideoVerifier::new(SENDER).verdict(Some(30));
        assert_eq!((verdict.verified, verdict.lost, verdict.fps), (0, 30, 0.0));
        assert_eq!(verdict.verified_ratio(), 0.0);
        assert_eq!(verdict.first_frame_at, None);
    }
}

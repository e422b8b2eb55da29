//! Judging a received track over the call's span: from the moment the
//! sender's media was due (its first frame or packet after DTLS) to the
//! call's end (a hangup, a declared departure, the end of the run, or the
//! call ending on its own), less an allowance for media still in flight.
//! Media that stops early, a freeze that lasts to the end, frames lost
//! after the last one that arrived: all count, because the span does not
//! end where the media did.
//!
//! Plain functions of times on the peers' clock (ms since their epoch).

use serde::Serialize;

use crate::peer::SentSpan;
use crate::verify::video::FrameTime;

/// A freeze is a gap between verified frames (or from the span's start to
/// the first, or from the last to the span's end) longer than this or
/// three frame intervals, whichever is longer (libwebrtc's rule).
const MIN_FREEZE_MS: f64 = 150.0;
/// An audio window is 100 ms of sound.
const AUDIO_WINDOW_MS: f64 = 100.0;
/// After a bounded fault ends (an impairment's `restore`, a move), its
/// window stays excluded from coverage until media verifies again, at
/// most this long: media that never comes back counts against coverage.
pub(crate) const RECOVERY_GRACE_MS: f64 = 3000.0;
/// When a track's latency is not known (a browser's camera), one way of
/// the in-flight allowance.
const UNKNOWN_LATENCY_MS: f64 = 25.0;

/// The media still in flight when a call ends, which the receiver never
/// had the chance to see: a round trip (twice the track's median one-way
/// latency, capture to verified) plus two frame intervals.
pub(super) fn in_flight_allowance_ms(latency_p50_ms: f64, frame_interval_ms: f64) -> f64 {
    let one_way = if latency_p50_ms.is_finite() && latency_p50_ms > 0.0 {
        latency_p50_ms
    } else {
        UNKNOWN_LATENCY_MS
    };
    2.0 * one_way + 2.0 * frame_interval_ms
}

/// A window the defaults do not judge: a declared fault, from its start to
/// its end, then on until media verifies again (at most `until_ms`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct FaultWindow {
    pub start_ms: f64,
    /// The fault's end (a restore, the move itself); `None`: to the end.
    pub end_ms: Option<f64>,
}

/// One track's span, on the peers' clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Span {
    pub start_ms: f64,
    /// The call's end less the in-flight allowance.
    pub end_ms: f64,
}

impl Span {
    fn len(self) -> f64 {
        (self.end_ms - self.start_ms).max(0.0)
    }
}

/// What a received video track amounted to over its span.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct VideoSpan {
    /// The span judged, ms on the report's clock is in the track; here its
    /// length.
    pub span_ms: f64,
    /// Share of the span, outside declared fault windows, covered by
    /// verified frames (0 to 1).
    pub coverage: f64,
    pub freezes: u64,
    pub freeze_ms: f64,
    pub longest_freeze_ms: f64,
    /// Verified frames per second of the span.
    pub fps: f64,
    /// Frames the sender sent within the span, and of those, never
    /// verified (`None` when the sender's count is not known).
    pub frames_expected: Option<u64>,
    pub frames_lost: Option<u64>,
    /// Where the span ended, on the peers' clock (for the fault windows).
    #[serde(skip)]
    pub end_ms: f64,
}

/// What a received audio track amounted to over its span.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct AudioSpan {
    pub span_ms: f64,
    /// Share of the span's 100 ms windows, outside declared fault windows,
    /// that held the sender's tone (0 to 1).
    pub coverage: f64,
    /// The longest stretch of the span without the sender's tone.
    pub silence_ms: f64,
}

/// Judges verified frames over `span`. `interval_ms` is the frame interval
/// the freeze rule scales with: the sender's for frames seen one by one, the
/// sampling interval for a browser's grabs.
pub(super) fn judge_video(
    frames: &[FrameTime],
    span: Span,
    windows: &[FaultWindow],
    interval_ms: f64,
) -> VideoSpan {
    let mut arrivals: Vec<f64> = frames
        .iter()
        .map(|f| f.arrival_ms)
        .filter(|&at| at >= span.start_ms && at <= span.end_ms)
        .collect();
    arrivals.sort_by(f64::total_cmp);
    let threshold = MIN_FREEZE_MS.max(3.0 * interval_ms);
    let gaps = gaps(&arrivals, span);
    let freezes: Vec<(f64, f64)> = gaps
        .iter()
        .copied()
        .filter(|(from, to)| to - from > threshold)
        .collect();
    let excluded = resolve(windows, &arrivals, span);
    let judged = span.len() - covered_by(&excluded, (span.start_ms, span.end_ms));
    // A frame covers the interval after it; what is frozen is the rest of
    // the gap (all of it before the first frame).
    let uncovered: f64 = freezes
        .iter()
        .map(|&(from, to)| {
            let from = if from == span.start_ms {
                from
            } else {
                (from + interval_ms).min(to)
            };
            (to - from) - covered_by(&excluded, (from, to))
        })
        .sum();
    let length = span.len();
    VideoSpan {
        span_ms: length,
        coverage: share(judged - uncovered, judged),
        freezes: freezes.len() as u64,
        freeze_ms: freezes.iter().map(|(from, to)| to - from).sum(),
        longest_freeze_ms: freezes
            .iter()
            .map(|(from, to)| to - from)
            .fold(0.0, f64::max),
        fps: if length > 0.0 {
            arrivals.len() as f64 / (length / 1e3)
        } else {
            0.0
        },
        frames_expected: None,
        frames_lost: None,
        end_ms: span.end_ms,
    }
}

/// Judges the windows of the sender's tone over `span`; each stands for
/// `window_ms` of sound, ending when it was heard.
pub(super) fn judge_audio(
    tone_windows_ms: &[f64],
    window_ms: f64,
    span: Span,
    windows: &[FaultWindow],
) -> AudioSpan {
    let window = if window_ms > 0.0 {
        window_ms
    } else {
        AUDIO_WINDOW_MS
    };
    let mut heard: Vec<f64> = tone_windows_ms
        .iter()
        .copied()
        .filter(|&at| at >= span.start_ms && at <= span.end_ms)
        .collect();
    heard.sort_by(f64::total_cmp);
    // A window is known when it ends: it covers the 100 ms before. The
    // first window after the sound starts is partial (the codec's onset),
    // so one window's worth of the span is not asked for.
    let excluded = resolve(windows, &heard, span);
    let judged = span.len() - covered_by(&excluded, (span.start_ms, span.end_ms));
    let asked = (judged - window).max(window);
    let outside = heard
        .iter()
        .filter(|&&at| covered_by(&excluded, (at - window, at)) < window / 2.0)
        .count() as f64;
    // A window covers the sound before it: a gap between two windows'
    // ends holds one window of tone, the first gap also the onset window,
    // and the last none.
    let gaps = gaps(&heard, span);
    let last = gaps.len() - 1;
    let silence_ms = gaps
        .into_iter()
        .enumerate()
        .map(|(i, (from, to))| {
            let heard_within = match (i, last) {
                (_, 0) => 0.0,
                (0, _) => 2.0 * window,
                (i, last) if i == last => 0.0,
                _ => window,
            };
            (to - from - heard_within).max(0.0)
        })
        .fold(0.0, f64::max);
    AudioSpan {
        span_ms: span.len(),
        coverage: if judged <= 0.0 {
            1.0
        } else {
            (outside * window / asked).min(1.0)
        },
        silence_ms,
    }
}

/// Frames the sender sent with a capture time within the span (from
/// `span_start_ms`, to `span_end_ms`), and how many of them never
/// verified. A frame's capture time is known for verified frames (arrival
/// less latency) and for the sender's first and last; the rest are placed
/// between their neighbours, as the sender paces them.
pub(super) fn frames_lost(
    frames: &[FrameTime],
    frames_sent: u32,
    sent: SentSpan,
    span_start_ms: f64,
    span_end_ms: f64,
) -> (u64, u64) {
    if frames_sent == 0 {
        return (0, 0);
    }
    let last = frames_sent - 1;
    let mut known: Vec<(u32, f64)> = frames
        .iter()
        .filter(|f| f.number <= last && f.latency_ms.is_finite())
        .map(|f| (f.number, f.arrival_ms - f.latency_ms))
        .collect();
    known.push((0, sent.first_ms));
    known.push((last, sent.last_ms));
    known.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    known.dedup_by_key(|k| k.0);
    let verified: std::collections::HashSet<u32> = frames.iter().map(|f| f.number).collect();
    let (mut expected, mut lost) = (0u64, 0u64);
    for pair in known.windows(2) {
        let ((n0, c0), (n1, c1)) = (pair[0], pair[1]);
        let step = (c1 - c0) / f64::from((n1 - n0).max(1));
        // Each number from n0 up to (not including) n1; the last is added
        // after the loop.
        for n in n0..n1 {
            let capture = c0 + step * f64::from(n - n0);
            if capture > span_end_ms {
                return (expected, lost);
            }
            if capture < span_start_ms {
                continue;
            }
            expected += 1;
            lost += u64::from(!verified.contains(&n));
        }
    }
    if (sent.last_ms <= span_end_ms && sent.last_ms >= span_start_ms) || known.len() == 1 {
        expected += 1;
        lost += u64::from(!verified.contains(&last));
    }
    (expected, lost)
}

/// The gaps from the span's start to the first time, between times, and
/// from the last to the span's end (the whole span when there are none).
fn gaps(times: &[f64], span: Span) -> Vec<(f64, f64)> {
    let mut points = Vec::with_capacity(times.len() + 2);
    points.push(span.start_ms);
    points.extend_from_slice(times);
    points.push(span.end_ms);
    points.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Fault windows as intervals within the span: each runs from its start to
/// the first media verified after its end, at most [`RECOVERY_GRACE_MS`]
/// after it (to the span's end when the fault has no end).
fn resolve(windows: &[FaultWindow], times: &[f64], span: Span) -> Vec<(f64, f64)> {
    windows
        .iter()
        .map(|w| {
            let end = match w.end_ms {
                None => span.end_ms,
                Some(end) => {
                    let recovered = times.iter().copied().find(|&t| t >= end);
                    recovered
                        .unwrap_or(f64::INFINITY)
                        .min(end + RECOVERY_GRACE_MS)
                }
            };
            (w.start_ms.max(span.start_ms), end.min(span.end_ms))
        })
        .filter(|(from, to)| to > from)
        .collect()
}

/// How much of `interval` the (possibly overlapping) windows cover.
fn covered_by(windows: &[(f64, f64)], interval: (f64, f64)) -> f64 {
    let mut clipped: Vec<(f64, f64)> = windows
        .iter()
        .map(|&(from, to)| (from.max(interval.0), to.min(interval.1)))
        .filter(|(from, to)| to > from)
        .collect();
    clipped.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut reach = f64::NEG_INFINITY;
    for (from, to) in clipped {
        let from = from.max(reach);
        if to > from {
            total += to - from;
            reach = to;
        }
    }
    total
}

fn share(part: f64, whole: f64) -> f64 {
    if whole <= 0.0 {
        1.0
    } else {
        (part / whole).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: f64 = 1000.0 / 30.0;
    const LATENCY: f64 = 5.0;

    /// Frames `numbers`, captured every interval from 0, each arriving
    /// `LATENCY` later.
    fn frames(numbers: impl IntoIterator<Item = u32>) -> Vec<FrameTime> {
        numbers
            .into_iter()
            .map(|number| FrameTime {
                number,
                arrival_ms: f64::from(number) * INTERVAL + LATENCY,
                latency_ms: LATENCY,
            })
            .collect()
    }

    fn span(end_ms: f64) -> Span {
        Span {
            start_ms: 0.0,
            end_ms,
        }
    }

    fn sent(count: u32) -> SentSpan {
        SentSpan {
            first_ms: 0.0,
            last_ms: f64::from(count - 1) * INTERVAL,
        }
    }

    #[test]
    fn a_clean_track_covers_its_span_with_nothing_lost() {
        let all = frames(0..120);
        let judged = judge_video(&all, span(3900.0), &[], INTERVAL);
        assert!(judged.coverage > 0.999, "{judged:?}");
        assert_eq!((judged.freezes, judged.longest_freeze_ms), (0, 0.0));
        assert!((judged.fps - 30.0).abs() < 0.5, "{judged:?}");
        assert_eq!(
            frames_lost(&all, 120, sent(120), f64::NEG_INFINITY, 3910.0),
            (118, 0)
        );
    }

    /// The bug the span fixes: media that stopped at 1 s of a 4 s call
    /// was judged only up to its last frame, and passed.
    #[test]
    fn video_that_stops_mid_call_is_a_freeze_to_the_end_and_its_frames_are_lost() {
        let first_second = frames(0..30);
        let judged = judge_video(&first_second, span(3900.0), &[], INTERVAL);
        assert_eq!(judged.freezes, 1, "{judged:?}");
        assert!(judged.longest_freeze_ms > 2900.0, "{judged:?}");
        assert!(judged.coverage < 0.3, "{judged:?}");
        assert!(judged.fps < 8.0, "{judged:?}");
        let (expected, lost) =
            frames_lost(&first_second, 120, sent(120), f64::NEG_INFINITY, 3910.0);
        assert_eq!((expected, lost), (118, 88), "frames 0..=117 are due");
    }

    #[test]
    fn frames_still_in_flight_at_the_end_are_not_lost() {
        // Sent 120, the last 3 never arrived, and the span ends before them.
        let all_but_tail = frames(0..117);
        let end = 116.0 * INTERVAL + LATENCY + 1.0;
        assert_eq!(
            frames_lost(&all_but_tail, 120, sent(120), f64::NEG_INFINITY, end).1,
            0
        );
        // The same three missing well inside the span are lost.
        assert_eq!(
            frames_lost(&all_but_tail, 120, sent(120), f64::NEG_INFINITY, 5000.0).1,
            3
        );
    }

    /// A subscriber that joined at frame 60: what the publisher sent
    /// before is not due; a gap after it is lost.
    #[test]
    fn frames_before_a_late_subscription_are_not_due_and_a_gap_after_is_lost() {
        let from = 60.0 * INTERVAL;
        let joined: Vec<FrameTime> = frames(60..120);
        assert_eq!(frames_lost(&joined, 120, sent(120), from, 3910.0), (58, 0));
        let with_gap: Vec<FrameTime> = frames(60..80).into_iter().chain(frames(90..120)).collect();
        assert_eq!(
            frames_lost(&with_gap, 120, sent(120), from, 3910.0),
            (58, 10)
        );
    }

    #[test]
    fn nothing_received_leaves_the_span_uncovered_and_every_frame_lost() {
        let judged = judge_video(&[], span(2000.0), &[], INTERVAL);
        assert_eq!(judged.coverage, 0.0);
        assert_eq!(judged.longest_freeze_ms, 2000.0);
        assert_eq!(
            frames_lost(&[], 60, sent(60), f64::NEG_INFINITY, 5000.0),
            (60, 60)
        );
    }

    #[test]
    fn a_fault_window_is_left_to_the_faults_metrics_until_media_recovers() {
        // Frames 30..60 lost during a fault from 1000 to 1500 ms; video is back
        // at frame 60 (2005 ms), 505 ms after the restore.
        let track = frames((0..30).chain(60..120));
        let windows = [FaultWindow {
            start_ms: 1000.0,
            end_ms: Some(1500.0),
        }];
        let judged = judge_video(&track, span(3900.0), &windows, INTERVAL);
        assert!(judged.coverage > 0.99, "{judged:?}");
        assert_eq!(judged.freezes, 1, "the freeze itself is still reported");
        let unexcused = judge_video(&track, span(3900.0), &[], INTERVAL);
        assert!(unexcused.coverage < 0.75, "{unexcused:?}");
    }

    #[test]
    fn media_that_never_recovers_counts_against_coverage_after_the_grace() {
        let track = frames(0..30);
        let windows = [FaultWindow {
            start_ms: 1000.0,
            end_ms: Some(1500.0),
        }];
        let judged = judge_video(&track, span(9000.0), &windows, INTERVAL);
        let judged_ms = 9000.0 - (1500.0 + RECOVERY_GRACE_MS - 1000.0);
        let uncovered = 9000.0 - 29.0 * INTERVAL - LATENCY - (1500.0 + RECOVERY_GRACE_MS - 1000.0);
        assert!(
            (judged.coverage - (1.0 - uncovered / judged_ms)).abs() < 0.01,
            "{judged:?}"
        );
        assert!(judged.coverage < 0.35);
    }

    #[test]
    fn an_open_ended_fault_leaves_the_rest_of_the_span_to_its_metrics() {
        let track = frames(0..30);
        let windows = [FaultWindow {
            start_ms: 1000.0,
            end_ms: None,
        }];
        let judged = judge_video(&track, span(3900.0), &windows, INTERVAL);
        assert!(judged.coverage > 0.99, "{judged:?}");
    }

    #[test]
    fn a_late_first_frame_is_a_freeze_from_the_start() {
        let track = frames(15..120);
        let judged = judge_video(&track, span(3900.0), &[], INTERVAL);
        assert_eq!(judged.freezes, 1, "{judged:?}");
        assert!((judged.longest_freeze_ms - (15.0 * INTERVAL + LATENCY)).abs() < 1e-6);
    }

    fn tone_windows(from_ms: f64, to_ms: f64) -> Vec<f64> {
        let mut at = from_ms + 2.0 * AUDIO_WINDOW_MS;
        let mut windows = Vec::new();
        while at <= to_ms {
            windows.push(at);
            at += AUDIO_WINDOW_MS;
        }
        windows
    }

    #[test]
    fn a_clean_tone_covers_its_span() {
        let judged = judge_audio(
            &tone_windows(0.0, 3900.0),
            AUDIO_WINDOW_MS,
            span(3900.0),
            &[],
        );
        assert!(judged.coverage >= 0.97, "{judged:?}");
        assert!(judged.silence_ms < 1.0, "{judged:?}");
    }

    #[test]
    fn audio_that_stops_is_silence_to_the_end() {
        let judged = judge_audio(
            &tone_windows(0.0, 1000.0),
            AUDIO_WINDOW_MS,
            span(3900.0),
            &[],
        );
        assert!(judged.coverage < 0.3, "{judged:?}");
        assert!((judged.silence_ms - 2900.0).abs() < 1.0, "{judged:?}");
    }

    #[test]
    fn a_dropout_is_the_longest_silence() {
        let mut heard = tone_windows(0.0, 1000.0);
        heard.extend(tone_windows(1400.0, 3900.0));
        let judged = judge_audio(&heard, AUDIO_WINDOW_MS, span(3900.0), &[]);
        assert!((judged.silence_ms - 500.0).abs() < 1.0, "{judged:?}");
        assert!(
            judged.coverage > 0.85 && judged.coverage < 0.9,
            "{judged:?}"
        );
    }

    #[test]
    fn the_allowance_is_a_round_trip_and_two_frames() {
        assert!((in_flight_allowance_ms(5.0, INTERVAL) - (10.0 + 2.0 * INTERVAL)).abs() < 1e-9);
        assert!(in_flight_allowance_ms(f64::NAN, INTERVAL) > 2.0 * INTERVAL);
    }
}

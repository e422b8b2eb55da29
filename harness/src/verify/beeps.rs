//! Hearing a browser's fake microphone: Chrome's beeps a short 400 Hz tone
//! twice a second. Decoded audio is cut into 10 ms blocks; a beep starts
//! with a loud block after a stretch of quiet ones. A beep is *on cadence*
//! when it starts one beep period (±20 %) after the one before, so a
//! stream that stalls, repeats or plays something else is caught.

use std::time::Duration;

use crate::media::tone::SAMPLE_RATE;

/// Chrome's fake microphone: a beep every 500 ms (two per second).
pub(crate) const BEEP_PERIOD: Duration = Duration::from_millis(500);
/// Its frequency; Opus and a square wave leave it within this.
pub const BEEP_HZ: f32 = 400.0;
pub(crate) const BEEP_TOLERANCE_HZ: f32 = 40.0;

const BLOCK_SAMPLES: usize = SAMPLE_RATE as usize / 100;
/// A block louder than this is sound; quieter is silence.
const LOUD_RMS: f32 = 0.05;
const QUIET_RMS: f32 = 0.02;
/// A beep needs this much quiet before it (the gap between beeps is ~480 ms).
const QUIET_BLOCKS_BEFORE: usize = 10;
/// Blocks of a beep measured for its frequency.
const BEEP_BLOCKS: usize = 2;
/// How far a beep may start from one period after the one before, as a
/// share of the period. Chrome starts a beep at the first capture callback
/// after 500 ms of wall time, so on a loaded two-core machine its late
/// callbacks move onsets in the stream by tens of milliseconds (intervals
/// of 440 ms seen in CI, ±12 %); a stalled, repeated or foreign stream
/// misses by a whole beep or by far more than this.
const CADENCE_TOLERANCE: f64 = 0.2;

/// One beep heard: when it started and its frequency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Beep {
    /// Position in the decoded stream (not arrival: jitter must not bend
    /// the cadence).
    pub at: Duration,
    pub arrival: Duration,
    pub hz: Option<f32>,
}

/// What the beeps of one track add up to.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BeepSummary {
    pub beeps: usize,
    /// Beeps one period after the previous one and at the beep frequency
    /// (the first beep counts when its frequency is right, and is not
    /// judged when it is not: the stream may open inside it).
    pub on_cadence: usize,
    pub off_cadence: usize,
    /// Periods that passed with no beep.
    pub missed: usize,
    /// Median beep frequency.
    pub hz: Option<f32>,
    /// Beeps per second over the stream.
    #[serde(deserialize_with = "crate::clock::f64_or_nan")]
    pub per_second: f64,
    #[serde(skip)]
    pub first_at: Option<Duration>,
    /// Where each beep started in the stream, ms (for diagnosis).
    #[serde(skip)]
    pub onsets_ms: Vec<f64>,
}

/// Follows the decoded samples of one track.
#[derive(Clone, Debug, Default)]
pub(crate) struct BeepTracker {
    pending: Vec<f32>,
    /// Samples consumed so far: the stream's own clock.
    position: usize,
    quiet_run: usize,
    /// Samples of the beep being measured.
    current: Option<(Duration, Duration, Vec<f32>)>,
    beeps: Vec<Beep>,
}

impl BeepTracker {
    pub(crate) fn new() -> Self {
        BeepTracker {
            // Start as after a silence, so a stream opening on a beep counts it.
            quiet_run: QUIET_BLOCKS_BEFORE,
            ..BeepTracker::default()
        }
    }

    pub(crate) fn first_beep_arrival(&self) -> Option<Duration> {
        self.beeps.first().map(|b| b.arrival)
    }

    /// Decoded samples that arrived at `arrival`.
    pub(crate) fn feed(&mut self, arrival: Duration, samples: &[f32]) {
        self.pending.extend_from_slice(samples);
        let mut used = 0;
        while self.pending.len() - used >= BLOCK_SAMPLES {
            let block = &self.pending[used..used + BLOCK_SAMPLES];
            used += BLOCK_SAMPLES;
            let at = samples_to_duration(self.position);
            self.position += BLOCK_SAMPLES;
            let rms = rms(block);
            if let Some((_, _, beep)) = &mut self.current {
                beep.extend_from_slice(block);
                if beep.len() >= BEEP_BLOCKS * BLOCK_SAMPLES {
                    let (at, arrival, beep) = self.current.take().expect("matched");
                    self.beeps.push(Beep {
                        at,
                        arrival,
                        hz: frequency(&beep),
                    });
                }
            } else if rms >= LOUD_RMS && self.quiet_run >= QUIET_BLOCKS_BEFORE {
                self.current = Some((at, arrival, block.to_vec()));
            }
            if rms < QUIET_RMS {
                self.quiet_run += 1;
            } else {
                self.quiet_run = 0;
            }
        }
        self.pending.drain(..used);
    }

    pub(crate) fn summary(&self) -> BeepSummary {
        let period = BEEP_PERIOD.as_secs_f64();
        let right_pitch = |b: &Beep| {
            b.hz.is_some_and(|hz| (hz - BEEP_HZ).abs() <= BEEP_TOLERANCE_HZ)
        };
        let mut summary = BeepSummary {
            beeps: self.beeps.len(),
            first_at: self.first_beep_arrival(),
            ..BeepSummary::default()
        };
        summary.onsets_ms = self
            .beeps
            .iter()
            .map(|b| b.at.as_secs_f64() * 1e3)
            .collect();
        let mut previous: Option<Duration> = None;
        for (n, beep) in self.beeps.iter().enumerate() {
            // The stream may open mid-beep, or while the decoder settles:
            // a first beep that does not measure right is not judged.
            if n == 0 && !right_pitch(beep) {
                previous = Some(beep.at);
                continue;
            }
            let on_time = match previous {
                None => true,
                Some(before) => {
                    let periods = beep.at.saturating_sub(before).as_secs_f64() / period;
                    let whole = periods.round();
                    summary.missed += (whole as usize).saturating_sub(1);
                    whole >= 1.0 && (periods - whole).abs() <= CADENCE_TOLERANCE
                }
            };
            if on_time && right_pitch(beep) {
                summary.on_cadence += 1;
            } else {
                summary.off_cadence += 1;
            }
            previous = Some(beep.at);
        }
        let mut pitches: Vec<f32> = self.beeps.iter().filter_map(|b| b.hz).collect();
        pitches.sort_by(f32::total_cmp);
        summary.hz = pitches.get(pitches.len() / 2).copied();
        let heard = samples_to_duration(self.position).as_secs_f64();
        if heard > 0.0 {
            summary.per_second = self.beeps.len() as f64 / heard;
        }
        summary
    }
}

fn samples_to_duration(samples: usize) -> Duration {
    Duration::from_secs_f64(samples as f64 / f64::from(SAMPLE_RATE))
}

fn rms(block: &[f32]) -> f32 {
    let energy: f32 = block.iter().map(|s| s * s).sum();
    (energy / block.len().max(1) as f32).sqrt()
}

/// The strongest frequency between 100 Hz and 2 kHz, scanned in 5 Hz
/// steps with a Goertzel filter over a Hann window: a square wave's
/// fundamental beats its odd harmonics, which zero crossings (rung by
/// the codec) would not reliably.
fn frequency(samples: &[f32]) -> Option<f32> {
    if rms(samples) < QUIET_RMS {
        return None;
    }
    let n = samples.len() as f32;
    let windowed: Vec<f32> = samples
        .iter()
        .enumerate()
        .map(|(i, &s)| s * (0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / n).cos()))
        .collect();
    (20..=400)
        .map(|step| step as f32 * 5.0)
        .map(|hz| (hz, goertzel(&windowed, hz)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(hz, _)| hz)
}

fn goertzel(samples: &[f32], hz: f32) -> f32 {
    let coefficient = 2.0 * (std::f32::consts::TAU * hz / SAMPLE_RATE as f32).cos();
    let (mut previous, mut before) = (0.0f32, 0.0f32);
    for &sample in samples {
        let current = sample + coefficient * previous - before;
        before = previous;
        previous = current;
    }
    previous * previous + before * before - coefficient * previous * before
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES_PER_MS: usize = SAMPLE_RATE as usize / 1000;

    /// `seconds` of a 20 ms square-wave beep at `hz` every `period_ms`.
    fn beeping(seconds: usize, period_ms: usize, hz: f32, skip: &[usize]) -> Vec<f32> {
        let onsets: Vec<usize> = (0..seconds * 1000 / period_ms)
            .filter(|beep| !skip.contains(beep))
            .map(|beep| beep * period_ms)
            .collect();
        beeps_at(seconds, &onsets, hz)
    }

    /// `seconds` of a 20 ms square-wave beep at `hz` starting at each of
    /// `onsets_ms`.
    fn beeps_at(seconds: usize, onsets_ms: &[usize], hz: f32) -> Vec<f32> {
        let half_cycle = (SAMPLE_RATE as f32 / hz / 2.0) as usize;
        let mut samples = vec![0.0; seconds * SAMPLE_RATE as usize];
        for onset in onsets_ms.iter().map(|ms| ms * SAMPLES_PER_MS) {
            let end = (onset + 20 * SAMPLES_PER_MS).min(samples.len());
            for (i, sample) in samples[onset.min(end)..end].iter_mut().enumerate() {
                *sample = if (i / half_cycle).is_multiple_of(2) {
                    0.5
                } else {
                    -0.5
                };
            }
        }
        samples
    }

    fn hear(samples: &[f32]) -> BeepSummary {
        let mut tracker = BeepTracker::new();
        for (n, packet) in samples.chunks(960).enumerate() {
            tracker.feed(Duration::from_millis(20 * n as u64), packet);
        }
        tracker.summary()
    }

    #[test]
    fn chromes_cadence_is_two_beeps_a_second_on_time() {
        let summary = hear(&beeping(5, 500, 400.0, &[]));
        assert_eq!(summary.beeps, 10);
        assert_eq!(
            (summary.on_cadence, summary.off_cadence, summary.missed),
            (10, 0, 0)
        );
        assert!(
            (summary.hz.unwrap() - 400.0).abs() < 10.0,
            "{:?}",
            summary.hz
        );
        assert!((summary.per_second - 2.0).abs() < 0.01);
        assert_eq!(summary.first_at, Some(Duration::ZERO));
    }

    #[test]
    fn a_missing_beep_is_counted_and_the_next_is_still_on_cadence() {
        let summary = hear(&beeping(5, 500, 400.0, &[3]));
        assert_eq!(
            (summary.beeps, summary.missed, summary.off_cadence),
            (9, 1, 0)
        );
    }

    #[test]
    fn the_wrong_cadence_or_pitch_is_off_cadence() {
        let fast = hear(&beeping(3, 300, 400.0, &[]));
        assert!(fast.off_cadence > fast.on_cadence, "{fast:?}");
        let high = hear(&beeping(3, 500, 1000.0, &[]));
        assert_eq!(high.on_cadence, 0, "{high:?}");
    }

    #[test]
    fn a_late_capture_callback_moves_one_beep_and_stays_on_cadence() {
        // What CI heard from a loaded Chrome: intervals of 440 to 510 ms.
        let onsets = [0, 500, 940, 1450, 1950, 2420, 2880, 3380, 3880];
        let summary = hear(&beeps_at(5, &onsets, 400.0));
        assert_eq!(
            (
                summary.beeps,
                summary.on_cadence,
                summary.off_cadence,
                summary.missed
            ),
            (9, 9, 0, 0),
            "{summary:?}"
        );
    }

    #[test]
    fn a_beep_a_quarter_period_early_or_late_is_off_cadence() {
        let early = hear(&beeps_at(3, &[0, 500, 875, 1375], 400.0));
        assert_eq!((early.on_cadence, early.off_cadence), (3, 1), "{early:?}");
        let late = hear(&beeps_at(3, &[0, 500, 1125, 1625], 400.0));
        assert_eq!((late.on_cadence, late.off_cadence), (3, 1), "{late:?}");
    }

    #[test]
    fn a_steady_tone_is_not_a_beep_train() {
        let tone: Vec<f32> = (0..3 * SAMPLE_RATE as usize)
            .map(|i| 0.5 * (i as f32 * std::f32::consts::TAU * 400.0 / SAMPLE_RATE as f32).sin())
            .collect();
        let summary = hear(&tone);
        assert!(summary.beeps <= 1, "{summary:?}");
    }
}

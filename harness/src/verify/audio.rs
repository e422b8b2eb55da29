//! Is what we hear the tone we expect? Decoded audio is cut into 100 ms
//! windows; each is silent, the expected tone, or something else.
//!
//! Every sender's tone (300 Hz + 10 Hz steps, up to 6.99 kHz) makes a whole number of cycles
//! in 100 ms, so a Goertzel filter at the expected frequency sees no leakage
//! and the neighbouring senders' tones are orthogonal to it.

use std::time::Duration;

use super::beeps::{BeepSummary, BeepTracker};
use crate::media::tone::SAMPLE_RATE;

/// Analysis window: 100 ms.
pub const WINDOW_SAMPLES: usize = SAMPLE_RATE as usize / 10;
/// Below this RMS a window is silence (the tone's RMS is 0.35, -9 dBFS).
const SILENCE_RMS: f32 = 0.02;
/// Between silence and this, a window holds only part of a sound: the
/// onset, the end, or a gap inside it. Half the tone's RMS.
const PARTIAL_RMS: f32 = 0.18;
/// The expected tone must carry at least this share of the window's power.
const MIN_TONE_SHARE: f32 = 0.5;
/// A window with another pitch and less than this share of the expected
/// tone is another sound at any level: a quieter wrong tone is not a
/// partial one. (The tail of the expected tone has a small share too, but
/// its own pitch.)
const MAX_FOREIGN_SHARE: f32 = 0.1;
/// And the measured frequency must be this close to it.
pub(crate) const TONE_TOLERANCE_HZ: f32 = 3.0;
/// Packets arriving further apart than this (with none lost) is a gap.
const GAP: Duration = Duration::from_millis(100);

/// One window's measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowAnalysis {
    pub rms: f32,
    /// From rising zero crossings; `None` for silence.
    pub dominant_hz: Option<f32>,
    /// Power at the expected frequency over the window's power (1 for a pure tone).
    pub expected_share: f32,
    /// How far the measured pitch is from the expected tone, Hz.
    pub pitch_off_hz: Option<f32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowClass {
    Silence,
    /// Quieter than a whole window of tone: a start, an end or a dropout.
    Partial,
    ExpectedTone,
    WrongTone,
}

impl WindowAnalysis {
    /// Half the power within the expected frequency's 10 Hz bin is the tone:
    /// no other sender's tone can put it there. Otherwise the level decides
    /// between silence, a partial window and a wrong sound.
    pub fn class(&self) -> WindowClass {
        if self.rms < SILENCE_RMS {
            WindowClass::Silence
        } else if self.expected_share >= MIN_TONE_SHARE {
            WindowClass::ExpectedTone
        } else if self.expected_share < MAX_FOREIGN_SHARE
            && self.pitch_off_hz.is_some_and(|off| off > TONE_TOLERANCE_HZ)
        {
            WindowClass::WrongTone
        } else if self.rms < PARTIAL_RMS {
            WindowClass::Partial
        } else {
            WindowClass::WrongTone
        }
    }
}

pub fn analyze_window(samples: &[f32], expected_hz: f32) -> WindowAnalysis {
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / samples.len().max(1) as f64).sqrt() as f32;
    if rms < SILENCE_RMS {
        return WindowAnalysis {
            rms,
            dominant_hz: None,
            expected_share: 0.0,
            pitch_off_hz: None,
        };
    }
    let dominant_hz = zero_crossing_hz(samples, rms);
    WindowAnalysis {
        rms,
        dominant_hz,
        pitch_off_hz: dominant_hz.map(|hz| (hz - expected_hz).abs()),
        expected_share: (goertzel_power(samples, expected_hz) * 2.0
            / (samples.len() as f64 * energy)) as f32,
    }
}

/// |X(f)|² of the window at `hz` (second-order Goertzel recurrence).
fn goertzel_power(samples: &[f32], hz: f32) -> f64 {
    let coefficient = 2.0 * (std::f64::consts::TAU * f64::from(hz) / f64::from(SAMPLE_RATE)).cos();
    let (mut previous, mut before) = (0.0f64, 0.0f64);
    for &sample in samples {
        let current = f64::from(sample) + coefficient * previous - before;
        before = previous;
        previous = current;
    }
    previous * previous + before * before - coefficient * previous * before
}

/// Frequency from the spacing of rising zero crossings, interpolated
/// between samples: exact for a clean sine, cheap enough for every window.
/// A crossing counts only after the signal has been below -30 % of the
/// window's RMS, so low-level noise (a codec's onset) adds no crossings.
fn zero_crossing_hz(samples: &[f32], rms: f32) -> Option<f32> {
    let arm_below = f64::from(-0.3 * rms);
    let mut armed = false;
    let mut first = None;
    let mut last = 0.0f64;
    let mut crossings = 0u32;
    for (i, pair) in samples.windows(2).enumerate() {
        let (a, b) = (f64::from(pair[0]), f64::from(pair[1]));
        if a < arm_below {
            armed = true;
        }
        if armed && a < 0.0 && b >= 0.0 {
            armed = false;
            let at = i as f64 + a / (a - b);
            first.get_or_insert(at);
            last = at;
            crossings += 1;
        }
    }
    let span = last - first?;
    (crossings >= 2 && span > 0.0)
        .then(|| (f64::from(crossings - 1) * f64::from(SAMPLE_RATE) / span) as f32)
}

/// What one received audio track amounted to.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AudioVerdict {
    pub packets: u64,
    /// Packets missing by RTP sequence number.
    pub lost_packets: u64,
    /// Interruptions: a sequence jump, or a pause longer than 100 ms.
    pub gaps: u64,
    pub windows: usize,
    pub expected_windows: usize,
    pub silent_windows: usize,
    pub partial_windows: usize,
    pub wrong_windows: usize,
    /// Shared-media mode: packets that are not the clip's (nothing is
    /// decoded there, so the window counts stay 0).
    pub foreign_packets: u64,
    /// Median dominant frequency over the windows of full-level sound.
    pub tone_hz: Option<f32>,
    /// The end time of the first window that held the expected tone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_tone_at: Option<Duration>,
    /// When each window of the expected tone ended (ms on the run's clock;
    /// shared media: each 100 ms of the clip's packets), for judging the
    /// call's span.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tone_windows_ms: Vec<f64>,
    /// How much sound each of those stands for (a browser samples its
    /// analyser every 200 ms).
    #[serde(default)]
    pub tone_window_len_ms: f64,
    /// A browser's fake microphone: its beeps. The window counts then count
    /// beeps: expected = on cadence, wrong = off cadence, silent = missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beeps: Option<BeepSummary>,
}

impl AudioVerdict {
    /// The verdict as reports show it, without the window times the run's
    /// record keeps.
    pub(crate) fn lean(&self) -> AudioVerdict {
        AudioVerdict {
            first_tone_at: None,
            tone_windows_ms: Vec::new(),
            ..self.clone()
        }
    }
}

impl AudioVerdict {
    /// At least one window of tone, and 90 % of the audible windows are the
    /// expected tone.
    pub fn tone_matches(&self) -> bool {
        let audible = self.expected_windows + self.wrong_windows;
        audible > 0 && self.expected_windows * 10 >= audible * 9
    }
}

/// Follows one received audio track.
#[derive(Clone, Debug)]
pub(crate) struct AudioVerifier {
    expected_hz: f32,
    pending: Vec<f32>,
    windows: Vec<(Duration, WindowAnalysis)>,
    last_sequence: Option<u16>,
    last_arrival: Option<Duration>,
    packets: u64,
    lost_packets: u64,
    gaps: u64,
    foreign_packets: u64,
    first_tone_at: Option<Duration>,
    /// Shared media: samples of known packets not yet making a window.
    known_samples: usize,
    tone_windows: Vec<f64>,
    /// Listening for a browser's beeps instead of a tone.
    beeps: Option<BeepTracker>,
}

impl AudioVerifier {
    pub(crate) fn new(expected_hz: f32) -> Self {
        AudioVerifier {
            expected_hz,
            pending: Vec::with_capacity(2 * WINDOW_SAMPLES),
            windows: Vec::new(),
            last_sequence: None,
            last_arrival: None,
            packets: 0,
            lost_packets: 0,
            gaps: 0,
            foreign_packets: 0,
            first_tone_at: None,
            known_samples: 0,
            tone_windows: Vec::new(),
            beeps: None,
        }
    }

    /// A verifier for a browser's fake microphone (beeps, not a tone).
    pub(crate) fn beeps() -> Self {
        AudioVerifier {
            beeps: Some(BeepTracker::new()),
            ..AudioVerifier::new(super::beeps::BEEP_HZ)
        }
    }

    /// When the first window of the expected tone ended, if one has.
    pub(crate) fn first_tone_at(&self) -> Option<Duration> {
        self.first_tone_at
    }

    /// One decoded packet: when it arrived, its RTP sequence number, samples.
    pub(crate) fn observe(&mut self, arrival: Duration, sequence: u16, samples: &[f32]) {
        if !self.sequence(arrival, sequence) {
            return;
        }
        if let Some(tracker) = &mut self.beeps {
            tracker.feed(arrival, samples);
            self.first_tone_at = tracker.first_beep_arrival();
            return;
        }
        self.pending.extend_from_slice(samples);
        while self.pending.len() >= WINDOW_SAMPLES {
            let analysis = analyze_window(&self.pending[..WINDOW_SAMPLES], self.expected_hz);
            if analysis.class() == WindowClass::ExpectedTone {
                self.first_tone_at.get_or_insert(arrival);
                self.tone_windows.push(arrival.as_secs_f64() * 1e3);
            }
            self.windows.push((arrival, analysis));
            self.pending.drain(..WINDOW_SAMPLES);
        }
    }

    /// One packet checked without decoding (shared media): counted for
    /// loss and gaps, and as foreign unless it is one the clip holds. The
    /// first known packet counts as hearing the tone.
    pub(crate) fn observe_unheard(&mut self, arrival: Duration, sequence: u16, known: bool) {
        if !self.sequence(arrival, sequence) {
            return;
        }
        if known {
            self.first_tone_at.get_or_insert(arrival);
            self.known_samples += crate::media::tone::FRAME_SAMPLES;
            if self.known_samples >= WINDOW_SAMPLES {
                self.known_samples -= WINDOW_SAMPLES;
                self.tone_windows.push(arrival.as_secs_f64() * 1e3);
            }
        } else {
            self.foreign_packets += 1;
        }
    }

    /// Sequence bookkeeping; false for a duplicate or late packet.
    fn sequence(&mut self, arrival: Duration, sequence: u16) -> bool {
        self.packets += 1;
        let jump = self
            .last_sequence
            .map(|last| sequence.wrapping_sub(last))
            .unwrap_or(1);
        if jump == 0 || jump > u16::MAX / 2 {
            // A duplicate or a late packet: nothing new to hear.
            return false;
        }
        let paused = self
            .last_arrival
            .is_some_and(|last| arrival.saturating_sub(last) > GAP);
        if jump > 1 {
            self.lost_packets += u64::from(jump - 1);
        }
        if jump > 1 || paused {
            self.gaps += 1;
        }
        self.last_sequence = Some(sequence);
        self.last_arrival = Some(arrival);
        true
    }

    pub(crate) fn verdict(&self) -> AudioVerdict {
        if let Some(tracker) = &self.beeps {
            let beeps = tracker.summary();
            return AudioVerdict {
                packets: self.packets,
                lost_packets: self.lost_packets,
                gaps: self.gaps,
                foreign_packets: self.foreign_packets,
                windows: beeps.beeps + beeps.missed,
                expected_windows: beeps.on_cadence,
                silent_windows: beeps.missed,
                partial_windows: 0,
                wrong_windows: beeps.off_cadence,
                tone_hz: beeps.hz,
                first_tone_at: self.first_tone_at,
                tone_windows_ms: self.tone_windows.clone(),
                tone_window_len_ms: 100.0,
                beeps: Some(beeps),
            };
        }
        let class = |a: &WindowAnalysis| a.class();
        let count = |wanted| {
            self.windows
                .iter()
                .filter(|(_, a)| class(a) == wanted)
                .count()
        };
        let mut heard: Vec<f32> = self
            .windows
            .iter()
            .filter(|(_, a)| matches!(class(a), WindowClass::ExpectedTone | WindowClass::WrongTone))
            .filter_map(|(_, a)| a.dominant_hz)
            .collect();
        heard.sort_by(f32::total_cmp);
        AudioVerdict {
            packets: self.packets,
            lost_packets: self.lost_packets,
            gaps: self.gaps,
            foreign_packets: self.foreign_packets,
            windows: self.windows.len(),
            expected_windows: count(WindowClass::ExpectedTone),
            silent_windows: count(WindowClass::Silence),
            partial_windows: count(WindowClass::Partial),
            wrong_windows: count(WindowClass::WrongTone),
            tone_hz: heard.get(heard.len() / 2).copied(),
            first_tone_at: self.first_tone_at,
            tone_windows_ms: self.tone_windows.clone(),
            tone_window_len_ms: 100.0,
            beeps: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::opus::{OpusDecoder, OpusEncoder};
    use crate::media::tone::{DISTINCT_TONES, FRAME_SAMPLES, Tone, tone_hz};

    const PACKET: Duration = Duration::from_millis(20);

    /// Feeds `frames` 20 ms frames through Opus into a verifier.
    fn hear(
        verifier: &mut AudioVerifier,
        frames: impl IntoIterator<Item = [f32; FRAME_SAMPLES]>,
        start: u16,
    ) {
        let mut encoder = OpusEncoder::new(32_000).unwrap();
        let mut decoder = OpusDecoder::new().unwrap();
        for (i, frame) in frames.into_iter().enumerate() {
            let packet = encoder.encode(&frame).unwrap();
            let samples = decoder.decode(&packet).unwrap().to_vec();
            let sequence = start.wrapping_add(i as u16);
            verifier.observe(PACKET * (u32::from(sequence)), sequence, &samples);
        }
    }

    fn tone_frames(hz: f32, count: usize) -> Vec<[f32; FRAME_SAMPLES]> {
        let mut tone = Tone::new(hz);
        (0..count).map(|_| tone.next_frame()).collect()
    }

    #[test]
    fn a_clean_tone_through_opus_matches_with_nothing_reported() {
        for sender in [0, 1, 77, DISTINCT_TONES - 1] {
            let expected = tone_hz(sender);
            let mut verifier = AudioVerifier::new(expected);
            hear(&mut verifier, tone_frames(expected, 100), 0);
            let verdict = verifier.verdict();
            assert!(verdict.tone_matches(), "sender {sender}: {verdict:?}");
            assert_eq!(
                (verdict.lost_packets, verdict.gaps, verdict.wrong_windows),
                (0, 0, 0),
                "{verdict:?}"
            );
            let heard = verdict.tone_hz.unwrap();
            assert!(
                (heard - expected).abs() <= TONE_TOLERANCE_HZ,
                "{heard} vs {expected}"
            );
            assert!(verdict.first_tone_at.unwrap() <= Duration::from_millis(300));
        }
    }

    #[test]
    fn every_senders_tone_keeps_its_pitch_through_opus_at_32_kbits() {
        let mut off = Vec::new();
        for sender in 0..DISTINCT_TONES {
            let expected = tone_hz(sender);
            let mut encoder = OpusEncoder::new(32_000).unwrap();
            let mut decoder = OpusDecoder::new().unwrap();
            let mut tone = Tone::new(expected);
            let mut pcm = Vec::new();
            for _ in 0..15 {
                let packet = encoder.encode(&tone.next_frame()).unwrap();
                pcm.extend_from_slice(decoder.decode(&packet).unwrap());
            }
            // The second window: past the codec's onset.
            let analysis = analyze_window(&pcm[WINDOW_SAMPLES..2 * WINDOW_SAMPLES], expected);
            let heard = analysis.dominant_hz.unwrap_or(0.0);
            if analysis.class() != WindowClass::ExpectedTone
                || (heard - expected).abs() > TONE_TOLERANCE_HZ
            {
                off.push((sender, expected, heard));
            }
        }
        assert!(off.is_empty(), "tones that do not survive: {off:?}");
    }

    #[test]
    fn the_neighbouring_senders_tone_is_a_wrong_tone() {
        let mut verifier = AudioVerifier::new(tone_hz(10));
        hear(&mut verifier, tone_frames(tone_hz(11), 50), 0);
        let verdict = verifier.verdict();
        assert!(!verdict.tone_matches(), "{verdict:?}");
        assert_eq!(verdict.expected_windows, 0);
        assert!(verdict.wrong_windows >= 8, "{verdict:?}");
    }

    #[test]
    fn a_quieter_wrong_tone_is_a_wrong_tone_not_a_partial_one() {
        let mut verifier = AudioVerifier::new(tone_hz(10));
        let quiet = tone_frames(tone_hz(40), 50)
            .into_iter()
            .map(|frame| frame.map(|s| s * 0.2));
        hear(&mut verifier, quiet, 0);
        let verdict = verifier.verdict();
        assert_eq!(verdict.expected_windows, 0, "{verdict:?}");
        assert!(verdict.wrong_windows >= 8, "{verdict:?}");
        assert!(verdict.tone_windows_ms.is_empty());
    }

    #[test]
    fn every_window_of_the_tone_is_timed_for_the_span() {
        let mut verifier = AudioVerifier::new(tone_hz(5));
        hear(&mut verifier, tone_frames(tone_hz(5), 100), 0);
        let verdict = verifier.verdict();
        assert_eq!(verdict.tone_windows_ms.len(), verdict.expected_windows);
        assert!(verdict.expected_windows >= 19, "{verdict:?}");
        assert!(
            verdict
                .tone_windows_ms
                .windows(2)
                .all(|w| w[1] - w[0] > 90.0)
        );
    }

    #[test]
    fn silence_is_reported_as_silence_not_as_a_tone() {
        let mut verifier = AudioVerifier::new(tone_hz(3));
        let mut frames = tone_frames(tone_hz(3), 25);
        frames.extend(std::iter::repeat_n([0.0; FRAME_SAMPLES], 50));
        hear(&mut verifier, frames, 0);
        let verdict = verifier.verdict();
        assert!(verdict.silent_windows >= 9, "{verdict:?}");
        assert!(
            verdict.tone_matches(),
            "the audible part is still the right tone"
        );
    }

    #[test]
    fn a_dropout_inside_the_tone_is_partial_not_wrong() {
        let mut verifier = AudioVerifier::new(tone_hz(0));
        let mut frames = tone_frames(tone_hz(0), 50);
        for frame in &mut frames[22..24] {
            *frame = [0.0; FRAME_SAMPLES];
        }
        hear(&mut verifier, frames, 0);
        let verdict = verifier.verdict();
        assert_eq!(verdict.wrong_windows, 0, "{verdict:?}");
        assert!(verdict.tone_matches());
    }

    #[test]
    fn missing_sequence_numbers_are_lost_packets_and_one_gap() {
        let mut verifier = AudioVerifier::new(440.0);
        let frame = [0.0; FRAME_SAMPLES];
        for sequence in (0..10).chain(15..20) {
            verifier.observe(PACKET * sequence, sequence as u16, &frame);
        }
        let verdict = verifier.verdict();
        assert_eq!((verdict.lost_packets, verdict.gaps), (5, 1));
    }

    #[test]
    fn a_pause_without_loss_is_a_gap_and_sequence_wrap_is_not_loss() {
        let mut verifier = AudioVerifier::new(440.0);
        let frame = [0.0; FRAME_SAMPLES];
        verifier.observe(Duration::ZERO, u16::MAX, &frame);
        verifier.observe(PACKET, 0, &frame);
        verifier.observe(PACKET * 20, 1, &frame);
        let verdict = verifier.verdict();
        assert_eq!((verdict.lost_packets, verdict.gaps), (0, 1));
    }
}

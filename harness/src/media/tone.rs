//! Each sender's tone: a sine at a frequency of its own, so a receiver that
//! hears someone else's audio knows it.

/// Audio runs at 48 kHz (Opus's native rate), mono, in 20 ms frames.
pub(crate) const SAMPLE_RATE: u32 = 48_000;
pub(crate) const FRAME_SAMPLES: usize = 960;

/// Frequencies step by this much between sender indices.
pub(crate) const TONE_SPACING_HZ: f32 = 10.0;
const LOWEST_TONE_HZ: f32 = 300.0;
/// Senders beyond this many reuse frequencies: 300 Hz to 6.99 kHz. Measured
/// with opus-rs at 32 kbit/s, pure tones keep their pitch up to 7.69 kHz and
/// lose it from 7.7 kHz (a 15 kHz tone comes back near 12.8 kHz). Video
/// stamps carry the full sender index, so crossed streams are still caught.
pub(crate) const DISTINCT_TONES: u16 = 670;
/// -6 dBFS: loud enough to stand far above codec noise, never clipping.
const AMPLITUDE: f64 = 0.5;

/// The tone of sender `index`.
pub(crate) fn tone_hz(index: u16) -> f32 {
    LOWEST_TONE_HZ + TONE_SPACING_HZ * f32::from(index % DISTINCT_TONES)
}

/// An endless sine, produced frame by frame without phase jumps.
#[derive(Clone, Debug)]
pub struct Tone {
    frequency_hz: f32,
    phase: f64,
    step: f64,
}

impl Tone {
    pub fn new(frequency_hz: f32) -> Self {
        Tone {
            frequency_hz,
            phase: 0.0,
            step: std::f64::consts::TAU * f64::from(frequency_hz) / f64::from(SAMPLE_RATE),
        }
    }

    pub fn for_sender(index: u16) -> Self {
        Tone::new(tone_hz(index))
    }

    pub fn frequency_hz(&self) -> f32 {
        self.frequency_hz
    }

    /// The next 20 ms of samples.
    pub fn next_frame(&mut self) -> [f32; FRAME_SAMPLES] {
        let mut frame = [0.0; FRAME_SAMPLES];
        for sample in &mut frame {
            *sample = (AMPLITUDE * self.phase.sin()) as f32;
            self.phase = (self.phase + self.step) % std::f64::consts::TAU;
        }
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_senders_are_a_spacing_apart() {
        assert_eq!(tone_hz(0), 300.0);
        assert_eq!(tone_hz(1) - tone_hz(0), TONE_SPACING_HZ);
        assert_eq!(tone_hz(DISTINCT_TONES), tone_hz(0));
    }

    #[test]
    fn frames_join_without_a_phase_jump() {
        let mut tone = Tone::new(1000.0);
        let first = tone.next_frame();
        let second = tone.next_frame();
        let step = std::f64::consts::TAU * 1000.0 / 48_000.0;
        let expected = (0.5 * (step * FRAME_SAMPLES as f64).sin()) as f32;
        assert!(
            (second[0] - expected).abs() < 1e-4,
            "{} vs {expected}",
            second[0]
        );
        assert!(first.iter().all(|s| s.abs() <= 0.5));
    }
}

//! Follows one incoming Opus track: each packet, back in order, decoded
//! and heard by the tone verifier (or, in shared mode, checked against the
//! sender's loop); what was heard optionally written to WAV.

use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rtc::rtp;

use crate::media::opus::{OpusDecoder, OpusError};
use crate::media::shared::{AudioLoop, SharedClip};
use crate::media::tone::SAMPLE_RATE;
use crate::peer::MediaSource;
use crate::peer::reorder::Reorder;
use crate::verify::audio::{AudioVerdict, AudioVerifier};

type WavWriter = hound::WavWriter<BufWriter<std::fs::File>>;

/// Follows one incoming Opus track; optionally writes what it heard to WAV.
/// In shared-media mode packets are checked against the sender's loop
/// instead of decoded.
pub(crate) struct AudioReceiver {
    reorder: Reorder,
    ready: Vec<rtp::Packet>,
    decoder: Option<OpusDecoder>,
    shared: Option<Arc<AudioLoop>>,
    verifier: AudioVerifier,
    first_rtp: Option<Duration>,
    wav: Option<WavWriter>,
}

impl std::fmt::Debug for AudioReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioReceiver")
            .field("verifier", &self.verifier)
            .field("recording", &self.wav.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AudioReceiveError {
    #[error(transparent)]
    Codec(#[from] OpusError),
    #[error("writing {path}: {source}")]
    Wav {
        path: String,
        #[source]
        source: hound::Error,
    },
}

impl AudioReceiver {
    pub(crate) fn new(
        expected_hz: f32,
        record_to: Option<&Path>,
    ) -> Result<Self, AudioReceiveError> {
        let wav = record_to
            .map(|path| {
                let spec = hound::WavSpec {
                    channels: 1,
                    sample_rate: SAMPLE_RATE,
                    bits_per_sample: 16,
                    sample_format: hound::SampleFormat::Int,
                };
                hound::WavWriter::create(path, spec).map_err(|source| AudioReceiveError::Wav {
                    path: path.display().to_string(),
                    source,
                })
            })
            .transpose()?;
        Ok(AudioReceiver {
            reorder: Reorder::default(),
            ready: Vec::new(),
            decoder: Some(OpusDecoder::new()?),
            shared: None,
            verifier: AudioVerifier::new(expected_hz),
            first_rtp: None,
            wav,
        })
    }

    /// A receiver for media from `source`.
    pub(crate) fn for_source(
        source: MediaSource,
        record_to: Option<&Path>,
    ) -> Result<Self, AudioReceiveError> {
        match source {
            MediaSource::Pattern(sender) => {
                AudioReceiver::new(crate::media::tone::tone_hz(sender), record_to)
            }
            MediaSource::Browser(_) => {
                let mut receiver = AudioReceiver::new(crate::verify::beeps::BEEP_HZ, record_to)?;
                receiver.verifier = AudioVerifier::beeps();
                Ok(receiver)
            }
        }
    }

    /// A receiver for shared-media mode, of `sender`'s audio loop.
    pub(crate) fn shared(sender: u16, clip: &SharedClip) -> Result<Self, AudioReceiveError> {
        Ok(AudioReceiver {
            reorder: Reorder::default(),
            ready: Vec::new(),
            decoder: None,
            shared: Some(clip.audio_of(sender)?),
            verifier: AudioVerifier::new(crate::media::tone::tone_hz(sender)),
            first_rtp: None,
            wav: None,
        })
    }

    /// One RTP packet (one Opus packet, RFC 7587), heard once the packets
    /// before it are in (or given up as lost).
    pub(crate) fn on_rtp(&mut self, packet: rtp::Packet, arrival: Duration) {
        self.first_rtp.get_or_insert(arrival);
        let mut ready = std::mem::take(&mut self.ready);
        self.reorder.push(packet, arrival, &mut ready);
        for packet in ready.drain(..) {
            self.hear(&packet, arrival);
        }
        self.ready = ready;
    }

    fn hear(&mut self, packet: &rtp::Packet, arrival: Duration) {
        let sequence = packet.header.sequence_number;
        if let Some(expected) = &self.shared {
            let known = expected.knows(&packet.payload);
            self.verifier.observe_unheard(arrival, sequence, known);
            return;
        }
        let Some(decoder) = &mut self.decoder else {
            return;
        };
        let samples = match decoder.decode(&packet.payload) {
            Ok(samples) => samples,
            Err(error) => {
                tracing::debug!(%error, "undecodable audio packet");
                return;
            }
        };
        self.verifier.observe(arrival, sequence, samples);
        if let Some(wav) = &mut self.wav {
            for &sample in samples {
                let value = (sample.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16;
                if let Err(error) = wav.write_sample(value) {
                    tracing::warn!(%error, "stopped recording audio");
                    self.wav = None;
                    break;
                }
            }
        }
    }

    pub(crate) fn first_rtp(&self) -> Option<Duration> {
        self.first_rtp
    }

    pub(crate) fn first_tone_at(&self) -> Option<Duration> {
        self.verifier.first_tone_at()
    }

    /// The verdict; hears what the reorder buffer still held, and
    /// finishes the WAV file if one was being written.
    pub(crate) fn finish(mut self, now: Duration) -> AudioVerdict {
        let mut ready = std::mem::take(&mut self.ready);
        self.reorder.flush(&mut ready);
        for packet in ready.drain(..) {
            self.hear(&packet, now);
        }
        if let Some(wav) = self.wav.take()
            && let Err(error) = wav.finalize()
        {
            tracing::warn!(%error, "finishing the WAV file");
        }
        self.verifier.verdict()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::media::opus::OpusEncoder;
    use crate::media::tone::{Tone, tone_hz};

    const SENDER: u16 = 2;

    #[test]
    fn audio_packets_are_verified_and_recorded_to_wav() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heard.wav");
        let expected = tone_hz(SENDER);
        let mut receiver = AudioReceiver::new(expected, Some(&path)).unwrap();
        let mut encoder = OpusEncoder::new(32_000).unwrap();
        let mut tone = Tone::new(expected);
        for n in 0..50u16 {
            let payload = Bytes::from(encoder.encode(&tone.next_frame()).unwrap());
            let packet = rtp::Packet {
                header: rtp::header::Header {
                    sequence_number: n,
                    ..Default::default()
                },
                payload,
            };
            receiver.on_rtp(packet, Duration::from_millis(20) * u32::from(n));
        }
        let verdict = receiver.finish(Duration::from_secs(1));
        assert!(verdict.tone_matches(), "{verdict:?}");
        let wav = hound::WavReader::open(&path).unwrap();
        assert_eq!(wav.spec().sample_rate, SAMPLE_RATE);
        assert_eq!(wav.len(), 50 * 960);
    }
}

//! Opus encode and decode with the pure-Rust `opus-rs` (no C library, no
//! cmake): mono, 48 kHz, 20 ms frames.

use super::tone::{FRAME_SAMPLES, SAMPLE_RATE};

/// Largest Opus packet (RFC 6716 §3.4 bounds a frame at 1275 bytes).
const MAX_PACKET: usize = 1500;
/// Largest frame a packet can decode to: 120 ms at 48 kHz.
const MAX_DECODED: usize = 5760;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpusError {
    #[error("Opus encoder: {0}")]
    Encode(&'static str),
    #[error("Opus decoder: {0}")]
    Decode(&'static str),
}

pub struct OpusEncoder {
    encoder: opus_rs::OpusEncoder,
    packet: Vec<u8>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").finish_non_exhaustive()
    }
}

impl OpusEncoder {
    pub fn new(bitrate_bps: u32) -> Result<Self, OpusError> {
        let mut encoder =
            opus_rs::OpusEncoder::new(SAMPLE_RATE as i32, 1, opus_rs::Application::Audio)
                .map_err(OpusError::Encode)?;
        encoder.bitrate_bps = i32::try_from(bitrate_bps).unwrap_or(i32::MAX);
        Ok(OpusEncoder {
            encoder,
            packet: vec![0; MAX_PACKET],
        })
    }

    /// Encodes 20 ms of samples (±1.0) into one packet.
    pub fn encode(&mut self, frame: &[f32; FRAME_SAMPLES]) -> Result<Vec<u8>, OpusError> {
        let len = self
            .encoder
            .encode(frame, FRAME_SAMPLES, &mut self.packet)
            .map_err(OpusError::Encode)?;
        Ok(self.packet[..len].to_vec())
    }
}

pub struct OpusDecoder {
    decoder: opus_rs::OpusDecoder,
    pcm: Vec<f32>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl OpusDecoder {
    pub fn new() -> Result<Self, OpusError> {
        Ok(OpusDecoder {
            decoder: opus_rs::OpusDecoder::new(SAMPLE_RATE as i32, 1).map_err(OpusError::Decode)?,
            pcm: vec![0.0; MAX_DECODED],
        })
    }

    /// Decodes one packet; the samples stay valid until the next call.
    pub fn decode(&mut self, packet: &[u8]) -> Result<&[f32], OpusError> {
        let samples = self
            .decoder
            .decode(packet, MAX_DECODED, &mut self.pcm)
            .map_err(OpusError::Decode)?;
        Ok(&self.pcm[..samples])
    }
}

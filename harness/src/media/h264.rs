//! H.264 encode and decode with OpenH264 (built from source by the
//! `openh264` crate: cargo alone, no system library).

use openh264::OpenH264API;
use openh264::decoder::Decoder;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode,
    UsageType,
};
use openh264::formats::YUVSource;

use super::frame::I420;
use super::stamp::{Stamp, StampError, read_stamp};

/// What the sender's encoder is told.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoSettings {
    pub width: usize,
    pub height: usize,
    pub fps: u32,
    pub bitrate_bps: u32,
    /// A keyframe every this many frames (0: only on request).
    pub keyframe_interval: u32,
}

impl Default for VideoSettings {
    fn default() -> Self {
        VideoSettings {
            width: 320,
            height: 240,
            fps: 30,
            bitrate_bps: 500_000,
            keyframe_interval: 300,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("H.264 encoder: {0}")]
    Encode(String),
    #[error("H.264 decoder: {0}")]
    Decode(String),
}

/// One encoded picture, Annex B (start codes), SPS/PPS before every IDR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    pub data: Vec<u8>,
    pub keyframe: bool,
}

pub struct H264Encoder {
    encoder: Encoder,
    keyframe_due: bool,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("keyframe_due", &self.keyframe_due)
            .finish_non_exhaustive()
    }
}

impl H264Encoder {
    pub fn new(settings: &VideoSettings) -> Result<Self, CodecError> {
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(settings.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(settings.fps as f32))
            .rate_control_mode(RateControlMode::Bitrate)
            .usage_type(UsageType::CameraVideoRealTime)
            // Every captured frame must be coded: the receiver counts them.
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(
                settings.keyframe_interval,
            ))
            .num_threads(1);
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| CodecError::Encode(e.to_string()))?;
        Ok(H264Encoder {
            encoder,
            // The first frame a receiver sees must be decodable on its own.
            keyframe_due: true,
        })
    }

    /// The next frame will be a keyframe: the answer to a PLI or FIR.
    pub fn request_keyframe(&mut self) {
        self.keyframe_due = true;
    }

    pub fn encode(&mut self, picture: &I420) -> Result<EncodedFrame, CodecError> {
        if std::mem::take(&mut self.keyframe_due) {
            self.encoder.force_intra_frame();
        }
        let bitstream = self
            .encoder
            .encode(picture)
            .map_err(|e| CodecError::Encode(e.to_string()))?;
        Ok(EncodedFrame {
            keyframe: matches!(bitstream.frame_type(), FrameType::IDR | FrameType::I),
            data: bitstream.to_vec(),
        })
    }
}

pub struct H264Decoder {
    decoder: Decoder,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Decoder").finish_non_exhaustive()
    }
}

/// A decoded picture's size and what its stamp says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedStamp {
    pub width: usize,
    pub height: usize,
    pub stamp: Result<Stamp, StampError>,
}

impl H264Decoder {
    pub fn new() -> Result<Self, CodecError> {
        let decoder = Decoder::new().map_err(|e| CodecError::Decode(e.to_string()))?;
        Ok(H264Decoder { decoder })
    }

    /// Decodes one access unit (Annex B) and hands the picture, if one came
    /// out, to `inspect`.
    pub fn decode_with<R>(
        &mut self,
        access_unit: &[u8],
        inspect: impl FnOnce(&dyn YUVSource) -> R,
    ) -> Result<Option<R>, CodecError> {
        let picture = self
            .decoder
            .decode(access_unit)
            .map_err(|e| CodecError::Decode(e.to_string()))?;
        Ok(picture.map(|picture| inspect(&picture)))
    }

    /// Decodes one access unit and reads its stamp.
    pub fn decode_stamp(&mut self, access_unit: &[u8]) -> Result<Option<DecodedStamp>, CodecError> {
        self.decode_with(access_unit, |picture| {
            let (width, height) = picture.dimensions();
            let (stride, _, _) = picture.strides();
            DecodedStamp {
                width,
                height,
                stamp: read_stamp(picture.y(), stride, width, height),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::pattern::Pattern;

    fn encode_frames(settings: &VideoSettings, count: u32) -> Vec<EncodedFrame> {
        let mut pattern = Pattern::new(5, settings.width, settings.height).unwrap();
        let mut encoder = H264Encoder::new(settings).unwrap();
        (0..count)
            .map(|n| {
                encoder
                    .encode(pattern.draw(n, u64::from(n) * 33_333))
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn every_frame_survives_encode_and_decode_with_its_stamp() {
        for (width, height, bitrate_bps) in [(320, 240, 150_000), (640, 480, 600_000)] {
            let settings = VideoSettings {
                width,
                height,
                bitrate_bps,
                ..VideoSettings::default()
            };
            let frames = encode_frames(&settings, 60);
            assert!(frames[0].keyframe, "the first frame is a keyframe");
            assert!(
                frames[1..].iter().all(|f| !f.keyframe),
                "then only on request or interval"
            );
            let mut decoder = H264Decoder::new().unwrap();
            for (n, frame) in frames.iter().enumerate() {
                let decoded = decoder
                    .decode_stamp(&frame.data)
                    .unwrap()
                    .expect("a picture per frame");
                assert_eq!((decoded.width, decoded.height), (width, height));
                let stamp = decoded
                    .stamp
                    .unwrap_or_else(|e| panic!("{width}x{height} frame {n}: {e}"));
                assert_eq!((stamp.sender, stamp.frame), (5, n as u32));
            }
        }
    }

    #[test]
    fn a_keyframe_request_is_answered_by_the_next_frame() {
        let settings = VideoSettings::default();
        let mut pattern = Pattern::new(0, 320, 240).unwrap();
        let mut encoder = H264Encoder::new(&settings).unwrap();
        let mut kinds = Vec::new();
        for n in 0..10 {
            if n == 6 {
                encoder.request_keyframe();
            }
            kinds.push(encoder.encode(pattern.draw(n, 0)).unwrap().keyframe);
        }
        assert_eq!(
            kinds,
            [
                true, false, false, false, false, false, true, false, false, false
            ]
        );
    }

    #[test]
    fn the_periodic_keyframe_interval_is_kept() {
        let settings = VideoSettings {
            keyframe_interval: 10,
            ..VideoSettings::default()
        };
        let frames = encode_frames(&settings, 25);
        let keyframes: Vec<usize> = frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.keyframe)
            .map(|(n, _)| n)
            .collect();
        assert_eq!(keyframes, [0, 10, 20]);
    }

    #[test]
    fn a_decoder_that_starts_mid_stream_recovers_at_the_next_keyframe() {
        let settings = VideoSettings {
            keyframe_interval: 10,
            ..VideoSettings::default()
        };
        let frames = encode_frames(&settings, 15);
        let mut decoder = H264Decoder::new().unwrap();
        // Frames 3..10 reference pictures this decoder never saw: whatever
        // comes out (an error, nothing, or a damaged picture) must not crash.
        for frame in &frames[3..10] {
            let _ = decoder.decode_stamp(&frame.data);
        }
        let decoded = decoder.decode_stamp(&frames[10].data).unwrap().unwrap();
        assert_eq!(decoded.stamp.unwrap().frame, 10);
    }

    #[test]
    fn the_encoder_spends_the_configured_bitrate_and_stamps_survive_the_lowest() {
        for bitrate_bps in [100_000u32, 300_000, 1_000_000] {
            let settings = VideoSettings {
                bitrate_bps,
                ..VideoSettings::default()
            };
            let frames = encode_frames(&settings, 90);
            let bits: usize = frames.iter().map(|f| f.data.len() * 8).sum();
            let actual = bits as f64 / 3.0; // 90 frames at 30 fps
            let ratio = actual / f64::from(bitrate_bps);
            // Rate control converges over the first second or so.
            assert!(
                (0.7..1.15).contains(&ratio),
                "{bitrate_bps} bit/s set, {actual:.0} spent"
            );
            let mut decoder = H264Decoder::new().unwrap();
            for (n, frame) in frames.iter().enumerate() {
                let decoded = decoder.decode_stamp(&frame.data).unwrap().unwrap();
                assert_eq!(
                    decoded.stamp.map(|s| s.frame),
                    Ok(n as u32),
                    "{bitrate_bps} bit/s"
                );
            }
        }
    }
}

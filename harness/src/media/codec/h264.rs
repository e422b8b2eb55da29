//! H.264 encode and decode with OpenH264 (built from source by the
//! `openh264` crate: cargo alone, no system library).

use bytes::Bytes;
use openh264::OpenH264API;
use openh264::decoder::Decoder;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode,
    UsageType,
};
use openh264::formats::YUVSource;
use rtc::rtp::codec::h264::{H264Packet, H264Payloader};
use rtc::rtp::packetizer::{Depacketizer, Payloader};

use super::{Codec, CodecError, EncodedFrame, Luma, VideoDecoder, VideoEncoder, VideoSettings};
use crate::media::frame::I420;

/// H.264 as RFC 6184 carries it, Constrained Baseline.
#[derive(Debug)]
pub(super) struct H264;

impl Codec for H264 {
    fn name(&self) -> &'static str {
        "h264"
    }

    fn mime_type(&self) -> &'static str {
        rtc::peer_connection::configuration::media_engine::MIME_TYPE_H264
    }

    fn payload_type(&self) -> u8 {
        102
    }

    fn sdp_fmtp_line(&self) -> &'static str {
        // Constrained Baseline 3.1, packetization mode 1: what OpenH264
        // makes and what every browser decodes.
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
    }

    fn encoder(&self, settings: &VideoSettings) -> Result<Box<dyn VideoEncoder>, CodecError> {
        Ok(Box::new(H264Encoder::new(settings)?))
    }

    fn decoder(&self) -> Result<Box<dyn VideoDecoder>, CodecError> {
        Ok(Box::new(H264Decoder::new()?))
    }

    fn payloader(&self) -> Box<dyn Payloader> {
        Box::<H264Payloader>::default()
    }

    fn depacketizer(&self) -> Box<dyn Depacketizer + Send> {
        Box::<H264Packet>::default()
    }

    /// It opens a keyframe's access unit (parameter sets, an access unit
    /// delimiter, our stamp's SEI, or a packet aggregating them) or its
    /// IDR slice.
    fn starts_keyframe(&self, payload: &Bytes) -> bool {
        const FU_A: u8 = 28;
        const IDR: u8 = 5;
        match payload.first().map(|b| b & 0x1f) {
            Some(IDR | 6 | 7 | 9 | 24) => true,
            Some(FU_A) => payload
                .get(1)
                .is_some_and(|header| header & 0x80 != 0 && header & 0x1f == IDR),
            _ => false,
        }
    }
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
            .map_err(CodecError::H264Encode)?;
        Ok(H264Encoder {
            encoder,
            // The first frame a receiver sees must be decodable on its own.
            keyframe_due: true,
        })
    }

    /// The next frame will be a keyframe: the answer to a PLI or FIR.
    pub(crate) fn request_keyframe(&mut self) {
        self.keyframe_due = true;
    }

    pub fn encode(&mut self, picture: &I420) -> Result<EncodedFrame, CodecError> {
        if std::mem::take(&mut self.keyframe_due) {
            self.encoder.force_intra_frame();
        }
        let bitstream = self
            .encoder
            .encode(picture)
            .map_err(CodecError::H264Encode)?;
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

impl H264Decoder {
    pub fn new() -> Result<Self, CodecError> {
        let decoder = Decoder::new().map_err(CodecError::H264Decode)?;
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
            .map_err(CodecError::H264Decode)?;
        Ok(picture.map(|picture| inspect(&picture)))
    }
}

impl VideoEncoder for H264Encoder {
    fn request_keyframe(&mut self) {
        H264Encoder::request_keyframe(self);
    }

    fn encode(&mut self, picture: &I420) -> Result<EncodedFrame, CodecError> {
        H264Encoder::encode(self, picture)
    }
}

impl VideoDecoder for H264Decoder {
    fn decode(
        &mut self,
        frame: &[u8],
        inspect: &mut dyn FnMut(Luma<'_>),
    ) -> Result<bool, CodecError> {
        let shown = self.decode_with(frame, |picture| {
            let (width, height) = picture.dimensions();
            let (stride, _, _) = picture.strides();
            inspect(Luma {
                width,
                height,
                stride,
                plane: picture.y(),
            });
        })?;
        Ok(shown.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::decode_stamp;
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
                let decoded = decode_stamp(&mut decoder, &frame.data)
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
            let _ = decode_stamp(&mut decoder, &frame.data);
        }
        let decoded = decode_stamp(&mut decoder, &frames[10].data)
            .unwrap()
            .unwrap();
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
                let decoded = decode_stamp(&mut decoder, &frame.data).unwrap().unwrap();
                assert_eq!(
                    decoded.stamp.map(|s| s.frame),
                    Ok(n as u32),
                    "{bitrate_bps} bit/s"
                );
            }
        }
    }
}

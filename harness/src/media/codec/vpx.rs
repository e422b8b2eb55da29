//! VP8 (RFC 7741) and VP9 (RFC 9628) through libvpx (`callprobe-vpx`).
//! Their RTP payload formats are the `rtc` crate's and always built; the
//! coders need the `vpx` feature (and the system's libvpx). Without it a
//! VP8 or VP9 scenario is refused at validation, saying so.

use bytes::Bytes;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_VP8, MIME_TYPE_VP9};
use rtc::rtp::codec::vp8::{Vp8Packet, Vp8Payloader};
use rtc::rtp::codec::vp9::{Vp9Packet, Vp9Payloader};
use rtc::rtp::packetizer::{Depacketizer, Payloader};

#[cfg(not(feature = "vpx"))]
use super::VideoCodec;
use super::{Codec, CodecError, VideoDecoder, VideoEncoder, VideoSettings};
#[cfg(feature = "vpx")]
use super::{EncodedFrame, Luma};
#[cfg(feature = "vpx")]
use crate::media::frame::I420;

pub(super) static VP8: Vpx = Vpx::Vp8;
pub(super) static VP9: Vpx = Vpx::Vp9;

/// libvpx's two codecs, which share everything but their formats.
#[derive(Debug)]
pub(super) enum Vpx {
    Vp8,
    Vp9,
}

impl Vpx {
    #[cfg(feature = "vpx")]
    fn library(&self) -> callprobe_vpx::Vpx {
        match self {
            Vpx::Vp8 => callprobe_vpx::Vpx::Vp8,
            Vpx::Vp9 => callprobe_vpx::Vpx::Vp9,
        }
    }

    #[cfg(not(feature = "vpx"))]
    fn missing(&self) -> CodecError {
        CodecError::Unavailable {
            codec: match self {
                Vpx::Vp8 => VideoCodec::Vp8,
                Vpx::Vp9 => VideoCodec::Vp9,
            },
            why: self.unavailable().unwrap_or_default(),
        }
    }
}

impl Codec for Vpx {
    fn name(&self) -> &'static str {
        match self {
            Vpx::Vp8 => "vp8",
            Vpx::Vp9 => "vp9",
        }
    }

    fn mime_type(&self) -> &'static str {
        match self {
            Vpx::Vp8 => MIME_TYPE_VP8,
            Vpx::Vp9 => MIME_TYPE_VP9,
        }
    }

    fn payload_type(&self) -> u8 {
        match self {
            Vpx::Vp8 => 96,
            Vpx::Vp9 => 98,
        }
    }

    fn sdp_fmtp_line(&self) -> &'static str {
        match self {
            Vpx::Vp8 => "",
            // Profile 0 (8-bit 4:2:0), what libvpx makes from I420.
            Vpx::Vp9 => "profile-id=0",
        }
    }

    fn unavailable(&self) -> Option<&'static str> {
        (!cfg!(feature = "vpx")).then_some(
            "needs libvpx, and this callprobe was built without it (install libvpx-dev, \
             then build with the default features)",
        )
    }

    fn encoder(&self, settings: &VideoSettings) -> Result<Box<dyn VideoEncoder>, CodecError> {
        #[cfg(feature = "vpx")]
        {
            let config = callprobe_vpx::EncoderConfig {
                width: settings.width as u32,
                height: settings.height as u32,
                fps: settings.fps,
                bitrate_bps: settings.bitrate_bps,
                keyframe_interval: settings.keyframe_interval,
            };
            let encoder = callprobe_vpx::Encoder::new(self.library(), config)?;
            Ok(Box::new(VpxEncoder(encoder)))
        }
        #[cfg(not(feature = "vpx"))]
        {
            let _ = settings;
            Err(self.missing())
        }
    }

    fn decoder(&self) -> Result<Box<dyn VideoDecoder>, CodecError> {
        #[cfg(feature = "vpx")]
        {
            Ok(Box::new(VpxDecoder(callprobe_vpx::Decoder::new(
                self.library(),
            )?)))
        }
        #[cfg(not(feature = "vpx"))]
        Err(self.missing())
    }

    fn payloader(&self) -> Box<dyn Payloader> {
        match self {
            // A picture id, as browsers send: receivers use it to tell
            // frames apart across loss.
            Vpx::Vp8 => {
                let mut payloader = Vp8Payloader::default();
                payloader.enable_picture_id = true;
                Box::new(payloader)
            }
            Vpx::Vp9 => Box::<Vp9Payloader>::default(),
        }
    }

    fn depacketizer(&self) -> Box<dyn Depacketizer + Send> {
        match self {
            Vpx::Vp8 => Box::<Vp8Packet>::default(),
            Vpx::Vp9 => Box::<Vp9Packet>::default(),
        }
    }

    fn starts_keyframe(&self, payload: &Bytes) -> bool {
        match self {
            Vpx::Vp8 => vp8_starts_keyframe(payload),
            Vpx::Vp9 => vp9_starts_keyframe(payload),
        }
    }
}

/// The first packet of a VP8 keyframe: the start of partition 0 (S set,
/// partition index 0) whose frame tag says key frame (its P bit clear,
/// RFC 7741 §4.3).
fn vp8_starts_keyframe(payload: &Bytes) -> bool {
    let mut descriptor = Vp8Packet::default();
    match descriptor.depacketize(payload) {
        Ok(frame) => {
            descriptor.s == 1 && descriptor.pid == 0 && frame.first().is_some_and(|b| b & 1 == 0)
        }
        Err(_) => false,
    }
}

/// The first packet of a VP9 keyframe: a picture's beginning (B set)
/// whose uncompressed header says key frame. The header starts with
/// frame_marker (2 bits), profile (2, a third for profile 3),
/// show_existing_frame and frame_type (0: key).
fn vp9_starts_keyframe(payload: &Bytes) -> bool {
    let mut descriptor = Vp9Packet::default();
    let Ok(frame) = descriptor.depacketize(payload) else {
        return false;
    };
    let Some(&header) = frame.first() else {
        return false;
    };
    if !descriptor.b || header >> 6 != 0b10 {
        return false;
    }
    let profile = ((header >> 5) & 1) | (((header >> 4) & 1) << 1);
    let (show_existing, frame_type) = if profile == 3 {
        ((header >> 2) & 1, (header >> 1) & 1)
    } else {
        ((header >> 3) & 1, (header >> 2) & 1)
    };
    show_existing == 0 && frame_type == 0
}

#[cfg(feature = "vpx")]
struct VpxEncoder(callprobe_vpx::Encoder);

#[cfg(feature = "vpx")]
impl VideoEncoder for VpxEncoder {
    fn request_keyframe(&mut self) {
        self.0.request_keyframe();
    }

    fn encode(&mut self, picture: &I420) -> Result<EncodedFrame, CodecError> {
        let (y, u, v) = picture.planes();
        let frame = self.0.encode(y, u, v)?;
        Ok(EncodedFrame {
            data: frame.data,
            keyframe: frame.keyframe,
        })
    }
}

#[cfg(feature = "vpx")]
struct VpxDecoder(callprobe_vpx::Decoder);

#[cfg(feature = "vpx")]
impl VideoDecoder for VpxDecoder {
    fn decode(
        &mut self,
        frame: &[u8],
        inspect: &mut dyn FnMut(Luma<'_>),
    ) -> Result<bool, CodecError> {
        let shown = self.0.decode_with(frame, |luma| {
            inspect(Luma {
                width: luma.width,
                height: luma.height,
                stride: luma.stride,
                plane: luma.plane,
            });
        })?;
        Ok(shown.is_some())
    }
}

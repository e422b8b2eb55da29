//! Video codecs behind one seam: each codec is a module that implements
//! [`Codec`] (its SDP, its encoder and decoder, its RTP payload format),
//! and [`VideoCodec`] registers it. Nothing outside this module names a
//! codec's details; the peer, its sender and its receiver ask the
//! negotiated [`VideoCodec`] for what they need.
//!
//! Adding a codec: a module here implementing [`Codec`], and a variant of
//! [`VideoCodec`] with its arm in [`VideoCodec::codec`]. The compiler
//! lists nothing else: no other match names a codec.

mod h264;
mod vpx;

use bytes::Bytes;
use rtc::rtp::packetizer::{Depacketizer, Payloader};
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodec};

pub use h264::{H264Decoder, H264Encoder};

use super::frame::I420;
use super::stamp::{Stamp, StampError, read_stamp};

/// The video codecs a synthetic peer speaks, by their scenario names.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    H264,
    Vp8,
    Vp9,
}

impl VideoCodec {
    /// Every registered codec, in the order a peer that takes any offers them.
    pub const ALL: [VideoCodec; 3] = [VideoCodec::H264, VideoCodec::Vp8, VideoCodec::Vp9];

    /// The registration: the one place a codec's variant meets its module.
    pub fn codec(self) -> &'static dyn Codec {
        match self {
            VideoCodec::H264 => &h264::H264,
            VideoCodec::Vp8 => &vpx::VP8,
            VideoCodec::Vp9 => &vpx::VP9,
        }
    }

    /// Its name in scenarios and reports: `h264`, `vp8`, `vp9`.
    pub fn name(self) -> &'static str {
        self.codec().name()
    }

    pub(crate) fn from_name(name: &str) -> Option<VideoCodec> {
        VideoCodec::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The codec a negotiated SDP names by this MIME type, if it is ours.
    pub(crate) fn from_mime_type(mime_type: &str) -> Option<VideoCodec> {
        VideoCodec::ALL
            .into_iter()
            .find(|c| c.codec().mime_type().eq_ignore_ascii_case(mime_type))
    }

    /// Why this build cannot use the codec, if it cannot.
    pub fn unavailable(self) -> Option<&'static str> {
        self.codec().unavailable()
    }

    /// What the peer connection registers and the track carries: the
    /// codec's SDP with the feedback every video codec of ours answers
    /// (NACK, PLI, FIR).
    pub(crate) fn rtp_codec(self) -> RTCRtpCodec {
        let codec = self.codec();
        RTCRtpCodec {
            mime_type: codec.mime_type().to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: codec.sdp_fmtp_line().to_owned(),
            rtcp_feedback: [("nack", ""), ("nack", "pli"), ("ccm", "fir")]
                .iter()
                .map(|(typ, parameter)| RTCPFeedback {
                    typ: (*typ).to_owned(),
                    parameter: (*parameter).to_owned(),
                })
                .collect(),
        }
    }

    pub(crate) fn payload_type(self) -> u8 {
        self.codec().payload_type()
    }
}

impl std::fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The video codecs of ours an SDP offers, in its order (the offerer's
/// preference): the first video section's formats, named by their
/// `a=rtpmap` lines. Formats that are not ours (RTX, FEC, AV1) are left out.
pub(crate) fn offered_video_codecs(sdp: &str) -> Vec<VideoCodec> {
    let mut formats: Vec<&str> = Vec::new();
    let mut names: Vec<(&str, &str)> = Vec::new();
    let mut in_video = false;
    let mut seen_video = false;
    for line in sdp.lines().map(str::trim) {
        if let Some(media) = line.strip_prefix("m=") {
            in_video = media.starts_with("video ") && !seen_video;
            seen_video |= in_video;
            if in_video {
                formats = media.split_whitespace().skip(3).collect();
            }
        } else if in_video
            && let Some(map) = line.strip_prefix("a=rtpmap:")
            && let Some((payload_type, encoding)) = map.split_once(' ')
        {
            let name = encoding.split('/').next().unwrap_or_default();
            names.push((payload_type, name));
        }
    }
    let mut offered = Vec::new();
    for format in formats {
        let codec = names
            .iter()
            .find(|(payload_type, _)| *payload_type == format)
            .and_then(|(_, name)| VideoCodec::from_mime_type(&format!("video/{name}")));
        if let Some(codec) = codec
            && !offered.contains(&codec)
        {
            offered.push(codec);
        }
    }
    offered
}

/// One video codec: its SDP, its coder pair and its RTP payload format.
pub trait Codec: Sync {
    fn name(&self) -> &'static str;
    fn mime_type(&self) -> &'static str;
    /// The payload type we offer it under (an answer may map it elsewhere;
    /// senders use what was negotiated).
    fn payload_type(&self) -> u8;
    fn sdp_fmtp_line(&self) -> &'static str;
    /// Why this build cannot encode or decode it (a library left out).
    fn unavailable(&self) -> Option<&'static str> {
        None
    }
    fn encoder(&self, settings: &VideoSettings) -> Result<Box<dyn VideoEncoder>, CodecError>;
    fn decoder(&self) -> Result<Box<dyn VideoDecoder>, CodecError>;
    fn payloader(&self) -> Box<dyn Payloader>;
    fn depacketizer(&self) -> Box<dyn Depacketizer + Send>;
    /// Whether an RTP payload can begin a stream: the first packet of a
    /// keyframe (what a reorder buffer waits for before it starts).
    fn starts_keyframe(&self, payload: &Bytes) -> bool;
}

/// Encodes pictures; answers keyframe requests on the next one.
pub trait VideoEncoder: Send {
    fn request_keyframe(&mut self);
    fn encode(&mut self, picture: &I420) -> Result<EncodedFrame, CodecError>;
}

/// Decodes frames; a picture that comes out is lent to the caller.
pub trait VideoDecoder: Send {
    /// Decodes one frame; whether a picture came out (then `inspect` saw it).
    fn decode(
        &mut self,
        frame: &[u8],
        inspect: &mut dyn FnMut(Luma<'_>),
    ) -> Result<bool, CodecError>;
}

impl std::fmt::Debug for dyn VideoEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VideoEncoder")
    }
}

impl std::fmt::Debug for dyn VideoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VideoDecoder")
    }
}

/// A decoded picture's luma plane, valid while it is lent.
#[derive(Clone, Copy, Debug)]
pub struct Luma<'a> {
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub plane: &'a [u8],
}

/// What the sender's encoder is told.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoSettings {
    pub width: usize,
    pub height: usize,
    pub fps: u32,
    pub bitrate_bps: u32,
    /// A keyframe every this many frames (0: only on request).
    pub keyframe_interval: u32,
    /// The codecs this peer takes, most wanted first: it offers them in
    /// this order and answers with the first of an offer's it takes.
    pub codecs: Vec<VideoCodec>,
}

impl Default for VideoSettings {
    fn default() -> Self {
        VideoSettings {
            width: 320,
            height: 240,
            fps: 30,
            bitrate_bps: 500_000,
            keyframe_interval: 300,
            codecs: vec![VideoCodec::H264],
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("H.264 encoder: {0}")]
    H264Encode(#[source] openh264::Error),
    #[error("H.264 decoder: {0}")]
    H264Decode(#[source] openh264::Error),
    #[cfg(feature = "vpx")]
    #[error(transparent)]
    Vpx(#[from] callprobe_vpx::VpxError),
    #[error("{codec}: {why}")]
    Unavailable {
        codec: VideoCodec,
        why: &'static str,
    },
}

/// One encoded picture, in the codec's own framing (Annex B for H.264).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    pub data: Vec<u8>,
    pub keyframe: bool,
}

/// A decoded picture's size and what its stamp says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DecodedStamp {
    pub width: usize,
    pub height: usize,
    pub stamp: Result<Stamp, StampError>,
}

/// Decodes one frame and reads its stamp, if a picture came out.
pub(crate) fn decode_stamp(
    decoder: &mut dyn VideoDecoder,
    frame: &[u8],
) -> Result<Option<DecodedStamp>, CodecError> {
    let mut decoded = None;
    decoder.decode(frame, &mut |luma| {
        decoded = Some(DecodedStamp {
            width: luma.width,
            height: luma.height,
            stamp: read_stamp(luma.plane, luma.stride, luma.width, luma.height),
        });
    })?;
    Ok(decoded)
}

#[cfg(test)]
mod tests;

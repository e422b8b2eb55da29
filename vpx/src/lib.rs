//! VP8 and VP9 encode and decode through libvpx (Debian's `libvpx-dev`),
//! linked by `env-libvpx-sys`, whose bindings are pre-generated per libvpx
//! version (no bindgen, no clang at build time).
//!
//! Everything unsafe is in [`ffi`]: a context that owns its libvpx state,
//! an encoder that turns I420 planes into frames, a decoder that turns
//! frames into borrowed luma planes. Configured for real-time calls: one
//! pass, no lookahead, no dropped frames (every captured frame must come
//! out: receivers count them).

mod ffi;

pub use ffi::{Decoder, Encoder};

/// Which of libvpx's two codecs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Vpx {
    Vp8,
    Vp9,
}

impl Vpx {
    pub fn name(self) -> &'static str {
        match self {
            Vpx::Vp8 => "VP8",
            Vpx::Vp9 => "VP9",
        }
    }
}

/// What the encoder is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncoderConfig {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_bps: u32,
    /// A keyframe every this many frames (0: only when forced).
    pub keyframe_interval: u32,
}

/// One encoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    pub data: Vec<u8>,
    pub keyframe: bool,
}

/// A decoded picture's luma plane, borrowed from the decoder until its
/// next call.
#[derive(Clone, Copy, Debug)]
pub struct Luma<'a> {
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub plane: &'a [u8],
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VpxError {
    #[error("{codec} {operation}: {message}")]
    Codec {
        codec: &'static str,
        operation: &'static str,
        message: String,
    },
    #[error("{codec} encoder: planes of {got} bytes for a {width}x{height} picture")]
    PictureSize {
        codec: &'static str,
        width: u32,
        height: u32,
        got: usize,
    },
}

/// The linked libvpx's version string, such as `v1.12.0`.
pub fn version() -> String {
    ffi::version()
}

#[cfg(test)]
mod tests;

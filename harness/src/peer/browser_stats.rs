//! What a browser peer reports of a call, as data (the peer's report
//! vocabulary, so `peer` needs nothing of `browser`): what
//! `callprobe.stats(id)` returns, the parts of `RTCPeerConnection.getStats()`
//! a report needs, per direction and kind, plus the tones the page heard;
//! and what the grabs showed.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PageStats {
    /// Wall clock, ms since the Unix epoch.
    pub at: f64,
    #[serde(default)]
    pub received: Directions,
    #[serde(default)]
    pub sent: Directions,
    pub pair: Option<CandidatePair>,
    /// Every candidate the browser gathered (`address:port`, with its
    /// type): where it could have sent from.
    #[serde(default)]
    pub local_candidates: Vec<String>,
    #[serde(default)]
    pub presented_frames: u64,
    #[serde(default)]
    pub tones: Vec<HeardTone>,
    /// What the call's data channel carried (final stats only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<PageData>,
}

/// The page's data channel, raw: the harness judges it with the verifier
/// a synthetic peer uses.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PageData {
    /// Wall clock, ms since the Unix epoch, when it opened.
    pub opened_at: Option<f64>,
    pub sent: u32,
    pub bytes_sent: u64,
    /// Each message as it arrived: (wall clock ms, base64 bytes).
    pub received: Vec<(f64, String)>,
    /// Round trips of the page's own messages, by their echoes, in ms.
    pub rtts: Vec<f64>,
    /// Echoes of messages the page did not send.
    pub foreign_echoes: u32,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Directions {
    pub video: Option<RtpStats>,
    pub audio: Option<RtpStats>,
}

/// `inbound-rtp` or `outbound-rtp`: every field optional, as browsers differ.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RtpStats {
    pub packets_received: Option<u64>,
    pub packets_lost: Option<i64>,
    pub packets_sent: Option<u64>,
    pub frames_received: Option<u64>,
    pub frames_decoded: Option<u64>,
    pub frames_dropped: Option<u64>,
    pub frames_encoded: Option<u64>,
    pub frames_sent: Option<u64>,
    pub frame_width: Option<u32>,
    pub frame_height: Option<u32>,
    pub frames_per_second: Option<f64>,
    pub freeze_count: Option<u64>,
    pub total_freezes_duration: Option<f64>,
    pub total_samples_received: Option<u64>,
    pub concealed_samples: Option<u64>,
    pub audio_level: Option<f64>,
    pub decoder_implementation: Option<String>,
    pub encoder_implementation: Option<String>,
    pub codec: Option<Codec>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Codec {
    pub mime_type: String,
    pub payload_type: Option<u8>,
    pub sdp_fmtp_line: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CandidatePair {
    pub local: Option<String>,
    pub remote: Option<String>,
    pub rtt_ms: Option<f64>,
}

/// The strongest frequency the page heard at one moment.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct HeardTone {
    pub at: f64,
    pub hz: f64,
    /// Level of that frequency, dB (the analyser's scale; -100 is silence).
    /// `None` for -Infinity, which JSON carries as null: silence.
    pub db: Option<f64>,
}

impl PageStats {
    pub(crate) fn video_frames_decoded(&self) -> u64 {
        self.received
            .video
            .as_ref()
            .and_then(|v| v.frames_decoded)
            .unwrap_or(0)
    }
}

/// What the browser said of a call beyond the verdicts.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BrowserCallStats {
    /// The last `getStats` (tones left out).
    pub stats: PageStats,
    /// Grabs read, and how many showed all eight colour bars.
    pub grabs: usize,
    pub grabs_with_bars: usize,
    /// The grabs that did not (at most [`MAX_MISSES`]): what a person would
    /// look at first when the picture is wrong.
    pub grabs_missing_bars: Vec<GrabMiss>,
}

/// One grab that did not show all eight colour bars.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GrabMiss {
    /// On the run's clock.
    pub at_ms: f64,
    pub bars: usize,
    /// The frame number its stamp read, if it read.
    pub frame: Option<u32>,
}

//! The metrics a run measures, by the names reports and thresholds use
//! (DESIGN §5). One list, so a scenario naming a metric that does not exist
//! is refused before anything starts.

use std::fmt;
use std::str::FromStr;

/// What one sample of a metric is taken over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// One sample per call (from the caller's call command).
    Call,
    /// One sample per received track (a direction of a call, or a
    /// subscription's stream).
    Track,
    /// One sample per subscription: one publisher's media to one
    /// subscriber through the media server.
    Subscription,
    /// One sample per verified video frame.
    Frame,
    /// One sample per peer.
    Peer,
    /// One sample per partner of a peer that left, crashed or vanished.
    Departure,
    /// One sample per track a move, an impairment or a server's crash
    /// crossed.
    Fault,
    /// One sample per run.
    Run,
    /// One sample per wake-up of the harness's event-loop probe (every 10 ms).
    Probe,
    /// One sample per data-channel message echoed back to its sender.
    Message,
}

macro_rules! metrics {
    ($($variant:ident => $name:literal, $per:ident, $about:literal;)*) => {
        /// A metric that thresholds can name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Metric {
            $($variant,)*
        }

        impl Metric {
            pub const ALL: &'static [Metric] = &[$(Metric::$variant,)*];

            /// The name used in files and reports, such as `setup.first_frame_ms`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Metric::$variant => $name,)*
                }
            }

            pub fn per(self) -> Per {
                match self {
                    $(Metric::$variant => Per::$per,)*
                }
            }

            /// One line on what a sample is.
            pub(crate) fn about(self) -> &'static str {
                match self {
                    $(Metric::$variant => $about,)*
                }
            }
        }
    };
}

metrics! {
    SetupSignaling => "setup.signaling_ms", Call, "call command to the callee holding the offer";
    SetupRelayAllocated => "setup.relay_allocated_ms", Call, "call command to the caller's first relayed candidate (its TURN allocation granted); calls with a TURN server only";
    SetupAnswer => "setup.answer_ms", Call, "call command to the caller holding the answer";
    SetupIceConnected => "setup.ice_connected_ms", Call, "call command to ICE connected at the caller";
    SetupDtlsConnected => "setup.dtls_connected_ms", Call, "call command to the peer connection connected (DTLS) at the caller";
    SetupFirstRtp => "setup.first_rtp_ms", Call, "call command to the first video RTP packet at the caller";
    SetupFirstFrame => "setup.first_frame_ms", Call, "call command to the first verified video frame at the caller";
    SetupFirstAudio => "setup.first_audio_ms", Call, "call command to the first 100 ms of the callee's tone at the caller";
    SfuPublishAnswer => "sfu.publish_answer_ms", Call, "publish command to the publisher holding the media server's answer (one sample per publish)";
    SfuPublishConnected => "sfu.publish_connected_ms", Call, "publish command to the publisher's connection with the media server up (ICE and DTLS)";
    SfuOffer => "sfu.offer_ms", Subscription, "subscribe command to the subscriber holding the media server's offer (the server has the feed and made the subscription)";
    SfuIceConnected => "sfu.ice_connected_ms", Subscription, "subscribe command to ICE connected at the subscriber";
    SfuDtlsConnected => "sfu.dtls_connected_ms", Subscription, "subscribe command to the subscriber's connection with the media server up (DTLS)";
    SfuFirstFrame => "sfu.first_frame_ms", Subscription, "subscribe command to the first verified frame of the publisher's video at the subscriber (from a keyframe the server asked the publisher for)";
    SfuFirstAudio => "sfu.first_audio_ms", Subscription, "subscribe command to the first 100 ms of the publisher's tone at the subscriber";
    SfuFanoutLatency => "sfu.fanout_latency_ms", Frame, "capture at the publisher to verified at a subscriber, through the media server, per frame";
    CallFailed => "call.failed", Call, "1 when a call's outcome was not the expected one (media both ways, or a failure with `expect = \"fail\"`), else 0";
    CallRelayed => "call.relayed", Call, "1 when either side's selected candidate pair goes through a TURN server, else 0 (calls whose ICE connected)";
    CallFailure => "call.failure_ms", Call, "call command to the caller knowing the call failed (failed calls only)";
    PeerGoneDetected => "peer_gone.detected_ms", Departure, "a peer's departure (leave, crash, vanish) to each partner in a call with it knowing: the first of its hangup, the server's peerLeft, ICE disconnected";
    PeerGonePeerLeft => "peer_gone.peer_left_ms", Departure, "a peer's departure to the server's peerLeft at each partner";
    PeerGoneIceDisconnected => "peer_gone.ice_disconnected_ms", Departure, "a peer's departure to ICE disconnected at each partner";
    PeerGoneIceFailed => "peer_gone.ice_failed_ms", Departure, "a peer's departure to ICE failed at each partner";
    PeerGoneLastFrame => "peer_gone.last_frame_ms", Departure, "a peer's departure to the last frame from it verified at each partner (negative: before)";
    ServerCrashDetected => "server_crash.detected_ms", Fault, "a server's crash (crash-server) to each side of each call through it knowing: ICE disconnected (or failed)";
    ServerCrashIceFailed => "server_crash.ice_failed_ms", Fault, "a server's crash to ICE failed at each side of each call through it";
    ServerCrashCallEnded => "server_crash.call_ended_ms", Fault, "a server's crash to each side of each call through it ending the call (failed there, or hung up by the other side)";
    ServerCrashLastFrame => "server_crash.last_frame_ms", Fault, "a server's crash to the last frame verified at each side of each call through it (negative: before)";
    NetworkChangeRecovered => "network_change.recovered_ms", Fault, "a peer's address change to the first verified frame after it, per track of its calls";
    NetworkChangeIceReconnected => "network_change.ice_reconnected_ms", Fault, "a peer's address change to ICE connected again on all its calls (one sample per move)";
    NetworkChangeFramesLost => "network_change.frames_lost", Fault, "frames lost across a peer's address change, per track of its calls";
    ImpairmentFramesLost => "impairment.frames_lost", Fault, "frames lost from an impairment's start to the first verified frame after its end, per track it crossed";
    ImpairmentFreezeMs => "impairment.freeze_ms", Fault, "time frozen over the same window, per track";
    ImpairmentRecovered => "impairment.recovered_ms", Fault, "an impairment's `restore` to the first verified frame after it, per track";
    DataOpen => "data.open_ms", Call, "call command to the call's data channel open at the caller (a setup phase)";
    DataDeliveredRatio => "data.delivered_ratio", Track, "data-channel messages received over those the span asked for (from the sender's channel opening, one per interval, less what was in flight at the end; 0 to 1)";
    DataMessagesLost => "data.messages_lost", Track, "data-channel messages sent and never received: numbers skipped, and those sent in the span after the last that came";
    DataMessagesDuplicated => "data.messages_duplicated", Track, "data-channel messages received again";
    DataMessagesReordered => "data.messages_reordered", Track, "data-channel messages received after a higher number (counted on unordered channels, failed by default on ordered ones)";
    DataMessagesCorrupt => "data.messages_corrupt", Track, "data-channel messages whose CRC did not check";
    DataMessagesWrongSender => "data.messages_wrong_sender", Track, "data-channel messages (or echoes) from a sender other than the call's partner";
    DataThroughput => "data.throughput_kbps", Track, "data-channel bytes received per second, first message to last, in kbit/s";
    DataRtt => "data.rtt_ms", Message, "a data-channel message sent to its echo back, per message";
    VideoFps => "video.fps", Track, "verified frames per second over the call's span (from the sender's first frame to the call's end, less what was still in flight)";
    VideoCoverage => "video.coverage", Track, "share of the call's span, outside declared fault windows, covered by verified frames (0 to 1): a gap longer than a freeze is uncovered, to the span's end";
    VideoFramesVerified => "video.frames_verified", Track, "frames verified by their stamp (a browser: grabs whose stamp read as the sender's)";
    VideoFramesDecoded => "video.frames_decoded", Track, "a browser receiver only: the frames its decoder says it decoded (getStats framesDecoded; no stamp checked)";
    VideoFramesLost => "video.frames_lost", Track, "frames sent within the call's span that never verified";
    VideoFramesDuplicated => "video.frames_duplicated", Track, "a frame shown again (never counted as verified: a freeze)";
    VideoFramesCorrupt => "video.frames_corrupt", Track, "frames decoded with a damaged stamp";
    VideoFramesWrongSender => "video.frames_wrong_sender", Track, "frames stamped by a sender other than the caller's partner";
    VideoVerifiedRatio => "video.verified_ratio", Track, "verified frames over frames expected (0 to 1); a browser receiver: grabs whose stamp verified as a new frame over grabs taken";
    VideoFreezes => "video.freezes", Track, "gaps over the span (from its start, between frames, to its end) longer than max(150 ms, 3 frame intervals)";
    VideoFreezeMs => "video.freeze_ms", Track, "total time frozen";
    VideoLongestFreeze => "video.longest_freeze_ms", Track, "the longest freeze over the span";
    VideoLatency => "video.latency_ms", Frame, "capture to verified, per frame";
    AudioToneHz => "audio.tone_hz", Track, "median dominant frequency heard";
    AudioToneMatch => "audio.tone_match", Track, "1 when the sender's tone was heard (or, with shared media, only its packets arrived), else 0";
    AudioCoverage => "audio.coverage", Track, "share of the span's 100 ms windows, outside declared fault windows, that held the sender's tone (0 to 1)";
    AudioSilenceMs => "audio.silence_ms", Track, "the longest stretch of the span without the sender's tone";
    AudioWrongToneWindows => "audio.wrong_tone_windows", Track, "100 ms windows holding a sound other than the sender's tone, at any level (shared media: a window's worth of foreign packets)";
    AudioGaps => "audio.gaps", Track, "interruptions: a sequence jump or a pause over 100 ms";
    AudioPacketsLost => "audio.packets_lost", Track, "packets missing by sequence number";
    PeerErrors => "peer.errors", Peer, "errors a peer reported";
    HarnessLag => "harness.lag_ms", Probe, "how late the harness's event loop ran a task due every 10 ms, over the timeline";
    HarnessLateFrames => "harness.late_frames_ratio", Run, "share of video frame slots sent over half an interval late or skipped (0 to 1)";
    HarnessCpuPerPeer => "harness.cpu_per_peer_pct", Run, "CPU of the callprobe process per peer, % of one core, once every call connected";
    HarnessRssPerPeer => "harness.rss_per_peer_mb", Run, "peak resident memory over what it was before the peers started, per peer, MB";
    HarnessRssGrowth => "harness.rss_growth_mb_per_min", Run, "resident memory's growth per minute beyond the run's own record (finished calls' per-frame times, events), over the steady part of the run (after a tenth of it, at least 10 s; 30 samples or more): a line fitted to one sample a second";
    HarnessFdGrowth => "harness.fd_growth_per_min", Run, "open file descriptors' growth per minute over the same window: a socket leaked per call shows here";
    HarnessTaskGrowth => "harness.task_growth_per_min", Run, "live async tasks' growth per minute over the same window";
    RampAllConnected => "ramp.all_connected_ms", Run, "timeline start to the last call's first verified frame at the caller";
    RampCallsPerSecond => "ramp.calls_per_second", Run, "calls connected (first verified frame at the caller) per second, from the first call command to the last connection";
}

impl Metric {
    /// A failure of this metric is one that no load explains: media from
    /// the wrong sender, a damaged stamp, a wrong tone. An overloaded run
    /// that fails one of them has failed, not just been invalid.
    /// Measured by one machine of its own run (its harness's load, its
    /// ramp): a run split across machines judges it per shard.
    pub(crate) fn of_one_machine(self) -> bool {
        self.name().starts_with("harness.") || self.name().starts_with("ramp.")
    }

    pub(crate) fn load_independent(self) -> bool {
        matches!(
            self,
            Metric::VideoFramesWrongSender
                | Metric::VideoFramesCorrupt
                | Metric::AudioWrongToneWindows
        )
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown metric `{0}` (`callprobe metrics` lists them)")]
pub struct UnknownMetric(pub String);

impl Per {
    fn as_str(self) -> &'static str {
        match self {
            Per::Call => "call",
            Per::Track => "track",
            Per::Subscription => "subscription",
            Per::Frame => "frame",
            Per::Peer => "peer",
            Per::Departure => "departure",
            Per::Fault => "fault",
            Per::Run => "run",
            Per::Probe => "probe",
            Per::Message => "message",
        }
    }
}

/// Every metric a threshold can name, a line each: its name, what one
/// sample is taken over, and what a sample is (`callprobe metrics`).
pub(crate) fn catalogue() -> String {
    let width = Metric::ALL
        .iter()
        .map(|m| m.name().len())
        .max()
        .unwrap_or(0);
    let mut text = format!("{:width$}  {:9}  what one sample is\n", "metric", "per");
    for &metric in Metric::ALL {
        text.push_str(&format!(
            "{:width$}  {:9}  {}\n",
            metric.name(),
            metric.per().as_str(),
            metric.about()
        ));
    }
    text
}

impl FromStr for Metric {
    type Err = UnknownMetric;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .iter()
            .copied()
            .find(|m| m.name() == text)
            .ok_or_else(|| UnknownMetric(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_name_parses_back_to_itself_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for &metric in Metric::ALL {
            assert_eq!(metric.name().parse::<Metric>().unwrap(), metric);
            assert!(names.insert(metric.name()), "{metric} twice");
        }
        assert!("setup.first_frame".parse::<Metric>().is_err());
    }

    #[test]
    fn the_catalogue_has_a_line_per_metric_with_what_it_is_taken_over() {
        let catalogue = catalogue();
        let lines: Vec<&str> = catalogue.lines().collect();
        assert_eq!(
            lines.len(),
            Metric::ALL.len() + 1,
            "a header and a line each"
        );
        for (&metric, line) in Metric::ALL.iter().zip(&lines[1..]) {
            let mut words = line.split_whitespace();
            assert_eq!(words.next(), Some(metric.name()));
            assert_eq!(words.next(), Some(metric.per().as_str()));
            assert!(line.ends_with(metric.about()), "{line}");
        }
    }
}

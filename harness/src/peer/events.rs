//! What flows in and out of a peer task: commands in, timestamped events out.

use std::net::IpAddr;

use callprobe_server::protocol::PeerId;
use serde::{Deserialize, Serialize};

use super::failure::typed_or_words;
pub use super::failure::{CallEnd, CallFailure, PeerError};
use super::ice::CandidatePair;
use super::send::SentSpan;
use crate::clock::RunTime;
use crate::media::codec::VideoCodec;
use crate::media::stamp::Stamp;
use crate::verify::audio::AudioVerdict;
use crate::verify::video::VideoVerdict;

/// A call of the run, numbered by the runner when it commands it: every
/// event either side reports about the call carries it, and so does the
/// call's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub u32);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call {}", self.0)
    }
}

/// What the harness tells a peer to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerCommand {
    /// Call `to`, whose media carries `expect`: offer, trickle candidates,
    /// send media once connected. The run files it as `call`.
    Call {
        to: PeerId,
        call: CallId,
        expect: MediaSource,
    },
    /// Publish to the media server's room: a call with the room, our
    /// media sent, none received. The run files it as `call`.
    Publish { call: CallId },
    /// Receive `to`'s media through the media server's room: the server
    /// offers, we answer; `to`'s media carries `expect`, ours is not sent.
    Subscribe {
        to: PeerId,
        call: CallId,
        expect: MediaSource,
    },
    /// End the call with this peer (signaling `hangup`, then close).
    Hangup { to: PeerId },
    /// Hang up every call, close everything and end the task.
    Close,
    /// The process dies: the OS closes the signaling TCP connection (no
    /// WebSocket close frame); its link's owner has silenced its media.
    /// The task ends.
    Crash,
    /// The network disappears (its link's owner has silenced the link):
    /// nothing is closed, nothing gets through any more, signaling
    /// included. The task lives on, cut off, until `Close`.
    Vanish,
    /// The peer's address has changed to `to` (its link's owner moved it,
    /// and its old sockets are dead); with `restart`, it restarts ICE on
    /// every call itself.
    Move { to: IpAddr, restart: bool },
    /// Restart ICE on the call with this peer (the other side moved).
    RestartIce { with: PeerId },
    /// The peer's camera or microphone goes wrong, on every call from now.
    MediaFault(MediaFault),
    /// The peer's signaling connection drops (no close frame); its media
    /// goes on until its calls end, which they do, failed.
    DropSignaling,
}

/// How a peer breaks the protocol on purpose (a scenario's `misbehave`),
/// from the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Misbehaviour {
    /// Offers go unanswered.
    pub ignores_offers: bool,
    /// The SDP it sends names a certificate fingerprint it does not have.
    pub wrong_fingerprint: bool,
    /// It presents a bearer token other than the server's (WHIP and WHEP).
    pub wrong_token: bool,
}

impl Misbehaviour {
    pub(crate) const NAMES: &'static [&'static str] =
        &["no-answer", "wrong-fingerprint", "wrong-token"];

    /// Adds the misbehaviour `name`; false if there is none by that name.
    pub fn add(&mut self, name: &str) -> bool {
        match name {
            "no-answer" => self.ignores_offers = true,
            "wrong-fingerprint" => self.wrong_fingerprint = true,
            "wrong-token" => self.wrong_token = true,
            _ => return false,
        }
        true
    }

    /// The SDP as this peer sends it: with `wrong_fingerprint`, every
    /// fingerprint's hex digits complemented (0 for f, 1 for e, ...).
    pub(crate) fn outgoing_sdp(self, sdp: String) -> String {
        if !self.wrong_fingerprint {
            return sdp;
        }
        sdp.lines()
            .map(|line| match line.split_once(' ') {
                Some((key, value)) if key.starts_with("a=fingerprint:") => {
                    let flipped: String = value
                        .chars()
                        .map(|c| match c.to_digit(16) {
                            Some(d) => char::from_digit(15 - d, 16)
                                .expect("a hex digit")
                                .to_ascii_uppercase(),
                            None => c,
                        })
                        .collect();
                    format!("{key} {flipped}\r\n")
                }
                _ => format!("{line}\r\n"),
            })
            .collect()
    }
}

/// What can go wrong with what a peer sends: the faults a verdict must
/// catch. Each lasts to the end of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaFault {
    /// The camera freezes: the last frame is sent again and again.
    VideoFreeze,
    /// The camera stops: no more frames.
    VideoStop,
    /// Frames go out with a damaged stamp.
    VideoCorrupt,
    /// Frames carry another sender's stamps (this index).
    WrongSender(u16),
    /// The microphone is muted: silence goes out.
    AudioMute,
    /// The microphone stops: no more audio packets.
    AudioStop,
    /// Another sender's tone (this index) goes out.
    WrongTone(u16),
    /// The data channel stops: no more messages (echoes still go back).
    DataStop,
    /// Messages go out damaged (their CRC no longer checks).
    DataCorrupt,
}

impl MediaFault {
    /// The name scenarios use.
    pub fn name(self) -> &'static str {
        match self {
            MediaFault::VideoFreeze => "video-freeze",
            MediaFault::VideoStop => "video-stop",
            MediaFault::VideoCorrupt => "video-corrupt",
            MediaFault::WrongSender(_) => "wrong-sender",
            MediaFault::AudioMute => "audio-mute",
            MediaFault::AudioStop => "audio-stop",
            MediaFault::WrongTone(_) => "wrong-tone",
            MediaFault::DataStop => "data-stop",
            MediaFault::DataCorrupt => "data-corrupt",
        }
    }

    /// Every fault, by name, `as` standing for the other sender.
    pub fn parse(name: &str, other: u16) -> Option<Self> {
        Some(match name {
            "video-freeze" => MediaFault::VideoFreeze,
            "video-stop" => MediaFault::VideoStop,
            "video-corrupt" => MediaFault::VideoCorrupt,
            "wrong-sender" => MediaFault::WrongSender(other),
            "audio-mute" => MediaFault::AudioMute,
            "audio-stop" => MediaFault::AudioStop,
            "wrong-tone" => MediaFault::WrongTone(other),
            "data-stop" => MediaFault::DataStop,
            "data-corrupt" => MediaFault::DataCorrupt,
            _ => return None,
        })
    }

    pub(crate) const NAMES: &'static [&'static str] = &[
        "video-freeze",
        "video-stop",
        "video-corrupt",
        "wrong-sender",
        "audio-mute",
        "audio-stop",
        "wrong-tone",
        "data-stop",
        "data-corrupt",
    ];

    /// The other sender a fault sends as, if it names one.
    pub fn other(self) -> Option<u16> {
        match self {
            MediaFault::WrongSender(other) | MediaFault::WrongTone(other) => Some(other),
            _ => None,
        }
    }

    /// The same fault, naming `map(other)` instead.
    pub(crate) fn with_other(self, map: impl Fn(u16) -> u16) -> Self {
        match self {
            MediaFault::WrongSender(other) => MediaFault::WrongSender(map(other)),
            MediaFault::WrongTone(other) => MediaFault::WrongTone(map(other)),
            fault => fault,
        }
    }

    /// Whether the fault is in the data channel.
    pub(crate) fn is_data(self) -> bool {
        matches!(self, MediaFault::DataStop | MediaFault::DataCorrupt)
    }

    /// Whether the fault is in the video (else the audio, or the data).
    pub(crate) fn is_video(self) -> bool {
        matches!(
            self,
            MediaFault::VideoFreeze
                | MediaFault::VideoStop
                | MediaFault::VideoCorrupt
                | MediaFault::WrongSender(_)
        )
    }
}

/// What a peer's media carries, so a receiver knows how to judge it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaSource {
    /// Our test pattern and tone, stamped with this sender index.
    Pattern(u16),
    /// A browser's fake camera (a moving arc, a frame counter) and fake
    /// microphone (two beeps a second); its data-channel messages carry
    /// this index (its peer index in the run).
    Browser(u16),
}

/// Which side of a call a peer is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Caller,
    Callee,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaKind {
    Video,
    Audio,
}

impl PeerEvent {
    /// Heap this event holds once logged: itself, and a finished call's
    /// per-frame times (by far the bulk of a run's record).
    pub(crate) fn retained_bytes(&self) -> usize {
        let report = match &self.kind {
            PeerEventKind::CallEnded(report) => {
                std::mem::size_of::<CallReport>()
                    + report.video.as_ref().map_or(0, |v| {
                        v.frames.capacity() * std::mem::size_of::<crate::verify::video::FrameTime>()
                    })
            }
            _ => 0,
        };
        std::mem::size_of::<PeerEvent>() + report
    }
}

/// A peer's account of one call, when it ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallReport {
    pub remote: PeerId,
    pub(crate) role: Role,
    pub end: CallEnd,
    /// What we received; `None` when no such track arrived.
    pub video: Option<VideoVerdict>,
    pub audio: Option<AudioVerdict>,
    pub keyframe_requests_sent: u64,
    /// What we sent.
    pub frames_sent: u32,
    pub keyframes_sent: u64,
    pub keyframe_requests_received: u64,
    pub audio_packets_sent: u64,
    /// When our video and audio started and stopped going out (`None`:
    /// nothing went, or a browser, which does not say).
    pub(crate) video_sent: Option<SentSpan>,
    pub(crate) audio_sent: Option<SentSpan>,
    /// A browser peer's own account (`getStats`, grabs); `None` for ours.
    pub browser: Option<Box<super::browser_stats::BrowserCallStats>>,
    /// The video codec negotiated, which this side sent (`None`: the call
    /// never got that far, or a browser, which does not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_codec: Option<VideoCodec>,
    /// The call's data channel, as this side saw it (`None`: the scenario
    /// asked for none, or it never came here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<crate::verify::data::DataVerdict>,
}

impl CallReport {
    /// A report with nothing sent or received yet.
    pub fn new(remote: PeerId, role: Role, end: CallEnd) -> Self {
        CallReport {
            remote,
            role,
            end,
            video: None,
            audio: None,
            keyframe_requests_sent: 0,
            frames_sent: 0,
            keyframes_sent: 0,
            keyframe_requests_received: 0,
            audio_packets_sent: 0,
            video_sent: None,
            audio_sent: None,
            browser: None,
            video_codec: None,
            data: None,
        }
    }
}

/// Something that happened at a peer, and when (on the run's clock): one
/// line of a run's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerEvent {
    /// The peer's index in the run.
    pub peer: u16,
    pub at: RunTime,
    /// The call it is about, if it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallId>,
    #[serde(flatten)]
    pub kind: PeerEventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PeerEventKind {
    Started {
        id: PeerId,
    },
    /// The harness asked for a call: t0 of its setup timeline.
    CallCommanded {
        remote: PeerId,
    },
    OfferSent {
        remote: PeerId,
    },
    OfferReceived {
        remote: PeerId,
    },
    AnswerSent {
        remote: PeerId,
    },
    AnswerReceived {
        remote: PeerId,
    },
    IceConnected {
        remote: PeerId,
    },
    /// The candidate pair ICE selected, as this side sees it: at each ICE
    /// connected (a restart may select another).
    PairSelected {
        remote: PeerId,
        pair: CandidatePair,
    },
    /// Our first relayed candidate for the call: the TURN server granted
    /// an allocation.
    RelayAllocated {
        remote: PeerId,
    },
    IceDisconnected {
        remote: PeerId,
    },
    IceFailed {
        remote: PeerId,
    },
    /// The peer connection (ICE and DTLS) is connected.
    Connected {
        remote: PeerId,
    },
    FirstRtp {
        remote: PeerId,
        kind: MediaKind,
    },
    /// The first video frame that verified: decoded with a good stamp from the
    /// expected sender, or for live video, a new picture.
    FirstFrame {
        remote: PeerId,
        /// `None` for live video (a browser's camera), which has no stamp.
        stamp: Option<Stamp>,
    },
    /// The first 100 ms window holding the expected tone.
    FirstAudio {
        remote: PeerId,
    },
    /// The call's data channel opened here.
    DataOpen {
        remote: PeerId,
    },
    /// The server said that this peer, in a call with us, has gone.
    PeerLeft {
        remote: PeerId,
    },
    /// Faults done to this peer.
    Crashed,
    Vanished,
    Moved {
        to: IpAddr,
    },
    /// We offered an ICE restart on the call with `remote`.
    IceRestartSent {
        remote: PeerId,
    },
    CallEnded(Box<CallReport>),
    /// Something went wrong that the harness should see; the peer goes on.
    Error {
        remote: Option<PeerId>,
        /// Read from older records, which wrote only its words, as
        /// [`PeerError::Recorded`].
        #[serde(alias = "message", deserialize_with = "typed_or_words")]
        error: PeerError,
    },
    /// The task has ended; nothing follows.
    Closed,
}

impl PeerEventKind {
    /// The other peer of the call the event is about, if it is about one.
    pub fn remote(&self) -> Option<PeerId> {
        use PeerEventKind as K;
        match self {
            K::CallCommanded { remote }
            | K::OfferSent { remote }
            | K::OfferReceived { remote }
            | K::AnswerSent { remote }
            | K::AnswerReceived { remote }
            | K::IceConnected { remote }
            | K::PairSelected { remote, .. }
            | K::RelayAllocated { remote }
            | K::IceDisconnected { remote }
            | K::IceFailed { remote }
            | K::Connected { remote }
            | K::FirstRtp { remote, .. }
            | K::FirstFrame { remote, .. }
            | K::FirstAudio { remote }
            | K::DataOpen { remote }
            | K::PeerLeft { remote }
            | K::IceRestartSent { remote } => Some(*remote),
            K::CallEnded(report) => Some(report.remote),
            K::Error { remote, .. } => *remote,
            K::Started { .. } | K::Crashed | K::Vanished | K::Moved { .. } | K::Closed => None,
        }
    }
}

/// Which call each remote's events belong to, at one peer: opened when the
/// call is commanded (caller) or its first offer arrives (callee), closed
/// once the call's end has been reported.
#[derive(Debug, Default)]
pub(crate) struct CallIds(std::collections::HashMap<PeerId, CallId>);

impl CallIds {
    pub(crate) fn open(&mut self, remote: PeerId, call: Option<CallId>) {
        match call {
            Some(call) => self.0.insert(remote, call),
            None => self.0.remove(&remote),
        };
    }

    /// The event as the peer reports it, with its call; a call's end closes
    /// the call.
    pub(crate) fn event(&mut self, peer: u16, at: RunTime, kind: PeerEventKind) -> PeerEvent {
        let remote = kind.remote();
        let call = remote.and_then(|r| self.0.get(&r).copied());
        if let (PeerEventKind::CallEnded(_), Some(remote)) = (&kind, remote) {
            self.0.remove(&remote);
        }
        PeerEvent {
            peer,
            at,
            call,
            kind,
        }
    }
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_error_is_recorded_by_its_kind_and_read_back() {
        for error in [
            PeerError::NoCall {
                command: "hangup".into(),
            },
            PeerError::UnmatchedCandidate,
            PeerError::Call(CallFailure::NoCommonCodec {
                offered: vec![VideoCodec::Vp8],
                ours: vec![VideoCodec::H264],
            }),
        ] {
            let kind = PeerEventKind::Error {
                remote: None,
                error: error.clone(),
            };
            let json = serde_json::to_string(&kind).unwrap();
            assert!(
                json.starts_with(r#"{"event":"error","remote":null,"error":{"kind":"#),
                "{json}"
            );
            assert_eq!(serde_json::from_str::<PeerEventKind>(&json).unwrap(), kind);
        }
        assert_eq!(
            PeerError::NoCall {
                command: "hangup".into()
            }
            .to_string(),
            "hangup: no call with this peer"
        );
    }

    #[test]
    fn an_older_records_error_is_read_as_its_words() {
        let old = r#"{"event":"error","remote":null,"message":"the server replied x"}"#;
        assert_eq!(
            serde_json::from_str::<PeerEventKind>(old).unwrap(),
            PeerEventKind::Error {
                remote: None,
                error: PeerError::Recorded {
                    message: "the server replied x".into()
                }
            }
        );
    }
}

//! How a call ends and what goes wrong at a peer: the one vocabulary
//! both peer kinds report in, typed, and recorded by kind.

use serde::{Deserialize, Serialize};

use crate::media::codec::VideoCodec;

/// Why a call ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallEnd {
    /// We hung up (a command, or the peer closing).
    HungUp,
    /// The other side sent `hangup`.
    RemoteHungUp,
    /// The server said the other side's socket closed.
    PeerLeft,
    /// The call could not be set up or carried on.
    Failed(CallFailure),
    /// Our side crashed or vanished (a fault the harness caused).
    Abandoned,
}

/// Why a call failed, in words a tester acts on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CallFailure {
    #[error("no answer within {}", humantime::format_duration(*.0))]
    NoAnswer(std::time::Duration),
    #[error("the server refused the offer: {0}")]
    OfferRefused(String),
    /// A subscription the media server never offered for.
    #[error("no offer from the media server within {}", humantime::format_duration(*.0))]
    NoOffer(std::time::Duration),
    /// The media server refused a request for the call (a publish, a
    /// subscription, an answer).
    #[error("the media server refused: {0}")]
    Refused(String),
    /// Creating, sending or applying an offer or an answer.
    #[error("negotiation failed: {0}")]
    Negotiation(String),
    #[error("ICE failed")]
    IceFailed,
    /// Relayed candidates only, and none came: the TURN server's answer.
    #[error("no relayed candidate: {0}")]
    NoRelay(String),
    /// No ICE connection within the connect bound.
    #[error("ICE did not connect within {}", humantime::format_duration(*.0))]
    IceTimeout(std::time::Duration),
    /// ICE connected, then the connection failed or never came up: the
    /// DTLS handshake, or its check of the certificate fingerprint the
    /// other side's SDP announced.
    #[error("DTLS failed: {0}")]
    DtlsFailed(String),
    #[error("signaling connection closed by the server")]
    SignalingClosed,
    #[error("signaling connection lost: {0}")]
    SignalingLost(String),
    /// A browser ended the call for a reason of its own.
    #[error("browser: {0}")]
    Browser(String),
    /// Setting up the call's media or connection on our side.
    #[error("{0}")]
    Local(String),
    /// The offer's video codecs and ours do not meet.
    #[error(
        "no video codec in common: the offer has {}, this peer takes {}",
        codec_list(offered),
        codec_list(ours)
    )]
    NoCommonCodec {
        offered: Vec<VideoCodec>,
        ours: Vec<VideoCodec>,
    },
}

fn codec_list(codecs: &[VideoCodec]) -> String {
    if codecs.is_empty() {
        return "none of ours".to_owned();
    }
    let names: Vec<&str> = codecs.iter().map(|c| c.name()).collect();
    names.join(", ")
}

impl CallFailure {
    /// A failure no amount of load explains: the other side's SDP did not
    /// check out, or the server refused the call. (Timeouts and ICE can
    /// come of an overloaded harness.)
    pub(crate) fn load_independent(&self) -> bool {
        matches!(
            self,
            CallFailure::DtlsFailed(_)
                | CallFailure::OfferRefused(_)
                | CallFailure::Refused(_)
                | CallFailure::Negotiation(_)
                | CallFailure::NoCommonCodec { .. }
                | CallFailure::NoRelay(_)
        )
    }
}

/// What went wrong at a peer, in the vocabulary both peer kinds share: the
/// harness reports it, and the peer goes on. Each kind says what it was;
/// the words of a library's error are kept as its detail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PeerError {
    /// A command that needs the network, to a peer cut off from it.
    #[error("{command}: the peer is cut off from the network")]
    CutOff { command: String },
    /// A command about a call this peer is not in.
    #[error("{command}: no call with this peer")]
    NoCall { command: String },
    /// A fault of the in-process network, to a peer not on it.
    #[error("{command}: this peer is not on an emulated network")]
    NotEmulated { command: String },
    #[error("call: already in a call with this peer")]
    AlreadyInCall,
    /// Frames from the server that fit no call of this peer's.
    #[error("an offer without a sender cannot be answered")]
    OfferWithoutSender,
    #[error("an answer that matches no call waiting for one")]
    UnmatchedAnswer,
    #[error("an answer for no call")]
    AnswerForNoCall,
    #[error("a candidate that matches no call")]
    UnmatchedCandidate,
    /// The server's `error` frame, in its words.
    #[error("the server replied {reply}")]
    ServerReplied { reply: String },
    #[error("the signaling server closed the connection")]
    SignalingClosed,
    /// Connecting to the server, or a frame that failed on the way.
    #[error("{detail}")]
    Signaling { detail: String },
    /// A step of offer, answer or candidates that the library refused.
    #[error("{step}: {detail}")]
    Negotiation { step: String, detail: String },
    /// A call that could not be had (its end says so too).
    #[error(transparent)]
    Call(CallFailure),
    /// Media that could not be sent, received or decoded as negotiated.
    #[error("{detail}")]
    Media { detail: String },
    #[error("media from a peer nobody introduced as a caller or callee")]
    UnknownSender,
    /// A part of a call that did not stop within its bound.
    #[error("{part} did not stop")]
    Stuck { part: String },
    /// The browser, its page or its DevTools connection.
    #[error("{detail}")]
    Browser { detail: String },
    /// From a record written before errors had kinds: its words only.
    #[error("{message}")]
    Recorded { message: String },
}

/// A peer error as a record holds it: typed, or (older records) words.
pub(super) fn typed_or_words<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<PeerError, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Typed(PeerError),
        Words(String),
    }
    Ok(match Written::deserialize(d)? {
        Written::Typed(error) => error,
        Written::Words(message) => PeerError::Recorded { message },
    })
}

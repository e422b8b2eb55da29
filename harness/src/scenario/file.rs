//! The scenario file as written: the serde model shared by TOML and JSON.
//! Every struct refuses unknown fields, so a typo is an error, not a
//! setting silently ignored. Meaning (who exists, what is possible) is
//! checked afterwards, in `validate`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::RestartBy;
use crate::net::Direction;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScenarioFile {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(with = "human_duration")]
    pub(crate) duration: Duration,
    #[serde(default)]
    pub(crate) seed: u64,
    #[serde(default)]
    pub(crate) server: ServerSpec,
    #[serde(default)]
    pub(crate) media: MediaSpec,
    /// STUN and TURN servers and the candidate policy, for every peer.
    #[serde(default)]
    pub(crate) ice: IceSpec,
    #[serde(default)]
    pub(crate) timeouts: TimeoutsSpec,
    #[serde(default)]
    pub(crate) detection: DetectionSpec,
    #[serde(default)]
    pub(crate) harness: HarnessSpec,
    #[serde(default)]
    pub(crate) peers: Vec<PeerSpec>,
    #[serde(default)]
    pub(crate) calls: Vec<CallSpec>,
    /// A media server the peers meet in rooms on, instead of calling.
    pub(crate) sfu: Option<SfuSpec>,
    #[serde(default)]
    pub(crate) rooms: Vec<RoomSpec>,
    #[serde(default)]
    pub(crate) events: Vec<EventSpec>,
    /// Metric name → k6-style expressions (`"p95 < 20"`).
    #[serde(default)]
    pub(crate) thresholds: BTreeMap<String, Vec<String>>,
}

/// Which signaling server the peers use. Empty: one spawned in-process.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSpec {
    /// An external server, `ws://` or `wss://`.
    pub(crate) url: Option<String>,
    /// An external server whose URL is in this environment variable; the
    /// scenario is skipped when it is unset (and no `--server` is given).
    pub(crate) url_env: Option<String>,
    /// The in-process server speaks TLS with a self-signed certificate the
    /// peers are told to trust.
    #[serde(default)]
    pub(crate) tls: bool,
    /// The in-process server drops a connection that says nothing (not even
    /// a pong) for this long; lower it to see a vanished peer sooner.
    #[serde(default, with = "human_duration::option")]
    pub(crate) idle_timeout: Option<Duration>,
    #[serde(default, with = "human_duration::option")]
    pub(crate) ping_interval: Option<Duration>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MediaMode {
    /// Every sender encodes its own stream; receivers decode every frame.
    #[default]
    Live,
    /// One clip encoded up front, sent by everyone with a per-sender stamp;
    /// receivers check each frame by stamp and hash (for many peers).
    Shared,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MediaSpec {
    #[serde(default)]
    pub(crate) mode: MediaMode,
    #[serde(default)]
    pub(crate) video: VideoSpec,
    #[serde(default)]
    pub(crate) audio: AudioSpec,
    /// A data channel on every call: `{ ordered = true, interval = "100ms", size = 1024 }`.
    pub(crate) data: Option<DataSpec>,
}

/// A call's data channel: the caller opens it before its offer; each side
/// sends a numbered, stamped message every `interval` and echoes the
/// other's.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DataSpec {
    /// In order (default true).
    pub(crate) ordered: Option<bool>,
    /// Give a message up after this many retransmissions (default: never,
    /// a reliable channel).
    pub(crate) max_retransmits: Option<u16>,
    /// Between messages, each way (default 100 ms).
    #[serde(default, with = "human_duration::option")]
    pub(crate) interval: Option<Duration>,
    /// Bytes per message (default 1024).
    pub(crate) size: Option<usize>,
}

/// Video settings; anything left out keeps the default (320x240, 30 fps,
/// 500 kbit/s, a keyframe every 300 frames, H.264).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VideoSpec {
    /// `"vp8"`, or several in order of preference: `["vp8", "h264"]`.
    pub(crate) codec: Option<CodecSpec>,
    pub(crate) width: Option<usize>,
    pub(crate) height: Option<usize>,
    pub(crate) fps: Option<u32>,
    pub(crate) bitrate_bps: Option<u32>,
    pub(crate) keyframe_interval: Option<u32>,
}

/// One codec by name, or a list in order of preference.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum CodecSpec {
    One(String),
    Preference(Vec<String>),
}

impl CodecSpec {
    pub(crate) fn names(&self) -> Vec<&str> {
        match self {
            CodecSpec::One(name) => vec![name.as_str()],
            CodecSpec::Preference(names) => names.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AudioSpec {
    pub(crate) bitrate_bps: Option<u32>,
}

/// `[ice]`: the servers and policy a connection gathers candidates with,
/// as browsers take them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IceSpec {
    pub(crate) servers: Option<Vec<IceServerSpec>>,
    /// `all` (the default) or `relay`: relayed candidates only.
    pub(crate) policy: Option<String>,
}

/// A STUN or TURN server, or one the run starts itself (`spawn = "coturn"`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IceServerSpec {
    #[serde(default)]
    pub(crate) urls: Vec<String>,
    pub(crate) username: Option<String>,
    /// The environment variable holding the username.
    pub(crate) username_env: Option<String>,
    pub(crate) credential: Option<String>,
    /// The environment variable holding the credential (never printed).
    pub(crate) credential_env: Option<String>,
    /// `coturn`: the run starts a TURN server on loopback and stops it at
    /// the end; its URL and credentials are made up for the run.
    pub(crate) spawn: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeoutsSpec {
    /// How long a caller waits for an answer before the call fails.
    #[serde(default, with = "human_duration::option")]
    pub(crate) answer: Option<Duration>,
    /// How long a negotiated call may take to connect (ICE and DTLS).
    #[serde(default, with = "human_duration::option")]
    pub(crate) connect: Option<Duration>,
}

/// One peer, or a group of `count` peers named `name-1` … `name-N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PeerSpec {
    pub(crate) name: String,
    pub(crate) count: Option<u16>,
    /// `synthetic` (ours, the default) or `browser` (headless Chromium).
    #[serde(default)]
    pub(crate) kind: super::PeerKind,
    /// This peer's (or group's) own video settings, over `[media.video]`.
    pub(crate) video: Option<VideoSpec>,
    /// This peer's (or group's) own ICE settings: each field given
    /// replaces the run's `[ice]`.
    pub(crate) ice: Option<IceSpec>,
    /// Protocol faults it commits on purpose: `no-answer`,
    /// `wrong-fingerprint`.
    #[serde(default)]
    pub(crate) misbehave: Vec<String>,
}

/// Calls that start with the run (or at `at`): one pair, or a topology over
/// peers and groups.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallSpec {
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) topology: Option<Topology>,
    /// Peers and groups the topology spans; all peers when left out.
    pub(crate) among: Option<Vec<String>>,
    /// The centre of a `star`: it calls every other member.
    pub(crate) hub: Option<String>,
    #[serde(default, with = "human_duration::option")]
    pub(crate) at: Option<Duration>,
    /// Calls started per second, one after another from `at`; all at once
    /// when left out.
    pub(crate) spawn_rate: Option<f64>,
    /// Churn: each call is hung up by its caller `every` after it started
    /// and dialled again `pause` later, over and over to the end.
    pub(crate) redial: Option<RedialSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedialSpec {
    #[serde(with = "human_duration")]
    pub(crate) every: Duration,
    /// Between the hangup and the new call (default 500 ms).
    #[serde(default, with = "human_duration::option")]
    pub(crate) pause: Option<Duration>,
}

/// `[sfu]`: the media server under test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SfuSpec {
    /// `janus` (its VideoRoom plugin), or `whip`: WHIP and WHEP servers
    /// the run starts in front of its own Janus.
    pub(crate) kind: String,
    /// An external server's WebSocket API; without it the run starts its
    /// own, in a network namespace of the run's own.
    pub(crate) url: Option<String>,
    /// With `url`: a room already there, used instead of making one.
    pub(crate) room: Option<u64>,
}

/// `[[rooms]]`: one room, who publishes in it and who receives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoomSpec {
    /// Peers and groups that publish at `at`.
    #[serde(default)]
    pub(crate) publishers: Vec<String>,
    /// Peers and groups that subscribe at `at` to every publisher but
    /// themselves, or `"all"`: every peer of the run.
    #[serde(default)]
    pub(crate) subscribers: Option<Subscribers>,
    /// Peers and groups in the room that do nothing at `at` (they
    /// subscribe later, by a `subscribe` event).
    #[serde(default)]
    pub(crate) members: Vec<String>,
    #[serde(default, with = "human_duration::option")]
    pub(crate) at: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Subscribers {
    /// `"all"`.
    Every(String),
    Named(Vec<String>),
}

/// When the harness counts itself overloaded and the run invalid.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HarnessSpec {
    /// Bound on the event-loop lag's p99.
    #[serde(default, with = "human_duration::option")]
    pub(crate) max_lag: Option<Duration>,
    /// Share of video frames that may leave late or not at all, like "1%".
    pub(crate) max_late_frames: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Topology {
    /// Members in order, two by two: the first of each pair calls the second.
    Pairs,
    /// Every member calls every later member.
    Mesh,
    /// The hub calls every other member.
    Star,
}

/// Something that happens at `at` into the run: exactly one verb.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventSpec {
    #[serde(with = "human_duration")]
    pub(crate) at: Duration,
    pub(crate) call: Option<Endpoints>,
    pub(crate) hangup: Option<Endpoints>,
    /// A peer leaves gracefully: hangs up every call, then closes.
    pub(crate) leave: Option<String>,
    /// A peer's process dies: the OS closes its TCP, its UDP goes silent.
    pub(crate) crash: Option<String>,
    /// A peer's network disappears: nothing closed, nothing gets through.
    pub(crate) vanish: Option<String>,
    /// A peer's address changes; ICE restarts.
    #[serde(rename = "move")]
    pub(crate) move_to: Option<MoveSpec>,
    /// A peer's traffic is impaired from now on.
    pub(crate) impair: Option<ImpairSpec>,
    /// A peer's traffic is no longer impaired, both ways.
    pub(crate) restore: Option<String>,
    /// A peer's camera or microphone goes wrong from now on.
    pub(crate) media: Option<MediaFaultSpec>,
    /// A peer's signaling connection drops mid-call (its media goes on).
    #[serde(rename = "drop-signaling")]
    pub(crate) drop_signaling: Option<String>,
    /// A server the run started is killed: `turn` or `sfu`.
    #[serde(rename = "crash-server")]
    pub(crate) crash_server: Option<String>,
    /// A room member subscribes to every publisher of its room but itself.
    pub(crate) subscribe: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MediaFaultSpec {
    pub(crate) peer: String,
    /// `video-freeze`, `video-stop`, `video-corrupt`, `wrong-sender`,
    /// `audio-mute`, `audio-stop` or `wrong-tone`.
    pub(crate) fault: String,
    /// For `wrong-sender` and `wrong-tone`: whose stamps or tone go out
    /// (by default a sender no peer of the run is).
    #[serde(rename = "as")]
    pub(crate) as_peer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveSpec {
    pub(crate) peer: String,
    /// The new address, in 127.0.0.0/8; by default the next free one from
    /// 127.0.0.2 on.
    pub(crate) to: Option<String>,
    /// Who restarts ICE (default: the peer that moved).
    #[serde(default)]
    pub(crate) restart: RestartBy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImpairSpec {
    pub(crate) peer: String,
    /// `in`, `out` or `both` (the default), from the peer's side.
    #[serde(default)]
    pub(crate) direction: Direction,
    /// A share of datagrams lost, like `"5%"`.
    pub(crate) loss: Option<String>,
    /// Mean length of a loss burst in datagrams; without it, losses are
    /// independent.
    pub(crate) burst: Option<f32>,
    #[serde(default, with = "human_duration::option")]
    pub(crate) delay: Option<Duration>,
    #[serde(default, with = "human_duration::option")]
    pub(crate) jitter: Option<Duration>,
    /// A rate cap, like `"500kbps"` or `"2mbps"`.
    pub(crate) rate: Option<String>,
    #[serde(default)]
    pub(crate) blackhole: bool,
    /// A share of datagrams delivered twice, like `"5%"`.
    pub(crate) duplicate: Option<String>,
    /// Every this many datagrams, one overtakes the delay queue (with
    /// `delay`: reordering by up to the delay).
    pub(crate) reorder: Option<u32>,
}

/// ICE's detection timers for every peer; a preset, then any overrides.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DetectionSpec {
    #[serde(default)]
    pub(crate) preset: DetectionPreset,
    #[serde(default, with = "human_duration::option")]
    pub(crate) disconnected: Option<Duration>,
    #[serde(default, with = "human_duration::option")]
    pub(crate) failed: Option<Duration>,
    #[serde(default, with = "human_duration::option")]
    pub(crate) keepalive: Option<Duration>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DetectionPreset {
    /// What browsers and the library use: disconnected after 5 s without
    /// traffic, failed 25 s later, a keepalive every 2 s.
    #[default]
    Default,
    /// Disconnected after 400 ms, failed 1 s later, keepalive every 100 ms.
    Fast,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Endpoints {
    pub(crate) from: String,
    pub(crate) to: String,
    /// For `call`: what should become of it (default: it connects).
    #[serde(default)]
    pub(crate) expect: Expect,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Expect {
    /// Media verified both ways.
    #[default]
    Connect,
    /// The call must fail (a call to a peer that has left).
    Fail,
}

/// Human durations in files: `"3s"`, `"250ms"`, `"1m 30s"`.
mod human_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de::Error};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            D::Error::custom(format!(
                "`{text}` is not a duration ({e}); write it like \"3s\" or \"250ms\""
            ))
        })
    }

    pub(crate) mod option {
        use super::*;

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

//! Scenarios (DESIGN §6): a file describing peers, calls, a timeline and
//! thresholds, checked completely before anything starts.
//!
//! | module | what |
//! |---|---|
//! | `file` | the file as written (serde, unknown fields refused) |
//! | `source` | reading TOML or JSON; locating a field's line and column |
//! | `validate` | meaning: peers exist, calls are possible, events fit |
//! | `verb` | the timeline's verbs: what each is, how an event reads into one |
//! | [`shard`] | one scenario split across machines, never cutting a call |
//!
//! [`Scenario::load`] returns either a [`Scenario`] the runner can trust or
//! every problem found, each with file, line, column and field.

mod file;
pub(crate) mod shard;
mod source;
mod validate;
mod verb;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use source::Problem;
pub use source::Source;
pub(crate) use verb::{FaultClass, OwnedServer, Verb};

use crate::load::LoadBounds;
use crate::media::codec::VideoSettings;
use crate::metrics::Metric;
use crate::peer::{IcePolicy, IceServer};
use crate::threshold::Threshold;

/// A validated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    /// The file as written (a run's record keeps it).
    pub text: String,
    pub duration: Duration,
    pub seed: u64,
    pub server: ServerPlan,
    pub media: MediaPlan,
    pub answer_timeout: Duration,
    /// A negotiated call not connected (ICE and DTLS) after this fails.
    pub connect_timeout: Duration,
    pub(crate) detection: Detection,
    /// When the harness counts itself overloaded.
    pub(crate) load_bounds: LoadBounds,
    pub peers: Vec<PeerPlan>,
    /// The media server and its rooms (`[sfu]`, `[[rooms]]`), if the
    /// peers meet there instead of calling each other.
    pub sfu: Option<SfuPlan>,
    /// Calls and events, in the order they happen.
    pub actions: Vec<Action>,
    pub thresholds: Vec<MetricThresholds>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerPlan {
    /// Spawn our server in-process on 127.0.0.1:0.
    InProcess {
        tls: bool,
        /// Overrides of the server's limits, for faults.
        idle_timeout: Option<Duration>,
        ping_interval: Option<Duration>,
    },
    External {
        url: String,
    },
    /// An external server named by an environment variable that is unset:
    /// the scenario is skipped unless `--server` gives a URL.
    FromEnv {
        variable: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct MediaPlan {
    /// One clip for everyone, checked by stamp and hash (many peers).
    pub shared: bool,
    pub video: VideoSettings,
    pub audio_bitrate_bps: u32,
    /// A data channel on every call (`[media] data`).
    pub data: Option<crate::peer::DataSettings>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PeerPlan {
    pub name: String,
    /// The `[[peers]]` entry it came from (its name, for a group).
    pub group: String,
    pub kind: PeerKind,
    /// For a browser: the size and rate asked of its fake camera.
    pub video: VideoSettings,
    /// How it breaks the protocol on purpose (`misbehave`).
    pub misbehave: crate::peer::Misbehaviour,
    /// The STUN and TURN servers and candidate policy of its connections.
    pub ice: IcePlan,
    /// The room it is in (an index into the plan's rooms), in a scenario
    /// with a media server.
    pub room: Option<usize>,
}

/// The media server the peers meet in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SfuPlan {
    pub server: SfuServer,
    pub rooms: Vec<RoomPlan>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SfuServer {
    /// The run starts its own Janus (in a network namespace of its own)
    /// and makes a room per `[[rooms]]`.
    SpawnJanus,
    /// A Janus already running; `room` is a room there to use (else the
    /// run makes its rooms, and removes them at the end).
    ExternalJanus { url: String, room: Option<u64> },
    /// The run starts its own Janus, its rooms, and a WHIP and a WHEP
    /// server in front of it: peers publish by WHIP and view by WHEP.
    SpawnWhip,
}

/// One room: its members by peer index, publishers among them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomPlan {
    pub members: Vec<usize>,
    pub publishers: Vec<usize>,
}

/// A peer's ICE servers and candidate policy (`[ice]`, then its own).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IcePlan {
    /// Servers as given, credentials already read from the environment.
    pub servers: Vec<IceServer>,
    /// Also the TURN server the run starts itself (`spawn = "coturn"`).
    pub spawned_turn: bool,
    pub policy: IcePolicy,
}

impl IcePlan {
    /// It has a TURN server to relay through.
    pub(crate) fn has_turn(&self) -> bool {
        self.spawned_turn
            || self
                .servers
                .iter()
                .any(|s| s.urls.iter().any(|u| u.starts_with("turn:")))
    }

    /// The servers its connections use, `spawned` standing for the run's
    /// own TURN server once it is up.
    pub(crate) fn servers_with(&self, spawned: Option<&IceServer>) -> Vec<IceServer> {
        let mut servers = self.servers.clone();
        if self.spawned_turn {
            servers.extend(spawned.cloned());
        }
        servers
    }
}

/// What a peer is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerKind {
    /// Ours: the test pattern and tone, every frame verified.
    #[default]
    Synthetic,
    /// Headless Chromium showing the server's page (DESIGN §8).
    Browser,
}

impl Scenario {
    /// Whether any peer is a browser (the run needs Chromium).
    pub fn has_browsers(&self) -> bool {
        self.peers.iter().any(|p| p.kind == PeerKind::Browser)
    }

    /// Whether the run starts its own TURN server (it needs coturn).
    pub fn spawns_turn(&self) -> bool {
        self.peers.iter().any(|p| p.ice.spawned_turn)
    }

    /// Whether the run starts its own media server (it needs Janus, and a
    /// network namespace for it).
    pub fn spawns_sfu(&self) -> bool {
        matches!(
            self.sfu,
            Some(SfuPlan {
                server: SfuServer::SpawnJanus | SfuServer::SpawnWhip,
                ..
            })
        )
    }
}

/// ICE's detection timers, for every peer of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Detection {
    /// `disconnected` after this long without traffic.
    pub disconnected: Duration,
    /// `failed` this long after `disconnected`.
    pub failed: Duration,
    pub keepalive: Duration,
}

impl Detection {
    /// What browsers and the library use.
    pub(crate) const DEFAULT: Detection = Detection {
        disconnected: Duration::from_secs(5),
        failed: Duration::from_secs(25),
        keepalive: Duration::from_secs(2),
    };
    /// Disconnected within half a second of silence.
    pub(crate) const FAST: Detection = Detection {
        disconnected: Duration::from_millis(400),
        failed: Duration::from_secs(1),
        keepalive: Duration::from_millis(100),
    };
}

/// Who restarts ICE after a peer moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RestartBy {
    /// The peer that moved (it knows first).
    #[default]
    Mover,
    /// Its partner in each call (told by the application).
    Remote,
}

/// Something the runner does at `at` into the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub at: Duration,
    pub(crate) verb: Verb,
    /// Where it was written, such as `calls[0]` or `events[2]`.
    pub origin: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MetricThresholds {
    pub metric: Metric,
    /// As written, and parsed.
    pub(crate) expressions: Vec<(String, Threshold)>,
    /// Added by callprobe, not the file (see [`validate::DEFAULT_THRESHOLDS`]).
    pub default: bool,
}

/// Why a scenario cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<Problem> },
}

impl Scenario {
    /// Reads and validates a scenario file (`.toml`, or `.json`).
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::parse(&Source::new(path, text))
    }

    /// Validates a scenario from text already read.
    pub fn parse(source: &Source) -> Result<Scenario, ScenarioError> {
        validate::validate(source, false).map_err(|problems| ScenarioError::Invalid { problems })
    }

    /// Validates the file of a recorded run, to judge it again: the same
    /// checks, but credentials named by environment variables need not be
    /// set here (nothing connects).
    pub(crate) fn parse_recorded(source: &Source) -> Result<Scenario, ScenarioError> {
        validate::validate(source, true).map_err(|problems| ScenarioError::Invalid { problems })
    }

    /// Reads a thresholds file: a `thresholds` table, as in a scenario.
    pub(crate) fn load_thresholds(path: &Path) -> Result<Vec<MetricThresholds>, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        validate::validate_thresholds(&Source::new(path, text))
            .map_err(|problems| ScenarioError::Invalid { problems })
    }

    /// The scenario judged by `overrides` instead, for each metric they name
    /// (the thresholds of every other metric stay).
    pub(crate) fn with_thresholds(mut self, overrides: &[MetricThresholds]) -> Scenario {
        self.thresholds
            .retain(|t| !overrides.iter().any(|o| o.metric == t.metric));
        self.thresholds.extend(overrides.iter().cloned());
        self
    }

    /// Calls the scenario makes (at the start or later), for progress.
    pub(crate) fn call_count(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a.verb, Verb::Call { .. }))
            .count()
    }
}

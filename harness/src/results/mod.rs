//! What a run found: the model every report reads (DESIGN §1, "Collector").
//! Plain data, serialized as the JSON report; reports know nothing else.
//!
//! Times are milliseconds. `at_ms` values are on the scenario's clock: 0 is
//! the moment the timeline started (every peer up); peer start-up comes
//! before it, so those are negative.

mod calls;
mod collect;
mod data;
mod faults;
mod growth;
mod load;
mod merge;
mod outage;
mod rooms;
mod samples;
mod span;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

pub use collect::{collect, judge_record};
pub use data::DataResult;
pub(crate) use faults::{FaultResult, LinkSnapshot, PathRecord};
pub(crate) use growth::Growth;
pub(crate) use load::{HarnessLoad, LoadObserved};
pub use merge::merge;
pub(crate) use span::{AudioSpan, VideoSpan};

use crate::metrics::Per;
use crate::net::FlowLosses;
use crate::peer::{CallId, CandidatePair};
use crate::timeline::SetupTimeline;
use crate::verify::audio::AudioVerdict;
use crate::verify::video::VideoVerdict;

/// Every scenario of one `callprobe run`.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub callprobe_version: &'static str,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    pub scenarios: Vec<ScenarioResult>,
}

impl RunReport {
    /// The process exit status the results call for (see the CLI).
    pub fn passed(&self) -> bool {
        self.scenarios
            .iter()
            .all(|s| matches!(s.status, Status::Passed | Status::Skipped))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Ran to the end; every threshold passed.
    Passed,
    /// Ran; a threshold failed.
    Failed,
    /// Could not run (the server did not start, a peer did not come up).
    Error,
    /// Not run, on purpose (an external server that was not given).
    Skipped,
    /// Stopped by Ctrl-C; the results cover what ran.
    Interrupted,
    /// Ran, but the harness itself was overloaded (event-loop lag, frames
    /// sent late): the figures measure the harness, not the system under
    /// test, so thresholds are not judged.
    Invalid,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Passed => "passed",
            Status::Failed => "FAILED",
            Status::Error => "ERROR",
            Status::Skipped => "skipped",
            Status::Interrupted => "interrupted",
            Status::Invalid => "INVALID (harness overloaded)",
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub file: String,
    pub description: String,
    pub seed: u64,
    /// The signaling server's URL (in-process or external).
    pub server: String,
    pub status: Status,
    /// Why it was skipped, errored or interrupted.
    pub reason: Option<String>,
    pub planned_ms: f64,
    /// How long the timeline actually ran.
    pub ran_ms: f64,
    pub media: MediaInfo,
    pub peers: Vec<PeerResult>,
    pub calls: Vec<CallResult>,
    /// Each fault of the timeline and what it did.
    pub(crate) faults: Vec<FaultResult>,
    /// The harness's own load, and whether it was overloaded.
    pub harness: Option<HarnessLoad>,
    /// The timeline as it was carried out.
    pub actions: Vec<ActionRecord>,
    pub metrics: Vec<MetricSummary>,
    pub thresholds: Vec<ThresholdResult>,
    /// Every event every peer reported, in order (the raw timelines).
    pub events: Vec<EventRecord>,
    /// A run split across machines: each shard's part (one, in a shard's
    /// own report; all of them once merged).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardRun>,
}

/// One shard of a scenario split across machines, as it ran.
#[derive(Clone, Debug, Serialize)]
pub struct ShardRun {
    /// `2/4`: the second of four.
    pub shard: String,
    pub peers: usize,
    pub calls: usize,
    /// Its timeline's start after `--start-at` (late: positive), ms.
    pub start_offset_ms: Option<f64>,
    /// Its own verdict, and why.
    pub status: Status,
    pub reason: Option<String>,
    /// Its machine's load.
    pub harness: Option<HarnessLoad>,
}

impl ScenarioResult {
    /// A scenario that never ran (skipped, or an error before the start).
    pub(crate) fn not_run(
        scenario: &crate::scenario::Scenario,
        status: Status,
        reason: String,
    ) -> ScenarioResult {
        ScenarioResult {
            name: scenario.name.clone(),
            file: scenario.file.display().to_string(),
            description: scenario.description.clone(),
            seed: scenario.seed,
            server: String::new(),
            status,
            reason: Some(reason),
            planned_ms: scenario.duration.as_secs_f64() * 1e3,
            ran_ms: 0.0,
            media: MediaInfo::of(scenario),
            peers: Vec::new(),
            calls: Vec::new(),
            faults: Vec::new(),
            harness: None,
            actions: Vec::new(),
            metrics: Vec::new(),
            thresholds: Vec::new(),
            events: Vec::new(),
            shards: Vec::new(),
        }
    }

    pub fn metric(&self, name: &str) -> Option<&MetricSummary> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct MediaInfo {
    pub shared: bool,
    pub width: usize,
    pub height: usize,
    pub fps: u32,
    pub video_bitrate_bps: u32,
    pub audio_bitrate_bps: u32,
}

impl MediaInfo {
    pub fn of(scenario: &crate::scenario::Scenario) -> Self {
        let media = &scenario.media;
        MediaInfo {
            shared: media.shared,
            width: media.video.width,
            height: media.video.height,
            fps: media.video.fps,
            video_bitrate_bps: media.video.bitrate_bps,
            audio_bitrate_bps: media.audio_bitrate_bps,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PeerResult {
    pub index: u16,
    pub name: String,
    /// The id the server gave it; `None` if it never started.
    pub id: Option<String>,
    pub errors: Vec<String>,
    /// What its emulated network did (`None` on a report without one).
    pub network: Option<PeerNetwork>,
}

/// Datagrams a peer's link dropped, and the replayable loss pattern.
#[derive(Clone, Debug, Serialize)]
pub struct PeerNetwork {
    pub impairment_drops_in: u64,
    pub impairment_drops_out: u64,
    /// Dropped because the peer had crashed or vanished, or its address was
    /// gone.
    pub silenced: u64,
    /// Dropped on arrival because the peer's receive queue was full: it
    /// fell behind reading (a loaded harness, not the network).
    pub receive_overflows: u64,
    /// Per direction ("in", "out") and RTP payload type: original media
    /// datagrams seen by an impairment and the indices of those it lost.
    pub media_losses: BTreeMap<String, BTreeMap<u8, FlowLosses>>,
}

/// One call, from its call command to its end.
#[derive(Clone, Debug, Serialize)]
pub struct CallResult {
    /// The id the runner gave the call when it commanded it.
    pub call: Option<CallId>,
    /// A call between two peers, or a room's publish or subscription.
    #[serde(skip_serializing_if = "CallKind::is_call")]
    pub kind: CallKind,
    pub caller: String,
    pub callee: String,
    pub started_at_ms: f64,
    pub ended_at_ms: Option<f64>,
    /// How it ended, as the caller saw it.
    pub end: String,
    pub setup: SetupTimeline,
    /// What the call's media went over, as each side last saw it.
    pub pairs: SelectedPairs,
    /// Both sides verified media from the other.
    pub verified: bool,
    /// The scenario expected this call to fail (`expect = "fail"`).
    pub expect_failure: bool,
    /// Call command to the caller's knowing it failed, when it did.
    pub failed_after_ms: Option<f64>,
    /// Why the call failed, in words, when it ended in a way the scenario
    /// did not command (a typed failure at either side, an end nobody
    /// asked for, or no report at all).
    pub failure: Option<String>,
    /// That failure is one load cannot cause (a DTLS failure, a refused
    /// offer): it fails the run even when the harness was overloaded.
    pub failure_load_independent: bool,
    /// The two directions: what the caller received, then the callee.
    pub tracks: Vec<TrackResult>,
}

/// What a call is: between two peers, or with a media server's room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// Caller and callee, media both ways.
    #[default]
    Call,
    /// The caller publishes to its room (the callee is the room): its
    /// media is judged by its subscribers' streams.
    Publish,
    /// The caller receives the callee's media through the room: one
    /// track, the stream.
    Subscription,
}

impl CallKind {
    fn is_call(&self) -> bool {
        *self == CallKind::Call
    }
}

/// The candidate pair each side of a call last selected (an ICE restart
/// may select another); `None` where ICE never connected.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SelectedPairs {
    pub caller: Option<CandidatePair>,
    pub callee: Option<CandidatePair>,
}

impl SelectedPairs {
    /// Either side's media went through a TURN server.
    pub fn relayed(&self) -> bool {
        [&self.caller, &self.callee]
            .into_iter()
            .flatten()
            .any(CandidatePair::is_relayed)
    }
}

/// One direction of a call.
#[derive(Clone, Debug, Serialize)]
pub struct TrackResult {
    pub receiver: String,
    pub sender: String,
    /// The video codec it came in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec: Option<crate::media::codec::VideoCodec>,
    /// Video frames the sender sent.
    pub frames_sent: u32,
    /// Frames sent within the call's span that never verified. (Frames
    /// still in flight when the call ended are not counted: see
    /// [`span::in_flight_allowance_ms`].)
    pub frames_lost: u64,
    #[serde(serialize_with = "lean_video")]
    pub video: Option<VideoVerdict>,
    #[serde(serialize_with = "lean_audio")]
    pub audio: Option<AudioVerdict>,
    /// Each kind judged over the call's span (`None`: the call was too
    /// short to judge, or nothing was due).
    pub(crate) video_span: Option<VideoSpan>,
    pub(crate) audio_span: Option<AudioSpan>,
    /// The audio carried what it should (the tone; shared: the clip only).
    pub tone_match: bool,
    /// Verified frames and their mean latency, second by second of the
    /// timeline.
    pub series: Vec<SeriesPoint>,
    /// Its data channel's messages (`None`: the scenario asked for none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<DataResult>,
}

fn lean_video<S: serde::Serializer>(v: &Option<VideoVerdict>, s: S) -> Result<S::Ok, S::Error> {
    v.as_ref().map(VideoVerdict::lean).serialize(s)
}

fn lean_audio<S: serde::Serializer>(a: &Option<AudioVerdict>, s: S) -> Result<S::Ok, S::Error> {
    a.as_ref().map(AudioVerdict::lean).serialize(s)
}

/// One second of a received video track, on the report's clock.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// The second's start (0 is the timeline's start).
    pub t_s: f64,
    /// Verified frames per second over the part of the second the run
    /// covered.
    pub fps: f64,
    pub latency_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ActionRecord {
    /// When the runner carried it out.
    pub at_ms: f64,
    /// When the scenario asked for it.
    pub planned_ms: f64,
    /// `call`, `hangup`, `leave`, …
    pub verb: String,
    /// Who acts.
    pub from: String,
    /// The other peer, where there is one.
    pub to: Option<String>,
    /// Where the scenario file asked for it.
    pub origin: String,
}

/// A metric's samples, summarized (DESIGN §5: count, min, p50, p90, p95,
/// p99, max; and the mean).
#[derive(Clone, Debug, Serialize)]
pub struct MetricSummary {
    pub name: String,
    pub per: Per,
    pub count: usize,
    pub min: Option<f64>,
    pub avg: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    /// The samples, for plots (not for per-frame metrics, which are many).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ThresholdResult {
    pub metric: String,
    pub expression: String,
    pub passed: bool,
    /// The statistic as measured; `None` when the metric had no samples.
    pub measured: Option<f64>,
    /// Added by callprobe, not written in the file.
    pub default: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct EventRecord {
    pub at_ms: f64,
    pub peer: String,
    /// The call it is about, if it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<CallId>,
    /// The event, such as `IceConnected`.
    pub event: String,
    /// The other peer's name, where the event is about one.
    pub remote: Option<String>,
    pub detail: Option<String>,
}

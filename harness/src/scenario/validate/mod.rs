//! From a file as written to a [`Scenario`] the runner can trust: names
//! resolve, topologies are possible, the timeline fits the duration and
//! never hangs up a call that is not up, thresholds parse. Every problem is
//! collected (not only the first), each pointing at its field.
//!
//! | module | what it checks |
//! |---|---|
//! | here | the whole file, the server, detection, harness bounds, thresholds |
//! | `peers` | media, video and codecs, peers and groups |
//! | `ice` | ICE servers (URLs, credentials, a spawned coturn) and policy |
//! | `calls` | calls, topologies, spawn rates, redials |
//! | `timeline` | the timeline played on paper; faults a browser cannot take |
//! | `super::verb` | each event's verb |

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

mod calls;
mod ice;
mod peers;
mod rooms;
mod timeline;

use super::file::{
    CallSpec, CodecSpec, DetectionPreset, DetectionSpec, HarnessSpec, MediaMode, PeerSpec,
    ScenarioFile, Topology, VideoSpec,
};
use super::source::{FieldPath, Problem, Source};
use super::verb::OwnedServer;
use super::{
    Action, Detection, IcePlan, MediaPlan, MetricThresholds, PeerKind, PeerPlan, Scenario,
    ServerPlan, Verb,
};
use crate::load::LoadBounds;
use crate::media::codec::{VideoCodec, VideoSettings};
use crate::media::pattern::Pattern;
use crate::metrics::Metric;
use crate::peer::{DataSettings, Misbehaviour};
use crate::threshold::Threshold;

/// Checks added to every scenario with calls, unless the file sets its own
/// for the metric: a call that failed, a frame from the wrong sender or
/// with a damaged stamp, or media that did not cover the call's span fails
/// the run even when nobody thought to say so. Coverage is judged outside
/// declared fault windows (their own metrics judge those). On clean
/// loopback calls it is 1.000 on every track; 0.9 lets a 4 s call freeze
/// for 400 ms in all and fails media that stops, or freezes for a tenth of
/// the call.
pub(crate) const DEFAULT_THRESHOLDS: &[(Metric, &str)] = &[
    (Metric::CallFailed, "max == 0"),
    (Metric::VideoFramesWrongSender, "max == 0"),
    (Metric::VideoFramesCorrupt, "max == 0"),
    (Metric::VideoCoverage, "min >= 0.9"),
    (Metric::AudioCoverage, "min >= 0.9"),
];

/// Added with a data channel (`[media] data`), as media's are: every
/// message intact and from the right sender, and the channel carrying what
/// the span asked of it; a reliable channel loses nothing, an ordered one
/// reorders nothing.
const DATA_DEFAULTS: &[(Metric, &str)] = &[
    (Metric::DataMessagesCorrupt, "max == 0"),
    (Metric::DataMessagesWrongSender, "max == 0"),
    (Metric::DataDeliveredRatio, "min >= 0.9"),
    (Metric::DataMessagesLost, "max == 0"),
    (Metric::DataMessagesReordered, "max == 0"),
];

fn data_defaults(data: &DataSettings) -> &'static [(Metric, &'static str)] {
    match (data.reliable(), data.ordered) {
        (true, true) => DATA_DEFAULTS,
        (true, false) => &DATA_DEFAULTS[..4],
        // An unreliable channel may lose; an ordered one still never reorders
        // what it delivers, but loss is its to count, not to fail.
        (false, _) => &DATA_DEFAULTS[..3],
    }
}

const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// ICE and DTLS take tens of ms on loopback and seconds on bad networks.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Stamps carry the sender as 16 bits, and the shared clip uses the last value.
const MAX_PEERS: usize = u16::MAX as usize - 1;

/// `recorded`: the file of a run being judged again, which connects to
/// nothing, so credentials named by environment variables are not needed.
pub(super) fn validate(source: &Source, recorded: bool) -> Result<Scenario, Vec<Problem>> {
    let file: ScenarioFile = source.deserialize().map_err(|p| vec![p])?;
    let mut check = Checker {
        source,
        problems: Vec::new(),
        moves: 0,
        recorded,
    };
    let root = FieldPath::default();
    if file.name.trim().is_empty() {
        check.problem(root.clone().key("name"), "the name is empty");
    }
    if file.duration.is_zero() {
        check.problem(
            root.clone().key("duration"),
            "the duration must be more than 0",
        );
    }
    let server = check.server(&file);
    let detection = check.detection(&file.detection);
    let load_bounds = check.load_bounds(&file.harness);
    let media = check.media(&file);
    let ice = check.ice(&file.ice, &IcePlan::default(), root.clone().key("ice"));
    let mut peers = check.peers(&file.peers, &media, &ice);
    let names = Names::of(&file.peers, &peers);
    let rooms::Rooms {
        sfu,
        mut actions,
        room_of,
    } = check.rooms(&file, &names, &peers);
    for (i, call) in file.calls.iter().enumerate() {
        actions.extend(check.calls(call, i, &names, file.duration));
    }
    for (i, event) in file.events.iter().enumerate() {
        actions.extend(check.event(event, i, &names, file.duration));
    }
    drop(names);
    // Calls (and each room's publishes, then subscriptions) at the same
    // moment as events go first, each in file order.
    actions.sort_by_key(|(action, _)| action.at);
    let actions = check.room_timeline(actions, sfu.as_ref(), &peers, &room_of);
    for (peer, room) in peers.iter_mut().zip(room_of) {
        peer.room = room;
    }
    check.browser_faults(&actions, &peers);
    check.data_faults(&actions, media.data.is_some());
    check.timeline(&actions, &peers);
    let thresholds = check.thresholds(&file.thresholds, !actions.is_empty(), media.data.as_ref());
    if !check.problems.is_empty() {
        return Err(check.problems);
    }
    Ok(Scenario {
        name: file.name,
        description: file.description,
        file: source.path.clone(),
        text: source.text.clone(),
        duration: file.duration,
        seed: file.seed,
        server,
        media,
        answer_timeout: file.timeouts.answer.unwrap_or(DEFAULT_ANSWER_TIMEOUT),
        connect_timeout: file.timeouts.connect.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        detection,
        load_bounds,
        peers,
        sfu,
        actions: actions.into_iter().map(|(action, _)| action).collect(),
        thresholds,
    })
}

/// A thresholds file (`callprobe judge --thresholds`): a `thresholds`
/// table written as in a scenario, and nothing else.
pub(super) fn validate_thresholds(source: &Source) -> Result<Vec<MetricThresholds>, Vec<Problem>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ThresholdsFile {
        thresholds: BTreeMap<String, Vec<String>>,
    }
    let file: ThresholdsFile = source.deserialize().map_err(|p| vec![p])?;
    let mut check = Checker {
        source,
        problems: Vec::new(),
        moves: 0,
        recorded: true,
    };
    let thresholds = check.thresholds(&file.thresholds, false, None);
    if check.problems.is_empty() {
        Ok(thresholds)
    } else {
        Err(check.problems)
    }
}

pub(super) struct Checker<'a> {
    source: &'a Source,
    pub(super) problems: Vec<Problem>,
    /// Moves without a `to` so far (each gets the next address).
    pub(super) moves: u32,
    /// A recorded run's file, judged again: its secrets are not read.
    pub(super) recorded: bool,
}

/// `"500kbps"`, `"2mbps"`, `"64000bps"` → bit/s.
pub(super) fn parse_rate(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let scale = match unit.trim() {
        "bps" => 1.0,
        "kbps" => 1e3,
        "mbps" => 1e6,
        "gbps" => 1e9,
        _ => return None,
    };
    let value = number.trim().parse::<f64>().ok()? * scale;
    (value >= 1000.0 && value.is_finite()).then_some(value as u64)
}

/// `"5%"` → 0.05; `None` for anything else or outside 0% to 100%.
pub(super) fn parse_share(text: &str) -> Option<f64> {
    text.strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|pct| (0.0..=100.0).contains(pct))
        .map(|pct| pct / 100.0)
}

/// What a name in `from`, `to`, `hub` or `among` can mean.
pub(super) enum Named<'a> {
    Peer(usize),
    Group(&'a [usize]),
}

pub(super) struct Names<'a> {
    pub(super) peers: HashMap<&'a str, usize>,
    groups: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Names<'a> {
    fn of(specs: &'a [PeerSpec], peers: &'a [PeerPlan]) -> Self {
        let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
        for (index, peer) in peers.iter().enumerate() {
            groups.entry(peer.group.as_str()).or_default().push(index);
        }
        groups.retain(|name, _| specs.iter().any(|s| s.name == *name && s.count.is_some()));
        let peers = peers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect();
        Names { peers, groups }
    }

    fn get(&self, name: &str) -> Option<Named<'_>> {
        if let Some(&index) = self.peers.get(name) {
            return Some(Named::Peer(index));
        }
        self.groups.get(name).map(|g| Named::Group(g))
    }

    fn known(&self) -> String {
        let mut names: Vec<&str> = self
            .peers
            .keys()
            .chain(self.groups.keys())
            .copied()
            .collect();
        names.sort_unstable();
        if names.len() > 12 {
            let more = names.len() - 12;
            names.truncate(12);
            format!("{}, and {more} more", names.join(", "))
        } else {
            names.join(", ")
        }
    }
}

impl Checker<'_> {
    pub(super) fn problem(&mut self, field: FieldPath, message: impl AsRef<str>) {
        self.problems
            .push(self.source.problem(field, message.as_ref()));
    }

    fn server(&mut self, file: &ScenarioFile) -> ServerPlan {
        let at = FieldPath::default().key("server");
        let spec = &file.server;
        if spec.url.is_some() && spec.url_env.is_some() {
            self.problem(
                at.clone().key("url_env"),
                "give `url` or `url_env`, not both",
            );
        }
        if spec.tls && (spec.url.is_some() || spec.url_env.is_some()) {
            self.problem(
                at.clone().key("tls"),
                "`tls` is for the in-process server; an external server's URL says ws:// or wss://",
            );
        }
        if let Some(url) = &spec.url {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                self.problem(
                    at.clone().key("url"),
                    format!("`{url}` is not a WebSocket URL (ws://… or wss://…)"),
                );
            }
            return ServerPlan::External { url: url.clone() };
        }
        if let Some(variable) = &spec.url_env {
            return match std::env::var(variable) {
                Ok(url) if !url.is_empty() => ServerPlan::External { url },
                _ => ServerPlan::FromEnv {
                    variable: variable.clone(),
                },
            };
        }
        if spec.idle_timeout.is_some() || spec.ping_interval.is_some() {
            if spec.url.is_some() || spec.url_env.is_some() {
                self.problem(
                    at.clone().key("idle_timeout"),
                    "`idle_timeout` and `ping_interval` are for the in-process server",
                );
            }
            let idle = spec.idle_timeout.unwrap_or(Duration::from_secs(30));
            let ping = spec
                .ping_interval
                .unwrap_or(Duration::from_secs(10).min(idle / 2));
            if ping.is_zero() || ping >= idle {
                self.problem(
                    at.clone().key("ping_interval"),
                    format!(
                        "the server must ping more often than its idle timeout ({} >= {})",
                        humantime::format_duration(ping),
                        humantime::format_duration(idle)
                    ),
                );
            }
        }
        ServerPlan::InProcess {
            tls: spec.tls,
            idle_timeout: spec.idle_timeout,
            ping_interval: spec.ping_interval.or_else(|| {
                // A lowered idle timeout needs pings within it.
                spec.idle_timeout
                    .map(|idle| Duration::from_secs(10).min(idle / 2))
            }),
        }
    }

    fn detection(&mut self, spec: &DetectionSpec) -> Detection {
        let at = FieldPath::default().key("detection");
        let preset = match spec.preset {
            DetectionPreset::Default => Detection::DEFAULT,
            DetectionPreset::Fast => Detection::FAST,
        };
        let detection = Detection {
            disconnected: spec.disconnected.unwrap_or(preset.disconnected),
            failed: spec.failed.unwrap_or(preset.failed),
            keepalive: spec.keepalive.unwrap_or(preset.keepalive),
        };
        for (field, value) in [
            ("disconnected", detection.disconnected),
            ("failed", detection.failed),
            ("keepalive", detection.keepalive),
        ] {
            if value.is_zero() {
                self.problem(at.clone().key(field), "must be more than 0");
            }
        }
        if detection.keepalive >= detection.disconnected {
            self.problem(
                at.key("keepalive"),
                "keepalives must come more often than `disconnected` fires, \
                 or a quiet but healthy call would look disconnected",
            );
        }
        detection
    }

    fn load_bounds(&mut self, spec: &HarnessSpec) -> LoadBounds {
        let at = FieldPath::default().key("harness");
        let defaults = LoadBounds::default();
        let max_lag = spec.max_lag.unwrap_or(defaults.max_lag);
        if max_lag.is_zero() {
            self.problem(at.clone().key("max_lag"), "must be more than 0");
        }
        let max_late_frames = match spec.max_late_frames.as_deref() {
            None => defaults.max_late_frames,
            Some(text) => parse_share(text).unwrap_or_else(|| {
                self.problem(
                    at.key("max_late_frames"),
                    format!("`{text}` is not a share from 0% to 100% (write it like \"1%\")"),
                );
                defaults.max_late_frames
            }),
        };
        LoadBounds {
            max_lag,
            max_late_frames,
        }
    }

    /// One peer by name (a group is refused here).
    pub(super) fn one_peer(
        &mut self,
        names: &Names<'_>,
        name: &str,
        at: FieldPath,
    ) -> Option<usize> {
        match names.get(name) {
            Some(Named::Peer(index)) => Some(index),
            Some(Named::Group(members)) => {
                self.problem(
                    at,
                    format!(
                        "`{name}` is a group of {}; name one of its peers, such as `{name}-1`, or use a topology",
                        members.len()
                    ),
                );
                None
            }
            None => {
                self.problem(
                    at,
                    format!("unknown peer `{name}` (known: {})", names.known()),
                );
                None
            }
        }
    }

    pub(super) fn when(
        &mut self,
        at: Option<Duration>,
        duration: Duration,
        field: FieldPath,
    ) -> Duration {
        let at = at.unwrap_or_default();
        if at >= duration {
            self.problem(
                field,
                format!(
                    "at {} is not before the end of the run ({})",
                    humantime::format_duration(at),
                    humantime::format_duration(duration)
                ),
            );
        }
        at
    }

    fn thresholds(
        &mut self,
        written: &BTreeMap<String, Vec<String>>,
        with_calls: bool,
        data: Option<&DataSettings>,
    ) -> Vec<MetricThresholds> {
        let mut thresholds = Vec::new();
        for (name, expressions) in written {
            let at = FieldPath::default().key("thresholds").key(name);
            let metric = match name.parse::<Metric>() {
                Ok(metric) => metric,
                Err(e) => {
                    let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                    self.problem(at, format!("{e}; known metrics: {}", known.join(", ")));
                    continue;
                }
            };
            if expressions.is_empty() {
                self.problem(at.clone(), "no expressions; write like [\"p95 < 100\"]");
            }
            let mut parsed = Vec::new();
            for (j, text) in expressions.iter().enumerate() {
                match text.parse::<Threshold>() {
                    Ok(threshold) => parsed.push((text.clone(), threshold)),
                    Err(e) => self.problem(at.clone().index(j), e.to_string()),
                }
            }
            thresholds.push(MetricThresholds {
                metric,
                expressions: parsed,
                default: false,
            });
        }
        if with_calls {
            let data_defaults = data.map_or(&[][..], |data| data_defaults(data));
            for &(metric, text) in DEFAULT_THRESHOLDS.iter().chain(data_defaults) {
                if !thresholds.iter().any(|t| t.metric == metric) {
                    let threshold = text.parse().expect("default thresholds parse");
                    thresholds.push(MetricThresholds {
                        metric,
                        expressions: vec![(text.to_owned(), threshold)],
                        default: true,
                    });
                }
            }
        }
        thresholds
    }
}

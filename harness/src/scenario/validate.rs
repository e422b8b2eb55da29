//! From a file as written to a [`Scenario`] the runner can trust: names
//! resolve, topologies are possible, the timeline fits the duration and
//! never hangs up a call that is not up, thresholds parse. Every problem is
//! collected (not only the first), each pointing at its field.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use super::file::{
    CallSpec, CodecSpec, DetectionPreset, DetectionSpec, EventSpec, Expect, HarnessSpec,
    ImpairSpec, MediaMode, PeerSpec, ScenarioFile, Topology, VideoSpec,
};
use super::source::{FieldPath, Problem, Source};
use super::{
    Action, Detection, MediaPlan, MetricThresholds, PeerKind, PeerPlan, Scenario, ServerPlan, Verb,
};
use crate::load::LoadBounds;
use crate::media::codec::{VideoCodec, VideoSettings};
use crate::media::pattern::Pattern;
use crate::metrics::Metric;
use crate::net::{Impairment, Loss};
use crate::peer::{MediaFault, Misbehaviour};
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

const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// ICE and DTLS take tens of ms on loopback and seconds on bad networks.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Stamps carry the sender as 16 bits, and the shared clip uses the last value.
const MAX_PEERS: usize = u16::MAX as usize - 1;

pub(super) fn validate(source: &Source) -> Result<Scenario, Vec<Problem>> {
    let file: ScenarioFile = source.deserialize().map_err(|p| vec![p])?;
    let mut check = Checker {
        source,
        problems: Vec::new(),
        moves: 0,
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
    let peers = check.peers(&file.peers, &media);
    let names = Names::of(&file.peers, &peers);
    let mut actions = Vec::new();
    for (i, call) in file.calls.iter().enumerate() {
        actions.extend(check.calls(call, i, &names, file.duration));
    }
    for (i, event) in file.events.iter().enumerate() {
        actions.extend(check.event(event, i, &names, file.duration));
    }
    check.browser_faults(&actions, &peers);
    // Calls at the same moment as events go first, each in file order.
    actions.sort_by_key(|(action, _)| action.at);
    check.timeline(&actions, &peers);
    let thresholds = check.thresholds(&file.thresholds, !actions.is_empty());
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
    };
    let thresholds = check.thresholds(&file.thresholds, false);
    if check.problems.is_empty() {
        Ok(thresholds)
    } else {
        Err(check.problems)
    }
}

struct Checker<'a> {
    source: &'a Source,
    problems: Vec<Problem>,
    /// Moves without a `to` so far (each gets the next address).
    moves: u32,
}

/// `"500kbps"`, `"2mbps"`, `"64000bps"` → bit/s.
fn parse_rate(text: &str) -> Option<u64> {
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
fn parse_share(text: &str) -> Option<f64> {
    text.strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|pct| (0.0..=100.0).contains(pct))
        .map(|pct| pct / 100.0)
}

/// What a name in `from`, `to`, `hub` or `among` can mean.
enum Named<'a> {
    Peer(usize),
    Group(&'a [usize]),
}

struct Names<'a> {
    peers: HashMap<&'a str, usize>,
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
    fn problem(&mut self, field: FieldPath, message: impl AsRef<str>) {
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

    fn media(&mut self, file: &ScenarioFile) -> MediaPlan {
        let at = FieldPath::default().key("media");
        let video = self.video(
            &VideoSettings::default(),
            &file.media.video,
            at.clone().key("video"),
        );
        let shared = file.media.mode == MediaMode::Shared;
        if shared && video.codecs != [VideoCodec::H264] {
            self.problem(
                at.clone().key("video").key("codec"),
                "shared media is one H.264 clip whose stamps live in an SEI: its codec is \"h264\"",
            );
        }
        let audio_bitrate_bps = file.media.audio.bitrate_bps.unwrap_or(32_000);
        if !(6_000..=510_000).contains(&audio_bitrate_bps) {
            self.problem(
                at.key("audio").key("bitrate_bps"),
                format!("Opus takes 6000 to 510000 bit/s, not {audio_bitrate_bps}"),
            );
        }
        MediaPlan {
            shared,
            video,
            audio_bitrate_bps,
        }
    }

    fn video(&mut self, base: &VideoSettings, spec: &VideoSpec, at: FieldPath) -> VideoSettings {
        let video = VideoSettings {
            width: spec.width.unwrap_or(base.width),
            height: spec.height.unwrap_or(base.height),
            fps: spec.fps.unwrap_or(base.fps),
            bitrate_bps: spec.bitrate_bps.unwrap_or(base.bitrate_bps),
            keyframe_interval: spec.keyframe_interval.unwrap_or(base.keyframe_interval),
            codecs: match &spec.codec {
                Some(codec) => self.codecs(codec, at.clone().key("codec")),
                None => base.codecs.clone(),
            },
        };
        let size_field = if spec.width.is_some() {
            "width"
        } else {
            "height"
        };
        if video.width > 3840 || video.height > 2160 {
            self.problem(at.clone().key(size_field), "at most 3840x2160");
        } else if let Err(e) = Pattern::new(0, video.width, video.height) {
            self.problem(at.clone().key(size_field), e.to_string());
        }
        if !(1..=120).contains(&video.fps) {
            self.problem(at.clone().key("fps"), "fps must be 1 to 120");
        }
        if video.bitrate_bps < 10_000 {
            self.problem(at.key("bitrate_bps"), "at least 10000 bit/s");
        }
        video
    }

    /// A codec, or a preference list, by name: each known, usable in this
    /// build, and named once.
    fn codecs(&mut self, spec: &CodecSpec, at: FieldPath) -> Vec<VideoCodec> {
        let mut codecs = Vec::new();
        let names = spec.names();
        if names.is_empty() {
            self.problem(at.clone(), "name at least one codec");
        }
        for (j, name) in names.into_iter().enumerate() {
            let field = match spec {
                CodecSpec::One(_) => at.clone(),
                CodecSpec::Preference(_) => at.clone().index(j),
            };
            let Some(codec) = VideoCodec::from_name(name) else {
                let known: Vec<&str> = VideoCodec::ALL.iter().map(|c| c.name()).collect();
                self.problem(
                    field,
                    format!("unknown codec `{name}`; known: {}", known.join(", ")),
                );
                continue;
            };
            if let Some(why) = codec.unavailable() {
                self.problem(field, format!("{codec} {why}"));
            } else if codecs.contains(&codec) {
                self.problem(field, format!("{codec} is named twice"));
            } else {
                codecs.push(codec);
            }
        }
        if codecs.is_empty() {
            codecs.push(VideoCodec::H264); // the problems above say why
        }
        codecs
    }

    fn peers(&mut self, specs: &[PeerSpec], media: &MediaPlan) -> Vec<PeerPlan> {
        let mut peers = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, spec) in specs.iter().enumerate() {
            let at = FieldPath::default().key("peers").index(i);
            let name = spec.name.trim();
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                self.problem(
                    at.clone().key("name"),
                    format!("`{}`: a name is one word, not empty", spec.name),
                );
                continue;
            }
            if spec.kind == PeerKind::Browser
                && let Some(video) = &spec.video
                && video.codec.is_some()
            {
                self.problem(
                    at.clone().key("video").key("codec"),
                    "a browser offers its own codecs, in its own order: `codec` is for synthetic peers",
                );
            }
            let video = match &spec.video {
                Some(_) if media.shared => {
                    self.problem(
                        at.clone().key("video"),
                        "shared media sends one clip for everyone: per-peer video needs mode = \"live\"",
                    );
                    media.video.clone()
                }
                Some(video) => self.video(&media.video, video, at.clone().key("video")),
                None => media.video.clone(),
            };
            let names: Vec<String> = match spec.count {
                None => vec![name.to_owned()],
                Some(0) => {
                    self.problem(at.clone().key("count"), "a group needs at least one peer");
                    continue;
                }
                Some(count) => (1..=count).map(|n| format!("{name}-{n}")).collect(),
            };
            for member in names
                .iter()
                .chain(spec.count.map(|_| name.to_owned()).iter())
            {
                if let Some(first) = seen.insert(member.clone(), i) {
                    self.problem(
                        at.clone().key("name"),
                        format!("`{member}` is already a peer or group name (peers[{first}])"),
                    );
                }
            }
            if spec.kind == PeerKind::Browser && media.shared {
                self.problem(
                    at.clone().key("kind"),
                    "a browser sends its camera and reads frames on screen: it needs media mode = \"live\"",
                );
            }
            let mut misbehave = Misbehaviour::default();
            for (j, name) in spec.misbehave.iter().enumerate() {
                if !misbehave.add(name) {
                    self.problem(
                        at.clone().key("misbehave").index(j),
                        format!(
                            "unknown misbehaviour `{name}`; known: {}",
                            Misbehaviour::NAMES.join(", ")
                        ),
                    );
                }
            }
            if misbehave != Misbehaviour::default() && spec.kind == PeerKind::Browser {
                self.problem(
                    at.clone().key("misbehave"),
                    "a browser follows its own page's protocol: `misbehave` is for synthetic peers",
                );
            }
            peers.extend(names.into_iter().map(|name| PeerPlan {
                name,
                group: spec.name.trim().to_owned(),
                kind: spec.kind,
                video: video.clone(),
                misbehave,
            }));
        }
        if peers.len() > MAX_PEERS {
            self.problem(
                FieldPath::default().key("peers"),
                format!("{} peers; at most {MAX_PEERS}", peers.len()),
            );
        }
        peers
    }

    /// One peer by name (a group is refused here).
    fn one_peer(&mut self, names: &Names<'_>, name: &str, at: FieldPath) -> Option<usize> {
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

    fn when(&mut self, at: Option<Duration>, duration: Duration, field: FieldPath) -> Duration {
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

    fn calls(
        &mut self,
        spec: &CallSpec,
        i: usize,
        names: &Names<'_>,
        duration: Duration,
    ) -> Vec<(Action, FieldPath)> {
        let at_field = FieldPath::default().key("calls").index(i);
        let at = self.when(spec.at, duration, at_field.clone().key("at"));
        let origin = format!("calls[{i}]");
        let pairs = match (&spec.from, &spec.to, spec.topology) {
            (Some(from), Some(to), None) => {
                if spec.among.is_some() || spec.hub.is_some() {
                    self.problem(
                        at_field.clone(),
                        "`among` and `hub` go with `topology`, not with `from`/`to`",
                    );
                }
                let from = self.one_peer(names, from, at_field.clone().key("from"));
                let to = self.one_peer(names, to, at_field.clone().key("to"));
                match (from, to) {
                    (Some(from), Some(to)) => vec![(from, to)],
                    _ => vec![],
                }
            }
            (None, None, Some(topology)) => self.topology(topology, spec, &at_field, names),
            (_, _, Some(_)) => {
                self.problem(
                    at_field.clone().key("topology"),
                    "give `topology` or `from` and `to`, not both",
                );
                vec![]
            }
            (None, _, None) => {
                self.problem(
                    at_field.clone().key("from"),
                    "a call needs `from` and `to`, or a `topology`",
                );
                vec![]
            }
            (Some(_), None, None) => {
                self.problem(at_field.clone().key("to"), "a call needs `to`");
                vec![]
            }
        };
        let spacing = self.spawn_spacing(spec, &at_field, at, pairs.len(), duration);
        let redials = spec
            .redial
            .as_ref()
            .and_then(|redial| self.redial(redial, &at_field.clone().key("redial"), duration));
        let call = |at: Duration, from: usize, to: usize, origin: &str| {
            let verb = Verb::Call {
                from,
                to,
                expect_failure: false,
            };
            let origin = origin.to_owned();
            (Action { at, verb, origin }, at_field.clone())
        };
        let mut actions = Vec::new();
        for (k, (from, to)) in pairs.into_iter().enumerate() {
            let first = at + spacing * k as u32;
            actions.push(call(first, from, to, &origin));
            let Some((every, pause)) = redials else {
                continue;
            };
            let redial_origin = format!("{origin}.redial");
            // Each new call keeps at least one `every` before the end.
            let mut hangup = first + every;
            while hangup + pause + every <= duration {
                actions.push((
                    Action {
                        at: hangup,
                        verb: Verb::Hangup { from, to },
                        origin: redial_origin.clone(),
                    },
                    at_field.clone(),
                ));
                actions.push(call(hangup + pause, from, to, &redial_origin));
                hangup += every;
            }
        }
        actions
    }

    /// A call's redial period and pause, checked.
    fn redial(
        &mut self,
        spec: &super::file::RedialSpec,
        field: &FieldPath,
        duration: Duration,
    ) -> Option<(Duration, Duration)> {
        let pause = spec.pause.unwrap_or(Duration::from_millis(500));
        let text = |d: Duration| humantime::format_duration(d).to_string();
        if spec.every <= pause {
            self.problem(
                field.clone().key("every"),
                format!(
                    "a call redialled every {} must last longer than the {} pause before it",
                    text(spec.every),
                    text(pause)
                ),
            );
            return None;
        }
        if spec.every * 2 + pause > duration {
            self.problem(
                field.clone().key("every"),
                format!(
                    "every {} never redials within {}: a redialled call needs one period \
                     before it and one after",
                    text(spec.every),
                    text(duration)
                ),
            );
            return None;
        }
        Some((spec.every, pause))
    }

    /// Time between one call of a group and the next: none without a
    /// `spawn_rate`. Every call must start before the scenario ends.
    fn spawn_spacing(
        &mut self,
        spec: &CallSpec,
        field: &FieldPath,
        at: Duration,
        calls: usize,
        duration: Duration,
    ) -> Duration {
        let Some(rate) = spec.spawn_rate else {
            return Duration::ZERO;
        };
        let field = field.clone().key("spawn_rate");
        if !(rate.is_finite() && rate > 0.0) {
            self.problem(
                field,
                format!("calls per second must be more than 0, not {rate}"),
            );
            return Duration::ZERO;
        }
        let spacing = Duration::from_secs_f64(1.0 / rate);
        let last = at + spacing * calls.saturating_sub(1) as u32;
        if last >= duration {
            self.problem(
                field,
                format!(
                    "at {rate} per second the last of {calls} calls would start at {}, \
                     not before the scenario ends",
                    humantime::format_duration(Duration::from_millis(last.as_millis() as u64))
                ),
            );
        }
        spacing
    }

    fn topology(
        &mut self,
        topology: Topology,
        spec: &CallSpec,
        at: &FieldPath,
        names: &Names<'_>,
    ) -> Vec<(usize, usize)> {
        let mut members = Vec::new();
        match &spec.among {
            None => members.extend(0..names.peers.len()),
            Some(among) => {
                for (j, name) in among.iter().enumerate() {
                    match names.get(name) {
                        Some(Named::Peer(index)) => members.push(index),
                        Some(Named::Group(group)) => members.extend_from_slice(group),
                        None => self.problem(
                            at.clone().key("among").index(j),
                            format!("unknown peer or group `{name}` (known: {})", names.known()),
                        ),
                    }
                }
            }
        }
        let mut unique = HashSet::new();
        members.retain(|m| unique.insert(*m));
        if spec.hub.is_some() && topology != Topology::Star {
            self.problem(at.clone().key("hub"), "only a `star` has a hub");
        }
        match topology {
            Topology::Pairs => {
                if members.len() < 2 || members.len() % 2 == 1 {
                    self.problem(
                        at.clone().key("topology"),
                        format!(
                            "`pairs` needs an even number of peers, and there are {}",
                            members.len()
                        ),
                    );
                    return vec![];
                }
                members.chunks(2).map(|pair| (pair[0], pair[1])).collect()
            }
            Topology::Mesh => {
                if members.len() < 2 {
                    self.problem(
                        at.clone().key("topology"),
                        "`mesh` needs at least two peers",
                    );
                }
                let mut pairs = Vec::new();
                for (k, &a) in members.iter().enumerate() {
                    pairs.extend(members[k + 1..].iter().map(|&b| (a, b)));
                }
                pairs
            }
            Topology::Star => {
                let Some(hub_name) = &spec.hub else {
                    self.problem(at.clone().key("topology"), "a `star` needs a `hub`");
                    return vec![];
                };
                let Some(hub) = self.one_peer(names, hub_name, at.clone().key("hub")) else {
                    return vec![];
                };
                members.retain(|&m| m != hub);
                if members.is_empty() {
                    self.problem(
                        at.clone().key("topology"),
                        "the star has no peers besides its hub",
                    );
                }
                members.into_iter().map(|m| (hub, m)).collect()
            }
        }
    }

    /// A browser's network is the machine's: the faults that act on the
    /// harness's in-process network cannot reach it.
    fn browser_faults(&mut self, actions: &[(Action, FieldPath)], peers: &[PeerPlan]) {
        for (action, field) in actions {
            if !action.verb.needs_emulated_network() {
                continue;
            }
            let verb = action.verb.name();
            let peer = &peers[action.verb.actor()];
            if peer.kind == PeerKind::Browser {
                self.problem(
                    field.clone().key(verb),
                    format!(
                        "`{}` is a browser peer: {verb} acts on the harness's own network, which a \
                         browser does not use (crash, leave, call and hangup work)",
                        peer.name
                    ),
                );
            }
        }
    }

    fn event(
        &mut self,
        spec: &EventSpec,
        i: usize,
        names: &Names<'_>,
        duration: Duration,
    ) -> Option<(Action, FieldPath)> {
        let field = FieldPath::default().key("events").index(i);
        let at = self.when(Some(spec.at), duration, field.clone().key("at"));
        let count = [
            spec.call.is_some(),
            spec.hangup.is_some(),
            spec.leave.is_some(),
            spec.crash.is_some(),
            spec.vanish.is_some(),
            spec.move_to.is_some(),
            spec.impair.is_some(),
            spec.restore.is_some(),
            spec.media.is_some(),
            spec.drop_signaling.is_some(),
        ]
        .into_iter()
        .filter(|v| *v)
        .count();
        if count != 1 {
            self.problem(
                field,
                format!(
                    "an event has exactly one verb (call, hangup, leave, crash, vanish, move, \
                     impair, restore, media or drop-signaling); this one has {count}"
                ),
            );
            return None;
        }
        // The verbs that name one peer: each with how it is written and
        // what it makes.
        let peer_verbs: [(&str, &Option<String>, fn(usize) -> Verb); 5] = [
            ("leave", &spec.leave, |peer| Verb::Leave { peer }),
            ("crash", &spec.crash, |peer| Verb::Crash { peer }),
            ("vanish", &spec.vanish, |peer| Verb::Vanish { peer }),
            ("restore", &spec.restore, |peer| Verb::Restore { peer }),
            ("drop-signaling", &spec.drop_signaling, |peer| {
                Verb::DropSignaling { peer }
            }),
        ];
        let peer_verb = peer_verbs
            .into_iter()
            .find_map(|(verb, name, make)| name.as_ref().map(|name| (verb, name, make)));
        let verb = if let Some((verb, name, make)) = peer_verb {
            make(self.one_peer(names, name, field.clone().key(verb))?)
        } else if let Some(spec) = &spec.move_to {
            let at = field.clone().key("move");
            let peer = self.one_peer(names, &spec.peer, at.clone().key("peer"));
            let to = self.move_target(spec.to.as_deref(), at.key("to"));
            Verb::Move {
                peer: peer?,
                to: to?,
                restart: spec.restart,
            }
        } else if let Some(spec) = &spec.media {
            let at = field.clone().key("media");
            let peer = self.one_peer(names, &spec.peer, at.clone().key("peer"));
            let other = match &spec.as_peer {
                Some(name) => self
                    .one_peer(names, name, at.clone().key("as"))
                    .map(|i| i as u16),
                // A sender index no peer of the run has.
                None => Some(u16::try_from(names.peers.len()).unwrap_or(u16::MAX - 1)),
            };
            let fault = MediaFault::parse(&spec.fault, other.unwrap_or(0));
            if fault.is_none() {
                self.problem(
                    at.clone().key("fault"),
                    format!(
                        "unknown media fault `{}`; known: {}",
                        spec.fault,
                        MediaFault::NAMES.join(", ")
                    ),
                );
            }
            if spec.as_peer.is_some()
                && !matches!(
                    fault,
                    Some(MediaFault::WrongSender(_) | MediaFault::WrongTone(_))
                )
            {
                self.problem(at.key("as"), "`as` is for `wrong-sender` and `wrong-tone`");
            }
            Verb::Media {
                peer: peer?,
                fault: fault?,
            }
        } else if let Some(spec) = &spec.impair {
            let at = field.clone().key("impair");
            let peer = self.one_peer(names, &spec.peer, at.clone().key("peer"));
            let impairment = self.impairment(spec, at);
            Verb::Impair {
                peer: peer?,
                direction: spec.direction,
                impairment: impairment?,
            }
        } else {
            // A call or a hangup: the one verb left, counted above.
            let (is_call, verb, endpoints) = match (&spec.call, &spec.hangup) {
                (Some(call), _) => (true, "call", call),
                (None, Some(hangup)) => (false, "hangup", hangup),
                (None, None) => unreachable!("one verb, counted above"),
            };
            let from = self.one_peer(names, &endpoints.from, field.clone().key(verb).key("from"));
            let to = self.one_peer(names, &endpoints.to, field.clone().key(verb).key("to"));
            let (from, to) = (from?, to?);
            if !is_call && endpoints.expect != Expect::Connect {
                self.problem(
                    field.clone().key(verb).key("expect"),
                    "`expect` is for calls",
                );
            }
            if is_call {
                Verb::Call {
                    from,
                    to,
                    expect_failure: endpoints.expect == Expect::Fail,
                }
            } else {
                Verb::Hangup { from, to }
            }
        };
        Some((
            Action {
                at,
                verb,
                origin: format!("events[{i}]"),
            },
            field,
        ))
    }

    /// Plays the timeline on paper: a peer never calls itself or a peer it
    /// is already in a call with, only hangs up calls that are up, and does
    /// nothing after it has left (except be called, which must then fail).
    fn timeline(&mut self, actions: &[(Action, FieldPath)], peers: &[PeerPlan]) {
        let mut up: HashMap<(usize, usize), &str> = HashMap::new();
        let mut left: HashMap<usize, &str> = HashMap::new();
        let key = |a: usize, b: usize| (a.min(b), a.max(b));
        let name = |i: usize| peers[i].name.as_str();
        for (action, field) in actions {
            let when = humantime::format_duration(action.at);
            let actor = action.verb.actor();
            if let Some(origin) = left.get(&actor) {
                self.problem(
                    field.clone(),
                    format!("`{}` is already gone ({origin}) at {when}", name(actor)),
                );
                continue;
            }
            match action.verb {
                Verb::Call { from, to, .. } if from == to => {
                    self.problem(field.clone(), format!("`{}` calls itself", name(from)));
                }
                Verb::Call {
                    from,
                    to,
                    expect_failure,
                } => {
                    if !expect_failure
                        && let Some(why) = no_codec_in_common(&peers[from], &peers[to])
                    {
                        self.problem(
                            field.clone(),
                            format!(
                                "{why}; say `expect = \"fail\"` to test that the call is refused"
                            ),
                        );
                    }
                    if left.contains_key(&to) {
                        if !expect_failure {
                            self.problem(
                                field.clone(),
                                format!(
                                    "`{}` is gone by {when}, so this call cannot connect; \
                                     say `expect = \"fail\"` to test that it fails",
                                    name(to)
                                ),
                            );
                        }
                    } else if let Some(origin) = up.insert(key(from, to), &action.origin) {
                        self.problem(
                            field.clone(),
                            format!(
                                "`{}` and `{}` are already in a call (from {origin}) at {when}",
                                name(from),
                                name(to)
                            ),
                        );
                    }
                }
                Verb::Hangup { from, to } => {
                    if up.remove(&key(from, to)).is_none() {
                        self.problem(
                            field.clone(),
                            format!(
                                "`{}` and `{}` are not in a call at {when}",
                                name(from),
                                name(to)
                            ),
                        );
                    }
                }
                Verb::Leave { peer }
                | Verb::Crash { peer }
                | Verb::Vanish { peer }
                | Verb::DropSignaling { peer } => {
                    up.retain(|&(a, b), _| a != peer && b != peer);
                    left.insert(peer, &action.origin);
                }
                Verb::Media { peer, .. } if peers[peer].kind == PeerKind::Browser => {
                    self.problem(
                        field.clone().key("media"),
                        format!(
                            "`{}` is a browser: media faults are for synthetic peers, whose \
                             camera and microphone callprobe draws",
                            name(peer)
                        ),
                    );
                }
                Verb::Move { .. }
                | Verb::Impair { .. }
                | Verb::Restore { .. }
                | Verb::Media { .. } => {}
            }
        }
    }

    /// Where a peer moves: given, or the next of 127.0.0.2, 127.0.0.3, …
    fn move_target(&mut self, to: Option<&str>, at: FieldPath) -> Option<IpAddr> {
        let Some(to) = to else {
            self.moves += 1;
            let last = u8::try_from(self.moves + 1).unwrap_or(254).min(254);
            return Some(IpAddr::from([127, 0, 0, last]));
        };
        match to.parse::<IpAddr>() {
            Ok(ip @ IpAddr::V4(v4)) if v4.is_loopback() => Some(ip),
            Ok(_) => {
                self.problem(
                    at,
                    format!(
                        "`{to}` is not in 127.0.0.0/8: callprobe keeps its traffic on loopback"
                    ),
                );
                None
            }
            Err(_) => {
                self.problem(at, format!("`{to}` is not an IP address"));
                None
            }
        }
    }

    /// A share like "5%" as 0.05, or a problem at `at` saying how to write it.
    fn share(&mut self, text: Option<&str>, at: FieldPath) -> Option<f32> {
        let text = text?;
        let share = parse_share(text).map(|share| share as f32);
        if share.is_none() {
            self.problem(
                at,
                format!("`{text}` is not a share from 0% to 100% (write it like \"5%\")"),
            );
        }
        share
    }

    fn impairment(&mut self, spec: &ImpairSpec, at: FieldPath) -> Option<Impairment> {
        let before = self.problems.len();
        let ratio = self.share(spec.loss.as_deref(), at.clone().key("loss"));
        if let Some(burst) = spec.burst {
            if spec.loss.is_none() {
                self.problem(
                    at.clone().key("burst"),
                    "`burst` shapes `loss`; give a `loss` too",
                );
            } else if burst.is_nan() || burst < 1.0 {
                self.problem(
                    at.clone().key("burst"),
                    "a burst is at least 1 datagram long on average",
                );
            }
        }
        let rate_bps = spec.rate.as_deref().and_then(|text| {
            let rate = parse_rate(text);
            if rate.is_none() {
                self.problem(
                    at.clone().key("rate"),
                    format!("`{text}` is not a rate (write it like \"500kbps\" or \"2mbps\")"),
                );
            }
            rate
        });
        let duplicate = self.share(spec.duplicate.as_deref(), at.clone().key("duplicate"));
        if let Some(every) = spec.reorder {
            if every < 2 {
                self.problem(
                    at.clone().key("reorder"),
                    "every `reorder`-th datagram overtakes the others: at least 2",
                );
            } else if spec.delay.unwrap_or_default().is_zero() {
                self.problem(
                    at.clone().key("reorder"),
                    "a datagram overtakes the delay queue: give a `delay` to reorder by",
                );
            }
        }
        let impairment = Impairment {
            duplicate,
            reorder_every: spec.reorder,
            loss: ratio.map(|ratio| match spec.burst {
                Some(mean_burst) => Loss::Bursty { ratio, mean_burst },
                None => Loss::Random { ratio },
            }),
            delay: spec.delay.unwrap_or_default(),
            jitter: spec.jitter.unwrap_or_default(),
            rate_bps,
            blackhole: spec.blackhole,
        };
        if impairment.jitter > impairment.delay {
            self.problem(
                at.clone().key("jitter"),
                "jitter varies the delay both ways, so it cannot exceed `delay`",
            );
        }
        if self.problems.len() == before && impairment.is_clear() {
            self.problem(
                at,
                "impairs nothing: give loss, delay, jitter, rate, blackhole, duplicate or reorder (or use `restore`)",
            );
        }
        (self.problems.len() == before).then_some(impairment)
    }

    fn thresholds(
        &mut self,
        written: &BTreeMap<String, Vec<String>>,
        with_calls: bool,
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
            for &(metric, text) in DEFAULT_THRESHOLDS {
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

/// Why two peers cannot agree on a video codec, if they cannot. A browser
/// takes every codec of ours.
fn no_codec_in_common(caller: &PeerPlan, callee: &PeerPlan) -> Option<String> {
    let takes = |peer: &PeerPlan| match peer.kind {
        PeerKind::Synthetic => peer.video.codecs.clone(),
        PeerKind::Browser => VideoCodec::ALL.to_vec(),
    };
    let (offered, taken) = (takes(caller), takes(callee));
    if offered.iter().any(|codec| taken.contains(codec)) {
        return None;
    }
    let list = |codecs: &[VideoCodec]| {
        let names: Vec<&str> = codecs.iter().map(|c| c.name()).collect();
        names.join(", ")
    };
    Some(format!(
        "`{}` offers only {} and `{}` takes only {}: no video codec in common",
        caller.name,
        list(&offered),
        callee.name,
        list(&taken)
    ))
}

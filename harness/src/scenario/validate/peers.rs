//! Part of the validator (see the parent module).

use super::*;
use crate::media::data_message::{MAX_SIZE, MIN_SIZE};
use crate::peer::DataSettings;
use crate::scenario::file::DataSpec;

impl Checker<'_> {
    pub(super) fn media(&mut self, file: &ScenarioFile) -> MediaPlan {
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
                at.clone().key("audio").key("bitrate_bps"),
                format!("Opus takes 6000 to 510000 bit/s, not {audio_bitrate_bps}"),
            );
        }
        let data = file
            .media
            .data
            .as_ref()
            .and_then(|spec| self.data(spec, at.clone().key("data"), file.duration));
        MediaPlan {
            shared,
            video,
            audio_bitrate_bps,
            data,
        }
    }

    /// `[media] data`: an interval a run can hold, a size SCTP carries.
    fn data(&mut self, spec: &DataSpec, at: FieldPath, duration: Duration) -> Option<DataSettings> {
        let settings = DataSettings {
            ordered: spec.ordered.unwrap_or(true),
            max_retransmits: spec.max_retransmits,
            interval: spec.interval.unwrap_or(Duration::from_millis(100)),
            size: spec.size.unwrap_or(1024),
        };
        let before = self.problems.len();
        if settings.interval < Duration::from_millis(1) || settings.interval >= duration {
            self.problem(
                at.clone().key("interval"),
                format!(
                    "{}: an interval from 1ms to less than the run's duration",
                    humantime::format_duration(settings.interval)
                ),
            );
        }
        if !(MIN_SIZE..=MAX_SIZE).contains(&settings.size) {
            self.problem(
                at.key("size"),
                format!(
                    "{} bytes: a message is {MIN_SIZE} (its number, time and CRC) to {MAX_SIZE} bytes",
                    settings.size
                ),
            );
        }
        (self.problems.len() == before).then_some(settings)
    }

    pub(super) fn video(
        &mut self,
        base: &VideoSettings,
        spec: &VideoSpec,
        at: FieldPath,
    ) -> VideoSettings {
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
    pub(super) fn codecs(&mut self, spec: &CodecSpec, at: FieldPath) -> Vec<VideoCodec> {
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

    pub(super) fn peers(
        &mut self,
        specs: &[PeerSpec],
        media: &MediaPlan,
        run_ice: &IcePlan,
    ) -> Vec<PeerPlan> {
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
            let ice = match &spec.ice {
                Some(own) => self.ice(own, run_ice, at.clone().key("ice")),
                None => run_ice.clone(),
            };
            if spec.kind == PeerKind::Browser && ice != IcePlan::default() {
                self.problem(
                    at.clone().key(if spec.ice.is_some() { "ice" } else { "kind" }),
                    "a browser peer takes no ICE servers or policy yet: give `ice` to the synthetic peers ([[peers]] ice = ...) instead of [ice]",
                );
            }
            peers.extend(names.into_iter().map(|name| PeerPlan {
                name,
                group: spec.name.trim().to_owned(),
                kind: spec.kind,
                video: video.clone(),
                misbehave,
                ice: ice.clone(),
                room: None,
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
}

/// Why two peers cannot agree on a video codec, if they cannot. A browser
/// takes every codec of ours.
pub(super) fn no_codec_in_common(caller: &PeerPlan, callee: &PeerPlan) -> Option<String> {
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

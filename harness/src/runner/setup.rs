//! What a run needs before its peers: the signaling server under test, and
//! every peer's media settings (the shared clip encoded once).

use std::sync::Arc;

use callprobe_server::{RunningServer, Server, ServerConfig, TlsMode};

use crate::coturn::{Coturn, CoturnError};
use crate::janus::{Janus, JanusError};
use crate::load::PacingLog;
use crate::media::shared::SharedClip;
use crate::peer::MediaSettings;
use crate::results::Status;
use crate::scenario::{Scenario, ServerPlan, SfuServer};
use crate::signaling::{RoomSpec, WhipEndpoints, create_room, destroy_room};
use crate::whip_servers::{WhipServers, WhipServersError};
use callprobe_server::protocol::PeerId;

use super::RunOptions;

/// The shared clip loops over this many seconds of video.
const SHARED_CLIP_SECONDS: u32 = 10;

/// The server a run talks to, and whether it is ours to stop.
pub(super) struct ServerUnderTest {
    pub(super) url: String,
    pub(super) trust_pem: Option<String>,
    pub(super) running: Option<RunningServer>,
}

impl ServerUnderTest {
    pub(super) async fn stop(self) {
        if let Some(server) = self.running {
            server.shutdown().await;
        }
    }
}

pub(super) async fn start_server(
    scenario: &Scenario,
    options: &RunOptions,
) -> Result<ServerUnderTest, (Status, String)> {
    let external = |url: String| ServerUnderTest {
        url,
        trust_pem: None,
        running: None,
    };
    if let Some(url) = &options.server {
        return Ok(external(url.clone()));
    }
    match &scenario.server {
        ServerPlan::External { url } => Ok(external(url.clone())),
        ServerPlan::FromEnv { variable } => Err((
            Status::Skipped,
            format!("needs an external server: set {variable} or pass --server URL"),
        )),
        ServerPlan::InProcess {
            tls,
            idle_timeout,
            ping_interval,
        } => {
            let mut config = ServerConfig {
                tls: if *tls {
                    TlsMode::self_signed_localhost()
                } else {
                    TlsMode::Off
                },
                ..ServerConfig::loopback()
            };
            if let Some(idle) = idle_timeout {
                config.limits.idle_timeout = *idle;
            }
            if let Some(ping) = ping_interval {
                config.limits.ping_interval = *ping;
            }
            let server = Server::bind(config).await.map_err(|e| {
                (
                    Status::Error,
                    format!("the signaling server did not start: {e}"),
                )
            })?;
            Ok(ServerUnderTest {
                url: server.url(),
                trust_pem: server.self_signed_certificate_pem().map(str::to_owned),
                running: Some(server),
            })
        }
    }
}

/// The TURN server the run starts itself, if its peers use one: skipped
/// where coturn is not installed, as a run needing Chromium is without it.
pub(super) async fn start_turn(scenario: &Scenario) -> Result<Option<Coturn>, (Status, String)> {
    if !scenario.spawns_turn() {
        return Ok(None);
    }
    match tokio::task::spawn_blocking(Coturn::start).await {
        Ok(Ok(coturn)) => Ok(Some(coturn)),
        Ok(Err(error @ CoturnError::NotInstalled)) => Err((Status::Skipped, error.to_string())),
        Ok(Err(error)) => Err((
            Status::Error,
            format!("the TURN server did not start: {error}"),
        )),
        Err(error) => Err((Status::Error, format!("starting the TURN server: {error}"))),
    }
}

/// Bound on making or removing one room.
const ROOM_BOUND: std::time::Duration = std::time::Duration::from_secs(5);

/// The media server a run's rooms are on, and the rooms.
pub(super) struct SfuUnderTest {
    /// The Janus the run started (killed by `crash-server = "sfu"`, or at
    /// the end).
    pub(super) janus: Option<Janus>,
    pub(super) url: String,
    /// Each `[[rooms]]` entry's room id.
    pub(super) rooms: Vec<u64>,
    /// The run made the rooms on an external server (and removes them).
    made_on_external: bool,
    /// The WHIP and WHEP servers in front of the run's Janus, and the
    /// bearer token they ask of every peer.
    pub(super) whip: Option<(WhipServers, String)>,
}

impl SfuUnderTest {
    /// Removes the rooms the run made on an external server; stops the
    /// one the run started.
    pub(super) async fn finish(mut self) {
        if self.made_on_external {
            for room in &self.rooms {
                if let Err(error) = destroy_room(&self.url, *room, ROOM_BOUND).await {
                    tracing::warn!(room, %error, "could not remove a room the run made");
                }
            }
        }
        self.whip = None;
        if let Some(janus) = &mut self.janus {
            janus.kill();
        }
    }

    /// How peers reach the WHIP and WHEP servers, where the run has them.
    pub(super) fn whip_endpoints(&self) -> Option<WhipEndpoints> {
        self.whip.as_ref().map(|(servers, token)| WhipEndpoints {
            whip: servers.whip_endpoint(),
            whep: servers.whep_endpoint(),
            token: Some(token.clone()),
        })
    }

    /// Makes each publisher's WHIP endpoint (`publishers`: peer id and
    /// room index), all within one bound.
    pub(super) async fn provision(
        &self,
        publishers: &[(PeerId, usize)],
    ) -> Result<(), WhipServersError> {
        let Some((servers, token)) = &self.whip else {
            return Ok(());
        };
        let made = publishers.iter().map(|(id, room)| {
            let room = self.rooms[(*room).min(self.rooms.len() - 1)];
            servers.create_publisher(id.as_str(), room, Some(token), ROOM_BOUND)
        });
        futures_util::future::try_join_all(made).await.map(|_| ())
    }
}

/// The media server of a room scenario and its rooms: a Janus started
/// here (skipped where it is not installed) or an external one, and a room
/// made per `[[rooms]]` entry (unless the file names one).
pub(super) async fn start_sfu(
    scenario: &Scenario,
) -> Result<Option<SfuUnderTest>, (Status, String)> {
    let Some(plan) = &scenario.sfu else {
        return Ok(None);
    };
    let (janus, url, given) = match &plan.server {
        SfuServer::SpawnJanus | SfuServer::SpawnWhip => {
            match tokio::task::spawn_blocking(Janus::start).await {
                Ok(Ok(janus)) => {
                    let url = janus.ws_url();
                    (Some(janus), url, None)
                }
                Ok(Err(error @ JanusError::NotInstalled)) => {
                    return Err((Status::Skipped, error.to_string()));
                }
                Ok(Err(error)) => {
                    return Err((
                        Status::Error,
                        format!("the media server did not start: {error}"),
                    ));
                }
                Err(error) => {
                    return Err((Status::Error, format!("starting the media server: {error}")));
                }
            }
        }
        SfuServer::ExternalJanus { url, room } => (None, url.clone(), *room),
    };
    let mut sfu = SfuUnderTest {
        janus,
        url,
        rooms: Vec::new(),
        made_on_external: false,
        whip: None,
    };
    if let Some(room) = given {
        sfu.rooms.push(room);
        return Ok(Some(sfu));
    }
    sfu.made_on_external = sfu.janus.is_none();
    let video_codec = scenario
        .media
        .video
        .codecs
        .first()
        .map_or("h264", |c| c.name());
    for room in &plan.rooms {
        let spec = RoomSpec {
            // Below 2^53, as JavaScript clients of the same server read ids.
            room: rand::random::<u64>() >> 12 | 1,
            publishers: u32::try_from(room.publishers.len())
                .unwrap_or(u32::MAX)
                .max(1),
            video_codec: video_codec.to_owned(),
        };
        if let Err(error) = create_room(&sfu.url, &spec, ROOM_BOUND).await {
            sfu.finish().await;
            return Err((Status::Error, format!("the media server's room: {error}")));
        }
        sfu.rooms.push(spec.room);
    }
    if plan.server == SfuServer::SpawnWhip {
        let (url, rooms) = (sfu.url.clone(), sfu.rooms.clone());
        let token = format!("{:032x}", rand::random::<u128>());
        let bearer = token.clone();
        let started =
            tokio::task::spawn_blocking(move || WhipServers::start(&url, &rooms, Some(&bearer)))
                .await;
        let failed = match started {
            Ok(Ok(servers)) => {
                sfu.whip = Some((servers, token));
                None
            }
            Ok(Err(error @ WhipServersError::NotInstalled(_))) => {
                Some((Status::Skipped, error.to_string()))
            }
            Ok(Err(error)) => Some((
                Status::Error,
                format!("the WHIP and WHEP servers did not start: {error}"),
            )),
            Err(error) => Some((Status::Error, format!("starting the WHIP servers: {error}"))),
        };
        if let Some(failed) = failed {
            sfu.finish().await;
            return Err(failed);
        }
    }
    Ok(Some(sfu))
}

/// Media settings for every peer, all logging their pacing to `pacing`;
/// shared mode encodes its clip once, off the async workers.
pub(super) async fn media(
    scenario: &Scenario,
    pacing: &Arc<PacingLog>,
) -> Result<Vec<MediaSettings>, String> {
    let plan = &scenario.media;
    let shared = if plan.shared {
        let video = plan.video.clone();
        let frames = video.fps * SHARED_CLIP_SECONDS;
        let audio = plan.audio_bitrate_bps;
        let senders = u16::try_from(scenario.peers.len()).unwrap_or(u16::MAX);
        let clip = tokio::task::spawn_blocking(move || {
            let clip = SharedClip::encode(&video, frames, audio)?;
            clip.prepare_audio(senders)?;
            Ok::<_, crate::media::shared::SharedClipError>(clip)
        })
        .await
        .map_err(|e| format!("encoding the shared clip: {e}"))?
        .map_err(|e| format!("encoding the shared clip: {e}"))?;
        Some(Arc::new(clip))
    } else {
        None
    };
    Ok(scenario
        .peers
        .iter()
        .map(|peer| MediaSettings {
            video: peer.video.clone(),
            audio_bitrate_bps: plan.audio_bitrate_bps,
            shared: shared.clone(),
            pacing: Arc::clone(pacing),
            // Each peer's own camera and microphone.
            faults: Arc::default(),
            data: plan.data,
        })
        .collect())
}

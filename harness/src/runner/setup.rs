//! What a run needs before its peers: the signaling server under test, and
//! every peer's media settings (the shared clip encoded once).

use std::sync::Arc;

use callprobe_server::{RunningServer, Server, ServerConfig, TlsMode};

use crate::coturn::{Coturn, CoturnError};
use crate::load::PacingLog;
use crate::media::shared::SharedClip;
use crate::peer::MediaSettings;
use crate::results::Status;
use crate::scenario::{Scenario, ServerPlan};

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
        let clip = tokio::task::spawn_blocking(move || SharedClip::encode(&video, frames, audio))
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

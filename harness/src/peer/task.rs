//! The peer task: one per synthetic peer, owning its signaling client and a
//! connection per call. Commands, signaling frames, connection events and
//! track news all arrive in one loop; WebRTC callbacks only forward to it.
//! Each call's state is its `CallMachine` (`call.rs`); this module keeps
//! the peer's life, `lifecycle` places, drives and ends its calls,
//! `signal` turns frames and connection events into the machine's inputs,
//! `media` starts and reads a call's media, `faults` emulates crashes,
//! vanishing and moves.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callprobe_server::protocol::{ErrorCode, PeerId};
use rtc::peer_connection::configuration::RTCOfferOptions;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at};
use tokio_util::sync::CancellationToken;
use webrtc::peer_connection::{
    RTCIceCandidateInit, RTCIceConnectionState, RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::RtpSender;

mod faults;
mod lifecycle;
mod media;
mod signal;

use super::call::{CallInput, CallMachine, CallOutput, CallTimeouts};
use super::connection::{Connection, ConnectionEvent, ConnectionSettings, build_connection};
use super::directory::{Introduction, Introductions};
use super::events::{
    CallEnd, CallFailure, CallId, CallIds, CallReport, MediaSource, Misbehaviour, PeerCommand,
    PeerError, PeerEvent, PeerEventKind, Role,
};
use super::receive::VideoReceiver;
use super::send::{MediaSettings, Outgoing, SendCounters, SendError, send};
use super::track::{TrackNews, TrackVerdict, receive};
use crate::clock::RunTime;
use crate::media::codec::{CodecError, VideoCodec, offered_video_codecs};
use crate::signaling::{
    CandidateInit, ClientConfig, Incoming, Outgoing as Signal, Received, SignalingClient,
};
use crate::verify::data::DataVerdict;

/// Bound on ending one call mid-run: its media tasks stopping and its
/// connection closing, together.
const CALL_CLOSE: Duration = Duration::from_secs(4);
/// Bound on a peer's whole teardown, every call at once: inside the
/// runner's bound on closing a peer (`runner::CLOSE_BOUND`, 10 s), so a
/// slow close is reported as one, never as a peer that said nothing.
pub(crate) const PEER_CLOSE: Duration = Duration::from_secs(7);

#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub name: String,
    /// Index in the run: carried in every frame stamp, picks the tone.
    pub index: u16,
    pub signaling_url: String,
    pub client: ClientConfig,
    pub connection: ConnectionSettings,
    pub media: MediaSettings,
    /// The run's clock origin (stamps carry capture time relative to it).
    pub epoch: Instant,
    /// A call with no answer after this long fails, rather than hanging
    /// (the tutorial's server never says that a peer is gone).
    pub answer_timeout: Duration,
    /// A negotiated call whose connection (ICE and DTLS) is not up after
    /// this long fails, saying which of the two never came.
    pub connect_timeout: Duration,
    /// Where received audio is written as WAV, one file per call, if set.
    pub record_audio_dir: Option<PathBuf>,
    /// How this peer breaks the protocol on purpose (nothing, mostly).
    pub misbehave: Misbehaviour,
}

/// The harness's handle on a running peer.
#[derive(Debug)]
pub struct PeerHandle {
    pub index: u16,
    commands: mpsc::UnboundedSender<PeerCommand>,
    introductions: mpsc::UnboundedSender<Introduction>,
    task: JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
#[error("peer {0} has ended")]
pub struct PeerGone(pub u16);

impl PeerHandle {
    /// A handle on a peer task started elsewhere (a browser peer).
    pub(crate) fn from_parts(
        index: u16,
        commands: mpsc::UnboundedSender<PeerCommand>,
        introductions: mpsc::UnboundedSender<Introduction>,
        task: JoinHandle<()>,
    ) -> Self {
        PeerHandle {
            index,
            commands,
            introductions,
            task,
        }
    }

    /// Tells the peer of a call it is about to be offered; sent before the
    /// caller is commanded, it is known by the time the offer arrives.
    pub fn introduce(&self, introduction: Introduction) -> Result<(), PeerGone> {
        self.introductions
            .send(introduction)
            .map_err(|_| PeerGone(self.index))
    }

    pub fn command(&self, command: PeerCommand) -> Result<(), PeerGone> {
        self.commands
            .send(command)
            .map_err(|_| PeerGone(self.index))
    }

    /// Asks the peer to close and waits, bounded, for its task to end.
    pub async fn close(self, bound: Duration) {
        let _ = self.commands.send(PeerCommand::Close);
        let mut task = self.task;
        if timeout(bound, &mut task).await.is_err() {
            tracing::warn!(peer = self.index, "peer did not close in time; aborting it");
            task.abort();
        }
    }
}

/// Starts a peer; its events go to `events`, shared by every peer of a run.
pub fn spawn_peer(config: PeerConfig, events: mpsc::UnboundedSender<PeerEvent>) -> PeerHandle {
    let (commands, inbox) = mpsc::unbounded_channel();
    let (introductions, introduced) = Introductions::channel();
    let index = config.index;
    let task = tokio::spawn(run(config, inbox, introduced, events));
    PeerHandle::from_parts(index, commands, introductions, task)
}

struct Sending {
    /// Cancelled when ICE is up: the sender encodes its first keyframe.
    ice_connected: CancellationToken,
    /// Cancelled when the connection is up: the sender fires.
    connected: CancellationToken,
    stop: CancellationToken,
    task: JoinHandle<Result<(), SendError>>,
    counters: Arc<SendCounters>,
}

struct Call {
    /// Where the call is, and what is due when (`call.rs`).
    machine: CallMachine,
    connection: Connection,
    /// What the remote's media carries, as we were told (none for a caller
    /// nobody introduced: its media is refused).
    remote_source: Option<MediaSource>,
    remote_description_set: bool,
    /// Candidates that came before the remote description.
    pending_candidates: Vec<CandidateInit>,
    sending: Option<Sending>,
    /// Made once the call is negotiated (off the async workers: a decoder
    /// takes ~1.5 ms to create), for the video track to come.
    prepared_video: Option<JoinHandle<Result<VideoReceiver, CodecError>>>,
    tracks: Vec<JoinHandle<Option<TrackVerdict>>>,
    tracks_stop: CancellationToken,
    /// A relayed candidate of ours has been gathered (reported once).
    relay_gathered: bool,
    /// The call's data channel, run until `tracks_stop`.
    data: Option<JoinHandle<DataVerdict>>,
    /// Our media goes out on this call (not on a subscription, which only
    /// receives).
    sends: bool,
}

struct Peer {
    config: PeerConfig,
    /// Set at teardown: every call ends by then.
    closing_by: Option<tokio::time::Instant>,
    calls: HashMap<PeerId, Call>,
    /// The id the server gave us.
    id: Option<PeerId>,
    /// Which call each remote's events are about (kept apart from `calls`:
    /// a call's end is reported after it has left them).
    call_ids: std::sync::Mutex<CallIds>,
    /// The calls the runner has said we are about to be offered.
    introductions: Introductions,
    /// Subscriptions asked for whose offer has not come: by when it must,
    /// and the call each is filed as.
    subscribing: HashMap<PeerId, (Instant, CallId)>,
    /// Cut off from the network (vanished): signaling is neither read nor
    /// written, and nothing is said to anyone.
    offline: bool,
    events: mpsc::UnboundedSender<PeerEvent>,
    connection_events: mpsc::UnboundedSender<(PeerId, Instant, ConnectionEvent)>,
    track_news: mpsc::UnboundedSender<(PeerId, Instant, TrackNews)>,
}

async fn run(
    config: PeerConfig,
    mut commands: mpsc::UnboundedReceiver<PeerCommand>,
    introductions: Introductions,
    events: mpsc::UnboundedSender<PeerEvent>,
) {
    let (connection_events, mut connection_inbox) = mpsc::unbounded_channel();
    let (track_news, mut news_inbox) = mpsc::unbounded_channel();

    let mut peer = Peer {
        config,
        closing_by: None,
        calls: HashMap::new(),
        id: None,
        call_ids: Default::default(),
        introductions,
        subscribing: HashMap::new(),
        offline: false,
        events,
        connection_events,
        track_news,
    };
    let mut client = match peer.connect().await {
        Ok(client) => client,
        Err(message) => {
            peer.emit(PeerEventKind::Error {
                remote: None,
                error: PeerError::Signaling { detail: message },
            });
            peer.emit(PeerEventKind::Closed);
            return;
        }
    };
    let mut lost = None;
    loop {
        let deadline = peer.next_answer_deadline();
        tokio::select! {
            command = commands.recv() => match command {
                None | Some(PeerCommand::Close) => break,
                Some(PeerCommand::Crash) => {
                    peer.crash(client).await;
                    return;
                }
                Some(command) if peer.offline => {
                    peer.error(None, PeerError::CutOff { command: format!("{command:?}") });
                }
                Some(PeerCommand::Call { to, call, expect }) => {
                    peer.call(&mut client, to, call, Some(expect)).await;
                }
                Some(PeerCommand::Publish { call }) => {
                    peer.call(&mut client, crate::signaling::room_remote(), call, None).await;
                }
                Some(PeerCommand::Subscribe { to, call, expect }) => {
                    peer.subscribe(&mut client, to, call, expect).await;
                }
                Some(PeerCommand::Hangup { to }) => {
                    if peer.calls.contains_key(&to) {
                        peer.drive(&mut client, to, Instant::now(), CallInput::HangUp).await;
                    } else {
                        peer.error(Some(to), PeerError::NoCall { command: "hangup".into() });
                    }
                }
                Some(PeerCommand::Vanish) => peer.vanish(),
                Some(PeerCommand::Move { to, restart }) => peer.move_to(&mut client, to, restart).await,
                Some(PeerCommand::RestartIce { with }) => peer.restart_ice(&mut client, with).await,
                Some(PeerCommand::MediaFault(fault)) => peer.config.media.faults.set(fault),
                Some(PeerCommand::DropSignaling) => {
                    // Nothing more goes to the server, not even a close.
                    lost = Some(CallFailure::SignalingLost("the connection dropped".into()));
                    peer.offline = true;
                    break;
                }
            },
            received = client.next(), if !peer.offline => match received {
                Ok(Some(received)) => peer.on_signal(&mut client, received).await,
                Ok(None) => {
                    peer.error(None, PeerError::SignalingClosed);
                    lost = Some(CallFailure::SignalingClosed);
                    break;
                }
                Err(error) => {
                    peer.error(None, PeerError::Signaling { detail: error.to_string() });
                    lost = Some(CallFailure::SignalingLost(error.to_string()));
                    break;
                }
            },
            Some((remote, at, event)) = connection_inbox.recv() => {
                peer.on_connection_event(&mut client, remote, at, event).await;
            }
            Some((remote, at, news)) = news_inbox.recv() => peer.on_track_news(remote, at, news),
            () = sleep_until(deadline), if deadline.is_some() => peer.expire_overdue(&mut client).await,
        }
    }
    // Calls still up end with the task: because we were told to close, or
    // cut off (a fault the harness caused), or because signaling was lost,
    // which fails them.
    let end = match (peer.offline, lost) {
        (_, Some(failure)) => CallInput::Failed(failure),
        (true, None) => CallInput::Abandoned,
        (false, None) => CallInput::HangUp,
    };
    // Stop every call's media at once, then collect each within the one
    // teardown bound.
    peer.closing_by = Some(tokio::time::Instant::now() + PEER_CLOSE);
    for call in peer.calls.values() {
        if let Some(sending) = &call.sending {
            sending.stop.cancel();
        }
        call.tracks_stop.cancel();
    }
    let remotes: Vec<PeerId> = peer.calls.keys().copied().collect();
    for remote in remotes {
        peer.drive(&mut client, remote, Instant::now(), end.clone())
            .await;
    }
    if peer.offline {
        client.abandon();
    } else {
        client.close().await;
    }
    peer.emit(PeerEventKind::Closed);
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl Peer {
    fn emit(&self, kind: PeerEventKind) {
        self.emit_at(Instant::now(), kind);
    }

    fn emit_at(&self, at: Instant, kind: PeerEventKind) {
        let at = RunTime::of(at, self.config.epoch);
        let event = self
            .call_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .event(self.config.index, at, kind);
        let _ = self.events.send(event);
    }

    fn error(&self, remote: Option<PeerId>, error: PeerError) {
        tracing::debug!(peer = self.config.index, ?remote, %error, "peer error");
        self.emit(PeerEventKind::Error { remote, error });
    }

    async fn connect(&mut self) -> Result<SignalingClient, String> {
        let config = &self.config;
        let mut client =
            SignalingClient::connect(&config.signaling_url, config.client.clone(), &config.name)
                .await
                .map_err(|e| e.to_string())?;
        let id = client.start().await.map_err(|e| e.to_string())?;
        self.id = Some(id);
        self.emit(PeerEventKind::Started { id });
        Ok(client)
    }

    /// What media from `remote` should carry.
    fn expected_sender(&self, remote: PeerId) -> Option<MediaSource> {
        self.calls.get(&remote).and_then(|call| call.remote_source)
    }

    /// The next moment a call has something due (its answer, its
    /// connection, or a subscription's offer).
    fn next_answer_deadline(&self) -> Option<tokio::time::Instant> {
        let offers = self.subscribing.values().map(|(by, _)| *by);
        self.calls
            .values()
            .filter_map(|c| c.machine.poll_timeout())
            .chain(offers)
            .min()
            .map(tokio::time::Instant::from_std)
    }

    fn timeouts(&self) -> CallTimeouts {
        CallTimeouts {
            answer: self.config.answer_timeout,
            connect: self.config.connect_timeout,
        }
    }

    /// A connection for a call with `remote`, offering `codecs` for video
    /// (for a subscription: answering as the DTLS server).
    async fn new_connection(
        &self,
        remote: PeerId,
        codecs: &[VideoCodec],
        subscription: bool,
    ) -> Result<Connection, String> {
        let settings = ConnectionSettings {
            answer_as_dtls_server: subscription,
            ..self.config.connection.clone()
        };
        build_connection(
            &settings,
            codecs,
            &self.config.name,
            remote,
            self.connection_events.clone(),
        )
        .await
        .map_err(|e| e.to_string())
    }

    fn new_call(
        machine: CallMachine,
        connection: Connection,
        remote_source: Option<MediaSource>,
    ) -> Call {
        Call {
            machine,
            connection,
            remote_source,
            remote_description_set: false,
            pending_candidates: Vec::new(),
            sending: None,
            prepared_video: None,
            tracks: Vec::new(),
            tracks_stop: CancellationToken::new(),
            relay_gathered: false,
            data: None,
            sends: true,
        }
    }
}

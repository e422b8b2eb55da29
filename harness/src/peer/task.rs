//! The peer task: one per synthetic peer, owning its signaling client and a
//! connection per call. Commands, signaling frames, connection events and
//! track news all arrive in one loop; WebRTC callbacks only forward to it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
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

use super::call::{CallInput, CallMachine, CallOutput, CallTimeouts};
use super::connection::{Connection, ConnectionEvent, ConnectionSettings, build_connection};
use super::events::{
    CallEnd, CallFailure, CallId, CallIds, CallReport, MediaKind, MediaSource, Misbehaviour,
    PeerCommand, PeerEvent, PeerEventKind, Role,
};
use super::receive::VideoReceiver;
use super::send::{MediaSettings, Outgoing, SendCounters, SendError, send};
use super::track::{TrackNews, TrackVerdict, receive};
use crate::clock::RunTime;
use crate::media::codec::{CodecError, VideoCodec, offered_video_codecs};
use crate::signaling::{
    CandidateInit, ClientConfig, Incoming, Outgoing as Signal, Received, SignalingClient,
};

/// Every peer of a run, by id (whose stamps and tone a receiver expects),
/// and the id of every call the runner has commanded, by (caller, callee),
/// so a callee files its events under the call the caller was told to make.
pub type Directory = Arc<RwLock<Roster>>;

#[derive(Debug, Default)]
pub struct Roster {
    sources: HashMap<PeerId, MediaSource>,
    calls: HashMap<(PeerId, PeerId), CallId>,
}

/// Enters a started peer in the run's directory.
pub(crate) fn register(directory: &Directory, id: PeerId, source: MediaSource) {
    directory
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .sources
        .insert(id, source);
}

/// What media from `id` should carry, if it is a peer of the run.
pub(crate) fn source_of(directory: &Directory, id: PeerId) -> Option<MediaSource> {
    directory
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .sources
        .get(&id)
        .copied()
}

/// Files the call the runner is about to command (before it does).
pub fn book_call(directory: &Directory, caller: PeerId, callee: PeerId, call: CallId) {
    directory
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .calls
        .insert((caller, callee), call);
}

/// The latest call `caller` was told to make to `callee`.
pub(crate) fn booked_call(directory: &Directory, caller: PeerId, callee: PeerId) -> Option<CallId> {
    directory
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .calls
        .get(&(caller, callee))
        .copied()
}

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
    pub directory: Directory,
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
        task: JoinHandle<()>,
    ) -> Self {
        PeerHandle {
            index,
            commands,
            task,
        }
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
    let index = config.index;
    let task = tokio::spawn(run(config, inbox, events));
    PeerHandle {
        index,
        commands,
        task,
    }
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
    remote_description_set: bool,
    /// Candidates that came before the remote description.
    pending_candidates: Vec<CandidateInit>,
    sending: Option<Sending>,
    /// Made once the call is negotiated (off the async workers: a decoder
    /// takes ~1.5 ms to create), for the video track to come.
    prepared_video: Option<JoinHandle<Result<VideoReceiver, CodecError>>>,
    tracks: Vec<JoinHandle<Option<TrackVerdict>>>,
    tracks_stop: CancellationToken,
    /// What negotiation chose for video.
    video_codec: Option<VideoCodec>,
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
                message,
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
                    peer.error(None, format!("{command:?}: the peer is cut off from the network"));
                }
                Some(PeerCommand::Call { to, call }) => peer.call(&mut client, to, call).await,
                Some(PeerCommand::Hangup { to }) => {
                    if peer.calls.contains_key(&to) {
                        peer.drive(&mut client, to, Instant::now(), CallInput::HangUp).await;
                    } else {
                        peer.error(Some(to), "hangup: no call with this peer".into());
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
                    peer.error(None, "the signaling server closed the connection".into());
                    lost = Some(CallFailure::SignalingClosed);
                    break;
                }
                Err(error) => {
                    peer.error(None, error.to_string());
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

    fn error(&self, remote: Option<PeerId>, message: String) {
        tracing::debug!(peer = self.config.index, ?remote, %message, "peer error");
        self.emit(PeerEventKind::Error { remote, message });
    }

    async fn connect(&mut self) -> Result<SignalingClient, String> {
        let config = &self.config;
        let mut client = SignalingClient::connect(&config.signaling_url, config.client.clone())
            .await
            .map_err(|e| e.to_string())?;
        let id = client.start().await.map_err(|e| e.to_string())?;
        register(&config.directory, id, MediaSource::Pattern(config.index));
        self.id = Some(id);
        self.emit(PeerEventKind::Started { id });
        Ok(client)
    }

    /// What media from `remote` should carry.
    fn expected_sender(&self, remote: PeerId) -> Option<MediaSource> {
        source_of(&self.config.directory, remote)
    }

    /// The next moment a call has something due (its answer, or its
    /// connection).
    fn next_answer_deadline(&self) -> Option<tokio::time::Instant> {
        self.calls
            .values()
            .filter_map(|c| c.machine.poll_timeout())
            .min()
            .map(tokio::time::Instant::from_std)
    }

    fn timeouts(&self) -> CallTimeouts {
        CallTimeouts {
            answer: self.config.answer_timeout,
            connect: self.config.connect_timeout,
        }
    }

    /// A connection for a call with `remote`, offering `codecs` for video.
    async fn new_connection(
        &self,
        remote: PeerId,
        codecs: &[VideoCodec],
    ) -> Result<Connection, String> {
        build_connection(
            &self.config.connection,
            codecs,
            &self.config.name,
            remote,
            self.connection_events.clone(),
        )
        .await
        .map_err(|e| e.to_string())
    }

    fn new_call(machine: CallMachine, connection: Connection) -> Call {
        Call {
            machine,
            connection,
            remote_description_set: false,
            pending_candidates: Vec::new(),
            sending: None,
            prepared_video: None,
            tracks: Vec::new(),
            tracks_stop: CancellationToken::new(),
            video_codec: None,
        }
    }

    /// The process dies: media stops at once, the OS closes the signaling
    /// connection without a close frame, and nobody is told anything.
    async fn crash(&mut self, mut client: SignalingClient) {
        if let Some(link) = &self.config.connection.link {
            link.silence();
        }
        self.offline = true;
        self.emit(PeerEventKind::Crashed);
        let remotes: Vec<PeerId> = self.calls.keys().copied().collect();
        for remote in remotes {
            self.drive(&mut client, remote, Instant::now(), CallInput::Abandoned)
                .await;
        }
        client.abandon();
        self.emit(PeerEventKind::Closed);
    }

    /// The network disappears; the peer lives on, unaware.
    fn vanish(&mut self) {
        match &self.config.connection.link {
            Some(link) => {
                link.silence();
                self.offline = true;
                self.emit(PeerEventKind::Vanished);
            }
            None => self.error(
                None,
                "vanish: this peer is not on an emulated network".into(),
            ),
        }
    }

    /// The peer's address changes; with `restart`, it restarts ICE itself
    /// (otherwise the other side is expected to).
    async fn move_to(&mut self, client: &mut SignalingClient, to: std::net::IpAddr, restart: bool) {
        let Some(link) = &self.config.connection.link else {
            return self.error(None, "move: this peer is not on an emulated network".into());
        };
        link.move_to(to);
        self.emit(PeerEventKind::Moved { to });
        if restart {
            let remotes: Vec<PeerId> = self.calls.keys().copied().collect();
            for remote in remotes {
                self.restart_ice(client, remote).await;
            }
        }
    }

    /// Offers an ICE restart on the call with `remote`; the answer comes
    /// back like any other.
    async fn restart_ice(&mut self, client: &mut SignalingClient, remote: PeerId) {
        let Some(call) = self.calls.get(&remote) else {
            return self.error(Some(remote), "ICE restart: no call with this peer".into());
        };
        let options = RTCOfferOptions { ice_restart: true };
        let offer = async {
            let offer = call.connection.pc.create_offer(Some(options)).await?;
            call.connection
                .pc
                .set_local_description(offer.clone())
                .await?;
            Ok::<_, webrtc::error::Error>(offer)
        }
        .await;
        match offer {
            Ok(offer) => match client
                .send(&Signal::Offer {
                    to: remote,
                    sdp: self.config.misbehave.outgoing_sdp(offer.sdp),
                })
                .await
            {
                Ok(()) => self.emit(PeerEventKind::IceRestartSent { remote }),
                Err(error) => {
                    self.error(Some(remote), format!("sending the restart offer: {error}"))
                }
            },
            Err(error) => self.error(Some(remote), format!("creating the restart offer: {error}")),
        }
    }

    async fn call(&mut self, client: &mut SignalingClient, to: PeerId, id: CallId) {
        if self.calls.contains_key(&to) {
            // Filed under the call asked for, not the one going on.
            let at = RunTime::now(self.config.epoch);
            for kind in [
                PeerEventKind::CallCommanded { remote: to },
                PeerEventKind::Error {
                    remote: Some(to),
                    message: "call: already in a call with this peer".into(),
                },
            ] {
                let _ = self.events.send(PeerEvent {
                    peer: self.config.index,
                    at,
                    call: Some(id),
                    kind,
                });
            }
            return;
        }
        self.call_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .open(to, Some(id));
        self.emit(PeerEventKind::CallCommanded { remote: to });
        let codecs = self.config.media.video.codecs.clone();
        let connection = match self.new_connection(to, &codecs).await {
            Ok(connection) => connection,
            Err(message) => return self.fail_before_call(to, Role::Caller, message),
        };
        let offer = async {
            let offer = connection.pc.create_offer(None).await?;
            connection.pc.set_local_description(offer.clone()).await?;
            Ok::<_, webrtc::error::Error>(offer)
        }
        .await;
        let call = Peer::new_call(
            CallMachine::caller(Instant::now(), self.timeouts()),
            connection,
        );
        let sdp = match offer {
            Ok(offer) => offer.sdp,
            Err(error) => {
                close_connection(&call.connection, self.close_deadline()).await;
                return self.fail_before_call(
                    to,
                    Role::Caller,
                    format!("creating the offer: {error}"),
                );
            }
        };
        self.calls.insert(to, call);
        let sdp = self.config.misbehave.outgoing_sdp(sdp);
        match client.send(&Signal::Offer { to, sdp }).await {
            Ok(()) => self.emit(PeerEventKind::OfferSent { remote: to }),
            Err(error) => {
                let failure = CallFailure::Negotiation(format!("sending the offer: {error}"));
                self.drive(client, to, Instant::now(), CallInput::Failed(failure))
                    .await;
            }
        }
    }

    /// A call that never got as far as having a connection.
    fn fail_before_call(&self, remote: PeerId, role: Role, message: String) {
        self.error(Some(remote), message.clone());
        let report = CallReport::new(remote, role, CallEnd::Failed(CallFailure::Local(message)));
        self.emit(PeerEventKind::CallEnded(Box::new(report)));
    }

    /// The remote of a frame: the sender the server named, or, from a
    /// server that names none (the tutorial's), the one call that fits.
    fn resolve(&self, from: Option<PeerId>, fits: impl Fn(&Call) -> bool) -> Option<PeerId> {
        from.or_else(|| {
            let mut fitting = self.calls.iter().filter(|(_, call)| fits(call));
            match (fitting.next(), fitting.next()) {
                (Some((id, _)), None) => Some(*id),
                _ => None,
            }
        })
    }

    async fn on_signal(&mut self, client: &mut SignalingClient, received: Received) {
        let at = received.at;
        match received.message {
            Incoming::Started { .. } => {}
            Incoming::Offer {
                from: Some(remote),
                sdp,
            } => self.on_offer(client, remote, sdp, at).await,
            Incoming::Offer { from: None, .. } => {
                self.error(None, "an offer without a sender cannot be answered".into());
            }
            Incoming::Answer { from, sdp } => {
                let Some(remote) = self.resolve(from, |call| call.machine.awaits_answer()) else {
                    return self.error(
                        from,
                        "an answer that matches no call waiting for one".into(),
                    );
                };
                self.on_answer(client, remote, sdp, at).await;
            }
            Incoming::Candidate { from, candidate } => {
                let Some(remote) = self.resolve(from, |_| true) else {
                    return self.error(from, "a candidate that matches no call".into());
                };
                self.on_remote_candidate(remote, candidate).await;
            }
            Incoming::Hangup { from } => {
                if let Some(remote) = self
                    .resolve(from, |_| true)
                    .filter(|r| self.calls.contains_key(r))
                {
                    self.drive(client, remote, at, CallInput::RemoteHungUp)
                        .await;
                }
            }
            Incoming::PeerLeft { id } => {
                if self.calls.contains_key(&id) {
                    self.emit_at(at, PeerEventKind::PeerLeft { remote: id });
                    self.drive(client, id, at, CallInput::PeerLeft).await;
                }
            }
            Incoming::Error(reply) => {
                let remote = reply.remote_id.as_deref().and_then(PeerId::parse);
                let failed_offer = reply.code == ErrorCode::UnknownPeer
                    && reply.in_reply_to.as_deref() == Some("offer");
                match remote {
                    Some(remote) if failed_offer && self.calls.contains_key(&remote) => {
                        let failure = CallFailure::OfferRefused(reply.to_string());
                        self.drive(client, remote, at, CallInput::Failed(failure))
                            .await;
                    }
                    // Candidates trailing an offer the server refused, or
                    // a hangup to a peer already gone or a call the other
                    // side already ended: nothing is wrong.
                    Some(remote)
                        if matches!(reply.code, ErrorCode::UnknownPeer | ErrorCode::NoCall)
                            && !self.calls.contains_key(&remote) =>
                    {
                        tracing::debug!(%remote, %reply, "unknown peer, for a call that has ended");
                    }
                    _ => self.error(remote, format!("the server replied {reply}")),
                }
            }
        }
    }

    async fn on_offer(
        &mut self,
        client: &mut SignalingClient,
        remote: PeerId,
        sdp: String,
        at: Instant,
    ) {
        let renegotiation = self.calls.contains_key(&remote);
        if !renegotiation {
            let call = self
                .id
                .and_then(|me| booked_call(&self.config.directory, remote, me));
            self.call_ids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .open(remote, call);
        }
        self.emit_at(at, PeerEventKind::OfferReceived { remote });
        if self.config.misbehave.ignores_offers && !renegotiation {
            return;
        }
        if !renegotiation {
            // The offer's order decides among the codecs both sides take.
            let offered = offered_video_codecs(&sdp);
            let ours = &self.config.media.video.codecs;
            let codecs: Vec<VideoCodec> = offered
                .iter()
                .copied()
                .filter(|codec| ours.contains(codec))
                .collect();
            if codecs.is_empty() {
                let failure = CallFailure::NoCommonCodec {
                    offered,
                    ours: ours.clone(),
                };
                self.error(Some(remote), failure.to_string());
                // Tell the caller, so its call ends now rather than unanswered.
                let _ = client.send(&Signal::Hangup { to: remote }).await;
                let report = CallReport::new(remote, Role::Callee, CallEnd::Failed(failure));
                self.emit(PeerEventKind::CallEnded(Box::new(report)));
                return;
            }
            match self.new_connection(remote, &codecs).await {
                Ok(connection) => {
                    let machine = CallMachine::callee(self.timeouts());
                    self.calls
                        .insert(remote, Peer::new_call(machine, connection));
                }
                Err(message) => return self.fail_before_call(remote, Role::Callee, message),
            }
        } else {
            self.drive(client, remote, at, CallInput::OfferReceived)
                .await;
        }
        let call = self.calls.get_mut(&remote).expect("inserted above");
        let answer = async {
            let pc = &call.connection.pc;
            pc.set_remote_description(RTCSessionDescription::offer(sdp)?)
                .await?;
            let answer = pc.create_answer(None).await?;
            pc.set_local_description(answer.clone()).await?;
            Ok::<_, webrtc::error::Error>(answer)
        }
        .await;
        match answer {
            Ok(answer) => {
                call.remote_description_set = true;
                let pending = std::mem::take(&mut call.pending_candidates);
                for candidate in pending {
                    self.on_remote_candidate(remote, candidate).await;
                }
                match client
                    .send(&Signal::Answer {
                        to: remote,
                        sdp: self.config.misbehave.outgoing_sdp(answer.sdp),
                    })
                    .await
                {
                    Ok(()) => {
                        self.emit(PeerEventKind::AnswerSent { remote });
                        self.drive(client, remote, Instant::now(), CallInput::AnswerSent)
                            .await;
                    }
                    Err(error) => {
                        let failure =
                            CallFailure::Negotiation(format!("sending the answer: {error}"));
                        self.drive(client, remote, Instant::now(), CallInput::Failed(failure))
                            .await;
                    }
                }
            }
            Err(error) => {
                let failure = CallFailure::Negotiation(format!("answering the offer: {error}"));
                self.drive(client, remote, Instant::now(), CallInput::Failed(failure))
                    .await;
            }
        }
    }

    async fn on_answer(
        &mut self,
        client: &mut SignalingClient,
        remote: PeerId,
        sdp: String,
        at: Instant,
    ) {
        let Some(call) = self.calls.get_mut(&remote) else {
            return self.error(Some(remote), "an answer for no call".into());
        };
        let applied = async {
            let description = RTCSessionDescription::answer(sdp)?;
            call.connection.pc.set_remote_description(description).await
        }
        .await;
        match applied {
            Ok(()) => {
                call.remote_description_set = true;
                let pending = std::mem::take(&mut call.pending_candidates);
                self.emit_at(at, PeerEventKind::AnswerReceived { remote });
                for candidate in pending {
                    self.on_remote_candidate(remote, candidate).await;
                }
                self.drive(client, remote, at, CallInput::AnswerReceived)
                    .await;
            }
            Err(error) => {
                let failure = CallFailure::Negotiation(format!("applying the answer: {error}"));
                self.drive(client, remote, at, CallInput::AnswerUnusable(failure))
                    .await;
            }
        }
    }

    async fn on_remote_candidate(&mut self, remote: PeerId, candidate: CandidateInit) {
        let Some(call) = self.calls.get_mut(&remote) else {
            return; // a candidate trailing a call that has ended
        };
        if !call.remote_description_set {
            call.pending_candidates.push(candidate);
            return;
        }
        let init = RTCIceCandidateInit::from(candidate);
        if let Err(error) = call.connection.pc.add_ice_candidate(init).await {
            self.error(Some(remote), format!("adding a remote candidate: {error}"));
        }
    }

    async fn on_connection_event(
        &mut self,
        client: &mut SignalingClient,
        remote: PeerId,
        at: Instant,
        event: ConnectionEvent,
    ) {
        if !self.calls.contains_key(&remote) {
            return; // late news from a call that has ended
        }
        match event {
            ConnectionEvent::LocalCandidate(_) if self.offline => {}
            ConnectionEvent::LocalCandidate(candidate) => {
                if let Err(error) = client
                    .send(&Signal::Candidate {
                        to: remote,
                        candidate,
                    })
                    .await
                {
                    self.error(Some(remote), format!("sending a candidate: {error}"));
                }
            }
            ConnectionEvent::IceState(state) => {
                let input = match state {
                    RTCIceConnectionState::Connected => CallInput::IceConnected,
                    RTCIceConnectionState::Checking => CallInput::IceChecking,
                    RTCIceConnectionState::Disconnected => CallInput::IceDisconnected,
                    RTCIceConnectionState::Failed => CallInput::IceFailed,
                    _ => return,
                };
                self.drive(client, remote, at, input).await;
            }
            ConnectionEvent::State(RTCPeerConnectionState::Connected) => {
                self.drive(client, remote, at, CallInput::Connected).await;
            }
            ConnectionEvent::State(RTCPeerConnectionState::Failed) => {
                // The library reports the connection failed without always
                // reporting ICE failed first: the machine says which it was.
                self.drive(client, remote, at, CallInput::ConnectionFailed)
                    .await;
            }
            ConnectionEvent::State(_) => {}
            ConnectionEvent::Track(track) => {
                let expected = self.expected_sender(remote);
                let Some(expected) = expected else {
                    return self.error(
                        Some(remote),
                        "media from a peer not in the run's directory".into(),
                    );
                };
                let from = match expected {
                    MediaSource::Pattern(index) => index.to_string(),
                    MediaSource::Browser => format!("browser-{remote}"),
                };
                let record = self
                    .config
                    .record_audio_dir
                    .as_ref()
                    .map(|dir| dir.join(format!("{}-from-{from}.wav", self.config.index)));
                let call = self.calls.get_mut(&remote).expect("checked above");
                call.tracks.push(tokio::spawn(receive(
                    track,
                    call.prepared_video.take(),
                    self.config.media.shared.clone(),
                    expected,
                    self.config.epoch,
                    remote,
                    self.track_news.clone(),
                    record,
                    call.tracks_stop.clone(),
                )));
            }
        }
    }

    /// Once a call is negotiated: starts its sender, which prepares the
    /// first keyframe and fires when the connection is up, and makes the
    /// video receiver ready for the first packet.
    async fn prepare_media(&mut self, remote: PeerId) {
        let expected = self.expected_sender(remote);
        let Some(call) = self.calls.get_mut(&remote) else {
            return;
        };
        if call.sending.is_some() {
            return; // a renegotiation (an ICE restart) of a running call
        }
        let (Some((video_mime, video_payload_type)), Some((_, audio_payload_type))) = (
            negotiated_codec(&call.connection.video_sender).await,
            negotiated_codec(&call.connection.audio_sender).await,
        ) else {
            return self.error(
                Some(remote),
                "no codec was negotiated for our tracks".into(),
            );
        };
        let Some(video_codec) = VideoCodec::from_mime_type(&video_mime) else {
            return self.error(
                Some(remote),
                format!("the negotiated video codec {video_mime} is not one of ours"),
            );
        };
        if let Err(error) = call.connection.switch_video_codec(video_codec).await {
            return self.error(Some(remote), error.to_string());
        }
        call.video_codec = Some(video_codec);
        if let Some(expected) = expected {
            let shared = self.config.media.shared.clone();
            call.prepared_video = Some(tokio::task::spawn_blocking(move || {
                match (shared, expected) {
                    (Some(clip), MediaSource::Pattern(sender)) => {
                        Ok(VideoReceiver::shared(sender, clip))
                    }
                    (_, source) => VideoReceiver::for_source(source, video_codec),
                }
            }));
        }
        let connection = &call.connection;
        let tracks = Outgoing {
            video: Arc::clone(&connection.video),
            video_codec,
            audio: Arc::clone(&connection.audio),
            video_ssrc: connection.video_ssrc,
            audio_ssrc: connection.audio_ssrc,
            video_payload_type,
            audio_payload_type,
        };
        let counters = Arc::new(SendCounters::default());
        let (ice_connected, connected) = (CancellationToken::new(), CancellationToken::new());
        // Either may have come up before we got here.
        if call.machine.ice_up() {
            ice_connected.cancel();
        }
        if call.machine.was_connected() {
            connected.cancel();
        }
        let stop = CancellationToken::new();
        let task = tokio::spawn(send(
            tracks,
            self.config.index,
            self.config.media.clone(),
            self.config.epoch,
            Arc::clone(&counters),
            ice_connected.clone(),
            connected.clone(),
            stop.clone(),
        ));
        call.sending = Some(Sending {
            ice_connected,
            connected,
            stop,
            task,
            counters,
        });
    }

    fn on_track_news(&self, remote: PeerId, at: Instant, news: TrackNews) {
        match news {
            TrackNews::FirstRtp(kind) => self.emit_at(at, PeerEventKind::FirstRtp { remote, kind }),
            TrackNews::FirstFrame(stamp) => {
                self.emit_at(at, PeerEventKind::FirstFrame { remote, stamp })
            }
            TrackNews::FirstAudio => self.emit_at(at, PeerEventKind::FirstAudio { remote }),
            TrackNews::Failed(message) => self.error(Some(remote), message),
        }
    }

    /// Fails the calls whose answer, or connection, is overdue.
    async fn expire_overdue(&mut self, client: &mut SignalingClient) {
        let now = Instant::now();
        let due: Vec<PeerId> = self
            .calls
            .iter()
            .filter(|(_, call)| call.machine.poll_timeout().is_some_and(|at| at <= now))
            .map(|(remote, _)| *remote)
            .collect();
        for remote in due {
            let Some(call) = self.calls.get_mut(&remote) else {
                continue;
            };
            let outputs = call.machine.handle_timeout(now);
            self.act(client, remote, now, outputs).await;
        }
    }

    /// Feeds the call with `remote` what happened at `at`, and does what
    /// its machine says.
    async fn drive(
        &mut self,
        client: &mut SignalingClient,
        remote: PeerId,
        at: Instant,
        input: CallInput,
    ) {
        let Some(call) = self.calls.get_mut(&remote) else {
            return; // news of a call that has ended
        };
        let outputs = call.machine.handle(input, at);
        self.act(client, remote, at, outputs).await;
    }

    async fn act(
        &mut self,
        client: &mut SignalingClient,
        remote: PeerId,
        at: Instant,
        outputs: Vec<CallOutput>,
    ) {
        for output in outputs {
            let sending = self.calls.get(&remote).and_then(|c| c.sending.as_ref());
            match output {
                CallOutput::Negotiated => self.prepare_media(remote).await,
                CallOutput::IceUp => {
                    if let Some(sending) = sending {
                        sending.ice_connected.cancel();
                    }
                    self.emit_at(at, PeerEventKind::IceConnected { remote });
                }
                CallOutput::IceDown => self.emit_at(at, PeerEventKind::IceDisconnected { remote }),
                CallOutput::IceGaveUp => self.emit_at(at, PeerEventKind::IceFailed { remote }),
                CallOutput::Up => {
                    self.emit_at(at, PeerEventKind::Connected { remote });
                    if let Some(sending) = sending {
                        sending.connected.cancel();
                    }
                }
                CallOutput::End { end, tell_remote } => {
                    self.end_call(client, remote, end, tell_remote).await;
                }
            }
        }
    }

    /// When a call being ended now must be done: the teardown's bound, or
    /// one call's.
    fn close_deadline(&self) -> tokio::time::Instant {
        self.closing_by
            .unwrap_or_else(|| tokio::time::Instant::now() + CALL_CLOSE)
    }

    /// Ends a call (its machine has): tells the other side if it says so,
    /// stops media, closes the connection and reports what was received.
    async fn end_call(
        &mut self,
        client: &mut SignalingClient,
        remote: PeerId,
        end: CallEnd,
        tell_remote: bool,
    ) {
        let Some(call) = self.calls.remove(&remote) else {
            return;
        };
        if tell_remote && !self.offline {
            // Best effort: the server may already have dropped the call.
            let _ = client.send(&Signal::Hangup { to: remote }).await;
        }
        let mut report = CallReport::new(remote, call.machine.role(), end);
        report.video_codec = call.video_codec;
        // One bound for the whole call: media tasks and connection together.
        let deadline = self.close_deadline();
        if let Some(sending) = call.sending {
            sending.stop.cancel();
            match timeout_at(deadline, sending.task).await {
                Ok(Ok(Err(error))) => self.error(Some(remote), format!("sending media: {error}")),
                Ok(_) => {}
                Err(_) => self.error(Some(remote), "the media sender did not stop".into()),
            }
            let counters = &sending.counters;
            use std::sync::atomic::Ordering::Relaxed;
            report.frames_sent = counters.frames_sent.load(Relaxed);
            report.keyframes_sent = counters.keyframes_sent.load(Relaxed);
            report.keyframe_requests_received = counters.keyframe_requests.load(Relaxed);
            report.audio_packets_sent = counters.audio_packets_sent.load(Relaxed);
            report.video_sent = counters.video_span.span();
            report.audio_sent = counters.audio_span.span();
        }
        call.tracks_stop.cancel();
        for track in call.tracks {
            match timeout_at(deadline, track).await {
                Ok(Ok(Some(TrackVerdict::Video {
                    verdict,
                    keyframe_requests,
                }))) => {
                    report.video = Some(verdict);
                    report.keyframe_requests_sent = keyframe_requests;
                }
                Ok(Ok(Some(TrackVerdict::Audio(verdict)))) => report.audio = Some(verdict),
                Ok(_) => {}
                Err(_) => self.error(Some(remote), "a track reader did not stop".into()),
            }
        }
        close_connection(&call.connection, deadline).await;
        self.emit(PeerEventKind::CallEnded(Box::new(report)));
    }
}

/// Closes a connection (never just drops it: its driver task would live on).
async fn close_connection(connection: &Connection, deadline: tokio::time::Instant) {
    match timeout_at(deadline, connection.pc.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "closing a peer connection"),
        Err(_) => tracing::warn!("a peer connection did not close within its bound"),
    }
}

/// The codec a sender sends, by negotiation (the first both sides took):
/// its MIME type and payload type.
async fn negotiated_codec(sender: &Arc<dyn RtpSender>) -> Option<(String, u8)> {
    let parameters = sender.get_parameters().await.ok()?;
    parameters
        .rtp_parameters
        .codecs
        .first()
        .map(|c| (c.rtp_codec.mime_type.clone(), c.payload_type))
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
        }
    }
}

//! One scenario's peers: started, driven along the timeline (the actions,
//! each call numbered as it is commanded), closed; their events logged as
//! the run's record.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use callprobe_server::protocol::PeerId;
use futures_util::future::join_all;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::browser::{BrowserPeerConfig, page_url_for, spawn_browser_peer};
use crate::clock::RunTime;
use crate::coturn::Coturn;
use crate::net::{Direction, LinkControl, Network};
use crate::netns::MEDIA_SERVER_ADDRESS;
use crate::peer::{
    CallId, CallTimeouts, ConnectionSettings, Introduction, MediaSettings, MediaSource,
    PeerCommand, PeerConfig, PeerEvent, PeerEventKind, PeerHandle, spawn_peer,
};
use crate::record::ActionDone;
use crate::results::{LinkSnapshot, Status};
use crate::scenario::{Action, OwnedServer, PeerKind, RestartBy, Scenario, Verb};
use crate::signaling::{ClientConfig, Protocol};

use super::Progress;
use super::setup::{ServerUnderTest, SfuUnderTest};

/// Bound on every peer starting (connect + `start`), beyond a per-peer share.
const STARTUP_BASE: Duration = Duration::from_secs(10);
/// A browser takes a second or two to start and open its page; under load,
/// more.
const BROWSER_STARTUP: Duration = Duration::from_secs(30);
/// How often a browser call's stats are read and its video grabbed.
const BROWSER_SAMPLE_INTERVAL: Duration = Duration::from_millis(500);
/// Bound on closing one peer (hang up, close connections, end its task):
/// over the peer's own teardown bound, so a peer is aborted only when it
/// is stuck, not when it is slow.
const CLOSE_BOUND: Duration = Duration::from_secs(10);
const _: () = assert!(crate::peer::PEER_CLOSE.as_secs() < CLOSE_BOUND.as_secs());
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// A browser peer in the place of a synthetic one: the same name, index,
/// server and clock; its camera at the peer's video size and rate.
fn browser_config(config: PeerConfig, chromium: PathBuf) -> BrowserPeerConfig {
    let video = &config.media.video;
    BrowserPeerConfig {
        page_url: page_url_for(&config.signaling_url),
        width: video.width as u32,
        height: video.height as u32,
        fps: video.fps,
        name: config.name,
        index: config.index,
        chromium,
        epoch: config.epoch,
        launch_timeout: BROWSER_STARTUP,
        sample_interval: BROWSER_SAMPLE_INTERVAL,
        timeouts: CallTimeouts {
            answer: config.answer_timeout,
            connect: config.connect_timeout,
        },
        data: config.media.data,
    }
}

/// One scenario's peers and their event log.
pub(super) struct Run<'a> {
    scenario: &'a Scenario,
    configs: Vec<PeerConfig>,
    /// The browser binary, for browser peers.
    pub(super) chromium: Option<PathBuf>,
    peers: Vec<PeerHandle>,
    /// What each started peer's media carries, by index.
    sources: Vec<MediaSource>,
    /// Each peer's attachment to the in-process network, by index: the
    /// runner is its one owner, and changes it at each fault's moment.
    links: Vec<LinkControl>,
    /// The call going on between each pair by the timeline so far: for
    /// the hangup that ends it, and for ICE restarts by the partners of a
    /// peer that moved.
    calls: HashMap<(usize, usize), CallId>,
    next_call: u32,
    ids: Vec<Option<PeerId>>,
    /// The run's clock origin.
    epoch: Instant,
    actions: Vec<ActionDone>,
    events: Vec<PeerEvent>,
    /// What the logged events hold beyond the log itself, and the whole
    /// record's size for the load probe (memory kept on purpose).
    event_heap: usize,
    pub(super) record_bytes: Arc<AtomicU64>,
    inbox: mpsc::UnboundedReceiver<PeerEvent>,
    outbox: Option<mpsc::UnboundedSender<PeerEvent>>,
    /// The TURN server the run started (killed by `turn-crash`, or when
    /// the run is over).
    turn: Option<Coturn>,
    /// The media server and rooms of a room scenario (its Janus killed by
    /// `crash-server = "sfu"`, or when the run is over).
    sfu: Option<SfuUnderTest>,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        scenario: &'a Scenario,
        server: &ServerUnderTest,
        turn: Option<Coturn>,
        sfu: Option<SfuUnderTest>,
        media: Vec<MediaSettings>,
        epoch: Instant,
    ) -> Self {
        let (outbox, inbox) = mpsc::unbounded_channel();
        let client = ClientConfig {
            trust_pem: server.trust_pem.clone(),
            ..ClientConfig::default()
        };
        // A Janus the run started sends only from its own interface: the
        // peers' media is there too (`netns`).
        let address = match &sfu {
            Some(SfuUnderTest { janus: Some(_), .. }) => IpAddr::from(MEDIA_SERVER_ADDRESS),
            _ => IpAddr::from([127, 0, 0, 1]),
        };
        let network = Network::new(scenario.seed);
        let links: Vec<LinkControl> = (0..scenario.peers.len())
            .map(|index| network.attach(index as u16, address))
            .collect();
        let movers: HashSet<usize> = scenario
            .actions
            .iter()
            .filter_map(|a| match a.verb {
                Verb::Move { peer, .. } => Some(peer),
                _ => None,
            })
            .collect();
        let detection = scenario.detection;
        let spawned_turn = turn.as_ref().map(Coturn::ice_server);
        let configs = scenario
            .peers
            .iter()
            .zip(media)
            .enumerate()
            .map(|(index, (peer, media))| PeerConfig {
                name: peer.name.clone(),
                index: index as u16,
                signaling_url: match &sfu {
                    Some(sfu) => sfu.url.clone(),
                    None => server.url.clone(),
                },
                client: ClientConfig {
                    protocol: match (&sfu, peer.room) {
                        (Some(sfu), Some(room)) => match sfu.whip_endpoints() {
                            Some(mut endpoints) => {
                                if peer.misbehave.wrong_token {
                                    endpoints.token = Some("not-the-servers-token".into());
                                }
                                Protocol::Whip(endpoints)
                            }
                            None => Protocol::JanusVideoRoom {
                                room: sfu.rooms[room.min(sfu.rooms.len() - 1)],
                            },
                        },
                        _ => Protocol::Tutorial,
                    },
                    ..client.clone()
                },
                connection: ConnectionSettings {
                    link: Some(Arc::clone(links[index].link())),
                    rebind_on_ice_restart: movers.contains(&index),
                    ice_disconnected_timeout: detection.disconnected,
                    ice_failed_timeout: detection.failed,
                    ice_keepalive_interval: detection.keepalive,
                    ice_servers: peer.ice.servers_with(spawned_turn.as_ref()),
                    ice_policy: peer.ice.policy,
                    ..ConnectionSettings::default()
                },
                media,
                epoch,
                answer_timeout: scenario.answer_timeout,
                connect_timeout: scenario.connect_timeout,
                record_audio_dir: None,
                misbehave: peer.misbehave,
            })
            .collect();
        Run {
            scenario,
            configs,
            chromium: None,
            peers: Vec::new(),
            sources: Vec::new(),
            links,
            calls: HashMap::new(),
            next_call: 0,
            ids: vec![None; scenario.peers.len()],
            epoch,
            actions: Vec::new(),
            events: Vec::new(),
            event_heap: 0,
            record_bytes: Arc::default(),
            inbox,
            outbox: Some(outbox),
            turn,
            sfu,
        }
    }

    /// Makes the media server's endpoints for every room's publishers,
    /// now that their ids are known (WHIP endpoints are named by them).
    async fn provision_publishers(&self) -> Result<(), (Status, String)> {
        let (Some(sfu), Some(plan)) = (&self.sfu, &self.scenario.sfu) else {
            return Ok(());
        };
        let publishers: Vec<(PeerId, usize)> = plan
            .rooms
            .iter()
            .enumerate()
            .flat_map(|(room, spec)| spec.publishers.iter().map(move |&p| (p, room)))
            .filter_map(|(peer, room)| self.ids[peer].map(|id| (id, room)))
            .collect();
        sfu.provision(&publishers)
            .await
            .map_err(|error| (Status::Error, format!("the WHIP server: {error}")))
    }

    /// What peer `index`'s media carries.
    fn source(&self, index: usize) -> MediaSource {
        self.sources[index]
    }

    fn log(&mut self, event: PeerEvent) {
        if let PeerEventKind::Started { id } = event.kind {
            self.ids[usize::from(event.peer)] = Some(id);
        }
        self.event_heap += event.retained_bytes() - std::mem::size_of::<PeerEvent>();
        self.events.push(event);
        let held = self.event_heap + self.events.capacity() * std::mem::size_of::<PeerEvent>();
        self.record_bytes.store(held as u64, Ordering::Relaxed);
    }

    /// Starts every peer and waits, bounded, until each has its id. Fails
    /// with `Interrupted` on Ctrl-C, or `Error` when a peer did not start.
    pub(super) async fn start_peers(
        &mut self,
        cancel: &CancellationToken,
    ) -> Result<(), (Status, String)> {
        let outbox = self.outbox.clone().expect("open until finish");
        let kinds = self.scenario.peers.iter().map(|p| p.kind);
        for (config, kind) in std::mem::take(&mut self.configs).into_iter().zip(kinds) {
            let (handle, source) = match (kind, &self.chromium) {
                (PeerKind::Browser, Some(chromium)) => {
                    let source = MediaSource::Browser(config.index);
                    let handle = spawn_browser_peer(
                        browser_config(config, chromium.clone()),
                        outbox.clone(),
                    );
                    (handle, source)
                }
                _ => {
                    let source = MediaSource::Pattern(config.index);
                    (spawn_peer(config, outbox.clone()), source)
                }
            };
            self.peers.push(handle);
            self.sources.push(source);
        }
        let mut bound = STARTUP_BASE + Duration::from_millis(10) * self.peers.len() as u32;
        if self.scenario.has_browsers() {
            bound += BROWSER_STARTUP;
        }
        let deadline = tokio::time::Instant::now() + bound;
        let mut ended = vec![false; self.peers.len()];
        while self
            .ids
            .iter()
            .zip(&ended)
            .any(|(id, ended)| id.is_none() && !ended)
        {
            let event = tokio::select! {
                event = tokio::time::timeout_at(deadline, self.inbox.recv()) => event,
                () = cancel.cancelled() => {
                    return Err((Status::Interrupted, "interrupted while peers were starting".into()));
                }
            };
            match event {
                Ok(Some(event)) => {
                    if matches!(event.kind, PeerEventKind::Closed) {
                        ended[usize::from(event.peer)] = true;
                    }
                    self.log(event);
                }
                Ok(None) => unreachable!("the runner holds a sender"),
                Err(_) => break,
            }
        }
        let missing: Vec<&str> = self
            .ids
            .iter()
            .zip(&self.scenario.peers)
            .filter(|(id, _)| id.is_none())
            .map(|(_, peer)| peer.name.as_str())
            .collect();
        if missing.is_empty() {
            return self.provision_publishers().await;
        }
        let why = self.events.iter().find_map(|e| match &e.kind {
            PeerEventKind::Error { error, .. } => Some(error.to_string()),
            _ => None,
        });
        Err((
            Status::Error,
            format!(
                "{} of {} peers did not start within {bound:?} ({}{}){}",
                missing.len(),
                self.peers.len(),
                missing
                    .iter()
                    .take(5)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                if missing.len() > 5 { ", …" } else { "" },
                why.map(|w| format!(": {w}")).unwrap_or_default(),
            ),
        ))
    }

    /// Carries out the actions at their times until the scenario's end.
    /// Returns why it stopped early, if it did.
    pub(super) async fn timeline(
        &mut self,
        started: Instant,
        cancel: &CancellationToken,
        progress: &dyn Progress,
    ) -> Option<String> {
        let start = tokio::time::Instant::from_std(started);
        let end = start + self.scenario.duration;
        let mut next_tick = start;
        let mut first_frames = 0;
        let mut pending = self.scenario.actions.iter().enumerate().peekable();
        loop {
            let next_action = pending.peek().map(|(_, a)| start + a.at);
            let wake = next_action.unwrap_or(end).min(end).min(next_tick);
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Some("interrupted (Ctrl-C)".into()),
                event = self.inbox.recv() => {
                    let event = event.expect("the runner holds a sender");
                    if matches!(event.kind, PeerEventKind::FirstFrame { .. }) {
                        first_frames += 1;
                    }
                    self.log(event);
                }
                () = tokio::time::sleep_until(wake) => {
                    let now = tokio::time::Instant::now();
                    while let Some((index, action)) = pending.next_if(|(_, a)| start + a.at <= now) {
                        self.act(index, action);
                    }
                    if now >= next_tick {
                        progress.tick(now - start, first_frames);
                        next_tick = now + PROGRESS_EVERY;
                    }
                    if now >= end {
                        return None;
                    }
                }
            }
        }
    }

    fn act(&mut self, index: usize, action: &Action) {
        tracing::debug!(origin = %action.origin, verb = ?action.verb, "action");
        let at = RunTime::now(self.epoch);
        let pair = |a: usize, b: usize| (a.min(b), a.max(b));
        let mut commands = Vec::new();
        let mut call_of_action = None;
        match action.verb {
            Verb::Call { from, to, .. } => {
                let call = CallId(self.next_call);
                self.next_call += 1;
                call_of_action = Some(call);
                self.calls.insert(pair(from, to), call);
                if let (Some(caller), Some(_)) = (self.ids[from], self.ids[to]) {
                    // Before the caller is told: the callee knows of the
                    // call by the time its offer can arrive.
                    let introduction = Introduction {
                        caller,
                        call,
                        source: self.source(from),
                    };
                    if let Err(gone) = self.peers[to].introduce(introduction) {
                        tracing::warn!(%gone, origin = %action.origin, "call to a peer that has ended");
                    }
                }
                let expect = self.source(to);
                commands.push((
                    from,
                    self.ids[to].map(|to| PeerCommand::Call { to, call, expect }),
                ));
            }
            Verb::Hangup { from, to } => {
                call_of_action = self.calls.remove(&pair(from, to));
                commands.push((from, self.ids[to].map(|to| PeerCommand::Hangup { to })));
            }
            Verb::Leave { peer } => {
                self.calls.retain(|&(a, b), _| a != peer && b != peer);
                commands.push((peer, Some(PeerCommand::Close)));
            }
            Verb::Crash { peer } => {
                self.calls.retain(|&(a, b), _| a != peer && b != peer);
                self.links[peer].silence();
                commands.push((peer, Some(PeerCommand::Crash)));
            }
            Verb::Vanish { peer } => {
                self.calls.retain(|&(a, b), _| a != peer && b != peer);
                self.links[peer].silence();
                commands.push((peer, Some(PeerCommand::Vanish)));
            }
            Verb::Move { peer, to, restart } => {
                self.links[peer].move_to(to);
                let by_mover = restart == RestartBy::Mover;
                commands.push((
                    peer,
                    Some(PeerCommand::Move {
                        to,
                        restart: by_mover,
                    }),
                ));
                if !by_mover {
                    let partners = self.calls.keys().filter_map(|&(a, b)| {
                        (a == peer).then_some(b).or((b == peer).then_some(a))
                    });
                    for partner in partners {
                        let with = self.ids[peer].map(|with| PeerCommand::RestartIce { with });
                        commands.push((partner, with));
                    }
                }
            }
            Verb::Impair {
                peer,
                direction,
                ref impairment,
            } => self.links[peer].impair(direction, impairment.clone()),
            Verb::Restore { peer } => self.links[peer].restore(Direction::Both),
            Verb::Media { peer, fault } => {
                commands.push((peer, Some(PeerCommand::MediaFault(fault))));
            }
            Verb::DropSignaling { peer } => {
                self.calls.retain(|&(a, b), _| a != peer && b != peer);
                commands.push((peer, Some(PeerCommand::DropSignaling)));
            }
            // SIGKILL, then reaping it: milliseconds. The calls through it
            // find out for themselves, as they would in production.
            Verb::CrashServer {
                server: OwnedServer::Turn,
            } => match &mut self.turn {
                Some(turn) => turn.kill(),
                None => tracing::warn!(origin = %action.origin, "no TURN server to crash"),
            },
            Verb::CrashServer {
                server: OwnedServer::Sfu,
            } => match self.sfu.as_mut().and_then(|sfu| sfu.janus.as_mut()) {
                Some(janus) => janus.kill(),
                None => tracing::warn!(origin = %action.origin, "no media server to crash"),
            },
            Verb::Publish { peer } => {
                let call = CallId(self.next_call);
                self.next_call += 1;
                call_of_action = Some(call);
                self.calls.insert(pair(peer, peer), call);
                commands.push((peer, Some(PeerCommand::Publish { call })));
            }
            Verb::Subscribe { peer, to } => {
                let call = CallId(self.next_call);
                self.next_call += 1;
                call_of_action = Some(call);
                self.calls.insert(pair(peer, to), call);
                let expect = self.source(to);
                commands.push((
                    peer,
                    self.ids[to].map(|to| PeerCommand::Subscribe { to, call, expect }),
                ));
            }
        }
        self.actions.push(ActionDone {
            at,
            index,
            call: call_of_action,
        });
        for (peer, command) in commands {
            match command {
                Some(command) => {
                    if let Err(gone) = self.peers[peer].command(command) {
                        tracing::warn!(%gone, origin = %action.origin, "action for a peer that has ended");
                    }
                }
                None => tracing::warn!(
                    origin = %action.origin,
                    "action involving a peer that never started"
                ),
            }
        }
    }

    /// Closes every peer (bounded), drains the last events, and hands over
    /// (actions carried out, events, what each link saw).
    pub(super) async fn finish(mut self) -> (Vec<ActionDone>, Vec<PeerEvent>, Vec<LinkSnapshot>) {
        drop(self.outbox.take());
        let peers = std::mem::take(&mut self.peers);
        let closing = join_all(peers.into_iter().map(|peer| peer.close(CLOSE_BOUND)));
        tokio::pin!(closing);
        loop {
            tokio::select! {
                _ = &mut closing => break,
                Some(event) = self.inbox.recv() => self.log(event),
            }
        }
        // Every peer task has ended (or was aborted), dropping its sender;
        // bounded all the same, in case a helper task still holds one.
        let drain = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Some(event)) = tokio::time::timeout_at(drain, self.inbox.recv()).await {
            self.log(event);
        }
        // The TURN and media servers outlive every call through them (all
        // closed above).
        if let Some(mut turn) = self.turn.take() {
            turn.kill();
        }
        if let Some(sfu) = self.sfu.take() {
            sfu.finish().await;
        }
        let links = self
            .links
            .iter()
            .map(|control| LinkSnapshot::of(control.link(), self.epoch))
            .collect();
        (self.actions, self.events, links)
    }
}

//! The driver the peer tests, browser tests, benches and examples share: a
//! server, N peers, and one event log that tests wait on (always with a
//! bound).

use std::time::{Duration, Instant};

use crate::{CpuSlot, cpu_slot};
use callprobe_harness::media::codec::VideoCodec;
use callprobe_harness::peer::{
    CallId, CallReport, ConnectionSettings, Introduction, MediaSettings, MediaSource, Misbehaviour,
    PeerCommand, PeerConfig, PeerEvent, PeerEventKind, PeerHandle, spawn_peer,
};
use callprobe_harness::signaling::ClientConfig;
use callprobe_harness::timeline::SetupTimeline;
use callprobe_server::protocol::PeerId;
use callprobe_server::{RunningServer, Server, ServerConfig};
use tokio::sync::mpsc;

pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestRun {
    /// Media tests take turns for the machine's cores (see the testkit).
    _slot: CpuSlot,
    pub server: Option<RunningServer>,
    pub url: String,
    pub epoch: Instant,
    pub events: Vec<PeerEvent>,
    inbox: mpsc::UnboundedReceiver<PeerEvent>,
    pub outbox: mpsc::UnboundedSender<PeerEvent>,
    pub peers: Vec<PeerHandle>,
    pub ids: Vec<PeerId>,
    /// What each peer's media carries (set where peers are started).
    pub sources: Vec<MediaSource>,
    /// Every call commanded: (caller, callee, its id).
    calls: Vec<(u16, u16, CallId)>,
    /// Set before `start_peers` to change how long callers wait for answers.
    pub answer_timeout: Duration,
    /// Set before `start_peers` to change the peers' connection timers.
    pub connection: ConnectionSettings,
    /// Set before `start_peers` to change what the peers send.
    pub media: MediaSettings,
    /// Set before `start_peers` to give peer N its own video codecs
    /// (peers past the list keep `media`'s).
    pub codecs: Vec<Vec<VideoCodec>>,
    /// Set before `start_peers` to make peer N break the protocol.
    pub misbehave: Vec<Misbehaviour>,
    /// Set before `start_peers` to speak another protocol (a media
    /// server's room).
    pub client: ClientConfig,
}

impl std::fmt::Debug for TestRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRun")
            .field("url", &self.url)
            .field("peers", &self.peers.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl TestRun {
    pub async fn with_our_server() -> Self {
        let server = Server::bind(ServerConfig::loopback()).await.unwrap();
        let url = server.url();
        TestRun::new(Some(server), url).await
    }

    /// Waits for a CPU slot, then sets up a run against `url`.
    pub async fn new(server: Option<RunningServer>, url: String) -> Self {
        let slot = cpu_slot("a peer test").await;
        let (outbox, inbox) = mpsc::unbounded_channel();
        TestRun {
            _slot: slot,
            server,
            url,
            epoch: Instant::now(),
            events: Vec::new(),
            inbox,
            outbox,
            peers: Vec::new(),
            ids: Vec::new(),
            sources: Vec::new(),
            calls: Vec::new(),
            answer_timeout: Duration::from_secs(10),
            connection: ConnectionSettings::default(),
            media: MediaSettings::default(),
            codecs: Vec::new(),
            misbehave: Vec::new(),
            client: ClientConfig::default(),
        }
    }

    pub fn config(&self, index: u16) -> PeerConfig {
        let mut media = self.media.clone();
        if let Some(codecs) = self.codecs.get(usize::from(index)) {
            media.video.codecs = codecs.clone();
        }
        PeerConfig {
            name: format!("peer{index}"),
            index,
            signaling_url: self.url.clone(),
            client: self.client.clone(),
            connection: self.connection.clone(),
            media,
            epoch: self.epoch,
            answer_timeout: self.answer_timeout,
            connect_timeout: Duration::from_secs(10),
            misbehave: self
                .misbehave
                .get(usize::from(index))
                .copied()
                .unwrap_or_default(),
            record_audio_dir: None,
        }
    }

    /// Starts `count` peers and waits until each has its id.
    pub async fn start_peers(&mut self, count: u16) {
        for index in 0..count {
            let config = self.config(index);
            self.peers.push(spawn_peer(config, self.outbox.clone()));
            self.sources.push(MediaSource::Pattern(index));
        }
        self.ids = vec![PeerId::random(); usize::from(count)];
        for index in 0..count {
            let event = self
                .wait_for(&format!("peer {index} started"), |e| {
                    e.peer == index && matches!(e.kind, PeerEventKind::Started { .. })
                })
                .await;
            let PeerEventKind::Started { id } = event.kind else {
                unreachable!()
            };
            self.ids[usize::from(index)] = id;
        }
    }

    pub fn command(&self, peer: u16, command: PeerCommand) {
        self.peers[usize::from(peer)].command(command).unwrap();
    }

    /// `caller` calls `callee`, as the runner would: the call gets an id,
    /// and the callee is introduced to it before the caller is commanded.
    pub fn call(&mut self, caller: u16, callee: u16) -> CallId {
        let call = CallId(self.calls.len() as u32);
        let (from, to) = (self.ids[usize::from(caller)], self.ids[usize::from(callee)]);
        let introduction = Introduction {
            caller: from,
            call,
            source: self.sources[usize::from(caller)],
        };
        // A callee that has ended (or whose handle a test took) is not
        // told: the call to it fails, as a test of calling one wants.
        if let Some(peer) = self.peers.get(usize::from(callee)) {
            let _ = peer.introduce(introduction);
        }
        self.calls.push((caller, callee, call));
        let expect = self.sources[usize::from(callee)];
        self.command(caller, PeerCommand::Call { to, call, expect });
        call
    }

    /// `peer` publishes to the media server's room (a call with the room).
    pub fn publish(&mut self, peer: u16) -> CallId {
        let call = CallId(self.calls.len() as u32);
        self.calls.push((peer, u16::MAX, call));
        self.command(peer, PeerCommand::Publish { call });
        call
    }

    /// `subscriber` receives `publisher`'s media through the room.
    pub fn subscribe(&mut self, subscriber: u16, publisher: u16) -> CallId {
        let call = CallId(self.calls.len() as u32);
        self.calls.push((subscriber, publisher, call));
        let to = self.ids[usize::from(publisher)];
        let expect = self.sources[usize::from(publisher)];
        self.command(subscriber, PeerCommand::Subscribe { to, call, expect });
        call
    }

    /// Each pair's first peer calls its second.
    pub fn call_pairs(&mut self, pairs: &[(u16, u16)]) {
        for &(caller, callee) in pairs {
            self.call(caller, callee);
        }
    }

    /// Each pair's first peer hangs up on its second.
    pub fn hang_up_pairs(&self, pairs: &[(u16, u16)]) {
        for &(caller, callee) in pairs {
            let to = self.ids[usize::from(callee)];
            self.command(caller, PeerCommand::Hangup { to });
        }
    }

    /// The first logged event that matches, waiting (bounded) for it.
    pub async fn wait_for(&mut self, what: &str, want: impl Fn(&PeerEvent) -> bool) -> PeerEvent {
        if let Some(event) = self.events.iter().find(|e| want(e)) {
            return event.clone();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.inbox.recv())
                .await
                .unwrap_or_else(|_| {
                    let seen: Vec<_> = self.events.iter().map(|e| (e.peer, &e.kind)).collect();
                    panic!(
                        "waited {WAIT:?} for {what}; errors: {:?}; events: {seen:#?}",
                        self.errors()
                    )
                })
                .expect("the event channel stays open");
            self.events.push(event.clone());
            if want(&event) {
                return event;
            }
        }
    }

    /// Keeps logging events for `window` (media flowing: a measurement
    /// window, not a wait for something).
    pub async fn log_for(&mut self, window: Duration) {
        let until = tokio::time::Instant::now() + window;
        while let Ok(Some(event)) = tokio::time::timeout_at(until, self.inbox.recv()).await {
            self.events.push(event);
        }
    }

    /// Waits until both sides of each call have verified a frame from the
    /// other (and, with `tone`, heard the other's tone).
    pub async fn wait_for_media(&mut self, pairs: &[(u16, u16)], tone: bool) {
        for &(caller, callee) in pairs {
            for (peer, remote) in [(caller, callee), (callee, caller)] {
                let remote_id = self.ids[usize::from(remote)];
                self.wait_for("first verified frame", |e| {
                    e.peer == peer
                        && matches!(e.kind, PeerEventKind::FirstFrame { remote: r, .. } if r == remote_id)
                })
                .await;
                if tone {
                    self.wait_for("first tone", |e| {
                        e.peer == peer && matches!(e.kind, PeerEventKind::FirstAudio { remote: r } if r == remote_id)
                    })
                    .await;
                }
            }
        }
    }

    pub async fn call_report(&mut self, peer: u16, remote: u16) -> CallReport {
        let remote_id = self.ids[usize::from(remote)];
        let event = self
            .wait_for(
                &format!("peer {peer}'s report on its call with {remote}"),
                |e| {
                    e.peer == peer
                        && matches!(&e.kind, PeerEventKind::CallEnded(r) if r.remote == remote_id)
                },
            )
            .await;
        let PeerEventKind::CallEnded(report) = event.kind else {
            unreachable!()
        };
        *report
    }

    /// The setup of the latest call `caller` made to `callee`.
    pub fn timeline(&self, caller: u16, callee: u16) -> SetupTimeline {
        let call = self
            .calls
            .iter()
            .rev()
            .find(|(a, b, _)| (*a, *b) == (caller, callee))
            .map(|(_, _, call)| *call)
            .expect("the call was commanded");
        let events: Vec<&PeerEvent> = self
            .events
            .iter()
            .filter(|e| e.call == Some(call))
            .collect();
        SetupTimeline::of_call(&events, caller, callee).expect("the call was commanded")
    }

    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                PeerEventKind::Error { error, .. } => Some(format!("peer {}: {error}", e.peer)),
                _ => None,
            })
            .collect()
    }

    /// Closes every peer (bounded) and the server.
    pub async fn finish(mut self) {
        for peer in std::mem::take(&mut self.peers) {
            peer.close(WAIT).await;
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// The checks every verified direction of a call must pass: at least 95 %
/// of what the other side sent verified, nothing from a wrong sender, few
/// corrupt frames, and the sender's own tone.
pub fn assert_media_verified(receiver: &CallReport, sender: &CallReport, what: &str) {
    let video = receiver
        .video
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no video arrived"));
    let audio = receiver
        .audio
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no audio arrived"));
    assert!(sender.frames_sent > 0, "{what}: nothing was sent");
    let ratio = video.verified as f64 / f64::from(sender.frames_sent);
    assert!(
        ratio >= 0.95,
        "{what}: {} of {} frames verified ({ratio:.3}); {video:?}",
        video.verified,
        sender.frames_sent
    );
    // A wrong sender is never legitimate. Corrupt frames are, after loopback
    // UDP drops a packet under load (until the keyframe the PLI brings);
    // they stay within the 5 % the ratio above allows.
    assert_eq!(video.wrong_sender, 0, "{what}: {video:?}");
    assert!(video.corrupted * 20 <= video.received, "{what}: {video:?}");
    assert!(audio.tone_matches(), "{what}: {audio:?}");
    assert_eq!(audio.wrong_windows, 0, "{what}: {audio:?}");
}

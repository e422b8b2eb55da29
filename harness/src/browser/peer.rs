//! A browser peer: one headless Chromium showing our page, driven like a
//! synthetic peer. The same commands go in (call, hangup, crash, close) and
//! the same timestamped events come out, from the page's own event log put
//! on the run's clock, so browser calls have setup phases like any other.

mod media;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callprobe_server::protocol::PeerId;
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, interval, timeout};

use super::chromium::{BrowserError, Chromium};
use super::grab::{Grab, GrabError, GrabReading, read_grab};
use super::page::{PageEvent, PeerPage};
use super::report::{BrowserCallSamples, Sample, call_report, data_verdict};
use crate::clock::RunTime;
use crate::peer::browser_stats::PageStats;
use crate::peer::events::CallIds;
use crate::peer::{
    CallEnd, CallFailure, CallInput, CallMachine, CallOutput, CallReport, CallState, CallTimeouts,
    DataSettings, Introductions, MediaSource, PeerCommand, PeerError, PeerEvent, PeerEventKind,
    PeerHandle,
};

#[derive(Clone, Debug)]
pub struct BrowserPeerConfig {
    pub name: String,
    pub index: u16,
    pub chromium: PathBuf,
    /// The page (our server's `/`), without a query.
    pub page_url: String,
    /// Camera size and rate asked of the fake camera.
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub epoch: Instant,
    /// Bound on starting Chromium and the page reaching `start`.
    pub launch_timeout: Duration,
    /// How often a call's received video is grabbed and its stats read.
    pub sample_interval: Duration,
    /// The answer and connect bounds a call of this browser is held to,
    /// as a synthetic peer's are.
    pub timeouts: CallTimeouts,
    /// callprobe's data channel on every call, if the run has one.
    pub data: Option<DataSettings>,
}

impl BrowserPeerConfig {
    fn page_url(&self) -> String {
        let separator = if self.page_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let mut url = format!(
            "{}{separator}autostart&loopback&width={}&height={}&fps={}&index={}",
            self.page_url, self.width, self.height, self.fps, self.index
        );
        if let Some(data) = &self.data {
            url.push_str(&format!(
                "&dataInterval={}&dataSize={}&dataOrdered={}",
                data.interval.as_millis().max(1),
                data.size,
                u8::from(data.ordered)
            ));
            if let Some(retransmits) = data.max_retransmits {
                url.push_str(&format!("&dataRetransmits={retransmits}"));
            }
        }
        url
    }
}

/// The page's URL on the server behind a signaling URL (`ws://h:p/` →
/// `http://h:p/`): the page connects back to where it came from.
pub fn page_url_for(signaling_url: &str) -> String {
    if let Some(rest) = signaling_url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = signaling_url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        signaling_url.to_owned()
    }
}

/// Starts a browser peer; its events go to `events` like a synthetic one's.
pub fn spawn_browser_peer(
    config: BrowserPeerConfig,
    events: mpsc::UnboundedSender<PeerEvent>,
) -> PeerHandle {
    let (commands, inbox) = mpsc::unbounded_channel();
    let (introductions, introduced) = Introductions::channel();
    let index = config.index;
    let task = tokio::spawn(run(config, inbox, introduced, events));
    PeerHandle::from_parts(index, commands, introductions, task)
}

/// Wall-clock times from the page onto the run's monotonic clock.
#[derive(Clone, Copy, Debug)]
struct WallClock {
    unix_ms: f64,
    instant: Instant,
}

impl WallClock {
    fn now() -> Self {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
        WallClock {
            unix_ms,
            instant: Instant::now(),
        }
    }

    fn instant(&self, unix_ms: f64) -> Instant {
        let offset = Duration::from_secs_f64((unix_ms - self.unix_ms).abs() / 1e3);
        if unix_ms >= self.unix_ms {
            self.instant + offset
        } else {
            self.instant.checked_sub(offset).unwrap_or(self.instant)
        }
    }
}

struct Call {
    /// Where the call is, by the page's events (`peer/call.rs`): the same
    /// machine a synthetic peer drives.
    machine: CallMachine,
    /// What the remote's media carries, as we were told (none for a caller
    /// nobody introduced).
    remote_source: Option<MediaSource>,
    samples: BrowserCallSamples,
}

struct BrowserPeer {
    config: BrowserPeerConfig,
    events: mpsc::UnboundedSender<PeerEvent>,
    clock: WallClock,
    chromium: Option<Chromium>,
    page: PeerPage,
    page_events: mpsc::UnboundedReceiver<PageEvent>,
    calls: HashMap<PeerId, Call>,
    call_ids: CallIds,
    /// The calls the runner has said we are about to be offered.
    introductions: Introductions,
}

async fn run(
    config: BrowserPeerConfig,
    mut inbox: mpsc::UnboundedReceiver<PeerCommand>,
    introductions: Introductions,
    events: mpsc::UnboundedSender<PeerEvent>,
) {
    let emit = |kind| {
        let _ = events.send(PeerEvent {
            peer: config.index,
            at: RunTime::now(config.epoch),
            call: None,
            kind,
        });
    };
    let mut peer = match BrowserPeer::start(config.clone(), events.clone(), introductions).await {
        Ok(peer) => peer,
        Err(error) => {
            emit(PeerEventKind::Error {
                remote: None,
                error: PeerError::Browser {
                    detail: format!("browser peer {}: {error}", config.name),
                },
            });
            emit(PeerEventKind::Closed);
            return;
        }
    };
    let mut sampling = interval(config.sample_interval);
    sampling.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let due = peer.next_deadline();
        tokio::select! {
            command = inbox.recv() => match command {
                None | Some(PeerCommand::Close) => {
                    peer.close().await;
                    break;
                }
                Some(PeerCommand::Crash) => {
                    peer.crash().await;
                    break;
                }
                Some(command) => peer.command(command).await,
            },
            event = peer.page_events.recv() => match event {
                Some(event) => peer.on_page_event(event).await,
                None => {
                    peer.error(None, "the browser page went away".into());
                    peer.abandon_calls();
                    peer.close().await;
                    break;
                }
            },
            _ = sampling.tick() => peer.sample_calls().await,
            () = sleep_until(due), if due.is_some() => peer.expire_overdue().await,
        }
    }
    emit(PeerEventKind::Closed);
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

impl BrowserPeer {
    async fn start(
        config: BrowserPeerConfig,
        events: mpsc::UnboundedSender<PeerEvent>,
        introductions: Introductions,
    ) -> Result<BrowserPeer, BrowserError> {
        let bound = config.launch_timeout;
        let chromium = Chromium::launch(&config.chromium, config.fps, bound).await?;
        let (page, mut page_events) = PeerPage::open(&chromium, &config.page_url()).await?;
        let clock = WallClock::now();
        // The page starts by itself (`?autostart`): camera, socket, `start`.
        let started = timeout(bound, async {
            while let Some(event) = page_events.recv().await {
                match event.kind.as_str() {
                    "started" => return Ok(event),
                    "error" => {
                        return Err(BrowserError::Page(format!(
                            "{}",
                            event.detail.unwrap_or_default()
                        )));
                    }
                    _ => {}
                }
            }
            Err(BrowserError::Page(
                "the page closed before it started".into(),
            ))
        })
        .await
        .map_err(|_| BrowserError::Timeout("start", bound))??;
        let id = started
            .detail_str("id")
            .and_then(PeerId::parse)
            .ok_or_else(|| BrowserError::Page(format!("a start without an id: {started:?}")))?;
        let mut peer = BrowserPeer {
            config,
            events,
            clock,
            chromium: Some(chromium),
            page,
            page_events,
            calls: HashMap::new(),
            call_ids: CallIds::default(),
            introductions,
        };
        peer.emit_at(clock.instant(started.at), PeerEventKind::Started { id });
        Ok(peer)
    }

    fn emit_at(&mut self, at: Instant, kind: PeerEventKind) {
        let at = RunTime::of(at, self.config.epoch);
        let event = self.call_ids.event(self.config.index, at, kind);
        let _ = self.events.send(event);
    }

    /// The browser, its page or DevTools went wrong: in its words.
    fn error(&mut self, remote: Option<PeerId>, detail: String) {
        tracing::debug!(peer = self.config.index, ?remote, %detail, "browser peer error");
        let error = PeerError::Browser { detail };
        self.emit_at(Instant::now(), PeerEventKind::Error { remote, error });
    }

    /// The next moment a call has something due.
    fn next_deadline(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter_map(|c| c.machine.poll_timeout())
            .min()
    }

    /// Calls whose answer or connection is overdue end as the machine
    /// says; the page is told to hang up, and its `ended` event brings the
    /// call's stats (under the machine's reason).
    async fn expire_overdue(&mut self) {
        let now = Instant::now();
        let remotes: Vec<PeerId> = self.calls.keys().copied().collect();
        for remote in remotes {
            let Some(call) = self.calls.get_mut(&remote) else {
                continue;
            };
            let outputs = call.machine.handle_timeout(now);
            self.act(remote, now, outputs).await;
        }
    }

    /// Feeds a call what the page said, and does what its machine says.
    async fn drive(&mut self, remote: PeerId, at: Instant, input: CallInput) {
        let Some(call) = self.calls.get_mut(&remote) else {
            return;
        };
        let outputs = call.machine.handle(input, at);
        self.act(remote, at, outputs).await;
    }

    async fn act(&mut self, remote: PeerId, at: Instant, outputs: Vec<CallOutput>) {
        for output in outputs {
            match output {
                // The page sends its own media once negotiated.
                CallOutput::Negotiated => {}
                CallOutput::IceUp => self.emit_at(at, PeerEventKind::IceConnected { remote }),
                CallOutput::IceDown => self.emit_at(at, PeerEventKind::IceDisconnected { remote }),
                CallOutput::IceGaveUp => self.emit_at(at, PeerEventKind::IceFailed { remote }),
                CallOutput::Up => self.emit_at(at, PeerEventKind::Connected { remote }),
                // Ended by our side's bound (the page ends calls itself
                // otherwise): the page hangs up, and reports the call.
                CallOutput::End { end, .. } => {
                    tracing::debug!(peer = self.config.index, %remote, ?end, "browser call ended by its bound");
                    if let Err(error) = self
                        .page
                        .call_with_id::<()>("hangup", remote.as_str())
                        .await
                    {
                        self.error(Some(remote), format!("hangup: {error}"));
                    }
                }
            }
        }
    }

    async fn command(&mut self, command: PeerCommand) {
        match command {
            PeerCommand::Call { to, call, expect } => {
                self.call_ids.open(to, Some(call));
                self.emit_at(Instant::now(), PeerEventKind::CallCommanded { remote: to });
                let machine = CallMachine::caller(Instant::now(), self.config.timeouts);
                self.calls.insert(to, Call::new(machine, Some(expect)));
                if let Err(error) = self.page.call_with_id::<()>("call", to.as_str()).await {
                    self.error(Some(to), format!("call: {error}"));
                }
            }
            PeerCommand::Hangup { to } => {
                // The page says how it ended (its `ended` event).
                if let Err(error) = self.page.call_with_id::<()>("hangup", to.as_str()).await {
                    self.error(Some(to), format!("hangup: {error}"));
                }
            }
            other => self.error(
                None,
                format!(
                    "a browser peer cannot {other:?}: its network is the machine's, not the harness's"
                ),
            ),
        }
    }

    async fn on_page_event(&mut self, event: PageEvent) {
        let at = self.clock.instant(event.at);
        let remote = event.remote.as_deref().and_then(PeerId::parse);
        // What the page's event is to the call's machine, and what it is
        // reported as (some are reported only by what the machine makes of them).
        let (input, kind) = match (event.kind.as_str(), remote) {
            ("offerSent", Some(remote)) => (
                CallInput::OfferSent,
                Some(PeerEventKind::OfferSent { remote }),
            ),
            ("offerReceived", Some(remote)) => {
                if event.detail.is_none() {
                    let machine = CallMachine::callee(self.config.timeouts);
                    let introduction = self.introductions.take(remote);
                    let source = introduction.map(|i| i.source);
                    self.calls.insert(remote, Call::new(machine, source));
                    self.call_ids.open(remote, introduction.map(|i| i.call));
                }
                (
                    CallInput::OfferReceived,
                    Some(PeerEventKind::OfferReceived { remote }),
                )
            }
            ("answerSent", Some(remote)) => (
                CallInput::AnswerSent,
                Some(PeerEventKind::AnswerSent { remote }),
            ),
            ("answerReceived", Some(remote)) => (
                CallInput::AnswerReceived,
                Some(PeerEventKind::AnswerReceived { remote }),
            ),
            ("iceRestartSent", Some(remote)) => (
                CallInput::OfferSent,
                Some(PeerEventKind::IceRestartSent { remote }),
            ),
            ("peerLeft", Some(remote)) => (
                CallInput::PeerLeft,
                Some(PeerEventKind::PeerLeft { remote }),
            ),
            ("iceState", Some(_)) => match event.detail_str("state") {
                Some("connected" | "completed") => (CallInput::IceConnected, None),
                Some("checking") => (CallInput::IceChecking, None),
                Some("disconnected") => (CallInput::IceDisconnected, None),
                Some("failed") => (CallInput::IceFailed, None),
                _ => return,
            },
            ("connectionState", Some(_)) => match event.detail_str("state") {
                Some("connected") => (CallInput::Connected, None),
                _ => return,
            },
            _ => return self.on_other_page_event(event, at, remote).await,
        };
        let remote = remote.expect("matched with a remote above");
        if let Some(kind) = kind {
            self.emit_at(at, kind);
        }
        // `peerLeft` ends the call in the page too: its `ended` reports it.
        self.drive(remote, at, input).await;
    }

    /// The page's events that are not steps of a call's setup.
    async fn on_other_page_event(&mut self, event: PageEvent, at: Instant, remote: Option<PeerId>) {
        let kind = match (event.kind.as_str(), remote) {
            ("firstFrame", Some(remote)) => match self.first_frame(remote, event.at).await {
                Some(kind) => kind,
                None => return,
            },
            ("dataOpen", Some(remote)) => PeerEventKind::DataOpen { remote },
            ("ended", Some(remote)) => {
                let report = self.end_report(remote, &event);
                PeerEventKind::CallEnded(Box::new(report))
            }
            ("error", remote) => PeerEventKind::Error {
                remote,
                error: PeerError::Browser {
                    detail: format!(
                        "browser: {} ({})",
                        event.detail_str("message").unwrap_or("?"),
                        event.detail_str("code").unwrap_or("?")
                    ),
                },
            },
            ("socketClosed", _) => PeerEventKind::Error {
                remote: None,
                error: PeerError::Browser {
                    detail: "browser: the signaling connection closed".into(),
                },
            },
            _ => return,
        };
        self.emit_at(at, kind);
    }

    /// Calls end unheard: our side is going away.
    fn abandon_calls(&mut self) {
        let calls: Vec<(PeerId, CallMachine)> =
            self.calls.drain().map(|(r, c)| (r, c.machine)).collect();
        for (remote, mut machine) in calls {
            machine.handle(CallInput::Abandoned, Instant::now());
            let report = CallReport::new(remote, machine.role(), CallEnd::Abandoned);
            self.emit_at(Instant::now(), PeerEventKind::CallEnded(Box::new(report)));
        }
    }

    async fn crash(&mut self) {
        // The moment of the kill is the fault's time, not when the process
        // has finished dying.
        self.emit_at(Instant::now(), PeerEventKind::Crashed);
        if let Some(chromium) = self.chromium.take() {
            tracing::debug!(peer = self.config.index, pid = ?chromium.pid(), "crashing the browser");
            chromium.crash().await;
        }
        self.abandon_calls();
    }

    async fn close(&mut self) {
        // Hang up first, so every call ends with its stats, then close.
        if !self.calls.is_empty()
            && let Err(error) = self.page.eval::<()>("window.callprobe.hangup()").await
        {
            tracing::debug!(%error, "hanging up before closing");
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.calls.is_empty() {
            match tokio::time::timeout_at(deadline, self.page_events.recv()).await {
                Ok(Some(event)) => self.on_page_event(event).await,
                Ok(None) | Err(_) => break,
            }
        }
        self.abandon_calls();
        if let Some(chromium) = self.chromium.take() {
            chromium.close(Duration::from_secs(5)).await;
        }
    }
}

impl Call {
    fn new(machine: CallMachine, remote_source: Option<MediaSource>) -> Self {
        Call {
            machine,
            remote_source,
            samples: BrowserCallSamples::default(),
        }
    }
}

//! A peer's signaling through a Janus VideoRoom, in the tutorial's terms,
//! so the peer task drives a room exactly as it drives calls:
//!
//! - the peer joins the room as a participant at `start` (it hears who
//!   publishes and who leaves), under the feed id its peer id names;
//! - publishing is a call with the room ([`api::room_remote`]): our offer
//!   goes out as `publish` (`configure` once published), Janus's answer
//!   comes back as the room's `Answer`;
//! - subscribing to a publisher is a call with that publisher: `Subscribe`
//!   attaches a handle and joins it to the feed (once the room has said
//!   the feed is published), Janus's offer comes back as the publisher's
//!   `Offer`, our answer goes out as `start`;
//! - candidates go both ways by `trickle` on the call's handle; a feed
//!   unpublished or gone is that publisher's `PeerLeft`, a handle Janus
//!   hung up its `Hangup`, a request it refused a `Refused`.
//!
//! One task owns the WebSocket: it keeps the session alive, matches
//! replies to requests by transaction, and hands frames over in order, so
//! `next` is a channel read (cancel-safe, as the peer's `select!` needs).

pub(crate) mod api;
pub(crate) mod room;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use callprobe_server::protocol::PeerId;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{self, Message};

use self::api::{Frame, feed_of, request, room_remote};
use super::client::{ClientConfig, Received, SignalingError};
use super::message::{CandidateInit, Incoming, Outgoing};

/// Janus drops a session after 60 s without a request (its default
/// `session_timeout`): a keepalive well inside that.
const KEEPALIVE: Duration = Duration::from_secs(25);

use api::Socket;

/// A peer's session in one room.
#[derive(Debug)]
pub(crate) struct JanusClient {
    commands: mpsc::UnboundedSender<Command>,
    incoming: mpsc::UnboundedReceiver<Result<Received, SignalingError>>,
    task: JoinHandle<()>,
    config: ClientConfig,
    id: PeerId,
}

#[derive(Debug)]
enum Command {
    Start(oneshot::Sender<Result<(), SignalingError>>),
    Send(Outgoing),
    Close(oneshot::Sender<()>),
}

impl JanusClient {
    /// Connects to Janus's WebSocket API; `start` joins `room`.
    pub(crate) async fn connect(
        url: &str,
        config: ClientConfig,
        room: u64,
        display: String,
    ) -> Result<Self, SignalingError> {
        let socket = timeout(config.connect_timeout, api::connect(url))
            .await
            .map_err(|_| SignalingError::Timeout {
                what: "connecting to Janus",
                after: config.connect_timeout,
            })?
            .map_err(|source| SignalingError::Connect {
                url: url.to_owned(),
                source,
            })?;
        let id = PeerId::random();
        let (commands, inbox) = mpsc::unbounded_channel();
        let (outbox, incoming) = mpsc::unbounded_channel();
        let session = Session {
            socket,
            outbox,
            room,
            id,
            display,
            session: None,
            participant: None,
            published: false,
            feeds: HashSet::new(),
            subscriptions: HashMap::new(),
            handles: HashMap::new(),
            waiting: HashMap::new(),
            told_left: HashSet::new(),
            pending: HashMap::new(),
            next_transaction: 0,
            starting: None,
        };
        let task = tokio::spawn(session.run(inbox));
        Ok(JanusClient {
            commands,
            incoming,
            task,
            config,
            id,
        })
    }

    /// Creates the session, attaches a handle and joins the room as a
    /// participant; our id is the one our feed is named by.
    pub(crate) async fn start(&mut self) -> Result<PeerId, SignalingError> {
        let (reply, joined) = oneshot::channel();
        self.commands
            .send(Command::Start(reply))
            .map_err(|_| SignalingError::Closed)?;
        let after = self.config.reply_timeout;
        timeout(after, joined)
            .await
            .map_err(|_| SignalingError::Timeout {
                what: "joining the Janus room",
                after,
            })?
            .map_err(|_| SignalingError::Closed)??;
        Ok(self.id)
    }

    /// Hands a frame to the session's task: what Janus makes of it comes
    /// back through `next` (an answer, an offer, or `Refused`).
    pub(crate) fn send(&mut self, message: &Outgoing) -> Result<(), SignalingError> {
        self.commands
            .send(Command::Send(message.clone()))
            .map_err(|_| SignalingError::Closed)
    }

    pub(crate) async fn next(&mut self) -> Result<Option<Received>, SignalingError> {
        self.incoming.recv().await.transpose()
    }

    /// Leaves the way a dying process does: the socket closes, nothing is
    /// said first.
    pub(crate) fn abandon(self) {
        self.task.abort();
    }

    /// Destroys the session and closes the socket, bounded.
    pub(crate) async fn close(self) {
        let (done, closed) = oneshot::channel();
        if self.commands.send(Command::Close(done)).is_ok() {
            let _ = timeout(self.config.reply_timeout, closed).await;
        }
        self.task.abort();
    }
}

/// What a request's reply means, by its transaction.
#[derive(Clone, Copy, Debug)]
enum Pending {
    CreateSession,
    AttachParticipant,
    Join,
    Publish,
    /// A handle for a subscription to `remote`'s feed.
    AttachSubscription(PeerId),
    /// The subscription's join: its reply carries Janus's offer.
    Subscribe(PeerId),
    /// Anything else, about the call with `remote` if any.
    Other(&'static str, Option<PeerId>),
}

struct Session {
    socket: Socket,
    outbox: mpsc::UnboundedSender<Result<Received, SignalingError>>,
    room: u64,
    id: PeerId,
    display: String,
    session: Option<u64>,
    /// The handle joined as a participant: publishes, and hears the room.
    participant: Option<u64>,
    published: bool,
    /// Feeds the room has said are published.
    feeds: HashSet<u64>,
    /// Each subscription's handle, and its remote (the publisher).
    subscriptions: HashMap<u64, PeerId>,
    handles: HashMap<PeerId, u64>,
    /// Subscriptions asked for before their feed was published.
    waiting: HashMap<u64, PeerId>,
    /// Publishers whose departure has been passed on.
    told_left: HashSet<PeerId>,
    pending: HashMap<String, Pending>,
    next_transaction: u64,
    starting: Option<oneshot::Sender<Result<(), SignalingError>>>,
}

impl Session {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Start(reply)) => {
                        self.starting = Some(reply);
                        self.request(request::create_session, Pending::CreateSession).await;
                    }
                    Some(Command::Send(message)) => self.on_outgoing(message).await,
                    Some(Command::Close(done)) => {
                        if let Some(session) = self.session {
                            let t = self.transaction(Pending::Other("destroy", None));
                            let _ = self.write(request::destroy(session, &t)).await;
                        }
                        let _ = self.socket.close(None).await;
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                frame = self.socket.next() => {
                    let at = Instant::now();
                    if let Some(Ok(Message::Text(text))) = &frame {
                        tracing::trace!(%text, "janus in");
                    }
                    match frame {
                        Some(Ok(Message::Text(text))) => match api::parse_frame(&text) {
                            Ok(frame) => self.on_frame(frame, at).await,
                            Err(error) => tracing::warn!(%error, "skipping a Janus frame"),
                        },
                        // Not ours to close (we stop reading first):
                        // Janus went away, and every call with it.
                        Some(Ok(Message::Close(_))) | None => {
                            return self.gone("it closed its WebSocket".into());
                        }
                        Some(Ok(_)) => {}
                        Some(Err(error)) => return self.gone(error.to_string()),
                    }
                }
                _ = keepalive.tick(), if self.session.is_some() => {
                    let session = self.session.expect("checked");
                    let t = self.transaction(Pending::Other("keepalive", None));
                    self.send_or_fail(request::keepalive(session, &t)).await;
                }
            }
        }
    }

    /// Janus's connection ended: the peer's calls through it end with it.
    fn gone(&self, detail: String) {
        let gone = SignalingError::ServerGone {
            server: "Janus",
            detail,
        };
        let _ = self.outbox.send(Err(gone));
    }

    fn transaction(&mut self, pending: Pending) -> String {
        self.next_transaction += 1;
        let transaction = format!("t{}", self.next_transaction);
        self.pending.insert(transaction.clone(), pending);
        transaction
    }

    async fn write(&mut self, value: Value) -> Result<(), tungstenite::Error> {
        tracing::trace!(%value, "janus out");
        self.socket.send(Message::text(value.to_string())).await
    }

    /// Writes, and hands a transport failure to the peer (it ends with it).
    async fn send_or_fail(&mut self, value: Value) {
        if let Err(error) = self.write(value).await {
            let _ = self.outbox.send(Err(SignalingError::Transport(error)));
        }
    }

    /// A session-level request whose reply is `pending`.
    async fn request(&mut self, build: fn(&str) -> Value, pending: Pending) {
        let t = self.transaction(pending);
        self.send_or_fail(build(&t)).await;
    }

    /// A VideoRoom message on `handle`.
    async fn message(
        &mut self,
        handle: u64,
        body: Value,
        jsep: Option<(&str, &str)>,
        pending: Pending,
    ) {
        let Some(session) = self.session else { return };
        let t = self.transaction(pending);
        self.send_or_fail(request::message(session, handle, &t, body, jsep))
            .await;
    }

    async fn attach(&mut self, pending: Pending) {
        let Some(session) = self.session else { return };
        let t = self.transaction(pending);
        self.send_or_fail(request::attach(session, &t)).await;
    }

    fn deliver(&self, at: Instant, message: Incoming) {
        let _ = self.outbox.send(Ok(Received { at, message }));
    }

    fn refuse(&self, at: Instant, remote: PeerId, reason: String) {
        self.deliver(at, Incoming::Refused { remote, reason });
    }

    /// The handle a call with `remote` runs on.
    fn handle_of(&self, remote: PeerId) -> Option<u64> {
        if remote == room_remote() {
            self.participant
        } else {
            self.handles.get(&remote).copied()
        }
    }

    /// The call a handle's news is about.
    fn remote_of(&self, handle: u64) -> Option<PeerId> {
        if Some(handle) == self.participant {
            Some(room_remote())
        } else {
            self.subscriptions.get(&handle).copied()
        }
    }

    async fn on_outgoing(&mut self, message: Outgoing) {
        let now = Instant::now();
        match message {
            Outgoing::Start => {}
            Outgoing::Offer { to, sdp } if to == room_remote() => {
                let Some(handle) = self.participant else {
                    return self.refuse(now, to, "not in the room yet".into());
                };
                // The first offer publishes; later ones (an ICE restart)
                // renegotiate what is published.
                let verb = if self.published {
                    "configure"
                } else {
                    "publish"
                };
                let body = json!({"request": verb, "display": self.display});
                self.message(handle, body, Some(("offer", &sdp)), Pending::Publish)
                    .await;
            }
            Outgoing::Offer { to, .. } => {
                self.refuse(
                    now,
                    to,
                    "a subscriber takes Janus's offers, it makes none".into(),
                );
            }
            Outgoing::Answer { to, sdp } => {
                let Some(handle) = self.handles.get(&to).copied() else {
                    return self.refuse(now, to, "no subscription to answer for".into());
                };
                let body = json!({"request": "start"});
                self.message(
                    handle,
                    body,
                    Some(("answer", &sdp)),
                    Pending::Other("start", Some(to)),
                )
                .await;
            }
            Outgoing::Candidate { to, candidate } => self.trickle(to, &candidate).await,
            Outgoing::Hangup { to } if to == room_remote() => {
                if let Some(handle) = self.participant.filter(|_| self.published) {
                    self.published = false;
                    let body = json!({"request": "unpublish"});
                    self.message(handle, body, None, Pending::Other("unpublish", None))
                        .await;
                }
            }
            Outgoing::Hangup { to } => {
                self.waiting.retain(|_, remote| *remote != to);
                if let (Some(handle), Some(session)) = (self.handles.remove(&to), self.session) {
                    self.subscriptions.remove(&handle);
                    let t = self.transaction(Pending::Other("detach", None));
                    self.send_or_fail(request::detach(session, handle, &t))
                        .await;
                }
            }
            Outgoing::Subscribe { to } => {
                let feed = feed_of(to);
                if self.feeds.contains(&feed) {
                    self.attach(Pending::AttachSubscription(to)).await;
                } else {
                    self.waiting.insert(feed, to);
                }
            }
        }
    }

    async fn trickle(&mut self, to: PeerId, candidate: &CandidateInit) {
        let (Some(handle), Some(session)) = (self.handle_of(to), self.session) else {
            tracing::debug!(%to, "a candidate for a call Janus has no handle for");
            return;
        };
        let t = self.transaction(Pending::Other("trickle", Some(to)));
        self.send_or_fail(request::trickle(session, handle, &t, candidate))
            .await;
    }

    async fn on_frame(&mut self, frame: Frame, at: Instant) {
        match frame {
            Frame::Ack { .. } | Frame::Other { .. } => {}
            Frame::Success {
                transaction, data, ..
            } => {
                let Some(pending) = self.pending.remove(&transaction) else {
                    return;
                };
                self.on_success(pending, &data).await;
            }
            Frame::Error {
                transaction,
                code,
                reason,
            } => {
                let pending = transaction.and_then(|t| self.pending.remove(&t));
                self.on_refused(pending, at, format!("janus error {code}: {reason}"));
            }
            Frame::Event {
                handle,
                transaction,
                data,
                jsep,
            } => {
                let pending = transaction.and_then(|t| self.pending.remove(&t));
                if let Some(reason) = api::plugin_error(&data) {
                    return self.on_refused(pending, at, reason);
                }
                self.on_event(handle, pending, &data, jsep, at).await;
            }
            Frame::Trickle { handle, candidate } => {
                let (Some(remote), Some(candidate)) = (self.remote_of(handle), candidate) else {
                    return;
                };
                let candidate = CandidateInit {
                    candidate: candidate.candidate,
                    sdp_mid: candidate.sdp_mid,
                    sdp_mline_index: candidate.sdp_mline_index,
                    username_fragment: None,
                };
                self.deliver(
                    at,
                    Incoming::Candidate {
                        from: Some(remote),
                        candidate,
                    },
                );
            }
            Frame::WebrtcUp { handle } => {
                tracing::debug!(handle, "janus: the handle's PeerConnection is up");
            }
            Frame::Hangup { handle, reason } => {
                tracing::debug!(handle, %reason, "janus hung up a handle");
                if let Some(remote) = self.remote_of(handle) {
                    self.deliver(at, Incoming::Hangup { from: Some(remote) });
                }
            }
            Frame::Timeout => {
                let _ = self.outbox.send(Err(SignalingError::Server(
                    "the Janus session timed out".into(),
                )));
            }
        }
    }

    async fn on_success(&mut self, pending: Pending, data: &Value) {
        let id = data["id"].as_u64();
        match (pending, id) {
            (Pending::CreateSession, Some(session)) => {
                self.session = Some(session);
                self.attach(Pending::AttachParticipant).await;
            }
            (Pending::AttachParticipant, Some(handle)) => {
                self.participant = Some(handle);
                let body = json!({"request": "join", "ptype": "publisher", "room": self.room,
                    "id": feed_of(self.id), "display": self.display});
                self.message(handle, body, None, Pending::Join).await;
            }
            (Pending::AttachSubscription(remote), Some(handle)) => {
                self.subscriptions.insert(handle, remote);
                self.handles.insert(remote, handle);
                let body = json!({"request": "join", "ptype": "subscriber", "room": self.room,
                    "streams": [{"feed": feed_of(remote)}]});
                self.message(handle, body, None, Pending::Subscribe(remote))
                    .await;
            }
            (Pending::CreateSession | Pending::AttachParticipant, None) => {
                self.on_refused(Some(pending), Instant::now(), "no id in the reply".into());
            }
            _ => {}
        }
    }

    /// A request Janus refused: the start fails, or the call it was for.
    fn on_refused(&mut self, pending: Option<Pending>, at: Instant, reason: String) {
        match pending {
            Some(Pending::CreateSession | Pending::AttachParticipant | Pending::Join) => {
                if let Some(starting) = self.starting.take() {
                    let _ = starting.send(Err(SignalingError::Server(reason)));
                }
            }
            Some(Pending::Publish) => self.refuse(at, room_remote(), reason),
            Some(
                Pending::AttachSubscription(remote)
                | Pending::Subscribe(remote)
                | Pending::Other(_, Some(remote)),
            ) => self.refuse(at, remote, reason),
            // Keepalives and teardown (unpublish, detach, destroy): what
            // Janus thinks of them changes no verdict.
            Some(Pending::Other(what, None)) => {
                tracing::debug!(what, %reason, "janus refused a request");
            }
            None => tracing::warn!(%reason, "janus reported an error"),
        }
    }

    async fn on_event(
        &mut self,
        handle: u64,
        pending: Option<Pending>,
        data: &Value,
        jsep: Option<api::Jsep>,
        at: Instant,
    ) {
        let published = api::published_feeds(data);
        if Some(handle) == self.participant {
            self.feeds.extend(published.iter().copied());
            if let Some(feed) = api::departed_feed(data) {
                self.feeds.remove(&feed);
                self.publisher_left(feed, at);
            }
        }
        match pending {
            Some(Pending::Join) => {
                if let Some(starting) = self.starting.take() {
                    let _ = starting.send(Ok(()));
                }
            }
            Some(Pending::Publish) => match jsep {
                Some(jsep) if jsep.kind == "answer" => {
                    self.published = true;
                    self.deliver(
                        at,
                        Incoming::Answer {
                            from: Some(room_remote()),
                            sdp: jsep.sdp,
                        },
                    );
                }
                _ => self.refuse(
                    at,
                    room_remote(),
                    "Janus answered the offer without SDP".into(),
                ),
            },
            _ => {
                // An offer on a subscription: the first (the join's
                // reply), or Janus renegotiating it.
                if let (Some(jsep), Some(remote)) = (jsep, self.subscriptions.get(&handle))
                    && jsep.kind == "offer"
                {
                    self.deliver(
                        at,
                        Incoming::Offer {
                            from: Some(*remote),
                            sdp: jsep.sdp,
                        },
                    );
                }
            }
        }
        // Subscriptions that were waiting for these feeds can go now.
        for feed in published {
            if let Some(remote) = self.waiting.remove(&feed) {
                self.attach(Pending::AttachSubscription(remote)).await;
            }
        }
    }

    /// A feed stopped publishing or left: its subscriber's call is told,
    /// once.
    fn publisher_left(&mut self, feed: u64, at: Instant) {
        let gone: Vec<PeerId> = self
            .handles
            .keys()
            .copied()
            .filter(|remote| feed_of(*remote) == feed)
            .collect();
        for remote in gone {
            if self.told_left.insert(remote) {
                self.deliver(at, Incoming::PeerLeft { id: remote });
            }
        }
    }
}

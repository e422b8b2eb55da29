//! One task per WebSocket connection: reads frames, enforces the
//! per-connection limits, hands relays to the hub and writes what the hub
//! queued for it. It alone owns its socket.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_util::sync::CancellationToken;

use crate::config::Limits;
use crate::metrics::{CloseReason, Metrics};
use crate::protocol::{
    ClientRequest, ErrorCode, ErrorReply, PeerId, ServerMessage, parse_client_frame,
};
use crate::rate::TokenBucket;
use crate::relay::Hub;

/// WebSocket close codes (RFC 6455 §7.4.1).
mod close_code {
    pub(super) const GOING_AWAY: u16 = 1001;
    pub(super) const UNSUPPORTED_DATA: u16 = 1003;
    pub(super) const INVALID_PAYLOAD: u16 = 1007;
    pub(super) const POLICY: u16 = 1008;
    pub(super) const TOO_BIG: u16 = 1009;
}

/// What a connection shares with the rest of the server.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub(crate) hub: Arc<Hub>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: Limits,
    pub(crate) shutdown: CancellationToken,
}

/// How a connection ends.
enum Ending {
    /// The client closed, or the socket failed: nothing more to send.
    Gone,
    /// We close, with an optional last `error` frame before the close frame.
    Close {
        code: u16,
        reason: &'static str,
        why: CloseReason,
        last_error: Option<ErrorReply>,
    },
}

impl Ending {
    fn close(code: u16, reason: &'static str, why: CloseReason) -> Self {
        Ending::Close {
            code,
            reason,
            why,
            last_error: None,
        }
    }
}

struct Connection<S> {
    socket: S,
    shared: Shared,
    id: Option<PeerId>,
    /// Kept so the inbox never reports closed; handed to the hub on `start`.
    outbox: mpsc::Sender<Utf8Bytes>,
    evicted: CancellationToken,
    bucket: TokenBucket,
    refused_in_a_row: u32,
}

/// Serves one upgraded WebSocket until it closes.
pub(crate) async fn serve<S>(socket: S, shared: Shared)
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    shared.metrics.connections.inc();
    shared.metrics.connections_accepted.inc();
    let metrics = Arc::clone(&shared.metrics);
    let (outbox, inbox) = mpsc::channel(shared.limits.outbox_messages.max(1));
    let mut connection = Connection {
        bucket: TokenBucket::new(shared.limits.messages_per_second, std::time::Instant::now()),
        socket,
        shared,
        id: None,
        outbox,
        evicted: CancellationToken::new(),
        refused_in_a_row: 0,
    };
    connection.run(inbox).await;
    metrics.connections.dec();
}

impl<S> Connection<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    async fn run(&mut self, mut inbox: mpsc::Receiver<Utf8Bytes>) {
        let limits = self.shared.limits.clone();
        let mut last_heard = Instant::now();
        let mut ping =
            tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let shutdown = self.shared.shutdown.clone();
        let evicted = self.evicted.clone();

        let ending = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    break Ending::close(close_code::GOING_AWAY, "server shutting down", CloseReason::Shutdown);
                }
                () = evicted.cancelled() => {
                    break Ending::close(close_code::POLICY, "not reading: too many undelivered messages", CloseReason::Stuck);
                }
                frame = self.socket.next() => {
                    let Some(frame) = frame else { break Ending::Gone };
                    last_heard = Instant::now();
                    if let Some(ending) = self.on_frame(frame).await {
                        break ending;
                    }
                }
                Some(text) = inbox.recv() => {
                    if !self.send(Message::Text(text)).await {
                        break Ending::Gone;
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= limits.idle_timeout {
                        break Ending::close(close_code::GOING_AWAY, "idle timeout", CloseReason::Idle);
                    }
                    if !self.send(Message::Ping(Default::default())).await {
                        break Ending::Gone;
                    }
                }
            }
        };

        // Tell the other side of every call before spending any time on the
        // closing handshake: peerLeft must not wait for a slow client.
        if let Some(id) = self.id {
            self.shared.hub.leave(id);
            tracing::info!(peer = %id, "peer left");
        }
        match ending {
            Ending::Gone => {
                // If the client sent a close frame our reply is queued; flush it.
                let _ = timeout(limits.close_timeout, self.socket.close()).await;
            }
            Ending::Close {
                code,
                reason,
                why,
                last_error,
            } => {
                tracing::info!(peer = ?self.id, code, reason, "closing connection");
                self.shared.metrics.closed(why);
                self.close(code, reason, last_error).await;
            }
        }
    }

    async fn on_frame(&mut self, frame: Result<Message, axum::Error>) -> Option<Ending> {
        match frame {
            Ok(Message::Text(text)) => self.on_text(&text).await,
            Ok(Message::Binary(_)) => Some(Ending::close(
                close_code::UNSUPPORTED_DATA,
                "binary frames are not supported; send JSON text",
                CloseReason::Binary,
            )),
            Ok(Message::Ping(_) | Message::Pong(_)) => None,
            Ok(Message::Close(_)) => Some(Ending::Gone),
            Err(error) => Some(self.on_read_error(error)),
        }
    }

    fn on_read_error(&self, error: axum::Error) -> Ending {
        match error.into_inner().downcast::<tungstenite::Error>() {
            Ok(error) => match *error {
                tungstenite::Error::Capacity(detail) => {
                    tracing::debug!(peer = ?self.id, %detail, "frame over the size limit");
                    let limit = self.shared.limits.max_message_bytes;
                    Ending::Close {
                        code: close_code::TOO_BIG,
                        reason: "message too large",
                        why: CloseReason::TooLarge,
                        last_error: Some(ErrorReply::new(
                            ErrorCode::TooLarge,
                            format!("frame over the {limit}-byte message limit; closing"),
                        )),
                    }
                }
                tungstenite::Error::Utf8(detail) => {
                    tracing::debug!(peer = ?self.id, %detail, "text frame is not UTF-8");
                    Ending::close(
                        close_code::INVALID_PAYLOAD,
                        "text frame is not valid UTF-8",
                        CloseReason::BadUtf8,
                    )
                }
                other => {
                    tracing::debug!(peer = ?self.id, error = %other, "connection failed");
                    Ending::Gone
                }
            },
            Err(other) => {
                tracing::debug!(peer = ?self.id, error = %other, "connection failed");
                Ending::Gone
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Option<Ending> {
        let messages_per_second = self.shared.limits.messages_per_second;
        if !self.bucket.try_take(std::time::Instant::now()) {
            self.refused_in_a_row += 1;
            // Each refusal is answered, so a client knows what it lost; one
            // that keeps going for a whole burst more is cut off.
            if self.refused_in_a_row > messages_per_second {
                self.shared.metrics.error(ErrorCode::RateLimited);
                return Some(Ending::close(
                    close_code::POLICY,
                    "message rate limit exceeded",
                    CloseReason::RateLimited,
                ));
            }
            let reply = ErrorReply::new(
                ErrorCode::RateLimited,
                format!("over {messages_per_second} messages per second; this message was dropped"),
            );
            return self.reply_error(reply).await;
        }
        self.refused_in_a_row = 0;

        match parse_client_frame(text) {
            Err(reply) => self.reply_error(reply).await,
            Ok(ClientRequest::Start) => {
                let id = match self.id {
                    Some(id) => id,
                    None => {
                        let id = self
                            .shared
                            .hub
                            .join(self.outbox.clone(), self.evicted.clone());
                        tracing::info!(peer = %id, "peer started");
                        self.id = Some(id);
                        id
                    }
                };
                let started = ServerMessage::Started { id }.to_json();
                (!self.send(Message::Text(started.into())).await).then_some(Ending::Gone)
            }
            Ok(ClientRequest::Relay(request)) => {
                let Some(id) = self.id else {
                    let reply = ErrorReply::new(
                        ErrorCode::NotStarted,
                        "send {\"action\":\"start\"} before signaling",
                    )
                    .in_reply_to(request.action.as_str());
                    return self.reply_error(reply).await;
                };
                // Sizes only: SDP and candidates carry addresses and keys.
                tracing::debug!(
                    from = %id,
                    to = %request.to,
                    action = request.action.as_str(),
                    bytes = text.len(),
                    "relay"
                );
                match self.shared.hub.route(id, request) {
                    Ok(()) => None,
                    Err(reply) => self.reply_error(reply).await,
                }
            }
        }
    }

    /// Sends an `error` frame; the connection stays open.
    async fn reply_error(&mut self, reply: ErrorReply) -> Option<Ending> {
        tracing::debug!(peer = ?self.id, code = %reply.code, message = %reply.message, "error reply");
        self.shared.metrics.error(reply.code);
        let frame = ServerMessage::Error(reply).to_json();
        (!self.send(Message::Text(frame.into())).await).then_some(Ending::Gone)
    }

    /// Sends one frame, bounded: a client that does not read for the whole
    /// idle timeout is treated as gone.
    async fn send(&mut self, message: Message) -> bool {
        matches!(
            timeout(self.shared.limits.idle_timeout, self.socket.send(message)).await,
            Ok(Ok(()))
        )
    }

    /// Sends the last error (if any) and a close frame, then waits a bounded
    /// time for the client's close reply so the close is not lost to a reset.
    async fn close(&mut self, code: u16, reason: &'static str, last_error: Option<ErrorReply>) {
        let close_timeout = self.shared.limits.close_timeout;
        let handshake = async {
            if let Some(reply) = last_error {
                self.shared.metrics.error(reply.code);
                let frame = ServerMessage::Error(reply).to_json();
                self.socket.send(Message::Text(frame.into())).await?;
            }
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            self.socket.send(Message::Close(Some(frame))).await?;
            while let Some(Ok(_)) = self.socket.next().await {}
            Ok::<(), axum::Error>(())
        };
        let _ = timeout(close_timeout, handshake).await;
    }
}

/// How long a graceful shutdown waits for connections to finish closing.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

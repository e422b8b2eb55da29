//! A raw signaling client for tests and benches: it speaks JSON frames
//! directly, so tests can send exactly what a broken or hostile client would.
//! Every wait is bounded by [`WAIT`].

use std::time::Duration;

use callprobe_server::{Limits, RunningServer, Server, ServerConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The bound on every wait for something that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A plain `ws://` server on `127.0.0.1:0` with the given limits.
pub async fn server_with(limits: Limits) -> RunningServer {
    Server::bind(ServerConfig {
        limits,
        ..ServerConfig::loopback()
    })
    .await
    .expect("server binds on loopback")
}

pub async fn server() -> RunningServer {
    server_with(Limits::default()).await
}

/// An offer as the tutorial's page sends it.
pub fn offer_to(remote_id: &str, sdp: &str) -> Value {
    json!({"action": "offer", "data": {"offer": {"type": "offer", "sdp": sdp}, "remoteId": remote_id}})
}

pub fn answer_to(remote_id: &str, sdp: &str) -> Value {
    json!({"action": "answer", "data": {"answer": {"type": "answer", "sdp": sdp}, "remoteId": remote_id}})
}

pub fn candidate_to(remote_id: &str, candidate: &str) -> Value {
    json!({"action": "iceCandidate", "data": {
        "candidate": {"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "ufrag"},
        "remoteId": remote_id,
    }})
}

pub fn hangup_to(remote_id: &str) -> Value {
    json!({"action": "hangup", "data": {"remoteId": remote_id}})
}

/// One test client: a WebSocket and, after `start`, its id.
#[derive(Debug)]
pub struct Client {
    pub ws: Ws,
    pub id: String,
}

impl Client {
    /// Connects without sending `start`.
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = timeout(
            WAIT,
            // Nagle off, as browsers do for WebSockets.
            tokio_tungstenite::connect_async_with_config(url, None, true),
        )
        .await
        .expect("connect within the wait")
        .expect("WebSocket handshake");
        Client {
            ws,
            id: String::new(),
        }
    }

    /// Connects and sends `start`; `id` is set from the reply.
    pub async fn started(url: &str) -> Client {
        let mut client = Client::connect(url).await;
        client.start().await;
        client
    }

    pub async fn start(&mut self) -> String {
        self.send(json!({"action": "start"})).await;
        let reply = self.expect("start").await;
        self.id = reply["id"]
            .as_str()
            .expect("start reply has an id")
            .to_owned();
        self.id.clone()
    }

    pub async fn send(&mut self, value: Value) {
        self.send_message(Message::text(value.to_string())).await;
    }

    pub async fn send_message(&mut self, message: Message) {
        timeout(WAIT, self.ws.send(message))
            .await
            .expect("send within the wait")
            .expect("send");
    }

    /// The next JSON frame, skipping pings and pongs.
    pub async fn recv(&mut self) -> Value {
        loop {
            let frame = timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("client {} waited {WAIT:?} for a frame", self.id));
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text).expect("server frames are JSON");
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("client {} expected a text frame, got {other:?}", self.id),
            }
        }
    }

    pub async fn expect(&mut self, action: &str) -> Value {
        let frame = self.recv().await;
        assert_eq!(frame["action"], action, "unexpected frame {frame}");
        frame
    }

    /// The next frame must be an `error` with this code.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let frame = self.expect("error").await;
        assert_eq!(frame["data"]["code"], code, "unexpected error {frame}");
        assert!(
            frame["data"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "errors explain themselves: {frame}"
        );
        frame
    }

    /// Sends a close frame (bounded).
    pub async fn close(&mut self) {
        timeout(WAIT, self.ws.close(None))
            .await
            .expect("close within the wait")
            .expect("close frame sent");
    }

    /// Reads and discards until the socket ends: the closing handshake is
    /// complete (the server has let go of this connection) when it returns.
    pub async fn drain_until_closed(&mut self) {
        timeout(WAIT, async { while self.ws.next().await.is_some() {} })
            .await
            .expect("socket ends within the wait");
    }

    /// Reads until the server's close frame; text frames before it are
    /// returned too. Fails if the socket ends without one.
    pub async fn expect_close(&mut self) -> (Vec<Value>, CloseFrame) {
        let mut texts = Vec::new();
        loop {
            let frame = timeout(WAIT, self.ws.next())
                .await
                .expect("close within the wait");
            match frame {
                Some(Ok(Message::Text(text))) => texts.push(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(Some(close)))) => return (texts, close),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a close frame, got {other:?} after {texts:?}"),
            }
        }
    }
}

/// Two started clients with a call between them (offer and answer done).
pub async fn call(url: &str) -> (Client, Client) {
    let mut caller = Client::started(url).await;
    let mut callee = Client::started(url).await;
    caller.send(offer_to(&callee.id, "v=0 offer")).await;
    callee.expect("offer").await;
    callee.send(answer_to(&caller.id, "v=0 answer")).await;
    caller.expect("answer").await;
    (caller, callee)
}

/// Proves the call between `a` and `b` still relays both ways.
pub async fn assert_call_alive(a: &mut Client, b: &mut Client) {
    a.send(candidate_to(
        &b.id,
        "candidate:alive 1 udp 1 127.0.0.1 9 typ host",
    ))
    .await;
    let got = b.expect("iceCandidate").await;
    assert_eq!(got["data"]["remoteId"], a.id.as_str());
    b.send(candidate_to(
        &a.id,
        "candidate:alive 1 udp 1 127.0.0.1 9 typ host",
    ))
    .await;
    let got = a.expect("iceCandidate").await;
    assert_eq!(got["data"]["remoteId"], b.id.as_str());
}

/// The server's Prometheus text, from its base URL (`http://host:port/`),
/// within [`WAIT`].
pub async fn metrics(base: &str) -> String {
    timeout(WAIT, async {
        reqwest::get(format!("{base}metrics"))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("a body")
    })
    .await
    .expect("/metrics answers within the wait")
}

/// Whether `/metrics` has exactly this line.
pub async fn metrics_have(server: &RunningServer, line: &str) -> bool {
    let text = metrics(&format!("http://{}/", server.local_addr())).await;
    text.lines().any(|l| l == line)
}

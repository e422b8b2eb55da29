//! A signaling connection owned by one peer task. Every wait is bounded;
//! every incoming frame is stamped with the monotonic time it arrived, so
//! setup phases are measured where they happen.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callprobe_server::protocol::PeerId;
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::message::{Incoming, MessageError, Outgoing, parse_incoming};

/// How a client connects and how long it waits.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub connect_timeout: Duration,
    /// For sends and for the `start` reply.
    pub reply_timeout: Duration,
    /// PEM certificates to trust for `wss://` (a self-signed server's).
    pub trust_pem: Option<String>,
    /// Which server's protocol the peer speaks.
    pub protocol: Protocol,
}

/// The signaling protocols a synthetic peer speaks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// The tutorial's `{action, data}` frames: calls between peers.
    #[default]
    Tutorial,
    /// A Janus VideoRoom: the peer joins `room`, publishes to it and
    /// subscribes to its publishers.
    JanusVideoRoom { room: u64 },
    /// WHIP to publish, WHEP to view: the peer publishes to its endpoint
    /// and views each publisher at theirs.
    Whip(super::WhipEndpoints),
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(10),
            trust_pem: None,
            protocol: Protocol::Tutorial,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SignalingError {
    #[error("cannot connect to signaling server {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tungstenite::Error,
    },
    #[error("{what}: nothing within {after:?}")]
    Timeout { what: &'static str, after: Duration },
    #[error("the signaling server closed the connection")]
    Closed,
    #[error("signaling transport: {0}")]
    Transport(#[from] tungstenite::Error),
    #[error("trusted certificate PEM: {0}")]
    Certificate(String),
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The server ended or refused the session itself (a media server's
    /// session expiring, a room refusing the join).
    #[error("the signaling server: {0}")]
    Server(String),
    /// The media server's connection ended without our asking.
    #[error("{server} is gone ({detail})")]
    ServerGone {
        server: &'static str,
        detail: String,
    },
    #[error("{0} is not part of the tutorial's protocol")]
    Unsupported(&'static str),
}

/// An incoming frame and when it arrived.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Received {
    pub at: Instant,
    pub message: Incoming,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug)]
pub(crate) struct TutorialClient {
    socket: Socket,
    config: ClientConfig,
    /// Frames that arrived while we waited for a specific reply.
    early: VecDeque<Received>,
}

impl TutorialClient {
    pub(crate) async fn connect(url: &str, config: ClientConfig) -> Result<Self, SignalingError> {
        let connector = match &config.trust_pem {
            Some(pem) => Some(trusting(pem)?),
            None => None,
        };
        // Nagle off, as browsers do: small frames must not wait for ACKs.
        let connecting =
            tokio_tungstenite::connect_async_tls_with_config(url, None, true, connector);
        let (socket, _) = timeout(config.connect_timeout, connecting)
            .await
            .map_err(|_| SignalingError::Timeout {
                what: "connecting to the signaling server",
                after: config.connect_timeout,
            })?
            .map_err(|source| SignalingError::Connect {
                url: url.to_owned(),
                source,
            })?;
        Ok(TutorialClient {
            socket,
            config,
            early: VecDeque::new(),
        })
    }

    /// Sends `start` and waits for the id. Frames that arrive meanwhile are
    /// kept for [`TutorialClient::next`].
    pub(crate) async fn start(&mut self) -> Result<PeerId, SignalingError> {
        self.send(&Outgoing::Start).await?;
        let after = self.config.reply_timeout;
        let deadline = tokio::time::Instant::now() + after;
        loop {
            let received = tokio::time::timeout_at(deadline, self.read())
                .await
                .map_err(|_| SignalingError::Timeout {
                    what: "waiting for the reply to start",
                    after,
                })??
                .ok_or(SignalingError::Closed)?;
            match received.message {
                Incoming::Started { id } => return Ok(id),
                _ => self.early.push_back(received),
            }
        }
    }

    pub(crate) async fn send(&mut self, message: &Outgoing) -> Result<(), SignalingError> {
        if matches!(message, Outgoing::Subscribe { .. }) {
            return Err(SignalingError::Unsupported("subscribing to a publisher"));
        }
        let text = message.to_json();
        tracing::trace!(action = message.action(), bytes = text.len(), "signal out");
        timeout(
            self.config.reply_timeout,
            self.socket.send(Message::text(text)),
        )
        .await
        .map_err(|_| SignalingError::Timeout {
            what: "sending a signaling frame",
            after: self.config.reply_timeout,
        })??;
        Ok(())
    }

    /// The next frame, or `None` once the server has closed. Frames the
    /// harness cannot use (unknown actions, which the tutorial's server
    /// relays blindly) are logged and skipped. Cancel-safe, for `select!`.
    pub(crate) async fn next(&mut self) -> Result<Option<Received>, SignalingError> {
        if let Some(early) = self.early.pop_front() {
            return Ok(Some(early));
        }
        self.read().await
    }

    async fn read(&mut self) -> Result<Option<Received>, SignalingError> {
        loop {
            let Some(frame) = self.socket.next().await else {
                return Ok(None);
            };
            let at = Instant::now();
            match frame {
                Ok(Message::Text(text)) => match parse_incoming(&text) {
                    Ok(message) => return Ok(Some(Received { at, message })),
                    Err(error) => tracing::warn!(%error, "skipping a signaling frame"),
                },
                Ok(Message::Close(_)) => return Ok(None),
                Ok(_) => {} // pings are answered by tungstenite itself
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(None);
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Closes with a close frame and waits, bounded, for the server's reply.
    /// Lets go of the connection the way a dying process does: the OS
    /// closes the TCP socket, and no WebSocket close frame is sent.
    pub(crate) fn abandon(self) {
        drop(self);
    }

    pub(crate) async fn close(mut self) {
        let bound = self.config.reply_timeout;
        let _ = timeout(bound, async {
            self.socket.close(None).await?;
            while self.socket.next().await.is_some() {}
            Ok::<(), tungstenite::Error>(())
        })
        .await;
    }
}

/// A TLS connector that trusts exactly the certificates in `pem`.
fn trusting(pem: &str) -> Result<Connector, SignalingError> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let certificate = certificate.map_err(|e| SignalingError::Certificate(e.to_string()))?;
        roots
            .add(certificate)
            .map_err(|e| SignalingError::Certificate(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SignalingError::Certificate(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::CandidateInit;
    use callprobe_server::protocol::ErrorCode;
    use callprobe_server::{Server, ServerConfig, TlsMode};

    const WAIT: Duration = Duration::from_secs(10);

    async fn next(client: &mut TutorialClient) -> Incoming {
        timeout(WAIT, client.next())
            .await
            .expect("a frame within the wait")
            .expect("no transport error")
            .expect("not closed")
            .message
    }

    async fn started(url: &str) -> (TutorialClient, PeerId) {
        let mut client = TutorialClient::connect(url, ClientConfig::default())
            .await
            .unwrap();
        let id = client.start().await.unwrap();
        (client, id)
    }

    #[tokio::test]
    async fn a_whole_exchange_through_our_server_arrives_typed_with_senders() {
        let server = Server::bind(ServerConfig::loopback()).await.unwrap();
        let (mut alice, alice_id) = started(&server.url()).await;
        let (mut bob, bob_id) = started(&server.url()).await;

        alice
            .send(&Outgoing::Offer {
                to: bob_id,
                sdp: "offer-sdp".into(),
            })
            .await
            .unwrap();
        assert_eq!(
            next(&mut bob).await,
            Incoming::Offer {
                from: Some(alice_id),
                sdp: "offer-sdp".into()
            }
        );
        bob.send(&Outgoing::Answer {
            to: alice_id,
            sdp: "answer-sdp".into(),
        })
        .await
        .unwrap();
        assert_eq!(
            next(&mut alice).await,
            Incoming::Answer {
                from: Some(bob_id),
                sdp: "answer-sdp".into()
            }
        );
        let candidate = CandidateInit {
            candidate: "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: Some("ufrag".into()),
        };
        bob.send(&Outgoing::Candidate {
            to: alice_id,
            candidate: candidate.clone(),
        })
        .await
        .unwrap();
        assert_eq!(
            next(&mut alice).await,
            Incoming::Candidate {
                from: Some(bob_id),
                candidate
            }
        );

        bob.close().await;
        assert_eq!(next(&mut alice).await, Incoming::PeerLeft { id: bob_id });
        alice
            .send(&Outgoing::Offer {
                to: bob_id,
                sdp: "again".into(),
            })
            .await
            .unwrap();
        let Incoming::Error(reply) = next(&mut alice).await else {
            panic!("expected an error")
        };
        assert_eq!(reply.code, ErrorCode::UnknownPeer);
    }

    #[tokio::test]
    async fn wss_to_a_self_signed_server_works_when_its_certificate_is_trusted() {
        let server = Server::bind(ServerConfig {
            tls: TlsMode::self_signed_localhost(),
            ..ServerConfig::loopback()
        })
        .await
        .unwrap();
        let config = ClientConfig {
            trust_pem: server.self_signed_certificate_pem().map(str::to_owned),
            ..ClientConfig::default()
        };
        let mut client = TutorialClient::connect(&server.url(), config)
            .await
            .unwrap();
        client.start().await.unwrap();
        let untrusted = TutorialClient::connect(&server.url(), ClientConfig::default()).await;
        assert!(
            matches!(untrusted, Err(SignalingError::Connect { .. })),
            "{untrusted:?}"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_start_is_a_timeout_not_a_hang() {
        // A plain TCP listener that accepts the WebSocket and then says nothing.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mute = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let socket = tokio_tungstenite::accept_async(tcp).await.unwrap();
            // Hold the socket open without reading it.
            std::future::pending::<()>().await;
            drop(socket);
        });
        let config = ClientConfig {
            reply_timeout: Duration::from_millis(200),
            ..ClientConfig::default()
        };
        let mut client = TutorialClient::connect(&format!("ws://{addr}/"), config)
            .await
            .unwrap();
        let result = client.start().await;
        assert!(
            matches!(
                result,
                Err(SignalingError::Timeout {
                    what: "waiting for the reply to start",
                    ..
                })
            ),
            "{result:?}"
        );
        mute.abort();
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        drop(listener);
        let error = TutorialClient::connect(&url, ClientConfig::default())
            .await
            .unwrap_err();
        assert!(error.to_string().contains(&url), "{error}");
    }
}

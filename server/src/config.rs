//! What a server is told at start: where to listen, TLS, limits, static files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything [`crate::Server::bind`] needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls: TlsMode,
    pub limits: Limits,
    /// Served at `GET /` (index.html) and below, beside the WebSocket upgrade;
    /// without it, `/` is the built-in browser peer page.
    pub static_dir: Option<PathBuf>,
    /// Origins (`https://app.example`) whose pages may open a WebSocket;
    /// empty, any may (what the tutorial's page expects). See
    /// [`OriginPolicy`].
    pub allowed_origins: Vec<String>,
}

impl ServerConfig {
    /// Plain `ws://` on loopback with an ephemeral port: what tests and the
    /// in-process harness want.
    pub fn loopback() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..ServerConfig::default()
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8888)),
            tls: TlsMode::Off,
            limits: Limits::default(),
            static_dir: None,
            allowed_origins: Vec::new(),
        }
    }
}

/// Which pages may open a WebSocket to the server.
///
/// A browser sends the page's `Origin` with every WebSocket upgrade, and a
/// page of any other site could otherwise connect and signal as a peer
/// (cross-site WebSocket hijacking). An upgrade that carries an Origin not
/// on the list is refused with 403. One without an Origin is not from a
/// browser page (synthetic peers, command-line clients); it is let through,
/// since a non-browser client can write any Origin it likes: this is a
/// fence against other web pages, not authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct OriginPolicy {
    /// Lower-cased `scheme://host[:port]`; empty allows every origin.
    allowed: Vec<String>,
}

impl OriginPolicy {
    pub(crate) fn new(allowed: &[String]) -> Self {
        OriginPolicy {
            allowed: allowed
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether an upgrade with this `Origin` header (if any) may proceed.
    pub(crate) fn allows(&self, origin: Option<&str>) -> bool {
        match origin {
            _ if self.allowed.is_empty() => true,
            None => true,
            Some(origin) => {
                let origin = origin.trim().to_ascii_lowercase();
                self.allowed.contains(&origin)
            }
        }
    }
}

/// How the listener speaks TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    #[default]
    Off,
    /// A certificate made at start with rcgen for these DNS names / IPs.
    SelfSigned { subject_alt_names: Vec<String> },
    /// PEM files: a certificate chain and its private key.
    Files { cert: PathBuf, key: PathBuf },
}

impl TlsMode {
    /// A self-signed certificate for `localhost`, `127.0.0.1` and `::1`: what
    /// the tutorial's page (`wss://localhost:8888`) connects to.
    pub fn self_signed_localhost() -> Self {
        TlsMode::SelfSigned {
            subject_alt_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
    }
}

/// Per-server and per-connection limits. Each one protects the server from
/// one client; none is a quota on well-behaved use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest text frame or message accepted; larger closes the connection
    /// with 1009. SDP offers with many codecs run to ~10 KiB.
    pub max_message_bytes: usize,
    /// Concurrent WebSocket connections; the next upgrade gets 503.
    pub max_connections: usize,
    /// Sustained messages per second per connection (token bucket, with a
    /// burst of one second's worth).
    pub messages_per_second: u32,
    /// A connection that sends nothing (not even a pong) for this long is
    /// closed and its calls get `peerLeft`.
    pub idle_timeout: Duration,
    /// How often the server pings each connection.
    pub ping_interval: Duration,
    /// Time for TLS and the HTTP upgrade request to complete.
    pub handshake_timeout: Duration,
    /// Messages queued to one connection before it counts as stuck and is
    /// closed (1008), so a reader that stalls cannot hold server memory.
    pub outbox_messages: usize,
    /// How long to wait for a client's close reply after we send a close.
    pub close_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 * 1024,
            max_connections: 10_000,
            messages_per_second: 200,
            idle_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            outbox_messages: 1024,
            close_timeout: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_list_every_origin_may_connect() {
        let policy = OriginPolicy::new(&[]);
        assert!(policy.allows(Some("https://evil.example")));
        assert!(policy.allows(None));
    }

    #[test]
    fn with_a_list_only_its_origins_and_non_browser_clients_may_connect() {
        let policy = OriginPolicy::new(&["https://App.example/".to_owned()]);
        assert!(policy.allows(Some("https://app.example")));
        assert!(policy.allows(None), "no Origin: not a browser page");
        assert!(!policy.allows(Some("https://app.example:8443")));
        assert!(!policy.allows(Some("http://app.example")));
        assert!(!policy.allows(Some("null")));
        assert!(!policy.allows(Some("https://app.example.evil.example")));
    }
}

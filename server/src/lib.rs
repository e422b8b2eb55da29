//! # callprobe-server
//!
//! A WebRTC signaling server that the "WebRTC for beginners" tutorial's
//! browser client can use unchanged, hardened for automated testing: sender
//! stamping, call state, typed error replies, `peerLeft` notices, limits,
//! TLS, `/healthz` and `/metrics`. The wire protocol is in [`protocol`]
//! (and in DESIGN.md §3).
//!
//! ```no_run
//! # async fn demo() -> Result<(), callprobe_server::ServerError> {
//! use callprobe_server::{Server, ServerConfig};
//! let server = Server::bind(ServerConfig::loopback()).await?;
//! println!("signaling at {}", server.url());
//! server.shutdown().await; // closes every client with 1001
//! # Ok(()) }
//! ```
//!
//! Where to start reading: [`protocol`] (what goes over the wire), then
//! `relay` (ids, calls, routing), `session` (one task per connection and its
//! limits), `http` and `listener` (axum routes, hyper, TLS).

mod config;
mod http;
mod listener;
mod metrics;
pub mod protocol;
mod rate;
mod relay;
pub mod serve;
mod session;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::services::ServeDir;

pub(crate) use config::OriginPolicy;
pub use config::{Limits, ServerConfig, TlsMode};

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS file {path}: {reason}")]
    TlsFile { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("cannot make a self-signed certificate: {0}")]
    SelfSigned(String),
    #[error("static dir {path}: not a directory")]
    StaticDir { path: PathBuf },
}

/// Entry point: [`Server::bind`].
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Binds the listener and starts serving in the background.
    pub async fn bind(config: ServerConfig) -> Result<RunningServer, ServerError> {
        raise_file_limit(config.limits.max_connections);
        if let Some(path) = config.static_dir.as_ref().filter(|p| !p.is_dir()) {
            return Err(ServerError::StaticDir { path: path.clone() });
        }
        let tls = tls::load(&config.tls)?;
        let bind_error = |source| ServerError::Bind {
            addr: config.listen,
            source,
        };
        let tcp = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let local_addr = tcp.local_addr().map_err(bind_error)?;

        let metrics = Arc::new(metrics::Metrics::new());
        let shutdown = CancellationToken::new();
        let connections = TaskTracker::new();
        let limits = config.limits;
        let state = http::AppState {
            shared: session::Shared {
                hub: Arc::new(relay::Hub::new(Arc::clone(&metrics))),
                metrics,
                limits: limits.clone(),
                shutdown: shutdown.clone(),
            },
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            sockets: connections.clone(),
            static_dir: config.static_dir.map(ServeDir::new),
            origins: OriginPolicy::new(&config.allowed_origins),
        };
        let (acceptor, self_signed_pem) = match tls {
            Some(tls) => (Some(tls.acceptor), tls.self_signed_pem),
            None => (None, None),
        };
        let scheme = if acceptor.is_some() { "wss" } else { "ws" };
        let listener = listener::Listener {
            tcp,
            tls: acceptor,
            router: http::router(state),
            shutdown: shutdown.clone(),
            connections: connections.clone(),
            handshake_timeout: limits.handshake_timeout,
        };
        let accept_task = tokio::spawn(listener.run());
        tracing::info!(%local_addr, scheme, "signaling server listening");
        Ok(RunningServer {
            local_addr,
            scheme,
            self_signed_pem,
            shutdown,
            connections,
            accept_task: Some(accept_task),
        })
    }
}

/// A server serving in the background. Dropping it stops accepting and
/// closes every connection; [`RunningServer::shutdown`] also waits for that.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    scheme: &'static str,
    self_signed_pem: Option<String>,
    shutdown: CancellationToken,
    connections: TaskTracker,
    accept_task: Option<JoinHandle<()>>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The WebSocket URL clients connect to (`ws://` or `wss://`).
    pub fn url(&self) -> String {
        format!("{}://{}/", self.scheme, self.local_addr)
    }

    /// The certificate in PEM when the server made its own (`--tls self-signed`),
    /// so an in-process client can trust exactly it.
    pub fn self_signed_certificate_pem(&self) -> Option<&str> {
        self.self_signed_pem.as_deref()
    }

    /// Stops accepting, closes every WebSocket with 1001 ("going away") and
    /// waits, at most a few seconds, for their closing handshakes.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.accept_task.take()
            && let Err(error) = task.await
        {
            tracing::error!(%error, "accept loop failed");
        }
        self.connections.close();
        if tokio::time::timeout(session::DRAIN_TIMEOUT, self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within the drain timeout");
        }
        tracing::info!("signaling server stopped");
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Every WebSocket is a file descriptor; the default soft limit (often 1024)
/// would cap the server far below its connection limit. It asks for room
/// for its connections and as many again for clients in this same process
/// (callprobe runs its peers beside the server, each with a UDP socket
/// too), raising the hard limit where it may (root, CAP_SYS_RESOURCE).
/// Returns the limit it ended with.
pub(crate) fn raise_file_limit(max_connections: usize) -> Option<u64> {
    use rlimit::Resource;
    let wanted = (max_connections as u64).saturating_mul(3) + 1024;
    if let Ok((_, hard)) = Resource::NOFILE.get()
        && hard < wanted
        && Resource::NOFILE.set(wanted, wanted).is_err()
    {
        tracing::debug!(
            hard,
            wanted,
            "cannot raise the hard file limit (not privileged)"
        );
    }
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            if limit < max_connections as u64 + 64 {
                tracing::warn!(
                    limit,
                    max_connections,
                    "the file descriptor limit holds fewer connections than the connection limit; \
                     raise `ulimit -Hn`"
                );
            } else {
                tracing::debug!(limit, "file descriptor limit");
            }
            Some(limit)
        }
        Err(error) => {
            tracing::warn!(%error, "cannot raise the file descriptor limit");
            None
        }
    }
}

//! Accepts TCP connections, runs TLS and HTTP/1.1 on each, and stops them
//! all on shutdown.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::session::DRAIN_TIMEOUT;

/// After a failed `accept` (usually out of file descriptors), wait this long
/// before the next one instead of spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

pub(crate) struct Listener {
    pub(crate) tcp: TcpListener,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) router: Router,
    pub(crate) shutdown: CancellationToken,
    /// Every HTTP connection task, tracked for the shutdown drain.
    pub(crate) connections: TaskTracker,
    pub(crate) handshake_timeout: Duration,
}

/// What one accepted connection needs.
struct Connection {
    router: Router,
    shutdown: CancellationToken,
    handshake_timeout: Duration,
}

impl Listener {
    pub(crate) async fn run(self) {
        loop {
            let accepted = tokio::select! {
                () = self.shutdown.cancelled() => break,
                accepted = self.tcp.accept() => accepted,
            };
            let (tcp, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            // Signaling messages are small and latency-bound.
            let _ = tcp.set_nodelay(true);
            tracing::trace!(%remote, "accepted");
            let connection = Connection {
                router: self.router.clone(),
                shutdown: self.shutdown.clone(),
                handshake_timeout: self.handshake_timeout,
            };
            match self.tls.clone() {
                None => self.connections.spawn(connection.serve(tcp)),
                Some(acceptor) => self.connections.spawn(async move {
                    match timeout(connection.handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => connection.serve(stream).await,
                        Ok(Err(error)) => tracing::debug!(%remote, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                }),
            };
        }
    }
}

impl Connection {
    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = TowerToHyperService::new(self.router);
        let mut builder = hyper::server::conn::http1::Builder::new();
        // Bounds the time to send a request's headers, so a client that
        // opens a socket and says nothing does not hold it.
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.handshake_timeout);
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "HTTP connection ended with an error");
                }
            }
            () = self.shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                let _ = timeout(DRAIN_TIMEOUT, connection).await;
            }
        }
    }
}

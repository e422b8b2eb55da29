//! Serving from the command line: the flags (shared by `callprobe-server`
//! and `callprobe serve`) and running until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::{Limits, Server, ServerConfig, ServerError, TlsMode};

/// The signaling server's flags.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (HTTP, WebSocket and metrics share it).
    #[arg(long, default_value = "127.0.0.1:8888")]
    pub listen: SocketAddr,

    /// Serve wss:// with a certificate made at start for localhost,
    /// 127.0.0.1 and ::1 (browsers will ask you to accept it once).
    #[arg(long, value_enum, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls: Option<TlsFlag>,

    /// PEM certificate chain for wss://.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Directory served at GET / (index.html) and below, instead of the
    /// built-in browser peer page.
    #[arg(long)]
    pub static_dir: Option<PathBuf>,

    /// Allow WebSocket upgrades from pages of this origin only
    /// (`https://app.example`; repeatable). Upgrades from other origins get
    /// 403; clients that send no Origin (not browsers) are let through.
    /// Without it, any origin may connect, as the tutorial expects.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,

    /// Largest accepted message in bytes; larger closes that connection (1009).
    #[arg(long, default_value_t = Limits::default().max_message_bytes)]
    pub max_message_bytes: usize,

    /// Concurrent WebSocket connections; more are refused with HTTP 503.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,

    /// Messages per second per connection (bursts of one second's worth).
    #[arg(long, default_value_t = Limits::default().messages_per_second)]
    pub rate_limit: u32,

    /// Close connections silent for this long (pings are sent meanwhile).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub idle_timeout: Duration,

    /// Interval between server pings.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub ping_interval: Duration,

    /// Time allowed for TLS and the HTTP upgrade request.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub handshake_timeout: Duration,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TlsFlag {
    SelfSigned,
}

impl ServeArgs {
    pub fn config(&self) -> ServerConfig {
        let tls = match (self.tls, &self.tls_cert, &self.tls_key) {
            (Some(TlsFlag::SelfSigned), _, _) => TlsMode::self_signed_localhost(),
            (None, Some(cert), Some(key)) => TlsMode::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => TlsMode::Off,
        };
        ServerConfig {
            listen: self.listen,
            tls,
            static_dir: self.static_dir.clone(),
            allowed_origins: self.allowed_origins.clone(),
            limits: Limits {
                max_message_bytes: self.max_message_bytes,
                max_connections: self.max_connections,
                messages_per_second: self.rate_limit,
                idle_timeout: self.idle_timeout,
                ping_interval: self.ping_interval,
                handshake_timeout: self.handshake_timeout,
                ..Limits::default()
            },
        }
    }
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] ServerError),
    #[error("waiting for the stop signal: {0}")]
    Signal(#[source] std::io::Error),
}

/// Serves until Ctrl-C or SIGTERM, then shuts down gracefully.
pub async fn serve_until_stopped(config: ServerConfig) -> Result<(), ServeError> {
    let server = Server::bind(config).await?;
    let page = server.url().replacen("ws", "http", 1);
    tracing::info!(url = %server.url(), %page, "ready; Ctrl-C stops");
    if server.self_signed_certificate_pem().is_some() {
        tracing::info!(
            "the certificate is self-signed for localhost, 127.0.0.1 and ::1: \
             open https://localhost:{}/ once in the browser and accept it",
            server.local_addr().port()
        );
    }
    let stopped = stop_signal().await;
    server.shutdown().await;
    stopped.map_err(ServeError::Signal)
}

async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}

//! `callprobe-server`: the signaling server on its own, for browsers and for
//! harness runs against a long-lived server.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use callprobe_server::{Limits, Server, ServerConfig, TlsMode};
use clap::{Parser, ValueEnum};
use tracing_subscriber::EnvFilter;

/// WebRTC signaling server, wire-compatible with the "WebRTC for beginners"
/// tutorial's browser client. Logs go to stderr; RUST_LOG sets the level.
#[derive(Debug, Parser)]
#[command(name = "callprobe-server", version)]
struct Cli {
    /// Address and port to listen on (HTTP, WebSocket and metrics share it).
    #[arg(long, default_value = "127.0.0.1:8888")]
    listen: SocketAddr,

    /// Serve wss:// with a certificate made at start for localhost,
    /// 127.0.0.1 and ::1 (browsers will ask you to accept it once).
    #[arg(long, value_enum, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls: Option<TlsFlag>,

    /// PEM certificate chain for wss://.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Directory served at GET / (index.html) and below.
    #[arg(long)]
    static_dir: Option<PathBuf>,

    /// Largest accepted message in bytes; larger closes that connection (1009).
    #[arg(long, default_value_t = Limits::default().max_message_bytes)]
    max_message_bytes: usize,

    /// Concurrent WebSocket connections; more are refused with HTTP 503.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,

    /// Messages per second per connection (bursts of one second's worth).
    #[arg(long, default_value_t = Limits::default().messages_per_second)]
    rate_limit: u32,

    /// Close connections silent for this long (pings are sent meanwhile).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    idle_timeout: Duration,

    /// Interval between server pings.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    ping_interval: Duration,

    /// Time allowed for TLS and the HTTP upgrade request.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    handshake_timeout: Duration,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TlsFlag {
    SelfSigned,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let tls = match (cli.tls, cli.tls_cert, cli.tls_key) {
        (Some(TlsFlag::SelfSigned), _, _) => TlsMode::self_signed_localhost(),
        (None, Some(cert), Some(key)) => TlsMode::Files { cert, key },
        _ => TlsMode::Off,
    };
    let config = ServerConfig {
        listen: cli.listen,
        tls,
        static_dir: cli.static_dir,
        limits: Limits {
            max_message_bytes: cli.max_message_bytes,
            max_connections: cli.max_connections,
            messages_per_second: cli.rate_limit,
            idle_timeout: cli.idle_timeout,
            ping_interval: cli.ping_interval,
            handshake_timeout: cli.handshake_timeout,
            ..Limits::default()
        },
    };
    let server = Server::bind(config)
        .await
        .context("starting the signaling server")?;
    let page = server.url().replacen("ws", "http", 1);
    tracing::info!(url = %server.url(), %page, "ready; Ctrl-C stops");
    if server.self_signed_certificate_pem().is_some() {
        tracing::info!(
            "the certificate is self-signed for localhost, 127.0.0.1 and ::1: \
             open https://localhost:{}/ once in the browser and accept it",
            server.local_addr().port()
        );
    }
    wait_for_stop_signal().await?;
    server.shutdown().await;
    Ok(())
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}

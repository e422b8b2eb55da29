//! `callprobe-server`: the signaling server on its own, for browsers and for
//! harness runs against a long-lived server (`callprobe serve` is the same).

use std::io::IsTerminal;

use anyhow::Context;
use callprobe_server::serve::{ServeArgs, serve_until_stopped};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// WebRTC signaling server, wire-compatible with the "WebRTC for beginners"
/// tutorial's browser client. Logs go to stderr; RUST_LOG sets the level.
#[derive(Debug, Parser)]
#[command(name = "callprobe-server", version)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
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
    serve_until_stopped(cli.serve.config())
        .await
        .context("the signaling server")
}

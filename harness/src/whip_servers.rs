//! The WHIP and WHEP servers a run (or a test) starts itself in front of
//! its Janus: Meetecho's `simple-whip-server` (Debian's package, unpacked)
//! and `janus-whep-server` (npm), both installed by
//! `scripts/install-whip-servers` into [`install_dir`]. Each gets its
//! configuration from us (the Janus to use, a free port) and runs beside
//! Janus in the media server's namespace; ready once both ports accept,
//! killed when dropped.
//!
//! Endpoints: a WHIP endpoint per publisher is made through
//! simple-whip-server's own `/whip/create` ([`WhipServers::create_publisher`]);
//! WHEP endpoints are made by our launcher on a viewer's first POST, for
//! the publisher whose name the URL ends in.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helper_process::{HelperProcess, find_on_path};
use crate::netns::{MEDIA_SERVER_ADDRESS, in_media_server_namespace};

/// Bound on both servers accepting connections (node starts in ~0.3 s).
const READY_BOUND: Duration = Duration::from_secs(15);
/// How long the WHEP launcher waits for a publisher to appear in the room
/// before answering a viewer 404.
const PUBLISHER_WAIT: Duration = Duration::from_secs(5);
/// Our launcher for the WHEP server, written next to its `node_modules`.
const WHEP_LAUNCHER: &str = include_str!("whip_servers/whep-launcher.mjs");
const WHEP_LAUNCHER_NAME: &str = "callprobe-whep-launcher.mjs";

/// Why the servers could not be started, or an endpoint made.
#[derive(Debug, thiserror::Error)]
pub enum WhipServersError {
    #[error(
        "the WHIP and WHEP servers are not installed in {} (run scripts/install-whip-servers; \
         it needs node and npm)", .0.display()
    )]
    NotInstalled(PathBuf),
    #[error("the WHIP and WHEP servers need the media server's network namespace")]
    NotInNamespace,
    #[error("no free TCP port: {0}")]
    NoPort(#[source] std::io::Error),
    #[error("writing the WHEP launcher: {0}")]
    Launcher(#[source] std::io::Error),
    #[error("spawning {what}: {source}")]
    Spawn {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} exited at start ({status}); its output: {log}")]
    Exited {
        what: &'static str,
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("the servers' log folder: {0}")]
    Logs(#[source] std::io::Error),
    #[error("{what} did not accept connections within {}", humantime::format_duration(*after))]
    NotReady { what: &'static str, after: Duration },
    #[error("making the WHIP endpoint `{id}`: {detail}")]
    Endpoint { id: String, detail: String },
}

/// Where `scripts/install-whip-servers` puts the servers:
/// `$CALLPROBE_WHIP_DIR`, else `target/whip-servers` under this checkout.
pub fn install_dir() -> PathBuf {
    std::env::var_os("CALLPROBE_WHIP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("whip-servers")
        })
}

/// Whether the servers (and node to run them) are here.
pub fn available() -> bool {
    installed(&install_dir()) && find_on_path("node").is_some()
}

fn installed(dir: &Path) -> bool {
    dir.join("simple-whip-server/src/server.js").is_file()
        && dir.join("node_modules/janus-whep-server").is_dir()
}

/// The two servers, running; killed when dropped.
#[derive(Debug)]
pub struct WhipServers {
    whip: HelperProcess,
    whep: HelperProcess,
    whip_port: u16,
    whep_port: u16,
    /// Each server's output, for when one fails.
    logs: tempfile::TempDir,
}

impl WhipServers {
    /// Starts both in front of the Janus at `janus_ws` serving `rooms`,
    /// WHEP endpoints guarded by `token`. Blocking: call it off the async
    /// workers.
    pub fn start(
        janus_ws: &str,
        rooms: &[u64],
        token: Option<&str>,
    ) -> Result<WhipServers, WhipServersError> {
        let dir = install_dir();
        let node = find_on_path("node")
            .filter(|_| installed(&dir))
            .ok_or_else(|| WhipServersError::NotInstalled(dir.clone()))?;
        if !in_media_server_namespace() {
            return Err(WhipServersError::NotInNamespace);
        }
        let (whip_port, whep_port) = (free_port()?, free_port()?);
        let logs = tempfile::tempdir().map_err(WhipServersError::Logs)?;
        let whip_config = serde_json::json!({
            "janus": {"address": janus_ws},
            "port": whip_port,
            "rest": "/whip",
            "allowTrickle": true,
            "strictETags": false,
            "iceServers": [],
        });
        let whip = spawn(
            logs.path(),
            "simple-whip-server",
            Command::new(&node)
                .arg("src/server.js")
                .current_dir(dir.join("simple-whip-server"))
                .env("CALLPROBE_WHIP_CONFIG", whip_config.to_string()),
        )?;
        let launcher = dir.join(WHEP_LAUNCHER_NAME);
        std::fs::write(&launcher, WHEP_LAUNCHER).map_err(WhipServersError::Launcher)?;
        let whep_config = serde_json::json!({
            "janus": janus_ws,
            "port": whep_port,
            "rooms": rooms,
            "token": token,
            "publisherWaitMs": PUBLISHER_WAIT.as_millis() as u64,
        });
        let whep = spawn(
            logs.path(),
            "janus-whep-server",
            Command::new(&node)
                .arg(&launcher)
                .current_dir(&dir)
                .env("CALLPROBE_WHEP_CONFIG", whep_config.to_string()),
        )?;
        let mut servers = WhipServers {
            whip,
            whep,
            whip_port,
            whep_port,
            logs,
        };
        servers.wait_until_ready()?;
        Ok(servers)
    }

    /// A publisher's WHIP endpoint, for `id` (made by `create_publisher`).
    pub fn whip_endpoint(&self) -> String {
        format!(
            "http://{MEDIA_SERVER_ADDRESS}:{}/whip/endpoint/",
            self.whip_port
        )
    }

    /// The WHEP endpoints' base: a publisher's stream is this and its id.
    pub fn whep_endpoint(&self) -> String {
        format!(
            "http://{MEDIA_SERVER_ADDRESS}:{}/whep/endpoint/",
            self.whep_port
        )
    }

    /// Makes the WHIP endpoint `id`, publishing into `room` under the
    /// display name `id`, guarded by `token`.
    pub async fn create_publisher(
        &self,
        id: &str,
        room: u64,
        token: Option<&str>,
        bound: Duration,
    ) -> Result<(), WhipServersError> {
        let url = format!("http://127.0.0.1:{}/whip/create", self.whip_port);
        let body = serde_json::json!({"id": id, "room": room, "label": id, "token": token});
        let failed = |detail: String| WhipServersError::Endpoint {
            id: id.to_owned(),
            detail,
        };
        let response = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .timeout(bound)
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(failed(format!("{status}: {text}")))
    }

    /// Waits, bounded, until both ports accept; fails at once if one exits.
    fn wait_until_ready(&mut self) -> Result<(), WhipServersError> {
        let deadline = Instant::now() + READY_BOUND;
        let mut pending = vec![
            ("simple-whip-server", self.whip_port),
            ("janus-whep-server", self.whep_port),
        ];
        while Instant::now() < deadline {
            for (what, process) in [
                ("simple-whip-server", &mut self.whip),
                ("janus-whep-server", &mut self.whep),
            ] {
                if let Some(status) = process.exited() {
                    let log =
                        std::fs::read_to_string(self.logs.path().join(what)).unwrap_or_default();
                    return Err(WhipServersError::Exited { what, status, log });
                }
            }
            pending.retain(|&(_, port)| {
                let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_err()
            });
            if pending.is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(WhipServersError::NotReady {
            what: pending.first().map_or("the servers", |(what, _)| what),
            after: READY_BOUND,
        })
    }
}

/// Starts `command`, its output (both streams) into the file `what` in `logs`.
fn spawn(
    logs: &Path,
    what: &'static str,
    command: &mut Command,
) -> Result<HelperProcess, WhipServersError> {
    let spawn_error = |source| WhipServersError::Spawn { what, source };
    let log = std::fs::File::create(logs.join(what)).map_err(spawn_error)?;
    let log_too = log.try_clone().map_err(spawn_error)?;
    command
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_too)
        .env_remove("DEBUG")
        .spawn()
        .map(HelperProcess::new)
        .map_err(spawn_error)
}

/// A TCP port free now (the servers bind every address of the namespace).
fn free_port() -> Result<u16, WhipServersError> {
    TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(WhipServersError::NoPort)
}

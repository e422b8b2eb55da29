//! A media server the run (or a test) starts itself: Janus (`janus`, the
//! Debian package's 1.1) with a generated, loopback-only configuration:
//! the WebSocket and HTTP transports bound to 127.0.0.1 on free ports, the
//! VideoRoom plugin and nothing else (its plugin and transport folders hold
//! links to just those libraries), no admin API, no event handlers.
//! Ready once both ports accept connections; killed when dropped.
//!
//! Janus's libnice gathers no candidates on loopback interfaces, so it runs
//! inside the namespace `netns::enter_media_server_namespace` makes, and
//! gathers on that namespace's one other address alone.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helper_process::{HelperProcess, find_on_path};
use crate::netns::{MEDIA_SERVER_ADDRESS, in_media_server_namespace};

/// Where Debian's package puts the plugins and transports.
const LIBRARIES: &str = "/usr/lib/x86_64-linux-gnu/janus";
/// Bound on Janus starting to accept connections.
const READY_BOUND: Duration = Duration::from_secs(15);
/// Ports tried before giving up (another process may take the ones picked).
const PORT_ATTEMPTS: usize = 5;

/// Why Janus could not be started.
#[derive(Debug, thiserror::Error)]
pub enum JanusError {
    #[error(
        "janus is not on PATH, or its libraries are not in {LIBRARIES} (Debian: apt-get install janus)"
    )]
    NotInstalled,
    /// Janus gathers no candidates on loopback: it runs only where the one
    /// other address it may use exists (`netns`).
    #[error(
        "janus needs the media server's network namespace (address {MEDIA_SERVER_ADDRESS}), \
         and this thread is not in it: its media would use the machine's interfaces"
    )]
    NotInNamespace,
    #[error("janus's configuration directory: {0}")]
    Config(#[source] std::io::Error),
    #[error("no free TCP port on 127.0.0.1: {0}")]
    NoPort(#[source] std::io::Error),
    #[error("spawning {}: {source}", binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("janus exited at start ({status}); its log: {log}")]
    Exited {
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("janus did not accept connections within {}", humantime::format_duration(*.0))]
    NotReady(Duration),
}

/// A running Janus, killed when dropped.
#[derive(Debug)]
pub struct Janus {
    child: HelperProcess,
    ws: SocketAddr,
    http: SocketAddr,
    dir: tempfile::TempDir,
}

/// Where the `janus` binary is, if anywhere on `PATH` (with the
/// libraries it loads).
pub fn find_janus() -> Option<PathBuf> {
    let binary = find_on_path("janus")?;
    Path::new(LIBRARIES)
        .join("plugins/libjanus_videoroom.so")
        .is_file()
        .then_some(binary)
}

impl Janus {
    /// Starts Janus on free loopback ports and waits, bounded, until it
    /// accepts connections. Blocking: call it off the async workers.
    pub fn start() -> Result<Janus, JanusError> {
        let binary = find_janus().ok_or(JanusError::NotInstalled)?;
        if !in_media_server_namespace() {
            return Err(JanusError::NotInNamespace);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Janus::start_on_free_ports(&binary) {
                Err(JanusError::Exited { .. } | JanusError::NotReady(_))
                    if attempt < PORT_ATTEMPTS => {}
                result => return result,
            }
        }
    }

    fn start_on_free_ports(binary: &Path) -> Result<Janus, JanusError> {
        let (ws, http) = (free_port()?, free_port()?);
        let dir = tempfile::tempdir().map_err(JanusError::Config)?;
        write_config(dir.path(), ws, http).map_err(JanusError::Config)?;
        let child = Command::new(binary)
            .arg(format!("--configs-folder={}", dir.path().display()))
            .arg(format!(
                "--config={}",
                dir.path().join("janus.jcfg").display()
            ))
            .arg(format!(
                "--log-file={}",
                dir.path().join("janus.log").display()
            ))
            .args(["--disable-stdout", "--disable-colors"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| JanusError::Spawn {
                binary: binary.to_owned(),
                source,
            })?;
        let mut janus = Janus {
            child: HelperProcess::new(child),
            ws: SocketAddr::from((Ipv4Addr::LOCALHOST, ws)),
            http: SocketAddr::from((Ipv4Addr::LOCALHOST, http)),
            dir,
        };
        janus.wait_until_ready()?;
        Ok(janus)
    }

    /// Its WebSocket API (subprotocol `janus-protocol`).
    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.ws)
    }

    /// Its HTTP API's base (`/janus`).
    pub fn http_url(&self) -> String {
        format!("http://{}/janus", self.http)
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("janus.log")).unwrap_or_default()
    }

    /// Kills it at once (no goodbye to anyone), as a crash would, and waits
    /// for it to be gone.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Waits, bounded, until both ports accept; fails at once if it exits.
    fn wait_until_ready(&mut self) -> Result<(), JanusError> {
        let deadline = Instant::now() + READY_BOUND;
        while Instant::now() < deadline {
            if let Some(status) = self.child.exited() {
                return Err(JanusError::Exited {
                    status,
                    log: self.log(),
                });
            }
            let accepts =
                |address| TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok();
            if accepts(self.ws) && accepts(self.http) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(JanusError::NotReady(READY_BOUND))
    }
}

/// The configuration: Janus's own file, the two transports', VideoRoom's,
/// and plugin and transport folders holding only what is used.
fn write_config(dir: &Path, ws: u16, http: u16) -> std::io::Result<()> {
    let libraries = Path::new(LIBRARIES);
    for (folder, library) in [
        ("plugins", "libjanus_videoroom.so"),
        ("transports", "libjanus_websockets.so"),
        ("transports", "libjanus_http.so"),
    ] {
        std::fs::create_dir_all(dir.join(folder))?;
        std::os::unix::fs::symlink(
            libraries.join(folder).join(library),
            dir.join(folder).join(library),
        )?;
    }
    std::fs::create_dir_all(dir.join("none"))?;
    let path = |name: &str| dir.join(name).display().to_string();
    let files = [
        (
            "janus.jcfg",
            format!(
                "general: {{\n  configs_folder = \"{}\"\n  plugins_folder = \"{}\"\n  transports_folder = \"{}\"\n  events_folder = \"{}\"\n  loggers_folder = \"{}\"\n  debug_level = 4\n  admin_secret = \"{}\"\n}}\nmedia: {{\n  rtp_port_range = \"20000-60000\"\n}}\nnat: {{\n  nice_debug = false\n  ice_enforce_list = \"{}\"\n}}\nplugins: {{\n}}\ntransports: {{\n}}\nevents: {{\n  broadcast = false\n}}\nloggers: {{\n}}\n",
                dir.display(),
                path("plugins"),
                path("transports"),
                path("none"),
                path("none"),
                format_args!("{:032x}", rand::random::<u128>()),
                MEDIA_SERVER_ADDRESS,
            ),
        ),
        (
            "janus.transport.websockets.jcfg",
            format!(
                "general: {{\n  json = \"plain\"\n  ws = true\n  ws_port = {ws}\n  ws_ip = \"127.0.0.1\"\n  wss = false\n}}\nadmin: {{\n  admin_ws = false\n  admin_wss = false\n}}\n"
            ),
        ),
        (
            "janus.transport.http.jcfg",
            format!(
                "general: {{\n  json = \"plain\"\n  base_path = \"/janus\"\n  http = true\n  port = {http}\n  ip = \"127.0.0.1\"\n  https = false\n}}\nadmin: {{\n  admin_http = false\n  admin_https = false\n}}\n"
            ),
        ),
        ("janus.plugin.videoroom.jcfg", "general: {\n}\n".to_owned()),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

/// A TCP port free on 127.0.0.1 now (taken again, rarely, before Janus
/// binds it: then the start is tried on others).
fn free_port() -> Result<u16, JanusError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(JanusError::NoPort)
}

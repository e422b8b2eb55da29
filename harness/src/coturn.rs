//! A TURN server the run starts itself: coturn (`turnserver`) on a free
//! 127.0.0.1 port with its whole configuration on the command line
//! (long-term credentials made up for this run, a fixed realm, loopback
//! peers allowed, UDP only, no TLS), ready once it answers a STUN binding
//! request, killed when dropped or by a scenario's `turn-crash`.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helper_process::{HelperProcess, find_on_path};
use crate::peer::IceServer;

/// The realm every spawned server uses.
pub const REALM: &str = "callprobe.test";
/// The user every spawned server knows (its password is made up per run).
pub const USER: &str = "callprobe";

/// Bound on coturn starting to answer.
const READY_BOUND: Duration = Duration::from_secs(10);
/// Ports tried before giving up (another process may take the one picked).
const PORT_ATTEMPTS: usize = 5;

/// Why coturn could not be started.
#[derive(Debug, thiserror::Error)]
pub enum CoturnError {
    #[error("turnserver (coturn) is not on PATH (Debian: apt-get install coturn)")]
    NotInstalled,
    #[error("a directory for coturn's files: {0}")]
    Directory(#[source] std::io::Error),
    #[error("no free UDP port on 127.0.0.1: {0}")]
    NoPort(#[source] std::io::Error),
    #[error("spawning {}: {source}", binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("turnserver exited at start ({0})")]
    Exited(std::process::ExitStatus),
    #[error("no STUN answer from {address} within {}", humantime::format_duration(*bound))]
    NotReady {
        address: SocketAddr,
        bound: Duration,
    },
}

/// A running coturn, killed when dropped.
#[derive(Debug)]
pub struct Coturn {
    child: HelperProcess,
    address: SocketAddr,
    password: String,
    _dir: tempfile::TempDir,
}

/// Where the `turnserver` binary is, if anywhere on `PATH`.
pub fn find_turnserver() -> Option<PathBuf> {
    find_on_path("turnserver")
}

impl Coturn {
    /// Starts coturn on a free loopback port and waits, bounded, until it
    /// answers. Blocking: call it off the async workers.
    pub fn start() -> Result<Coturn, CoturnError> {
        let binary = find_turnserver().ok_or(CoturnError::NotInstalled)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Coturn::start_on_free_port(&binary) {
                // The port was taken between our pick and coturn's bind.
                Err(CoturnError::Exited(_) | CoturnError::NotReady { .. })
                    if attempt < PORT_ATTEMPTS => {}
                result => return result,
            }
        }
    }

    fn start_on_free_port(binary: &Path) -> Result<Coturn, CoturnError> {
        let port = free_port().map_err(CoturnError::NoPort)?;
        let dir = tempfile::tempdir().map_err(CoturnError::Directory)?;
        let password = format!("{:032x}", rand::random::<u128>());
        let child = Command::new(binary)
            .args(arguments(port, &password, dir.path()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| CoturnError::Spawn {
                binary: binary.to_owned(),
                source,
            })?;
        let mut server = Coturn {
            child: HelperProcess::new(child),
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            password,
            _dir: dir,
        };
        server.wait_until_ready()?;
        Ok(server)
    }

    /// The server's UDP address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Its URL, as browsers and scenarios write it.
    pub fn url(&self) -> String {
        format!("turn:{}?transport=udp", self.address)
    }

    /// Its URL with the credentials it takes.
    pub fn ice_server(&self) -> IceServer {
        IceServer {
            urls: vec![self.url()],
            username: USER.to_owned(),
            credential: self.password.clone(),
        }
    }

    /// Kills the server at once (no goodbye to its clients), as a crash
    /// would, and waits for it to be gone.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Whether the server answers a STUN binding request within `bound`.
    pub fn answers_stun(&self, bound: Duration) -> bool {
        let Ok(socket) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
            return false;
        };
        if socket.set_read_timeout(Some(bound)).is_err() {
            return false;
        }
        let request = binding_request();
        let mut reply = [0u8; 512];
        socket.send_to(&request, self.address).is_ok()
            && matches!(socket.recv_from(&mut reply),
                Ok((len, _)) if is_binding_success(&reply[..len], &request))
    }

    /// Waits, bounded, until the server answers a STUN binding request;
    /// fails at once if it exits (its port was taken, say).
    fn wait_until_ready(&mut self) -> Result<(), CoturnError> {
        let deadline = Instant::now() + READY_BOUND;
        while Instant::now() < deadline {
            if let Some(status) = self.child.exited() {
                return Err(CoturnError::Exited(status));
            }
            if self.answers_stun(Duration::from_millis(100)) {
                return Ok(());
            }
        }
        Err(CoturnError::NotReady {
            address: self.address,
            bound: READY_BOUND,
        })
    }
}

/// The command line: everything on it, nothing from /etc/turnserver.conf.
fn arguments(port: u16, password: &str, dir: &Path) -> Vec<String> {
    let path = |name: &str| dir.join(name).display().to_string();
    vec![
        "--no-stdout-log".into(),
        format!("--log-file={}", path("turn.log")),
        format!("--pidfile={}", path("turn.pid")),
        "--listening-ip=127.0.0.1".into(),
        format!("--listening-port={port}"),
        "--relay-ip=127.0.0.1".into(),
        "--allow-loopback-peers".into(),
        "--lt-cred-mech".into(),
        format!("--user={USER}:{password}"),
        format!("--realm={REALM}"),
        "--fingerprint".into(),
        "--no-tls".into(),
        "--no-dtls".into(),
        "--no-tcp".into(),
        "--no-cli".into(),
        "--no-multicast-peers".into(),
        format!("--userdb={}", path("turn.db")),
    ]
}

/// A port free for UDP on 127.0.0.1 now (taken again, rarely, before coturn
/// binds it: then the start is tried on another).
fn free_port() -> std::io::Result<u16> {
    Ok(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

/// A STUN binding request (RFC 8489 §5): no attributes.
fn binding_request() -> [u8; 20] {
    let mut request = [0u8; 20];
    request[0..2].copy_from_slice(&0x0001u16.to_be_bytes());
    request[4..8].copy_from_slice(&MAGIC_COOKIE);
    request[8..20].copy_from_slice(&rand::random::<[u8; 12]>());
    request
}

/// A binding success response to `request` (same transaction id).
fn is_binding_success(reply: &[u8], request: &[u8; 20]) -> bool {
    reply.len() >= 20 && reply[0..2] == 0x0101u16.to_be_bytes() && reply[8..20] == request[8..20]
}

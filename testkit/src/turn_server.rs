//! A real TURN server for the tests: coturn (`turnserver`), started on a
//! 127.0.0.1 port with a generated command line (long-term credentials, a
//! fixed realm, loopback peers allowed, no TLS), ready once it answers a
//! STUN binding request, killed when dropped (or mid-call, by a test).
//!
//! Where `turnserver` is absent, `start` says so in one line and gives
//! nothing; with `CALLPROBE_REQUIRE_TURN` set (as CI sets it) that is a
//! failure instead.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The realm every test server uses.
pub const REALM: &str = "callprobe.test";
/// The user every test server knows, and its password.
pub const USER: &str = "callprobe";
pub const PASSWORD: &str = "relay-me";

/// Bound on coturn starting to answer.
const READY_BOUND: Duration = Duration::from_secs(10);
/// Ports tried before giving up (another process may take the one picked).
const PORT_ATTEMPTS: usize = 5;

/// A running coturn, stopped when dropped.
#[derive(Debug)]
pub struct TurnServer {
    child: Option<Child>,
    address: SocketAddr,
    _dir: tempfile::TempDir,
}

/// Where the `turnserver` binary is, if anywhere on `PATH`.
pub fn find_turnserver() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("turnserver"))
        .find(|candidate| candidate.is_file())
}

impl TurnServer {
    /// Starts coturn for `test`, or says in one line why it cannot (and
    /// fails instead when `CALLPROBE_REQUIRE_TURN` is set).
    pub fn start(test: &str) -> Option<TurnServer> {
        let Some(binary) = find_turnserver() else {
            assert!(
                std::env::var_os("CALLPROBE_REQUIRE_TURN").is_none(),
                "{test}: CALLPROBE_REQUIRE_TURN is set but turnserver (coturn) was not found"
            );
            eprintln!("{test}: skipped, no turnserver (apt-get install coturn)");
            return None;
        };
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            match TurnServer::start_on_free_port(&binary) {
                Ok(server) => return Some(server),
                Err(error) => last_error = error,
            }
        }
        panic!("{test}: coturn did not start: {last_error}");
    }

    fn start_on_free_port(binary: &PathBuf) -> Result<TurnServer, String> {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let dir = tempfile::tempdir().map_err(|e| format!("a directory for coturn: {e}"))?;
        let child = Command::new(binary)
            .args(arguments(port, &dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", binary.display()))?;
        let mut server = TurnServer {
            child: Some(child),
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
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

    /// Kills the server at once (no goodbye to its clients), as a crash
    /// would, and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_BOUND;
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("turnserver exited ({status})"));
            }
            if self.answers_stun(Duration::from_millis(100)) {
                return Ok(());
            }
        }
        Err(format!(
            "no STUN answer from {} within {READY_BOUND:?}",
            self.address
        ))
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The command line: everything on it, nothing from /etc/turnserver.conf.
fn arguments(port: u16, dir: &tempfile::TempDir) -> Vec<String> {
    let path = |name: &str| dir.path().join(name).display().to_string();
    vec![
        "--no-stdout-log".into(),
        format!("--log-file={}", path("turn.log")),
        format!("--pidfile={}", path("turn.pid")),
        "--listening-ip=127.0.0.1".into(),
        format!("--listening-port={port}"),
        "--relay-ip=127.0.0.1".into(),
        "--allow-loopback-peers".into(),
        "--lt-cred-mech".into(),
        format!("--user={USER}:{PASSWORD}"),
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

//! A loopback-only network for runs with browser peers.
//!
//! Chromium gathers ICE candidates on every interface it can see, and as a
//! callee it runs connectivity checks from each of them, whatever the page
//! sends to the other side: a call between loopback peers would still put
//! packets on the machine's other addresses. Chromium has no setting that
//! limits WebRTC to loopback, so the run gets a network with nothing else
//! in it: a fresh network namespace whose only interface is `lo`.
//!
//! [`enter_loopback_namespace`] moves the calling thread into such a
//! namespace; every thread and process started from it afterwards (the
//! async runtime's workers, the in-process server, the synthetic peers,
//! Chromium) is in it too, so they all still reach each other on
//! 127.0.0.1. Call it before building the runtime. It needs
//! `CAP_SYS_ADMIN` (root, as in CI) and the `ip` command (iproute2).

use std::net::Ipv4Addr;
use std::process::Command;

use nix::sched::{CloneFlags, unshare};

/// Why the run could not get a loopback-only network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NamespaceError {
    #[error("cannot create a network namespace (needs root or CAP_SYS_ADMIN): {0}")]
    Unshare(#[source] nix::Error),
    #[error("cannot set up the new namespace's network: {0}")]
    Loopback(String),
}

/// The one address besides loopback a media server's namespace has (a
/// private address that exists in that namespace only).
pub const MEDIA_SERVER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 255, 255, 1);

/// Moves the calling thread into a new network namespace with only
/// loopback, up (127.0.0.0/8 and ::1).
pub fn enter_loopback_namespace() -> Result<(), NamespaceError> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(NamespaceError::Unshare)?;
    // A child process starts in its parent thread's namespace: this one.
    ip(&["link", "set", "lo", "up"])?;
    if !only_loopback() {
        return Err(NamespaceError::Loopback(
            "the new namespace shows other addresses".to_owned(),
        ));
    }
    tracing::debug!("entered a loopback-only network namespace");
    Ok(())
}

/// Moves the calling thread into a new network namespace with loopback
/// and one more address, [`MEDIA_SERVER_ADDRESS`], on a veth pair that
/// leads nowhere else: for a media server that gathers no candidates on
/// loopback (Janus's libnice skips loopback interfaces). libnice sends
/// out of the interface its candidate is on, so a packet to 127.0.0.1
/// would leave by the veth and be dropped: the peers bind this address
/// too, and their traffic with the server is delivered inside the
/// namespace.
pub fn enter_media_server_namespace() -> Result<(), NamespaceError> {
    enter_loopback_namespace()?;
    let address = format!("{MEDIA_SERVER_ADDRESS}/32");
    // No IPv6 link-local addresses: only the one address to gather on.
    for step in [
        &[
            "link", "add", "cpsfu0", "type", "veth", "peer", "name", "cpsfu1",
        ][..],
        &["link", "set", "cpsfu0", "addrgenmode", "none"],
        &["link", "set", "cpsfu1", "addrgenmode", "none"],
        &["addr", "add", &address, "dev", "cpsfu0"],
        &["link", "set", "cpsfu0", "up"],
        &["link", "set", "cpsfu1", "up"],
    ] {
        ip(step)?;
    }
    tracing::debug!(%MEDIA_SERVER_ADDRESS, "entered a media server's network namespace");
    Ok(())
}

/// Whether the calling thread's network has [`MEDIA_SERVER_ADDRESS`]
/// (it is in the namespace [`enter_media_server_namespace`] makes).
pub fn in_media_server_namespace() -> bool {
    let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
        return false;
    };
    addresses
        .filter_map(|interface| interface.address)
        .filter_map(|address| address.as_sockaddr_in().map(|v4| v4.ip()))
        .any(|ip| ip == MEDIA_SERVER_ADDRESS)
}

/// Runs `ip` with `args` in the calling thread's namespace.
fn ip(args: &[&str]) -> Result<(), NamespaceError> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| NamespaceError::Loopback(e.to_string()))?;
    if !output.status.success() {
        return Err(NamespaceError::Loopback(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// Whether every address the calling thread's network has is a loopback
/// one (and loopback is up): what a browser peer may gather candidates on.
pub(crate) fn only_loopback() -> bool {
    let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
        return false;
    };
    let mut loopback_up = false;
    for interface in addresses {
        let Some(address) = interface.address else {
            continue;
        };
        let ip = match (address.as_sockaddr_in(), address.as_sockaddr_in6()) {
            (Some(v4), _) => std::net::IpAddr::V4(v4.ip()),
            (_, Some(v6)) => std::net::IpAddr::V6(v6.ip()),
            _ => continue, // link-layer entries carry no IP
        };
        if !ip.is_loopback() {
            return false;
        }
        loopback_up = true;
    }
    loopback_up
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the namespace can be made (root, as in CI), the thread that
    /// enters it sees only loopback, and threads it starts do too.
    #[test]
    fn a_thread_in_the_namespace_sees_only_loopback_and_so_do_its_threads() {
        let entered = std::thread::spawn(|| {
            enter_loopback_namespace()?;
            let child = std::thread::spawn(only_loopback).join().unwrap();
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("loopback works");
            drop(socket);
            Ok::<_, NamespaceError>((only_loopback(), child))
        })
        .join()
        .unwrap();
        match entered {
            Ok(seen) => assert_eq!(seen, (true, true)),
            Err(NamespaceError::Unshare(e)) => {
                assert!(
                    std::env::var_os("CALLPROBE_REQUIRE_NETNS").is_none(),
                    "CALLPROBE_REQUIRE_NETNS is set but: {e}"
                );
                eprintln!("skipped: cannot create a network namespace here ({e})");
            }
            Err(e) => panic!("{e}"),
        }
    }
}

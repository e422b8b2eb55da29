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

use std::process::Command;

use nix::sched::{CloneFlags, unshare};

/// Why the run could not get a loopback-only network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NamespaceError {
    #[error("cannot create a network namespace (needs root or CAP_SYS_ADMIN): {0}")]
    Unshare(#[source] nix::Error),
    #[error("cannot bring up loopback in the new namespace (`ip link set lo up`): {0}")]
    Loopback(String),
}

/// Moves the calling thread into a new network namespace with only
/// loopback, up (127.0.0.0/8 and ::1).
pub fn enter_loopback_namespace() -> Result<(), NamespaceError> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(NamespaceError::Unshare)?;
    // A child process starts in its parent thread's namespace: this one.
    let output = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .output()
        .map_err(|e| NamespaceError::Loopback(e.to_string()))?;
    if !output.status.success() {
        return Err(NamespaceError::Loopback(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    if !only_loopback() {
        return Err(NamespaceError::Loopback(
            "the new namespace shows other addresses".to_owned(),
        ));
    }
    tracing::debug!("entered a loopback-only network namespace");
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

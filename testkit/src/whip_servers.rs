//! Real WHIP and WHEP servers for the tests: Meetecho's simple-whip-server
//! and janus-whep-server in front of a Janus, as the harness starts them
//! (`callprobe_harness::whip_servers`), with the tests' policy for a
//! machine without them: one line saying so, or, with
//! `CALLPROBE_REQUIRE_WHIP` set (as CI sets it), a failure.

pub use callprobe_harness::whip_servers::WhipServers;

/// Whether `test` can run the WHIP and WHEP servers (and the Janus behind
/// them) here; if not, says so in one line.
pub fn available(test: &str) -> bool {
    if !crate::janus_server::available(test) {
        return false;
    }
    if callprobe_harness::whip_servers::available() {
        return true;
    }
    let dir = callprobe_harness::whip_servers::install_dir();
    assert!(
        std::env::var_os("CALLPROBE_REQUIRE_WHIP").is_none(),
        "{test}: CALLPROBE_REQUIRE_WHIP is set but the WHIP servers are not in {}",
        dir.display()
    );
    eprintln!(
        "{test}: skipped, no WHIP servers in {} (scripts/install-whip-servers)",
        dir.display()
    );
    false
}

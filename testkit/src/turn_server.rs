//! A real TURN server for the tests: the harness's own [`Coturn`] (a
//! coturn on a 127.0.0.1 port, generated command line), with the tests'
//! policy for a machine without it.
//!
//! Where `turnserver` is absent, `start` says so in one line and gives
//! nothing; with `CALLPROBE_REQUIRE_TURN` set (as CI sets it) that is a
//! failure instead.

pub use callprobe_harness::coturn::{Coturn, REALM, USER};

/// Starts coturn for `test`, or says in one line why it cannot (and fails
/// instead when `CALLPROBE_REQUIRE_TURN` is set).
pub fn start(test: &str) -> Option<Coturn> {
    if !available(test) {
        return None;
    }
    match Coturn::start() {
        Ok(server) => Some(server),
        Err(error) => panic!("{test}: coturn did not start: {error}"),
    }
}

/// Whether `turnserver` is here; says so in one line if not (and fails
/// when `CALLPROBE_REQUIRE_TURN` is set).
pub fn available(test: &str) -> bool {
    if callprobe_harness::coturn::find_turnserver().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CALLPROBE_REQUIRE_TURN").is_none(),
        "{test}: CALLPROBE_REQUIRE_TURN is set but turnserver (coturn) was not found"
    );
    eprintln!("{test}: skipped, no turnserver (apt-get install coturn)");
    false
}

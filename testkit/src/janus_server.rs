//! A real Janus for the media-server tests: the harness's own [`Janus`]
//! (loopback-only generated configuration, VideoRoom only), with the
//! tests' policy for a machine without it.
//!
//! Where `janus` is absent, `start` says so in one line and gives nothing;
//! with `CALLPROBE_REQUIRE_JANUS` set (as CI sets it) that is a failure.

pub use callprobe_harness::janus::Janus;

/// Starts Janus for `test`, or says in one line why it cannot (and fails
/// instead when `CALLPROBE_REQUIRE_JANUS` is set).
pub fn start(test: &str) -> Option<Janus> {
    if callprobe_harness::janus::find_janus().is_none() {
        assert!(
            std::env::var_os("CALLPROBE_REQUIRE_JANUS").is_none(),
            "{test}: CALLPROBE_REQUIRE_JANUS is set but janus was not found"
        );
        eprintln!("{test}: skipped, no janus (apt-get install janus)");
        return None;
    }
    match Janus::start() {
        Ok(janus) => Some(janus),
        Err(error) => panic!("{test}: janus did not start: {error}"),
    }
}

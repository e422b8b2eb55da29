//! A real Janus for the media-server tests: the harness's own [`Janus`]
//! (generated configuration, VideoRoom only), with the tests' policy for a
//! machine without it.
//!
//! Janus gathers no ICE candidates on loopback, so each test runs in a
//! network namespace of its own with one more address
//! (`netns::enter_media_server_namespace`): the test's thread moves there,
//! and its runtime, peers and Janus all start inside it.
//!
//! Where `janus` is absent, or no namespace can be made (not root), the
//! test says so in one line and does nothing; with
//! `CALLPROBE_REQUIRE_JANUS` set (as CI sets it) that is a failure.

use std::future::Future;

pub use callprobe_harness::janus::Janus;

/// Whether `test` can run Janus here; if not, says so in one line (and
/// fails instead when `CALLPROBE_REQUIRE_JANUS` is set). A run that starts
/// Janus also needs a namespace, which `callprobe run` makes itself.
pub fn available(test: &str) -> bool {
    if callprobe_harness::janus::find_janus().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CALLPROBE_REQUIRE_JANUS").is_none(),
        "{test}: CALLPROBE_REQUIRE_JANUS is set but janus was not found"
    );
    eprintln!("{test}: skipped, no janus (apt-get install janus)");
    false
}

/// Runs `body` with a fresh Janus, on a 2-worker runtime inside a media
/// server's namespace; or says in one line why it cannot (and fails
/// instead when `CALLPROBE_REQUIRE_JANUS` is set).
pub fn with_janus<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Janus) -> Fut,
    Fut: Future<Output = ()>,
{
    in_media_server_namespace(test, async {
        let janus = tokio::task::spawn_blocking(Janus::start)
            .await
            .expect("the start does not panic")
            .unwrap_or_else(|error| panic!("{test}: janus did not start: {error}"));
        body(janus).await;
    });
}

/// Runs `body` on a 2-worker runtime inside a media server's namespace,
/// where a run may start its own Janus (a room scenario); or says in one
/// line why it cannot. libtest runs each test on a thread of its own:
/// only that thread moves.
pub fn in_media_server_namespace(test: &str, body: impl Future<Output = ()>) {
    let required = std::env::var_os("CALLPROBE_REQUIRE_JANUS").is_some();
    if callprobe_harness::janus::find_janus().is_none() {
        assert!(
            !required,
            "{test}: CALLPROBE_REQUIRE_JANUS is set but janus was not found"
        );
        eprintln!("{test}: skipped, no janus (apt-get install janus)");
        return;
    }
    if let Err(e) = callprobe_harness::netns::enter_media_server_namespace() {
        assert!(!required, "{test}: CALLPROBE_REQUIRE_JANUS is set but {e}");
        eprintln!("{test}: skipped, Janus's media must stay in a namespace of its own, and {e}");
        return;
    }
    crate::loopback::block_on_two_workers(body);
}

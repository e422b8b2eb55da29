//! Browser tests run as `callprobe run` runs browsers: on a runtime whose
//! every thread, server, peer and Chromium is in a loopback-only network
//! namespace (`callprobe_harness::netns`).

use std::future::Future;

/// Moves the calling test's thread into a loopback-only namespace and runs
/// `body` on a 2-worker runtime there. Where no namespace can be made (not
/// root) the test is skipped with one line, or fails when
/// `CALLPROBE_REQUIRE_CHROMIUM` says browsers must run. libtest runs each
/// test on a thread of its own: only that thread moves.
pub fn run_on_loopback_only(test: &str, body: impl Future<Output = ()>) {
    if let Err(e) = callprobe_harness::netns::enter_loopback_namespace() {
        assert!(
            std::env::var_os("CALLPROBE_REQUIRE_CHROMIUM").is_none(),
            "{test}: CALLPROBE_REQUIRE_CHROMIUM is set but {e}"
        );
        eprintln!("skipped {test}: a browser's media must stay on loopback, and {e}");
        return;
    }
    block_on_two_workers(body);
}

/// Runs `body` on a fresh 2-worker runtime, built on the calling thread
/// (so its threads are in whatever network namespace that thread is in).
pub(crate) fn block_on_two_workers(body: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(body);
}

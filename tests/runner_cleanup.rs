//! A run leaves nothing behind: its tasks end, its sockets close, and its
//! server's port is free again. (Alone in its binary: it counts the
//! process's file descriptors, which parallel tests would disturb.)

use std::time::Duration;

use callprobe_harness::results::Status;
use callprobe_harness::runner::{NoProgress, RunOptions, run_scenario};
use callprobe_harness::scenario::{Scenario, Source};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

const TWO_PEERS: &str = r#"
name = "cleanup"
duration = "1500ms"
[[peers]]
name = "a"
[[peers]]
name = "b"
[[calls]]
from = "a"
to = "b"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_leaks_no_tasks_sockets_or_ports() {
    let _slot = callprobe_testkit::cpu_slot("run clean-up").await;
    let scenario = Scenario::parse(&Source::new("cleanup.toml", TWO_PEERS.to_owned())).unwrap();
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();
    let fds_before = open_fds();

    let result = tokio::time::timeout(
        Duration::from_secs(60),
        run_scenario(&scenario, &RunOptions::default(), &NoProgress),
    )
    .await
    .expect("bounded");
    assert_eq!(result.status, Status::Passed, "{:#?}", result.thresholds);
    assert!(result.calls[0].verified);

    // Tasks that were aborted or are finishing end within a moment. Nothing
    // signals "a task was dropped" or "an fd was closed", so the counts are
    // polled, bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (tasks, fds) = (metrics.num_alive_tasks(), open_fds());
        if tasks <= tasks_before && fds <= fds_before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after the run: {tasks} tasks (before: {tasks_before}), {fds} fds (before: {fds_before})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let addr = result
        .server
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_owned();
    let connect = tokio::net::TcpStream::connect(&addr).await;
    assert!(
        connect.is_err(),
        "the server at {addr} still accepts connections"
    );
}

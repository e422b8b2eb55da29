//! Faults that need more than one run to judge: a seeded impairment
//! replays exactly.

use std::time::Duration;

use callprobe_harness::results::ScenarioResult;
use callprobe_harness::runner::{NoProgress, RunOptions, run_scenario};
use callprobe_harness::scenario::Scenario;

const BOUND: Duration = Duration::from_secs(60);
const VIDEO_PAYLOAD_TYPE: u8 = 102;

async fn run(seed: u64) -> ScenarioResult {
    let mut scenario = Scenario::load("tests/fixtures/replay-loss.toml".as_ref()).unwrap();
    scenario.seed = seed;
    tokio::time::timeout(
        BOUND,
        run_scenario(&scenario, &RunOptions::default(), &NoProgress),
    )
    .await
    .expect("the run ends within its bound")
}

/// The indices of alice's original video datagrams the impairment lost,
/// among the first `limit` it saw.
fn lost_video_packets(result: &ScenarioResult, limit: u64) -> Vec<u64> {
    let alice = &result.peers[0];
    let losses = &alice
        .network
        .as_ref()
        .expect("a network report")
        .media_losses["out"];
    let video = &losses[&VIDEO_PAYLOAD_TYPE];
    assert!(
        video.originals >= limit,
        "{} video packets only",
        video.originals
    );
    video.lost.iter().copied().filter(|i| *i < limit).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_loses_the_same_packets_and_another_seed_does_not() {
    let _slot = callprobe_testkit::cpu_slot("replayed loss").await;
    let first = run(21).await;
    let again = run(21).await;
    let other = run(22).await;
    // 2 s of 320x240 video is ~150 datagrams; the first 100 are sent by
    // every run.
    let lost = lost_video_packets(&first, 100);
    assert!(
        (3..=25).contains(&lost.len()),
        "10% of 100 packets, give or take: {lost:?}"
    );
    assert_eq!(
        lost,
        lost_video_packets(&again, 100),
        "same seed, same packets"
    );
    assert_ne!(
        lost,
        lost_video_packets(&other, 100),
        "another seed, another pattern"
    );
    // Which frames end up missing is not replayed: NACK retransmissions
    // repair most losses, and when they go out is the scheduler's doing.
    // What the seed fixes is the impairment's decision on each datagram.
}

//! Faults that need more than one run to judge: a seeded impairment
//! replays exactly.

use std::collections::BTreeSet;
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

/// Frame numbers below `limit` that bob never verified, counted from the
/// first one he did.
fn frames_missing(result: &ScenarioResult, limit: u32) -> BTreeSet<u32> {
    let track = result.calls[0]
        .tracks
        .iter()
        .find(|t| t.receiver == "bob")
        .expect("bob's track");
    let video = track.video.as_ref().expect("bob received video");
    let seen: BTreeSet<u32> = video.frames.iter().map(|f| f.number).collect();
    let first = *seen.first().expect("a verified frame");
    (first..limit).filter(|n| !seen.contains(n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_loses_the_same_packets_and_frames_and_another_seed_does_not() {
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

    let missing = frames_missing(&first, 45);
    assert!(!missing.is_empty());
    assert_eq!(
        missing,
        frames_missing(&again, 45),
        "same packets, same frames"
    );
}

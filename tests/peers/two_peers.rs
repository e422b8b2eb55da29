//! A real two-peer call through the real server.

use std::time::Duration;

use callprobe_harness::peer::{CallEnd, PeerCommand};

use crate::harness::{TestRun, assert_media_verified};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_peer_call_verifies_media_both_ways_with_every_setup_phase_in_order() {
    let mut run = TestRun::with_our_server().await;
    run.start_peers(2).await;
    let bob = run.ids[1];
    run.call(0, 1);
    run.wait_for_media(&[(0, 1)], true).await;
    run.log_for(Duration::from_secs(2)).await;
    run.command(0, PeerCommand::Hangup { to: bob });
    let alice_report = run.call_report(0, 1).await;
    let bob_report = run.call_report(1, 0).await;

    assert_eq!(alice_report.end, CallEnd::HungUp);
    assert_eq!(
        bob_report.end,
        CallEnd::RemoteHungUp,
        "the hangup reached bob"
    );
    assert_media_verified(&alice_report, &bob_report, "bob to alice");
    assert_media_verified(&bob_report, &alice_report, "alice to bob");
    let timeline = run.timeline(0, 1);
    assert!(timeline.complete_and_ordered(), "{timeline:?}");
    eprintln!("setup: {timeline:?}");
    assert!(run.errors().is_empty(), "{:?}", run.errors());
    run.finish().await;
}

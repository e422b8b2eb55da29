//! Several calls at once, and peers against the tutorial's kind of server.

use std::time::Duration;

use callprobe_harness::peer::{CallEnd, PeerCommand, PeerEventKind};

use crate::harness::{TestRun, WAIT, assert_media_verified};
use crate::tutorial_server::TutorialServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_peers_in_five_calls_at_once_verify_their_own_partners_media() {
    let mut run = TestRun::with_our_server().await;
    run.start_peers(10).await;
    let pairs: Vec<(u16, u16)> = (0..5).map(|i| (2 * i, 2 * i + 1)).collect();
    run.call_pairs(&pairs);
    run.wait_for_media(&pairs, false).await;
    run.log_for(Duration::from_secs(2)).await;
    run.hang_up_pairs(&pairs);
    for &(caller, callee) in &pairs {
        let caller_report = run.call_report(caller, callee).await;
        let callee_report = run.call_report(callee, caller).await;
        // Stamps and tones name their sender: any crossed stream would
        // show up as wrong-sender frames or a wrong tone here.
        assert_media_verified(
            &caller_report,
            &callee_report,
            &format!("{callee} to {caller}"),
        );
        assert_media_verified(
            &callee_report,
            &caller_report,
            &format!("{caller} to {callee}"),
        );
        let timeline = run.timeline(caller, callee);
        assert!(
            timeline.complete_and_ordered(),
            "{caller}->{callee}: {timeline:?}"
        );
    }
    assert!(run.errors().is_empty(), "{:?}", run.errors());
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_complete_a_verified_call_through_a_tutorial_style_server() {
    let server = TutorialServer::start().await;
    let mut run = TestRun::new(None, server.url()).await;
    run.start_peers(2).await;
    let bob = run.ids[1];
    run.call(0, 1);
    run.wait_for_media(&[(0, 1)], false).await;
    run.log_for(Duration::from_secs(1)).await;
    run.command(0, PeerCommand::Hangup { to: bob });
    let alice_report = run.call_report(0, 1).await;
    assert_eq!(alice_report.end, CallEnd::HungUp);
    // That server relays the hangup without saying who sent it; bob matches
    // it to his one call.
    let bob_report = run.call_report(1, 0).await;
    assert_eq!(bob_report.end, CallEnd::RemoteHungUp);
    assert_media_verified(&alice_report, &bob_report, "bob to alice");
    assert_media_verified(&bob_report, &alice_report, "alice to bob");
    run.finish().await;
}

/// Peer 0 calls peer 1 after peer 1 has closed; returns why the call failed.
async fn call_a_departed_peer(mut run: TestRun) -> String {
    run.start_peers(2).await;
    run.peers.remove(1).close(WAIT).await;
    run.wait_for("bob closed", |e| {
        e.peer == 1 && e.kind == PeerEventKind::Closed
    })
    .await;
    run.call(0, 1);
    let report = run.call_report(0, 1).await;
    run.finish().await;
    match report.end {
        CallEnd::Failed(reason) => reason.to_string(),
        other => panic!("the call should fail, it ended {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calling_a_peer_that_left_fails_at_once_on_our_server_and_by_timeout_on_the_tutorials() {
    // Ours says unknown-peer at once.
    let reason = call_a_departed_peer(TestRun::with_our_server().await).await;
    assert!(reason.contains("unknown-peer"), "{reason}");

    // The tutorial's says nothing: the call fails by the answer timeout, not a hang.
    let server = TutorialServer::start().await;
    let mut run = TestRun::new(None, server.url()).await;
    run.answer_timeout = Duration::from_millis(500);
    let reason = call_a_departed_peer(run).await;
    assert_eq!(reason, "no answer within 500ms");
}

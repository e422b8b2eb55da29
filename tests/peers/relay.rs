//! Calls relayed through a real TURN server (coturn on a loopback port),
//! and the server they stand on.

use std::time::{Duration, Instant};

use callprobe_harness::peer::{CallEnd, CallFailure, CandidateType, IcePolicy, PeerEventKind};
use callprobe_testkit::turn_server;

use crate::harness::TestRun;

/// A relay-only call carries media both ways, and it is really relayed:
/// with the TURN server killed, both sides lose the call (a call on host
/// candidates would not notice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_only_call_carries_media_through_coturn_and_loses_it_when_coturn_dies() {
    let Some(mut turn) = turn_server::start("a_relay_only_call_carries_media") else {
        return;
    };
    let mut run = TestRun::with_our_server().await;
    run.connection.ice_servers = vec![turn.ice_server()];
    run.connection.ice_policy = IcePolicy::Relay;
    run.connection.ice_disconnected_timeout = Duration::from_secs(1);
    run.connection.ice_keepalive_interval = Duration::from_millis(200);
    run.start_peers(2).await;
    run.call(0, 1);
    run.wait_for_media(&[(0, 1)], true).await;
    assert!(run.errors().is_empty(), "{:?}", run.errors());
    // Both sides went through the relay, and say so.
    for (peer, remote) in [(0u16, 1u16), (1, 0)] {
        let remote = run.ids[usize::from(remote)];
        let selected = run
            .wait_for(&format!("peer {peer}'s selected pair"), |e| {
                e.peer == peer && matches!(e.kind, PeerEventKind::PairSelected { remote: r, .. } if r == remote)
            })
            .await;
        let PeerEventKind::PairSelected { pair, .. } = selected.kind else {
            unreachable!()
        };
        assert_eq!(
            (pair.local, pair.remote, pair.protocol.as_str()),
            (CandidateType::Relay, CandidateType::Relay, "udp"),
            "peer {peer}: {pair}"
        );
    }
    let timeline = run.timeline(0, 1);
    let allocated = timeline
        .relay_allocated_ms
        .expect("the caller's allocation");
    assert!(
        allocated <= timeline.ice_connected_ms.expect("ICE connected"),
        "{timeline:?}"
    );
    eprintln!("relay allocated at {allocated:.1} ms; {timeline:?}");

    let killed = Instant::now();
    turn.kill();
    for (peer, remote) in [(0u16, 1u16), (1, 0)] {
        let remote = run.ids[usize::from(remote)];
        run.wait_for(&format!("peer {peer} sees the relay gone"), |e| {
            e.peer == peer && e.kind == PeerEventKind::IceDisconnected { remote }
        })
        .await;
    }
    eprintln!(
        "both sides saw ICE disconnected {:?} after coturn died",
        killed.elapsed()
    );
    run.finish().await;
}

#[test]
fn coturn_starts_on_a_loopback_port_answers_stun_and_is_gone_once_killed() {
    let Some(mut server) = turn_server::start("coturn_starts_on_a_loopback_port") else {
        return;
    };
    assert!(server.address().ip().is_loopback());
    assert!(
        server.url().starts_with("turn:127.0.0.1:"),
        "{}",
        server.url()
    );
    assert!(server.answers_stun(Duration::from_secs(2)));
    server.kill();
    assert!(!server.answers_stun(Duration::from_millis(300)));
}

/// Wrong credentials fail a relay-only call as soon as the allocation is
/// refused, saying what the TURN server answered, instead of waiting out
/// the connect timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_turn_credentials_fail_the_call_at_once_naming_the_401() {
    let Some(turn) = turn_server::start("wrong_turn_credentials_fail_the_call") else {
        return;
    };
    let mut run = TestRun::with_our_server().await;
    let mut server = turn.ice_server();
    server.credential = "not-the-password".into();
    run.connection.ice_servers = vec![server];
    run.connection.ice_policy = IcePolicy::Relay;
    run.start_peers(2).await;
    let commanded = Instant::now();
    run.call(0, 1);
    // Each side's allocation is refused; whichever knows first fails the
    // call and tells the other, which may end it as hung up.
    let ends = [
        run.call_report(0, 1).await.end,
        run.call_report(1, 0).await.end,
    ];
    let failed_after = commanded.elapsed();
    let why = ends
        .iter()
        .find_map(|end| match end {
            CallEnd::Failed(CallFailure::NoRelay(why)) => Some(why.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the call should fail for want of a relay: {ends:?}"));
    assert!(
        ends.iter().all(|end| matches!(
            end,
            CallEnd::Failed(CallFailure::NoRelay(_)) | CallEnd::RemoteHungUp
        )),
        "{ends:?}"
    );
    assert!(why.contains("401"), "{why}");
    assert!(why.contains(&turn.url()), "{why}");
    assert!(
        !why.contains("not-the-password"),
        "a credential was printed: {why}"
    );
    // The connect timeout is 10 s; a refused allocation is known in ms.
    assert!(failed_after < Duration::from_secs(5), "{failed_after:?}");
    eprintln!("failed after {failed_after:?}: {why}");
    run.finish().await;
}

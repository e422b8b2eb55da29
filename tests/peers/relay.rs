//! Calls relayed through a real TURN server (coturn on a loopback port).

use std::time::{Duration, Instant};

use callprobe_harness::peer::{IcePolicy, IceServer, PeerEventKind};
use callprobe_testkit::turn_server::{PASSWORD, TurnServer, USER};

use crate::harness::TestRun;

/// A relay-only call carries media both ways, and it is really relayed:
/// with the TURN server killed, both sides lose the call (a call on host
/// candidates would not notice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_only_call_carries_media_through_coturn_and_loses_it_when_coturn_dies() {
    let Some(mut turn) = TurnServer::start("a_relay_only_call_carries_media") else {
        return;
    };
    let mut run = TestRun::with_our_server().await;
    run.connection.ice_servers = vec![IceServer {
        urls: vec![turn.url()],
        username: USER.into(),
        credential: PASSWORD.into(),
    }];
    run.connection.ice_policy = IcePolicy::Relay;
    run.connection.ice_disconnected_timeout = Duration::from_secs(1);
    run.connection.ice_keepalive_interval = Duration::from_millis(200);
    run.start_peers(2).await;
    run.call(0, 1);
    run.wait_for_media(&[(0, 1)], true).await;
    assert!(run.errors().is_empty(), "{:?}", run.errors());

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

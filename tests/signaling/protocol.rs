//! Every row of DESIGN §3, the call state and sender stamping.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn start_replies_with_a_21_character_id_at_the_top_level() {
    let server = server().await;
    let mut client = Client::connect(&server.url()).await;
    client.send(json!({"action": "start"})).await;
    let reply = client.recv().await;
    let id = reply["id"].as_str().unwrap();
    assert_eq!(
        reply,
        json!({"action": "start", "id": id}),
        "exactly the tutorial's shape"
    );
    assert_eq!(id.len(), 21);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
}

#[tokio::test]
async fn a_second_start_on_one_connection_returns_the_same_id() {
    let server = server().await;
    let mut client = Client::started(&server.url()).await;
    let first = client.id.clone();
    assert_eq!(client.start().await, first);
}

#[tokio::test]
async fn ids_differ_between_connections() {
    let server = server().await;
    let a = Client::started(&server.url()).await;
    let b = Client::started(&server.url()).await;
    assert_ne!(a.id, b.id);
}

#[tokio::test]
async fn offer_answer_and_candidates_are_relayed_with_the_senders_id() {
    let server = server().await;
    let mut caller = Client::started(&server.url()).await;
    let mut callee = Client::started(&server.url()).await;
    let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n";

    caller.send(offer_to(&callee.id, sdp)).await;
    let offer = callee.expect("offer").await;
    assert_eq!(
        offer,
        json!({"action": "offer", "data": {"offer": {"type": "offer", "sdp": sdp}, "remoteId": caller.id}})
    );

    callee.send(answer_to(&caller.id, sdp)).await;
    let answer = caller.expect("answer").await;
    assert_eq!(
        answer,
        json!({"action": "answer", "data": {"answer": {"type": "answer", "sdp": sdp}, "remoteId": callee.id}})
    );

    let line = "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host";
    let expected =
        json!({"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "ufrag"});
    caller.send(candidate_to(&callee.id, line)).await;
    let got = callee.expect("iceCandidate").await;
    assert_eq!(
        got["data"],
        json!({"candidate": expected, "remoteId": caller.id})
    );
    callee.send(candidate_to(&caller.id, line)).await;
    let got = caller.expect("iceCandidate").await;
    assert_eq!(
        got["data"],
        json!({"candidate": expected, "remoteId": callee.id})
    );
}

#[tokio::test]
async fn candidates_may_travel_before_the_answer() {
    // Trickle ICE: the caller's candidates follow its offer at once.
    let server = server().await;
    let mut caller = Client::started(&server.url()).await;
    let mut callee = Client::started(&server.url()).await;
    caller.send(offer_to(&callee.id, "o")).await;
    caller
        .send(candidate_to(&callee.id, "candidate:early"))
        .await;
    callee.expect("offer").await;
    let early = callee.expect("iceCandidate").await;
    assert_eq!(early["data"]["candidate"]["candidate"], "candidate:early");
}

#[tokio::test]
async fn a_renegotiation_offer_from_either_side_belongs_to_the_same_call() {
    let server = server().await;
    let (mut caller, mut callee) = call(&server.url()).await;
    // An ICE restart started by the callee.
    callee.send(offer_to(&caller.id, "restart")).await;
    let offer = caller.expect("offer").await;
    assert_eq!(offer["data"]["remoteId"], callee.id.as_str());
    caller.send(answer_to(&callee.id, "restart answer")).await;
    callee.expect("answer").await;
    assert_call_alive(&mut caller, &mut callee).await;
}

#[tokio::test]
async fn an_answer_or_candidate_without_a_call_gets_no_call() {
    let server = server().await;
    let mut a = Client::started(&server.url()).await;
    let b = Client::started(&server.url()).await;
    a.send(answer_to(&b.id, "a")).await;
    let err = a.expect_error("no-call").await;
    assert_eq!(err["data"]["inReplyTo"], "answer");
    assert_eq!(err["data"]["remoteId"], b.id.as_str());
    a.send(candidate_to(&b.id, "candidate:x")).await;
    a.expect_error("no-call").await;
    a.send(hangup_to(&b.id)).await;
    a.expect_error("no-call").await;
}

#[tokio::test]
async fn hangup_is_relayed_and_ends_the_call() {
    let server = server().await;
    let (mut caller, mut callee) = call(&server.url()).await;
    callee.send(hangup_to(&caller.id)).await;
    let hangup = caller.expect("hangup").await;
    assert_eq!(
        hangup,
        json!({"action": "hangup", "data": {"remoteId": callee.id}})
    );
    caller
        .send(candidate_to(&callee.id, "candidate:late"))
        .await;
    caller.expect_error("no-call").await;
    // Both are still connected and can call again.
    caller.send(offer_to(&callee.id, "again")).await;
    callee.expect("offer").await;
}

#[tokio::test]
async fn a_third_client_cannot_inject_into_someone_elses_call() {
    let server = server().await;
    let (mut alice, mut bob) = call(&server.url()).await;
    let mut mallory = Client::started(&server.url()).await;

    // Mallory claims to be Bob in the payload; the server goes by the socket.
    let mut forged = answer_to(&alice.id, "forged");
    forged["data"]["from"] = json!(bob.id);
    mallory.send(forged).await;
    mallory.expect_error("no-call").await;
    let mut forged = candidate_to(&alice.id, "candidate:forged 1 udp 1 10.6.6.6 6666 typ host");
    forged["data"]["remoteId"] = json!(alice.id);
    mallory.send(forged).await;
    mallory.expect_error("no-call").await;
    mallory.send(hangup_to(&bob.id)).await;
    mallory.expect_error("no-call").await;

    // Alice's next frame is Bob's real one: nothing of Mallory's was queued
    // before it (the errors above were sent after routing was decided).
    assert_call_alive(&mut bob, &mut alice).await;
}

#[tokio::test]
async fn a_peer_cannot_signal_itself() {
    let server = server().await;
    let mut a = Client::started(&server.url()).await;
    a.send(offer_to(&a.id.clone(), "self")).await;
    a.expect_error("bad-message").await;
}

#[tokio::test]
async fn a_peer_may_hold_several_calls_and_each_partner_learns_when_it_leaves() {
    let server = server().await;
    let mut hub = Client::started(&server.url()).await;
    let mut spokes = Vec::new();
    for _ in 0..3 {
        let mut spoke = Client::started(&server.url()).await;
        spoke.send(offer_to(&hub.id, "mesh")).await;
        let offer = hub.expect("offer").await;
        assert_eq!(offer["data"]["remoteId"], spoke.id.as_str());
        hub.send(answer_to(&spoke.id, "mesh answer")).await;
        spoke.expect("answer").await;
        spokes.push(spoke);
    }
    for spoke in &mut spokes {
        assert_call_alive(&mut hub, spoke).await;
    }
    let hub_id = hub.id.clone();
    hub.close().await;
    for spoke in &mut spokes {
        let left = spoke.expect("peerLeft").await;
        assert_eq!(
            left,
            json!({"action": "peerLeft", "data": {"remoteId": hub_id}})
        );
    }
}

#[tokio::test]
async fn an_offer_to_an_unknown_or_departed_id_gets_unknown_peer() {
    let server = server().await;
    let mut a = Client::started(&server.url()).await;
    a.send(offer_to("AAAAAAAAAAAAAAAAAAAAA", "o")).await;
    let err = a.expect_error("unknown-peer").await;
    assert_eq!(err["data"]["remoteId"], "AAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(err["data"]["inReplyTo"], "offer");

    a.send(offer_to("not even an id", "o")).await;
    a.expect_error("unknown-peer").await;

    let mut gone = Client::started(&server.url()).await;
    let gone_id = gone.id.clone();
    gone.close().await;
    // The close handshake completes only after the server has let go of it.
    gone.drain_until_closed().await;
    a.send(offer_to(&gone_id, "o")).await;
    a.expect_error("unknown-peer").await;
}

/// A client cannot hand another a field the receiver might trust: an
/// offer claiming `"from": <another id>` (and a field smuggled inside the
/// description) arrives with only what the protocol defines, and the
/// server's `remoteId` names the real sender.
#[tokio::test]
async fn fields_the_protocol_does_not_define_never_reach_the_other_peer() {
    let server = server().await;
    let mut caller = Client::started(&server.url()).await;
    let mut callee = Client::started(&server.url()).await;
    let bystander = Client::started(&server.url()).await;
    let sdp = "v=0\r\n";
    caller
        .send(json!({"action": "offer", "data": {
            "offer": {"type": "offer", "sdp": sdp, "from": bystander.id},
            "remoteId": callee.id,
            "from": bystander.id,
            "verified": true,
        }}))
        .await;
    let offer = callee.expect("offer").await;
    assert_eq!(
        offer,
        json!({"action": "offer", "data": {"offer": {"type": "offer", "sdp": sdp}, "remoteId": caller.id}})
    );
    callee
        .send(json!({"action": "hangup", "data": {"remoteId": caller.id, "reason": "from bob"}}))
        .await;
    let hangup = caller.expect("hangup").await;
    assert_eq!(
        hangup,
        json!({"action": "hangup", "data": {"remoteId": callee.id}})
    );
    assert!(metrics_have(&server, "callprobe_signaling_fields_dropped_total 4").await);
}

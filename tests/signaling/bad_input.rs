//! Broken and hostile input: each case gets a clear error or a close of that
//! one connection, and a call running beside it is not disturbed.

use callprobe_server::Limits;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

use crate::common::*;

/// Sends each raw text and expects the error code; the connection stays
/// usable after every one.
async fn expect_errors(client: &mut Client, cases: &[(&str, &str)]) {
    for (text, code) in cases {
        client.send_message(Message::text(*text)).await;
        let err = client.recv().await;
        assert_eq!(err["action"], "error", "for {text}");
        assert_eq!(err["data"]["code"], *code, "for {text}: {err}");
    }
}

#[tokio::test]
async fn malformed_json_gets_bad_json_and_the_connection_stays_open() {
    let server = server().await;
    let (mut alice, mut bob) = call(&server.url()).await;
    let mut client = Client::started(&server.url()).await;
    expect_errors(
        &mut client,
        &[
            ("{", "bad-json"),
            ("not json at all", "bad-json"),
            (r#"{"action":"offer",}"#, "bad-json"),
            ("", "bad-json"),
        ],
    )
    .await;
    assert_eq!(
        client.start().await.len(),
        21,
        "still served after the errors"
    );
    assert_call_alive(&mut alice, &mut bob).await;
}

#[tokio::test]
async fn json_that_is_not_an_object_gets_bad_message() {
    let server = server().await;
    let mut client = Client::started(&server.url()).await;
    expect_errors(
        &mut client,
        &[
            ("[]", "bad-message"),
            ("\"start\"", "bad-message"),
            ("42", "bad-message"),
            ("null", "bad-message"),
        ],
    )
    .await;
}

#[tokio::test]
async fn missing_or_wrong_typed_fields_get_bad_message_naming_the_field() {
    let server = server().await;
    let mut client = Client::started(&server.url()).await;
    let peer = Client::started(&server.url()).await;
    let to = &peer.id;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"data": {}}), "action"),
        (json!({"action": 1}), "action"),
        (json!({"action": "offer"}), "data"),
        (json!({"action": "offer", "data": "x"}), "data"),
        (
            json!({"action": "offer", "data": {"offer": {"type": "offer", "sdp": "s"}}}),
            "data.remoteId",
        ),
        (
            json!({"action": "offer", "data": {"remoteId": 5, "offer": {"type": "offer", "sdp": "s"}}}),
            "data.remoteId",
        ),
        (
            json!({"action": "offer", "data": {"remoteId": to}}),
            "data.offer",
        ),
        (
            json!({"action": "offer", "data": {"remoteId": to, "offer": "sdp"}}),
            "data.offer",
        ),
        (
            json!({"action": "offer", "data": {"remoteId": to, "offer": {"sdp": "s"}}}),
            "data.offer.type",
        ),
        (
            json!({"action": "offer", "data": {"remoteId": to, "offer": {"type": "offer", "sdp": 1}}}),
            "data.offer.sdp",
        ),
        (
            json!({"action": "answer", "data": {"remoteId": to, "answer": {"type": "offer", "sdp": "s"}}}),
            "data.answer.type",
        ),
        (
            json!({"action": "iceCandidate", "data": {"remoteId": to}}),
            "data.candidate",
        ),
        (
            json!({"action": "iceCandidate", "data": {"remoteId": to, "candidate": {"sdpMid": "0"}}}),
            "data.candidate.candidate",
        ),
        (
            json!({"action": "iceCandidate", "data": {"remoteId": to, "candidate": {"candidate": "c", "sdpMid": 0}}}),
            "data.candidate.sdpMid",
        ),
        (
            json!({"action": "iceCandidate", "data": {"remoteId": to, "candidate": {"candidate": "c", "sdpMLineIndex": -1}}}),
            "data.candidate.sdpMLineIndex",
        ),
        (json!({"action": "hangup", "data": {}}), "data.remoteId"),
    ];
    for (message, field) in cases {
        client.send(message.clone()).await;
        let err = client.expect_error("bad-message").await;
        let text = err["data"]["message"].as_str().unwrap();
        assert!(
            text.contains(&format!("\"{field}\"")),
            "{message} -> {text}"
        );
    }
}

#[tokio::test]
async fn an_unknown_action_gets_unknown_action() {
    let server = server().await;
    let mut client = Client::started(&server.url()).await;
    client.send(json!({"action": "joinRoom", "data": {}})).await;
    let err = client.expect_error("unknown-action").await;
    assert_eq!(err["data"]["inReplyTo"], "joinRoom");
    // peerLeft and error are ours to send, not the client's.
    client
        .send(json!({"action": "peerLeft", "data": {"remoteId": "x"}}))
        .await;
    client.expect_error("unknown-action").await;
}

#[tokio::test]
async fn signaling_before_start_gets_not_started() {
    let server = server().await;
    let peer = Client::started(&server.url()).await;
    let mut client = Client::connect(&server.url()).await;
    for message in [
        offer_to(&peer.id, "o"),
        answer_to(&peer.id, "a"),
        candidate_to(&peer.id, "c"),
        hangup_to(&peer.id),
    ] {
        client.send(message.clone()).await;
        let err = client.expect_error("not-started").await;
        assert_eq!(err["data"]["inReplyTo"], message["action"]);
    }
}

#[tokio::test]
async fn a_frame_over_the_size_limit_closes_only_that_connection_with_1009() {
    let server = server_with(Limits {
        max_message_bytes: 4096,
        ..Limits::default()
    })
    .await;
    let (mut alice, mut bob) = call(&server.url()).await;
    let mut big = Client::started(&server.url()).await;
    big.send(offer_to(&alice.id, &"x".repeat(10_000))).await;
    let (texts, close) = big.expect_close().await;
    assert_eq!(close.code, CloseCode::Size, "{close:?}");
    assert_eq!(
        texts.len(),
        1,
        "one explanation before the close: {texts:?}"
    );
    assert_eq!(texts[0]["data"]["code"], "too-large");
    // Nothing of it reached Alice, and the call goes on.
    assert_call_alive(&mut bob, &mut alice).await;
    // A message just under the limit still passes.
    alice.send(candidate_to(&bob.id, &"y".repeat(3_900))).await;
    bob.expect("iceCandidate").await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_only_that_connection_with_1007() {
    let server = server().await;
    let (mut alice, mut bob) = call(&server.url()).await;
    let mut client = Client::started(&server.url()).await;
    let payload: &[u8] = b"{\"action\":\"start\",\"x\":\"\xff\xfe\"}";
    let frame = Frame::message(payload.to_vec(), OpCode::Data(Data::Text), true);
    client.send_message(Message::Frame(frame)).await;
    let (_, close) = client.expect_close().await;
    assert_eq!(close.code, CloseCode::Invalid, "{close:?}");
    assert_call_alive(&mut alice, &mut bob).await;
}

#[tokio::test]
async fn a_binary_frame_closes_only_that_connection_with_1003() {
    let server = server().await;
    let (mut alice, mut bob) = call(&server.url()).await;
    let mut client = Client::started(&server.url()).await;
    client
        .send_message(Message::binary(br#"{"action":"start"}"#.to_vec()))
        .await;
    let (_, close) = client.expect_close().await;
    assert_eq!(close.code, CloseCode::Unsupported, "{close:?}");
    assert_call_alive(&mut alice, &mut bob).await;
}

#[tokio::test]
async fn a_flood_is_refused_then_cut_off_without_disturbing_other_calls() {
    let rate = 20;
    let server = server_with(Limits {
        messages_per_second: rate,
        ..Limits::default()
    })
    .await;
    let (mut alice, mut bob) = call(&server.url()).await;
    let (mut flooder, mut victim) = call(&server.url()).await;
    // 10x the rate, sent as fast as the socket takes them: far more than
    // one burst plus any refill while they are in flight.
    let sent = rate * 10;
    for _ in 0..sent {
        flooder
            .send(candidate_to(&victim.id, "candidate:flood"))
            .await;
    }
    let (texts, close) = flooder.expect_close().await;
    assert_eq!(close.code, CloseCode::Policy, "{close:?}");
    let refused = texts
        .iter()
        .filter(|t| t["data"]["code"] == "rate-limited")
        .count();
    assert!(
        refused >= rate as usize,
        "each dropped message is answered: {refused}"
    );
    // The victim got what was within the limit, then learned the flooder left.
    let mut relayed = 0;
    loop {
        let frame = victim.recv().await;
        match frame["action"].as_str() {
            Some("iceCandidate") => relayed += 1,
            Some("peerLeft") => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    // The flooder's start and offer took two tokens of the first burst.
    let burst_left = rate as usize - 2;
    assert!(
        relayed >= burst_left && relayed < sent as usize,
        "{relayed}"
    );
    assert_call_alive(&mut alice, &mut bob).await;
}

#[tokio::test]
async fn sdp_and_candidates_never_reach_the_logs() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // Process-wide: tracing caches per-callsite interest globally, so a
    // thread-local subscriber would race with the other tests' threads. The
    // other tests' logs land here too, which only widens the check.
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets a subscriber");

    let server = server().await;
    let mut caller = Client::started(&server.url()).await;
    let mut callee = Client::started(&server.url()).await;
    caller
        .send(offer_to(&callee.id, "v=0 SECRET-SDP-MARKER"))
        .await;
    callee.expect("offer").await;
    callee
        .send(answer_to(&caller.id, "v=0 SECRET-SDP-MARKER"))
        .await;
    caller.expect("answer").await;
    caller
        .send(candidate_to(
            &callee.id,
            "candidate:1 1 udp 1 192.0.2.77 SECRET-CANDIDATE-MARKER",
        ))
        .await;
    callee.expect("iceCandidate").await;
    caller.send(json!({"action": "offer", "data": {"remoteId": callee.id, "offer": {"type": "offer", "sdp": 5}, "x": "SECRET-SDP-MARKER"}})).await;
    caller.expect_error("bad-message").await;
    drop((caller, callee));
    server.shutdown().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("relay"),
        "relays are logged (by size): {logs}"
    );
    assert!(!logs.contains("SECRET-SDP-MARKER"), "{logs}");
    assert!(!logs.contains("SECRET-CANDIDATE-MARKER"), "{logs}");
    assert!(!logs.contains("192.0.2.77"), "{logs}");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_without_blocking_its_caller() {
    let server = server_with(Limits {
        outbox_messages: 16,
        messages_per_second: 100_000,
        ..Limits::default()
    })
    .await;
    let (mut caller, stalled) = call(&server.url()).await;
    // The stalled client never reads. 2000 frames of 60 kB (120 MB) are far
    // more than loopback socket buffers (a few MB) plus its 16-frame outbox.
    let filler = "z".repeat(60_000);
    for _ in 0..2000 {
        caller.send(candidate_to(&stalled.id, &filler)).await;
    }
    // Once evicted, later relays to it are refused as unknown-peer.
    loop {
        let frame = caller.recv().await;
        if frame["action"] == "peerLeft" {
            assert_eq!(frame["data"]["remoteId"], stalled.id.as_str());
            break;
        }
        assert_eq!(frame["data"]["code"], "unknown-peer", "{frame}");
    }
    drop(stalled);
}

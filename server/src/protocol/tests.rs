use super::*;

fn code_of(text: &str) -> ErrorCode {
    parse_client_frame(text).expect_err(text).code
}

#[test]
fn random_ids_are_21_url_safe_characters_and_differ() {
    let a = PeerId::random();
    let b = PeerId::random();
    assert_ne!(a, b);
    assert_eq!(a.as_str().len(), ID_LEN);
    assert_eq!(PeerId::parse(a.as_str()), Some(a));
}

#[test]
fn ids_of_the_wrong_length_or_alphabet_do_not_parse() {
    assert_eq!(PeerId::parse("short"), None);
    assert_eq!(PeerId::parse("abcdefghijklmnopqrst!"), None);
    assert_eq!(PeerId::parse("abcdefghijklmnopqrstuv"), None);
    assert!(PeerId::parse("abcdefghijklmnopqrs_-").is_some());
}

#[test]
fn the_tutorial_clients_messages_parse() {
    assert_eq!(
        parse_client_frame(r#"{"action":"start"}"#),
        Ok(ClientRequest::Start)
    );
    let offer =
        r#"{"action":"offer","data":{"offer":{"type":"offer","sdp":"v=0\r\n"},"remoteId":"x"}}"#;
    let ClientRequest::Relay(relay) = parse_client_frame(offer).unwrap() else {
        panic!("offer is a relay")
    };
    assert_eq!(relay.action, RelayAction::Offer);
    assert_eq!(relay.to, "x");
    let candidate = r#"{"action":"iceCandidate","data":{"remoteId":"x","candidate":{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}}"#;
    assert!(parse_client_frame(candidate).is_ok());
}

#[test]
fn broken_frames_get_the_code_that_names_what_is_wrong() {
    assert_eq!(code_of("{not json"), ErrorCode::BadJson);
    assert_eq!(code_of("[1,2]"), ErrorCode::BadMessage);
    assert_eq!(code_of(r#"{"data":{}}"#), ErrorCode::BadMessage);
    assert_eq!(code_of(r#"{"action":7}"#), ErrorCode::BadMessage);
    assert_eq!(code_of(r#"{"action":"dance"}"#), ErrorCode::UnknownAction);
    assert_eq!(code_of(r#"{"action":"offer"}"#), ErrorCode::BadMessage);
    assert_eq!(
        code_of(r#"{"action":"offer","data":{"remoteId":"x","offer":{"type":"answer","sdp":""}}}"#),
        ErrorCode::BadMessage
    );
    assert_eq!(
        code_of(
            r#"{"action":"answer","data":{"remoteId":"x","answer":{"type":"answer","sdp":5}}}"#
        ),
        ErrorCode::BadMessage
    );
    assert_eq!(
        code_of(r#"{"action":"iceCandidate","data":{"remoteId":"x","candidate":"candidate:1"}}"#),
        ErrorCode::BadMessage
    );
    assert_eq!(
        code_of(r#"{"action":"hangup","data":{"remoteId":42}}"#),
        ErrorCode::BadMessage
    );
}

#[test]
fn error_messages_name_the_field() {
    let err = parse_client_frame(
        r#"{"action":"iceCandidate","data":{"remoteId":"x","candidate":{"candidate":"c","sdpMLineIndex":"0"}}}"#,
    )
    .unwrap_err();
    assert!(
        err.message.contains("data.candidate.sdpMLineIndex"),
        "{err}"
    );
    assert_eq!(err.in_reply_to.as_deref(), Some("iceCandidate"));
}

fn relay_of(text: &str) -> RelayRequest {
    match parse_client_frame(text) {
        Ok(ClientRequest::Relay(relay)) => relay,
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn relayed_messages_carry_the_sender_not_what_the_client_claimed() {
    let from = PeerId::random();
    let request = relay_of(
        r#"{"action":"answer","data":{"remoteId":"spoofed","answer":{"type":"answer","sdp":"s"}}}"#,
    );
    let wire: Value =
        serde_json::from_str(&ServerMessage::relayed(from, request).to_json()).unwrap();
    assert_eq!(wire["action"], "answer");
    assert_eq!(wire["data"]["remoteId"], from.as_str());
}

#[test]
fn fields_the_protocol_does_not_define_are_dropped_at_every_level() {
    let request = relay_of(
        r#"{"action":"offer","data":{"remoteId":"x","from":"someone-else","verified":true,
            "offer":{"type":"offer","sdp":"v=0\r\n","from":"someone-else"}}}"#,
    );
    assert_eq!(
        Value::Object(request.data.clone()),
        serde_json::json!({"remoteId": "x", "offer": {"type": "offer", "sdp": "v=0\r\n"}})
    );
    assert_eq!(
        request.dropped,
        ["data.from", "data.offer.from", "data.verified"]
    );
    let request = relay_of(
        r#"{"action":"iceCandidate","data":{"remoteId":"x","candidate":{"candidate":"c",
            "sdpMid":"0","sdpMLineIndex":0,"usernameFragment":null,"relayProtocol":"udp"}}}"#,
    );
    assert_eq!(request.dropped, ["data.candidate.relayProtocol"]);
    assert_eq!(request.data["candidate"]["usernameFragment"], Value::Null);
    let request = relay_of(r#"{"action":"hangup","data":{"remoteId":"x","reason":"bye"}}"#);
    assert_eq!(request.dropped, ["data.reason"]);
    assert_eq!(request.data.len(), 1);
}

#[test]
fn what_the_tutorial_and_our_page_send_loses_nothing() {
    for text in [
        r#"{"action":"offer","data":{"offer":{"type":"offer","sdp":"v=0\r\n"},"remoteId":"x"}}"#,
        r#"{"action":"answer","data":{"remoteId":"x","answer":{"type":"answer","sdp":"v=0\r\n"}}}"#,
        r#"{"action":"iceCandidate","data":{"remoteId":"x","candidate":{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}}"#,
        r#"{"action":"hangup","data":{"remoteId":"x"}}"#,
    ] {
        assert_eq!(relay_of(text).dropped, Vec::<String>::new(), "{text}");
    }
}

#[test]
fn start_reply_has_the_id_at_the_top_level() {
    let id = PeerId::random();
    let wire: Value = serde_json::from_str(&ServerMessage::Started { id }.to_json()).unwrap();
    assert_eq!(
        wire,
        serde_json::json!({"action": "start", "id": id.as_str()})
    );
}

#[test]
fn long_client_text_is_cut_before_it_is_echoed() {
    let action = "x".repeat(10_000);
    let err = parse_client_frame(&format!(r#"{{"action":"{action}"}}"#)).unwrap_err();
    assert!(err.message.len() < 200, "{}", err.message.len());
}

#[test]
fn every_prefix_and_byte_corruption_of_valid_frames_parses_or_errs_without_panic() {
    let frames = [
        r#"{"action":"offer","data":{"offer":{"type":"offer","sdp":"v=0\r\n"},"remoteId":"abcdefghijklmnopqrstu"}}"#,
        r#"{"action":"iceCandidate","data":{"remoteId":"x","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}}}"#,
        r#"{"action":"start"}"#,
    ];
    let mut checked = 0;
    for frame in frames {
        for end in 0..=frame.len() {
            let _ = parse_client_frame(&frame[..end]);
            checked += 1;
        }
        for at in 0..frame.len() {
            for replacement in [b'"', b'{', b'}', b'0', b'\\', b' ', b'[', b'-'] {
                let mut bytes = frame.as_bytes().to_vec();
                bytes[at] = replacement;
                let text = String::from_utf8(bytes).expect("ASCII stays ASCII");
                if let Err(reply) = parse_client_frame(&text) {
                    assert!(!reply.message.is_empty());
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 1000);
}

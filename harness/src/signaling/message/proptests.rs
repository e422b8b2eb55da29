//! The client's frame parser against arbitrary input from a server (ours,
//! the tutorial's, or a broken one): it never panics, and every rejection
//! says which kind of wrong it is.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "start",
            "offer",
            "answer",
            "iceCandidate",
            "hangup",
            "peerLeft",
            "error",
            "AAAAAAAAAAAAAAAAAAAAAA",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        "\\PC{0,24}".prop_map(Value::String),
    ];
    let key = prop_oneof![
        prop::sample::select(vec![
            "action",
            "data",
            "id",
            "remoteId",
            "offer",
            "answer",
            "candidate",
            "sdp",
            "type",
            "code",
            "message",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,6}",
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(crate::proptest_seed::config(512))]

    #[test]
    fn any_text_parses_or_is_refused_as_not_json(text in "\\PC{0,200}") {
        let is_json = serde_json::from_str::<Value>(&text).is_ok();
        match parse_incoming(&text) {
            Ok(_) => prop_assert!(is_json),
            Err(MessageError::NotJson(_)) => prop_assert!(!is_json),
            Err(error) => prop_assert!(is_json, "{error}"),
        }
    }

    #[test]
    fn any_json_parses_or_is_refused_by_kind(value in json_value()) {
        let text = value.to_string();
        match parse_incoming(&text) {
            Ok(_) => {}
            Err(MessageError::NotJson(e)) => prop_assert!(false, "it was JSON: {text}: {e}"),
            Err(MessageError::Envelope(_)) => {
                prop_assert!(!value.get("action").is_some_and(Value::is_string), "{text}");
            }
            Err(MessageError::UnknownAction(action)) => {
                prop_assert_eq!(value.get("action"), Some(&Value::from(action)));
            }
            Err(error @ MessageError::Shape { .. }) => {
                prop_assert!(error.to_string().len() > 30, "{error}");
            }
        }
    }

    /// A well-formed offer from a named sender, whatever its SDP says.
    #[test]
    fn a_well_formed_offer_is_read_whatever_its_sdp(sdp in "\\PC{0,120}") {
        let from = PeerId::random();
        let text = json!({
            "action": "offer",
            "data": { "remoteId": from.as_str(), "offer": { "type": "offer", "sdp": sdp } },
        })
        .to_string();
        match parse_incoming(&text) {
            Ok(Incoming::Offer { from: Some(id), sdp: read }) => {
                prop_assert_eq!(id, from);
                prop_assert_eq!(read, sdp);
            }
            other => prop_assert!(false, "{other:?}"),
        }
    }
}

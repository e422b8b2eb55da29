//! Signaling frames as a peer sees them. Incoming frames are typed here;
//! outgoing ones are rendered in exactly the tutorial client's shapes.

use callprobe_server::protocol::{ErrorReply, PeerId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An ICE candidate as browsers serialise it (RTCIceCandidateInit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CandidateInit {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(default, rename = "sdpMLineIndex")]
    pub sdp_mline_index: Option<u16>,
    #[serde(default)]
    pub username_fragment: Option<String>,
}

/// A frame from the server. `from` is `None` where the server did not say
/// who sent it (the tutorial's server omits it on answers and candidates).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Incoming {
    Started {
        id: PeerId,
    },
    Offer {
        from: Option<PeerId>,
        sdp: String,
    },
    Answer {
        from: Option<PeerId>,
        sdp: String,
    },
    Candidate {
        from: Option<PeerId>,
        candidate: CandidateInit,
    },
    Hangup {
        from: Option<PeerId>,
    },
    PeerLeft {
        id: PeerId,
    },
    Error(ErrorReply),
    /// The server refused a request about the call with `remote` (a media
    /// server's room refusing a publish or a subscription).
    Refused {
        remote: PeerId,
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum MessageError {
    #[error("signaling frame is not JSON: {0}")]
    NotJson(String),
    #[error("signaling frame {action:?} has the wrong shape: {reason}")]
    Shape { action: String, reason: String },
    #[error("signaling frame has an action we do not know: {0:?}")]
    UnknownAction(String),
    /// JSON, but not the `{action, data}` envelope.
    #[error("signaling frame is not an {{action, data}} envelope: {0}")]
    Envelope(String),
}

/// Only `action` makes the envelope: the other fields are each action's
/// to check, so a wrong one is that action's shape error.
#[derive(Deserialize)]
struct Envelope {
    action: String,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Deserialize)]
struct Description {
    sdp: String,
}

#[derive(Deserialize)]
struct OfferData {
    offer: Description,
    #[serde(default, rename = "remoteId")]
    remote_id: Option<String>,
}

#[derive(Deserialize)]
struct AnswerData {
    answer: Description,
    #[serde(default, rename = "remoteId")]
    remote_id: Option<String>,
}

#[derive(Deserialize)]
struct CandidateData {
    candidate: CandidateInit,
    #[serde(default, rename = "remoteId")]
    remote_id: Option<String>,
}

#[derive(Deserialize)]
struct RemoteData {
    #[serde(default, rename = "remoteId")]
    remote_id: Option<String>,
}

pub(crate) fn parse_incoming(text: &str) -> Result<Incoming, MessageError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| MessageError::NotJson(e.to_string()))?;
    // An object, not an array: serde would read a struct from an array
    // position by position, and `["offer", …]` is no frame.
    if !value.is_object() {
        return Err(MessageError::Envelope(format!(
            "a frame is a JSON object, not {}",
            value.to_string().chars().take(40).collect::<String>()
        )));
    }
    let envelope: Envelope =
        serde_json::from_value(value).map_err(|e| MessageError::Envelope(e.to_string()))?;
    let action = envelope.action.clone();
    let shape = |reason: String| MessageError::Shape {
        action: action.clone(),
        reason,
    };
    let data = || envelope.data.clone().unwrap_or(Value::Null);
    let peer = |id: Option<String>| -> Result<Option<PeerId>, MessageError> {
        id.map(|id| PeerId::parse(&id).ok_or_else(|| shape(format!("{id:?} is not a peer id"))))
            .transpose()
    };
    Ok(match envelope.action.as_str() {
        "start" => {
            let id = match envelope.id.clone() {
                Some(Value::String(id)) => id,
                Some(other) => return Err(shape(format!("the id must be a string, not {other}"))),
                None => return Err(shape("no id".into())),
            };
            Incoming::Started {
                id: peer(Some(id))?.expect("Some in, Some out"),
            }
        }
        "offer" => {
            let d: OfferData = serde_json::from_value(data()).map_err(|e| shape(e.to_string()))?;
            Incoming::Offer {
                from: peer(d.remote_id)?,
                sdp: d.offer.sdp,
            }
        }
        "answer" => {
            let d: AnswerData = serde_json::from_value(data()).map_err(|e| shape(e.to_string()))?;
            Incoming::Answer {
                from: peer(d.remote_id)?,
                sdp: d.answer.sdp,
            }
        }
        "iceCandidate" => {
            let d: CandidateData =
                serde_json::from_value(data()).map_err(|e| shape(e.to_string()))?;
            Incoming::Candidate {
                from: peer(d.remote_id)?,
                candidate: d.candidate,
            }
        }
        "hangup" => {
            let d: RemoteData = serde_json::from_value(data()).map_err(|e| shape(e.to_string()))?;
            Incoming::Hangup {
                from: peer(d.remote_id)?,
            }
        }
        "peerLeft" => {
            let d: RemoteData = serde_json::from_value(data()).map_err(|e| shape(e.to_string()))?;
            let id = peer(d.remote_id)?.ok_or_else(|| shape("no remoteId".into()))?;
            Incoming::PeerLeft { id }
        }
        "error" => {
            Incoming::Error(serde_json::from_value(data()).map_err(|e| shape(e.to_string()))?)
        }
        _ => return Err(MessageError::UnknownAction(action)),
    })
}

/// A frame to the server.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outgoing {
    Start,
    Offer {
        to: PeerId,
        sdp: String,
    },
    Answer {
        to: PeerId,
        sdp: String,
    },
    Candidate {
        to: PeerId,
        candidate: CandidateInit,
    },
    Hangup {
        to: PeerId,
    },
    /// Asks a media server for `to`'s media: its offer comes back as
    /// `to`'s. (Nothing the tutorial's protocol has.)
    Subscribe {
        to: PeerId,
    },
}

impl Outgoing {
    pub(crate) fn action(&self) -> &'static str {
        match self {
            Outgoing::Start => "start",
            Outgoing::Offer { .. } => "offer",
            Outgoing::Answer { .. } => "answer",
            Outgoing::Candidate { .. } => "iceCandidate",
            Outgoing::Hangup { .. } => "hangup",
            Outgoing::Subscribe { .. } => "subscribe",
        }
    }

    pub(crate) fn to_json(&self) -> String {
        let value = match self {
            Outgoing::Start => json!({"action": "start"}),
            Outgoing::Offer { to, sdp } => json!({"action": "offer", "data": {
                "offer": {"type": "offer", "sdp": sdp}, "remoteId": to}}),
            Outgoing::Answer { to, sdp } => json!({"action": "answer", "data": {
                "answer": {"type": "answer", "sdp": sdp}, "remoteId": to}}),
            Outgoing::Candidate { to, candidate } => json!({"action": "iceCandidate", "data": {
                "candidate": candidate, "remoteId": to}}),
            Outgoing::Hangup { to } => json!({"action": "hangup", "data": {"remoteId": to}}),
            Outgoing::Subscribe { to } => json!({"action": "subscribe", "data": {"remoteId": to}}),
        };
        value.to_string()
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use callprobe_server::protocol::ErrorCode;

    #[test]
    fn our_servers_frames_parse_with_their_sender() {
        let id = PeerId::random();
        let offer = format!(
            r#"{{"action":"offer","data":{{"offer":{{"type":"offer","sdp":"v=0"}},"remoteId":"{id}"}}}}"#
        );
        assert_eq!(
            parse_incoming(&offer),
            Ok(Incoming::Offer {
                from: Some(id),
                sdp: "v=0".into()
            })
        );
        let left = format!(r#"{{"action":"peerLeft","data":{{"remoteId":"{id}"}}}}"#);
        assert_eq!(parse_incoming(&left), Ok(Incoming::PeerLeft { id }));
        let error = r#"{"action":"error","data":{"code":"unknown-peer","message":"gone","inReplyTo":"offer"}}"#;
        let Ok(Incoming::Error(reply)) = parse_incoming(error) else {
            panic!()
        };
        assert_eq!(reply.code, ErrorCode::UnknownPeer);
    }

    #[test]
    fn the_tutorial_servers_unstamped_answers_and_candidates_parse_without_a_sender() {
        let answer = r#"{"action":"answer","data":{"answer":{"type":"answer","sdp":"v=0"}}}"#;
        assert_eq!(
            parse_incoming(answer),
            Ok(Incoming::Answer {
                from: None,
                sdp: "v=0".into()
            })
        );
        let candidate = r#"{"action":"iceCandidate","data":{"candidate":{"candidate":"candidate:1","sdpMid":"0","sdpMLineIndex":0}}}"#;
        let Ok(Incoming::Candidate {
            from: None,
            candidate,
        }) = parse_incoming(candidate)
        else {
            panic!()
        };
        assert_eq!(candidate.sdp_mline_index, Some(0));
    }

    #[test]
    fn outgoing_frames_have_the_tutorial_clients_shape() {
        let to = PeerId::random();
        let offer: Value = serde_json::from_str(
            &Outgoing::Offer {
                to,
                sdp: "s".into(),
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            offer,
            json!({"action": "offer", "data": {"offer": {"type": "offer", "sdp": "s"}, "remoteId": to}})
        );
        let candidate = CandidateInit {
            candidate: "candidate:1".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        };
        let wire: Value =
            serde_json::from_str(&Outgoing::Candidate { to, candidate }.to_json()).unwrap();
        assert_eq!(wire["data"]["candidate"]["sdpMLineIndex"], 0);
        assert_eq!(wire["data"]["candidate"]["sdpMid"], "0");
    }

    #[test]
    fn broken_frames_are_typed_errors() {
        assert!(matches!(parse_incoming("{"), Err(MessageError::NotJson(_))));
        assert!(matches!(
            parse_incoming(r#"{"action":"offer","data":{}}"#),
            Err(MessageError::Shape { .. })
        ));
        assert!(matches!(
            parse_incoming(r#"{"action":"dance"}"#),
            Err(MessageError::UnknownAction(_))
        ));
        assert!(matches!(
            parse_incoming(r#"{"action":"start","id":"short"}"#),
            Err(MessageError::Shape { .. })
        ));
        // JSON that is no envelope, an array above all (found by the
        // proptest: serde reads a struct from an array by position).
        for text in [r#"["offer", {}]"#, r#"[""]"#, r#"{"data":{}}"#, "3"] {
            // (and below: a start whose id is no string is start's shape
            // error, not the envelope's)
            assert!(
                matches!(parse_incoming(text), Err(MessageError::Envelope(_))),
                "{text}"
            );
        }
        assert!(matches!(
            parse_incoming(r#"{"action":"start","id":[]}"#),
            Err(MessageError::Shape { .. })
        ));
    }
}

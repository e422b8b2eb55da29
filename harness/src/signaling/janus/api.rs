//! Janus's API as this client speaks it (janus 1.x, JSON over its
//! WebSocket transport): the requests it sends, the replies and events it
//! reads, and how a peer's id names its feed in a room.

use callprobe_server::protocol::PeerId;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// The plugin every handle attaches to.
pub(crate) const VIDEOROOM: &str = "janus.plugin.videoroom";
/// The WebSocket subprotocol Janus requires.
pub(crate) const SUBPROTOCOL: &str = "janus-protocol";

/// The remote a publisher's call is with: the room itself (a peer id no
/// server hands out, so it never names a peer).
pub fn room_remote() -> PeerId {
    PeerId::parse("janus-videoroom-00000").expect("21 id characters")
}

/// The feed id a peer publishes under: derived from its peer id, so every
/// subscriber knows a publisher's feed without asking. Numeric, as rooms
/// are by default, and below 2^53 so JavaScript clients read it exactly.
pub(crate) fn feed_of(peer: PeerId) -> u64 {
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let hash = peer
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    (hash & ((1 << 53) - 1)).max(1)
}

/// Connects to Janus's WebSocket API at `url` (its subprotocol asked for).
pub(crate) async fn connect(url: &str) -> Result<Socket, tungstenite::Error> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    // Nagle off, as browsers do: small frames must not wait for ACKs.
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await?;
    Ok(socket)
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What a frame from Janus is, as far as this client cares.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Frame {
    /// A request was taken; its outcome comes later (plugin messages).
    Ack { transaction: String },
    /// A request's outcome: `data` for session and handle requests,
    /// `plugin` for synchronous plugin requests.
    Success {
        transaction: String,
        data: Value,
        plugin: Option<Value>,
    },
    /// A core error (an unknown session or handle, a malformed request).
    Error {
        transaction: Option<String>,
        code: i64,
        reason: String,
    },
    /// A plugin's event on a handle, the answer to a request (`transaction`)
    /// or news (none), with a session description when it carries one.
    Event {
        handle: u64,
        transaction: Option<String>,
        data: Value,
        jsep: Option<Jsep>,
    },
    /// A candidate Janus trickles (`None`: its gathering is complete).
    Trickle {
        handle: u64,
        candidate: Option<TrickledCandidate>,
    },
    /// The handle's PeerConnection is up on Janus's side.
    WebrtcUp { handle: u64 },
    /// Janus hung the handle's PeerConnection up.
    Hangup { handle: u64, reason: String },
    /// The session expired (no keepalive in time): everything on it is gone.
    Timeout,
    /// Anything else (media, slowlink, detached): logged, not acted on.
    Other { kind: String },
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Jsep {
    pub kind: String,
    pub sdp: String,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TrickledCandidate {
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_mline_index: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Janus frame we cannot read: {0}")]
pub(crate) struct FrameError(pub String);

pub(crate) fn parse_frame(text: &str) -> Result<Frame, FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|e| FrameError(e.to_string()))?;
    let kind = value["janus"]
        .as_str()
        .ok_or_else(|| FrameError(format!("no \"janus\" field in {}", clip(text))))?;
    let transaction = value["transaction"].as_str().map(str::to_owned);
    let handle = || {
        value["sender"]
            .as_u64()
            .ok_or_else(|| FrameError(format!("{kind} without a sender handle")))
    };
    let need_transaction = || {
        transaction
            .clone()
            .ok_or_else(|| FrameError(format!("{kind} without a transaction")))
    };
    Ok(match kind {
        "ack" => Frame::Ack {
            transaction: need_transaction()?,
        },
        "success" => Frame::Success {
            transaction: need_transaction()?,
            data: value["data"].clone(),
            plugin: value.get("plugindata").map(|plugin| plugin["data"].clone()),
        },
        "error" => Frame::Error {
            transaction,
            code: value["error"]["code"].as_i64().unwrap_or(0),
            reason: value["error"]["reason"]
                .as_str()
                .unwrap_or("(no reason)")
                .to_owned(),
        },
        "event" => Frame::Event {
            handle: handle()?,
            transaction,
            data: value["plugindata"]["data"].clone(),
            jsep: match (
                value["jsep"]["type"].as_str(),
                value["jsep"]["sdp"].as_str(),
            ) {
                (Some(kind), Some(sdp)) => Some(Jsep {
                    kind: kind.to_owned(),
                    sdp: sdp.to_owned(),
                }),
                _ => None,
            },
        },
        "trickle" => {
            let candidate = &value["candidate"];
            Frame::Trickle {
                handle: handle()?,
                candidate: match candidate["candidate"].as_str() {
                    Some(line) if candidate["completed"] != Value::Bool(true) => {
                        Some(TrickledCandidate {
                            candidate: line.to_owned(),
                            sdp_mid: candidate["sdpMid"].as_str().map(str::to_owned),
                            sdp_mline_index: candidate["sdpMLineIndex"]
                                .as_u64()
                                .and_then(|i| u16::try_from(i).ok()),
                        })
                    }
                    _ => None,
                },
            }
        }
        "webrtcup" => Frame::WebrtcUp { handle: handle()? },
        "hangup" => Frame::Hangup {
            handle: handle()?,
            reason: value["reason"].as_str().unwrap_or("").to_owned(),
        },
        "timeout" => Frame::Timeout,
        other => Frame::Other {
            kind: other.to_owned(),
        },
    })
}

/// A plugin event's error, if it is one (`error_code` and `error`).
pub(crate) fn plugin_error(data: &Value) -> Option<String> {
    let code = data["error_code"].as_i64()?;
    let reason = data["error"].as_str().unwrap_or("(no reason)");
    Some(format!("videoroom error {code}: {reason}"))
}

/// The feeds a VideoRoom event says are published (`publishers`).
pub(crate) fn published_feeds(data: &Value) -> Vec<u64> {
    data["publishers"]
        .as_array()
        .map(|publishers| publishers.iter().filter_map(|p| p["id"].as_u64()).collect())
        .unwrap_or_default()
}

/// The feed a VideoRoom event says has stopped publishing or left.
pub(crate) fn departed_feed(data: &Value) -> Option<u64> {
    data["unpublished"]
        .as_u64()
        .or_else(|| data["leaving"].as_u64())
}

/// The requests, each with its transaction.
pub(crate) mod request {
    use super::*;

    pub(crate) fn create_session(transaction: &str) -> Value {
        json!({"janus": "create", "transaction": transaction})
    }

    pub(crate) fn attach(session: u64, transaction: &str) -> Value {
        json!({"janus": "attach", "session_id": session, "plugin": VIDEOROOM,
            "transaction": transaction})
    }

    pub(crate) fn keepalive(session: u64, transaction: &str) -> Value {
        json!({"janus": "keepalive", "session_id": session, "transaction": transaction})
    }

    pub(crate) fn destroy(session: u64, transaction: &str) -> Value {
        json!({"janus": "destroy", "session_id": session, "transaction": transaction})
    }

    pub(crate) fn detach(session: u64, handle: u64, transaction: &str) -> Value {
        json!({"janus": "detach", "session_id": session, "handle_id": handle,
            "transaction": transaction})
    }

    /// A plugin message on a handle, with a session description if given.
    pub(crate) fn message(
        session: u64,
        handle: u64,
        transaction: &str,
        body: Value,
        jsep: Option<(&str, &str)>,
    ) -> Value {
        let mut message = json!({"janus": "message", "session_id": session,
            "handle_id": handle, "transaction": transaction, "body": body});
        if let Some((kind, sdp)) = jsep {
            message["jsep"] = json!({"type": kind, "sdp": sdp});
        }
        message
    }

    pub(crate) fn trickle(
        session: u64,
        handle: u64,
        transaction: &str,
        candidate: &crate::signaling::CandidateInit,
    ) -> Value {
        // `webrtc` names no mid (an empty one) on its candidates; Janus
        // looks an empty mid up and finds nothing, so none is sent, and
        // the line index (every stream is bundled) says where it goes.
        let mid = candidate.sdp_mid.as_deref().filter(|mid| !mid.is_empty());
        let mut trickled = json!({"candidate": candidate.candidate,
            "sdpMLineIndex": candidate.sdp_mline_index.unwrap_or(0)});
        if let Some(mid) = mid {
            trickled["sdpMid"] = json!(mid);
        }
        json!({"janus": "trickle", "session_id": session, "handle_id": handle,
            "transaction": transaction, "candidate": trickled})
    }
}

fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeds_are_stable_nonzero_and_exact_in_javascript() {
        let peer = PeerId::parse("AAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(feed_of(peer), feed_of(peer));
        for _ in 0..1000 {
            let feed = feed_of(PeerId::random());
            assert!(feed > 0 && feed < 1 << 53, "{feed}");
        }
        assert_ne!(feed_of(peer), feed_of(room_remote()));
    }

    #[test]
    fn events_carry_their_handle_answer_and_the_rooms_news() {
        let answer = r#"{"janus":"event","session_id":1,"sender":7,"transaction":"t3",
            "plugindata":{"plugin":"janus.plugin.videoroom","data":{"videoroom":"event",
            "configured":"ok"}},"jsep":{"type":"answer","sdp":"v=0"}}"#;
        let Ok(Frame::Event {
            handle,
            transaction,
            jsep,
            ..
        }) = parse_frame(answer)
        else {
            panic!("{:?}", parse_frame(answer));
        };
        assert_eq!((handle, transaction.as_deref()), (7, Some("t3")));
        assert_eq!(
            jsep,
            Some(Jsep {
                kind: "answer".into(),
                sdp: "v=0".into()
            })
        );
        let news: Value = serde_json::from_str(
            r#"{"videoroom":"event","room":1,"publishers":[{"id":5,"display":"p"},{"id":6}]}"#,
        )
        .unwrap();
        assert_eq!(published_feeds(&news), [5, 6]);
        let gone: Value = serde_json::from_str(r#"{"videoroom":"event","unpublished":5}"#).unwrap();
        assert_eq!(departed_feed(&gone), Some(5));
        let refused: Value = serde_json::from_str(
            r#"{"videoroom":"event","error_code":428,"error":"No such feed (5)"}"#,
        )
        .unwrap();
        assert_eq!(
            plugin_error(&refused).as_deref(),
            Some("videoroom error 428: No such feed (5)")
        );
    }

    #[test]
    fn trickles_end_with_completed_and_unknown_frames_are_no_error() {
        let done =
            r#"{"janus":"trickle","session_id":1,"sender":3,"candidate":{"completed":true}}"#;
        assert_eq!(
            parse_frame(done),
            Ok(Frame::Trickle {
                handle: 3,
                candidate: None
            })
        );
        let media = r#"{"janus":"media","session_id":1,"sender":3,"type":"video"}"#;
        assert_eq!(
            parse_frame(media),
            Ok(Frame::Other {
                kind: "media".into()
            })
        );
        assert!(parse_frame("{}").is_err());
        assert!(parse_frame(r#"{"janus":"event"}"#).is_err());
    }
}

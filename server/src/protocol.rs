//! Wire types of the signaling protocol (DESIGN §3), shared with the harness.
//!
//! Frames are JSON text `{"action": <string>, "data": <object>}`. The shapes
//! the tutorial's browser client sends and expects are kept byte-compatible:
//! `start` is answered with `id` at the top level, and relayed messages carry
//! `data.remoteId`. Everything here is pure: parsing and rendering frames, no
//! sockets and no state.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Length of a peer id: 21 characters of the URL-safe alphabet, as nanoid.
pub(crate) const ID_LEN: usize = 21;
const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// A peer's id, assigned by the server on `start`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId([u8; ID_LEN]);

impl PeerId {
    /// A fresh id from the thread's CSPRNG (ChaCha, seeded from the OS).
    ///
    /// 256 is a multiple of 64, so masking a random byte keeps every
    /// character equally likely: 126 bits of entropy per id.
    pub fn random() -> Self {
        let bytes: [u8; ID_LEN] = rand::random();
        PeerId(bytes.map(|b| ID_ALPHABET[usize::from(b & 63)]))
    }

    /// Parses an id as a client wrote it; `None` when it cannot be one of ours.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; ID_LEN] = text.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
            .then_some(PeerId(bytes))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("peer ids hold only ASCII")
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.as_str())
    }
}

impl Serialize for PeerId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PeerId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PeerId::parse(&text).ok_or_else(|| serde::de::Error::custom("not a 21-character peer id"))
    }
}

/// The actions that are relayed from one peer to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RelayAction {
    Offer,
    Answer,
    IceCandidate,
    Hangup,
}

impl RelayAction {
    pub(crate) const ALL: [RelayAction; 4] = [
        RelayAction::Offer,
        RelayAction::Answer,
        RelayAction::IceCandidate,
        RelayAction::Hangup,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RelayAction::Offer => "offer",
            RelayAction::Answer => "answer",
            RelayAction::IceCandidate => "iceCandidate",
            RelayAction::Hangup => "hangup",
        }
    }

    fn from_wire(action: &str) -> Option<Self> {
        RelayAction::ALL.into_iter().find(|a| a.as_str() == action)
    }
}

/// The `code` of an `error` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The target id is not connected (never was, or has left).
    UnknownPeer,
    /// The frame is not JSON.
    BadJson,
    /// JSON, but not the shape the action needs.
    BadMessage,
    /// `action` names nothing we know.
    UnknownAction,
    /// A relay before this connection sent `start`.
    NotStarted,
    /// `answer`, `iceCandidate` or `hangup` between peers without a call.
    NoCall,
    /// The connection sends faster than its message rate allows.
    RateLimited,
    /// The frame is over the message size limit; the connection is closed.
    TooLarge,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::UnknownPeer,
        ErrorCode::BadJson,
        ErrorCode::BadMessage,
        ErrorCode::UnknownAction,
        ErrorCode::NotStarted,
        ErrorCode::NoCall,
        ErrorCode::RateLimited,
        ErrorCode::TooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownPeer => "unknown-peer",
            ErrorCode::BadJson => "bad-json",
            ErrorCode::BadMessage => "bad-message",
            ErrorCode::UnknownAction => "unknown-action",
            ErrorCode::NotStarted => "not-started",
            ErrorCode::NoCall => "no-call",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::TooLarge => "too-large",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `data` of an `error` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub in_reply_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub remote_id: Option<String>,
}

impl ErrorReply {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorReply {
            code,
            message: message.into(),
            in_reply_to: None,
            remote_id: None,
        }
    }

    pub fn in_reply_to(mut self, action: impl Into<String>) -> Self {
        self.in_reply_to = Some(action.into());
        self
    }

    pub fn remote_id(mut self, id: impl Into<String>) -> Self {
        self.remote_id = Some(id.into());
        self
    }
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A frame from a client, checked for shape.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ClientRequest {
    Start,
    Relay(RelayRequest),
}

/// A message one peer asks the server to pass to another.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RelayRequest {
    pub action: RelayAction,
    /// `data.remoteId` as the client wrote it; may name no one.
    pub to: String,
    /// `data` with only the fields the action defines
    /// ([`RelayAction::fields`]);
    /// `remoteId` is replaced by the sender's id when relayed.
    pub data: Map<String, Value>,
    /// Paths of the fields the client sent that the protocol does not
    /// define (`data.from`, `data.offer.extra`): dropped, never relayed.
    pub dropped: Vec<String>,
}

/// A field of a relayed action's `data` and, where it is an object, the
/// members it keeps. Each action carries its own (DESIGN §3); the objects
/// inside are `RTCSessionDescriptionInit` and `RTCIceCandidateInit`, as
/// browsers serialise them. Anything else a
/// client puts in `data` is dropped, not relayed, so no client can hand
/// another a field (`from`, `verified`, …) that the receiver's code might
/// trust; the sender is only ever known from the server's `remoteId`.
///
/// Dropped rather than refused: browsers add members to these
/// dictionaries over the years, and apps add their own fields; refusing
/// them would break calls that work, while dropping them loses nothing the
/// protocol promises.
pub(crate) type Field = (&'static str, &'static [&'static str]);

impl RelayAction {
    /// The fields this action's `data` carries, each with the members it
    /// keeps when it is an object (none: kept whole).
    pub(crate) fn fields(self) -> &'static [Field] {
        match self {
            RelayAction::Offer => &[("remoteId", &[]), ("offer", DESCRIPTION)],
            RelayAction::Answer => &[("remoteId", &[]), ("answer", DESCRIPTION)],
            RelayAction::IceCandidate => &[("remoteId", &[]), ("candidate", CANDIDATE)],
            RelayAction::Hangup => &[("remoteId", &[])],
        }
    }
}

const DESCRIPTION: &[&str] = &["type", "sdp"];
const CANDIDATE: &[&str] = &["candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"];

/// Keeps only the fields `action` defines; returns the paths of the rest.
/// Runs after the shape checks, so every kept object is an object.
fn keep_defined_fields(action: RelayAction, data: &mut Map<String, Value>) -> Vec<String> {
    let fields = action.fields();
    let mut dropped = Vec::new();
    data.retain(|name, value| {
        let Some((_, inner)) = fields.iter().find(|(field, _)| field == name) else {
            dropped.push(format!("data.{}", truncate(name, 40)));
            return false;
        };
        if let (false, Value::Object(object)) = (inner.is_empty(), value) {
            object.retain(|member, _| {
                let known = inner.contains(&member.as_str());
                if !known {
                    dropped.push(format!("data.{name}.{}", truncate(member, 40)));
                }
                known
            });
        }
        true
    });
    dropped.sort();
    dropped
}

/// Parses and checks one text frame from a client.
///
/// The order of checks decides which error a broken frame gets: JSON first,
/// then the envelope, then the action, then the action's own fields. Whether
/// the client has started and whether the target exists are the relay's
/// business, not the parser's.
pub(crate) fn parse_client_frame(text: &str) -> Result<ClientRequest, ErrorReply> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ErrorReply::new(ErrorCode::BadJson, format!("frame is not valid JSON: {e}"))
    })?;
    let Value::Object(mut envelope) = value else {
        return Err(ErrorReply::new(
            ErrorCode::BadMessage,
            format!(
                "frame must be a JSON object {{\"action\", \"data\"}}, got {}",
                json_kind(&value)
            ),
        ));
    };
    let action = match envelope.get("action") {
        Some(Value::String(action)) => action.clone(),
        Some(other) => {
            return Err(ErrorReply::new(
                ErrorCode::BadMessage,
                format!("\"action\" must be a string, got {}", json_kind(other)),
            ));
        }
        None => return Err(ErrorReply::new(ErrorCode::BadMessage, "missing \"action\"")),
    };
    if action == "start" {
        return Ok(ClientRequest::Start);
    }
    let Some(relay) = RelayAction::from_wire(&action) else {
        return Err(ErrorReply::new(
            ErrorCode::UnknownAction,
            format!(
                "unknown action {:?}; expected start, offer, answer, iceCandidate or hangup",
                truncate(&action, 40)
            ),
        )
        .in_reply_to(truncate(&action, 40)));
    };
    let bad = |message: String| {
        ErrorReply::new(ErrorCode::BadMessage, message).in_reply_to(relay.as_str())
    };
    let mut data = match envelope.remove("data") {
        Some(Value::Object(data)) => data,
        Some(other) => {
            return Err(bad(format!(
                "\"data\" must be an object, got {}",
                json_kind(&other)
            )));
        }
        None => return Err(bad("missing \"data\"".to_owned())),
    };
    let to = match data.get("remoteId") {
        Some(Value::String(to)) => to.clone(),
        Some(other) => {
            return Err(bad(format!(
                "\"data.remoteId\" must be a string, got {}",
                json_kind(other)
            )));
        }
        None => return Err(bad("missing \"data.remoteId\"".to_owned())),
    };
    match relay {
        RelayAction::Offer => check_description(&data, "offer", &["offer"]),
        RelayAction::Answer => check_description(&data, "answer", &["answer", "pranswer"]),
        RelayAction::IceCandidate => check_candidate(&data),
        RelayAction::Hangup => Ok(()),
    }
    .map_err(bad)?;
    let dropped = keep_defined_fields(relay, &mut data);
    Ok(ClientRequest::Relay(RelayRequest {
        action: relay,
        to,
        data,
        dropped,
    }))
}

/// `data.<field>` must be an RTCSessionDescriptionInit: `{type, sdp}`.
fn check_description(data: &Map<String, Value>, field: &str, types: &[&str]) -> Result<(), String> {
    let Some(description) = data.get(field) else {
        return Err(format!("missing \"data.{field}\""));
    };
    let Value::Object(description) = description else {
        return Err(format!(
            "\"data.{field}\" must be an object {{type, sdp}}, got {}",
            json_kind(description)
        ));
    };
    match description.get("type") {
        Some(Value::String(t)) if types.contains(&t.as_str()) => {}
        Some(other) => {
            return Err(format!(
                "\"data.{field}.type\" must be {}, got {}",
                types.join(" or "),
                truncate(&other.to_string(), 40)
            ));
        }
        None => return Err(format!("missing \"data.{field}.type\"")),
    }
    match description.get("sdp") {
        Some(Value::String(_)) => Ok(()),
        Some(other) => Err(format!(
            "\"data.{field}.sdp\" must be a string, got {}",
            json_kind(other)
        )),
        None => Err(format!("missing \"data.{field}.sdp\"")),
    }
}

/// `data.candidate` must be an RTCIceCandidateInit. An empty `candidate`
/// string is the standard end-of-candidates marker and is allowed.
fn check_candidate(data: &Map<String, Value>) -> Result<(), String> {
    let Some(candidate) = data.get("candidate") else {
        return Err("missing \"data.candidate\"".to_owned());
    };
    let Value::Object(candidate) = candidate else {
        return Err(format!(
            "\"data.candidate\" must be an object {{candidate, sdpMid, sdpMLineIndex}}, got {}",
            json_kind(candidate)
        ));
    };
    match candidate.get("candidate") {
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(format!(
                "\"data.candidate.candidate\" must be a string, got {}",
                json_kind(other)
            ));
        }
        None => return Err("missing \"data.candidate.candidate\"".to_owned()),
    }
    match candidate.get("sdpMid") {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(other) => {
            return Err(format!(
                "\"data.candidate.sdpMid\" must be a string or null, got {}",
                json_kind(other)
            ));
        }
    }
    match candidate.get("sdpMLineIndex") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= u64::from(u16::MAX)) => Ok(()),
        Some(other) => Err(format!(
            "\"data.candidate.sdpMLineIndex\" must be a small unsigned integer or null, got {}",
            truncate(&other.to_string(), 40)
        )),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Cuts client-supplied text before it is echoed in an error or a log line.
fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A frame from the server, rendered to its wire text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ServerMessage {
    /// Reply to `start`: `{"action":"start","id":"…"}`, id at the top level.
    Started {
        id: PeerId,
    },
    /// A relayed message; `data.remoteId` is the sender.
    Relayed {
        action: RelayAction,
        data: Map<String, Value>,
    },
    /// A peer that had a call with the receiver has disconnected.
    PeerLeft {
        remote_id: PeerId,
    },
    Error(ErrorReply),
}

impl ServerMessage {
    /// A relayed message stamped with its sender: whatever the client put in
    /// `remoteId` is replaced, so no client can speak as another.
    pub(crate) fn relayed(from: PeerId, mut request: RelayRequest) -> Self {
        request
            .data
            .insert("remoteId".to_owned(), Value::String(from.to_string()));
        ServerMessage::Relayed {
            action: request.action,
            data: request.data,
        }
    }

    pub(crate) fn to_json(&self) -> String {
        let value = match self {
            ServerMessage::Started { id } => serde_json::json!({"action": "start", "id": id}),
            ServerMessage::Relayed { action, data } => {
                serde_json::json!({"action": action.as_str(), "data": data})
            }
            ServerMessage::PeerLeft { remote_id } => {
                serde_json::json!({"action": "peerLeft", "data": {"remoteId": remote_id}})
            }
            ServerMessage::Error(reply) => serde_json::json!({"action": "error", "data": reply}),
        };
        value.to_string()
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests;

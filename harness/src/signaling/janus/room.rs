//! Making and removing a VideoRoom: one short session of its own, a
//! request at a time, before the peers join and after they have left.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::timeout_at;
use tokio_tungstenite::tungstenite::{self, Message};

use super::api::{self, Frame, request};

/// A room as a scenario wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomSpec {
    pub room: u64,
    /// Most publishers at once.
    pub publishers: u32,
    /// Janus's name for the video codec (`h264`, `vp8`, `vp9`).
    pub video_codec: String,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    #[error("cannot connect to Janus at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tungstenite::Error,
    },
    #[error("Janus's WebSocket: {0}")]
    Transport(#[from] tungstenite::Error),
    #[error("Janus did not answer {what} within {}", humantime::format_duration(*after))]
    Timeout { what: &'static str, after: Duration },
    #[error("Janus closed the connection during {0}")]
    Closed(&'static str),
    #[error("Janus refused {what}: {reason}")]
    Refused { what: &'static str, reason: String },
}

/// Creates the room on the Janus at `url` (a room of that id already
/// there is refused: a run never shares one), all within `bound`.
pub async fn create_room(url: &str, spec: &RoomSpec, bound: Duration) -> Result<(), RoomError> {
    let body = json!({"request": "create", "room": spec.room, "publishers": spec.publishers,
        "videocodec": spec.video_codec, "audiocodec": "opus", "bitrate": 0,
        "permanent": false, "description": format!("callprobe room {}", spec.room)});
    room_request(url, body, "creating the room", bound).await
}

/// Removes the room (bounded); its participants are told they are out.
pub async fn destroy_room(url: &str, room: u64, bound: Duration) -> Result<(), RoomError> {
    let body = json!({"request": "destroy", "room": room, "permanent": false});
    room_request(url, body, "destroying the room", bound).await
}

/// One synchronous VideoRoom request on a session of its own.
async fn room_request(
    url: &str,
    body: Value,
    what: &'static str,
    bound: Duration,
) -> Result<(), RoomError> {
    let deadline = tokio::time::Instant::now() + bound;
    let timed_out = || RoomError::Timeout { what, after: bound };
    let mut socket = timeout_at(deadline, api::connect(url))
        .await
        .map_err(|_| timed_out())?
        .map_err(|source| RoomError::Connect {
            url: url.to_owned(),
            source,
        })?;
    let mut exchange = async |message: Value, transaction: &str| -> Result<Frame, RoomError> {
        socket.send(Message::text(message.to_string())).await?;
        loop {
            let text = match socket.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) | None => return Err(RoomError::Closed(what)),
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.into()),
            };
            let frame = api::parse_frame(&text).map_err(|e| RoomError::Refused {
                what,
                reason: e.to_string(),
            })?;
            match &frame {
                Frame::Success { transaction: t, .. } | Frame::Ack { transaction: t }
                    if t != transaction => {}
                Frame::Ack { .. } => {}
                Frame::Success { .. } | Frame::Error { .. } => return Ok(frame),
                _ => {}
            }
        }
    };
    let work = async {
        let session = match exchange(request::create_session("s"), "s").await? {
            Frame::Success { data, .. } => data["id"].as_u64(),
            frame => return Err(refusal(what, &frame)),
        }
        .ok_or(RoomError::Closed(what))?;
        let handle = match exchange(request::attach(session, "a"), "a").await? {
            Frame::Success { data, .. } => data["id"].as_u64(),
            frame => return Err(refusal(what, &frame)),
        }
        .ok_or(RoomError::Closed(what))?;
        let reply = exchange(request::message(session, handle, "m", body, None), "m").await?;
        let outcome = match &reply {
            Frame::Success {
                plugin: Some(data), ..
            } => match api::plugin_error(data) {
                Some(reason) => Err(RoomError::Refused { what, reason }),
                None => Ok(()),
            },
            frame => Err(refusal(what, frame)),
        };
        let _ = exchange(request::destroy(session, "d"), "d").await;
        outcome
    };
    let outcome = timeout_at(deadline, work).await.map_err(|_| timed_out())?;
    let _ = timeout_at(deadline, socket.close(None)).await;
    outcome
}

fn refusal(what: &'static str, frame: &Frame) -> RoomError {
    RoomError::Refused {
        what,
        reason: match frame {
            Frame::Error { code, reason, .. } => format!("janus error {code}: {reason}"),
            other => format!("unexpected reply {other:?}"),
        },
    }
}

//! Synthetic peers: one task per peer, owning its signaling client and its
//! WebRTC connections (DESIGN §4).

mod connection;
mod keyframe;
mod receive;

pub use connection::{
    Connection, ConnectionError, ConnectionEvent, ConnectionSettings, EventSender,
    PAYLOAD_TYPE_H264, PAYLOAD_TYPE_OPUS, build_connection, h264_codec, opus_codec,
};
pub use receive::{AudioReceiveError, AudioReceiver, VideoReceiver, VideoReport};

//! The peers' side of signaling (DESIGN §3): typed frames and a WebSocket
//! client that works against our server and against the tutorial's original
//! one (no stamping of answers and candidates, no errors, no `peerLeft`).

mod client;
mod message;

pub use client::{ClientConfig, Received, SignalingClient, SignalingError};
pub use message::{CandidateInit, Incoming, MessageError, Outgoing, parse_incoming};

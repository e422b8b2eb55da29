//! The peers' side of signaling (DESIGN §3): typed frames and a WebSocket
//! client that works against our server and against the tutorial's original
//! one (no stamping of answers and candidates, no errors, no `peerLeft`).

mod client;
mod message;

pub use client::ClientConfig;
pub(crate) use client::{Received, SignalingClient};
pub(crate) use message::{CandidateInit, Incoming, Outgoing};

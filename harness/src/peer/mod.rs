//! Synthetic peers: one task per peer, owning its signaling client and its
//! WebRTC connections (DESIGN §4).
//!
//! | module | what |
//! |---|---|
//! | `task` | the peer task: commands, signaling, calls |
//! | `browser_stats` | what a browser peer reports of a call (`getStats`, grabs): data only |
//! | `call` | one call's life as a state machine both peer kinds drive |
//! | `failure` | how a call ends and what goes wrong at a peer, typed |
//! | `ice` | the STUN and TURN servers and candidate policy of a connection, the pair it selected |
//! | `turn_probe` | our own TURN allocation, to say why a relay-only call gathered nothing |
//! | `directory` | what a peer is told of the others: introductions of its callers |
//! | `connection` | building one peer connection (codecs, interceptors, timers) |
//! | `keyframe` | the interceptor that lets PLI/FIR reach the sender |
//! | `send` | pacing, encoding and sending one call's media |
//! | `offload` | a peer's CPU work off the async workers, a few jobs per core at a time |
//! | `data_channel` | a call's data channel: stamped messages both ways, verified and echoed |
//! | `track`, `receive` | reading incoming tracks into the verifiers |
//! | `events` | commands in, timestamped events out |

pub(crate) mod browser_stats;
pub(crate) mod call;
mod connection;
mod data_channel;
mod directory;
pub(crate) mod events;
mod failure;
mod ice;
mod interceptors;
mod keyframe;
mod offload;
mod receive;
mod reorder;
mod send;
mod source;
pub(crate) mod task;
mod track;
mod turn_probe;

pub use call::CallTimeouts;
pub(crate) use call::{CallInput, CallMachine, CallOutput, CallState};
pub use connection::ConnectionSettings;
pub use data_channel::DataSettings;
pub use directory::Introduction;
pub(crate) use directory::Introductions;
pub use events::{
    CallEnd, CallFailure, CallId, CallReport, MediaFault, MediaKind, MediaSource, Misbehaviour,
    PeerCommand, PeerError, PeerEvent, PeerEventKind, Role,
};
pub use ice::{CandidatePair, CandidateType, IcePolicy, IceServer};
pub use reorder::Reorder;
pub use send::MediaSettings;
pub(crate) use send::SentSpan;
pub(crate) use task::PEER_CLOSE;
pub use task::{PeerConfig, PeerHandle, spawn_peer};

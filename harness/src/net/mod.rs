//! The in-process network a synthetic peer's media goes through (DESIGN §7).
//!
//! Every UDP socket a peer connection opens is wrapped (through the
//! `Runtime` given to `with_runtime`), so faults need no root and no kernel
//! `netem`: a peer can go silent (`vanish`, `crash`), change address
//! (`move`), or have its traffic impaired per direction (loss, delay,
//! jitter, a rate cap, a blackhole). Delay, jitter, rate and the loss
//! models come from `str0m-netem`, a sans-IO emulator; what it does not
//! give is routing, flows and replay, which live here.
//!
//! | module | what |
//! |---|---|
//! | `impairment` | what a direction of a link suffers |
//! | `flow` | which flow a datagram belongs to (RFC 7983 demultiplexing) |
//! | `stage` | one direction of a link: per-flow emulators and the task that releases delayed datagrams |
//! | `link` | a peer's attachment to the network, and the network that routes between links |
//! | `handshake` | ending a receive burst behind a DTLS handshake record, so SRTP behind it is not dropped |
//! | `inbox` | a socket's in-memory receive queue: datagrams between the network's sockets skip the kernel |
//! | `socket`, `runtime` | the `webrtc` side: a wrapped UDP socket, and the runtime that wraps them |

mod flow;
mod handshake;
mod impairment;
mod inbox;
mod link;
mod runtime;
mod socket;
mod stage;

pub(crate) use impairment::{Direction, Impairment, Loss};
pub(crate) use link::{BindAddress, Link, LinkControl, Network};
pub(crate) use runtime::PeerRuntime;
pub(crate) use stage::FlowLosses;

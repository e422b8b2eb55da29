//! What callprobe's own tests share (a dev-only crate, never shipped).
//!
//! | module | what |
//! |---|---|
//! | [`budget`] | the CPU budget: tests that run media take turns, across test binaries and processes |
//! | [`loopback`] | browser tests on a loopback-only network, or skipped saying why |
//! | [`peers`] | `TestRun`: a server, N peers and their event log, every wait bounded |
//! | [`tutorial_server`] | a stand-in for the tutorial's own server (no sender stamping, no call state) |
//! | [`quiet`] | an INVALID run is tried again once the machine is quiet, a few times at most |
//! | [`raw_client`] | a raw signaling client that sends exactly the frames a test writes |
//! | [`turn_server`] | a real coturn on a loopback port, or skipped saying why |
//! | [`janus_server`] | a real Janus in a namespace of the test's own, or skipped saying why |

pub mod budget;
pub mod janus_server;
pub mod loopback;
pub mod peers;
pub mod quiet;
pub mod raw_client;
pub mod turn_server;
pub mod tutorial_server;
pub mod whip_servers;

pub use budget::{CpuSlot, cpu_slot, cpu_slot_blocking};
pub use loopback::run_on_loopback_only;

//! What callprobe's own tests share (a dev-only crate, never shipped).
//!
//! | module | what |
//! |---|---|
//! | [`budget`] | the CPU budget: tests that run media take turns, across test binaries and processes |
//! | [`loopback`] | browser tests on a loopback-only network, or skipped saying why |

pub mod budget;
pub mod loopback;

pub use budget::{CpuSlot, cpu_slot, cpu_slot_blocking};
pub use loopback::run_on_loopback_only;

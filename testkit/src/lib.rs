//! What callprobe's own tests share (a dev-only crate, never shipped).
//!
//! | module | what |
//! |---|---|
//! | [`budget`] | the CPU budget: tests that run media take turns, across test binaries and processes |

pub mod budget;

pub use budget::{CpuSlot, cpu_slot, cpu_slot_blocking};

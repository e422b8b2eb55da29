//! # callprobe-harness
//!
//! Synthetic WebRTC peers, media verification, scenarios, the runner and
//! reports (DESIGN.md §1-§6). Empty until the peers issue lands: the crate
//! exists now so the workspace has its final shape.

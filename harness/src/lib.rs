//! # callprobe-harness
//!
//! Synthetic WebRTC peers, media verification, scenarios and reports
//! (DESIGN.md §1-§6). Built stage by stage; so far:
//!
//! | module | what |
//! |---|---|
//! | [`browser`] | browser peers: headless Chromium on our page, driven over DevTools |
//! | [`cli`] | the `callprobe` command line: run, validate, serve |
//! | [`clock`] | the run's clock, on which everything is recorded |
//! | [`coturn`] | a TURN server a run (or a test) starts itself |
//! | [`janus`] | a media server (Janus, VideoRoom only) a run or a test starts itself |
//! | [`deploy`] | the Kubernetes manifest of a run split across machines |
//! | [`load`] | the harness watching itself: event-loop lag, sender pacing, CPU, memory |
//! | [`media`] | the stamped test pattern, the per-sender tone, H.264 and Opus |
//! | [`metrics`] | the names of what a run measures |
//! | [`net`] | the in-process network under every peer: silence, moves, impairments |
//! | [`netns`] | a loopback-only network namespace for runs with browser peers |
//! | [`peer`] | synthetic peers on the `webrtc` crate |
//! | [`record`] | the run as a record: `events.jsonl`, judged again by `callprobe judge` |
//! | [`report`] | terminal, JSON, JUnit XML and HTML reports |
//! | [`results`] | what a run found: the model reports read, and the collector |
//! | [`runner`] | one scenario: server, peers, timeline, clean stop |
//! | [`scenario`] | scenario files: model, validation, located errors |
//! | [`signaling`] | the peers' signaling client and typed frames |
//! | [`threshold`] | k6-style thresholds: `p95 < 20`, evaluated over samples |
//! | [`timeline`] | a call's setup phases from the peers' events |
//! | [`verify`] | verdicts over what arrived: frames by stamp, audio by tone |
//!
//! Where to start reading: [`media::stamp`] (what every frame says about
//! itself), then [`media::pattern`] and [`media::codec`].

pub mod browser;
pub mod cli;
pub mod clock;
pub mod coturn;
mod deploy;
mod helper_process;
pub mod janus;
mod load;
pub mod media;
mod metrics;
mod net;
pub mod netns;
pub mod peer;
pub mod record;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod signaling;
pub mod threshold;
pub mod timeline;
pub mod verify;
pub mod whip_servers;

#[cfg(test)]
mod proptest_seed;

//! The signaling server end to end: real WebSockets on 127.0.0.1:0.
//! One test binary, one module per concern.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod http_and_tls;
mod lifecycle;
mod protocol;
mod scale;

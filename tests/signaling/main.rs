//! The signaling server end to end: real WebSockets on 127.0.0.1:0.
//! One test binary, one module per concern.

use callprobe_testkit::raw_client as common;

mod bad_input;
mod http_and_tls;
mod lifecycle;
mod protocol;
mod scale;

//! Synthetic peers end to end: real `webrtc` connections through the real
//! signaling server on loopback, media verified frame by frame and by tone.

mod codecs;
use callprobe_testkit::peers as harness;
use callprobe_testkit::tutorial_server;
mod many_peers;
mod relay;
mod sfu;
mod shared_media;
mod two_peers;
mod whip;

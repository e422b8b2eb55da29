//! Synthetic peers end to end: real `webrtc` connections through the real
//! signaling server on loopback, media verified frame by frame and by tone.

mod codecs;
mod harness;
mod many_peers;
mod shared_media;
mod tutorial_server;
mod two_peers;

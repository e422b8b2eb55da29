//! The interceptors a connection's RTP goes through: the library's
//! defaults, with a retransmission buffer and NACK interval sized for our
//! media (`connection.rs` builds each connection with them).

use std::time::Duration;

use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder, Registry, Slot};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;

/// Packets a sender keeps for retransmission: 4 s of our 250 kbit/s
/// video, 0.6 s at 2 Mbit/s, beyond any round trip plus the receiver's
/// reorder hold (`peer/reorder.rs`, 60 ms), after which a retransmission
/// comes too late to count. The library keeps 1024 (~1.2 MB per video
/// sender), which was most of a peer's memory and, while it filled, a page
/// fault every few packets; 256 still held ~0.2 MB of a peer's 1 MB.
const NACK_SEND_BUFFER_PACKETS: u16 = 128;

/// How often the receiver asks for what it missed: often enough that the
/// retransmission comes back within the reorder buffer's hold
/// (`peer/reorder.rs`), which is when a gap would count as loss. The
/// library's default, 100 ms, asks after the frame is given up.
const NACK_INTERVAL: Duration = Duration::from_millis(20);

/// The library's default interceptors (NACK both ways, TWCC feedback, RTCP
/// sender and receiver reports) with a smaller retransmission buffer. The
/// NACK feedback types are on our codecs already.
pub(super) fn interceptors(media: &mut MediaEngine) -> Result<Registry, rtc::shared::error::Error> {
    let registry = Registry::new()
        .with(
            Slot::NackResponder,
            NackResponderBuilder::new()
                .with_size(NACK_SEND_BUFFER_PACKETS)
                .build(),
        )
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_interval(NACK_INTERVAL)
                .build(),
        );
    configure_simulcast_extension_headers(media)?;
    let registry = configure_twcc_receiver_only(registry, media)?;
    Ok(configure_rtcp_reports(registry))
}

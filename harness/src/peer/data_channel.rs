//! A call's data channel at a synthetic peer: the caller opens it before
//! its offer (as the tutorial's page does), the callee is given it; each
//! side, once it is open, sends a numbered, stamped message every interval,
//! verifies what the other sends, and echoes it so the other side times
//! the round trip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use callprobe_server::protocol::PeerId;
use tokio_util::sync::CancellationToken;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};

use super::events::MediaFault;
use super::send::FaultSwitch;
use super::track::{NewsSender, TrackNews};
use crate::media::data_message::{DataKind, DataMessage, MIN_SIZE};
use crate::verify::data::{DataReceiver, DataVerdict, Reply};

/// The channel's label: how the callee knows it is ours.
pub(crate) const LABEL: &str = "callprobe";

/// A call's data channel, as a scenario asks for it (`[media] data`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataSettings {
    /// Messages arrive in the order sent.
    pub ordered: bool,
    /// `None`: reliable, retransmitted until delivered; `Some(n)`: given
    /// up after n retransmissions.
    pub max_retransmits: Option<u16>,
    /// One message each way per interval.
    pub interval: Duration,
    /// Bytes per message (at least the header and CRC).
    pub size: usize,
}

impl DataSettings {
    /// What the library is asked for when the caller opens the channel.
    pub(crate) fn init(&self) -> RTCDataChannelInit {
        RTCDataChannelInit {
            ordered: self.ordered,
            max_retransmits: self.max_retransmits,
            ..RTCDataChannelInit::default()
        }
    }

    /// Every message is delivered (retransmitted as long as it takes).
    pub fn reliable(&self) -> bool {
        self.max_retransmits.is_none()
    }
}

/// Bound on one send: a channel whose buffer never drains is stuck, and
/// the call's end must not wait on it.
const SEND_BOUND: Duration = Duration::from_secs(2);

/// Who the channel is between, and on whose clock.
pub(crate) struct Ends {
    /// Our sender index, which our messages carry.
    pub(crate) us: u16,
    /// The index the remote's messages must carry.
    pub(crate) expected: u16,
    pub(crate) remote: PeerId,
    pub(crate) epoch: Instant,
    /// The peer's faults: a data fault stops or damages what it sends.
    pub(crate) faults: Arc<FaultSwitch>,
}

/// Runs the channel until `stop` (or until it closes): what came, and what
/// we sent. Its opening is news (`DataOpen`), for the call's setup.
pub(crate) async fn run(
    channel: Arc<dyn DataChannel>,
    settings: DataSettings,
    ends: Ends,
    news: NewsSender<PeerId>,
    stop: CancellationToken,
) -> DataVerdict {
    let clock_us = |at: Instant| at.saturating_duration_since(ends.epoch).as_micros() as u64;
    let mut receiver = DataReceiver::new(ends.expected, ends.us);
    let mut ticks = tokio::time::interval(settings.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = false;
    let mut seq = 0u32;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            event = channel.poll() => match event {
                Some(DataChannelEvent::OnOpen) => {
                    let now = Instant::now();
                    open = true;
                    receiver.opened(clock_us(now));
                    let _ = news.send((ends.remote, now, TrackNews::DataOpen));
                    ticks.reset_immediately();
                }
                Some(DataChannelEvent::OnMessage(message)) => {
                    let now = clock_us(Instant::now());
                    if let Reply::Echo(echo) = receiver.receive(&message.data, now) {
                        send(&*channel, echo.encode(MIN_SIZE)).await;
                    }
                }
                Some(DataChannelEvent::OnClose) | None => break,
                Some(_) => {}
            },
            _ = ticks.tick(), if open => {
                let fault = ends.faults.data();
                if fault == Some(MediaFault::DataStop) {
                    continue;
                }
                let message = DataMessage {
                    kind: DataKind::Message,
                    sender: ends.us,
                    seq,
                    sent_us: clock_us(Instant::now()),
                };
                let mut bytes = message.encode(settings.size);
                if fault == Some(MediaFault::DataCorrupt) {
                    bytes[MIN_SIZE / 2] ^= 0x5a;
                }
                let length = bytes.len();
                if send(&*channel, bytes).await {
                    receiver.sent(length);
                    seq += 1;
                }
            }
        }
    }
    receiver.verdict()
}

/// Sends, bounded; whether it went.
async fn send(channel: &dyn DataChannel, bytes: Vec<u8>) -> bool {
    match tokio::time::timeout(SEND_BOUND, channel.send(BytesMut::from(&bytes[..]))).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::debug!(%error, "a data channel send failed");
            false
        }
        Err(_) => {
            tracing::debug!("a data channel send did not finish within its bound");
            false
        }
    }
}

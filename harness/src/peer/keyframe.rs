//! Lets keyframe requests through to the sender.
//!
//! In webrtc 0.21 inbound RTCP ends at the interceptor chain unless an
//! interceptor marks it `DeliverToApplication`; with the default chain a
//! sender never sees the receiver's PLI or FIR and video only recovers at
//! the next periodic keyframe (measured: about a second after an ICE
//! restart). This interceptor marks exactly those two, and passes every
//! packet on unchanged.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Where it sits in the chain: application-side of every built-in slot, so
/// the NACK and report interceptors have seen the packet first.
pub(crate) const KEYFRAME_REQUEST_SLOT: usize = 20_000;

#[derive(Default)]
pub(crate) struct KeyframeRequestMarker {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

/// True when a compound RTCP packet asks for a keyframe.
pub(crate) fn asks_for_keyframe(packets: &[Box<dyn rtc::rtcp::Packet>]) -> bool {
    packets.iter().any(|packet| {
        let any = packet.as_any();
        any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
    })
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestMarker {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && asks_for_keyframe(packets)
        {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequestMarker {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::AttributedPacket;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::shared::TransportContext;

    fn inbound(packets: Vec<Box<dyn rtc::rtcp::Packet>>) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtcp(packets)),
        }
    }

    #[test]
    fn pli_and_fir_are_marked_for_the_application_and_reports_are_not() {
        let mut marker = KeyframeRequestMarker::default();
        let pli = PictureLossIndication {
            sender_ssrc: 1,
            media_ssrc: 2,
        };
        let fir = FullIntraRequest {
            sender_ssrc: 1,
            media_ssrc: 2,
            fir: vec![],
        };
        marker.handle_read(inbound(vec![Box::new(pli)])).unwrap();
        marker.handle_read(inbound(vec![Box::new(fir)])).unwrap();
        marker
            .handle_read(inbound(vec![Box::new(ReceiverReport::default())]))
            .unwrap();
        let marked: Vec<bool> = std::iter::from_fn(|| marker.poll_read())
            .map(|p| p.message.has(&Attribute::DeliverToApplication))
            .collect();
        assert_eq!(
            marked,
            [true, true, false],
            "every packet passes, only requests are marked"
        );
    }
}

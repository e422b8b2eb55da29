//! From RTP packets to verdicts: depacketize (in the negotiated codec's
//! payload format), decode, read the stamp, and
//! decide when to ask the sender for a keyframe. Plain structs fed packets,
//! so loss and recovery are tested without sockets.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rtc::rtp;
use rtc::rtp::packetizer::Depacketizer;

mod audio;

pub(crate) use audio::AudioReceiver;

use crate::media::codec::{CodecError, Luma, VideoCodec, VideoDecoder, decode_stamp};
use crate::media::shared::SharedClip;
use crate::media::stamp::Stamp;
use crate::peer::MediaSource;
use crate::peer::reorder::{Reorder, StartsStream};
use crate::verify::live::{LiveOutcome, LivePicture, LiveVerifier};
use crate::verify::video::{FrameOutcome, VideoVerdict, VideoVerifier};

/// While the picture is broken, ask again this often: a lost request (or
/// a lost keyframe) must not leave video frozen until the periodic one.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(100);

/// What the receiver wants done after a packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct VideoReport {
    /// A frame verified: with this stamp, or `None` for live video (a
    /// browser's camera), which carries none.
    pub verified: Option<Option<Stamp>>,
    /// Send a PLI to the sender now.
    pub request_keyframe: bool,
}

/// Follows one incoming video track.
pub(crate) struct VideoReceiver {
    codec: VideoCodec,
    /// Packets back in order first: reordering and duplicates are no loss.
    reorder: Reorder,
    /// Packets the reorder buffer handed on, reused between calls.
    ready: Vec<rtp::Packet>,
    depacketizer: Box<dyn Depacketizer + Send>,
    access_unit: BytesMut,
    /// The access unit being assembled lost a packet or did not parse.
    damaged: bool,
    /// A reference picture was lost: frames are suspect until a keyframe.
    broken: bool,
    /// A packet or a frame was lost (not merely damaged) since the last
    /// verified frame: the decoder conceals from what it has, so a stamp
    /// that does not read is loss, not corruption.
    concealing: bool,
    last_sequence: Option<u16>,
    /// Whether an access unit has been completed yet. The first one may
    /// have lost its leading packets unseen (sent before this side held the
    /// SRTP keys): with no earlier sequence number, no gap shows.
    completed_one: bool,
    last_request: Option<Duration>,
    keyframe_requests: u64,
    first_rtp: Option<Duration>,
    judge: FrameJudge,
    verifier: Verifier,
}

impl std::fmt::Debug for VideoReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoReceiver")
            .field("codec", &self.codec)
            .field("verifier", &self.verifier)
            .field("keyframe_requests", &self.keyframe_requests)
            .finish_non_exhaustive()
    }
}

/// Stamped frames are judged by their stamps, live ones by change.
#[derive(Debug)]
enum Verifier {
    Stamped(VideoVerifier),
    Live(LiveVerifier),
}

/// How a complete access unit is judged.
#[derive(Debug)]
enum FrameJudge {
    /// Decoded, and the stamp read from the picture.
    Decode(Box<dyn VideoDecoder>),
    /// Shared media: the SEI stamp and a hash against the clip, no decoding
    /// (and so no decoder state that a keyframe would have to repair).
    Shared(Arc<SharedClip>),
    /// Live video: decoded, and each picture hashed.
    Live(Box<dyn VideoDecoder>),
}

impl VideoReceiver {
    /// A receiver of our pattern from `expected_sender`, in `codec`.
    pub(crate) fn new(expected_sender: u16, codec: VideoCodec) -> Result<Self, CodecError> {
        Ok(VideoReceiver::judged_by(
            codec,
            FrameJudge::Decode(codec.codec().decoder()?),
            Verifier::Stamped(VideoVerifier::new(expected_sender)),
        ))
    }

    /// A receiver for shared-media mode (whose clip is H.264).
    pub(crate) fn shared(expected_sender: u16, clip: Arc<SharedClip>) -> Self {
        VideoReceiver::judged_by(
            VideoCodec::H264,
            FrameJudge::Shared(clip),
            Verifier::Stamped(VideoVerifier::new(expected_sender)),
        )
    }

    /// A receiver for live video without stamps (a browser's camera).
    pub(crate) fn live(codec: VideoCodec) -> Result<Self, CodecError> {
        Ok(VideoReceiver::judged_by(
            codec,
            FrameJudge::Live(codec.codec().decoder()?),
            Verifier::Live(LiveVerifier::new()),
        ))
    }

    /// A receiver for media from `source`, in `codec`.
    pub(crate) fn for_source(source: MediaSource, codec: VideoCodec) -> Result<Self, CodecError> {
        match source {
            MediaSource::Pattern(sender) => VideoReceiver::new(sender, codec),
            MediaSource::Browser(_) => VideoReceiver::live(codec),
        }
    }

    /// The codec it depacketizes and decodes.
    pub(crate) fn codec(&self) -> VideoCodec {
        self.codec
    }

    fn judged_by(codec: VideoCodec, judge: FrameJudge, verifier: Verifier) -> Self {
        let spec = codec.codec();
        VideoReceiver {
            codec,
            reorder: Reorder::starting_at(StartsStream::new(move |packet| {
                spec.starts_keyframe(&packet.payload)
            })),
            ready: Vec::new(),
            depacketizer: spec.depacketizer(),
            access_unit: BytesMut::new(),
            damaged: false,
            broken: false,
            concealing: false,
            last_sequence: None,
            completed_one: false,
            last_request: None,
            keyframe_requests: 0,
            first_rtp: None,
            judge,
            verifier,
        }
    }

    /// One RTP packet, `arrival` on the same clock as the stamps. It is
    /// judged once the packets before it are in (or given up as lost).
    pub(crate) fn on_rtp(&mut self, packet: rtp::Packet, arrival: Duration) -> VideoReport {
        self.first_rtp.get_or_insert(arrival);
        let mut ready = std::mem::take(&mut self.ready);
        self.reorder.push(packet, arrival, &mut ready);
        let report = self.judge_all(&mut ready, arrival);
        self.ready = ready;
        report
    }

    /// Judges what the reorder buffer still holds (the track has ended).
    pub(crate) fn flush(&mut self, now: Duration) -> VideoReport {
        let mut ready = std::mem::take(&mut self.ready);
        self.reorder.flush(&mut ready);
        let report = self.judge_all(&mut ready, now);
        self.ready = ready;
        report
    }

    fn judge_all(&mut self, ready: &mut Vec<rtp::Packet>, now: Duration) -> VideoReport {
        let mut report = VideoReport::default();
        for packet in ready.drain(..) {
            let one = self.judge(&packet, now);
            report.verified = report.verified.or(one.verified);
            report.request_keyframe |= one.request_keyframe;
        }
        report
    }

    /// One packet in sequence order (a gap in the numbers is loss).
    fn judge(&mut self, packet: &rtp::Packet, arrival: Duration) -> VideoReport {
        let sequence = packet.header.sequence_number;
        if let Some(last) = self.last_sequence {
            let step = sequence.wrapping_sub(last);
            if step == 0 || step > u16::MAX / 2 {
                return VideoReport::default(); // the reorder buffer lets none through
            }
            if step > 1 {
                // Lost packets. Inside a frame, that frame cannot be decoded;
                // between frames, a reference is gone and what follows is
                // suspect until a keyframe (the stamps will tell).
                self.damaged |= !self.access_unit.is_empty();
                self.broken = self.decodes();
                self.concealing = self.broken;
                if let Verifier::Live(verifier) = &mut self.verifier {
                    verifier.packets_lost();
                }
            }
        }
        self.last_sequence = Some(sequence);
        if packet.payload.is_empty() {
            // Padding only (a browser probing bandwidth): nothing to decode,
            // and nothing lost.
            return VideoReport::default();
        }
        // Ask at once, not at the end of the frame: a frame-time sooner.
        let mut request_keyframe = self.broken && self.request_due(arrival);
        match self.depacketizer.depacketize(&packet.payload) {
            Ok(nalus) => self.access_unit.extend_from_slice(&nalus),
            Err(_) => self.damaged = true,
        }
        if !packet.header.marker {
            return VideoReport {
                verified: None,
                request_keyframe,
            };
        }
        let access_unit = self.access_unit.split().freeze();
        let damaged = std::mem::take(&mut self.damaged);
        if let (FrameJudge::Live(decoder), Verifier::Live(verifier)) =
            (&mut self.judge, &mut self.verifier)
        {
            let outcome = if damaged || access_unit.is_empty() {
                LiveOutcome::Undecodable
            } else {
                let mut picture = None;
                match decoder.decode(&access_unit, &mut |luma| picture = Some(live_picture(luma))) {
                    Ok(true) => picture.map_or(LiveOutcome::Undecodable, LiveOutcome::Decoded),
                    Ok(false) | Err(_) => LiveOutcome::Undecodable,
                }
            };
            let verified = verifier.observe(arrival, packet.header.timestamp, outcome);
            match (verified, outcome) {
                (true, _) => self.broken = false,
                (false, LiveOutcome::Decoded(_)) => {}
                (false, LiveOutcome::Undecodable) => self.broken = true,
            }
            request_keyframe |= self.broken && self.request_due(arrival);
            return VideoReport {
                verified: verified.then_some(None),
                request_keyframe,
            };
        }
        let outcome = if damaged || access_unit.is_empty() {
            FrameOutcome::Undecodable
        } else {
            match &mut self.judge {
                FrameJudge::Decode(decoder) => match decode_stamp(&mut **decoder, &access_unit) {
                    Ok(Some(decoded)) => FrameOutcome::Decoded(decoded.stamp),
                    Ok(None) | Err(_) => FrameOutcome::Undecodable,
                },
                FrameJudge::Shared(clip) => FrameOutcome::Decoded(clip.check_frame(&access_unit)),
                FrameJudge::Live(_) => unreachable!("live frames are judged above"),
            }
        };
        // A frame whose stamp does not read is loss, not damaged content,
        // when the loss explains it: a first frame may be missing its
        // start, and while a reference is known lost (no keyframe since)
        // the decoder conceals from what it has.
        let first = !std::mem::replace(&mut self.completed_one, true);
        let outcome = match outcome {
            FrameOutcome::Decoded(Err(_)) if first || self.concealing => FrameOutcome::Undecodable,
            outcome => outcome,
        };
        let Verifier::Stamped(verifier) = &mut self.verifier else {
            unreachable!("a stamped judge has a stamped verifier");
        };
        let verified = verifier.observe(arrival, outcome);
        match (verified, outcome) {
            // A clean picture after a loss can only come from a keyframe
            // (or from frames that never needed the lost one).
            (Some(_), _) => {
                self.broken = false;
                self.concealing = false;
            }
            (None, FrameOutcome::Decoded(Ok(_))) => {} // a duplicate or a wrong sender
            // A damaged stamp asks for a keyframe too, but is no loss:
            // the next damaged one is corrupt again.
            (None, FrameOutcome::Decoded(Err(_))) => self.broken = self.decodes(),
            (None, FrameOutcome::Undecodable) => {
                self.broken = self.decodes();
                self.concealing = self.broken;
            }
        }
        request_keyframe |= self.broken && self.request_due(arrival);
        VideoReport {
            verified: verified.map(Some),
            request_keyframe,
        }
    }

    /// Only a decoder has state a lost packet can break; every shared frame
    /// stands alone for its check, so shared receivers never ask for
    /// keyframes.
    fn decodes(&self) -> bool {
        matches!(self.judge, FrameJudge::Decode(_) | FrameJudge::Live(_))
    }

    fn request_due(&mut self, now: Duration) -> bool {
        let due = self
            .last_request
            .is_none_or(|last| now.saturating_sub(last) >= KEYFRAME_REQUEST_INTERVAL);
        if due {
            self.last_request = Some(now);
            self.keyframe_requests += 1;
        }
        due
    }

    pub(crate) fn first_rtp(&self) -> Option<Duration> {
        self.first_rtp
    }

    pub(crate) fn keyframe_requests(&self) -> u64 {
        self.keyframe_requests
    }

    pub(crate) fn verdict(&self, frames_sent: Option<u32>) -> VideoVerdict {
        match &self.verifier {
            Verifier::Stamped(verifier) => verifier.verdict(frames_sent),
            Verifier::Live(verifier) => verifier.verdict(),
        }
    }
}

/// A decoded live picture's size and a hash of its luma.
fn live_picture(luma: Luma<'_>) -> LivePicture {
    let mut hasher = crc32fast::Hasher::new();
    for row in luma.plane.chunks(luma.stride).take(luma.height) {
        hasher.update(&row[..luma.width]);
    }
    LivePicture {
        hash: hasher.finalize(),
        width: luma.width,
        height: luma.height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::{H264Encoder, VideoSettings};
    use crate::media::pattern::Pattern;
    use bytes::Bytes;
    use rtc::rtp::codec::h264::H264Payloader;
    use rtc::rtp::packetizer::Payloader;

    use crate::peer::reorder::HOLD;

    const SENDER: u16 = 2;
    const FRAME: Duration = Duration::from_micros(33_333);

    /// A sender: pattern, encoder and payloader, with RTP sequence numbers.
    struct Sender {
        pattern: Pattern,
        encoder: H264Encoder,
        payloader: H264Payloader,
        sequence: u16,
        frame: u32,
    }

    impl Sender {
        fn new() -> Self {
            Sender {
                pattern: Pattern::new(SENDER, 320, 240).unwrap(),
                encoder: H264Encoder::new(&VideoSettings::default()).unwrap(),
                payloader: H264Payloader::default(),
                sequence: 65_000, // wraps during the test
                frame: 0,
            }
        }

        /// The RTP packets of the next frame.
        fn next_frame(&mut self) -> Vec<rtp::Packet> {
            let capture = (FRAME * self.frame).as_micros() as u64;
            let encoded = self
                .encoder
                .encode(self.pattern.draw(self.frame, capture))
                .unwrap();
            self.frame += 1;
            // A small MTU: every frame spans several packets.
            let payloads = self
                .payloader
                .payload(300, &Bytes::from(encoded.data))
                .unwrap();
            let count = payloads.len();
            payloads
                .into_iter()
                .enumerate()
                .map(|(i, payload)| {
                    self.sequence = self.sequence.wrapping_add(1);
                    rtp::Packet {
                        header: rtp::header::Header {
                            marker: i + 1 == count,
                            sequence_number: self.sequence,
                            ..Default::default()
                        },
                        payload,
                    }
                })
                .collect()
        }
    }

    #[test]
    fn a_clean_stream_verifies_every_frame_and_asks_for_nothing() {
        let mut sender = Sender::new();
        let mut receiver = VideoReceiver::new(SENDER, VideoCodec::H264).unwrap();
        for n in 0..90 {
            for packet in sender.next_frame() {
                let report = receiver.on_rtp(packet, FRAME * n + Duration::from_millis(2));
                assert!(!report.request_keyframe);
            }
        }
        let verdict = receiver.verdict(Some(90));
        assert_eq!(
            (verdict.verified, verdict.lost, verdict.corrupted),
            (90, 0, 0),
            "{verdict:?}"
        );
        assert_eq!(receiver.keyframe_requests(), 0);
    }

    /// The first frame's leading packets can be gone before anything was
    /// seen (shared media that beat the SRTP keys): no gap shows, so the
    /// partial frame counts as lost. A later frame that arrives whole but
    /// does not match the clip is still corrupt.
    #[test]
    fn a_first_frame_missing_its_start_is_lost_and_a_later_bad_frame_is_corrupt() {
        use crate::media::shared::SharedClip;
        use crate::media::stamp::Stamp;

        let clip = Arc::new(SharedClip::encode(&VideoSettings::default(), 30, 32_000).unwrap());
        let mut payloader = H264Payloader::default();
        let mut sequence = 1000u16;
        let mut packets = |frame: u32, garble: bool| {
            let stamp = Stamp {
                sender: SENDER,
                frame,
                capture_us: (FRAME * frame).as_micros() as u64,
            };
            let mut access_unit = clip.stamped_frame(stamp).to_vec();
            if garble {
                let last = access_unit.len() - 1;
                access_unit[last] ^= 0x55;
            }
            let payloads = payloader.payload(300, &Bytes::from(access_unit)).unwrap();
            let count = payloads.len();
            payloads
                .into_iter()
                .enumerate()
                .map(|(i, payload)| {
                    sequence = sequence.wrapping_add(1);
                    let header = rtp::header::Header {
                        marker: i + 1 == count,
                        sequence_number: sequence,
                        ..Default::default()
                    };
                    rtp::Packet { header, payload }
                })
                .collect::<Vec<_>>()
        };
        let mut receiver = VideoReceiver::shared(SENDER, Arc::clone(&clip));
        let first = packets(0, false);
        assert!(first.len() > 2, "frame 0 spans several packets");
        for packet in &first[first.len() / 2..] {
            receiver.on_rtp(packet.clone(), Duration::from_millis(2));
        }
        for n in 1..20 {
            let garble = n == 10;
            for packet in packets(n, garble) {
                receiver.on_rtp(packet, FRAME * n + Duration::from_millis(2));
            }
        }
        let verdict = receiver.verdict(Some(20));
        assert_eq!(verdict.first_frame_number, Some(1), "{verdict:?}");
        assert_eq!(
            (verdict.verified, verdict.corrupted),
            (18, 1),
            "frame 0 lost, frame 10 corrupt: {verdict:?}"
        );
    }

    #[test]
    fn a_lost_packet_brings_a_keyframe_request_and_the_next_keyframe_recovers() {
        let mut sender = Sender::new();
        let mut receiver = VideoReceiver::new(SENDER, VideoCodec::H264).unwrap();
        let mut requested_at = None;
        let mut recovered_at = None;
        for n in 0..60u32 {
            let mut packets = sender.next_frame();
            if n == 20 {
                assert!(packets.len() > 1);
                packets.remove(0); // the first packet of frame 20 is lost
            }
            let mut asked = false;
            for packet in &packets {
                let report = receiver.on_rtp(packet.clone(), FRAME * n);
                asked |= report.request_keyframe;
                if n > 20 && report.verified.is_some() && recovered_at.is_none() {
                    recovered_at = Some(n);
                }
            }
            if asked {
                requested_at.get_or_insert(n);
                // The sender answers the PLI: its next frame is a keyframe.
                sender.encoder.request_keyframe();
            }
        }
        // The gap waits the reorder buffer's hold for its packet (a NACK
        // could bring it back); then the frame is lost and a keyframe asked for.
        let held_frames = HOLD.as_micros().div_ceil(FRAME.as_micros()) as u32;
        assert_eq!(
            requested_at,
            Some(20 + held_frames),
            "asked once the hold has passed without the packet"
        );
        assert_eq!(
            recovered_at,
            Some(21 + held_frames),
            "the keyframe that answers it verifies"
        );
        // Frame 20 and the frames after it that referenced it while the
        // gap was held are lost; the keyframe repairs the picture.
        let verdict = receiver.verdict(Some(60));
        let lost = 1 + u64::from(held_frames);
        assert_eq!(
            (verdict.lost, verdict.undecodable),
            (lost, lost),
            "{verdict:?}"
        );
    }

    #[test]
    fn without_an_answer_the_request_is_repeated_no_more_than_every_100_ms() {
        let mut sender = Sender::new();
        let mut receiver = VideoReceiver::new(SENDER, VideoCodec::H264).unwrap();
        let mut requests = Vec::new();
        for n in 0..30u32 {
            let mut packets = sender.next_frame();
            if n == 5 {
                packets.clear(); // a whole frame lost, and nobody answers
            }
            for packet in &packets {
                if receiver.on_rtp(packet.clone(), FRAME * n).request_keyframe {
                    requests.push(n);
                }
            }
        }
        let held_frames = HOLD.as_micros().div_ceil(FRAME.as_micros()) as u32;
        assert_eq!(
            requests.first(),
            Some(&(6 + held_frames)),
            "noticed once the hold has passed"
        );
        assert!(
            requests.len() >= 2,
            "asked again while still broken: {requests:?}"
        );
        for pair in requests.windows(2) {
            assert!(
                FRAME * (pair[1] - pair[0]) >= KEYFRAME_REQUEST_INTERVAL,
                "{requests:?}"
            );
        }
    }
}

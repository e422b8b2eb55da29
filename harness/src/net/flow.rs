//! Which flow a datagram belongs to. Loss is decided per flow so that a
//! seed replays the same pattern: the video packets of one call go out in
//! the same order every run, while how they interleave with audio, RTCP and
//! STUN depends on timing. Retransmissions get a flow of their own for the
//! same reason (when a NACK arrives is timing too).

use serde::Serialize;

/// RFC 7983: the first byte tells STUN, DTLS and RTP/RTCP apart.
const RTP_FIRST_BYTE: std::ops::RangeInclusive<u8> = 128..=191;
/// RTCP packet types (SR 200 … XR 207, and the reserved range around them)
/// land here in an RTP header's second byte (RFC 5761).
const RTCP_SECOND_BYTE: std::ops::RangeInclusive<u8> = 192..=223;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Flow {
    /// STUN, DTLS and RTCP.
    Control,
    /// RTP (SRTP keeps the header in the clear) with this payload type.
    Media { payload_type: u8 },
    /// An RTP packet with a sequence number already seen in its flow.
    Retransmission,
}

impl Flow {
    /// A stable number, for deriving a seed per flow.
    pub(crate) fn ordinal(self) -> u64 {
        match self {
            Flow::Control => 1,
            Flow::Retransmission => 2,
            Flow::Media { payload_type } => 0x100 + u64::from(payload_type),
        }
    }
}

/// The flow of a datagram and, for RTP, its sequence number.
pub(crate) fn classify(datagram: &[u8]) -> (Flow, Option<u16>) {
    match datagram {
        [first, second, seq_hi, seq_lo, ..]
            if datagram.len() >= 12
                && RTP_FIRST_BYTE.contains(first)
                && !RTCP_SECOND_BYTE.contains(second) =>
        {
            let payload_type = second & 0x7f;
            (
                Flow::Media { payload_type },
                Some(u16::from_be_bytes([*seq_hi, *seq_lo])),
            )
        }
        _ => (Flow::Control, None),
    }
}

/// DTLS record content types that carry the handshake: change cipher
/// spec (20) and handshake (22); application data (23, a data channel's
/// SCTP) is not.
const DTLS_HANDSHAKE_TYPES: [u8; 2] = [20, 22];

/// Whether a datagram is (or starts with) a DTLS handshake record.
pub(crate) fn is_dtls_handshake(datagram: &[u8]) -> bool {
    datagram
        .first()
        .is_some_and(|first| DTLS_HANDSHAKE_TYPES.contains(first))
}

/// Whether `seq` is after `last` in RTP's wrapping sequence space.
pub(crate) fn is_newer(seq: u16, last: u16) -> bool {
    let ahead = seq.wrapping_sub(last);
    ahead != 0 && ahead < 0x8000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(second: u8, seq: u16) -> Vec<u8> {
        let mut packet = vec![0x80, second];
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&[0; 8]);
        packet
    }

    #[test]
    fn rtp_rtcp_stun_and_dtls_are_told_apart() {
        assert_eq!(
            classify(&rtp(102, 7)),
            (Flow::Media { payload_type: 102 }, Some(7))
        );
        // The marker bit does not change the payload type.
        assert_eq!(
            classify(&rtp(0x80 | 111, 9)),
            (Flow::Media { payload_type: 111 }, Some(9))
        );
        assert_eq!(
            classify(&rtp(201, 0)).0,
            Flow::Control,
            "RTCP receiver report"
        );
        assert_eq!(classify(&[0x00, 0x01, 0, 0]).0, Flow::Control, "STUN");
        assert_eq!(classify(&[22, 0xfe, 0xfd, 0]).0, Flow::Control, "DTLS");
    }

    #[test]
    fn dtls_handshake_records_are_told_from_application_data() {
        assert!(is_dtls_handshake(&[22, 0xfe, 0xfd]));
        assert!(is_dtls_handshake(&[20, 0xfe, 0xfd]));
        assert!(!is_dtls_handshake(&[23, 0xfe, 0xfd]), "SCTP over DTLS");
        assert!(!is_dtls_handshake(&[0x80, 96]), "RTP");
        assert!(!is_dtls_handshake(&[]));
    }

    #[test]
    fn sequence_numbers_wrap() {
        assert!(is_newer(1, 0));
        assert!(is_newer(0, u16::MAX));
        assert!(!is_newer(5, 5));
        assert!(!is_newer(4, 5));
        assert!(!is_newer(u16::MAX, 0));
    }
}

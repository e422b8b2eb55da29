use bytes::Bytes;
use rtc::rtp::packetizer::{Packetizer, new_packetizer};
use rtc::rtp::sequence::new_random_sequencer;

use super::*;
use crate::media::pattern::Pattern;

/// The codecs this build can encode and decode.
fn usable() -> Vec<VideoCodec> {
    VideoCodec::ALL
        .into_iter()
        .filter(|c| c.unavailable().is_none())
        .collect()
}

#[test]
fn names_and_mime_types_find_their_codec() {
    for codec in VideoCodec::ALL {
        assert_eq!(VideoCodec::from_name(codec.name()), Some(codec));
        let mime = codec.rtp_codec().mime_type;
        assert_eq!(
            VideoCodec::from_mime_type(&mime.to_lowercase()),
            Some(codec)
        );
        let json = serde_json::to_string(&codec).unwrap();
        assert_eq!(json, format!("\"{}\"", codec.name()));
    }
    let payload_types: std::collections::HashSet<u8> =
        VideoCodec::ALL.iter().map(|c| c.payload_type()).collect();
    assert_eq!(
        payload_types.len(),
        VideoCodec::ALL.len(),
        "one payload type each"
    );
    assert_eq!(VideoCodec::from_name("av1"), None);
}

#[cfg(feature = "vpx")]
#[test]
fn this_build_has_every_codec() {
    assert_eq!(usable(), VideoCodec::ALL);
}

/// Every codec, end to end as a call carries it: pattern, encoder, RTP
/// packets of at most 300 bytes, depacketizer, decoder, stamp. Only a
/// keyframe's packets may start a stream.
#[test]
fn every_frame_survives_rtp_with_its_stamp_and_keyframes_are_found_by_their_first_packet() {
    let settings = VideoSettings {
        keyframe_interval: 10,
        ..VideoSettings::default()
    };
    for codec in usable() {
        let spec = codec.codec();
        let mut encoder = spec.encoder(&settings).unwrap();
        let mut decoder = spec.decoder().unwrap();
        let mut packetizer = new_packetizer(
            std::time::Instant::now(),
            300,
            codec.payload_type(),
            0x1234,
            spec.payloader(),
            Box::new(new_random_sequencer()),
            90_000,
        );
        let mut depacketizer = spec.depacketizer();
        let mut pattern = Pattern::new(7, settings.width, settings.height).unwrap();
        for n in 0..25u32 {
            let frame = encoder
                .encode(pattern.draw(n, u64::from(n) * 33_333))
                .unwrap();
            assert_eq!(frame.keyframe, n % 10 == 0, "{codec} frame {n}");
            let packets = packetizer
                .packetize(std::time::Instant::now(), &Bytes::from(frame.data), 3000)
                .unwrap();
            assert!(
                packets.len() > 1,
                "{codec}: a frame spans packets at 300 bytes"
            );
            let mut assembled = Vec::new();
            for (i, packet) in packets.iter().enumerate() {
                // A keyframe starts at its first packet (an H.264 one may
                // also start at a later NAL of it); nothing else starts.
                let starts = spec.starts_keyframe(&packet.payload);
                if i == 0 || !frame.keyframe {
                    assert_eq!(starts, frame.keyframe, "{codec} frame {n} packet {i}");
                }
                assembled.extend_from_slice(&depacketizer.depacketize(&packet.payload).unwrap());
            }
            assert!(
                packets.last().unwrap().header.marker,
                "{codec}: the marker ends a frame"
            );
            let decoded = decode_stamp(&mut *decoder, &assembled)
                .unwrap()
                .unwrap_or_else(|| panic!("{codec} frame {n}: no picture"));
            assert_eq!((decoded.width, decoded.height), (320, 240));
            let stamp = decoded
                .stamp
                .unwrap_or_else(|e| panic!("{codec} frame {n}: {e}"));
            assert_eq!((stamp.sender, stamp.frame), (7, n), "{codec}");
        }
    }
}

/// At the lowest bitrate validation allows for live video, every codec's
/// stamp still reads: the bound the scenario check promises.
#[test]
fn stamps_read_at_the_lowest_bitrate_allowed() {
    let settings = VideoSettings {
        bitrate_bps: 100_000,
        ..VideoSettings::default()
    };
    for codec in usable() {
        let spec = codec.codec();
        let mut encoder = spec.encoder(&settings).unwrap();
        let mut decoder = spec.decoder().unwrap();
        let mut pattern = Pattern::new(3, 320, 240).unwrap();
        for n in 0..90u32 {
            let frame = encoder
                .encode(pattern.draw(n, u64::from(n) * 33_333))
                .unwrap();
            let stamp = decode_stamp(&mut *decoder, &frame.data)
                .unwrap()
                .unwrap()
                .stamp;
            assert_eq!(stamp.map(|s| s.frame), Ok(n), "{codec} at 100 kbit/s");
        }
    }
}

#[cfg(not(feature = "vpx"))]
#[test]
fn without_libvpx_vp8_says_why_it_cannot_be_used() {
    let why = VideoCodec::Vp8.unavailable().unwrap();
    assert!(why.contains("libvpx"), "{why}");
    let error = VideoCodec::Vp9.codec().decoder().unwrap_err();
    assert!(
        error.to_string().starts_with("vp9: needs libvpx"),
        "{error}"
    );
}

#[test]
fn an_offer_names_its_video_codecs_in_its_own_order() {
    // Chromium's order, trimmed: VP8, its RTX, VP9, H.264 twice, AV1.
    let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 102 106 45\r\n\
        a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=rtpmap:98 VP9/90000\r\n\
        a=rtpmap:102 H264/90000\r\na=rtpmap:106 H264/90000\r\na=rtpmap:45 AV1/90000\r\n";
    assert_eq!(
        offered_video_codecs(sdp),
        [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264]
    );
    assert_eq!(offered_video_codecs("m=audio 9 RTP/AVP 0\r\n"), []);
    assert_eq!(offered_video_codecs("not an SDP at all"), []);
}

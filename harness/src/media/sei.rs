//! The stamp carried beside the picture instead of in it: an H.264 SEI NAL
//! unit (user data unregistered, ITU-T H.264 D.1.6) with our UUID and the
//! 16 stamp bytes. Decoders skip such SEI, so a stream with one before each
//! access unit stays valid H.264; receivers in shared-media mode read it
//! without decoding anything.

use super::stamp::{Stamp, StampError};

/// Identifies our SEI among any others ("callprobe-stamp1" in ASCII).
const UUID: [u8; 16] = *b"callprobe-stamp1";
const NAL_TYPE_SEI: u8 = 6;
const USER_DATA_UNREGISTERED: u8 = 5;
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The SEI NAL unit, with its Annex B start code, for `stamp`.
pub(crate) fn stamp_sei(stamp: Stamp) -> Vec<u8> {
    let mut payload = Vec::with_capacity(40);
    payload.push(USER_DATA_UNREGISTERED);
    payload.push(32); // payload size: UUID + stamp
    payload.extend_from_slice(&UUID);
    payload.extend_from_slice(&stamp.to_bytes());
    payload.push(0x80); // rbsp_trailing_bits
    let mut nal = Vec::with_capacity(48);
    nal.extend_from_slice(&START_CODE);
    nal.push(NAL_TYPE_SEI); // forbidden bit 0, nal_ref_idc 0
    escape_into(&payload, &mut nal);
    nal
}

/// The NAL units of an Annex B access unit, without their start codes.
/// Lazy and allocation-free: it runs on every received frame.
pub(crate) fn nal_units(access_unit: &[u8]) -> impl Iterator<Item = &[u8]> {
    /// Index just past the next `00 00 01` at or after `from`.
    fn next_start(data: &[u8], from: usize) -> Option<usize> {
        data.get(from..)?
            .windows(3)
            .position(|w| w == [0, 0, 1])
            .map(|at| from + at + 3)
    }
    let mut start = next_start(access_unit, 0);
    std::iter::from_fn(move || {
        loop {
            let begin = start?;
            start = next_start(access_unit, begin);
            let end = match start {
                // The next start code may be 4 bytes long (a leading zero).
                Some(next) => {
                    let end = next - 3;
                    if end > begin && access_unit[end - 1] == 0 {
                        end - 1
                    } else {
                        end
                    }
                }
                None => access_unit.len(),
            };
            if end > begin {
                return Some(&access_unit[begin..end]);
            }
        }
    })
}

/// One pass over an access unit: our stamp (if its SEI is there) and a
/// CRC-32 of every other NAL unit, start codes left out (packetization may
/// change their length).
pub fn stamp_and_content_hash(access_unit: &[u8]) -> (Option<Result<Stamp, StampError>>, u32) {
    let mut stamp = None;
    let mut hasher = crc32fast::Hasher::new();
    for nal in nal_units(access_unit) {
        match read_stamp_nal(nal) {
            Some(found) if stamp.is_none() => stamp = Some(found),
            Some(_) => {}
            None => hasher.update(nal),
        }
    }
    (stamp, hasher.finalize())
}

/// The stamp in an access unit's SEI, if it carries ours: `None` when there
/// is none, an error when ours is there but damaged. (Receivers read it
/// with the hash, in one pass; tests read it alone.)
#[cfg(test)]
fn find_stamp(access_unit: &[u8]) -> Option<Result<Stamp, StampError>> {
    nal_units(access_unit).find_map(read_stamp_nal)
}

fn read_stamp_nal(nal: &[u8]) -> Option<Result<Stamp, StampError>> {
    if nal.first().map(|b| b & 0x1f) != Some(NAL_TYPE_SEI) {
        return None;
    }
    let payload = unescape(&nal[1..]);
    if payload.len() < 2 + 32 || payload[0] != USER_DATA_UNREGISTERED || payload[1] != 32 {
        return None;
    }
    if payload[2..18] != UUID {
        return None;
    }
    let bytes: [u8; 16] = payload[18..34].try_into().expect("16 bytes");
    Some(Stamp::from_bytes(bytes))
}

/// Emulation prevention: a 0x03 after two zero bytes wherever the next byte
/// would otherwise make a start code (or an escape) appear.
fn escape_into(payload: &[u8], out: &mut Vec<u8>) {
    let mut zeros = 0;
    for &byte in payload {
        if zeros >= 2 && byte <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(byte);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
}

fn unescape(escaped: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut zeros = 0;
    for &byte in escaped {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        out.push(byte);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::{H264Decoder, H264Encoder, VideoSettings};
    use crate::media::pattern::Pattern;

    #[test]
    fn a_stamp_survives_the_sei_including_bytes_that_need_escaping() {
        for stamp in [
            Stamp {
                sender: 0,
                frame: 0,
                capture_us: 0,
            },
            Stamp {
                sender: 0x0003,
                frame: 0x0000_0001,
                capture_us: 0x0000_0000_0002,
            },
            Stamp {
                sender: 65_535,
                frame: u32::MAX,
                capture_us: Stamp::MAX_CAPTURE_US,
            },
        ] {
            let nal = stamp_sei(stamp);
            let body = &nal[4..];
            assert!(
                !body.windows(3).any(|w| w == [0, 0, 1] || w == [0, 0, 0]),
                "no start code inside"
            );
            assert_eq!(find_stamp(&nal), Some(Ok(stamp)));
        }
    }

    #[test]
    fn a_damaged_stamp_is_an_error_and_a_frame_without_one_is_none() {
        let stamp = Stamp {
            sender: 1,
            frame: 2,
            capture_us: 3,
        };
        let mut nal = stamp_sei(stamp);
        let last = nal.len() - 2;
        nal[last] ^= 0x40;
        assert_eq!(find_stamp(&nal), Some(Err(StampError::BadCheck)));
        let settings = VideoSettings::default();
        let mut encoder = H264Encoder::new(&settings).unwrap();
        let frame = encoder
            .encode(Pattern::new(0, 320, 240).unwrap().draw(0, 0))
            .unwrap();
        assert_eq!(find_stamp(&frame.data), None);
    }

    #[test]
    fn a_decoder_ignores_the_sei_and_the_picture_is_unchanged() {
        let mut pattern = Pattern::new(4, 320, 240).unwrap();
        let mut encoder = H264Encoder::new(&VideoSettings::default()).unwrap();
        let mut decoder = H264Decoder::new().unwrap();
        for n in 0..10 {
            let frame = encoder.encode(pattern.draw(n, 0)).unwrap();
            let mut access_unit = stamp_sei(Stamp {
                sender: 9,
                frame: n,
                capture_us: 0,
            });
            access_unit.extend_from_slice(&frame.data);
            let decoded = crate::media::codec::decode_stamp(&mut decoder, &access_unit)
                .unwrap()
                .unwrap();
            assert_eq!(decoded.stamp.unwrap().frame, n);
        }
    }

    #[test]
    fn nal_units_are_split_on_three_and_four_byte_start_codes() {
        let access_unit = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5,
        ];
        let nals: Vec<&[u8]> = nal_units(&access_unit).collect();
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]
        );
    }
}

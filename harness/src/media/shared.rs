//! Shared media: one clip encoded once for a whole run and sent by every
//! peer, so hundreds of peers fit on one machine. Each frame goes out with
//! the sender's own stamp in an SEI; receivers check the stamp (sender,
//! sequence, latency) and a hash of the picture data, without decoding.

use std::collections::HashSet;

use bytes::Bytes;

use super::h264::{CodecError, H264Encoder, VideoSettings};
use super::opus::{OpusEncoder, OpusError};
use super::pattern::{Pattern, PatternSizeError};
use super::sei::{stamp_and_content_hash, stamp_sei};
use super::stamp::{Stamp, StampError};
use super::tone::Tone;

/// The tone in the shared audio (every peer sends the same packets).
pub const SHARED_TONE_HZ: f32 = 1000.0;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedClipError {
    #[error(transparent)]
    Pattern(#[from] PatternSizeError),
    #[error(transparent)]
    Video(#[from] CodecError),
    #[error(transparent)]
    Audio(#[from] OpusError),
    #[error("a shared clip needs at least one frame")]
    Empty,
}

#[derive(Debug)]
struct SharedFrame {
    data: Bytes,
    hash: u32,
}

/// A clip of encoded video and audio that every sender loops.
#[derive(Debug)]
pub struct SharedClip {
    frames: Vec<SharedFrame>,
    audio: Vec<Bytes>,
    audio_hashes: HashSet<u32>,
}

impl SharedClip {
    /// Encodes `frames` frames of the pattern with `settings` (the first a
    /// keyframe, then one every `keyframe_interval`) and as many 20 ms
    /// packets of audio as cover the same time.
    pub fn encode(
        settings: &VideoSettings,
        frames: u32,
        audio_bitrate_bps: u32,
    ) -> Result<Self, SharedClipError> {
        if frames == 0 {
            return Err(SharedClipError::Empty);
        }
        let mut pattern = Pattern::new(u16::MAX, settings.width, settings.height)?;
        let mut encoder = H264Encoder::new(settings)?;
        let frames = (0..frames)
            .map(|n| {
                let encoded = encoder.encode(pattern.draw(n, 0))?;
                Ok(SharedFrame {
                    hash: stamp_and_content_hash(&encoded.data).1,
                    data: Bytes::from(encoded.data),
                })
            })
            .collect::<Result<Vec<_>, CodecError>>()?;
        let audio_packets =
            (frames.len() as u64 * 1000 / u64::from(settings.fps.max(1))).div_ceil(20);
        let mut opus = OpusEncoder::new(audio_bitrate_bps)?;
        let mut tone = Tone::new(SHARED_TONE_HZ);
        let audio = (0..audio_packets.max(1))
            .map(|_| opus.encode(&tone.next_frame()).map(Bytes::from))
            .collect::<Result<Vec<_>, OpusError>>()?;
        let audio_hashes = audio.iter().map(|p| crc32fast::hash(p)).collect();
        Ok(SharedClip {
            frames,
            audio,
            audio_hashes,
        })
    }

    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// The access unit that carries `stamp`: the sender's stamp SEI, then
    /// clip frame `stamp.frame`, looping.
    pub fn stamped_frame(&self, stamp: Stamp) -> Bytes {
        let frame = &self.frames[stamp.frame as usize % self.frames.len()];
        let mut access_unit = stamp_sei(stamp);
        access_unit.extend_from_slice(&frame.data);
        Bytes::from(access_unit)
    }

    /// Audio packet `index`, looping.
    pub fn audio_packet(&self, index: usize) -> Bytes {
        self.audio[index % self.audio.len()].clone()
    }

    /// Checks a received access unit: its stamp, and that the picture data
    /// is exactly the clip frame the stamp's number names.
    pub fn check_frame(&self, access_unit: &[u8]) -> Result<Stamp, StampError> {
        let (stamp, hash) = stamp_and_content_hash(access_unit);
        let stamp = stamp.ok_or(StampError::NotStamped)??;
        let expected = &self.frames[stamp.frame as usize % self.frames.len()];
        if hash == expected.hash {
            Ok(stamp)
        } else {
            Err(StampError::BadCheck)
        }
    }

    /// Whether an audio payload is one of the clip's packets.
    pub fn knows_audio(&self, payload: &[u8]) -> bool {
        self.audio_hashes.contains(&crc32fast::hash(payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip() -> SharedClip {
        SharedClip::encode(&VideoSettings::default(), 30, 32_000).unwrap()
    }

    #[test]
    fn every_stamped_frame_checks_out_and_carries_its_sender() {
        let clip = clip();
        assert_eq!(clip.frames(), 30);
        for frame in 0..90 {
            let stamp = Stamp {
                sender: 7,
                frame,
                capture_us: u64::from(frame),
            };
            assert_eq!(clip.check_frame(&clip.stamped_frame(stamp)), Ok(stamp));
        }
    }

    #[test]
    fn a_frame_with_the_wrong_picture_or_a_flipped_byte_fails_the_hash() {
        let clip = clip();
        let stamp = Stamp {
            sender: 1,
            frame: 5,
            capture_us: 0,
        };
        // Stamp says frame 5, picture is frame 6.
        let mut wrong = stamp_sei(stamp);
        wrong.extend_from_slice(&clip.frames[6].data);
        assert_eq!(clip.check_frame(&wrong), Err(StampError::BadCheck));
        let mut flipped = clip.stamped_frame(stamp).to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(clip.check_frame(&flipped), Err(StampError::BadCheck));
        assert_eq!(
            clip.check_frame(&clip.frames[0].data),
            Err(StampError::NotStamped)
        );
    }

    #[test]
    fn the_audio_covers_the_clip_and_foreign_audio_is_not_known() {
        let clip = clip();
        assert_eq!(clip.audio.len(), 50, "one second of 20 ms packets");
        assert!(clip.knows_audio(&clip.audio_packet(73)));
        assert!(!clip.knows_audio(&[0xfc, 1, 2, 3]));
    }
}

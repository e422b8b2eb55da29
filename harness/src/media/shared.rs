//! Shared media: one clip encoded once for a whole run and sent by every
//! peer, so hundreds of peers fit on one machine. Each frame goes out with
//! the sender's own stamp in an SEI; receivers check the stamp (sender,
//! sequence, latency) and a hash of the picture data, without decoding.
//! Audio is one short loop per distinct tone, encoded the first time a
//! sender with that tone needs it: a receiver knows its sender's packets
//! from anyone else's, as it knows their tones in live mode.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use super::codec::{CodecError, H264Encoder, VideoSettings};
use super::opus::{OpusEncoder, OpusError};
use super::pattern::{Pattern, PatternSizeError};
use super::sei::{stamp_and_content_hash, stamp_sei};
use super::stamp::{Stamp, StampError};
use super::tone::{DISTINCT_TONES, Tone, tone_hz};

/// Packets encoded before a tone's loop starts: the codec's onset is not
/// part of it.
const AUDIO_WARMUP_PACKETS: usize = 5;
/// A loop is 100 ms: every tone makes whole cycles in it, so it repeats
/// without a jump.
const AUDIO_LOOP_PACKETS: usize = 5;

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

/// A clip of encoded video that every sender loops, and its senders'
/// audio loops.
#[derive(Debug)]
pub struct SharedClip {
    frames: Vec<SharedFrame>,
    audio_bitrate_bps: u32,
    /// By tone index (sender index modulo the distinct tones).
    audio: Mutex<HashMap<u16, Arc<AudioLoop>>>,
}

/// One tone's encoded packets, looped, and how to know them.
#[derive(Debug)]
pub(crate) struct AudioLoop {
    packets: Vec<Bytes>,
    hashes: HashSet<u32>,
}

impl AudioLoop {
    fn encode(hz: f32, bitrate_bps: u32) -> Result<Self, OpusError> {
        let mut opus = OpusEncoder::new(bitrate_bps)?;
        let mut tone = Tone::new(hz);
        let mut packets = (0..AUDIO_WARMUP_PACKETS + AUDIO_LOOP_PACKETS)
            .map(|_| opus.encode(&tone.next_frame()).map(Bytes::from))
            .collect::<Result<Vec<_>, OpusError>>()?;
        packets.drain(..AUDIO_WARMUP_PACKETS);
        let hashes = packets.iter().map(|p| crc32fast::hash(p)).collect();
        Ok(AudioLoop { packets, hashes })
    }

    /// Packet `index`, looping.
    pub(crate) fn packet(&self, index: usize) -> Bytes {
        self.packets[index % self.packets.len()].clone()
    }

    /// Whether a payload is one of this loop's packets.
    pub(crate) fn knows(&self, payload: &[u8]) -> bool {
        self.hashes.contains(&crc32fast::hash(payload))
    }
}

impl SharedClip {
    /// Encodes `frames` frames of the pattern with `settings` (the first a
    /// keyframe, then one every `keyframe_interval`); audio loops come
    /// later, at `audio_bitrate_bps`.
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
        // Fail now, not at the first sender, if Opus cannot be set up.
        OpusEncoder::new(audio_bitrate_bps)?;
        Ok(SharedClip {
            frames,
            audio_bitrate_bps,
            audio: Mutex::default(),
        })
    }

    /// Encodes the audio loops of senders `0..senders` now, on every core,
    /// so that no peer's start waits for one (a thousand peers starting
    /// together queued a thousand encodes behind each other).
    pub fn prepare_audio(&self, senders: u16) -> Result<(), OpusError> {
        let tones: Vec<u16> = (0..senders.min(DISTINCT_TONES)).collect();
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let share = tones.len().div_ceil(cores).max(1);
        let encoded = std::thread::scope(|scope| {
            let workers: Vec<_> = tones
                .chunks(share)
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .map(|&tone| self.encode_loop(tone).map(|made| (tone, made)))
                            .collect::<Result<Vec<_>, OpusError>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| {
                    worker
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect::<Result<Vec<_>, OpusError>>()
        })?;
        let mut loops = self.audio.lock().unwrap_or_else(PoisonError::into_inner);
        loops.extend(encoded.into_iter().flatten());
        Ok(())
    }

    /// Sender `sender`'s audio loop (its tone), encoded on first use if
    /// `prepare_audio` did not.
    pub(crate) fn audio_of(&self, sender: u16) -> Result<Arc<AudioLoop>, OpusError> {
        let tone = sender % DISTINCT_TONES;
        let mut loops = self.audio.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = loops.get(&tone) {
            return Ok(Arc::clone(found));
        }
        let made = self.encode_loop(tone)?;
        loops.insert(tone, Arc::clone(&made));
        Ok(made)
    }

    /// Tone `tone`'s audio loop at the clip's bitrate.
    fn encode_loop(&self, tone: u16) -> Result<Arc<AudioLoop>, OpusError> {
        Ok(Arc::new(AudioLoop::encode(
            tone_hz(tone),
            self.audio_bitrate_bps,
        )?))
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

    /// Checks a received access unit: its stamp, and that the picture data
    /// is exactly the clip frame the stamp's number names.
    pub(crate) fn check_frame(&self, access_unit: &[u8]) -> Result<Stamp, StampError> {
        let (stamp, hash) = stamp_and_content_hash(access_unit);
        let stamp = stamp.ok_or(StampError::NotStamped)??;
        let expected = &self.frames[stamp.frame as usize % self.frames.len()];
        if hash == expected.hash {
            Ok(stamp)
        } else {
            Err(StampError::BadCheck)
        }
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
    fn each_sender_has_its_own_audio_and_knows_no_one_elses() {
        let clip = clip();
        let (mine, other) = (clip.audio_of(3).unwrap(), clip.audio_of(4).unwrap());
        assert_eq!(mine.packets.len(), AUDIO_LOOP_PACKETS, "100 ms, looped");
        assert!(mine.knows(&mine.packet(73)));
        assert!(
            !mine.knows(&other.packet(0)),
            "a neighbour's tone is foreign"
        );
        assert!(!mine.knows(&[0xfc, 1, 2, 3]));
        assert!(
            Arc::ptr_eq(&mine, &clip.audio_of(3 + DISTINCT_TONES).unwrap()),
            "senders with the same tone share one loop"
        );
    }

    #[test]
    fn prepared_loops_are_the_ones_senders_get_and_the_same_as_made_on_use() {
        let clip = clip();
        clip.prepare_audio(5).unwrap();
        let prepared = clip.audio.lock().unwrap().len();
        assert_eq!(prepared, 5, "senders 0 to 4, one loop each");
        let fresh = self::clip().audio_of(4).unwrap();
        let four = clip.audio_of(4).unwrap();
        assert_eq!(four.packets, fresh.packets, "the same encoding either way");
        assert_eq!(clip.audio.lock().unwrap().len(), 5, "nothing encoded again");
    }
}

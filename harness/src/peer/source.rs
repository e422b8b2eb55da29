//! Where a sender's frames and audio packets come from: live encoding of
//! the pattern and tone, or the run's shared clip, each shaped by the
//! peer's media faults (a frozen camera, a damaged stamp, another sender's
//! stamps or tone, a muted microphone).

use std::sync::Arc;

use bytes::Bytes;

use super::MediaFault;
use super::send::{MediaSettings, SendError};
use crate::media::codec::{VideoCodec, VideoEncoder};
use crate::media::opus::OpusEncoder;
use crate::media::pattern::Pattern;
use crate::media::shared::{AudioLoop, SharedClip};
use crate::media::stamp::Stamp;
use crate::media::tone::Tone;

/// Live encoding state (boxed: it is kilobytes, a shared source is a pointer).
pub(super) struct LiveVideo {
    pattern: Pattern,
    encoder: Box<dyn VideoEncoder>,
    /// Another sender's pattern, once a fault sends its stamps.
    impostor: Option<Pattern>,
}

pub(super) struct LiveAudio {
    tone: Tone,
    opus: OpusEncoder,
    /// Another sender's tone, once a fault sends it.
    impostor: Option<Tone>,
}

/// A muted microphone's packet: one Opus frame of no data, which decoders
/// play as silence (RFC 6716 §3.2.1: a zero-length frame).
const SILENT_OPUS: &[u8] = &[0xF8];

/// Where a sender's frames come from.
pub(super) enum VideoSource {
    Live(Box<LiveVideo>),
    Shared { clip: Arc<SharedClip>, sender: u16 },
}

impl VideoSource {
    /// Frames in `codec` (shared media is H.264: validation sees to it).
    pub(super) fn new(
        settings: &MediaSettings,
        sender: u16,
        codec: VideoCodec,
    ) -> Result<Self, SendError> {
        Ok(match &settings.shared {
            Some(clip) => VideoSource::Shared {
                clip: Arc::clone(clip),
                sender,
            },
            None => VideoSource::Live(Box::new(LiveVideo {
                pattern: Pattern::new(sender, settings.video.width, settings.video.height)?,
                encoder: codec.codec().encoder(&settings.video)?,
                impostor: None,
            })),
        })
    }

    /// Frame `number`, captured at `capture_us`: its bytes and whether it
    /// is a keyframe. A fault may damage its stamp or stamp it as another
    /// sender's.
    pub(super) fn frame(
        &mut self,
        number: u32,
        capture_us: u64,
        fault: Option<MediaFault>,
    ) -> Result<(Bytes, bool), SendError> {
        Ok(match self {
            VideoSource::Live(live) => {
                let LiveVideo {
                    pattern,
                    encoder,
                    impostor,
                } = &mut **live;
                let picture = match fault {
                    Some(MediaFault::VideoCorrupt) => pattern.draw_damaged(number, capture_us),
                    Some(MediaFault::WrongSender(other)) => {
                        let (width, height) = (pattern.width(), pattern.height());
                        let impostor = match impostor {
                            Some(impostor) => impostor,
                            None => impostor.insert(Pattern::new(other, width, height)?),
                        };
                        impostor.draw(number, capture_us)
                    }
                    _ => pattern.draw(number, capture_us),
                };
                let encoded = encoder.encode(picture)?;
                (Bytes::from(encoded.data), encoded.keyframe)
            }
            VideoSource::Shared { clip, sender } => {
                let stamp = Stamp {
                    sender: match fault {
                        Some(MediaFault::WrongSender(other)) => other,
                        _ => *sender,
                    },
                    frame: number,
                    capture_us,
                };
                let frame = clip.stamped_frame(stamp);
                if fault == Some(MediaFault::VideoCorrupt) {
                    // The picture no longer hashes to the clip's frame.
                    let mut damaged = frame.to_vec();
                    if let Some(last) = damaged.last_mut() {
                        *last ^= 0x55;
                    }
                    (Bytes::from(damaged), false)
                } else {
                    (frame, false)
                }
            }
        })
    }

    pub(super) fn is_live(&self) -> bool {
        matches!(self, VideoSource::Live(_))
    }

    /// A PLI or FIR; whether the next frame will be a keyframe. A shared
    /// clip has its keyframes where they are; its receivers do not decode,
    /// so they never need one sooner.
    pub(super) fn request_keyframe(&mut self) -> bool {
        match self {
            VideoSource::Live(live) => {
                live.encoder.request_keyframe();
                true
            }
            VideoSource::Shared { .. } => false,
        }
    }
}

/// Where a sender's audio packets come from.
pub(super) enum AudioSource {
    Live(Box<LiveAudio>),
    Shared {
        clip: Arc<SharedClip>,
        own: Arc<AudioLoop>,
        /// Another sender's loop, once a fault sends it.
        impostor: Option<Arc<AudioLoop>>,
    },
}

impl AudioSource {
    pub(super) fn new(settings: &MediaSettings, sender: u16) -> Result<Self, SendError> {
        Ok(match &settings.shared {
            Some(clip) => AudioSource::Shared {
                own: clip.audio_of(sender)?,
                clip: Arc::clone(clip),
                impostor: None,
            },
            None => AudioSource::Live(Box::new(LiveAudio {
                tone: Tone::for_sender(sender),
                opus: OpusEncoder::new(settings.audio_bitrate_bps)?,
                impostor: None,
            })),
        })
    }

    /// Packet `index`; a fault may make it silence or another's tone.
    pub(super) fn packet(
        &mut self,
        index: usize,
        fault: Option<MediaFault>,
    ) -> Result<Bytes, SendError> {
        Ok(match (self, fault) {
            (_, Some(MediaFault::AudioMute)) => Bytes::from_static(SILENT_OPUS),
            (AudioSource::Live(live), fault) => {
                let LiveAudio {
                    tone,
                    opus,
                    impostor,
                } = &mut **live;
                let tone = match fault {
                    Some(MediaFault::WrongTone(other)) => {
                        impostor.get_or_insert_with(|| Tone::for_sender(other))
                    }
                    _ => tone,
                };
                Bytes::from(opus.encode(&tone.next_frame())?)
            }
            (AudioSource::Shared { clip, impostor, .. }, Some(MediaFault::WrongTone(other))) => {
                let impostor = match impostor {
                    Some(impostor) => impostor,
                    None => impostor.insert(clip.audio_of(other)?),
                };
                impostor.packet(index)
            }
            (AudioSource::Shared { own, .. }, _) => own.packet(index),
        })
    }
}

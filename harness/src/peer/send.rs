//! Sending one call's media: the stamped pattern at the configured frame
//! rate and the sender's tone every 20 ms, paced by the clock, with
//! keyframe requests from the receiver answered on the next frame.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media::Sample;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use super::keyframe::asks_for_keyframe;
use crate::media::h264::{CodecError, H264Encoder, VideoSettings};
use crate::media::opus::{OpusEncoder, OpusError};
use crate::media::pattern::{Pattern, PatternSizeError};
use crate::media::tone::Tone;

/// What a sender sends.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaSettings {
    pub video: VideoSettings,
    pub audio_bitrate_bps: u32,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            video: VideoSettings::default(),
            audio_bitrate_bps: 32_000,
        }
    }
}

/// Counters a sender keeps, readable while it runs (the receiver's verdict
/// needs `frames_sent`).
#[derive(Debug, Default)]
pub struct SendCounters {
    pub frames_sent: AtomicU32,
    pub keyframes_sent: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub audio_packets_sent: AtomicU64,
    pub write_errors: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    #[error(transparent)]
    Pattern(#[from] PatternSizeError),
    #[error(transparent)]
    Video(#[from] CodecError),
    #[error(transparent)]
    Audio(#[from] OpusError),
}

/// The outgoing tracks of one call and how to address them.
#[derive(Clone)]
pub(crate) struct Outgoing {
    pub(crate) video: Arc<TrackLocalStaticSample>,
    pub(crate) audio: Arc<TrackLocalStaticSample>,
    pub(crate) video_ssrc: u32,
    pub(crate) audio_ssrc: u32,
    pub(crate) video_payload_type: u8,
    pub(crate) audio_payload_type: u8,
}

/// Sends until `stop` is cancelled. `epoch` is the run's clock origin, the
/// zero of every stamp's capture time.
pub(crate) async fn send(
    tracks: Outgoing,
    sender_index: u16,
    settings: MediaSettings,
    epoch: Instant,
    counters: Arc<SendCounters>,
    stop: CancellationToken,
) -> Result<(), SendError> {
    let video = &settings.video;
    let mut pattern = Pattern::new(sender_index, video.width, video.height)?;
    let mut encoder = H264Encoder::new(video)?;
    let mut tone = Tone::for_sender(sender_index);
    let mut opus = OpusEncoder::new(settings.audio_bitrate_bps)?;
    let frame_interval = Duration::from_secs(1) / video.fps.max(1);
    let audio_interval = Duration::from_millis(20);
    // The first ticks fire at once: the first frame (a keyframe) goes out
    // as soon as the connection can carry it.
    let mut video_tick = tokio::time::interval(frame_interval);
    video_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut audio_tick = tokio::time::interval(audio_interval);
    audio_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut frame_number = 0u32;

    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(()),
            event = tracks.video.poll() => match event {
                Some(TrackLocalEvent::OnRtcpPacket(packets)) if asks_for_keyframe(&packets) => {
                    counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                    encoder.request_keyframe();
                }
                Some(_) => {}
                // The track was unbound: the connection is closing.
                None => return Ok(()),
            },
            _ = video_tick.tick() => {
                let now = Instant::now();
                let capture_us = now.saturating_duration_since(epoch).as_micros() as u64;
                let encoded = encoder.encode(pattern.draw(frame_number, capture_us))?;
                let sample = Sample {
                    data: Bytes::from(encoded.data),
                    duration: frame_interval,
                    ..Sample::new(now)
                };
                let written = tracks
                    .video
                    .sample_writer(tracks.video_ssrc, tracks.video_payload_type)
                    .write_sample(&sample)
                    .await;
                frame_number += 1;
                match written {
                    Ok(()) => {
                        counters.frames_sent.store(frame_number, Ordering::Relaxed);
                        if encoded.keyframe {
                            counters.keyframes_sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(error) => {
                        counters.write_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%error, "video frame not written");
                    }
                }
            }
            _ = audio_tick.tick() => {
                let packet = opus.encode(&tone.next_frame())?;
                let sample = Sample {
                    data: Bytes::from(packet),
                    duration: audio_interval,
                    ..Sample::new(Instant::now())
                };
                match tracks
                    .audio
                    .sample_writer(tracks.audio_ssrc, tracks.audio_payload_type)
                    .write_sample(&sample)
                    .await
                {
                    Ok(()) => {
                        counters.audio_packets_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        counters.write_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%error, "audio packet not written");
                    }
                }
            }
        }
    }
}

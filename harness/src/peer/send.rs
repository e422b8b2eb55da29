//! Sending one call's media: the stamped pattern at the configured frame
//! rate and the sender's tone every 20 ms, paced by the clock, with
//! keyframe requests from the receiver answered on the next frame. In
//! shared-media mode the frames and packets come from a clip encoded once
//! for the run, each frame stamped for this sender (`source.rs` makes
//! them).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media::Sample;
use rtc::rtp::packetizer::{Packetizer, new_packetizer};
use rtc::rtp::sequence::new_random_sequencer;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use super::MediaFault;
use super::keyframe::asks_for_keyframe;
use super::offload::{cpu_work, off_the_workers};
use super::source::{AudioSource, VideoSource};
use crate::load::PacingLog;
use crate::media::codec::{CodecError, VideoCodec, VideoSettings};
use crate::media::opus::OpusError;
use crate::media::pattern::PatternSizeError;
use crate::media::shared::SharedClip;

/// What a sender sends.
#[derive(Clone, Debug)]
pub struct MediaSettings {
    pub video: VideoSettings,
    pub audio_bitrate_bps: u32,
    /// Shared-media mode: every peer sends this clip (stamped per sender)
    /// and receivers check it by stamp and hash instead of decoding.
    pub shared: Option<Arc<SharedClip>>,
    /// Where the sender logs whether each frame left in its slot (one log
    /// per run).
    pub pacing: Arc<PacingLog>,
    /// The peer's media faults, read on every frame and packet (one per
    /// peer: a peer task gives itself its own).
    pub faults: Arc<FaultSwitch>,
    /// A data channel on every call, if the scenario asks for one.
    pub data: Option<super::DataSettings>,
}

/// A peer's camera and microphone faults, set by the timeline and read by
/// each of its senders as they go.
#[derive(Debug, Default)]
pub struct FaultSwitch {
    video: std::sync::Mutex<Option<MediaFault>>,
    audio: std::sync::Mutex<Option<MediaFault>>,
    data: std::sync::Mutex<Option<MediaFault>>,
}

impl FaultSwitch {
    pub fn set(&self, fault: MediaFault) {
        let slot = if fault.is_video() {
            &self.video
        } else if fault.is_data() {
            &self.data
        } else {
            &self.audio
        };
        *slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fault);
    }

    fn video(&self) -> Option<MediaFault> {
        *self
            .video
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn audio(&self) -> Option<MediaFault> {
        *self
            .audio
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn data(&self) -> Option<MediaFault> {
        *self
            .data
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            video: VideoSettings::default(),
            audio_bitrate_bps: 32_000,
            shared: None,
            pacing: Arc::default(),
            faults: Arc::default(),
            data: None,
        }
    }
}

/// Counters a sender keeps, readable while it runs (the receiver's verdict
/// needs `frames_sent`).
#[derive(Debug, Default)]
pub(crate) struct SendCounters {
    pub frames_sent: AtomicU32,
    pub keyframes_sent: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub audio_packets_sent: AtomicU64,
    pub write_errors: AtomicU64,
    /// When the first and the last frame and audio packet went out: the
    /// span of media a receiver is judged over.
    pub video_span: SentClock,
    pub audio_span: SentClock,
}

/// The capture times (µs on the run's clock) of the first and the last
/// thing a sender wrote; readable while it runs.
#[derive(Debug)]
pub(crate) struct SentClock {
    first_us: AtomicU64,
    last_us: AtomicU64,
}

impl Default for SentClock {
    fn default() -> Self {
        SentClock {
            first_us: AtomicU64::new(u64::MAX),
            last_us: AtomicU64::new(u64::MAX),
        }
    }
}

impl SentClock {
    fn mark(&self, capture_us: u64) {
        let _ = self.first_us.compare_exchange(
            u64::MAX,
            capture_us,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.last_us.store(capture_us, Ordering::Relaxed);
    }

    /// The first and last capture times, if anything was sent.
    pub(crate) fn span(&self) -> Option<SentSpan> {
        let first = self.first_us.load(Ordering::Relaxed);
        let last = self.last_us.load(Ordering::Relaxed);
        (first != u64::MAX && last != u64::MAX).then(|| SentSpan {
            first_ms: first as f64 / 1e3,
            last_ms: last as f64 / 1e3,
        })
    }
}

/// When a sender's media started and stopped, ms on the run's clock.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct SentSpan {
    pub first_ms: f64,
    pub last_ms: f64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SendError {
    #[error(transparent)]
    Pattern(#[from] PatternSizeError),
    #[error(transparent)]
    Video(#[from] CodecError),
    #[error(transparent)]
    Audio(#[from] OpusError),
    #[error("packetizing a video frame: {0}")]
    Packetize(#[source] rtc::shared::error::Error),
}

/// RTP payloads up to this size: what the library's sample tracks use,
/// small enough for any tunnel's MTU.
const RTP_MTU: usize = 1200;
const VIDEO_CLOCK_RATE: u32 = 90_000;

/// Packetizes a frame in the negotiated codec's payload format and writes
/// it; an error is the first packet the track refused.
async fn write_frame(
    track: &TrackLocalStaticRTP,
    packetizer: &mut dyn Packetizer,
    data: &Bytes,
    samples: u32,
) -> Result<Result<(), webrtc::error::Error>, SendError> {
    let packets = packetizer
        .packetize(Instant::now(), data, samples)
        .map_err(SendError::Packetize)?;
    let mut written = Ok(());
    for packet in packets {
        if let Err(error) = track.write_rtp(packet).await {
            written = written.and(Err(error));
        }
    }
    Ok(written)
}

/// The outgoing tracks of one call and how to address them.
#[derive(Clone)]
pub(crate) struct Outgoing {
    pub(crate) video: Arc<TrackLocalStaticRTP>,
    /// The negotiated video codec, sent under `video_payload_type`.
    pub(crate) video_codec: VideoCodec,
    pub(crate) audio: Arc<TrackLocalStaticSample>,
    pub(crate) video_ssrc: u32,
    pub(crate) audio_ssrc: u32,
    pub(crate) video_payload_type: u8,
    pub(crate) audio_payload_type: u8,
}

/// Sends from the moment `connected` is cancelled until `stop` is.
/// `epoch` is the run's clock origin, the zero of every stamp's capture
/// time.
///
/// The slow parts happen before `connected`: codecs are set up at once,
/// and the first keyframe (2 ms at 320x240) is encoded when ICE is up,
/// while DTLS still runs, so it leaves the moment the connection can carry
/// it. A first frame that waited longer than a frame interval is drawn and
/// encoded afresh, so its capture time stays honest.
#[allow(clippy::too_many_arguments)] // one call site, each argument distinct
pub(crate) async fn send(
    tracks: Outgoing,
    sender_index: u16,
    settings: MediaSettings,
    epoch: Instant,
    counters: Arc<SendCounters>,
    ice_connected: CancellationToken,
    connected: CancellationToken,
    stop: CancellationToken,
) -> Result<(), SendError> {
    let frame_interval = Duration::from_secs(1) / settings.video.fps.max(1);
    let audio_interval = Duration::from_millis(20);
    let capture_us = move |at: Instant| at.saturating_duration_since(epoch).as_micros() as u64;

    // Shared media's sources are references to the clip and its audio
    // loops (encoded before the run), made here; live ones set up
    // encoders, off the workers.
    let setup = settings.clone();
    let codec = tracks.video_codec;
    let (mut video, mut audio) = cpu_work(settings.shared.is_some(), move || {
        Ok::<_, SendError>((
            VideoSource::new(&setup, sender_index, codec)?,
            AudioSource::new(&setup, sender_index)?,
        ))
    })
    .await?;
    tokio::select! {
        () = stop.cancelled() => return Ok(()),
        () = ice_connected.cancelled() => {}
        () = connected.cancelled() => {}
    }
    // A shared frame is a stamp on the clip's: made here, not queued
    // behind other peers' work.
    let (returned, first) = cpu_work(!video.is_live(), move || {
        let drawn_at = Instant::now();
        let first = video.frame(0, capture_us(drawn_at), None);
        (video, first.map(|frame| (drawn_at, frame)))
    })
    .await;
    video = returned;
    let mut first = Some(first?);
    tokio::select! {
        () = stop.cancelled() => return Ok(()),
        () = connected.cancelled() => {}
    }
    if first
        .as_ref()
        .is_some_and(|(at, _)| at.elapsed() > frame_interval)
    {
        video.request_keyframe();
        let now = Instant::now();
        first = Some((now, video.frame(0, capture_us(now), None)?));
    }
    // The first ticks fire at once: the first frame goes out as soon as
    // the connection can carry it.
    let mut video_tick = tokio::time::interval(frame_interval);
    video_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut audio_tick = tokio::time::interval(audio_interval);
    audio_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut packetizer = new_packetizer(
        Instant::now(),
        RTP_MTU,
        tracks.video_payload_type,
        tracks.video_ssrc,
        tracks.video_codec.codec().payloader(),
        Box::new(new_random_sequencer()),
        VIDEO_CLOCK_RATE,
    );
    let frame_samples = VIDEO_CLOCK_RATE / settings.video.fps.max(1);
    let mut frame_number = 0u32;
    let mut audio_index = 0usize;
    let mut last_slot: Option<tokio::time::Instant> = None;
    // The last frame that went out: its number and capture time.
    let mut last_sent: Option<(u32, u64)> = None;

    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(()),
            event = tracks.video.poll() => match event {
                Some(TrackLocalEvent::OnRtcpPacket(packets)) if asks_for_keyframe(&packets) => {
                    counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                    if video.request_keyframe() {
                        // The receiver's picture is broken now: the keyframe
                        // goes at once, not a frame interval later, and the
                        // cadence continues from it.
                        video_tick.reset_immediately();
                    }
                }
                Some(_) => {}
                // The track was unbound: the connection is closing.
                None => return Ok(()),
            },
            slot = video_tick.tick() => {
                let slots = last_slot.map_or(1, |last| {
                    ((slot - last).as_secs_f64() / frame_interval.as_secs_f64()).round() as u64
                });
                last_slot = Some(slot);
                settings.pacing.record(slots, slot.elapsed(), frame_interval);
                let fault = settings.faults.video();
                if fault == Some(MediaFault::VideoStop) {
                    continue;
                }
                // A frozen camera sends its last frame again: same number,
                // same capture time, same picture.
                let repeat = last_sent.filter(|_| fault == Some(MediaFault::VideoFreeze));
                let (number, fixed_capture) = match repeat {
                    Some((number, capture)) => (number, Some(capture)),
                    None => (frame_number, None),
                };
                let (capture, (data, keyframe)) = match first.take() {
                    Some((drawn_at, frame)) => (capture_us(drawn_at), frame),
                    None if video.is_live() => {
                        // Encoding takes milliseconds at 640x480: on the
                        // blocking pool it cannot delay other peers' packets.
                        let (returned, frame) = off_the_workers(move || {
                            let capture = fixed_capture.unwrap_or_else(|| capture_us(Instant::now()));
                            let frame = video.frame(number, capture, fault);
                            (video, frame.map(|frame| (capture, frame)))
                        })
                        .await;
                        video = returned;
                        frame?
                    }
                    None => {
                        let capture = fixed_capture.unwrap_or_else(|| capture_us(Instant::now()));
                        (capture, video.frame(number, capture, fault)?)
                    }
                };
                let written = write_frame(&tracks.video, &mut packetizer, &data, frame_samples).await?;
                if repeat.is_some() {
                    continue;
                }
                frame_number += 1;
                match written {
                    Ok(()) => {
                        last_sent = Some((number, capture));
                        counters.frames_sent.store(frame_number, Ordering::Relaxed);
                        counters.video_span.mark(capture);
                        if keyframe {
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
                let fault = settings.faults.audio();
                if fault == Some(MediaFault::AudioStop) {
                    continue;
                }
                let now = Instant::now();
                let sample = Sample {
                    data: audio.packet(audio_index, fault)?,
                    duration: audio_interval,
                    ..Sample::new(now)
                };
                audio_index += 1;
                match tracks
                    .audio
                    .sample_writer(tracks.audio_ssrc, tracks.audio_payload_type)
                    .write_sample(&sample)
                    .await
                {
                    Ok(()) => {
                        counters.audio_packets_sent.fetch_add(1, Ordering::Relaxed);
                        counters.audio_span.mark(capture_us(now));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::connection::{
        ConnectionEvent, ConnectionSettings, build_connection, negotiate,
    };
    use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    use tokio::sync::mpsc;
    use webrtc::media_stream::track_remote::TrackRemoteEvent;
    use webrtc::peer_connection::RTCPeerConnectionState;

    const WAIT: Duration = Duration::from_secs(10);

    /// Two connections wired directly (no signaling server): `a` sends
    /// media, `b` receives it and writes a PLI back on the wire.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pli_on_the_wire_reaches_the_sender_and_is_answered_with_a_keyframe() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let settings = ConnectionSettings::default();
        let a = build_connection(&settings, &[VideoCodec::H264], "a", 'a', tx.clone())
            .await
            .unwrap();
        let b = build_connection(&settings, &[VideoCodec::H264], "b", 'b', tx)
            .await
            .unwrap();
        negotiate(&a, &b).await;

        let counters = Arc::new(SendCounters::default());
        let stop = CancellationToken::new();
        let mut sender = None;
        let mut video_track = None;
        let deadline = tokio::time::Instant::now() + WAIT;
        while video_track.is_none() {
            let (key, _, event) = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .expect("connected and receiving video within the wait")
                .unwrap();
            match (key, event) {
                (key, ConnectionEvent::LocalCandidate(c)) => {
                    let other = if key == 'a' { &b.pc } else { &a.pc };
                    other.add_ice_candidate(c.into()).await.unwrap();
                }
                ('a', ConnectionEvent::State(RTCPeerConnectionState::Connected))
                    if sender.is_none() =>
                {
                    let tracks = Outgoing {
                        video: Arc::clone(&a.video),
                        video_codec: VideoCodec::H264,
                        audio: Arc::clone(&a.audio),
                        video_ssrc: a.video_ssrc,
                        audio_ssrc: a.audio_ssrc,
                        video_payload_type: VideoCodec::H264.payload_type(),
                        audio_payload_type: crate::peer::connection::PAYLOAD_TYPE_OPUS,
                    };
                    let settings = MediaSettings {
                        // No periodic keyframes: any second one answers the PLI.
                        video: VideoSettings {
                            keyframe_interval: 0,
                            ..VideoSettings::default()
                        },
                        ..MediaSettings::default()
                    };
                    let connected = CancellationToken::new();
                    connected.cancel();
                    sender = Some(tokio::spawn(send(
                        tracks,
                        0,
                        settings,
                        Instant::now(),
                        Arc::clone(&counters),
                        connected.clone(),
                        connected,
                        stop.clone(),
                    )));
                }
                ('b', ConnectionEvent::Track(track))
                    if track.kind().await
                        == rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video =>
                {
                    video_track = Some(track);
                }
                _ => {}
            }
        }
        let track = video_track.unwrap();
        // Wait for the first packet so we know the SSRC, then ask for a keyframe.
        let ssrc = loop {
            match tokio::time::timeout_at(deadline, track.poll())
                .await
                .expect("video flows")
            {
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => break packet.header.ssrc,
                Some(_) => continue,
                None => panic!("track ended"),
            }
        };
        assert_eq!(
            counters.keyframes_sent.load(Ordering::Relaxed),
            1,
            "only the first frame so far"
        );
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        track.write_rtcp(vec![Box::new(pli)]).await.unwrap();
        // Keep reading (the receiver must drain) until the sender has answered.
        while counters.keyframes_sent.load(Ordering::Relaxed) < 2 {
            tokio::time::timeout_at(deadline, track.poll())
                .await
                .expect("a second keyframe within the wait");
        }
        assert_eq!(counters.keyframe_requests.load(Ordering::Relaxed), 1);
        stop.cancel();
        sender.unwrap().await.unwrap().unwrap();
        a.pc.close().await.unwrap();
        b.pc.close().await.unwrap();
    }
}

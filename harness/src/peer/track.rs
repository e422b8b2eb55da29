//! One task per incoming track: reads RTP, feeds the receiver, sends PLIs
//! when it asks, and reports the first packet, frame and tone.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::events::{MediaKind, MediaSource};
use super::receive::{AudioReceiver, VideoReceiver};
use crate::media::codec::{CodecError, VideoCodec};
use crate::media::shared::SharedClip;
use crate::media::stamp::Stamp;
use crate::verify::audio::AudioVerdict;
use crate::verify::video::VideoVerdict;

/// What a track task tells its peer task as it goes.
#[derive(Clone, Debug)]
pub(crate) enum TrackNews {
    FirstRtp(MediaKind),
    FirstFrame(Option<Stamp>),
    FirstAudio,
    /// The call's data channel is open here.
    DataOpen,
    Failed(String),
}

/// What a track task hands back when it ends.
#[derive(Debug)]
pub(crate) enum TrackVerdict {
    Video {
        verdict: VideoVerdict,
        keyframe_requests: u64,
    },
    Audio(AudioVerdict),
}

pub(crate) type NewsSender<K> = mpsc::UnboundedSender<(K, Instant, TrackNews)>;

/// Reads `track` until it ends or `stop` is cancelled. A video receiver
/// made ahead of time (its decoder takes ~1.5 ms to create) is used if
/// given, so the first frame does not wait for it.
#[allow(clippy::too_many_arguments)] // one call site, each argument distinct
pub(crate) async fn receive<K: Clone + Send + 'static>(
    track: Arc<dyn TrackRemote>,
    prepared_video: Option<JoinHandle<Result<VideoReceiver, CodecError>>>,
    shared: Option<Arc<SharedClip>>,
    source: MediaSource,
    epoch: Instant,
    key: K,
    news: NewsSender<K>,
    record_audio: Option<PathBuf>,
    stop: CancellationToken,
) -> Option<TrackVerdict> {
    let tell = |what: TrackNews| {
        let _ = news.send((key.clone(), Instant::now(), what));
    };
    let kind = track.kind().await;
    let since_epoch = || Instant::now().saturating_duration_since(epoch);
    match kind {
        RtpCodecKind::Video => {
            let prepared = match (prepared_video, shared, source) {
                (Some(task), _, _) => Some(
                    task.await
                        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic())),
                ),
                (None, Some(clip), MediaSource::Pattern(sender)) => {
                    Some(Ok(VideoReceiver::shared(sender, clip)))
                }
                // Made for the codec the first packet comes in.
                (None, _, _) => None,
            };
            let mut receiver = match prepared.transpose() {
                Ok(receiver) => receiver,
                Err(error) => {
                    tell(TrackNews::Failed(error.to_string()));
                    return None;
                }
            };
            let mut first_frame = false;
            while let Some(event) = next(&*track, &stop).await {
                let TrackRemoteEvent::OnRtpPacket(packet) = event else {
                    continue;
                };
                let ssrc = packet.header.ssrc;
                if receiver.as_ref().is_none_or(|r| r.first_rtp().is_none()) {
                    tell(TrackNews::FirstRtp(MediaKind::Video));
                    match receiver_for(&*track, ssrc, receiver.take(), source).await {
                        Ok(made) => receiver = Some(made),
                        Err(why) => {
                            tell(TrackNews::Failed(why));
                            return None;
                        }
                    }
                }
                let Some(current) = receiver.as_mut() else {
                    continue; // made above
                };
                let report = current.on_rtp(packet, since_epoch());
                if let (Some(stamp), false) = (report.verified, first_frame) {
                    first_frame = true;
                    tell(TrackNews::FirstFrame(stamp));
                }
                if report.request_keyframe {
                    let pli = PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc: ssrc,
                    };
                    if let Err(error) = track.write_rtcp(vec![Box::new(pli)]).await {
                        tracing::debug!(%error, "PLI not sent");
                    }
                }
            }
            let mut receiver = receiver?;
            receiver.flush(since_epoch());
            Some(TrackVerdict::Video {
                verdict: receiver.verdict(None),
                keyframe_requests: receiver.keyframe_requests(),
            })
        }
        RtpCodecKind::Audio => {
            let receiver = match (shared, source) {
                (Some(clip), MediaSource::Pattern(sender)) => AudioReceiver::shared(sender, &clip),
                (_, source) => AudioReceiver::for_source(source, record_audio.as_deref()),
            };
            let mut receiver = match receiver {
                Ok(receiver) => receiver,
                Err(error) => {
                    tell(TrackNews::Failed(error.to_string()));
                    return None;
                }
            };
            let mut heard = false;
            while let Some(event) = next(&*track, &stop).await {
                let TrackRemoteEvent::OnRtpPacket(packet) = event else {
                    continue;
                };
                if receiver.first_rtp().is_none() {
                    tell(TrackNews::FirstRtp(MediaKind::Audio));
                }
                receiver.on_rtp(packet, since_epoch());
                if !heard && receiver.first_tone_at().is_some() {
                    heard = true;
                    tell(TrackNews::FirstAudio);
                }
            }
            Some(TrackVerdict::Audio(receiver.finish(since_epoch())))
        }
        _ => None,
    }
}

/// The receiver for a video track's first packet: the one made ahead of
/// time if it is for the codec the packet is in (the negotiated one,
/// always, from our own peers), or a new one for that codec.
async fn receiver_for(
    track: &dyn TrackRemote,
    ssrc: u32,
    prepared: Option<VideoReceiver>,
    source: MediaSource,
) -> Result<VideoReceiver, String> {
    let mime_type = track.codec(ssrc).await.map(|codec| codec.mime_type);
    let codec = mime_type.as_deref().and_then(VideoCodec::from_mime_type);
    match (prepared, codec) {
        (Some(prepared), Some(codec)) if prepared.codec() == codec => Ok(prepared),
        (_, Some(codec)) => VideoReceiver::for_source(source, codec).map_err(|e| e.to_string()),
        // A shared clip's receiver does not decode: the codec is H.264 by
        // validation, whatever the track says.
        (Some(prepared), None) if mime_type.is_none() => Ok(prepared),
        (_, None) => Err(format!(
            "video arrives in {}, which callprobe does not decode",
            mime_type.unwrap_or_else(|| "no codec the track names".into())
        )),
    }
}

async fn next(track: &dyn TrackRemote, stop: &CancellationToken) -> Option<TrackRemoteEvent> {
    tokio::select! {
        biased;
        () = stop.cancelled() => None,
        event = track.poll() => event,
    }
}

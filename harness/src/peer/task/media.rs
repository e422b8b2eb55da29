//! A call's media: the sender, once negotiated, in the negotiated codec,
//! and the incoming tracks' readers and their news.

use super::*;
use crate::peer::offload::cpu_work;

impl Peer {
    /// Once a call is negotiated: starts its sender, which prepares the
    /// first keyframe and fires when the connection is up, and makes the
    /// video receiver ready for the first packet.
    pub(super) async fn prepare_media(&mut self, remote: PeerId) {
        let expected = self.expected_sender(remote);
        let Some(call) = self.calls.get_mut(&remote) else {
            return;
        };
        if call.sending.is_some() {
            return; // a renegotiation (an ICE restart) of a running call
        }
        if !call.sends {
            // A subscription: nothing of ours goes out, the one codec the
            // connection was made with (what the server offered) comes in.
            if let (Some(expected), Some(codec)) = (expected, call.connection.video_codec) {
                call.prepared_video = Some(prepare_receiver(
                    self.config.media.shared.clone(),
                    expected,
                    codec,
                ));
            }
            return;
        }
        let (Some((video_mime, video_payload_type)), Some((_, audio_payload_type))) = (
            negotiated_codec(&call.connection.video_sender).await,
            negotiated_codec(&call.connection.audio_sender).await,
        ) else {
            return self.error(
                Some(remote),
                PeerError::Media {
                    detail: "no codec was negotiated for our tracks".into(),
                },
            );
        };
        let Some(video_codec) = VideoCodec::from_mime_type(&video_mime) else {
            return self.error(
                Some(remote),
                PeerError::Media {
                    detail: format!("the negotiated video codec {video_mime} is not one of ours"),
                },
            );
        };
        if let Err(error) = call.connection.switch_video_codec(video_codec).await {
            return self.error(
                Some(remote),
                PeerError::Media {
                    detail: error.to_string(),
                },
            );
        }
        if let Some(expected) = expected {
            call.prepared_video = Some(prepare_receiver(
                self.config.media.shared.clone(),
                expected,
                video_codec,
            ));
        }
        let connection = &call.connection;
        let tracks = Outgoing {
            video: Arc::clone(&connection.video),
            video_codec,
            audio: Arc::clone(&connection.audio),
            video_ssrc: connection.video_ssrc,
            audio_ssrc: connection.audio_ssrc,
            video_payload_type,
            audio_payload_type,
        };
        let counters = Arc::new(SendCounters::default());
        let (ice_connected, connected) = (CancellationToken::new(), CancellationToken::new());
        // Either may have come up before we got here.
        if call.machine.ice_up() {
            ice_connected.cancel();
        }
        if call.machine.was_connected() {
            connected.cancel();
        }
        let stop = CancellationToken::new();
        let task = tokio::spawn(send(
            tracks,
            self.config.index,
            self.config.media.clone(),
            self.config.epoch,
            Arc::clone(&counters),
            ice_connected.clone(),
            connected.clone(),
            stop.clone(),
        ));
        call.sending = Some(Sending {
            ice_connected,
            connected,
            stop,
            task,
            counters,
        });
    }

    pub(super) fn on_track_news(&self, remote: PeerId, at: Instant, news: TrackNews) {
        match news {
            TrackNews::FirstRtp(kind) => self.emit_at(at, PeerEventKind::FirstRtp { remote, kind }),
            TrackNews::FirstFrame(stamp) => {
                self.emit_at(at, PeerEventKind::FirstFrame { remote, stamp })
            }
            TrackNews::FirstAudio => self.emit_at(at, PeerEventKind::FirstAudio { remote }),
            TrackNews::DataOpen => self.emit_at(at, PeerEventKind::DataOpen { remote }),
            TrackNews::Failed(detail) => self.error(Some(remote), PeerError::Media { detail }),
        }
    }
}

/// A video receiver for `expected`'s media, made off the async workers.
fn prepare_receiver(
    shared: Option<Arc<crate::media::shared::SharedClip>>,
    expected: MediaSource,
    codec: VideoCodec,
) -> JoinHandle<Result<VideoReceiver, CodecError>> {
    // Checking against the shared clip needs no decoder: cheap, made here.
    let cheap = shared.is_some() && matches!(expected, MediaSource::Pattern(_));
    tokio::spawn(cpu_work(cheap, move || match (shared, expected) {
        (Some(clip), MediaSource::Pattern(sender)) => Ok(VideoReceiver::shared(sender, clip)),
        (_, source) => VideoReceiver::for_source(source, codec),
    }))
}

/// The codec a sender sends, by negotiation (the first both sides took):
/// its MIME type and payload type.
async fn negotiated_codec(sender: &Arc<dyn RtpSender>) -> Option<(String, u8)> {
    let parameters = sender.get_parameters().await.ok()?;
    parameters
        .rtp_parameters
        .codecs
        .first()
        .map(|c| (c.rtp_codec.mime_type.clone(), c.payload_type))
}

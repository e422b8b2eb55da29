//! A call's life at the peer: placed by a command, driven by its machine's
//! outputs, ended (media stopped, verdicts collected, connection closed)
//! within its bounds.

use super::*;
use crate::peer::data_channel;
use crate::peer::ice::selected_pair;
use webrtc::rtp_transceiver::RTCRtpTransceiverDirection;

impl Peer {
    pub(super) async fn call(
        &mut self,
        client: &mut SignalingClient,
        to: PeerId,
        id: CallId,
        expect: Option<MediaSource>,
    ) {
        if self.open_call(to, id) {
            self.offer(client, to, expect, false).await;
        }
    }

    /// Opens a call with `to` by our offer; `viewing`: one we only
    /// receive on (a WHEP viewer's), its media directions receive-only.
    async fn offer(
        &mut self,
        client: &mut SignalingClient,
        to: PeerId,
        expect: Option<MediaSource>,
        viewing: bool,
    ) {
        let codecs = self.config.media.video.codecs.clone();
        let connection = match self.new_connection(to, &codecs, viewing).await {
            Ok(connection) => connection,
            Err(message) => return self.fail_before_call(to, Role::Caller, message),
        };
        if viewing {
            for transceiver in connection.pc.get_transceivers().await {
                if let Err(error) = transceiver
                    .set_direction(RTCRtpTransceiverDirection::Recvonly)
                    .await
                {
                    close_connection(&connection, self.close_deadline()).await;
                    let message = format!("making the offer receive-only: {error}");
                    return self.fail_before_call(to, Role::Caller, message);
                }
            }
        }
        // The caller opens the data channel before its offer, as the
        // tutorial's page does, so the offer carries it (not to a media
        // server's room, whose channel nobody would verify).
        let channel = match self.config.media.data.filter(|_| expect.is_some()) {
            Some(settings) => {
                match connection
                    .pc
                    .create_data_channel(data_channel::LABEL, Some(settings.init()))
                    .await
                {
                    Ok(channel) => Some(channel),
                    Err(error) => {
                        close_connection(&connection, self.close_deadline()).await;
                        return self.fail_before_call(
                            to,
                            Role::Caller,
                            format!("opening the data channel: {error}"),
                        );
                    }
                }
            }
            None => None,
        };
        let offer = async {
            let offer = connection.pc.create_offer(None).await?;
            connection.pc.set_local_description(offer.clone()).await?;
            Ok::<_, webrtc::error::Error>(offer)
        }
        .await;
        let mut call = Peer::new_call(
            CallMachine::caller(Instant::now(), self.timeouts()),
            connection,
            expect,
        );
        if let Some(channel) = channel {
            call.data = self.run_data_channel(to, channel, &call);
        }
        call.sends = !viewing;
        let sdp = match offer {
            Ok(offer) => offer.sdp,
            Err(error) => {
                close_connection(&call.connection, self.close_deadline()).await;
                return self.fail_before_call(
                    to,
                    Role::Caller,
                    format!("creating the offer: {error}"),
                );
            }
        };
        self.calls.insert(to, call);
        let sdp = self.config.misbehave.outgoing_sdp(sdp);
        match client.send(&Signal::Offer { to, sdp }).await {
            Ok(()) => self.emit(PeerEventKind::OfferSent { remote: to }),
            Err(error) => {
                let failure = CallFailure::Negotiation(format!("sending the offer: {error}"));
                self.drive(client, to, Instant::now(), CallInput::Failed(failure))
                    .await;
            }
        }
    }

    /// Files a commanded call with `to` as `id`, and says it was
    /// commanded; or refuses it, being a second call with `to` while one
    /// is going on (filed under the call asked for, not the one going on).
    fn open_call(&self, to: PeerId, id: CallId) -> bool {
        if self.refuse_second_call(to, id) {
            return false;
        }
        self.call_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .open(to, Some(id));
        self.emit(PeerEventKind::CallCommanded { remote: to });
        true
    }

    fn refuse_second_call(&self, to: PeerId, id: CallId) -> bool {
        if !self.calls.contains_key(&to) && !self.subscribing.contains_key(&to) {
            return false;
        }
        let at = RunTime::now(self.config.epoch);
        for kind in [
            PeerEventKind::CallCommanded { remote: to },
            PeerEventKind::Error {
                remote: Some(to),
                error: PeerError::AlreadyInCall,
            },
        ] {
            let _ = self.events.send(PeerEvent {
                peer: self.config.index,
                at,
                call: Some(id),
                kind,
            });
        }
        true
    }

    /// Asks the media server for `to`'s media. Its offer opens the call
    /// as any offer does (we introduce the call to ourselves); none within
    /// the answer bound fails it.
    pub(super) async fn subscribe(
        &mut self,
        client: &mut SignalingClient,
        to: PeerId,
        id: CallId,
        expect: MediaSource,
    ) {
        if !self.open_call(to, id) {
            return;
        }
        if client.viewer_offers() {
            return self.offer(client, to, Some(expect), true).await;
        }
        self.introductions.expect(Introduction {
            caller: to,
            call: id,
            source: expect,
        });
        let by = Instant::now() + self.config.answer_timeout;
        self.subscribing.insert(to, (by, id));
        if let Err(error) = client.send(&Signal::Subscribe { to }).await {
            self.subscription_failed(to, CallFailure::Refused(error.to_string()));
        }
    }

    /// A subscription that ended before its offer came.
    pub(super) fn subscription_failed(&mut self, remote: PeerId, failure: CallFailure) {
        if self.subscribing.remove(&remote).is_none() {
            return;
        }
        let _ = self.introductions.take(remote);
        self.error(Some(remote), PeerError::Call(failure.clone()));
        let report = CallReport::new(remote, Role::Callee, CallEnd::Failed(failure));
        self.emit(PeerEventKind::CallEnded(Box::new(report)));
    }

    /// A call that never got as far as having a connection.
    pub(super) fn fail_before_call(&self, remote: PeerId, role: Role, message: String) {
        let failure = CallFailure::Local(message);
        self.error(Some(remote), PeerError::Call(failure.clone()));
        let report = CallReport::new(remote, role, CallEnd::Failed(failure));
        self.emit(PeerEventKind::CallEnded(Box::new(report)));
    }

    /// Fails the calls whose answer, or connection, is overdue.
    pub(super) async fn expire_overdue(&mut self, client: &mut SignalingClient) {
        let now = Instant::now();
        let unoffered: Vec<PeerId> = self
            .subscribing
            .iter()
            .filter(|(_, (by, _))| *by <= now)
            .map(|(remote, _)| *remote)
            .collect();
        for remote in unoffered {
            let failure = CallFailure::NoOffer(self.config.answer_timeout);
            self.subscription_failed(remote, failure);
            let _ = client.send(&Signal::Hangup { to: remote }).await;
        }
        let due: Vec<PeerId> = self
            .calls
            .iter()
            .filter(|(_, call)| call.machine.poll_timeout().is_some_and(|at| at <= now))
            .map(|(remote, _)| *remote)
            .collect();
        for remote in due {
            let Some(call) = self.calls.get_mut(&remote) else {
                continue;
            };
            let outputs = call.machine.handle_timeout(now);
            self.act(client, remote, now, outputs).await;
        }
    }

    /// Feeds the call with `remote` what happened at `at`, and does what
    /// its machine says.
    pub(super) async fn drive(
        &mut self,
        client: &mut SignalingClient,
        remote: PeerId,
        at: Instant,
        input: CallInput,
    ) {
        let Some(call) = self.calls.get_mut(&remote) else {
            return; // news of a call that has ended
        };
        let outputs = call.machine.handle(input, at);
        self.act(client, remote, at, outputs).await;
    }

    pub(super) async fn act(
        &mut self,
        client: &mut SignalingClient,
        remote: PeerId,
        at: Instant,
        outputs: Vec<CallOutput>,
    ) {
        for output in outputs {
            let sending = self.calls.get(&remote).and_then(|c| c.sending.as_ref());
            match output {
                CallOutput::Negotiated => self.prepare_media(remote).await,
                CallOutput::IceUp => {
                    if let Some(sending) = sending {
                        sending.ice_connected.cancel();
                    }
                    self.emit_at(at, PeerEventKind::IceConnected { remote });
                    self.report_pair(remote).await;
                }
                CallOutput::IceDown => self.emit_at(at, PeerEventKind::IceDisconnected { remote }),
                CallOutput::IceGaveUp => self.emit_at(at, PeerEventKind::IceFailed { remote }),
                CallOutput::Up => {
                    self.emit_at(at, PeerEventKind::Connected { remote });
                    if let Some(sending) = sending {
                        sending.connected.cancel();
                    }
                }
                CallOutput::End { end, tell_remote } => {
                    self.end_call(client, remote, end, tell_remote).await;
                }
            }
        }
    }

    /// The candidate pair ICE has selected for the call, as we see it.
    async fn report_pair(&self, remote: PeerId) {
        let Some(call) = self.calls.get(&remote) else {
            return;
        };
        match selected_pair(call.connection.pc.as_ref()).await {
            Some(pair) => self.emit(PeerEventKind::PairSelected { remote, pair }),
            None => tracing::debug!(
                peer = self.config.index,
                "ICE is up with no selected pair in the stats"
            ),
        }
    }

    /// When a call being ended now must be done: the teardown's bound, or
    /// one call's.
    pub(super) fn close_deadline(&self) -> tokio::time::Instant {
        self.closing_by
            .unwrap_or_else(|| tokio::time::Instant::now() + CALL_CLOSE)
    }

    /// Ends a call (its machine has): tells the other side if it says so,
    /// stops media, closes the connection and reports what was received.
    pub(super) async fn end_call(
        &mut self,
        client: &mut SignalingClient,
        remote: PeerId,
        end: CallEnd,
        tell_remote: bool,
    ) {
        let Some(call) = self.calls.remove(&remote) else {
            return;
        };
        if tell_remote && !self.offline {
            // Best effort: the server may already have dropped the call.
            let _ = client.send(&Signal::Hangup { to: remote }).await;
        }
        let mut report = CallReport::new(remote, call.machine.role(), end);
        // Media started in the codec negotiation chose (the connection's
        // track was switched to it first).
        report.video_codec = call.sending.as_ref().and(call.connection.video_codec);
        // One bound for the whole call: media tasks and connection together.
        let deadline = self.close_deadline();
        if let Some(sending) = call.sending {
            sending.stop.cancel();
            match timeout_at(deadline, sending.task).await {
                Ok(Ok(Err(error))) => self.error(
                    Some(remote),
                    PeerError::Media {
                        detail: format!("sending media: {error}"),
                    },
                ),
                Ok(_) => {}
                Err(_) => self.error(
                    Some(remote),
                    PeerError::Stuck {
                        part: "the media sender".into(),
                    },
                ),
            }
            let counters = &sending.counters;
            use std::sync::atomic::Ordering::Relaxed;
            report.frames_sent = counters.frames_sent.load(Relaxed);
            report.keyframes_sent = counters.keyframes_sent.load(Relaxed);
            report.keyframe_requests_received = counters.keyframe_requests.load(Relaxed);
            report.audio_packets_sent = counters.audio_packets_sent.load(Relaxed);
            report.video_sent = counters.video_span.span();
            report.audio_sent = counters.audio_span.span();
        }
        call.tracks_stop.cancel();
        for track in call.tracks {
            match timeout_at(deadline, track).await {
                Ok(Ok(Some(TrackVerdict::Video {
                    verdict,
                    keyframe_requests,
                }))) => {
                    report.video = Some(verdict);
                    report.keyframe_requests_sent = keyframe_requests;
                }
                Ok(Ok(Some(TrackVerdict::Audio(verdict)))) => report.audio = Some(verdict),
                Ok(_) => {}
                Err(_) => self.error(
                    Some(remote),
                    PeerError::Stuck {
                        part: "a track reader".into(),
                    },
                ),
            }
        }
        if let Some(data) = call.data {
            match timeout_at(deadline, data).await {
                Ok(Ok(verdict)) => report.data = Some(verdict),
                Ok(Err(_)) => {}
                Err(_) => self.error(
                    Some(remote),
                    PeerError::Stuck {
                        part: "the data channel".into(),
                    },
                ),
            }
        }
        close_connection(&call.connection, deadline).await;
        self.emit(PeerEventKind::CallEnded(Box::new(report)));
    }

    /// Runs a call's data channel until the call's tracks stop; `None`
    /// for a caller nobody introduced (whose messages cannot be judged).
    pub(super) fn run_data_channel(
        &self,
        remote: PeerId,
        channel: Arc<dyn webrtc::data_channel::DataChannel>,
        call: &Call,
    ) -> Option<JoinHandle<DataVerdict>> {
        let settings = self.config.media.data?;
        let expected = match call.remote_source? {
            MediaSource::Pattern(index) | MediaSource::Browser(index) => index,
        };
        let ends = data_channel::Ends {
            us: self.config.index,
            expected,
            remote,
            epoch: self.config.epoch,
            faults: Arc::clone(&self.config.media.faults),
        };
        Some(tokio::spawn(data_channel::run(
            channel,
            settings,
            ends,
            self.track_news.clone(),
            call.tracks_stop.clone(),
        )))
    }
}

/// Closes a connection (never just drops it: its driver task would live on).
pub(super) async fn close_connection(connection: &Connection, deadline: tokio::time::Instant) {
    match timeout_at(deadline, connection.pc.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "closing a peer connection"),
        Err(_) => tracing::warn!("a peer connection did not close within its bound"),
    }
}

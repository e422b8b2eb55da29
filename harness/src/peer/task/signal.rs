//! The peer's signaling side: frames from the server (offers, answers,
//! candidates, hangups, departures, errors) and its connections' events,
//! each turned into the call machine's input.

use super::*;
use crate::peer::ice::{CandidateType, IcePolicy};
use crate::peer::turn_probe::diagnose;

impl Peer {
    /// The remote of a frame: the sender the server named, or, from a
    /// server that names none (the tutorial's), the one call that fits.
    pub(super) fn resolve(
        &self,
        from: Option<PeerId>,
        fits: impl Fn(&Call) -> bool,
    ) -> Option<PeerId> {
        from.or_else(|| {
            let mut fitting = self.calls.iter().filter(|(_, call)| fits(call));
            match (fitting.next(), fitting.next()) {
                (Some((id, _)), None) => Some(*id),
                _ => None,
            }
        })
    }

    pub(super) async fn on_signal(&mut self, client: &mut SignalingClient, received: Received) {
        let at = received.at;
        match received.message {
            Incoming::Started { .. } => {}
            Incoming::Offer {
                from: Some(remote),
                sdp,
            } => self.on_offer(client, remote, sdp, at).await,
            Incoming::Offer { from: None, .. } => {
                self.error(None, PeerError::OfferWithoutSender);
            }
            Incoming::Answer { from, sdp } => {
                let Some(remote) = self.resolve(from, |call| call.machine.awaits_answer()) else {
                    return self.error(from, PeerError::UnmatchedAnswer);
                };
                self.on_answer(client, remote, sdp, at).await;
            }
            Incoming::Candidate { from, candidate } => {
                let Some(remote) = self.resolve(from, |_| true) else {
                    return self.error(from, PeerError::UnmatchedCandidate);
                };
                self.on_remote_candidate(remote, candidate).await;
            }
            Incoming::Hangup { from } => {
                if let Some(remote) = self
                    .resolve(from, |_| true)
                    .filter(|r| self.calls.contains_key(r))
                {
                    self.drive(client, remote, at, CallInput::RemoteHungUp)
                        .await;
                }
            }
            Incoming::PeerLeft { id } => {
                if self.calls.contains_key(&id) {
                    self.emit_at(at, PeerEventKind::PeerLeft { remote: id });
                    self.drive(client, id, at, CallInput::PeerLeft).await;
                }
            }
            Incoming::Refused { remote, reason } => {
                let failure = CallFailure::Refused(reason);
                if self.calls.contains_key(&remote) {
                    self.drive(client, remote, at, CallInput::Failed(failure))
                        .await;
                } else {
                    self.subscription_failed(remote, failure);
                }
            }
            Incoming::Error(reply) => {
                let remote = reply.remote_id.as_deref().and_then(PeerId::parse);
                let failed_offer = reply.code == ErrorCode::UnknownPeer
                    && reply.in_reply_to.as_deref() == Some("offer");
                match remote {
                    Some(remote) if failed_offer && self.calls.contains_key(&remote) => {
                        let failure = CallFailure::OfferRefused(reply.to_string());
                        self.drive(client, remote, at, CallInput::Failed(failure))
                            .await;
                    }
                    // Candidates trailing an offer the server refused, or
                    // a hangup to a peer already gone or a call the other
                    // side already ended: nothing is wrong.
                    Some(remote)
                        if matches!(reply.code, ErrorCode::UnknownPeer | ErrorCode::NoCall)
                            && !self.calls.contains_key(&remote) =>
                    {
                        tracing::debug!(%remote, %reply, "unknown peer, for a call that has ended");
                    }
                    _ => self.error(
                        remote,
                        PeerError::ServerReplied {
                            reply: reply.to_string(),
                        },
                    ),
                }
            }
        }
    }

    pub(super) async fn on_offer(
        &mut self,
        client: &mut SignalingClient,
        remote: PeerId,
        sdp: String,
        at: Instant,
    ) {
        let renegotiation = self.calls.contains_key(&remote);
        // A subscription's offer: the media server's, for media we only
        // receive.
        let subscribed = self.subscribing.remove(&remote).is_some();
        let introduction = if renegotiation {
            None
        } else {
            let introduction = self.introductions.take(remote);
            self.call_ids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .open(remote, introduction.map(|i| i.call));
            introduction
        };
        self.emit_at(at, PeerEventKind::OfferReceived { remote });
        if self.config.misbehave.ignores_offers && !renegotiation {
            return;
        }
        if !renegotiation {
            // The offer's order decides among the codecs both sides take.
            let offered = offered_video_codecs(&sdp);
            let ours = &self.config.media.video.codecs;
            let codecs: Vec<VideoCodec> = offered
                .iter()
                .copied()
                .filter(|codec| ours.contains(codec))
                .collect();
            if codecs.is_empty() {
                let failure = CallFailure::NoCommonCodec {
                    offered,
                    ours: ours.clone(),
                };
                self.error(Some(remote), PeerError::Call(failure.clone()));
                // Tell the caller, so its call ends now rather than unanswered.
                let _ = client.send(&Signal::Hangup { to: remote }).await;
                let report = CallReport::new(remote, Role::Callee, CallEnd::Failed(failure));
                self.emit(PeerEventKind::CallEnded(Box::new(report)));
                return;
            }
            match self.new_connection(remote, &codecs, subscribed).await {
                Ok(connection) => {
                    let machine = CallMachine::callee(self.timeouts());
                    let source = introduction.map(|i| i.source);
                    let mut call = Peer::new_call(machine, connection, source);
                    call.sends = !subscribed;
                    self.calls.insert(remote, call);
                }
                Err(message) => return self.fail_before_call(remote, Role::Callee, message),
            }
        } else if self.calls[&remote].machine.awaits_answer() && !self.calls[&remote].sends {
            // A viewer's offer countered by the server's (WHEP's
            // server-offer mode): ours is rolled back, and we answer.
            let rollback = match RTCSessionDescription::rollback(None) {
                Ok(rollback) => {
                    self.calls[&remote]
                        .connection
                        .pc
                        .set_local_description(rollback)
                        .await
                }
                Err(error) => Err(error),
            };
            if let Err(error) = rollback {
                let failure = CallFailure::Negotiation(format!("rolling back our offer: {error}"));
                return self
                    .drive(client, remote, at, CallInput::Failed(failure))
                    .await;
            }
            self.drive(client, remote, at, CallInput::CounterOffered)
                .await;
        } else {
            self.drive(client, remote, at, CallInput::OfferReceived)
                .await;
        }
        let call = self.calls.get_mut(&remote).expect("inserted above");
        let answer = async {
            let pc = &call.connection.pc;
            pc.set_remote_description(RTCSessionDescription::offer(sdp)?)
                .await?;
            let answer = pc.create_answer(None).await?;
            pc.set_local_description(answer.clone()).await?;
            Ok::<_, webrtc::error::Error>(answer)
        }
        .await;
        match answer {
            Ok(answer) => {
                call.remote_description_set = true;
                let pending = std::mem::take(&mut call.pending_candidates);
                for candidate in pending {
                    self.on_remote_candidate(remote, candidate).await;
                }
                match client
                    .send(&Signal::Answer {
                        to: remote,
                        sdp: self.config.misbehave.outgoing_sdp(answer.sdp),
                    })
                    .await
                {
                    Ok(()) => {
                        self.emit(PeerEventKind::AnswerSent { remote });
                        self.drive(client, remote, Instant::now(), CallInput::AnswerSent)
                            .await;
                    }
                    Err(error) => {
                        let failure =
                            CallFailure::Negotiation(format!("sending the answer: {error}"));
                        self.drive(client, remote, Instant::now(), CallInput::Failed(failure))
                            .await;
                    }
                }
            }
            Err(error) => {
                let failure = CallFailure::Negotiation(format!("answering the offer: {error}"));
                self.drive(client, remote, Instant::now(), CallInput::Failed(failure))
                    .await;
            }
        }
    }

    pub(super) async fn on_answer(
        &mut self,
        client: &mut SignalingClient,
        remote: PeerId,
        sdp: String,
        at: Instant,
    ) {
        let Some(call) = self.calls.get_mut(&remote) else {
            return self.error(Some(remote), PeerError::AnswerForNoCall);
        };
        let applied = async {
            let description = RTCSessionDescription::answer(sdp)?;
            call.connection.pc.set_remote_description(description).await
        }
        .await;
        match applied {
            Ok(()) => {
                call.remote_description_set = true;
                let pending = std::mem::take(&mut call.pending_candidates);
                self.emit_at(at, PeerEventKind::AnswerReceived { remote });
                for candidate in pending {
                    self.on_remote_candidate(remote, candidate).await;
                }
                self.drive(client, remote, at, CallInput::AnswerReceived)
                    .await;
            }
            Err(error) => {
                let failure = CallFailure::Negotiation(format!("applying the answer: {error}"));
                self.drive(client, remote, at, CallInput::AnswerUnusable(failure))
                    .await;
            }
        }
    }

    pub(super) async fn on_remote_candidate(&mut self, remote: PeerId, candidate: CandidateInit) {
        let Some(call) = self.calls.get_mut(&remote) else {
            return; // a candidate trailing a call that has ended
        };
        if !call.remote_description_set {
            call.pending_candidates.push(candidate);
            return;
        }
        let init = RTCIceCandidateInit::from(candidate);
        if let Err(error) = call.connection.pc.add_ice_candidate(init).await {
            self.error(
                Some(remote),
                negotiation("adding a remote candidate", error),
            );
        }
    }

    pub(super) async fn on_connection_event(
        &mut self,
        client: &mut SignalingClient,
        remote: PeerId,
        at: Instant,
        event: ConnectionEvent,
    ) {
        if !self.calls.contains_key(&remote) {
            return; // late news from a call that has ended
        }
        match event {
            ConnectionEvent::LocalCandidate(_) if self.offline => {}
            ConnectionEvent::LocalCandidate(candidate) => {
                self.note_relay(remote, at, &candidate.candidate);
                if let Err(error) = client
                    .send(&Signal::Candidate {
                        to: remote,
                        candidate,
                    })
                    .await
                {
                    self.error(Some(remote), negotiation("sending a candidate", error));
                }
            }
            ConnectionEvent::IceState(state) => {
                let input = match state {
                    RTCIceConnectionState::Connected => CallInput::IceConnected,
                    RTCIceConnectionState::Checking => CallInput::IceChecking,
                    RTCIceConnectionState::Disconnected => CallInput::IceDisconnected,
                    RTCIceConnectionState::Failed => CallInput::IceFailed,
                    _ => return,
                };
                self.drive(client, remote, at, input).await;
            }
            ConnectionEvent::State(RTCPeerConnectionState::Connected) => {
                self.drive(client, remote, at, CallInput::Connected).await;
            }
            ConnectionEvent::State(RTCPeerConnectionState::Failed) => {
                // The library reports the connection failed without always
                // reporting ICE failed first: the machine says which it was.
                self.drive(client, remote, at, CallInput::ConnectionFailed)
                    .await;
            }
            ConnectionEvent::State(_) => {}
            ConnectionEvent::GatheringComplete => self.check_relay_gathered(remote),
            ConnectionEvent::DataChannel(channel) => {
                let ours = matches!(channel.label().await, Ok(label) if label == crate::peer::data_channel::LABEL);
                let Some(call) = self.calls.get(&remote) else {
                    return;
                };
                if !ours || call.data.is_some() {
                    return; // not the channel we verify
                }
                let data = self.run_data_channel(remote, channel, call);
                if let Some(call) = self.calls.get_mut(&remote) {
                    call.data = data;
                }
            }
            ConnectionEvent::NoRelay(why) => {
                let failure = CallFailure::NoRelay(why);
                self.drive(client, remote, at, CallInput::Failed(failure))
                    .await;
            }
            ConnectionEvent::Track(track) => {
                let expected = self.expected_sender(remote);
                let Some(expected) = expected else {
                    return self.error(Some(remote), PeerError::UnknownSender);
                };
                let from = match expected {
                    MediaSource::Pattern(index) => index.to_string(),
                    MediaSource::Browser(_) => format!("browser-{remote}"),
                };
                let record = self
                    .config
                    .record_audio_dir
                    .as_ref()
                    .map(|dir| dir.join(format!("{}-from-{from}.wav", self.config.index)));
                let call = self.calls.get_mut(&remote).expect("checked above");
                call.tracks.push(tokio::spawn(receive(
                    track,
                    call.prepared_video.take(),
                    self.config.media.shared.clone(),
                    expected,
                    self.config.epoch,
                    remote,
                    self.track_news.clone(),
                    record,
                    call.tracks_stop.clone(),
                )));
            }
        }
    }
}

impl Peer {
    /// Our first relayed candidate of the call: the allocation is done.
    fn note_relay(&mut self, remote: PeerId, at: Instant, candidate: &str) {
        let Some(call) = self.calls.get_mut(&remote) else {
            return;
        };
        if call.relay_gathered
            || CandidateType::of_candidate_line(candidate) != Some(CandidateType::Relay)
        {
            return;
        }
        call.relay_gathered = true;
        self.emit_at(at, PeerEventKind::RelayAllocated { remote });
    }

    /// Gathering is over: a relay-only call without a relayed candidate can
    /// never connect, so it fails now, with the TURN server's own answer
    /// (asked off the peer's loop; it comes back as `NoRelay`).
    fn check_relay_gathered(&self, remote: PeerId) {
        let settings = &self.config.connection;
        let relay_missing = self
            .calls
            .get(&remote)
            .is_some_and(|call| !call.relay_gathered);
        if settings.ice_policy != IcePolicy::Relay || !relay_missing {
            return;
        }
        let servers = settings.ice_servers.clone();
        let bind_ip = settings.bind_ip;
        let events = self.connection_events.clone();
        tokio::spawn(async move {
            let why = diagnose(&servers, bind_ip, TURN_DIAGNOSIS).await;
            let _ = events.send((remote, Instant::now(), ConnectionEvent::NoRelay(why)));
        });
    }
}

/// Bound on asking the TURN servers why a call got no relayed candidate.
const TURN_DIAGNOSIS: Duration = Duration::from_secs(2);

/// A negotiation step the library refused, with its words.
pub(super) fn negotiation(step: &str, error: impl std::fmt::Display) -> PeerError {
    PeerError::Negotiation {
        step: step.to_owned(),
        detail: error.to_string(),
    }
}

//! What a browser peer's calls received, read from its page: the first
//! frame and its stamp, the periodic grabs and stats, and the call's
//! report once the page says it ended.

use super::*;

impl BrowserPeer {
    /// The first frame the browser showed: grabbed in that very callback,
    /// so its stamp is read here.
    pub(super) async fn first_frame(&mut self, remote: PeerId, at: f64) -> Option<PeerEventKind> {
        #[derive(serde::Deserialize)]
        struct FirstFrame {
            grab: Option<Grab>,
        }
        let first: Option<FirstFrame> =
            match self.page.call_with_id("firstFrame", remote.as_str()).await {
                Ok(first) => first,
                Err(error) => {
                    self.error(Some(remote), format!("reading the first frame: {error}"));
                    None
                }
            };
        let reading = first.and_then(|f| f.grab).map(|grab| read_grab(&grab));
        let call = self.calls.get_mut(&remote)?;
        let source = call.remote_source;
        call.samples.first_frame_at = Some(at);
        let reading = match reading {
            Some(Ok(reading)) => reading,
            // Shown, but not yet drawable: the first frame is the first
            // grab that reads.
            Some(Err(GrabError::NothingDrawn)) => {
                return match source {
                    Some(MediaSource::Pattern(sender)) => {
                        self.first_verified_grab(remote, sender).await
                    }
                    _ => Some(PeerEventKind::FirstFrame {
                        remote,
                        stamp: None,
                    }),
                };
            }
            Some(Err(error)) => {
                self.error(Some(remote), format!("the first frame's grab: {error}"));
                return None;
            }
            None => {
                self.error(Some(remote), "the first frame was not grabbed".into());
                return None;
            }
        };
        call.samples.first = Some(reading.clone());
        match (source, &reading.stamp) {
            (Some(MediaSource::Pattern(sender)), Ok(stamp)) if stamp.sender == sender => {
                Some(PeerEventKind::FirstFrame {
                    remote,
                    stamp: Some(*stamp),
                })
            }
            // The first picture shown did not read (it counts as corrupt in
            // the report): the first frame is the first one that does.
            (Some(MediaSource::Pattern(sender)), Err(_)) => {
                self.first_verified_grab(remote, sender).await
            }
            (Some(MediaSource::Browser(_)), _) => Some(PeerEventKind::FirstFrame {
                remote,
                stamp: None,
            }),
            (_, stamp) => {
                self.error(
                    Some(remote),
                    format!("the first frame shown does not carry the sender's stamp: {stamp:?}"),
                );
                None
            }
        }
    }

    /// Grabs the video, a frame apart, until a frame carries `sender`'s
    /// stamp (bounded), and reports it at the time it was grabbed.
    pub(super) async fn first_verified_grab(
        &mut self,
        remote: PeerId,
        sender: u16,
    ) -> Option<PeerEventKind> {
        const TRIES: usize = 20;
        for _ in 0..TRIES {
            let grab = self
                .page
                .call_with_id::<Option<Grab>>("grab", remote.as_str())
                .await;
            let Ok(Some(grab)) = grab else {
                return None; // the call ended
            };
            if let Ok(reading) = read_grab(&grab)
                && let Ok(stamp) = reading.stamp
                && stamp.sender == sender
            {
                let at = self.clock.instant(reading.at);
                self.emit_at(
                    at,
                    PeerEventKind::FirstFrame {
                        remote,
                        stamp: Some(stamp),
                    },
                );
                return None;
            }
            // The next picture comes a frame later.
            tokio::time::sleep(Duration::from_secs(1) / self.config.fps.max(1)).await;
        }
        self.error(
            Some(remote),
            format!("no frame shown in {TRIES} grabs carried the sender's stamp"),
        );
        None
    }

    /// Reads stats and grabs a frame of every call that is showing video.
    pub(super) async fn sample_calls(&mut self) {
        let showing: Vec<PeerId> = self
            .calls
            .iter()
            .filter(|(_, call)| call.samples.first_frame_at.is_some() && !call.samples.ended)
            .map(|(remote, _)| *remote)
            .collect();
        for remote in showing {
            let stats = self
                .page
                .call_with_id::<Option<PageStats>>("stats", remote.as_str())
                .await;
            let grab = self
                .page
                .call_with_id::<Option<Grab>>("grab", remote.as_str())
                .await;
            let (Ok(Some(stats)), Ok(Some(grab))) = (stats, grab) else {
                continue; // the call ended in between
            };
            let reading: Option<GrabReading> = read_grab(&grab).ok();
            if let (Some(call), Some(reading)) = (self.calls.get_mut(&remote), reading) {
                call.samples.push(Sample {
                    frames_decoded: stats.video_frames_decoded(),
                    reading,
                });
            }
        }
    }

    pub(super) fn end_report(&mut self, remote: PeerId, event: &PageEvent) -> CallReport {
        let page_end = match event.detail_str("reason") {
            Some("hungUp") => CallEnd::HungUp,
            Some("remoteHungUp") => CallEnd::RemoteHungUp,
            Some("peerLeft") => CallEnd::PeerLeft,
            Some("failed") => CallEnd::Failed(CallFailure::IceFailed),
            Some("signalingLost") => CallEnd::Failed(CallFailure::SignalingClosed),
            Some(other) => CallEnd::Failed(CallFailure::Browser(other.to_owned())),
            None => CallEnd::Failed(CallFailure::Browser("no reason given".into())),
        };
        let stats: Option<PageStats> = match event.detail.as_ref().and_then(|d| d.get("stats")) {
            Some(serde_json::Value::Null) | None => None,
            Some(stats) => match serde_json::from_value(stats.clone()) {
                Ok(stats) => Some(stats),
                Err(error) => {
                    self.error(Some(remote), format!("the browser's final stats: {error}"));
                    None
                }
            },
        };
        let mut call = self
            .calls
            .remove(&remote)
            .unwrap_or_else(|| Call::new(CallMachine::callee(self.config.timeouts), None));
        call.samples.ended = true;
        // The page's reason, unless the call had already ended by our
        // bound (then the page hung up because we told it to).
        call.machine
            .handle(CallInput::EndedBy(page_end.clone()), Instant::now());
        let end = match call.machine.state() {
            CallState::Ended(end) => end.clone(),
            _ => page_end,
        };
        let source = call.remote_source;
        let (clock, epoch) = (self.clock, self.config.epoch);
        let since_epoch = |unix_ms: f64| {
            clock
                .instant(unix_ms)
                .saturating_duration_since(epoch)
                .as_secs_f64()
                * 1e3
        };
        let mut report = call_report(
            remote,
            call.machine.role(),
            end,
            source,
            stats.as_ref(),
            &call.samples,
            &since_epoch,
        );
        report.data = stats
            .as_ref()
            .and_then(|s| s.data.as_ref())
            .map(|data| data_verdict(data, source, self.config.index, &since_epoch));
        report
    }
}

//! Faults the peer emulates on itself: a crash, vanishing from the
//! network, moving to another address, restarting ICE. What they do to
//! the peer's link (silence, a new address) its owner, the runner, has
//! done at the fault's moment; the peer does what its process would.

use super::signal::negotiation;
use super::*;

impl Peer {
    /// The process dies: the OS closes the signaling connection without a
    /// close frame, and nobody is told anything (its link went silent).
    pub(super) async fn crash(&mut self, mut client: SignalingClient) {
        self.offline = true;
        self.emit(PeerEventKind::Crashed);
        let remotes: Vec<PeerId> = self.calls.keys().copied().collect();
        for remote in remotes {
            self.drive(&mut client, remote, Instant::now(), CallInput::Abandoned)
                .await;
        }
        client.abandon();
        self.emit(PeerEventKind::Closed);
    }

    /// The network disappears (its link went silent); the peer lives on,
    /// unaware, and reads and writes no more signaling.
    pub(super) fn vanish(&mut self) {
        match &self.config.connection.link {
            Some(_) => {
                self.offline = true;
                self.emit(PeerEventKind::Vanished);
            }
            None => self.error(
                None,
                PeerError::NotEmulated {
                    command: "vanish".into(),
                },
            ),
        }
    }

    /// The peer's address has changed (its link has the new one); with
    /// `restart`, it restarts ICE itself (otherwise the other side is
    /// expected to).
    pub(super) async fn move_to(
        &mut self,
        client: &mut SignalingClient,
        to: std::net::IpAddr,
        restart: bool,
    ) {
        if self.config.connection.link.is_none() {
            return self.error(
                None,
                PeerError::NotEmulated {
                    command: "move".into(),
                },
            );
        }
        self.emit(PeerEventKind::Moved { to });
        if restart {
            let remotes: Vec<PeerId> = self.calls.keys().copied().collect();
            for remote in remotes {
                self.restart_ice(client, remote).await;
            }
        }
    }

    /// Offers an ICE restart on the call with `remote`; the answer comes
    /// back like any other.
    pub(super) async fn restart_ice(&mut self, client: &mut SignalingClient, remote: PeerId) {
        let Some(call) = self.calls.get(&remote) else {
            return self.error(
                Some(remote),
                PeerError::NoCall {
                    command: "ICE restart".into(),
                },
            );
        };
        let options = RTCOfferOptions { ice_restart: true };
        let offer = async {
            let offer = call.connection.pc.create_offer(Some(options)).await?;
            call.connection
                .pc
                .set_local_description(offer.clone())
                .await?;
            Ok::<_, webrtc::error::Error>(offer)
        }
        .await;
        match offer {
            Ok(offer) => match client
                .send(&Signal::Offer {
                    to: remote,
                    sdp: self.config.misbehave.outgoing_sdp(offer.sdp),
                })
                .await
            {
                Ok(()) => self.emit(PeerEventKind::IceRestartSent { remote }),
                Err(error) => self.error(
                    Some(remote),
                    negotiation("sending the restart offer", error),
                ),
            },
            Err(error) => self.error(
                Some(remote),
                negotiation("creating the restart offer", error),
            ),
        }
    }
}

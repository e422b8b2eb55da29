//! The peers' side of signaling (DESIGN §3): typed frames and the seam the
//! peer task talks through. Below it, one client per protocol:
//!
//! - `client`: the tutorial's WebSocket protocol, against our server and
//!   the tutorial's original one (no stamping of answers and candidates,
//!   no errors, no `peerLeft`);
//! - `janus`: a Janus VideoRoom, where publishing is a call with the room
//!   and each subscription a call with its publisher;
//! - `whip`: WHIP and WHEP over HTTP, where publishing is a call with the
//!   server and viewing one with the publisher, as in a room.
//!
//! All hand over the same `Incoming` frames and take the same `Outgoing`
//! ones, so nothing above the seam knows which server it talks to.

mod client;
mod janus;
mod message;
mod whip;

use callprobe_server::protocol::PeerId;

pub use client::{ClientConfig, Protocol};
pub(crate) use client::{Received, SignalingError};
pub use janus::api::room_remote;
pub use janus::room::{RoomError, RoomSpec, create_room, destroy_room};
pub(crate) use message::{CandidateInit, Incoming, Outgoing};
pub use whip::WhipEndpoints;

use client::TutorialClient;
use janus::JanusClient;
use whip::WhipClient;

/// A peer's signaling connection, whichever protocol it speaks.
#[derive(Debug)]
pub(crate) enum SignalingClient {
    /// Boxed: its socket is ~1.5 KB, the Janus client's a few channels.
    Tutorial(Box<TutorialClient>),
    Janus(JanusClient),
    Whip(WhipClient),
}

impl SignalingClient {
    /// Connects to `url` in `config.protocol`; `display` names the peer to
    /// servers that show names.
    pub(crate) async fn connect(
        url: &str,
        config: ClientConfig,
        display: &str,
    ) -> Result<Self, SignalingError> {
        Ok(match config.protocol {
            Protocol::Tutorial => {
                SignalingClient::Tutorial(Box::new(TutorialClient::connect(url, config).await?))
            }
            Protocol::JanusVideoRoom { room } => SignalingClient::Janus(
                JanusClient::connect(url, config, room, display.to_owned()).await?,
            ),
            Protocol::Whip(ref endpoints) => {
                SignalingClient::Whip(WhipClient::connect(&config, endpoints.clone())?)
            }
        })
    }

    /// Whether a viewer makes the offer (WHEP) rather than answering the
    /// server's (a Janus subscription).
    pub(crate) fn viewer_offers(&self) -> bool {
        matches!(self, SignalingClient::Whip(_))
    }

    /// Says hello; the id others reach us by.
    pub(crate) async fn start(&mut self) -> Result<PeerId, SignalingError> {
        match self {
            SignalingClient::Tutorial(client) => client.start().await,
            SignalingClient::Janus(client) => client.start().await,
            SignalingClient::Whip(client) => Ok(client.start()),
        }
    }

    pub(crate) async fn send(&mut self, message: &Outgoing) -> Result<(), SignalingError> {
        match self {
            SignalingClient::Tutorial(client) => client.send(message).await,
            SignalingClient::Janus(client) => client.send(message),
            SignalingClient::Whip(client) => client.send(message),
        }
    }

    /// The next frame, or `None` once the server has closed. Cancel-safe.
    pub(crate) async fn next(&mut self) -> Result<Option<Received>, SignalingError> {
        match self {
            SignalingClient::Tutorial(client) => client.next().await,
            SignalingClient::Janus(client) => client.next().await,
            SignalingClient::Whip(client) => client.next().await,
        }
    }

    /// Lets go the way a dying process does: no goodbye.
    pub(crate) fn abandon(self) {
        match self {
            SignalingClient::Tutorial(client) => client.abandon(),
            SignalingClient::Janus(client) => client.abandon(),
            SignalingClient::Whip(client) => client.abandon(),
        }
    }

    /// Says goodbye and closes, bounded.
    pub(crate) async fn close(self) {
        match self {
            SignalingClient::Tutorial(client) => client.close().await,
            SignalingClient::Janus(client) => client.close().await,
            SignalingClient::Whip(client) => client.close().await,
        }
    }
}

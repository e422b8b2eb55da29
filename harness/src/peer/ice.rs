//! The STUN and TURN servers a connection may use, and which candidates
//! (`iceTransportPolicy`), as the library's configuration takes them.

use webrtc::peer_connection::{
    RTCConfiguration, RTCConfigurationBuilder, RTCIceServer, RTCIceTransportPolicy,
};

/// A STUN or TURN server: its URLs (`turn:127.0.0.1:3478?transport=udp`)
/// and, for TURN, the long-term credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

/// Which candidates a connection may use (`iceTransportPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IcePolicy {
    /// Host, reflexive and relayed candidates.
    #[default]
    All,
    /// Relayed candidates only: every packet goes through the TURN server.
    Relay,
}

/// The library's configuration for these servers and this policy.
pub(crate) fn rtc_configuration(servers: &[IceServer], policy: IcePolicy) -> RTCConfiguration {
    RTCConfigurationBuilder::new()
        .with_ice_servers(
            servers
                .iter()
                .map(|server| RTCIceServer {
                    urls: server.urls.clone(),
                    username: server.username.clone(),
                    credential: server.credential.clone(),
                })
                .collect(),
        )
        .with_ice_transport_policy(match policy {
            IcePolicy::All => RTCIceTransportPolicy::All,
            IcePolicy::Relay => RTCIceTransportPolicy::Relay,
        })
        .build()
}

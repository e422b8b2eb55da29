//! The STUN and TURN servers a connection may use, and which candidates
//! (`iceTransportPolicy`), as the library's configuration takes them.

use std::time::Instant;

use rtc::peer_connection::transport::RTCIceCandidateType;
use rtc::statistics::stats::ice_candidate::RTCIceCandidateStats;
use serde::{Deserialize, Serialize};
use webrtc::peer_connection::{
    PeerConnection, RTCConfiguration, RTCConfigurationBuilder, RTCIceServer, RTCIceTransportPolicy,
    RTCStatsReportEntry, StatsSelector,
};

/// A STUN or TURN server: its URLs (`turn:127.0.0.1:3478?transport=udp`)
/// and, for TURN, the long-term credentials.
/// Its `Debug` leaves the credential out: scenarios and runs are logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("credential", &"(not shown)")
            .finish()
    }
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

/// A candidate's type, as ICE and `getStats` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CandidateType {
    Host,
    /// Server-reflexive: our address as a STUN server saw it.
    Srflx,
    /// Peer-reflexive: an address learnt from the other side's checks.
    Prflx,
    /// An address on a TURN server, which relays for us.
    Relay,
}

impl CandidateType {
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateType::Host => "host",
            CandidateType::Srflx => "srflx",
            CandidateType::Prflx => "prflx",
            CandidateType::Relay => "relay",
        }
    }

    /// The type an SDP `candidate:` line gives (`... typ relay raddr ...`).
    pub(crate) fn of_candidate_line(line: &str) -> Option<CandidateType> {
        let mut words = line.split_ascii_whitespace();
        words.find(|word| *word == "typ")?;
        Self::from_name(words.next()?)
    }

    pub(crate) fn from_name(name: &str) -> Option<CandidateType> {
        Some(match name {
            "host" => CandidateType::Host,
            "srflx" => CandidateType::Srflx,
            "prflx" => CandidateType::Prflx,
            "relay" => CandidateType::Relay,
            _ => return None,
        })
    }
}

/// The candidate pair ICE selected for a call, as one side sees it: what
/// its media goes over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidatePair {
    pub local: CandidateType,
    pub remote: CandidateType,
    /// `udp` or `tcp`, between the two candidates.
    pub protocol: String,
}

impl CandidatePair {
    /// Either end is a TURN server's address.
    pub fn is_relayed(&self) -> bool {
        self.local == CandidateType::Relay || self.remote == CandidateType::Relay
    }
}

impl std::fmt::Display for CandidatePair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{} {}",
            self.local.as_str(),
            self.remote.as_str(),
            self.protocol
        )
    }
}

/// The pair the connection's transport has selected, from its statistics
/// (`RTCTransportStats.selectedCandidatePairId`); `None` before ICE has one.
pub(crate) async fn selected_pair(pc: &dyn PeerConnection) -> Option<CandidatePair> {
    let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
    let pair_id = &report.transport()?.selected_candidate_pair_id;
    let pair = report.candidate_pairs().find(|p| &p.stats.id == pair_id)?;
    // The library files candidates as `RTCLocalIceCandidate_<id>` and
    // `RTCRemoteIceCandidate_<id>` but names them in the pair by `<id>`
    // alone; either spelling is taken.
    let candidate = |prefix: &str, id: &str| {
        let entry = report
            .get(id)
            .or_else(|| report.get(&format!("{prefix}{id}")))?;
        match entry {
            RTCStatsReportEntry::LocalCandidate(c) | RTCStatsReportEntry::RemoteCandidate(c) => {
                Some(c)
            }
            _ => None,
        }
    };
    let local = candidate("RTCLocalIceCandidate_", &pair.local_candidate_id)?;
    let remote = candidate("RTCRemoteIceCandidate_", &pair.remote_candidate_id);
    let kind = |c: &RTCIceCandidateStats| match c.candidate_type {
        RTCIceCandidateType::Host => Some(CandidateType::Host),
        RTCIceCandidateType::Srflx => Some(CandidateType::Srflx),
        RTCIceCandidateType::Prflx => Some(CandidateType::Prflx),
        RTCIceCandidateType::Relay => Some(CandidateType::Relay),
        _ => None,
    };
    Some(CandidatePair {
        local: kind(local)?,
        // Only signaled candidates are filed: one the agent learnt from the
        // other side's checks is peer-reflexive by definition (RFC 8445
        // §7.3.1.3).
        remote: match remote {
            Some(remote) => kind(remote)?,
            None => CandidateType::Prflx,
        },
        protocol: local.protocol.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_candidate_line_says_its_type() {
        let relay =
            "candidate:1 1 udp 16777215 127.0.0.1 50000 typ relay raddr 127.0.0.1 rport 40000";
        assert_eq!(
            CandidateType::of_candidate_line(relay),
            Some(CandidateType::Relay)
        );
        let host = "candidate:2 1 udp 2130706431 127.0.0.1 40000 typ host";
        assert_eq!(
            CandidateType::of_candidate_line(host),
            Some(CandidateType::Host)
        );
        assert_eq!(CandidateType::of_candidate_line("candidate:3 1 udp"), None);
        assert_eq!(CandidateType::of_candidate_line("x typ nonsense"), None);
    }

    #[test]
    fn a_pair_reads_as_its_two_types_and_transport() {
        let pair = CandidatePair {
            local: CandidateType::Relay,
            remote: CandidateType::Host,
            protocol: "udp".into(),
        };
        assert_eq!(pair.to_string(), "relay-host udp");
        assert!(pair.is_relayed());
        let json = serde_json::to_string(&pair).unwrap();
        assert_eq!(
            json,
            r#"{"local":"relay","remote":"host","protocol":"udp"}"#
        );
    }
}

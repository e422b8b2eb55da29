//! One WebRTC peer connection as a synthetic peer uses it: its video
//! codecs (in its order of preference) and Opus,
//! the default interceptors plus the keyframe-request marker, the timers
//! that decide setup latency, and an event handler that only forwards.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Slot;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MediaEngine};
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::mpsc;
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceCandidateInit,
    RTCIceConnectionState, RTCIceGatheringState, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    SettingEngineBuilder,
};
use webrtc::rtp_transceiver::RtpSender;

use super::ice::{IcePolicy, IceServer, rtc_configuration};
use super::interceptors::interceptors;
use super::keyframe::{KEYFRAME_REQUEST_SLOT, KeyframeRequestMarker};
use crate::media::codec::VideoCodec;
use crate::net::{BindAddress, Link, PeerRuntime};
use crate::signaling::CandidateInit;

pub(crate) const PAYLOAD_TYPE_OPUS: u8 = 111;

/// Timers and addresses of a connection.
///
/// The defaults are for fast setup: ICE checks every 1 ms instead of 200 ms
/// and no wait before accepting peer-reflexive candidates. Measured over 50
/// calls through our server (release, 2 cores), the first verified frame
/// arrives at p50 10 ms with a 1 ms interval, 10-11 ms at 2 ms, 12-14 ms at
/// 5 ms, and ~410 ms with the library's defaults. The interval costs CPU
/// only while ICE is checking: a connected agent ticks at the keepalive
/// interval instead.
#[derive(Clone, Debug)]
pub struct ConnectionSettings {
    /// Local address the connection's UDP socket binds (port chosen by the OS)
    /// when it is not on a link.
    pub bind_ip: IpAddr,
    /// The in-process network link its sockets go through, if any: then it
    /// binds the link's address, whatever that is at the time.
    pub link: Option<Arc<Link>>,
    /// Bind new sockets (at the link's address of the moment) when ICE
    /// restarts, as a device that changed network does.
    pub rebind_on_ice_restart: bool,
    pub ice_check_interval: Duration,
    /// How long a candidate pair is checked before it is given up on; the
    /// number of binding requests follows from it and the interval, so a
    /// short interval does not shrink the window (7 requests at 1 ms would
    /// fail a pair whose answer is 8 ms late under load).
    pub ice_checking_window: Duration,
    pub prflx_min_wait: Duration,
    /// How long a working relayed pair waits for a better one before it
    /// is taken. The library's 2 s held every relay-only call's ICE for
    /// 2 s (connected at 2012 ms, against 8 ms with none).
    pub relay_min_wait: Duration,
    /// ICE `disconnected` after this long without traffic.
    pub ice_disconnected_timeout: Duration,
    /// ICE `failed` this long after `disconnected`.
    pub ice_failed_timeout: Duration,
    pub ice_keepalive_interval: Duration,
    /// STUN and TURN servers, as browsers take them.
    pub ice_servers: Vec<IceServer>,
    /// Which candidates the connection may use.
    pub ice_policy: IcePolicy,
    /// Answer as the DTLS server (`a=setup:passive`), so the offerer
    /// starts the handshake once its ICE is up. Subscriptions to a media
    /// server do: as client, our first ClientHello often reached Janus
    /// before its ICE had completed and was dropped, and the library
    /// resends only after 1 s (8 of 18 subscriptions took ~1.08 s to
    /// connect, against 68-116 ms as server; UPSTREAM.md).
    pub answer_as_dtls_server: bool,
}

impl ConnectionSettings {
    /// Binding requests per candidate pair that fill the checking window.
    pub(crate) fn binding_requests(&self) -> u16 {
        let interval = self.ice_check_interval.max(Duration::from_micros(100));
        let requests = self.ice_checking_window.as_secs_f64() / interval.as_secs_f64();
        requests.ceil().clamp(1.0, f64::from(u16::MAX)) as u16
    }
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            link: None,
            rebind_on_ice_restart: false,
            ice_check_interval: Duration::from_millis(1),
            // The library's own window: 7 requests at its 200 ms default.
            ice_checking_window: Duration::from_millis(1400),
            prflx_min_wait: Duration::ZERO,
            relay_min_wait: Duration::ZERO,
            // What browsers and the library default to.
            ice_disconnected_timeout: Duration::from_secs(5),
            ice_failed_timeout: Duration::from_secs(25),
            ice_keepalive_interval: Duration::from_secs(2),
            ice_servers: Vec::new(),
            ice_policy: IcePolicy::All,
            answer_as_dtls_server: false,
        }
    }
}

/// What a connection reports, as it happens.
#[derive(Clone)]
pub(crate) enum ConnectionEvent {
    LocalCandidate(CandidateInit),
    IceState(RTCIceConnectionState),
    State(RTCPeerConnectionState),
    /// Candidate gathering is over (each ICE restart gathers again).
    GatheringComplete,
    /// Why this relay-only connection has no relayed candidate: what our
    /// own allocation from its TURN servers got (`turn_probe`).
    NoRelay(String),
    /// The other side opened a data channel.
    DataChannel(Arc<dyn DataChannel>),
    Track(Arc<dyn TrackRemote>),
}

impl std::fmt::Debug for ConnectionEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionEvent::LocalCandidate(c) => write!(f, "LocalCandidate({})", c.candidate),
            ConnectionEvent::IceState(s) => write!(f, "IceState({s})"),
            ConnectionEvent::State(s) => write!(f, "State({s})"),
            ConnectionEvent::GatheringComplete => f.write_str("GatheringComplete"),
            ConnectionEvent::NoRelay(why) => write!(f, "NoRelay({why})"),
            ConnectionEvent::DataChannel(_) => f.write_str("DataChannel"),
            ConnectionEvent::Track(_) => f.write_str("Track"),
        }
    }
}

impl From<CandidateInit> for RTCIceCandidateInit {
    fn from(candidate: CandidateInit) -> Self {
        RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_mline_index,
            username_fragment: candidate.username_fragment,
            ..Default::default()
        }
    }
}

/// Events are tagged with the connection they come from (`K`: the remote
/// peer, for a peer with several calls) and the time they happened.
pub(crate) type EventSender<K> = mpsc::UnboundedSender<(K, Instant, ConnectionEvent)>;

struct Forwarder<K> {
    key: K,
    events: EventSender<K>,
}

impl<K: Clone + Send + Sync + 'static> Forwarder<K> {
    fn forward(&self, event: ConnectionEvent) {
        // The peer task may already have let go of this call; nothing to do.
        let _ = self.events.send((self.key.clone(), Instant::now(), event));
    }
}

#[async_trait::async_trait]
impl<K: Clone + Send + Sync + 'static> PeerConnectionEventHandler for Forwarder<K> {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => self.forward(ConnectionEvent::LocalCandidate(CandidateInit {
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_mline_index: init.sdp_mline_index,
                username_fragment: init.username_fragment,
            })),
            Err(error) => tracing::warn!(%error, "local candidate cannot be serialised"),
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        self.forward(ConnectionEvent::IceState(state));
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.forward(ConnectionEvent::State(state));
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.forward(ConnectionEvent::GatheringComplete);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.forward(ConnectionEvent::Track(track));
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        self.forward(ConnectionEvent::DataChannel(channel));
    }
}

/// A built connection with its two outgoing tracks. Always `pc.close()` it:
/// dropping it leaves its driver task running.
pub(crate) struct Connection {
    pub pc: Arc<dyn PeerConnection>,
    /// Written RTP by our own packetizer, for whichever codec was
    /// negotiated (a sample track's packetizer is fixed when it is made).
    pub video: Arc<TrackLocalStaticRTP>,
    /// The codec the library knows the video track by: the one codec of a
    /// connection that takes one; with several, none until negotiation
    /// picks one (a track with a codec offers only that codec).
    pub video_codec: Option<VideoCodec>,
    pub audio: Arc<TrackLocalStaticSample>,
    pub video_ssrc: u32,
    pub audio_ssrc: u32,
    pub video_sender: Arc<dyn RtpSender>,
    pub audio_sender: Arc<dyn RtpSender>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("video_codec", &self.video_codec)
            .field("video_ssrc", &self.video_ssrc)
            .field("audio_ssrc", &self.audio_ssrc)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ConnectionError {
    #[error("building a peer connection: {0}")]
    Build(#[source] webrtc::error::Error),
    #[error("registering codecs: {0}")]
    Codecs(#[source] rtc::shared::error::Error),
    #[error("a connection needs at least one video codec")]
    NoVideoCodec,
}

impl Connection {
    /// Switches the video track to `codec` (negotiated, and not the one
    /// the track was made with) before media starts, so the library binds
    /// its interceptors (NACK, reports) to the codec actually sent.
    pub(crate) async fn switch_video_codec(
        &mut self,
        codec: VideoCodec,
    ) -> Result<(), ConnectionError> {
        if Some(codec) == self.video_codec {
            return Ok(());
        }
        let old = self.video.track().await;
        let codings = old
            .codings()
            .iter()
            .cloned()
            .map(|coding| RTCRtpEncodingParameters {
                codec: codec.rtp_codec(),
                ..coding
            })
            .collect();
        let track = MediaStreamTrack::new(
            old.stream_id().clone(),
            old.track_id().clone(),
            old.label().clone(),
            old.kind(),
            codings,
        );
        // Only the library's record of the track changes: our written
        // track stays bound, and its SSRC and id are the same.
        self.video_sender
            .replace_track(Arc::new(TrackLocalStaticRTP::new(track)))
            .await
            .map_err(ConnectionError::Build)?;
        self.video_codec = Some(codec);
        Ok(())
    }
}

pub(crate) fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// Builds a connection bound to `settings.bind_ip` with a video and an
/// audio track added, offering `codecs` for video in that order; its
/// events go to `events` tagged with `key`.
pub(crate) async fn build_connection<K: Clone + Send + Sync + 'static>(
    settings: &ConnectionSettings,
    codecs: &[VideoCodec],
    name: &str,
    key: K,
    events: EventSender<K>,
) -> Result<Connection, ConnectionError> {
    if codecs.is_empty() {
        return Err(ConnectionError::NoVideoCodec);
    }
    // One codec: the track names it. Several: the track names none, so the
    // offer lists them all, in our order, and negotiation names one.
    let track_codec = match codecs {
        [only] => Some(*only),
        _ => None,
    };
    let mut media = MediaEngine::default();
    let video = codecs
        .iter()
        .map(|codec| (codec.rtp_codec(), codec.payload_type(), RtpCodecKind::Video));
    let audio = (opus_codec(), PAYLOAD_TYPE_OPUS, RtpCodecKind::Audio);
    for (codec, payload_type, kind) in video.chain([audio]) {
        let parameters = RTCRtpCodecParameters {
            rtp_codec: codec,
            payload_type,
        };
        media
            .register_codec(parameters, kind)
            .map_err(ConnectionError::Codecs)?;
    }
    let registry = interceptors(&mut media)
        .map_err(ConnectionError::Codecs)?
        .with(
            Slot::Custom(KEYFRAME_REQUEST_SLOT),
            KeyframeRequestMarker::default(),
        );
    let setting_engine = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_ice_connection_attempts(
            Some(settings.ice_check_interval),
            Some(settings.binding_requests()),
        )
        .with_prflx_acceptance_min_wait(Some(settings.prflx_min_wait))
        .with_relay_acceptance_min_wait(Some(settings.relay_min_wait))
        .with_ice_timeouts(
            Some(settings.ice_disconnected_timeout),
            Some(settings.ice_failed_timeout),
            Some(settings.ice_keepalive_interval),
        )
        .with_discard_local_candidates_during_ice_restart(settings.rebind_on_ice_restart)
        .with_answering_dtls_role(if settings.answer_as_dtls_server {
            RTCDtlsRole::Server
        } else {
            RTCDtlsRole::Client
        })
        .build();
    let handler = Arc::new(Forwarder { key, events });
    let mut builder = PeerConnectionBuilder::new()
        .with_configuration(rtc_configuration(
            &settings.ice_servers,
            settings.ice_policy,
        ))
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(setting_engine)
        .with_handler(handler);
    // Our runtime on a link or not: its sockets keep SRTP that comes right
    // behind the last DTLS flight (net/handshake.rs).
    builder = builder.with_runtime(Arc::new(PeerRuntime::new(settings.link.clone())));
    builder = match &settings.link {
        Some(link) => builder.with_udp_addrs(vec![BindAddress::Link(Arc::clone(link))]),
        None => builder.with_udp_addrs(vec![BindAddress::Fixed(std::net::SocketAddr::new(
            settings.bind_ip,
            0,
        ))]),
    };
    // The builder's future is ~20 KB: boxed, so callers' futures stay small.
    let pc = Box::pin(builder.build())
        .await
        .map_err(ConnectionError::Build)?;
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);

    let video_ssrc = rand::random::<u32>();
    let audio_ssrc = video_ssrc.wrapping_add(1);
    let track = |kind: RtpCodecKind, codec: RTCRtpCodec, ssrc: u32| {
        MediaStreamTrack::new(
            format!("{name}-stream"),
            format!("{name}-{kind}"),
            format!("{name} {kind}"),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        )
    };
    let video = Arc::new(TrackLocalStaticRTP::new(track(
        RtpCodecKind::Video,
        track_codec.map(VideoCodec::rtp_codec).unwrap_or_default(),
        video_ssrc,
    )));
    let audio = TrackLocalStaticSample::new(
        Instant::now(),
        track(RtpCodecKind::Audio, opus_codec(), audio_ssrc),
    )
    .map(Arc::new)
    .map_err(ConnectionError::Build)?;
    let video_sender = pc
        .add_track(Arc::clone(&video) as Arc<dyn TrackLocal>)
        .await
        .map_err(ConnectionError::Build)?;
    let audio_sender = pc
        .add_track(Arc::clone(&audio) as Arc<dyn TrackLocal>)
        .await
        .map_err(ConnectionError::Build)?;
    Ok(Connection {
        pc,
        video,
        video_codec: track_codec,
        audio,
        video_ssrc,
        audio_ssrc,
        video_sender,
        audio_sender,
    })
}

/// Offer from `a`, answer from `b`, applied on both sides (tests wire two
/// connections directly, without a signaling server).
#[cfg(test)]
pub(crate) async fn negotiate(a: &Connection, b: &Connection) {
    let offer = a.pc.create_offer(None).await.unwrap();
    a.pc.set_local_description(offer.clone()).await.unwrap();
    b.pc.set_remote_description(offer).await.unwrap();
    let answer = b.pc.create_answer(None).await.unwrap();
    b.pc.set_local_description(answer.clone()).await.unwrap();
    a.pc.set_remote_description(answer).await.unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_check_interval_keeps_the_checking_window() {
        let settings = ConnectionSettings::default();
        assert_eq!(settings.binding_requests(), 1400);
        let library_default = ConnectionSettings {
            ice_check_interval: Duration::from_millis(200),
            ..settings
        };
        assert_eq!(library_default.binding_requests(), 7);
    }

    #[tokio::test]
    async fn two_connections_on_loopback_connect() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let settings = ConnectionSettings::default();
        let a = build_connection(&settings, &[VideoCodec::H264], "a", 'a', tx.clone())
            .await
            .unwrap();
        let b = build_connection(&settings, &[VideoCodec::H264], "b", 'b', tx)
            .await
            .unwrap();
        let started = Instant::now();
        negotiate(&a, &b).await;
        connect_pair(&a, &b, &mut rx).await;
        tracing::debug!(elapsed = ?started.elapsed(), "connected");
        a.pc.close().await.unwrap();
        b.pc.close().await.unwrap();
    }

    /// Connects `a` and `b` (already negotiated), forwarding candidates,
    /// until both are connected.
    async fn connect_pair(
        a: &Connection,
        b: &Connection,
        rx: &mut mpsc::UnboundedReceiver<(char, Instant, ConnectionEvent)>,
    ) {
        let mut connected = std::collections::HashSet::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while connected.len() < 2 {
            let (key, _, event) = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .expect("both connect within 10 s")
                .unwrap();
            let other = if key == 'a' { &b.pc } else { &a.pc };
            match event {
                ConnectionEvent::LocalCandidate(c) => {
                    other.add_ice_candidate(c.into()).await.unwrap()
                }
                ConnectionEvent::State(RTCPeerConnectionState::Connected) => {
                    connected.insert(key);
                }
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn on_links_they_connect_and_a_silenced_peer_is_seen_disconnected() {
        let network = crate::net::Network::new(1);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let on = |link| ConnectionSettings {
            link: Some(link),
            ice_disconnected_timeout: Duration::from_millis(300),
            ice_failed_timeout: Duration::from_millis(300),
            ice_keepalive_interval: Duration::from_millis(50),
            ..ConnectionSettings::default()
        };
        let (link_a, link_b) = (
            network.attach(0, IpAddr::from([127, 0, 0, 1])),
            network.attach(1, IpAddr::from([127, 0, 0, 2])),
        );
        let a = build_connection(
            &on(Arc::clone(link_a.link())),
            &[VideoCodec::H264],
            "a",
            'a',
            tx.clone(),
        )
        .await
        .unwrap();
        let b = build_connection(
            &on(Arc::clone(link_b.link())),
            &[VideoCodec::H264],
            "b",
            'b',
            tx,
        )
        .await
        .unwrap();
        negotiate(&a, &b).await;
        connect_pair(&a, &b, &mut rx).await;
        use std::sync::atomic::Ordering::Relaxed;
        assert!(
            link_b.link().counters.received.load(Relaxed) > 0,
            "b's socket is the link's"
        );

        let silenced = Instant::now();
        link_b.silence();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let disconnected_after = loop {
            let (key, at, event) = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .expect("a sees b disconnected within 5 s")
                .unwrap();
            if key == 'a'
                && matches!(
                    event,
                    ConnectionEvent::IceState(RTCIceConnectionState::Disconnected)
                )
            {
                break at - silenced;
            }
        };
        assert!(
            disconnected_after >= Duration::from_millis(250),
            "{disconnected_after:?}"
        );
        a.pc.close().await.unwrap();
        b.pc.close().await.unwrap();
    }
}

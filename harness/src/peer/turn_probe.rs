//! Asking a TURN server for an allocation ourselves, to say why a call got
//! no relayed candidate. The library only logs a failed allocation (its
//! TURN relayer has no `icecandidateerror`), so when a relay-only call
//! gathers nothing, the peer repeats the allocation with the same URL and
//! credentials and reports the server's own answer (`401 Unauthorized`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::ice::url::{ProtoType, SchemeType, Url};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::turn::client::{Client, ClientConfig, Event};
use tokio::net::UdpSocket;

use super::ice::IceServer;

/// Why a TURN server gave no allocation.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TurnProbeError {
    #[error("{url}: the server refused the allocation: {reason}")]
    Refused { url: String, reason: String },
    #[error("{url}: no answer within {}", humantime::format_duration(*.after))]
    NoAnswer { url: String, after: Duration },
    #[error("{url}: {detail}")]
    Unusable { url: String, detail: String },
}

/// The allocation the server granted, and how long it took.
#[derive(Debug)]
pub(crate) struct Allocation {
    pub(crate) relayed: SocketAddr,
    pub(crate) took: Duration,
}

/// What each TURN URL of `servers` answers an allocation from `bind_ip`,
/// in one line per URL, all asked at once within `bound`.
pub(crate) async fn diagnose(servers: &[IceServer], bind_ip: IpAddr, bound: Duration) -> String {
    let probes = servers.iter().flat_map(|server| {
        server
            .urls
            .iter()
            .filter(|url| url.starts_with("turn:"))
            .map(move |url| async move {
                match allocate(url, server, bind_ip, bound).await {
                    Ok(allocation) => format!(
                        "{url}: allocates for us ({} in {} ms), yet the connection gathered no relayed candidate",
                        allocation.relayed,
                        allocation.took.as_millis()
                    ),
                    Err(error) => error.to_string(),
                }
            })
    });
    let answers = futures_util::future::join_all(probes).await;
    if answers.is_empty() {
        return "no TURN server is configured (policy relay needs one)".to_owned();
    }
    answers.join("; ")
}

/// Asks the TURN server at `url` for a UDP allocation with `server`'s
/// credentials, and gives it back at once.
pub(crate) async fn allocate(
    url: &str,
    server: &IceServer,
    bind_ip: IpAddr,
    bound: Duration,
) -> Result<Allocation, TurnProbeError> {
    let unusable = |detail: String| TurnProbeError::Unusable {
        url: url.to_owned(),
        detail,
    };
    let parsed = Url::parse_url(url).map_err(|e| unusable(format!("not a TURN URL: {e}")))?;
    if parsed.scheme != SchemeType::Turn || parsed.proto != ProtoType::Udp {
        return Err(unusable("only turn: over UDP is supported".into()));
    }
    let server_addr = tokio::net::lookup_host((parsed.host.as_str(), parsed.port))
        .await
        .map_err(|e| unusable(format!("cannot resolve {}: {e}", parsed.host)))?
        .find(|addr| addr.is_ipv4() == bind_ip.is_ipv4())
        .ok_or_else(|| unusable(format!("{} has no address of our family", parsed.host)))?;
    let socket = UdpSocket::bind((bind_ip, 0))
        .await
        .map_err(|e| unusable(format!("binding a socket: {e}")))?;
    let local_addr = socket
        .local_addr()
        .map_err(|e| unusable(format!("reading our address: {e}")))?;
    let crypto = rtc::crypto::default_provider().map_err(|e| unusable(e.to_string()))?;
    let mut client = Client::new(
        ClientConfig {
            turn_serv_addr: server_addr.to_string(),
            local_addr,
            transport_protocol: TransportProtocol::UDP,
            username: server.username.clone(),
            password: server.credential.clone(),
            software: "callprobe".into(),
            ..ClientConfig::default()
        },
        Arc::clone(&crypto),
    )
    .map_err(|e| unusable(e.to_string()))?;
    let started = Instant::now();
    let tid = client
        .allocate(started)
        .map_err(|e| unusable(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + bound;
    let mut buffer = vec![0u8; 2048];
    loop {
        flush(&mut client, &socket).await;
        while let Some(event) = client.poll_event() {
            match event {
                Event::AllocateResponse(id, relayed) if id == tid => {
                    let took = started.elapsed();
                    // Give it back: a Refresh with lifetime 0, best effort.
                    if let Ok(mut relay) = client.relay(relayed) {
                        let _ = relay.close(Instant::now());
                    }
                    flush(&mut client, &socket).await;
                    return Ok(Allocation { relayed, took });
                }
                Event::AllocateError(id, error) if id == tid => {
                    return Err(TurnProbeError::Refused {
                        url: url.to_owned(),
                        reason: error.to_string(),
                    });
                }
                Event::TransactionTimeout(_) => {
                    return Err(TurnProbeError::NoAnswer {
                        url: url.to_owned(),
                        after: started.elapsed(),
                    });
                }
                _ => {}
            }
        }
        let retransmit = client
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or(deadline)
            .min(deadline);
        tokio::select! {
            received = socket.recv_from(&mut buffer) => {
                let Ok((length, from)) = received else { continue };
                let message = TaggedBytesMut {
                    now: Instant::now(),
                    transport: TransportContext {
                        local_addr,
                        peer_addr: from,
                        transport_protocol: TransportProtocol::UDP,
                        ecn: None,
                    },
                    message: BytesMut::from(&buffer[..length]),
                };
                let _ = client.handle_read(message);
            }
            () = tokio::time::sleep_until(retransmit) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(TurnProbeError::NoAnswer { url: url.to_owned(), after: bound });
                }
                let _ = client.handle_timeout(Instant::now());
            }
        }
    }
}

/// Sends whatever the client has queued.
async fn flush(client: &mut Client, socket: &UdpSocket) {
    while let Some(datagram) = client.poll_write() {
        if let Err(error) = socket
            .send_to(&datagram.message, datagram.transport.peer_addr)
            .await
        {
            tracing::debug!(%error, "sending to the TURN server");
        }
    }
}

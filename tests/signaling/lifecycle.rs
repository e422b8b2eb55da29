//! Departures, liveness and shutdown.

use std::time::{Duration, Instant};

use callprobe_server::Limits;
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::*;

const PEER_LEFT_BOUND: Duration = Duration::from_millis(100);

#[tokio::test]
async fn peer_left_arrives_within_100_ms_of_a_close() {
    let server = server().await;
    let (mut caller, mut callee) = call(&server.url()).await;
    let callee_id = callee.id.clone();
    let closed_at = Instant::now();
    callee.close().await;
    let left = caller.expect("peerLeft").await;
    let elapsed = closed_at.elapsed();
    assert_eq!(
        left,
        json!({"action": "peerLeft", "data": {"remoteId": callee_id}})
    );
    assert!(elapsed < PEER_LEFT_BOUND, "peerLeft took {elapsed:?}");
}

#[tokio::test]
async fn peer_left_arrives_within_100_ms_when_a_client_drops_its_socket_without_a_close_frame() {
    let server = server().await;
    let (mut caller, callee) = call(&server.url()).await;
    let callee_id = callee.id.clone();
    let dropped_at = Instant::now();
    drop(callee); // the OS closes the TCP connection; no WebSocket close frame
    let left = caller.expect("peerLeft").await;
    let elapsed = dropped_at.elapsed();
    assert_eq!(left["data"]["remoteId"], callee_id.as_str());
    assert!(elapsed < PEER_LEFT_BOUND, "peerLeft took {elapsed:?}");
}

#[tokio::test]
async fn peer_left_goes_only_to_peers_that_had_a_call() {
    let server = server().await;
    let (mut alice, bob) = call(&server.url()).await;
    let mut bystander = Client::started(&server.url()).await;
    drop(bob);
    alice.expect("peerLeft").await;
    // The bystander's next frame is its own reply, not a stray notice.
    assert_eq!(bystander.start().await, bystander.id);
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout_and_its_partner_told() {
    let server = server_with(Limits {
        idle_timeout: Duration::from_millis(400),
        ping_interval: Duration::from_millis(100),
        ..Limits::default()
    })
    .await;
    let (mut alive, mut silent) = call(&server.url()).await;
    // `alive` keeps reading, so it answers the server's pings; `silent`
    // never polls its socket, so it answers nothing, like a vanished host.
    let left = alive.expect("peerLeft").await;
    assert_eq!(left["data"]["remoteId"], silent.id.as_str());
    // More than a whole idle timeout has passed: pings kept `alive` open.
    assert_eq!(alive.start().await, alive.id);
    let (_, close) = silent.expect_close().await;
    assert_eq!(close.code, CloseCode::Away);
    assert_eq!(close.reason.as_str(), "idle timeout");
}

#[tokio::test]
async fn the_server_pings_each_connection() {
    let server = server_with(Limits {
        ping_interval: Duration::from_millis(50),
        ..Limits::default()
    })
    .await;
    let mut client = Client::started(&server.url()).await;
    let ping = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(tokio_tungstenite::tungstenite::Message::Ping(_))) =
                client.ws.next().await
            {
                return;
            }
        }
    })
    .await;
    assert!(ping.is_ok(), "no ping within {WAIT:?}");
}

#[tokio::test]
async fn graceful_shutdown_closes_every_client_with_1001() {
    let server = server().await;
    let url = server.url();
    let (mut a, mut b) = call(&url).await;
    let mut idle = Client::connect(&url).await; // connected, never started
    let shutdown = tokio::spawn(server.shutdown());
    for client in [&mut a, &mut b, &mut idle] {
        let (texts, close) = client.expect_close().await;
        assert_eq!(close.code, CloseCode::Away, "{close:?}");
        assert_eq!(close.reason.as_str(), "server shutting down");
        assert!(texts.is_empty(), "no peerLeft noise on shutdown: {texts:?}");
        // Answer the close so the server's drain completes promptly.
        client.drain_until_closed().await;
    }
    tokio::time::timeout(WAIT, shutdown)
        .await
        .expect("shutdown finishes within the wait")
        .unwrap();
    let refused = tokio_tungstenite::connect_async(&url).await;
    assert!(refused.is_err(), "the port is closed after shutdown");
}

#[tokio::test]
async fn upgrades_over_the_connection_limit_get_503_and_the_others_carry_on() {
    let server = server_with(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let (mut a, mut b) = call(&server.url()).await;
    let refused = tokio_tungstenite::connect_async(server.url()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("connection limit of 2"), "{body}");
        }
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    assert_call_alive(&mut a, &mut b).await;
}

/// A socket that connects and says nothing is dropped after the handshake
/// timeout, on plain and TLS listeners alike.
#[tokio::test]
async fn a_connection_that_never_completes_its_handshake_is_dropped() {
    use tokio::io::AsyncReadExt;

    for tls in [
        callprobe_server::TlsMode::Off,
        callprobe_server::TlsMode::self_signed_localhost(),
    ] {
        let server = callprobe_server::Server::bind(callprobe_server::ServerConfig {
            tls: tls.clone(),
            limits: Limits {
                handshake_timeout: Duration::from_millis(200),
                ..Limits::default()
            },
            ..callprobe_server::ServerConfig::loopback()
        })
        .await
        .unwrap();
        let mut socket = tokio::net::TcpStream::connect(server.local_addr())
            .await
            .unwrap();
        let mut buffer = [0u8; 512];
        let read = tokio::time::timeout(WAIT, socket.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("{tls:?}: still open after {WAIT:?}"));
        // hyper may send a 408 before closing; either way the socket ends.
        match read {
            Ok(0) | Err(_) => {}
            Ok(n) => {
                let text = String::from_utf8_lossy(&buffer[..n]);
                assert!(text.starts_with("HTTP/1.1 408"), "{tls:?}: {text}");
            }
        }
    }
}

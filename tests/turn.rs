//! The TURN server the relay tests stand on: a real coturn on a loopback
//! port, answering STUN once started and gone once killed (the fault a
//! relayed call will be put through).

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use callprobe_testkit::turn_server::TurnServer;

/// Whether `server` answers a STUN binding request within `bound`.
fn answers_stun(server: &TurnServer, bound: Duration) -> bool {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket.set_read_timeout(Some(bound)).unwrap();
    let mut request = [0u8; 20];
    request[0..2].copy_from_slice(&1u16.to_be_bytes());
    request[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    request[8..20].copy_from_slice(b"callprobe-ts");
    socket.send_to(&request, server.address()).unwrap();
    let mut reply = [0u8; 512];
    matches!(socket.recv_from(&mut reply), Ok((len, _)) if len >= 20 && reply[8..20] == request[8..20])
}

#[test]
fn coturn_starts_on_a_loopback_port_answers_stun_and_is_gone_once_killed() {
    let Some(mut server) = TurnServer::start("coturn_starts_on_a_loopback_port") else {
        return;
    };
    assert!(server.address().ip().is_loopback());
    assert!(
        server.url().starts_with("turn:127.0.0.1:"),
        "{}",
        server.url()
    );
    assert!(answers_stun(&server, Duration::from_secs(2)));
    server.kill();
    assert!(!answers_stun(&server, Duration::from_millis(300)));
}

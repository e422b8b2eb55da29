//! The TURN server the relay tests stand on: a real coturn on a loopback
//! port, answering STUN once started and gone once killed (the fault a
//! relayed call will be put through).

use std::time::Duration;

use callprobe_testkit::turn_server::TurnServer;

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
    assert!(server.answers_stun(Duration::from_secs(2)));
    server.kill();
    assert!(!server.answers_stun(Duration::from_millis(300)));
}

//! WHIP and WHEP as the system under test: Meetecho's simple-whip-server
//! and janus-whep-server in front of a real Janus (in a network namespace
//! of the test's own), a synthetic publisher that POSTs its offer, and a
//! viewer that POSTs its own and answers the server's, every forwarded
//! frame verified.

use std::time::Duration;

use callprobe_harness::netns::MEDIA_SERVER_ADDRESS;
use callprobe_harness::peer::{PeerCommand, PeerEventKind};
use callprobe_harness::signaling::{Protocol, RoomSpec, WhipEndpoints, create_room, room_remote};
use callprobe_testkit::janus_server::{Janus, with_janus};
use callprobe_testkit::whip_servers::{WhipServers, available};

use super::harness;

const BOUND: Duration = Duration::from_secs(5);

/// A POST to `endpoint` that is not an offer: the server's status and
/// words say whether the endpoint is published now.
async fn poke(endpoint: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(endpoint)
        .header("content-type", "text/plain")
        .body("not an offer")
        .timeout(BOUND)
        .send()
        .await
        .expect("the WHIP server answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[test]
fn a_whip_publisher_and_a_whep_viewer_verify_media_end_to_end_through_real_servers() {
    let test = "whip_publisher_and_whep_viewer";
    if !available(test) {
        return;
    }
    with_janus(test, |janus: Janus| async move {
        let room = 9725;
        let spec = RoomSpec {
            room,
            publishers: 4,
            video_codec: "h264".into(),
        };
        create_room(&janus.ws_url(), &spec, BOUND)
            .await
            .expect("the room is made");
        let token = "a-bearer-token";
        let ws = janus.ws_url();
        let servers =
            tokio::task::spawn_blocking(move || WhipServers::start(&ws, &[room], Some(token)))
                .await
                .expect("the start does not panic")
                .unwrap_or_else(|error| panic!("{test}: the WHIP servers did not start: {error}"));
        let mut run = harness::TestRun::new(None, janus.ws_url()).await;
        run.client.protocol = Protocol::Whip(WhipEndpoints {
            whip: servers.whip_endpoint(),
            whep: servers.whep_endpoint(),
            token: Some(token.into()),
        });
        run.connection.bind_ip = MEDIA_SERVER_ADDRESS.into();
        run.start_peers(2).await;
        let publisher = run.ids[0];
        servers
            .create_publisher(publisher.as_str(), room, Some(token), BOUND)
            .await
            .expect("the WHIP endpoint is made");
        let endpoint = format!("{}{publisher}", servers.whip_endpoint());
        run.publish(0);
        run.subscribe(1, 0);
        run.wait_for("the viewer's first verified frame", |e| {
            e.peer == 1
                && matches!(e.kind, PeerEventKind::FirstFrame { remote, .. } if remote == publisher)
        })
        .await;
        run.wait_for("the viewer's first tone", |e| {
            e.peer == 1
                && matches!(e.kind, PeerEventKind::FirstAudio { remote } if remote == publisher)
        })
        .await;
        // The publisher's resource holds its endpoint while it publishes.
        let (status, words) = poke(&endpoint).await;
        assert_eq!(
            (status, words.as_str()),
            (403, "Endpoint ID already in use")
        );
        run.log_for(Duration::from_secs(1)).await;
        run.command(1, PeerCommand::Hangup { to: publisher });
        let received = run.call_report(1, 0).await;
        run.command(0, PeerCommand::Hangup { to: room_remote() });
        let sent = run
            .wait_for("the publisher's report", |e| {
                e.peer == 0
                    && matches!(&e.kind, PeerEventKind::CallEnded(r) if r.remote == room_remote())
            })
            .await;
        let PeerEventKind::CallEnded(sent) = sent.kind else {
            unreachable!()
        };
        let video = received.video.as_ref().expect("video came through WHEP");
        let audio = received.audio.as_ref().expect("audio came through WHEP");
        assert_eq!(video.wrong_sender, 0, "{video:?}");
        assert!(video.verified >= 25, "{video:?}");
        assert!(
            video.verified as f64 >= 0.8 * f64::from(sent.frames_sent),
            "{} of {} frames verified: {video:?}",
            video.verified,
            sent.frames_sent
        );
        assert!(audio.tone_matches(), "{audio:?}");
        assert!(sent.video.is_none(), "nothing comes back to a publisher");
        assert_eq!(received.frames_sent, 0, "a viewer sends nothing");
        assert!(run.errors().is_empty(), "{:?}", run.errors());
        // The hangup DELETEd the resource: the endpoint is free again (the
        // server now looks at the body, and refuses it for not being SDP).
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let (status, words) = poke(&endpoint).await;
            if status != 403 {
                assert_eq!((status, words.as_str()), (406, "Unsupported content type"));
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the endpoint is still in use {BOUND:?} after the publisher hung up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        run.finish().await;
        drop(servers);
        drop(janus);
    });
}

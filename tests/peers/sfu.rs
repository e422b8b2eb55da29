//! A media server as the system under test: a real Janus (VideoRoom only,
//! generated configuration, in a network namespace of the test's own),
//! and synthetic peers that publish to its rooms and subscribe to each
//! other through it, every forwarded frame verified.

use std::time::Duration;

use callprobe_harness::netns::MEDIA_SERVER_ADDRESS;
use callprobe_harness::peer::{CallReport, PeerCommand, PeerEventKind};
use callprobe_harness::signaling::{Protocol, RoomSpec, create_room, room_remote};
use callprobe_testkit::janus_server::{Janus, with_janus};

use super::harness;

/// One request to Janus's HTTP API, its JSON answer.
async fn janus(url: &str, body: Option<serde_json::Value>) -> serde_json::Value {
    let client = reqwest::Client::new();
    let request = match body {
        Some(body) => client.post(url).body(body.to_string()),
        None => client.get(url),
    };
    let response = tokio::time::timeout(Duration::from_secs(5), request.send())
        .await
        .expect("janus answers within 5 s")
        .expect("janus answers");
    let text = response.text().await.expect("a body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn janus_starts_with_videoroom_only_answers_and_is_gone_once_killed() {
    with_janus("janus_starts", |mut server: Janus| async move {
        assert!(
            server.ws_url().starts_with("ws://127.0.0.1:"),
            "{}",
            server.ws_url()
        );
        let info = janus(&format!("{}/info", server.http_url()), None).await;
        assert_eq!(info["janus"], "server_info", "{info}");
        let plugins: Vec<&String> = info["plugins"]
            .as_object()
            .expect("plugins")
            .keys()
            .collect();
        assert_eq!(plugins, ["janus.plugin.videoroom"], "{info}");
        let transports: Vec<&String> = info["transports"]
            .as_object()
            .expect("transports")
            .keys()
            .collect();
        assert_eq!(transports.len(), 2, "{info}");
        // A session, as every client starts.
        let created = janus(
            &server.http_url(),
            Some(serde_json::json!({ "janus": "create", "transaction": "t1" })),
        )
        .await;
        assert_eq!(created["janus"], "success", "{created}");
        assert!(created["data"]["id"].as_u64().is_some(), "{created}");
        eprintln!("janus {} up: {}", info["version_string"], server.http_url());
        let http = server.http_url();
        server.kill();
        let gone = reqwest::Client::new()
            .get(format!("{http}/info"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        assert!(gone.is_err(), "janus still answers after the kill");
    });
}

/// A room made on `janus`, and a run whose peers speak VideoRoom in it.
async fn room_run(janus: &Janus, room: u64) -> harness::TestRun {
    let spec = RoomSpec {
        room,
        publishers: 8,
        video_codec: "h264".into(),
    };
    create_room(&janus.ws_url(), &spec, Duration::from_secs(5))
        .await
        .expect("the room is made");
    let mut run = harness::TestRun::new(None, janus.ws_url()).await;
    run.client.protocol = Protocol::JanusVideoRoom { room };
    // Janus sends from its interface only: the peers' media is there too.
    run.connection.bind_ip = MEDIA_SERVER_ADDRESS.into();
    run
}

/// The publisher's report on its call with the room.
async fn publisher_report(run: &mut harness::TestRun, peer: u16) -> CallReport {
    let event = run
        .wait_for("the publisher's report", |e| {
            e.peer == peer
                && matches!(&e.kind, PeerEventKind::CallEnded(r) if r.remote == room_remote())
        })
        .await;
    let PeerEventKind::CallEnded(report) = event.kind else {
        unreachable!()
    };
    *report
}

#[test]
fn a_subscriber_verifies_a_publishers_video_and_audio_through_a_janus_room() {
    with_janus("janus_room_one_stream", |janus: Janus| async move {
        let mut run = room_run(&janus, 4242).await;
        run.start_peers(2).await;
        let publisher = run.ids[0];
        run.publish(0);
        run.subscribe(1, 0);
        run.wait_for("the subscriber's first verified frame", |e| {
            e.peer == 1
                && matches!(e.kind, PeerEventKind::FirstFrame { remote, .. } if remote == publisher)
        })
        .await;
        run.wait_for("the subscriber's first tone", |e| {
            e.peer == 1
                && matches!(e.kind, PeerEventKind::FirstAudio { remote } if remote == publisher)
        })
        .await;
        run.log_for(Duration::from_secs(1)).await;
        run.command(1, PeerCommand::Hangup { to: publisher });
        let received = run.call_report(1, 0).await;
        run.command(0, PeerCommand::Hangup { to: room_remote() });
        let sent = publisher_report(&mut run, 0).await;
        let video = received.video.as_ref().expect("video came through Janus");
        let audio = received.audio.as_ref().expect("audio came through Janus");
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
        assert_eq!(received.frames_sent, 0, "a subscriber sends nothing");
        assert!(run.errors().is_empty(), "{:?}", run.errors());
        run.finish().await;
        drop(janus);
    });
}

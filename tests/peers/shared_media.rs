//! Shared-media mode: one clip encoded once, sent by every peer with its own
//! SEI stamp, checked by stamp and hash without decoding.

use std::sync::Arc;
use std::time::Duration;

use callprobe_harness::media::codec::VideoSettings;
use callprobe_harness::media::shared::SharedClip;
use callprobe_harness::peer::{CallReport, MediaSettings, PeerCommand};

use crate::harness::TestRun;

fn assert_shared_media_verified(receiver: &CallReport, sender: &CallReport, what: &str) {
    let video = receiver
        .video
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no video"));
    let audio = receiver
        .audio
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no audio"));
    let ratio = video.verified as f64 / f64::from(sender.frames_sent);
    assert!(
        ratio >= 0.95,
        "{what}: {ratio:.3} of frames verified; {video:?}"
    );
    // A wrong sender is never legitimate. Damaged frames are, when loopback
    // UDP drops a packet under load (the whole suite runs in parallel);
    // they stay within the 5 % the ratio above allows.
    assert_eq!(video.wrong_sender, 0, "{what}: {video:?}");
    let damaged = video.corrupted + video.undecodable;
    assert!(
        damaged * 20 <= video.received,
        "{what}: {damaged} damaged; {video:?}"
    );
    // A hash mismatch with nothing lost would be wrong content: a real bug.
    // Loss includes frames before the first verified one: frame 0 can lose
    // its first packets when the caller's media beats the callee's SRTP keys
    // (the verdict's own `lost` starts at the first verified frame).
    let lost_at_start = u64::from(video.first_frame_number.unwrap_or(0));
    assert!(
        video.corrupted == 0 || video.lost + lost_at_start > 0,
        "{what}: corrupt without loss: {video:?}"
    );
    assert!(
        audio.packets >= sender.audio_packets_sent * 95 / 100,
        "{what}: {audio:?}"
    );
    assert_eq!(audio.foreign_packets, 0, "{what}: {audio:?}");
    assert_eq!(
        receiver.keyframe_requests_sent, 0,
        "shared receivers never need keyframes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_peers_in_shared_media_mode_verify_each_frame_by_stamp_and_hash() {
    let settings = VideoSettings {
        keyframe_interval: 30,
        ..VideoSettings::default()
    };
    let clip = SharedClip::encode(&settings, 60, 32_000).unwrap();
    let mut run = TestRun::with_our_server().await;
    run.media = MediaSettings {
        video: settings,
        shared: Some(Arc::new(clip)),
        ..MediaSettings::default()
    };
    run.start_peers(4).await;
    let pairs = [(0u16, 1u16), (2, 3)];
    for (caller, callee) in pairs {
        run.call(caller, callee);
    }
    run.wait_for_media(&pairs, false).await;
    // Past the end of the 2 s clip, so the loop back to its start is checked too.
    run.log_for(Duration::from_millis(2500)).await;
    for (caller, callee) in pairs {
        run.command(
            caller,
            PeerCommand::Hangup {
                to: run.ids[usize::from(callee)],
            },
        );
    }
    for (caller, callee) in pairs {
        let caller_report = run.call_report(caller, callee).await;
        let callee_report = run.call_report(callee, caller).await;
        assert!(
            caller_report.frames_sent > 60,
            "the clip looped: {}",
            caller_report.frames_sent
        );
        assert_shared_media_verified(
            &caller_report,
            &callee_report,
            &format!("{callee} to {caller}"),
        );
        assert_shared_media_verified(
            &callee_report,
            &caller_report,
            &format!("{caller} to {callee}"),
        );
    }
    assert!(run.errors().is_empty(), "{:?}", run.errors());
    run.finish().await;
}

//! Codec negotiation between synthetic peers: the codec both take is
//! chosen in the offerer's order and every frame of it verified; peers
//! with none in common are refused at once, saying why.

use std::time::Duration;

use callprobe_harness::media::codec::VideoCodec;
use callprobe_harness::peer::{CallEnd, CallFailure, PeerCommand};

use crate::harness::{TestRun, assert_media_verified};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offerers_first_codec_the_answerer_takes_is_the_one_both_send() {
    if let Some(why) = VideoCodec::Vp8.unavailable() {
        return eprintln!("skipped: vp8 {why}");
    }
    let mut run = TestRun::with_our_server().await;
    // The offer lists VP9, then VP8, then H.264; the answerer takes H.264
    // and VP8, and answers with the offer's order among them: VP8.
    run.codecs = vec![
        vec![VideoCodec::Vp9, VideoCodec::Vp8, VideoCodec::H264],
        vec![VideoCodec::H264, VideoCodec::Vp8],
    ];
    run.start_peers(2).await;
    let bob = run.ids[1];
    run.call(0, 1);
    run.wait_for_media(&[(0, 1)], false).await;
    run.log_for(Duration::from_secs(1)).await;
    run.command(0, PeerCommand::Hangup { to: bob });
    let alice = run.call_report(0, 1).await;
    let bob = run.call_report(1, 0).await;
    assert_eq!(alice.video_codec, Some(VideoCodec::Vp8));
    assert_eq!(bob.video_codec, Some(VideoCodec::Vp8));
    assert_media_verified(&alice, &bob, "bob to alice in VP8");
    assert_media_verified(&bob, &alice, "alice to bob in VP8");
    assert!(run.errors().is_empty(), "{:?}", run.errors());
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_with_no_codec_in_common_are_refused_at_once_saying_why() {
    let mut run = TestRun::with_our_server().await;
    run.codecs = vec![vec![VideoCodec::Vp8], vec![VideoCodec::H264]];
    run.start_peers(2).await;
    run.call(0, 1);
    let bob = run.call_report(1, 0).await;
    assert_eq!(
        bob.end,
        CallEnd::Failed(CallFailure::NoCommonCodec {
            offered: vec![VideoCodec::Vp8],
            ours: vec![VideoCodec::H264],
        })
    );
    assert_eq!(
        CallFailure::NoCommonCodec {
            offered: vec![VideoCodec::Vp8],
            ours: vec![VideoCodec::H264],
        }
        .to_string(),
        "no video codec in common: the offer has vp8, this peer takes h264"
    );
    // The caller hears of it from the callee, not from its answer timeout.
    let alice = run.call_report(0, 1).await;
    assert_eq!(alice.end, CallEnd::RemoteHungUp);
    assert_eq!(
        (alice.video, bob.video),
        (None, None),
        "no media either way"
    );
    run.finish().await;
}

//! Call setup through the real signaling server on loopback, phase by phase.
//!
//! - `setup/{ice_connected,dtls_connected,first_frame,first_audio}`: each
//!   iteration is a fresh call between two synthetic peers (live H.264 and
//!   Opus), timed from the caller's call command to the phase, as the
//!   caller's event timeline recorded it (`iter_custom`).
//! - `connect_all/{10,100,500}`: N calls commanded at once between 2N
//!   shared-media peers; the time from the first call command until every
//!   call has verified a frame in both directions.
//!
//! A call counts only if it verified media both ways (frames by stamp,
//! nothing from a wrong sender, the tone heard); otherwise the bench panics
//! instead of reporting the time of a broken call.
//!
//!     cargo bench --bench call_setup

use callprobe_testkit::peers as harness;

use std::sync::Arc;
use std::time::Duration;

use callprobe_harness::media::codec::VideoSettings;
use callprobe_harness::media::shared::SharedClip;
use callprobe_harness::peer::{CallReport, MediaSettings, PeerCommand, PeerEventKind};
use callprobe_harness::timeline::SetupTimeline;
use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use harness::TestRun;
use tokio::runtime::Runtime;

/// The phases benched, by their names in the setup timeline.
const PHASES: [&str; 4] = [
    "ice_connected_ms",
    "dtls_connected_ms",
    "first_frame_ms",
    "first_audio_ms",
];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Panics unless `receiver` verified `sender`'s media: the time of a call
/// that did not carry media is not a setup time.
fn assert_verified(receiver: &CallReport, what: &str) {
    let video = receiver
        .video
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no video"));
    assert!(video.verified > 0, "{what}: no frame verified: {video:?}");
    assert_eq!(video.wrong_sender, 0, "{what}: frames from a wrong sender");
    let audio = receiver
        .audio
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no audio"));
    assert_eq!(audio.foreign_packets, 0, "{what}: foreign audio");
}

/// One fresh call from peer 0 to peer 1, to media both ways, hung up; its
/// setup timeline at the caller.
async fn one_call(run: &mut TestRun) -> SetupTimeline {
    run.events.clear();
    let callee = run.ids[1];
    run.call(0, 1);
    run.wait_for_media(&[(0, 1)], true).await;
    run.command(0, PeerCommand::Hangup { to: callee });
    let at_caller = run.call_report(0, 1).await;
    let at_callee = run.call_report(1, 0).await;
    assert_verified(&at_caller, "caller");
    assert_verified(&at_callee, "callee");
    let timeline = run.timeline(0, 1);
    assert!(timeline.complete_and_ordered(), "{timeline:?}");
    timeline
}

fn phase(timeline: &SetupTimeline, name: &str) -> Duration {
    let (_, ms) = timeline
        .phases()
        .into_iter()
        .find(|(phase, _)| *phase == name)
        .expect("a known phase");
    Duration::from_secs_f64(ms.expect("a complete timeline") / 1e3)
}

fn setup_phases(c: &mut Criterion) {
    let rt = runtime();
    let mut run = rt.block_on(async {
        let mut run = TestRun::with_our_server().await;
        run.start_peers(2).await;
        run
    });
    let mut group = c.benchmark_group("setup");
    // A call takes ~100 ms of wall time (media both ways, the tone, hang-up)
    // for a ~10 ms phase: few samples, flat sampling, short windows.
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for name in PHASES {
        let id = name.trim_end_matches("_ms");
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += phase(&one_call(&mut run).await, name);
                    }
                    total
                })
            });
        });
    }
    group.finish();
    rt.block_on(run.finish());
}

/// 2N shared-media peers (one clip for all, checked by stamp and hash).
async fn crowd(calls: u16) -> TestRun {
    let video = VideoSettings {
        bitrate_bps: 250_000,
        keyframe_interval: 60,
        ..VideoSettings::default()
    };
    let clip = tokio::task::spawn_blocking({
        let video = video.clone();
        move || SharedClip::encode(&video, 300, 32_000).expect("the clip encodes")
    })
    .await
    .expect("encoding finished");
    let mut run = TestRun::with_our_server().await;
    run.media = MediaSettings {
        video,
        shared: Some(Arc::new(clip)),
        ..MediaSettings::default()
    };
    run.start_peers(2 * calls).await;
    run
}

/// Every call at once; from the first call command to the last first
/// verified frame (both directions of every call), then all hung up and
/// checked.
async fn connect_all(run: &mut TestRun, calls: u16) -> Duration {
    run.events.clear();
    let pairs: Vec<(u16, u16)> = (0..calls).map(|i| (2 * i, 2 * i + 1)).collect();
    let start = callprobe_harness::clock::RunTime::now(run.epoch);
    run.call_pairs(&pairs);
    run.wait_for_media(&pairs, false).await;
    let last = run
        .events
        .iter()
        .filter(|e| matches!(e.kind, PeerEventKind::FirstFrame { .. }))
        .map(|e| e.at)
        .max()
        .expect("first frames were seen");
    run.hang_up_pairs(&pairs);
    for &(caller, callee) in &pairs {
        assert_verified(&run.call_report(caller, callee).await, "caller");
        assert_verified(&run.call_report(callee, caller).await, "callee");
    }
    last.duration_since(start)
}

fn connect_all_calls(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("connect_all");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1));
    for calls in [10u16, 100, 500] {
        let mut run = rt.block_on(crowd(calls));
        group.bench_with_input(BenchmarkId::from_parameter(calls), &calls, |b, &calls| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += connect_all(&mut run, calls).await;
                    }
                    total
                })
            });
        });
        rt.block_on(run.finish());
    }
    group.finish();
}

criterion_group!(benches, setup_phases, connect_all_calls);
criterion_main!(benches);

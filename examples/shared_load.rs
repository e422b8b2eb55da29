//! CPU and memory of synthetic peers in shared-media mode: N pairs in calls
//! through the real server, all in this process, every received frame
//! checked by stamp and hash.
//!
//!     cargo run --release --example shared_load -- [PAIRS] [SECONDS]
//!
//! Defaults: 10 pairs (20 peers), 10 seconds of media. CPU is the process's
//! user+system time over the window, as a share of one core; RSS is read
//! before the peers start and at the end of the window.
#![allow(clippy::print_stdout)] // the figures on stdout are what this tool is for

use callprobe_testkit::peers as harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use callprobe_harness::media::codec::VideoSettings;
use callprobe_harness::media::shared::SharedClip;
use callprobe_harness::peer::{MediaSettings, PeerCommand, PeerEventKind};
use harness::TestRun;

/// (CPU seconds used so far, resident set in KiB) of this process.
fn usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which ends with ')'.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, rss) // CLK_TCK is 100 on Linux
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let pairs: u16 = args
        .next()
        .map_or(10, |a| a.parse().expect("PAIRS is a number"));
    let seconds: u64 = args
        .next()
        .map_or(10, |a| a.parse().expect("SECONDS is a number"));
    let video = VideoSettings {
        keyframe_interval: 60,
        ..VideoSettings::default()
    };
    let clip = SharedClip::encode(&video, 300, 32_000).expect("clip encodes");
    let mut run = TestRun::with_our_server().await;
    run.media = MediaSettings {
        video,
        shared: Some(Arc::new(clip)),
        ..MediaSettings::default()
    };
    let (_, rss_before) = usage();

    let started = Instant::now();
    run.start_peers(2 * pairs).await;
    for pair in 0..pairs {
        run.call(2 * pair, 2 * pair + 1);
    }
    for peer in 0..2 * pairs {
        run.wait_for("first verified frame", |e| {
            e.peer == peer && matches!(e.kind, PeerEventKind::FirstFrame { .. })
        })
        .await;
    }
    let connected_in = started.elapsed();
    let (cpu_start, _) = usage();
    let window_start = Instant::now();
    run.log_for(Duration::from_secs(seconds)).await;
    let (cpu_end, rss_end) = usage();
    let window = window_start.elapsed().as_secs_f64();
    for pair in 0..pairs {
        run.command(
            2 * pair,
            PeerCommand::Hangup {
                to: run.ids[usize::from(2 * pair + 1)],
            },
        );
    }
    let (mut sent, mut verified, mut lost, mut bad) = (0u64, 0u64, 0u64, 0u64);
    for pair in 0..pairs {
        let (a, b) = (2 * pair, 2 * pair + 1);
        let (ra, rb) = (run.call_report(a, b).await, run.call_report(b, a).await);
        for (receiver, sender) in [(&ra, &rb), (&rb, &ra)] {
            let v = receiver.video.as_ref().expect("video arrived");
            sent += u64::from(sender.frames_sent);
            verified += v.verified;
            lost += v.lost;
            bad += v.corrupted + v.wrong_sender + v.undecodable;
            bad += receiver.audio.as_ref().map_or(1, |a| a.foreign_packets);
        }
    }
    let peers = f64::from(2 * pairs);
    let cpu = (cpu_end - cpu_start) / window * 100.0;
    println!(
        "{} peers ({pairs} calls), shared 320x240@30 H.264 + Opus, {window:.1} s window",
        2 * pairs
    );
    println!(
        "all first frames verified {:.0} ms after the peers started",
        connected_in.as_secs_f64() * 1e3
    );
    println!(
        "CPU: {cpu:.1} % of one core in all, {:.2} % per peer",
        cpu / peers
    );
    println!(
        "RSS: {:.1} MB before the peers, {:.1} MB with them: {:.2} MB per peer",
        rss_before as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        (rss_end.saturating_sub(rss_before)) as f64 / 1024.0 / peers
    );
    println!(
        "frames: {sent} sent, {verified} verified, {lost} lost, {bad} bad (corrupt, wrong sender, foreign audio)"
    );
    assert_eq!(bad, 0, "every frame that arrived is the right one");
    run.finish().await;
}

//! Call setup latency, phase by phase, over many calls through the real
//! signaling server on loopback (two synthetic peers, H.264 + Opus, every
//! first frame verified by its stamp).
//!
//!     cargo run --release --example setup_latency -- [CALLS] [ICE_CHECK_INTERVAL_MS]
//!
//! Defaults: 50 calls, the peers' default check interval.
#![allow(clippy::print_stdout)] // the table on stdout is what this tool is for

use callprobe_testkit::peers as harness;

use std::time::Duration;

use callprobe_harness::peer::PeerCommand;
use callprobe_harness::verify::Summary;
use harness::TestRun;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let calls: usize = args
        .next()
        .map_or(50, |a| a.parse().expect("CALLS is a number"));
    let mut run = TestRun::with_our_server().await;
    if let Some(ms) = args.next() {
        let ms: u64 = ms.parse().expect("ICE_CHECK_INTERVAL_MS is a number");
        run.connection.ice_check_interval = Duration::from_millis(ms);
    }
    run.start_peers(2).await;
    let bob = run.ids[1];
    let mut phases: Vec<Vec<Duration>> = vec![Vec::new(); 7];
    let mut names = Vec::new();
    for _ in 0..calls {
        run.events.clear();
        run.call(0, 1);
        run.wait_for_media(&[(0, 1)], true).await;
        run.command(0, PeerCommand::Hangup { to: bob });
        run.call_report(0, 1).await;
        run.call_report(1, 0).await;
        let timeline = run.timeline(0, 1);
        assert!(timeline.complete_and_ordered(), "{timeline:?}");
        names = timeline.phases().map(|(name, _)| name).to_vec();
        for (samples, (_, at)) in phases.iter_mut().zip(timeline.phases()) {
            samples.push(Duration::from_secs_f64(at.expect("complete") / 1e3));
        }
    }
    println!(
        "{calls} calls, ICE check interval {:?}",
        run.connection.ice_check_interval
    );
    println!(
        "{:<18} {:>8} {:>8} {:>8} {:>8}",
        "phase", "min", "p50", "p95", "max"
    );
    for (name, samples) in names.iter().zip(&phases) {
        let s = Summary::of(samples);
        println!(
            "{name:<18} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            s.min_ms, s.p50_ms, s.p95_ms, s.max_ms
        );
    }
    run.finish().await;
}

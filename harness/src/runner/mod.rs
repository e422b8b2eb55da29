//! Running one scenario (DESIGN §1, "Runner"): the server (in-process or
//! external), the peers, the timeline on a monotonic clock, and a clean
//! stop: every peer closed, every task ended, the server shut down. What
//! happened is kept as the run's record (`record`), which the collector
//! judges: the same record `callprobe judge` reads back from disk.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::browser::{BrowserError, find_chromium};
use crate::clock::RunTime;
use crate::load::{LagProbe, PacingLog};
use crate::record::{CutShort, ScenarioAsRun, ScenarioRecord};
use crate::results::{LoadObserved, ScenarioResult, Status, judge_record};
use crate::scenario::Scenario;
use crate::scenario::shard::Shard;

mod peers;
mod setup;

use peers::Run;
use setup::{media, start_server, start_sfu, start_turn};

/// Told how a run is going; the CLI draws a progress bar from it.
pub trait Progress: Send + Sync {
    /// Peers are being started.
    fn starting(&self, _scenario: &Scenario) {}
    /// The timeline runs: `elapsed` of the scenario's duration, and how many
    /// call directions have verified their first frame.
    fn tick(&self, _elapsed: Duration, _first_frames: usize) {}
    /// The timeline is over; peers are closing.
    fn finishing(&self) {}
}

/// No progress output (tests, `--quiet`).
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// What the command line can change about a run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Use this signaling server instead of the scenario's (or spawning one).
    pub server: Option<String>,
    /// Cancelled by Ctrl-C: the run stops early and still reports.
    pub cancel: CancellationToken,
    /// The scenario given is this shard's part of the whole (its record
    /// says so, for `callprobe merge`).
    pub shard: Option<Shard>,
    /// The timeline starts at this wall-clock instant, once every peer is
    /// up (every shard of a split run is given the same).
    pub start_at: Option<SystemTime>,
}

/// Runs `scenario` to its end (or until cancelled) and judges its record.
pub async fn run_scenario(
    scenario: &Scenario,
    options: &RunOptions,
    progress: &dyn Progress,
) -> ScenarioResult {
    judge_record(
        scenario,
        &record_scenario(scenario, options, progress).await,
    )
}

/// Runs `scenario` to its end (or until cancelled) and hands over its
/// record. Never panics on the system under test misbehaving: that is a
/// result.
pub async fn record_scenario(
    scenario: &Scenario,
    options: &RunOptions,
    progress: &dyn Progress,
) -> ScenarioRecord {
    // Boxed: a run's state (its peers, servers, record) is a large future,
    // kept off its callers' stacks.
    Box::pin(record(scenario, options, progress)).await
}

async fn record(
    scenario: &Scenario,
    options: &RunOptions,
    progress: &dyn Progress,
) -> ScenarioRecord {
    let as_run = ScenarioAsRun::of(scenario, options.server.clone(), options.shard);
    let chromium = find_chromium();
    if scenario.has_browsers() && chromium.is_none() {
        return ScenarioRecord::not_run(
            as_run,
            Status::Skipped,
            format!("{}", BrowserError::NotFound),
        );
    }
    let server = match start_server(scenario, options).await {
        Ok(server) => server,
        Err((status, reason)) => return ScenarioRecord::not_run(as_run, status, reason),
    };
    let turn = match start_turn(scenario).await {
        Ok(turn) => turn,
        Err((status, reason)) => {
            server.stop().await;
            return ScenarioRecord::not_run(as_run, status, reason);
        }
    };
    let sfu = match start_sfu(scenario).await {
        Ok(sfu) => sfu,
        Err((status, reason)) => {
            server.stop().await;
            return ScenarioRecord::not_run(as_run, status, reason);
        }
    };
    let pacing = Arc::new(PacingLog::default());
    let media = match media(scenario, &pacing).await {
        Ok(media) => media,
        Err(reason) => {
            if let Some(sfu) = sfu {
                sfu.finish().await;
            }
            server.stop().await;
            return ScenarioRecord::not_run(as_run, Status::Error, reason);
        }
    };
    progress.starting(scenario);
    // Watching starts before the peers do: its first memory sample is the
    // baseline that per-peer memory is counted from.
    let epoch = Instant::now();
    let mut run = Run::new(scenario, &server, turn, sfu, media, epoch);
    let probe = LagProbe::start(Arc::clone(&run.record_bytes), epoch);
    run.chromium = chromium;
    let startup = run.start_peers(&options.cancel).await;
    let startup = match (startup, options.start_at) {
        (Ok(()), Some(at)) => wait_for(at, &options.cancel).await,
        (startup, _) => startup,
    };
    let started = Instant::now();
    let start_offset_ms = options
        .start_at
        .map(|at| signed_ms_since(at, SystemTime::now()));
    let cut_short = match startup {
        Err(stopped) => Some(stopped),
        Ok(()) => run
            .timeline(started, &options.cancel, progress)
            .await
            .map(|reason| (Status::Interrupted, reason)),
    };
    let ended = Instant::now();
    let load = LoadObserved {
        watched: probe.stop().await,
        pacing: pacing.snapshot(),
    };
    progress.finishing();
    let (actions, events, links) = run.finish().await;
    let url = server.url.clone();
    server.stop().await;
    ScenarioRecord {
        scenario: as_run,
        server: url,
        started: RunTime::of(started, epoch),
        ended: RunTime::of(ended, epoch),
        cut_short: cut_short.map(|(status, reason)| CutShort { status, reason }),
        ran: true,
        start_offset_ms,
        actions,
        events,
        links,
        load: Some(load),
    }
}

/// Waits for the wall clock to reach `at` (at once if it has).
async fn wait_for(at: SystemTime, cancel: &CancellationToken) -> Result<(), (Status, String)> {
    let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::select! {
        () = tokio::time::sleep(wait) => Ok(()),
        () = cancel.cancelled() => Err((Status::Interrupted, "interrupted while waiting for --start-at".into())),
    }
}

/// Milliseconds from `origin` to `at`, negative when `at` is earlier.
fn signed_ms_since(origin: SystemTime, at: SystemTime) -> f64 {
    match at.duration_since(origin) {
        Ok(after) => after.as_secs_f64() * 1e3,
        Err(before) => -before.duration().as_secs_f64() * 1e3,
    }
}

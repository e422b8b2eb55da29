//! The report's `harness` section: what the harness's own load was during
//! the run (event-loop lag, sender pacing, CPU, memory), how fast calls
//! connected, and whether the harness was overloaded, which makes the run
//! invalid instead of judged.

use crate::clock::RunTime;

use serde::Serialize;

use super::CallResult;
use crate::load::{LoadBounds, PacingSnapshot, ProcessSample, Watched};
use crate::threshold::{Stat, statistic};

/// What the runner watched of itself, handed to the collector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LoadObserved {
    pub watched: Watched,
    pub pacing: PacingSnapshot,
}

#[derive(Clone, Debug, Serialize)]
pub struct HarnessLoad {
    pub peers: usize,
    /// Event-loop lag over the timeline.
    pub lag_p50_ms: Option<f64>,
    pub lag_p99_ms: Option<f64>,
    pub lag_max_ms: Option<f64>,
    pub pacing: PacingSnapshot,
    pub cpu: Option<CpuUse>,
    pub memory: Option<MemoryUse>,
    /// Memory, file descriptors and tasks per minute over the steady part
    /// of a long run; `None` under a minute or so.
    pub growth: Option<super::Growth>,
    pub ramp: Ramp,
    /// Why the harness counts as overloaded; `None` when it was not.
    pub overloaded: Option<String>,
    /// Second by second, on the report's clock.
    pub series: Vec<LoadPoint>,
}

/// CPU of the whole process (peers, server when in-process, harness).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct CpuUse {
    /// Mean over the timeline, in cores (1.0 = one core busy).
    pub timeline_cores: f64,
    /// Mean from every call connected to the end: the steady state.
    pub steady_cores: f64,
    /// `steady_cores` per peer, in % of one core.
    pub per_peer_pct: f64,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct MemoryUse {
    /// Resident before the peers started.
    pub before_mb: f64,
    pub peak_mb: f64,
    /// (peak - before) / peers.
    pub per_peer_mb: f64,
}

/// How fast calls connected (first verified frame at the caller).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Ramp {
    pub calls: usize,
    pub connected: usize,
    /// Timeline start to the last connection, when every call connected.
    pub all_connected_ms: Option<f64>,
    /// Connections per second from the first call command to the last
    /// connection.
    pub calls_per_second: Option<f64>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct LoadPoint {
    pub t_s: f64,
    pub cpu_cores: f64,
    pub rss_mb: f64,
    pub open_fds: Option<u64>,
    pub tasks: Option<u64>,
    /// What the run's own record held (see `Growth`).
    pub record_mb: Option<f64>,
    /// Worst event-loop lag in the second.
    pub lag_max_ms: f64,
    /// Calls connected by the end of the second.
    pub calls_connected: usize,
}

const MB: f64 = 1_000_000.0;

/// The section, from what was watched; `started`/`ended` bound the
/// timeline, `ms` puts an instant on the report's clock.
pub(super) fn harness_load(
    observed: &LoadObserved,
    bounds: &LoadBounds,
    peers: usize,
    calls: &[CallResult],
    (started, ended): (RunTime, RunTime),
    receive_overflows: u64,
) -> HarnessLoad {
    let on_clock = |at: RunTime| super::collect::signed_ms(at, started);
    let lag: Vec<f64> = timeline_lag(&observed.watched, started, ended);
    let stat = |s| statistic(s, &lag);
    let ramp = ramp(calls);
    let connected_at = ramp
        .all_connected_ms
        .map(|ms| started + std::time::Duration::from_secs_f64(ms.max(0.0) / 1e3));
    let process = &observed.watched.process;
    let cpu = cpu(process, started, ended, connected_at, peers);
    let memory = memory(process, peers);
    let growth = super::growth::growth(process, started, ended);
    let lag_p99_ms = stat(Stat::Percentile(99.0));
    let overloaded = verdict(bounds, lag_p99_ms, &observed.pacing, receive_overflows);
    let series = series(observed, calls, started, ended, &on_clock);
    HarnessLoad {
        peers,
        lag_p50_ms: stat(Stat::Percentile(50.0)),
        lag_p99_ms,
        lag_max_ms: stat(Stat::Max),
        pacing: observed.pacing,
        cpu,
        memory,
        growth,
        ramp,
        overloaded,
        series,
    }
}

/// Lag samples taken while the timeline ran.
pub(super) fn timeline_lag(watched: &Watched, started: RunTime, ended: RunTime) -> Vec<f64> {
    watched
        .lag
        .iter()
        .filter(|(at, _)| (started..=ended).contains(at))
        .map(|&(_, ms)| ms)
        .collect()
}

/// Fewer late frames than this never make a run overloaded, whatever
/// their share: one scheduling stall of a few tens of ms delays one frame
/// per sender, which in a two-second call between two peers is already
/// 2 of 120 (1.7 %). Overload is the harness falling behind, not a hiccup.
const MIN_LATE_FRAMES: u64 = 10;

fn verdict(
    bounds: &LoadBounds,
    lag_p99_ms: Option<f64>,
    pacing: &PacingSnapshot,
    receive_overflows: u64,
) -> Option<String> {
    let max_lag_ms = bounds.max_lag.as_secs_f64() * 1e3;
    let mut reasons = Vec::new();
    if let Some(p99) = lag_p99_ms.filter(|&p99| p99 > max_lag_ms) {
        reasons.push(format!(
            "event-loop lag p99 {p99:.1} ms over the {max_lag_ms:.0} ms bound"
        ));
    }
    if pacing.late_ratio > bounds.max_late_frames && pacing.frames_late >= MIN_LATE_FRAMES {
        reasons.push(format!(
            "{:.1}% of video frames sent late or skipped ({} of {}), over the {:.1}% bound",
            pacing.late_ratio * 100.0,
            pacing.frames_late,
            pacing.frames_due,
            bounds.max_late_frames * 100.0
        ));
    }
    if receive_overflows > 0 {
        // The loss is the harness's own: a peer did not read its socket
        // in time, which no network setting asked for.
        reasons.push(format!(
            "{receive_overflows} datagrams dropped at peers' full receive queues"
        ));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// When each call connected, on the report's clock, for calls that did.
/// The calls whose media is verified where they connect: not those
/// meant to fail, nor a room's publishes (their subscriptions verify them).
fn media_calls(calls: &[CallResult]) -> impl Iterator<Item = &CallResult> {
    calls
        .iter()
        .filter(|c| !c.expect_failure && c.kind != super::CallKind::Publish)
}

fn connections(calls: &[CallResult]) -> Vec<f64> {
    media_calls(calls)
        .filter_map(|c| c.setup.first_frame_ms.map(|ms| c.started_at_ms + ms))
        .collect()
}

fn ramp(calls: &[CallResult]) -> Ramp {
    let expected = media_calls(calls).count();
    let connected = connections(calls);
    let last = connected.iter().copied().reduce(f64::max);
    let first_command = calls.iter().map(|c| c.started_at_ms).reduce(f64::min);
    let calls_per_second = match (first_command, last) {
        (Some(first), Some(last)) if last > first => {
            Some(connected.len() as f64 / ((last - first) / 1e3))
        }
        _ => None,
    };
    Ramp {
        calls: expected,
        connected: connected.len(),
        all_connected_ms: last.filter(|_| connected.len() == expected && expected > 0),
        calls_per_second,
    }
}

/// Mean cores busy between two samples.
fn cores(from: &ProcessSample, to: &ProcessSample) -> Option<f64> {
    let wall = to.at.checked_duration_since(from.at)?.as_secs_f64();
    (wall > 0.0).then(|| (to.cpu_seconds - from.cpu_seconds) / wall)
}

/// The sample nearest to `at`.
fn nearest(process: &[ProcessSample], at: RunTime) -> Option<&ProcessSample> {
    process
        .iter()
        .min_by_key(|s| s.at.duration_since(at).max(at.duration_since(s.at)))
}

fn cpu(
    process: &[ProcessSample],
    started: RunTime,
    ended: RunTime,
    connected_at: Option<RunTime>,
    peers: usize,
) -> Option<CpuUse> {
    let start = nearest(process, started)?;
    let end = nearest(process, ended)?;
    let timeline_cores = cores(start, end)?;
    // The steady window starts at the first sample after every call
    // connected; too short a window (under a second) says nothing.
    let steady_cores = connected_at
        .and_then(|at| process.iter().find(|s| s.at >= at))
        .filter(|from| end.at.saturating_duration_since(from.at).as_secs_f64() >= 1.0)
        .and_then(|from| cores(from, end))
        .unwrap_or(timeline_cores);
    Some(CpuUse {
        timeline_cores,
        steady_cores,
        per_peer_pct: steady_cores * 100.0 / peers.max(1) as f64,
    })
}

fn memory(process: &[ProcessSample], peers: usize) -> Option<MemoryUse> {
    let before = process.first()?.rss_bytes as f64 / MB;
    let peak = process.iter().map(|s| s.rss_bytes).max()? as f64 / MB;
    Some(MemoryUse {
        before_mb: before,
        peak_mb: peak,
        per_peer_mb: (peak - before).max(0.0) / peers.max(1) as f64,
    })
}

fn series(
    observed: &LoadObserved,
    calls: &[CallResult],
    started: RunTime,
    ended: RunTime,
    on_clock: &dyn Fn(RunTime) -> f64,
) -> Vec<LoadPoint> {
    let process = &observed.watched.process;
    let connected = connections(calls);
    let mut points = Vec::new();
    for pair in process.windows(2) {
        let (from, to) = (&pair[0], &pair[1]);
        if to.at < started || from.at > ended {
            continue;
        }
        let Some(cpu_cores) = cores(from, to) else {
            continue;
        };
        let lag_max_ms = observed
            .watched
            .lag
            .iter()
            .filter(|(at, _)| (from.at..=to.at).contains(at))
            .map(|&(_, ms)| ms)
            .fold(0.0, f64::max);
        let t_ms = on_clock(to.at);
        points.push(LoadPoint {
            t_s: t_ms / 1e3,
            cpu_cores,
            rss_mb: to.rss_bytes as f64 / MB,
            open_fds: to.open_fds,
            tasks: to.tasks,
            record_mb: to.record_bytes.map(|b| b as f64 / MB),
            lag_max_ms,
            calls_connected: connected.iter().filter(|&&at| at <= t_ms).count(),
        });
    }
    points
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sample(at: RunTime, cpu_seconds: f64, rss_mb: f64) -> ProcessSample {
        ProcessSample {
            at,
            cpu_seconds,
            rss_bytes: (rss_mb * MB) as u64,
            open_fds: None,
            tasks: None,
            record_bytes: None,
        }
    }

    #[test]
    fn lag_over_the_bound_or_late_frames_make_the_run_overloaded() {
        let bounds = LoadBounds::default();
        let calm = PacingSnapshot {
            frames_due: 1000,
            frames_late: 5,
            late_ratio: 0.005,
            ..PacingSnapshot::default()
        };
        assert_eq!(verdict(&bounds, Some(3.0), &calm, 0), None);
        let slow = verdict(&bounds, Some(80.0), &calm, 0).unwrap();
        assert!(
            slow.contains("lag p99 80.0 ms over the 50 ms bound"),
            "{slow}"
        );
        let late = PacingSnapshot {
            frames_late: 100,
            late_ratio: 0.1,
            ..calm
        };
        let both = verdict(&bounds, Some(80.0), &late, 0).unwrap();
        assert!(both.contains("10.0% of video frames"), "{both}");
        assert!(both.contains("lag p99"), "{both}");
        // Datagrams a peer did not read in time are the harness's loss.
        let dropped = verdict(&bounds, Some(3.0), &calm, 4).unwrap();
        assert!(dropped.contains("4 datagrams dropped"), "{dropped}");
        // A short call with one stall: 2 of 120 frames late is no overload.
        let hiccup = PacingSnapshot {
            frames_due: 120,
            frames_late: 2,
            late_ratio: 2.0 / 120.0,
            ..PacingSnapshot::default()
        };
        assert_eq!(verdict(&bounds, Some(8.0), &hiccup, 0), None);
        let behind = PacingSnapshot {
            frames_due: 120,
            frames_late: 12,
            late_ratio: 0.1,
            ..PacingSnapshot::default()
        };
        assert!(verdict(&bounds, Some(8.0), &behind, 0).is_some());
    }

    #[test]
    fn cpu_and_memory_per_peer_come_from_the_steady_window_and_the_peak() {
        let t0 = RunTime::ZERO;
        let s = |secs: u64, cpu: f64, rss: f64| sample(t0 + Duration::from_secs(secs), cpu, rss);
        // Before peers: 10 MB. Ramp (0-2 s) burns 1.5 cores, then 0.5.
        let process = vec![
            s(0, 0.0, 10.0),
            s(1, 1.5, 60.0),
            s(2, 3.0, 110.0),
            s(3, 3.5, 110.0),
            s(4, 4.0, 100.0),
            s(5, 4.5, 100.0),
        ];
        let started = t0;
        let ended = t0 + Duration::from_secs(5);
        let cpu = cpu(
            &process,
            started,
            ended,
            Some(t0 + Duration::from_secs(2)),
            10,
        )
        .unwrap();
        assert!((cpu.timeline_cores - 0.9).abs() < 1e-9, "{cpu:?}");
        assert!((cpu.steady_cores - 0.5).abs() < 1e-9, "{cpu:?}");
        assert!((cpu.per_peer_pct - 5.0).abs() < 1e-9, "{cpu:?}");
        let memory = memory(&process, 10).unwrap();
        assert!((memory.per_peer_mb - 10.0).abs() < 1e-9, "{memory:?}");
    }
}

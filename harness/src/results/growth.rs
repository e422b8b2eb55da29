//! Does anything grow that should not? Once a second the harness samples
//! its resident memory, open file descriptors and live tasks; over a long
//! run (a soak: calls made and hung up for minutes) each should level off.
//! A straight line fitted to the steady part of the run gives the growth
//! per minute: a leak of one socket per call is hundreds per minute, while
//! calls opening and closing only scatter the samples around a level line.

use crate::clock::RunTime;
use std::time::Duration;

use serde::Serialize;

use crate::load::ProcessSample;

/// The start of a run is not steady: peers start, buffers and pools fill.
/// Samples from the first tenth of the timeline, and at least this much of
/// it, are left out of the fit.
const WARM_UP: Duration = Duration::from_secs(10);
/// Fewer samples than this (one a second) say nothing about a trend.
const MIN_SAMPLES: usize = 30;

/// Growth per minute over the steady part of the run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Growth {
    /// The window fitted, seconds on the timeline, and its samples.
    pub from_s: f64,
    pub to_s: f64,
    pub samples: usize,
    /// Resident memory beyond the run's own record (what it keeps on
    /// purpose for the report: finished calls' per-frame times, events,
    /// the probe's samples). This is the leak figure.
    pub rss_mb_per_min: f64,
    /// Resident memory as the OS counts it, and the record alone.
    pub rss_total_mb_per_min: f64,
    pub record_mb_per_min: f64,
    pub fds_per_min: Option<f64>,
    pub tasks_per_min: Option<f64>,
    /// Where each started and ended in the window (first and last sample).
    pub rss_mb: (f64, f64),
    pub fds: Option<(u64, u64)>,
    pub tasks: Option<(u64, u64)>,
}

/// `None` when the timeline is too short for a trend (under
/// [`MIN_SAMPLES`] seconds after the warm-up).
pub(super) fn growth(
    process: &[ProcessSample],
    started: RunTime,
    ended: RunTime,
) -> Option<Growth> {
    let timeline = ended.checked_duration_since(started)?;
    let from = started + (timeline / 10).max(WARM_UP);
    let window: Vec<&ProcessSample> = process
        .iter()
        .filter(|s| (from..=ended).contains(&s.at))
        .collect();
    if window.len() < MIN_SAMPLES {
        return None;
    }
    let x: Vec<f64> = window
        .iter()
        .map(|s| s.at.duration_since(started).as_secs_f64() / 60.0)
        .collect();
    let per_min = |y: &[f64]| slope(&x, y);
    let all = |f: fn(&ProcessSample) -> Option<u64>| -> Option<Vec<u64>> {
        window.iter().map(|s| f(s)).collect()
    };
    let rss: Vec<f64> = window.iter().map(|s| s.rss_bytes as f64 / 1e6).collect();
    let record: Vec<f64> = window
        .iter()
        .map(|s| s.record_bytes.unwrap_or(0) as f64 / 1e6)
        .collect();
    let beyond: Vec<f64> = rss.iter().zip(&record).map(|(r, k)| r - k).collect();
    let fds = all(|s| s.open_fds);
    let tasks = all(|s| s.tasks);
    let as_f64 = |v: &[u64]| v.iter().map(|&n| n as f64).collect::<Vec<_>>();
    let ends = |v: &[u64]| (v[0], v[v.len() - 1]);
    Some(Growth {
        from_s: x[0] * 60.0,
        to_s: x[x.len() - 1] * 60.0,
        samples: window.len(),
        rss_mb_per_min: per_min(&beyond),
        rss_total_mb_per_min: per_min(&rss),
        record_mb_per_min: per_min(&record),
        fds_per_min: fds.as_deref().map(|v| per_min(&as_f64(v))),
        tasks_per_min: tasks.as_deref().map(|v| per_min(&as_f64(v))),
        rss_mb: (rss[0], rss[rss.len() - 1]),
        fds: fds.as_deref().map(ends),
        tasks: tasks.as_deref().map(ends),
    })
}

/// Least-squares slope of `y` over `x`.
fn slope(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (xi, yi) in x.iter().zip(y) {
        sxy += (xi - mx) * (yi - my);
        sxx += (xi - mx) * (xi - mx);
    }
    if sxx > 0.0 { sxy / sxx } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten minutes of samples, one a second, with the given values.
    fn samples(t0: RunTime, value: impl Fn(u64) -> (f64, u64, u64)) -> Vec<ProcessSample> {
        (0..=600)
            .map(|s| {
                let (rss_mb, fds, tasks) = value(s);
                ProcessSample {
                    at: t0 + Duration::from_secs(s),
                    cpu_seconds: s as f64 * 0.5,
                    rss_bytes: (rss_mb * 1e6) as u64,
                    open_fds: Some(fds),
                    tasks: Some(tasks),
                    record_bytes: Some(s * 10_000),
                }
            })
            .collect()
    }

    #[test]
    fn a_socket_leaked_per_call_shows_as_growth_and_churn_alone_does_not() {
        let t0 = RunTime::ZERO;
        let end = t0 + Duration::from_secs(600);
        // Calls come and go: fds and tasks scatter by +-10 around a level,
        // memory fills in the first seconds and then grows only with the
        // record.
        let wobble = |s: u64| ((s * 7919) % 21) as i64 - 10;
        let steady = samples(t0, |s| {
            let rss = if s < 5 { 20.0 + s as f64 * 10.0 } else { 70.0 } + s as f64 * 0.01;
            let fds = (400 + wobble(s)) as u64;
            (rss, fds, (900 + wobble(s + 3)) as u64)
        });
        let level = growth(&steady, t0, end).unwrap();
        assert_eq!(level.from_s, 60.0, "the first tenth is warm-up");
        assert!(level.samples >= 540, "{level:?}");
        assert!(level.rss_mb_per_min.abs() < 0.01, "{level:?}");
        assert!(level.fds_per_min.unwrap().abs() < 1.0, "{level:?}");
        assert!(level.tasks_per_min.unwrap().abs() < 1.0, "{level:?}");

        // Ten calls a second, each leaving one socket and 2 kB behind.
        // The record (10 kB a second in `samples`) grows memory on
        // purpose: it is taken out.
        let recording = samples(t0, |s| (70.0 + s as f64 * 0.01, 400, 900));
        let kept = growth(&recording, t0, end).unwrap();
        assert!((kept.rss_total_mb_per_min - 0.6).abs() < 0.01, "{kept:?}");
        assert!((kept.record_mb_per_min - 0.6).abs() < 0.01, "{kept:?}");
        assert!(kept.rss_mb_per_min.abs() < 0.01, "{kept:?}");

        let leaking = samples(t0, |s| {
            (
                70.0 + s as f64 * 0.03,
                400 + 10 * s,
                (900 + wobble(s)) as u64,
            )
        });
        let leak = growth(&leaking, t0, end).unwrap();
        assert!((leak.fds_per_min.unwrap() - 600.0).abs() < 1.0, "{leak:?}");
        assert!((leak.rss_mb_per_min - 1.2).abs() < 0.01, "{leak:?}");
        assert!(leak.tasks_per_min.unwrap().abs() < 1.0, "{leak:?}");
        assert_eq!(leak.fds, Some((1000, 6400)));
    }

    #[test]
    fn a_short_run_has_no_trend() {
        let t0 = RunTime::ZERO;
        let short = samples(t0, |_| (50.0, 10, 10));
        assert_eq!(growth(&short[..35], t0, t0 + Duration::from_secs(35)), None);
    }
}

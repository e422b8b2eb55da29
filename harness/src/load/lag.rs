//! Event-loop lag: a task that asks to wake every few milliseconds and
//! records how late it woke. On an idle runtime that is the timer's
//! resolution (~1 ms); when every worker is busy with peers, the probe
//! waits in the queue like every other task, and the lag shows it. The same
//! task samples the process's CPU time and memory once a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::clock::RunTime;
use tokio_util::sync::CancellationToken;

use super::process::ProcessSample;

/// How often the probe asks to wake.
const PROBE_EVERY: Duration = Duration::from_millis(10);
/// How often it reads the process's CPU time and memory.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// What the probe saw, from its start to its stop, on the run's clock.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Watched {
    /// (when; lag in ms) per wake-up.
    pub lag: Vec<(RunTime, f64)>,
    /// Process samples, the first at the probe's start.
    pub process: Vec<ProcessSample>,
}

/// A running probe; `stop` ends it and hands over what it saw.
#[derive(Debug)]
pub(crate) struct LagProbe {
    stop: CancellationToken,
    task: JoinHandle<Watched>,
}

impl LagProbe {
    /// Starts probing; `record` is the heap the caller's own record holds
    /// (see [`ProcessSample::record_bytes`]), read at every sample; times
    /// are on the clock that started at `epoch`.
    pub(crate) fn start(record: Arc<AtomicU64>, epoch: Instant) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(probe(stop.clone(), record, epoch));
        LagProbe { stop, task }
    }

    pub(crate) async fn stop(self) -> Watched {
        self.stop.cancel();
        // The probe ends at its next wake; a panic in it is a bug worth
        // seeing, an abort (runtime shutting down) leaves nothing to report.
        match self.task.await {
            Ok(watched) => watched,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Watched::default(),
        }
    }
}

async fn probe(stop: CancellationToken, record: Arc<AtomicU64>, epoch: Instant) -> Watched {
    let mut watched = Watched::default();
    let sample = |watched: &Watched| {
        ProcessSample::now(epoch).map(|mut sample| {
            let own = watched.lag.capacity() * std::mem::size_of::<(RunTime, f64)>()
                + watched.process.capacity() * std::mem::size_of::<ProcessSample>();
            sample.record_bytes = Some(record.load(Ordering::Relaxed) + own as u64);
            sample
        })
    };
    watched.process.extend(sample(&watched));
    let mut due = tokio::time::Instant::now() + PROBE_EVERY;
    let mut next_sample = Instant::now() + SAMPLE_EVERY;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep_until(due) => {}
        }
        let now = tokio::time::Instant::now();
        let lag = now.saturating_duration_since(due);
        watched
            .lag
            .push((RunTime::of(now.into_std(), epoch), lag.as_secs_f64() * 1e3));
        // After a long stall, the next wake is a period from now, not a
        // burst of catch-up wakes that would each count the same stall.
        due = due.max(now) + PROBE_EVERY;
        if now.into_std() >= next_sample {
            let taken = sample(&watched);
            watched.process.extend(taken);
            next_sample += SAMPLE_EVERY;
        }
    }
    let taken = sample(&watched);
    watched.process.extend(taken);
    watched
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker blocked for 200 ms shows as a lag of about that much, on a
    /// single-threaded runtime where the probe has nowhere else to run.
    #[tokio::test(flavor = "current_thread")]
    async fn a_blocked_worker_shows_as_lag() {
        let probe = LagProbe::start(Arc::default(), Instant::now());
        // Let the probe take its first sample and wake a few times.
        tokio::time::sleep(PROBE_EVERY * 5).await;
        #[allow(clippy::disallowed_methods)] // blocking the worker is the point
        std::thread::sleep(Duration::from_millis(200));
        tokio::time::sleep(PROBE_EVERY * 3).await;
        let watched = probe.stop().await;
        let max = watched.lag.iter().map(|&(_, ms)| ms).fold(0.0, f64::max);
        assert!((150.0..1000.0).contains(&max), "max lag {max} ms");
        let calm = watched.lag.iter().filter(|&&(_, ms)| ms < 20.0).count();
        assert!(calm >= 3, "{:?}", watched.lag);
        if cfg!(target_os = "linux") {
            assert!(watched.process.len() >= 2, "start and stop samples");
        }
    }
}

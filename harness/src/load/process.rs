//! This process's CPU time, resident memory and open file descriptors,
//! from `/proc` read by `procfs` (with the system's real clock tick; other
//! systems get no samples, and reports say so), and the async runtime's
//! live tasks: what a leak would grow.

use std::time::Instant;

use procfs::process::Process;

use crate::clock::RunTime;

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProcessSample {
    pub at: RunTime,
    /// User plus system CPU time since the process started.
    pub cpu_seconds: f64,
    /// Resident set size.
    pub rss_bytes: u64,
    /// Open file descriptors (sockets, timers, files).
    pub open_fds: Option<u64>,
    /// Tasks alive on the runtime the sample was taken on.
    pub tasks: Option<u64>,
    /// Heap the run keeps on purpose by then, for its report (finished
    /// calls' per-frame times, events, the probe's own samples): growth
    /// that is no leak.
    pub record_bytes: Option<u64>,
}

impl ProcessSample {
    /// `None` where `/proc/self` cannot be read.
    pub fn now(epoch: Instant) -> Option<ProcessSample> {
        let me = Process::myself().ok()?;
        let stat = me.stat().ok()?;
        let status = me.status().ok()?;
        let ticks = procfs::ticks_per_second().max(1) as f64;
        Some(ProcessSample {
            at: RunTime::now(epoch),
            cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
            rss_bytes: status.vmrss? * 1024,
            open_fds: me.fd_count().ok().map(|n| n as u64),
            tasks: tokio::runtime::Handle::try_current()
                .ok()
                .map(|runtime| runtime.metrics().num_alive_tasks() as u64),
            record_bytes: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_sampled_on_linux() {
        if cfg!(target_os = "linux") {
            let sample = ProcessSample::now(Instant::now()).expect("/proc/self readable");
            assert!(sample.rss_bytes > 1024 * 1024);
            assert!(sample.open_fds.is_some_and(|fds| fds >= 3), "{sample:?}");
            assert_eq!(sample.tasks, None, "no runtime here");
            // Seconds, not ticks: a test process has used well under an
            // hour of CPU, and some of it.
            assert!((0.0..3600.0).contains(&sample.cpu_seconds), "{sample:?}");
            let later = ProcessSample::now(Instant::now()).expect("readable");
            assert!(later.cpu_seconds >= sample.cpu_seconds);
        }
    }
}

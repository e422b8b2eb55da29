//! This process's CPU time, resident memory and open file descriptors,
//! from `/proc` (Linux; other systems get no samples, and reports say so),
//! and the async runtime's live tasks: what a leak would grow.

use std::time::Instant;

use crate::clock::RunTime;

/// Clock ticks per second for `/proc/<pid>/stat` times; 100 on every Linux
/// we run on (`getconf CLK_TCK`), and reading it needs libc.
const TICKS_PER_SECOND: f64 = 100.0;

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
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        Some(ProcessSample {
            at: RunTime::now(epoch),
            cpu_seconds: cpu_seconds(&stat)?,
            rss_bytes: rss_bytes(&status)?,
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count() as u64),
            tasks: tokio::runtime::Handle::try_current()
                .ok()
                .map(|runtime| runtime.metrics().num_alive_tasks() as u64),
            record_bytes: None,
        })
    }
}

/// utime + stime (fields 14 and 15) of a `stat` line. The command name in
/// parentheses may hold spaces, so fields are counted after its `)`.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / TICKS_PER_SECOND)
}

fn rss_bytes(status: &str) -> Option<u64> {
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_time_past_a_command_name_with_spaces() {
        let stat = "4242 (tokio rt) worker) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(cpu_seconds("garbage"), None);
    }

    #[test]
    fn reads_resident_memory() {
        let status = "Name:\tcallprobe\nVmPeak:\t  9000 kB\nVmRSS:\t  2048 kB\n";
        assert_eq!(rss_bytes(status), Some(2 * 1024 * 1024));
        assert_eq!(rss_bytes("Name: x\n"), None);
    }

    #[test]
    fn this_process_can_be_sampled_on_linux() {
        if cfg!(target_os = "linux") {
            let sample = ProcessSample::now(Instant::now()).expect("/proc/self readable");
            assert!(sample.rss_bytes > 1024 * 1024);
            assert!(sample.open_fds.is_some_and(|fds| fds >= 3), "{sample:?}");
            assert_eq!(sample.tasks, None, "no runtime here");
        }
    }
}

//! Waiting out a busy machine before an INVALID run is tried again.
//!
//! A run the harness judged INVALID measured its own starvation, and on a
//! shared CI machine starvation comes in bursts (a neighbour's build, the
//! hypervisor's steal) that can outlast one short scenario and the next.
//! Trying again at once lands in the same burst; so before each new try the
//! test watches the machine, one window at a time, until it has been quiet
//! for a few windows running, within a bound. It never turns INVALID into a
//! pass: the new try is judged like the first.
//!
//! A window is busy when runnable tasks waited for a CPU much of it (the
//! kernel's pressure stall information, `/proc/pressure/cpu`), when the
//! hypervisor stole much of it (`/proc/stat`), or when a sleeping thread
//! woke late. The last alone is not enough: the scheduler favours a thread
//! that sleeps, so it wakes on time on a machine that busy loops saturate.

use std::time::{Duration, Instant};

/// How many times a test runs a scenario the harness keeps judging INVALID.
pub const MAX_TRIES: usize = 3;

/// The longest a test waits for a quiet machine before it tries anyway.
pub const SETTLE_BOUND: Duration = Duration::from_secs(45);

/// One window of watching.
const WINDOW: Duration = Duration::from_secs(1);
/// One probe: sleep this long and see how late the thread wakes.
const PROBE: Duration = Duration::from_millis(5);
/// Quiet: a sleeping thread's 99th-percentile lateness under this (a fifth
/// of the harness's default lag bound, 50 ms) ...
const QUIET_LATENESS: Duration = Duration::from_millis(10);
/// ... some task waited for a CPU less than this share of the window ...
const QUIET_STALL: f64 = 0.10;
/// ... and the hypervisor stole less than this share of the CPUs' time.
const QUIET_STEAL: f64 = 0.05;
/// Quiet windows in a row that make the machine quiet.
const QUIET_WINDOWS: u32 = 3;

/// What one window saw.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Window {
    lateness_p99: Duration,
    /// Share of the window some task waited for a CPU (None: no PSI here).
    stall: Option<f64>,
    /// Share of all CPUs' time stolen (None: no `/proc/stat` here).
    steal: Option<f64>,
}

impl Window {
    fn is_quiet(&self) -> bool {
        self.lateness_p99 < QUIET_LATENESS
            && self.stall.is_none_or(|s| s < QUIET_STALL)
            && self.steal.is_none_or(|s| s < QUIET_STEAL)
    }

    fn describe(&self) -> String {
        let share = |s: Option<f64>| s.map_or("–".to_owned(), |s| format!("{:.0}%", s * 1e2));
        format!(
            "wake-ups {:.1} ms late (p99), CPU waited for {}, stolen {}",
            self.lateness_p99.as_secs_f64() * 1e3,
            share(self.stall),
            share(self.steal)
        )
    }
}

/// Waits (at most [`SETTLE_BOUND`]) until the machine has been quiet for
/// [`QUIET_WINDOWS`] windows in a row, saying on stderr what it saw. A
/// blocking wait: call it from a plain thread or `spawn_blocking`.
pub fn settle(what: &str) {
    let started = Instant::now();
    let mut quiet_run = 0;
    let mut busiest: Option<Window> = None;
    while quiet_run < QUIET_WINDOWS {
        if started.elapsed() >= SETTLE_BOUND {
            let seen = busiest.map_or(String::new(), |w| w.describe());
            eprintln!(
                "{what}: the machine was still busy after {SETTLE_BOUND:?} ({seen}); trying anyway"
            );
            return;
        }
        let window = watch_window();
        if !window.is_quiet() {
            busiest = Some(window);
        }
        quiet_run = if window.is_quiet() { quiet_run + 1 } else { 0 };
    }
    let seen = busiest.map_or("quiet throughout".to_owned(), |w| {
        format!("last busy window: {}", w.describe())
    });
    eprintln!(
        "{what}: the machine was quiet after {:.1} s ({seen})",
        started.elapsed().as_secs_f64()
    );
}

/// Watches the machine for one [`WINDOW`].
fn watch_window() -> Window {
    let stall_before = cpu_stall_total();
    let steal_before = cpu_ticks();
    let started = Instant::now();
    let mut late = Vec::new();
    while started.elapsed() < WINDOW {
        let asleep = Instant::now();
        std::thread::sleep(PROBE);
        late.push(asleep.elapsed().saturating_sub(PROBE));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stall = stall_before
        .zip(cpu_stall_total())
        .map(|(before, after)| after.saturating_sub(before) as f64 / 1e6 / elapsed);
    let steal = steal_before
        .zip(cpu_ticks())
        .and_then(|(before, after)| stolen_share(before, after));
    Window {
        lateness_p99: p99(&mut late),
        stall,
        steal,
    }
}

/// Microseconds some task has waited for a CPU since boot (PSI's `some`).
fn cpu_stall_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    psi_some_total(&text)
}

fn psi_some_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()
}

/// The all-CPU line of `/proc/stat`: (stolen ticks, all ticks).
fn cpu_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    stat_ticks(&text)
}

fn stat_ticks(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]:
    // guest time is already counted in user, so only the first eight add.
    let steal = *ticks.get(7)?;
    Some((steal, ticks.iter().take(8).sum()))
}

fn stolen_share(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
    let all = after.1.checked_sub(before.1).filter(|&all| all > 0)?;
    Some(after.0.saturating_sub(before.0) as f64 / all as f64)
}

/// The value 99 % of `samples` are at or under (nearest rank).
fn p99(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    let rank = (samples.len() * 99).div_ceil(100).saturating_sub(1);
    samples.get(rank).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_late_wake_up_in_two_hundred_is_not_the_p99_but_three_are() {
        let ms = Duration::from_millis;
        let mut one = vec![ms(1); 199];
        one.push(ms(80));
        assert_eq!(p99(&mut one), ms(1));
        let mut three = vec![ms(1); 197];
        three.extend([ms(80), ms(70), ms(60)]);
        assert_eq!(p99(&mut three), ms(60));
        assert_eq!(p99(&mut []), Duration::ZERO);
    }

    #[test]
    fn the_kernels_counters_are_read_from_their_own_formats() {
        let psi = "some avg10=3.24 avg60=1.66 avg300=1.51 total=214131112\n\
                   full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(psi_some_total(psi), Some(214_131_112));
        assert_eq!(psi_some_total("full total=3\n"), None);
        let stat = "cpu  100 10 50 800 5 0 5 30 7 0\ncpu0 50 5 25 400 2 0 2 15 3 0\n";
        assert_eq!(stat_ticks(stat), Some((30, 1000)));
        assert_eq!(stolen_share((30, 1000), (80, 1200)), Some(0.25));
        assert_eq!(stolen_share((30, 1000), (30, 1000)), None);
    }

    #[test]
    fn any_one_busy_sign_makes_a_window_busy() {
        let quiet = Window {
            lateness_p99: Duration::from_millis(1),
            stall: Some(0.02),
            steal: Some(0.0),
        };
        assert!(quiet.is_quiet());
        assert!(
            Window {
                stall: None,
                steal: None,
                ..quiet
            }
            .is_quiet()
        );
        let late = Duration::from_millis(30);
        assert!(
            !Window {
                lateness_p99: late,
                ..quiet
            }
            .is_quiet()
        );
        assert!(
            !Window {
                stall: Some(0.5),
                ..quiet
            }
            .is_quiet()
        );
        assert!(
            !Window {
                steal: Some(0.2),
                ..quiet
            }
            .is_quiet()
        );
    }
}

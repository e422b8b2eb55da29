//! The CPU budget of the test suite.
//!
//! A test that runs real media (H.264 and Opus, DTLS, SRTP, a browser)
//! takes a slot before it starts and gives it back when it ends. There are
//! `max(1, cores / 2)` slots (or `CALLPROBE_TEST_JOBS`), so on the 2-core
//! machines CI and most users' CI have, media tests run one at a time while
//! cheap tests (parsers, the signaling server) still run beside them. The
//! harness judges its own load (a run over its lag or pacing bounds is
//! INVALID): tests that starve each other would measure the suite, not the
//! system under test.
//!
//! Slots are files locked with `flock`, so the budget holds across test
//! binaries and processes (`cargo nextest`, two checkouts on one machine),
//! and the kernel frees a slot when its holder dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Overrides the number of slots (at least 1).
pub const JOBS_ENV: &str = "CALLPROBE_TEST_JOBS";

/// How long a test waits for a slot before it fails: longer than the
/// slowest media test holds one, shorter than CI's limit.
pub const SLOT_WAIT: Duration = Duration::from_secs(20 * 60);

/// A held slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct CpuSlot {
    _lock: File,
    /// Which slot, and how long the test waited for it.
    pub index: usize,
    pub waited: Duration,
}

/// How many media tests may run at once on this machine.
pub fn slots() -> usize {
    if let Some(jobs) = std::env::var(JOBS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return jobs.max(1);
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (cores / 2).max(1)
}

fn slot_path(index: usize) -> PathBuf {
    std::env::temp_dir()
        .join("callprobe-cpu-budget")
        .join(format!("slot-{index}.lock"))
}

fn open_slot(index: usize) -> File {
    let path = slot_path(index);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

/// Takes a free slot if there is one; otherwise queues on one slot, chosen
/// in turn, so waiters spread over the slots.
fn acquire(what: &str) -> CpuSlot {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let started = Instant::now();
    let count = slots();
    for index in 0..count {
        let file = open_slot(index);
        match file.try_lock() {
            Ok(()) => {
                return CpuSlot {
                    _lock: file,
                    index,
                    waited: started.elapsed(),
                };
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => panic!("{what}: cannot lock CPU slot {index}: {e}"),
        }
    }
    let index = NEXT.fetch_add(1, Ordering::Relaxed) % count;
    let file = open_slot(index);
    file.lock()
        .unwrap_or_else(|e| panic!("{what}: cannot lock CPU slot {index}: {e}"));
    CpuSlot {
        _lock: file,
        index,
        waited: started.elapsed(),
    }
}

/// Waits (at most [`SLOT_WAIT`]) for a slot, on a helper thread so the
/// wait is bounded even though `flock` itself has no timeout.
pub fn cpu_slot_blocking(what: &str) -> CpuSlot {
    let (tx, rx) = mpsc::channel();
    let name = what.to_owned();
    std::thread::spawn(move || {
        // If the waiter gave up, the slot is dropped (freed) right here.
        let _ = tx.send(acquire(&name));
    });
    match rx.recv_timeout(SLOT_WAIT) {
        Ok(slot) => {
            if slot.waited > Duration::from_secs(1) {
                eprintln!(
                    "{what}: waited {:.1} s for a CPU slot",
                    slot.waited.as_secs_f64()
                );
            }
            slot
        }
        Err(_) => panic!(
            "{what}: no CPU slot within {SLOT_WAIT:?}: another test run holds them ({})",
            slot_path(0).display()
        ),
    }
}

/// [`cpu_slot_blocking`] for async tests: the wait runs on the blocking
/// pool, not on a runtime worker.
pub async fn cpu_slot(what: &str) -> CpuSlot {
    let what = what.to_owned();
    tokio::task::spawn_blocking(move || cpu_slot_blocking(&what))
        .await
        .expect("the slot waiter does not panic but for its own message")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_slot_is_busy_for_others_and_free_once_dropped() {
        // A slot index no real test uses, so this test never waits on them.
        let index = 1000;
        let held = open_slot(index);
        held.try_lock().expect("nobody else uses slot 1000");
        let other = open_slot(index);
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        drop(held);
        other.try_lock().expect("the slot is free again");
    }

    #[test]
    fn there_is_always_at_least_one_slot() {
        assert!(slots() >= 1);
    }
}

//! CPU work of a peer (codecs set up, frames drawn and encoded, receivers
//! made) runs off the async workers, on the blocking pool, so it never
//! holds up the packets of other peers; and at most a few jobs per core
//! at a time. More at once finishes no sooner, but each job beyond a free
//! thread gets a new thread: a hundred peers starting together made about
//! a hundred, each with its stack and allocator heap, 25-40 MB of RSS until
//! they idled out ten seconds later (the peak a scale run reports).

use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

/// A few jobs per core, so that a job waiting for its task to be polled
/// does not leave a core idle; still a handful of threads, not hundreds.
const SLOTS_PER_CORE: usize = 4;

fn slots() -> &'static Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Arc::new(Semaphore::new(SLOTS_PER_CORE * cores))
    })
}

/// Runs `work` on the blocking pool once a core's slot is free; a panic in
/// it resumes here.
pub(crate) async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    // The semaphore is never closed.
    let slot = Arc::clone(slots()).acquire_owned().await.ok();
    let job = move || {
        let value = work();
        // Freed the moment the work ends, not when this task is next
        // polled: on a loaded machine that is tens of milliseconds later,
        // and the slot would sit idle that long.
        drop(slot);
        value
    };
    match tokio::task::spawn_blocking(job).await {
        Ok(value) => value,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Runs `work` right here when the caller knows it is cheap (microseconds:
/// a reference to the shared clip, a stamp), else off the workers. Cheap
/// work queued behind other peers' codec set-up delayed first frames by
/// seconds at 1,000 peers.
pub(crate) async fn cpu_work<T: Send + 'static>(
    cheap: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    if cheap {
        work()
    } else {
        off_the_workers(work).await
    }
}

//! CPU work of a peer (codecs set up, frames drawn and encoded, receivers
//! made) runs off the async workers, on the blocking pool, so it never
//! holds up the packets of other peers; and at most one job per core at a
//! time. More at once finishes no sooner, but each job beyond a free
//! thread gets a new thread: a hundred peers starting together made about
//! a hundred, each with its stack and allocator heap, 25-40 MB of RSS until
//! they idled out ten seconds later (the peak a scale run reports).

use std::sync::OnceLock;

use tokio::sync::Semaphore;

fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Semaphore::new(cores)
    })
}

/// Runs `work` on the blocking pool once a core's slot is free; a panic in
/// it resumes here.
pub(crate) async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    // The semaphore is never closed.
    let _slot = slots().acquire().await.ok();
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

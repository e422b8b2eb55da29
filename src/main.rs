//! `callprobe`: headless WebRTC call tests. The command line lives in
//! `callprobe_harness::cli`; this is only its entry point.

/// A thousand peers allocate and free packet buffers from many threads;
/// glibc's malloc spent a fifth of the CPU there (growing and trimming its
/// heaps, zeroing fresh pages), mimalloc keeps those pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    callprobe_harness::cli::main()
}

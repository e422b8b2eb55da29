//! `callprobe`: headless WebRTC call tests. The command line lives in
//! `callprobe_harness::cli`; this is only its entry point.

fn main() -> std::process::ExitCode {
    callprobe_harness::cli::main()
}

//! The root package exists to own the cross-crate tests (`tests/`) and the
//! benches (`benches/`). Its binary points people at the real ones until the
//! `callprobe` CLI lands.

fn main() {
    eprintln!(
        "callprobe: the scenario runner is not built yet.\n\
         Start the signaling server with: cargo run --release --bin callprobe-server -- --help"
    );
    std::process::exit(2);
}

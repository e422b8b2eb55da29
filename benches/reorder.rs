//! What the receive-side reorder buffer (`peer/reorder.rs`) costs per
//! packet: in order (the fast path every clean call takes), with adjacent
//! pairs swapped, and with one packet in ten duplicated. Multiply by a
//! peer's packet rate for its share of a core (BENCHMARKS.md).
//!
//!     cargo bench --bench reorder

use std::hint::black_box;
use std::time::Duration;

use callprobe_harness::peer::Reorder;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rtc::rtp;

/// Packets per measured batch: a few seconds of a call's video.
const PACKETS: u16 = 1_000;

/// A realistic video packet: a 1,100-byte payload, refcounted as in a call.
fn packets(order: impl Fn(u16) -> u16) -> Vec<rtp::Packet> {
    let payload = bytes::Bytes::from(vec![0u8; 1_100]);
    (0..PACKETS)
        .map(|n| rtp::Packet {
            header: rtp::header::Header {
                sequence_number: order(n),
                ..Default::default()
            },
            payload: payload.clone(),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("reorder");
    group.throughput(Throughput::Elements(u64::from(PACKETS)));
    let cases: [(&str, Vec<rtp::Packet>); 3] = [
        ("in_order", packets(|n| n)),
        ("pairs_swapped", packets(|n| if n < 2 { n } else { n ^ 1 })),
        ("one_in_ten_duplicated", {
            let mut all = packets(|n| n);
            for n in (0..all.len()).step_by(10).rev() {
                let copy = all[n].clone();
                all.insert(n, copy);
            }
            all
        }),
    ];
    for (name, input) in cases {
        group.bench_with_input(BenchmarkId::from_parameter(name), &input, |b, input| {
            let mut out = Vec::with_capacity(input.len());
            b.iter(|| {
                let mut buffer = Reorder::default();
                out.clear();
                for (i, packet) in input.iter().enumerate() {
                    let at = Duration::from_micros(i as u64 * 300);
                    buffer.push(packet.clone(), at, &mut out);
                }
                black_box(out.len())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

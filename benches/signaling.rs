//! Signaling relay cost: latency of one relayed message and messages relayed
//! per second, with 100 clients (50 calls) and 2000 clients (1000 active
//! calls) connected.
//!
//! Clients and server share this process (and its 2 cores), over real
//! WebSockets on loopback. Every relayed message is checked (action and
//! stamped sender) before it counts. Besides criterion's estimates, each
//! group prints p50/p99/max of the individual relay latencies it saw.

use callprobe_testkit::raw_client as common;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callprobe_harness::threshold::percentile;
use callprobe_server::{Limits, RunningServer};
use common::{Client, call, candidate_to};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use futures_util::SinkExt;
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::Message;

/// Messages in flight per iteration of the throughput bench, whatever N.
const MESSAGES_PER_ITERATION: usize = 10_000;

struct Fixture {
    _server: RunningServer,
    pairs: Vec<(Client, Client)>,
}

async fn fixture(clients: usize) -> Fixture {
    // The bench is load, not abuse: lift the per-connection rate limit.
    let server = common::server_with(Limits {
        messages_per_second: 10_000_000,
        outbox_messages: 100_000,
        ..Limits::default()
    })
    .await;
    let url = server.url();
    let mut pairs = Vec::with_capacity(clients / 2);
    for _ in 0..clients / 2 {
        pairs.push(call(&url).await);
    }
    Fixture {
        _server: server,
        pairs,
    }
}

/// Prints p50/p90/p99/max with the project's one percentile definition
/// (nearest rank, as thresholds and reports use).
fn percentiles(label: &str, samples: &[Duration]) {
    if samples.is_empty() {
        return;
    }
    let mut micros: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    micros.sort_by(f64::total_cmp);
    let at = |p: f64| percentile(&micros, p);
    eprintln!(
        "{label}: {} relays, p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        micros.len(),
        at(50.0),
        at(90.0),
        at(99.0),
        at(100.0),
    );
}

type Pair = (Client, Client);

/// One timed batch of `iterations` over the pairs; pushes each message's
/// relay latency into the samples and returns the time criterion counts.
type Batch = for<'a> fn(
    &'a mut Vec<Pair>,
    u64,
    &'a mut Vec<Duration>,
) -> Pin<Box<dyn Future<Output = Duration> + 'a>>;

/// Runs `batch` at 100 and 2000 connected clients, then prints the
/// percentiles of every latency it saw.
fn at_each_size(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, label: &str, batch: Batch) {
    for clients in [100, 2000] {
        let fixture = Arc::new(tokio::sync::Mutex::new(rt.block_on(fixture(clients))));
        let samples = Arc::new(Mutex::new(Vec::new()));
        group.bench_function(BenchmarkId::from_parameter(clients), |b| {
            b.to_async(rt).iter_custom(|iterations| {
                let fixture = Arc::clone(&fixture);
                let samples = Arc::clone(&samples);
                async move {
                    let mut fixture = fixture.lock().await;
                    let mut seen = Vec::new();
                    let total = batch(&mut fixture.pairs, iterations, &mut seen).await;
                    samples.lock().unwrap().append(&mut seen);
                    total
                }
            });
        });
        percentiles(&format!("{label}/{clients}"), &samples.lock().unwrap());
    }
}

/// One message at a time through an otherwise idle server: the relay's own
/// latency, send to receipt.
#[allow(clippy::ptr_arg)] // it must have the `Batch` signature
fn one_at_a_time<'a>(
    pairs: &'a mut Vec<Pair>,
    iterations: u64,
    samples: &'a mut Vec<Duration>,
) -> Pin<Box<dyn Future<Output = Duration> + 'a>> {
    Box::pin(async move {
        let count = pairs.len();
        for i in 0..iterations as usize {
            let (caller, callee) = &mut pairs[i % count];
            let message = candidate_to(&callee.id, "candidate:bench 1 udp 1 127.0.0.1 9 typ host");
            let started = Instant::now();
            caller.send(message).await;
            let got = callee.expect("iceCandidate").await;
            samples.push(started.elapsed());
            assert_eq!(got["data"]["remoteId"], caller.id.as_str());
        }
        samples.iter().sum()
    })
}

/// Every caller sends its share of the messages at once; the time until every
/// callee has received all of them.
fn bursts<'a>(
    pairs: &'a mut Vec<Pair>,
    iterations: u64,
    samples: &'a mut Vec<Duration>,
) -> Pin<Box<dyn Future<Output = Duration> + 'a>> {
    Box::pin(async move {
        let mut total = Duration::ZERO;
        for _ in 0..iterations {
            let (elapsed, returned, mut latencies) = burst(std::mem::take(pairs)).await;
            *pairs = returned;
            total += elapsed;
            samples.append(&mut latencies);
        }
        total
    })
}

/// Runs one burst over all pairs; returns the wall time, the pairs, and each
/// message's relay latency (send time travels in the message).
async fn burst(pairs: Vec<Pair>) -> (Duration, Vec<Pair>, Vec<Duration>) {
    let per_pair = MESSAGES_PER_ITERATION / pairs.len();
    let epoch = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (mut caller, mut callee)) in pairs.into_iter().enumerate() {
        tasks.spawn(async move {
            let callee_id = callee.id.clone();
            let send = async {
                for _ in 0..per_pair {
                    let mut message =
                        candidate_to(&callee_id, "candidate:bench 1 udp 1 127.0.0.1 9 typ host");
                    message["data"]["sentAtNanos"] = (epoch.elapsed().as_nanos() as u64).into();
                    caller
                        .ws
                        .feed(Message::text(message.to_string()))
                        .await
                        .unwrap();
                }
                caller.ws.flush().await.unwrap();
            };
            let receive = async {
                let mut latencies = Vec::with_capacity(per_pair);
                for _ in 0..per_pair {
                    let got = callee.expect("iceCandidate").await;
                    let sent = Duration::from_nanos(got["data"]["sentAtNanos"].as_u64().unwrap());
                    latencies.push(epoch.elapsed().saturating_sub(sent));
                }
                latencies
            };
            let ((), latencies) = tokio::join!(send, receive);
            (index, caller, callee, latencies)
        });
    }
    let mut returned = Vec::new();
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (index, caller, callee, mut pair_latencies) = done.expect("pair task");
        returned.push((index, caller, callee));
        latencies.append(&mut pair_latencies);
    }
    let elapsed = epoch.elapsed();
    returned.sort_by_key(|(index, ..)| *index);
    let pairs = returned
        .into_iter()
        .map(|(_, caller, callee)| (caller, callee))
        .collect();
    (elapsed, pairs, latencies)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("relay_latency");
    at_each_size(
        &mut group,
        &rt,
        "relay_latency (idle server)",
        one_at_a_time,
    );
    group.finish();

    let mut group = c.benchmark_group("relay_throughput");
    group.sample_size(10);
    group.throughput(Throughput::Elements(MESSAGES_PER_ITERATION as u64));
    at_each_size(
        &mut group,
        &rt,
        "relay_throughput (latency under full load)",
        bursts,
    );
    group.finish();
}

criterion_group!(signaling, benches);
criterion_main!(signaling);

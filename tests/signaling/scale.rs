//! Many clients at once.

use std::sync::Arc;

use tokio::sync::Barrier;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_clients_each_complete_an_offer_answer_candidate_exchange() {
    let _slot = callprobe_testkit::cpu_slot("a thousand clients").await;
    const PAIRS: usize = 500;
    let server = server().await;
    let url = server.url();
    // Everyone connects and starts before anyone signals: all 1000 are
    // connected at once.
    let everyone_started = Arc::new(Barrier::new(PAIRS));
    let mut pairs = tokio::task::JoinSet::new();
    for _ in 0..PAIRS {
        let url = url.clone();
        let barrier = Arc::clone(&everyone_started);
        pairs.spawn(async move {
            let (mut caller, mut callee) =
                tokio::join!(Client::started(&url), Client::started(&url));
            barrier.wait().await;
            caller.send(offer_to(&callee.id, "offer")).await;
            let offer = callee.expect("offer").await;
            assert_eq!(offer["data"]["remoteId"], caller.id.as_str());
            callee.send(answer_to(&caller.id, "answer")).await;
            let answer = caller.expect("answer").await;
            assert_eq!(answer["data"]["remoteId"], callee.id.as_str());
            assert_call_alive(&mut caller, &mut callee).await;
            (caller.id, callee.id)
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(pair) = tokio::time::timeout(WAIT * 6, pairs.join_next())
        .await
        .expect("every pair finishes")
    {
        let (a, b) = pair.expect("pair task succeeded");
        assert!(ids.insert(a) && ids.insert(b), "ids are unique");
    }
    assert_eq!(ids.len(), 2 * PAIRS);
    let metrics = metrics(&format!("http://{}/", server.local_addr())).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "callprobe_signaling_calls_started_total 500"),
        "{metrics}"
    );
}

/// `callprobe serve` as its own process, killed when dropped.
struct ServerProcess {
    child: std::process::Child,
    url: String,
}

impl ServerProcess {
    /// Starts the binary on a free loopback port and waits (bounded) for
    /// the line that says where it listens.
    fn start() -> ServerProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callprobe"))
            .args(["serve", "--listen", "127.0.0.1:0", "--idle-timeout", "300s"])
            .env("RUST_LOG", "callprobe_server=info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("callprobe serve starts");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(at) = line.find("url=") {
                    let url = line[at + 4..].split_whitespace().next().unwrap_or("");
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(WAIT)
            .expect("callprobe serve says where it listens");
        ServerProcess { child, url }
    }

    fn http(&self) -> String {
        self.url.replacen("ws://", "http://", 1)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's default connection limit is 10,000, and it raises its own
/// file limit to hold them. The server runs as its own process (as it is
/// deployed), so that each end of a connection counts against its own
/// process's file limit. All clients are connected and started at once,
/// the server counts them, and a message still crosses from the first to
/// the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_clients_are_held_at_once_and_still_relayed_between() {
    let _slot = callprobe_testkit::cpu_slot("ten thousand clients").await;
    const CLIENTS: usize = 10_000;
    const CONNECTING_AT_ONCE: usize = 256;
    assert_eq!(
        callprobe_server::Limits::default().max_connections,
        CLIENTS,
        "the default limit is what this test holds"
    );
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("getrlimit");
    assert!(
        limit >= CLIENTS as u64 + 100,
        "this test holds {CLIENTS} connections and needs {} file descriptors; the limit is {limit} \
         (raise `ulimit -Hn`)",
        CLIENTS + 100
    );
    let server = ServerProcess::start();
    let url = server.url.clone();
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTING_AT_ONCE));
    let mut connecting = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let url = url.clone();
        let slots = Arc::clone(&slots);
        connecting.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("never closed");
            Client::started(&url).await
        });
    }
    let mut clients = Vec::with_capacity(CLIENTS);
    while let Some(client) = tokio::time::timeout(WAIT * 12, connecting.join_next())
        .await
        .expect("every client connects")
    {
        clients.push(client.expect("a client task succeeded"));
    }
    let ids: std::collections::HashSet<&str> = clients.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), CLIENTS, "ids are unique");
    let metrics = metrics(&server.http()).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == format!("callprobe_signaling_connections {CLIENTS}")),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("connections"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut last = clients.pop().expect("clients");
    let first = &mut clients[0];
    first.send(offer_to(&last.id, "offer")).await;
    let offer = last.expect("offer").await;
    assert_eq!(offer["data"]["remoteId"], first.id.as_str());
}

//! Many clients at once.

use std::sync::Arc;

use tokio::sync::Barrier;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_clients_each_complete_an_offer_answer_candidate_exchange() {
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
    let metrics = reqwest::get(format!("http://{}/metrics", server.local_addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "callprobe_signaling_calls_started_total 500"),
        "{metrics}"
    );
}

//! The media server rooms will be tested on: a real Janus on loopback
//! ports, started with a generated configuration that loads VideoRoom and
//! nothing else, answering its API, gone once killed.

use std::time::Duration;

use callprobe_testkit::janus_server;

/// One request to Janus's HTTP API, its JSON answer.
async fn janus(url: &str, body: Option<serde_json::Value>) -> serde_json::Value {
    let client = reqwest::Client::new();
    let request = match body {
        Some(body) => client.post(url).body(body.to_string()),
        None => client.get(url),
    };
    let response = tokio::time::timeout(Duration::from_secs(5), request.send())
        .await
        .expect("janus answers within 5 s")
        .expect("janus answers");
    let text = response.text().await.expect("a body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janus_starts_on_loopback_with_videoroom_only_answers_and_is_gone_once_killed() {
    let Some(mut server) = tokio::task::spawn_blocking(|| janus_server::start("janus_starts"))
        .await
        .unwrap()
    else {
        return;
    };
    assert!(
        server.ws_url().starts_with("ws://127.0.0.1:"),
        "{}",
        server.ws_url()
    );
    let info = janus(&format!("{}/info", server.http_url()), None).await;
    assert_eq!(info["janus"], "server_info", "{info}");
    let plugins: Vec<&String> = info["plugins"]
        .as_object()
        .expect("plugins")
        .keys()
        .collect();
    assert_eq!(plugins, ["janus.plugin.videoroom"], "{info}");
    let transports: Vec<&String> = info["transports"]
        .as_object()
        .expect("transports")
        .keys()
        .collect();
    assert_eq!(transports.len(), 2, "{info}");
    // A session, as every client starts.
    let created = janus(
        &server.http_url(),
        Some(serde_json::json!({ "janus": "create", "transaction": "t1" })),
    )
    .await;
    assert_eq!(created["janus"], "success", "{created}");
    assert!(created["data"]["id"].as_u64().is_some(), "{created}");
    eprintln!("janus {} up: {}", info["version_string"], server.http_url());
    let http = server.http_url();
    server.kill();
    let gone = reqwest::Client::new()
        .get(format!("{http}/info"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(gone.is_err(), "janus still answers after the kill");
}

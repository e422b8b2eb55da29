//! HTTP on the signaling port (healthz, metrics, the page) and wss://.

use std::sync::Arc;

use callprobe_server::{Server, ServerConfig, TlsMode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::common::*;

fn http_url(server: &callprobe_server::RunningServer, path: &str) -> String {
    format!("http://{}{path}", server.local_addr())
}

#[tokio::test]
async fn healthz_answers_ok() {
    let server = server().await;
    let response = reqwest::get(http_url(&server, "/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok\n");
}

#[tokio::test]
async fn metrics_count_connections_calls_relays_and_errors() {
    let server = server().await;
    let (mut a, mut b) = call(&server.url()).await;
    assert_call_alive(&mut a, &mut b).await;
    a.send(serde_json::json!({"action": "nope"})).await;
    a.expect_error("unknown-action").await;

    let response = reqwest::get(http_url(&server, "/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    for line in [
        "callprobe_signaling_connections 2",
        "callprobe_signaling_peers 2",
        "callprobe_signaling_calls 1",
        "callprobe_signaling_calls_started_total 1",
        r#"callprobe_signaling_messages_relayed_total{action="offer"} 1"#,
        r#"callprobe_signaling_messages_relayed_total{action="answer"} 1"#,
        r#"callprobe_signaling_messages_relayed_total{action="iceCandidate"} 2"#,
        r#"callprobe_signaling_errors_total{code="unknown-action"} 1"#,
        r#"callprobe_signaling_errors_total{code="no-call"} 0"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn without_a_static_dir_root_serves_our_browser_peer() {
    let server = server().await;
    let response = reqwest::get(http_url(&server, "/")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("<script src=\"callprobe.js\">"), "{page}");
    let script = reqwest::get(http_url(&server, "/callprobe.js"))
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    let script = script.text().await.unwrap();
    // The tutorial's four actions, the automation hooks and the status API.
    for needle in [
        "'offer'",
        "'answer'",
        "'iceCandidate'",
        "send('start')",
        "autostart",
        "params.get('call')",
        "window.callprobe",
    ] {
        assert!(script.contains(needle), "callprobe.js lacks {needle}");
    }
    // Its data channel, loaded before it.
    assert!(
        page.find("datachannel.js") < page.find("callprobe.js"),
        "{page}"
    );
    let data = reqwest::get(http_url(&server, "/datachannel.js"))
        .await
        .unwrap();
    assert_eq!(data.status(), 200);
    let data = data.text().await.unwrap();
    assert!(data.contains("window.callprobeDataChannel"), "{data}");
}

#[tokio::test]
async fn the_static_dir_is_served_beside_the_websocket_on_root() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<title>Simple P2P example</title>",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main.js"),
        "const socket = new WebSocket('wss://localhost:8888');",
    )
    .unwrap();
    let server = Server::bind(ServerConfig {
        static_dir: Some(dir.path().to_owned()),
        ..ServerConfig::loopback()
    })
    .await
    .unwrap();
    let page = reqwest::get(http_url(&server, "/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Simple P2P example"));
    let script = reqwest::get(http_url(&server, "/main.js")).await.unwrap();
    assert!(script.text().await.unwrap().contains("new WebSocket"));
    let missing = reqwest::get(http_url(&server, "/nope.js")).await.unwrap();
    assert_eq!(missing.status(), 404);
    // The same `/` still upgrades to the signaling WebSocket.
    let (mut a, mut b) = call(&server.url()).await;
    assert_call_alive(&mut a, &mut b).await;
}

#[tokio::test]
async fn a_static_dir_that_does_not_exist_is_refused_at_start() {
    let err = Server::bind(ServerConfig {
        static_dir: Some("/nonexistent/callprobe".into()),
        ..ServerConfig::loopback()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/callprobe"), "{err}");
}

/// A wss:// client that trusts exactly `pem`.
async fn tls_client(url: &str, pem: &str) -> Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_tungstenite::Connector::Rustls(Arc::new(config));
    let (ws, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async_tls_with_config(url, None, true, Some(connector)),
    )
    .await
    .expect("TLS connect within the wait")
    .expect("wss handshake");
    let mut client = Client {
        ws,
        id: String::new(),
    };
    client.start().await;
    client
}

#[tokio::test]
async fn wss_with_a_self_signed_certificate_carries_a_whole_call() {
    let server = Server::bind(ServerConfig {
        tls: TlsMode::self_signed_localhost(),
        ..ServerConfig::loopback()
    })
    .await
    .unwrap();
    assert!(server.url().starts_with("wss://"));
    let pem = server.self_signed_certificate_pem().unwrap().to_owned();
    // The tutorial's page connects to wss://localhost:<port>.
    let url = format!("wss://localhost:{}/", server.local_addr().port());
    let mut caller = tls_client(&url, &pem).await;
    let mut callee = tls_client(&server.url(), &pem).await;
    caller.send(offer_to(&callee.id, "o")).await;
    callee.expect("offer").await;
    callee.send(answer_to(&caller.id, "a")).await;
    caller.expect("answer").await;
    assert_call_alive(&mut caller, &mut callee).await;
}

#[tokio::test]
async fn wss_with_certificate_files() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = Server::bind(ServerConfig {
        tls: TlsMode::Files { cert, key },
        ..ServerConfig::loopback()
    })
    .await
    .unwrap();
    let url = format!("wss://localhost:{}/", server.local_addr().port());
    let client = tls_client(&url, &certified.cert.pem()).await;
    assert_eq!(client.id.len(), 21);
}

#[tokio::test]
async fn a_plain_client_cannot_talk_to_a_tls_port() {
    let server = Server::bind(ServerConfig {
        tls: TlsMode::self_signed_localhost(),
        ..ServerConfig::loopback()
    })
    .await
    .unwrap();
    let plain = format!("ws://{}/", server.local_addr());
    let result = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(plain)).await;
    assert!(
        matches!(result, Ok(Err(_))),
        "refused, not hung: {result:?}"
    );
}

/// `--allowed-origin`: a page of another site is refused at the upgrade
/// (403, before any WebSocket exists); the allowed page, and clients that
/// are not browsers (no Origin), connect.
#[tokio::test]
async fn an_origin_not_on_the_allowed_list_is_refused_with_403() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    let server = Server::bind(ServerConfig {
        allowed_origins: vec!["https://app.example".to_owned()],
        ..ServerConfig::loopback()
    })
    .await
    .unwrap();
    let upgrade = |origin: Option<&str>| {
        let mut request = server.url().into_client_request().unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", HeaderValue::from_str(origin).unwrap());
        }
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
    };
    match upgrade(Some("https://evil.example"))
        .await
        .expect("bounded")
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("https://evil.example"), "{body}");
        }
        other => panic!("a foreign origin must get 403, got {other:?}"),
    }
    let (mut allowed, _) = upgrade(Some("https://app.example"))
        .await
        .expect("bounded")
        .expect("the allowed origin connects");
    use futures_util::{SinkExt, StreamExt};
    allowed
        .send(tokio_tungstenite::tungstenite::Message::text(
            r#"{"action":"start"}"#,
        ))
        .await
        .unwrap();
    let reply = tokio::time::timeout(WAIT, allowed.next())
        .await
        .expect("bounded");
    assert!(
        reply.is_some_and(|m| m.is_ok()),
        "the allowed page is served"
    );
    Client::started(&server.url()).await; // no Origin: not a browser page
    assert!(metrics_have(&server, "callprobe_signaling_origins_refused_total 1").await);
}

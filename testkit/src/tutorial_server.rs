//! A stand-in for the tutorial's original Node server, as DESIGN §3 records
//! its behaviour: ids on `start`, offers relayed with the caller's id, but
//! answers and candidates relayed without any `remoteId`, unknown targets
//! ignored, no errors, and nothing said when a peer leaves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use callprobe_server::protocol::PeerId;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

type Peers = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<String>>>>;

#[derive(Debug)]
pub struct TutorialServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TutorialServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peers = Peers::default();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, Arc::clone(&peers)));
            }
        });
        TutorialServer { addr, task }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }
}

impl Drop for TutorialServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(tcp: tokio::net::TcpStream, peers: Peers) {
    let Ok(socket) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
        }
    });
    let mut my_id = None;
    while let Some(Ok(Message::Text(text))) = stream.next().await {
        let Ok(message) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let action = message["action"].as_str().unwrap_or_default().to_owned();
        if action == "start" {
            let id = PeerId::random().to_string();
            peers.lock().unwrap().insert(id.clone(), tx.clone());
            let _ = tx.send(json!({"action": "start", "id": id}).to_string());
            my_id = Some(id);
            continue;
        }
        let mut data = message["data"].clone();
        let Some(target) = data["remoteId"].as_str().map(str::to_owned) else {
            continue;
        };
        if action == "offer" {
            data["remoteId"] = json!(my_id.clone().unwrap_or_default());
        } else if let Some(object) = data.as_object_mut() {
            object.remove("remoteId");
        }
        let target = peers.lock().unwrap().get(&target).cloned();
        if let Some(target) = target {
            let _ = target.send(json!({"action": action, "data": data}).to_string());
        }
    }
    if let Some(id) = my_id {
        peers.lock().unwrap().remove(&id);
    }
    writer.abort();
}

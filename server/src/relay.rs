//! Who is connected, who is in a call with whom, and delivery between them.
//!
//! One map from id to peer gives O(1) routing. Calls are stored on both
//! peers as partner sets, so "is there a call (A, B)" and "whom must I tell
//! when A leaves" are both lookups. The lock is held only for map work and
//! non-blocking queue pushes, never across an await.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, ErrorReply, PeerId, RelayAction, RelayRequest, ServerMessage};

/// Frames queued for one connection, already rendered.
pub(crate) type Outbox = mpsc::Sender<Utf8Bytes>;

struct Peer {
    outbox: Outbox,
    /// Cancelled when the hub gives up on this peer (its outbox is full):
    /// its connection task closes the socket.
    evicted: CancellationToken,
    /// The peers this one has a call with.
    calls: HashSet<PeerId>,
}

#[derive(Debug)]
pub(crate) struct Hub {
    peers: Mutex<HashMap<PeerId, Peer>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").field("calls", &self.calls).finish()
    }
}

impl Hub {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Self {
        Hub {
            peers: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PeerId, Peer>> {
        // A panic while holding the lock would be a bug in this module; the
        // map itself is still consistent (every mutation is one statement),
        // so keep serving rather than take every connection down with it.
        self.peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a connection under a fresh id.
    pub(crate) fn join(&self, outbox: Outbox, evicted: CancellationToken) -> PeerId {
        let mut peers = self.lock();
        let id = loop {
            // 126 random bits: a collision is not expected, but cheap to rule out.
            let id = PeerId::random();
            if !peers.contains_key(&id) {
                break id;
            }
        };
        peers.insert(
            id,
            Peer {
                outbox,
                evicted,
                calls: HashSet::new(),
            },
        );
        self.metrics.peers.inc();
        id
    }

    /// Relays `request` from `from`, enforcing call state. On error nothing
    /// is delivered and the reply says why.
    pub(crate) fn route(&self, from: PeerId, request: RelayRequest) -> Result<(), ErrorReply> {
        let action = request.action;
        if !request.dropped.is_empty() {
            self.metrics
                .fields_dropped
                .inc_by(request.dropped.len() as u64);
            tracing::debug!(%from, action = action.as_str(), dropped = ?request.dropped,
                "fields the protocol does not define were dropped");
        }
        let refuse = |code: ErrorCode, message: String, target: &str| {
            ErrorReply::new(code, message)
                .in_reply_to(action.as_str())
                .remote_id(target)
        };
        let Some(to) = PeerId::parse(&request.to) else {
            let message = format!("no peer with id {:?} is connected", short(&request.to));
            return Err(refuse(ErrorCode::UnknownPeer, message, short(&request.to)));
        };
        if to == from {
            let message = "remoteId is your own id; a peer cannot signal itself".to_owned();
            return Err(refuse(ErrorCode::BadMessage, message, to.as_str()));
        }
        let text = Utf8Bytes::from(ServerMessage::relayed(from, request).to_json());

        let mut peers = self.lock();
        if !peers.contains_key(&from) {
            // The sender was evicted a moment ago; its connection is closing.
            return Ok(());
        }
        let Some(target) = peers.get(&to) else {
            let message = format!("no peer with id {to} is connected");
            return Err(refuse(ErrorCode::UnknownPeer, message, to.as_str()));
        };
        let in_call = target.calls.contains(&from);
        match action {
            RelayAction::Offer if !in_call => {
                link(&mut peers, from, to);
                self.metrics.calls.inc();
                self.metrics.calls_started.inc();
            }
            RelayAction::Offer => {} // renegotiation (an ICE restart) in the same call
            RelayAction::Answer | RelayAction::IceCandidate | RelayAction::Hangup if !in_call => {
                let message = format!(
                    "no call with {to}: `{}` needs an offer between you first",
                    action.as_str()
                );
                return Err(refuse(ErrorCode::NoCall, message, to.as_str()));
            }
            RelayAction::Hangup => {
                unlink(&mut peers, from, to);
                self.metrics.calls.dec();
            }
            RelayAction::Answer | RelayAction::IceCandidate => {}
        }
        self.metrics.relayed(action);
        self.deliver(&mut peers, to, text);
        Ok(())
    }

    /// Removes a peer and tells everyone it had a call with.
    pub(crate) fn leave(&self, id: PeerId) {
        let mut peers = self.lock();
        self.remove(&mut peers, id);
    }

    /// Pushes a frame to `to`'s queue without waiting. A full queue means the
    /// connection is not reading: it is evicted rather than allowed to hold
    /// memory or slow the sender.
    fn deliver(&self, peers: &mut HashMap<PeerId, Peer>, to: PeerId, text: Utf8Bytes) {
        let Some(peer) = peers.get(&to) else { return };
        match peer.outbox.try_send(text) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(peer = %to, "outbox full, closing the connection");
                peer.evicted.cancel();
                self.remove(peers, to);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.remove(peers, to),
        }
    }

    fn remove(&self, peers: &mut HashMap<PeerId, Peer>, id: PeerId) {
        // A worklist, because telling a partner can evict that partner too.
        let mut gone = vec![id];
        while let Some(id) = gone.pop() {
            let Some(peer) = peers.remove(&id) else {
                continue;
            };
            self.metrics.peers.dec();
            let notice = Utf8Bytes::from(ServerMessage::PeerLeft { remote_id: id }.to_json());
            for partner_id in peer.calls {
                self.metrics.calls.dec();
                let Some(partner) = peers.get_mut(&partner_id) else {
                    continue;
                };
                partner.calls.remove(&id);
                self.metrics.peer_left_sent.inc();
                if partner.outbox.try_send(notice.clone()).is_err() {
                    partner.evicted.cancel();
                    gone.push(partner_id);
                }
            }
        }
    }

    #[cfg(test)]
    fn calls_of(&self, id: PeerId) -> Vec<PeerId> {
        let mut calls: Vec<_> = self.lock()[&id].calls.iter().copied().collect();
        calls.sort();
        calls
    }
}

fn link(peers: &mut HashMap<PeerId, Peer>, a: PeerId, b: PeerId) {
    for (x, y) in [(a, b), (b, a)] {
        if let Some(peer) = peers.get_mut(&x) {
            peer.calls.insert(y);
        }
    }
}

fn unlink(peers: &mut HashMap<PeerId, Peer>, a: PeerId, b: PeerId) {
    for (x, y) in [(a, b), (b, a)] {
        if let Some(peer) = peers.get_mut(&x) {
            peer.calls.remove(&y);
        }
    }
}

/// Client-supplied ids are echoed only in part, whatever their length.
fn short(text: &str) -> &str {
    match text.char_indices().nth(32) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    struct TestPeer {
        id: PeerId,
        inbox: mpsc::Receiver<Utf8Bytes>,
        evicted: CancellationToken,
    }

    fn join(hub: &Hub, capacity: usize) -> TestPeer {
        let (tx, inbox) = mpsc::channel(capacity);
        let evicted = CancellationToken::new();
        let id = hub.join(tx, evicted.clone());
        TestPeer { id, inbox, evicted }
    }

    fn request(action: RelayAction, to: PeerId) -> RelayRequest {
        let data = match action {
            RelayAction::Offer => json!({"offer": {"type": "offer", "sdp": "o"}}),
            RelayAction::Answer => json!({"answer": {"type": "answer", "sdp": "a"}}),
            RelayAction::IceCandidate => json!({"candidate": {"candidate": "c"}}),
            RelayAction::Hangup => json!({}),
        };
        let Value::Object(data) = data else {
            unreachable!()
        };
        RelayRequest {
            action,
            to: to.to_string(),
            data,
            dropped: Vec::new(),
        }
    }

    fn next(peer: &mut TestPeer) -> Value {
        let text = peer.inbox.try_recv().expect("a queued frame");
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn an_offer_opens_a_call_that_hangup_closes() {
        let hub = Hub::new(Arc::new(Metrics::new()));
        let mut a = join(&hub, 8);
        let mut b = join(&hub, 8);
        hub.route(a.id, request(RelayAction::Offer, b.id)).unwrap();
        assert_eq!(hub.calls_of(a.id), vec![b.id]);
        assert_eq!(hub.calls_of(b.id), vec![a.id]);
        assert_eq!(next(&mut b)["data"]["remoteId"], a.id.as_str());
        hub.route(b.id, request(RelayAction::Hangup, a.id)).unwrap();
        assert_eq!(next(&mut a)["action"], "hangup");
        assert!(hub.calls_of(a.id).is_empty());
        let err = hub
            .route(a.id, request(RelayAction::IceCandidate, b.id))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::NoCall);
    }

    #[test]
    fn leaving_tells_every_partner_once_and_clears_their_calls() {
        let hub = Hub::new(Arc::new(Metrics::new()));
        let a = join(&hub, 8);
        let mut b = join(&hub, 8);
        let mut c = join(&hub, 8);
        hub.route(b.id, request(RelayAction::Offer, a.id)).unwrap();
        hub.route(c.id, request(RelayAction::Offer, a.id)).unwrap();
        hub.leave(a.id);
        for peer in [&mut b, &mut c] {
            let notice = next(peer);
            assert_eq!(
                notice,
                json!({"action": "peerLeft", "data": {"remoteId": a.id}})
            );
            assert!(peer.inbox.try_recv().is_err(), "exactly one notice");
            assert!(hub.calls_of(peer.id).is_empty());
        }
        let err = hub
            .route(b.id, request(RelayAction::Offer, a.id))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownPeer);
    }

    #[test]
    fn a_peer_that_stops_reading_is_evicted_and_its_partner_told() {
        let hub = Hub::new(Arc::new(Metrics::new()));
        let mut a = join(&hub, 8);
        let slow = join(&hub, 2);
        hub.route(a.id, request(RelayAction::Offer, slow.id))
            .unwrap();
        for _ in 0..2 {
            hub.route(a.id, request(RelayAction::IceCandidate, slow.id))
                .unwrap();
        }
        assert!(slow.evicted.is_cancelled());
        assert_eq!(next(&mut a)["action"], "peerLeft");
        let err = hub
            .route(a.id, request(RelayAction::IceCandidate, slow.id))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownPeer);
    }
}

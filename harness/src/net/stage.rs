//! One direction of a link: while it is impaired, every datagram goes
//! through a per-flow emulator, and a task releases the ones it delays.
//! While it is clear, datagrams pass straight through (one atomic load).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use str0m_netem::{Input, Netem, Output};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use webrtc::runtime::AsyncUdpSocket;

use super::flow::{Flow, classify, is_newer};
use super::impairment::Impairment;
use super::link::{Endpoint, into_inbox};

/// A datagram held by the network: where it goes, and through what.
#[derive(Clone)]
pub(crate) struct Datagram {
    pub bytes: Bytes,
    /// The sending socket's address, which the receiver sees.
    pub source: SocketAddr,
    pub destination: SocketAddr,
    /// The sender's real socket.
    pub socket: Arc<dyn AsyncUdpSocket>,
    /// The receiving socket, when it is one of the network's: its link's
    /// inbound stage is next, then its inbox.
    pub into: Option<Endpoint>,
    /// Whether the receiving socket's inbox may take it (the sender's
    /// source address is its own).
    pub in_memory: bool,
}

impl AsRef<[u8]> for Datagram {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Datagram {
    /// Onwards from the outbound stage: the receiver's inbound stage, then
    /// the wire.
    async fn deliver_from_outbound(self) {
        let into = self.into.as_ref().and_then(|e| e.link.upgrade());
        match into {
            Some(link) => {
                if let Some(datagram) = link.inbound.offer(self) {
                    datagram.send().await;
                }
            }
            None => self.send().await,
        }
    }

    async fn send(self) {
        let into = self.into.as_ref().filter(|_| self.in_memory);
        if let Some(inbox) = into.and_then(|e| e.inbox.upgrade()) {
            let receiver = into.and_then(|e| e.link.upgrade());
            into_inbox(&inbox, receiver.as_deref(), self.source, self.bytes);
            return;
        }
        // UDP: a send that fails is a datagram lost, as on a real network.
        let _ = self.socket.send_to(&self.bytes, self.destination).await;
    }
}

/// Original media datagrams seen and lost per flow, by their index in the
/// flow: the replayable part of a loss pattern.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FlowLosses {
    pub originals: u64,
    /// Indices of the lost ones (the first `LOSS_LOG_LIMIT`).
    pub lost: Vec<u64>,
}

const LOSS_LOG_LIMIT: usize = 10_000;

struct FlowQueue {
    netem: Netem<Datagram>,
}

#[derive(Default)]
struct StageState {
    impairment: Impairment,
    /// Bumped by every change of impairment, so that each one draws its
    /// own random sequence.
    generation: u64,
    flows: HashMap<Flow, FlowQueue>,
    /// Sequence tracking survives changes of impairment.
    last_seq: HashMap<u8, u16>,
    dropped: u64,
    losses: BTreeMap<u8, FlowLosses>,
}

pub(crate) struct Stage {
    seed: u64,
    outbound: bool,
    /// Impaired, or still holding delayed datagrams.
    engaged: AtomicBool,
    state: Mutex<StageState>,
    wake: Notify,
    pump_started: AtomicBool,
}

impl Stage {
    pub(crate) fn new(seed: u64, outbound: bool) -> Self {
        Stage {
            seed,
            outbound,
            engaged: AtomicBool::new(false),
            state: Mutex::new(StageState::default()),
            wake: Notify::new(),
            pump_started: AtomicBool::new(false),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, StageState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn is_engaged(&self) -> bool {
        self.engaged.load(Ordering::Acquire)
    }

    /// Changes what this direction suffers from now on; datagrams already
    /// delayed keep their release times.
    pub(crate) fn set(self: &Arc<Self>, impairment: Impairment, stop: &CancellationToken) {
        let mut state = self.state();
        state.generation += 1;
        let generation = state.generation;
        for (flow, queue) in state.flows.iter_mut() {
            queue
                .netem
                .set_config(impairment.netem(self.flow_seed(*flow, generation)));
        }
        let engaged = !impairment.is_clear() || state.flows.values().any(|q| !q.netem.is_empty());
        state.impairment = impairment;
        drop(state);
        self.engaged.store(engaged, Ordering::Release);
        if engaged && !self.pump_started.swap(true, Ordering::AcqRel) {
            tokio::spawn(Arc::clone(self).pump(stop.clone()));
        }
        self.wake.notify_one();
    }

    fn flow_seed(&self, flow: Flow, generation: u64) -> u64 {
        mix(mix(self.seed, flow.ordinal()), generation)
    }

    /// Takes a datagram in; gives it back when it should go on untouched.
    pub(crate) fn offer(&self, datagram: Datagram) -> Option<Datagram> {
        if !self.is_engaged() {
            return Some(datagram);
        }
        let mut state = self.state();
        let idle = state.impairment.is_clear() && state.flows.values().all(|q| q.netem.is_empty());
        if idle {
            self.engaged.store(false, Ordering::Release);
            return Some(datagram);
        }
        if state.impairment.blackhole {
            state.dropped += 1;
            return None;
        }
        let (mut flow, seq) = classify(&datagram.bytes);
        let mut original = None;
        if let (Flow::Media { payload_type }, Some(seq)) = (flow, seq) {
            match state.last_seq.get(&payload_type) {
                Some(&last) if !is_newer(seq, last) => flow = Flow::Retransmission,
                _ => {
                    state.last_seq.insert(payload_type, seq);
                    original = Some(payload_type);
                }
            }
        }
        let (generation, impairment) = (state.generation, state.impairment.clone());
        let seed = self.flow_seed(flow, generation);
        let queue = state.flows.entry(flow).or_insert_with(|| FlowQueue {
            netem: Netem::new(impairment.netem(seed)),
        });
        let before = queue.netem.queue_len();
        queue
            .netem
            .handle_input(Input::Packet(Instant::now(), datagram));
        let lost = queue.netem.queue_len() == before;
        if lost {
            state.dropped += 1;
        }
        if let Some(payload_type) = original {
            let log = state.losses.entry(payload_type).or_default();
            if lost && log.lost.len() < LOSS_LOG_LIMIT {
                log.lost.push(log.originals);
            }
            log.originals += 1;
        }
        drop(state);
        if !lost {
            self.wake.notify_one();
        }
        None
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.state().dropped
    }

    pub(crate) fn losses(&self) -> BTreeMap<u8, FlowLosses> {
        self.state().losses.clone()
    }

    /// Releases delayed datagrams when they are due, until the link goes.
    async fn pump(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let woken = self.wake.notified();
            let (due, next) = {
                let mut state = self.state();
                let now = Instant::now();
                let mut due = Vec::new();
                for queue in state.flows.values_mut() {
                    queue.netem.handle_input(Input::Timeout(now));
                    while let Some(output) = queue.netem.poll_output() {
                        if let Output::Packet(datagram) = output {
                            due.push(datagram);
                        }
                    }
                }
                let next = state.flows.values().map(|q| q.netem.poll_timeout()).min();
                (due, next)
            };
            for datagram in due {
                if self.outbound {
                    datagram.deliver_from_outbound().await;
                } else {
                    datagram.send().await;
                }
            }
            // Far-future "never" from an empty emulator: wait for news instead.
            let next = next.filter(|at| *at < Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                () = stop.cancelled() => return,
                () = woken => {}
                () = sleep_until(next) => {}
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// SplitMix64 of a combination: seeds that differ in one input differ
/// everywhere.
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

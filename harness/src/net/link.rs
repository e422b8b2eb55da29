//! A peer's attachment to the in-process network, and the network that
//! routes between attachments.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::impairment::{Direction, Impairment};
use super::inbox::Inbox;
use super::stage::{FlowLosses, Stage, mix};

/// Every link of a run, by the socket addresses their connections bound:
/// a datagram to one of them goes through its inbound stage and into its
/// inbox, never through the kernel.
#[derive(Debug)]
pub struct Network {
    seed: u64,
    sockets: RwLock<HashMap<SocketAddr, Endpoint>>,
}

/// A socket of the network, as senders find it. Weak, so that neither a
/// route nor a queued datagram keeps a link or a socket alive.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub link: Weak<Link>,
    pub inbox: Weak<Inbox>,
}

/// Hands a datagram from `from` to a socket's inbox; one dropped because
/// the inbox is full is counted against the receiving link.
pub(crate) fn into_inbox(inbox: &Inbox, receiver: Option<&Link>, from: SocketAddr, bytes: Bytes) {
    if !inbox.push(from, bytes)
        && let Some(receiver) = receiver
    {
        receiver
            .counters
            .receive_overflows
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl Network {
    pub fn new(seed: u64) -> Arc<Network> {
        Arc::new(Network {
            seed,
            sockets: RwLock::new(HashMap::new()),
        })
    }

    /// Attaches a peer at `ip`; the caller owns the link's control.
    pub(crate) fn attach(self: &Arc<Self>, peer: u16, ip: IpAddr) -> LinkControl {
        let seed = mix(self.seed, u64::from(peer));
        LinkControl(Arc::new(Link {
            network: Arc::clone(self),
            peer,
            ip: RwLock::new(ip),
            silent: AtomicBool::new(false),
            outbound: Arc::new(Stage::new(mix(seed, 1), true)),
            inbound: Arc::new(Stage::new(mix(seed, 2), false)),
            counters: LinkCounters::default(),
            media_paths: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
        }))
    }

    pub(crate) fn lookup(&self, address: SocketAddr) -> Option<Endpoint> {
        self.sockets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&address)
            .cloned()
    }

    pub(crate) fn register(&self, address: SocketAddr, link: &Arc<Link>, inbox: &Arc<Inbox>) {
        let endpoint = Endpoint {
            link: Arc::downgrade(link),
            inbox: Arc::downgrade(inbox),
        };
        self.sockets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(address, endpoint);
    }

    pub(crate) fn unregister(&self, address: SocketAddr) {
        self.sockets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&address);
    }
}

/// Datagrams counted at a link's sockets.
#[derive(Debug, Default)]
pub(crate) struct LinkCounters {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Dropped because the link was silent or the socket's address gone.
    pub silenced: AtomicU64,
    /// Sent to a socket of the same network, handed over in memory.
    pub sent_in_memory: AtomicU64,
    /// Dropped on arrival because a socket's receive queue was full (the
    /// peer fell behind reading).
    pub receive_overflows: AtomicU64,
}

/// The addresses media from a remote peer was seen arriving on, from a
/// time on: the candidate pair that is really in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct MediaPath {
    #[serde(skip)]
    pub since: Instant,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// Bound on the media paths a link remembers.
const MEDIA_PATH_LIMIT: usize = 64;

#[derive(Debug)]
pub struct Link {
    network: Arc<Network>,
    pub peer: u16,
    /// The address the peer has now; sockets bound to any other have lost
    /// their interface.
    ip: RwLock<IpAddr>,
    silent: AtomicBool,
    pub(crate) outbound: Arc<Stage>,
    pub(crate) inbound: Arc<Stage>,
    pub(crate) counters: LinkCounters,
    media_paths: Mutex<Vec<MediaPath>>,
    /// Ends the stages' release tasks when the link goes.
    stop: CancellationToken,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("engaged", &self.is_engaged())
            .finish_non_exhaustive()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Link {
    pub fn network(&self) -> &Arc<Network> {
        &self.network
    }

    pub fn ip(&self) -> IpAddr {
        *self
            .ip
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn move_to(&self, ip: IpAddr) {
        *self
            .ip
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = ip;
    }

    fn silence(&self) {
        self.silent.store(true, Ordering::Release);
    }

    pub(crate) fn is_silent(&self) -> bool {
        self.silent.load(Ordering::Acquire)
    }

    /// Whether a socket bound to `local` can still send and receive.
    pub(crate) fn carries(&self, local: SocketAddr) -> bool {
        !self.is_silent() && local.ip() == self.ip()
    }

    fn impair(&self, direction: Direction, impairment: Impairment) {
        if direction.includes_out() {
            self.outbound.set(impairment.clone(), &self.stop);
        }
        if direction.includes_in() {
            self.inbound.set(impairment, &self.stop);
        }
    }

    /// Datagrams the impairments dropped, (inbound, outbound).
    pub(crate) fn impairment_drops(&self) -> (u64, u64) {
        (self.inbound.dropped(), self.outbound.dropped())
    }

    /// Original media datagrams and the ones lost, per payload type and
    /// direction ("in", "out").
    pub fn losses(&self) -> BTreeMap<&'static str, BTreeMap<u8, FlowLosses>> {
        BTreeMap::from([
            ("in", self.inbound.losses()),
            ("out", self.outbound.losses()),
        ])
    }

    pub(crate) fn saw_media(&self, local: SocketAddr, remote: SocketAddr) {
        let mut paths = self
            .media_paths
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let known = paths
            .iter()
            .rev()
            .any(|p| p.local == local && p.remote == remote);
        if !known && paths.len() < MEDIA_PATH_LIMIT {
            paths.push(MediaPath {
                since: Instant::now(),
                local,
                remote,
            });
        }
    }

    /// Every path media arrived on, in order of first use.
    pub(crate) fn media_paths(&self) -> Vec<MediaPath> {
        self.media_paths
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// The one hand that changes a link (its address, its silence, its
/// impairments), at the moment it is used. It is not `Clone`: whoever
/// holds it owns the link (the runner, for a scenario's peers), and the
/// peer and its sockets hold the `Arc<Link>` only to use and read it.
#[derive(Debug)]
pub(crate) struct LinkControl(Arc<Link>);

impl LinkControl {
    /// The link, for the peer that sends on it and for reading it.
    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.0
    }

    /// The peer's address changes: sockets bound to the old one go dead,
    /// and a connection that rebinds gets the new one.
    pub(crate) fn move_to(&self, ip: IpAddr) {
        self.0.move_to(ip);
    }

    /// Every datagram in and out is dropped from now on (the peer's network
    /// or process is gone).
    pub(crate) fn silence(&self) {
        self.0.silence();
    }

    pub(crate) fn impair(&self, direction: Direction, impairment: Impairment) {
        self.0.impair(direction, impairment);
    }

    pub(crate) fn restore(&self, direction: Direction) {
        self.0.impair(direction, Impairment::default());
    }
}

/// What a connection on a link binds: the link's address at the time of
/// binding (asked again when an ICE restart rebinds), or a fixed one.
#[derive(Clone, Debug)]
pub(crate) enum BindAddress {
    Fixed(SocketAddr),
    Link(Arc<Link>),
}

impl ToSocketAddrs for BindAddress {
    type Iter = std::option::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> std::io::Result<Self::Iter> {
        let address = match self {
            BindAddress::Fixed(address) => *address,
            BindAddress::Link(link) => SocketAddr::new(link.ip(), 0),
        };
        Ok(Some(address).into_iter())
    }
}

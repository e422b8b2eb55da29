//! A UDP socket on a link: the link's silence, address and impairments
//! applied on the way; datagrams to another socket of the network handed
//! over in memory, the real socket underneath for everyone else.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use webrtc::runtime::{AsyncUdpSocket, RecvMeta, Transmit};

use super::flow::{Flow, classify};
use super::handshake::{HandshakeFence, received};
use super::inbox::Inbox;
use super::link::{Endpoint, Link, into_inbox};
use super::stage::Datagram;

#[derive(Debug)]
pub(crate) struct LinkSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    local: SocketAddr,
    link: Arc<Link>,
    /// Where datagrams from sockets of the same network arrive.
    inbox: Arc<Inbox>,
    /// Whether datagrams to sockets of the network may skip the kernel: the
    /// source they would carry is known only when the socket is bound to
    /// an address of its own.
    in_memory: bool,
    /// The last destination and its socket, if it is one of the network's:
    /// a connection sends almost all it sends to one address.
    route: Mutex<Option<(SocketAddr, Endpoint)>>,
    /// Receives taken from the inbox in a row, so that the real socket
    /// (a TURN server, Janus) is not starved by a busy one.
    inbox_streak: AtomicU32,
    /// A hash of the address media last came from (0: none yet).
    last_media_source: AtomicU64,
    /// The receive after a DTLS handshake record waits a turn.
    fence: HandshakeFence,
}

/// Receives from the inbox before the real socket gets its turn.
const INBOX_STREAK: u32 = 16;

impl LinkSocket {
    pub(crate) fn new(inner: Arc<dyn AsyncUdpSocket>, link: Arc<Link>) -> io::Result<Self> {
        let local = inner.local_addr()?;
        let inbox = Arc::new(Inbox::default());
        link.network().register(local, &link, &inbox);
        Ok(LinkSocket {
            inner,
            local,
            link,
            inbox,
            in_memory: !local.ip().is_unspecified(),
            route: Mutex::new(None),
            inbox_streak: AtomicU32::new(0),
            last_media_source: AtomicU64::new(0),
            fence: HandshakeFence::default(),
        })
    }

    /// The network's socket at `destination`, if there is one.
    fn endpoint(&self, destination: SocketAddr) -> Option<Endpoint> {
        let mut route = self
            .route
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((address, endpoint)) = route.as_ref()
            && *address == destination
            && endpoint.inbox.strong_count() > 0
        {
            return Some(endpoint.clone());
        }
        let found = self.link.network().lookup(destination);
        *route = found.clone().map(|endpoint| (destination, endpoint));
        found
    }

    /// Hands `bytes` to the receiving socket's inbox.
    fn deliver_in_memory(&self, inbox: &Inbox, receiver: Option<&Arc<Link>>, bytes: Bytes) {
        self.link.counters.sent_in_memory.fetch_add(1, Relaxed);
        into_inbox(inbox, receiver.map(Arc::as_ref), self.local, bytes);
    }

    /// Tells the link where media comes from, when that changes (one
    /// atomic compare per datagram otherwise).
    fn note_media_source(&self, datagram: &[u8], from: SocketAddr) {
        if !matches!(classify(datagram).0, Flow::Media { .. }) {
            return;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&from, &mut hasher);
        let key = std::hash::Hasher::finish(&hasher) | 1;
        if self.last_media_source.swap(key, Relaxed) != key {
            self.link.saw_media(self.local, from);
        }
    }

    /// One receive from the inbox or the real socket, the inbox first
    /// except every `INBOX_STREAK`th time.
    fn poll_either(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        if self.inbox_streak.load(Relaxed) >= INBOX_STREAK {
            self.inbox_streak.store(0, Relaxed);
            if let ready @ Poll::Ready(_) = self.inner.poll_recv(cx, bufs, meta) {
                return ready;
            }
        }
        let n = self.inbox.take(cx.waker(), self.local, bufs, meta);
        if n > 0 {
            self.inbox_streak.fetch_add(1, Relaxed);
            return Poll::Ready(Ok(n));
        }
        self.inbox_streak.store(0, Relaxed);
        self.inner.poll_recv(cx, bufs, meta)
    }
}

impl Drop for LinkSocket {
    fn drop(&mut self) {
        self.link.network().unregister(self.local);
    }
}

impl AsyncUdpSocket for LinkSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let len = transmit.contents.len();
        if !self.link.carries(self.local) {
            self.link.counters.silenced.fetch_add(1, Relaxed);
            return Poll::Ready(Ok(len)); // gone into the void, as UDP does
        }
        self.link.counters.sent.fetch_add(1, Relaxed);
        let endpoint = self.endpoint(transmit.destination);
        let receiver = endpoint.as_ref().and_then(|e| e.link.upgrade());
        let inbox = endpoint
            .as_ref()
            .filter(|_| self.in_memory && transmit.src_ip.is_none_or(|ip| ip == self.local.ip()))
            .and_then(|e| e.inbox.upgrade());
        let receiver_impaired = receiver.as_ref().is_some_and(|r| r.inbound.is_engaged());
        if self.link.outbound.is_engaged() || receiver_impaired {
            let datagram = Datagram {
                bytes: Bytes::copy_from_slice(transmit.contents),
                source: self.local,
                destination: transmit.destination,
                socket: Arc::clone(&self.inner),
                into: endpoint.clone(),
                in_memory: inbox.is_some(),
            };
            let passed = self
                .link
                .outbound
                .offer(datagram)
                .and_then(|datagram| match &receiver {
                    Some(receiver) => receiver.inbound.offer(datagram),
                    None => Some(datagram),
                });
            match (passed, &inbox) {
                (None, _) => return Poll::Ready(Ok(len)), // held (delayed) or lost
                (Some(datagram), Some(inbox)) => {
                    self.deliver_in_memory(inbox, receiver.as_ref(), datagram.bytes);
                    return Poll::Ready(Ok(len));
                }
                (Some(_), None) => {}
            }
        }
        if let Some(inbox) = &inbox {
            // GSO is not offered (`max_gso_segments` is 1), but a segment
            // size may still come: each segment is a datagram of its own.
            let segment = transmit.segment_size.unwrap_or(len).max(1);
            for chunk in transmit.contents.chunks(segment) {
                self.deliver_in_memory(inbox, receiver.as_ref(), Bytes::copy_from_slice(chunk));
            }
            return Poll::Ready(Ok(len));
        }
        self.inner.poll_send(cx, transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        if self.fence.holds(cx) {
            return Poll::Pending;
        }
        loop {
            match self.poll_either(cx, bufs, meta) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    if !self.link.carries(self.local) {
                        // The interface is gone: nothing arrives.
                        self.link.counters.silenced.fetch_add(n as u64, Relaxed);
                        continue;
                    }
                    self.link.counters.received.fetch_add(n as u64, Relaxed);
                    for (datagram, meta) in received(bufs, meta, n).zip(meta.iter()) {
                        self.note_media_source(datagram, meta.addr);
                    }
                    self.fence.passed(received(bufs, meta, n));
                    return Poll::Ready(Ok(n));
                }
                other => return other,
            }
        }
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    use webrtc::runtime::Runtime;

    use super::*;
    use crate::net::handshake::tests::WakeCount;
    use crate::net::inbox::INBOX_LIMIT;
    use crate::net::{Direction, Impairment, LinkControl, Network, PeerRuntime};

    const BOUND: Duration = Duration::from_secs(5);

    fn socket_on(control: &LinkControl) -> Arc<dyn AsyncUdpSocket> {
        let link = control.link();
        let real = std::net::UdpSocket::bind((link.ip(), 0)).expect("bind on loopback");
        PeerRuntime::new(Some(Arc::clone(link)))
            .wrap_udp_socket(real)
            .expect("wrap")
    }

    async fn receive(socket: &dyn AsyncUdpSocket) -> (SocketAddr, Vec<u8>) {
        let mut buf = vec![0u8; 2048];
        let (len, from) = tokio::time::timeout(BOUND, socket.recv_from(&mut buf))
            .await
            .expect("a datagram within the bound")
            .expect("receive");
        (from, buf[..len].to_vec())
    }

    fn tagged(sender: u8, seq: u16) -> Vec<u8> {
        let mut bytes = vec![sender, 0, 0];
        bytes[1..3].copy_from_slice(&seq.to_be_bytes());
        bytes.resize(100 + usize::from(sender), sender); // sizes differ too
        bytes
    }

    /// Four senders on two links write to four receivers at once, every
    /// datagram through memory: each receiver gets exactly its own
    /// sender's datagrams, whole, in order and from that sender's address.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn datagrams_between_sockets_of_a_network_never_cross() {
        const EACH: u16 = 400; // under the inbox limit: none may be dropped
        let network = Network::new(7);
        let links = [
            network.attach(0, IpAddr::from([127, 0, 0, 31])),
            network.attach(1, IpAddr::from([127, 0, 0, 32])),
        ];
        let senders: Vec<_> = (0..4).map(|i| socket_on(&links[i % 2])).collect();
        let receivers: Vec<_> = (0..4).map(|i| socket_on(&links[(i + 1) % 2])).collect();
        let expected_from: Vec<_> = senders.iter().map(|s| s.local_addr().unwrap()).collect();

        let mut readers = Vec::new();
        for (i, receiver) in receivers.iter().enumerate() {
            let receiver = Arc::clone(receiver);
            let from = expected_from[i];
            readers.push(tokio::spawn(async move {
                for seq in 0..EACH {
                    let (source, bytes) = receive(&*receiver).await;
                    assert_eq!(source, from, "receiver {i}: datagram {seq}'s source");
                    assert_eq!(bytes, tagged(i as u8, seq), "receiver {i}: datagram {seq}");
                }
            }));
        }
        let mut writers = Vec::new();
        for (i, sender) in senders.iter().enumerate() {
            let sender = Arc::clone(sender);
            let to = receivers[i].local_addr().unwrap();
            writers.push(tokio::spawn(async move {
                for seq in 0..EACH {
                    sender.send_to(&tagged(i as u8, seq), to).await.unwrap();
                    if seq % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
        for task in writers.into_iter().chain(readers) {
            task.await.expect("no assertion failed");
        }
        for (i, receiver) in receivers.iter().enumerate() {
            let mut buf = [0u8; 256];
            let mut bufs = [IoSliceMut::new(&mut buf)];
            let mut meta = [RecvMeta::default()];
            let mut cx = Context::from_waker(std::task::Waker::noop());
            let extra = receiver.poll_recv(&mut cx, &mut bufs, &mut meta);
            assert!(
                extra.is_pending(),
                "receiver {i} got a datagram it was not sent"
            );
        }
        for control in &links {
            let counters = &control.link().counters;
            assert_eq!(counters.sent_in_memory.load(Relaxed), 2 * u64::from(EACH));
            assert_eq!(counters.received.load(Relaxed), 2 * u64::from(EACH));
            assert_eq!(counters.receive_overflows.load(Relaxed), 0);
        }
    }

    /// A delayed datagram released by the link's stage lands in the right
    /// socket with its sender's address, and a full inbox drops (counted)
    /// rather than grows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delayed_datagrams_keep_their_source_and_a_full_inbox_drops() {
        let network = Network::new(8);
        let (a, b) = (
            network.attach(0, IpAddr::from([127, 0, 0, 33])),
            network.attach(1, IpAddr::from([127, 0, 0, 34])),
        );
        let (sender, other, receiver) = (socket_on(&a), socket_on(&a), socket_on(&b));
        let to = receiver.local_addr().unwrap();
        a.impair(
            Direction::Out,
            Impairment {
                delay: Duration::from_millis(30),
                ..Impairment::default()
            },
        );
        other.send_to(b"other", to).await.unwrap();
        sender.send_to(b"delayed", to).await.unwrap();
        let firsts = [receive(&*receiver).await, receive(&*receiver).await];
        assert!(firsts.contains(&(other.local_addr().unwrap(), b"other".to_vec())));
        assert!(firsts.contains(&(sender.local_addr().unwrap(), b"delayed".to_vec())));
        a.restore(Direction::Out);

        // Nobody reads: the inbox keeps its limit and counts the rest.
        let overflow = 20;
        for _ in 0..INBOX_LIMIT + overflow {
            sender.send_to(b"flood", to).await.unwrap();
        }
        let counters = &b.link().counters;
        assert_eq!(counters.receive_overflows.load(Relaxed), overflow as u64);
    }

    /// After a DTLS handshake record the next receive waits one turn (and
    /// wakes its task), then the datagrams behind it come in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handshake_record_ends_the_receive_burst_once() {
        let network = Network::new(10);
        let (a, b) = (
            network.attach(0, IpAddr::from([127, 0, 0, 37])),
            network.attach(1, IpAddr::from([127, 0, 0, 38])),
        );
        let (sender, receiver) = (socket_on(&a), socket_on(&b));
        let to = receiver.local_addr().unwrap();
        let finished = [22u8, 0xfe, 0xfd, 0, 1];
        let rtp = tagged(1, 7);
        for datagram in [&finished[..], &rtp, &rtp] {
            sender.send_to(datagram, to).await.unwrap();
        }
        let woken = Arc::new(WakeCount::default());
        let waker = std::task::Waker::from(Arc::clone(&woken));
        let mut cx = Context::from_waker(&waker);
        let mut poll = || {
            let mut buf = [0u8; 256];
            let mut bufs = [IoSliceMut::new(&mut buf)];
            let mut meta = [RecvMeta::default()];
            match receiver.poll_recv(&mut cx, &mut bufs, &mut meta) {
                Poll::Ready(Ok(1)) => Some(buf[..meta[0].len].to_vec()),
                Poll::Pending => None,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(poll(), Some(finished.to_vec()));
        assert_eq!(poll(), None, "the burst ends behind the handshake record");
        assert_eq!(woken.0.load(Relaxed), 1, "and the reader is woken to go on");
        assert_eq!(poll(), Some(rtp.clone()));
        assert_eq!(poll(), Some(rtp), "media behind media is one burst");
    }

    /// Outside the network (a TURN server, Janus, a browser), datagrams go
    /// through the kernel both ways.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn datagrams_to_and_from_outside_the_network_use_the_real_socket() {
        let network = Network::new(9);
        let a = network.attach(0, IpAddr::from([127, 0, 0, 35]));
        let ours = socket_on(&a);
        let outside = tokio::net::UdpSocket::bind("127.0.0.36:0").await.unwrap();
        let outside_at = outside.local_addr().unwrap();

        ours.send_to(b"out", outside_at).await.unwrap();
        let mut buf = [0u8; 16];
        let (len, from) = tokio::time::timeout(BOUND, outside.recv_from(&mut buf))
            .await
            .expect("within the bound")
            .unwrap();
        assert_eq!(
            (&buf[..len], from),
            (&b"out"[..], ours.local_addr().unwrap())
        );
        assert_eq!(a.link().counters.sent_in_memory.load(Relaxed), 0);

        outside
            .send_to(b"in", ours.local_addr().unwrap())
            .await
            .unwrap();
        assert_eq!(receive(&*ours).await, (outside_at, b"in".to_vec()));
    }
}

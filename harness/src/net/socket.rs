//! A UDP socket on a link: the real socket underneath, with the link's
//! silence, address and impairments applied on the way.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use bytes::Bytes;
use webrtc::runtime::{AsyncUdpSocket, RecvMeta, Transmit};

use super::flow::{Flow, classify};
use super::link::Link;
use super::stage::Datagram;

#[derive(Debug)]
pub(crate) struct LinkSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    local: SocketAddr,
    link: Arc<Link>,
    /// A hash of the address media last came from (0: none yet).
    last_media_source: AtomicU64,
}

impl LinkSocket {
    pub(crate) fn new(inner: Arc<dyn AsyncUdpSocket>, link: Arc<Link>) -> io::Result<Self> {
        let local = inner.local_addr()?;
        link.network().register(local, &link);
        Ok(LinkSocket {
            inner,
            local,
            link,
            last_media_source: AtomicU64::new(0),
        })
    }
}

impl LinkSocket {
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
        // Clear paths (the common case) cost two atomic loads, no lookup.
        let network = self.link.network();
        if self.link.outbound.is_engaged() || network.receivers_impaired() {
            let into = network.lookup(transmit.destination);
            let receiver = into.as_ref().and_then(std::sync::Weak::upgrade);
            let receiver_impaired = receiver.as_ref().is_some_and(|r| r.inbound.is_engaged());
            if self.link.outbound.is_engaged() || receiver_impaired {
                let datagram = Datagram {
                    bytes: Bytes::copy_from_slice(transmit.contents),
                    destination: transmit.destination,
                    socket: Arc::clone(&self.inner),
                    into,
                };
                let passed =
                    self.link
                        .outbound
                        .offer(datagram)
                        .and_then(|datagram| match &receiver {
                            Some(receiver) => receiver.inbound.offer(datagram),
                            None => Some(datagram),
                        });
                if passed.is_none() {
                    return Poll::Ready(Ok(len)); // held (delayed) or lost
                }
            }
        }
        self.inner.poll_send(cx, transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.inner.poll_recv(cx, bufs, meta) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    if !self.link.carries(self.local) {
                        // The interface is gone: nothing arrives.
                        self.link.counters.silenced.fetch_add(n as u64, Relaxed);
                        continue;
                    }
                    self.link.counters.received.fetch_add(n as u64, Relaxed);
                    for (buf, meta) in bufs.iter().zip(meta.iter()).take(n) {
                        self.note_media_source(&buf[..meta.len.min(buf.len())], meta.addr);
                    }
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

//! Ending a receive burst behind a DTLS handshake record, on every socket
//! a synthetic peer opens (on a link or not).
//!
//! The library takes a handshake's keys into use only between two turns
//! of its driver, while it reads a burst of datagrams in one turn: SRTP
//! right behind the last DTLS flight (a DTLS server sends its first frame
//! as soon as it has sent that flight) was dropped as
//! "remote_srtp_context is not set yet" (UPSTREAM.md), and the receiver
//! waited for a keyframe it had to ask for. So after a handshake record
//! the next receive says "not yet" once and wakes the driver, which ends
//! its burst and takes the keys first.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use webrtc::runtime::{AsyncUdpSocket, RecvMeta, Transmit};

use super::flow::is_dtls_handshake;

/// Whether the last datagram handed up was a DTLS handshake record.
#[derive(Debug, Default)]
pub(crate) struct HandshakeFence(AtomicBool);

impl HandshakeFence {
    /// True when this receive must wait a turn (its task is woken to go
    /// on): once, right after a handshake record was handed up.
    pub(crate) fn holds(&self, cx: &mut Context<'_>) -> bool {
        let holds = self.0.swap(false, Relaxed);
        if holds {
            cx.waker().wake_by_ref();
        }
        holds
    }

    /// Notes the datagrams one receive handed up.
    pub(crate) fn passed<'a>(&self, datagrams: impl IntoIterator<Item = &'a [u8]>) {
        if datagrams.into_iter().any(is_dtls_handshake) {
            self.0.store(true, Relaxed);
        }
    }
}

/// A real UDP socket (a peer on no link) with the fence on its receives.
#[derive(Debug)]
pub(crate) struct FencedSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    fence: HandshakeFence,
}

impl FencedSocket {
    pub(crate) fn new(inner: Arc<dyn AsyncUdpSocket>) -> Self {
        FencedSocket {
            inner,
            fence: HandshakeFence::default(),
        }
    }
}

/// The datagrams a receive of `n` filled in.
pub(crate) fn received<'a>(
    bufs: &'a [IoSliceMut<'_>],
    meta: &'a [RecvMeta],
    n: usize,
) -> impl Iterator<Item = &'a [u8]> {
    bufs.iter()
        .zip(meta)
        .take(n)
        .map(|(buf, meta)| &buf[..meta.len.min(buf.len())])
}

impl AsyncUdpSocket for FencedSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
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
        let polled = self.inner.poll_recv(cx, bufs, meta);
        if let Poll::Ready(Ok(n)) = polled {
            self.fence.passed(received(bufs, meta, n));
        }
        polled
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    use webrtc::runtime::{Runtime, TokioRuntime};

    use super::*;

    #[derive(Default)]
    pub(crate) struct WakeCount(pub(crate) AtomicU64);

    impl std::task::Wake for WakeCount {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Relaxed);
        }
    }

    /// A real loopback socket: the handshake record comes up, the receive
    /// after it waits a turn although media is queued behind it, and then
    /// the media comes in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_real_socket_ends_the_burst_behind_a_handshake_record() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        receiver.set_nonblocking(true).unwrap();
        let receiver = FencedSocket::new(TokioRuntime.wrap_udp_socket(receiver).unwrap());
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let finished = [22u8, 0xfe, 0xfd, 0, 1];
        let rtp = [0x80u8, 96, 0, 7];
        for datagram in [&finished[..], &rtp, &rtp] {
            sender.send_to(datagram, to).unwrap();
        }
        let woken = Arc::new(WakeCount::default());
        let waker = std::task::Waker::from(Arc::clone(&woken));
        let poll = || {
            let mut buf = [0u8; 64];
            let mut bufs = [IoSliceMut::new(&mut buf)];
            let mut meta = [RecvMeta::default()];
            let mut cx = Context::from_waker(&waker);
            match receiver.poll_recv(&mut cx, &mut bufs, &mut meta) {
                Poll::Ready(Ok(1)) => Some(buf[..meta[0].len].to_vec()),
                Poll::Pending => None,
                other => panic!("unexpected {other:?}"),
            }
        };
        // Loopback queues a datagram at `send_to`, but the socket's first
        // readiness comes from the reactor: wait for it, bounded.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let first = loop {
            if let Some(first) = poll() {
                break first;
            }
            assert!(std::time::Instant::now() < deadline, "nothing arrived");
            tokio::task::yield_now().await;
        };
        assert_eq!(first, finished);
        let wakes = woken.0.load(Relaxed);
        assert_eq!(poll(), None, "the burst ends behind the handshake record");
        assert_eq!(woken.0.load(Relaxed), wakes + 1, "and the reader is woken");
        assert_eq!(poll(), Some(rtp.to_vec()));
        assert_eq!(
            poll(),
            Some(rtp.to_vec()),
            "media behind media is one burst"
        );
    }

    #[test]
    fn only_a_handshake_record_raises_the_fence() {
        let fence = HandshakeFence::default();
        let woken = Arc::new(WakeCount::default());
        let waker = std::task::Waker::from(Arc::clone(&woken));
        let mut cx = Context::from_waker(&waker);
        fence.passed([&[0x80u8, 96][..], &[23, 0xfe, 0xfd]]);
        assert!(!fence.holds(&mut cx), "RTP and SCTP over DTLS pass");
        fence.passed([&[0x80u8, 96][..], &[20, 0xfe, 0xfd]]);
        assert!(fence.holds(&mut cx), "a change cipher spec in the batch");
        assert!(!fence.holds(&mut cx), "once");
        assert_eq!(woken.0.load(Relaxed), 1);
    }
}

//! A socket's in-memory receive queue: datagrams between two sockets of
//! one network are handed over here instead of through the kernel, so
//! neither side pays a syscall or an epoll wake-up per packet (the kernel
//! was the largest single entry of the scale profile, BENCHMARKS.md).
//!
//! It keeps what a UDP receive buffer promises and nothing more: each
//! datagram whole and with its true source, in the order one sender sent
//! them, dropped when the queue is full.

use std::collections::VecDeque;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::task::Waker;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use webrtc::runtime::RecvMeta;

/// Datagrams a socket holds unread before it drops new ones: about a
/// loopback socket's default receive buffer (`net.core.rmem_default`),
/// in full-size media packets, with room for a burst.
pub(crate) const INBOX_LIMIT: usize = 512;

struct Arrival {
    from: SocketAddr,
    bytes: Bytes,
}

#[derive(Default)]
pub(crate) struct Inbox {
    queue: Mutex<VecDeque<Arrival>>,
    reader: AtomicWaker,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").finish_non_exhaustive()
    }
}

impl Inbox {
    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Arrival>> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a datagram from `from` and wakes the reader; `false` when it
    /// was dropped because the queue is full (as the kernel would).
    pub(crate) fn push(&self, from: SocketAddr, bytes: Bytes) -> bool {
        {
            let mut queue = self.queue();
            if queue.len() >= INBOX_LIMIT {
                return false;
            }
            queue.push_back(Arrival { from, bytes });
        }
        self.reader.wake();
        true
    }

    /// Moves queued datagrams into `bufs`, one per buffer, and returns how
    /// many; registers `waker` first, so a datagram pushed after an empty
    /// answer always wakes the reader.
    pub(crate) fn take(
        &self,
        waker: &Waker,
        local: SocketAddr,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> usize {
        self.reader.register(waker);
        let mut queue = self.queue();
        let mut filled = 0;
        for (buf, meta) in bufs.iter_mut().zip(meta.iter_mut()) {
            let Some(arrival) = queue.pop_front() else {
                break;
            };
            // A buffer too small truncates the datagram, as recvmsg does.
            let len = arrival.bytes.len().min(buf.len());
            buf[..len].copy_from_slice(&arrival.bytes[..len]);
            let mut filled_meta = RecvMeta::default();
            filled_meta.addr = arrival.from;
            filled_meta.len = len;
            filled_meta.stride = len.max(1);
            filled_meta.dst_ip = Some(local.ip());
            *meta = filled_meta;
            filled += 1;
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 9], port))
    }

    fn take_one(inbox: &Inbox) -> Option<(SocketAddr, Vec<u8>)> {
        let mut buf = [0u8; 64];
        let mut meta = [RecvMeta::default()];
        let mut bufs = [IoSliceMut::new(&mut buf)];
        let n = inbox.take(Waker::noop(), from(1), &mut bufs, &mut meta);
        (n == 1).then(|| (meta[0].addr, buf[..meta[0].len].to_vec()))
    }

    #[test]
    fn keeps_order_source_and_drops_when_full() {
        let inbox = Inbox::default();
        for i in 0..INBOX_LIMIT + 3 {
            let pushed = inbox.push(from(7), Bytes::from((i as u32).to_be_bytes().to_vec()));
            assert_eq!(pushed, i < INBOX_LIMIT, "datagram {i}");
        }
        for i in 0..INBOX_LIMIT {
            let (source, bytes) = take_one(&inbox).expect("queued");
            assert_eq!(source, from(7));
            assert_eq!(bytes, (i as u32).to_be_bytes());
        }
        assert_eq!(take_one(&inbox), None);
    }

    #[test]
    fn a_small_buffer_truncates_like_recvmsg() {
        let inbox = Inbox::default();
        inbox.push(from(7), Bytes::from_static(b"0123456789"));
        let mut buf = [0u8; 4];
        let mut meta = [RecvMeta::default(); 2];
        let mut bufs = [IoSliceMut::new(&mut buf)];
        assert_eq!(inbox.take(Waker::noop(), from(1), &mut bufs, &mut meta), 1);
        assert_eq!((meta[0].len, meta[0].stride), (4, 4));
        assert_eq!(&buf, b"0123");
    }
}

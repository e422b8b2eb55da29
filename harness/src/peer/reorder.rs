//! Putting a track's RTP packets back in order before they are judged, so
//! benign network behaviour never reads as loss: a packet that overtook
//! another is held until the one it overtook arrives (or a NACK brings it
//! back), a duplicate is dropped, and only a gap that outlasts the hold is
//! handed on as a gap.
//!
//! Unlike a playout buffer (the `webrtc` crate's `JitterBufferInterceptor`
//! holds every packet for a fixed depth), packets in order go straight
//! through: a clean path adds no latency, so setup times and capture-to-
//! verified latency stay what the network made them.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Duration;

use rtc::rtp;

/// How long a gap may wait for its packet: a few tens of ms, beyond any
/// reordering on a path with jitter (and our `reorder` impairment, which
/// lets a datagram skip the delay queue). With the NACK generator's 20 ms
/// interval (`peer/connection.rs`) it also covers a retransmission on a
/// path whose round trip is under ~35 ms (loopback: well under 1 ms). A
/// frame behind such a gap is late by at most this, which is no freeze
/// (150 ms); recovery from real loss starts this much later.
pub(super) const HOLD: Duration = Duration::from_millis(60);
/// Packets held behind one gap at most (a bound on memory whatever the
/// sender does): past it, the gap is given up at once.
const MAX_HELD: usize = 512;

/// Whether a stream may start at this packet (see [`Reorder::starting_at`]):
/// for video, the first packet of a keyframe in the codec's format.
pub(crate) struct StartsStream(Box<dyn Fn(&rtp::Packet) -> bool + Send + Sync>);

impl StartsStream {
    pub(crate) fn new(starts: impl Fn(&rtp::Packet) -> bool + Send + Sync + 'static) -> Self {
        StartsStream(Box::new(starts))
    }
}

impl std::fmt::Debug for StartsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StartsStream")
    }
}

/// One track's packets, in sequence order.
#[derive(Debug, Default)]
pub struct Reorder {
    /// Where the stream may start; `None`: at its first packet.
    starts: Option<StartsStream>,
    /// Until the stream has started: when its first packet arrived.
    waiting_since: Option<Duration>,
    /// The extended sequence number released next.
    next: Option<u64>,
    /// The highest extended sequence number seen: the reference for
    /// unwrapping the next one.
    highest: Option<u64>,
    /// Packets that arrived ahead of a gap, with their arrival.
    held: BTreeMap<u64, (Duration, rtp::Packet)>,
    /// For tests: what was dropped (nothing else needs to know).
    duplicates: u64,
    late: u64,
}

impl Reorder {
    /// A buffer whose stream starts at the first packet `starts` accepts
    /// (a packet that begins a keyframe), or, if none comes within the
    /// hold, at the lowest held: so packets of the first frame that
    /// overtook its start do not leave the start behind as late.
    pub(crate) fn starting_at(starts: StartsStream) -> Self {
        Reorder {
            starts: Some(starts),
            ..Reorder::default()
        }
    }

    /// Takes one packet that arrived at `arrival`; appends to `out` what can
    /// be handed on now, in order (a gap shows as a jump in sequence).
    pub fn push(&mut self, packet: rtp::Packet, arrival: Duration, out: &mut Vec<rtp::Packet>) {
        let sequence = self.extend(packet.header.sequence_number);
        if self.next.is_none() && self.starts.is_some() {
            return self.start(sequence, packet, arrival, out);
        }
        let next = *self.next.get_or_insert(sequence);
        if sequence < next {
            // Its slot was handed on: already seen, or given up as lost.
            self.late += 1;
        } else if sequence == next && self.held.is_empty() {
            self.next = Some(next + 1);
            out.push(packet);
        } else {
            match self.held.entry(sequence) {
                Entry::Occupied(_) => self.duplicates += 1,
                Entry::Vacant(slot) => {
                    slot.insert((arrival, packet));
                }
            }
        }
        self.release(arrival, out);
    }

    /// Before the stream has started: holds the packet, and starts at the
    /// lowest packet that may start it; or at the lowest held once a later
    /// frame has begun to arrive (the start was lost, not overtaken: the
    /// sooner the frame is judged lost, the sooner a keyframe is asked
    /// for), or once the hold is up. Held packets below the start are
    /// dropped (a frame whose start was never seen).
    fn start(
        &mut self,
        sequence: u64,
        packet: rtp::Packet,
        arrival: Duration,
        out: &mut Vec<rtp::Packet>,
    ) {
        let since = *self.waiting_since.get_or_insert(arrival);
        if self.held.insert(sequence, (arrival, packet)).is_some() {
            self.duplicates += 1;
        }
        let starts = &self.starts.as_ref().expect("checked by the caller").0;
        let start = self
            .held
            .iter()
            .find(|(_, (_, p))| starts(p))
            .map(|(s, _)| *s)
            .or_else(|| {
                let next_frame_began = self
                    .held
                    .values()
                    .position(|(_, p)| p.header.marker)
                    .is_some_and(|end| end + 1 < self.held.len());
                (next_frame_began || arrival.saturating_sub(since) >= HOLD)
                    .then(|| self.held.keys().next().copied())
                    .flatten()
            });
        if let Some(start) = start {
            let before = self.held.len();
            self.held = self.held.split_off(&start);
            self.late += (before - self.held.len()) as u64;
            self.next = Some(start);
            self.release(arrival, out);
        }
    }

    /// Hands on everything held, gaps and all (the track has ended).
    pub fn flush(&mut self, out: &mut Vec<rtp::Packet>) {
        while let Some((sequence, (_, packet))) = self.held.pop_first() {
            self.next = Some(sequence + 1);
            out.push(packet);
        }
    }

    /// Packets dropped as copies of one held (a copy of one handed on
    /// counts as late: the two cannot be told apart).
    #[cfg(test)]
    fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Packets that came after their slot was handed on (copies of
    /// packets handed on, or retransmissions too late to help).
    #[cfg(test)]
    fn late(&self) -> u64 {
        self.late
    }

    /// Releases the run of packets from `next`; a gap whose first packet
    /// behind it has waited [`HOLD`] (or that holds too much) is given up.
    fn release(&mut self, now: Duration, out: &mut Vec<rtp::Packet>) {
        loop {
            let crowded = self.held.len() > MAX_HELD;
            let Some(entry) = self.held.first_entry() else {
                break;
            };
            let sequence = *entry.key();
            let waited = now.saturating_sub(entry.get().0);
            let due = Some(sequence) == self.next;
            if !due && waited < HOLD && !crowded {
                break;
            }
            let (_, packet) = entry.remove();
            self.next = Some(sequence + 1);
            out.push(packet);
        }
    }

    /// The 64-bit sequence number nearest the highest seen (RFC 3550 A.1).
    fn extend(&mut self, sequence: u16) -> u64 {
        let extended = match self.highest {
            None => u64::from(sequence) + (1 << 16),
            Some(highest) => {
                let delta = i64::from(sequence.wrapping_sub(highest as u16) as i16);
                highest.saturating_add_signed(delta)
            }
        };
        self.highest = Some(self.highest.map_or(extended, |h| h.max(extended)));
        extended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet(sequence: u16) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                sequence_number: sequence,
                ..Default::default()
            },
            payload: Default::default(),
        }
    }

    /// Feeds `(sequence, arrival ms)` pairs; returns the sequence numbers
    /// handed on, flushed at the end.
    fn run(buffer: &mut Reorder, arrivals: &[(u16, u64)]) -> Vec<u16> {
        let mut out = Vec::new();
        for &(sequence, at) in arrivals {
            buffer.push(packet(sequence), Duration::from_millis(at), &mut out);
        }
        buffer.flush(&mut out);
        out.iter().map(|p| p.header.sequence_number).collect()
    }

    #[test]
    fn packets_in_order_go_straight_through() {
        let mut buffer = Reorder::default();
        let mut out = Vec::new();
        for sequence in 0..10 {
            buffer.push(packet(sequence), Duration::ZERO, &mut out);
            assert_eq!(out.len(), usize::from(sequence) + 1, "nothing held");
        }
    }

    #[test]
    fn swapped_pairs_come_out_in_order() {
        let mut buffer = Reorder::default();
        // The stream starts at 0; then 3 before 2, 5 before 4, ...
        let arrivals: Vec<(u16, u64)> = (0..100u16)
            .map(|n| (if n < 2 { n } else { n ^ 1 }, u64::from(n) * 5))
            .collect();
        assert_eq!(run(&mut buffer, &arrivals), (0..100).collect::<Vec<_>>());
        assert_eq!((buffer.duplicates(), buffer.late()), (0, 0));
    }

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let mut buffer = Reorder::default();
        let arrivals = [(0, 0), (1, 1), (1, 1), (3, 2), (3, 2), (2, 3), (4, 4)];
        assert_eq!(run(&mut buffer, &arrivals), [0, 1, 2, 3, 4]);
        assert_eq!((buffer.duplicates(), buffer.late()), (1, 1));
    }

    #[test]
    fn a_gap_waits_for_its_retransmission_within_the_hold() {
        let mut buffer = Reorder::default();
        let mut out = Vec::new();
        for (sequence, at) in [(0, 0), (2, 10), (3, 20)] {
            buffer.push(packet(sequence), Duration::from_millis(at), &mut out);
        }
        assert_eq!(out.len(), 1, "2 and 3 wait for 1");
        buffer.push(packet(1), Duration::from_millis(60), &mut out);
        let order: Vec<u16> = out.iter().map(|p| p.header.sequence_number).collect();
        assert_eq!(order, [0, 1, 2, 3]);
    }

    #[test]
    fn a_gap_that_outlasts_the_hold_is_handed_on_as_a_gap() {
        let mut buffer = Reorder::default();
        let mut out = Vec::new();
        buffer.push(packet(0), Duration::ZERO, &mut out);
        buffer.push(packet(2), Duration::from_millis(1), &mut out);
        buffer.push(packet(3), Duration::from_millis(1) + HOLD, &mut out);
        let order: Vec<u16> = out.iter().map(|p| p.header.sequence_number).collect();
        assert_eq!(order, [0, 2, 3], "1 is given up, the rest goes on");
        // The lost packet turning up later changes nothing.
        buffer.push(packet(1), Duration::from_secs(1), &mut out);
        assert_eq!((out.len(), buffer.late()), (3, 1));
    }

    /// A packet that may start the stream (here: an even payload byte).
    fn starts(packet: &rtp::Packet) -> bool {
        packet.payload.first().is_some_and(|b| b % 2 == 0)
    }

    fn marked(sequence: u16, first_byte: u8) -> rtp::Packet {
        rtp::Packet {
            payload: vec![first_byte].into(),
            ..packet(sequence)
        }
    }

    #[test]
    fn a_stream_starts_at_its_start_even_when_the_rest_overtook_it() {
        let mut buffer = Reorder::starting_at(StartsStream::new(starts));
        let mut out = Vec::new();
        // The first frame's packets arrive 11, 12, then its start 10.
        buffer.push(marked(11, 1), Duration::ZERO, &mut out);
        buffer.push(marked(12, 1), Duration::from_millis(1), &mut out);
        assert!(out.is_empty(), "waiting for the start");
        buffer.push(marked(10, 0), Duration::from_millis(2), &mut out);
        let order: Vec<u16> = out.iter().map(|p| p.header.sequence_number).collect();
        assert_eq!(order, [10, 11, 12]);
    }

    #[test]
    fn a_stream_in_order_starts_at_once_and_one_joined_late_waits_the_hold() {
        let mut buffer = Reorder::starting_at(StartsStream::new(starts));
        let mut out = Vec::new();
        buffer.push(marked(5, 0), Duration::ZERO, &mut out);
        assert_eq!(out.len(), 1, "a start goes straight through");

        // Joined mid-frame (its start was never seen): after the hold,
        // the stream starts at the lowest packet held.
        let mut buffer = Reorder::starting_at(StartsStream::new(starts));
        let mut out = Vec::new();
        buffer.push(marked(7, 1), Duration::ZERO, &mut out);
        buffer.push(marked(8, 1), Duration::from_millis(1), &mut out);
        assert!(out.is_empty());
        buffer.push(marked(9, 1), HOLD, &mut out);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn a_stream_whose_start_was_lost_starts_when_the_next_frame_begins() {
        let mut buffer = Reorder::starting_at(StartsStream::new(starts));
        let mut out = Vec::new();
        let mut end = marked(8, 1);
        end.header.marker = true;
        buffer.push(marked(7, 1), Duration::ZERO, &mut out);
        buffer.push(end, Duration::from_millis(1), &mut out);
        assert!(out.is_empty(), "the start may still come");
        buffer.push(marked(9, 1), Duration::from_millis(33), &mut out);
        assert_eq!(out.len(), 3, "the next frame began: the start is lost");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut buffer = Reorder::default();
        let arrivals = [(65_534, 0), (0, 1), (65_535, 2), (1, 3)];
        assert_eq!(run(&mut buffer, &arrivals), [65_534, 65_535, 0, 1]);
    }

    proptest! {
        /// Any shuffle within a window, any duplicates: every packet comes
        /// out exactly once, in order, when the hold is not exceeded.
        #[test]
        fn local_shuffles_and_copies_come_out_once_in_order(
            swaps in proptest::collection::vec(0usize..199, 0..60),
            copies in proptest::collection::vec(0usize..200, 0..20),
            start in any::<u16>(),
        ) {
            let mut order: Vec<u16> = (0..200u16).map(|n| start.wrapping_add(n)).collect();
            for i in swaps {
                order.swap(i, i + 1);
            }
            let mut arrivals: Vec<(u16, u64)> = order.iter().map(|&s| (s, 0)).collect();
            for i in copies {
                arrivals.insert(i, arrivals[i]);
            }
            let mut buffer = Reorder::default();
            let out = run(&mut buffer, &arrivals);
            let expected: Vec<u16> = (0..200u16).map(|n| start.wrapping_add(n)).collect();
            // The stream starts at the first packet to arrive; any it
            // overtook are late (the first frame may lose its start).
            let first = expected.iter().position(|&s| s == arrivals[0].0).unwrap();
            prop_assert_eq!(&out[..], &expected[first..]);
        }
    }
}

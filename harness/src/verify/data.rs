//! Judging a data channel's messages from one sender as they arrive: which
//! numbers came, once or again, in order or not, intact, from the right
//! sender; and the round trips of our own messages, from their echoes.
//! A plain state machine over (message, time), unit-tested on its own.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::media::data_message::{DataKind, DataMessage, Undecodable};

/// What one side of a call received on its data channel, and what it sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DataVerdict {
    /// Run-clock µs when the channel opened here.
    pub opened_us: Option<u64>,
    /// Our own messages sent, and their bytes.
    pub sent: u32,
    pub bytes_sent: u64,
    /// Distinct good messages from the expected sender, and their bytes.
    pub received: u32,
    pub bytes_received: u64,
    /// The highest number received, if any.
    pub highest_seq: Option<u32>,
    /// Numbers below the highest that never came.
    pub gaps: u32,
    pub duplicated: u32,
    /// Came after a higher number had (never a failure on an unordered
    /// channel; counted all the same).
    pub reordered: u32,
    pub corrupt: u32,
    /// Good messages (or echoes) from a sender other than the expected.
    pub wrong_sender: u32,
    /// Bytes that are not ours at all.
    pub foreign: u32,
    /// Run-clock µs of the first and last good message.
    pub first_us: Option<u64>,
    pub last_us: Option<u64>,
    /// Round trips of our messages, by their echoes, in ms.
    pub rtt_ms: Vec<f64>,
}

/// The verifier: the expected sender, us, and what came so far.
#[derive(Debug)]
pub(crate) struct DataReceiver {
    expected: u16,
    us: u16,
    seen: BTreeSet<u32>,
    verdict: DataVerdict,
}

/// What to do about a message that arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Echo it back (a good message from the expected sender, first time).
    Echo(DataMessage),
    Nothing,
}

impl DataReceiver {
    /// Messages from `expected`, received by `us`.
    pub(crate) fn new(expected: u16, us: u16) -> Self {
        DataReceiver {
            expected,
            us,
            seen: BTreeSet::new(),
            verdict: DataVerdict::default(),
        }
    }

    pub(crate) fn opened(&mut self, now_us: u64) {
        self.verdict.opened_us.get_or_insert(now_us);
    }

    pub(crate) fn sent(&mut self, bytes: usize) {
        self.verdict.sent += 1;
        self.verdict.bytes_sent += bytes as u64;
    }

    /// `bytes` arrived at `now_us` on the run's clock.
    pub(crate) fn receive(&mut self, bytes: &[u8], now_us: u64) -> Reply {
        let verdict = &mut self.verdict;
        let message = match DataMessage::decode(bytes) {
            Ok(message) => message,
            Err(Undecodable::Corrupt) => {
                verdict.corrupt += 1;
                return Reply::Nothing;
            }
            Err(Undecodable::Foreign) => {
                verdict.foreign += 1;
                return Reply::Nothing;
            }
        };
        match message.kind {
            DataKind::Echo if message.sender == self.us => {
                let rtt_us = now_us.saturating_sub(message.sent_us);
                verdict.rtt_ms.push(rtt_us as f64 / 1e3);
                Reply::Nothing
            }
            DataKind::Echo => {
                verdict.wrong_sender += 1;
                Reply::Nothing
            }
            DataKind::Message if message.sender != self.expected => {
                verdict.wrong_sender += 1;
                Reply::Nothing
            }
            DataKind::Message => {
                if !self.seen.insert(message.seq) {
                    verdict.duplicated += 1;
                    return Reply::Nothing;
                }
                if verdict
                    .highest_seq
                    .is_some_and(|highest| message.seq < highest)
                {
                    verdict.reordered += 1;
                }
                verdict.highest_seq = verdict.highest_seq.max(Some(message.seq));
                verdict.received += 1;
                verdict.bytes_received += bytes.len() as u64;
                verdict.first_us.get_or_insert(now_us);
                verdict.last_us = Some(now_us);
                Reply::Echo(DataMessage {
                    kind: DataKind::Echo,
                    ..message
                })
            }
        }
    }

    /// What came, with the gaps below the highest number counted.
    pub(crate) fn verdict(mut self) -> DataVerdict {
        if let Some(highest) = self.verdict.highest_seq {
            self.verdict.gaps = (highest + 1).saturating_sub(self.verdict.received);
        }
        self.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(sender: u16, seq: u32) -> Vec<u8> {
        DataMessage {
            kind: DataKind::Message,
            sender,
            seq,
            sent_us: u64::from(seq) * 100_000,
        }
        .encode(64)
    }

    #[test]
    fn in_order_messages_verify_and_are_echoed() {
        let mut receiver = DataReceiver::new(2, 1);
        for seq in 0..5 {
            let reply = receiver.receive(&message(2, seq), u64::from(seq) * 100_000 + 500);
            assert!(matches!(reply, Reply::Echo(echo) if echo.seq == seq && echo.sender == 2));
        }
        let verdict = receiver.verdict();
        assert_eq!(
            (verdict.received, verdict.highest_seq, verdict.gaps),
            (5, Some(4), 0)
        );
        assert_eq!(verdict.bytes_received, 5 * 64);
        assert_eq!(
            (
                verdict.duplicated,
                verdict.reordered,
                verdict.corrupt,
                verdict.wrong_sender
            ),
            (0, 0, 0, 0)
        );
    }

    #[test]
    fn gaps_duplicates_reordering_damage_and_strangers_are_each_counted() {
        let mut receiver = DataReceiver::new(2, 1);
        for seq in [0, 1, 3, 3, 2, 6] {
            receiver.receive(&message(2, seq), 0);
        }
        let mut damaged = message(2, 7);
        damaged[30] ^= 1;
        receiver.receive(&damaged, 0);
        receiver.receive(&message(9, 8), 0);
        receiver.receive(b"not ours", 0);
        let verdict = receiver.verdict();
        assert_eq!(verdict.received, 5, "0, 1, 3, 2, 6");
        assert_eq!(verdict.gaps, 2, "4 and 5 never came");
        assert_eq!(verdict.duplicated, 1);
        assert_eq!(verdict.reordered, 1, "2 after 3");
        assert_eq!(verdict.corrupt, 1);
        assert_eq!(verdict.wrong_sender, 1);
        assert_eq!(verdict.foreign, 1);
    }

    #[test]
    fn an_echo_of_ours_times_the_round_trip_and_anothers_is_refused() {
        let mut receiver = DataReceiver::new(2, 1);
        let echo = |sender| {
            DataMessage {
                kind: DataKind::Echo,
                sender,
                seq: 4,
                sent_us: 1_000_000,
            }
            .encode(0)
        };
        assert_eq!(receiver.receive(&echo(1), 1_002_500), Reply::Nothing);
        assert_eq!(receiver.receive(&echo(3), 1_002_500), Reply::Nothing);
        let verdict = receiver.verdict();
        assert_eq!(verdict.rtt_ms, vec![2.5]);
        assert_eq!(verdict.wrong_sender, 1);
        assert_eq!(verdict.received, 0, "echoes are not messages");
    }
}

//! What a data channel carries: sequenced, stamped messages and their
//! echoes. Each says who wrote it, its number, when it was sent on the
//! run's clock, and ends with a CRC-32 of everything before it, so a
//! receiver can tell a lost, duplicated, reordered, damaged or foreign
//! message from a good one, and a sender times the round trip by the echo.
//!
//! ```text
//! 0      4     5        7      11          19        len-4   len
//! | CPDC | kind | sender | seq  | sent (µs) | filler… | CRC-32 |
//! ```
//! `kind` 0 is a message, 1 an echo of one (`sender` and `seq` are then
//! the original's, and `sent` its send time). The filler is a function of
//! (sender, seq), so a message is the same wherever it is made.

const MAGIC: &[u8; 4] = b"CPDC";
const HEADER: usize = 19;
const TRAILER: usize = 4;
/// The smallest message: header and CRC, no filler (an echo's size).
pub(crate) const MIN_SIZE: usize = HEADER + TRAILER;
/// The largest message size a scenario may ask for: what SCTP carries
/// between every pair of stacks without a fragmentation quirk.
pub(crate) const MAX_SIZE: usize = 65_536;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DataKind {
    Message,
    Echo,
}

/// A decoded message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DataMessage {
    pub(crate) kind: DataKind,
    /// Who wrote it (for an echo: who wrote the original).
    pub(crate) sender: u16,
    pub(crate) seq: u32,
    /// Microseconds on the run's clock when it (the original) was sent.
    pub(crate) sent_us: u64,
}

/// Why bytes are not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Undecodable {
    /// Not ours at all (too short, another magic, an unknown kind).
    Foreign,
    /// Ours, but its CRC does not check: damaged on the way.
    Corrupt,
}

impl DataMessage {
    /// The message as `size` bytes (at least [`MIN_SIZE`]).
    pub(crate) fn encode(&self, size: usize) -> Vec<u8> {
        let size = size.max(MIN_SIZE);
        let mut bytes = Vec::with_capacity(size);
        bytes.extend_from_slice(MAGIC);
        bytes.push(match self.kind {
            DataKind::Message => 0,
            DataKind::Echo => 1,
        });
        bytes.extend_from_slice(&self.sender.to_be_bytes());
        bytes.extend_from_slice(&self.seq.to_be_bytes());
        bytes.extend_from_slice(&self.sent_us.to_be_bytes());
        let mut filler = u32::from(self.sender) << 16 ^ self.seq;
        while bytes.len() < size - TRAILER {
            // xorshift: cheap, and a flipped bit anywhere shows in the CRC.
            filler ^= filler << 13;
            filler ^= filler >> 17;
            filler ^= filler << 5;
            bytes.push(filler as u8);
        }
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        bytes
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<DataMessage, Undecodable> {
        if bytes.len() < MIN_SIZE || &bytes[..4] != MAGIC {
            return Err(Undecodable::Foreign);
        }
        let (body, crc) = bytes.split_at(bytes.len() - TRAILER);
        let kind = match body[4] {
            0 => DataKind::Message,
            1 => DataKind::Echo,
            _ => return Err(Undecodable::Foreign),
        };
        if crc32fast::hash(body).to_be_bytes() != crc {
            return Err(Undecodable::Corrupt);
        }
        let word = |range: std::ops::Range<usize>| &body[range];
        Ok(DataMessage {
            kind,
            sender: u16::from_be_bytes(word(5..7).try_into().expect("2 bytes")),
            seq: u32::from_be_bytes(word(7..11).try_into().expect("4 bytes")),
            sent_us: u64::from_be_bytes(word(11..19).try_into().expect("8 bytes")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_as_written_at_any_size() {
        let message = DataMessage {
            kind: DataKind::Message,
            sender: 7,
            seq: 123_456,
            sent_us: 9_876_543_210,
        };
        for size in [0, MIN_SIZE, 100, 1024, MAX_SIZE] {
            let bytes = message.encode(size);
            assert_eq!(bytes.len(), size.max(MIN_SIZE));
            assert_eq!(DataMessage::decode(&bytes), Ok(message));
        }
        let echo = DataMessage {
            kind: DataKind::Echo,
            ..message
        };
        assert_eq!(DataMessage::decode(&echo.encode(MIN_SIZE)), Ok(echo));
    }

    #[test]
    fn a_flipped_bit_anywhere_is_corrupt_and_strangers_are_foreign() {
        let bytes = DataMessage {
            kind: DataKind::Message,
            sender: 1,
            seq: 2,
            sent_us: 3,
        }
        .encode(256);
        for i in 5..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert_eq!(
                DataMessage::decode(&damaged),
                Err(Undecodable::Corrupt),
                "byte {i}"
            );
        }
        assert_eq!(DataMessage::decode(b"hello"), Err(Undecodable::Foreign));
        assert_eq!(
            DataMessage::decode(br#"{"message":"hi","time":"12:00"}"#),
            Err(Undecodable::Foreign),
            "the tutorial's own messages are not ours"
        );
    }
}

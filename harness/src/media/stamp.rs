//! The machine-readable stamp in every video frame: sender index, frame
//! number and capture time, with a CRC-32 check code, written as a grid of
//! black and white cells in the luma plane.
//!
//! 128 bits = sender (16) + frame (32) + capture time in µs (48) + CRC-32
//! of those 12 bytes (32), laid out as 4 rows of 32 cells. A cell is about a
//! fortieth of the frame width (8 px at 320, 16 px at 640) and takes luma
//! 16 or 235: a contrast that survives H.264 at low bitrates, read back as
//! the mean of each cell's centre.

use std::fmt;

const COLUMNS: usize = 32;
const ROWS: usize = 4;
const BLACK: u8 = 16;
const WHITE: u8 = 235;
/// Cell means between these are neither black nor white.
const AMBIGUOUS: std::ops::RangeInclusive<u8> = 70..=180;
/// More ambiguous cells than this: there is no stamp here at all.
const MAX_AMBIGUOUS_CELLS: usize = 8;

/// What a frame says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    /// The sending peer's index in the run.
    pub sender: u16,
    /// Frame number at the sender, from 0.
    pub frame: u32,
    /// Capture time in µs since the run's epoch (48 bits: about 8.9 years).
    pub capture_us: u64,
}

impl Stamp {
    pub(crate) const MAX_CAPTURE_US: u64 = (1 << 48) - 1;

    fn payload(&self) -> [u8; 12] {
        let mut bytes = [0u8; 12];
        bytes[0..2].copy_from_slice(&self.sender.to_be_bytes());
        bytes[2..6].copy_from_slice(&self.frame.to_be_bytes());
        bytes[6..12].copy_from_slice(&(self.capture_us & Self::MAX_CAPTURE_US).to_be_bytes()[2..]);
        bytes
    }

    /// The stamp's 128 bits, check code included (big-endian).
    pub(crate) fn to_bytes(self) -> [u8; 16] {
        self.to_bits().to_be_bytes()
    }

    /// Reads 16 bytes written by [`Stamp::to_bytes`], checking the code.
    pub(crate) fn from_bytes(bytes: [u8; 16]) -> Result<Self, StampError> {
        Stamp::from_bits(u128::from_be_bytes(bytes))
    }

    fn to_bits(self) -> u128 {
        let payload = self.payload();
        let mut bytes = [0u8; 16];
        bytes[..12].copy_from_slice(&payload);
        bytes[12..].copy_from_slice(&crc32fast::hash(&payload).to_be_bytes());
        u128::from_be_bytes(bytes)
    }

    fn from_bits(bits: u128) -> Result<Self, StampError> {
        let bytes = bits.to_be_bytes();
        let payload: [u8; 12] = bytes[..12].try_into().expect("12 bytes");
        let check = u32::from_be_bytes(bytes[12..].try_into().expect("4 bytes"));
        if crc32fast::hash(&payload) != check {
            return Err(StampError::BadCheck);
        }
        let mut capture = [0u8; 8];
        capture[2..].copy_from_slice(&payload[6..12]);
        Ok(Stamp {
            sender: u16::from_be_bytes([payload[0], payload[1]]),
            frame: u32::from_be_bytes(payload[2..6].try_into().expect("4 bytes")),
            capture_us: u64::from_be_bytes(capture),
        })
    }
}

/// Why a frame's stamp could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    #[error("frame too small to carry a stamp")]
    TooSmall,
    /// The stamp area does not look like a stamp (a foreign picture, or one
    /// so damaged that cells are grey).
    #[error("no stamp in the frame")]
    NotStamped,
    /// Every cell is clearly black or white but the check code fails:
    /// corrupted in transit or by the codec.
    #[error("stamp check code does not match")]
    BadCheck,
}

/// Where the stamp sits in a frame of a given size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StampLayout {
    cell: usize,
}

impl StampLayout {
    /// The layout for a frame, or `None` when the frame is under 160x16.
    pub(crate) fn for_size(width: usize, height: usize) -> Option<Self> {
        // Multiples of 4 keep cells aligned to H.264's 4x4 transform blocks.
        let cell = (width / 40) / 4 * 4;
        (cell >= 4 && COLUMNS * cell <= width && ROWS * cell <= height)
            .then_some(StampLayout { cell })
    }

    /// Writes the stamp into a luma plane.
    pub(crate) fn write(&self, luma: &mut [u8], stride: usize, stamp: Stamp) {
        self.write_bits(luma, stride, stamp.to_bits());
    }

    /// Writes the stamp with one bit of its check code flipped: a picture
    /// whose stamp reads cleanly and fails its check (a media fault).
    pub(crate) fn write_damaged(&self, luma: &mut [u8], stride: usize, stamp: Stamp) {
        self.write_bits(luma, stride, stamp.to_bits() ^ 1);
    }

    fn write_bits(&self, luma: &mut [u8], stride: usize, bits: u128) {
        for index in 0..COLUMNS * ROWS {
            let bit = (bits >> (127 - index)) & 1 == 1;
            let value = if bit { WHITE } else { BLACK };
            let (x0, y0) = self.cell_origin(index);
            for y in y0..y0 + self.cell {
                luma[y * stride + x0..y * stride + x0 + self.cell].fill(value);
            }
        }
    }

    /// Reads the stamp back from a (decoded) luma plane.
    pub(crate) fn read(&self, luma: &[u8], stride: usize) -> Result<Stamp, StampError> {
        let inner = self.cell / 4;
        let span = self.cell - 2 * inner;
        let mut bits = 0u128;
        let mut ambiguous = 0;
        for index in 0..COLUMNS * ROWS {
            let (x0, y0) = self.cell_origin(index);
            let mut sum = 0u32;
            for y in y0 + inner..y0 + inner + span {
                let row = &luma[y * stride + x0 + inner..y * stride + x0 + inner + span];
                sum += row.iter().map(|&p| u32::from(p)).sum::<u32>();
            }
            let mean = u8::try_from(sum / (span * span) as u32).unwrap_or(u8::MAX);
            if AMBIGUOUS.contains(&mean) {
                ambiguous += 1;
            }
            bits = (bits << 1) | u128::from(mean > 126);
        }
        if ambiguous > MAX_AMBIGUOUS_CELLS {
            return Err(StampError::NotStamped);
        }
        Stamp::from_bits(bits)
    }

    fn cell_origin(&self, index: usize) -> (usize, usize) {
        ((index % COLUMNS) * self.cell, (index / COLUMNS) * self.cell)
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sender {} frame {} at {} µs",
            self.sender, self.frame, self.capture_us
        )
    }
}

/// Reads a stamp from a luma plane of any size.
pub fn read_stamp(
    luma: &[u8],
    stride: usize,
    width: usize,
    height: usize,
) -> Result<Stamp, StampError> {
    StampLayout::for_size(width, height)
        .ok_or(StampError::TooSmall)?
        .read(luma, stride)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(width: usize, height: usize) -> Vec<u8> {
        vec![128; width * height]
    }

    #[test]
    fn a_written_stamp_reads_back_exactly() {
        for (width, height) in [(160, 120), (320, 240), (640, 480), (1280, 720)] {
            let layout = StampLayout::for_size(width, height).unwrap();
            let mut luma = plane(width, height);
            let stamp = Stamp {
                sender: 513,
                frame: 0xDEAD_BEEF,
                capture_us: Stamp::MAX_CAPTURE_US - 7,
            };
            layout.write(&mut luma, width, stamp);
            assert_eq!(
                read_stamp(&luma, width, width, height),
                Ok(stamp),
                "{width}x{height}"
            );
        }
    }

    #[test]
    fn moderate_noise_on_every_pixel_does_not_change_the_reading() {
        let (width, height) = (320, 240);
        let layout = StampLayout::for_size(width, height).unwrap();
        let mut luma = plane(width, height);
        let stamp = Stamp {
            sender: 7,
            frame: 42,
            capture_us: 1_000_000,
        };
        layout.write(&mut luma, width, stamp);
        let mut state = 0x1234_5678u32;
        for pixel in &mut luma {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = i32::from((state >> 24) as u8 % 61) - 30;
            *pixel = (i32::from(*pixel) + noise).clamp(0, 255) as u8;
        }
        assert_eq!(layout.read(&luma, width), Ok(stamp));
    }

    #[test]
    fn one_flipped_cell_fails_the_check_code() {
        let (width, height) = (320, 240);
        let layout = StampLayout::for_size(width, height).unwrap();
        let mut luma = plane(width, height);
        layout.write(
            &mut luma,
            width,
            Stamp {
                sender: 1,
                frame: 2,
                capture_us: 3,
            },
        );
        // Invert the cell of bit 20 (a frame-number bit).
        let (x0, y0) = layout.cell_origin(20);
        for y in y0..y0 + layout.cell {
            for x in x0..x0 + layout.cell {
                luma[y * width + x] = 251 - luma[y * width + x];
            }
        }
        assert_eq!(layout.read(&luma, width), Err(StampError::BadCheck));
    }

    #[test]
    fn a_picture_without_a_stamp_is_not_stamped() {
        let luma = plane(320, 240);
        assert_eq!(
            read_stamp(&luma, 320, 320, 240),
            Err(StampError::NotStamped)
        );
    }

    #[test]
    fn frames_too_small_for_a_stamp_say_so() {
        assert_eq!(StampLayout::for_size(128, 96), None);
        assert_eq!(
            read_stamp(&[0; 128 * 96], 128, 128, 96),
            Err(StampError::TooSmall)
        );
    }

    #[test]
    fn a_stride_wider_than_the_picture_is_respected() {
        let (width, height, stride) = (320, 240, 384);
        let layout = StampLayout::for_size(width, height).unwrap();
        let mut luma = vec![128; stride * height];
        let stamp = Stamp {
            sender: 9,
            frame: 9,
            capture_us: 9,
        };
        layout.write(&mut luma, stride, stamp);
        assert_eq!(layout.read(&luma, stride), Ok(stamp));
    }
}

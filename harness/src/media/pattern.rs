//! The test pattern: 75 % colour bars, a moving textured box (motion for the
//! encoder to find), a band of scrolling noise in the bottom quarter (detail
//! it cannot predict, so bitrate settings up to a few Mbit/s are really
//! spent, as with a camera), and the stamp in the top-left corner.

use super::frame::I420;
use super::stamp::{Stamp, StampLayout};

/// BT.601 limited-range Y, Cb, Cr of the eight 75 % bars: white, yellow,
/// cyan, green, magenta, red, blue, black.
pub(crate) const BARS: [[u8; 3]; 8] = [
    [180, 128, 128],
    [162, 44, 142],
    [131, 156, 44],
    [112, 72, 58],
    [84, 184, 198],
    [65, 100, 212],
    [35, 212, 114],
    [16, 128, 128],
];

/// Pixels the box moves per frame.
const SPEED: usize = 4;
/// Pixels the noise band scrolls per frame (odd, so it never repeats soon).
const NOISE_SPEED: usize = 7;
/// Noise amplitude around mid-grey, in luma steps.
const NOISE_AMPLITUDE: u8 = 48;

/// Draws numbered, stamped pattern frames for one sender.
#[derive(Debug)]
pub struct Pattern {
    sender: u16,
    background: I420,
    layout: StampLayout,
    frame: I420,
    /// Rows of the noise band, each `2 * width` wide so any scroll offset
    /// is one contiguous copy.
    noise: Vec<u8>,
}

/// Why a pattern cannot be drawn at some size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a {width}x{height} frame cannot carry the pattern: it needs even dimensions of at least 160x64"
)]
pub struct PatternSizeError {
    pub width: usize,
    pub height: usize,
}

impl Pattern {
    pub fn new(sender: u16, width: usize, height: usize) -> Result<Self, PatternSizeError> {
        let layout = StampLayout::for_size(width, height)
            .filter(|_| width.is_multiple_of(2) && height.is_multiple_of(2) && height >= 64)
            .ok_or(PatternSizeError { width, height })?;
        let background = bars(width, height);
        Ok(Pattern {
            sender,
            frame: background.clone(),
            background,
            layout,
            noise: noise_tile(u32::from(sender), width, height / 4),
        })
    }

    pub fn sender(&self) -> u16 {
        self.sender
    }

    pub fn width(&self) -> usize {
        self.frame.width()
    }

    pub fn height(&self) -> usize {
        self.frame.height()
    }

    /// Draws frame `number`, stamped with its capture time.
    pub fn draw(&mut self, number: u32, capture_us: u64) -> &I420 {
        self.draw_stamped(number, capture_us, false)
    }

    /// Draws frame `number` with a stamp whose check code fails.
    pub(crate) fn draw_damaged(&mut self, number: u32, capture_us: u64) -> &I420 {
        self.draw_stamped(number, capture_us, true)
    }

    fn draw_stamped(&mut self, number: u32, capture_us: u64, damaged: bool) -> &I420 {
        self.frame.copy_from(&self.background);
        let (width, height) = (self.frame.width(), self.frame.height());
        let (y, u, v) = self.frame.planes_mut();
        draw_box(y, u, v, width, height, number);
        let band = height / 4;
        let offset = (number as usize * NOISE_SPEED) % width;
        for row in 0..band {
            let source = &self.noise[row * 2 * width + offset..][..width];
            y[(height - band + row) * width..][..width].copy_from_slice(source);
        }
        let stamp = Stamp {
            sender: self.sender,
            frame: number,
            capture_us,
        };
        if damaged {
            self.layout.write_damaged(y, width, stamp);
        } else {
            self.layout.write(y, width, stamp);
        }
        &self.frame
    }
}

fn bars(width: usize, height: usize) -> I420 {
    let mut picture = I420::black(width, height);
    let (y, u, v) = picture.planes_mut();
    for row in 0..height {
        for col in 0..width {
            y[row * width + col] = BARS[col * 8 / width][0];
        }
    }
    let half = width / 2;
    for row in 0..height / 2 {
        for col in 0..half {
            let bar = BARS[col * 8 / half];
            u[row * half + col] = bar[1];
            v[row * half + col] = bar[2];
        }
    }
    picture
}

/// Deterministic noise around mid-grey (an LCG seeded by the sender), two
/// widths wide.
fn noise_tile(seed: u32, width: usize, rows: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut tile = vec![0u8; 2 * width * rows];
    for row in 0..rows {
        for col in 0..width {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let value = 128 - NOISE_AMPLITUDE / 2 + (state >> 24) as u8 % NOISE_AMPLITUDE;
            tile[row * 2 * width + col] = value;
            tile[row * 2 * width + width + col] = value;
        }
    }
    tile
}

/// A square in the lower half, moving left to right and wrapping, filled
/// with a checkerboard whose phase also moves: real motion vectors and
/// real residuals for the encoder.
fn draw_box(y: &mut [u8], u: &mut [u8], v: &mut [u8], width: usize, height: usize, number: u32) {
    let side = (height / 4) & !1;
    let travel = width - side;
    let x0 = ((number as usize * SPEED) % travel.max(1)) & !1;
    let y0 = (height / 2) & !1;
    let phase = number as usize;
    for row in 0..side {
        for col in 0..side {
            let check = ((row + phase) / 8 + (col + phase) / 8).is_multiple_of(2);
            y[(y0 + row) * width + x0 + col] = if check { 220 } else { 40 };
        }
    }
    let half = width / 2;
    for row in 0..side / 2 {
        for col in 0..side / 2 {
            u[(y0 / 2 + row) * half + x0 / 2 + col] = 90;
            v[(y0 / 2 + row) * half + x0 / 2 + col] = 170;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::stamp::read_stamp;
    use openh264::formats::YUVSource;

    #[test]
    fn each_drawn_frame_carries_its_own_stamp() {
        let mut pattern = Pattern::new(3, 320, 240).unwrap();
        for number in [0, 1, 29, 1000] {
            let frame = pattern.draw(number, u64::from(number) * 33_333);
            let stamp = read_stamp(frame.y(), frame.width(), 320, 240).unwrap();
            assert_eq!(
                stamp,
                Stamp {
                    sender: 3,
                    frame: number,
                    capture_us: u64::from(number) * 33_333
                }
            );
        }
    }

    #[test]
    fn consecutive_frames_differ_outside_the_stamp() {
        let mut pattern = Pattern::new(0, 320, 240).unwrap();
        let first = pattern.draw(0, 0).y()[240 * 320 / 2..].to_vec();
        let second = pattern.draw(1, 0).y()[240 * 320 / 2..].to_vec();
        assert_ne!(first, second, "the box moves");
    }

    #[test]
    fn sizes_that_cannot_carry_the_pattern_are_refused() {
        assert!(Pattern::new(0, 321, 240).is_err());
        assert!(Pattern::new(0, 128, 96).is_err());
        assert!(Pattern::new(0, 640, 480).is_ok());
    }
}

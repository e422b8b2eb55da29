//! A raw picture in I420: a full-resolution luma plane, then U and V at half
//! resolution each way (what H.264 encoders take and decoders give back).

use openh264::formats::YUVSource;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I420 {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

impl I420 {
    /// A black picture. Width and height must be even (4:2:0 chroma).
    pub(crate) fn black(width: usize, height: usize) -> Self {
        assert!(
            width.is_multiple_of(2) && height.is_multiple_of(2),
            "I420 needs even dimensions, got {width}x{height}"
        );
        I420 {
            width,
            height,
            y: vec![16; width * height],
            u: vec![128; width * height / 4],
            v: vec![128; width * height / 4],
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// The three planes; strides are `width` and `width / 2` (libvpx reads
    /// them apart).
    #[cfg(feature = "vpx")]
    pub(crate) fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        (&self.y, &self.u, &self.v)
    }

    /// The three planes, mutably; strides are `width` and `width / 2`.
    pub(crate) fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        (&mut self.y, &mut self.u, &mut self.v)
    }

    /// Copies `other` (same size) into this picture without reallocating.
    pub(crate) fn copy_from(&mut self, other: &I420) {
        assert_eq!((self.width, self.height), (other.width, other.height));
        self.y.copy_from_slice(&other.y);
        self.u.copy_from_slice(&other.u);
        self.v.copy_from_slice(&other.v);
    }
}

impl YUVSource for I420 {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.width / 2, self.width / 2)
    }

    fn y(&self) -> &[u8] {
        &self.y
    }

    fn u(&self) -> &[u8] {
        &self.u
    }

    fn v(&self) -> &[u8] {
        &self.v
    }
}

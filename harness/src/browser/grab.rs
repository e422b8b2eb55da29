//! Reading our pattern back from what a browser shows: a canvas grab of
//! the remote `<video>` (RGBA, the video's own size) is turned back into
//! BT.601 luma and chroma, its stamp read, and the colour bars checked.

use base64::Engine;
use serde::Deserialize;

use crate::media::pattern::BARS;
use crate::media::stamp::{Stamp, StampError, read_stamp};

/// What `callprobe.grab(id)` returns.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Grab {
    /// Wall clock, ms since the Unix epoch.
    pub at: f64,
    pub width: usize,
    pub height: usize,
    /// Base64 RGBA, row by row.
    pub rgba: String,
}

/// What a grab showed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GrabReading {
    pub at: f64,
    pub width: usize,
    pub height: usize,
    pub stamp: Result<Stamp, StampError>,
    /// How many of the eight colour bars are where and what they should be.
    pub bars: usize,
    /// A hash of the luma: equal grabs showed the same picture.
    pub hash: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum GrabError {
    /// Every pixel is transparent: the canvas was cleared and the video
    /// had no picture to give it yet (a grab that raced the compositor).
    /// Not a picture at all, so neither our pattern nor a broken one; a
    /// stream that really shows black is opaque and reads as corrupt.
    #[error("the video had no picture to draw (the grab is fully transparent)")]
    NothingDrawn,
    #[error("the grab is not base64: {0}")]
    Base64(String),
    #[error("the grab holds {got} bytes; {width}x{height} RGBA needs {want}")]
    Size {
        got: usize,
        want: usize,
        width: usize,
        height: usize,
    },
}

/// Luma and chroma within these of a bar's count as that bar (the browser
/// decoded, converted to RGB and drew it: rounding on each step).
const LUMA_TOLERANCE: i32 = 24;
const CHROMA_TOLERANCE: i32 = 28;

pub(crate) fn read_grab(grab: &Grab) -> Result<GrabReading, GrabError> {
    let rgba = base64::engine::general_purpose::STANDARD
        .decode(&grab.rgba)
        .map_err(|e| GrabError::Base64(e.to_string()))?;
    let (width, height) = (grab.width, grab.height);
    let want = width * height * 4;
    if rgba.len() != want {
        return Err(GrabError::Size {
            got: rgba.len(),
            want,
            width,
            height,
        });
    }
    if rgba.chunks_exact(4).all(|pixel| pixel[3] == 0) {
        return Err(GrabError::NothingDrawn);
    }
    let luma: Vec<u8> = rgba
        .chunks_exact(4)
        .map(|p| ycbcr(p[0], p[1], p[2]).0)
        .collect();
    let hash = crc32fast::hash(&luma);
    Ok(GrabReading {
        at: grab.at,
        width,
        height,
        stamp: read_stamp(&luma, width, width, height),
        bars: bars_present(&rgba, width, height),
        hash,
    })
}

/// Full-range RGB to BT.601 limited-range Y, Cb, Cr (what the pattern is
/// drawn in and what H.264 carries).
fn ycbcr(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let y = 16.0 + (65.738 * r + 129.057 * g + 25.064 * b) / 256.0;
    let cb = 128.0 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256.0;
    let cr = 128.0 + (112.439 * r - 94.154 * g - 18.285 * b) / 256.0;
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    (clamp(y), clamp(cb), clamp(cr))
}

/// Samples each bar's centre on a row between the stamp (top) and the
/// moving box (lower half), averaging 4x4 pixels.
fn bars_present(rgba: &[u8], width: usize, height: usize) -> usize {
    let row = height * 3 / 8;
    if width < 64 || row + 4 > height {
        return 0;
    }
    BARS.iter()
        .enumerate()
        .filter(|(i, bar)| {
            let x = (2 * i + 1) * width / 16;
            let mut sum = [0u32; 3];
            for y in row..row + 4 {
                for x in x - 2..x + 2 {
                    let p = &rgba[(y * width + x) * 4..][..3];
                    let (l, cb, cr) = ycbcr(p[0], p[1], p[2]);
                    sum[0] += u32::from(l);
                    sum[1] += u32::from(cb);
                    sum[2] += u32::from(cr);
                }
            }
            let mean = sum.map(|s| (s / 16) as i32);
            (mean[0] - i32::from(bar[0])).abs() <= LUMA_TOLERANCE
                && (mean[1] - i32::from(bar[1])).abs() <= CHROMA_TOLERANCE
                && (mean[2] - i32::from(bar[2])).abs() <= CHROMA_TOLERANCE
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::pattern::Pattern;
    use openh264::formats::YUVSource;

    /// What a browser does with a decoded picture: BT.601 limited-range YUV
    /// to full-range RGBA.
    fn to_rgba(picture: &impl YUVSource) -> Vec<u8> {
        let (width, height) = picture.dimensions();
        let (ys, us, vs) = picture.strides();
        let mut rgba = Vec::with_capacity(width * height * 4);
        for y in 0..height {
            for x in 0..width {
                let l = 1.164 * (f32::from(picture.y()[y * ys + x]) - 16.0);
                let u = f32::from(picture.u()[y / 2 * us + x / 2]) - 128.0;
                let v = f32::from(picture.v()[y / 2 * vs + x / 2]) - 128.0;
                let clamp = |c: f32| c.round().clamp(0.0, 255.0) as u8;
                rgba.extend([
                    clamp(l + 1.596 * v),
                    clamp(l - 0.392 * u - 0.813 * v),
                    clamp(l + 2.017 * u),
                    255,
                ]);
            }
        }
        rgba
    }

    fn grab_of(rgba: &[u8], width: usize, height: usize) -> Grab {
        Grab {
            at: 1.0,
            width,
            height,
            rgba: base64::engine::general_purpose::STANDARD.encode(rgba),
        }
    }

    #[test]
    fn our_pattern_reads_back_through_rgb() {
        for (width, height) in [(320, 240), (640, 480)] {
            let mut pattern = Pattern::new(4, width, height).unwrap();
            let picture = pattern.draw(77, 2_566_000);
            let reading = read_grab(&grab_of(&to_rgba(picture), width, height)).unwrap();
            assert_eq!(
                reading.stamp,
                Ok(Stamp {
                    sender: 4,
                    frame: 77,
                    capture_us: 2_566_000
                })
            );
            assert_eq!(reading.bars, 8);
        }
    }

    #[test]
    fn a_grey_picture_has_no_bars_and_no_stamp() {
        let rgba = vec![128u8; 320 * 240 * 4];
        let reading = read_grab(&grab_of(&rgba, 320, 240)).unwrap();
        assert_eq!(reading.bars, 0);
        assert!(reading.stamp.is_err());
    }

    #[test]
    fn a_transparent_grab_is_no_picture_and_an_opaque_black_one_is_not_ours() {
        let transparent = vec![0u8; 320 * 240 * 4];
        assert_eq!(
            read_grab(&grab_of(&transparent, 320, 240)),
            Err(GrabError::NothingDrawn)
        );
        let black: Vec<u8> = (0..320 * 240).flat_map(|_| [0, 0, 0, 255]).collect();
        let reading = read_grab(&grab_of(&black, 320, 240)).unwrap();
        assert!(reading.stamp.is_err());
        assert!(reading.bars < 8, "a black picture has no colour bars");
    }

    #[test]
    fn a_truncated_grab_is_an_error() {
        let error = read_grab(&grab_of(&[0; 100], 320, 240)).unwrap_err();
        assert!(matches!(error, GrabError::Size { got: 100, .. }));
    }
}

use super::*;

const WIDTH: u32 = 160;
const HEIGHT: u32 = 120;

fn config(keyframe_interval: u32) -> EncoderConfig {
    EncoderConfig {
        width: WIDTH,
        height: HEIGHT,
        fps: 30,
        bitrate_bps: 300_000,
        keyframe_interval,
    }
}

/// A picture with a bright square that moves one pixel per frame.
fn picture(n: u32) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut y = vec![40u8; w * h];
    let x0 = n as usize % (w - 32);
    for row in 40..72 {
        y[row * w + x0..row * w + x0 + 32].fill(220);
    }
    (y, vec![128; w * h / 4], vec![128; w * h / 4])
}

fn luma_at(luma: &Luma<'_>, x: usize, y: usize) -> u8 {
    luma.plane[y * luma.stride + x]
}

#[test]
fn every_frame_comes_out_and_decodes_to_the_picture_sent() {
    for codec in [Vpx::Vp8, Vpx::Vp9] {
        let mut encoder = Encoder::new(codec, config(0)).unwrap();
        let mut decoder = Decoder::new(codec).unwrap();
        for n in 0..30 {
            let (y, u, v) = picture(n);
            let frame = encoder.encode(&y, &u, &v).unwrap();
            assert!(!frame.data.is_empty(), "{codec:?} frame {n} was dropped");
            assert_eq!(frame.keyframe, n == 0, "{codec:?} frame {n}");
            let (size, inside, outside) = decoder
                .decode_with(&frame.data, |luma| {
                    let x = n as usize % (WIDTH as usize - 32) + 16;
                    (
                        (luma.width, luma.height),
                        luma_at(&luma, x, 56),
                        luma_at(&luma, x, 100),
                    )
                })
                .unwrap()
                .expect("a picture per frame");
            assert_eq!(size, (WIDTH as usize, HEIGHT as usize));
            assert!(
                inside > 180 && outside < 80,
                "{codec:?} frame {n}: {inside} {outside}"
            );
        }
    }
}

#[test]
fn keyframes_come_on_request_and_on_the_interval() {
    for codec in [Vpx::Vp8, Vpx::Vp9] {
        let mut encoder = Encoder::new(codec, config(10)).unwrap();
        let mut keyframes = Vec::new();
        for n in 0..25 {
            if n == 4 {
                encoder.request_keyframe();
            }
            let (y, u, v) = picture(n);
            if encoder.encode(&y, &u, &v).unwrap().keyframe {
                keyframes.push(n);
            }
        }
        assert_eq!(keyframes, [0, 4, 10, 20], "{codec:?}");
    }
}

#[test]
fn a_decoder_that_starts_mid_stream_recovers_at_the_next_keyframe() {
    for codec in [Vpx::Vp8, Vpx::Vp9] {
        let mut encoder = Encoder::new(codec, config(10)).unwrap();
        let frames: Vec<EncodedFrame> = (0..12)
            .map(|n| {
                let (y, u, v) = picture(n);
                encoder.encode(&y, &u, &v).unwrap()
            })
            .collect();
        let mut decoder = Decoder::new(codec).unwrap();
        // Whatever comes of frames that reference pictures never seen (an
        // error, nothing, or a damaged picture), nothing crashes.
        for frame in &frames[3..10] {
            let _ = decoder.decode_with(&frame.data, |_| ());
        }
        let shown = decoder
            .decode_with(&frames[10].data, |luma| luma.width)
            .unwrap();
        assert_eq!(shown, Some(WIDTH as usize), "{codec:?}");
    }
}

#[test]
fn garbage_is_an_error_not_a_crash_and_short_planes_are_refused() {
    let mut decoder = Decoder::new(Vpx::Vp8).unwrap();
    let error = decoder.decode_with(&[0xff; 64], |_| ()).unwrap_err();
    assert!(error.to_string().starts_with("VP8 decoding:"), "{error}");
    let mut encoder = Encoder::new(Vpx::Vp9, config(0)).unwrap();
    let error = encoder.encode(&[0; 10], &[0; 10], &[0; 10]).unwrap_err();
    assert!(matches!(error, VpxError::PictureSize { .. }), "{error}");
    assert!(version().starts_with('v'), "{}", version());
}

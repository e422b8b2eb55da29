//! What one frame of media costs the harness, per step, at 320x240 and
//! 640x480: drawing the stamped pattern, encode and decode in each video
//! codec of this build (H.264; VP8 and VP9 with libvpx), reading
//! the stamp back from a decoded picture, and the shared-media check (stamp
//! SEI and content hash, no decode); and per 20 ms of audio: Opus encode and
//! decode, and the tone check over one 100 ms analysis window.
//!
//!     cargo bench --bench media
//!
//! OpenH264's assembly is only built when `nasm` is installed (`.ci/run`
//! installs it); without it, encode and decode cost several times more.

use std::hint::black_box;

use callprobe_harness::media::codec::{H264Decoder, H264Encoder, VideoCodec, VideoSettings};
use callprobe_harness::media::opus::{OpusDecoder, OpusEncoder};
use callprobe_harness::media::pattern::Pattern;
use callprobe_harness::media::sei::stamp_and_content_hash;
use callprobe_harness::media::shared::SharedClip;
use callprobe_harness::media::stamp::{Stamp, read_stamp};
use callprobe_harness::media::tone::Tone;
use callprobe_harness::verify::audio::{WINDOW_SAMPLES, analyze_window};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// A second of video: enough frames that encode and decode see P-frames
/// and a keyframe, as in a call.
const FRAMES: u32 = 30;

const SIZES: [(usize, usize, u32); 2] = [(320, 240, 500_000), (640, 480, 1_000_000)];

fn settings(width: usize, height: usize, bitrate_bps: u32) -> VideoSettings {
    VideoSettings {
        width,
        height,
        bitrate_bps,
        keyframe_interval: FRAMES,
        ..VideoSettings::default()
    }
}

/// `FRAMES` encoded access units of the pattern.
fn encoded(settings: &VideoSettings) -> Vec<Vec<u8>> {
    let mut pattern = Pattern::new(1, settings.width, settings.height).expect("a valid size");
    let mut encoder = H264Encoder::new(settings).expect("an encoder");
    (0..FRAMES)
        .map(|n| {
            encoder
                .encode(pattern.draw(n, u64::from(n) * 33_333))
                .expect("encodes")
                .data
        })
        .collect()
}

fn video(c: &mut Criterion) {
    let mut group = c.benchmark_group("video");
    group.throughput(Throughput::Elements(1));
    for (width, height, bitrate) in SIZES {
        let size = format!("{width}x{height}");
        let settings = settings(width, height, bitrate);

        let mut pattern = Pattern::new(1, width, height).expect("a valid size");
        let mut n = 0u32;
        group.bench_function(BenchmarkId::new("pattern_and_stamp", &size), |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                black_box(pattern.draw(n, u64::from(n) * 33_333));
            });
        });

        // Each codec: encoding a frame sequence, one frame per iteration
        // (the encoder keeps its state, as a sender's does), and decoding
        // it, looping from its keyframe so every decode has its references.
        for codec in VideoCodec::ALL
            .into_iter()
            .filter(|c| c.unavailable().is_none())
        {
            let spec = codec.codec();
            let mut encoder = spec.encoder(&settings).expect("an encoder");
            let mut n = 0u32;
            group.bench_function(BenchmarkId::new(format!("{codec}_encode"), &size), |b| {
                b.iter(|| {
                    n = n.wrapping_add(1);
                    let picture = pattern.draw(n, u64::from(n) * 33_333);
                    black_box(encoder.encode(picture).expect("encodes"));
                });
            });
            let mut encoder = spec.encoder(&settings).expect("an encoder");
            let mut sequence = Pattern::new(1, width, height).expect("a valid size");
            let units: Vec<Vec<u8>> = (0..FRAMES)
                .map(|n| {
                    let picture = sequence.draw(n, u64::from(n) * 33_333);
                    encoder.encode(picture).expect("encodes").data
                })
                .collect();
            let mut decoder = spec.decoder().expect("a decoder");
            let mut i = 0usize;
            group.bench_function(BenchmarkId::new(format!("{codec}_decode"), &size), |b| {
                b.iter(|| {
                    let unit = &units[i % units.len()];
                    i += 1;
                    black_box(decoder.decode(unit, &mut |_| ()).expect("decodes"));
                });
            });
        }

        let units = encoded(&settings);
        let mut decoder = H264Decoder::new().expect("a decoder");
        let (luma, stride) = units
            .iter()
            .find_map(|unit| {
                decoder
                    .decode_with(unit, |picture| (picture.y().to_vec(), picture.strides().0))
                    .expect("decodes")
            })
            .expect("a picture came out");
        assert_eq!(
            read_stamp(&luma, stride, width, height)
                .expect("the stamp survives encoding")
                .sender,
            1
        );
        group.bench_function(BenchmarkId::new("stamp_read", &size), |b| {
            b.iter(|| black_box(read_stamp(black_box(&luma), stride, width, height)));
        });

        // Shared mode: the sender stamps a clip frame (SEI), the receiver
        // reads the SEI and hashes the rest; nothing is encoded or decoded.
        let clip = SharedClip::encode(&settings, FRAMES, 32_000).expect("a clip");
        let mut n = 0u32;
        group.bench_function(BenchmarkId::new("shared_stamp_and_check", &size), |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                let frame = clip.stamped_frame(Stamp {
                    sender: 1,
                    frame: n,
                    capture_us: u64::from(n) * 33_333,
                });
                black_box(stamp_and_content_hash(&frame));
            });
        });
    }
    group.finish();
}

fn audio(c: &mut Criterion) {
    let mut group = c.benchmark_group("audio");
    group.throughput(Throughput::Elements(1));
    let mut tone = Tone::for_sender(1);
    let mut encoder = OpusEncoder::new(32_000).expect("an encoder");
    group.bench_function("opus_encode_20ms", |b| {
        b.iter(|| black_box(encoder.encode(&tone.next_frame()).expect("encodes")));
    });

    let packets: Vec<Vec<u8>> = (0..50)
        .map(|_| encoder.encode(&tone.next_frame()).expect("encodes"))
        .collect();
    let mut decoder = OpusDecoder::new().expect("a decoder");
    let mut i = 0usize;
    group.bench_function("opus_decode_20ms", |b| {
        b.iter(|| {
            let packet = &packets[i % packets.len()];
            i += 1;
            black_box(decoder.decode(packet).expect("decodes").len());
        });
    });

    let window: Vec<f32> = (0..WINDOW_SAMPLES.div_ceil(960))
        .flat_map(|_| tone.next_frame())
        .take(WINDOW_SAMPLES)
        .collect();
    let hz = tone.frequency_hz();
    assert!(analyze_window(&window, hz).dominant_hz.is_some());
    group.bench_function("tone_check_100ms_window", |b| {
        b.iter(|| black_box(analyze_window(black_box(&window), hz)));
    });
    group.finish();
}

criterion_group!(benches, video, audio);
criterion_main!(benches);

//! A browser's account of one call, in the same terms as a synthetic
//! peer's: `getStats` for what was received and decoded, and canvas grabs
//! read back for what was shown (our stamps and colour bars).

use std::time::Duration;

use callprobe_server::protocol::PeerId;

use super::grab::GrabReading;
use crate::media::tone::tone_hz;
use base64::Engine;

use crate::peer::browser_stats::{BrowserCallStats, GrabMiss, PageData, PageStats};
use crate::peer::{CallEnd, CallReport, MediaSource, Role};
use crate::verify::Summary;
use crate::verify::audio::AudioVerdict;
use crate::verify::data::{DataReceiver, DataVerdict};
use crate::verify::video::{FrameTime, VideoVerdict};

/// Grabs kept per call (one per sample interval: minutes of them).
const MAX_SAMPLES: usize = 1000;
/// A heard peak within this of the expected tone is that tone (tones are
/// 10 Hz apart; the page's FFT bins are 2.9 Hz wide).
const TONE_TOLERANCE_HZ: f64 = 4.0;
/// The page reads its analyser this often (`callprobe.js`, `listen`).
const TONE_SAMPLE_MS: f64 = 200.0;
/// Below this the analyser heard nothing (its floor is -100 dB and more).
const SILENCE_DB: f64 = -70.0;

/// What the harness sampled of one browser call as it ran.
#[derive(Clone, Debug, Default)]
pub(super) struct BrowserCallSamples {
    /// The page's wall clock (ms since the Unix epoch) of the first frame.
    pub first_frame_at: Option<f64>,
    /// The first frame, grabbed as it was shown.
    pub first: Option<GrabReading>,
    pub samples: Vec<Sample>,
    pub ended: bool,
}

/// One grab, with the decoded-frame count read just before it.
#[derive(Clone, Debug)]
pub(super) struct Sample {
    pub frames_decoded: u64,
    pub reading: GrabReading,
}

impl BrowserCallSamples {
    pub(super) fn push(&mut self, sample: Sample) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(sample);
        }
    }
}

/// Grabs without all their bars kept per call.
const MAX_MISSES: usize = 20;

/// The call report for one browser call. `since_epoch` turns the page's
/// wall clock into ms on the run's clock.
pub(super) fn call_report(
    remote: PeerId,
    role: Role,
    end: CallEnd,
    source: Option<MediaSource>,
    stats: Option<&PageStats>,
    samples: &BrowserCallSamples,
    since_epoch: &dyn Fn(f64) -> f64,
) -> CallReport {
    let mut report = CallReport::new(remote, role, end);
    let Some(stats) = stats else {
        return report;
    };
    let readings: Vec<&GrabReading> = samples
        .first
        .iter()
        .chain(samples.samples.iter().map(|s| &s.reading))
        .collect();
    report.video = stats
        .received
        .video
        .as_ref()
        .map(|_| video_verdict(source, stats, samples, &readings, since_epoch));
    report.audio = stats
        .received
        .audio
        .as_ref()
        .map(|_| audio_verdict(source, stats, since_epoch));
    if let Some(sent) = &stats.sent.video {
        report.frames_sent = sent.frames_sent.unwrap_or(0) as u32;
    }
    if let Some(sent) = &stats.sent.audio {
        report.audio_packets_sent = sent.packets_sent.unwrap_or(0);
    }
    report.browser = Some(Box::new(BrowserCallStats {
        stats: PageStats {
            tones: Vec::new(),
            data: None,
            ..stats.clone()
        },
        grabs: readings.len(),
        grabs_with_bars: readings.iter().filter(|r| r.bars == 8).count(),
        grabs_missing_bars: readings
            .iter()
            .filter(|r| r.bars < 8)
            .take(MAX_MISSES)
            .map(|r| GrabMiss {
                at_ms: since_epoch(r.at),
                bars: r.bars,
                frame: r.stamp.as_ref().ok().map(|s| s.frame),
            })
            .collect(),
    }));
    report
}

/// The page's data channel judged as a synthetic peer's is: each message
/// it received through the same verifier, from `source`'s index, with its
/// own sends and round trips as the page counted them.
pub(super) fn data_verdict(
    page: &PageData,
    source: Option<MediaSource>,
    us: u16,
    since_epoch: &dyn Fn(f64) -> f64,
) -> DataVerdict {
    let expected = match source {
        Some(MediaSource::Pattern(index) | MediaSource::Browser(index)) => index,
        // A caller nobody introduced: no sender is right.
        None => u16::MAX,
    };
    let at_us = |unix_ms: f64| (since_epoch(unix_ms).max(0.0) * 1e3) as u64;
    let mut receiver = DataReceiver::new(expected, us);
    if let Some(opened) = page.opened_at {
        receiver.opened(at_us(opened));
    }
    let mut undecodable = 0;
    for (at, text) in &page.received {
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) => {
                receiver.receive(&bytes, at_us(*at));
            }
            Err(_) => undecodable += 1,
        }
    }
    let mut verdict = receiver.verdict();
    verdict.sent = page.sent;
    verdict.bytes_sent = page.bytes_sent;
    verdict.rtt_ms = page.rtts.clone();
    verdict.wrong_sender += page.foreign_echoes;
    verdict.foreign += undecodable;
    verdict
}

fn video_verdict(
    source: Option<MediaSource>,
    stats: &PageStats,
    samples: &BrowserCallSamples,
    readings: &[&GrabReading],
    since_epoch: &dyn Fn(f64) -> f64,
) -> VideoVerdict {
    let video = stats.received.video.clone().unwrap_or_default();
    let decoded = video.frames_decoded.unwrap_or(0);
    let mut verdict = VideoVerdict {
        received: video.frames_received.unwrap_or(0),
        frames_decoded: Some(decoded),
        grabs: Some(readings.len() as u64),
        freezes: video.freeze_count.unwrap_or(0),
        freeze_ms: video.total_freezes_duration.unwrap_or(0.0) * 1e3,
        ..VideoVerdict::default()
    };
    verdict.undecodable = verdict
        .received
        .saturating_sub(decoded + video.frames_dropped.unwrap_or(0));
    if let Some(first) = samples.first_frame_at {
        verdict.first_frame_at = Some(Duration::from_secs_f64(since_epoch(first).max(0.0) / 1e3));
        let span_s = (stats.at - first) / 1e3;
        if span_s > 0.0 {
            verdict.fps = decoded as f64 / span_s;
        }
    }
    let mut latencies = Vec::new();
    let mut previous: Option<&GrabReading> = None;
    let mut highest: Option<u32> = None;
    for (n, reading) in readings.iter().enumerate() {
        let arrival_ms = since_epoch(reading.at);
        match source {
            Some(MediaSource::Pattern(sender)) => match reading.stamp {
                Ok(stamp) if stamp.sender == sender => {
                    match highest {
                        Some(h) if stamp.frame == h => verdict.duplicated += 1,
                        Some(h) if stamp.frame < h => verdict.reordered += 1,
                        _ => {}
                    }
                    if highest.is_none_or(|h| stamp.frame > h) {
                        // Evidence of a frame not seen before: verified.
                        verdict.verified += 1;
                    }
                    highest = Some(highest.map_or(stamp.frame, |h| h.max(stamp.frame)));
                    verdict.first_frame_number.get_or_insert(stamp.frame);
                    let latency_ms = arrival_ms - stamp.capture_us as f64 / 1e3;
                    latencies.push(Duration::from_secs_f64(latency_ms.max(0.0) / 1e3));
                    verdict.frames.push(FrameTime {
                        number: stamp.frame,
                        arrival_ms,
                        latency_ms,
                    });
                }
                Ok(_) => verdict.wrong_sender += 1,
                Err(_) => verdict.corrupted += 1,
            },
            // A browser's camera: no stamp, but every grab must differ.
            _ => {
                if previous.is_some_and(|p| p.hash == reading.hash) {
                    verdict.duplicated += 1;
                } else {
                    verdict.verified += 1;
                }
                verdict.frames.push(FrameTime {
                    number: n as u32,
                    arrival_ms,
                    latency_ms: f64::NAN,
                });
            }
        }
        previous = Some(reading);
    }
    verdict.latency = Summary::of(&latencies);
    verdict.lost = lost_between_grabs(source, &samples.samples);
    verdict
}

/// Frames the sender numbered between the first and last sampled grab,
/// less the frames the browser decoded in that time: what never showed.
fn lost_between_grabs(source: Option<MediaSource>, samples: &[Sample]) -> u64 {
    let Some(MediaSource::Pattern(sender)) = source else {
        return 0;
    };
    let stamped: Vec<(u32, u64)> = samples
        .iter()
        .filter_map(|s| match s.reading.stamp {
            Ok(stamp) if stamp.sender == sender => Some((stamp.frame, s.frames_decoded)),
            _ => None,
        })
        .collect();
    match (stamped.first(), stamped.last()) {
        (Some(&(first, decoded_first)), Some(&(last, decoded_last))) if last > first => {
            u64::from(last - first).saturating_sub(decoded_last.saturating_sub(decoded_first))
        }
        _ => 0,
    }
}

fn audio_verdict(
    source: Option<MediaSource>,
    stats: &PageStats,
    since_epoch: &dyn Fn(f64) -> f64,
) -> AudioVerdict {
    let audio = stats.received.audio.clone().unwrap_or_default();
    let mut verdict = AudioVerdict {
        packets: audio.packets_received.unwrap_or(0),
        lost_packets: audio.packets_lost.unwrap_or(0).max(0) as u64,
        gaps: 0,
        windows: stats.tones.len(),
        expected_windows: 0,
        silent_windows: 0,
        partial_windows: 0,
        wrong_windows: 0,
        foreign_packets: 0,
        tone_hz: None,
        first_tone_at: None,
        tone_windows_ms: Vec::new(),
        tone_window_len_ms: TONE_SAMPLE_MS,
        beeps: None,
    };
    let expected = match source {
        Some(MediaSource::Pattern(sender)) => Some(f64::from(tone_hz(sender))),
        _ => None,
    };
    let mut audible: Vec<f64> = Vec::new();
    for tone in &stats.tones {
        if tone.db.is_none_or(|db| db < SILENCE_DB) {
            verdict.silent_windows += 1;
            continue;
        }
        audible.push(tone.hz);
        match expected {
            Some(hz) if (tone.hz - hz).abs() <= TONE_TOLERANCE_HZ => {
                verdict.expected_windows += 1;
                verdict.tone_windows_ms.push(since_epoch(tone.at));
                verdict.first_tone_at.get_or_insert_with(|| {
                    Duration::from_secs_f64(since_epoch(tone.at).max(0.0) / 1e3)
                });
            }
            _ => verdict.wrong_windows += 1,
        }
    }
    audible.sort_by(f64::total_cmp);
    verdict.tone_hz = audible.get(audible.len() / 2).map(|&hz| hz as f32);
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::stamp::Stamp;
    use crate::peer::browser_stats::{HeardTone, RtpStats};

    fn reading(at: f64, frame: u32, sender: u16) -> GrabReading {
        GrabReading {
            at,
            width: 320,
            height: 240,
            stamp: Ok(Stamp {
                sender,
                frame,
                capture_us: u64::from(frame) * 33_333,
            }),
            bars: 8,
            hash: frame,
        }
    }

    fn stats(decoded: u64, tones: Vec<HeardTone>) -> PageStats {
        PageStats {
            at: 3_000.0,
            received: crate::peer::browser_stats::Directions {
                video: Some(RtpStats {
                    frames_received: Some(decoded),
                    frames_decoded: Some(decoded),
                    ..RtpStats::default()
                }),
                audio: Some(RtpStats {
                    packets_received: Some(150),
                    ..RtpStats::default()
                }),
            },
            tones,
            ..PageStats::default()
        }
    }

    #[test]
    fn grabs_with_advancing_stamps_verify_and_measure_latency() {
        let samples = BrowserCallSamples {
            first_frame_at: Some(0.0),
            first: Some(reading(10.0, 0, 2)),
            samples: vec![
                Sample {
                    frames_decoded: 30,
                    reading: reading(1_040.0, 30, 2),
                },
                Sample {
                    frames_decoded: 55,
                    reading: reading(2_040.0, 60, 2),
                },
            ],
            ended: true,
        };
        let tones = vec![
            HeardTone {
                at: 100.0,
                hz: f64::from(tone_hz(2)) + 1.4,
                db: Some(-20.0),
            },
            HeardTone {
                at: 300.0,
                hz: 0.0,
                db: None,
            },
        ];
        let report = call_report(
            PeerId::random(),
            Role::Callee,
            CallEnd::HungUp,
            Some(MediaSource::Pattern(2)),
            Some(&stats(90, tones)),
            &samples,
            &|ms| ms,
        );
        let video = report.video.unwrap();
        assert_eq!(
            (video.verified, video.corrupted, video.wrong_sender),
            (3, 0, 0),
            "three grabs, each a new stamped frame"
        );
        assert_eq!((video.frames_decoded, video.grabs), (Some(90), Some(3)));
        assert_eq!(video.lost, 5, "30 frames numbered, 25 decoded");
        assert!((video.fps - 30.0).abs() < 1e-9);
        assert_eq!(video.latency.count, 3);
        assert!(
            (video.latency.p50_ms - 40.0).abs() < 0.01,
            "{:?}",
            video.latency
        );
        let audio = report.audio.unwrap();
        assert!(audio.tone_matches(), "{audio:?}");
        assert_eq!(audio.silent_windows, 1);
        assert_eq!(report.browser.unwrap().grabs_with_bars, 3);
    }

    #[test]
    fn a_stamp_from_another_sender_or_a_wrong_tone_is_caught() {
        let samples = BrowserCallSamples {
            first_frame_at: Some(0.0),
            first: Some(reading(10.0, 0, 9)),
            samples: Vec::new(),
            ended: true,
        };
        let tones = vec![HeardTone {
            at: 100.0,
            hz: f64::from(tone_hz(3)),
            db: Some(-20.0),
        }];
        let report = call_report(
            PeerId::random(),
            Role::Caller,
            CallEnd::HungUp,
            Some(MediaSource::Pattern(2)),
            Some(&stats(10, tones)),
            &samples,
            &|ms| ms,
        );
        assert_eq!(report.video.unwrap().wrong_sender, 1);
        assert!(!report.audio.unwrap().tone_matches());
    }
}

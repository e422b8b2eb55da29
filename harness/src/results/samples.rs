//! Every metric's samples from a run's facts: its calls and their tracks,
//! its faults, each peer's errors, and the harness's own load. The
//! thresholds are judged on these (`collect`).

use std::collections::BTreeMap;

use super::collect::Collected;
use super::faults::FaultResult;
use super::load::{LoadObserved, timeline_lag};
use super::{CallKind, CallResult};
use crate::metrics::Metric;
use crate::scenario::FaultClass;

/// Every metric's samples from a run's facts: its calls, its faults, and
/// each peer's error count (the harness's own samples are added apart).
pub(super) fn fact_samples(
    calls: &[CallResult],
    faults: &[FaultResult],
    peer_errors: &[usize],
    shared: bool,
) -> BTreeMap<Metric, Vec<f64>> {
    let mut samples: BTreeMap<Metric, Vec<f64>> = BTreeMap::new();
    for call in calls {
        add_call_samples(&mut samples, call, shared);
    }
    for fault in faults {
        add_fault_samples(&mut samples, fault);
    }
    samples
        .entry(Metric::PeerErrors)
        .or_default()
        .extend(peer_errors.iter().map(|&n| n as f64));
    samples
}

fn add_fault_samples(samples: &mut BTreeMap<Metric, Vec<f64>>, fault: &FaultResult) {
    let mut add = |metric: Metric, value: Option<f64>| {
        if let Some(value) = value {
            samples.entry(metric).or_default().push(value);
        }
    };
    for seen in &fault.departures {
        add(Metric::PeerGoneDetected, seen.detected_ms());
        add(Metric::PeerGonePeerLeft, seen.peer_left_ms);
        add(Metric::PeerGoneIceDisconnected, seen.ice_disconnected_ms);
        add(Metric::PeerGoneIceFailed, seen.ice_failed_ms);
        add(Metric::PeerGoneLastFrame, seen.last_frame_ms);
    }
    for seen in &fault.outage {
        add(Metric::ServerCrashDetected, seen.detected_ms());
        add(Metric::ServerCrashIceFailed, seen.ice_failed_ms);
        add(Metric::ServerCrashCallEnded, seen.call_ended_ms);
        add(Metric::ServerCrashLastFrame, seen.last_frame_ms);
    }
    add(
        Metric::NetworkChangeIceReconnected,
        fault.ice_reconnected_ms,
    );
    for track in &fault.tracks {
        let lost = Some(track.frames_lost as f64);
        match fault.class {
            FaultClass::NetworkChange => {
                add(Metric::NetworkChangeRecovered, track.recovered_ms);
                add(Metric::NetworkChangeFramesLost, lost);
            }
            FaultClass::Impairment(_) => {
                add(Metric::ImpairmentFramesLost, lost);
                add(Metric::ImpairmentFreezeMs, Some(track.freeze_ms));
                if fault.until_ms.is_some() {
                    add(Metric::ImpairmentRecovered, track.recovered_ms);
                }
            }
            // A departure or a server's crash has no tracks of its own:
            // the signals of the calls it touched.
            FaultClass::Departure | FaultClass::ServerCrash => {}
        }
    }
}

fn add_call_samples(samples: &mut BTreeMap<Metric, Vec<f64>>, call: &CallResult, shared: bool) {
    let mut add = |metric: Metric, value: f64| samples.entry(metric).or_default().push(value);
    let setup = &call.setup;
    // A room's publish and subscriptions have phases of their own: the
    // answer, or the offer, is the media server's.
    let phases: &[(Metric, Option<f64>)] = match call.kind {
        CallKind::Call => &[
            (Metric::SetupSignaling, setup.signaling_ms),
            (Metric::SetupRelayAllocated, setup.relay_allocated_ms),
            (Metric::SetupAnswer, setup.answer_ms),
            (Metric::SetupIceConnected, setup.ice_connected_ms),
            (Metric::SetupDtlsConnected, setup.dtls_connected_ms),
            (Metric::SetupFirstRtp, setup.first_rtp_ms),
            (Metric::SetupFirstFrame, setup.first_frame_ms),
            (Metric::SetupFirstAudio, setup.first_audio_ms),
            (Metric::DataOpen, setup.data_open_ms),
        ],
        CallKind::Publish => &[
            (Metric::SfuPublishAnswer, setup.answer_ms),
            (Metric::SfuPublishConnected, setup.dtls_connected_ms),
        ],
        CallKind::Subscription => &[
            (Metric::SfuOffer, setup.signaling_ms),
            (Metric::SfuIceConnected, setup.ice_connected_ms),
            (Metric::SfuDtlsConnected, setup.dtls_connected_ms),
            (Metric::SfuFirstFrame, setup.first_frame_ms),
            (Metric::SfuFirstAudio, setup.first_audio_ms),
        ],
    };
    for &(metric, value) in phases {
        if let Some(value) = value {
            add(metric, value);
        }
    }
    let as_expected = if call.expect_failure {
        !call.verified
    } else {
        call.verified && call.failure.is_none()
    };
    add(Metric::CallFailed, if as_expected { 0.0 } else { 1.0 });
    if call.pairs.caller.is_some() || call.pairs.callee.is_some() {
        add(
            Metric::CallRelayed,
            if call.pairs.relayed() { 1.0 } else { 0.0 },
        );
    }
    if let Some(ms) = call.failed_after_ms {
        add(Metric::CallFailure, ms);
    }
    // A call meant to fail has no media to judge.
    let tracks = if call.expect_failure {
        &[][..]
    } else {
        &call.tracks[..]
    };
    for track in tracks {
        let video = track.video.clone().unwrap_or_default();
        let expected = video.verified + track.frames_lost;
        add(Metric::VideoFps, video.fps);
        add(Metric::VideoFramesVerified, video.verified as f64);
        add(Metric::VideoFramesLost, track.frames_lost as f64);
        add(Metric::VideoFramesCorrupt, video.corrupted as f64);
        add(Metric::VideoFramesWrongSender, video.wrong_sender as f64);
        let ratio = match video.grabs {
            // A browser shows frames and we sample them: the evidence is
            // the share of grabs that verified.
            Some(grabs) if grabs > 0 => video.verified as f64 / grabs as f64,
            Some(_) => 0.0,
            None if expected == 0 => 0.0,
            None => video.verified as f64 / expected as f64,
        };
        add(Metric::VideoVerifiedRatio, ratio);
        if let Some(decoded) = video.frames_decoded {
            add(Metric::VideoFramesDecoded, decoded as f64);
        }
        add(Metric::VideoFreezes, video.freezes as f64);
        add(Metric::VideoFreezeMs, video.freeze_ms);
        add(Metric::VideoFramesDuplicated, video.duplicated as f64);
        match &track.video_span {
            Some(span) => {
                add(Metric::VideoCoverage, span.coverage);
                add(Metric::VideoLongestFreeze, span.longest_freeze_ms);
            }
            // Frames were due and no span could be judged: nothing came.
            None if track.frames_sent > 0 && video.verified == 0 => {
                add(Metric::VideoCoverage, 0.0);
            }
            None => {}
        }
        match &track.audio_span {
            Some(span) => {
                add(Metric::AudioCoverage, span.coverage);
                add(Metric::AudioSilenceMs, span.silence_ms);
            }
            None if track.audio.is_none() => add(Metric::AudioCoverage, 0.0),
            None => {}
        }
        // Live video (a browser's camera) has no capture time: NaN.
        for frame in video.frames.iter().filter(|f| f.latency_ms.is_finite()) {
            add(Metric::VideoLatency, frame.latency_ms);
            if call.kind == CallKind::Subscription {
                add(Metric::SfuFanoutLatency, frame.latency_ms);
            }
        }
        add(
            Metric::AudioToneMatch,
            if track.tone_match { 1.0 } else { 0.0 },
        );
        if let Some(data) = &track.data {
            add(Metric::DataDeliveredRatio, data.delivered_ratio);
            add(Metric::DataMessagesLost, f64::from(data.lost));
            add(Metric::DataMessagesDuplicated, f64::from(data.duplicated));
            add(Metric::DataMessagesReordered, f64::from(data.reordered));
            add(Metric::DataMessagesCorrupt, f64::from(data.corrupt));
            add(
                Metric::DataMessagesWrongSender,
                f64::from(data.wrong_sender),
            );
            if let Some(kbps) = data.throughput_kbps {
                add(Metric::DataThroughput, kbps);
            }
            for &rtt in &data.rtt_ms {
                add(Metric::DataRtt, rtt);
            }
        }
        if let Some(audio) = &track.audio {
            if let Some(hz) = audio.tone_hz {
                add(Metric::AudioToneHz, f64::from(hz));
            }
            add(Metric::AudioGaps, audio.gaps as f64);
            let wrong = if shared {
                audio.foreign_packets.div_ceil(5) as usize
            } else {
                audio.wrong_windows
            };
            add(Metric::AudioWrongToneWindows, wrong as f64);
            add(Metric::AudioPacketsLost, audio.lost_packets as f64);
        }
    }
}

pub(super) fn add_load_samples(
    samples: &mut BTreeMap<Metric, Vec<f64>>,
    load: &super::HarnessLoad,
    observed: &LoadObserved,
    input: &Collected<'_>,
) {
    let mut add = |metric: Metric, value: f64| samples.entry(metric).or_default().push(value);
    for lag in timeline_lag(&observed.watched, input.started, input.ended) {
        add(Metric::HarnessLag, lag);
    }
    add(Metric::HarnessLateFrames, load.pacing.late_ratio);
    if let Some(cpu) = load.cpu {
        add(Metric::HarnessCpuPerPeer, cpu.per_peer_pct);
    }
    if let Some(memory) = load.memory {
        add(Metric::HarnessRssPerPeer, memory.per_peer_mb);
    }
    if let Some(growth) = load.growth {
        add(Metric::HarnessRssGrowth, growth.rss_mb_per_min);
        if let Some(fds) = growth.fds_per_min {
            add(Metric::HarnessFdGrowth, fds);
        }
        if let Some(tasks) = growth.tasks_per_min {
            add(Metric::HarnessTaskGrowth, tasks);
        }
    }
    if let Some(ms) = load.ramp.all_connected_ms {
        add(Metric::RampAllConnected, ms);
    }
    if let Some(rate) = load.ramp.calls_per_second {
        add(Metric::RampCallsPerSecond, rate);
    }
}

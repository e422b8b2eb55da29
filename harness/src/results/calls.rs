//! Which call is which, and what each direction got: every call the
//! runner commanded matched with its events, its setup phases, how it
//! ended (and whether that was a failure), and both tracks judged over the
//! call's span (`span.rs`).

use crate::clock::RunTime;

use super::collect::{Collected, signed_ms};
use super::span::{self, FaultWindow, Span};
use super::{CallKind, CallResult, SelectedPairs, SeriesPoint, TrackResult};
use crate::peer::{CallEnd, CallId, CallReport, PeerEvent, PeerEventKind};
use crate::scenario::{Scenario, Verb};
use crate::timeline::SetupTimeline;
use crate::verify::video::{FrameTime, VideoVerdict};
use callprobe_server::protocol::PeerId;

/// Each call the runner made, with its events: those both peers filed
/// under the id the runner gave the call.
pub(super) fn calls(input: &Collected<'_>) -> Vec<CallResult> {
    let scenario = input.scenario;
    let commanded: Vec<(RunTime, usize, usize, bool, Option<CallId>)> = input
        .actions
        .iter()
        .filter_map(|(at, action, call)| match action.verb {
            Verb::Call {
                from,
                to,
                expect_failure,
            } => Some((*at, from, to, expect_failure, *call)),
            _ => None,
        })
        .collect();
    let shared = scenario.media.shared;
    let clock = Clock {
        offset_ms: input
            .started
            .saturating_duration_since(RunTime::ZERO)
            .as_secs_f64()
            * 1e3,
        end_ms: signed_ms(input.ended, input.started),
    };
    commanded
        .iter()
        .map(|&(at, from, to, expect_failure, call)| {
            let of_call: Vec<&PeerEvent> = input
                .events
                .iter()
                .filter(|e| call.is_some() && e.call == call)
                .collect();
            let ids = (input.ids[from], input.ids[to]);
            let (caller, callee) = (scenario.peers[from].name.clone(), scenario.peers[to].name.clone());
            let (Some(from_id), Some(to_id)) = ids else {
                return CallResult {
                    call,
                    kind: CallKind::Call,
                    caller,
                    callee,
                    started_at_ms: signed_ms(at, input.started),
                    ended_at_ms: None,
                    end: "a peer never started".to_owned(),
                    setup: SetupTimeline::default(),
                    pairs: SelectedPairs::default(),
                    verified: false,
                    expect_failure,
                    failed_after_ms: None,
                    failure: Some("a peer never started".to_owned()),
                    failure_load_independent: false,
                    tracks: Vec::new(),
                };
            };
            let (caller_index, callee_index) = (from as u16, to as u16);
            let setup =
                SetupTimeline::of_call(&of_call, caller_index, callee_index).unwrap_or_default();
            let started = of_call
                .iter()
                .find(|e| {
                    e.peer == caller_index
                        && matches!(e.kind, PeerEventKind::CallCommanded { remote } if remote == to_id)
                })
                .map_or(at, |e| e.at);
            let report = |peer: u16, remote: PeerId| {
                of_call.iter().find_map(|e| match &e.kind {
                    PeerEventKind::CallEnded(report) if e.peer == peer && report.remote == remote => {
                        Some((e.at, report.as_ref()))
                    }
                    _ => None,
                })
            };
            let last_pair = |peer: u16| {
                of_call.iter().rev().find_map(|e| match &e.kind {
                    PeerEventKind::PairSelected { pair, .. } if e.peer == peer => Some(pair.clone()),
                    _ => None,
                })
            };
            let pairs = SelectedPairs {
                caller: last_pair(caller_index),
                callee: last_pair(callee_index),
            };
            let caller_report = report(caller_index, to_id);
            let callee_report = report(callee_index, from_id);
            let reports = [caller_report, callee_report];
            let commanded = commanded_end(input, (from, to), call, started, pairs.relayed());
            let end = call_end(commanded, reports);
            let (failure, failure_load_independent) =
                failure(input, (from, to), commanded, reports).unzip();
            let span_of = |receiver: usize, sender: usize| SpanContext {
                end_ms: signed_ms(end, RunTime::ZERO),
                windows: fault_windows(input, receiver, sender),
                frame_interval_ms: 1e3 / f64::from(sender_fps(scenario, sender).max(1)),
                data: scenario.media.data,
                joined: None,
            };
            let mut tracks = vec![
                track(
                    &caller,
                    &callee,
                    caller_report.map(|r| r.1),
                    callee_report.map(|r| r.1),
                    shared,
                    &span_of(from, to),
                ),
                track(
                    &callee,
                    &caller,
                    callee_report.map(|r| r.1),
                    caller_report.map(|r| r.1),
                    shared,
                    &span_of(to, from),
                ),
            ];
            for track in &mut tracks {
                track.series = series(track.video.as_ref(), clock);
            }
            let verified = tracks.iter().all(|t| {
                t.video.as_ref().is_some_and(|v| v.verified > 0) && t.tone_match
            });
            CallResult {
                call,
                kind: CallKind::Call,
                caller,
                callee,
                started_at_ms: signed_ms(started, input.started),
                ended_at_ms: caller_report.map(|(at, _)| signed_ms(at, input.started)),
                end: caller_report.map_or_else(|| "no report".to_owned(), |(_, r)| end_text(&r.end)),
                setup,
                pairs,
                verified,
                expect_failure,
                failure,
                failure_load_independent: failure_load_independent.unwrap_or(false),
                failed_after_ms: caller_report.and_then(|(at, report)| {
                    matches!(report.end, CallEnd::Failed(_))
                        .then(|| at.saturating_duration_since(started).as_secs_f64() * 1e3)
                }),
                tracks,
            }
        })
        .collect()
}

/// From the peers' clock (ms since their epoch) to the report's (ms since
/// the timeline started), and where the report's clock stops.
#[derive(Clone, Copy, Debug)]
pub(super) struct Clock {
    pub(super) offset_ms: f64,
    pub(super) end_ms: f64,
}

/// Verified frames per second and mean latency, per second of the timeline.
pub(super) fn series(video: Option<&VideoVerdict>, clock: Clock) -> Vec<SeriesPoint> {
    let Some(video) = video else {
        return Vec::new();
    };
    // (frames, latency sum, frames with a latency): live video has none.
    let mut buckets: Vec<(u32, f64, u32)> = Vec::new();
    for frame in &video.frames {
        let at = frame.arrival_ms - clock.offset_ms;
        // Frames still arriving while peers close count in the totals but
        // are past the end of the timeline.
        if at < 0.0 || at >= clock.end_ms {
            continue;
        }
        let second = (at / 1e3).floor() as usize;
        if buckets.len() <= second {
            buckets.resize(second + 1, (0, 0.0, 0));
        }
        buckets[second].0 += 1;
        if frame.latency_ms.is_finite() {
            buckets[second].1 += frame.latency_ms;
            buckets[second].2 += 1;
        }
    }
    buckets
        .into_iter()
        .enumerate()
        .filter(|(_, (frames, _, _))| *frames > 0)
        // The last second may be cut short by the end of the run: a rate
        // over a sliver of a second says nothing, so it needs half of one.
        .filter_map(|(second, bucket)| {
            let covered = (clock.end_ms / 1e3 - second as f64).min(1.0);
            (covered >= 0.5).then_some((second, bucket, covered))
        })
        .map(|(second, (frames, latency, timed), covered)| {
            let start = second as f64;
            SeriesPoint {
                t_s: start,
                fps: f64::from(frames) / covered,
                // NaN (JSON null) when nothing in the second had a latency.
                latency_ms: latency / f64::from(timed),
            }
        })
        .collect()
}

pub(super) fn end_text(end: &CallEnd) -> String {
    match end {
        CallEnd::HungUp => "hung up".to_owned(),
        CallEnd::RemoteHungUp => "remote hung up".to_owned(),
        CallEnd::PeerLeft => "peer left".to_owned(),
        CallEnd::Failed(why) => format!("failed: {why}"),
        CallEnd::Abandoned => "abandoned (our side crashed or vanished)".to_owned(),
    }
}

/// The frame rate a peer sends at: the scenario's, or a browser's own.
pub(super) fn sender_fps(scenario: &Scenario, sender: usize) -> u32 {
    match scenario.peers[sender].kind {
        crate::scenario::PeerKind::Browser => scenario.peers[sender].video.fps,
        _ => scenario.media.video.fps,
    }
}

/// When the scenario ends a call: the first of its hangup, a declared
/// departure of either peer after it started, or the end of the run.
pub(super) fn commanded_end(
    input: &Collected<'_>,
    (a, b): (usize, usize),
    call: Option<CallId>,
    started: RunTime,
    relayed: bool,
) -> RunTime {
    input
        .actions
        .iter()
        .filter_map(|(at, action, ended)| {
            let ends = match (&action.verb, action.verb.actor()) {
                (Verb::Hangup { .. }, _) => call.is_some() && *ended == call,
                // A crashed TURN server ends the calls relayed through it.
                (Verb::CrashServer { .. }, _) => relayed && *at >= started,
                (verb, Some(peer)) => {
                    verb.ends_calls() && (peer == a || peer == b) && *at >= started
                }
                (_, None) => false,
            };
            ends.then_some(*at)
        })
        .chain([input.ended])
        .min()
        .expect("the run's end is always there")
}

/// When a call's span ends: when the scenario ended it, or either side
/// did, whichever came first.
fn call_end(commanded: RunTime, reports: [Option<(RunTime, &CallReport)>; 2]) -> RunTime {
    reports
        .into_iter()
        .flatten()
        .map(|(at, _)| at)
        .chain([commanded])
        .min()
        .expect("the commanded end is always there")
}

/// Why a call failed, if it did: a typed failure at either side, or an
/// end, before anything the scenario commanded (a hangup, a departure, the
/// end of the run); or a side that never reported on it. With it, whether
/// that failure is one load cannot cause.
fn failure(
    input: &Collected<'_>,
    (a, b): (usize, usize),
    commanded: RunTime,
    reports: [Option<(RunTime, &CallReport)>; 2],
) -> Option<(String, bool)> {
    let name = |i: usize| input.scenario.peers[i].name.as_str();
    for (side, report) in [a, b].into_iter().zip(reports) {
        match report {
            // After the scenario ended the call (a departure, say), how it
            // ended is the fault's to measure.
            Some((at, report)) if at < commanded => {
                if let CallEnd::Failed(why) = &report.end {
                    return Some((format!("{}: {why}", name(side)), why.load_independent()));
                }
            }
            Some(_) => {}
            None => {
                return Some((
                    format!(
                        "{} never reported on the call (its task did not end it within the teardown bound)",
                        name(side)
                    ),
                    false,
                ));
            }
        }
    }
    // Neither failed; did one end the call before anything said to?
    [a, b]
        .into_iter()
        .zip(reports)
        .filter_map(|(side, report)| report.map(|(at, r)| (side, at, r)))
        .filter(|(_, at, _)| *at < commanded)
        .min_by_key(|(_, at, _)| *at)
        .map(|(side, at, report)| {
            let text = format!(
                "{} ended the call ({}) at {:.0} ms, before the scenario said to",
                name(side),
                end_text(&report.end),
                signed_ms(at, input.started)
            );
            (text, false)
        })
}

/// The declared faults on one direction's path: an impairment that can
/// lose media, of the receiver's inbound or the sender's outbound traffic
/// (to its restore, or open-ended), and a move of either (until media
/// comes back). Delay, jitter, reordering and duplication excuse nothing.
pub(super) fn fault_windows(
    input: &Collected<'_>,
    receiver: usize,
    sender: usize,
) -> Vec<FaultWindow> {
    let on_peer_clock = |at: RunTime| signed_ms(at, RunTime::ZERO);
    let mut windows = Vec::new();
    for (k, (at, action, _)) in input.actions.iter().enumerate() {
        match action.verb {
            Verb::Impair {
                peer,
                direction,
                ref impairment,
            } if impairment.loses_media()
                && ((peer == receiver && direction.includes_in())
                    || (peer == sender && direction.includes_out())) =>
            {
                let restored = input.actions[k + 1..].iter().find_map(|(when, a, _)| {
                    matches!(a.verb, Verb::Restore { peer: p } if p == peer).then_some(*when)
                });
                windows.push(FaultWindow {
                    start_ms: on_peer_clock(*at),
                    end_ms: restored.map(on_peer_clock),
                });
            }
            Verb::Move { peer, .. } if peer == receiver || peer == sender => {
                windows.push(FaultWindow {
                    start_ms: on_peer_clock(*at),
                    end_ms: Some(on_peer_clock(*at)),
                });
            }
            _ => {}
        }
    }
    windows
}

/// What a track is judged over, besides its own media.
pub(super) struct SpanContext {
    /// The call's end, on the peers' clock.
    pub(super) end_ms: f64,
    pub(super) windows: Vec<FaultWindow>,
    pub(super) frame_interval_ms: f64,
    /// The call's data channel, if the scenario asked for one.
    pub(super) data: Option<crate::peer::DataSettings>,
    /// Where the span starts, if not at the sender's first frame and
    /// tone: a subscription's, at its own first frame and first tone (the
    /// publisher was sending before anyone subscribed).
    pub(super) joined: Option<Joined>,
}

/// When a subscription's video and audio started, on the peers' clock.
#[derive(Clone, Copy, Debug)]
pub(super) struct Joined {
    /// The first verified frame's capture time.
    pub(super) video_ms: Option<f64>,
    pub(super) audio_ms: Option<f64>,
}

/// One direction: what `receiver` reported of `sender`'s media, judged
/// over the call's span.
pub(super) fn track(
    receiver: &str,
    sender: &str,
    received: Option<&CallReport>,
    sent: Option<&CallReport>,
    shared: bool,
    context: &SpanContext,
) -> TrackResult {
    let frames_sent = sent.map_or(0, |r| r.frames_sent);
    let mut video = received.and_then(|r| r.video.clone());
    let audio = received.and_then(|r| r.audio.clone());
    let mut frames_lost = match &video {
        Some(v) if v.verified > 0 => v.lost + u64::from(v.first_frame_number.unwrap_or(0)),
        _ => u64::from(frames_sent),
    };
    let tone_match = audio.as_ref().is_some_and(|a| {
        if shared {
            a.packets > 0 && a.foreign_packets == 0
        } else {
            a.tone_matches()
        }
    });
    // A browser samples what it shows (a grab every so often), so its
    // frames are judged at the sampling interval; ours see every frame.
    let sampled = received.is_some_and(|r| r.browser.is_some());
    let frames = video.as_ref().map_or(&[][..], |v| &v.frames[..]);
    let latency_p50 = video.as_ref().map_or(f64::NAN, |v| v.latency.p50_ms);
    let allowance = span::in_flight_allowance_ms(latency_p50, context.frame_interval_ms);
    let end_ms = context.end_ms - allowance;
    // A subscription that never saw a frame is judged from the sender's
    // start: all of it lost.
    let joined_video = context.joined.and_then(|j| j.video_ms);
    let video_start = sent
        .and_then(|r| r.video_sent)
        .map(|s| s.first_ms)
        .or_else(|| frames.iter().map(|f| f.arrival_ms).reduce(f64::min))
        .map(|start| joined_video.map_or(start, |joined| start.max(joined)));
    let video_span = video_start
        .map(|start_ms| Span { start_ms, end_ms })
        .filter(|span| span.end_ms > span.start_ms)
        .map(|span| {
            let interval = if sampled {
                mean_interval(frames).unwrap_or(context.frame_interval_ms)
            } else {
                context.frame_interval_ms
            };
            let mut judged = span::judge_video(frames, span, &context.windows, interval);
            if let (Some(sent_span), false) = (sent.and_then(|r| r.video_sent), sampled) {
                let from_ms = joined_video.unwrap_or(f64::NEG_INFINITY);
                let (expected, lost) =
                    span::frames_lost(frames, frames_sent, sent_span, from_ms, end_ms);
                judged.frames_expected = Some(expected);
                judged.frames_lost = Some(lost);
            }
            judged
        });
    if let (Some(judged), Some(video)) = (&video_span, &mut video) {
        if let Some(lost) = judged.frames_lost {
            frames_lost = lost;
            video.lost = lost;
        }
        if !sampled {
            video.fps = judged.fps;
            video.freezes = judged.freezes;
            video.freeze_ms = judged.freeze_ms;
        }
    }
    let joined_audio = context.joined.and_then(|j| j.audio_ms);
    let audio_span = sent
        .and_then(|r| r.audio_sent)
        .map(|s| Span {
            start_ms: joined_audio.map_or(s.first_ms, |joined| s.first_ms.max(joined)),
            end_ms,
        })
        .filter(|span| span.end_ms > span.start_ms)
        .map(|span| {
            let (heard, window) = audio.as_ref().map_or((&[][..], 0.0), |a| {
                (&a.tone_windows_ms[..], a.tone_window_len_ms)
            });
            span::judge_audio(heard, window, span, &context.windows)
        });
    TrackResult {
        receiver: receiver.to_owned(),
        sender: sender.to_owned(),
        // Both sides send what was negotiated; a browser does not say.
        codec: sent
            .and_then(|r| r.video_codec)
            .or_else(|| received.and_then(|r| r.video_codec)),
        frames_sent,
        frames_lost,
        video,
        audio,
        video_span,
        audio_span,
        tone_match,
        series: Vec::new(),
        data: context.data.map(|settings| {
            super::data::judge(
                received.and_then(|r| r.data.as_ref()),
                sent.and_then(|r| r.data.as_ref()),
                &settings,
                context.end_ms * 1e3,
            )
        }),
    }
}

/// The mean time between frames seen, if two were.
fn mean_interval(frames: &[FrameTime]) -> Option<f64> {
    let first = frames.iter().map(|f| f.arrival_ms).reduce(f64::min)?;
    let last = frames.iter().map(|f| f.arrival_ms).reduce(f64::max)?;
    (frames.len() >= 2 && last > first).then(|| (last - first) / (frames.len() - 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_is_per_second_of_the_timeline_and_skips_slivers() {
        // The peers' clock runs 700 ms ahead of the timeline's; a frame every
        // 1/30 s from the timeline's start to just past its 3.01 s end.
        let offset_ms = 700.0;
        let frames = (0..91)
            .map(|n| FrameTime {
                number: n,
                arrival_ms: offset_ms + f64::from(n) * 1000.0 / 30.0 + 0.5,
                latency_ms: 4.0,
            })
            .collect();
        let video = VideoVerdict {
            frames,
            ..VideoVerdict::default()
        };
        let clock = Clock {
            offset_ms,
            end_ms: 3010.0,
        };
        let points = series(Some(&video), clock);
        let seconds: Vec<(f64, f64)> = points.iter().map(|p| (p.t_s, p.fps)).collect();
        assert_eq!(seconds, [(0.0, 30.0), (1.0, 30.0), (2.0, 30.0)]);
        assert!(points.iter().all(|p| (p.latency_ms - 4.0).abs() < 1e-9));
        assert!(series(None, clock).is_empty());
    }
}

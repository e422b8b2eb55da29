//! From the peers' event log to a [`ScenarioResult`]: which call is which,
//! its setup phases, both directions' verdicts, every metric's samples,
//! and the thresholds judged on them. A plain function of its inputs, so
//! it is tested without sockets.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use callprobe_server::protocol::PeerId;

use super::faults::{FaultInput, FaultResult, LinkSnapshot, faults};
use super::load::{LoadObserved, harness_load, timeline_lag};
use super::span::{self, FaultWindow, Span};
use super::{
    ActionRecord, CallResult, EventRecord, MediaInfo, MetricSummary, PeerNetwork, PeerResult,
    ScenarioResult, SeriesPoint, Status, ThresholdResult, TrackResult,
};
use crate::metrics::{Metric, Per};
use crate::peer::{CallEnd, CallReport, PeerEvent, PeerEventKind};
use crate::scenario::{Action, Scenario, Verb};
use crate::threshold::{Stat, statistic};
use crate::timeline::SetupTimeline;
use crate::verify::video::{FrameTime, VideoVerdict};

/// Everything the runner hands over at the end of a scenario.
#[derive(Debug)]
pub struct Collected<'a> {
    pub scenario: &'a Scenario,
    pub server: String,
    /// The peers' clock origin (their stamps and series count from it).
    pub epoch: Instant,
    /// When the timeline started (0 on the report's clock) and ended.
    pub started: Instant,
    pub ended: Instant,
    /// Set when the run was cut short: `Interrupted` (Ctrl-C) or `Error`
    /// (peers did not start), with why.
    pub cut_short: Option<(Status, String)>,
    /// Each peer's id, by index; `None` for a peer that never started.
    pub ids: &'a [Option<PeerId>],
    /// The actions carried out, with when the runner carried them out.
    pub actions: &'a [(Instant, Action)],
    pub events: &'a [PeerEvent],
    /// What each peer's network link saw, by index (empty: not known).
    pub links: &'a [LinkSnapshot],
    /// What the harness watched of its own load (`None`: not watched).
    pub load: Option<&'a LoadObserved>,
}

pub fn collect(input: Collected<'_>) -> ScenarioResult {
    let scenario = input.scenario;
    let ms = |at: Instant| signed_ms(at, input.started);
    let name = |index: usize| scenario.peers[index].name.clone();
    let by_id: HashMap<PeerId, usize> = input
        .ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| id.map(|id| (id, i)))
        .collect();
    let calls = calls(&input);
    let mut samples: BTreeMap<Metric, Vec<f64>> = BTreeMap::new();
    for call in &calls {
        add_call_samples(&mut samples, call, scenario.media.shared);
    }
    let names: Vec<String> = (0..scenario.peers.len()).map(name).collect();
    let faults = faults(&FaultInput {
        names: &names,
        ids: input.ids,
        actions: input.actions,
        events: input.events,
        links: input.links,
        calls: &calls,
        started: input.started,
        epoch: input.epoch,
        ended: input.ended,
    });
    for fault in &faults {
        add_fault_samples(&mut samples, fault);
    }
    for peer in 0..scenario.peers.len() {
        let errors = input
            .events
            .iter()
            .filter(|e| {
                usize::from(e.peer) == peer && matches!(e.kind, PeerEventKind::Error { .. })
            })
            .count();
        samples
            .entry(Metric::PeerErrors)
            .or_default()
            .push(errors as f64);
    }
    let harness = input.load.map(|observed| {
        let load = harness_load(
            observed,
            &scenario.load_bounds,
            scenario.peers.len(),
            &calls,
            input.started,
            input.ended,
        );
        add_load_samples(&mut samples, &load, observed, &input);
        load
    });
    let thresholds = judge(scenario, &samples);
    let overloaded = harness.as_ref().and_then(|h| h.overloaded.clone());
    let unexplained = unexplained_by_load(&thresholds, &calls);
    let status = match (
        &input.cut_short,
        &overloaded,
        thresholds.iter().all(|t| t.passed),
    ) {
        (Some((status, _)), _, _) => *status,
        (None, Some(_), _) if unexplained.is_empty() => Status::Invalid,
        (None, Some(_), _) => Status::Failed,
        (None, None, true) => Status::Passed,
        (None, None, false) => Status::Failed,
    };
    let reason = match (&input.cut_short, overloaded) {
        (Some((_, reason)), _) => Some(reason.clone()),
        (None, Some(why)) if unexplained.is_empty() => Some(format!("harness overloaded: {why}")),
        (None, Some(why)) => Some(format!(
            "failed on what load cannot cause ({}), though the harness was also overloaded: {why}",
            unexplained.join("; ")
        )),
        (None, None) => None,
    };
    let peers = (0..scenario.peers.len())
        .map(|index| PeerResult {
            index: index as u16,
            name: name(index),
            id: input
                .ids
                .get(index)
                .copied()
                .flatten()
                .map(|id| id.to_string()),
            network: input.links.get(index).map(|link| PeerNetwork {
                impairment_drops_in: link.impairment_drops.0,
                impairment_drops_out: link.impairment_drops.1,
                silenced: link.silenced,
                media_losses: link.losses.clone(),
            }),
            errors: input
                .events
                .iter()
                .filter(|e| usize::from(e.peer) == index)
                .filter_map(|e| match &e.kind {
                    PeerEventKind::Error { message, .. } => Some(message.clone()),
                    _ => None,
                })
                .collect(),
        })
        .collect();
    ScenarioResult {
        name: scenario.name.clone(),
        file: scenario.file.display().to_string(),
        description: scenario.description.clone(),
        seed: scenario.seed,
        server: input.server.clone(),
        status,
        reason,
        planned_ms: scenario.duration.as_secs_f64() * 1e3,
        ran_ms: ms(input.ended),
        media: MediaInfo::of(scenario),
        peers,
        calls,
        faults,
        harness,
        actions: input
            .actions
            .iter()
            .map(|(at, action)| {
                let (verb, from, to) = match action.verb {
                    Verb::Call { from, to, .. } => ("call", from, Some(to)),
                    Verb::Hangup { from, to } => ("hangup", from, Some(to)),
                    Verb::Leave { peer } => ("leave", peer, None),
                    Verb::Crash { peer } => ("crash", peer, None),
                    Verb::Vanish { peer } => ("vanish", peer, None),
                    Verb::Move { peer, .. } => ("move", peer, None),
                    Verb::Impair { peer, .. } => ("impair", peer, None),
                    Verb::Restore { peer } => ("restore", peer, None),
                    Verb::Media { peer, fault } => (fault.name(), peer, None),
                    Verb::DropSignaling { peer } => ("drop-signaling", peer, None),
                };
                ActionRecord {
                    at_ms: ms(*at),
                    planned_ms: action.at.as_secs_f64() * 1e3,
                    verb: verb.to_owned(),
                    from: name(from),
                    to: to.map(name),
                    origin: action.origin.clone(),
                }
            })
            .collect(),
        metrics: samples
            .into_iter()
            .map(|(metric, values)| summarize(metric, values))
            .collect(),
        thresholds,
        events: input
            .events
            .iter()
            .map(|e| {
                let peer = name(usize::from(e.peer));
                event_record(e, ms(e.at), peer, &|id| by_id.get(&id).map(|&i| name(i)))
            })
            .collect(),
    }
}

/// The failures an overloaded harness cannot explain: a failed threshold
/// on a load-independent metric, or a call that failed that way.
fn unexplained_by_load(thresholds: &[ThresholdResult], calls: &[CallResult]) -> Vec<String> {
    let metrics = thresholds
        .iter()
        .filter(|t| !t.passed)
        .filter(|t| {
            t.metric
                .parse::<Metric>()
                .is_ok_and(Metric::load_independent)
        })
        .map(|t| format!("{} {}", t.metric, t.expression));
    let calls = calls
        .iter()
        .filter(|c| c.failure_load_independent && !c.expect_failure)
        .filter_map(|c| c.failure.clone());
    metrics.chain(calls).collect()
}

/// Milliseconds from `origin`, negative before it.
pub(super) fn signed_ms(at: Instant, origin: Instant) -> f64 {
    match at.checked_duration_since(origin) {
        Some(after) => after.as_secs_f64() * 1e3,
        None => -(origin.duration_since(at).as_secs_f64() * 1e3),
    }
}

/// Each call the runner made, matched with its events. Calls between the
/// same pair never overlap (validation sees to that), so the n-th call
/// command between them owns the events up to the next one.
fn calls(input: &Collected<'_>) -> Vec<CallResult> {
    let scenario = input.scenario;
    let commanded: Vec<(Instant, usize, usize, bool)> = input
        .actions
        .iter()
        .filter_map(|(at, action)| match action.verb {
            Verb::Call {
                from,
                to,
                expect_failure,
            } => Some((*at, from, to, expect_failure)),
            _ => None,
        })
        .collect();
    let pair = |a: usize, b: usize| (a.min(b), a.max(b));
    commanded
        .iter()
        .enumerate()
        .map(|(k, &(at, from, to, expect_failure))| {
            let before = commanded[k + 1..]
                .iter()
                .find(|(_, f, t, _)| pair(*f, *t) == pair(from, to))
                .map(|(at, ..)| *at);
            let ids = (input.ids[from], input.ids[to]);
            let (caller, callee) = (scenario.peers[from].name.clone(), scenario.peers[to].name.clone());
            let (Some(from_id), Some(to_id)) = ids else {
                return CallResult {
                    caller,
                    callee,
                    started_at_ms: signed_ms(at, input.started),
                    ended_at_ms: None,
                    end: "a peer never started".to_owned(),
                    setup: SetupTimeline::default(),
                    verified: false,
                    expect_failure,
                    failed_after_ms: None,
                    failure: Some("a peer never started".to_owned()),
                    failure_load_independent: false,
                    tracks: Vec::new(),
                };
            };
            let (caller_index, callee_index) = (from as u16, to as u16);
            let setup = SetupTimeline::of_call_within(
                input.events,
                (caller_index, from_id),
                (callee_index, to_id),
                Some(at),
                before,
            )
            .unwrap_or_default();
            let started = input
                .events
                .iter()
                .find(|e| {
                    e.peer == caller_index
                        && e.at >= at
                        && matches!(e.kind, PeerEventKind::CallCommanded { remote } if remote == to_id)
                })
                .map_or(at, |e| e.at);
            let report = |peer: u16, remote: PeerId| {
                input.events.iter().find_map(|e| match &e.kind {
                    PeerEventKind::CallEnded(report)
                        if e.peer == peer
                            && report.remote == remote
                            && e.at >= started
                            && before.is_none_or(|b| e.at < b) =>
                    {
                        Some((e.at, report.as_ref()))
                    }
                    _ => None,
                })
            };
            let caller_report = report(caller_index, to_id);
            let callee_report = report(callee_index, from_id);
            let shared = scenario.media.shared;
            let clock = Clock {
                offset_ms: input.started.saturating_duration_since(input.epoch).as_secs_f64() * 1e3,
                end_ms: signed_ms(input.ended, input.started),
            };
            let reports = [caller_report, callee_report];
            let commanded = commanded_end(input, (from, to), started, before);
            let end = call_end(commanded, reports);
            let failure = failure(input, (from, to), commanded, reports);
            let failure_load_independent = reports.iter().flatten().any(|(_, r)| {
                matches!(&r.end, CallEnd::Failed(why) if why.load_independent())
            });
            let span_of = |receiver: usize, sender: usize| SpanContext {
                end_ms: signed_ms(end, input.epoch),
                windows: fault_windows(input, receiver, sender),
                frame_interval_ms: 1e3 / f64::from(sender_fps(scenario, sender).max(1)),
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
                caller,
                callee,
                started_at_ms: signed_ms(started, input.started),
                ended_at_ms: caller_report.map(|(at, _)| signed_ms(at, input.started)),
                end: caller_report.map_or_else(|| "no report".to_owned(), |(_, r)| end_text(&r.end)),
                setup,
                verified,
                expect_failure,
                failure,
                failure_load_independent,
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
struct Clock {
    offset_ms: f64,
    end_ms: f64,
}

/// Verified frames per second and mean latency, per second of the timeline.
fn series(video: Option<&VideoVerdict>, clock: Clock) -> Vec<SeriesPoint> {
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

fn end_text(end: &CallEnd) -> String {
    match end {
        CallEnd::HungUp => "hung up".to_owned(),
        CallEnd::RemoteHungUp => "remote hung up".to_owned(),
        CallEnd::PeerLeft => "peer left".to_owned(),
        CallEnd::Failed(why) => format!("failed: {why}"),
        CallEnd::Abandoned => "abandoned (our side crashed or vanished)".to_owned(),
    }
}

/// The frame rate a peer sends at: the scenario's, or a browser's own.
fn sender_fps(scenario: &Scenario, sender: usize) -> u32 {
    match scenario.peers[sender].kind {
        crate::scenario::PeerKind::Browser => scenario.peers[sender].video.fps,
        _ => scenario.media.video.fps,
    }
}

/// When the scenario ends a call: the first of its hangup, a declared
/// departure of either peer, or the end of the run.
fn commanded_end(
    input: &Collected<'_>,
    (a, b): (usize, usize),
    started: Instant,
    before: Option<Instant>,
) -> Instant {
    let within = |at: Instant| at >= started && before.is_none_or(|b| at < b);
    input
        .actions
        .iter()
        .filter_map(|(at, action)| {
            let ends = match action.verb {
                Verb::Hangup { from, to } => (from, to) == (a, b) || (from, to) == (b, a),
                Verb::Leave { peer } | Verb::Crash { peer } | Verb::Vanish { peer } => {
                    peer == a || peer == b
                }
                _ => false,
            };
            (ends && within(*at)).then_some(*at)
        })
        .chain([input.ended])
        .min()
        .expect("the run's end is always there")
}

/// When a call's span ends: when the scenario ended it, or either side
/// did, whichever came first.
fn call_end(commanded: Instant, reports: [Option<(Instant, &CallReport)>; 2]) -> Instant {
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
/// end of the run); or a side that never reported on it.
fn failure(
    input: &Collected<'_>,
    (a, b): (usize, usize),
    commanded: Instant,
    reports: [Option<(Instant, &CallReport)>; 2],
) -> Option<String> {
    let name = |i: usize| input.scenario.peers[i].name.as_str();
    for (side, report) in [a, b].into_iter().zip(reports) {
        match report {
            // After the scenario ended the call (a departure, say), how it
            // ended is the fault's to measure.
            Some((at, report)) if at < commanded => {
                if let CallEnd::Failed(why) = &report.end {
                    return Some(format!("{}: {why}", name(side)));
                }
            }
            Some(_) => {}
            None => {
                return Some(format!(
                    "{} never reported on the call (its task did not end it within the teardown bound)",
                    name(side)
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
            format!(
                "{} ended the call ({}) at {:.0} ms, before the scenario said to",
                name(side),
                end_text(&report.end),
                signed_ms(at, input.started)
            )
        })
}

/// The declared faults on one direction's path: an impairment that can
/// lose media, of the receiver's inbound or the sender's outbound traffic
/// (to its restore, or open-ended), and a move of either (until media
/// comes back). Delay, jitter, reordering and duplication excuse nothing.
fn fault_windows(input: &Collected<'_>, receiver: usize, sender: usize) -> Vec<FaultWindow> {
    let on_peer_clock = |at: Instant| signed_ms(at, input.epoch);
    let mut windows = Vec::new();
    for (k, (at, action)) in input.actions.iter().enumerate() {
        match action.verb {
            Verb::Impair {
                peer,
                direction,
                ref impairment,
            } if impairment.loses_media()
                && ((peer == receiver && direction.includes_in())
                    || (peer == sender && direction.includes_out())) =>
            {
                let restored = input.actions[k + 1..].iter().find_map(|(when, a)| {
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
struct SpanContext {
    /// The call's end, on the peers' clock.
    end_ms: f64,
    windows: Vec<FaultWindow>,
    frame_interval_ms: f64,
}

/// One direction: what `receiver` reported of `sender`'s media, judged
/// over the call's span.
fn track(
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
    let video_start = sent
        .and_then(|r| r.video_sent)
        .map(|s| s.first_ms)
        .or_else(|| frames.iter().map(|f| f.arrival_ms).reduce(f64::min));
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
                let (expected, lost) = span::frames_lost(frames, frames_sent, sent_span, end_ms);
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
    let audio_span = sent
        .and_then(|r| r.audio_sent)
        .map(|s| Span {
            start_ms: s.first_ms,
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
        frames_sent,
        frames_lost,
        video,
        audio,
        video_span,
        audio_span,
        tone_match,
        series: Vec::new(),
    }
}

/// The mean time between frames seen, if two were.
fn mean_interval(frames: &[FrameTime]) -> Option<f64> {
    let first = frames.iter().map(|f| f.arrival_ms).reduce(f64::min)?;
    let last = frames.iter().map(|f| f.arrival_ms).reduce(f64::max)?;
    (frames.len() >= 2 && last > first).then(|| (last - first) / (frames.len() - 1) as f64)
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
    add(
        Metric::NetworkChangeIceReconnected,
        fault.ice_reconnected_ms,
    );
    for track in &fault.tracks {
        let lost = Some(track.frames_lost as f64);
        match fault.verb.as_str() {
            "move" => {
                add(Metric::NetworkChangeRecovered, track.recovered_ms);
                add(Metric::NetworkChangeFramesLost, lost);
            }
            _ => {
                add(Metric::ImpairmentFramesLost, lost);
                add(Metric::ImpairmentFreezeMs, Some(track.freeze_ms));
                if fault.until_ms.is_some() {
                    add(Metric::ImpairmentRecovered, track.recovered_ms);
                }
            }
        }
    }
}

fn add_call_samples(samples: &mut BTreeMap<Metric, Vec<f64>>, call: &CallResult, shared: bool) {
    let mut add = |metric: Metric, value: f64| samples.entry(metric).or_default().push(value);
    let setup = &call.setup;
    let phases = [
        (Metric::SetupSignaling, setup.signaling_ms),
        (Metric::SetupAnswer, setup.answer_ms),
        (Metric::SetupIceConnected, setup.ice_connected_ms),
        (Metric::SetupDtlsConnected, setup.dtls_connected_ms),
        (Metric::SetupFirstRtp, setup.first_rtp_ms),
        (Metric::SetupFirstFrame, setup.first_frame_ms),
        (Metric::SetupFirstAudio, setup.first_audio_ms),
    ];
    for (metric, value) in phases {
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
        }
        add(
            Metric::AudioToneMatch,
            if track.tone_match { 1.0 } else { 0.0 },
        );
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

fn add_load_samples(
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

fn summarize(metric: Metric, values: Vec<f64>) -> MetricSummary {
    let stat = |s| statistic(s, &values);
    MetricSummary {
        name: metric.name().to_owned(),
        per: metric.per(),
        count: values.len(),
        min: stat(Stat::Min),
        avg: stat(Stat::Avg),
        p50: stat(Stat::Percentile(50.0)),
        p90: stat(Stat::Percentile(90.0)),
        p95: stat(Stat::Percentile(95.0)),
        p99: stat(Stat::Percentile(99.0)),
        max: stat(Stat::Max),
        samples: if matches!(metric.per(), Per::Frame | Per::Probe) {
            Vec::new()
        } else {
            values
        },
    }
}

fn judge(scenario: &Scenario, samples: &BTreeMap<Metric, Vec<f64>>) -> Vec<ThresholdResult> {
    let mut results = Vec::new();
    for thresholds in &scenario.thresholds {
        let values = samples
            .get(&thresholds.metric)
            .map_or(&[][..], Vec::as_slice);
        for (text, threshold) in &thresholds.expressions {
            let evaluation = threshold.evaluate(values);
            results.push(ThresholdResult {
                metric: thresholds.metric.name().to_owned(),
                expression: text.clone(),
                passed: evaluation.passed,
                measured: evaluation.measured,
                default: thresholds.default,
            });
        }
    }
    results
}

fn event_record(
    event: &PeerEvent,
    at_ms: f64,
    peer: String,
    name_of: &dyn Fn(PeerId) -> Option<String>,
) -> EventRecord {
    use PeerEventKind as K;
    let (kind, remote, detail): (&str, Option<PeerId>, Option<String>) = match &event.kind {
        K::Started { id } => ("started", None, Some(id.to_string())),
        K::CallCommanded { remote } => ("call_commanded", Some(*remote), None),
        K::OfferSent { remote } => ("offer_sent", Some(*remote), None),
        K::OfferReceived { remote } => ("offer_received", Some(*remote), None),
        K::AnswerSent { remote } => ("answer_sent", Some(*remote), None),
        K::AnswerReceived { remote } => ("answer_received", Some(*remote), None),
        K::IceConnected { remote } => ("ice_connected", Some(*remote), None),
        K::IceDisconnected { remote } => ("ice_disconnected", Some(*remote), None),
        K::IceFailed { remote } => ("ice_failed", Some(*remote), None),
        K::Connected { remote } => ("connected", Some(*remote), None),
        K::FirstRtp { remote, kind } => ("first_rtp", Some(*remote), Some(format!("{kind:?}"))),
        K::FirstFrame { remote, stamp } => (
            "first_frame",
            Some(*remote),
            Some(match stamp {
                Some(stamp) => format!("frame {}", stamp.frame),
                None => "live (no stamp)".to_owned(),
            }),
        ),
        K::FirstAudio { remote } => ("first_audio", Some(*remote), None),
        K::CallEnded(report) => (
            "call_ended",
            Some(report.remote),
            Some(end_text(&report.end)),
        ),
        K::Error { remote, message } => ("error", *remote, Some(message.clone())),
        K::PeerLeft { remote } => ("peer_left", Some(*remote), None),
        K::Crashed => ("crashed", None, None),
        K::Vanished => ("vanished", None, None),
        K::Moved { to } => ("moved", None, Some(to.to_string())),
        K::IceRestartSent { remote } => ("ice_restart_sent", Some(*remote), None),
        K::Closed => ("closed", None, None),
    };
    EventRecord {
        at_ms,
        peer,
        event: kind.to_owned(),
        remote: remote.map(|id| name_of(id).unwrap_or_else(|| id.to_string())),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(metric: &str) -> ThresholdResult {
        ThresholdResult {
            metric: metric.to_owned(),
            expression: "max == 0".to_owned(),
            passed: false,
            measured: Some(3.0),
            default: true,
        }
    }

    /// Load explains late or lost media; it never explains a frame from
    /// the wrong sender or a damaged stamp.
    #[test]
    fn only_failures_load_cannot_cause_survive_an_overload() {
        let explained = [failed("video.coverage"), failed("call.failed")];
        assert!(unexplained_by_load(&explained, &[]).is_empty());
        let crossed = [
            failed("video.coverage"),
            failed("video.frames_wrong_sender"),
        ];
        assert_eq!(
            unexplained_by_load(&crossed, &[]),
            ["video.frames_wrong_sender max == 0"]
        );
        let passed = ThresholdResult {
            passed: true,
            ..failed("video.frames_corrupt")
        };
        assert!(unexplained_by_load(&[passed], &[]).is_empty());
    }

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

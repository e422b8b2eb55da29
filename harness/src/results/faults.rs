//! What each fault did, seen from the peers it touched: when partners of a
//! departed peer learned of it (and by which signal), and what a move or
//! an impairment cost each track it crossed (frames lost, freezes, time to
//! verified video again).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use callprobe_server::protocol::PeerId;
use serde::{Deserialize, Serialize};

use super::collect::signed_ms;
use super::{CallKind, CallResult, TrackResult};
use crate::clock::RunTime;
use crate::net::{FlowLosses, Link};
use crate::peer::{CallEnd, PeerEvent, PeerEventKind};
use crate::scenario::{FaultClass, Verb};
use crate::verify::video::FrameTime;

/// What a peer's network link saw by the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LinkSnapshot {
    pub media_paths: Vec<PathSeen>,
    /// Datagrams the impairments dropped, (inbound, outbound).
    pub impairment_drops: (u64, u64),
    /// Datagrams dropped because the peer was silent or its address gone.
    pub silenced: u64,
    /// Datagrams dropped because the peer's receive queue was full.
    #[serde(default)]
    pub receive_overflows: u64,
    /// Per direction ("in", "out") and payload type.
    #[serde(deserialize_with = "payload_types_from_text")]
    pub losses: BTreeMap<String, BTreeMap<u8, FlowLosses>>,
}

/// Reads the payload-type keys JSON writes as text ("102") back as numbers
/// (a record's lines reach this through serde's buffering, where a key is
/// only ever a string).
fn payload_types_from_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, BTreeMap<u8, FlowLosses>>, D::Error> {
    let text: BTreeMap<String, BTreeMap<String, FlowLosses>> = Deserialize::deserialize(d)?;
    text.into_iter()
        .map(|(direction, flows)| {
            let flows = flows
                .into_iter()
                .map(|(pt, losses)| {
                    pt.parse::<u8>()
                        .map(|pt| (pt, losses))
                        .map_err(|_| serde::de::Error::custom(format!("payload type {pt:?}")))
                })
                .collect::<Result<_, _>>()?;
            Ok((direction, flows))
        })
        .collect()
}

/// Addresses media arrived on, from a time on the run's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PathSeen {
    pub since: RunTime,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl LinkSnapshot {
    /// The link's counters now; times on the clock that started at `epoch`.
    pub(crate) fn of(link: &Link, epoch: Instant) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        LinkSnapshot {
            media_paths: link
                .media_paths()
                .into_iter()
                .map(|p| PathSeen {
                    since: RunTime::of(p.since, epoch),
                    local: p.local,
                    remote: p.remote,
                })
                .collect(),
            impairment_drops: link.impairment_drops(),
            silenced: link.counters.silenced.load(Relaxed),
            receive_overflows: link.counters.receive_overflows.load(Relaxed),
            losses: link
                .losses()
                .into_iter()
                .map(|(direction, flows)| (direction.to_owned(), flows))
                .collect(),
        }
    }
}

/// One fault of the timeline and its effects.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct FaultResult {
    pub verb: String,
    /// Which of its effects are measured (the verb says).
    #[serde(skip)]
    pub class: FaultClass,
    pub peer: String,
    pub at_ms: f64,
    /// An impairment's end (its `restore`); `None`: it lasted to the end.
    pub until_ms: Option<f64>,
    /// Crash, vanish, leave: how each partner in a call learned of it.
    pub departures: Vec<DepartureSeen>,
    /// Move, impair: what each track of the peer's calls lost.
    pub tracks: Vec<TrackImpact>,
    /// Move: the fault to ICE connected again on every call of the peer
    /// (the restart itself; video follows at the next frame).
    pub ice_reconnected_ms: Option<f64>,
    /// Move: where the peer's media arrived before and after.
    pub path_before: Option<PathRecord>,
    pub path_after: Option<PathRecord>,
    /// A server's crash: what each side of each call through it saw.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outage: Vec<super::outage::OutageSeen>,
}

/// Milliseconds from the fault to each signal at one partner; `None` when
/// that signal never came.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct DepartureSeen {
    pub partner: String,
    /// The departed peer's `hangup`.
    pub hangup_ms: Option<f64>,
    /// The server's `peerLeft`.
    pub peer_left_ms: Option<f64>,
    pub ice_disconnected_ms: Option<f64>,
    pub ice_failed_ms: Option<f64>,
    /// The last verified frame from the departed peer (negative: before the
    /// fault).
    pub last_frame_ms: Option<f64>,
}

impl DepartureSeen {
    /// The first signal that said the peer was gone.
    pub(crate) fn detected_ms(&self) -> Option<f64> {
        [self.hangup_ms, self.peer_left_ms, self.ice_disconnected_ms]
            .into_iter()
            .flatten()
            .reduce(f64::min)
    }
}

/// What a fault cost one direction of a call.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct TrackImpact {
    pub sender: String,
    pub receiver: String,
    /// Frames between the last verified one before the fault and the first
    /// after its end that never verified.
    pub frames_lost: u64,
    pub freezes: u64,
    pub freeze_ms: f64,
    /// The fault's end (the move, the restore) to the first verified frame
    /// after it; `None`: video never came back.
    pub recovered_ms: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct PathRecord {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// When media was first seen on it.
    pub since_ms: f64,
}

/// Everything `faults` needs, on the run's clocks.
pub(super) struct FaultInput<'a> {
    pub names: &'a [String],
    pub ids: &'a [Option<PeerId>],
    pub actions: &'a [(
        RunTime,
        crate::scenario::Action,
        Option<crate::peer::CallId>,
    )],
    pub events: &'a [PeerEvent],
    pub links: &'a [LinkSnapshot],
    pub calls: &'a [CallResult],
    /// The report's clock origin.
    pub started: RunTime,
    pub ended: RunTime,
}

pub(super) fn faults(input: &FaultInput<'_>) -> Vec<FaultResult> {
    let ms = |at: RunTime| signed_ms(at, input.started);
    let mut results = Vec::new();
    for (k, (at, action, _)) in input.actions.iter().enumerate() {
        let Some(class) = action.verb.fault_class() else {
            continue;
        };
        let mut result = FaultResult {
            verb: action.verb.name().to_owned(),
            class,
            peer: action.verb.actor_name(input.names),
            at_ms: ms(*at),
            until_ms: None,
            departures: Vec::new(),
            tracks: Vec::new(),
            ice_reconnected_ms: None,
            path_before: None,
            path_after: None,
            outage: Vec::new(),
        };
        let Some(peer) = action.verb.actor() else {
            // A server's crash: every call through it.
            if let Verb::CrashServer { server } = action.verb {
                result.outage = super::outage::server_crash(input, server, *at);
            }
            results.push(result);
            continue;
        };
        match class {
            FaultClass::Departure => {
                result.departures = departures(input, peer, *at);
            }
            // A server crash has no actor: measured above.
            FaultClass::ServerCrash => {}
            FaultClass::NetworkChange => {
                result.tracks = impacts(input, peer, *at, *at, |_| true);
                let paths = &input.links[peer].media_paths;
                let path = |p: &PathSeen| PathRecord {
                    local: p.local,
                    remote: p.remote,
                    since_ms: ms(p.since),
                };
                result.path_before = paths.iter().rev().find(|p| p.since < *at).map(path);
                result.path_after = paths.iter().find(|p| p.since >= *at).map(path);
                result.ice_reconnected_ms = ice_reconnected(input, peer, *at);
            }
            FaultClass::Impairment(direction) => {
                let restored = input.actions[k + 1..].iter().find_map(|(when, a, _)| {
                    matches!(a.verb, Verb::Restore { peer: p } if p == peer).then_some(*when)
                });
                result.until_ms = restored.map(ms);
                let end = restored.unwrap_or(input.ended);
                let name = &input.names[peer];
                result.tracks = impacts(input, peer, *at, end, |track| {
                    (direction.includes_in() && &track.receiver == name)
                        || (direction.includes_out() && &track.sender == name)
                });
            }
        }
        results.push(result);
    }
    results
}

/// How each partner of `departed` in a call at `at` learned of it.
fn departures(input: &FaultInput<'_>, departed: usize, at: RunTime) -> Vec<DepartureSeen> {
    let Some(departed_id) = input.ids[departed] else {
        return Vec::new();
    };
    let departed_name = &input.names[departed];
    let at_ms = signed_ms(at, input.started);
    let since = |event: &PeerEvent| signed_ms(event.at, at);
    let mut seen = Vec::new();
    for call in input.calls.iter().filter(|c| c.started_at_ms <= at_ms) {
        // A room's publish has the server on its other side; a publisher
        // does not watch its subscribers (the server does).
        if call.kind == CallKind::Publish
            || (call.kind == CallKind::Subscription && &call.caller == departed_name)
        {
            continue;
        }
        let partner_name = if &call.caller == departed_name {
            &call.callee
        } else if &call.callee == departed_name {
            &call.caller
        } else {
            continue;
        };
        if call.ended_at_ms.is_some_and(|end| end < at_ms) && &call.caller != departed_name {
            continue; // over before the fault
        }
        let Some(partner) = input.names.iter().position(|n| n == partner_name) else {
            continue;
        };
        let mut record = DepartureSeen {
            partner: partner_name.clone(),
            ..DepartureSeen::default()
        };
        // The partner's events about this call (a departure's signals come
        // after it; a redial is another call).
        for event in input
            .events
            .iter()
            .filter(|e| usize::from(e.peer) == partner && e.call == call.call && e.at >= at)
        {
            let slot = match &event.kind {
                PeerEventKind::PeerLeft { remote } if *remote == departed_id => {
                    &mut record.peer_left_ms
                }
                PeerEventKind::IceDisconnected { remote } if *remote == departed_id => {
                    &mut record.ice_disconnected_ms
                }
                PeerEventKind::IceFailed { remote } if *remote == departed_id => {
                    &mut record.ice_failed_ms
                }
                PeerEventKind::CallEnded(report)
                    if report.remote == departed_id && report.end == CallEnd::RemoteHungUp =>
                {
                    &mut record.hangup_ms
                }
                _ => continue,
            };
            slot.get_or_insert(since(event));
        }
        record.last_frame_ms = call
            .tracks
            .iter()
            .find(|t| &t.sender == departed_name)
            .and_then(|t| t.video.as_ref())
            .and_then(|v| v.frames.iter().map(|f| f.arrival_ms).reduce(f64::max))
            .map(|arrival| arrival - signed_ms(at, RunTime::ZERO));
        if !seen
            .iter()
            .any(|s: &DepartureSeen| s.partner == record.partner)
        {
            seen.push(record);
        }
    }
    seen
}

/// The move at `at` to ICE connected again on the last of `peer`'s calls
/// that were up; `None` if one never reconnected.
fn ice_reconnected(input: &FaultInput<'_>, peer: usize, at: RunTime) -> Option<f64> {
    let at_ms = signed_ms(at, input.started);
    let name = &input.names[peer];
    let partners: Vec<PeerId> = input
        .calls
        .iter()
        .filter(|c| c.started_at_ms <= at_ms && c.ended_at_ms.is_none_or(|e| e >= at_ms))
        .filter_map(|c| {
            let partner = if &c.caller == name {
                &c.callee
            } else if &c.callee == name {
                &c.caller
            } else {
                return None;
            };
            let index = input.names.iter().position(|n| n == partner)?;
            input.ids[index]
        })
        .collect();
    partners
        .iter()
        .map(|partner| {
            input
                .events
                .iter()
                .find(|e| {
                    usize::from(e.peer) == peer
                        && e.at >= at
                        && matches!(e.kind, PeerEventKind::IceConnected { remote } if remote == *partner)
                })
                .map(|e| signed_ms(e.at, at))
        })
        .collect::<Option<Vec<f64>>>()?
        .into_iter()
        .reduce(f64::max)
}

/// What the window from `start` to `end` cost each track of `peer`'s calls
/// that `touched` picks.
fn impacts(
    input: &FaultInput<'_>,
    peer: usize,
    start: RunTime,
    end: RunTime,
    touched: impl Fn(&TrackResult) -> bool,
) -> Vec<TrackImpact> {
    let name = &input.names[peer];
    let start_ms = signed_ms(start, input.started);
    let on_peer_clock = |at: RunTime| signed_ms(at, RunTime::ZERO);
    input
        .calls
        .iter()
        .filter(|c| &c.caller == name || &c.callee == name)
        .filter(|c| c.started_at_ms <= start_ms && c.ended_at_ms.is_none_or(|e| e >= start_ms))
        .flat_map(|c| c.tracks.iter())
        .filter(|t| touched(t))
        .map(|track| {
            let frames = track.video.as_ref().map_or(&[][..], |v| &v.frames[..]);
            let tail = track.video_span.as_ref().map(|span| SpanTail {
                end_ms: span.end_ms,
                frames_due: span.frames_expected,
            });
            let mut impact = impact(frames, on_peer_clock(start), on_peer_clock(end), tail);
            impact.sender = track.sender.clone();
            impact.receiver = track.receiver.clone();
            impact
        })
        .collect()
}

/// Where a track's span ended (peer clock) and how many frames were due by
/// then: a window that lasts to the end counts up to there, not just up
/// to the last frame that arrived.
#[derive(Clone, Copy, Debug)]
pub(super) struct SpanTail {
    pub end_ms: f64,
    pub frames_due: Option<u64>,
}

/// Loss and freezes between the last frame before `start_ms` and the first
/// at or after `end_ms` (peer clock), and how long after `end_ms` that
/// first frame came. With no frame after it, up to the span's `tail`.
pub(super) fn impact(
    frames: &[FrameTime],
    start_ms: f64,
    end_ms: f64,
    tail: Option<SpanTail>,
) -> TrackImpact {
    let mut by_arrival: Vec<&FrameTime> = frames.iter().collect();
    by_arrival.sort_by(|a, b| a.arrival_ms.total_cmp(&b.arrival_ms));
    let before = by_arrival.iter().rposition(|f| f.arrival_ms < start_ms);
    let after = by_arrival.iter().position(|f| f.arrival_ms >= end_ms);
    let mut impact = TrackImpact::default();
    let (Some(first), Some(last)) = (by_arrival.first(), by_arrival.last()) else {
        return impact;
    };
    let intervals = (by_arrival.len() - 1).max(1) as f64;
    let mean_interval = (last.arrival_ms - first.arrival_ms) / intervals;
    let freeze_threshold = (3.0 * mean_interval).max(150.0);
    let from = before.unwrap_or(0);
    let to = after.unwrap_or(by_arrival.len() - 1);
    let mut arrivals: Vec<f64> = by_arrival[from..=to.max(from)]
        .iter()
        .map(|f| f.arrival_ms)
        .collect();
    if let (None, Some(tail)) = (after, tail) {
        arrivals.push(tail.end_ms.max(last.arrival_ms));
    }
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        if gap > freeze_threshold {
            impact.freezes += 1;
            impact.freeze_ms += gap;
        }
    }
    // Up to the first frame after the window, or (video never came back,
    // or the window lasted to the end) up to the last frame seen.
    if let Some(before) = before {
        let low = by_arrival[before].number;
        let due_last = tail
            .and_then(|t| t.frames_due)
            .and_then(|due| u32::try_from(due).ok()?.checked_sub(1));
        let (high, inclusive) = match (after, due_last) {
            (Some(after), _) => (by_arrival[after].number, false),
            (None, Some(due_last)) => (due_last.max(last.number), true),
            (None, None) => (last.number, true),
        };
        let verified = by_arrival
            .iter()
            .filter(|f| f.number > low && (f.number < high || (inclusive && f.number == high)))
            .count() as u64;
        let span = u64::from(high.saturating_sub(low)) - u64::from(!inclusive && high > low);
        impact.frames_lost = span.saturating_sub(verified);
    }
    impact.recovered_ms = after.map(|a| by_arrival[a].arrival_ms - end_ms);
    impact
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(numbers: impl IntoIterator<Item = (u32, f64)>) -> Vec<FrameTime> {
        numbers
            .into_iter()
            .map(|(number, arrival_ms)| FrameTime {
                number,
                arrival_ms,
                latency_ms: 1.0,
            })
            .collect()
    }

    #[test]
    fn a_window_counts_the_frames_missing_across_it_and_the_time_to_recover() {
        // 30 fps; frames 10..=14 never arrive, frame 15 comes 20 ms after the end.
        let mut track: Vec<(u32, f64)> = (0..10).map(|n| (n, f64::from(n) * 33.3)).collect();
        track.extend((15..30).map(|n| (n, f64::from(n) * 33.3 + 20.0)));
        let impact = impact(&frames(track), 320.0, 480.0, None);
        assert_eq!(impact.frames_lost, 5);
        assert_eq!(impact.freezes, 1, "{impact:?}");
        let recovered = impact.recovered_ms.unwrap();
        assert!(
            (recovered - (15.0 * 33.3 + 20.0 - 480.0)).abs() < 1e-9,
            "{recovered}"
        );
    }

    #[test]
    fn a_window_to_the_end_counts_the_frames_missing_up_to_the_last_one_seen() {
        let track: Vec<(u32, f64)> = (0..30)
            .filter(|n| n % 5 != 0 || *n < 10)
            .map(|n| (n, f64::from(n) * 33.3))
            .collect();
        let impact = impact(&frames(track), 300.0, 10_000.0, None);
        assert_eq!(impact.frames_lost, 4, "frames 10, 15, 20 and 25");
        assert_eq!(impact.recovered_ms, None);
    }

    /// The window to the end counts up to the span's end, not only to the
    /// last frame that arrived: video that stopped inside it is lost.
    #[test]
    fn a_window_to_the_end_counts_up_to_the_spans_end() {
        let track: Vec<(u32, f64)> = (0..30).map(|n| (n, f64::from(n) * 33.3)).collect();
        let tail = SpanTail {
            end_ms: 4000.0,
            frames_due: Some(120),
        };
        let impact = impact(&frames(track), 1000.0, 10_000.0, Some(tail));
        assert_eq!(impact.frames_lost, 90, "frames 30..=119");
        assert_eq!(impact.freezes, 1);
        assert!(impact.freeze_ms > 3000.0, "{impact:?}");
    }

    #[test]
    fn video_that_never_comes_back_has_no_recovery() {
        let track: Vec<(u32, f64)> = (0..10).map(|n| (n, f64::from(n) * 33.3)).collect();
        // The last frame arrives at 300 ms; the window opens at 400 ms.
        let impact = impact(&frames(track), 400.0, 450.0, None);
        assert_eq!(impact.recovered_ms, None);
        assert_eq!(
            impact.frames_lost, 0,
            "frames not sent yet are not lost (the tail is the call's count)"
        );
    }
}

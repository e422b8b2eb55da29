//! A room's calls: each publish (a call with the media server's room) and
//! each subscription (one publisher's stream to one subscriber through
//! the server), matched with their events and judged as calls are. A
//! subscription's one track is judged from its own first frame and tone:
//! the publisher was sending before anyone subscribed, and how long the
//! first frame took is `sfu.first_frame_ms`'s to judge.

use callprobe_server::protocol::PeerId;

use super::calls::{
    Clock, Joined, SpanContext, commanded_end, end_text, fault_windows, sender_fps, series, track,
};
use super::collect::{Collected, signed_ms};
use super::{CallKind, CallResult, SelectedPairs};
use crate::clock::RunTime;
use crate::peer::{CallEnd, CallId, CallReport, PeerEvent, PeerEventKind};
use crate::scenario::Verb;
use crate::signaling::room_remote;
use crate::timeline::SetupTimeline;

/// Each publish and subscription the runner made, with its events.
pub(super) fn room_calls(input: &Collected<'_>) -> Vec<CallResult> {
    let clock = Clock {
        offset_ms: signed_ms(input.started, RunTime::ZERO),
        end_ms: signed_ms(input.ended, input.started),
    };
    input
        .actions
        .iter()
        .filter_map(|(at, action, call)| match action.verb {
            Verb::Publish { peer } => Some(publish(input, *at, peer, *call)),
            Verb::Subscribe { peer, to } => {
                Some(subscription(input, *at, (peer, to), *call, clock))
            }
            _ => None,
        })
        .collect()
}

/// The events filed under `call`.
fn of_call<'a>(input: &'a Collected<'_>, call: Option<CallId>) -> Vec<&'a PeerEvent> {
    input
        .events
        .iter()
        .filter(|e| call.is_some() && e.call == call)
        .collect()
}

/// `peer`'s report on its call with `remote`, among `events`.
fn report<'a>(
    events: &[&'a PeerEvent],
    peer: usize,
    remote: PeerId,
) -> Option<(RunTime, &'a CallReport)> {
    events.iter().find_map(|e| match &e.kind {
        PeerEventKind::CallEnded(report)
            if usize::from(e.peer) == peer && report.remote == remote =>
        {
            Some((e.at, report.as_ref()))
        }
        _ => None,
    })
}

/// The one side's failure, if its call failed or ended before the
/// scenario ended it, or it never reported.
fn failure(
    name: &str,
    report: Option<(RunTime, &CallReport)>,
    commanded: RunTime,
    started: RunTime,
) -> Option<(String, bool)> {
    match report {
        None => Some((
            format!(
                "{name} never reported on the call (its task did not end it within the teardown bound)"
            ),
            false,
        )),
        Some((at, report)) if at < commanded => Some(match &report.end {
            CallEnd::Failed(why) => (format!("{name}: {why}"), why.load_independent()),
            end => (
                format!(
                    "{name} ended the call ({}) at {:.0} ms, before the scenario said to",
                    end_text(end),
                    signed_ms(at, started)
                ),
                false,
            ),
        }),
        Some(_) => None,
    }
}

/// A result for a call whose peer never started.
fn not_started(
    call: Option<CallId>,
    kind: CallKind,
    caller: String,
    callee: String,
    started_at_ms: f64,
) -> CallResult {
    CallResult {
        call,
        kind,
        caller,
        callee,
        started_at_ms,
        ended_at_ms: None,
        end: "a peer never started".to_owned(),
        setup: SetupTimeline::default(),
        pairs: SelectedPairs::default(),
        verified: false,
        expect_failure: false,
        failed_after_ms: None,
        failure: Some("a peer never started".to_owned()),
        failure_load_independent: false,
        tracks: Vec::new(),
    }
}

/// When the peer's part of `call` started (its command), or the action's.
fn commanded_at(events: &[&PeerEvent], peer: usize, at: RunTime) -> RunTime {
    events
        .iter()
        .find(|e| {
            usize::from(e.peer) == peer && matches!(e.kind, PeerEventKind::CallCommanded { .. })
        })
        .map_or(at, |e| e.at)
}

fn publish(input: &Collected<'_>, at: RunTime, peer: usize, call: Option<CallId>) -> CallResult {
    let name = input.scenario.peers[peer].name.clone();
    let room = "room".to_owned();
    if input.ids[peer].is_none() {
        return not_started(
            call,
            CallKind::Publish,
            name,
            room,
            signed_ms(at, input.started),
        );
    }
    let events = of_call(input, call);
    let started = commanded_at(&events, peer, at);
    let setup = SetupTimeline::of_call(&events, peer as u16, peer as u16).unwrap_or_default();
    let sent = report(&events, peer, room_remote());
    let commanded = commanded_end(input, (peer, peer), call, started, false);
    let (failure, load_independent) = failure(&name, sent, commanded, input.started).unzip();
    CallResult {
        call,
        kind: CallKind::Publish,
        caller: name,
        callee: room,
        started_at_ms: signed_ms(started, input.started),
        ended_at_ms: sent.map(|(at, _)| signed_ms(at, input.started)),
        end: sent.map_or_else(|| "no report".to_owned(), |(_, r)| end_text(&r.end)),
        pairs: SelectedPairs {
            caller: last_pair(&events, peer),
            callee: None,
        },
        // Its media is its subscribers' to verify: here, that it is up.
        verified: setup.dtls_connected_ms.is_some(),
        setup,
        expect_failure: false,
        failed_after_ms: failed_after(sent, started),
        failure,
        failure_load_independent: load_independent.unwrap_or(false),
        tracks: Vec::new(),
    }
}

fn subscription(
    input: &Collected<'_>,
    at: RunTime,
    (peer, publisher): (usize, usize),
    call: Option<CallId>,
    clock: Clock,
) -> CallResult {
    let scenario = input.scenario;
    let (name, publisher_name) = (
        scenario.peers[peer].name.clone(),
        scenario.peers[publisher].name.clone(),
    );
    let (Some(_), Some(publisher_id)) = (input.ids[peer], input.ids[publisher]) else {
        return not_started(
            call,
            CallKind::Subscription,
            name,
            publisher_name,
            signed_ms(at, input.started),
        );
    };
    let events = of_call(input, call);
    let started = commanded_at(&events, peer, at);
    let setup = SetupTimeline::of_subscription(&events, peer as u16).unwrap_or_default();
    let received = report(&events, peer, publisher_id);
    // What the publisher sent: its report on its call with the room.
    let all: Vec<&PeerEvent> = input.events.iter().collect();
    let sent = report(&all, publisher, room_remote());
    let commanded = commanded_end(input, (peer, publisher), call, started, false);
    let end = received.map_or(commanded, |(at, _)| at.min(commanded));
    let (failure, load_independent) = failure(&name, received, commanded, input.started).unzip();
    let first_audio = events.iter().find_map(|e| {
        (usize::from(e.peer) == peer && matches!(e.kind, PeerEventKind::FirstAudio { .. }))
            .then(|| signed_ms(e.at, RunTime::ZERO))
    });
    let first_frame = received.and_then(|(_, r)| r.video.as_ref()).and_then(|v| {
        v.frames
            .iter()
            .map(|f| {
                f.arrival_ms
                    - if f.latency_ms.is_finite() {
                        f.latency_ms
                    } else {
                        0.0
                    }
            })
            .reduce(f64::min)
    });
    let context = SpanContext {
        end_ms: signed_ms(end, RunTime::ZERO),
        windows: fault_windows(input, peer, publisher),
        frame_interval_ms: 1e3 / f64::from(sender_fps(scenario, publisher).max(1)),
        data: None,
        joined: Some(Joined {
            video_ms: first_frame,
            audio_ms: first_audio,
        }),
    };
    let mut stream = track(
        &name,
        &publisher_name,
        received.map(|r| r.1),
        sent.map(|r| r.1),
        scenario.media.shared,
        &context,
    );
    stream.series = series(stream.video.as_ref(), clock);
    let verified = stream.video.as_ref().is_some_and(|v| v.verified > 0) && stream.tone_match;
    CallResult {
        call,
        kind: CallKind::Subscription,
        caller: name,
        callee: publisher_name,
        started_at_ms: signed_ms(started, input.started),
        ended_at_ms: received.map(|(at, _)| signed_ms(at, input.started)),
        end: received.map_or_else(|| "no report".to_owned(), |(_, r)| end_text(&r.end)),
        setup,
        pairs: SelectedPairs {
            caller: last_pair(&events, peer),
            callee: None,
        },
        verified,
        expect_failure: false,
        failed_after_ms: failed_after(received, started),
        failure,
        failure_load_independent: load_independent.unwrap_or(false),
        tracks: vec![stream],
    }
}

fn last_pair(events: &[&PeerEvent], peer: usize) -> Option<crate::peer::CandidatePair> {
    events.iter().rev().find_map(|e| match &e.kind {
        PeerEventKind::PairSelected { pair, .. } if usize::from(e.peer) == peer => {
            Some(pair.clone())
        }
        _ => None,
    })
}

fn failed_after(report: Option<(RunTime, &CallReport)>, started: RunTime) -> Option<f64> {
    report.and_then(|(at, report)| {
        matches!(report.end, CallEnd::Failed(_))
            .then(|| at.saturating_duration_since(started).as_secs_f64() * 1e3)
    })
}

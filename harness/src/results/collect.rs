//! From the peers' event log to a [`ScenarioResult`]: the calls (found by
//! `calls`), the faults, every metric's samples, and the thresholds
//! judged on them. A plain function of its inputs, so it is tested without
//! sockets.

use crate::clock::RunTime;
use std::collections::{BTreeMap, HashMap};

use callprobe_server::protocol::PeerId;

use super::calls::{calls, end_text};
use super::faults::{FaultInput, LinkSnapshot, faults};
use super::load::{LoadObserved, harness_load};
use super::samples::{add_load_samples, fact_samples};
use super::{
    ActionRecord, CallResult, EventRecord, MediaInfo, MetricSummary, PeerNetwork, PeerResult,
    ScenarioResult, ShardRun, Status, ThresholdResult,
};
use crate::metrics::{Metric, Per};
use crate::peer::{CallId, PeerEvent, PeerEventKind};
use crate::record::ScenarioRecord;
use crate::scenario::{Action, Scenario};
use crate::threshold::{Stat, statistic};

/// Everything the runner hands over at the end of a scenario.
#[derive(Debug)]
pub struct Collected<'a> {
    pub scenario: &'a Scenario,
    pub server: String,
    /// When the timeline started (0 on the report's clock) and ended.
    pub started: RunTime,
    pub ended: RunTime,
    /// Set when the run was cut short: `Interrupted` (Ctrl-C) or `Error`
    /// (peers did not start), with why.
    pub cut_short: Option<(Status, String)>,
    /// Each peer's id, by index; `None` for a peer that never started.
    pub ids: &'a [Option<PeerId>],
    /// The actions carried out, with when the runner carried them out.
    pub actions: &'a [(RunTime, Action, Option<CallId>)],
    pub events: &'a [PeerEvent],
    /// What each peer's network link saw, by index (empty: not known).
    pub(crate) links: &'a [LinkSnapshot],
    /// What the harness watched of its own load (`None`: not watched).
    pub load: Option<&'a LoadObserved>,
}

/// The result of one scenario's run, judged from its record: the same
/// for the live run and for `callprobe judge` on its saved record.
pub fn judge_record(scenario: &Scenario, record: &ScenarioRecord) -> ScenarioResult {
    let cut_short = record
        .cut_short
        .as_ref()
        .map(|c| (c.status, c.reason.clone()));
    let mut result = if record.ran {
        judge_ran(scenario, record, cut_short)
    } else {
        let (status, reason) = cut_short.unwrap_or((Status::Error, "did not run".into()));
        ScenarioResult::not_run(scenario, status, reason)
    };
    if let Some(shard) = record.scenario.shard {
        result.shards = vec![ShardRun {
            shard: shard.to_string(),
            peers: scenario.peers.len(),
            calls: result.calls.len(),
            start_offset_ms: record.start_offset_ms,
            status: result.status,
            reason: result.reason.clone(),
            harness: result.harness.clone(),
        }];
    }
    result
}

fn judge_ran(
    scenario: &Scenario,
    record: &ScenarioRecord,
    cut_short: Option<(Status, String)>,
) -> ScenarioResult {
    let actions: Vec<(RunTime, Action, Option<CallId>)> = record
        .actions
        .iter()
        .filter_map(|done| {
            let action = scenario.actions.get(done.index)?;
            Some((done.at, action.clone(), done.call))
        })
        .collect();
    let ids = record.ids(scenario.peers.len());
    collect(Collected {
        scenario,
        server: record.server.clone(),
        started: record.started,
        ended: record.ended,
        cut_short,
        ids: &ids,
        actions: &actions,
        events: &record.events,
        links: &record.links,
        load: record.load.as_ref(),
    })
}

pub fn collect(input: Collected<'_>) -> ScenarioResult {
    let scenario = input.scenario;
    let ms = |at: RunTime| signed_ms(at, input.started);
    let name = |index: usize| scenario.peers[index].name.clone();
    let by_id: HashMap<PeerId, usize> = input
        .ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| id.map(|id| (id, i)))
        .collect();
    let mut calls = calls(&input);
    calls.extend(super::rooms::room_calls(&input));
    let names: Vec<String> = (0..scenario.peers.len()).map(name).collect();
    let faults = faults(&FaultInput {
        names: &names,
        ids: input.ids,
        actions: input.actions,
        events: input.events,
        links: input.links,
        calls: &calls,
        started: input.started,
        ended: input.ended,
    });
    let errors: Vec<usize> = (0..scenario.peers.len())
        .map(|peer| {
            input
                .events
                .iter()
                .filter(|e| {
                    usize::from(e.peer) == peer && matches!(e.kind, PeerEventKind::Error { .. })
                })
                .count()
        })
        .collect();
    let mut samples = fact_samples(&calls, &faults, &errors, scenario.media.shared);
    let receive_overflows = input.links.iter().map(|l| l.receive_overflows).sum();
    let harness = input.load.map(|observed| {
        let load = harness_load(
            observed,
            &scenario.load_bounds,
            scenario.peers.len(),
            &calls,
            (input.started, input.ended),
            receive_overflows,
        );
        add_load_samples(&mut samples, &load, observed, &input);
        load
    });
    let thresholds = judge(scenario, &samples);
    let overloaded = harness.as_ref().and_then(|h| h.overloaded.clone());
    let (status, reason) = verdict(input.cut_short.clone(), overloaded, &thresholds, &calls);
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
                receive_overflows: link.receive_overflows,
                media_losses: link.losses.clone(),
            }),
            errors: input
                .events
                .iter()
                .filter(|e| usize::from(e.peer) == index)
                .filter_map(|e| match &e.kind {
                    PeerEventKind::Error { error, .. } => Some(error.to_string()),
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
            .map(|(at, action, _)| ActionRecord {
                at_ms: ms(*at),
                planned_ms: action.at.as_secs_f64() * 1e3,
                verb: action.verb.name().to_owned(),
                from: action.verb.actor_name(&names),
                to: action.verb.target().map(name),
                origin: action.origin.clone(),
            })
            .collect(),
        metrics: samples
            .into_iter()
            .map(|(metric, values)| summarize(metric, values))
            .collect(),
        thresholds,
        shards: Vec::new(),
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

/// The status the facts and thresholds call for: a run cut short keeps
/// its status; one whose harness was overloaded (`overloaded` says how)
/// is INVALID, unless it failed on what load cannot cause.
pub(super) fn verdict(
    cut_short: Option<(Status, String)>,
    overloaded: Option<String>,
    thresholds: &[ThresholdResult],
    calls: &[CallResult],
) -> (Status, Option<String>) {
    let unexplained = unexplained_by_load(thresholds, calls);
    match (cut_short, overloaded) {
        (Some((status, reason)), _) => (status, Some(reason)),
        (None, Some(why)) if unexplained.is_empty() => {
            (Status::Invalid, Some(format!("harness overloaded: {why}")))
        }
        (None, Some(why)) => (
            Status::Failed,
            Some(format!(
                "failed on what load cannot cause ({}), though the harness was also overloaded: {why}",
                unexplained.join("; ")
            )),
        ),
        (None, None) if thresholds.iter().all(|t| t.passed) => (Status::Passed, None),
        (None, None) => (Status::Failed, None),
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
pub(super) fn signed_ms(at: RunTime, origin: RunTime) -> f64 {
    match at.checked_duration_since(origin) {
        Some(after) => after.as_secs_f64() * 1e3,
        None => -(origin.duration_since(at).as_secs_f64() * 1e3),
    }
}

pub(super) fn summarize(metric: Metric, values: Vec<f64>) -> MetricSummary {
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
        samples: if matches!(metric.per(), Per::Frame | Per::Probe | Per::Message) {
            Vec::new()
        } else {
            values
        },
    }
}

pub(super) fn judge(
    scenario: &Scenario,
    samples: &BTreeMap<Metric, Vec<f64>>,
) -> Vec<ThresholdResult> {
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
        K::PairSelected { remote, pair } => {
            ("pair_selected", Some(*remote), Some(pair.to_string()))
        }
        K::RelayAllocated { remote } => ("relay_allocated", Some(*remote), None),
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
        K::DataOpen { remote } => ("data_open", Some(*remote), None),
        K::CallEnded(report) => (
            "call_ended",
            Some(report.remote),
            Some(end_text(&report.end)),
        ),
        K::Error { remote, error } => ("error", *remote, Some(error.to_string())),
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
        call: event.call,
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
}

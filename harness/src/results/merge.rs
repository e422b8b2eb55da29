//! One result from a scenario's shards (`callprobe merge`). Each shard's
//! record is judged on its own part first; the merge then pools their
//! facts (calls, tracks, faults, peers), recomputes every metric from the
//! pooled samples and judges the thresholds once, on the whole. No call
//! crosses shards, and every shard's timeline started at the same wall-clock
//! instant (`--start-at`), so their report clocks line up.
//!
//! What one machine measures of itself (its harness's load, its ramp) is
//! not pooled: those thresholds are judged per shard, and a shard whose
//! harness was overloaded makes the whole INVALID (unless the whole failed
//! on what load cannot cause).

use super::collect::{judge, summarize, verdict};
use super::samples::fact_samples;
use std::collections::HashMap;

use super::{CallResult, PeerResult, ScenarioResult, Status};
use crate::metrics::Metric;
use crate::peer::CallId;
use crate::scenario::Scenario;

/// The whole of `scenario` from its shards' results, in shard order.
pub fn merge(scenario: &Scenario, parts: &[ScenarioResult]) -> ScenarioResult {
    let shard_name = |part: &ScenarioResult| {
        part.shards
            .first()
            .map_or_else(|| "?".to_owned(), |s| s.shard.clone())
    };
    // Every shard numbers its calls from 0: the whole renumbers them, in
    // the order they started, and its events follow.
    let mut calls: Vec<(usize, CallResult)> = parts
        .iter()
        .enumerate()
        .flat_map(|(k, p)| p.calls.iter().map(move |c| (k, c.clone())))
        .collect();
    calls.sort_by(|a, b| a.1.started_at_ms.total_cmp(&b.1.started_at_ms));
    let mut renumbered: HashMap<(usize, CallId), CallId> = HashMap::new();
    let calls: Vec<CallResult> = calls
        .into_iter()
        .enumerate()
        .map(|(n, (k, mut call))| {
            let id = CallId(n as u32);
            if let Some(old) = call.call.replace(id) {
                renumbered.insert((k, old), id);
            }
            call
        })
        .collect();
    let mut faults: Vec<_> = parts
        .iter()
        .flat_map(|p| p.faults.iter().cloned())
        .collect();
    faults.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    let mut actions: Vec<_> = parts
        .iter()
        .flat_map(|p| p.actions.iter().cloned())
        .collect();
    actions.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    let mut events: Vec<_> = parts
        .iter()
        .enumerate()
        .flat_map(|(k, p)| p.events.iter().map(move |e| (k, e.clone())))
        .map(|(k, mut event)| {
            event.call = event
                .call
                .and_then(|old| renumbered.get(&(k, old)).copied());
            event
        })
        .collect();
    events.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    let peers: Vec<PeerResult> = scenario
        .peers
        .iter()
        .enumerate()
        .map(|(index, plan)| {
            let found = parts
                .iter()
                .flat_map(|p| &p.peers)
                .find(|p| p.name == plan.name)
                .cloned();
            PeerResult {
                index: index as u16,
                ..found.unwrap_or_else(|| PeerResult {
                    index: 0,
                    name: plan.name.clone(),
                    id: None,
                    errors: vec!["in no shard's record".to_owned()],
                    network: None,
                })
            }
        })
        .collect();
    let errors: Vec<usize> = peers.iter().map(|p| p.errors.len()).collect();
    let samples = fact_samples(&calls, &faults, &errors, scenario.media.shared);
    let pooled = Scenario {
        thresholds: scenario
            .thresholds
            .iter()
            .filter(|t| !t.metric.of_one_machine())
            .cloned()
            .collect(),
        ..scenario.clone()
    };
    let mut thresholds = judge(&pooled, &samples);
    for part in parts {
        let own = part
            .thresholds
            .iter()
            .filter(|t| t.metric.parse::<Metric>().is_ok_and(Metric::of_one_machine));
        for threshold in own {
            let mut threshold = threshold.clone();
            threshold.expression = format!("{} [shard {}]", threshold.expression, shard_name(part));
            thresholds.push(threshold);
        }
    }
    let cut_short = parts
        .iter()
        .find(|p| {
            matches!(
                p.status,
                Status::Error | Status::Interrupted | Status::Skipped
            )
        })
        .map(|p| {
            let reason = p.reason.clone().unwrap_or_default();
            (p.status, format!("shard {}: {reason}", shard_name(p)))
        });
    let overloaded: Vec<String> = parts
        .iter()
        .filter(|p| p.status == Status::Invalid)
        .map(|p| {
            let why = p.harness.as_ref().and_then(|h| h.overloaded.clone());
            let why = why.or_else(|| p.reason.clone()).unwrap_or_default();
            format!("shard {}: {why}", shard_name(p))
        })
        .collect();
    let overloaded = (!overloaded.is_empty()).then(|| overloaded.join("; "));
    let (status, reason) = verdict(cut_short, overloaded, &thresholds, &calls);
    let mut servers: Vec<&str> = parts.iter().map(|p| p.server.as_str()).collect();
    servers.sort_unstable();
    servers.dedup();
    ScenarioResult {
        server: servers.join(", "),
        status,
        reason,
        ran_ms: parts.iter().map(|p| p.ran_ms).fold(0.0, f64::max),
        peers,
        calls,
        faults,
        harness: None,
        actions,
        metrics: samples
            .into_iter()
            .map(|(metric, values)| summarize(metric, values))
            .collect(),
        thresholds,
        events,
        shards: parts
            .iter()
            .flat_map(|p| p.shards.iter().cloned())
            .collect(),
        ..ScenarioResult::not_run(scenario, Status::Passed, String::new())
    }
}

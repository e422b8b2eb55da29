//! The run as a record (DESIGN §1): everything the collector judges, on
//! the run's clock, and `events.jsonl`, the file that holds it. The live
//! run and `callprobe judge` read the same record, so a saved run is
//! judged again exactly as it was the first time.
//!
//! | module | what |
//! |---|---|
//! | `log` | `events.jsonl`: one typed line per event, versioned |
//! | `shards` | which records `callprobe merge` may put together |
//!
//! A record is facts only: what the runner did (actions, with the call
//! each concerns), what every peer reported, what the network and the
//! harness's own probes saw. Judging is the collector's.

mod log;
mod shards;

use std::path::PathBuf;

use callprobe_server::protocol::PeerId;
use serde::{Deserialize, Serialize};

pub(crate) use log::read_log;
pub use log::{RunLog, write_log};
pub(crate) use shards::shards_of;

use crate::clock::RunTime;
use crate::peer::{CallId, PeerEvent, PeerEventKind};
use crate::results::{LinkSnapshot, LoadObserved, Status};
use crate::scenario::shard::Shard;
use crate::scenario::{Scenario, ScenarioError, Source};

/// The scenario as it was run: its file as written, and what the command
/// line changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioAsRun {
    /// Where it was read from (reports name it).
    pub file: PathBuf,
    /// The file's text, as read.
    pub text: String,
    /// The seed the run used: the file's, or `--seed`.
    pub seed: u64,
    /// `--server`, when it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The part of the scenario this run was, when it was split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

impl ScenarioAsRun {
    pub fn of(scenario: &Scenario, server: Option<String>, shard: Option<Shard>) -> Self {
        ScenarioAsRun {
            file: scenario.file.clone(),
            text: scenario.text.clone(),
            seed: scenario.seed,
            server,
            shard,
        }
    }

    /// The whole scenario again, validated as it was for the run.
    pub fn whole(&self) -> Result<Scenario, ScenarioError> {
        let mut scenario = Scenario::parse_recorded(&Source::new(&self.file, self.text.clone()))?;
        scenario.seed = self.seed;
        Ok(scenario)
    }

    /// What the run ran: the whole scenario, or its shard's part.
    pub fn scenario(&self) -> Result<Scenario, ScenarioError> {
        let whole = self.whole()?;
        Ok(match self.shard {
            Some(shard) => crate::scenario::shard::part(&whole, shard),
            None => whole,
        })
    }

    /// The same scenario, run the same way (shards aside).
    pub(crate) fn same_run_as(&self, other: &ScenarioAsRun) -> bool {
        (&self.file, &self.text, self.seed) == (&other.file, &other.text, other.seed)
    }
}

/// One action the runner carried out: when, which of the scenario's
/// actions (by index), and the call it made or ended, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionDone {
    pub at: RunTime,
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallId>,
}

/// Why a scenario stopped before its end, or did not run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct CutShort {
    pub status: Status,
    pub reason: String,
}

/// Everything recorded of one scenario's run.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioRecord {
    pub scenario: ScenarioAsRun,
    /// The signaling server's URL (empty when none was reached).
    pub server: String,
    /// When the timeline started (0 on the report's clock) and ended.
    pub started: RunTime,
    pub ended: RunTime,
    /// Set when the run was cut short, or never ran (then nothing else is).
    pub(crate) cut_short: Option<CutShort>,
    /// Whether it ran at all (`false`: skipped, or an error before the start).
    pub ran: bool,
    /// Its timeline's start after `--start-at` (late: positive), ms.
    pub start_offset_ms: Option<f64>,
    pub actions: Vec<ActionDone>,
    pub events: Vec<PeerEvent>,
    /// What each peer's network link saw, by index.
    pub(crate) links: Vec<LinkSnapshot>,
    /// What the harness watched of its own load.
    pub load: Option<LoadObserved>,
}

impl ScenarioRecord {
    /// A scenario that did not run: skipped, or an error before its start.
    pub(crate) fn not_run(scenario: ScenarioAsRun, status: Status, reason: String) -> Self {
        ScenarioRecord {
            scenario,
            server: String::new(),
            started: RunTime::ZERO,
            ended: RunTime::ZERO,
            cut_short: Some(CutShort { status, reason }),
            ran: false,
            start_offset_ms: None,
            actions: Vec::new(),
            events: Vec::new(),
            links: Vec::new(),
            load: None,
        }
    }

    /// Each peer's id, by index, from its `Started` event.
    pub fn ids(&self, peers: usize) -> Vec<Option<PeerId>> {
        let mut ids = vec![None; peers];
        for event in &self.events {
            if let PeerEventKind::Started { id } = event.kind
                && let Some(slot) = ids.get_mut(usize::from(event.peer))
            {
                *slot = Some(id);
            }
        }
        ids
    }
}

#[cfg(test)]
mod tests;

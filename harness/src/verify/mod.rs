//! Judging what a peer receives: plain functions and state machines over
//! (what arrived, when), with no sockets, so every verdict is unit-tested.

pub mod audio;
pub mod beeps;
pub mod data;
pub(crate) mod live;
pub(crate) mod video;

use std::time::Duration;

use crate::threshold::percentile;

/// Count, percentiles and maximum of a set of durations.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub count: usize,
    #[serde(deserialize_with = "crate::clock::f64_or_nan")]
    pub min_ms: f64,
    #[serde(deserialize_with = "crate::clock::f64_or_nan")]
    pub p50_ms: f64,
    #[serde(deserialize_with = "crate::clock::f64_or_nan")]
    pub p95_ms: f64,
    #[serde(deserialize_with = "crate::clock::f64_or_nan")]
    pub max_ms: f64,
}

impl Summary {
    pub fn of(values: &[Duration]) -> Self {
        if values.is_empty() {
            return Summary::default();
        }
        let mut sorted: Vec<f64> = values.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        sorted.sort_by(f64::total_cmp);
        // The same percentile definition thresholds use, so a report's p95
        // is the p95 a threshold judged.
        Summary {
            count: sorted.len(),
            min_ms: sorted[0],
            p50_ms: percentile(&sorted, 50.0),
            p95_ms: percentile(&sorted, 95.0),
            max_ms: sorted[sorted.len() - 1],
        }
    }
}

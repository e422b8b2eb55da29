//! The collector as a pure function of a record: runs recorded once (in
//! `tests/fixtures/records/`) judged again, their reports snapshotted. A
//! change in what a run's facts add up to shows here, line by line.

use std::path::{Path, PathBuf};

use super::read_log;
use crate::report::terminal;
use crate::results::{RunReport, judge_record};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/records")
        .join(format!("{name}.jsonl"))
}

/// The terminal report of judging the recorded run `name` again.
fn judged(name: &str) -> String {
    let log = read_log(&fixture(name)).unwrap_or_else(|e| panic!("{e}"));
    let scenarios = log
        .scenarios
        .iter()
        .map(|record| {
            let scenario = record.scenario.scenario().unwrap_or_else(|e| panic!("{e}"));
            judge_record(&scenario, record)
        })
        .collect();
    terminal(&RunReport {
        callprobe_version: "(snapshot)",
        started_at: log.started_at,
        scenarios,
    })
}

#[test]
fn a_clean_call_is_judged_from_its_record() {
    insta::assert_snapshot!(judged("basic-call"));
}

#[test]
fn a_crash_is_judged_from_its_record() {
    insta::assert_snapshot!(judged("peer-crashes"));
}

#[test]
fn an_impairment_and_its_recovery_are_judged_from_the_record() {
    insta::assert_snapshot!(judged("blackhole-recover"));
}

#[test]
fn a_frozen_camera_fails_from_its_record() {
    insta::assert_snapshot!(judged("video-freezes"));
}
